//! The pipeline over a loaded project: parse → check → compile, each
//! phase's diagnostics gathered and sorted. Loading files is
//! [`crate::project`]'s; each phase is its own module below this one.
//!
//! A deploy's program goes through it too ([`merge`]): a new version
//! compiled together with the earlier versions of journeys whose customers
//! finish where they entered (SERVICE.md §8). Each kept journey is compiled
//! from its own version's text, under its own name, admitting no one
//! ([`crate::compile::program::Journey::retired`]), while templates,
//! segments, channels and the policy are the new version's (those it no
//! longer declares come from the kept journey's version).

use std::collections::BTreeSet;

use crate::check::Model;
use crate::compile::Program;
use crate::compile::deploy::VERSION_MARK;
use crate::diagnostic::Diagnostics;
use crate::project::Project;
use crate::source::SourceMap;
use crate::syntax::ast::Item;

/// Parses and checks a set of sources: all diagnostics, sorted.
pub fn check_sources(sources: SourceMap) -> (Project, Diagnostics) {
    let (project, syntax) = Project::parse(sources);
    let (_, diagnostics) = checked(&project, syntax);
    (project, diagnostics)
}

/// A project taken through every phase that applies: parsed, checked and,
/// when the checks found no error, compiled.
pub struct Build {
    pub project: Project,
    /// Every diagnostic of every phase (the back end adds W0004), sorted.
    pub diagnostics: Diagnostics,
    /// `None` when there were errors.
    pub program: Option<Program>,
}

/// Parses, checks and compiles a set of sources.
pub fn build(sources: SourceMap) -> Build {
    build_inspecting(sources, |_| ()).0
}

/// [`build`], with `inspect` run over the checker's model (errors or not)
/// before it is compiled: the language server reads from it what each name
/// resolved to.
pub fn build_inspecting<T>(
    sources: SourceMap,
    inspect: impl FnOnce(&Model<'_>) -> T,
) -> (Build, T) {
    let (project, syntax) = Project::parse(sources);
    let (model, mut diagnostics) = checked(&project, syntax);
    let inspected = inspect(&model);
    let program = (!diagnostics.has_errors())
        .then(|| crate::compile::compile(&model))
        .and_then(|compiled| match compiled {
            Ok((program, warnings)) => {
                diagnostics.extend(warnings);
                crate::check::allow::silence(&project, &mut diagnostics.items);
                diagnostics.sort(&project.sources);
                Some(program)
            }
            Err(unresolved) => {
                diagnostics.extend(unresolved.diagnostics());
                None
            }
        });
    drop(model);
    let build = Build {
        project,
        diagnostics,
        program,
    };
    (build, inspected)
}

/// [`build`], with a program of only the journeys named in `only` (all
/// when it is empty): every file is still checked, and the diagnostics are
/// the whole project's; the program is compiled from the project less the
/// other journeys, so that they cost the run nothing. A name that is no
/// journey of the project is the caller's to refuse
/// ([`Build::unknown_journeys`]); it selects nothing.
pub fn build_only(sources: SourceMap, only: &[String]) -> Build {
    let mut build = build(sources);
    if only.is_empty() || build.program.is_none() {
        return build;
    }
    let mut subset = build.project.clone();
    for file in &mut subset.files {
        file.items
            .retain(|item| !matches!(item, Item::Journey(j) if !only.contains(&j.name.name)));
    }
    let (model, diagnostics) = checked(&subset, Vec::new());
    // The project as a whole compiled, and no journey reads another: the
    // subset compiles too. Were it not to, no program is made.
    build.program = (!diagnostics.has_errors())
        .then(|| crate::compile::compile(&model).ok())
        .flatten()
        .map(|(program, _)| program);
    build
}

impl Build {
    /// The names in `wanted` that are no journey of the project, in order.
    pub fn unknown_journeys<'w>(&self, wanted: &'w [String]) -> Vec<&'w str> {
        let known: BTreeSet<&str> = self
            .project
            .journeys()
            .map(|j| j.name.name.as_str())
            .collect();
        wanted
            .iter()
            .map(String::as_str)
            .filter(|w| !known.contains(w))
            .collect()
    }
}

