//! The stream test of `journey serve --nats` (SERVICE.md §9, §10): three
//! processes behind random ingest targets take the example project's
//! events, then a generated stream of 100,000 customers (seeded, the same
//! every run), in requests of 100; one process is killed (`kill -9`)
//! mid-stream, during a request, and started again later, a second one is
//! killed near the end. The actions any process reads in `/v1/actions`
//! are `journey simulate`'s on the same input: as many, the same per
//! customer in the same order (so none twice and none lost); every request
//! not acknowledged is posted again to another process.
//!
//! `JOURNEY_STREAM_USERS` sizes the generated stream (100,000 customers,
//! about 148,000 events).

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/server.rs"]
mod server;
use server::{Rng, Server, assert_equivalent, per_user, prepared_events, scratch, simulate};
#[path = "support/nats.rs"]
mod nats;
use nats::{config, end_clock, example, process, start_nats};

/// 2026-03-30T00:00:00Z: the day after the example's events.
const GENERATED_START_MS: i64 = 1_774_828_800_000;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The generated stream: `JOURNEY_STREAM_USERS` customers (100,000), one
/// to three events each, a few milliseconds apart: every customer views a
/// product (no journey starts), a third also sign up (onboarding), a
/// seventh also book a class (class reminders, timers a day later).
fn generated(rng: &mut Rng) -> Vec<Value> {
    let users = env_number("JOURNEY_STREAM_USERS", 100_000);
    let mut at = GENERATED_START_MS;
    let mut out = Vec::new();
    let mut event = |at: i64, id: String, user: &str, name: &str, properties: Value| {
        out.push(json!({
            "type": "track",
            "event": name,
            "userId": user,
            "properties": properties,
            "timestamp": jiff::Timestamp::from_millisecond(at).expect("a time").to_string(),
            "messageId": id,
        }));
    };
    for i in 0..users {
        let user = format!("gen-{i:06}");
        at += 1 + rng.below(40) as i64;
        event(
            at,
            format!("g-{i}-0"),
            &user,
            "product_viewed",
            json!({ "product_id": "sku-1042" }),
        );
        if i % 3 == 0 {
            at += 1;
            event(
                at,
                format!("g-{i}-1"),
                &user,
                "signed_up",
                json!({ "source": "web" }),
            );
        }
        if i % 7 == 0 {
            at += 1;
            let starts = jiff::Timestamp::from_millisecond(at + 86_400_000).expect("a time");
            event(
                at,
                format!("g-{i}-2"),
                &user,
                "class_booked",
                json!({ "class_id": format!("c{i}"), "starts_at": starts.to_string() }),
            );
        }
    }
    out
}

/// The example's events (each with a `messageId`), then the generated
/// stream's, and the file simulate reads them from.
fn input(dir: &Path, rng: &mut Rng) -> (Vec<Value>, PathBuf) {
    let (_, events) = example();
    let (mut messages, _) = prepared_events(&events, dir);
    messages.extend(generated(rng));
    let path = dir.join("input.ndjson");
    let mut file = BufWriter::new(std::fs::File::create(&path).expect("the input"));
    for m in &messages {
        writeln!(file, "{m}").expect("the input is written");
    }
    file.flush().expect("the input is written");
    (messages, path)
}

/// `batch` posted to `server`: whether it was acknowledged.
fn acknowledged(server: &Server, body: &Value) -> bool {
    match server.post("/v1/batch", body) {
        Ok(answer) => answer["success"] == true,
        Err((code, text)) => {
            assert!(
                code == 0 || code == 503,
                "a good batch was refused: {code} {text}"
            );
            false
        }
    }
}

#[test]
fn three_processes_take_a_hundred_thousand_customers_through_kills() {
    let dir = scratch("nats-stream");
    let Some(nats) = start_nats(&dir) else {
        return;
    };
    let started = Instant::now();
    let (project, _) = example();
    let mut rng = Rng(0x2a5f_0c3d);
    let (messages, prepared) = input(&dir, &mut rng);
    let expected = simulate(&project, &prepared);
    let users = per_user(&expected).len();
    eprintln!(
        "{} messages, {} actions of {users} customers by simulate ({:.0?})",
        messages.len(),
        expected.len(),
        started.elapsed()
    );
    let config = config(&dir);
    let log = dir.join("serve.log");
    let start = || process(&project, &nats, &config, 6, &log);
    let mut servers: Vec<Option<Server>> = vec![Some(start()), Some(start()), Some(start())];
    let bodies: Vec<Value> = messages
        .chunks(100)
        .map(|chunk| json!({ "batch": chunk }))
        .collect();
    let n = bodies.len();
    let (first_kill, restart, second_kill) = (n / 3, n * 2 / 3, n * 9 / 10);
    let mut reposted = 0;
    for (i, body) in bodies.iter().enumerate() {
        if i == first_kill {
            // During a request: kept or not, it is posted again below.
            let victim = servers[0].take().expect("process 0 runs");
            victim.kill_during_batch(body, Duration::from_micros(rng.below(5_000)));
        }
        if i == restart {
            servers[0] = Some(start());
        }
        if i == second_kill {
            servers[1].take().expect("process 1 runs").kill();
        }
        // Whatever is not acknowledged goes again, to another process.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let alive: Vec<&Server> = servers.iter().flatten().collect();
            let target = alive[rng.below(alive.len() as u64) as usize];
            if acknowledged(target, body) {
                break;
            }
            reposted += 1;
            assert!(
                Instant::now() < deadline,
                "request {i} was never acknowledged"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    eprintln!(
        "posted {n} requests ({reposted} again) in {:.0?}",
        started.elapsed()
    );
    let survivor = servers[2].as_ref().expect("process 2 runs");
    end_clock(survivor);
    let feed = survivor.feed();
    eprintln!(
        "{} actions in the feed ({:.0?})",
        feed.len(),
        started.elapsed()
    );
    assert_equivalent(&feed, &expected, false);
    let restarted = servers[0].as_ref().expect("process 0 runs again");
    assert_eq!(restarted.feed(), feed, "every process reads the same feed");
}
