//! `journey fmt`: one layout whatever the spacing, idempotent, the same
//! compiled program before and after, every comment kept; and the command's
//! `--check` and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use journey::fmt::{FormatError, format_text};
use journey::syntax::parse;
use journey::{FileId, SourceFile, SourceMap, compile, pipeline};
use proptest::prelude::*;

#[path = "../benches/support/corpus.rs"]
#[allow(dead_code)]
mod corpus;

#[path = "support/journey_files.rs"]
mod journey_files;
use journey_files::{journey_files, read, root};

fn fmt(name: &str, text: &str) -> String {
    match format_text(name, text) {
        Ok(out) => out,
        Err(e) => panic!("{name}: not formatted: {e:?}"),
    }
}

fn comments(text: &str) -> Vec<String> {
    let (file, _) = parse(&SourceFile::new(FileId(0), "c.journey", text));
    file.comments
        .iter()
        .map(|c| c.text.trim_end().to_owned())
        .collect()
}

/// The compiled program's JSON, or `None` when the project has errors;
/// without the source line of each node, which is where a step is, not
/// what it does.
fn program(sources: &SourceMap) -> Option<serde_json::Value> {
    let program = pipeline::compile_sources(sources).ok()?;
    let mut json: serde_json::Value =
        serde_json::from_str(&compile::to_json(&program)).expect("the program is JSON");
    drop_lines(&mut json);
    Some(json)
}

fn drop_lines(json: &mut serde_json::Value) {
    match json {
        serde_json::Value::Object(map) => {
            map.remove("line");
            // What the program keeps of the text as written, for people:
            // a step's label (its first line) and the hash of a journey's
            // text. Formatting changes them by design; a deploy of a
            // formatted journey treats it as changed (docs/guide.md).
            map.remove("label");
            map.remove("content_hash");
            map.values_mut().for_each(drop_lines);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_lines),
        _ => {}
    }
}

fn formatted(sources: &SourceMap) -> SourceMap {
    let mut out = SourceMap::new();
    for f in sources.files() {
        out.add(f.name.clone(), fmt(&f.name, &f.text));
    }
    out
}

// ------------------------------------------------------------------ the repository

#[test]
fn every_repository_file_formats_idempotently_keeping_its_comments() {
    let mut formatted_files = 0;
    for path in journey_files(&root()) {
        let name = path.display().to_string();
        let text = read(&path);
        match format_text(&name, &text) {
            Ok(once) => {
                formatted_files += 1;
                assert_eq!(fmt(&name, &once), once, "{name}: not idempotent");
                assert_eq!(comments(&once), comments(&text), "{name}: comments changed");
            }
            // Fixtures of syntax errors are left alone, as the command does.
            Err(FormatError::Syntax(_)) => {}
            Err(FormatError::Unstable) => panic!("{name}: formatting changed the tree"),
        }
    }
    assert!(
        formatted_files > 100,
        "only {formatted_files} files formatted"
    );
}

/// Each directory of `.journey` files that compiles is a project: it
/// compiles to the same program once formatted.
#[test]
fn every_repository_project_compiles_to_the_same_program_once_formatted() {
    let mut dirs: Vec<PathBuf> = journey_files(&root())
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    dirs.dedup();
    let mut compared = 0;
    for dir in dirs {
        let mut sources = SourceMap::new();
        let mut clean = true;
        for path in journey_files(&dir)
            .iter()
            .filter(|p| p.parent() == Some(&dir))
        {
            let text = read(path);
            clean &= format_text("x.journey", &text).is_ok();
            sources.add(path.display().to_string(), text);
        }
        let Some(before) = program(&sources).filter(|_| clean) else {
            continue;
        };
        let after = program(&formatted(&sources));
        assert!(
            after == Some(before),
            "{}: formatting changed the program",
            dir.display()
        );
        compared += 1;
    }
    assert!(compared >= 3, "only {compared} projects compiled");
}

#[test]
fn the_example_journeys_are_formatted() {
    for path in journey_files(&root().join("journeys")) {
        let text = read(&path);
        let name = path.display().to_string();
        assert_eq!(
            fmt(&name, &text),
            text,
            "{name}: run `journey fmt journeys`"
        );
    }
}

