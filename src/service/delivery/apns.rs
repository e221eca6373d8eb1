//! Provider `apns`: push to Apple devices through APNs over HTTP/2,
//! authorised by an ES256 provider token that is signed anew every
//! [`TOKEN_LIFETIME_MS`]. docs/delivery-providers.md tells the set-up.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::http::{self, Answer, Clock};
use super::{BoxFuture, Message, Outcome, Provider};

/// APNs' production server, unless `base_url` says otherwise (the
/// development one is `https://api.sandbox.push.apple.com`).
const DEFAULT_BASE_URL: &str = "https://api.push.apple.com";

/// How long one provider token is used. Apple refuses a token older than
/// an hour and one refreshed more often than every 20 minutes.
pub const TOKEN_LIFETIME_MS: i64 = 45 * 60 * 1000;

/// The namespace of the `apns-id`s: `apns-id` = UUIDv5(this, message_id),
/// so every attempt of a message carries the same id, and anyone can
/// recompute it from the message id.
pub const APNS_ID_NAMESPACE: Uuid = Uuid::from_u128(0xe74a643f_6cbf_4de3_83aa_e382e8cdc100);

/// The `[channels.<name>]` keys of an `apns` channel.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    key_id: String,
    team_id: String,
    private_key: String,
    topic: String,
    base_url: Option<String>,
}

/// The claims of a provider token.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
}

/// A provider token and when it was signed.
struct ProviderToken {
    value: String,
    issued_ms: i64,
}

/// Sends push messages through APNs.
pub struct ApnsProvider {
    client: reqwest::Client,
    key: EncodingKey,
    key_id: String,
    team_id: String,
    topic: String,
    base_url: String,
    token: Mutex<Option<ProviderToken>>,
    clock: Clock,
}

impl ApnsProvider {
    /// The provider of one channel, from its settings: `key_id`, `team_id`,
    /// `private_key` (the `.p8` file's path, or its PEM), `topic` (the
    /// app's bundle id), and optionally `base_url`. The client must speak
    /// HTTP/2 (reqwest's `http2` feature): APNs speaks nothing else.
    pub fn from_settings(table: &toml::Table, client: reqwest::Client) -> Result<Self, String> {
        let s: Settings = http::settings(table)?;
        for (key, value) in [
            ("key_id", &s.key_id),
            ("team_id", &s.team_id),
            ("topic", &s.topic),
        ] {
            if value.trim().is_empty() {
                return Err(format!("`{key}` is empty"));
            }
        }
        let pem = http::inline_or_file("private_key", &s.private_key, "-----BEGIN")?;
        let key = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| {
            format!("`private_key` is not an EC P-256 key in PEM (a `.p8` file): {e}")
        })?;
        let base_url = http::base_url(
            "base_url",
            s.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
        )?;
        if !base_url.starts_with("https://") {
            return Err(format!(
                "`base_url = \"{base_url}\"`: APNs speaks HTTP/2 over TLS only (an https:// URL)"
            ));
        }
        Ok(ApnsProvider {
            client,
            key,
            key_id: s.key_id,
            team_id: s.team_id,
            topic: s.topic,
            base_url,
            token: Mutex::new(None),
            clock: http::wall_clock(),
        })
    }

    /// The same provider reading another clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The provider token: the one kept while younger than
    /// [`TOKEN_LIFETIME_MS`] and not `refused` (the one APNs just called
    /// expired), else a new one.
    async fn provider_token(&self, refused: Option<&str>) -> Result<String, Outcome> {
        let mut kept = self.token.lock().await;
        let now = (self.clock)();
        if let Some(token) = kept.as_ref()
            && now - token.issued_ms < TOKEN_LIFETIME_MS
            && refused != Some(token.value.as_str())
        {
            return Ok(token.value.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.typ = None;
        header.kid = Some(self.key_id.clone());
        let claims = Claims {
            iss: &self.team_id,
            iat: now.div_euclid(1000),
        };
        let value =
            jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| Outcome::Fail {
                error: format!("apns: cannot sign the provider token: {e}"),
            })?;
        *kept = Some(ProviderToken {
            value: value.clone(),
            issued_ms: now,
        });
        Ok(value)
    }

    async fn send(&self, message: &Message) -> Outcome {
        let device = match &message.to {
            serde_json::Value::String(token) if is_device_token(token) => token.as_str(),
            serde_json::Value::String(_) => {
                return Outcome::Fail {
                    error: "apns: `to` is not a device token (hex digits)".to_string(),
                };
            }
            _ => {
                return Outcome::Fail {
                    error: "apns: the message has no device token (`to`)".to_string(),
                };
            }
        };
        let url = format!("{}/3/device/{device}", self.base_url);
        let body = payload(message);
        let mut refused: Option<String> = None;
        loop {
            let token = match self.provider_token(refused.as_deref()).await {
                Ok(token) => token,
                Err(outcome) => return outcome,
            };
            let response = self
                .client
                .post(&url)
                .version(reqwest::Version::HTTP_2)
                .header("authorization", format!("bearer {token}"))
                .header("apns-id", apns_id(&message.message_id).to_string())
                .header("apns-topic", &self.topic)
                .header("apns-push-type", "alert")
                .json(&body)
                .send()
                .await;
            let answer = match response {
                Ok(response) => Answer::read(response).await,
                Err(e) => Err(e),
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => return http::transport_error("apns", &e),
            };
            let reason = reason(&answer);
            // A token APNs calls expired (a clock ahead of Apple's, say):
            // one more try with a new one.
            if answer.status == StatusCode::FORBIDDEN
                && reason == "ExpiredProviderToken"
                && refused.is_none()
            {
                refused = Some(token);
                continue;
            }
            return classify(&answer, &reason, (self.clock)());
        }
    }
}

