//! The HTTP API (SERVICE.md §3 and §5), on axum: Segment's Tracking API
//! for ingest, the actions feed, the clock, health. Every message is read
//! by the reader `journey simulate` uses, so a message simulate would
//! report as malformed is a 400 here, and nothing of its request is kept.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use flate2::read::GzDecoder;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use metrics_exporter_prometheus::PrometheusHandle;

use super::core::{ClockMode, ClockState, ClockTo, Core, Incoming, IngestError, wall_ms};
use super::metrics;
use crate::io::{RawEvent, parse_line};
use crate::service::delivery::inbox::InboxKeys;
use crate::service::delivery::tracking::{CLICK_ROUTE, OPEN_ROUTE, Tracking, UNSUBSCRIBE_ROUTE};
use crate::value::{format_timestamp, parse_timestamp};

/// The most bytes of one message (Segment's limit).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// The most bytes of one request, after gzip decoding (Segment's limit).
pub const MAX_REQUEST_BYTES: usize = 500 * 1024;
/// The most actions one feed read returns.
pub const MAX_FEED_LIMIT: usize = 10_000;
/// The longest a feed read waits for a new action.
pub const MAX_FEED_WAIT_S: u64 = 60;

/// Who may call what.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Accepted write keys; empty: ingest is open.
    pub write_keys: Vec<String>,
    /// The admin token (Bearer) for `/admin/*` and `/v1/actions`.
    pub admin_token: Option<String>,
}

/// What ingest journals through: one machine's [`Core`], or NATS
/// JetStream ([`super::nats`]). The handlers of ingest are the same for
/// both.
pub trait Gate: Send + Sync {
    fn mode(&self) -> ClockMode;
    /// The deployment's event clock (`--clock events`), as last known.
    fn clock(&self) -> Option<i64>;
    fn max_clock_jump_ms(&self) -> i64;
    /// Journals the messages; resolves once they are durable.
    fn append(&self, messages: Vec<Incoming>) -> Appending<'_>;

    /// Brings [`Gate::clock`] up to the deployment's clock, before a
    /// message the service writes itself (an outcome, a click) is stamped
    /// with it; one machine's clock is always current.
    fn refresh_clock(&self) -> crate::service::delivery::BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// [`Gate::append`]'s future.
pub type Appending<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), IngestError>> + Send + 'a>>;

impl Gate for Core {
    fn mode(&self) -> ClockMode {
        Core::mode(self)
    }

    fn clock(&self) -> Option<i64> {
        Core::clock(self)
    }

    fn max_clock_jump_ms(&self) -> i64 {
        Core::max_clock_jump_ms(self)
    }

    fn append(&self, messages: Vec<Incoming>) -> Appending<'_> {
        Box::pin(Core::append(self, messages))
    }
}

/// A service whose ingest routes are [`single`] and [`batch`].
pub trait Ingesting: Send + Sync + 'static {
    fn access(&self) -> &Access;
    fn gate(&self) -> &dyn Gate;
}

impl Ingesting for App {
    fn access(&self) -> &Access {
        &self.access
    }

    fn gate(&self) -> &dyn Gate {
        &*self.core
    }
}

/// A service with delivery's public routes ([`public_routes`]): what they
/// journal goes through its [`Ingesting::gate`].
pub trait Public: Ingesting {
    /// `[tracking]`: the links' tokens; `None`: its routes are 404s.
    fn tracking(&self) -> Option<&Arc<Tracking>>;
    /// The channels bound to Twilio, whose status callbacks
    /// `/webhooks/twilio` takes; none: it is a 404.
    fn twilio(&self) -> &[Arc<crate::service::delivery::twilio::TwilioProvider>];
}

impl Public for App {
    fn tracking(&self) -> Option<&Arc<Tracking>> {
        self.tracking.as_ref()
    }

    fn twilio(&self) -> &[Arc<crate::service::delivery::twilio::TwilioProvider>] {
        &self.twilio
    }
}

/// The tracking links (clicks, opens, unsubscribe) and Twilio's status
/// callbacks, for either backend.
pub fn public_routes<A: Public>() -> Router<Arc<A>> {
    Router::new()
        .route(CLICK_ROUTE, get(super::tracking_http::click::<A>))
        .route(OPEN_ROUTE, get(super::tracking_http::open::<A>))
        .route(
            UNSUBSCRIBE_ROUTE,
            get(super::tracking_http::unsubscribe_page::<A>)
                .post(super::tracking_http::unsubscribe::<A>),
        )
        .route(
            crate::service::delivery::twilio::CALLBACK_ROUTE,
            post(super::twilio_http::status::<A>),
        )
}

