//! The command line's shape, declared with clap: one variant of [`Command`]
//! per subcommand, each with its own argument struct.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declarative cross-channel customer journeys: check them, compile them,
/// draw them, and simulate them over recorded events.
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
    /// Rewrite `.journey` files in the one canonical layout
    Fmt(FmtArgs),
    /// Run the journey tests (`*.journey-test`) next to the journeys
    Test(TestArgs),
    /// Write the compiled program as versioned JSON
    Compile(CompileArgs),
    /// Draw one journey's execution graph as DOT or Mermaid
    Graph(GraphArgs),
    /// Run the journeys over an NDJSON event file: actions on stdout, a report
    Simulate(SimulateArgs),
    /// Write a synthetic Segment event stream (NDJSON) for tests and benchmarks
    Generate(GenerateArgs),
    /// Run the journeys for real: Segment ingest over HTTP, durable state,
    /// the actions feed
    Serve(ServeArgs),
    /// Say what deploying NEW over OLD would do to the customers inside
    /// each journey
    Diff(DiffArgs),
    /// Run the language server for editors, over stdin and stdout
    Lsp(LspArgs),
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

    /// After the diagnostics, print each journey's limits (most messages per
    /// channel, longest time active) on stdout; human format only
    #[arg(long)]
    pub summary: bool,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    #[command(flatten)]
    pub inputs: Inputs,

    /// The file to write the compiled program to (`-` for stdout)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The running version: a `.journey` file or a directory of them
    #[arg(value_name = "OLD")]
    pub old: PathBuf,

    /// The version to deploy
    #[arg(value_name = "NEW")]
    pub new: PathBuf,

    /// A table for people, or one JSON object
    #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
    pub format: DiffFormat,
}

/// Output formats of `journey diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// One line per journey
    Human,
    /// `{"journeys": [{"journey": ..., "fate": ..., "says": ...}]}`
    Json,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub inputs: Inputs,

    /// The journey to draw
    #[arg(long, value_name = "NAME")]
    pub journey: String,

    /// The graph language
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

/// Output formats of `journey graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT (`dot -Tsvg`)
    Dot,
    /// Mermaid flowchart (renders in GitHub Markdown)
    Mermaid,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub inputs: Inputs,

    /// Segment events, one JSON message per line (`-` for stdin)
    #[arg(long, value_name = "FILE")]
    pub events: PathBuf,

    /// The longest event line read, in bytes; a longer line is reported as
    /// malformed and skipped
    #[arg(long, value_name = "BYTES", default_value_t = crate::io::segment::DEFAULT_MAX_LINE_BYTES)]
    pub max_line_bytes: usize,

    /// Stop the clock at this RFC 3339 time instead of letting every
    /// instance run to its end; later events are not processed
    #[arg(long, value_name = "TIMESTAMP")]
    pub until: Option<String>,

    /// Write the report to this file instead of stderr (JSON when the name
    /// ends in `.json`, one self-contained HTML page when it ends in
    /// `.html`, text otherwise)
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// How far ahead of the clock an event may be (a duration such as
    /// `365d`); one stamped later is reported with its line and skipped
    #[arg(long, value_name = "DURATION", default_value = "365d")]
    pub max_clock_jump: String,

    /// The most `messageId`s the de-duplication window remembers at once
    #[arg(long, value_name = "IDS", default_value_t = crate::runtime::store::DEDUP_CAPACITY)]
    pub dedup_capacity: usize,

    /// How long, in event time, a `messageId` is remembered (a duration
    /// such as `7d`)
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub dedup_window: String,

    /// Run only this journey (repeatable); the others are still checked,
    /// but not run
    #[arg(long = "journey", value_name = "NAME")]
    pub journeys: Vec<String>,

    /// Run the customers in N partitions on N threads (1 to 64); the
    /// output is byte for byte that of one thread, and each partition has
    /// its own `messageId` window of `--dedup-capacity` ids
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub inputs: Inputs,

    /// The data directory (created on first start)
    #[arg(long, value_name = "DIR", default_value = "journey-data")]
    pub data: PathBuf,

    /// The address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// The config file (write keys, admin token, checkpoints)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// How time moves: the wall clock, or the events' time (as `simulate`;
    /// for backfills, replays and tests). Fixed when the data directory is
    /// created
    #[arg(long, value_enum)]
    pub clock: Option<ClockArg>,

    /// Partitions of customers (default 8). Fixed when the data directory
    /// is created
    #[arg(long, value_name = "N")]
    pub partitions: Option<u32>,

    /// Keep the deployment in NATS JetStream at URL instead of `--data`,
    /// shared with every other process started with it (docs/scale-out.md)
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,

    /// Check the config and the project, then exit
    #[arg(long)]
    pub check_config: bool,

    /// How log lines on stderr are written
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `journey serve: <message>`
    Text,
    /// One JSON object a line: `{"ts", "level", "message"}`
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClockArg {
    Wall,
    Events,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Customers in the stream
    #[arg(long, default_value_t = 1_000)]
    pub users: u32,

    /// Events to aim for
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,

    /// Days the stream covers
    #[arg(long, default_value_t = 28)]
    pub days: u32,

    /// The first day (RFC 3339)
    #[arg(long, default_value = "2026-03-02T00:00:00Z", value_name = "TIMESTAMP")]
    pub start: String,

    /// Seed of the pseudo-random generator: the same seed gives the same bytes
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Share of extra malformed lines, such as `0.001`
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,

    /// Where to write the stream (stdout when absent)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
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
pub struct FmtArgs {
    #[command(flatten)]
    pub inputs: Inputs,

    /// Change nothing: list the files that are not formatted on stdout and
    /// exit 1 if there is one (for CI)
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Directories (their `.journey` files are the project, their
    /// `.journey-test` files the tests, searched recursively), or single
    /// `.journey-test` files (the project is the `.journey` files beside them)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Also write the results as JUnit XML to FILE (for CI)
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LspArgs {
    /// Speak over stdin and stdout (the only transport; editors' clients
    /// pass it)
    #[arg(long)]
    pub stdio: bool,
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
