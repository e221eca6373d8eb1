//! Delivery through the `webhook` provider (SERVICE.md §6), against the
//! real `journey serve` binary and a local receiver that checks every
//! Standard Webhooks signature and answers as receivers do: 200, 429 with
//! `Retry-After`, 5xx, 410, no answer (a timeout), a connection reset.
//! Retries, their spacing, the final failures, the rate limit, the
//! outcome events the journeys react to, `/admin/users` and `/metrics`;
//! and `kill -9` during delivery: every send arrives, and a repeat only
//! ever carries the id (and body) of its first arrival, at most once per
//! kill.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/server.rs"]
mod server;
use server::{Server, scratch};

#[path = "support/receiver.rs"]
mod receiver;
use receiver::{Answer, Arrival, Receiver};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A project that sends a webhook on `signed_up` and an sms (also bound to
/// the webhook provider, rate-limited) on `burst`, and reacts to the
/// outcomes: each becomes an `emit` in the feed.
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

journey burst {
  trigger burst
  send sms burst_note
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

fn config(dir: &Path, url: &str, extra: &str) -> PathBuf {
    let path = dir.join("journey.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[channels.webhook]
provider = "webhook"
url = "{url}"
secret = "{SECRET}"
concurrency = 4
max_attempts = 3
backoff = "300ms"
backoff_max = "2s"
timeout = "1s"
{extra}
"#
        ),
    )
    .expect("config");
    path
}

fn track(server: &Server, user: &str, event: &str) {
    let body = json!({ "userId": user, "event": event, "messageId": format!("{user}-{event}") });
    server.post("/v1/track", &body).expect("tracked");
}

/// The feed's `emit` actions of `journey`, by user.
fn emits(server: &Server, journey: &str) -> BTreeMap<String, Value> {
    server
        .feed()
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON"))
        .filter(|a| a["kind"] == "emit" && a["journey"] == journey)
        .map(|a| (a["user_id"].as_str().unwrap_or_default().to_string(), a))
        .collect()
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

fn user_of(arrival: &Arrival) -> String {
    let body: Value = serde_json::from_str(&arrival.body).expect("the body is the send's JSON");
    body["user_id"].as_str().unwrap_or_default().to_string()
}

/// Answers by the recipient's name: how each receiver misbehaves.
fn misbehaving(arrival: &Arrival, nth: usize) -> Answer {
    let ok = || Answer::Status(200, vec![], "thanks".into());
    match (user_of(arrival).as_str(), nth) {
        ("limited", 1) => Answer::Status(
            429,
            vec![("Retry-After".into(), "2".into())],
            "slow down".into(),
        ),
        ("flaky", 1 | 2) => Answer::Status(503, vec![], "busy".into()),
        ("slow", 1) => Answer::Hang(Duration::from_secs(3)),
        ("reset", 1) => Answer::Reset,
        ("gone", _) => Answer::Status(410, vec![], "no such hook".into()),
        ("down", _) => Answer::Status(500, vec![], "broken".into()),
        _ => ok(),
    }
}

#[test]
fn webhooks_are_signed_retried_and_their_outcomes_journaled() {
    let dir = scratch("delivery-webhook");
    let hooks = Receiver::start(SECRET, Box::new(misbehaving));
    let config = config(
        &dir,
        &hooks.url,
        &format!(
            "[channels.sms]\nprovider = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\nrate = \"5/s\"\n",
            hooks.url
        ),
    );
    let project = project(&dir);
    let data = dir.join("data");
    let server = Server::start_with(
        &project,
        &data,
        &[
            "--clock",
            "wall",
            "--config",
            config.to_str().expect("utf-8"),
        ],
    );
    let good = ["ok-1", "ok-2", "ok-3", "limited", "flaky", "slow", "reset"];
    let bad = ["gone", "down"];
    for user in good.iter().chain(&bad) {
        track(&server, user, "signed_up");
    }
    let sent = wait_until(Duration::from_secs(30), || {
        emits(&server, "on_sent").len() == good.len()
            && emits(&server, "on_failed").len() == bad.len()
    });
    assert!(
        sent,
        "outcomes: {:?} {:?}",
        emits(&server, "on_sent"),
        emits(&server, "on_failed")
    );

    let arrivals = hooks.arrivals();
    let mut by_user: BTreeMap<String, Vec<&Arrival>> = BTreeMap::new();
    for a in &arrivals {
        assert!(a.verified, "a valid Standard Webhooks signature: {a:?}");
        assert_eq!(a.path, "/hooks");
        assert_eq!(a.content_type, "application/json");
        let send: Value = serde_json::from_str(&a.body).expect("JSON");
        assert_eq!(send["kind"], "send", "only sends are posted");
        assert_eq!(a.id, send["message_id"], "webhook-id is the message id");
        assert_eq!(a.idempotency_key, a.id, "Idempotency-Key too");
        by_user.entry(user_of(a)).or_default().push(a);
    }
    let count = |user: &str| by_user.get(user).map_or(0, Vec::len);
    for user in ["ok-1", "ok-2", "ok-3", "gone"] {
        assert_eq!(count(user), 1, "{user}: one attempt");
    }
    assert_eq!(count("limited"), 2);
    assert_eq!(count("flaky"), 3);
    assert_eq!(count("slow"), 2);
    assert_eq!(count("reset"), 2);
    assert_eq!(count("down"), 3, "max_attempts");
    for attempts in by_user.values() {
        let ids: Vec<&str> = attempts.iter().map(|a| a.id.as_str()).collect();
        assert!(
            ids.windows(2).all(|w| w[0] == w[1]),
            "one key for every attempt: {ids:?}"
        );
        let bodies: Vec<&str> = attempts.iter().map(|a| a.body.as_str()).collect();
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "the same body");
    }
    // Retry-After (2 s) wins over the backoff (150-300 ms).
    let limited = &by_user["limited"];
    let gap = limited[1].at - limited[0].at;
    assert!(
        gap >= Duration::from_millis(1_950),
        "Retry-After honoured: {gap:?}"
    );
    // Backoff with equal jitter: at least half of 300 ms, then of 600 ms.
    let flaky = &by_user["flaky"];
    let (first, second) = (flaky[1].at - flaky[0].at, flaky[2].at - flaky[1].at);
    assert!(first >= Duration::from_millis(140), "{first:?}");
    assert!(second >= Duration::from_millis(290), "{second:?}");
    assert!(first < Duration::from_millis(1_500) && second < Duration::from_millis(1_500));
    // The hung attempt timed out after `timeout` (1 s).
    let slow = &by_user["slow"];
    assert!(slow[1].at - slow[0].at >= Duration::from_secs(1));

    // The outcome events carry what a journey needs.
    let sent = emits(&server, "on_sent");
    let failed = emits(&server, "on_failed");
    let ids: BTreeMap<String, String> = by_user
        .iter()
        .map(|(u, a)| (u.clone(), a[0].id.clone()))
        .collect();
    for user in good {
        let text = sent[user].to_string();
        assert!(
            text.contains(&ids[user]) && text.contains("webhook"),
            "{text}"
        );
    }
    let gone = failed["gone"].to_string();
    assert!(
        gone.contains(&ids["gone"]) && gone.contains("410"),
        "{gone}"
    );
    let down = failed["down"].to_string();
    assert!(
        down.contains("gave up after 3 attempts") && down.contains("500"),
        "{down}"
    );

    // `/admin/users` tells every attempt.
    let (code, flaky) = server.get("/admin/users/flaky", None);
    assert_eq!(code, 200, "{flaky}");
    let delivery = &flaky["deliveries"][0];
    assert_eq!(delivery["status"], "sent", "{delivery}");
    assert_eq!(delivery["provider"], "webhook");
    assert_eq!(delivery["message_id"], ids["flaky"].as_str());
    let outcomes: Vec<&str> = delivery["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(outcomes, ["retry", "retry", "sent"], "{delivery}");
    assert!(
        delivery["attempts"][0]["response"]
            .as_str()
            .unwrap_or_default()
            .contains("503")
    );
    let (_, down) = server.get("/admin/users/down", None);
    assert_eq!(down["deliveries"][0]["status"], "failed");
    assert!(
        down["deliveries"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("gave up"),
        "{down}"
    );

    // The rate: `5/s` takes 5 at once, then 5 a second.
    let before = hooks.arrivals().len();
    let burst: Vec<String> = (0..15).map(|i| format!("burst-{i}")).collect();
    for user in &burst {
        let identify = json!({ "userId": user, "traits": { "phone": "+15550100" } });
        server.post("/v1/identify", &identify).expect("identified");
        track(&server, user, "burst");
    }
    let all = hooks.wait_for(Duration::from_secs(20), |a| a.len() >= before + 15);
    let times: Vec<Instant> = all[before..].iter().map(|a| a.at).collect();
    assert_eq!(times.len(), 15);
    let spread = times[14] - times[0];
    assert!(
        spread >= Duration::from_millis(1_700),
        "rate-limited: {spread:?}"
    );

    // The metrics say so, by channel and provider; no secret in them.
    let metrics = ureq::get(&format!("{}/metrics", server.base))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    let line = |prefix: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };
    assert_eq!(
        line(r#"journey_deliveries_total{channel="webhook",provider="webhook",outcome="failed"}"#),
        2.0,
        "{metrics}"
    );
    assert_eq!(
        line(
            r#"journey_delivery_attempts_total{channel="webhook",provider="webhook",outcome="retry"}"#
        ),
        8.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("journey_delivery_seconds_bucket{channel=\"sms\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("journey_outbox_pending{channel=\"webhook\"} 0"),
        "{metrics}"
    );
    assert!(!metrics.contains("MfKQ9r8"), "no secret in the metrics");
    let _ = server.stop();
}

/// `kill -9` while sends are in flight, restarted each time: every send
/// reaches the receiver; distinct ids equal the sends; a repeat carries the
/// same id and body as its first arrival, at most one per kill (one
/// attempt in flight at a time: `concurrency = 1`).
#[test]
fn a_kill_during_delivery_resends_at_most_the_attempt_in_flight() {
    let dir = scratch("delivery-kill");
    let hooks = Receiver::start(
        SECRET,
        Box::new(|_, _| {
            // Long enough that a kill often lands during an attempt.
            std::thread::sleep(Duration::from_millis(15));
            Answer::Status(200, vec![], "ok".into())
        }),
    );
    let config = config(&dir, &hooks.url, "");
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("concurrency = 4", "concurrency = 1");
    std::fs::write(&config, text).expect("config");
    let project = project(&dir);
    let data = dir.join("data");
    let args = [
        "--clock",
        "wall",
        "--config",
        config.to_str().expect("utf-8"),
    ];
    let mut server = Server::start_with(&project, &data, &args);
    let users: Vec<String> = (0..60).map(|i| format!("u{i:02}")).collect();
    for user in &users {
        track(&server, user, "signed_up");
    }
    let mut kills = 0;
    let mut seen = 0;
    while kills < 4 {
        // Kill once a few more have arrived: mid-stream, not before it.
        let target = seen + 5;
        let arrivals = hooks.wait_for(Duration::from_secs(20), |a| a.len() >= target);
        seen = arrivals.len();
        if seen >= users.len() {
            break;
        }
        server.kill();
        kills += 1;
        server = Server::start_with(&project, &data, &args);
    }
    let arrivals = hooks.wait_for(Duration::from_secs(60), |a| {
        a.iter()
            .map(|a| &a.id)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            >= users.len()
    });
    let mut first: BTreeMap<String, String> = BTreeMap::new();
    let mut repeats = 0;
    for a in &arrivals {
        assert!(a.verified, "{a:?}");
        match first.get(&a.id) {
            Some(body) => {
                repeats += 1;
                assert_eq!(
                    body, &a.body,
                    "a repeat carries its first arrival's id and body"
                );
            }
            None => {
                first.insert(a.id.clone(), a.body.clone());
            }
        }
    }
    assert_eq!(first.len(), users.len(), "every send arrived");
    assert!(kills >= 2, "the kills landed during delivery ({kills})");
    assert!(repeats <= kills, "{repeats} repeats after {kills} kills");
    // Every outcome reached the journeys once, whatever was resent: a
    // repeated `message.sent` has the same `messageId` and is ignored.
    let outcomes = || {
        server
            .feed()
            .iter()
            .filter(|l| l.contains("\"kind\":\"emit\"") && l.contains("\"journey\":\"on_sent\""))
            .count()
    };
    assert!(wait_until(Duration::from_secs(30), || outcomes() >= users.len()));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(outcomes(), users.len(), "one outcome event per send");
    let _ = server.stop();
}

/// `journey serve --check-config` checks every channel's settings before
/// anything runs, names what is wrong, and never repeats a secret.
#[test]
fn check_config_names_what_is_wrong_with_a_channel() {
    let dir = scratch("delivery-check-config");
    let project = project(&dir);
    let check = |toml: &str| {
        let config = dir.join("check.toml");
        std::fs::write(&config, toml).expect("config");
        let output = std::process::Command::new(server::bin())
            .arg("serve")
            .arg(&project)
            .arg("--check-config")
            .arg("--config")
            .arg(&config)
            .arg("--data")
            .arg(dir.join("unused"))
            .output()
            .expect("journey runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let good = format!(
        "[channels.webhook]\nprovider = \"webhook\"\nurl = \"http://127.0.0.1:9/h\"\nsecret = \"{SECRET}\"\n"
    );
    let (code, stderr) = check(&good);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("valid"), "{stderr}");
    let cases = [
        (
            "[channels.webhook]\nprovider = \"webhook\"\nurl = \"http://h/\"\nsecret = \"whsec_not*base64\"\n",
            "`channels.webhook`: `secret` must be `whsec_`",
        ),
        (
            &*format!(
                "[channels.webhook]\nprovider = \"webhook\"\nurl = \"ftp://h/\"\nsecret = \"{SECRET}\"\n"
            ),
            "`channels.webhook`: `url` is not an http:// or https:// URL",
        ),
        (
            "[channels.email]\nprovider = \"smtp\"\nurl = \"smtp://me:hunter2@127.0.0.1:25\"\n",
            "`channels.email`: missing field `from`",
        ),
        (
            "[channels.email]\nprovider = \"smtp\"\nurl = \"smtp://me:hunter2@127.0.0.1:25\"\nfrom = \"Shop <hello@shop.example>\"\nrate = \"lots\"\n",
            "`channels.email`: `rate = \"lots\"` is not a rate",
        ),
        (
            &*format!(
                "[channels.emial]\nprovider = \"webhook\"\nurl = \"http://h/\"\nsecret = \"{SECRET}\"\n"
            ),
            "`channels.emial`: the project has no such channel",
        ),
        (
            "[channels.sms]\nprovider = \"carrier-pigeon\"\n",
            "`channels.sms`: unknown provider `carrier-pigeon`",
        ),
    ];
    for (toml, expected) in cases {
        let (code, stderr) = check(toml);
        assert_eq!(code, Some(2), "{toml}: {stderr}");
        assert!(stderr.contains(expected), "{toml}: {stderr}");
        assert!(
            !stderr.contains("hunter2") && !stderr.contains("MfKQ9r8"),
            "{stderr}"
        );
    }
}

/// A deployment that only logged its sends (no channel bound to a
/// provider), then restarted with a webhook bound: the receiver gets the
/// sends committed after that, never the ones the first run only logged,
/// whether the first run stopped cleanly or was killed.
#[test]
fn a_provider_configured_later_starts_after_the_logged_sends() {
    for killed in [false, true] {
        let dir = scratch(if killed {
            "delivery-later-killed"
        } else {
            "delivery-later"
        });
        let hooks = Receiver::start(
            SECRET,
            Box::new(|_, _| Answer::Status(200, vec![], "ok".into())),
        );
        let project = project(&dir);
        let data = dir.join("data");
        let server = Server::start_with(&project, &data, &["--clock", "wall"]);
        for user in ["before-1", "before-2"] {
            track(&server, user, "signed_up");
        }
        let logged = wait_until(Duration::from_secs(20), || {
            server
                .feed()
                .iter()
                .filter(|l| l.contains("\"kind\":\"send\""))
                .count()
                == 2
        });
        assert!(logged, "both sends in the feed: {:?}", server.feed());
        let (_, alice) = server.get("/admin/users/before-1", None);
        assert_eq!(alice["deliveries"], json!([]), "nothing delivered: {alice}");
        if killed {
            // The cursor is written at least once a second.
            std::thread::sleep(Duration::from_millis(1_500));
            server.kill();
        } else {
            server.stop();
        }

        let config = config(&dir, &hooks.url, "");
        let server = Server::start_with(
            &project,
            &data,
            &[
                "--clock",
                "wall",
                "--config",
                config.to_str().expect("utf-8"),
            ],
        );
        track(&server, "after", "signed_up");
        let arrived = hooks.wait_for(Duration::from_secs(20), |a| !a.is_empty());
        // A moment more for anything that should not come.
        std::thread::sleep(Duration::from_millis(500));
        let users: Vec<String> = hooks.arrivals().iter().map(user_of).collect();
        assert_eq!(users, ["after"], "killed: {killed}; arrivals {arrived:?}");
        server.stop();
    }
}
