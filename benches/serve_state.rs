//! Where the bytes of `journey serve`'s customers go, and what their
//! checkpoints cost: the partitions' runtimes as the service holds them
//! (fresh partition runtimes with a keyed `messageId` window, the service's
//! partitioning, every journey of `journeys/`) after `journey generate`'s
//! stream (the `serve` bench's, seed 1) and the clock moved to its last
//! event, built in this process by `simulate --threads`'s engine, which
//! hands them back. Prints the live heap they hold (the binary's allocator,
//! counted), each part of it ([`MemStore::memory`]), then each partition's
//! checkpoint as the service writes it (its size, the time to write it)
//! and the time to read one back and restore it, one partition after
//! another and on two threads.
//!
//! `cargo bench --bench serve_state` (1M users, 10M events by default;
//! `JOURNEY_BENCH_USERS`, `JOURNEY_BENCH_EVENTS`,
//! `JOURNEY_BENCH_PARTITIONS` (8); `JOURNEY_BENCH_KEEP=1` keeps the data
//! directory it restarts, for `serve`'s `JOURNEY_BENCH_STATE`).

#[path = "support/counting.rs"]
mod counting;

use std::io::{self, BufReader, BufWriter};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use journey::compile::Program;
use journey::io::EventReader;
use journey::io::synth::{SynthOptions, write_stream};
use journey::runtime::store::{DedupConfig, MemStore, MemoryUse};
use journey::runtime::{Runtime, RuntimeOptions, Snapshot};
use journey::service::core::encode_checkpoint;
use journey::service::threads;
use journey::service::versions::Record;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn program() -> Arc<Program> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("journeys");
    let sources = journey::project::load_paths(&[dir]).unwrap_or_else(|e| panic!("{e}"));
    let build = journey::pipeline::build(sources);
    Arc::new(
        build
            .program
            .unwrap_or_else(|| panic!("journeys/ has errors")),
    )
}

/// The key of the partitions' `messageId` windows.
const KEY: [u8; 16] = *b"bench-serve-key!";

