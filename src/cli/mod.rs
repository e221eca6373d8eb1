//! The `journey` command line: argument parsing and output formats only.
//! [`main`] binds the process's streams and environment; [`run`] does the
//! rest against any writers, so tests drive it without a process.

pub mod args;
pub mod commands;
pub mod report;
mod report_html;
pub mod serve;
pub mod simulate;
mod tests_cmd;

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};

use clap::Parser;

use args::{Cli, Command};

/// The process exit codes of LANGUAGE.md §7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The command ran; no errors (warnings allowed).
    Success = 0,
    /// Diagnostics with errors, or warnings under `--deny-warnings`.
    Diagnostics = 1,
    /// The command could not run: bad arguments, an unreadable path.
    CouldNotRun = 2,
}

/// Where a command writes, and whether stderr may be coloured.
pub struct Streams<'a> {
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    /// Colour the human report and error lines on stderr.
    pub color: bool,
}

impl Streams<'_> {
    /// Writes "error: message" (and "help: ..." when given) to stderr: the
    /// form of every problem that stops a command before it runs.
    pub fn error(&mut self, message: &str, help: Option<&str>) -> io::Result<()> {
        let (red, cyan, reset) = if self.color {
            ("\x1b[1;31m", "\x1b[36m", "\x1b[0m")
        } else {
            ("", "", "")
        };
        writeln!(self.stderr, "{red}error{reset}: {message}")?;
        if let Some(help) = help {
            writeln!(self.stderr, "{cyan}help{reset}: {help}")?;
        }
        Ok(())
    }
}

/// Runs the command line of this process; returns its exit code.
pub fn main() -> i32 {
    let stdout = io::stdout();
    let stderr = io::stderr();
    let color = use_color(
        stderr.is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    // Neither stream is locked for the whole run (each write locks it on
    // its own, stdout once per buffer): `journey serve` logs from its own
    // threads with `eprintln!`, and `journey lsp` answers through tokio's
    // stdout from a thread of its own; both would wait forever for a lock
    // this thread held.
    let mut out = io::BufWriter::new(Watched::new(stdout));
    let mut err = stderr;
    let mut streams = Streams {
        stdout: &mut out,
        stderr: &mut err,
        color,
    };
    let code = run(std::env::args_os(), &mut streams);
    // The error, if any, is kept by `Watched`.
    let _ = out.flush();
    let Some(failed) = out.get_mut().failed.take() else {
        return code as i32;
    };
    let mut streams = Streams {
        stdout: &mut io::sink(),
        stderr: &mut err,
        color,
    };
    stdout_failed(&failed, &mut streams) as i32
}

/// A failed write to stdout leaves the output incomplete: exit 2, saying
/// why on stderr (`> /dev/full`: "no space left on device"), except for a
/// closed pipe (`| head`), where the reader has all it wanted and a message
/// would only be noise.
fn stdout_failed(error: &io::Error, streams: &mut Streams<'_>) -> Exit {
    if error.kind() != io::ErrorKind::BrokenPipe {
        let reason = error.to_string();
        let mut chars = reason.chars();
        let reason: String = chars
            .next()
            .map(|c| c.to_lowercase().chain(chars).collect())
            .unwrap_or_default();
        // Nothing is left to report a failure of stderr on.
        let _ = streams.error(&format!("cannot write to stdout: {reason}"), None);
    }
    Exit::CouldNotRun
}

/// A writer that keeps a copy of the first error it returned: by the time
/// an error has travelled up through a command it is a plain `io::Error`,
/// and this says it was stdout's.
struct Watched<W> {
    inner: W,
    failed: Option<io::Error>,
}

impl<W> Watched<W> {
    fn new(inner: W) -> Watched<W> {
        Watched {
            inner,
            failed: None,
        }
    }

    fn note<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if let (Err(e), None) = (&result, &self.failed) {
            self.failed = Some(io::Error::new(e.kind(), e.to_string()));
        }
        result
    }
}

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.inner.write(buf);
        self.note(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.inner.flush();
        self.note(result)
    }
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to a
/// non-empty value (<https://no-color.org>).
pub fn use_color(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Parses `args` (the program name first) and runs the command.
pub fn run(args: impl IntoIterator<Item = OsString>, streams: &mut Streams<'_>) -> Exit {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return usage(&e, streams),
    };
    // A failed write to stderr leaves nothing to say it on; one to stdout
    // is reported by `main`, which knows the stream.
    dispatch(cli.command, streams).unwrap_or(Exit::CouldNotRun)
}