pub struct App {
    pub core: Arc<Core>,
    /// The project's paths, read again by each deploy.
    pub project: Vec<std::path::PathBuf>,
    /// The Prometheus recorder, when this process installed it.
    pub metrics: Option<&'static PrometheusHandle>,
    pub access: Access,
    pub shutting_down: AtomicBool,
    /// `[tracking]`: the links' tokens; `None`: its routes are 404s.
    pub tracking: Option<Arc<Tracking>>,
    /// `[inbox]`: the customers' inbox tokens; `None`: its routes are 404s.
    pub inbox: Option<Arc<InboxKeys>>,
    /// The channels bound to Twilio, whose status callbacks
    /// `/webhooks/twilio` takes; none: it is a 404.
    pub twilio: Vec<Arc<crate::service::delivery::twilio::TwilioProvider>>,
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/batch", post(batch::<App>))
        .route("/v1/{kind}", post(single::<App>))
        .route("/v1/actions", get(actions))
        .route("/admin/clock", post(clock))
        .route("/metrics", get(render_metrics))
        .route("/admin/users/{user_key}", get(super::admin::user))
        .route("/admin/journeys", get(super::admin::journeys))
        .route("/admin/reload", post(super::admin::reload))
        .merge(super::inbox_http::routes::<App>())
        .merge(public_routes::<App>())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(refuse_long_bodies))
        .with_state(app)
}

/// A request whose `Content-Length` says it is over the limit is answered
/// 413 before its body is read: a client that sent `Expect:
/// 100-continue` (curl does for large bodies) sends nothing more, and no
/// client's early answer is lost to a connection closed under its writes.
/// A body without a length is held to the limit as it is read
/// ([`body_text`]).
async fn refuse_long_bodies(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return too_large();
    }
    next.run(request).await
}

fn too_large() -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("a request may hold at most {MAX_REQUEST_BYTES} bytes"),
    )
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let reason = match status {
        StatusCode::BAD_REQUEST => Some("malformed"),
        StatusCode::UNAUTHORIZED => Some("unauthorised"),
        StatusCode::PAYLOAD_TOO_LARGE => Some("too_large"),
        StatusCode::SERVICE_UNAVAILABLE => Some("unavailable"),
        _ => None,
    };
    if let Some(reason) = reason {
        ::metrics::counter!(metrics::REJECTED, "reason" => reason).increment(1);
    }
    let body = json!({ "success": false, "error": message.into() });
    (status, axum::Json(body)).into_response()
}

fn bad_message(index: usize, message: impl Into<String>) -> Response {
    ::metrics::counter!(metrics::REJECTED, "reason" => "malformed").increment(1);
    let body = json!({ "success": false, "error": message.into(), "index": index });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

/// `/healthz`: the process answers (any backend).
pub(super) async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.shutting_down.load(Ordering::Acquire) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    (StatusCode::OK, "ready\n").into_response()
}

/// The request body, gzip-decoded when so encoded, within the size limit
/// (a body over it never reaches here whole: axum stops reading it).
fn body_text(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<String, Response> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            error(status, rejection.body_text())
        }
    })?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let bytes = if gzip {
        let mut out = Vec::new();
        let mut decoder = GzDecoder::new(&body[..]).take(MAX_REQUEST_BYTES as u64 + 1);
        if let Err(e) = decoder.read_to_end(&mut out) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("the gzip body does not decode: {e}"),
            ));
        }
        out
    } else {
        body.to_vec()
    };
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|_| error(StatusCode::BAD_REQUEST, "the body is not UTF-8"))
}

/// Checks the write key: HTTP Basic (the key as user name) or `writeKey`
/// in the body.
fn authorised(access: &Access, headers: &HeaderMap, body: &Map<String, Value>) -> bool {
    if access.write_keys.is_empty() {
        return true;
    }
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .map(|pair| {
            pair.split_once(':')
                .map_or(pair.clone(), |(user, _)| user.to_string())
        });
    let from_body = body
        .get("writeKey")
        .and_then(Value::as_str)
        .map(str::to_string);
    [from_header, from_body]
        .into_iter()
        .flatten()
        .any(|key| access.write_keys.iter().any(|k| constant_time_eq(k, &key)))
}

