//! The runtime end to end (issue 5): lines in memory → Segment reader
//! (`EventReader`, as `journey simulate` reads a file) → runtime → every
//! action serialized to a sink that discards the bytes, on a generated
//! stream (1M users, 10M events by default), with every journey of
//! `journeys/` loaded; the abandoned-cart journey alone against a
//! hand-written Rust program of it (its lines split with `str::split`,
//! as such a program would; same sends asserted); and the bytes a
//! waiting instance costs beyond its user's profile, measured with a
//! counting global allocator.
//!
//! `cargo bench --bench runtime` runs everything at full scale (about
//! 4.9 GB of lines, generated once per process). Smaller runs:
//! `JOURNEY_BENCH_USERS=100000 cargo bench --bench runtime` (events default
//! to ten per user; `JOURNEY_BENCH_EVENTS` overrides), and
//! `JOURNEY_BENCH_ONLY=full,v1.0,no-absence,cart,memory,parse,compact,latency,dedup,schedule`
//! picks sections (`v1.0`: the example project without the four journeys
//! that use the v1.1 triggers; `latency`: what a random cache line costs this machine;
//! `dedup`: the `messageId` window alone, over as many ids as events;
//! `schedule`: the bytes a user costs while a weekly occurrence is pending,
//! and the time of one occurrence offering entry to every user). Each
//! figure is one pass over the whole stream (the runtime is stateful, so a
//! pass cannot be repeated on the same instance); `JOURNEY_BENCH_RUNS=3`
//! repeats passes and keeps the best.

#[path = "support/baseline.rs"]
mod baseline;
#[path = "support/compact.rs"]
mod compact;
#[path = "support/counting.rs"]
mod counting;

use compact::remove_field;
use counting::live;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use journey::compile::{Program, compile};
use journey::io::adapter::{self, Payload};
use journey::io::segment::{EventReader, InputError, RawEvent, parse_line};
use journey::io::synth::{SynthOptions, generate};
use journey::project::{Project, load_paths};
use journey::runtime::store::Dedup;
use journey::runtime::{Action, ActionKind, Runtime};

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

struct Config {
    users: u32,
    events: u64,
    runs: u32,
    only: Option<String>,
}

impl Config {
    fn from_env() -> Config {
        let users = env_u64("JOURNEY_BENCH_USERS", 1_000_000).clamp(1, u64::from(u32::MAX)) as u32;
        Config {
            users,
            events: env_u64("JOURNEY_BENCH_EVENTS", u64::from(users) * 10),
            runs: env_u64("JOURNEY_BENCH_RUNS", 1).max(1) as u32,
            only: std::env::var("JOURNEY_BENCH_ONLY").ok(),
        }
    }

    fn wants(&self, section: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|only| only.split(',').any(|s| s.trim() == section))
    }
}

fn journeys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("journeys")
}

/// Compiles the given files of `journeys/` (all of them when `names` is empty).
fn program(names: &[&str]) -> Arc<Program> {
    let dir = journeys_dir();
    let mut paths: Vec<PathBuf> = if names.is_empty() {
        let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "journey"))
            .collect();
        all.sort();
        all
    } else {
        names
            .iter()
            .map(|n| dir.join(format!("{n}.journey")))
            .collect()
    };
    paths.sort();
    let sources = load_paths(&paths).unwrap_or_else(|e| panic!("loading journeys: {e}"));
    let (project, diagnostics) = Project::parse(sources);
    assert!(diagnostics.is_empty(), "syntax errors in journeys/");
    let (program, _) = compile(&journey::check::check(&project).0)
        .unwrap_or_else(|e| panic!("journeys/ does not compile: {e}"));
    Arc::new(program)
}

/// Every journey of `journeys/` but those named.
fn program_without(left_out: &[&str]) -> Arc<Program> {
    let names: Vec<String> = std::fs::read_dir(journeys_dir())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".journey").map(str::to_owned)
        })
        .filter(|n| !left_out.contains(&n.as_str()))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    program(&names)
}