/// One arm per subcommand, each a function of `commands`.
fn dispatch(command: Command, streams: &mut Streams<'_>) -> io::Result<Exit> {
    match command {
        Command::Check(args) => commands::check(&args, streams),
        Command::Explain(args) => commands::explain(&args, streams),
        Command::Fmt(args) => commands::fmt(&args, streams),
        Command::Test(args) => tests_cmd::test(&args, streams),
        Command::Compile(args) => commands::compile(&args, streams),
        Command::Graph(args) => commands::graph(&args, streams),
        Command::Simulate(args) => simulate::simulate(&args, streams),
        Command::Generate(args) => commands::generate(&args, streams),
        Command::Serve(args) => serve::serve(&args, streams),
        Command::Diff(args) => commands::diff(&args, streams),
        Command::Lsp(_) => commands::lsp(streams),
    }
}

/// `--help` and `--version` go to stdout with exit 0; usage errors go to
/// stderr with exit 2.
fn usage(error: &clap::Error, streams: &mut Streams<'_>) -> Exit {
    let text = if streams.color {
        error.render().ansi().to_string()
    } else {
        error.render().to_string()
    };
    let (stream, exit) = if error.use_stderr() {
        (&mut *streams.stderr, Exit::CouldNotRun)
    } else {
        (&mut *streams.stdout, Exit::Success)
    };
    match stream.write_all(text.as_bytes()) {
        Ok(()) => exit,
        Err(_) => Exit::CouldNotRun,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `journey <args>` without colour; returns the exit and both streams.
    pub(crate) fn run_args(args: &[&str]) -> (Exit, String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut streams = Streams {
            stdout: &mut out,
            stderr: &mut err,
            color: false,
        };
        let argv = std::iter::once("journey").chain(args.iter().copied());
        let exit = run(argv.map(OsString::from), &mut streams);
        (
            exit,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn a_stdout_failure_is_one_line_but_a_closed_pipe_is_quiet() {
        let mut err = Vec::new();
        let mut streams = Streams {
            stdout: &mut io::sink(),
            stderr: &mut err,
            color: false,
        };
        let full = io::Error::from_raw_os_error(28);
        assert_eq!(stdout_failed(&full, &mut streams), Exit::CouldNotRun);
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert_eq!(stdout_failed(&pipe, &mut streams), Exit::CouldNotRun);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "error: cannot write to stdout: no space left on device (os error 28)\n"
        );
    }

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        use std::ffi::OsStr;
        assert!(use_color(true, None));
        assert!(use_color(true, Some(OsStr::new(""))));
        assert!(!use_color(true, Some(OsStr::new("1"))));
        assert!(!use_color(false, None));
    }

    #[test]
    fn bad_arguments_exit_2_on_stderr() {
        let (exit, out, err) = run_args(&["check", "--format", "xml", "x"]);
        assert_eq!(exit, Exit::CouldNotRun);
        assert!(out.is_empty());
        assert!(err.contains("xml"), "{err}");

        let (exit, _, err) = run_args(&["check"]);
        assert_eq!(exit, Exit::CouldNotRun);
        assert!(err.contains("PATH"), "{err}");

        let (exit, _, _) = run_args(&["frobnicate"]);
        assert_eq!(exit, Exit::CouldNotRun);
    }

    #[test]
    fn help_and_version_exit_0_on_stdout() {
        let (exit, out, err) = run_args(&["--help"]);
        assert_eq!(exit, Exit::Success);
        assert!(out.contains("check"), "{out}");
        assert!(err.is_empty());

        let (exit, out, _) = run_args(&["--version"]);
        assert_eq!(exit, Exit::Success);
        assert_eq!(out.trim(), format!("journey {}", env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn a_missing_path_exits_2_with_one_line() {
        let (exit, out, err) = run_args(&["check", "no/such/dir-for-journey-tests"]);
        assert_eq!(exit, Exit::CouldNotRun);
        assert!(out.is_empty());
        assert_eq!(
            err,
            "error: `no/such/dir-for-journey-tests` does not exist\n"
        );
    }

    #[test]
    fn explain_prints_a_known_code_and_rejects_an_unknown_one() {
        let (exit, out, _) = run_args(&["explain", "e0206"]);
        assert_eq!(exit, Exit::Success);
        let (_, page) = crate::check::explain::explain("E0206").unwrap();
        assert!(out.contains(page.trim_end()), "{out}");

        let (exit, out, err) = run_args(&["explain", "E9999"]);
        assert_eq!(exit, Exit::CouldNotRun);
        assert!(out.is_empty());
        assert!(err.starts_with("error: unknown code `E9999`\n"), "{err}");
    }
}
