//! The in-app inbox under `journey serve --nats` (SERVICE.md §6, §9),
//! against a real nats-server: the same API as one machine's. An `in_app`
//! send kept by whichever process delivered it is listed by every process
//! with the customer's token (401 without); a read on one process and a
//! dismiss on another journal `message.opened` and `message.dismissed`
//! once each, and the journey waiting for the open goes on; `max_per_user`
//! keeps the newest, a send's `ttl` expires it, and the sweep deletes the
//! expired messages of a customer who gets no more; and keeps and marks
//! made at once through two connections to the bucket lose nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use journey::service::config::Inbox;
use journey::service::delivery::inbox::{InboxKeys, InboxStore};
use journey::service::nats::delivery::key_token;
use journey::service::nats::inbox::{INBOX_BUCKET, Swept};
use journey::service::storage::{InboxMark, InboxRecord};
use serde_json::{Value, json};

#[path = "support/server.rs"]
mod server;
use server::{Server, scratch};

#[path = "support/nats.rs"]
mod nats;
use nats::start_nats;

const INBOX_SECRET: &str = "inbox-secret-0123456789";

const PROJECT: &str = r#"
template hello { channel in_app  subject "Welcome"  body "Tap to start" }
template note { channel in_app  subject "Note"  body "Note {{ trigger.n }}" }
template flash { channel in_app  subject "Flash sale"  body "Now" }
template read_it { channel email  subject "Glad you read it"  body "More" }
template unread { channel email  subject "You have a message"  body "Open the app" }

journey welcome {
  trigger signed_up
  send in_app hello as hello
  wait for hello.opened within 1d {
    send email read_it
  } else {
    send email unread
  }
}

journey notes {
  trigger note_posted
  reentry always
  send in_app note
}

journey flash {
  trigger sale_started
  send in_app flash with { ttl: "4s" }
}

journey on_opened {
  trigger "message.opened"
  reentry always
  emit opened with { id: trigger.message_id }
}

journey on_dismissed {
  trigger "message.dismissed"
  reentry always
  emit dismissed with { id: trigger.message_id }
}
"#;

fn project(dir: &Path) -> PathBuf {
    let project = dir.join("project");
    std::fs::create_dir_all(&project).expect("project dir");
    std::fs::write(project.join("inbox.journey"), PROJECT).expect("journey");
    project
}

/// Leases of 2.5 s, the inboxes swept every second, `[inbox]`, and the
/// `in_app` channel bound to the inbox, three messages a customer.
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("journey.toml");
    std::fs::write(
        &path,
        format!(
            "[nats]\nlease_ttl = \"2500ms\"\ninbox_sweep_every = \"1s\"\n\n[checkpoint]\nevery = \"2s\"\n\n\
             [inbox]\nsecret = \"{INBOX_SECRET}\"\n\n\
             [channels.in_app]\nprovider = \"inbox\"\nttl = \"1h\"\nmax_per_user = 3\n"
        ),
    )
    .expect("config");
    path
}

