//! The audience providers (`meta`, `google_ads`) against local fakes that
//! check what Meta's Custom Audiences API and the Google Ads API check —
//! the request shapes, SHA-256 hashes of the normalised email and phone,
//! the access token, the developer token and the OAuth2 bearer token — and
//! answer with their documented bodies; 429 with `Retry-After` and 5xx are
//! injected. Then the real `journey serve` binary syncs the `add to
//! audience` / `remove from audience` actions of two journeys to both
//! fakes, in batches, with a retried 503, reading each customer's email and
//! phone from their profile.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use journey::service::delivery::google_ads::GoogleAdsProvider;
use journey::service::delivery::meta::MetaProvider;
use journey::service::delivery::{Message, Outcome, Provider};
use serde_json::{Value, json};

#[path = "support/server.rs"]
mod server;
use server::{Server, scratch};

#[path = "support/meta.rs"]
mod meta;
use meta::{Injections, META_TOKEN, fake_meta, hex64, serve, sha256};

const DEV_TOKEN: &str = "dev-token-123";
const CLIENT_ID: &str = "client-1.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "client-secret-1";
const REFRESH_TOKEN: &str = "1//refresh-token";
const CUSTOMER: &str = "1234567890";

fn audience_message(op: &str, audience: &str, to: Value) -> Message {
    let mut vars = serde_json::Map::new();
    vars.insert("op".into(), json!(op));
    vars.insert("audience".into(), json!(audience));
    Message {
        message_id: format!("audience:{audience}:{op}:1"),
        user_id: "ana".into(),
        journey: "cart".into(),
        template: audience.into(),
        channel: "audiences.ads".into(),
        to,
        subject: None,
        body: None,
        html: None,
        vars,
        line: "{}".into(),
        attempt: 1,
        committed_ms: 0,
    }
}

fn ana() -> Value {
    json!({"email": "  Ana.Silva@Example.COM ", "phone": "+1 (415) 555-0123"})
}

#[tokio::test]
async fn meta_adds_and_removes_hashed_customers_in_batches() {
    let (fake, base) = fake_meta(&["2385001"]).await;
    let settings = format!(
        "access_token = \"{META_TOKEN}\"\nbase_url = \"{base}\"\n\
         audiences = {{ cart = \"2385001\" }}\nbatch_size = 3\nbatch_wait = \"300ms\""
    );
    let provider = Arc::new(
        MetaProvider::from_settings(&settings.parse().unwrap(), reqwest::Client::new()).unwrap(),
    );
    assert_eq!(provider.audiences(), vec!["cart".to_string()]);
    let mut attempts = Vec::new();
    for i in 0..4 {
        let p = provider.clone();
        let to = json!({"email": format!("user{i}@example.com"), "phone": null});
        attempts.push(tokio::spawn(async move {
            p.deliver(&audience_message("add", "cart", to)).await
        }));
    }
    let p = provider.clone();
    attempts.push(tokio::spawn(async move {
        p.deliver(&audience_message("remove", "cart", ana())).await
    }));
    for a in attempts {
        let outcome = a.await.unwrap();
        assert!(matches!(outcome, Outcome::Sent { .. }), "{outcome:?}");
    }
    let accepted = fake.accepted.lock().unwrap().clone();
    let adds: Vec<usize> = accepted
        .iter()
        .filter(|r| r.add)
        .map(|r| r.rows.len())
        .collect();
    let mut sorted = adds.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![1, 3],
        "three in a full batch, one after the wait"
    );
    let remove = accepted.iter().find(|r| !r.add).expect("a DELETE");
    assert_eq!(remove.audience, "2385001");
    assert_eq!(
        remove.rows,
        vec![[sha256("ana.silva@example.com"), sha256("14155550123")]],
        "email trimmed and lowercased, phone as digits with the country code"
    );
    let added: BTreeSet<String> = accepted
        .iter()
        .filter(|r| r.add)
        .flat_map(|r| r.rows.iter().map(|row| row[0].clone()))
        .collect();
    let expected: BTreeSet<String> = (0..4)
        .map(|i| sha256(&format!("user{i}@example.com")))
        .collect();
    assert_eq!(added, expected);
    assert!(
        accepted
            .iter()
            .filter(|r| r.add)
            .all(|r| r.rows.iter().all(|row| row[1].is_empty()))
    );
}

