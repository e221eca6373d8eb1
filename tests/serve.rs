//! `journey serve` against the real binary (SERVICE.md §4 and §10): the
//! actions feed equals `journey simulate` over the same events — posted
//! in random batches, with `kill -9` between requests and during them, and
//! restarts that re-post what was not acknowledged — and bad input over
//! HTTP is a clear 4xx that changes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/server.rs"]
mod server;
use server::{Rng, Server, assert_equivalent, bin, prepared_events, root, scratch, simulate};

/// Posts every message in random batches; a batch that gets no 200 (the
/// server died) is posted again to the next server.
fn post_all(
    messages: &[Value],
    rng: &mut Rng,
    mut server: Server,
    restart: &dyn Fn() -> Server,
    kills: u64,
) -> Server {
    let mut i = 0;
    let mut kills_left = kills;
    while i < messages.len() {
        let n = 1 + rng.below(40) as usize;
        let batch: Vec<Value> = messages[i..(i + n).min(messages.len())].to_vec();
        let body = json!({ "batch": batch });
        let kill_now = kills_left > 0 && rng.below(12) == 0;
        if kill_now {
            kills_left -= 1;
            if rng.below(2) == 0 {
                // Between requests.
                server.kill();
                server = restart();
            } else {
                // During one: the request races the kill; whether it was
                // kept or not, re-posting it is safe.
                server.kill_during_batch(&body, Duration::from_micros(rng.below(3_000)));
                server = restart();
            }
            // Re-post this batch (acknowledged or not) to the new server.
        }
        match server.post("/v1/batch", &body) {
            Ok(answer) => {
                assert_eq!(answer["success"], true, "{answer}");
                i += batch.len();
            }
            Err((code, text)) => panic!("a good batch was refused: {code} {text}"),
        }
    }
    assert_eq!(kills_left, 0, "every kill asked for happened");
    server
}

fn equivalence(name: &str, project: &Path, events: &Path, partitions: u32, kills: u64, seed: u64) {
    let dir = scratch(name);
    let (messages, prepared) = prepared_events(events, &dir);
    let expected = simulate(project, &prepared);
    let data = dir.join("data");
    let restart = || Server::start(project, &data, partitions, &[]);
    let mut rng = Rng(seed);
    let server = post_all(&messages, &mut rng, restart(), &restart, kills);
    let answer = server
        .post("/admin/clock", &json!({ "to": "end" }))
        .expect("the clock moves to the end");
    assert_eq!(answer["active_instances"], 0, "{answer}");
    assert_eq!(answer["pending_timers"], 0, "{answer}");
    let feed = server.feed();
    assert_equivalent(&feed, &expected, partitions == 1);
    // A clean stop, then a restart from the checkpoints: the same feed.
    assert_eq!(server.stop(), Some(0));
    let again = restart();
    assert_eq!(again.feed(), feed);
}

#[test]
fn the_example_project_through_kills_equals_simulate() {
    let project = root().join("journeys");
    let events = root().join("journeys/events.ndjson");
    equivalence("example-8", &project, &events, 8, 6, 0x9e37_79b9);
}

#[test]
fn one_partition_keeps_simulates_exact_order() {
    let project = root().join("journeys");
    let events = root().join("journeys/events.ndjson");
    equivalence("example-1", &project, &events, 1, 3, 0x1234_5678);
}

#[test]
fn every_runtime_fixture_equals_simulate() {
    let fixtures = root().join("tests/fixtures/runtime");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "journey"))
        .collect();
    names.sort();
    static SEED: AtomicU64 = AtomicU64::new(7);
    for journey in names {
        let events = journey.with_extension("ndjson");
        let name = journey
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("fixture")
            .to_string();
        let seed = SEED.fetch_add(1, Ordering::Relaxed);
        equivalence(&format!("fixture-{name}"), &journey, &events, 2, 0, seed);
    }
}

// ----------------------------------------------------------- bad input

fn raw_post(base: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let mut request = ureq::post(&format!("{base}{path}"));
    for (k, v) in headers {
        request = request.set(k, v);
    }
    match request.send_bytes(body) {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("no answer: {e}"),
    }
}

