//! Execution-graph fixtures: every `tests/fixtures/compile/*.journey` file is
//! one project, checked (it must have no errors), compiled, and rendered as
//! the DOT and Mermaid graphs of each journey, the limits table and the
//! back end's warnings. The snapshot holds the source and all of these.

use journey::SourceMap;
use journey::compile::{self, cap_table, summary_table, to_dot, to_mermaid};
use journey::diagnostic::print::{HumanOptions, human};
use journey::pipeline::check_sources;

#[test]
fn compile_graphs() {
    insta::glob!("fixtures/compile/*.journey", |path| {
        let text = std::fs::read_to_string(path).expect("a fixture is readable UTF-8");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut sources = SourceMap::new();
        sources.add(format!("tests/fixtures/compile/{name}"), text.clone());
        let (project, diagnostics) = check_sources(sources);
        assert!(
            !diagnostics.has_errors(),
            "{name} must check without errors:\n{}",
            human(&diagnostics.items, &project.sources, HumanOptions::plain())
        );
        let (model, _) = journey::check::check(&project);
        let (program, warnings) = compile::compile(&model).expect("a checked fixture compiles");

        let mut out = format!("----- SOURCE\n{text}\n");
        for journey in &program.journeys {
            out.push_str(&format!("----- DOT {}\n", journey.name));
            out.push_str(&to_dot(&program, journey));
            out.push_str(&format!("----- MERMAID {}\n", journey.name));
            out.push_str(&to_mermaid(&program, journey));
        }
        out.push_str("----- SUMMARY\n");
        out.push_str(&summary_table(&program));
        out.push_str("----- COMPILE WARNINGS\n");
        if warnings.is_empty() {
            out.push_str("none\n");
        } else {
            out.push_str(&human(&warnings, &project.sources, HumanOptions::plain()));
        }
        insta::with_settings!({
            prepend_module_to_snapshot => false,
            omit_expression => true,
            input_file => path,
        }, {
            insta::assert_snapshot!(out);
        });
    });
}

/// The example project: every journey of journeys/ as DOT and Mermaid, and
/// the limits table, so a change to any example's graph shows in review.
#[test]
fn example_journey_graphs() {
    let sources = journey::project::load_paths(&["journeys".into()]).expect("journeys/ loads");
    let build = journey::pipeline::build(sources);
    let program = build.program.expect("journeys/ compiles without errors");
    let mut summary = summary_table(&program);
    summary.push_str("----- POLICY CAPS, ALL JOURNEYS\n");
    summary.push_str(&cap_table(&program));
    summary.push_str("----- WARNINGS\n");
    for d in &build.diagnostics.items {
        summary.push_str(&format!("{} {}\n", d.code.id, d.message));
    }
    insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!("examples__summary", summary);
        for journey in &program.journeys {
            let out = format!(
                "----- DOT\n{}----- MERMAID\n{}",
                to_dot(&program, journey),
                to_mermaid(&program, journey)
            );
            insta::assert_snapshot!(format!("examples__{}", journey.name), out);
        }
    });
}
