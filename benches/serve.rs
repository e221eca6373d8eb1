//! `journey serve` under load (SERVICE.md §11), against the release binary
//! on loopback: events acknowledged durably per second through
//! `/v1/batch` (batches of 100, several concurrent clients, the example
//! journeys running), the time from a message's 200 to its actions in the
//! feed, and restart-to-ready with the state that left.
//!
//! `cargo bench --bench serve` (the stream is `journey generate`'s;
//! `JOURNEY_BENCH_USERS` and `JOURNEY_BENCH_EVENTS` size it, default 100,000
//! users and 1,000,000 events; `JOURNEY_BENCH_CLIENTS`, default 8).

use std::io::BufRead;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_090)
}

fn start(data: &Path, port: u16) -> (Child, Duration) {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(["serve", "journeys", "--clock", "events", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data")
        .arg(data)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("journey serve: {e}"));
    let ready = format!("http://127.0.0.1:{port}/readyz");
    while ureq::get(&ready).call().is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "ready in time"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    (child, started.elapsed())
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn main() {
    let users = env_or("JOURNEY_BENCH_USERS", 100_000);
    let events = env_or("JOURNEY_BENCH_EVENTS", 1_000_000);
    let clients = env_or("JOURNEY_BENCH_CLIENTS", 8) as usize;
    let dir = std::env::temp_dir().join(format!("journey-bench-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let stream = dir.join("events.ndjson");
    let status = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args([
            "generate",
            "--users",
            &users.to_string(),
            "--events",
            &events.to_string(),
        ])
        .args(["--malformed-rate", "0", "-o"])
        .arg(&stream)
        .status()
        .unwrap_or_else(|e| panic!("journey generate: {e}"));
    assert!(status.success());
    // Bodies of 100 messages, in the stream's order.
    let file = std::fs::File::open(&stream).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let bodies: Vec<String> = lines
        .chunks(100)
        .map(|c| format!("{{\"batch\":[{}]}}", c.join(",")))
        .collect();
    let bodies = Arc::new(bodies);

    let data = dir.join("data");
    let port = free_port();
    let (mut child, _) = start(&data, port);
    let url = format!("http://127.0.0.1:{port}/v1/batch");
    let next = Arc::new(AtomicUsize::new(0));
    let begun = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (bodies, next, url) = (bodies.clone(), next.clone(), url.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                let mut retries = 0u64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return retries;
                    };
                    loop {
                        match agent
                            .post(&url)
                            .set("Content-Type", "application/json")
                            .send_string(body)
                        {
                            Ok(_) => break,
                            Err(ureq::Error::Status(503, _)) => {
                                retries += 1;
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            Err(e) => panic!("ingest failed: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    let retries: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    let acked = begun.elapsed();
    println!(
        "ingest: {} events acknowledged durably in {:.2} s = {:.0} events/s ({clients} clients, \
         batches of 100, {retries} 503 retries)",
        lines.len(),
        acked.as_secs_f64(),
        lines.len() as f64 / acked.as_secs_f64()
    );
    // Everything applied and committed: the clock to the last event.
    let clock = format!("http://127.0.0.1:{port}/admin/clock");
    let last = lines
        .last()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["timestamp"].as_str().map(str::to_string))
        .unwrap_or_default();
    let _ = ureq::post(&clock).send_json(serde_json::json!({ "to": last }));
    let applied = begun.elapsed();
    println!(
        "applied: every event's actions committed {:.2} s after the first request ({:.0} events/s end to end)",
        applied.as_secs_f64(),
        lines.len() as f64 / applied.as_secs_f64()
    );
    stop(&mut child);
    let (mut child, ready) = start(&data, port);
    println!(
        "restart to ready with {users} customers of state: {:.2} s",
        ready.as_secs_f64()
    );
    stop(&mut child);
    let _ = std::fs::remove_dir_all(&dir);
}