/// Compares secrets in time that does not depend on where they differ.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub(super) fn admin_allowed(access: &Access, headers: &HeaderMap) -> bool {
    let Some(token) = &access.admin_token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| constant_time_eq(token, given.trim()))
}

/// A random message id, for a message that has none.
fn fresh_message_id() -> String {
    let mut bytes = [0u8; 16];
    // Without the system's randomness there is no id to give; the
    // message then goes in without one (and is not de-duplicated).
    if getrandom::fill(&mut bytes).is_err() {
        return String::new();
    }
    format!("journey-{}", crate::compile::artifact::hex(&bytes))
}

/// A message of a batch as sent, journaled as it is when nothing needs
/// filling in (it has its `messageId` and `timestamp`, no `writeKey`): no
/// JSON tree is built for it. `None` sends it to [`prepare`].
fn prepare_raw(text: &str, core: &dyn Gate) -> Option<Result<(Incoming, String), String>> {
    if text.len() > MAX_MESSAGE_BYTES || text.contains("\"writeKey\"") {
        return None;
    }
    let raw = parse_line(text, 1).ok()?;
    let id = raw
        .message_id
        .as_deref()
        .filter(|id| !id.is_empty())?
        .to_string();
    Some(admit(&raw, text, core).map(|incoming| (incoming, id)))
}

/// One message made ready to journal: `type` set, `messageId` and (with
/// `--clock wall`) `timestamp` filled in, read by simulate's reader.
pub(crate) fn prepare(
    mut message: Map<String, Value>,
    kind: Option<&str>,
    core: &dyn Gate,
) -> Result<(Incoming, String), String> {
    if let Some(kind) = kind {
        message.insert("type".into(), Value::String(kind.to_string()));
    }
    message.remove("writeKey");
    let id = match message.get("messageId") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => {
            let id = fresh_message_id();
            message.insert("messageId".into(), Value::String(id.clone()));
            id
        }
    };
    if core.mode() == ClockMode::Wall && message.get("timestamp").is_none_or(Value::is_null) {
        let now = format_timestamp(wall_ms());
        message.insert("timestamp".into(), Value::String(now));
    }
    let line = serde_json::to_string(&message).map_err(|e| e.to_string())?;
    if line.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "a message may hold at most {MAX_MESSAGE_BYTES} bytes"
        ));
    }
    let raw = parse_line(&line, 1).map_err(|e| e.message)?;
    Ok((admit(&raw, &line, core)?, id))
}

/// The journal's form of a message the reader accepted, unless its time is
/// too far ahead of the deployment's clock (`--clock events`).
fn admit(raw: &RawEvent<'_>, line: &str, core: &dyn Gate) -> Result<Incoming, String> {
    if core.mode() == ClockMode::Events
        && let Some(clock) = core.clock()
        && raw.timestamp_ms.saturating_sub(clock) > core.max_clock_jump_ms()
    {
        return Err(format!(
            "`timestamp` {} is too far ahead of the clock ({})",
            format_timestamp(raw.timestamp_ms),
            format_timestamp(clock)
        ));
    }
    Ok(Incoming {
        kind: raw.kind.name(),
        user_key: raw.user_key.to_string(),
        message_id: raw.message_id.as_deref().unwrap_or_default().to_string(),
        timestamp_ms: raw.timestamp_ms,
        line: line.to_string(),
    })
}

