//! The parser's fast path against pest and the visitors.
//!
//! Wherever the fast path returns an item, pest must return the same item
//! (spans included) and no diagnostic for that chunk: on every `.journey`
//! file of the repository, on tricky snippets, and on random mutations of
//! the example journeys. And it must not silently decline: every chunk of
//! the example journeys, the benchmark corpus and the construct fixtures
//! takes the fast path.

use std::path::{Path, PathBuf};

use journey::syntax::parse_both_paths;
use journey::{FileId, SourceFile};
use proptest::prelude::*;

#[path = "../benches/support/corpus.rs"]
#[allow(dead_code)]
mod corpus;
#[path = "support/mutate.rs"]
mod mutate;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.journey` file under `dir`, sorted.
fn journey_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "journey") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks the two paths agree on `text`; returns (chunks, chunks the fast
/// path took, chunks pest parsed cleanly).
fn agree(name: &str, text: &str) -> (usize, usize, usize) {
    let file = SourceFile::new(FileId(3), name, text);
    let chunks = parse_both_paths(&file);
    let (mut fast, mut clean) = (0, 0);
    for chunk in &chunks {
        let pest_clean = chunk.pest.is_some() && chunk.diagnostics.is_empty();
        clean += usize::from(pest_clean);
        if let Some(item) = &chunk.fast {
            fast += 1;
            assert!(
                chunk.diagnostics.is_empty(),
                "{name} {:?}: the fast path took a chunk pest reports: {:#?}\n{:?}",
                chunk.range,
                chunk.diagnostics,
                &text[chunk.range.clone()]
            );
            assert_eq!(
                Some(item),
                chunk.pest.as_ref(),
                "{name} {:?}: the paths disagree on\n{}",
                chunk.range,
                &text[chunk.range.clone()]
            );
        }
    }
    (chunks.len(), fast, clean)
}

/// Checks agreement and that the fast path takes every chunk pest parses
/// cleanly.
fn agree_and_cover(name: &str, text: &str) {
    let file = SourceFile::new(FileId(3), name, text);
    agree(name, text);
    for chunk in parse_both_paths(&file) {
        if chunk.pest.is_some() && chunk.diagnostics.is_empty() {
            assert!(
                chunk.fast.is_some(),
                "{name} {:?}: the fast path declined a valid chunk:\n{}",
                chunk.range,
                &text[chunk.range.clone()]
            );
        }
    }
}

#[test]
fn every_repository_file_agrees() {
    let mut totals = (0, 0, 0);
    for dir in ["journeys", "tests/fixtures"] {
        for path in journey_files(&root().join(dir)) {
            let (chunks, fast, clean) = agree(&path.display().to_string(), &read(&path));
            totals = (totals.0 + chunks, totals.1 + fast, totals.2 + clean);
        }
    }
    eprintln!(
        "{} chunks, {} taken by the fast path, {} clean under pest",
        totals.0, totals.1, totals.2
    );
    assert!(
        totals.1 > 100,
        "the fast path took almost nothing: {totals:?}"
    );
}

#[test]
fn the_example_journeys_take_the_fast_path() {
    let files = journey_files(&root().join("journeys"));
    assert!(files.len() >= 10);
    for path in files {
        let text = read(&path);
        let file = SourceFile::new(FileId(0), path.display().to_string(), text.as_str());
        for chunk in parse_both_paths(&file) {
            assert!(
                chunk.fast.is_some(),
                "{} {:?} was declined:\n{}",
                path.display(),
                chunk.range,
                &text[chunk.range.clone()]
            );
        }
        agree(&path.display().to_string(), &text);
    }
}

#[test]
fn the_construct_fixtures_take_the_fast_path() {
    let files = journey_files(&root().join("tests/fixtures/check/constructs"));
    assert!(files.len() >= 20);
    for path in files {
        agree_and_cover(&path.display().to_string(), &read(&path));
    }
}

#[test]
fn the_benchmark_corpus_takes_the_fast_path() {
    let (sources, _) = corpus::corpus();
    for file in sources.files() {
        for chunk in parse_both_paths(file) {
            assert!(
                chunk.fast.is_some(),
                "{} {:?} was declined:\n{}",
                file.name,
                chunk.range,
                &file.text[chunk.range.clone()]
            );
            assert_eq!(chunk.fast, chunk.pest, "{} {:?}", file.name, chunk.range);
            assert!(chunk.diagnostics.is_empty());
        }
    }
}

/// Snippets on the edges of the grammar: the fast path must agree or
/// decline; `valid` ones must take it.
#[test]
fn tricky_snippets_agree() {
    let valid = [
        "segment s = -3 * - -4 + -(5) - not x",
        "segment s = not a == b and c or d in [1, 2,] and e not in\n [] contains f",
        "segment s = a == not b == c + 1 * 2 / 3 - 4",
        "segment s = f(a, b,) + g() + h (1) + profile.a.b.c + event.x",
        "segment s = x // trailing\n// another comment\n\n",
        "segment s = \"a // b\" // c\n",
        "segment s = now() - 1h30m + 0s > 2026-12-24T09:00:00Z",
        "segment s = 1.5 + 10 - 2026 - true - null - false",
        "segment s = \"esc \\\" \\\\ \\n \\t \\u{1F600}\"",
        "segment s = [\"multi\nline\", x] and y\n\n// c \"q\n",
        "template t { body \"a\nb\" // x \"y\n channel email } // z\n",
        "template t { channel email subject \"s\" body \"b\" }",
        "template t { html \"<p>{{ x }}</p>\" channel email body \"b\" }",
        "event \"Order Completed\" { a: string, b: list<list<number>>? c: { d: bool } }",
        "event e{}",
        "profile { x : timestamp ? , y: duration }",
        "channel c { consent profile.x address profile.y }",
        "policy { cap messages 3 per 7d quiet hours 21:00 to 08:00 in \"UTC\" cap sms 1 per 1d }",
        "journey j {\n  wait 1h\n  name \"late header\"\n  trigger e where event.x == 1\n  exit\n}",
        "journey j { trigger no any for 30d trigger no \"x\" for 1d exit on x exit if y }",
        "journey j { goal x where a within 7d goal y within 1d goal z holdout 12.5% reentry never }",
        "journey j { reentry always reentry after 1w audience a cap email 2 per 1d }",
        "journey j { send email t with { a: 1, b: x or y } or sms \"ext\" as h transactional on capped skip }",
        "journey j { send email t on capped wait wait for h.opened within 1d { exit } else { exit } }",
        "journey j { wait for \"E x\" where event.a within 2d else { } wait for e within 1d {} }",
        "journey j { wait until 09:00 on monday, sunday wait until 23:59 wait until trigger.at - 2h }",
        "journey j { if a { } else if b { exit } else if c { } else { wait 1s } }",
        "journey j { split s { 50% a { } 50%b{} } split { 100% only { exit } } }",
        "journey j { repeat 3 times { emit e with { x: 1 } } set profile.a.b = 1 emit \"E\" }",
        "journey j { add to audience a until exit add to audience b remove from audience a }",
        "journey j {\n  // comment\n  exit // after\n}\n\n/// doc of the next\n",
    ];
    for (n, src) in valid.iter().enumerate() {
        agree_and_cover(&format!("valid_{n}"), src);
        let file = SourceFile::new(FileId(0), "x", *src);
        let chunks = parse_both_paths(&file);
        assert!(chunks.iter().all(|c| c.fast.is_some()), "declined: {src:?}");
    }
    let edges = [
        // pest's span ends after the comment here: its comment search
        // starts the last line outside the string.
        "segment s = x == \"multi\nline\" // c\n",
        "segment s = a = b",
        "segment and = x",
        "segment s = x or",
        "segment s = 5 min",
        "segment s = 1e5",
        "segment s = 99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999",
        "segment s = 2026-13-45T99:00:00Z",
        "segment s = \"bad \\q escape\"",
        "segment s = exit",
        "segment s = not // c\n in x",
        "segment s = a not // c\n in x",
        "journey j { send email t with { a: x or: 1 } }",
        "journey j { exit\n if x { } }",
        "journey j { trigger no where x }",
        "journey j { trigger no for 1d }",
        "journey j { wait 0s wait 1 day wait 1h30 }",
        "journey j { quiet hours 24:00 to 9:5 }",
        "journey j { holdout 0% holdout 101% }",
        "journey j { repeat 1.5 times { } cap email 99999999999999999999 per 1d }",
        "journey j { send email t as a as b }",
        "journey j { wait for event.opened within 1d }",
        "journey j { wait until 09:00 on mondayx }",
        "template t { body \"x\" }",
        "template t { channel email channel sms }",
        "template t { channel email body \"b\" html \"h\" html \"i\" }",
        "template t { channel email html 1 }",
        "journey wait { }",
        "journey j { split exit { } }",
        "journey j { set profile.x == 1 }",
        "journey j { if x { } else }",
        "event exit { }",
        "segment s = x\n  +",
    ];
    for (n, src) in edges.iter().enumerate() {
        agree(&format!("edge_{n}"), src);
    }
}

// ------------------------------------------------------------ mutations

/// Pieces that make mutations hit interesting paths.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "\"",
    "\\",
    "//",
    "///",
    "\n",
    " ",
    "=",
    "==",
    "!=",
    "<",
    "%",
    ":",
    ".",
    ",",
    "(",
    ")",
    "[",
    "]",
    "-",
    "+",
    "*",
    "/",
    "?",
    "not",
    "in",
    "not in",
    "or",
    "and",
    "contains",
    "journey",
    "wait",
    "else",
    "if",
    "exit",
    "on",
    "for",
    "within",
    "where",
    "with",
    "as",
    "no",
    "any",
    "x",
    "1",
    "1.5",
    "1 day",
    "0s",
    "1h30m",
    "24:00",
    "09:00",
    "5%",
    "\\u{",
    "é",
    "😀",
    "\u{0}",
    "\"a\nb\"",
    "2026-12-24T09:00:00Z",
    "true",
    "null",
    "profile.x",
];

fn sources() -> &'static [String] {
    static SOURCES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SOURCES.get_or_init(|| {
        journey_files(&root().join("journeys"))
            .iter()
            .map(|p| read(p))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutations_of_the_example_journeys_agree(
        file in any::<usize>(),
        edits in proptest::collection::vec(mutate::edit(), 1..5),
    ) {
        let sources = sources();
        let mut text = sources[file % sources.len()].clone();
        for e in &edits {
            mutate::apply(&mut text, e, TOKENS);
        }
        agree("mutated.journey", &text);
    }
}
