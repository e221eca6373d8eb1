//! `journey simulate --threads N`: the customers split into N partitions
//! ([`partition_of`]), each partition's runtime on a thread of its own, and
//! their actions merged back into exactly the bytes one runtime writes.
//!
//! One clock rules every partition (LANGUAGE.md §6.2), so a reader thread
//! keeps it: it parses each line, decides what one runtime would (after
//! `--until`, refused for its time, late), stamps each admitted line with
//! its *instant* (the later of its timestamp and the clock) and hands the
//! lines out in windows: to every partition the instants of all the
//! window's admitted lines, and its own customers' events. A partition
//! moves its clock to every instant in turn, so its timers fire before the
//! same line as one runtime's would, then takes its own event at its
//! instant (never late, never refused, inside the partition).
//!
//! Every action is tagged with where one runtime would have written it:
//! the line whose processing produced it, timers before the line's event,
//! and among timers (due, round, journey, user key) ([`Fired`]), in which
//! each partition's actions already come. The calling thread merges the
//! partitions' tagged actions window by window and writes them.
//!
//! Memory stays bounded: every channel is bounded, a window holds at most
//! [`WINDOW_LINES`] lines, and a partition sends its actions in chunks of
//! about [`CHUNK_BYTES`], so the merge holds a chunk per partition.

use std::cmp::Ordering;
use std::io::{self, BufRead, Write};
use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use super::partitions::partition_of;
use crate::io::adapter::{self, Payload};
use crate::io::json::RawJson;
use crate::io::{EventReader, MessageKind, RawEvent};
use crate::runtime::{Action, Fired, MemStore, Rejected, Runtime, RuntimeOptions, Stats};

/// The most threads (and partitions) `simulate` runs on.
pub const MAX_THREADS: usize = 64;
/// The most lines in one window.
pub const WINDOW_LINES: usize = 4_096;
/// A window also ends once its events hold this many bytes of text.
const WINDOW_BYTES: usize = 4 << 20;
/// About how many bytes of actions a partition sends at once.
pub const CHUNK_BYTES: usize = 1 << 16;
/// Windows waiting for a partition, and chunks waiting for the merge.
const INPUT_WINDOWS: usize = 4;
const OUTPUT_CHUNKS: usize = 16;

/// Why a line was not processed, for the caller to report with its number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineProblem {
    /// Not a usable Segment message (the reader's message).
    Malformed(String),
    /// Refused for its time.
    Rejected(Rejected),
}

/// What a run did.
pub struct Outcome {
    /// Every partition's counters added up, with the reader's: late and
    /// refused events, ignored kinds.
    pub stats: Stats,
    /// Non-blank lines read.
    pub lines: u64,
    pub malformed: u64,
    /// Events after `--until`, not processed.
    pub after_until: u64,
    /// The events stamped before the clock: how many, how late, where.
    pub late: crate::io::late::LateEvents,
    /// The partitions' runtimes, as the run left them.
    pub runtimes: Vec<Runtime>,
}

/// Why a run stopped before the end of its input.
#[derive(Debug)]
pub enum Failure {
    /// Reading the input failed.
    Read(io::Error),
    /// Writing the actions or a problem failed.
    Write(io::Error),
    /// No runtime was given to run the partitions.
    NoRuntime,
    /// The system would not start a thread.
    Spawn(io::Error),
}

