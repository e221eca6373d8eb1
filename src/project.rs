//! A project: every `.journey` file given on the command line, parsed.
//! Loading files from disk and parsing them all lives here so the CLI, the
//! tests and embedders share one entry point.

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::SourceMap;
use crate::syntax::{self, ast};

/// The parsed files of a project (index = `FileId`).
#[derive(Clone, Debug, Default)]
pub struct Project {
    pub sources: SourceMap,
    pub files: Vec<ast::File>,
}

impl Project {
    /// Parses every source; returns the project and the syntax diagnostics.
    pub fn parse(sources: SourceMap) -> (Project, Vec<Diagnostic>) {
        let mut files = Vec::new();
        let mut diagnostics = Vec::new();
        for source in sources.files() {
            let (file, ds) = syntax::parse(source);
            files.push(file);
            diagnostics.extend(ds);
        }
        (Project { sources, files }, diagnostics)
    }

    /// Every item of every file, in file order.
    pub fn items(&self) -> impl Iterator<Item = &ast::Item> {
        self.files.iter().flat_map(|f| f.items.iter())
    }

    pub fn journeys(&self) -> impl Iterator<Item = &ast::JourneyDecl> {
        self.items().filter_map(|i| match i {
            ast::Item::Journey(j) => Some(j),
            _ => None,
        })
    }
}

/// Parses and checks a set of sources: all diagnostics, sorted.
pub fn check_sources(sources: SourceMap) -> (Project, Diagnostics) {
    let (project, mut diagnostics) = Project::parse(sources);
    let mut all = Diagnostics::default();
    all.extend(diagnostics.drain(..));
    all.extend(crate::check::check(&project));
    all.sort(&project.sources);
    (project, all)
}