/// A partition's runtime as `journey serve` makes a fresh one.
fn partition(program: &Arc<Program>) -> Runtime {
    let store = MemStore::with_dedup(DedupConfig {
        key: KEY,
        ..DedupConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    Runtime::with_store(program.clone(), store).with_options(RuntimeOptions {
        max_clock_jump_ms: i64::MAX,
    })
}

fn row(label: &str, bytes: usize, users: u64) {
    println!(
        "{label:<44} {:>9.1} MB {:>7.1} B/customer",
        bytes as f64 / 1e6,
        bytes as f64 / users as f64
    );
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: skip.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let users = env_number("JOURNEY_BENCH_USERS", 1_000_000);
    let events = env_number("JOURNEY_BENCH_EVENTS", 10 * users);
    let partitions = env_number("JOURNEY_BENCH_PARTITIONS", 8).max(1) as usize;
    let program = program();
    let path = std::env::temp_dir().join(format!("journey-bench-state-{users}-{events}.ndjson"));
    let options = SynthOptions {
        users: users as u32,
        events,
        seed: 1,
        ..SynthOptions::default()
    };
    let file = std::fs::File::create(&path).expect("a scratch file");
    let lines = write_stream(options, &mut BufWriter::new(file)).expect("write the stream");
    // The last lines are held back: the journal after the checkpoints.
    let tail_len = env_number("JOURNEY_BENCH_TAIL", lines / 100).min(lines) as usize;
    let text = std::fs::read_to_string(&path).expect("the stream");
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let (head, tail) = all.split_at(all.len() - tail_len);
    std::fs::write(&path, head.join("\n") + "\n").expect("the stream's head");
    let tail: Vec<String> = tail.iter().map(|l| l.to_string()).collect();
    drop(all);
    drop(text);
    let until = last_timestamp(&path);
    println!(
        "{users} users, {} lines, then {} held back, {partitions} partitions",
        lines as usize - tail_len,
        tail.len()
    );

    counting::start();
    let before = counting::live();
    let runtimes: Vec<Runtime> = (0..partitions).map(|_| partition(&program)).collect();
    let input = EventReader::new(BufReader::new(
        std::fs::File::open(&path).expect("the stream"),
    ));
    let started = Instant::now();
    let outcome = threads::simulate(
        runtimes,
        input,
        Some(until),
        &mut io::sink(),
        &mut |_, _| Ok(()),
    )
    .unwrap_or_else(|_| panic!("the run failed"));
    let took = started.elapsed();
    let runtimes = outcome.runtimes;
    let held = (counting::live() - before) as usize;
    counting::stop();
    let _ = std::fs::remove_file(&path);
    println!(
        "ingested in {:.1} s; customers known: {}\n",
        took.as_secs_f64(),
        runtimes
            .iter()
            .map(|r| r.store().user_count())
            .sum::<usize>()
    );
    let mut parts = MemoryUse::default();
    for runtime in &runtimes {
        parts += runtime.store().memory();
    }
    row("keys (user ids)", parts.keys, users);
    row("index (key -> id)", parts.index, users);
    row(
        "user states in place (incl. 3 silences)",
        parts.users,
        users,
    );
    row("profiles", parts.profiles, users);
    row(
        "journey states and running instances",
        parts.journeys,
        users,
    );
    row(
        "instances' lists (trigger, handles, sends)",
        parts.instances,
        users,
    );
    row("sends kept for caps, more silences", parts.sends, users);
    row("timers", parts.timers, users);
    row("messageId windows", parts.dedup, users);
    row(
        "the rest (counters, rounding, program copies)",
        held.saturating_sub(parts.total()),
        users,
    );
    row("all the partitions' runtimes hold (counted)", held, users);
    println!(
        "  ({} journey states of {} B, {} of them with a running instance)",
        parts.journey_states,
        std::mem::size_of::<journey::runtime::store::JourneyState>(),
        parts.running
    );

    // Checkpoints, as the service writes and reads them (and the same
    // snapshots in JSON, for comparison).
    println!();
    let mut checkpoints = Vec::new();
    let (mut encode, mut longest) = (Duration::ZERO, Duration::ZERO);
    for runtime in &runtimes {
        let started = Instant::now();
        let bytes = encode_checkpoint(1, runtime).expect("a checkpoint");
        let took = started.elapsed();
        encode += took;
        longest = longest.max(took);
        checkpoints.push(bytes);
    }
    let size: usize = checkpoints.iter().map(Vec::len).sum();
    println!(
        "checkpoints: {:.1} MB in all ({:.0} B/customer), taken in {:.2} s one after another \
         (the longest partition {:.0} ms)",
        size as f64 / 1e6,
        size as f64 / users as f64,
        encode.as_secs_f64(),
        longest.as_secs_f64() * 1e3
    );
    let started = Instant::now();
    let json: usize = runtimes
        .iter()
        .map(|r| serde_json::to_vec(&r.snapshot_ref()).map_or(0, |j| j.len()))
        .sum();
    println!(
        "the same snapshots in JSON: {:.1} MB, {:.2} s",
        json as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    drop(runtimes);
    restart(&program, &checkpoints, &tail, until, users);
    let snapshot = |bytes: &[u8]| -> Snapshot<MemStore> {
        Snapshot::decode(&bytes[5..]).unwrap_or_else(|e| panic!("{e}"))
    };
    let restore = |bytes: &[u8]| {
        Runtime::restore(program.clone(), snapshot(bytes)).unwrap_or_else(|e| panic!("{e}"))
    };
    let (mut decode, mut check) = (Duration::ZERO, Duration::ZERO);
    for bytes in &checkpoints {
        let started = Instant::now();
        let snapshot = snapshot(bytes);
        decode += started.elapsed();
        let started = Instant::now();
        let runtime = Runtime::restore(program.clone(), snapshot).unwrap_or_else(|e| panic!("{e}"));
        check += started.elapsed();
        drop(runtime);
    }
    println!(
        "reading them, one after another: decoded into the state (index, timers, windows \
         rebuilt) {:.2} s; checked and restored {:.2} s",
        decode.as_secs_f64(),
        check.as_secs_f64()
    );
    counting::start();
    let before = counting::live();
    let started = Instant::now();
    let restored: Vec<Runtime> = checkpoints.iter().map(|bytes| restore(bytes)).collect();
    let serial = started.elapsed();
    let held_restored = (counting::live() - before) as usize;
    counting::stop();
    row(
        "all the restored runtimes hold (counted)",
        held_restored,
        users,
    );
    let mut again = MemoryUse::default();
    for runtime in &restored {
        again += runtime.store().memory();
    }
    println!(
        "  of which timers {:.1} B, messageId windows {:.1} B, index {:.1} B a customer",
        again.timers as f64 / users as f64,
        again.dedup as f64 / users as f64,
        again.index as f64 / users as f64
    );
    drop(restored);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for half in checkpoints.chunks(partitions.div_ceil(2)) {
            let restore = &restore;
            scope.spawn(move || {
                for bytes in half {
                    drop(restore(bytes));
                }
            });
        }
    });
    println!(
        "restored (read and checked): {:.2} s one after another, {:.2} s on two threads",
        serial.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// Writes a data directory as `journey serve` leaves one, through its
/// storage layer: the partitions' checkpoints (at position 1) and, after
/// them, the journal of the `tail` lines (stamped as the service stamps
/// them with `--clock events`); then times `journey serve` from its start
/// until `/readyz` answers, and reads its resident memory then.
/// The data directory's version 1: the example journeys, as the service
/// records them.
fn version_one(program: &Program) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("journeys");
    let sources = journey::project::load_paths(&[dir]).unwrap_or_else(|e| panic!("{e}"));
    Record::new(&sources, Vec::new(), 0, program).encode()
}

fn restart(
    program: &Arc<Program>,
    checkpoints: &[Vec<u8>],
    tail: &[String],
    clock: i64,
    users: u64,
) {
    use journey::service::journal::Entry;
    use journey::service::partitions::partition_of;
    use journey::service::storage::{Meta, RedbStorage, STORAGE_FORMAT, Storage, WriteBatch};
    let data =
        std::env::temp_dir().join(format!("journey-bench-state-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let partitions = checkpoints.len() as u32;
    {
        let storage = RedbStorage::open(&data).unwrap_or_else(|e| panic!("{e}"));
        let write = |batch: WriteBatch| storage.write(batch).unwrap_or_else(|e| panic!("{e}"));
        write(WriteBatch {
            meta: Some(Meta {
                format: STORAGE_FORMAT,
                partitions,
                clock: "events".into(),
                dedup_key: KEY.iter().map(|b| format!("{b:02x}")).collect(),
            }),
            versions: vec![(1, version_one(program))],
            clock: Some(clock),
            ..WriteBatch::default()
        });
        for (p, bytes) in checkpoints.iter().enumerate() {
            storage
                .stage_checkpoint(p as u32, 1, bytes)
                .unwrap_or_else(|e| panic!("{e}"));
            write(WriteBatch {
                checkpoints: vec![(p as u32, 1)],
                actions: vec![(p as u32, 1, Vec::new())],
                ..WriteBatch::default()
            });
        }
        let mut next = vec![2u64; partitions as usize];
        let mut at = clock;
        let mut entries = Vec::new();
        for line in tail {
            let raw = journey::io::parse_line(line, 1).unwrap_or_else(|e| panic!("{}", e.message));
            at = at.max(raw.timestamp_ms);
            let p = partition_of(&raw.user_key, partitions) as usize;
            entries.push((
                p as u32,
                next[p],
                Entry::Message {
                    at,
                    line: line.clone(),
                },
            ));
            next[p] += 1;
        }
        write(WriteBatch {
            entries,
            clock: Some(at),
            ..WriteBatch::default()
        });
    }
    let size: u64 = [data.clone(), data.join("checkpoints")]
        .iter()
        .flat_map(std::fs::read_dir)
        .flatten()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(18_091, |a| a.port());
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(["serve", "journeys", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data")
        .arg(&data)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("journey serve: {e}"));
    let ready = format!("http://127.0.0.1:{port}/readyz");
    while ureq::get(&ready).call().is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "ready in time"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = started.elapsed();
    let status = |field: &str| {
        std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_default()
    };
    let rss = status("VmRSS:");
    let cpu = std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
        .ok()
        .and_then(|stat| {
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
            Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
        })
        .unwrap_or_default();
    println!(
        "journey serve on a data directory of the checkpoints and a journal of {} entries \
         after them ({:.0} MB): ready in {:.2} s, {cpu:.2} s of CPU (all threads), resident \
         {rss} kB then",
        tail.len(),
        size as f64 / 1e6,
        took.as_secs_f64()
    );
    // Once ready, each partition takes a checkpoint of what it replayed:
    // the service's memory when those are written, and its peak.
    std::thread::sleep(Duration::from_secs(10));
    println!(
        "  10 s later (the replay's checkpoints written): resident {} kB ({:.0} B/customer of \
         the stream), peak {} kB",
        status("VmRSS:"),
        status("VmRSS:") as f64 * 1024.0 / users as f64,
        status("VmHWM:")
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    if std::env::var_os("JOURNEY_BENCH_KEEP").is_some() {
        // For `serve`'s latency on a million customers of state.
        println!(
            "kept {}: JOURNEY_BENCH_STATE={}@{clock}",
            data.display(),
            data.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&data);
    }
}

/// The `timestamp` of the stream's last line: where the service's clock is
/// moved to.
fn last_timestamp(path: &std::path::Path) -> i64 {
    use std::io::BufRead;
    let file = std::fs::File::open(path).expect("the stream");
    let last = BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .last()
        .unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(&last).expect("a JSON line");
    value["timestamp"]
        .as_str()
        .and_then(journey::value::parse_timestamp)
        .expect("a timestamp")
}