pub(super) async fn journal(core: &dyn Gate, messages: Vec<Incoming>) -> Result<(), Response> {
    let mut kinds: Vec<(&'static str, u64)> = Vec::new();
    for m in &messages {
        match kinds.iter_mut().find(|(k, _)| *k == m.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((m.kind, 1)),
        }
    }
    match core.append(messages).await {
        Ok(()) => {
            for (kind, n) in kinds {
                ::metrics::counter!(metrics::INGESTED, "type" => kind).increment(n);
            }
            Ok(())
        }
        Err(IngestError::Overloaded) => {
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is behind; retry shortly",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Err(response)
        }
        Err(IngestError::Unavailable(why)) => Err(error(StatusCode::SERVICE_UNAVAILABLE, why)),
    }
}

const KINDS: [&str; 6] = ["track", "identify", "page", "screen", "group", "alias"];

pub(super) async fn single<A: Ingesting>(
    State(app): State<Arc<A>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !KINDS.contains(&kind.as_str()) {
        return not_found().await;
    }
    let text = match body_text(&headers, body) {
        Ok(text) => text,
        Err(response) => return response,
    };
    let message = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return bad_message(0, "the body must be one JSON object"),
        Err(e) => return bad_message(0, format!("the body is not JSON: {e}")),
    };
    if !authorised(app.access(), &headers, &message) {
        return error(StatusCode::UNAUTHORIZED, "a valid write key is required");
    }
    let (incoming, id) = match prepare(message, Some(&kind), app.gate()) {
        Ok(ready) => ready,
        Err(why) => return bad_message(0, why),
    };
    match journal(app.gate(), vec![incoming]).await {
        Ok(()) => axum::Json(json!({ "success": true, "messageId": id })).into_response(),
        Err(response) => response,
    }
}

/// `/v1/batch`'s body, its messages kept as the text they were sent as.
#[derive(Deserialize)]
struct RawBatch<'a> {
    #[serde(borrow)]
    batch: Vec<&'a serde_json::value::RawValue>,
    #[serde(rename = "writeKey")]
    write_key: Option<String>,
}

pub(super) async fn batch<A: Ingesting>(
    State(app): State<Arc<A>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let text = match body_text(&headers, body) {
        Ok(text) => text,
        Err(response) => return response,
    };
    // Most bodies are a list of complete messages: read them without
    // building a tree of each. Anything else takes the general path, which
    // also words the errors.
    let Ok(raw) = serde_json::from_str::<RawBatch<'_>>(&text) else {
        return batch_of_values(&*app, &headers, &text).await;
    };
    let mut keys = Map::new();
    if let Some(key) = raw.write_key {
        keys.insert("writeKey".into(), Value::String(key));
    }
    if !authorised(app.access(), &headers, &keys) {
        return error(StatusCode::UNAUTHORIZED, "a valid write key is required");
    }
    let gate = app.gate();
    let prepared = raw.batch.iter().map(|message| {
        prepare_raw(message.get(), gate).unwrap_or_else(|| {
            match serde_json::from_str::<Value>(message.get()) {
                Ok(Value::Object(map)) => prepare_typed(map, gate),
                _ => Err("a message must be a JSON object".to_string()),
            }
        })
    });
    journal_batch(gate, prepared).await
}

/// Journals a batch's messages, all or nothing: the first that could not
/// be prepared is the request's 400, named by its index.
async fn journal_batch(
    core: &dyn Gate,
    prepared: impl Iterator<Item = Result<(Incoming, String), String>>,
) -> Response {
    let mut ready = Vec::new();
    let mut ids = Vec::new();
    for (i, message) in prepared.enumerate() {
        match message {
            Ok((incoming, id)) => {
                ready.push(incoming);
                ids.push(id);
            }
            Err(why) => return bad_message(i, why),
        }
    }
    match journal(core, ready).await {
        Ok(()) => axum::Json(json!({ "success": true, "messageIds": ids })).into_response(),
        Err(response) => response,
    }
}

/// A batch message with its `type` checked, then [`prepare`]d.
fn prepare_typed(
    message: Map<String, Value>,
    core: &dyn Gate,
) -> Result<(Incoming, String), String> {
    match message.get("type").and_then(Value::as_str) {
        Some(kind) if KINDS.contains(&kind) => prepare(message, None, core),
        Some(kind) => Err(format!("unknown message `type` `{kind}`")),
        None => Err("missing `type`".to_string()),
    }
}

/// `/v1/batch` over a JSON tree: the general path, and its errors.
async fn batch_of_values(app: &dyn Ingesting, headers: &HeaderMap, text: &str) -> Response {
    let mut envelope = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return bad_message(0, "the body must be a JSON object with a `batch` list"),
        Err(e) => return bad_message(0, format!("the body is not JSON: {e}")),
    };
    if !authorised(app.access(), headers, &envelope) {
        return error(StatusCode::UNAUTHORIZED, "a valid write key is required");
    }
    let Some(Value::Array(items)) = envelope.remove("batch") else {
        return bad_message(0, "the body has no `batch` list");
    };
    let gate = app.gate();
    let prepared = items.into_iter().map(|item| match item {
        Value::Object(message) => prepare_typed(message, gate),
        _ => Err("a message must be a JSON object".to_string()),
    });
    journal_batch(gate, prepared).await
}

