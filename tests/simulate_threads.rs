//! `journey simulate --threads N` writes byte for byte what one thread
//! writes (actions on stdout; line problems and the report on stderr): on
//! the example project, every runtime fixture, generated streams, and small
//! projects made for the cases where partitions could part from one
//! runtime (timers of several partitions at one instant, a timer due at an
//! event's instant, late events, `--until`, the end of time, duplicates,
//! refused and malformed lines). Runs the command line in this process.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use journey::cli::{self, Exit, Streams};
use journey::io::synth::{SynthOptions, write_stream};
use journey::service::partitions::partition_of;
use proptest::prelude::*;

/// `journey simulate <args> --threads <threads>`: exit, stdout, stderr.
fn simulate(args: &[&str], threads: usize) -> (Exit, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut streams = Streams {
        stdout: &mut out,
        stderr: &mut err,
        color: false,
    };
    let threads = threads.to_string();
    let flag = ["--threads", threads.as_str()];
    let argv = ["journey", "simulate"]
        .iter()
        .chain(args)
        .chain(&flag)
        .map(OsString::from);
    let exit = cli::run(argv, &mut streams);
    (
        exit,
        String::from_utf8(out).expect("stdout is UTF-8"),
        String::from_utf8(err).expect("stderr is UTF-8"),
    )
}

/// Runs on one, two and three threads; asserts the same exit and bytes,
/// and returns one thread's stdout and stderr.
fn same_on_threads(args: &[&str]) -> (String, String) {
    let (exit, out, err) = simulate(args, 1);
    assert_eq!(exit, Exit::Success, "{err}");
    for threads in [2, 3] {
        let (t_exit, t_out, t_err) = simulate(args, threads);
        assert_eq!(t_exit, exit, "{threads} threads: {t_err}");
        assert!(
            t_out == out,
            "{threads} threads, stdout differs at line {}",
            first_difference(&out, &t_out)
        );
        assert!(
            t_err == err,
            "{threads} threads, stderr differs:\n{err}\n----- {threads} threads\n{t_err}"
        );
    }
    (out, err)
}

fn first_difference(a: &str, b: &str) -> usize {
    a.lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or(a.lines().count().min(b.lines().count()))
        + 1
}

/// A directory of its own under cargo's scratch space.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("threads-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Writes a one-file project and its events; returns their paths.
fn project(name: &str, source: &str, events: &str) -> (String, String) {
    let dir = scratch(name);
    let journey = dir.join("project.journey");
    let ndjson = dir.join("events.ndjson");
    std::fs::write(&journey, source).expect("write the project");
    std::fs::write(&ndjson, events).expect("write the events");
    (path(&journey), path(&ndjson))
}

fn path(p: &Path) -> String {
    p.to_str().expect("a UTF-8 path").to_string()
}

/// Two user keys in different partitions of two, the first sorting after
/// the second: a merge by partition, or by the order users came in, would
/// put them the wrong way round.
fn users_apart() -> (String, String) {
    let key = |i: u32| format!("user-{i:03}");
    let late = (0..).map(key).find(|k| partition_of(k, 2) == 0);
    let late = late.expect("a key in partition 0");
    let early = (0..)
        .map(key)
        .find(|k| partition_of(k, 2) == 1 && k < &late)
        .expect("a smaller key in partition 1");
    assert!(early < late);
    (late, early)
}

fn track(user: &str, event: &str, at: &str, id: &str) -> String {
    format!(
        r#"{{"type":"track","userId":"{user}","event":"{event}","properties":{{}},"timestamp":"{at}","messageId":"{id}"}}"#
    ) + "\n"
}

fn identify(user: &str, at: &str) -> String {
    format!(
        r#"{{"type":"identify","userId":"{user}","traits":{{"email":"{user}@example.com"}},"timestamp":"{at}"}}"#
    ) + "\n"
}

const TWO_JOURNEYS: &str = "
journey beta {
  trigger viewed
  wait 1h
  send email beta_mail
}

journey alpha {
  trigger viewed
  wait 1h
  send email alpha_mail
}
";

/// (kind, journey, user) of each action line.
fn actions(out: &str) -> Vec<(String, String, String)> {
    out.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("an action is JSON");
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (field("kind"), field("journey"), field("user_id"))
        })
        .collect()
}