/// An earlier version of one journey, kept for the instances inside it.
#[derive(Clone, Copy, Debug)]
pub struct Retired<'a> {
    pub journey: &'a str,
    /// The version it comes from.
    pub version: u32,
    /// That version's sources.
    pub sources: &'a SourceMap,
}

/// Compiles `sources` (the new version) together with the `retired`
/// journeys. Fails with the diagnostics when the new version has errors, or
/// when a kept journey no longer compiles beside it (it reads something the
/// new version declares differently).
pub fn merge(sources: &SourceMap, retired: &[Retired<'_>]) -> Result<Program, Diagnostics> {
    let mut all = sources.clone();
    let first_old = all.files().len();
    let mut versions: Vec<(u32, &SourceMap)> =
        retired.iter().map(|r| (r.version, r.sources)).collect();
    // Newest first: a declaration the new version dropped comes from the
    // latest version that had it.
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions.dedup_by_key(|v| v.0);
    let mut origin = Vec::new();
    for (version, old) in &versions {
        for file in old.files() {
            all.add(
                format!("<version {version}>/{}", file.name),
                file.text.clone(),
            );
            origin.push(*version);
        }
    }
    let (mut project, syntax) = Project::parse(all);
    let declared = |project: &Project, range: std::ops::Range<usize>| -> BTreeSet<String> {
        project.files[range]
            .iter()
            .flat_map(|f| f.items.iter())
            .filter_map(item_key)
            .collect()
    };
    let mut known = declared(&project, 0..first_old);
    let wanted: BTreeSet<(&str, u32)> = retired.iter().map(|r| (r.journey, r.version)).collect();
    for (i, file) in project.files.iter_mut().enumerate().skip(first_old) {
        let version = origin[i - first_old];
        file.items.retain_mut(|item| match item {
            Item::Journey(j) => {
                if wanted.contains(&(j.name.name.as_str(), version)) {
                    j.name.name = format!("{}{VERSION_MARK}{version}", j.name.name);
                    true
                } else {
                    false
                }
            }
            Item::Policy(_) | Item::Profile(_) | Item::Allow(_) | Item::Attribution(_) => false,
            other => item_key(other).is_some_and(|key| known.insert(key)),
        });
    }
    let (model, diagnostics) = checked(&project, syntax);
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    let (mut program, _) = compiled(&model)?;
    crate::compile::deploy::retire(&mut program);
    Ok(program)
}

/// Checks a parsed project: the checker's model and every diagnostic so
/// far (the parser's `syntax` ones and the checker's), sorted.
fn checked(
    project: &Project,
    syntax: Vec<crate::diagnostic::Diagnostic>,
) -> (Model<'_>, Diagnostics) {
    let (model, diagnostics) = crate::check::check(project);
    let mut all = Diagnostics::default();
    all.extend(syntax);
    all.extend(diagnostics);
    crate::check::allow::silence(project, &mut all.items);
    all.sort(&project.sources);
    (model, all)
}

/// A top-level declaration's kind and name, for the ones a later version
/// may drop and a kept journey still read.
fn item_key(item: &Item) -> Option<String> {
    match item {
        Item::Event(e) => Some(format!("event {}", e.name.name)),
        Item::Channel(c) => Some(format!("channel {}", c.name.name)),
        Item::Template(t) => Some(format!("template {}", t.name.name)),
        Item::Segment(s) => Some(format!("segment {}", s.name.name)),
        Item::Profile(_)
        | Item::Policy(_)
        | Item::Attribution(_)
        | Item::Allow(_)
        | Item::Journey(_) => None,
    }
}

/// Compiles a project's sources alone, for [`crate::compile::deploy::plan`]: the program, or the
/// diagnostics when it has errors.
pub fn compile_sources(sources: &SourceMap) -> Result<Program, Diagnostics> {
    let (project, syntax) = Project::parse(sources.clone());
    let (model, diagnostics) = checked(&project, syntax);
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    Ok(compiled(&model)?.0)
}

/// Compiles a model the checker found no error in.
fn compiled(
    model: &Model<'_>,
) -> Result<(Program, Vec<crate::diagnostic::Diagnostic>), Diagnostics> {
    crate::compile::compile(model).map_err(|unresolved| Diagnostics {
        items: unresolved.diagnostics(),
    })
}
