//! Audience syncs under `journey serve --nats` (SERVICE.md §9), against a
//! real nats-server and the local fake of Meta's Custom Audiences API:
//! two processes share the delivery consumer, and a sync reads the
//! customer's email and phone from whichever process owns the customer's
//! partition (asked over NATS), so every customer's hashes reach Meta,
//! added and removed, whichever process took the sync. Each customer's
//! records — the syncs and a `log` channel's `logged` send — are in
//! `/admin/users/{key}` on either process.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

#[path = "support/server.rs"]
mod server;
use server::scratch;

#[path = "support/nats.rs"]
mod nats;
use nats::{end_clock, owners, post_ok, process, start_nats, wait_for_owners};

#[path = "support/meta.rs"]
mod meta;
use meta::{META_TOKEN, fake_meta, sha256};

const PARTITIONS: u32 = 4;
const USERS: usize = 12;

const PROJECT: &str = r#"
template hello { channel email  subject "Hi"  body "Hello" }

journey cart {
  trigger cart_abandoned
  add to audience cart_retargeting until exit
  send email hello
  wait 1h
}
"#;

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

fn config(dir: &Path, meta_base: &str) -> std::path::PathBuf {
    let path = dir.join("journey.toml");
    std::fs::write(
        &path,
        format!(
            "[nats]\nlease_ttl = \"2500ms\"\n\n[checkpoint]\nevery = \"2s\"\n\n\
             [audiences.meta]\nprovider = \"meta\"\naccess_token = \"{META_TOKEN}\"\n\
             base_url = \"{meta_base}\"\naudiences = {{ cart_retargeting = \"2385001\" }}\n\
             batch_size = 5\nbatch_wait = \"200ms\"\nbackoff = \"100ms\"\n"
        ),
    )
    .expect("config");
    path
}

fn email(i: usize) -> String {
    format!("U{i}@Example.com ")
}

fn phone(i: usize) -> String {
    format!("+1 415 555 01{i:02}")
}

/// Meta's rows for customer `i`: the hashes of the normalised email and
/// of the phone's digits.
fn row(i: usize) -> [String; 2] {
    [
        sha256(&format!("u{i}@example.com")),
        sha256(&format!("14155550{}", 100 + i)),
    ]
}

#[test]
fn audience_syncs_read_each_customer_from_their_partitions_owner() {
    let dir = scratch("nats-audiences");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let fakes = tokio::runtime::Runtime::new().expect("a runtime");
    let (meta, meta_base) = fakes.block_on(fake_meta(&["2385001"]));
    // The first request is refused: the sync is retried by whichever
    // process pulls it next.
    meta.inject
        .push(StatusCode::SERVICE_UNAVAILABLE, json!({}), None);
    let project = dir.join("project");
    std::fs::create_dir_all(&project).expect("project dir");
    std::fs::write(project.join("ads.journey"), PROJECT).expect("project");
    let config = config(&dir, &meta_base);
    let log = dir.join("serve.log");
    let one = process(&project, &nats, &config, PARTITIONS, &log);
    let two = process(&project, &nats, &config, PARTITIONS, &log);
    wait_for_owners(&one, "both processes hold partitions", |owners| {
        let held: BTreeSet<&String> = owners.iter().flatten().collect();
        owners.iter().all(Option::is_some) && held.len() == 2
    });
    // The customers' partitions are owned by both processes.
    let owners = owners(&one);
    let owning: BTreeSet<&String> = (0..USERS)
        .filter_map(|i| {
            let p = journey::service::partitions::partition_of(&format!("u{i}"), PARTITIONS);
            owners[p as usize].as_ref()
        })
        .collect();
    assert_eq!(owning.len(), 2, "customers on both processes: {owners:?}");

    let at = "2026-03-02T10:00:00Z";
    let mut batch = Vec::new();
    for i in 0..USERS {
        batch.push(
            json!({"type": "identify", "userId": format!("u{i}"), "timestamp": at,
                          "messageId": format!("u{i}-1"),
                          "traits": {"email": email(i), "phone": phone(i)}}),
        );
        batch.push(
            json!({"type": "track", "userId": format!("u{i}"), "event": "cart_abandoned",
                          "messageId": format!("u{i}-2"), "timestamp": at}),
        );
    }
    // Half through each process.
    let half = batch.len() / 2;
    post_ok(&one, &json!({ "batch": batch[..half].to_vec() }));
    post_ok(&two, &json!({ "batch": batch[half..].to_vec() }));

    let rows = |add: bool| -> BTreeSet<[String; 2]> {
        meta.accepted
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.add == add && r.audience == "2385001")
            .flat_map(|r| r.rows.clone())
            .collect()
    };
    let everyone: BTreeSet<[String; 2]> = (0..USERS).map(row).collect();
    wait_until("every customer added at Meta", || rows(true) == everyone);

    // The instances end (`until exit`): every customer is removed.
    end_clock(&one);
    wait_until("every customer removed at Meta", || rows(false) == everyone);

    // Each customer's records, on either process: the add and the remove,
    // sent by `meta`, and the email their `log` channel only logged.
    for server in [&one, &two] {
        for i in [0, 1, USERS - 1] {
            let key = format!("u{i}");
            // A record is written after its provider answered: the fake
            // may hold the remove an instant before the record says so.
            let view = || server.get(&format!("/admin/users/{key}"), None);
            let finished = |user: &Value| {
                user["deliveries"].as_array().is_some_and(|d| {
                    d.iter()
                        .filter(|d| d["channel"] == "audiences.meta" && d["status"] == "sent")
                        .count()
                        == 2
                })
            };
            wait_until("both syncs' records", || finished(&view().1));
            let (status, user) = view();
            assert_eq!(status, 200, "{user}");
            let deliveries = user["deliveries"].as_array().cloned().unwrap_or_default();
            let synced: Vec<&Value> = deliveries
                .iter()
                .filter(|d| d["channel"] == "audiences.meta")
                .collect();
            assert_eq!(synced.len(), 2, "add and remove: {user}");
            for record in &synced {
                assert_eq!(record["status"], "sent", "{record}");
                assert_eq!(record["provider"], "meta", "{record}");
                assert_eq!(record["template"], "cart_retargeting", "{record}");
                let attempts = record["attempts"].as_array().expect("attempts");
                assert!(!attempts.is_empty(), "{record}");
                assert_eq!(attempts.last().unwrap()["outcome"], "sent", "{record}");
            }
            let emails: Vec<&Value> = deliveries
                .iter()
                .filter(|d| d["channel"] == "email")
                .collect();
            assert_eq!(emails.len(), 1, "the logged email: {user}");
            assert_eq!(emails[0]["status"], "logged", "{user}");
            assert_eq!(emails[0]["provider"], "log", "{user}");
            assert_eq!(emails[0]["template"], "hello", "{user}");
            assert!(
                emails[0]["attempts"].as_array().is_some_and(Vec::is_empty),
                "{user}"
            );
            // Newest first, by their place in the feed.
            let seqs: Vec<u64> = deliveries
                .iter()
                .map(|d| d["seq"].as_u64().expect("a seq"))
                .collect();
            assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
        }
    }
    // A customer nothing reached is still a 404.
    let (status, _) = one.get("/admin/users/nobody", None);
    assert_eq!(status, 404);
    drop(fakes);
}