/// Runs `input` through `runtimes` (one partition each, on a thread each),
/// writing the actions to `out` and each line's problem to `problem`,
/// exactly as one runtime holding every customer would: then lets time run
/// on to `until`, or until no timer is pending.
///
/// Each runtime should hold only its partition's customers (fresh ones
/// do); they share the clock, which starts at the latest of theirs, and
/// the first one's [`RuntimeOptions`]. At least one runtime is needed.
pub fn simulate(
    runtimes: Vec<Runtime>,
    input: EventReader<impl BufRead + Send>,
    until: Option<i64>,
    out: &mut dyn Write,
    problem: &mut dyn FnMut(usize, &LineProblem) -> io::Result<()>,
) -> Result<Outcome, Failure> {
    let Some(first) = runtimes.first() else {
        return Err(Failure::NoRuntime);
    };
    let options = first.options();
    let mut stats = Stats::for_program(first.program());
    let clock = runtimes.iter().filter_map(Runtime::now).max();
    thread::scope(|scope| {
        let (notes_tx, notes) = sync_channel(INPUT_WINDOWS);
        let mut inputs = Vec::with_capacity(runtimes.len());
        let mut workers = Vec::with_capacity(runtimes.len());
        // A thread that cannot start drops the channels made so far, so
        // the ones started find them closed and stop.
        for (i, runtime) in runtimes.into_iter().enumerate() {
            let (input_tx, input_rx) = sync_channel(INPUT_WINDOWS);
            let (output_tx, output_rx) = sync_channel(OUTPUT_CHUNKS);
            inputs.push(input_tx);
            let handle = thread::Builder::new()
                .name(format!("partition-{i}"))
                .spawn_scoped(scope, move || work(runtime, &input_rx, output_tx, until))
                .map_err(Failure::Spawn)?;
            workers.push((handle, output_rx));
        }
        let reader = Reader {
            options,
            until,
            clock,
            inputs,
            notes: notes_tx,
        };
        thread::Builder::new()
            .name("reader".to_string())
            .spawn_scoped(scope, move || reader.run(input))
            .map_err(Failure::Spawn)?;
        let (handles, outputs): (Vec<_>, Vec<_>) = workers.into_iter().unzip();
        // The receivers go with `merge`: when it stops early, the threads
        // find their channels closed and stop too.
        let counts = merge(&notes, outputs, out, problem);
        drop(notes);
        let runtimes: Vec<Runtime> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        let counts = counts?;
        stats.late = counts.late;
        stats.rejected = counts.rejected;
        stats.ignored_kinds = counts.ignored_kinds;
        for runtime in &runtimes {
            stats.merge(runtime.stats());
        }
        Ok(Outcome {
            stats,
            lines: counts.lines,
            malformed: counts.malformed,
            after_until: counts.after_until,
            late: counts.late_events,
            runtimes,
        })
    })
}

/// What the reader counts: the lines, and what only the global clock decides.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    lines: u64,
    malformed: u64,
    after_until: u64,
    late: u64,
    late_events: crate::io::late::LateEvents,
    rejected: u64,
    ignored_kinds: u64,
}

// ---------------------------------------------------------------------------
// The reader

/// An admitted line and the instant it is processed at.
#[derive(Clone, Copy, Debug)]
struct Stamp {
    line: usize,
    instant: i64,
}

/// One partition's share of a window.
struct Batch {
    /// Every admitted line of the window, the partition's or not.
    stamps: Arc<[Stamp]>,
    /// The text of the events' fields.
    text: String,
    events: Vec<Queued>,
}

/// An event of a batch: its fields are ranges of the batch's text.
struct Queued {
    line: usize,
    instant: i64,
    kind: MessageKind,
    user_key: Range<usize>,
    event: Option<Range<usize>>,
    message_id: Option<Range<usize>>,
    /// Traits of an identify, properties otherwise (what the runtime reads).
    payload: Option<Range<usize>>,
    context_timezone: Option<Range<usize>>,
}

enum Input {
    Window(Batch),
    /// The input ended: let time run on.
    End,
}

enum Note {
    /// The problems of the next window's lines, in line order.
    Window(Vec<(usize, LineProblem)>),
    End(Counts),
    Failed(io::Error),
}

struct Reader {
    options: RuntimeOptions,
    until: Option<i64>,
    clock: Option<i64>,
    inputs: Vec<SyncSender<Input>>,
    notes: SyncSender<Note>,
}

