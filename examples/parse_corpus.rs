//! A small driver for profiling the front end: builds the corpus of
//! `benches/check_compile.rs` and runs parse + check on it `N` times
//! (`cargo run --release --example parse_corpus -- [N]`), so that
//! `valgrind --tool=callgrind` or `perf record` can count where time goes.

use std::hint::black_box;

use journey::pipeline::check_sources;

#[path = "../benches/support/corpus.rs"]
mod corpus;

use corpus::corpus;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let (sources, lines) = corpus();
    let mut errors = 0;
    for _ in 0..n {
        let (_, diagnostics) = check_sources(black_box(sources.clone()));
        errors += diagnostics.items.len();
    }
    eprintln!("{lines} lines x {n}, {errors} diagnostics");
}
