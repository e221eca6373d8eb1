//! `journey simulate PATH... --events FILE [--max-line-bytes N] [--until T]
//! [--report FILE] [--threads N]`: reads Segment NDJSON, drives the runtime
//! (or N partitions of it, [`threads`]), writes actions as NDJSON on stdout
//! and the report on stderr (or to `--report`). A malformed line (one longer
//! than `--max-line-bytes` too) is reported with its line number and
//! skipped; it never stops the run.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;

use super::args::SimulateArgs;
use super::report::{self, RunCounts};
use super::{Exit, Streams, commands};
use crate::io::EventReader;
use crate::io::adapter::{self, Payload};
use crate::runtime::store::DedupConfig;
use crate::runtime::{Action, MemStore, Rejected, Runtime, RuntimeOptions, Stats};
use crate::service::threads::{self, Failure, LineProblem, MAX_THREADS};
use crate::syntax::parse_duration;
use crate::value;

pub fn simulate(args: &SimulateArgs, streams: &mut Streams<'_>) -> io::Result<Exit> {
    let until = match args.until.as_deref().map(value::parse_timestamp) {
        None => None,
        Some(Some(t)) => Some(t),
        Some(None) => {
            let message = format!(
                "`--until {}` is not an RFC 3339 timestamp",
                args.until.as_deref().unwrap_or_default()
            );
            streams.error(&message, Some("write it like `2026-03-30T00:00:00Z`"))?;
            return Ok(Exit::CouldNotRun);
        }
    };
    let Some(max_clock_jump_ms) = duration_ms("--max-clock-jump", &args.max_clock_jump, streams)?
    else {
        return Ok(Exit::CouldNotRun);
    };
    let Some(window_ms) = duration_ms("--dedup-window", &args.dedup_window, streams)? else {
        return Ok(Exit::CouldNotRun);
    };
    let dedup = DedupConfig {
        capacity: args.dedup_capacity,
        window_ms,
        ..DedupConfig::default()
    };
    if !(1..=MAX_THREADS).contains(&args.threads) {
        let message = format!(
            "`--threads {}` is not a number of threads from 1 to {MAX_THREADS}",
            args.threads
        );
        streams.error(&message, Some("the machine's cores are the most that help"))?;
        return Ok(Exit::CouldNotRun);
    }
    let stores = match (0..args.threads)
        .map(|_| MemStore::with_dedup(dedup))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(stores) => stores,
        Err(e) => {
            streams.error(&format!("`--dedup-capacity`: {e}"), None)?;
            return Ok(Exit::CouldNotRun);
        }
    };
    let input: Box<dyn BufRead + Send> = if args.events.as_os_str() == "-" {
        Box::new(BufReader::with_capacity(1 << 16, io::stdin()))
    } else {
        match File::open(&args.events) {
            Ok(f) => Box::new(BufReader::with_capacity(1 << 16, f)),
            Err(e) => {
                let message = format!("cannot read `{}`: {e}", args.events.display());
                streams.error(&message, None)?;
                return Ok(Exit::CouldNotRun);
            }
        }
    };
    let program = match commands::program_of(&args.inputs, &args.journeys, streams)? {
        Ok(program) => Arc::new(program),
        Err(exit) => return Ok(exit),
    };
    let mut runtimes: Vec<Runtime> = stores
        .into_iter()
        .map(|store| {
            Runtime::with_store(program.clone(), store)
                .with_options(RuntimeOptions { max_clock_jump_ms })
        })
        .collect();
    let name = display_name(&args.events);
    let reader = EventReader::new(input).with_max_line_bytes(args.max_line_bytes);
    let (stats, counts) = if let [runtime] = runtimes.as_mut_slice() {
        match run(runtime, reader, until, &name, streams)? {
            Ok(counts) => (runtime.stats().clone(), counts),
            Err(exit) => return Ok(exit),
        }
    } else {
        match run_threads(runtimes, reader, until, &name, streams)? {
            Ok((stats, counts, rest)) => {
                runtimes = rest;
                (stats, counts)
            }
            Err(exit) => return Ok(exit),
        }
    };
    let (text, path) = match &args.report {
        Some(path) if path.extension().is_some_and(|e| e == "json") => {
            (report::json(&program, &stats, &counts), Some(path))
        }
        Some(path) if path.extension().is_some_and(|e| e == "html") => {
            match report::html(&program, &stats, &counts) {
                Ok(page) => (page, Some(path)),
                Err(e) => {
                    streams.error(&format!("cannot write the HTML report: {e}"), None)?;
                    return Ok(Exit::CouldNotRun);
                }
            }
        }
        Some(path) => (report::text(&program, &stats, &counts), Some(path)),
        None => (report::text(&program, &stats, &counts), None),
    };
    // The process ends after this command: freeing millions of customers'
    // state one allocation at a time would only delay the exit.
    std::mem::forget(runtimes);
    match path {
        None => streams.stderr.write_all(text.as_bytes())?,
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                streams.error(&format!("cannot write `{}`: {e}", path.display()), None)?;
                return Ok(Exit::CouldNotRun);
            }
        }
    }
    Ok(Exit::Success)
}