impl Reader {
    /// Reads every line and sends every window; stops early when a
    /// receiver is gone (the merge stopped).
    fn run(mut self, mut reader: EventReader<impl BufRead>) {
        let mut counts = Counts::default();
        // The last window's sizes: most windows are alike, and a batch
        // that never grows is never copied.
        let mut sizes = vec![(0, 0); self.inputs.len()];
        loop {
            let mut stamps = Vec::with_capacity(WINDOW_LINES);
            let mut batches: Vec<Batch> = sizes
                .iter()
                .map(|&(text, events)| Batch {
                    stamps: Arc::new([]),
                    text: String::with_capacity(text + text / 8),
                    events: Vec::with_capacity(events + events / 8),
                })
                .collect();
            let mut problems = Vec::new();
            let mut bytes = 0;
            let mut failed = None;
            let mut ended = false;
            while stamps.len() + problems.len() < WINDOW_LINES && bytes < WINDOW_BYTES {
                let (line, parsed) = match reader.next_event() {
                    Ok(Some(next)) => next,
                    Ok(None) => {
                        ended = true;
                        break;
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                };
                counts.lines += 1;
                let raw = match parsed {
                    Ok(raw) => raw,
                    Err(e) => {
                        counts.malformed += 1;
                        problems.push((line, LineProblem::Malformed(e.message)));
                        continue;
                    }
                };
                if self.until.is_some_and(|u| raw.timestamp_ms > u) {
                    counts.after_until += 1;
                    continue;
                }
                if let Err(rejected) = self.options.admits(raw.timestamp_ms, self.clock) {
                    counts.rejected += 1;
                    problems.push((line, LineProblem::Rejected(rejected)));
                    continue;
                }
                let instant = match self.clock {
                    Some(clock) if raw.timestamp_ms < clock => {
                        counts.late += 1;
                        counts
                            .late_events
                            .see(line as u64, raw.timestamp_ms, Some(clock));
                        clock
                    }
                    _ => raw.timestamp_ms,
                };
                self.clock = Some(instant);
                stamps.push(Stamp { line, instant });
                if !raw.kind.is_processed() {
                    // It only moves the clock, which the stamp does.
                    counts.ignored_kinds += 1;
                    continue;
                }
                let partition = partition_of(&raw.user_key, batches.len() as u32) as usize;
                let batch = &mut batches[partition];
                let before = batch.text.len();
                batch.push(line, instant, &raw);
                bytes += batch.text.len() - before;
            }
            let stamps: Arc<[Stamp]> = stamps.into();
            for (size, batch) in sizes.iter_mut().zip(&batches) {
                *size = (batch.text.len(), batch.events.len());
            }
            for (input, mut batch) in self.inputs.iter().zip(batches) {
                batch.stamps = stamps.clone();
                if input.send(Input::Window(batch)).is_err() {
                    return;
                }
            }
            if self.notes.send(Note::Window(problems)).is_err() {
                return;
            }
            if let Some(e) = failed {
                let _ = self.notes.send(Note::Failed(e));
                return;
            }
            if ended {
                for input in &self.inputs {
                    if input.send(Input::End).is_err() {
                        return;
                    }
                }
                let _ = self.notes.send(Note::End(counts));
                return;
            }
        }
    }
}

impl Batch {
    fn push(&mut self, line: usize, instant: i64, raw: &RawEvent<'_>) {
        let payload = match raw.kind {
            MessageKind::Identify => raw.traits,
            _ => raw.properties,
        };
        let queued = Queued {
            line,
            instant,
            kind: raw.kind,
            user_key: self.copy(&raw.user_key),
            event: raw.event.as_deref().map(|s| self.copy(s)),
            message_id: raw.message_id.as_deref().map(|s| self.copy(s)),
            payload: payload.map(|p| self.copy(p.get())),
            context_timezone: raw.context_timezone.as_deref().map(|s| self.copy(s)),
        };
        self.events.push(queued);
    }

    fn copy(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }
}

impl Queued {
    /// The event as the reader parsed it, stamped at its instant.
    fn raw<'a>(&self, text: &'a str) -> RawEvent<'a> {
        let field = |range: &Range<usize>| &text[range.clone()];
        let payload = self
            .payload
            .as_ref()
            .map(|r| RawJson::new_unchecked(field(r)));
        let identify = self.kind == MessageKind::Identify;
        RawEvent {
            kind: self.kind,
            user_key: field(&self.user_key).into(),
            event: self.event.as_ref().map(|r| field(r).into()),
            timestamp_ms: self.instant,
            message_id: self.message_id.as_ref().map(|r| field(r).into()),
            properties: payload.filter(|_| !identify),
            traits: payload.filter(|_| identify),
            context_timezone: self.context_timezone.as_ref().map(|r| field(r).into()),
        }
    }
}

// ---------------------------------------------------------------------------
// The partitions