#[tokio::test]
async fn meta_retries_throttling_and_5xx_and_fails_a_bad_token() {
    let (fake, base) = fake_meta(&["2385001"]).await;
    let provider = |token: &str| {
        let settings = format!(
            "access_token = \"{token}\"\nbase_url = \"{base}\"\n\
             audiences = {{ cart = \"2385001\" }}\nbatch_wait = \"10ms\""
        );
        MetaProvider::from_settings(&settings.parse().unwrap(), reqwest::Client::new()).unwrap()
    };
    let meta = provider(META_TOKEN);
    fake.inject.push(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"error": {"message": "Too many calls", "type": "OAuthException", "code": 80003}}),
        Some("7"),
    );
    fake.inject
        .push(StatusCode::SERVICE_UNAVAILABLE, json!({}), None);
    fake.inject.push(
        StatusCode::BAD_REQUEST,
        json!({"error": {"message": "User request limit reached", "type": "OAuthException",
                         "code": 17}}),
        None,
    );
    let attempt = || async { meta.deliver(&audience_message("add", "cart", ana())).await };
    match attempt().await {
        Outcome::Retry { after, error } => {
            assert_eq!(after, Some(Duration::from_secs(7)), "{error}");
            assert!(error.contains("80003"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(attempt().await, Outcome::Retry { .. }));
    assert!(matches!(attempt().await, Outcome::Retry { .. }));
    assert!(matches!(attempt().await, Outcome::Sent { .. }));
    match provider("wrong")
        .deliver(&audience_message("add", "cart", ana()))
        .await
    {
        Outcome::Fail { error } => assert!(error.contains("code 190"), "{error}"),
        other => panic!("{other:?}"),
    }
    // No email and no phone: nothing to match on, no request.
    let before = *fake.requests.lock().unwrap();
    let nobody = meta
        .deliver(&audience_message(
            "add",
            "cart",
            json!({"email": null, "phone": "12"}),
        ))
        .await;
    assert!(matches!(nobody, Outcome::Fail { .. }), "{nobody:?}");
    assert_eq!(*fake.requests.lock().unwrap(), before);
}

// ------------------------------------------------------------ google ads

/// One run job: its list, `create` or `remove`, and each operation's
/// identifiers.
#[derive(Clone, Debug)]
struct Job {
    list: String,
    kind: Option<String>,
    operations: Vec<Vec<(String, String)>>,
    ran: bool,
}

#[derive(Default)]
struct FakeGoogle {
    lists: BTreeSet<String>,
    tokens_granted: Mutex<Vec<String>>,
    jobs: Mutex<Vec<Job>>,
    inject: Injections,
}

fn google_error(status: StatusCode, grpc: &str, message: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message, "status": grpc}});
    (status, axum::Json(body)).into_response()
}

async fn google_token(
    State(fake): State<Arc<FakeGoogle>>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("grant_type") != Some("refresh_token")
        || field("client_id") != Some(CLIENT_ID)
        || field("client_secret") != Some(CLIENT_SECRET)
        || field("refresh_token") != Some(REFRESH_TOKEN)
    {
        let body = json!({"error": "invalid_grant", "error_description": "Bad Request"});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let mut granted = fake.tokens_granted.lock().unwrap();
    let token = format!("ya29.token-{}", granted.len());
    granted.push(token.clone());
    axum::Json(
        json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer",
                      "scope": "https://www.googleapis.com/auth/adwords"}),
    )
    .into_response()
}

