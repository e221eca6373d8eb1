//! The `journey` command line: argument parsing and output formats only.

pub mod render;

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    0
}
