//! Twilio's delivery status callbacks at `POST /webhooks/twilio`, against
//! the real `journey serve` binary: SMS go to a local fake of Twilio's
//! Messages API, which records each message's `StatusCallback` URL; the
//! test then calls back as Twilio does, signing with `X-Twilio-Signature`
//! (base64 HMAC-SHA1 of the URL and the sorted form parameters, keyed with
//! the auth token). `delivered` reaches the journey waiting for it;
//! `undelivered` and `failed` are journaled as `message.bounced` and
//! `message.failed`; a bad, missing or replayed-elsewhere signature is a
//! 403 that journals nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

#[path = "support/server.rs"]
mod server;
use server::{Server, scratch};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "twilio-test-token";
/// The public URL Twilio calls back, as a proxy in front of the service
/// would take it; the service checks signatures against it.
const PUBLIC: &str = "https://journey.shop.example/webhooks/twilio";

const PROJECT: &str = r#"
template code { channel sms  body "Your code is 1234" }
template arrived { channel email  subject "Glad it arrived"  body "ok" }
template lost { channel email  subject "Did you get it?"  body "no" }

journey verify {
  trigger signed_up
  send sms code as code
  wait for code.delivered within 1h {
    send email arrived
  } else {
    send email lost
  }
}
"#;

/// The `StatusCallback` of every message the fake Twilio accepted, by
/// recipient.
#[derive(Default)]
struct FakeTwilio {
    callbacks: Mutex<Vec<(String, String)>>,
}

async fn messages(
    State(fake): State<Arc<FakeTwilio>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    fake.callbacks
        .lock()
        .unwrap()
        .push((field("To"), field("StatusCallback")));
    let n = fake.callbacks.lock().unwrap().len();
    let created = json!({"sid": format!("SM{n:032x}"), "status": "queued", "to": field("To")});
    (StatusCode::CREATED, axum::Json(created)).into_response()
}

