//! The deploy scenario of SERVICE.md §8 both backends are tested with
//! (`tests/serve_deploy.rs` on one machine, `tests/serve_nats.rs` across
//! processes): version 1, version 2 (templates changed, `welcome`'s steps
//! changed, `nudge` only its wait, `promo` removed), the customers' events
//! before and after the deploy, and the sends one machine gives for them.
#![allow(dead_code)]

use std::path::Path;

use serde_json::{Value, json};

use super::server::Server;

pub const V1: &str = r#"
template hello { channel email  subject "Hi"  body "Hello v1" }
template bye { channel email  subject "Bye"  body "Bye v1" }
template nudge { channel email  subject "Nudge"  body "Nudge v1" }
template promo { channel email  subject "Promo"  body "Promo v1" }

journey welcome {
  trigger signed_up
  wait 1d
  send email hello
  wait 1d
  send email bye
}

journey nudge {
  trigger signed_up
  wait 12h
  send email nudge
}

journey promo {
  trigger bought
  wait 1d
  send email promo
}
"#;

/// Templates changed (`hello`, `nudge`), `welcome`'s steps changed (a tip
/// between its two sends), `nudge` only its wait, `promo` removed.
pub fn v2() -> String {
    V1.replace("Hello v1", "Hello v2")
        .replace("Nudge v1", "Nudge v2")
        .replace("wait 12h", "wait 6h")
        .replace(
            "send email hello\n  wait 1d",
            "send email hello\n  send email tip\n  wait 1d",
        )
        .replace(
            "template promo",
            "template tip { channel email  subject \"Tip\"  body \"A tip\" }\ntemplate promo",
        )
        .replace(
            "journey promo {\n  trigger bought\n  wait 1d\n  send email promo\n}\n",
            "",
        )
}

pub fn write(project: &Path, text: &str) {
    std::fs::write(project.join("journeys.journey"), text).expect("the project is written");
}

pub fn batch(server: &Server, messages: Vec<Value>) {
    server
        .post("/v1/batch", &json!({ "batch": messages }))
        .expect("the batch is accepted");
}

pub fn identify(user: &str, at: &str) -> Value {
    json!({"type": "identify", "userId": user, "timestamp": at, "messageId": format!("id-{user}"),
           "traits": {"email": format!("{user}@example.com")}})
}

pub fn track(user: &str, event: &str, at: &str) -> Value {
    json!({"type": "track", "userId": user, "event": event, "timestamp": at,
           "messageId": format!("{event}-{user}-{at}")})
}

/// `(user, body)` of every send in the feed, sorted (partitions interleave).
pub fn sends(feed: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = feed
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .filter(|a| a["kind"] == "send")
        .map(|a| {
            (
                a["user_id"].as_str().unwrap_or("").to_string(),
                a["body"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The events before the deploy.
pub fn before_deploy() -> Vec<Value> {
    vec![
        identify("ana", "2026-03-02T09:00:00Z"),
        identify("bob", "2026-03-02T09:00:00Z"),
        identify("cy", "2026-03-02T09:00:00Z"),
        track("ana", "signed_up", "2026-03-02T10:00:00Z"),
        track("cy", "bought", "2026-03-02T10:00:00Z"),
    ]
}

/// The events after it.
pub fn after_deploy() -> Vec<Value> {
    vec![
        track("bob", "signed_up", "2026-03-02T11:00:00Z"),
        // Ana is inside version 1 of `welcome`: not admitted again.
        track("ana", "signed_up", "2026-03-02T12:00:00Z"),
        // `promo` admits no one now.
        track("bob", "bought", "2026-03-02T12:00:00Z"),
    ]
}

/// `(journey, fate)` of a deploy's answer.
pub fn fates(deployed: &Value) -> Vec<(String, String)> {
    deployed["journeys"]
        .as_array()
        .expect("journeys")
        .iter()
        .map(|j| {
            (
                j["journey"].as_str().unwrap_or("").into(),
                j["fate"].as_str().unwrap_or("").into(),
            )
        })
        .collect()
}

/// What version 2 does to each journey.
pub fn planned_fates() -> Vec<(String, String)> {
    vec![
        ("nudge".into(), "moves".into()),
        ("promo".into(), "removed".into()),
        ("welcome".into(), "stays".into()),
    ]
}

/// The journeys a customer is active in, with their versions.
pub fn active(user: &Value) -> Vec<(String, Value)> {
    user["journeys"]
        .as_array()
        .expect("journeys")
        .iter()
        .filter(|j| j["state"] == "active")
        .map(|j| {
            (
                j["journey"].as_str().unwrap_or("").into(),
                j["version"].clone(),
            )
        })
        .collect()
}

/// The journeys `/admin/journeys` shows kept from an earlier version.
pub fn kept(journeys: &Value) -> Vec<(String, Value)> {
    journeys["journeys"]
        .as_array()
        .expect("journeys")
        .iter()
        .filter(|j| !j["kept_from_version"].is_null())
        .map(|j| {
            (
                j["journey"].as_str().unwrap_or("").into(),
                j["kept_from_version"].clone(),
            )
        })
        .collect()
}

/// The sends of the whole scenario, deployed after [`before_deploy`] and
/// the clock run out after [`after_deploy`].
pub fn expected_sends() -> Vec<(String, String)> {
    vec![
        // Ana finishes version 1's steps, with version 2's templates.
        ("ana".into(), "Bye v1".into()),
        ("ana".into(), "Hello v2".into()),
        // Her nudge moved to version 2 at its step: its timer (12h)
        // kept, its template new.
        ("ana".into(), "Nudge v2".into()),
        // Bob entered version 2.
        ("bob".into(), "A tip".into()),
        ("bob".into(), "Bye v1".into()),
        ("bob".into(), "Hello v2".into()),
        ("bob".into(), "Nudge v2".into()),
        // Cy finishes the removed journey.
        ("cy".into(), "Promo v1".into()),
    ]
}
