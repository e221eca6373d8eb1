//! AST → Program: the petgraph DAG per journey, static analyses, dot/mermaid,
//! serde envelope.
//!
//! [`compile`] takes a project the checker accepted and never panics on one
//! it did not: whatever cannot be resolved is skipped (a send on an unknown
//! channel loses that alternative, an unknown path reads `null`). The work is
//! split by concern: `tables` (project-wide names and ids), `expr` and `fold`
//! (expressions), `lower` (steps → nodes), `template_reads` (template variables),
//! `limits` (the static analyses and the cap warning).

mod expr;
mod fold;
mod journey;
mod limits;
mod lower;
mod tables;
mod template_reads;

pub mod artifact;
pub mod deploy;
pub mod graph;
pub mod program;

pub use artifact::{LoadError, fingerprint, load, to_json};
pub use graph::{summary_table, to_dot, to_mermaid};
pub use program::Program;

use crate::diagnostic::Diagnostic;
use crate::project::Project;

/// Compiles a checked project into its [`Program`]. The diagnostics are the
/// back end's own warnings (W0004, a send that caps always block).
pub fn compile(project: &Project) -> (Program, Vec<Diagnostic>) {
    let mut compiler = tables::Compiler::new(project);
    let program = compiler.program();
    (program, compiler.into_diagnostics())
}