/// The Google Ads API's three calls, under `/v21/`.
async fn google_api(
    State(fake): State<Arc<FakeGoogle>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    if !fake.tokens_granted.lock().unwrap().contains(&bearer) {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request is missing required authentication credential.",
        );
    }
    if headers.get("developer-token").and_then(|v| v.to_str().ok()) != Some(DEV_TOKEN) {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "The developer token is not valid.",
        );
    }
    if let Some(injected) = fake.inject.next() {
        return injected;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Invalid JSON payload",
        );
    };
    let invalid = |why: &str| google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", why);
    let create = format!("customers/{CUSTOMER}/offlineUserDataJobs:create");
    let jobs_prefix = format!("customers/{CUSTOMER}/offlineUserDataJobs/");
    if rest == create {
        let job = &body["job"];
        if job["type"] != "CUSTOMER_MATCH_USER_LIST" {
            return invalid("job.type");
        }
        let list = job["customerMatchUserListMetadata"]["userList"]
            .as_str()
            .and_then(|l| l.strip_prefix(&format!("customers/{CUSTOMER}/userLists/")))
            .unwrap_or_default()
            .to_string();
        if !fake.lists.contains(&list) {
            return google_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The user list was not found.",
            );
        }
        let mut jobs = fake.jobs.lock().unwrap();
        jobs.push(Job {
            list,
            kind: None,
            operations: Vec::new(),
            ran: false,
        });
        let name = format!("{jobs_prefix}{}", jobs.len());
        return axum::Json(json!({"resourceName": name})).into_response();
    }
    let Some((id, verb)) = rest
        .strip_prefix(&jobs_prefix)
        .and_then(|r| r.split_once(':'))
    else {
        return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such method");
    };
    let index = id.parse::<usize>().unwrap_or(0);
    let mut jobs = fake.jobs.lock().unwrap();
    let Some(job) = index.checked_sub(1).and_then(|i| jobs.get_mut(i)) else {
        return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such job");
    };
    match verb {
        "addOperations" => {
            let Some(operations) = body["operations"].as_array().filter(|o| !o.is_empty()) else {
                return invalid("operations");
            };
            for operation in operations {
                let Some((kind, data)) = operation
                    .as_object()
                    .and_then(|o| (o.len() == 1).then(|| o.iter().next()).flatten())
                else {
                    return invalid("an operation is one of create, remove");
                };
                if !["create", "remove"].contains(&kind.as_str())
                    || job.kind.as_ref().is_some_and(|k| k != kind)
                {
                    return invalid("operation kind");
                }
                job.kind = Some(kind.clone());
                let mut ids = Vec::new();
                for identifier in data["userIdentifiers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    let Some((name, value)) = identifier.as_object().and_then(|o| o.iter().next())
                    else {
                        return invalid("userIdentifiers");
                    };
                    if !["hashedEmail", "hashedPhoneNumber"].contains(&name.as_str())
                        || !hex64(value)
                    {
                        return invalid("a user identifier must be a SHA-256 hash");
                    }
                    ids.push((name.clone(), value.as_str().unwrap().to_string()));
                }
                if ids.is_empty() {
                    return invalid("no user identifiers");
                }
                job.operations.push(ids);
            }
            axum::Json(json!({})).into_response()
        }
        "run" => {
            if job.operations.is_empty() {
                return invalid("the job has no operations");
            }
            job.ran = true;
            axum::Json(json!({"name": format!("customers/{CUSTOMER}/operations/{index}")}))
                .into_response()
        }
        _ => google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such method"),
    }
}

async fn fake_google(lists: &[&str]) -> (Arc<FakeGoogle>, String) {
    let fake = Arc::new(FakeGoogle {
        lists: lists.iter().map(|s| s.to_string()).collect(),
        ..FakeGoogle::default()
    });
    let router = Router::new()
        .route("/token", post(google_token))
        .route("/v21/{*rest}", any(google_api))
        .with_state(fake.clone());
    (fake.clone(), serve(router).await)
}

fn google_settings(base: &str, extra: &str) -> String {
    format!(
        "customer_id = \"123-456-7890\"\ndeveloper_token = \"{DEV_TOKEN}\"\n\
         client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
         refresh_token = \"{REFRESH_TOKEN}\"\nbase_url = \"{base}/v21\"\n\
         token_url = \"{base}/token\"\n{extra}"
    )
}

