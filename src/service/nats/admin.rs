//! The operators' views and deploys under `--nats` (SERVICE.md §5, §8):
//! `GET /admin/users/{key}`, `GET /admin/journeys` and `POST
//! /admin/reload` on any process, answered with the same code and JSON as
//! one machine's ([`crate::service::admin`]).
//!
//! A partition's runtime lives in its owner's process, so a view asks the
//! owner: each held partition answers NATS requests on `journey.admin.<p>`
//! ([`admin_subject`]) from its own task, between journal entries, as one
//! machine's worker answers an inspection. Whichever process got the HTTP
//! request sends them and renders the answers; `/admin/users/{key}` adds
//! the customer's sends' records ([`super::delivery::Records`]). Delivery
//! asks the same way for an audience sync's customer's email and phone
//! ([`Ask::Contact`]).

use std::sync::Arc;
use std::time::Duration;

use async_nats::RequestErrorKind;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Node;
use super::http::NatsApp;
use crate::runtime::{Stats, inspect};
use crate::service::admin::{
    SHOWN_DELIVERIES, deliveries_json, journeys_json, no_such_user, reload_answer, user_answer,
};
use crate::service::core::Partition;
use crate::service::delivery::audience;
use crate::service::http::{admin_allowed, error};
use crate::service::partitions::partition_of;
use crate::service::versions::Versions;

/// The subject partition `p`'s owner answers [`Ask`]s on.
pub(super) fn admin_subject(p: u32) -> String {
    format!("journey.admin.{p}")
}

/// What a process asks a partition's owner.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
pub(super) enum Ask {
    /// [`inspect::user`] of one customer (`null`: none).
    User { key: String },
    /// [`audience::contact_in`] of one customer: the email and phone an
    /// audience sync matches on.
    Contact { key: String },
    /// The version the partition runs and its stats.
    Stats,
    /// [`crate::runtime::Runtime::kept_after`] of a deploy planned over
    /// version `live`, `next` its program as `journey compile` writes it;
    /// refused by a partition not at `live` yet.
    KeptAfter { live: u32, next: String },
}

/// An owner's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Ok(Value),
    Error(String),
}

/// Partition `p`'s owner answers `request` (its task calls this between
/// entries); `live`: whether it is replayed.
pub(super) fn answer(
    p: u32,
    partition: &Partition,
    live: bool,
    versions: &Versions,
    request: &[u8],
) -> Vec<u8> {
    let answered = if live {
        serde_json::from_slice::<Ask>(request)
            .map_err(|e| format!("a request that does not read: {e}"))
            .and_then(|ask| tokio::task::block_in_place(|| answer_one(partition, versions, ask)))
    } else {
        Err(format!("partition {p} is being restored and replayed"))
    };
    let answer = match answered {
        Ok(value) => Answer::Ok(value),
        Err(why) => Answer::Error(why),
    };
    serde_json::to_vec(&answer).unwrap_or_default()
}

fn answer_one(partition: &Partition, versions: &Versions, ask: Ask) -> Result<Value, String> {
    let runtime = &partition.runtime;
    match ask {
        Ask::User { key } => {
            let live = versions.live().map_or(1, |v| v.number);
            serde_json::to_value(inspect::user(runtime, &key, live)).map_err(|e| e.to_string())
        }
        Ask::Contact { key } => Ok(audience::contact_in(runtime, &key)),
        Ask::Stats => Ok(json!({ "version": partition.version(), "stats": runtime.stats() })),
        Ask::KeptAfter { live, next } => {
            if partition.version() != live {
                return Err(format!(
                    "the partition runs version {}, not {live} yet",
                    partition.version()
                ));
            }
            let next = crate::compile::load(&next)
                .map_err(|e| format!("the planned program does not read: {e}"))?;
            Ok(json!(runtime.kept_after(&next, live)))
        }
    }
}

impl Node {
    /// Asks partition `p`'s owner once, waiting 30 s at most.
    pub(super) async fn ask(&self, p: u32, ask: &Ask) -> Result<Value, String> {
        self.ask_within(p, ask, Duration::from_secs(30)).await
    }

