//! The in-app inbox's API (SERVICE.md §6, provider `inbox`): `GET
//! /v1/inbox/{user_key}` lists a customer's messages, newest first; `POST
//! /v1/inbox/{user_key}/{message_id}/read` and `.../dismiss` record what
//! the app did and journal it as `message.opened` / `message.dismissed`.
//! Each call carries the customer's token,
//! `Authorization: Bearer hex(HMAC-SHA256(inbox secret, user_key))`
//! ([`crate::service::delivery::inbox::InboxKeys`]), which the embedding app
//! computes for the customer signed in to it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::core::wall_ms;
use super::http::{App, Ingesting, error, journal};
use super::storage::InboxMark;
use super::tracking_http::{About, message_event};
use crate::service::delivery::inbox::{Content, InboxKeys, InboxStore, view};

/// A service with the inbox's routes ([`routes`]): the marks are journaled
/// through its [`Ingesting::gate`].
pub trait Inboxes: Ingesting {
    /// `[inbox]`'s tokens and where the inboxes are kept; `None` (no
    /// `[inbox]`): the routes are 404s.
    fn inboxes(&self) -> Option<(&InboxKeys, &dyn InboxStore)>;
}

impl Inboxes for App {
    fn inboxes(&self) -> Option<(&InboxKeys, &dyn InboxStore)> {
        let store: &dyn InboxStore = self.core.storage();
        self.inbox.as_deref().map(|keys| (keys, store))
    }
}

/// The inbox's routes, for either backend.
pub fn routes<A: Inboxes>() -> Router<Arc<A>> {
    Router::new()
        .route("/v1/inbox/{user_key}", get(list::<A>))
        .route(
            "/v1/inbox/{user_key}/{message_id}/{action}",
            post(mark::<A>),
        )
}

/// Where the inboxes are kept, if the request carries `user_key`'s token;
/// the refusal otherwise.
fn authorised<'a, A: Inboxes>(
    app: &'a A,
    user_key: &str,
    headers: &HeaderMap,
) -> Result<&'a dyn InboxStore, Response> {
    let Some((keys, store)) = app.inboxes() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "the inbox is not configured (`[inbox] secret`)",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    if keys.verify(user_key, given) {
        Ok(store)
    } else {
        Err(error(
            StatusCode::UNAUTHORIZED,
            "the customer's inbox token is required (`Authorization: Bearer <token>`)",
        ))
    }
}

fn private(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// `GET /v1/inbox/{user_key}`.
pub async fn list<A: Inboxes>(
    State(app): State<Arc<A>>,
    Path(user_key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let store = match authorised(&*app, &user_key, &headers) {
        Ok(store) => store,
        Err(refused) => return refused,
    };
    match store.list(&user_key, wall_ms()).await {
        Ok(records) => {
            let messages: Vec<_> = records.iter().map(view).collect();
            private(axum::Json(json!({ "messages": messages })).into_response())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /v1/inbox/{user_key}/{message_id}/{read|dismiss}`: the mark is
/// kept, then the event journaled; a repeated call journals the same
/// `messageId` again (ignored by the runtime), so a call whose journaling
/// failed can simply be repeated.
pub async fn mark<A: Inboxes>(
    State(app): State<Arc<A>>,
    Path((user_key, message_id, action)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let (mark, outcome) = match action.as_str() {
        "read" => (InboxMark::Read, "opened"),
        "dismiss" => (InboxMark::Dismissed, "dismissed"),
        _ => return error(StatusCode::NOT_FOUND, "no such endpoint"),
    };
    let store = match authorised(&*app, &user_key, &headers) {
        Ok(store) => store,
        Err(refused) => return refused,
    };
    let record = match store.mark(&user_key, &message_id, mark, wall_ms()).await {
        Ok(Some((record, _))) => record,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no message `{message_id}` in this inbox (or it has expired)"),
            );
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let content = Content::of(&record);
    let about = About {
        user_id: &user_key,
        message_id: &message_id,
        journey: content.as_ref().map_or("", |c| &c.journey),
        template: content.as_ref().map_or("", |c| &c.template),
        channel: content.as_ref().map_or("", |c| &c.channel),
    };
    let gate = app.gate();
    // Stamped with the deployment's clock as it is now (`--clock events`).
    gate.refresh_clock().await;
    let id = format!("{message_id}:{outcome}");
    let event = match message_event(gate, &about, outcome, &[], id) {
        Ok(event) => event,
        Err(why) => return error(StatusCode::INTERNAL_SERVER_ERROR, why),
    };
    if let Err(response) = journal(gate, vec![event]).await {
        return response;
    }
    private(axum::Json(json!({ "success": true, "message": view(&record) })).into_response())
}
