//! Provider `google_ads`: the journeys' audiences synced to Google Ads
//! Customer Match user lists through the Google Ads API (REST). Each batch
//! ([`super::audience`]) is one offline user data job: `create` (type
//! `CUSTOMER_MATCH_USER_LIST`, the list in its metadata), `addOperations`
//! (one `create` or `remove` operation per customer, with
//! `userIdentifiers` `hashedEmail` — SHA-256 of the trimmed, lowercased
//! email — and `hashedPhoneNumber` — SHA-256 of the number in E.164), then
//! `run`. Every request carries `developer-token` and an OAuth2 access
//! token (`Authorization: Bearer`) from the refresh token, renewed 5
//! minutes before it ends. docs/delivery-providers.md tells the set-up.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::audience::{self, AudienceProvider, Batch, Common, Op};
use super::http::{self, Answer, Clock};
use super::{BoxFuture, Outcome};

/// The Google Ads API, unless `base_url` says otherwise (the version is
/// part of it).
const DEFAULT_BASE_URL: &str = "https://googleads.googleapis.com/v21";
/// Google's OAuth2 token endpoint.
const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The most operations one `addOperations` takes.
pub const MAX_BATCH: usize = 10_000;
/// A token is replaced this long before it ends.
const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;

/// The `[audiences.<name>]` keys of a `google_ads` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    customer_id: String,
    login_customer_id: Option<String>,
    developer_token: String,
    client_id: String,
    client_secret: String,
    refresh_token: String,
    audiences: Option<BTreeMap<String, String>>,
    base_url: Option<String>,
    token_url: Option<String>,
    batch_size: Option<usize>,
    batch_wait: Option<String>,
}

/// Syncs audiences to Customer Match lists: the constructors of its
/// [`AudienceProvider`].
pub enum GoogleAdsProvider {}

struct AccessToken {
    value: String,
    expires_ms: i64,
}

/// What the requests need.
struct Endpoint {
    client: reqwest::Client,
    base: String,
    token_url: String,
    customer_id: String,
    login_customer_id: Option<String>,
    developer_token: String,
    client_id: String,
    client_secret: String,
    refresh_token: String,
    token: Mutex<Option<AccessToken>>,
    clock: Clock,
}

/// An id as Google Ads shows it (`123-456-7890`), as its API wants it.
fn customer_id(key: &str, text: &str) -> Result<String, String> {
    let id: String = text.chars().filter(|c| *c != '-').collect();
    if audience::digits(&id) && id.len() == 10 {
        Ok(id)
    } else {
        Err(format!(
            "`{key}` is not a Google Ads customer id (10 digits, `123-456-7890`)"
        ))
    }
}

impl GoogleAdsProvider {
    /// The provider of one `[audiences.<name>]` table: `customer_id`,
    /// `developer_token`, `client_id`, `client_secret`, `refresh_token`,
    /// `audiences` (the journeys' audience names to user list ids), and
    /// optionally `login_customer_id` (a manager account), `base_url`,
    /// `token_url`, `batch_size` (1 to 10,000, default 500) and
    /// `batch_wait` (default `1s`).
    pub fn from_settings(
        table: &toml::Table,
        client: reqwest::Client,
    ) -> Result<AudienceProvider, String> {
        Self::with_clock(table, client, http::wall_clock())
    }

    /// The same, reading `clock` for its tokens' ages (tests).
    pub fn with_clock(
        table: &toml::Table,
        client: reqwest::Client,
        clock: Clock,
    ) -> Result<AudienceProvider, String> {
        let s: Settings = http::settings(table)?;
        for (key, value) in [
            ("developer_token", &s.developer_token),
            ("client_id", &s.client_id),
            ("client_secret", &s.client_secret),
            ("refresh_token", &s.refresh_token),
        ] {
            if value.trim().is_empty() {
                return Err(format!("`{key}` is empty"));
            }
        }
        let common = Common::read(
            s.audiences,
            s.batch_size,
            s.batch_wait.as_deref(),
            MAX_BATCH,
            audience::digits,
        )?;
        let endpoint = Arc::new(Endpoint {
            client,
            base: http::base_url(
                "base_url",
                s.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            )?,
            token_url: http::base_url(
                "token_url",
                s.token_url.as_deref().unwrap_or(DEFAULT_TOKEN_URL),
            )?,
            customer_id: customer_id("customer_id", &s.customer_id)?,
            login_customer_id: s
                .login_customer_id
                .as_deref()
                .map(|id| customer_id("login_customer_id", id))
                .transpose()?,
            developer_token: s.developer_token,
            client_id: s.client_id,
            client_secret: s.client_secret,
            refresh_token: s.refresh_token,
            token: Mutex::new(None),
            clock,
        });
        let send: audience::SendBatch =
            Arc::new(move |batch: Batch| -> BoxFuture<'static, Outcome> {
                let endpoint = endpoint.clone();
                Box::pin(async move { endpoint.send(batch).await })
            });
        Ok(AudienceProvider::new(common, send))
    }
}