    /// Asks partition `p`'s owner once, waiting `wait` at most.
    pub(super) async fn ask_within(
        &self,
        p: u32,
        ask: &Ask,
        wait: Duration,
    ) -> Result<Value, String> {
        let request = serde_json::to_vec(ask).map_err(|e| e.to_string())?;
        let client = self.d.js.client();
        let reply = tokio::time::timeout(wait, client.request(admin_subject(p), request.into()))
            .await
            .map_err(|_| {
                format!(
                    "partition {p}'s owner did not answer within {} s",
                    wait.as_secs()
                )
            })?
            .map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders => format!(
                    "partition {p} has no owner now (it is being taken over); ask again in a moment"
                ),
                _ => format!("partition {p}'s owner did not answer: {e}"),
            })?;
        match serde_json::from_slice(&reply.payload) {
            Ok(Answer::Ok(value)) => Ok(value),
            Ok(Answer::Error(why)) => Err(format!("partition {p}: {why}")),
            Err(e) => Err(format!("partition {p}'s answer does not read: {e}")),
        }
    }
}

/// The routes of this module.
pub(super) fn routes(router: Router<Arc<NatsApp>>) -> Router<Arc<NatsApp>> {
    router
        .route("/admin/reload", post(reload))
        .route("/admin/users/{key}", get(user))
        .route("/admin/journeys", get(journeys))
}

/// `GET /admin/users/{key}`: asked of the customer's partition's owner,
/// with the customer's sends' records from [`super::delivery::Records`].
async fn user(
    State(app): State<Arc<NatsApp>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !admin_allowed(&app.access, &headers) {
        return error(StatusCode::UNAUTHORIZED, "the admin token is required");
    }
    let node = &app.node;
    let p = partition_of(&key, node.d.partitions());
    match node.ask(p, &Ask::User { key: key.clone() }).await {
        Ok(Value::Null) => no_such_user(&key),
        Ok(view) => match app.records.of_user(&key, SHOWN_DELIVERIES).await {
            Ok(rows) => user_answer(view, deliveries_json(rows)),
            Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, why),
        },
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// `GET /admin/journeys`: every partition's stats, summed, rendered with
/// the program of the version they all run.
async fn journeys(State(app): State<Arc<NatsApp>>, headers: HeaderMap) -> Response {
    if !admin_allowed(&app.access, &headers) {
        return error(StatusCode::UNAUTHORIZED, "the admin token is required");
    }
    let node = &app.node;
    let mut version: Option<u32> = None;
    let mut total = Stats::default();
    for p in 0..node.d.partitions() {
        let answer = match node.ask(p, &Ask::Stats).await {
            Ok(answer) => answer,
            Err(why) => return error(StatusCode::SERVICE_UNAVAILABLE, why),
        };
        let (Some(runs), Ok(stats)) = (
            answer["version"]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok()),
            serde_json::from_value::<Stats>(answer["stats"].clone()),
        ) else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("partition {p}'s answer does not read"),
            );
        };
        // Another version means a deploy is half applied.
        if version.is_some_and(|v| v != runs) {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "a deploy is being applied; ask again in a moment",
            );
        }
        version = Some(runs);
        total.merge(&stats);
    }
    let Some(version) = version else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no partition answered");
    };
    if let Err(why) = node.learn_version(version).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, why);
    }
    let program = match node.versions.program(version) {
        Ok(program) => program,
        Err(why) => return error(StatusCode::INTERNAL_SERVER_ERROR, why),
    };
    let live = node.versions.live().map_or(1, |v| v.number);
    axum::Json(journeys_json(&program, &total, live)).into_response()
}

/// `POST /admin/reload`: the project read from disk again and deployed
/// across the processes ([`super::deploy`]).
async fn reload(State(app): State<Arc<NatsApp>>, headers: HeaderMap) -> Response {
    if !admin_allowed(&app.access, &headers) {
        return error(StatusCode::UNAUTHORIZED, "the admin token is required");
    }
    reload_answer(app.node.redeploy().await)
}
