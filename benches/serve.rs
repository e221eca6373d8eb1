//! `journey serve` under load (SERVICE.md §11), against the release binary
//! on loopback, in two sections (`JOURNEY_BENCH_ONLY=ingest,latency`, both
//! by default):
//!
//! - `ingest`: `journey generate`'s stream posted through `/v1/batch`
//!   (batches of 100, several concurrent clients, the example journeys
//!   running, `--clock events`): events acknowledged durably per second,
//!   the time until every action is committed, the resident memory of the
//!   service then (`VmRSS` and `VmHWM` of `/proc/PID/status`, per
//!   customer); then restart to ready twice: from the checkpoints the
//!   shutdown wrote, and after the stream's tail (1% of its lines by
//!   default) was posted and the service killed with `kill -9`, so that
//!   the tail is replayed from the journal after the checkpoints.
//! - `latency`: an open-loop load at a fixed rate (5,000 events/s by
//!   default, in requests of 10 events sent on a fixed schedule whatever
//!   the answers, `--clock wall`), each request with one probe: a track
//!   of a new customer that enters `back_in_stock`, whose first step
//!   sends at once. A reader long-polls `/v1/actions`; a probe's latency
//!   is from the instant its request was due to be sent to the instant its
//!   `enter` action was read from the feed: journal commit, apply, outbox
//!   commit and the feed's wake-up, with any lateness of the sender
//!   counted (no coordinated omission).
//!
//! `cargo bench --bench serve`. `JOURNEY_BENCH_USERS`, `JOURNEY_BENCH_EVENTS`
//! size `ingest`'s stream (100,000 users and 1,000,000 events by default),
//! `JOURNEY_BENCH_CLIENTS` its concurrent clients (32: each waits for its
//! acknowledgement, so with fewer the requests move in step and one
//! commit takes them all; docs/performance.md has 8 too),
//! `JOURNEY_BENCH_TAIL` the lines
//! held back for the journal after the checkpoints (1%);
//! `JOURNEY_BENCH_RATE` (events/s), `JOURNEY_BENCH_BATCH` (events a
//! request) and `JOURNEY_BENCH_SECONDS` (60) shape `latency`.
//! `JOURNEY_BENCH_CHECKPOINT_EVERY=10m` runs `latency` on `ingest`'s data
//! once more with checkpoints that far apart. `JOURNEY_BENCH_KEEP=1` keeps
//! the data directories;
//! `JOURNEY_BENCH_DATA=DIR` only times a restart to ready on `DIR`;
//! `JOURNEY_BENCH_STATE=DIR@CLOCK` only runs `latency` on the data
//! directory `DIR` (stopped, `--clock events`, its clock at `CLOCK`, epoch
//! ms), as `serve_state` leaves one with `JOURNEY_BENCH_KEEP=1`.

#[path = "support/compact.rs"]
mod compact;

use std::io::{BufRead, Read as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use compact::remove_field;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_090)
}

