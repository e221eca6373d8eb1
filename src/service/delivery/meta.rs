//! Provider `meta`: the journeys' audiences synced to Meta Custom
//! Audiences (Marketing API, `/{custom_audience_id}/users`): an `add` is
//! a `POST`, a `remove` a `DELETE`, of
//! `{"payload": {"schema": ["EMAIL_SHA256", "PHONE_SHA256"], "data": [[email, phone], ...]}}`
//! with each value the lowercase hex SHA-256 of the normalised email
//! (trimmed, lowercased) and phone (digits only, country code first), or
//! `""` when the customer has none; batched ([`super::audience`]).
//! docs/delivery-providers.md tells the set-up.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::audience::{self, AudienceProvider, Batch, Common, Op};
use super::http::{self, Answer, Clock};
use super::{BoxFuture, Outcome};

/// The Graph API, unless `base_url` says otherwise (the version is part
/// of it).
const DEFAULT_BASE_URL: &str = "https://graph.facebook.com/v23.0";
/// The most customers Meta takes in one request.
pub const MAX_BATCH: usize = 10_000;
/// Graph API error codes that mean "not now": 1 and 2 (temporary), 4, 17,
/// 32, 341, 613 (rate limits), 80003 (Custom Audience rate limit).
const TRANSIENT_CODES: [u64; 8] = [1, 2, 4, 17, 32, 341, 613, 80_003];

/// The `[audiences.<name>]` keys of a `meta` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    access_token: String,
    audiences: Option<BTreeMap<String, String>>,
    base_url: Option<String>,
    batch_size: Option<usize>,
    batch_wait: Option<String>,
}

/// Syncs audiences to Meta Custom Audiences: the constructors of its
/// [`AudienceProvider`].
pub enum MetaProvider {}

/// What one request needs.
struct Endpoint {
    client: reqwest::Client,
    base: String,
    access_token: String,
    clock: Clock,
}

impl MetaProvider {
    /// The provider of one `[audiences.<name>]` table: `access_token`,
    /// `audiences` (the journeys' audience names to Custom Audience ids),
    /// and optionally `base_url`, `batch_size` (1 to 10,000, default 500)
    /// and `batch_wait` (default `1s`).
    pub fn from_settings(
        table: &toml::Table,
        client: reqwest::Client,
    ) -> Result<AudienceProvider, String> {
        Self::with_clock(table, client, http::wall_clock())
    }

