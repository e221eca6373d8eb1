//! The command line's shape, declared with clap: one variant of [`Command`]
//! per subcommand, each with its own argument struct.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declarative cross-channel customer journeys: check them, explain their
/// diagnostics.
#[derive(Debug, Parser)]
#[command(name = "journey", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand. Adding one is a variant here plus one function in
/// `commands`, called from `cli::dispatch`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every compile-time check and report the problems found
    Check(CheckArgs),
    /// Print the explanation of a diagnostic code, such as `E0206`
    Explain(ExplainArgs),
}

/// The `.journey` files and directories a command reads as one project;
/// shared by every command that takes `PATH...`.
#[derive(Debug, Args)]
pub struct Inputs {
    /// `.journey` files, or directories searched recursively for them
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub inputs: Inputs,

    /// How to print the diagnostics
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Treat every warning as an error (exit code 1 when there is one)
    #[arg(long)]
    pub deny_warnings: bool,
}

/// Output formats of `journey check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Annotated source excerpts on stderr, for people
    Human,
    /// One JSON object on stdout
    Json,
    /// GitHub Actions workflow commands on stdout (annotations on pull requests)
    Github,
    /// A SARIF 2.1.0 log on stdout (code scanning tools)
    Sarif,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A diagnostic code such as `E0206` or `W0001` (case does not matter)
    #[arg(value_name = "CODE")]
    pub code: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