/// Feeds every line to the runtime, then lets time run on (to `until`, or
/// until nothing is pending). Actions go to stdout as they happen.
fn run(
    runtime: &mut Runtime,
    mut reader: EventReader<Box<dyn BufRead + Send>>,
    until: Option<i64>,
    name: &str,
    streams: &mut Streams<'_>,
) -> io::Result<Result<RunCounts, Exit>> {
    let mut counts = RunCounts {
        file: name.to_string(),
        ..RunCounts::default()
    };
    let mut clock = runtime.now();
    let mut out = String::with_capacity(1 << 17);
    loop {
        let next = match reader.next_event() {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(e) => {
                streams.error(&format!("cannot read `{name}`: {e}"), None)?;
                return Ok(Err(Exit::CouldNotRun));
            }
        };
        counts.lines += 1;
        match next {
            (line, Ok(raw)) => {
                if until.is_some_and(|u| raw.timestamp_ms > u) {
                    counts.after_until += 1;
                    continue;
                }
                let payload = Payload::of(&raw);
                let event = adapter::event(&raw, &payload);
                match runtime.ingest(&event, &mut |a| push(&mut out, a)) {
                    Ok(()) => {
                        counts.late.see(line as u64, raw.timestamp_ms, clock);
                        clock = clock.max(Some(raw.timestamp_ms));
                    }
                    Err(rejected) => write_rejected(streams.stderr, name, line, &rejected)?,
                }
            }
            (line, Err(e)) => {
                counts.malformed += 1;
                writeln!(streams.stderr, "{name}:{line}: {}", e.message)?;
            }
        }
        if out.len() >= 1 << 16 {
            streams.stdout.write_all(out.as_bytes())?;
            out.clear();
        }
    }
    // Recurring occurrences fire only while input lasts (LANGUAGE.md §4.4).
    runtime.end_input();
    match until {
        Some(t) => runtime.advance_to(t, &mut |a| push(&mut out, a)),
        None => runtime.finish(&mut |a| push(&mut out, a)),
    }
    streams.stdout.write_all(out.as_bytes())?;
    Ok(Ok(counts))
}

/// [`run`] over partitions on threads ([`threads::simulate`]): the same
/// output, problems and counters.
#[allow(clippy::type_complexity)]
fn run_threads(
    runtimes: Vec<Runtime>,
    input: EventReader<Box<dyn BufRead + Send>>,
    until: Option<i64>,
    name: &str,
    streams: &mut Streams<'_>,
) -> io::Result<Result<(Stats, RunCounts, Vec<Runtime>), Exit>> {
    let Streams { stdout, stderr, .. } = streams;
    let mut problem = |line: usize, problem: &LineProblem| match problem {
        LineProblem::Malformed(message) => writeln!(stderr, "{name}:{line}: {message}"),
        LineProblem::Rejected(rejected) => write_rejected(stderr, name, line, rejected),
    };
    match threads::simulate(runtimes, input, until, *stdout, &mut problem) {
        Ok(outcome) => {
            let counts = RunCounts {
                file: name.to_string(),
                lines: outcome.lines,
                malformed: outcome.malformed,
                after_until: outcome.after_until,
                late: outcome.late,
            };
            Ok(Ok((outcome.stats, counts, outcome.runtimes)))
        }
        Err(Failure::Write(e)) => Err(e),
        Err(Failure::NoRuntime) => Err(io::Error::other("no partition to run")),
        Err(Failure::Spawn(e)) => {
            streams.error(&format!("cannot start the threads: {e}"), None)?;
            Ok(Err(Exit::CouldNotRun))
        }
        Err(Failure::Read(e)) => {
            streams.error(&format!("cannot read `{name}`: {e}"), None)?;
            Ok(Err(Exit::CouldNotRun))
        }
    }
}

fn write_rejected(
    stderr: &mut dyn Write,
    name: &str,
    line: usize,
    rejected: &Rejected,
) -> io::Result<()> {
    match rejected {
        Rejected::TooFarAhead { .. } => writeln!(
            stderr,
            "{name}:{line}: {rejected} (`--max-clock-jump` sets how far)"
        ),
        _ => writeln!(stderr, "{name}:{line}: {rejected}"),
    }
}

/// A duration option in milliseconds; `None` (reported) when it is not a
/// duration above zero.
fn duration_ms(flag: &str, text: &str, streams: &mut Streams<'_>) -> io::Result<Option<i64>> {
    match parse_duration(text) {
        Ok(secs) if secs > 0 => Ok(Some(secs as i64 * 1_000)),
        _ => {
            let message = format!("`{flag} {text}` is not a duration above zero");
            streams.error(&message, Some("write it like `7d`, `36h` or `12w`"))?;
            Ok(None)
        }
    }
}

fn push(out: &mut String, action: Action) {
    action.write_json_line(out);
    out.push('\n');
}

fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string().replace('\\', "/")
    }
}
