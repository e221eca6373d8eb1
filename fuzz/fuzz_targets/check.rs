//! Arbitrary text as a `.journey` file, taken through the whole front end
//! and back end as `journey check` and `journey simulate` do: parse, check,
//! and compile when the checks pass. No input may panic, hang or exhaust
//! the stack, and every diagnostic points inside the text.

#![no_main]

use journey::SourceMap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The loader refuses a file that is not UTF-8 before parsing it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut sources = SourceMap::new();
    sources.add("fuzz.journey", text.to_owned());
    let build = journey::pipeline::build(sources);
    for diagnostic in &build.diagnostics.items {
        let span = diagnostic.span;
        assert!(
            span.start <= span.end && span.end as usize <= text.len(),
            "a span outside the text: {diagnostic:?}"
        );
    }
});