/// The `addOperations` body of a batch: one operation per customer.
pub fn operations(batch: &Batch) -> Value {
    let operations: Vec<Value> = batch
        .users
        .iter()
        .map(|u| {
            let mut identifiers = Vec::new();
            if let Some(email) = &u.email {
                identifiers.push(json!({"hashedEmail": email}));
            }
            if let Some(phone) = &u.phone_e164 {
                identifiers.push(json!({"hashedPhoneNumber": phone}));
            }
            let kind = match batch.op {
                Op::Add => "create",
                Op::Remove => "remove",
            };
            json!({ kind: {"userIdentifiers": identifiers} })
        })
        .collect();
    json!({ "operations": operations })
}

#[derive(Deserialize)]
struct Granted {
    access_token: String,
    expires_in: i64,
}

#[derive(Deserialize)]
struct Created {
    #[serde(rename = "resourceName")]
    resource_name: String,
}

impl Endpoint {
    /// A token good for a while yet: the one kept, else a new one.
    async fn access_token(&self) -> Result<String, Outcome> {
        let mut kept = self.token.lock().await;
        let now = (self.clock)();
        if let Some(token) = kept.as_ref()
            && now + REFRESH_MARGIN_MS < token.expires_ms
        {
            return Ok(token.value.clone());
        }
        let response = self
            .client
            .post(&self.token_url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
                ("refresh_token", &self.refresh_token),
            ])
            .send()
            .await;
        let answer = match response {
            Ok(response) => Answer::read(response).await,
            Err(e) => Err(e),
        }
        .map_err(|e| http::transport_error("google_ads: the token endpoint", &e))?;
        if !answer.status.is_success() {
            let error = format!(
                "google_ads: the token endpoint refused the refresh token: {}: {}",
                answer.status.as_u16(),
                answer.body_excerpt()
            );
            return Err(if transient(answer.status, None) {
                answer.retry(error, now)
            } else {
                Outcome::Fail { error }
            });
        }
        let granted: Granted = serde_json::from_str(&answer.body).map_err(|e| Outcome::Retry {
            error: format!("google_ads: the token endpoint's answer does not read: {e}"),
            after: None,
        })?;
        let value = granted.access_token.clone();
        *kept = Some(AccessToken {
            value: granted.access_token,
            expires_ms: now.saturating_add(granted.expires_in.saturating_mul(1000)),
        });
        Ok(value)
    }

    /// One API call: its answer when 2xx, else the attempt's outcome.
    async fn call(&self, token: &str, path: &str, body: &Value) -> Result<Answer, Outcome> {
        let mut request = self
            .client
            .post(format!("{}/{path}", self.base))
            .bearer_auth(token)
            .header("developer-token", &self.developer_token)
            .json(body);
        if let Some(login) = &self.login_customer_id {
            request = request.header("login-customer-id", login);
        }
        let answer = match request.send().await {
            Ok(response) => Answer::read(response).await,
            Err(e) => Err(e),
        }
        .map_err(|e| http::transport_error("google_ads", &e))?;
        if answer.status.is_success() {
            return Ok(answer);
        }
        if answer.status == reqwest::StatusCode::UNAUTHORIZED {
            // A revoked or expired token: the next attempt gets another.
            *self.token.lock().await = None;
        }
        Err(classify(&answer, (self.clock)()))
    }

    async fn send(&self, batch: Batch) -> Outcome {
        match self.job(&batch).await {
            Ok(job) => Outcome::Sent {
                response: format!("{job} running, {} customers", batch.users.len()),
            },
            Err(outcome) => outcome,
        }
    }

    /// Creates, fills and runs the batch's job; its resource name.
    async fn job(&self, batch: &Batch) -> Result<String, Outcome> {
        let token = self.access_token().await?;
        let cid = &self.customer_id;
        let create = json!({"job": {
            "type": "CUSTOMER_MATCH_USER_LIST",
            "customerMatchUserListMetadata": {
                "userList": format!("customers/{cid}/userLists/{}", batch.list)
            }
        }});
        let created = self
            .call(
                &token,
                &format!("customers/{cid}/offlineUserDataJobs:create"),
                &create,
            )
            .await?;
        let job = serde_json::from_str::<Created>(&created.body)
            .map_err(|e| Outcome::Retry {
                error: format!("google_ads: the created job does not read: {e}"),
                after: None,
            })?
            .resource_name;
        self.call(&token, &format!("{job}:addOperations"), &operations(batch))
            .await?;
        self.call(&token, &format!("{job}:run"), &json!({})).await?;
        Ok(job)
    }
}

