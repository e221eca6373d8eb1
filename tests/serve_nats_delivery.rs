//! Delivery under `journey serve --nats` (SERVICE.md §9), against a real
//! nats-server and the webhook receiver of the delivery tests (it checks
//! every Standard Webhooks signature): processes share the outbox's one
//! delivery consumer, so every send arrives once, its outcome event is
//! journaled once, and a `kill -9` repeats at most the attempt in flight,
//! with the same id; transient failures are retried with backoff and
//! `Retry-After`, a permanent one is `message.failed`, and a send that
//! runs out of deliveries (`nats.max_deliver`) is dead-lettered; a
//! tracked click taken by any process moves its journey on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/server.rs"]
mod server;
use server::{Server, scratch};

#[path = "support/nats.rs"]
mod nats;
use nats::{Nats, start_nats};

#[path = "support/links.rs"]
mod links;
use links::{links, message_of};

#[path = "support/receiver.rs"]
mod receiver;
use receiver::{Answer, Arrival, Receiver};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A webhook on `signed_up`; each outcome becomes an `emit` in the feed.
fn project(dir: &Path) -> PathBuf {
    let project = dir.join("project");
    std::fs::create_dir_all(&project).expect("project dir");
    std::fs::write(
        project.join("hooks.journey"),
        r#"
journey welcome {
  trigger signed_up
  send webhook hello
}

journey on_sent {
  trigger "message.sent"
  reentry always
  emit delivery_sent with { id: trigger.message_id, channel: trigger.channel }
}

journey on_failed {
  trigger "message.failed"
  reentry always
  emit delivery_failed with { id: trigger.message_id, error: trigger.error }
}
"#,
    )
    .expect("journey");
    project
}

/// Leases of 2.5 s, an ack wait of 2 s, `max_deliver` 3, and the webhook
/// channel (three attempts more than `max_deliver` allows for `down`).
fn config(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("journey.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[nats]
lease_ttl = "2500ms"
ack_wait = "2s"
max_deliver = 3

[checkpoint]
every = "2s"

[channels.webhook]
provider = "webhook"
url = "{url}"
secret = "{SECRET}"
concurrency = 4
max_attempts = 6
backoff = "300ms"
backoff_max = "2s"
timeout = "1s"
"#
        ),
    )
    .expect("config");
    path
}

fn process(project: &Path, nats: &Nats, config: &Path, clock: &str, log: &Path) -> Server {
    nats::process_on_clock(project, nats, config, clock, 4, log)
}

