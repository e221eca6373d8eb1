//! Template rendering: arbitrary template text and an arbitrary value go
//! through the checker (as a declared email template's `body` and `html`)
//! and, when it compiles, through the runtime's renderer on one event.
//! Rendering must never panic, hang or exhaust memory: fuel and the 64 KiB
//! part limit (src/dialect.rs) end it, and a failure is a `suppress`.
//!
//! Input: the template text, a NUL byte, then the value of
//! `profile.first_name` and `trigger.x`.

#![no_main]

use std::sync::Arc;

use journey::SourceMap;
use journey::io::adapter::{Payload, event};
use journey::io::parse_line;
use journey::pipeline;
use journey::runtime::{Action, Runtime};
use libfuzzer_sys::fuzz_target;

/// The text as a journey string literal's body.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (template, value) = text.split_once('\0').unwrap_or((text, "<b>&</b>"));
    let template = escape(template);
    let source = format!(
        "template t {{ channel email subject \"{template}\" body \"{template}\" html \"{template}\" }}\n\
         journey j {{ trigger e\n send email t }}\n"
    );
    let mut sources = SourceMap::new();
    sources.add("fuzz.journey", source);
    let Some(program) = pipeline::build(sources).program else {
        return;
    };
    let value = serde_json::Value::String(value.to_string());
    let identify = format!(
        r#"{{"type":"identify","userId":"u","traits":{{"email":"a@b.c","first_name":{value}}},"timestamp":"2026-03-02T08:00:00Z"}}"#
    );
    let track = format!(
        r#"{{"type":"track","userId":"u","event":"e","properties":{{"x":{value},"items":[{value},1]}},"timestamp":"2026-03-02T09:00:00Z"}}"#
    );
    let mut rt = Runtime::new(Arc::new(program));
    let mut out = |a: Action| {
        let _ = a.to_json_line();
    };
    for (n, line) in [identify, track].iter().enumerate() {
        if let Ok(raw) = parse_line(line, n + 1) {
            let payload = Payload::of(&raw);
            // A refused event (its time) changes nothing: nothing to check.
            let _ = rt.ingest(&event(&raw, &payload), &mut out);
        }
    }
    rt.finish(&mut out);
});
