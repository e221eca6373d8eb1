//! `journey simulate --threads N` against one thread: the command line's
//! own entry point (`journey::cli::run`, as the binary calls it, with the
//! binary's allocator), over every journey of `journeys/` and a generated
//! stream written once to a file, actions and report discarded. Prints
//! the wall time (and the CPU time, all threads) of each thread count,
//! events per second and the speed-up over one.
//!
//! `cargo bench --bench simulate_threads` (200,000 users, 2M events by
//! default; `JOURNEY_BENCH_USERS` and `JOURNEY_BENCH_EVENTS` change them,
//! `JOURNEY_BENCH_THREADS=1,2,4` the thread counts, `JOURNEY_BENCH_RUNS`
//! the passes per count, of which the best is kept).

use std::ffi::OsString;
use std::io::{self, BufWriter};
use std::path::Path;
use std::time::{Duration, Instant};

use journey::cli::{self, Exit, Streams};
use journey::io::synth::{SynthOptions, write_stream};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The CPU time the process has used, all threads: `utime` and `stime`
/// of `/proc/self/stat`, in Linux's fixed 100 ticks a second (`None`
/// elsewhere). On a shared machine, the wall time of two threads depends
/// on what else runs; this shows what the threads cost in all.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The CPU time of each thread of the process now, by thread name
/// (`utime` and `stime` of `/proc/self/task/*/stat`; none elsewhere).
fn thread_times() -> Vec<(u64, String, Duration)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| {
            let tid = task.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_string();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some((tid, name, Duration::from_millis(ticks * 10)))
        })
        .collect()
}

/// Samples every thread's CPU time every 50 ms until `done`; returns the
/// CPU time each thread that started meanwhile had used at its last
/// sample, by name (a thread's time from before the sampling counted out).
fn sample_threads(done: &std::sync::atomic::AtomicBool) -> Vec<(String, Duration)> {
    use std::collections::BTreeMap;
    let before: BTreeMap<u64, Duration> =
        thread_times().into_iter().map(|(t, _, c)| (t, c)).collect();
    let mut last: BTreeMap<u64, (String, Duration)> = BTreeMap::new();
    while !done.load(std::sync::atomic::Ordering::Acquire) {
        for (tid, name, cpu) in thread_times() {
            let base = before.get(&tid).copied().unwrap_or_default();
            last.insert(tid, (name, cpu.saturating_sub(base)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    last.into_values()
        .filter(|(name, cpu)| !cpu.is_zero() && name != "sampler")
        .collect()
}

/// One pass of `journey simulate journeys/ --events FILE --threads N`:
/// its wall time and CPU time.
fn pass(events: &Path, threads: usize) -> (Duration, Option<Duration>) {
    let mut out = io::sink();
    let mut err = io::sink();
    let mut streams = Streams {
        stdout: &mut out,
        stderr: &mut err,
        color: false,
    };
    let args: [OsString; 7] = [
        "journey".into(),
        "simulate".into(),
        "journeys/".into(),
        "--events".into(),
        events.as_os_str().to_owned(),
        "--threads".into(),
        threads.to_string().into(),
    ];
    let cpu = cpu_time();
    let done = std::sync::atomic::AtomicBool::new(false);
    let started = Instant::now();
    let (exit, per_thread) = std::thread::scope(|scope| {
        let sampler = std::thread::Builder::new()
            .name("sampler".into())
            .spawn_scoped(scope, || sample_threads(&done))
            .expect("a sampling thread");
        let exit = cli::run(args, &mut streams);
        done.store(true, std::sync::atomic::Ordering::Release);
        (exit, sampler.join().unwrap_or_default())
    });
    let took = started.elapsed();
    let threads: Vec<String> = per_thread
        .iter()
        .map(|(name, cpu)| format!("{name} {:.2} s", cpu.as_secs_f64()))
        .collect();
    println!(
        "  CPU by thread (sampled every 50 ms): {}",
        threads.join(", ")
    );
    let cpu = cpu
        .zip(cpu_time())
        .map(|(before, after)| after.saturating_sub(before));
    assert_eq!(exit, Exit::Success);
    (took, cpu)
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: skip.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let users = env_number("JOURNEY_BENCH_USERS", 200_000) as u32;
    let events = env_number("JOURNEY_BENCH_EVENTS", 10 * u64::from(users));
    let runs = env_number("JOURNEY_BENCH_RUNS", 1).max(1);
    let counts: Vec<usize> = std::env::var("JOURNEY_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2".to_string())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let path = std::env::temp_dir().join(format!("journey-bench-threads-{users}-{events}.ndjson"));
    let file = std::fs::File::create(&path).expect("a scratch file");
    let options = SynthOptions {
        users,
        events,
        seed: 7,
        ..SynthOptions::default()
    };
    let lines = write_stream(options, &mut BufWriter::new(file)).expect("write the stream");
    println!("{users} users, {lines} lines ({})", path.display());
    let mut single = None;
    for threads in counts {
        let (best, cpu) = (0..runs)
            .map(|_| pass(&path, threads))
            .min()
            .unwrap_or_default();
        let rate = lines as f64 / best.as_secs_f64();
        let speedup = single.map_or(String::new(), |s: f64| format!(", {:.2}x", rate / s));
        if threads == 1 {
            single = Some(rate);
        }
        let cpu = cpu.map_or(String::new(), |c| {
            format!(" ({:.2} s of CPU)", c.as_secs_f64())
        });
        println!(
            "simulate --threads {threads}: {:.2} s{cpu}, {:.0} events/s{speedup}",
            best.as_secs_f64(),
            rate
        );
    }
    let _ = std::fs::remove_file(&path);
}
