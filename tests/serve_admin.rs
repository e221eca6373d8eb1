//! `journey serve`'s operator endpoints against the real binary (SERVICE.md
//! §5): `GET /admin/users/{key}` shows where a customer waits and why,
//! `GET /admin/journeys` has the counters `journey simulate --report`
//! gives on the same events, and both want the admin token when one is set.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

#[path = "support/server.rs"]
mod server;
use server::{Server, bin, prepared_events, root, scratch};

/// Posts the messages in batches of 200, each acknowledged.
fn post_in_batches(server: &Server, messages: &[Value]) {
    for batch in messages.chunks(200) {
        let answer = server
            .post("/v1/batch", &json!({ "batch": batch }))
            .expect("a good batch is taken");
        assert_eq!(answer["success"], true, "{answer}");
    }
}

fn example_events(dir: &Path) -> Vec<Value> {
    prepared_events(&root().join("journeys/events.ndjson"), dir).0
}

#[test]
fn a_user_shows_the_step_they_wait_at_and_until_when() {
    let dir = scratch("admin-user");
    let messages = example_events(&dir);
    // Up to the moment user-00129 abandons a cart worth 94.4 (New York: no quiet hours): nothing
    // after it moves the clock, so they wait at the first `wait 1h`.
    let cart = messages
        .iter()
        .position(|m| m["event"] == "cart_abandoned" && m["userId"] == "user-00129")
        .expect("the example has user-00129's abandoned cart");
    let server = Server::start(&root().join("journeys"), &dir.join("data"), 4, &[]);
    post_in_batches(&server, &messages[..=cart]);

    let (code, view) = server.get("/admin/users/user-00129", None);
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["user"], "user-00129");
    assert_eq!(view["now"], "2026-03-04T20:16:06.333Z", "{view}");
    let cart_journey = view["journeys"]
        .as_array()
        .and_then(|js| js.iter().find(|j| j["journey"] == "abandoned_cart"))
        .unwrap_or_else(|| panic!("the view names abandoned_cart: {view}"));
    assert_eq!(cart_journey["version"], 1);
    assert_eq!(cart_journey["state"], "active");
    assert_eq!(cart_journey["entries"], 1);
    let instance = &cart_journey["instance"];
    assert_eq!(instance["step"]["step"], "wait 1h", "{instance}");
    assert_eq!(instance["waiting_for"], "wait 1h");
    assert_eq!(instance["entered_at"], "2026-03-04T20:16:06.333Z");
    assert_eq!(instance["until"], "2026-03-04T21:16:06.333Z", "{instance}");
    assert_eq!(instance["sends"], json!([]));
    // The journey's own cap is in force, and counts nothing yet.
    let sms_cap = view["caps"]
        .as_array()
        .and_then(|caps| caps.iter().find(|c| c["scope"] == "abandoned_cart"))
        .unwrap_or_else(|| panic!("the journey's cap is listed: {view}"));
    assert_eq!(
        (&sms_cap["channel"], &sms_cap["limit"], &sms_cap["counted"]),
        (&json!("sms"), &json!(1), &json!(0))
    );

    // An hour later the reminder has gone out: the instance waits for its
    // click, and the send is listed with its message id.
    let answer = server
        .post("/admin/clock", &json!({ "to": "2026-03-04T21:30:00Z" }))
        .expect("the clock moves");
    assert!(answer["now"].is_string(), "{answer}");
    let (_, view) = server.get("/admin/users/user-00129", None);
    let cart_journey = view["journeys"]
        .as_array()
        .and_then(|js| js.iter().find(|j| j["journey"] == "abandoned_cart"))
        .unwrap_or_else(|| panic!("the view names abandoned_cart: {view}"));
    let instance = &cart_journey["instance"];
    assert_eq!(
        instance["waiting_for"], "wait for reminder.clicked",
        "{instance}"
    );
    assert_eq!(instance["until"], "2026-03-05T21:16:06.333Z", "{instance}");
    assert_eq!(
        instance["sends"][0]["message_id"], "abandoned_cart:user-00129:1:1",
        "{instance}"
    );
    assert_eq!(instance["sends"][0]["channel"], "email");
    assert_eq!(instance["sends"][0]["template"], "cart_reminder");
    assert!(
        view["recent_sends"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["journey"] == "abandoned_cart")),
        "{view}"
    );

    let (code, body) = server.get("/admin/users/nobody-at-all", None);
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["success"], false);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("`nobody-at-all`")),
        "{body}"
    );
}