/// The status a request with a body of `length` bytes gets when it asks
/// first (`Expect: 100-continue`, as curl does for a large body) and sends
/// nothing more unless told to continue: a body the service refuses on its
/// headers is refused before it is sent. (Sent anyway, the service's early
/// answer can be lost to the connection it closes while the client still
/// writes.)
fn status_before_body(base: &str, path: &str, headers: &[(&str, &str)], length: usize) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("request head");
    let mut status = String::new();
    BufReader::new(stream)
        .read_line(&mut status)
        .expect("status line");
    status
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status:?}"))
}

#[test]
fn bad_input_is_a_clear_4xx_and_journals_nothing() {
    let dir = scratch("bad-input");
    let project = root().join("journeys");
    let config = dir.join("serve.toml");
    std::fs::write(&config, "[ingest]\nwrite_keys = [\"wk\"]\n").expect("config");
    let server = Server::start(
        &project,
        &dir.join("data"),
        2,
        &["--config", config.to_str().unwrap_or_default()],
    );
    let base = server.base.clone();
    let auth = ("Authorization", "Basic d2s6"); // "wk:"
    let json_type = ("Content-Type", "application/json");
    let good = json!({"userId": "u1", "event": "signed_up", "timestamp": "2026-03-02T10:00:00Z"});
    let mut typed = good.clone();
    typed["type"] = json!("track");
    // (path, headers, body, status, words of the error)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "/v1/track",
            vec![auth, json_type],
            b"{not json".to_vec(),
            400,
            "not JSON",
        ),
        (
            "/v1/track",
            vec![auth, json_type],
            b"[1,2]".to_vec(),
            400,
            "one JSON object",
        ),
        (
            "/v1/track",
            vec![auth, json_type],
            br#"{"userId":"u1","event":7,"timestamp":"2026-03-02T10:00:00Z"}"#.to_vec(),
            400,
            "event",
        ),
        (
            "/v1/track",
            vec![auth, json_type],
            br#"{"event":"signed_up","timestamp":"2026-03-02T10:00:00Z"}"#.to_vec(),
            400,
            "userId",
        ),
        (
            "/v1/track",
            vec![auth, json_type],
            br#"{"userId":"u1","event":"signed_up"}"#.to_vec(),
            400,
            "timestamp",
        ),
        (
            "/v1/batch",
            vec![auth, json_type],
            serde_json::to_vec(
                &json!({"batch": [typed.clone(), {"type": "track", "userId": 5.5}]}),
            )
            .unwrap_or_default(),
            400,
            "",
        ),
        (
            "/v1/track",
            vec![json_type],
            serde_json::to_vec(&good).unwrap_or_default(),
            401,
            "write key",
        ),
        (
            "/v1/track",
            vec![("Authorization", "Basic bm9wZTo="), json_type],
            serde_json::to_vec(&good).unwrap_or_default(),
            401,
            "write key",
        ),
        (
            "/v1/track",
            vec![auth, json_type, ("Content-Encoding", "gzip")],
            b"not gzip at all".to_vec(),
            400,
            "gzip",
        ),
        (
            "/v1/nothing",
            vec![auth, json_type],
            b"{}".to_vec(),
            404,
            "",
        ),
    ];
    for (path, headers, body, status, words) in cases {
        let (code, answer) = raw_post(&base, path, &headers, &body);
        assert_eq!(code, status, "{path} {answer}");
        assert_eq!(answer["success"], false, "{answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| e.contains(words)),
            "{path}: {answer}"
        );
    }
    // A body over the limit (500 KiB) is refused on its length.
    assert_eq!(
        status_before_body(&base, "/v1/track", &[auth, json_type], 600 * 1024),
        413
    );
    // The second message of the batch is named.
    let (_, answer) = raw_post(
        &base,
        "/v1/batch",
        &[auth, json_type],
        &serde_json::to_vec(&json!({"batch": [typed.clone(), {"type": "track", "userId": "u2"}]}))
            .unwrap_or_default(),
    );
    assert_eq!(answer["index"], 1, "{answer}");
    // Nothing of any of it was kept, and the service still takes good input.
    let (code, _) = raw_post(&base, "/admin/clock", &[json_type], br#"{"to":"end"}"#);
    assert_eq!(code, 200);
    assert!(server.feed().is_empty(), "nothing was journaled");
    let (code, answer) = raw_post(
        &base,
        "/v1/track",
        &[auth, json_type],
        &serde_json::to_vec(&good).unwrap_or_default(),
    );
    assert_eq!(code, 200, "{answer}");
    assert!(
        answer["messageId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    // The write key in the body works too.
    let mut keyed = good.clone();
    keyed["writeKey"] = json!("wk");
    keyed["messageId"] = json!("m-2");
    let (code, answer) = raw_post(
        &base,
        "/v1/track",
        &[json_type],
        &serde_json::to_vec(&keyed).unwrap_or_default(),
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["messageId"], "m-2");
    // What happened is counted where Prometheus reads it.
    let metrics = ureq::get(&format!("{base}/metrics"))
        .call()
        .expect("metrics answer")
        .into_string()
        .unwrap_or_default();
    for line in [
        "journey_ingested_total{type=\"track\"} 2",
        "journey_rejected_total{reason=\"malformed\"} 8",
        "journey_rejected_total{reason=\"unauthorised\"} 2",
        "journey_rejected_total{reason=\"too_large\"} 1",
        "journey_ingest_pending 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    assert!(metrics.contains("journey_journal_entries"), "{metrics}");
    assert!(
        metrics.contains("journey_active_instances{journey=\"onboarding\"}"),
        "{metrics}"
    );
}

#[test]
fn a_data_directory_keeps_its_partitions_and_clock() {
    let dir = scratch("fixed");
    let project = root().join("journeys");
    let data = dir.join("data");
    let server = Server::start(&project, &data, 4, &[]);
    assert_eq!(server.stop(), Some(0));
    let output = Command::new(bin())
        .arg("serve")
        .arg(&project)
        .arg("--data")
        .arg(&data)
        .args(["--partitions", "8", "--listen", "127.0.0.1:0"])
        .output()
        .expect("serve runs");
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("4 partitions with `--clock events`"), "{err}");
}

#[test]
fn a_public_address_without_keys_is_refused() {
    let output = Command::new(bin())
        .args(["serve", "journeys", "--listen", "0.0.0.0:0"])
        .current_dir(root())
        .output()
        .expect("serve runs");
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("without write keys and an admin token"),
        "{err}"
    );
}

/// `--clock wall`: timers fire when the wall clock reaches them, and a
/// customer waiting at a `kill -9` still gets the message after a restart.
#[test]
fn wall_clock_timers_fire_and_survive_a_kill() {
    let dir = scratch("wall");
    let project = dir.join("ping.journey");
    std::fs::write(
        &project,
        "journey ping {\n  trigger signed_up\n  wait 2s\n  send webhook \"ping\"\n}\n",
    )
    .expect("project");
    let data = dir.join("data");
    let start = || Server::start_with(&project, &data, &["--clock", "wall"]);
    let server = start();
    for user in ["ana", "bob"] {
        let answer = server
            .post("/v1/track", &json!({"userId": user, "event": "signed_up"}))
            .expect("accepted");
        assert_eq!(answer["success"], true);
    }
    assert!(
        server
            .post("/admin/clock", &json!({"to": "end"}))
            .is_err_and(|(code, _)| code == 409),
        "the wall clock is not moved by hand"
    );
    // Both entered (actions are committed just after the events are);
    // kill before the two seconds are up.
    let _ = ureq::get(&format!("{}/v1/actions?after=1&wait=5", server.base)).call();
    let entered = server.feed();
    assert_eq!(entered.len(), 2, "{entered:?}");
    server.kill();
    let server = start();
    let deadline = Instant::now() + Duration::from_secs(30);
    let feed = loop {
        let feed = server.feed();
        if feed.len() >= 6 || Instant::now() > deadline {
            break feed;
        }
        let _ = ureq::get(&format!("{}/v1/actions?after=2&wait=2", server.base)).call();
    };
    let kinds: Vec<String> = feed
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
            format!(
                "{} {}",
                v["user_id"].as_str().unwrap_or(""),
                v["kind"].as_str().unwrap_or("")
            )
        })
        .collect();
    for user in ["ana", "bob"] {
        for kind in ["enter", "send", "exit"] {
            let n = kinds
                .iter()
                .filter(|k| **k == format!("{user} {kind}"))
                .count();
            assert_eq!(n, 1, "{user} {kind} once: {kinds:?}");
        }
    }
    let at = |kind: &str| -> i64 {
        feed.iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["user_id"] == "ana" && v["kind"] == kind)
            .and_then(|v| v["at"].as_str().and_then(journey::value::parse_timestamp))
            .unwrap_or(0)
    };
    assert!(at("send") - at("enter") >= 2_000, "the wait held: {feed:?}");
}