/// Actions of one partition, in its order, cut into segments by what
/// produced them.
#[derive(Default)]
struct Chunk {
    /// JSON lines.
    text: String,
    segments: Vec<Segment>,
    /// The user keys of timer segments.
    keys: String,
    /// The last chunk of its window.
    last: bool,
}

impl Chunk {
    /// A chunk that holds [`CHUNK_BYTES`] of actions without growing.
    fn with_capacity() -> Chunk {
        Chunk {
            text: String::with_capacity(CHUNK_BYTES + (CHUNK_BYTES >> 2)),
            segments: Vec::with_capacity(CHUNK_BYTES >> 7),
            keys: String::with_capacity(CHUNK_BYTES >> 4),
            last: false,
        }
    }
}

/// Consecutive actions of one partition with one origin.
struct Segment {
    /// The line whose processing produced them (`usize::MAX` once the
    /// input has ended).
    line: usize,
    /// The timer that fired them; `None` for the line's event.
    fired: Option<Fired>,
    /// The timer's user key, in the chunk's keys.
    user: Range<usize>,
    /// Where they end in the chunk's text.
    end: usize,
}

/// Collects a partition's actions into chunks and sends them.
struct Recorder {
    output: SyncSender<Chunk>,
    chunk: Chunk,
    /// The merge stopped: nothing more to send.
    closed: bool,
}

impl Recorder {
    fn record(&mut self, line: usize, fired: Option<Fired>, action: &Action) {
        if self.closed {
            return;
        }
        let chunk = &self.chunk;
        let same = chunk.segments.last().is_some_and(|last| {
            last.line == line
                && last.fired == fired
                && (fired.is_none() || chunk.keys[last.user.clone()] == *action.user_id)
        });
        if !same {
            if self.chunk.text.len() >= CHUNK_BYTES {
                self.send(false);
            }
            let start = self.chunk.keys.len();
            if fired.is_some() {
                self.chunk.keys.push_str(&action.user_id);
            }
            self.chunk.segments.push(Segment {
                line,
                fired,
                user: start..self.chunk.keys.len(),
                end: 0,
            });
        }
        action.write_json_line(&mut self.chunk.text);
        self.chunk.text.push('\n');
        if let Some(last) = self.chunk.segments.last_mut() {
            last.end = self.chunk.text.len();
        }
    }

    fn send(&mut self, last: bool) {
        let mut chunk = std::mem::replace(&mut self.chunk, Chunk::with_capacity());
        chunk.last = last;
        if !self.closed && self.output.send(chunk).is_err() {
            self.closed = true;
        }
    }
}

/// A partition's thread: every window, then the rest of time.
fn work(
    mut runtime: Runtime,
    input: &Receiver<Input>,
    output: SyncSender<Chunk>,
    until: Option<i64>,
) -> Runtime {
    let mut recorder = Recorder {
        output,
        chunk: Chunk::with_capacity(),
        closed: false,
    };
    loop {
        match input.recv() {
            Ok(Input::Window(batch)) => run_window(&mut runtime, &batch, &mut recorder),
            Ok(Input::End) => {
                finish(&mut runtime, until, &mut recorder);
                recorder.send(true);
                return runtime;
            }
            // The reader stopped early: the run failed.
            Err(_) => return runtime,
        }
        recorder.send(true);
        if recorder.closed {
            return runtime;
        }
    }
}

fn run_window(runtime: &mut Runtime<MemStore>, batch: &Batch, recorder: &mut Recorder) {
    let mut events = batch.events.iter().peekable();
    for &Stamp { line, instant } in batch.stamps.iter() {
        runtime.advance_to_tagged(instant, &mut |fired, action| {
            recorder.record(line, Some(fired), &action);
        });
        if let Some(queued) = events.next_if(|q| q.line == line) {
            let raw = queued.raw(&batch.text);
            let payload = Payload::of(&raw);
            let event = adapter::event(&raw, &payload);
            // Never refused: the clock is at the event's time, which the
            // reader admitted.
            let _ = runtime.ingest(&event, &mut |action| recorder.record(line, None, &action));
        }
    }
}