#[tokio::test]
async fn google_ads_runs_one_customer_match_job_per_batch() {
    let (fake, base) = fake_google(&["777"]).await;
    let settings = google_settings(
        &base,
        "audiences = { cart = \"777\" }\nbatch_size = 2\nbatch_wait = \"200ms\"",
    );
    let provider = Arc::new(
        GoogleAdsProvider::from_settings(&settings.parse().unwrap(), reqwest::Client::new())
            .unwrap(),
    );
    let mut attempts = Vec::new();
    for (op, to) in [
        ("add", ana()),
        ("add", json!({"email": "bo@example.com", "phone": null})),
        (
            "remove",
            json!({"email": null, "phone": "0044 20 7946 0958"}),
        ),
    ] {
        let p = provider.clone();
        attempts.push(tokio::spawn(async move {
            p.deliver(&audience_message(op, "cart", to)).await
        }));
    }
    for a in attempts {
        let outcome = a.await.unwrap();
        assert!(matches!(outcome, Outcome::Sent { .. }), "{outcome:?}");
    }
    let jobs = fake.jobs.lock().unwrap().clone();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(jobs.iter().all(|j| j.ran && j.list == "777"));
    let create = jobs
        .iter()
        .find(|j| j.kind.as_deref() == Some("create"))
        .unwrap();
    assert_eq!(create.operations.len(), 2, "both adds in one job");
    assert!(create.operations.contains(&vec![
        ("hashedEmail".to_string(), sha256("ana.silva@example.com")),
        ("hashedPhoneNumber".to_string(), sha256("+14155550123")),
    ]));
    let remove = jobs
        .iter()
        .find(|j| j.kind.as_deref() == Some("remove"))
        .unwrap();
    assert_eq!(
        remove.operations,
        vec![vec![(
            "hashedPhoneNumber".to_string(),
            sha256("+442079460958")
        )]],
        "the phone in E.164"
    );
    assert_eq!(
        fake.tokens_granted.lock().unwrap().len(),
        1,
        "one token for every call"
    );
}

