//! AST → Program: the petgraph DAG per journey, static analyses, dot/mermaid,
//! serde envelope.
//!
//! [`compile`] takes the [`Model`] of a project the checker accepted: names
//! are not looked up again, each reference reads what the checker resolved
//! it to (by its span). Given a model with errors it neither panics nor
//! guesses: what the checker could not resolve is returned as
//! [`Unresolved`] and no program is made. The work is
//! split by concern: `tables` (the program's ids), `expr` and `fold`
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
pub use graph::{SUMMARY_COLUMNS, cap_table, summary_row, summary_table, to_dot, to_mermaid};
pub use limits::{CapWorstCase, cross_journey};
pub use program::Program;
pub use tables::Unresolved;

use crate::check::Model;
use crate::diagnostic::Diagnostic;

/// Compiles a checked project, the model [`crate::check::check`] returned,
/// into its [`Program`]. The diagnostics are the back end's own warnings
/// (W0004, a send that caps always block).
///
/// A model with errors makes no program: each reference the checker could
/// not resolve is returned instead ([`Unresolved`]), never compiled to a
/// `null` that would reach a customer.
pub fn compile(model: &Model<'_>) -> Result<(Program, Vec<Diagnostic>), Unresolved> {
    let mut compiler = tables::Compiler::new(model);
    let program = compiler.program();
    let warnings = compiler.finish()?;
    Ok((program, warnings))
}