/// Every journey but the three with a `trigger no ... for` (absence)
/// trigger, which make every event of a known user a relevant one.
fn no_absence_program() -> Arc<Program> {
    program_without(&["app_reengagement", "sunset", "win_back"])
}

/// The example project as it was before the v1.1 triggers: every journey
/// but the four that use them (a schedule, a date, an anniversary, a
/// segment), to compare the runtime's cost on the same work.
fn v1_0_program() -> Arc<Program> {
    program_without(&["birthday", "plan_renewal", "vip_welcome", "weekly_digest"])
}

struct Programs {
    full: Arc<Program>,
    cart: Arc<Program>,
    no_absence: Arc<Program>,
    v1_0: Arc<Program>,
}

fn cart_program() -> Arc<Program> {
    program(&[
        "schema",
        "policy",
        "segments",
        "templates",
        "abandoned_cart",
    ])
}

/// The whole stream, one line each, newline-terminated.
fn stream(config: &Config) -> String {
    let options = SynthOptions {
        users: config.users,
        events: config.events,
        seed: 5,
        ..SynthOptions::default()
    };
    let mut out = String::with_capacity((config.events as usize).saturating_mul(500));
    let mut stream = generate(options);
    let mut line = String::with_capacity(1024);
    while stream.next_line(&mut line) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Trims `context` in place towards what PERFORMANCE.md measured (~240-byte
/// lines): no `library`, `ip`, `userAgent`, `page` or `app`.
fn compact(text: String) -> String {
    let mut bytes = text.into_bytes();
    let (mut read, mut write) = (0, 0);
    while read < bytes.len() {
        let end = bytes[read..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |p| read + p + 1);
        let line = String::from_utf8_lossy(&bytes[read..end]).into_owned();
        let mut line = remove_field(&line, ",\"userAgent\":\"", '"');
        line = remove_field(&line, ",\"ip\":\"", '"');
        for nested in [",\"page\":{", ",\"app\":{"] {
            line = remove_field(&line, nested, '}');
        }
        line = remove_field(&line, "\"library\":{", '}').replacen(
            "\"context\":{,",
            "\"context\":{",
            1,
        );
        bytes[write..write + line.len()].copy_from_slice(line.as_bytes());
        write += line.len();
        read = end;
    }
    bytes.truncate(write);
    bytes.shrink_to_fit();
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("compacted stream: {e}"))
}

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').filter(|l| !l.is_empty())
}

#[derive(Default, Debug, Clone, Copy)]
struct Outcome {
    events: u64,
    actions: u64,
    bytes: u64,
    cart_sends: u64,
    errors: u64,
}

/// One pass: parse, adapt, ingest, serialize every action. Timers still
/// pending at the end are fired by `finish`, timed apart.
fn run_runtime(program: &Arc<Program>, text: &str) -> (Outcome, Duration, Duration) {
    let mut rt = Runtime::new(program.clone());
    let mut out = Outcome::default();
    // One buffer for the whole stream, as a writer to a file or socket would.
    let mut line = String::with_capacity(512);
    let mut sink = |a: Action| {
        line.clear();
        a.write_json_line(&mut line);
        out.actions += 1;
        out.bytes += black_box(&line).len() as u64 + 1;
        if matches!(a.kind, ActionKind::Send { .. }) && &*a.journey == "abandoned_cart" {
            out.cart_sends += 1;
        }
    };
    let mut events = 0;
    let mut errors = 0;
    let start = Instant::now();
    let mut reader = EventReader::new(text.as_bytes());
    while let Some((_, parsed)) = next(&mut reader) {
        events += 1;
        match parsed {
            Ok(raw) => {
                let props = Payload::of(&raw);
                let event = adapter::event(&raw, &props);
                let _ = rt.ingest(&event, &mut sink);
            }
            Err(_) => errors += 1,
        }
    }
    let ingest = start.elapsed();
    let start = Instant::now();
    rt.finish(&mut sink);
    let finish = start.elapsed();
    out.events = events;
    out.errors = errors;
    (out, ingest, finish)
}

