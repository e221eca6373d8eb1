//! `journey test PATH... [--junit FILE]`: the journey tests of
//! [`crate::testing`], run against the project they sit beside.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::args::TestArgs;
use super::commands;
use super::{Exit, Streams};
use crate::diagnostic::print;
use crate::source::SourceFile;
use crate::testing::{self, junit};
use crate::{pipeline, project};

/// The extension of a journey test file.
pub const EXTENSION: &str = "journey-test";

pub fn test(args: &TestArgs, streams: &mut Streams<'_>) -> io::Result<Exit> {
    let mut project_paths: Vec<PathBuf> = Vec::new();
    let mut test_paths: Vec<PathBuf> = Vec::new();
    for path in &args.paths {
        if path.is_dir() {
            project_paths.push(path.clone());
            test_files(path, &mut test_paths);
        } else if path.extension().is_some_and(|e| e == EXTENSION) {
            test_paths.push(path.clone());
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            project_paths.push(dir.to_path_buf());
        } else {
            project_paths.push(path.clone());
        }
    }
    test_paths.sort();
    test_paths.dedup();
    if test_paths.is_empty() {
        let shown: Vec<String> = args
            .paths
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect();
        streams.error(
            &format!("no `.{EXTENSION}` file in {}", shown.join(", ")),
            Some("docs/testing.md shows how to write one"),
        )?;
        return Ok(Exit::CouldNotRun);
    }
    project_paths.sort();
    project_paths.dedup();
    let sources = match project::load_paths(&project_paths) {
        Ok(sources) => sources,
        Err(e) => {
            streams.error(&e.to_string(), None)?;
            return Ok(Exit::CouldNotRun);
        }
    };
    let mut build = pipeline::build(sources);
    let Some(program) = build.program.take() else {
        return commands::refused(&build, streams);
    };
    let program = Arc::new(program);

    // The test files join the project's sources so diagnostics can point
    // into them; the project itself was built without them.
    let mut sources = build.project.sources.clone();
    let mut files = Vec::new();
    let mut diagnostics = Vec::new();
    for path in &test_paths {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                streams.error(&format!("cannot read `{}`: {e}", path.display()), None)?;
                return Ok(Exit::CouldNotRun);
            }
        };
        let id = sources.add(path.display().to_string(), text);
        let file: &SourceFile = sources.get(id);
        let (tests, syntax) = testing::parse(file);
        diagnostics.extend(syntax);
        diagnostics.extend(testing::check(&build.project, &tests));
        files.push((file.name.clone(), tests));
    }
    if diagnostics.iter().any(|d| d.is_error()) {
        diagnostics.sort_by_key(|d| (d.span.file, d.span.start));
        commands::report_human(&diagnostics, &sources, streams)?;
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        let warnings = diagnostics.len() - errors;
        writeln!(
            streams.stderr,
            "{}",
            print::checked(test_paths.len(), errors, warnings)
        )?;
        return Ok(Exit::Diagnostics);
    }

    let (mut passed, mut failed) = (0, 0);
    let mut results = Vec::new();
    let mut failures = String::new();
    for (name, tests) in &files {
        let mut cases = Vec::new();
        for test in tests {
            let outcome = testing::run(&program, test);
            let file = sources.files().iter().find(|f| f.id == test.span.file);
            let (line, _) = file.map_or((0, 0), |f| f.line_col(test.span.start));
            let failure = if outcome.passed() {
                passed += 1;
                writeln!(streams.stdout, "ok      {name}: {}", test.name)?;
                None
            } else {
                failed += 1;
                writeln!(streams.stdout, "FAILED  {name}: {}", test.name)?;
                let diff = outcome.timeline();
                failures.push_str(&format!(
                    "\n---- {name}:{line}: {}\n{LEGEND}\n{diff}",
                    test.name
                ));
                Some((format!("{name}:{line}: the timeline differs"), diff))
            };
            cases.push(junit::CaseResult {
                name: test.name.clone(),
                failure,
            });
        }
        results.push((name.clone(), cases));
    }
    streams.stdout.write_all(failures.as_bytes())?;
    let total = passed + failed;
    writeln!(
        streams.stdout,
        "\n{total} {}: {passed} passed, {failed} failed",
        if total == 1 { "test" } else { "tests" }
    )?;
    if let Some(path) = &args.junit {
        let xml = match junit::report(&results) {
            Ok(xml) => xml,
            Err(e) => {
                streams.error(&format!("cannot write the JUnit report: {e}"), None)?;
                return Ok(Exit::CouldNotRun);
            }
        };
        if let Err(e) = std::fs::write(path, xml) {
            streams.error(&format!("cannot write `{}`: {e}", path.display()), None)?;
            return Ok(Exit::CouldNotRun);
        }
    }
    Ok(if failed > 0 {
        Exit::Diagnostics
    } else {
        Exit::Success
    })
}

/// How to read a failure's timeline.
const LEGEND: &str = "(-: expected, did not happen; +: happened, not expected; \
!: forbidden by `expect no send`; ?: refused by the runtime)";

/// Every `*.journey-test` under `dir`, hidden entries skipped.
fn test_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            test_files(&path, out);
        } else if path.extension().is_some_and(|e| e == EXTENSION) {
            out.push(path);
        }
    }
}