    /// The same, reading `clock` for `Retry-After` dates (tests).
    pub fn with_clock(
        table: &toml::Table,
        client: reqwest::Client,
        clock: Clock,
    ) -> Result<AudienceProvider, String> {
        let s: Settings = http::settings(table)?;
        if s.access_token.trim().is_empty() {
            return Err("`access_token` is empty".into());
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
            access_token: s.access_token,
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

/// The request body of a batch.
pub fn body(batch: &Batch, access_token: &str) -> Value {
    let data: Vec<[&str; 2]> = batch
        .users
        .iter()
        .map(|u| {
            [
                u.email.as_deref().unwrap_or(""),
                u.phone_digits.as_deref().unwrap_or(""),
            ]
        })
        .collect();
    json!({
        "payload": {"schema": ["EMAIL_SHA256", "PHONE_SHA256"], "data": data},
        "access_token": access_token,
    })
}

impl Endpoint {
    async fn send(&self, batch: Batch) -> Outcome {
        let url = format!("{}/{}/users", self.base, batch.list);
        let request = match batch.op {
            Op::Add => self.client.post(&url),
            Op::Remove => self.client.delete(&url),
        };
        let response = request.json(&body(&batch, &self.access_token)).send().await;
        match response {
            Ok(response) => match Answer::read(response).await {
                Ok(answer) => classify(&answer, (self.clock)()),
                Err(e) => http::transport_error("meta", &e),
            },
            Err(e) => http::transport_error("meta", &e),
        }
    }
}

/// Meta's error body: `{"error": {"message", "type", "code", "error_subcode", "is_transient"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    message: Option<String>,
    code: Option<u64>,
    is_transient: Option<bool>,
}

/// What Meta's answer means: 2xx synced (`num_received` and
/// `num_invalid_entries` kept); 429, 5xx, a rate-limit code or
/// `is_transient` again later; any other error never (190 a bad token,
/// 100 a bad parameter, 200 no permission on the audience, ...).
fn classify(answer: &Answer, now_ms: i64) -> Outcome {
    let status = answer.status;
    if status.is_success() {
        let synced: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let count = |key: &str| synced.get(key).and_then(Value::as_u64).unwrap_or(0);
        return Outcome::Sent {
            response: format!(
                "{} received, {} invalid",
                count("num_received"),
                count("num_invalid_entries")
            ),
        };
    }
    let parsed = serde_json::from_str::<ErrorBody>(&answer.body).ok();
    let code = parsed.as_ref().and_then(|e| e.error.code);
    let error = match (
        &code,
        parsed.as_ref().and_then(|e| e.error.message.as_deref()),
    ) {
        (Some(code), Some(text)) => format!("meta: {} (code {code}): {text}", status.as_u16()),
        _ => format!("meta: {}: {}", status.as_u16(), answer.body_excerpt()),
    };
    let transient = status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || code.is_some_and(|c| TRANSIENT_CODES.contains(&c))
        || parsed.is_some_and(|e| e.error.is_transient == Some(true));
    if transient {
        answer.retry(error, now_ms)
    } else {
        Outcome::Fail { error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::delivery::audience::Hashed;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers: reqwest::header::HeaderMap::new(),
            body: body.into(),
        }
    }

    #[test]
    fn answers_are_classified() {
        let ok = classify(
            &answer(
                200,
                r#"{"audience_id":"1","session_id":"9","num_received":2,"num_invalid_entries":0}"#,
            ),
            0,
        );
        assert_eq!(
            ok,
            Outcome::Sent {
                response: "2 received, 0 invalid".into()
            }
        );
        let throttled = r#"{"error":{"message":"User request limit reached","type":"OAuthException","code":17}}"#;
        assert!(matches!(
            classify(&answer(400, throttled), 0),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify(&answer(503, "down"), 0),
            Outcome::Retry { .. }
        ));
        let bad_token = r#"{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190}}"#;
        match classify(&answer(400, bad_token), 0) {
            Outcome::Fail { error } => assert!(error.contains("code 190"), "{error}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_body_has_the_multi_key_schema_and_empty_values_for_what_is_missing() {
        let batch = Batch {
            list: "123".into(),
            op: Op::Add,
            users: vec![Hashed {
                email: Some("e".into()),
                phone_e164: Some("p+".into()),
                phone_digits: None,
            }],
        };
        assert_eq!(
            body(&batch, "tok"),
            json!({"payload": {"schema": ["EMAIL_SHA256", "PHONE_SHA256"], "data": [["e", ""]]},
                   "access_token": "tok"})
        );
    }

    #[test]
    fn settings_are_checked() {
        let parse = |text: &str| {
            MetaProvider::from_settings(&text.parse().unwrap(), reqwest::Client::new()).err()
        };
        let good = "access_token = \"t\"\naudiences = { cart = \"2385\" }";
        assert_eq!(parse(good), None);
        assert!(
            parse("access_token = \"\"\naudiences = { cart = \"1\" }")
                .is_some_and(|e| e.contains("access_token"))
        );
        assert!(parse("audiences = { cart = \"1\" }").is_some_and(|e| e.contains("access_token")));
        assert!(parse("access_token = \"t\"").is_some_and(|e| e.contains("audiences")));
        assert!(
            parse("access_token = \"t\"\naudiences = { cart = \"act_1\" }")
                .is_some_and(|e| e.contains("audiences.cart"))
        );
        assert!(
            parse(&format!("{good}\nbatch_size = 20000")).is_some_and(|e| e.contains("batch_size"))
        );
        assert!(
            parse(&format!("{good}\nbase_url = \"graph\"")).is_some_and(|e| e.contains("base_url"))
        );
        assert!(parse(&format!("{good}\ntoken = \"x\"")).is_some_and(|e| e.contains("token")));
    }
}