/// Lets time run on to `until`, or until no timer is pending, as
/// [`Runtime::finish`] does.
fn finish(runtime: &mut Runtime, until: Option<i64>, recorder: &mut Recorder) {
    let mut sink = |fired, action: Action| recorder.record(usize::MAX, Some(fired), &action);
    runtime.end_input();
    match until {
        Some(t) => runtime.advance_to_tagged(t, &mut sink),
        None => {
            while let Some(due) = runtime.next_due() {
                runtime.advance_to_tagged(due, &mut sink);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The merge

/// A partition's chunks as the merge reads them.
struct Stream {
    chunks: Receiver<Chunk>,
    chunk: Chunk,
    /// The next segment, and where its text starts.
    next: usize,
    start: usize,
}

impl Stream {
    fn key(&self) -> Option<(&Segment, &str)> {
        let segment = self.chunk.segments.get(self.next)?;
        Some((segment, &self.chunk.keys[segment.user.clone()]))
    }
}

/// The order of one runtime's output: by line; at a line, timers before
/// the event; timers by due time, round, journey, user key.
fn order(a: (&Segment, &str), b: (&Segment, &str)) -> Ordering {
    let (sa, ua) = a;
    let (sb, ub) = b;
    sa.line
        .cmp(&sb.line)
        .then_with(|| match (sa.fired, sb.fired) {
            (Some(fa), Some(fb)) => {
                (fa.due, fa.round, fa.journey, ua).cmp(&(fb.due, fb.round, fb.journey, ub))
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
}

/// Writes every window's problems and merged actions, then the actions
/// after the input; the reader's counts at the end.
fn merge(
    notes: &Receiver<Note>,
    outputs: Vec<Receiver<Chunk>>,
    out: &mut dyn Write,
    problem: &mut dyn FnMut(usize, &LineProblem) -> io::Result<()>,
) -> Result<Counts, Failure> {
    let mut streams: Vec<Stream> = outputs
        .into_iter()
        .map(|chunks| Stream {
            chunks,
            chunk: Chunk::default(),
            next: 0,
            start: 0,
        })
        .collect();
    let mut buffer = Vec::with_capacity(2 * CHUNK_BYTES);
    loop {
        let note = notes.recv().map_err(|_| stopped())?;
        let counts = match note {
            Note::Window(problems) => {
                for (line, p) in &problems {
                    problem(*line, p).map_err(Failure::Write)?;
                }
                None
            }
            Note::End(counts) => Some(counts),
            Note::Failed(e) => return Err(Failure::Read(e)),
        };
        merge_window(&mut streams, &mut buffer, out)?;
        if let Some(counts) = counts {
            out.write_all(&buffer).map_err(Failure::Write)?;
            return Ok(counts);
        }
    }
}

/// Merges one window's chunks of every partition (the last window: what
/// came after the input).
fn merge_window(
    streams: &mut [Stream],
    buffer: &mut Vec<u8>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    loop {
        let mut best: Option<usize> = None;
        for i in 0..streams.len() {
            let stream = &mut streams[i];
            while stream.next == stream.chunk.segments.len() && !stream.chunk.last {
                stream.chunk = stream.chunks.recv().map_err(|_| stopped())?;
                stream.next = 0;
                stream.start = 0;
            }
            let Some(key) = streams[i].key() else {
                continue;
            };
            if best.is_none_or(|b| {
                streams[b]
                    .key()
                    .is_some_and(|best| order(key, best) == Ordering::Less)
            }) {
                best = Some(i);
            }
        }
        let Some(best) = best else {
            // Every partition is at the end of the window: the next one
            // starts with a fresh chunk.
            for stream in streams.iter_mut() {
                stream.chunk.last = false;
                stream.chunk.segments.clear();
                stream.next = 0;
            }
            return Ok(());
        };
        let stream = &mut streams[best];
        let end = stream.chunk.segments[stream.next].end;
        buffer.extend_from_slice(&stream.chunk.text.as_bytes()[stream.start..end]);
        stream.start = end;
        stream.next += 1;
        if buffer.len() >= CHUNK_BYTES {
            out.write_all(buffer).map_err(Failure::Write)?;
            buffer.clear();
        }
    }
}

/// A thread stopped before its end: a panic, which joining the threads
/// passes on.
fn stopped() -> Failure {
    Failure::Read(io::Error::other("a partition's thread stopped"))
}