fn run_baseline(text: &str) -> (baseline::Counts, u64, Duration, Duration) {
    let mut b = baseline::Baseline::default();
    let mut events = 0;
    let start = Instant::now();
    for line in lines(text) {
        events += 1;
        b.line(line);
    }
    let ingest = start.elapsed();
    let start = Instant::now();
    b.finish();
    (b.counts, events, ingest, start.elapsed())
}

fn run_parse(text: &str) -> (u64, Duration) {
    let start = Instant::now();
    let mut n = 0;
    let mut reader = EventReader::new(text.as_bytes());
    while let Some((_, parsed)) = next(&mut reader) {
        if black_box(parsed).is_ok() {
            n += 1;
        }
    }
    (n, start.elapsed())
}

/// The next line's number and event from `reader`, as `journey simulate`
/// reads them: the line's end found and the line parsed where it lies in
/// the input (here the stream in memory, which cannot fail to read).
#[allow(clippy::type_complexity)]
fn next<'r>(
    reader: &'r mut EventReader<&[u8]>,
) -> Option<(usize, Result<RawEvent<'r>, InputError>)> {
    reader
        .next_event()
        .unwrap_or_else(|e| panic!("reading from memory: {e}"))
}

fn per_sec(n: u64, d: Duration) -> String {
    let rate = n as f64 / d.as_secs_f64();
    format!("{:.3}M/s", rate / 1e6)
}

fn best<T>(runs: u32, mut f: impl FnMut() -> (T, Duration)) -> (T, Duration) {
    let mut best: Option<(T, Duration)> = None;
    for _ in 0..runs {
        let (t, d) = f();
        if best.as_ref().is_none_or(|(_, b)| d < *b) {
            best = Some((t, d));
        }
    }
    // `runs` is at least 1.
    best.unwrap_or_else(|| unreachable!())
}

fn throughput(config: &Config, label: &str, text: &str, programs: &Programs) {
    let Programs {
        full,
        cart,
        no_absence,
        v1_0,
    } = programs;
    let n_lines = lines(text).count() as u64;
    println!(
        "\n== {label}: {} lines, {:.0} bytes/line, {} users",
        n_lines,
        text.len() as f64 / n_lines as f64,
        config.users
    );
    if config.wants("parse") {
        let (n, d) = best(config.runs, || run_parse(text));
        println!(
            "parse only (EventReader)         {:>12}  ({n} ok, {:.2?})",
            per_sec(n_lines, d),
            d
        );
    }
    if config.wants("full") {
        let ((o, fin), d) = best(config.runs, || {
            let (o, d, fin) = run_runtime(full, text);
            ((o, fin), d)
        });
        println!(
            "runtime, every journey           {:>12}  ({:.2?}; finish {:.2?}; {} actions, {:.1} MB out, {} bad lines)",
            per_sec(o.events, d),
            d,
            fin,
            o.actions,
            o.bytes as f64 / 1e6,
            o.errors
        );
    }
    if config.wants("v1.0") {
        let ((o, fin), d) = best(config.runs, || {
            let (o, d, fin) = run_runtime(v1_0, text);
            ((o, fin), d)
        });
        println!(
            "runtime, the v1.0 journeys       {:>12}  ({:.2?}; finish {:.2?}; {} actions)",
            per_sec(o.events, d),
            d,
            fin,
            o.actions
        );
    }
    if config.wants("no-absence") {
        let ((o, fin), d) = best(config.runs, || {
            let (o, d, fin) = run_runtime(no_absence, text);
            ((o, fin), d)
        });
        println!(
            "runtime, without `trigger no`    {:>12}  ({:.2?}; finish {:.2?}; {} actions)",
            per_sec(o.events, d),
            d,
            fin,
            o.actions
        );
    }
    if config.wants("cart") {
        let ((o, fin), d) = best(config.runs, || {
            let (o, d, fin) = run_runtime(cart, text);
            ((o, fin), d)
        });
        println!(
            "runtime, abandoned_cart only     {:>12}  ({:.2?}; finish {:.2?}; {} actions, {} sends)",
            per_sec(o.events, d),
            d,
            fin,
            o.actions,
            o.cart_sends
        );
        let ((c, events, bfin), bd) = best(config.runs, || {
            let (c, events, d, fin) = run_baseline(text);
            ((c, events, fin), d)
        });
        println!(
            "hand-written abandoned_cart      {:>12}  ({:.2?}; finish {:.2?}; {} enters, {} sends, {} suppressed, {} conversions)",
            per_sec(events, bd),
            bd,
            bfin,
            c.enters,
            c.sends,
            c.suppressed,
            c.conversions
        );
        println!(
            "ratio interpreted / hand-written {:>11.2}x  (ingest time; with finish {:.2}x)",
            d.as_secs_f64() / bd.as_secs_f64(),
            (d + fin).as_secs_f64() / (bd + bfin).as_secs_f64()
        );
        assert_eq!(
            o.cart_sends, c.sends,
            "the runtime and the hand-written program disagree on abandoned_cart sends"
        );
    }
}