fn keys() -> InboxKeys {
    InboxKeys::new(&Inbox {
        secret: INBOX_SECRET.into(),
    })
    .expect("keys")
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// `user` with a device and an address: `in_app` and `email` sends reach them.
fn identify(server: &Server, user: &str, at: &str) {
    let body = json!({
        "userId": user,
        "messageId": format!("{user}-identify"),
        "traits": {
            "push_token": format!("device-{user}"),
            "email": format!("{user}@example.com"),
        },
        "timestamp": at,
    });
    server.post("/v1/identify", &body).expect("identified");
}

fn track(server: &Server, user: &str, event: &str, id: &str, at: &str, properties: Value) {
    let body = json!({
        "userId": user,
        "event": event,
        "messageId": id,
        "timestamp": at,
        "properties": properties,
    });
    server.post("/v1/track", &body).expect("tracked");
}

/// The feed's actions.
fn actions(server: &Server) -> Vec<Value> {
    server
        .feed()
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON"))
        .collect()
}

/// The message ids of `user`'s sends of `template`, in feed order.
fn sends(server: &Server, user: &str, template: &str) -> Vec<String> {
    actions(server)
        .iter()
        .filter(|a| a["kind"] == "send" && a["user_id"] == user && a["template"] == template)
        .filter_map(|a| a["message_id"].as_str().map(str::to_string))
        .collect()
}

/// The ids the `emit`s of `name` carry.
fn emitted(server: &Server, name: &str) -> Vec<String> {
    actions(server)
        .iter()
        .filter(|a| a["kind"] == "emit" && a["event"] == name)
        .map(|a| {
            a["properties"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn inbox(server: &Server, user: &str, token: Option<&str>) -> (u16, Value) {
    server.get(&format!("/v1/inbox/{user}"), token)
}

fn listed(answer: &Value) -> Vec<String> {
    answer["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m["message_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn mark(server: &Server, user: &str, id: &str, action: &str, token: Option<&str>) -> (u16, Value) {
    server.call("POST", &format!("/v1/inbox/{user}/{id}/{action}"), token)
}

/// Waits until `server` lists exactly `want` for `user`.
fn wait_listed(server: &Server, user: &str, token: &str, want: &[String]) {
    let mut last = Value::Null;
    let done = wait_until(Duration::from_secs(30), || {
        let (status, answer) = inbox(server, user, Some(token));
        last = answer;
        status == 200 && listed(&last) == want
    });
    assert!(done, "{user}'s inbox never listed {want:?}: {last}");
}

#[test]
fn two_processes_share_every_inbox_through_the_same_api() {
    let dir = scratch("nats-inbox-two");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let project = project(&dir);
    let config = config(&dir);
    let log = dir.join("serve.log");
    let a = nats::process(&project, &nats, &config, 4, &log);
    let b = nats::process(&project, &nats, &config, 4, &log);
    let keys = keys();
    let token = keys.token("eve");

    // The send is kept by whichever process delivers it; both list it.
    for user in ["eve", "max", "fay"] {
        identify(&a, user, "2026-03-02T09:00:00Z");
    }
    track(
        &a,
        "eve",
        "signed_up",
        "eve-1",
        "2026-03-02T10:00:00Z",
        json!({}),
    );
    let mut hello = Vec::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            hello = sends(&a, "eve", "hello");
            hello.len() == 1
        }),
        "{:?}",
        actions(&a)
    );
    let hello = hello.remove(0);
    for server in [&a, &b] {
        wait_listed(server, "eve", &token, std::slice::from_ref(&hello));
        let (_, answer) = inbox(server, "eve", Some(&token));
        let shown = &answer["messages"][0];
        assert_eq!(shown["subject"], "Welcome", "{answer}");
        assert_eq!(shown["body"], "Tap to start", "{answer}");
        assert_eq!(shown["journey"], "welcome", "{answer}");
        assert_eq!(shown["read_at"], Value::Null, "{answer}");
        // Only eve's token opens eve's inbox, on every process.
        for bad in [None, Some(keys.token("mallory")), Some("0".repeat(64))] {
            let (status, _) = inbox(server, "eve", bad.as_deref());
            assert_eq!(status, 401, "{bad:?}");
            let (status, _) = mark(server, "eve", &hello, "read", bad.as_deref());
            assert_eq!(status, 401, "{bad:?}");
        }
        let (status, _) = mark(server, "eve", "nope", "read", Some(&token));
        assert_eq!(status, 404);
        let (status, _) = mark(server, "eve", &hello, "frobnicate", Some(&token));
        assert_eq!(status, 404);
    }

    // Read on A; read again on B: the first read counts.
    let (status, first) = mark(&a, "eve", &hello, "read", Some(&token));
    assert_eq!(status, 200, "{first}");
    let read_at = first["message"]["read_at"].clone();
    assert!(read_at.is_string(), "{first}");
    let (status, again) = mark(&b, "eve", &hello, "read", Some(&token));
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["message"]["read_at"], read_at,
        "the first read counts"
    );
    let (_, on_b) = inbox(&b, "eve", Some(&token));
    assert_eq!(on_b["messages"][0]["read_at"], read_at, "{on_b}");
    // The journey waiting for the open goes on.
    assert!(
        wait_until(Duration::from_secs(30), || sends(&b, "eve", "read_it")
            .len()
            == 1),
        "the open moved `welcome` on: {:?}",
        actions(&b)
    );

    // Dismiss on B: gone from A's listing too.
    let (status, dismissed) = mark(&b, "eve", &hello, "dismiss", Some(&token));
    assert_eq!(status, 200, "{dismissed}");
    wait_listed(&a, "eve", &token, &[]);
    let (status, _) = mark(&a, "eve", &hello, "dismiss", Some(&token));
    assert_eq!(status, 200, "dismissing again changes nothing");

    // One `message.opened` and one `message.dismissed`, though each was
    // posted twice, on two processes.
    assert!(wait_until(Duration::from_secs(30), || {
        emitted(&a, "opened").len() == 1 && emitted(&a, "dismissed").len() == 1
    }));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(emitted(&a, "opened"), vec![hello.clone()]);
    assert_eq!(emitted(&b, "dismissed"), vec![hello.clone()]);
    assert_eq!(sends(&a, "eve", "unread").len(), 0);

    // `max_per_user = 3`: the newest three are kept.
    let max = keys.token("max");
    let mut notes: Vec<String> = Vec::new();
    for n in 0..5 {
        let at = format!("2026-03-02T11:00:0{n}Z");
        let target = if n % 2 == 0 { &a } else { &b };
        track(
            target,
            "max",
            "note_posted",
            &format!("note-{n}"),
            &at,
            json!({ "n": n }),
        );
        assert!(wait_until(Duration::from_secs(30), || {
            notes = sends(&a, "max", "note");
            notes.len() == n + 1
        }));
        let newest = notes.last().cloned().unwrap_or_default();
        assert!(
            wait_until(Duration::from_secs(30), || {
                listed(&inbox(&b, "max", Some(&max)).1).first() == Some(&newest)
            }),
            "note {n} was kept"
        );
    }
    let newest_first: Vec<String> = notes.iter().rev().take(3).cloned().collect();
    for server in [&a, &b] {
        let (_, answer) = inbox(server, "max", Some(&max));
        assert_eq!(listed(&answer), newest_first, "{answer}");
        assert_eq!(answer["messages"][0]["body"], "Note 4", "{answer}");
    }
    let (status, _) = mark(&a, "max", &notes[0], "read", Some(&max));
    assert_eq!(status, 404, "the oldest went to make room");

    // Marks of the three at once, from both processes: every one holds.
    std::thread::scope(|scope| {
        for (i, id) in newest_first.iter().enumerate() {
            for server in [&a, &b] {
                let (max, id) = (&max, id);
                let action = if i == 0 { "dismiss" } else { "read" };
                scope.spawn(move || {
                    let (status, answer) = mark(server, "max", id, action, Some(max));
                    assert_eq!(status, 200, "{answer}");
                });
            }
        }
    });
    let (_, answer) = inbox(&b, "max", Some(&max));
    assert_eq!(listed(&answer), newest_first[1..].to_vec(), "{answer}");
    for shown in answer["messages"].as_array().expect("messages") {
        assert!(shown["read_at"].is_string(), "{answer}");
    }

    // A send's own `ttl`: listed until it expires, then neither listed nor
    // markable.
    let flash_token = keys.token("fay");
    let started = Instant::now();
    track(
        &b,
        "fay",
        "sale_started",
        "fay-1",
        "2026-03-02T12:00:00Z",
        json!({}),
    );
    let mut flash = Vec::new();
    assert!(wait_until(Duration::from_secs(30), || {
        flash = sends(&b, "fay", "flash");
        flash.len() == 1
    }));
    wait_listed(&a, "fay", &flash_token, &flash);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "listed before its ttl"
    );
    std::thread::sleep(Duration::from_secs(4).saturating_sub(started.elapsed()));
    wait_listed(&b, "fay", &flash_token, &[]);
    let (status, _) = mark(&a, "fay", &flash[0], "read", Some(&flash_token));
    assert_eq!(status, 404, "an expired message cannot be marked");

    // Fay gets nothing more: the sweep (once a second here, by whichever
    // process runs partition 0) deletes her key; eve's, not expired, stays.
    let runtime = nats::runtime();
    runtime.block_on(async {
        let bucket = nats::jetstream(&nats.url)
            .await
            .get_key_value(INBOX_BUCKET)
            .await
            .expect("the bucket");
        let deadline = Instant::now() + Duration::from_secs(30);
        while bucket.get(key_token("fay")).await.expect("reads").is_some() {
            assert!(
                Instant::now() < deadline,
                "fay's expired message was never swept"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            bucket.get(key_token("eve")).await.expect("reads").is_some(),
            "eve's inbox holds a message of an hour"
        );
    });
    let swept = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        swept.contains("inboxes: swept 1 expired messages of 1 customers"),
        "the sweep says what it did"
    );
}

fn record(user: &str, id: &str, sent_ms: i64) -> InboxRecord {
    InboxRecord {
        user_key: user.into(),
        message_id: id.into(),
        sent_ms,
        expires_ms: sent_ms + 3_600_000,
        read_ms: None,
        dismissed_ms: None,
        content: b"{}".to_vec(),
    }
}

#[test]
fn keeps_and_marks_at_once_through_two_connections_lose_nothing() {
    let dir = scratch("nats-inbox-race");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let runtime = nats::runtime();
    runtime.block_on(async {
        let mut stores: Vec<Arc<dyn InboxStore>> = Vec::new();
        for _ in 0..2 {
            let js = nats::jetstream(&nats.url).await;
            let store =
                journey::service::nats::inbox::open(&js, &nats.url, 1, Duration::from_secs(60))
                    .await
                    .expect("the bucket opens");
            stores.push(store);
        }
        let now = 1_800_000_000_000;
        let per_store = 40;
        // Both connections keep 40 messages of one customer at once, each
        // message twice (a redelivered send).
        let mut tasks = Vec::new();
        for (s, store) in stores.iter().enumerate() {
            for i in 0..per_store {
                for _ in 0..2 {
                    let store = store.clone();
                    let id = format!("s{s}-m{i:02}");
                    tasks.push(tokio::spawn(async move {
                        store
                            .keep(record("ana", &id, now + i), 1_000, now + i)
                            .await
                    }));
                }
            }
        }
        let mut kept_now = 0;
        for task in tasks {
            if task.await.expect("joined").expect("kept") {
                kept_now += 1;
            }
        }
        assert_eq!(kept_now, 2 * per_store, "each message kept once");
        let listed = stores[1].list("ana", now).await.expect("listed");
        assert_eq!(listed.len(), (2 * per_store) as usize, "none lost");

        // Every message marked read on one connection and dismissed on the
        // other, at once: both marks of each hold, each new once.
        let mut tasks = Vec::new();
        for record in &listed {
            for (s, mark) in [(0, InboxMark::Read), (1, InboxMark::Dismissed)] {
                let store = stores[s].clone();
                let id = record.message_id.clone();
                tasks.push(tokio::spawn(async move {
                    store.mark("ana", &id, mark, now + 100).await
                }));
            }
        }
        for task in tasks {
            let marked = task.await.expect("joined").expect("marked");
            assert!(marked.is_some_and(|(_, new)| new), "each mark new once");
        }
        assert_eq!(
            stores[0].list("ana", now + 101).await.expect("listed"),
            Vec::<InboxRecord>::new(),
            "every one dismissed"
        );
        let again = stores[0]
            .mark("ana", &listed[0].message_id, InboxMark::Read, now + 200)
            .await
            .expect("marked");
        let (marked, new) = again.expect("still kept, dismissed");
        assert!(!new);
        assert_eq!(marked.read_ms, Some(now + 100));
        assert_eq!(marked.dismissed_ms, Some(now + 100));

        // `max_per_user` and expiry hold through the bucket as on one
        // machine: the oldest live ones and the expired ones make room.
        let store = &stores[0];
        let mut old = record("bob", "b0", now);
        old.expires_ms = now + 10;
        assert!(store.keep(old, 2, now).await.expect("kept"));
        for (i, id) in ["b1", "b2", "b3"].iter().enumerate() {
            let at = now + 20 + i as i64;
            assert!(
                store
                    .keep(record("bob", id, at), 2, at)
                    .await
                    .expect("kept")
            );
        }
        let ids: Vec<String> = stores[1]
            .list("bob", now + 30)
            .await
            .expect("listed")
            .into_iter()
            .map(|r| r.message_id)
            .collect();
        assert_eq!(ids, vec!["b3", "b2"]);
        assert_eq!(
            store
                .mark("bob", "b1", InboxMark::Read, now + 30)
                .await
                .expect("marked"),
            None,
            "b1 made room"
        );
    });
}

#[test]
fn the_sweep_drops_expired_messages_of_customers_who_get_no_more() {
    let dir = scratch("nats-inbox-sweep");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let runtime = nats::runtime();
    runtime.block_on(async {
        let js = nats::jetstream(&nats.url).await;
        // Slots of a minute: a message is named at the end of its minute.
        let store = journey::service::nats::inbox::open(&js, &nats.url, 1, Duration::from_secs(60))
            .await
            .expect("the bucket opens");
        let bucket = js.get_key_value(INBOX_BUCKET).await.expect("the bucket");
        let now = 1_800_000_000_000; // a minute's start
        let expiring = |user: &str, id: &str, expires_ms: i64| InboxRecord {
            expires_ms,
            ..record(user, id, now)
        };
        for (user, id, expires_ms) in [
            ("ana", "a1", now + 10_000),
            ("ana", "a2", now + 30_000),
            ("bob", "b1", now + 20_000),
            ("bob", "b2", now + 3_600_000),
            ("cy", "c1", now + 3_600_000),
        ] {
            let kept = store.keep(expiring(user, id, expires_ms), 10, now).await;
            assert_eq!(kept.ok(), Some(true), "{id}");
        }
        let ids = |records: Vec<InboxRecord>| -> Vec<String> {
            records.into_iter().map(|r| r.message_id).collect()
        };

        // Before the first minute's end nothing is swept, though a1 has
        // expired: it is only hidden.
        assert_eq!(store.sweep(now + 59_999).await.ok(), Some(Swept::default()));
        assert_eq!(
            ids(store.list("ana", now).await.expect("listed")),
            ["a2", "a1"]
        );

        // At its end: ana (named twice, looked at once) and bob lose the
        // expired ones, for good (listed as of before they expired); ana's
        // key, left empty, is deleted.
        let swept = store.sweep(now + 60_000).await.expect("swept");
        assert_eq!(
            swept,
            Swept {
                slots: 1,
                inboxes: 2,
                messages: 3
            }
        );
        assert!(store.list("ana", now).await.expect("listed").is_empty());
        assert!(bucket.get(key_token("ana")).await.expect("reads").is_none());
        assert_eq!(ids(store.list("bob", now).await.expect("listed")), ["b2"]);
        assert_eq!(ids(store.list("cy", now).await.expect("listed")), ["c1"]);
        // The slot was purged: a second sweep reads nothing.
        assert_eq!(store.sweep(now + 60_000).await.ok(), Some(Swept::default()));

        // An hour on, the rest.
        let swept = store.sweep(now + 3_660_000).await.expect("swept");
        assert_eq!(
            swept,
            Swept {
                slots: 1,
                inboxes: 2,
                messages: 2
            }
        );
        for user in ["bob", "cy"] {
            assert!(bucket.get(key_token(user)).await.expect("reads").is_none());
        }
        // A deleted inbox takes new messages.
        let later = now + 4_000_000;
        let kept = store.keep(record("ana", "a3", later), 10, later).await;
        assert_eq!(kept.ok(), Some(true));
        assert_eq!(ids(store.list("ana", later).await.expect("listed")), ["a3"]);
    });
}