/// The benchmark corpus: generated journeys of every construct.
#[test]
fn the_generated_corpus_compiles_to_the_same_program_once_formatted() {
    // The schema's file and the next nine: 200 journeys, every generator
    // several times over (the whole corpus is slow in a debug build).
    let (all, _) = corpus::corpus();
    let mut sources = SourceMap::new();
    for f in &all.files()[..10] {
        sources.add(f.name.clone(), f.text.to_string());
    }
    let before = program(&sources).expect("the corpus compiles");
    let after = formatted(&sources);
    assert!(
        program(&after) == Some(before),
        "the corpus changed meaning"
    );
    for f in after.files() {
        assert_eq!(fmt(&f.name, &f.text), *f.text, "{}: not idempotent", f.name);
    }
}

// ------------------------------------------------------------------ layouts

#[test]
fn a_messy_file_gets_the_canonical_layout() {
    let text = read(&root().join("tests/fixtures/fmt/messy.journey"));
    let out = fmt("messy.journey", &text);
    insta::assert_snapshot!(out);
    assert_eq!(comments(&out), comments(&text));
    assert_eq!(fmt("messy.journey", &out), out);
}

#[test]
fn long_clauses_break_at_and_or_alternatives_and_with_entries() {
    let text = read(&root().join("tests/fixtures/fmt/long.journey"));
    insta::assert_snapshot!(fmt("long.journey", &text));
}

#[test]
fn parentheses_only_where_precedence_needs_them() {
    let out = fmt(
        "p.journey",
        "segment s = ((profile.a + 1) * 2 > 3) and (not (profile.b or profile.c))\n",
    );
    assert_eq!(
        out,
        "segment s = (profile.a + 1) * 2 > 3 and not (profile.b or profile.c)\n"
    );
    let out = fmt(
        "p.journey",
        "segment s = profile.a - (profile.b - 1) == profile.c\n",
    );
    assert_eq!(
        out,
        "segment s = profile.a - (profile.b - 1) == profile.c\n"
    );
}

#[test]
fn literals_keep_their_spelling_unless_a_comment_is_inside() {
    let out = fmt(
        "l.journey",
        "segment s = profile.x > ( - 3 ) and profile.d < (48h) and profile.n == \"a\\\"b\"\n",
    );
    assert_eq!(
        out,
        "segment s = profile.x > -3 and profile.d < 48h and profile.n == \"a\\\"b\"\n"
    );
    // A comment inside a literal's parentheses goes above the line and the
    // literal is written afresh from its value.
    let out = fmt("l.journey", "segment s = profile.x > ( // three\n 3.50)\n");
    assert_eq!(out, "// three\nsegment s = profile.x > 3.5\n");
}

#[test]
fn a_file_with_syntax_errors_is_not_formatted() {
    let err = format_text("bad.journey", "journey j {\n  wait\n}\n").unwrap_err();
    let FormatError::Syntax(diagnostics) = err else {
        panic!("{err:?}");
    };
    assert_eq!(diagnostics[0].code.id, "E0101");
}

/// The whitespace runs of `text` that a change of spacing may replace: not
/// in strings, not next to a comment (which ends at its line's end, and
/// whose place, trailing or on its own line, is the author's), and not
/// holding a blank line (kept by the formatter).
fn spaces(text: &str) -> Vec<(usize, usize, bool)> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                i += 1;
            }
            b' ' | b'\t' | b'\n' => {
                let start = i;
                while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n') {
                    i += 1;
                }
                let run = &text[start..i];
                let near_comment = text[i..].starts_with("//")
                    || (start > 0 && text[..start].ends_with('\n'))
                        && text[..start]
                            .lines()
                            .last()
                            .is_some_and(|l| l.contains("//"));
                if run.matches('\n').count() <= 1 && !near_comment && start > 0 {
                    runs.push((start, i, run.contains('\n')));
                }
            }
            _ => i += 1,
        }
    }
    runs
}

