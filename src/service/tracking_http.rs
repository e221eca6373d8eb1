//! The public routes of `[tracking]` (SERVICE.md §6): a click
//! (`GET /t/c/{token}`, a 302 to the link's URL), an open (`GET
//! /t/o/{token}`, a 1×1 GIF), and unsubscribe (`GET /u/{token}`, a
//! confirmation page; `POST /u/{token}`, also RFC 8058's one-click). Each
//! journals what happened as the recipient's track event, through
//! [`Gate::append`] like an ingested message. No authentication: the
//! signed token is the authority ([`crate::service::delivery::tracking`]), and a
//! token that does not verify is a 404 that journals nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::core::{ClockMode, Incoming, wall_ms};
use super::http::{Gate, Public, journal, prepare};
use crate::service::delivery::tracking::{Claims, Kind, Tracking};
use crate::value::format_timestamp;

/// A transparent 1×1 GIF (GIF89a, a two-colour table, index 0
/// transparent).
pub const PIXEL_GIF: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// The body of RFC 8058's one-click unsubscribe, which the confirmation
/// page's form sends too.
const ONE_CLICK: (&str, &str) = ("List-Unsubscribe", "One-Click");

/// Which message an event is about, and whose.
pub(super) struct About<'a> {
    pub user_id: &'a str,
    pub message_id: &'a str,
    pub journey: &'a str,
    pub template: &'a str,
    pub channel: &'a str,
}

impl<'a> From<&'a Claims> for About<'a> {
    fn from(c: &'a Claims) -> About<'a> {
        About {
            user_id: &c.user_id,
            message_id: &c.message_id,
            journey: &c.journey,
            template: &c.template,
            channel: &c.channel,
        }
    }
}

/// A message of the recipient's, stamped as ingest stamps one: now (the
/// wall clock, or the deployment's clock with `--clock events`).
fn stamped(core: &dyn Gate, mut message: Map<String, Value>) -> Result<Incoming, String> {
    if core.mode() == ClockMode::Events {
        let now = core.clock().unwrap_or_else(wall_ms);
        message.insert("timestamp".into(), Value::String(format_timestamp(now)));
    }
    prepare(message, None, core).map(|(incoming, _)| incoming)
}

/// The track event `message.<outcome>` about a message, `messageId`
/// `id`, with `extra` properties.
pub(super) fn message_event(
    core: &dyn Gate,
    about: &About<'_>,
    outcome: &str,
    extra: &[(&str, &str)],
    id: String,
) -> Result<Incoming, String> {
    let mut properties = Map::new();
    properties.insert("message_id".into(), json!(about.message_id));
    properties.insert("journey".into(), json!(about.journey));
    properties.insert("template".into(), json!(about.template));
    properties.insert("channel".into(), json!(about.channel));
    for (key, value) in extra {
        properties.insert((*key).into(), json!(value));
    }
    let mut fields = Map::new();
    fields.insert("type".into(), json!("track"));
    fields.insert("userId".into(), json!(about.user_id));
    fields.insert("event".into(), json!(format!("message.{outcome}")));
    fields.insert("properties".into(), Value::Object(properties));
    fields.insert("messageId".into(), json!(id));
    stamped(core, fields)
}

/// `message.<outcome>` of a provider's answer about a message (its
/// `messageId` `<message_id>:<outcome>`, so a repeat is one event), with
/// the `error` it gave.
pub(super) fn outcome_event(
    gate: &dyn Gate,
    about: &About<'_>,
    outcome: &str,
    error: Option<&str>,
) -> Result<Incoming, String> {
    let extra: Vec<(&str, &str)> = error.map(|e| ("error", e)).into_iter().collect();
    let id = format!("{}:{outcome}", about.message_id);
    message_event(gate, about, outcome, &extra, id)
}

/// Journals `messages`, all or nothing; the error is the response to give.
async fn journal_all(
    gate: &dyn Gate,
    messages: Result<Vec<Incoming>, String>,
) -> Result<(), Response> {
    match messages {
        Ok(messages) => journal(gate, messages).await,
        Err(why) => Err(super::http::error(StatusCode::INTERNAL_SERVER_ERROR, why)),
    }
}

/// The claims of a token of `kind`, when tracking is configured and the
/// token verifies.
fn verified(app: &dyn Public, kind: Kind, token: &str) -> Option<(Arc<Tracking>, Claims)> {
    let tracking = app.tracking()?.clone();
    let claims = tracking.verify(kind, token)?;
    Some((tracking, claims))
}

fn no_such_link() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<p>This link is not valid.</p>",
    )
}

