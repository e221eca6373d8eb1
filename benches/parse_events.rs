//! Parsing Segment lines: this crate's envelope parser against `serde_json`
//! into an owned `Value` and into a fully typed borrowed struct, on the
//! generator's lines (~480 bytes, full `context`) and on compact ~240-byte
//! lines; plus field selection and the timestamp fast path.
//!
//! `cargo bench --bench parse_events`; throughput is in lines (events) per
//! second. `sonic-rs` 0.5 (serde derive, `LazyValue` payloads, and
//! `get_many`) was measured here too and did not beat `serde_json` on this
//! machine without `-C target-cpu=native`, so it is not a dependency.

#[path = "support/compact.rs"]
mod compact;

use compact::remove_field;
use std::borrow::Cow;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use journey::io::segment::{EventReader, RawJson, parse_line, parse_timestamp_ms, select_fields};
use journey::io::synth::{SynthOptions, generate};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Realistic lines from the generator (well-formed only).
fn full_lines() -> Vec<String> {
    let options = SynthOptions {
        users: 2_000,
        events: 20_000,
        seed: 42,
        ..SynthOptions::default()
    };
    generate(options).take(10_000).collect()
}

/// The same lines with a smaller `context` (no `userAgent`, no `page`/`app`),
/// about 240 bytes each, the size PERFORMANCE.md measured with.
fn compact_lines(full: &[String]) -> Vec<String> {
    full.iter()
        .map(|line| {
            let mut line = remove_field(line, ",\"userAgent\":\"", '"');
            for nested in [",\"page\":{", ",\"app\":{"] {
                line = remove_field(&line, nested, '}');
            }
            line
        })
        .collect()
}

/// What a straightforward program deserializes: every field typed.
#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(rename = "userId", default, borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(default)]
    properties: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    traits: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(borrow)]
    context: TypedContext<'a>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(rename = "messageId", borrow)]
    message_id: Cow<'a, str>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedContext<'a> {
    #[serde(default, borrow)]
    ip: Option<Cow<'a, str>>,
    #[serde(rename = "userAgent", default, borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    locale: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    timezone: Option<Cow<'a, str>>,
}

/// The envelope this crate reads, as a plain serde derive (`context`
/// skipped, payloads raw): the same work without the hand-written visitor.
#[derive(Deserialize)]
#[allow(dead_code)]
struct JsonEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(rename = "userId", default, borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    properties: Option<&'a RawValue>,
    #[serde(default, borrow)]
    traits: Option<&'a RawValue>,
    #[serde(default)]
    context: serde::de::IgnoredAny,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(rename = "messageId", borrow)]
    message_id: Cow<'a, str>,
}

fn bench_lines(c: &mut Criterion, name: &str, lines: &[String]) {
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut group = c.benchmark_group(format!("parse/{name}_{}B", bytes / lines.len()));
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("journey_parse_line", |b| {
        b.iter(|| {
            for (i, line) in lines.iter().enumerate() {
                let _ = black_box(parse_line(black_box(line), i + 1));
            }
        })
    });
    let text = lines.join("\n");
    group.bench_function("journey_event_reader", |b| {
        b.iter(|| {
            let mut reader = EventReader::new(text.as_bytes());
            while let Ok(Some(item)) = reader.next_event() {
                let _ = black_box(item);
            }
        })
    });
    group.bench_function("serde_json_typed_struct", |b| {
        b.iter(|| {
            for line in lines {
                let _ = black_box(serde_json::from_str::<TypedEvent<'_>>(black_box(line)));
            }
        })
    });
    group.bench_function("serde_json_envelope_derive", |b| {
        b.iter(|| {
            for line in lines {
                let _ = black_box(serde_json::from_str::<JsonEnvelope<'_>>(black_box(line)));
            }
        })
    });
    group.bench_function("serde_json_value", |b| {
        b.iter(|| {
            for line in lines {
                let _ = black_box(serde_json::from_str::<serde_json::Value>(black_box(line)));
            }
        })
    });
    group.finish();
}

fn parsing(c: &mut Criterion) {
    let full = full_lines();
    let compact = compact_lines(&full);
    bench_lines(c, "full", &full);
    bench_lines(c, "compact", &compact);
}

/// Reading two properties: a selective pass against a full `Value`.
fn properties(c: &mut Criterion) {
    let full = full_lines();
    let events: Vec<RawJson<'_>> = full
        .iter()
        .filter_map(|line| parse_line(line, 0).ok()?.properties)
        .collect();
    let mut group = c.benchmark_group("properties");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("select_fields_2", |b| {
        let mut out = [None; 2];
        b.iter(|| {
            for raw in &events {
                let _ = select_fields(*raw, &["total", "cart_id"], &mut out);
                black_box(&out);
            }
        })
    });
    group.bench_function("value_then_get_2", |b| {
        b.iter(|| {
            for raw in &events {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(raw.get()) {
                    black_box((value.get("total").cloned(), value.get("cart_id").cloned()));
                }
            }
        })
    });
    group.finish();
}

fn timestamps(c: &mut Criterion) {
    let utc = "2026-03-02T10:00:00.123Z";
    let offset = "2026-03-02T11:00:00.123+01:00";
    let mut group = c.benchmark_group("timestamp");
    group.bench_function("fast_path", |b| {
        b.iter(|| parse_timestamp_ms(black_box(utc)))
    });
    group.bench_function("with_offset_jiff", |b| {
        b.iter(|| parse_timestamp_ms(black_box(offset)))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = parsing, properties, timestamps
}
criterion_main!(benches);
