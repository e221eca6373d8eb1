//! AST → Program: the petgraph DAG per journey, static analyses, dot/mermaid,
//! serde envelope.

pub mod program;

pub use program::Program;