/// A running `journey serve`.
struct Service {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Service {
    /// Starts `journey serve journeys` on `data` with `args`; returns it
    /// once `/readyz` answers, with the time that took.
    fn start(data: &Path, args: &[&str]) -> (Service, Duration) {
        let port = free_port();
        let log = data.with_extension(format!("{port}.log"));
        let stderr = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_journey"))
            .args(["serve", "journeys", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data")
            .arg(data)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("journey serve: {e}"));
        let service = Service { child, port, log };
        let ready = service.url("/readyz");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(1))
            .build();
        while agent.get(&ready).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "ready in time"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        (service, started.elapsed())
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `VmRSS` and `VmHWM` (the peak) of the process, in bytes.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// What the service logged (its stderr).
    fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM (checkpoint every partition, exit); returns how long it took.
    fn stop(mut self) -> (Duration, String) {
        let started = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        (started.elapsed(), self.logged())
    }

    /// `kill -9`: nothing is checkpointed.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `journey generate`'s stream to `path`.
fn generate(path: &Path, users: u64, events: u64) {
    let status = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args([
            "generate",
            "--users",
            &users.to_string(),
            "--events",
            &events.to_string(),
        ])
        .args(["--malformed-rate", "0", "-o"])
        .arg(path)
        .status()
        .unwrap_or_else(|e| panic!("journey generate: {e}"));
    assert!(status.success());
}

/// The non-blank lines of the file at `path`.
fn lines(path: &Path) -> impl Iterator<Item = String> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{e}"));
    std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
}

/// Bodies of `size` messages, in the lines' order.
fn bodies(lines: impl Iterator<Item = String>, size: usize) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut body = String::new();
    let mut n = 0;
    for line in lines {
        body.push_str(if n == 0 { "{\"batch\":[" } else { "," });
        body.push_str(&line);
        n += 1;
        if n == size {
            body.push_str("]}");
            bodies.push(std::mem::take(&mut body));
            n = 0;
        }
    }
    if n > 0 {
        body.push_str("]}");
        bodies.push(body);
    }
    bodies
}

/// Posts every body to `url` from `clients` threads, each taking the next
/// body when its last is acknowledged (503s are retried); returns the 503s.
fn post_all(url: &str, bodies: Vec<String>, clients: usize) -> u64 {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (bodies, next, url) = (bodies.clone(), next.clone(), url.to_string());
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
    workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn wants(section: &str) -> bool {
    std::env::var("JOURNEY_BENCH_ONLY")
        .map_or(true, |only| only.split(',').any(|s| s.trim() == section))
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: skip.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("journey-bench-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    // A data directory kept from an earlier run (`JOURNEY_BENCH_KEEP=1`):
    // restart to ready on it, and nothing else.
    if let Ok(data) = std::env::var("JOURNEY_BENCH_DATA") {
        let (service, ready) = Service::start(Path::new(&data), &[]);
        let (rss, peak) = service.memory();
        println!(
            "restart to ready on {data}: {:.2} s (resident then {:.0} MB, peak {:.0} MB)",
            ready.as_secs_f64(),
            mb(rss),
            mb(peak)
        );
        let _ = service.stop();
        return;
    }
    if let Some((data, clock)) = std::env::var("JOURNEY_BENCH_STATE").ok().and_then(|v| {
        Some((
            v.split_once('@')?.0.to_string(),
            v.split_once('@')?.1.parse().ok()?,
        ))
    }) {
        let every = std::env::var("JOURNEY_BENCH_CHECKPOINT_EVERY").ok();
        latency(&dir, Some((PathBuf::from(data), clock)), every.as_deref());
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let state = wants("ingest").then(|| ingest(&dir));
    if wants("latency") {
        latency(&dir, None, None);
        if let Some(state) = state {
            latency(&dir, Some(state.clone()), None);
            // The same with checkpoints that many seconds apart (the config's
            // `checkpoint.every`), to see what checkpoints cost.
            if let Ok(every) = std::env::var("JOURNEY_BENCH_CHECKPOINT_EVERY") {
                latency(&dir, Some(state), Some(&every));
            }
        }
    }
    if std::env::var_os("JOURNEY_BENCH_KEEP").is_some() {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Runs the section; returns the data directory it leaves (stopped) and
/// its clock (the tail's last event).
fn ingest(dir: &Path) -> (PathBuf, i64) {
    let users = env_or("JOURNEY_BENCH_USERS", 100_000);
    let events = env_or("JOURNEY_BENCH_EVENTS", 10 * users);
    let clients = env_or("JOURNEY_BENCH_CLIENTS", 32) as usize;
    let path = dir.join("events.ndjson");
    generate(&path, users, events);
    let total = lines(&path).count();
    let tail_len = (env_or("JOURNEY_BENCH_TAIL", total as u64 / 100) as usize).min(total);
    let n = total - tail_len;
    println!("== ingest: {users} users, {n} lines, then a tail of {tail_len} lines");
    let last = lines(&path)
        .nth(n.saturating_sub(1))
        .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .and_then(|v| v["timestamp"].as_str().map(str::to_string))
        .unwrap_or_default();
    let main = bodies(lines(&path).take(n), 100);
    let tail = bodies(lines(&path).skip(n), 100);
    let end = lines(&path)
        .last()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .and_then(|v| {
            v["timestamp"]
                .as_str()
                .and_then(journey::value::parse_timestamp)
        })
        .unwrap_or(0);

    let data = dir.join("data");
    let (service, _) = Service::start(&data, &["--clock", "events"]);
    let begun = Instant::now();
    let retries = post_all(&service.url("/v1/batch"), main, clients);
    let acked = begun.elapsed();
    println!(
        "ingest: {n} events acknowledged durably in {:.2} s = {:.0} events/s ({clients} clients, \
         batches of 100, {retries} 503 retries)",
        acked.as_secs_f64(),
        n as f64 / acked.as_secs_f64()
    );
    // Everything applied and committed: the clock to the last event.
    let _ = ureq::post(&service.url("/admin/clock")).send_json(serde_json::json!({ "to": last }));
    let applied = begun.elapsed();
    println!(
        "applied: every event's actions committed {:.2} s after the first request ({:.0} events/s end to end)",
        applied.as_secs_f64(),
        n as f64 / applied.as_secs_f64()
    );
    let (rss, peak) = service.memory();
    println!(
        "memory with {users} customers: resident {:.0} MB ({:.0} B/customer), peak {:.0} MB ({:.0} B/customer)",
        mb(rss),
        rss as f64 / users as f64,
        mb(peak),
        peak as f64 / users as f64
    );
    let (stopped, _) = service.stop();
    println!(
        "stop (every partition checkpointed): {:.2} s; data directory {:.0} MB",
        stopped.as_secs_f64(),
        mb(dir_size(&data))
    );

    let (service, ready) = Service::start(&data, &[]);
    let (rss, peak) = service.memory();
    println!(
        "restart to ready with {users} customers of state, from the checkpoints: {:.2} s \
         (resident then {:.0} MB, peak {:.0} MB)",
        ready.as_secs_f64(),
        mb(rss),
        mb(peak)
    );
    let _ = post_all(&service.url("/v1/batch"), tail, clients);
    service.kill();
    let (service, ready) = Service::start(&data, &[]);
    let (rss, peak) = service.memory();
    let replayed = service
        .logged()
        .lines()
        .find(|l| l.contains("replayed"))
        .map(str::to_string)
        .unwrap_or_default();
    println!(
        "restart to ready after kill -9, the checkpoints and a journal of {tail_len} lines after \
         them: {:.2} s (resident then {:.0} MB, peak {:.0} MB; the log: {replayed})",
        ready.as_secs_f64(),
        mb(rss),
        mb(peak)
    );
    let _ = service.stop();
    (data, end)
}

/// Wall-clock milliseconds since the epoch.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Bytes of the files under `path`.
fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// A probe: a new customer's track that enters `back_in_stock`, whose
/// first step is a `send`: its `enter` (and its send) are committed when
/// the track is applied.
/// Its customer is `probe-RUN-I`: a run's probes are new customers even
/// on a data directory an earlier run sent probes to.
fn probe(run: &str, i: usize) -> String {
    format!(
        "{{\"type\":\"track\",\"userId\":\"probe-{run}-{i}\",\"event\":\"stock_alert_requested\",\
         \"properties\":{{\"product_id\":\"p-{i}\",\"product_name\":\"Lamp\"}},\"messageId\":\"probe-{run}-{i}\",\
         \"timestamp\":\"{STAMP}\"}}"
    )
}

/// Where a message's `timestamp` goes, replaced when its request is sent
/// (as long as an RFC 3339 time in milliseconds).
const STAMP: &str = "@@@@-@@-@@T@@:@@:@@.@@@Z";

/// The probe number of a feed line, when it is the `enter` of one of run
/// `run`'s probes.
fn probe_of(line: &str, run: &str) -> Option<usize> {
    if !line.contains("\"kind\":\"enter\"") {
        return None;
    }
    let key = format!("\"user_id\":\"probe-{run}-");
    let rest = &line[line.find(&key)? + key.len()..];
    rest[..rest.find('"')?].parse().ok()
}

/// The newest `seq` in the feed at `feed` (0 when none), found by halving
/// with one-line reads, so that a reader starts after what an earlier run
/// left (a feed of millions of actions).
fn newest_seq(feed: &str) -> u64 {
    let agent = ureq::AgentBuilder::new().build();
    let newer_than = |after: u64| match agent
        .get(feed)
        .query("after", &after.to_string())
        .query("limit", "1")
        .call()
    {
        Ok(response) => !response.into_string().unwrap_or_default().trim().is_empty(),
        // 410: actions after it were dropped by retention, so some exist.
        Err(ureq::Error::Status(410, _)) => true,
        Err(e) => panic!("the feed: {e}"),
    };
    let (mut low, mut high) = (0u64, 1u64 << 40);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if newer_than(mid - 1) {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    low
}

fn percentiles(label: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1e3
    };
    if samples.is_empty() {
        println!("{label}: no samples");
        return;
    }
    println!(
        "{label}: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms ({} samples)",
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        at(1.0),
        samples.len()
    );
}

/// The open-loop section: on a fresh data directory with `--clock wall`
/// (`state` `None`), or on the one `ingest` left (`--clock events`, its
/// clock at `state`'s instant), every message stamped with the time it is
/// sent: the wall clock, or the events' clock moved on as much since the
/// first request.
fn latency(dir: &Path, state: Option<(PathBuf, i64)>, checkpoint_every: Option<&str>) {
    let rate = env_or("JOURNEY_BENCH_RATE", 5_000).max(1);
    let batch = env_or("JOURNEY_BENCH_BATCH", 10).max(1) as usize;
    let seconds = env_or("JOURNEY_BENCH_SECONDS", 60).max(1);
    let connections = env_or("JOURNEY_BENCH_CONNECTIONS", 32).max(1) as usize;
    let requests = (rate * seconds) as usize / batch;
    let interval = Duration::from_secs_f64(batch as f64 / rate as f64);
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = format!(
        "{}.{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    // Other customers' traffic: the stream's lines (new customers), each
    // stamped when sent.
    let stream_lines = requests * (batch - 1);
    let path = dir.join("live.ndjson");
    generate(
        &path,
        (stream_lines as u64 / 10).max(1),
        stream_lines as u64,
    );
    let lines: Vec<String> = lines(&path)
        .map(|l| remove_field(&l, ",\"timestamp\":\"", '"'))
        .map(|l| format!("{},\"timestamp\":\"{STAMP}\"}}", &l[..l.len() - 1]))
        .collect();
    let bodies: Vec<String> = (0..requests)
        .map(|i| {
            let mut messages = vec![probe(&run, i)];
            let from = (i * (batch - 1)).min(lines.len());
            let to = (from + batch - 1).min(lines.len());
            messages.extend(lines[from..to].iter().cloned());
            format!("{{\"batch\":[{}]}}", messages.join(","))
        })
        .collect();
    drop(lines);
    let (service, clock, base) = match &state {
        None => {
            let data = dir.join("live-data");
            let (service, _) = Service::start(&data, &["--clock", "wall"]);
            (
                service,
                "--clock wall, a fresh data directory".to_string(),
                wall_ms(),
            )
        }
        Some((data, end)) => {
            let config = dir.join("checkpoints.toml");
            let every = checkpoint_every.unwrap_or("60s");
            let _ = std::fs::write(&config, format!("[checkpoint]\nevery = \"{every}\"\n"));
            let config = config.to_string_lossy().into_owned();
            let (service, _) = Service::start(data, &["--config", &config]);
            let how = format!(
                "--clock events, the data directory of `ingest`, checkpoints every {every}"
            );
            (service, how, *end)
        }
    };
    println!(
        "\n== latency: {rate} events/s for {seconds} s, {batch} events a request ({} requests/s, \
         one probe each), open loop over {connections} connections; {clock}",
        rate as f64 / batch as f64
    );
    let feed = service.url("/v1/actions");
    let url = service.url("/v1/batch");
    let newest = newest_seq(&feed);
    let start = Instant::now() + Duration::from_millis(200);
    let due = move |i: usize| start + interval * i as u32;

    // The reader: every probe's `enter`, and when it was read.
    let seen: Arc<Mutex<Vec<Option<Duration>>>> = Arc::new(Mutex::new(vec![None; requests]));
    let reader = {
        let (seen, run) = (seen.clone(), run.clone());
        std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new().build();
            let (mut after, mut found) = (newest, 0usize);
            let deadline = due(requests) + Duration::from_secs(30);
            while found < requests && Instant::now() < deadline {
                let Ok(response) = agent
                    .get(&feed)
                    .query("after", &after.to_string())
                    .query("limit", "10000")
                    .query("wait", "5")
                    .call()
                else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let mut text = String::new();
                let _ = response.into_reader().read_to_string(&mut text);
                let read_at = Instant::now();
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                for line in text.lines() {
                    if let Some(seq) = line
                        .strip_prefix("{\"seq\":")
                        .and_then(|r| r.split(',').next())
                        .and_then(|s| s.parse::<u64>().ok())
                    {
                        after = after.max(seq);
                    }
                    if let Some(i) = probe_of(line, &run).filter(|&i| i < requests)
                        && seen[i].is_none()
                    {
                        seen[i] = Some(read_at.saturating_duration_since(due(i)));
                        found += 1;
                    }
                }
            }
        })
    };

    let next = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(bodies);
    let senders: Vec<_> = (0..connections)
        .map(|_| {
            let (bodies, next, url) = (bodies.clone(), next.clone(), url.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                let mut acks = Vec::new();
                let mut refused = 0u64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return (acks, refused);
                    };
                    let at = due(i);
                    if let Some(wait) = at.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let since = at.saturating_duration_since(start).as_millis() as i64;
                    let mut stamp = String::new();
                    journey::io::segment::write_timestamp_ms(base + since, &mut stamp);
                    match agent
                        .post(&url)
                        .set("Content-Type", "application/json")
                        .send_string(&body.replace(STAMP, &stamp))
                    {
                        Ok(_) => acks.push(at.elapsed()),
                        Err(_) => refused += 1,
                    }
                }
            })
        })
        .collect();
    let mut acks = Vec::new();
    let mut refused = 0;
    for sender in senders {
        if let Ok((a, r)) = sender.join() {
            acks.extend(a);
            refused += r;
        }
    }
    let sent_in = start.elapsed();
    let _ = reader.join();
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    let missing = seen.iter().filter(|s| s.is_none()).count();
    println!(
        "sent {} events in {:.2} s ({:.0} events/s), {refused} requests refused, {missing} probes \
         not seen in the feed",
        requests * batch,
        sent_in.as_secs_f64(),
        (requests * batch) as f64 / sent_in.as_secs_f64()
    );
    // When in the run the slow ones were due: the seconds with a probe
    // slower than 100 ms.
    let per_second = (1.0 / interval.as_secs_f64()).max(1.0) as usize;
    let slow: Vec<String> = seen
        .chunks(per_second)
        .enumerate()
        .filter_map(|(second, probes)| {
            let worst = probes.iter().flatten().max()?;
            (*worst > Duration::from_millis(100))
                .then(|| format!("{second} s ({} ms)", worst.as_millis()))
        })
        .collect();
    percentiles("request due -> 200 (durable)", acks);
    percentiles(
        "event -> action read from /v1/actions",
        seen.into_iter().flatten().collect(),
    );
    println!(
        "seconds of the run with a probe slower than 100 ms (its worst): {}",
        if slow.is_empty() {
            "none".to_string()
        } else {
            slow.join(", ")
        }
    );
    let (rss, _) = service.memory();
    let _ = service.stop();
    println!("resident memory at the end: {:.0} MB", mb(rss));
}