fn sends(out: &str) -> Vec<(String, String)> {
    actions(out)
        .into_iter()
        .filter(|(kind, _, _)| kind == "send")
        .map(|(_, journey, user)| (journey, user))
        .collect()
}

#[test]
fn the_example_project_is_the_same_on_threads() {
    let (out, _) = same_on_threads(&["journeys/", "--events", "journeys/events.ndjson"]);
    assert!(out.lines().count() > 1_000);
    same_on_threads(&[
        "journeys/",
        "--events",
        "journeys/events.ndjson",
        "--until",
        "2026-03-10T00:00:00Z",
    ]);
}

#[test]
fn every_runtime_fixture_is_the_same_on_threads() {
    let mut seen = 0;
    for entry in std::fs::read_dir("tests/fixtures/runtime").expect("the fixtures") {
        let journey = entry.expect("a fixture").path();
        if journey.extension().is_some_and(|e| e == "journey") {
            let events = journey.with_extension("ndjson");
            same_on_threads(&[&path(&journey), "--events", &path(&events)]);
            seen += 1;
        }
    }
    assert!(seen >= 30, "{seen} fixtures");
}

/// A generated stream of 2,000 users and 20,000 events (five windows).
fn generated(name: &str) -> String {
    let events = scratch(name).join("events.ndjson");
    let mut text = Vec::new();
    let options = SynthOptions {
        users: 2_000,
        events: 20_000,
        seed: 7,
        malformed_rate: 0.001,
        ..SynthOptions::default()
    };
    write_stream(options, &mut text).expect("generate");
    std::fs::write(&events, text).expect("write the events");
    path(&events)
}

#[test]
fn a_generated_stream_is_the_same_on_threads() {
    let events = generated("generated");
    let (out, err) = same_on_threads(&["journeys/", "--events", &events]);
    assert!(out.lines().count() > 10_000, "{err}");
    assert!(err.contains(" malformed"), "{err}");
}

#[test]
fn timers_due_together_in_two_partitions_fire_by_journey_then_user() {
    let (late, early) = users_apart();
    let at = "2026-03-02T10:00:00Z";
    let events = [
        identify(&late, at),
        identify(&early, at),
        track(&late, "viewed", at, "v1"),
        track(&early, "viewed", at, "v2"),
        // Both partitions' timers are due before this line.
        identify(&late, "2026-03-02T12:00:00Z"),
    ]
    .concat();
    let (journey, ndjson) = project("same-due", TWO_JOURNEYS, &events);
    let (out, _) = same_on_threads(&[&journey, "--events", &ndjson]);
    let expected = [
        ("alpha", &early),
        ("alpha", &late),
        ("beta", &early),
        ("beta", &late),
    ]
    .map(|(j, u)| (j.to_string(), u.to_string()));
    assert_eq!(sends(&out), expected);
}

#[test]
fn a_timer_due_at_an_events_instant_fires_before_the_event() {
    let (late, early) = users_apart();
    let events = [
        identify(&early, "2026-03-02T09:00:00Z"),
        track(&early, "viewed", "2026-03-02T10:00:00Z", "v1"),
        // The other partition's event, exactly when the timers are due.
        identify(&late, "2026-03-02T11:00:00Z"),
        track(&late, "viewed", "2026-03-02T11:00:00Z", "v2"),
    ]
    .concat();
    let (journey, ndjson) = project("due-at-event", TWO_JOURNEYS, &events);
    let (out, _) = same_on_threads(&[&journey, "--events", &ndjson]);
    let kinds: Vec<(String, String, String)> = actions(&out);
    let send = kinds
        .iter()
        .position(|(k, _, u)| k == "send" && u == &early)
        .expect("a send to the first user");
    let enter = kinds
        .iter()
        .position(|(k, _, u)| k == "enter" && u == &late)
        .expect("the second user enters");
    assert!(send < enter, "{out}");
}