/// Google's error body: `{"error": {"code", "message", "status"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ApiError,
}

#[derive(Deserialize)]
struct ApiError {
    message: Option<String>,
    status: Option<String>,
}

/// 408, 409 (a job of the same list being changed), 429 and 5xx, and the
/// statuses that say so, are passing.
fn transient(status: reqwest::StatusCode, grpc: Option<&str>) -> bool {
    status.is_server_error()
        || matches!(status.as_u16(), 408 | 409 | 429)
        || matches!(
            grpc,
            Some(
                "RESOURCE_EXHAUSTED" | "UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED" | "ABORTED"
            )
        )
}

/// What an error answer means for the attempt.
fn classify(answer: &Answer, now_ms: i64) -> Outcome {
    let parsed = serde_json::from_str::<ErrorBody>(&answer.body).ok();
    let grpc = parsed.as_ref().and_then(|e| e.error.status.as_deref());
    let error = match (
        grpc,
        parsed.as_ref().and_then(|e| e.error.message.as_deref()),
    ) {
        (Some(grpc), Some(text)) => {
            format!("google_ads: {} {grpc}: {text}", answer.status.as_u16())
        }
        _ => format!(
            "google_ads: {}: {}",
            answer.status.as_u16(),
            answer.body_excerpt()
        ),
    };
    if transient(answer.status, grpc) || answer.status == reqwest::StatusCode::UNAUTHORIZED {
        answer.retry(error, now_ms)
    } else {
        Outcome::Fail { error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::delivery::audience::Hashed;

    const GOOD: &str = "customer_id = \"123-456-7890\"\ndeveloper_token = \"dev\"\n\
                        client_id = \"cid\"\nclient_secret = \"sec\"\nrefresh_token = \"ref\"\n\
                        audiences = { cart = \"555\" }";

    #[test]
    fn settings_are_checked() {
        let parse = |text: &str| {
            GoogleAdsProvider::from_settings(&text.parse().unwrap(), reqwest::Client::new()).err()
        };
        assert_eq!(parse(GOOD), None);
        assert!(
            parse(&GOOD.replace("123-456-7890", "12345"))
                .is_some_and(|e| e.contains("customer_id"))
        );
        assert!(
            parse(&GOOD.replace("\"dev\"", "\"\"")).is_some_and(|e| e.contains("developer_token"))
        );
        assert!(
            parse(&GOOD.replace("refresh_token = \"ref\"\n", ""))
                .is_some_and(|e| e.contains("refresh_token"))
        );
        assert!(
            parse(&GOOD.replace("\"555\"", "\"list\""))
                .is_some_and(|e| e.contains("audiences.cart"))
        );
        assert!(
            parse(&format!("{GOOD}\nlogin_customer_id = \"x\""))
                .is_some_and(|e| e.contains("login_customer_id"))
        );
        assert!(
            parse(&format!("{GOOD}\ntoken_url = \"nope\""))
                .is_some_and(|e| e.contains("token_url"))
        );
    }

    #[test]
    fn operations_carry_the_hashed_identifiers() {
        let batch = Batch {
            list: "555".into(),
            op: Op::Remove,
            users: vec![
                Hashed {
                    email: Some("e".into()),
                    phone_e164: Some("p".into()),
                    phone_digits: Some("d".into()),
                },
                Hashed {
                    email: None,
                    phone_e164: Some("q".into()),
                    phone_digits: Some("r".into()),
                },
            ],
        };
        assert_eq!(
            operations(&batch),
            json!({"operations": [
                {"remove": {"userIdentifiers": [{"hashedEmail": "e"}, {"hashedPhoneNumber": "p"}]}},
                {"remove": {"userIdentifiers": [{"hashedPhoneNumber": "q"}]}},
            ]})
        );
    }

    #[test]
    fn errors_are_classified() {
        let answer = |status: u16, body: &str| Answer {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers: reqwest::header::HeaderMap::new(),
            body: body.into(),
        };
        let exhausted =
            r#"{"error":{"code":429,"message":"Too many requests","status":"RESOURCE_EXHAUSTED"}}"#;
        assert!(matches!(
            classify(&answer(429, exhausted), 0),
            Outcome::Retry { .. }
        ));
        let invalid = r#"{"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT"}}"#;
        match classify(&answer(400, invalid), 0) {
            Outcome::Fail { error } => assert!(error.contains("INVALID_ARGUMENT"), "{error}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(&answer(401, "{}"), 0),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify(&answer(503, ""), 0),
            Outcome::Retry { .. }
        ));
    }
}
