//! Arbitrary bytes as a Segment NDJSON file, read by `EventReader` and run
//! through the example project of `journeys/` to its end: no input may
//! panic, hang or exhaust memory anywhere on that path.

#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use journey::compile::Program;
use journey::io::EventReader;
use journey::io::adapter::{self, Payload};
use journey::runtime::Runtime;
use libfuzzer_sys::fuzz_target;

/// `journeys/`, compiled once.
static PROGRAM: LazyLock<Arc<Program>> = LazyLock::new(|| {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../journeys"));
    let sources = journey::project::load_paths(&[dir]).expect("journeys/ loads");
    let build = journey::pipeline::build(sources);
    Arc::new(build.program.expect("journeys/ compiles"))
});

fuzz_target!(|data: &[u8]| {
    let mut runtime = Runtime::new(PROGRAM.clone());
    let mut actions = 0usize;
    let mut sink = |_| actions += 1;
    let mut reader = EventReader::new(data).with_max_line_bytes(4096);
    while let Ok(Some((_, event))) = reader.next_event() {
        let Ok(raw) = event else { continue };
        let payload = Payload::of(&raw);
        // Every time goes in: the runtime refuses what it must (a jump,
        // a year past 9999) and never waits past the end of time.
        let _ = runtime.ingest(&adapter::event(&raw, &payload), &mut sink);
    }
    runtime.finish(&mut sink);
});