/// Bytes per waiting instance beyond the profile, for `users` users.
fn memory(label: &str, program: &Arc<Program>, users: u32) {
    const T0: i64 = 1_772_460_000_000; // 2026-03-02T14:00:00Z
    let ts = |ms: i64| {
        let mut s = String::new();
        journey::io::segment::write_timestamp_ms(ms, &mut s);
        s
    };
    let (t_identify, t_cart) = (ts(T0), ts(T0 + 60_000));
    let identify: Vec<String> = (0..users)
        .map(|i| {
            format!(
                "{{\"type\":\"identify\",\"userId\":\"mem-{i:07}\",\"traits\":{{\"email\":\"u{i}@example.com\",\"phone\":\"+1555{i:07}\",\"first_name\":\"Ana\",\"timezone\":\"Europe/London\",\"country\":\"GB\",\"lifetime_value\":120,\"consent\":{{\"email\":true,\"sms\":true}}}},\"timestamp\":\"{t_identify}\"}}"
            )
        })
        .collect();
    let carts: Vec<String> = (0..users)
        .map(|i| {
            format!(
                "{{\"type\":\"track\",\"userId\":\"mem-{i:07}\",\"event\":\"cart_abandoned\",\"properties\":{{\"cart_id\":\"c-{i}\",\"total\":80,\"items\":[\"p1\",\"p2\"]}},\"timestamp\":\"{t_cart}\"}}"
            )
        })
        .collect();
    let feed = |rt: &mut Runtime, lines: &[String]| {
        let mut sink = |a: Action| {
            black_box(a.to_json_line());
        };
        for (i, line) in lines.iter().enumerate() {
            let raw = parse_line(line, i + 1).unwrap_or_else(|e| panic!("bench line: {e}"));
            let props = Payload::of(&raw);
            let _ = rt.ingest(&adapter::event(&raw, &props), &mut sink);
        }
    };
    counting::start();
    let base = live();
    let mut rt = Runtime::new(program.clone());
    let empty = live();
    feed(&mut rt, &identify);
    let profiles = live();
    feed(&mut rt, &carts);
    let waiting = live();
    let entered = rt.stats().journeys.iter().map(|j| j.entered).sum::<u64>();
    rt.advance_to(T0 + 3_600_000 + 120_000, &mut |a: Action| {
        black_box(a.to_json_line());
    });
    let waiting_for = live();
    counting::stop();
    let sent = rt.stats().journeys.iter().map(|j| j.sent).sum::<u64>();
    let n = f64::from(users);
    println!(
        "{label:<26} runtime {:>7} B; profile {:>6.1} B/user; waiting in `wait 1h` {:>6.1} B/instance; in `wait for` (after the reminder) {:>6.1} B/instance  ({entered} entered, {sent} sent)",
        empty - base,
        (profiles - empty) as f64 / n,
        (waiting as f64 - profiles as f64) / n,
        (waiting_for as f64 - profiles as f64) / n,
    );
    drop(rt);
}