/// Twilio's signature of a callback to `url` with `form`.
fn sign(url: &str, form: &[(&str, &str)]) -> String {
    let mut sorted = form.to_vec();
    sorted.sort();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(AUTH_TOKEN.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    BASE64.encode(mac.finalize().into_bytes())
}

/// Posts a callback for the message whose callback URL is `url` to the
/// service, with `signature`; the status.
fn call_back(server: &Server, url: &str, form: &[(&str, &str)], signature: Option<&str>) -> u16 {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let mut request = ureq::post(&format!("{}/webhooks/twilio?{query}", server.base));
    if let Some(signature) = signature {
        request = request.set("X-Twilio-Signature", signature);
    }
    let pairs: Vec<(&str, &str)> = form.to_vec();
    match request.send_form(&pairs) {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    }
}

fn journal_entries(server: &Server) -> u64 {
    let text = ureq::get(&format!("{}/metrics", server.base))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("journey_journal_entries "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map(|n| n as u64)
        .unwrap_or_else(|| panic!("journey_journal_entries in {text}"))
}

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
fn signed_status_callbacks_are_journaled_for_the_recipient_and_others_refused() {
    let fakes = tokio::runtime::Runtime::new().unwrap();
    let fake = Arc::new(FakeTwilio::default());
    let base = fakes.block_on(async {
        let router = Router::new()
            .route("/2010-04-01/Accounts/{*rest}", post(messages))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    });

    let dir = scratch("twilio-callbacks");
    std::fs::create_dir_all(dir.join("project")).unwrap();
    std::fs::write(dir.join("project/verify.journey"), PROJECT).unwrap();
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[channels.sms]\nprovider = \"twilio\"\naccount_sid = \"{SID}\"\n\
             auth_token = \"{AUTH_TOKEN}\"\nfrom = \"+15550100\"\nbase_url = \"{base}\"\n\
             status_callback = \"{PUBLIC}\"\n"
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.join("project"),
        &dir.join("data"),
        2,
        &["--config", config.to_str().unwrap()],
    );
    let at = "2026-03-02T10:00:00Z";
    let people = [
        ("ana", "+14155550101"),
        ("bob", "+14155550102"),
        ("cy", "+14155550103"),
    ];
    let mut batch = Vec::new();
    for (user, phone) in people {
        batch.push(json!({"type": "identify", "userId": user, "timestamp": at,
                          "traits": {"phone": phone, "email": format!("{user}@example.com")}}));
        batch.push(json!({"type": "track", "userId": user, "event": "signed_up", "timestamp": at}));
    }
    let answer = server
        .post("/v1/batch", &json!({ "batch": batch }))
        .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
    wait_until("three SMS at Twilio", || {
        fake.callbacks.lock().unwrap().len() == 3
    });
    // Every `message.sent` is journaled before the counts below.
    for (user, _) in people {
        wait_until("the SMS recorded as sent", || {
            let (_, view) = server.get(&format!("/admin/users/{user}"), None);
            view["deliveries"][0]["status"] == "sent"
        });
    }
    let url_of = |phone: &str| {
        fake.callbacks
            .lock()
            .unwrap()
            .iter()
            .find(|(to, _)| to == phone)
            .map(|(_, url)| url.clone())
            .unwrap()
    };
    let (ana, bob, cy) = (
        url_of(people[0].1),
        url_of(people[1].1),
        url_of(people[2].1),
    );
    assert!(
        ana.starts_with(&format!("{PUBLIC}?message_id=verify%3Aana%3A1%3A")),
        "{ana}"
    );
    assert!(
        ana.contains("&user_id=ana&journey=verify&template=code&channel=sms"),
        "{ana}"
    );

    let delivered = [
        ("MessageSid", "SM1"),
        ("MessageStatus", "delivered"),
        ("AccountSid", SID),
    ];
    let before = journal_entries(&server);
    // Refused: no signature, a wrong one, one for another message, one
    // for other parameters.
    assert_eq!(call_back(&server, &ana, &delivered, None), 403);
    assert_eq!(call_back(&server, &ana, &delivered, Some("bm90IGl0")), 403);
    assert_eq!(
        call_back(&server, &ana, &delivered, Some(&sign(&bob, &delivered))),
        403
    );
    let undelivered = [("MessageSid", "SM1"), ("MessageStatus", "undelivered")];
    assert_eq!(
        call_back(&server, &ana, &delivered, Some(&sign(&ana, &undelivered))),
        403
    );
    assert_eq!(
        journal_entries(&server),
        before,
        "a refused callback journals nothing"
    );

    // A step on the way journals nothing either.
    let queued = [("MessageSid", "SM3"), ("MessageStatus", "sent")];
    assert_eq!(
        call_back(&server, &cy, &queued, Some(&sign(&cy, &queued))),
        204
    );
    assert_eq!(journal_entries(&server), before);

    assert_eq!(
        call_back(&server, &ana, &delivered, Some(&sign(&ana, &delivered))),
        204
    );
    let bounced = [
        ("MessageSid", "SM2"),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
        ("ErrorMessage", "Unreachable destination handset"),
    ];
    assert_eq!(
        call_back(&server, &bob, &bounced, Some(&sign(&bob, &bounced))),
        204
    );
    let failed = [
        ("MessageSid", "SM3"),
        ("MessageStatus", "failed"),
        ("ErrorCode", "30001"),
    ];
    assert_eq!(
        call_back(&server, &cy, &failed, Some(&sign(&cy, &failed))),
        204
    );
    assert_eq!(journal_entries(&server), before + 3);

    // The journey waiting for `code.delivered` goes on for ana only.
    server
        .post("/admin/clock", &json!({"to": "2026-03-02T12:00:00Z"}))
        .unwrap();
    let actions: Vec<Value> = server
        .feed()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let emails = |template: &str| -> Vec<String> {
        actions
            .iter()
            .filter(|a| a["kind"] == "send" && a["template"] == template)
            .map(|a| a["user_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(emails("arrived"), vec!["ana".to_string()]);
    let mut lost = emails("lost");
    lost.sort();
    assert_eq!(lost, vec!["bob".to_string(), "cy".to_string()]);
    assert_eq!(server.stop(), Some(0));
    drop(fakes);
}
