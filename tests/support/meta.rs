//! A local fake of Meta's Custom Audiences API for the audience tests: it
//! checks what Meta checks (the access token, the audience, the schema, the
//! SHA-256 hashes of every row) and answers with its documented bodies;
//! failures can be injected before its own answers (`#[path]`-included;
//! each test uses part of it).
#![allow(dead_code)]

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const META_TOKEN: &str = "EAAB-meta-test-token";

pub fn sha256(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn hex64(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Failures a fake serves before its own answers.
#[derive(Default)]
pub struct Injections(Mutex<VecDeque<(StatusCode, Value, Option<&'static str>)>>);

impl Injections {
    pub fn push(&self, status: StatusCode, body: Value, retry_after: Option<&'static str>) {
        self.0
            .lock()
            .unwrap()
            .push_back((status, body, retry_after));
    }

    pub fn next(&self) -> Option<Response> {
        let (status, body, after) = self.0.lock().unwrap().pop_front()?;
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(after) = after {
            response
                .headers_mut()
                .insert("retry-after", after.parse().unwrap());
        }
        Some(response)
    }
}

pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

// ------------------------------------------------------------------ meta

/// One accepted request: `POST` (add) or `DELETE` (remove), the audience,
/// and its rows.
#[derive(Clone, Debug)]
pub struct MetaRequest {
    pub add: bool,
    pub audience: String,
    pub rows: Vec<[String; 2]>,
}

#[derive(Default)]
pub struct FakeMeta {
    pub audiences: BTreeSet<String>,
    pub accepted: Mutex<Vec<MetaRequest>>,
    pub requests: Mutex<usize>,
    pub inject: Injections,
}

fn meta_error(code: u64, message: &str, kind: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "code": code,
                                "fbtrace_id": "AbCdEf"}});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// `POST`/`DELETE /v23.0/{custom_audience_id}/users`, as Meta checks it.
async fn meta_users(
    State(fake): State<Arc<FakeMeta>>,
    method: Method,
    Path(audience): Path<String>,
    body: Bytes,
) -> Response {
    *fake.requests.lock().unwrap() += 1;
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return meta_error(100, "Invalid parameter", "OAuthException");
    };
    if body["access_token"] != META_TOKEN {
        return meta_error(190, "Invalid OAuth access token.", "OAuthException");
    }
    if !fake.audiences.contains(&audience) {
        return meta_error(100, "Unsupported post request.", "GraphMethodException");
    }
    if let Some(injected) = fake.inject.next() {
        return injected;
    }
    let payload = &body["payload"];
    if payload["schema"] != json!(["EMAIL_SHA256", "PHONE_SHA256"]) {
        return meta_error(100, "Invalid schema", "OAuthException");
    }
    let Some(data) = payload["data"]
        .as_array()
        .filter(|d| !d.is_empty() && d.len() <= 10_000)
    else {
        return meta_error(100, "Invalid data", "OAuthException");
    };
    let mut rows = Vec::new();
    for row in data {
        let ok = row.as_array().is_some_and(|r| {
            r.len() == 2 && r.iter().all(|v| v == "" || hex64(v)) && r.iter().any(hex64)
        });
        if !ok {
            return meta_error(
                100,
                "Invalid data row: values must be SHA-256 hashes",
                "OAuthException",
            );
        }
        rows.push([
            row[0].as_str().unwrap().to_string(),
            row[1].as_str().unwrap().to_string(),
        ]);
    }
    let n = rows.len();
    fake.accepted.lock().unwrap().push(MetaRequest {
        add: method == Method::POST,
        audience: audience.clone(),
        rows,
    });
    axum::Json(
        json!({"audience_id": audience, "session_id": "1", "num_received": n,
                      "num_invalid_entries": 0, "invalid_entry_samples": {}}),
    )
    .into_response()
}

pub async fn fake_meta(audiences: &[&str]) -> (Arc<FakeMeta>, String) {
    let fake = Arc::new(FakeMeta {
        audiences: audiences.iter().map(|s| s.to_string()).collect(),
        ..FakeMeta::default()
    });
    let router = Router::new()
        .route(
            "/v23.0/{audience}/users",
            post(meta_users).delete(meta_users),
        )
        .with_state(fake.clone());
    (fake.clone(), format!("{}/v23.0", serve(router).await))
}