#[test]
fn late_and_refused_events_follow_the_one_clock() {
    let (late, early) = users_apart();
    let events = [
        identify(&early, "2026-01-01T09:00:00Z"),
        identify(&late, "2026-12-01T09:00:00Z"),
        // Late by the one clock, though this partition saw nothing later.
        track(&early, "viewed", "2026-11-01T10:00:00Z", "v1"),
        // Seventeen months after this partition's last event, six after
        // the clock: admitted.
        track(&early, "viewed", "2027-06-01T10:00:00Z", "v2"),
        // More than a year after the clock: refused.
        track(&late, "viewed", "2028-07-01T10:00:00Z", "v3"),
        track(&late, "viewed", "1960-01-01T10:00:00Z", "v4"),
        "{not json\n".to_string(),
        track(&late, "viewed", "2027-06-01T10:30:00Z", "v5"),
    ]
    .concat();
    let (journey, ndjson) = project("clock", TWO_JOURNEYS, &events);
    let (out, err) = same_on_threads(&[&journey, "--events", &ndjson]);
    assert!(err.contains(" 1 late"), "{err}");
    let problems: Vec<&str> = err
        .lines()
        .take_while(|l| !l.starts_with("events:"))
        .collect();
    assert_eq!(problems.len(), 3, "{err}");
    assert!(problems[0].contains(":5: "), "{err}");
    assert!(problems[1].contains(":6: "), "{err}");
    assert!(problems[2].contains(":7: "), "{err}");
    // The late event enters at the clock's time.
    assert!(
        out.contains(r#"{"at":"2026-12-01T09:00:00Z","kind":"enter""#),
        "{out}"
    );
}

#[test]
fn until_stops_every_partition_at_the_same_time() {
    let (late, early) = users_apart();
    let events = [
        identify(&late, "2026-03-02T09:00:00Z"),
        identify(&early, "2026-03-02T09:00:00Z"),
        track(&late, "viewed", "2026-03-02T10:00:00Z", "v1"),
        track(&early, "viewed", "2026-03-02T10:30:00Z", "v2"),
        track(&early, "viewed", "2026-03-02T12:00:00Z", "v3"),
    ]
    .concat();
    let source = "journey alpha {\n  trigger viewed\n  wait 1h\n  send email alpha_mail\n}\n";
    let (journey, ndjson) = project("until", source, &events);
    let args = [
        &journey,
        "--events",
        &ndjson,
        "--until",
        "2026-03-02T11:15:00Z",
    ];
    let (out, err) = same_on_threads(&args);
    assert_eq!(sends(&out), [("alpha".to_string(), late.clone())]);
    assert!(err.contains("1 after --until"), "{err}");
}

#[test]
fn the_end_of_time_merges_every_partitions_timers() {
    let (late, early) = users_apart();
    let mut events = String::new();
    for (i, user) in [&late, &early, &late, &early].iter().enumerate() {
        let at = format!("2026-03-02T10:0{i}:00Z");
        events += &identify(user, &at);
    }
    events += &track(&late, "viewed", "2026-03-02T10:05:00Z", "v1");
    events += &track(&early, "viewed", "2026-03-02T10:05:00Z", "v2");
    events += &track(&late, "viewed", "2026-03-02T10:06:00Z", "v3");
    let (journey, ndjson) = project("finish", TWO_JOURNEYS, &events);
    let (out, _) = same_on_threads(&[&journey, "--events", &ndjson]);
    // Everything after the last line comes from the end of time.
    assert_eq!(sends(&out).len(), 4, "{out}");
    assert_eq!(sends(&out)[0], ("alpha".to_string(), early.clone()));
}

#[test]
fn duplicates_are_found_per_user_in_each_partition() {
    let (late, early) = users_apart();
    let source =
        "journey alpha {\n  trigger viewed\n  reentry always\n  send email alpha_mail\n}\n";
    let events = [
        identify(&late, "2026-03-02T09:00:00Z"),
        identify(&early, "2026-03-02T09:00:00Z"),
        track(&late, "viewed", "2026-03-02T10:00:00Z", "same"),
        track(&early, "viewed", "2026-03-02T10:01:00Z", "same"),
        track(&late, "viewed", "2026-03-02T10:02:00Z", "same"),
        track(&early, "viewed", "2026-03-02T10:03:00Z", "other"),
    ]
    .concat();
    let (journey, ndjson) = project("duplicates", source, &events);
    let (out, err) = same_on_threads(&[&journey, "--events", &ndjson]);
    assert!(err.contains(" 1 duplicates"), "{err}");
    assert_eq!(sends(&out).len(), 3, "{out}");
}

#[test]
fn the_json_report_is_the_same_on_threads() {
    let dir = scratch("report");
    let report = |threads: usize| {
        let path = dir.join(format!("report-{threads}.json"));
        let args = [
            "journeys/",
            "--events",
            "journeys/events.ndjson",
            "--report",
            path.to_str().expect("a UTF-8 path"),
        ];
        let (exit, _, err) = simulate(&args, threads);
        assert_eq!(exit, Exit::Success, "{err}");
        std::fs::read_to_string(path).expect("the report")
    };
    let one = report(1);
    assert!(one.contains("\"journeys\""), "{one}");
    assert_eq!(report(2), one);
    assert_eq!(report(3), one);
}

/// A stdout that takes `room` bytes, then fails like a closed pipe.
struct ClosesAfter {
    room: usize,
}

impl std::io::Write for ClosesAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_closed_stdout_stops_every_thread() {
    let events = generated("closed-stdout");
    let mut out = ClosesAfter { room: 1_000 };
    let mut err = Vec::new();
    let mut streams = Streams {
        stdout: &mut out,
        stderr: &mut err,
        color: false,
    };
    let argv = [
        "journey",
        "simulate",
        "journeys/",
        "--events",
        &events,
        "--threads",
        "2",
    ];
    // Returns (a hang would be the failure): every thread saw its
    // channel close.
    let exit = cli::run(argv.iter().map(OsString::from), &mut streams);
    assert_eq!(exit, Exit::CouldNotRun);
}

#[test]
fn an_unreadable_input_is_reported_as_with_one_thread() {
    for threads in [1, 2] {
        let (exit, _, err) = simulate(&["journeys/", "--events", "journeys/"], threads);
        assert_eq!(exit, Exit::CouldNotRun);
        assert!(err.contains("error: cannot read `journeys/`"), "{err}");
    }
}

#[test]
fn threads_out_of_range_are_refused() {
    for threads in [0, 65] {
        let (exit, out, err) = simulate(
            &["journeys/", "--events", "journeys/events.ndjson"],
            threads,
        );
        assert_eq!(exit, Exit::CouldNotRun);
        assert!(out.is_empty());
        assert!(
            err.contains(&format!(
                "`--threads {threads}` is not a number of threads from 1 to 64"
            )),
            "{err}"
        );
    }
}

/// A generated stream with some lines moved back (late), repeated
/// (duplicates), sent far ahead (refused) or broken (malformed).
fn disturbed_stream(seed: u64, edits: &[(usize, u8)]) -> String {
    let mut text = Vec::new();
    let options = SynthOptions {
        users: 40,
        events: 600,
        seed,
        days: 6,
        malformed_rate: 0.0,
        ..SynthOptions::default()
    };
    write_stream(options, &mut text).expect("generate");
    let text = String::from_utf8(text).expect("UTF-8");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for &(at, edit) in edits {
        let len = lines.len();
        if len < 2 {
            break;
        }
        let i = at % len;
        match edit % 4 {
            0 => lines.swap(i, (i + 7) % len),
            1 => {
                let copy = lines[i].clone();
                lines.insert((i + 3).min(len), copy);
            }
            2 => lines[i] = lines[i].replace("\"timestamp\":\"2026", "\"timestamp\":\"2031"),
            _ => {
                let half = lines[i].len() / 2;
                lines[i].truncate(half);
            }
        }
    }
    let mut out = String::new();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn threads_give_one_threads_bytes(
        seed in 0u64..1_000,
        edits in prop::collection::vec((0usize..10_000, 0u8..4), 0..12),
        until in prop::option::of(1u32..6),
    ) {
        let dir = scratch("property");
        let events = dir.join("events.ndjson");
        std::fs::write(&events, disturbed_stream(seed, &edits)).expect("write the events");
        let events = path(&events);
        let until = until.map(|day| format!("2026-03-0{}T12:00:00Z", day + 2));
        let mut args = vec!["journeys/", "--events", &events];
        if let Some(until) = &until {
            args.extend(["--until", until]);
        }
        let (exit, out, err) = simulate(&args, 1);
        prop_assert_eq!(exit, Exit::Success);
        let (t_exit, t_out, t_err) = simulate(&args, 2);
        prop_assert_eq!(t_exit, exit);
        prop_assert!(t_out == out, "stdout differs at line {}", first_difference(&out, &t_out));
        prop_assert_eq!(t_err, err);
    }
}
