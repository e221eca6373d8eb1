//! One function per subcommand: read the inputs, call the library, hand the
//! result to a renderer, choose the exit code. No checking logic lives here.

use std::io::{self, Write};

use super::args::{
    CheckArgs, CompileArgs, DiffArgs, DiffFormat, ExplainArgs, FmtArgs, Format, GenerateArgs,
    GraphArgs, GraphFormat, Inputs,
};
use super::{Exit, Streams};
use crate::check::explain as pages;
use crate::check::problem::UnknownJourney;
use crate::compile::{self, Program};
use crate::diagnostic::codes;
use crate::diagnostic::formats;
use crate::diagnostic::print::{self, HumanOptions};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::io::synth::{self, SynthOptions};
use crate::source::SourceMap;
use crate::value;
use crate::{pipeline, project};

/// `journey check PATH... [--format F] [--deny-warnings] [--summary]`.
pub fn check(args: &CheckArgs, streams: &mut Streams<'_>) -> io::Result<Exit> {
    if args.summary && args.format != Format::Human {
        streams.error(
            "`--summary` goes with the human format",
            Some("drop `--summary`, or `--format human`"),
        )?;
        return Ok(Exit::CouldNotRun);
    }
    let Some(sources) = load(&args.inputs, streams)? else {
        return Ok(Exit::CouldNotRun);
    };
    let files = sources.files().len();
    let mut build = pipeline::build(sources);
    let diagnostics = &mut build.diagnostics;
    if args.deny_warnings {
        diagnostics.deny_warnings();
    }
    let (items, sources) = (&diagnostics.items, &build.project.sources);
    match args.format {
        Format::Human => {
            report_human(items, sources, streams)?;
            let summary = print::checked(files, diagnostics.errors(), diagnostics.warnings());
            writeln!(streams.stderr, "{summary}")?;
            if let (true, Some(program)) = (args.summary, &build.program) {
                streams
                    .stdout
                    .write_all(compile::summary_table(program).as_bytes())?;
                let caps = compile::cap_table(program);
                if !caps.is_empty() {
                    writeln!(streams.stdout)?;
                    streams.stdout.write_all(caps.as_bytes())?;
                }
            }
        }
        Format::Json => writeln!(streams.stdout, "{}", print::json(items, sources))?,
        Format::Github => streams
            .stdout
            .write_all(formats::github(items, sources).as_bytes())?,
        Format::Sarif => writeln!(streams.stdout, "{}", formats::sarif(items, sources))?,
    }
    Ok(if diagnostics.has_errors() {
        Exit::Diagnostics
    } else {
        Exit::Success
    })
}

/// The human report on stderr: the first [`print::HUMAN_LIMIT`]
/// diagnostics, a blank line after each so they stay apart on a terminal,
/// then one line counting the rest.
pub(super) fn report_human(
    items: &[Diagnostic],
    sources: &SourceMap,
    streams: &mut Streams<'_>,
) -> io::Result<()> {
    let options = HumanOptions {
        color: streams.color,
        ..HumanOptions::plain()
    };
    let renderer = print::Human::new(sources, options);
    let (shown, rest) = items.split_at(items.len().min(print::HUMAN_LIMIT));
    let mut report = String::new();
    for d in shown {
        report.clear();
        renderer.render(d, &mut report);
        writeln!(streams.stderr, "{report}")?;
    }
    if !rest.is_empty() {
        writeln!(streams.stderr, "{}\n", print::not_shown(rest))?;
    }
    Ok(())
}

/// Loads, checks and compiles the project of a command that needs the
/// program: on errors, reports them (warnings too) on stderr and returns
/// the exit code to stop with. Warnings alone are shown and do not stop it.
pub(super) fn program(
    inputs: &Inputs,
    streams: &mut Streams<'_>,
) -> io::Result<Result<Program, Exit>> {
    let Some(sources) = load(inputs, streams)? else {
        return Ok(Err(Exit::CouldNotRun));
    };
    checked(sources, streams)
}

