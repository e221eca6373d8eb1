//! `POST /webhooks/twilio`: Twilio's delivery status callbacks (SERVICE.md
//! §6, provider `twilio`). A callback is used only when its
//! `X-Twilio-Signature` is Twilio's for the URL the channel configured as
//! `status_callback` (with the request's query) and the form's parameters
//! ([`TwilioProvider::verify_callback`]); then `delivered`, `undelivered`,
//! `failed` and `read` are journaled as `message.delivered`,
//! `message.bounced`, `message.failed` and `message.opened` of the
//! message's recipient ([`status_event`]). Anything else is a 403 that
//! journals nothing.
//!
//! [`TwilioProvider::verify_callback`]: crate::service::delivery::twilio::TwilioProvider::verify_callback

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::http::{Public, error, journal};
use super::tracking_http::{About, outcome_event};
use crate::service::delivery::twilio::status_event;

/// The header Twilio signs its callbacks with.
const SIGNATURE: &str = "x-twilio-signature";

/// `POST /webhooks/twilio`.
pub async fn status<A: Public>(
    State(app): State<Arc<A>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if app.twilio().is_empty() {
        return error(StatusCode::NOT_FOUND, "no channel is bound to `twilio`");
    }
    let signature = headers
        .get(SIGNATURE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let verified = !signature.is_empty()
        && app
            .twilio()
            .iter()
            .any(|twilio| twilio.verify_callback(query.as_deref(), &form, signature));
    if !verified {
        return error(
            StatusCode::FORBIDDEN,
            "`X-Twilio-Signature` is not Twilio's for this request",
        );
    }
    let mut params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    params.extend(form);
    let Some(status) = status_event(&params) else {
        // A step on the way (`queued`, `sent`, ...): nothing to journal.
        return StatusCode::NO_CONTENT.into_response();
    };
    let about = About {
        user_id: &status.user_id,
        message_id: &status.message_id,
        journey: &status.journey,
        template: &status.template,
        channel: &status.channel,
    };
    let outcome = status.event.trim_start_matches("message.");
    let gate = app.gate();
    gate.refresh_clock().await;
    let event = match outcome_event(gate, &about, outcome, status.error.as_deref()) {
        Ok(event) => event,
        // A recipient the reader refuses: Twilio should not retry it.
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    match journal(gate, vec![event]).await {
        // Twilio retries a callback that did not get a 2xx.
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}