#[derive(Deserialize)]
pub(super) struct FeedQuery {
    pub(super) after: Option<u64>,
    pub(super) limit: Option<usize>,
    pub(super) wait: Option<u64>,
}

/// One line of the feed: simulate's line with `seq` first and nothing
/// else added.
pub(super) fn feed_line(out: &mut String, seq: u64, line: &str) {
    out.push_str(&format!("{{\"seq\":{seq},"));
    out.push_str(line.strip_prefix('{').unwrap_or(line));
    out.push('\n');
}

async fn actions(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<FeedQuery>,
) -> Response {
    if !admin_allowed(&app.access, &headers) {
        return error(StatusCode::UNAUTHORIZED, "the admin token is required");
    }
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(1_000).clamp(1, MAX_FEED_LIMIT);
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(MAX_FEED_WAIT_S));
    let mut seq = app.core.seq();
    if *seq.borrow() <= after && !wait.is_zero() {
        let _ = tokio::time::timeout(wait, seq.wait_for(|&s| s > after)).await;
    }
    let storage = app.core.storage().clone();
    if let Ok(pruned) = storage.pruned_through()
        && after < pruned
    {
        return error(
            StatusCode::GONE,
            format!(
                "the actions up to seq {pruned} are past the feed's retention; read from \
                 `after={pruned}`"
            ),
        );
    }
    let read = tokio::task::spawn_blocking(move || storage.actions_after(after, limit)).await;
    let rows = match read {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut out = String::new();
    for (seq, line) in rows {
        feed_line(&mut out, seq, &line);
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from(out))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    to: String,
}

async fn clock(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    if !admin_allowed(&app.access, &headers) {
        return error(StatusCode::UNAUTHORIZED, "the admin token is required");
    }
    if app.core.mode() != ClockMode::Events {
        return error(
            StatusCode::CONFLICT,
            "the clock moves by itself with `--clock wall`; `/admin/clock` is for `--clock events`",
        );
    }
    let to = match clock_target(&body) {
        Ok(to) => to,
        Err(response) => return response,
    };
    match app.core.advance(to).await {
        Ok(state) => clock_answer(state),
        Err(IngestError::Overloaded) => error(StatusCode::SERVICE_UNAVAILABLE, "busy"),
        Err(IngestError::Unavailable(why)) => error(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// `POST /admin/clock`'s body read, or its 400.
pub(super) fn clock_target(body: &[u8]) -> Result<ClockTo, Response> {
    match serde_json::from_slice::<ClockBody>(body) {
        Ok(ClockBody { to }) if to == "end" => Ok(ClockTo::End),
        Ok(ClockBody { to }) => match parse_timestamp(&to) {
            Some(t) => Ok(ClockTo::At(t)),
            None => Err(error(
                StatusCode::BAD_REQUEST,
                format!("`{to}` is neither an RFC 3339 timestamp nor `end`"),
            )),
        },
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("the body must be {{\"to\": \"<RFC 3339>\" | \"end\"}}: {e}"),
        )),
    }
}

/// `POST /admin/clock`'s answer, once every action of the advance is
/// committed.
pub(super) fn clock_answer(state: ClockState) -> Response {
    axum::Json(json!({
        "now": state.now.map(format_timestamp),
        "active_instances": state.active_instances,
        "pending_timers": state.pending_timers,
    }))
    .into_response()
}

async fn render_metrics(State(app): State<Arc<App>>) -> Response {
    let Some(handle) = app.metrics else {
        return error(
            StatusCode::NOT_FOUND,
            "metrics go to the process's own recorder",
        );
    };
    let storage = app.core.storage().clone();
    if let Ok(Ok(entries)) = tokio::task::spawn_blocking(move || storage.journal_len()).await {
        ::metrics::gauge!(metrics::JOURNAL_ENTRIES).set(entries as f64);
    }
    ::metrics::gauge!(metrics::PENDING).set(app.core.pending() as f64);
    ::metrics::gauge!(metrics::CHECKPOINT_AGE).set(app.core.checkpoint_age_s());
    for (journey, n) in app.core.active_instances() {
        ::metrics::gauge!(metrics::ACTIVE, "journey" => journey.to_string()).set(n as f64);
    }
    handle.run_upkeep();
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(Body::from(handle.render()))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}