/// `journey simulate --report FILE.json`'s journeys over `events`.
fn simulate_report(events: &Path, dir: &Path) -> Value {
    let report = dir.join("report.json");
    let output = Command::new(bin())
        .arg("simulate")
        .arg(root().join("journeys"))
        .arg("--events")
        .arg(events)
        .arg("--report")
        .arg(&report)
        .output()
        .expect("simulate runs");
    assert_eq!(output.status.code(), Some(0));
    let text = std::fs::read_to_string(&report).expect("the report is written");
    serde_json::from_str(&text).expect("the report is JSON")
}

#[test]
fn journeys_counts_what_simulates_report_counts() {
    let dir = scratch("admin-journeys");
    let (messages, prepared) = prepared_events(&root().join("journeys/events.ndjson"), &dir);
    let expected = simulate_report(&prepared, &dir);
    let server = Server::start(&root().join("journeys"), &dir.join("data"), 4, &[]);
    post_in_batches(&server, &messages);

    // Before the end, customers are waiting in journeys.
    let (code, before) = server.get("/admin/journeys", None);
    assert_eq!(code, 200, "{before}");
    let active: u64 = before["journeys"]
        .as_array()
        .map(|js| {
            js.iter()
                .filter_map(|j| j["active_instances"].as_u64())
                .sum()
        })
        .unwrap_or(0);
    assert!(active > 0, "{before}");

    let answer = server
        .post("/admin/clock", &json!({ "to": "end" }))
        .expect("the clock moves to the end");
    let (code, after) = server.get("/admin/journeys", None);
    assert_eq!(code, 200, "{after}");
    let mut journeys = after["journeys"].as_array().cloned().unwrap_or_default();
    let active: u64 = journeys
        .iter()
        .filter_map(|j| j["active_instances"].as_u64())
        .sum();
    assert_eq!(
        active,
        answer["active_instances"].as_u64().unwrap_or(u64::MAX)
    );
    for j in &mut journeys {
        let object = j.as_object_mut().expect("a journey is an object");
        assert_eq!(object.remove("version"), Some(json!(1)));
        assert!(object.remove("active_instances").is_some());
    }
    assert_eq!(Value::Array(journeys), expected["journeys"]);
    assert_eq!(
        after["events"]["duplicates"],
        expected["events"]["duplicates"]
    );
}

#[test]
fn the_admin_token_guards_both_endpoints() {
    let dir = scratch("admin-token");
    let config = dir.join("serve.toml");
    std::fs::write(&config, "[admin]\ntoken = \"s3cret\"\n").expect("config");
    let server = Server::start(
        &root().join("journeys"),
        &dir.join("data"),
        2,
        &["--config", config.to_str().unwrap_or_default()],
    );
    let messages = example_events(&dir);
    let cart = messages
        .iter()
        .position(|m| m["event"] == "cart_abandoned" && m["userId"] == "user-00129")
        .expect("the example has user-00129's abandoned cart");
    post_in_batches(&server, &messages[..=cart]);
    let user = "user-00129";
    for path in [
        "/admin/journeys".to_string(),
        format!("/admin/users/{user}"),
    ] {
        let (code, body) = server.get(&path, None);
        assert_eq!(code, 401, "{path}: {body}");
        let (code, body) = server.get(&path, Some("wrong"));
        assert_eq!(code, 401, "{path}: {body}");
        let (code, body) = server.get(&path, Some("s3cret"));
        assert_eq!(code, 200, "{path}: {body}");
    }
}
