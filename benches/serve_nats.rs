//! `journey serve --nats` on this machine, against a nats-server of its
//! own (a fresh store for each run), in two sections
//! (`JOURNEY_BENCH_ONLY=throughput,takeover`, both by default):
//!
//! - `throughput`: with 1, 2 and 3 processes (`JOURNEY_BENCH_PROCESSES`,
//!   `1,2,3`), `journey generate`'s stream (`JOURNEY_BENCH_STREAM_USERS`
//!   20,000 customers, `JOURNEY_BENCH_STREAM_EVENTS` 200,000 events)
//!   posted to `/v1/batch` in requests of 100 by `JOURNEY_BENCH_CLIENTS`
//!   (8) clients, spread over the processes. Ingest: events acknowledged a
//!   second. End to end: events a second from the first request until
//!   every partition has applied its whole journal and written the actions
//!   (`/admin/partitions`: no lag), so that they are in `/v1/actions`; and
//!   the actions that makes a second.
//! - `takeover`: `JOURNEY_BENCH_USERS` (1,000,000) customers of state
//!   (`JOURNEY_BENCH_EVENTS`, 10 per customer; built here by `simulate
//!   --threads`'s engine and written as the partitions' checkpoints), two
//!   processes; the owner of partition 0 is killed (`kill -9`) while the
//!   stream's last 1% is posted to the other: the time until the other
//!   holds every partition, live, and until the first action of a killed
//!   process's partition is in `/v1/actions` again.
//!
//! `cargo bench --bench serve_nats`; `JOURNEY_BENCH_PARTITIONS` (6),
//! `JOURNEY_BENCH_BINARY` (another build of `journey`, to compare).

#[path = "../tests/support/nats.rs"]
mod nats;
#[path = "../tests/support/server.rs"]
mod server;

use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use journey::io::EventReader;
use journey::io::synth::{SynthOptions, write_stream};
use journey::runtime::store::{DedupConfig, MemStore};
use journey::runtime::{Runtime, RuntimeOptions};
use journey::service::core::encode_checkpoint;
use journey::service::partitions::partition_of;
use journey::service::threads;
use nats::{Nats, log_file, nats_args, start_nats};
use serde_json::{Value, json};
use server::{Server, root, scratch};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn binary() -> PathBuf {
    std::env::var_os("JOURNEY_BENCH_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_journey")))
}

/// Leases of 3 s (the default) and checkpoints as by default.
fn bench_config(dir: &Path) -> PathBuf {
    let path = dir.join("journey.toml");
    std::fs::write(&path, "[nats]\nlease_ttl = \"3s\"\n").expect("config");
    path
}

fn start(nats: &Nats, dir: &Path, partitions: u32, ready_within: Duration) -> Server {
    let args = nats_args(nats, &bench_config(dir), partitions);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::spawn_from(
        &binary(),
        &root().join("journeys"),
        &args,
        log_file(&dir.join("serve.log")),
        ready_within,
    )
}

/// `journey generate`'s stream as messages, in requests of 100.
fn requests(users: u64, events: u64, seed: u64) -> (Vec<Value>, usize) {
    let mut text = Vec::new();
    let options = SynthOptions {
        users: users as u32,
        events,
        seed,
        ..SynthOptions::default()
    };
    write_stream(options, &mut BufWriter::new(&mut text)).expect("the stream");
    let messages: Vec<Value> = String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let count = messages.len();
    let bodies = messages
        .chunks(100)
        .map(|c| json!({ "batch": c }))
        .collect();
    (bodies, count)
}

/// Posts `bodies` from `clients` threads, each request to the next
/// process in turn; waits for every acknowledgement.
fn post_all(servers: &[Server], bodies: &[Value], clients: usize) {
    let next = AtomicUsize::new(0);
    let bases: Vec<&str> = servers.iter().map(|s| s.base.as_str()).collect();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return;
                    };
                    let base = bases[i % bases.len()];
                    let answer = ureq::post(&format!("{base}/v1/batch"))
                        .timeout(Duration::from_secs(60))
                        .send_json(body.clone());
                    assert!(answer.is_ok(), "a request was refused: {answer:?}");
                }
            });
        }
    });
}

/// `/admin/partitions` of `server`.
fn view(server: &Server) -> Vec<Value> {
    let (code, view) = server.get("/admin/partitions", None);
    assert_eq!(code, 200, "{view}");
    view["partitions"].as_array().cloned().unwrap_or_default()
}

