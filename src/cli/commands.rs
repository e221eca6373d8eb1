//! One function per subcommand: read the inputs, call the library, hand the
//! result to a renderer, choose the exit code. No checking logic lives here.

use std::io;

use super::args::{CheckArgs, ExplainArgs, Format, Inputs};
use super::render::{self, HumanOptions};
use super::{Exit, Streams, formats};
use crate::check::{codes, explain as pages};
use crate::diagnostic::did_you_mean;
use crate::project;
use crate::source::SourceMap;

/// `journey check PATH... [--format F] [--deny-warnings]`.
pub fn check(args: &CheckArgs, streams: &mut Streams<'_>) -> io::Result<Exit> {
    let Some(sources) = load(&args.inputs, streams)? else {
        return Ok(Exit::CouldNotRun);
    };
    let files = sources.files().len();
    let (project, mut diagnostics) = project::check_sources(sources);
    if args.deny_warnings {
        diagnostics.deny_warnings();
    }
    let (items, sources) = (&diagnostics.items, &project.sources);
    match args.format {
        Format::Human => {
            let options = HumanOptions {
                color: streams.color,
                ..HumanOptions::plain()
            };
            // A blank line after each report keeps them apart on a terminal.
            for d in items {
                let report = render::human(std::slice::from_ref(d), sources, options);
                writeln!(streams.stderr, "{report}")?;
            }
            let summary = render::checked(files, diagnostics.errors(), diagnostics.warnings());
            writeln!(streams.stderr, "{summary}")?;
        }
        Format::Json => writeln!(streams.stdout, "{}", render::json(items, sources))?,
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
fn load(inputs: &Inputs, streams: &mut Streams<'_>) -> io::Result<Option<SourceMap>> {
    match project::load_paths(&inputs.paths) {
        Ok(sources) => Ok(Some(sources)),
        Err(e) => {
            streams.error(&e.to_string(), None)?;
            Ok(None)
        }
    }
}
