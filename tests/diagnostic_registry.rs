//! Every registered diagnostic code has its explanation page in
//! docs/errors/ and a fixture that raises it. A check fixture names its code
//! in its first line and `check_fixtures` proves the code is raised; the
//! codes raised outside the checker are raised here: W0004 by the
//! compiler's cap analysis, E0202 by `journey graph --journey`, E0001 by
//! compiling a model with errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use journey::SourceMap;
use journey::check::problem::UnknownJourney;
use journey::diagnostic::codes;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn journey_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            journey_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "journey") {
            out.push(path);
        }
    }
}

/// The codes (`E0206`, `W0001`) named in a fixture's first line, as
/// tests/check_fixtures.rs reads them.
fn first_line_codes(text: &str) -> Vec<String> {
    let first = text.lines().next().unwrap_or("");
    first
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            w.len() == 5
                && (w.starts_with('E') || w.starts_with('W'))
                && w[1..].chars().all(|c| c.is_ascii_digit())
        })
        .map(str::to_string)
        .collect()
}

/// W0004: a compile fixture whose third email is always capped.
fn raises_capped_send() -> bool {
    let path = root().join("tests/fixtures/compile/capped_third_email.journey");
    let text = std::fs::read_to_string(&path).expect("the fixture is readable");
    let mut sources = SourceMap::new();
    sources.add("capped_third_email.journey".to_string(), text);
    let build = journey::pipeline::build(sources);
    assert!(build.program.is_some(), "the fixture compiles");
    build
        .diagnostics
        .items
        .iter()
        .any(|d| d.code == codes::CAPPED_SEND)
}

/// E0001: a model the checker found errors in, compiled anyway: compile
/// makes no program and says where each unresolved reference is (through
/// `pipeline`, a project raises it only when the checker has a bug).
fn raises_unresolved() -> bool {
    let text = "journey j {\n  trigger signed_up\n  if vipp and ghost.opened {\n    send email welcome\n  }\n}\n";
    let mut sources = SourceMap::new();
    sources.add("unresolved.journey".to_string(), text.to_string());
    let (project, _) = journey::project::Project::parse(sources);
    let (model, found) = journey::check::check(&project);
    assert!(
        found.iter().any(|d| d.code == codes::UNKNOWN_NAME),
        "the checker reports the unknown names"
    );
    let unresolved = journey::compile::compile(&model).expect_err("no program from errors");
    let at = |name: &str| text.find(name).expect("in the text");
    let starts: Vec<usize> = unresolved.spans.iter().map(|s| s.start as usize).collect();
    assert!(starts.contains(&at("vipp")), "{starts:?}");
    assert!(starts.contains(&at("ghost")), "{starts:?}");
    unresolved
        .diagnostics()
        .iter()
        .all(|d| d.code == codes::UNRESOLVED && d.is_error())
}

/// E0202: `journey graph` asked for a journey the project lacks.
fn raises_unknown_journey() -> bool {
    let output = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args([
            "graph",
            "tests/fixtures/cli/clean",
            "--journey",
            "no_such_journey",
        ])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the journey binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = UnknownJourney {
        name: "no_such_journey".to_string(),
        suggestion: None,
        journeys: Vec::new(),
    }
    .message();
    !output.status.success() && stderr.contains(&expected)
}

#[test]
fn every_code_has_its_page() {
    for code in codes::ALL {
        let path = root().join(format!("docs/errors/{}.md", code.id));
        let page = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} has no page at {}: {e}", code.id, path.display()));
        assert_eq!(
            page.lines().next(),
            Some(format!("# {}: {}", code.id, code.title).as_str()),
            "the first line of {}",
            path.display()
        );
    }
}

#[test]
fn the_index_lists_every_code_with_its_title() {
    let index = std::fs::read_to_string(root().join("docs/errors/README.md"))
        .expect("docs/errors/README.md is readable");
    for code in codes::ALL {
        let row = format!("| [{id}]({id}.md) | {} |", code.title, id = code.id);
        assert!(index.contains(&row), "docs/errors/README.md lacks `{row}`");
    }
}

#[test]
fn every_code_has_a_fixture_that_raises_it() {
    let mut files = Vec::new();
    journey_files(&root().join("tests/fixtures/check"), &mut files);
    let mut covered = std::collections::BTreeSet::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("a fixture is readable");
        covered.extend(first_line_codes(&text));
    }
    if raises_capped_send() {
        covered.insert(codes::CAPPED_SEND.id.to_string());
    }
    if raises_unresolved() {
        covered.insert(codes::UNRESOLVED.id.to_string());
    }
    if raises_unknown_journey() {
        covered.insert(UnknownJourney::CODE.id.to_string());
    }
    let missing: Vec<&str> = codes::ALL
        .iter()
        .map(|c| c.id)
        .filter(|id| !covered.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a fixture that raises them: {missing:?}"
    );
    // Nothing names a code the registry lacks.
    for id in &covered {
        assert!(codes::lookup(id).is_some(), "{id} is not registered");
    }
}