#[tokio::test]
async fn google_ads_retries_429_and_5xx_and_fails_a_refused_grant_or_list() {
    let (fake, base) = fake_google(&["777"]).await;
    let provider = |extra: &str| {
        let settings = google_settings(&base, &format!("batch_wait = \"10ms\"\n{extra}"));
        GoogleAdsProvider::from_settings(&settings.parse().unwrap(), reqwest::Client::new())
            .unwrap()
    };
    let google = provider("audiences = { cart = \"777\", gone = \"999\" }");
    let google = &google;
    let attempt = |audience: &'static str| async move {
        google
            .deliver(&audience_message("add", audience, ana()))
            .await
    };
    fake.inject.push(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}),
        Some("30"),
    );
    fake.inject.push(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}),
        None,
    );
    match attempt("cart").await {
        Outcome::Retry { after, error } => {
            assert_eq!(after, Some(Duration::from_secs(30)), "{error}");
            assert!(error.contains("RESOURCE_EXHAUSTED"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(attempt("cart").await, Outcome::Retry { .. }));
    assert!(matches!(attempt("cart").await, Outcome::Sent { .. }));
    match attempt("gone").await {
        Outcome::Fail { error } => assert!(error.contains("NOT_FOUND"), "{error}"),
        other => panic!("{other:?}"),
    }
    let wrong = google_settings(
        &base,
        "audiences = { cart = \"777\" }\nbatch_wait = \"10ms\"",
    )
    .replace(REFRESH_TOKEN, "revoked");
    let wrong =
        GoogleAdsProvider::from_settings(&wrong.parse().unwrap(), reqwest::Client::new()).unwrap();
    match wrong.deliver(&audience_message("add", "cart", ana())).await {
        Outcome::Fail { error } => assert!(error.contains("invalid_grant"), "{error}"),
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------- through journey serve

const PROJECT: &str = r#"
journey cart {
  trigger cart_abandoned
  add to audience cart_retargeting until exit
  wait 1h
}

journey lapsed {
  trigger app_closed
  add to audience lapsed_users
  wait 2h
  remove from audience lapsed_users
}
"#;

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn journey_serve_syncs_audience_actions_in_batches_with_retries() {
    let fakes = tokio::runtime::Runtime::new().unwrap();
    let (meta, meta_base) = fakes.block_on(fake_meta(&["2385001"]));
    let (google, google_base) = fakes.block_on(fake_google(&["777"]));
    // The first Meta request is refused for a while.
    meta.inject
        .push(StatusCode::SERVICE_UNAVAILABLE, json!({}), None);

    let dir = scratch("audiences");
    std::fs::create_dir_all(dir.join("project")).unwrap();
    std::fs::write(dir.join("project/ads.journey"), PROJECT).unwrap();
    let config = dir.join("serve.toml");
    let text = format!(
        "[audiences.meta]\nprovider = \"meta\"\naccess_token = \"{META_TOKEN}\"\n\
         base_url = \"{meta_base}\"\naudiences = {{ cart_retargeting = \"2385001\" }}\n\
         batch_size = 10\nbatch_wait = \"200ms\"\nbackoff = \"100ms\"\n\n\
         [audiences.google]\nprovider = \"google_ads\"\n{}\
         audiences = {{ lapsed_users = \"777\" }}\nbatch_wait = \"100ms\"\n",
        google_settings(&google_base, "")
    );
    std::fs::write(&config, &text).unwrap();
    let server = Server::start(
        &dir.join("project"),
        &dir.join("data"),
        2,
        &["--config", config.to_str().unwrap()],
    );
    let at = "2026-03-02T10:00:00Z";
    let mut batch = Vec::new();
    for i in 0..25 {
        batch.push(
            json!({"type": "identify", "userId": format!("u{i}"), "timestamp": at,
                          "traits": {"email": format!("U{i}@Example.com ")}}),
        );
        batch.push(
            json!({"type": "track", "userId": format!("u{i}"), "event": "cart_abandoned",
                          "timestamp": at}),
        );
    }
    batch.push(json!({"type": "identify", "userId": "ana", "timestamp": at,
                      "traits": {"phone": "+1 415 555 0123"}}));
    batch.push(json!({"type": "track", "userId": "ana", "event": "app_closed", "timestamp": at}));
    batch
        .push(json!({"type": "track", "userId": "nobody", "event": "app_closed", "timestamp": at}));
    let answer = server
        .post("/v1/batch", &json!({ "batch": batch }))
        .unwrap();
    assert_eq!(answer["success"], true, "{answer}");

    let added = |add: bool| -> BTreeSet<String> {
        meta.accepted
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.add == add)
            .flat_map(|r| r.rows.iter().map(|row| row[0].clone()))
            .collect()
    };
    let everyone: BTreeSet<String> = (0..25)
        .map(|i| sha256(&format!("u{i}@example.com")))
        .collect();
    wait_until("25 adds at Meta", || added(true) == everyone);
    let google_ran = |kind: &str| {
        google
            .jobs
            .lock()
            .unwrap()
            .iter()
            .filter(|j| j.ran && j.kind.as_deref() == Some(kind))
            .flat_map(|j| j.operations.clone())
            .collect::<Vec<_>>()
    };
    wait_until("ana added at Google", || !google_ran("create").is_empty());
    assert_eq!(
        google_ran("create"),
        vec![vec![(
            "hashedPhoneNumber".to_string(),
            sha256("+14155550123")
        )]]
    );

    // The instances end: `until exit` removes, and `lapsed` removes ana.
    let clock = server.post("/admin/clock", &json!({"to": "end"})).unwrap();
    assert!(clock["now"].is_string(), "{clock}");
    wait_until("25 removes at Meta", || added(false) == everyone);
    wait_until("ana removed at Google", || !google_ran("remove").is_empty());
    let requests = meta.accepted.lock().unwrap().clone();
    assert!(
        requests.iter().all(|r| r.rows.len() <= 10),
        "batches of at most 10"
    );
    assert!(
        requests.len() <= 10,
        "batched, not one request a customer: {}",
        requests.len()
    );

    // What each sync came to is on the customer's record.
    let (status, user) = server.get("/admin/users/nobody", None);
    assert_eq!(status, 200, "{user}");
    let deliveries = user["deliveries"].as_array().cloned().unwrap_or_default();
    assert_eq!(deliveries.len(), 2, "add and remove: {user}");
    for record in &deliveries {
        assert_eq!(record["status"], "failed", "{record}");
        assert_eq!(record["channel"], "audiences.google", "{record}");
        assert!(
            record["error"]
                .as_str()
                .unwrap_or_default()
                .contains("no email or phone"),
            "{record}"
        );
    }
    let (_, u0) = server.get("/admin/users/u0", None);
    let records = u0["deliveries"].as_array().cloned().unwrap_or_default();
    assert_eq!(records.len(), 2, "add and remove: {u0}");
    assert!(
        records
            .iter()
            .all(|r| r["status"] == "sent" && r["provider"] == "meta"),
        "{u0}"
    );
    assert_eq!(server.stop(), Some(0));
    drop(fakes);
}