/// `trigger every monday at 09:00` over `users` known users in eight time
/// zones: the bytes the pending occurrences cost per user (the zone index,
/// counted by the allocator and as the runtime reports it), and the time of
/// one occurrence (every user offered entry: they enter, get the digest and
/// leave).
fn schedule(users: u32) {
    const T0: i64 = 1_772_460_000_000; // Monday 2026-03-02T14:00:00Z
    const ZONES: [&str; 8] = [
        "Europe/London",
        "Europe/Paris",
        "America/New_York",
        "America/Los_Angeles",
        "Asia/Tokyo",
        "Australia/Sydney",
        "Asia/Kolkata",
        "America/Sao_Paulo",
    ];
    let source = "journey weekly_digest {\n  trigger every monday at 09:00\n  reentry always\n  send email weekly_digest\n}\n";
    let mut sources = journey::SourceMap::new();
    sources.add("schedule.journey", source.to_string());
    let build = journey::pipeline::build(sources);
    let program = Arc::new(
        build
            .program
            .unwrap_or_else(|| panic!("the schedule bench's journey has errors")),
    );
    let mut s = String::new();
    journey::io::segment::write_timestamp_ms(T0, &mut s);
    let lines: Vec<String> = (0..users)
        .map(|i| {
            format!(
                "{{\"type\":\"identify\",\"userId\":\"sch-{i:07}\",\"traits\":{{\"email\":\"u{i}@example.com\",\"timezone\":\"{}\"}},\"timestamp\":\"{s}\"}}",
                ZONES[i as usize % ZONES.len()]
            )
        })
        .collect();
    let mut rt = Runtime::new(program);
    let mut sink = |a: Action| {
        black_box(a.to_json_line());
    };
    // The profiles first, then the same users again: the second pass places
    // nobody new, so what it adds is nothing; the index is measured as the
    // runtime holds it.
    let mut base = 0;
    counting::start();
    for (i, line) in lines.iter().enumerate() {
        if i == 0 {
            base = live();
        }
        let raw = parse_line(line, i + 1).unwrap_or_else(|e| panic!("bench line: {e}"));
        let props = Payload::of(&raw);
        let _ = rt.ingest(&adapter::event(&raw, &props), &mut sink);
    }
    let loaded = live();
    counting::stop();
    let index = rt.schedule_index_bytes();
    let n = f64::from(users);
    // The week's occurrences: one per zone, all before the next Monday 23:59Z.
    let start = Instant::now();
    rt.advance_to(T0 + 7 * 86_400_000, &mut sink);
    let took = start.elapsed();
    let entered = rt.stats().journeys.iter().map(|j| j.entered).sum::<u64>();
    println!(
        "weekly occurrence, {users} users in {} zones: pending occurrences {:>5.2} B/user (zone index {} B); one week's occurrences {:.2?} ({} entered, {:.0} ns/user); all state {:.1} B/user",
        ZONES.len(),
        index as f64 / n,
        index,
        took,
        entered,
        took.as_nanos() as f64 / entered.max(1) as f64,
        (loaded - base) as f64 / n,
    );
}

