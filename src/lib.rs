//! journey: a declarative language, compiler and runtime for cross-channel
//! customer journeys.
//!
//! The phases, each consuming the previous one's output:
//!
//! 1. [`syntax`]: text → typed AST with spans ([`syntax::parse`]); the only
//!    module that knows pest.
//! 2. [`check`]: the AST of every file of a project → diagnostics (names,
//!    schemas, types, lints); [`diagnostic::codes`] is the registry of codes.
//! 3. [`compile`]: a checked project → an immutable `Program` (one petgraph
//!    DAG per journey, compiled expressions, static analyses).
//! 4. [`runtime`]: drives users through a `Program` against events and time,
//!    yielding actions; deterministic, no pest or miette inside.
//!
//! [`io`] reads events (Segment NDJSON) and writes actions; [`cli`] is the
//! `journey` command line, argument parsing and output formats only.
//!
//! Module docs point maintainers at private submodules; read them with
//! `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub mod builtins;
pub mod channels;
pub mod check;
pub mod cli;
pub mod compile;
pub mod diagnostic;
pub mod dialect;
pub mod fmt;
pub mod io;
pub mod lsp;
pub mod pipeline;
mod prefetch;
pub mod project;
pub mod runtime;
pub mod service;
pub mod source;
pub mod syntax;
pub mod testing;
pub mod value;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use source::{FileId, SourceFile, SourceMap, Span};