/// Waits until every partition has applied its journal.
fn wait_applied(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(1_800);
    while view(server).iter().any(|p| p["lag"] != 0) {
        assert!(Instant::now() < deadline, "the partitions did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `seq` of the last of `actions`, or `after` when there is none.
fn last_seq(actions: &[Value], after: u64) -> u64 {
    actions
        .last()
        .and_then(|a| a["seq"].as_u64())
        .unwrap_or(after)
}

fn throughput(partitions: u32) {
    let users = env_number("JOURNEY_BENCH_STREAM_USERS", 20_000);
    let events = env_number("JOURNEY_BENCH_STREAM_EVENTS", 200_000);
    let clients = env_number("JOURNEY_BENCH_CLIENTS", 8).max(1) as usize;
    let (bodies, count) = requests(users, events, 1);
    let counts = std::env::var("JOURNEY_BENCH_PROCESSES").unwrap_or_else(|_| "1,2,3".into());
    println!(
        "throughput: {count} events of {users} customers, {} requests of 100 from {clients} \
         clients, {partitions} partitions",
        bodies.len()
    );
    for n in counts
        .split(',')
        .filter_map(|n| n.trim().parse::<usize>().ok())
    {
        let dir = scratch(&format!("bench-nats-throughput-{n}"));
        let nats = start_nats(&dir).expect("nats-server (apt-get install nats-server)");
        let servers: Vec<Server> = (0..n)
            .map(|_| start(&nats, &dir, partitions, Duration::from_secs(120)))
            .collect();
        // Every process holds its share before the clock starts.
        let deadline = Instant::now() + Duration::from_secs(60);
        while servers.iter().any(|s| {
            let here = partitions_held(s);
            here == 0 || here > (partitions as usize).div_ceil(n)
        }) {
            assert!(Instant::now() < deadline, "the partitions did not spread");
            std::thread::sleep(Duration::from_millis(100));
        }
        let started = Instant::now();
        post_all(&servers, &bodies, clients);
        let ingest = started.elapsed();
        wait_applied(&servers[0]);
        let end_to_end = started.elapsed();
        let actions = servers[0].feed_after(0);
        println!(
            "  {n} process{}: ingest {:>7.0} events/s ({:.1} s); end to end {:>7.0} events/s, \
             {:>7.0} actions/s ({} actions, {:.1} s)",
            if n == 1 { "" } else { "es" },
            count as f64 / ingest.as_secs_f64(),
            ingest.as_secs_f64(),
            count as f64 / end_to_end.as_secs_f64(),
            actions.len() as f64 / end_to_end.as_secs_f64(),
            actions.len(),
            end_to_end.as_secs_f64()
        );
        drop(servers);
        drop(nats);
    }
}

fn partitions_held(server: &Server) -> usize {
    view(server)
        .iter()
        .filter(|p| p["here"] == true && p["live"] == true)
        .count()
}

/// The deployment's `messageId` key, as its first process made it.
fn dedup_key(runtime: &tokio::runtime::Runtime, nats: &Nats) -> [u8; 16] {
    runtime.block_on(async {
        let client = async_nats::connect(nats.url.as_str()).await.expect("NATS");
        let js = async_nats::jetstream::new(client);
        let state = js.get_key_value("JOURNEY").await.expect("the state bucket");
        let meta = state.get("meta").await.expect("meta").expect("meta");
        let meta: Value = serde_json::from_slice(&meta).expect("meta is JSON");
        let hex = meta["dedup_key"].as_str().expect("a key");
        let mut key = [0u8; 16];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
        }
        key
    })
}

/// Stores each partition's checkpoint (covering no journal yet) and the
/// event clock, as the deployment's processes would have.
fn seed_state(runtime: &tokio::runtime::Runtime, nats: &Nats, checkpoints: &[Vec<u8>], clock: i64) {
    runtime.block_on(async {
        let client = async_nats::connect(nats.url.as_str()).await.expect("NATS");
        let js = async_nats::jetstream::new(client);
        let objects = js
            .get_object_store(journey::service::nats::CHECKPOINT_BUCKET)
            .await
            .expect("the checkpoint store");
        let state = js.get_key_value("JOURNEY").await.expect("the state bucket");
        for (p, bytes) in checkpoints.iter().enumerate() {
            // In place of the one the deployment's first process stored.
            let (_, mut held) =
                journey::service::nats::checkpoint::read(&objects, &state, p as u32, &|_| {})
                    .await
                    .expect("the checkpoint reads");
            let stored = journey::service::nats::checkpoint::store(
                &objects, &state, p as u32, 0, bytes, &mut held,
            )
            .await;
            assert_eq!(
                stored,
                Ok(journey::service::nats::checkpoint::Stored::Stored),
                "a checkpoint is stored"
            );
        }
        state
            .put("clock", clock.to_string().into())
            .await
            .expect("the clock is written");
    });
}

fn takeover(partitions: u32) {
    let users = env_number("JOURNEY_BENCH_USERS", 1_000_000);
    let events = env_number("JOURNEY_BENCH_EVENTS", 10 * users);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = scratch("bench-nats-takeover");
    let nats = start_nats(&dir).expect("nats-server (apt-get install nats-server)");
    // The first process creates the deployment, and lets it go.
    let first = start(&nats, &dir, partitions, Duration::from_secs(120));
    assert_eq!(first.stop(), Some(0));
    let key = dedup_key(&runtime, &nats);

    let path = dir.join("stream.ndjson");
    let options = SynthOptions {
        users: users as u32,
        events,
        seed: 1,
        ..SynthOptions::default()
    };
    let file = std::fs::File::create(&path).expect("a scratch file");
    write_stream(options, &mut BufWriter::new(file)).expect("the stream");
    let text = std::fs::read_to_string(&path).expect("the stream");
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let (head, tail) = all.split_at(all.len() - all.len() / 100);
    std::fs::write(&path, head.join("\n") + "\n").expect("the stream's head");
    let tail: Vec<Value> = tail
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let clock = head
        .iter()
        .rev()
        .find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            let t = v["timestamp"].as_str()?.parse::<jiff::Timestamp>().ok()?;
            Some(t.as_millisecond())
        })
        .expect("a timestamp");
    let head_len = head.len();
    drop(all);
    drop(text);
    let sources =
        journey::project::load_paths(&[root().join("journeys")]).unwrap_or_else(|e| panic!("{e}"));
    let program = Arc::new(
        journey::pipeline::build(sources)
            .program
            .expect("journeys/ compiles"),
    );
    let runtimes: Vec<Runtime> = (0..partitions)
        .map(|_| {
            let store = MemStore::with_dedup(DedupConfig {
                key,
                ..DedupConfig::default()
            })
            .unwrap_or_else(|e| panic!("{e}"));
            Runtime::with_store(program.clone(), store).with_options(RuntimeOptions {
                max_clock_jump_ms: i64::MAX,
            })
        })
        .collect();
    let started = Instant::now();
    let input = EventReader::new(BufReader::new(
        std::fs::File::open(&path).expect("the stream"),
    ));
    let outcome = threads::simulate(
        runtimes,
        input,
        Some(clock),
        &mut std::io::sink(),
        &mut |_, _| Ok(()),
    )
    .unwrap_or_else(|_| panic!("the run failed"));
    let checkpoints: Vec<Vec<u8>> = outcome
        .runtimes
        .iter()
        .map(|r| encode_checkpoint(1, r).expect("a checkpoint"))
        .collect();
    drop(outcome);
    let size: usize = checkpoints.iter().map(Vec::len).sum();
    seed_state(&runtime, &nats, &checkpoints, clock);
    drop(checkpoints);
    println!(
        "takeover: {users} customers ({} events, {:.0} MB of checkpoints in {partitions} \
         partitions, built in {:.0} s), leases of 3 s",
        head_len,
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let servers = [
        start(&nats, &dir, partitions, Duration::from_secs(1_800)),
        start(&nats, &dir, partitions, Duration::from_secs(1_800)),
    ];
    let deadline = Instant::now() + Duration::from_secs(1_800);
    while servers.iter().any(|s| partitions_held(s) == 0)
        || servers.iter().map(partitions_held).sum::<usize>() < partitions as usize
    {
        assert!(Instant::now() < deadline, "the partitions did not spread");
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "  two processes restored every partition and are live in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let victim = usize::from(view(&servers[0])[0]["here"] != true);
    let survivor = &servers[1 - victim];
    let lost: Vec<u32> = view(&servers[victim])
        .iter()
        .filter(|p| p["here"] == true)
        .filter_map(|p| p["partition"].as_u64().map(|p| p as u32))
        .collect();
    let seen = last_seq(&survivor.feed_after(0), 0);
    let [a, b] = servers;
    let (victim, survivor) = if victim == 0 { (a, b) } else { (b, a) };
    let posting = AtomicBool::new(true);
    let killed = Instant::now();
    victim.kill();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for chunk in tail.chunks(100) {
                if !posting.load(Ordering::Relaxed) {
                    return;
                }
                let _ = survivor.post("/v1/batch", &json!({ "batch": chunk }));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(1_800);
        let (mut held_in, mut flowing_in) = (None, None);
        let mut after = seen;
        while held_in.is_none() || flowing_in.is_none() {
            assert!(
                Instant::now() < deadline,
                "the partitions were not taken over"
            );
            if held_in.is_none() && partitions_held(&survivor) == partitions as usize {
                held_in = Some(killed.elapsed());
            }
            if flowing_in.is_none() {
                let actions = survivor.feed_after(after);
                after = last_seq(&actions, after);
                let theirs = actions.iter().any(|a| {
                    let user = a["user_id"].as_str().unwrap_or_default();
                    lost.contains(&partition_of(user, partitions))
                });
                if theirs {
                    flowing_in = Some(killed.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        posting.store(false, Ordering::Relaxed);
        let secs = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64());
        println!(
            "  kill -9 of the owner of {} partitions: the other holds them all, live, after \
             {:.1} s; their actions flow again after {:.1} s",
            lost.len(),
            secs(held_in),
            secs(flowing_in)
        );
    });
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: skip.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let partitions = env_number("JOURNEY_BENCH_PARTITIONS", 6).max(1) as u32;
    let only = std::env::var("JOURNEY_BENCH_ONLY").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only.split(',').any(|o| o.trim() == name);
    println!("binary: {}", binary().display());
    if run("throughput") {
        throughput(partitions);
    }
    if run("takeover") {
        takeover(partitions);
    }
}