impl Provider for ApnsProvider {
    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(message))
    }
}

/// The `apns-id` of every attempt of one message.
pub fn apns_id(message_id: &str) -> Uuid {
    Uuid::new_v5(&APNS_ID_NAMESPACE, message_id.as_bytes())
}

/// A device token: hex digits (64 today; Apple says their length may
/// grow), nothing that could leave the URL's path.
fn is_device_token(token: &str) -> bool {
    !token.is_empty() && token.len() <= 200 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The notification: the template's `subject` as the alert's title, its
/// `body` as the alert's body, and the message named beside `aps` so the
/// app can tell a resent message from a new one.
fn payload(message: &Message) -> serde_json::Value {
    let mut alert = serde_json::Map::new();
    if let Some(title) = &message.subject {
        alert.insert("title".to_string(), json!(title));
    }
    if let Some(body) = &message.body {
        alert.insert("body".to_string(), json!(body));
    }
    json!({
        "aps": { "alert": alert },
        "message_id": message.message_id,
        "journey": message.journey,
        "template": message.template,
    })
}

/// The `reason` of an error answer (`{"reason": "BadDeviceToken"}`).
fn reason(answer: &Answer) -> String {
    #[derive(Deserialize)]
    struct Reason {
        reason: String,
    }
    serde_json::from_str::<Reason>(&answer.body)
        .map_or_else(|_| answer.body_excerpt(), |r| r.reason)
}

/// What APNs' answer means: 200 sent (its `apns-id` kept); 429
/// (`TooManyRequests`, `TooManyProviderTokenUpdates`), 5xx
/// (`InternalServerError`, `ServiceUnavailable`, `Shutdown`) and 400
/// `IdleTimeout` again later; any other 4xx (`BadDeviceToken`,
/// `DeviceTokenNotForTopic`, 410 `Unregistered`, `PayloadTooLarge`, a
/// refused provider token, ...) never.
fn classify(answer: &Answer, reason: &str, now_ms: i64) -> Outcome {
    let status = answer.status;
    if status.is_success() {
        let id = answer.headers.get("apns-id").and_then(|v| v.to_str().ok());
        return Outcome::Sent {
            response: id.map_or_else(|| status.to_string(), |id| format!("apns-id {id}")),
        };
    }
    let error = format!("apns: {} {reason}", status.as_u16());
    let again = status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
        || reason == "IdleTimeout";
    if again {
        answer.retry(error, now_ms)
    } else {
        Outcome::Fail { error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apns_ids_are_uuid_v5_of_the_message_id() {
        let id = apns_id("welcome:ana:1:0");
        assert_eq!(id.get_version_num(), 5);
        // Python's `uuid.uuid5(UUID("e74a643f-…"), "welcome:ana:1:0")`.
        assert_eq!(id.to_string(), "48bc911b-65cc-5422-8d76-ae283446679d");
        assert_eq!(id, apns_id("welcome:ana:1:0"));
        assert_ne!(id, apns_id("welcome:ana:1:1"));
        assert_eq!(
            APNS_ID_NAMESPACE.to_string(),
            "e74a643f-6cbf-4de3-83aa-e382e8cdc100"
        );
    }

    #[test]
    fn device_tokens_are_hex() {
        assert!(is_device_token(&"ab12".repeat(16)));
        assert!(!is_device_token("../../3/device/x"));
        assert!(!is_device_token(""));
    }
}
