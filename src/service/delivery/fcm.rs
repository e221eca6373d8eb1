//! Provider `fcm`: push through Firebase Cloud Messaging's HTTP v1 API,
//! authorised by an OAuth2 access token that a service-account key earns
//! (a JWT-bearer grant signed RS256), kept until shortly before it
//! expires. docs/delivery-providers.md tells the set-up.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Mutex;

use super::http::{self, Answer, Clock};
use super::{BoxFuture, Message, Outcome, Provider};

/// FCM's API, unless `base_url` says otherwise.
const DEFAULT_BASE_URL: &str = "https://fcm.googleapis.com";
/// Google's token endpoint, when the key names none.
const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The scope a token needs to send.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The grant that trades a signed assertion for a token (RFC 7523).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long an assertion is valid (Google's most).
const ASSERTION_SECS: i64 = 3600;
/// A token is replaced this long before it expires, so no request carries
/// one that expires on the way.
const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;

/// The `[channels.<name>]` keys of an `fcm` channel.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    service_account: String,
    project: Option<String>,
    base_url: Option<String>,
    token_url: Option<String>,
}

/// The fields of a service-account key file this provider reads (the file
/// has more).
#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    project_id: Option<String>,
    token_uri: Option<String>,
}

/// The claims of the assertion.
#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// An access token and when it stops working.
struct AccessToken {
    value: String,
    expires_ms: i64,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct Granted {
    access_token: String,
    expires_in: i64,
}

/// Sends push messages through FCM.
pub struct FcmProvider {
    client: reqwest::Client,
    client_email: String,
    key: EncodingKey,
    key_id: Option<String>,
    token_url: String,
    /// `{base_url}/v1/projects/{project}/messages:send`.
    send_url: String,
    /// One token for every send; the lock makes concurrent sends wait for
    /// one grant rather than each asking for its own.
    token: Mutex<Option<AccessToken>>,
    clock: Clock,
}

impl FcmProvider {
    /// The provider of one channel, from its settings: `service_account`
    /// (the key file's path, or its JSON), and optionally `project`
    /// (default: the key's `project_id`), `base_url` and `token_url`
    /// (default: the key's `token_uri`).
    pub fn from_settings(table: &toml::Table, client: reqwest::Client) -> Result<Self, String> {
        let s: Settings = http::settings(table)?;
        let json = http::inline_or_file("service_account", &s.service_account, "{")?;
        let account: ServiceAccount = serde_json::from_str(&json)
            .map_err(|e| format!("`service_account` is not a service-account key: {e}"))?;
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes()).map_err(|e| {
            format!("`service_account`: its `private_key` is not an RSA key in PEM: {e}")
        })?;
        let project = s
            .project
            .or(account.project_id)
            .filter(|p| !p.trim().is_empty())
            .ok_or("`project` is missing (and the key names no `project_id`)")?;
        if !project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!(
                "`project = \"{project}\"` is not a Firebase project id"
            ));
        }
        let base = http::base_url(
            "base_url",
            s.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
        )?;
        let token_url = s.token_url.or(account.token_uri);
        let token_url = http::base_url(
            "token_url",
            token_url.as_deref().unwrap_or(DEFAULT_TOKEN_URL),
        )?;
        Ok(FcmProvider {
            client,
            client_email: account.client_email,
            key,
            key_id: account.private_key_id,
            token_url,
            send_url: format!("{base}/v1/projects/{project}/messages:send"),
            token: Mutex::new(None),
            clock: http::wall_clock(),
        })
    }

    /// The same provider reading another clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A token good for a while yet: the one kept, unless it is near its
    /// end or is `refused` (the one FCM just turned down), else a new one.
    async fn access_token(&self, refused: Option<&str>) -> Result<String, Outcome> {
        let mut kept = self.token.lock().await;
        let now = (self.clock)();
        if let Some(token) = kept.as_ref()
            && now + REFRESH_MARGIN_MS < token.expires_ms
            && refused != Some(token.value.as_str())
        {
            return Ok(token.value.clone());
        }
        let token = self.grant(now).await?;
        let value = token.value.clone();
        *kept = Some(token);
        Ok(value)
    }

    /// Trades a freshly signed assertion for an access token.
    async fn grant(&self, now_ms: i64) -> Result<AccessToken, Outcome> {
        let iat = now_ms.div_euclid(1000);
        let claims = Assertion {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.token_url,
            iat,
            exp: iat + ASSERTION_SECS,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid.clone_from(&self.key_id);
        let assertion =
            jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| Outcome::Fail {
                error: format!("fcm: cannot sign the token request: {e}"),
            })?;
        let response = self
            .client
            .post(&self.token_url)
            .form(&[("grant_type", GRANT_TYPE), ("assertion", &assertion)])
            .send()
            .await;
        let answer = match response {
            Ok(response) => Answer::read(response).await,
            Err(e) => Err(e),
        }
        .map_err(|e| http::transport_error("fcm: the token endpoint", &e))?;
        if !answer.status.is_success() {
            let error = format!(
                "fcm: the token endpoint refused the service-account key: {}: {}",
                answer.status.as_u16(),
                answer.body_excerpt()
            );
            return Err(if transient(answer.status) {
                answer.retry(error, now_ms)
            } else {
                Outcome::Fail { error }
            });
        }
        let granted: Granted = serde_json::from_str(&answer.body).map_err(|e| Outcome::Retry {
            error: format!("fcm: the token endpoint's answer does not read: {e}"),
            after: None,
        })?;
        Ok(AccessToken {
            value: granted.access_token,
            expires_ms: now_ms.saturating_add(granted.expires_in.saturating_mul(1000)),
        })
    }

    async fn send(&self, message: &Message) -> Outcome {
        let body = match payload(message) {
            Ok(body) => body,
            Err(error) => return Outcome::Fail { error },
        };
        let mut refused: Option<String> = None;
        loop {
            let token = match self.access_token(refused.as_deref()).await {
                Ok(token) => token,
                Err(outcome) => return outcome,
            };
            let response = self
                .client
                .post(&self.send_url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            let answer = match response {
                Ok(response) => Answer::read(response).await,
                Err(e) => Err(e),
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => return http::transport_error("fcm", &e),
            };
            let error = FcmError::of(&answer);
            // An access token FCM no longer takes (revoked, or expired
            // early): one more try with a new one.
            if answer.status == StatusCode::UNAUTHORIZED
                && error.code.as_deref() != Some("THIRD_PARTY_AUTH_ERROR")
                && refused.is_none()
            {
                refused = Some(token);
                continue;
            }
            return classify(&answer, &error, (self.clock)());
        }
    }
}