/// The feed's `emit` actions of `journey`.
fn emits(server: &Server, journey: &str) -> Vec<Value> {
    server
        .feed()
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON"))
        .filter(|a| a["kind"] == "emit" && a["journey"] == journey)
        .collect()
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

fn user_of(arrival: &Arrival) -> String {
    let body: Value = serde_json::from_str(&arrival.body).expect("the body is the send's JSON");
    body["user_id"].as_str().unwrap_or_default().to_string()
}

/// The arrivals by message id, each checked: signed, the send's JSON,
/// its id the message id and the idempotency key, the same body each time.
fn by_id(arrivals: &[Arrival]) -> BTreeMap<String, Vec<Arrival>> {
    let mut out: BTreeMap<String, Vec<Arrival>> = BTreeMap::new();
    for a in arrivals {
        assert!(a.verified, "a valid Standard Webhooks signature: {a:?}");
        let send: Value = serde_json::from_str(&a.body).expect("JSON");
        assert_eq!(send["kind"], "send", "only sends are posted");
        assert_eq!(a.id, send["message_id"], "webhook-id is the message id");
        assert_eq!(a.idempotency_key, a.id, "Idempotency-Key too");
        out.entry(a.id.clone()).or_default().push(a.clone());
    }
    for (id, same) in &out {
        assert!(
            same.windows(2).all(|w| w[0].body == w[1].body),
            "{id}: the same body every time"
        );
    }
    out
}

#[test]
fn three_processes_deliver_every_send_once_through_a_kill() {
    let dir = scratch("nats-delivery-three");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let hooks = Receiver::start(
        SECRET,
        Box::new(|_, _| Answer::Status(200, vec![], "thanks".into())),
    );
    let project = project(&dir);
    let config = config(&dir, &hooks.url);
    let log = dir.join("serve.log");
    let start = || process(&project, &nats, &config, "events", &log);
    let mut servers: Vec<Option<Server>> = vec![Some(start()), Some(start()), Some(start())];
    let users = 90;
    let stamp = |i: i64| format!("2026-03-02T10:{:02}:{:02}Z", i / 60, i % 60);
    let mut kills = 0;
    for i in 0..users {
        if i == users / 3 {
            // Sends are in flight: one process dies without a word.
            servers[0].take().expect("process 0 runs").kill();
            kills += 1;
        }
        if i == users * 2 / 3 {
            servers[0] = Some(start());
        }
        let alive: Vec<&Server> = servers.iter().flatten().collect();
        let target = alive[i as usize % alive.len()];
        let body = json!({
            "userId": format!("u{i}"),
            "event": "signed_up",
            "messageId": format!("u{i}-signed_up"),
            "timestamp": stamp(i),
        });
        target.post("/v1/track", &body).expect("tracked");
    }
    let survivor = servers[2].as_ref().expect("process 2 runs");
    let arrived = wait_until(Duration::from_secs(120), || {
        by_id(&hooks.arrivals()).len() == users as usize
    });
    let arrivals = by_id(&hooks.arrivals());
    assert!(arrived, "{} of {users} sends arrived", arrivals.len());
    for (id, same) in &arrivals {
        assert!(
            same.len() <= 1 + kills,
            "{id}: at most one repeat per kill, {} arrivals",
            same.len()
        );
    }
    let users_reached: Vec<String> = arrivals.values().map(|a| user_of(&a[0])).collect();
    assert_eq!(users_reached.len(), users as usize, "one message per user");
    // Each `message.sent` is journaled once: one `emit` per send, though
    // a repeat may have been journaled again (it is dropped as one).
    let journaled = wait_until(Duration::from_secs(60), || {
        emits(survivor, "on_sent").len() >= users as usize
    });
    let sent = emits(survivor, "on_sent");
    assert!(journaled, "{} of {users} outcomes journaled", sent.len());
    let mut ids: Vec<&str> = sent
        .iter()
        .map(|e| e["properties"]["id"].as_str().expect("the message id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), sent.len(), "no outcome twice");
    let expected: Vec<&str> = arrivals.keys().map(String::as_str).collect();
    assert_eq!(ids, expected, "an outcome for every send that arrived");
    // `--clock events`: outcomes are stamped with the deployment's clock
    // (the latest event's time), not the wall clock.
    let latest = stamp(users - 1);
    for emit in &sent {
        let at = emit["at"].as_str().expect("at");
        assert!(
            at.starts_with("2026-03-02T") && at <= latest.as_str(),
            "{emit}"
        );
    }
    assert!(emits(survivor, "on_failed").is_empty());
    // Every process reads the same feed.
    let restarted = servers[0].as_ref().expect("process 0 runs again");
    assert_eq!(restarted.feed(), survivor.feed());
}

/// Answers by the recipient's name.
fn misbehaving(arrival: &Arrival, nth: usize) -> Answer {
    let ok = || Answer::Status(200, vec![], "thanks".into());
    match (user_of(arrival).as_str(), nth) {
        ("limited", 1) => Answer::Status(
            429,
            vec![("Retry-After".into(), "2".into())],
            "slow down".into(),
        ),
        ("flaky", 1) => Answer::Status(500, vec![], "busy".into()),
        ("gone", _) => Answer::Status(410, vec![], "no such hook".into()),
        ("down", _) => Answer::Status(500, vec![], "broken".into()),
        _ => ok(),
    }
}

/// What the dead-letter stream holds: each message's payload and headers.
fn dead_letters(url: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let runtime = nats::runtime();
    runtime.block_on(async {
        let js = nats::jetstream(url).await;
        let mut stream = js.get_stream("JOURNEY_DEAD").await.expect("the stream");
        let last = stream.info().await.expect("its info").state.last_sequence;
        let mut out = Vec::new();
        for seq in 1..=last {
            let Ok(message) = stream.get_raw_message(seq).await else {
                continue;
            };
            let headers = message
                .headers
                .iter()
                .map(|(k, v)| {
                    let v = v.iter().map(ToString::to_string).collect::<Vec<_>>();
                    (k.to_string(), v.join(","))
                })
                .collect();
            out.push((
                String::from_utf8_lossy(&message.payload).to_string(),
                headers,
            ));
        }
        out
    })
}

#[test]
fn retries_failures_and_dead_letters() {
    let dir = scratch("nats-delivery-retries");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let hooks = Receiver::start(SECRET, Box::new(misbehaving));
    let project = project(&dir);
    let config = config(&dir, &hooks.url);
    let log = dir.join("serve.log");
    let one = process(&project, &nats, &config, "wall", &log);
    let two = process(&project, &nats, &config, "wall", &log);
    let users = ["ok", "limited", "flaky", "gone", "down"];
    for (i, user) in users.iter().enumerate() {
        let body =
            json!({ "userId": user, "event": "signed_up", "messageId": format!("{user}-1") });
        [&one, &two][i % 2]
            .post("/v1/track", &body)
            .expect("tracked");
    }
    let done = wait_until(Duration::from_secs(90), || {
        emits(&one, "on_sent").len() == 3 && emits(&one, "on_failed").len() == 2
    });
    assert!(
        done,
        "outcomes: {:?} {:?}",
        emits(&one, "on_sent"),
        emits(&one, "on_failed")
    );
    let arrivals = by_id(&hooks.arrivals());
    let of = |user: &str| -> Vec<Arrival> {
        arrivals
            .values()
            .find(|a| user_of(&a[0]) == user)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(of("ok").len(), 1);
    assert_eq!(of("gone").len(), 1, "a permanent failure is not retried");
    // 500, then 200 after the backoff (at least half of 300 ms).
    let flaky = of("flaky");
    assert_eq!(flaky.len(), 2);
    // The retry comes after the backoff, not after the ack wait (2 s): the
    // NAK carried the delay.
    let gap = flaky[1].at - flaky[0].at;
    assert!(
        gap >= Duration::from_millis(140) && gap < Duration::from_millis(1_500),
        "{gap:?}"
    );
    // Its record, in `/admin/users/{key}` of either process: the 500 as a
    // retry, then the 200.
    let record_of = |server: &Server, user: &str| -> Value {
        let (status, view) = server.get(&format!("/admin/users/{user}"), None);
        assert_eq!(status, 200, "{view}");
        let deliveries = view["deliveries"].as_array().cloned().unwrap_or_default();
        assert_eq!(deliveries.len(), 1, "one send: {view}");
        deliveries[0].clone()
    };
    for server in [&one, &two] {
        assert!(
            wait_until(
                Duration::from_secs(10),
                || record_of(server, "flaky")["status"] == "sent"
            ),
            "{}",
            record_of(server, "flaky")
        );
        let record = record_of(server, "flaky");
        assert_eq!(record["message_id"], flaky[0].id.as_str(), "{record}");
        assert_eq!(record["channel"], "webhook", "{record}");
        assert_eq!(record["provider"], "webhook", "{record}");
        let attempts = record["attempts"].as_array().cloned().unwrap_or_default();
        let outcomes: Vec<&Value> = attempts.iter().map(|a| &a["outcome"]).collect();
        assert_eq!(outcomes, [&json!("retry"), &json!("sent")], "{record}");
        assert!(
            attempts[0]["response"]
                .as_str()
                .is_some_and(|r| r.contains("500")),
            "{record}"
        );
    }
    // Retry-After (2 s) wins over the backoff.
    let limited = of("limited");
    assert_eq!(limited.len(), 2);
    let gap = limited[1].at - limited[0].at;
    assert!(gap >= Duration::from_millis(1_950), "Retry-After: {gap:?}");
    // `max_deliver` (3) comes before the channel's `max_attempts` (6).
    assert_eq!(of("down").len(), 3, "three deliveries");

    let failed = emits(&one, "on_failed");
    let error_of = |user: &str| {
        let id = &of(user)[0].id;
        failed
            .iter()
            .find(|e| e["properties"]["id"] == id.as_str())
            .map(|e| {
                e["properties"]["error"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .unwrap_or_else(|| panic!("{user} failed: {failed:?}"))
    };
    assert!(error_of("gone").contains("410"), "{}", error_of("gone"));
    let down = error_of("down");
    assert!(
        down.contains("gave up after 3 deliveries") && down.contains("500"),
        "{down}"
    );

    // Both failed sends are dead letters: the action, its sequence and why
    // (JetStream's advisories, of actions whose every delivery ended
    // without an answer, would be there too: there are none).
    let dead = dead_letters(&nats.url);
    let dead_ids: Vec<&str> = dead
        .iter()
        .filter_map(|(_, h)| h.get("Journey-Message-Id").map(String::as_str))
        .collect();
    let (gone, down) = (of("gone")[0].id.clone(), of("down")[0].id.clone());
    let mut expected = vec![gone.as_str(), down.as_str()];
    expected.sort_unstable();
    let mut got = dead_ids.clone();
    got.sort_unstable();
    assert_eq!(got, expected, "{dead:?}");
    for (payload, headers) in &dead {
        let action: Value = serde_json::from_str(payload).expect("the action's JSON");
        assert_eq!(action["kind"], "send");
        assert_eq!(
            headers.get("Journey-Message-Id").map(String::as_str),
            action["message_id"].as_str()
        );
        assert!(
            headers
                .get("Journey-Seq")
                .is_some_and(|s| s.parse::<u64>().is_ok())
        );
        assert!(headers.get("Journey-Error").is_some_and(|e| !e.is_empty()));
    }
}

const TRACKING: &str = "[tracking]\nbase_url = \"https://t.shop.example\"\n\
                        secret = \"tracking-secret-0123456789\"\n";

#[test]
fn a_tracked_click_on_any_process_moves_the_journey_on() {
    let dir = scratch("nats-delivery-click");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let project = dir.join("project");
    std::fs::create_dir_all(&project).expect("project dir");
    std::fs::write(
        project.join("shop.journey"),
        r#"
template sale {
  channel email
  subject "Sale"
  body "Our sale"
  html "<html><body><a href='https://shop.example/sale'>Sale</a></body></html>"
}
template thanks { channel email  subject "Thanks"  body "Thanks for looking" }
template nudge { channel email  subject "Still there?"  body "The sale ends soon" }

journey promo {
  trigger promo_started
  send email sale as sale
  wait for sale.clicked within 1d {
    send email thanks
  } else {
    send email nudge
  }
}
"#,
    )
    .expect("project");
    let config = dir.join("journey.toml");
    std::fs::write(
        &config,
        format!("[nats]\nlease_ttl = \"2500ms\"\n{TRACKING}"),
    )
    .expect("config");
    let log = dir.join("serve.log");
    let one = process(&project, &nats, &config, "events", &log);
    let two = process(&project, &nats, &config, "events", &log);
    for body in [
        json!({"type": "identify", "userId": "ana", "traits": {"email": "ana@example.com"},
               "messageId": "ana-1", "timestamp": "2026-03-02T10:00:00Z"}),
        json!({"type": "track", "userId": "ana", "event": "promo_started",
               "messageId": "ana-2", "timestamp": "2026-03-02T10:00:01Z"}),
    ] {
        one.post("/v1/batch", &json!({ "batch": [body] }))
            .expect("accepted");
    }
    let sends = |server: &Server, template: &str| -> Vec<Value> {
        server
            .feed()
            .iter()
            .map(|line| serde_json::from_str::<Value>(line).expect("JSON"))
            .filter(|a| a["kind"] == "send" && a["template"] == template)
            .collect()
    };
    assert!(wait_until(Duration::from_secs(60), || sends(&two, "sale")
        .len()
        == 1));
    let parsed = journey::service::config::Config::parse(TRACKING, &|_| None).expect("parses");
    let tracking = parsed.tracking().expect("checks").expect("is set");
    let sale = &sends(&two, "sale")[0];
    let (html, _) = journey::service::delivery::EmailDecorator::decorate(
        &tracking,
        &message_of(sale),
        sale["html"].as_str().map(str::to_string),
    );
    let html = html.expect("the decorated HTML");
    let click = links(&html, "/t/c/");
    assert_eq!(click.len(), 1, "{html}");
    // The other process takes the click: a redirect, and `sale.clicked`
    // journaled at the deployment's clock, within the wait.
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let response = agent
        .get(&format!("{}{}", two.base, click[0]))
        .call()
        .expect("a redirect");
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.header("Location"),
        Some("https://shop.example/sale")
    );
    assert!(
        wait_until(Duration::from_secs(60), || sends(&one, "thanks").len() == 1),
        "{:?}",
        one.feed()
    );
    assert!(sends(&one, "nudge").is_empty(), "{:?}", one.feed());
    // A forged token is a 404 that journals nothing.
    let forged = agent
        .get(&format!("{}/t/c/forged", one.base))
        .call()
        .map_or_else(
            |e| match e {
                ureq::Error::Status(code, _) => code,
                _ => 0,
            },
            |r| r.status(),
        );
    assert_eq!(forged, 404);
}
