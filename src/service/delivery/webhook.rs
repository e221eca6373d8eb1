//! Provider `webhook`: `POST` of the send action's JSON line to a URL,
//! signed per Standard Webhooks (SERVICE.md §6): `webhook-id` = the
//! `message_id` verbatim (also `Idempotency-Key`), `webhook-timestamp` =
//! the attempt's Unix seconds, `webhook-signature` = `v1,` +
//! base64(HMAC-SHA256(key, `{id}.{timestamp}.{body}`)), the key being the
//! base64 after `whsec_` in the secret. The signature is the
//! `standardwebhooks` crate's, by the specification's authors.
//!
//! 2xx is sent; 408, 425, 429 and 5xx are transient (with `Retry-After`),
//! as are a connection error, a reset and a timeout; a redirect and every
//! other 4xx are permanent.

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use standardwebhooks::Webhook;

use super::{BoxFuture, Message, Outcome, Provider, answer_excerpt, request_error, retry_after};
use crate::service::core::wall_ms;

/// The prefix of a Standard Webhooks symmetric secret.
const SECRET_PREFIX: &str = "whsec_";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Where to post.
    url: String,
    /// `whsec_` + base64 of the key.
    secret: String,
}

pub struct WebhookProvider {
    url: reqwest::Url,
    signer: Webhook,
    client: reqwest::Client,
}

impl WebhookProvider {
    pub fn from_settings(
        settings: &toml::Table,
        client: reqwest::Client,
    ) -> Result<WebhookProvider, String> {
        let Settings { url, secret } = super::settings(settings)?;
        let url = reqwest::Url::parse(&url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or("`url` is not an http:// or https:// URL")?;
        Ok(WebhookProvider {
            url,
            signer: signer(&secret)?,
            client,
        })
    }
}

/// The signer of a `whsec_` secret, or why it is not one.
fn signer(secret: &str) -> Result<Webhook, String> {
    let wrong =
        "`secret` must be `whsec_` followed by the key in base64 (a Standard Webhooks secret)";
    let key = secret.strip_prefix(SECRET_PREFIX).ok_or(wrong)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| wrong)?;
    if bytes.is_empty() {
        return Err(wrong.into());
    }
    Webhook::from_bytes(bytes).map_err(|_| wrong.into())
}

impl Provider for WebhookProvider {
    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Outcome> {
        Box::pin(self.post(message))
    }
}

impl WebhookProvider {
    async fn post(&self, message: &Message) -> Outcome {
        let Ok(id) = HeaderValue::from_str(&message.message_id) else {
            return Outcome::Fail {
                error: "the message id cannot be sent as an HTTP header".into(),
            };
        };
        let timestamp = wall_ms() / 1_000;
        let signature =
            match self
                .signer
                .sign(&message.message_id, timestamp, message.line.as_bytes())
            {
                Ok(signature) => signature,
                Err(e) => {
                    return Outcome::Fail {
                        error: e.to_string(),
                    };
                }
            };
        let sent = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", id.clone())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("idempotency-key", id)
            .body(message.line.clone())
            .send()
            .await;
        match sent {
            Ok(response) => classify(response).await,
            Err(e) => Outcome::Retry {
                error: request_error(e),
                after: None,
            },
        }
    }
}

/// What an answer means.
async fn classify(response: reqwest::Response) -> Outcome {
    let status = response.status();
    let after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, wall_ms()));
    let answer = answer_excerpt(response).await;
    if status.is_success() {
        Outcome::Sent { response: answer }
    } else if transient(status) {
        Outcome::Retry {
            error: answer,
            after,
        }
    } else if status.is_redirection() {
        Outcome::Fail {
            error: format!("{answer} (redirects are not followed: configure the final URL)"),
        }
    } else {
        Outcome::Fail { error: answer }
    }
}

/// Statuses worth another attempt.
fn transient(status: StatusCode) -> bool {
    status.is_server_error()
        || matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY | StatusCode::TOO_MANY_REQUESTS
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks libraries.
    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        let signer =
            signer("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap_or_else(|e| panic!("{e}"));
        let signature = signer
            .sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                br#"{"email":"test@example.com","username":"test_user"}"#,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(signature, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn a_secret_must_be_whsec_and_base64() {
        for bad in [
            "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "whsec_",
            "whsec_%%%",
            "whsec",
        ] {
            assert!(signer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_are_transient_or_permanent() {
        for code in [408, 425, 429, 500, 502, 503, 504] {
            assert!(
                transient(StatusCode::from_u16(code).unwrap_or_default()),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 410, 422, 301] {
            assert!(
                !transient(StatusCode::from_u16(code).unwrap_or_default()),
                "{code}"
            );
        }
    }
}