/// `text` with some of its spacing changed: a line break becomes another
/// spacing with one line break, and a space becomes any spacing.
fn respace(text: &str, picks: &[(usize, u8)]) -> String {
    let runs = spaces(text);
    if runs.is_empty() {
        return text.to_owned();
    }
    let mut chosen: Vec<(usize, u8)> = picks.iter().map(|&(i, k)| (i % runs.len(), k)).collect();
    chosen.sort();
    chosen.dedup_by_key(|c| c.0);
    let mut out = text.to_owned();
    for &(i, kind) in chosen.iter().rev() {
        let (start, end, newline) = runs[i];
        let with = match (newline, kind % 4) {
            (true, 0) => "\n",
            (true, 1) => "\n\t\t",
            (true, 2) => "   \n ",
            (true, _) => "\n        ",
            (false, 0) => " ",
            (false, 1) => "\t  ",
            (false, 2) => "\n",
            (false, _) => "\n      ",
        };
        out.replace_range(start..end, with);
    }
    out
}

static CORPUS: std::sync::LazyLock<SourceMap> = std::sync::LazyLock::new(|| corpus::corpus().0);

fn example(name: &str) -> String {
    read(&root().join("journeys").join(name))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Spacing is not layout: an example journey, and a generated one,
    /// respaced at random, format to the same text.
    #[test]
    fn any_spacing_formats_to_the_same_layout(
        file in prop::sample::select(vec![
            "abandoned_cart.journey", "post_purchase.journey", "sunset.journey",
            "win_back.journey", "schema.journey", "templates.journey", "segments.journey",
            "membership_renewal.journey", "onboarding.journey", "policy.journey",
        ]),
        picks in prop::collection::vec((0usize..10_000, 0u8..4), 1..40),
    ) {
        let text = example(file);
        let respaced = respace(&text, &picks);
        let out = format_text(file, &respaced);
        prop_assert!(out.is_ok(), "{}: {:?}\n{}", file, out, respaced);
        prop_assert_eq!(out.unwrap(), fmt(file, &text));
    }

    /// Files of the generated corpus (every construct, 20 journeys a file).
    #[test]
    fn generated_journeys_format_stably(
        i in 0usize..100,
        picks in prop::collection::vec((0usize..100_000, 0u8..4), 1..60),
    ) {
        let text = CORPUS.files()[i].text.to_string();
        let once = fmt("g.journey", &text);
        prop_assert_eq!(fmt("g.journey", &once), once.clone());
        let respaced = respace(&text, &picks);
        prop_assert_eq!(fmt("g.journey", &respaced), once);
    }
}

// ------------------------------------------------------------------ the command

fn journey(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the journey binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fmt-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

const UGLY: &str = "segment   vip=profile.lifetime_value>=500 // big\n";
const PRETTY: &str = "segment vip = profile.lifetime_value >= 500  // big\n";

#[test]
fn check_lists_unformatted_files_and_exits_1_without_writing() {
    let dir = scratch("check");
    std::fs::write(dir.join("a.journey"), UGLY).unwrap();
    std::fs::write(dir.join("b.journey"), PRETTY.replace("vip", "other")).unwrap();
    let output = journey(&["fmt", "--check", "."], &dir);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "a.journey\n");
    assert_eq!(read(&dir.join("a.journey")), UGLY, "--check writes nothing");

    let output = journey(&["fmt", "."], &dir);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(read(&dir.join("a.journey")), PRETTY);

    let output = journey(&["fmt", "--check", "."], &dir);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(output.stdout.is_empty());
}

#[test]
fn a_file_with_syntax_errors_is_left_alone_with_its_diagnostics() {
    let dir = scratch("syntax");
    let broken = "journey j {\n  trigger signed_up\n  wait\n}\n";
    std::fs::write(dir.join("broken.journey"), broken).unwrap();
    std::fs::write(dir.join("ugly.journey"), UGLY).unwrap();
    let output = journey(&["fmt", "."], &dir);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("E0101"), "{err}");
    assert!(
        err.contains("`broken.journey` has syntax errors: not formatted"),
        "{err}"
    );
    assert_eq!(read(&dir.join("broken.journey")), broken);
    // The other files are still formatted.
    assert_eq!(read(&dir.join("ugly.journey")), PRETTY);
}

#[test]
fn a_missing_path_exits_2() {
    let output = journey(&["fmt", "no/such/dir"], &root());
    assert_eq!(output.status.code(), Some(2));
}