#[test]
fn logs_can_be_json_lines() {
    let dir = scratch("json-logs");
    let port = server::free_port();
    let child = Command::new(bin())
        .arg("serve")
        .arg(root().join("journeys"))
        .arg("--data")
        .arg(dir.join("data"))
        .args(["--log-format", "json", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while ureq::get(&format!("http://127.0.0.1:{port}/readyz"))
        .call()
        .is_err()
    {
        assert!(Instant::now() < deadline, "ready in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().expect("serve stops");
    assert_eq!(output.status.code(), Some(0));
    let err = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(lines.len() >= 3, "{err}");
    assert!(
        lines
            .iter()
            .all(|l| l["level"] == "info" && l["ts"].is_string())
    );
    assert!(lines.iter().any(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("listening on"))
    }));
}

/// Actions leave the feed after the retention; reading before what is
/// kept is a 410 that says where to read from.
#[test]
fn actions_past_the_retention_are_gone_with_a_410() {
    let dir = scratch("retention");
    let project = dir.join("ping.journey");
    std::fs::write(
        &project,
        "journey ping {\n  trigger signed_up\n  reentry always\n  send webhook \"ping\"\n}\n",
    )
    .expect("project");
    let config = dir.join("serve.toml");
    std::fs::write(&config, "[feed]\nretention = \"1s\"\n").expect("config");
    let server = Server::start(
        &project,
        &dir.join("data"),
        1,
        &["--config", config.to_str().unwrap_or_default()],
    );
    let sign_up = |id: &str, at: &str| json!({"type": "track", "userId": "ana", "event": "signed_up", "timestamp": at, "messageId": id});
    server
        .post(
            "/v1/batch",
            &json!({"batch": [sign_up("a", "2026-03-02T10:00:00Z")]}),
        )
        .expect("accepted");
    let _ = server.post("/admin/clock", &json!({"to": "2026-03-02T10:00:00Z"}));
    assert_eq!(server.feed().len(), 3, "enter, send, exit");
    // Retention drops actions in a commit at most once a second, and
    // delivery's cursor (written with the journal within a second of the
    // actions) may take that second's turn: past two seconds, the next
    // commit is sure to drop the first three, and b's (a second younger
    // than that) stay.
    std::thread::sleep(Duration::from_millis(2_200));
    server
        .post(
            "/v1/batch",
            &json!({"batch": [sign_up("b", "2026-03-02T11:00:00Z")]}),
        )
        .expect("accepted");
    let _ = server.post("/admin/clock", &json!({"to": "2026-03-02T11:00:00Z"}));
    let gone = ureq::get(&format!("{}/v1/actions?after=0", server.base)).call();
    match gone {
        Err(ureq::Error::Status(410, response)) => {
            let body: Value = response.into_json().unwrap_or(Value::Null);
            let text = body["error"].as_str().unwrap_or_default();
            assert!(text.contains("after=3"), "{body}");
        }
        other => panic!("expected 410, got {:?}", other.map(|r| r.status())),
    }
    let kept = ureq::get(&format!("{}/v1/actions?after=3", server.base))
        .call()
        .expect("the kept actions")
        .into_string()
        .unwrap_or_default();
    assert_eq!(kept.lines().count(), 3, "{kept}");
    assert!(kept.starts_with("{\"seq\":4,"), "{kept}");
}
