//! Diagnostic fixtures: every `tests/fixtures/check/**/*.journey` file is one
//! project, checked and rendered as the human report; the snapshot holds the
//! source and the report. A fixture under `constructs/` must be clean; any
//! other must produce at least one diagnostic whose code its first line
//! names (`// E0206: ...`), so a fixture cannot silently stop testing it.

use std::path::Path;

use journey::SourceMap;
use journey::diagnostic::print::{HumanOptions, human};
use journey::pipeline::check_sources;

#[test]
fn check_fixtures() {
    insta::glob!("fixtures/check/**/*.journey", |path| {
        let text = std::fs::read_to_string(path).expect("a fixture is readable UTF-8");
        let name = repo_relative(path);
        let mut sources = SourceMap::new();
        sources.add(name.clone(), text.clone());
        let (project, diagnostics) = check_sources(sources);
        let items = &diagnostics.items;

        if name.contains("/constructs/") {
            assert!(
                items.is_empty(),
                "{name} must have no diagnostics:\n{}",
                human(items, &project.sources, HumanOptions::plain())
            );
        } else {
            let expected = first_line_codes(&text);
            assert!(
                !expected.is_empty(),
                "{name}: its first line must name the code it tests, e.g. `// E0206: ...`"
            );
            assert!(
                items.iter().any(|d| expected.contains(&d.code.id)),
                "{name}: no diagnostic with code {expected:?}; got {:?}",
                items.iter().map(|d| d.code.id).collect::<Vec<_>>()
            );
        }

        let report = if items.is_empty() {
            "no diagnostics\n".to_string()
        } else {
            human(items, &project.sources, HumanOptions::plain())
        };
        let snapshot = format!("----- SOURCE\n{text}\n----- DIAGNOSTICS\n{report}");
        insta::with_settings!({
            prepend_module_to_snapshot => false,
            omit_expression => true,
            input_file => path,
        }, {
            insta::assert_snapshot!(snapshot);
        });
    });
}

/// `tests/fixtures/check/names/x.journey`, with forward slashes everywhere.
fn repo_relative(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The codes (`E0206`, `W0001`) named in the first line.
fn first_line_codes(text: &str) -> Vec<&str> {
    let first = text.lines().next().unwrap_or("");
    first
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            w.len() == 5
                && (w.starts_with('E') || w.starts_with('W'))
                && w[1..].chars().all(|c| c.is_ascii_digit())
        })
        .collect()
}