/// The next number of a xorshift64 sequence (never 0 from a seed that is
/// not): the benches' random addresses and ids.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// What one random cache line costs on this machine, for reading the
/// figures above: a table of 64-byte lines is walked in one random cycle
/// (each load's address comes from the one before, as a lookup's chain of
/// index, state and instance does), then read at random addresses known in
/// advance (the loads overlap, as far as the core allows). The table comes
/// from the bench's allocator, mimalloc, in huge pages as the runtime's
/// state does.
fn latency() {
    println!("\n== memory latency (one random cycle through a table; random reads)");
    const STEPS: usize = 2_000_000;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || xorshift(&mut seed);
    for mib in [4usize, 8, 16, 32, 64, 256, 1024] {
        let lines = mib << 14;
        // Sattolo's shuffle: one cycle through every line.
        let mut order: Vec<u32> = (0..lines as u32).collect();
        for i in (1..lines).rev() {
            order.swap(i, (next() % i as u64) as usize);
        }
        let mut table = vec![[0u64; 8]; lines];
        for (i, &line) in order.iter().enumerate() {
            table[line as usize][0] = u64::from(order[(i + 1) % lines]);
        }
        let start = Instant::now();
        let mut at = 0usize;
        for _ in 0..STEPS {
            at = table[at][0] as usize;
        }
        let chained = start.elapsed().as_nanos() as f64 / STEPS as f64;
        black_box(at);
        let picks: Vec<u32> = (0..STEPS).map(|_| (next() % lines as u64) as u32).collect();
        let start = Instant::now();
        let mut sum = 0u64;
        for &line in &picks {
            sum = sum.wrapping_add(table[line as usize][1]);
        }
        let apart = start.elapsed().as_nanos() as f64 / STEPS as f64;
        black_box(sum);
        println!(
            "{mib:>5} MiB table   chained {chained:>6.1} ns/load   independent {apart:>5.1} ns/load"
        );
    }
}

/// The `messageId` window alone: one id an event, as many as the stream
/// has, spread evenly over four weeks (about a quarter of them remembered
/// at a time, as in the stream), each asked once; then the same with the
/// id's line announced four ids ahead, as a caller holding parsed events
/// could.
fn dedup(events: usize) {
    println!("\n== messageId window alone ({events} ids over 28 days)");
    let step = 28 * 24 * 3_600_000 / events.max(1) as i64;
    let mut seed: u64 = 0x243f_6a88_85a3_08d3;
    let hashes: Vec<u128> = (0..events)
        .map(|_| (u128::from(xorshift(&mut seed)) << 64) | u128::from(xorshift(&mut seed)))
        .collect();
    for ahead in [0, 4] {
        let mut window = Dedup::default();
        let start = Instant::now();
        let mut fresh = 0usize;
        for (i, &hash) in hashes.iter().enumerate() {
            if ahead > 0
                && let Some(&next) = hashes.get(i + ahead)
            {
                window.prefetch(next);
            }
            fresh += usize::from(window.sight(hash, i as i64 * step).is_first());
        }
        let per = start.elapsed().as_nanos() as f64 / events.max(1) as f64;
        assert_eq!(fresh, events, "distinct ids, each new");
        let how = if ahead == 0 {
            "asked in turn"
        } else {
            "announced 4 ahead"
        };
        println!(
            "{how:<20} {per:>6.1} ns/id   {} remembered at the end",
            window.len()
        );
    }
}

fn main() {
    let config = Config::from_env();
    let programs = Programs {
        full: program(&[]),
        cart: cart_program(),
        no_absence: no_absence_program(),
        v1_0: v1_0_program(),
    };
    let (full, cart) = (&programs.full, &programs.cart);
    println!(
        "journey runtime bench: {} users, {} events target, best of {} run(s)",
        config.users, config.events, config.runs
    );

    if config.wants("memory") {
        println!("\n== memory (counting allocator; live bytes after / before)");
        let n = config.users.min(1_000_000);
        memory("abandoned_cart only", cart, n);
        memory("every journey", full, n);
    }

    if config.wants("latency") {
        latency();
    }

    if config.wants("schedule") {
        println!("\n== scheduled entry (`trigger every monday at 09:00`)");
        schedule(config.users.min(1_000_000));
    }

    if config.wants("dedup") {
        dedup(usize::try_from(config.events).unwrap_or(usize::MAX));
    }

    let wants_stream = ["parse", "full", "no-absence", "cart"]
        .iter()
        .any(|s| config.wants(s));
    if !wants_stream {
        return;
    }
    let start = Instant::now();
    let text = stream(&config);
    println!(
        "\ngenerated {:.2} GB in {:.1?}",
        text.len() as f64 / 1e9,
        start.elapsed()
    );
    throughput(&config, "full context (generator lines)", &text, &programs);
    if config.wants("compact") || config.only.is_none() {
        let text = compact(text);
        throughput(&config, "compact context", &text, &programs);
    }
}