/// [`program`] with only the journeys named in `only` (all when empty),
/// every file still checked; a name that is no journey of the project
/// stops the command (exit 2) with the names there are.
pub(super) fn program_of(
    inputs: &Inputs,
    only: &[String],
    streams: &mut Streams<'_>,
) -> io::Result<Result<Program, Exit>> {
    let Some(sources) = load(inputs, streams)? else {
        return Ok(Err(Exit::CouldNotRun));
    };
    let build = pipeline::build_only(sources, only);
    let unknown = build.unknown_journeys(only);
    if !unknown.is_empty() {
        let mut names: Vec<&str> = build
            .project
            .journeys()
            .map(|j| j.name.name.as_str())
            .collect();
        names.sort_unstable();
        let quoted = |list: &[&str]| {
            list.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let message = if unknown.len() == 1 {
            format!(
                "`--journey {}`: the project has no such journey",
                unknown[0]
            )
        } else {
            format!(
                "the project has no journeys {} (`--journey`)",
                quoted(&unknown)
            )
        };
        let help = if names.is_empty() {
            "the project has no journeys".to_string()
        } else {
            format!("its journeys are {}", quoted(&names))
        };
        streams.error(&message, Some(&help))?;
        return Ok(Err(Exit::CouldNotRun));
    }
    finish(build, streams)
}

/// [`program`] for sources loaded already.
pub(super) fn checked(
    sources: SourceMap,
    streams: &mut Streams<'_>,
) -> io::Result<Result<Program, Exit>> {
    finish(pipeline::build(sources), streams)
}

/// Reports a build's diagnostics; its program, or the exit code to stop with.
fn finish(build: pipeline::Build, streams: &mut Streams<'_>) -> io::Result<Result<Program, Exit>> {
    match build.program {
        Some(program) => {
            report_human(&build.diagnostics.items, &build.project.sources, streams)?;
            Ok(Ok(program))
        }
        None => refused(&build, streams).map(Err),
    }
}

/// Reports a build that made no program: its diagnostics and how many.
pub(super) fn refused(build: &pipeline::Build, streams: &mut Streams<'_>) -> io::Result<Exit> {
    report_human(&build.diagnostics.items, &build.project.sources, streams)?;
    let d = &build.diagnostics;
    let files = build.project.sources.files().len();
    writeln!(
        streams.stderr,
        "{}",
        print::checked(files, d.errors(), d.warnings())
    )?;
    Ok(Exit::Diagnostics)
}

/// `journey fmt PATH... [--check]`: each file in the canonical layout
/// (`crate::fmt`). A file with syntax errors is left as it is, its
/// diagnostics on stderr; with `--check` nothing is written and the files
/// that would change are listed on stdout. Exit 1 for either.
pub fn fmt(args: &FmtArgs, streams: &mut Streams<'_>) -> io::Result<Exit> {
    let Some(sources) = load(&args.inputs, streams)? else {
        return Ok(Exit::CouldNotRun);
    };
    let mut exit = Exit::Success;
    for file in sources.files() {
        let formatted = match crate::fmt::format_file(file) {
            Ok(text) => text,
            Err(crate::fmt::FormatError::Syntax(diagnostics)) => {
                report_human(&diagnostics, &sources, streams)?;
                writeln!(
                    streams.stderr,
                    "`{}` has syntax errors: not formatted",
                    file.name
                )?;
                exit = Exit::Diagnostics;
                continue;
            }
            Err(crate::fmt::FormatError::Unstable) => {
                let message = format!(
                    "formatting `{}` would change what it means: left as it is",
                    file.name
                );
                streams.error(
                    &message,
                    Some("this is a bug of `journey fmt`; please report it"),
                )?;
                exit = Exit::Diagnostics;
                continue;
            }
        };
        if formatted == *file.text {
            continue;
        }
        if args.check {
            writeln!(streams.stdout, "{}", file.name)?;
            exit = Exit::Diagnostics;
        } else if let Err(e) = std::fs::write(&file.name, formatted) {
            streams.error(&format!("cannot write `{}`: {e}", file.name), None)?;
            return Ok(Exit::CouldNotRun);
        }
    }
    Ok(exit)
}

/// `journey compile PATH... -o FILE`: the versioned JSON envelope.
pub fn compile(args: &CompileArgs, streams: &mut Streams<'_>) -> io::Result<Exit> {
    let program = match program(&args.inputs, streams)? {
        Ok(program) => program,
        Err(exit) => return Ok(exit),
    };
    let mut json = compile::to_json(&program);
    if !json.ends_with('\n') {
        json.push('\n');
    }
    if args.output.as_os_str() == "-" {
        streams.stdout.write_all(json.as_bytes())?;
    } else if let Err(e) = std::fs::write(&args.output, json) {
        let message = format!("cannot write `{}`: {e}", args.output.display());
        streams.error(&message, None)?;
        return Ok(Exit::CouldNotRun);
    }
    Ok(Exit::Success)
}

/// `journey diff OLD NEW`: per journey, what a deploy of NEW over OLD
/// does to the instances inside it (SERVICE.md §8).
pub fn diff(args: &DiffArgs, streams: &mut Streams<'_>) -> io::Result<Exit> {
    let mut programs = Vec::new();
    for path in [&args.old, &args.new] {
        let inputs = Inputs {
            paths: vec![path.clone()],
        };
        match program(&inputs, streams)? {
            Ok(program) => programs.push(program),
            Err(exit) => return Ok(exit),
        }
    }
    let plan = compile::deploy::plan(&programs[0], &programs[1]);
    match args.format {
        DiffFormat::Human => {
            let width = plan.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
            for (name, fate) in &plan {
                writeln!(
                    streams.stdout,
                    "{name:<width$}  {:<7}  {}",
                    fate.name(),
                    fate.describe()
                )?;
            }
        }
        DiffFormat::Json => {
            let journeys: Vec<serde_json::Value> = plan
                .iter()
                .map(|(name, fate)| {
                    serde_json::json!({"journey": name, "fate": fate.name(), "says": fate.describe()})
                })
                .collect();
            writeln!(
                streams.stdout,
                "{}",
                serde_json::json!({ "journeys": journeys })
            )?;
        }
    }
    Ok(Exit::Success)
}

/// `journey graph PATH... --journey NAME [--format dot|mermaid]`.
pub fn graph(args: &GraphArgs, streams: &mut Streams<'_>) -> io::Result<Exit> {
    let program = match program(&args.inputs, streams)? {
        Ok(program) => program,
        Err(exit) => return Ok(exit),
    };
    let Some(id) = program.journey_id(&args.journey) else {
        let names = program.journeys.iter().map(|j| &*j.name);
        let unknown = UnknownJourney {
            name: args.journey.clone(),
            suggestion: did_you_mean(&args.journey, names),
            journeys: program
                .journeys
                .iter()
                .map(|j| j.name.to_string())
                .collect(),
        };
        streams.error(&unknown.message(), Some(&unknown.help()))?;
        return Ok(Exit::CouldNotRun);
    };
    let journey = &program.journeys[id as usize];
    let text = match args.format {
        GraphFormat::Dot => compile::to_dot(&program, journey),
        GraphFormat::Mermaid => compile::to_mermaid(&program, journey),
    };
    streams.stdout.write_all(text.as_bytes())?;
    Ok(Exit::Success)
}

/// `journey generate`: a synthetic Segment stream.
pub fn generate(args: &GenerateArgs, streams: &mut Streams<'_>) -> io::Result<Exit> {
    let Some(start_ms) = value::parse_timestamp(&args.start) else {
        let message = format!("`{}` is not an RFC 3339 timestamp", args.start);
        streams.error(&message, Some("write it like `2026-03-02T00:00:00Z`"))?;
        return Ok(Exit::CouldNotRun);
    };
    if !(0.0..1.0).contains(&args.malformed_rate) {
        streams.error("`--malformed-rate` must be at least 0 and below 1", None)?;
        return Ok(Exit::CouldNotRun);
    }
    let options = SynthOptions {
        users: args.users,
        events: args.events,
        start_ms,
        days: args.days,
        seed: args.seed,
        malformed_rate: args.malformed_rate,
    };
    match &args.output {
        None => {
            synth::write_stream(options, &mut streams.stdout)?;
        }
        Some(path) => {
            let written = std::fs::File::create(path).and_then(|f| {
                let mut out = io::BufWriter::new(f);
                synth::write_stream(options, &mut out)?;
                out.flush()
            });
            if let Err(e) = written {
                streams.error(&format!("cannot write `{}`: {e}", path.display()), None)?;
                return Ok(Exit::CouldNotRun);
            }
        }
    }
    Ok(Exit::Success)
}

/// `journey explain CODE`: the code's page, or exit 2 for an unknown code.
pub fn explain(args: &ExplainArgs, streams: &mut Streams<'_>) -> io::Result<Exit> {
    let Some((_, page)) = pages::explain(&args.code) else {
        let ids = codes::ALL.iter().map(|c| c.id);
        let help = did_you_mean(&args.code, ids).unwrap_or_else(|| {
            "codes look like `E0206` or `W0001`; `journey check` shows the code of every problem"
                .to_string()
        });
        streams.error(&format!("unknown code `{}`", args.code), Some(&help))?;
        return Ok(Exit::CouldNotRun);
    };
    streams.stdout.write_all(page.as_bytes())?;
    if !page.ends_with('\n') {
        streams.stdout.write_all(b"\n")?;
    }
    Ok(Exit::Success)
}

/// Reads the project's files; on failure reports the one-line reason on
/// stderr and returns `None` (the command then exits 2).
pub(super) fn load(inputs: &Inputs, streams: &mut Streams<'_>) -> io::Result<Option<SourceMap>> {
    match project::load_paths(&inputs.paths) {
        Ok(sources) => Ok(Some(sources)),
        Err(e) => {
            streams.error(&e.to_string(), None)?;
            Ok(None)
        }
    }
}

/// `journey lsp`: serves the language server on stdin and stdout until
/// the editor says `exit`.
pub fn lsp(streams: &mut Streams<'_>) -> io::Result<Exit> {
    match crate::lsp::run() {
        Ok(()) => Ok(Exit::Success),
        Err(e) => {
            streams.error(&format!("cannot start the language server: {e}"), None)?;
            Ok(Exit::CouldNotRun)
        }
    }
}