impl Provider for FcmProvider {
    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(message))
    }
}

/// The request body: the device token, the notification (the template's
/// `subject` as its title, `body` as its body) and `data` naming the
/// message, so the app can tell a resent message from a new one.
fn payload(message: &Message) -> Result<serde_json::Value, String> {
    let token = match &message.to {
        serde_json::Value::String(token) if !token.trim().is_empty() => token.trim(),
        _ => return Err("fcm: the message has no device token (`to`)".to_string()),
    };
    let mut notification = serde_json::Map::new();
    if let Some(title) = &message.subject {
        notification.insert("title".to_string(), json!(title));
    }
    if let Some(body) = &message.body {
        notification.insert("body".to_string(), json!(body));
    }
    let mut fcm = json!({
        "token": token,
        "data": {
            "message_id": message.message_id,
            "journey": message.journey,
            "template": message.template,
        },
    });
    if !notification.is_empty() {
        fcm["notification"] = serde_json::Value::Object(notification);
    }
    Ok(json!({ "message": fcm }))
}

/// What an error answer says: google.rpc.Status's `status` and `message`,
/// and FCM's own `errorCode` from its `details`.
struct FcmError {
    code: Option<String>,
    text: String,
}

impl FcmError {
    fn of(answer: &Answer) -> FcmError {
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
        let error = &body["error"];
        let fcm_code = error["details"].as_array().and_then(|details| {
            details
                .iter()
                .filter(|d| {
                    d["@type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("google.firebase.fcm.v1.FcmError"))
                })
                .find_map(|d| d["errorCode"].as_str())
        });
        let code = fcm_code
            .or_else(|| error["status"].as_str())
            .map(str::to_string);
        let text = error["message"]
            .as_str()
            .map_or_else(|| answer.body_excerpt(), str::to_string);
        FcmError { code, text }
    }
}

/// 429 and 5xx: again later.
fn transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// What FCM's answer means: 2xx sent (its `name` kept); `UNAVAILABLE`,
/// `INTERNAL`, `QUOTA_EXCEEDED` (and any 429 or 5xx) again later, no
/// sooner than `Retry-After`; `UNREGISTERED`, `INVALID_ARGUMENT`,
/// `SENDER_ID_MISMATCH`, `THIRD_PARTY_AUTH_ERROR` (and any other 4xx)
/// never.
fn classify(answer: &Answer, error: &FcmError, now_ms: i64) -> Outcome {
    let status = answer.status;
    if status.is_success() {
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
        let response = body["name"]
            .as_str()
            .map_or_else(|| status.to_string(), str::to_string);
        return Outcome::Sent { response };
    }
    let code = error.code.as_deref().unwrap_or("");
    let text = format!("fcm: {} {code}: {}", status.as_u16(), error.text);
    let again = match code {
        "UNAVAILABLE" | "INTERNAL" | "QUOTA_EXCEEDED" => true,
        "UNREGISTERED" | "INVALID_ARGUMENT" | "SENDER_ID_MISMATCH" | "THIRD_PARTY_AUTH_ERROR" => {
            false
        }
        _ => transient(status),
    };
    if again {
        answer.retry(text, now_ms)
    } else {
        Outcome::Fail { error: text }
    }
}
