//! Front end and back end throughput on a generated corpus of realistic
//! journeys (2,000 journeys, ~50,000 lines, with schemas, templates,
//! segments and a policy): (a) parse + check of sources in memory,
//! (b) the same from files on disk (`read_parse_check`: walk the directory,
//! read, parse, check — what `journey check DIR` does before printing),
//! (c) compile (lowering and the static analyses). Throughput is reported
//! in lines per second. (d) `examples_read_parse_check`: the example
//! project `journeys/` read, parsed and checked, as `journey check journeys/`
//! does.
//!
//! `cargo bench --bench check_compile`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use journey::compile;
use journey::pipeline::check_sources;
use journey::project::load_paths;

#[path = "support/corpus.rs"]
mod corpus;

use corpus::{JOURNEYS, corpus};

fn bench(c: &mut Criterion) {
    let (sources, lines) = corpus();
    let (project, diagnostics) = check_sources(sources.clone());
    assert!(
        !diagnostics.has_errors(),
        "the generated corpus must be valid: {:?}",
        diagnostics
            .items
            .iter()
            .filter(|d| d.is_error())
            .take(5)
            .map(|d| (&d.message, d.span))
            .collect::<Vec<_>>()
    );
    eprintln!(
        "corpus: {JOURNEYS} journeys, {lines} lines, {} files",
        sources.files().len()
    );

    let mut group = c.benchmark_group("check_compile");
    group.throughput(Throughput::Elements(lines as u64));
    group.sample_size(20);
    group.bench_function("parse_and_check", |b| {
        b.iter(|| black_box(check_sources(black_box(sources.clone()))))
    });
    // The corpus written once under target/, read back on every iteration.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-corpus");
    let _ = std::fs::remove_dir_all(&dir);
    for file in sources.files() {
        let path = dir.join(&file.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        std::fs::write(&path, &*file.text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let paths = vec![dir.clone()];
    group.bench_function("read_parse_check", |b| {
        b.iter(|| {
            let sources = load_paths(black_box(&paths)).unwrap_or_else(|e| panic!("{e}"));
            black_box(check_sources(sources))
        })
    });
    group.bench_function("compile", |b| {
        let (model, _) = journey::check::check(&project);
        b.iter(|| black_box(compile::compile(black_box(&model))))
    });
    group.finish();

    let examples = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("journeys")];
    let sources = load_paths(&examples).unwrap_or_else(|e| panic!("{e}"));
    let lines: usize = sources.files().iter().map(|f| f.text.lines().count()).sum();
    let (_, diagnostics) = check_sources(sources);
    assert!(
        !diagnostics.has_errors(),
        "the example project must be clean"
    );
    eprintln!("examples: {lines} lines");
    let mut group = c.benchmark_group("check_examples");
    group.throughput(Throughput::Elements(lines as u64));
    group.sample_size(50);
    group.bench_function("examples_read_parse_check", |b| {
        b.iter(|| {
            let sources = load_paths(black_box(&examples)).unwrap_or_else(|e| panic!("{e}"));
            black_box(check_sources(sources))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