/// `GET /t/c/{token}`: `message.clicked` with the URL, then a 302 to it.
/// Two links of one message are two events (the `messageId` holds a hash
/// of the URL); clicking one link again gives the same `messageId`, which
/// the runtime's de-duplication ignores.
pub async fn click<A: Public>(State(app): State<Arc<A>>, Path(token): Path<String>) -> Response {
    let Some((_, claims)) = verified(&*app, Kind::Click, &token) else {
        return no_such_link();
    };
    let gate = app.gate();
    gate.refresh_clock().await;
    let url = claims.url.clone().unwrap_or_default();
    let hash = crate::compile::artifact::sha256_hex(url.as_bytes());
    let id = format!(
        "{}:clicked:{}",
        claims.message_id,
        hash.get(..16).unwrap_or(&hash)
    );
    let event = message_event(gate, &About::from(&claims), "clicked", &[("url", &url)], id);
    // The customer goes where the link said even when the event could not
    // be journaled (the service is stopping or behind): it is their click.
    let _ = journal_all(gate, event.map(|e| vec![e])).await;
    let Ok(location) = HeaderValue::from_str(&url) else {
        return no_such_link();
    };
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /t/o/{token}`: `message.opened`, and the pixel.
pub async fn open<A: Public>(State(app): State<Arc<A>>, Path(token): Path<String>) -> Response {
    let Some((_, claims)) = verified(&*app, Kind::Open, &token) else {
        return super::http::error(StatusCode::NOT_FOUND, "no such image");
    };
    let gate = app.gate();
    gate.refresh_clock().await;
    let id = format!("{}:opened", claims.message_id);
    let event = message_event(gate, &About::from(&claims), "opened", &[], id);
    let _ = journal_all(gate, event.map(|e| vec![e])).await;
    Response::builder()
        .header(header::CONTENT_TYPE, "image/gif")
        .header(
            header::CACHE_CONTROL,
            "no-cache, no-store, must-revalidate, private",
        )
        .header(header::PRAGMA, "no-cache")
        .header(header::EXPIRES, "0")
        .body(Body::from(PIXEL_GIF.as_slice()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET /u/{token}`: asks before it records anything (mail scanners
/// follow links; they do not submit forms).
pub async fn unsubscribe_page<A: Public>(
    State(app): State<Arc<A>>,
    Path(token): Path<String>,
) -> Response {
    let Some((_, claims)) = verified(&*app, Kind::Unsubscribe, &token) else {
        return no_such_link();
    };
    let channel = htmlize::escape_text(claims.channel.as_str());
    let (name, value) = ONE_CLICK;
    page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop receiving these {channel} messages?</p>\n<form method=\"post\">\
             <input type=\"hidden\" name=\"{name}\" value=\"{value}\">\
             <button type=\"submit\">Unsubscribe</button></form>"
        ),
    )
}

/// `POST /u/{token}` with `List-Unsubscribe=One-Click`: an identify
/// setting the opt-out ([`Tracking::opt_out_traits`]), then
/// `message.unsubscribed`, journaled together; then a page that says so.
pub async fn unsubscribe<A: Public>(
    State(app): State<Arc<A>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let Some((tracking, claims)) = verified(&*app, Kind::Unsubscribe, &token) else {
        return no_such_link();
    };
    let (name, value) = ONE_CLICK;
    if !is_one_click(request).await {
        return page(
            StatusCode::BAD_REQUEST,
            "Unsubscribe",
            &format!(
                "<p>The request must carry <code>{name}={value}</code> \
                 (RFC 8058).</p>"
            ),
        );
    }
    let about = About::from(&claims);
    let mut identify = Map::new();
    identify.insert("type".into(), json!("identify"));
    identify.insert("userId".into(), json!(claims.user_id));
    identify.insert("traits".into(), tracking.opt_out_traits(&claims.channel));
    // No `messageId`: ingest gives a fresh one, so an opt-out is always
    // applied, even one repeated after the customer opted in again.
    let gate = app.gate();
    gate.refresh_clock().await;
    let messages = stamped(gate, identify).and_then(|identify| {
        let id = format!("{}:unsubscribed", claims.message_id);
        let event = message_event(gate, &about, "unsubscribed", &[], id)?;
        Ok(vec![identify, event])
    });
    if let Err(response) = journal_all(gate, messages).await {
        let status = response.status();
        return page(
            status,
            "Unsubscribe",
            "<p>Your request could not be recorded just now. Please try again in a moment.</p>",
        );
    }
    let channel = htmlize::escape_text(claims.channel.as_str());
    page(
        StatusCode::OK,
        "Unsubscribed",
        &format!("<p>You are unsubscribed: you will get no more of these {channel} messages.</p>"),
    )
}

/// The most bytes of an unsubscribe's body read: the one-click field is
/// all it needs.
const MAX_UNSUBSCRIBE_BODY: usize = 16 * 1024;

/// Whether the body carries `List-Unsubscribe=One-Click`, as
/// `multipart/form-data` (which RFC 8058 prefers) or
/// `application/x-www-form-urlencoded` (which the confirmation page sends).
async fn is_one_click(request: Request) -> bool {
    let (name, value) = ONE_CLICK;
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
    if multipart {
        let Ok(mut form) = Multipart::from_request(request, &()).await else {
            return false;
        };
        while let Ok(Some(field)) = form.next_field().await {
            if field.name() == Some(name) {
                return field.text().await.is_ok_and(|text| text.trim() == value);
            }
        }
        return false;
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_UNSUBSCRIBE_BODY).await else {
        return false;
    };
    url::form_urlencoded::parse(&body).any(|(k, v)| k == name && v == value)
}

/// A small HTML page: nothing loaded from elsewhere, not framed, no
/// referrer.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n{body}\n</body></html>\n"
    );
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
        )
        .body(Body::from(html))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
