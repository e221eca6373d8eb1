//! The versions of the journeys a deployment has run (SERVICE.md §8).
//!
//! Version 1 is the project the data directory was created with; each
//! deploy (`POST /admin/reload`, SIGHUP, or a start with changed files)
//! adds the next. A version's record holds the project's sources as they
//! were and the earlier versions of journeys kept beside it for the
//! customers inside them ([`crate::compile::deploy`]); it is written in the
//! transaction that journals the deploy, so replay applies each entry with
//! exactly the program it was applied with: the record carries the
//! compiled program (the `journey compile` envelope), so a later build of
//! journey, whose compiler might number a program differently, replays the
//! journal with the programs that made it. Programs are read once, when
//! first asked for, and shared by every partition.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};

use serde::{Deserialize, Serialize};

use super::core::{DeployError, Deployed};
use super::storage::{Storage, StorageError};
use crate::compile::Program;
use crate::compile::deploy::{Fate, plan};
use crate::diagnostic::Diagnostics;
use crate::pipeline::{Retired, compile_sources, merge};
use crate::source::SourceMap;

/// What the storage keeps of one version.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// `(file name, text)` of every `.journey` file, as loaded.
    pub sources: Vec<(String, String)>,
    /// `(journey, version)`: earlier versions kept beside this one.
    pub kept: Vec<(String, u32)>,
    /// When it was deployed (wall-clock ms; for operators only).
    pub deployed_ms: i64,
    /// The program the partitions run, as `journey compile` writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
}

impl Record {
    /// The record of `sources` with `kept`, running `program`.
    pub fn new(
        sources: &SourceMap,
        kept: Vec<(String, u32)>,
        deployed_ms: i64,
        program: &Program,
    ) -> Record {
        Record {
            sources: sources
                .files()
                .iter()
                .map(|f| (f.name.clone(), f.text.to_string()))
                .collect(),
            kept,
            deployed_ms,
            program: Some(crate::compile::to_json(program)),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// One version, with its programs once compiled.
pub struct Version {
    pub number: u32,
    pub record: Record,
    pub sources: SourceMap,
    /// The version's own journeys, compiled alone (for plans).
    alone: OnceLock<Result<Arc<Program>, String>>,
    /// What the partitions run: the version with its kept journeys.
    program: OnceLock<Result<Arc<Program>, String>>,
}

/// Every version, by number.
#[derive(Default)]
pub struct Versions {
    all: RwLock<BTreeMap<u32, Arc<Version>>>,
}

impl Versions {
    /// The versions the storage holds.
    pub fn load(storage: &dyn Storage) -> Result<Versions, StorageError> {
        Versions::from_records(storage.versions()?)
    }

    /// The versions of these `(number, encoded record)` pairs.
    pub fn from_records(records: Vec<(u32, Vec<u8>)>) -> Result<Versions, StorageError> {
        let versions = Versions::default();
        for (number, bytes) in records {
            let record: Record = serde_json::from_slice(&bytes).map_err(|e| {
                StorageError(format!(
                    "version {number} of the journeys does not read: {e}"
                ))
            })?;
            versions.insert(number, record);
        }
        Ok(versions)
    }

    /// Adds version `number` with its program, compiled already.
    pub fn insert_compiled(&self, number: u32, record: Record, program: Arc<Program>) {
        self.add(number, record, OnceLock::from(Ok(program)));
    }

    pub fn insert(&self, number: u32, record: Record) {
        self.add(number, record, OnceLock::new());
    }

    fn add(&self, number: u32, record: Record, program: OnceLock<Result<Arc<Program>, String>>) {
        let mut sources = SourceMap::new();
        for (name, text) in &record.sources {
            sources.add(name.clone(), text.as_str());
        }
        let version = Arc::new(Version {
            number,
            record,
            sources,
            alone: OnceLock::new(),
            program,
        });
        if let Ok(mut all) = self.all.write() {
            all.insert(number, version);
        }
    }

    pub fn get(&self, number: u32) -> Option<Arc<Version>> {
        self.all.read().ok()?.get(&number).cloned()
    }

    /// The newest version: the one new customers enter.
    pub fn live(&self) -> Option<Arc<Version>> {
        self.all.read().ok()?.values().next_back().cloned()
    }

    /// The first version: what a partition without a checkpoint starts
    /// with.
    pub fn first(&self) -> Option<Arc<Version>> {
        self.all.read().ok()?.values().next().cloned()
    }

    /// Version `number`'s journeys compiled alone.
    pub fn alone(&self, number: u32) -> Result<Arc<Program>, String> {
        let version = self.get(number).ok_or_else(|| missing(number))?;
        version
            .alone
            .get_or_init(|| {
                compile_sources(&version.sources)
                    .map(Arc::new)
                    .map_err(|d| diagnostics_text(&d, &version.sources))
            })
            .clone()
    }

    /// What the partitions run at version `number`: the program its
    /// record carries (compiled again from its sources only for a record
    /// without one).
    pub fn program(&self, number: u32) -> Result<Arc<Program>, String> {
        let version = self.get(number).ok_or_else(|| missing(number))?;
        version
            .program
            .get_or_init(|| match &version.record.program {
                Some(json) => crate::compile::load(json)
                    .map(Arc::new)
                    .map_err(|e| format!("the program of version {number} does not read: {e}")),
                None => self.compile(&version.sources, &version.record.kept),
            })
            .clone()
    }

    /// Compiles `sources` with the kept journeys `kept`, which come from
    /// the versions held here.
    pub fn compile(
        &self,
        sources: &SourceMap,
        kept: &[(String, u32)],
    ) -> Result<Arc<Program>, String> {
        let olds: Vec<Arc<Version>> = kept
            .iter()
            .map(|(_, v)| self.get(*v).ok_or_else(|| missing(*v)))
            .collect::<Result<_, _>>()?;
        let retired: Vec<Retired<'_>> = kept
            .iter()
            .zip(&olds)
            .map(|((journey, version), old)| Retired {
                journey,
                version: *version,
                sources: &old.sources,
            })
            .collect();
        let mut all = sources.clone();
        for old in &olds {
            for file in old.sources.files() {
                all.add(
                    format!("<version {}>/{}", old.number, file.name),
                    file.text.clone(),
                );
            }
        }
        merge(sources, &retired)
            .map(Arc::new)
            .map_err(|d| diagnostics_text(&d, &all))
    }
}

/// A deploy checked and planned against the live version, before the
/// partitions are asked who is inside the kept versions
/// ([`Versions::plan_deploy`]).
pub struct Planned {
    /// The live version it follows.
    pub live: u32,
    /// The new project, compiled alone.
    pub next: Arc<Program>,
    pub sources: SourceMap,
    /// Per journey, what happens to the customers inside it.
    pub plan: Vec<(String, Fate)>,
    /// Kept whatever the partitions say: the live version of each journey
    /// whose steps change or which is removed (a customer may enter it
    /// before the deploy is applied).
    kept: Vec<(String, u32)>,
}

/// The next version, ready to be recorded and journaled
/// ([`Versions::next_version`]).
pub struct NextVersion {
    pub number: u32,
    pub record: Record,
    pub program: Arc<Program>,
    /// What the deploy answers once the version is journaled.
    pub deployed: Deployed,
}

impl Versions {
    /// The deploy rules of SERVICE.md §8, the first half (both backends):
    /// `sources` checked (a project with errors is refused with its
    /// diagnostics) and planned against the live version; `Err(Ok(_))`
    /// when it is the live version already (nothing to deploy).
    pub fn plan_deploy(
        &self,
        sources: SourceMap,
    ) -> Result<Planned, Result<Deployed, DeployError>> {
        let live = self
            .live()
            .ok_or_else(|| Err(DeployError::Unavailable("no version is running".into())))?;
        let current = self
            .program(live.number)
            .map_err(|why| Err(DeployError::Unavailable(why)))?;
        let next = Arc::new(
            compile_sources(&sources)
                .map_err(|d| Err(DeployError::Invalid(diagnostics_text(&d, &sources))))?,
        );
        let plan = plan(&current, &next);
        let same = self.alone(live.number).is_ok_and(|alone| {
            crate::compile::fingerprint(&alone) == crate::compile::fingerprint(&next)
        });
        if same {
            return Err(Ok(Deployed {
                version: live.number,
                deployed: false,
                plan,
                kept: live.record.kept.clone(),
            }));
        }
        let kept = plan
            .iter()
            .filter(|(_, fate)| matches!(fate, Fate::Stays | Fate::Removed))
            .map(|(name, _)| (name.clone(), live.number))
            .collect();
        Ok(Planned {
            live: live.number,
            next,
            sources,
            plan,
            kept,
        })
    }

    /// The second half: the version after `planned.live`, keeping besides
    /// the planned ones the versions `inside` (what each partition's
    /// [`crate::runtime::Runtime::kept_after`] said: versions kept already
    /// stay while someone is inside them, and no one enters those). Refused
    /// when a kept journey no longer compiles beside the project. Not
    /// added here: the caller records it first.
    pub fn next_version(
        &self,
        planned: Planned,
        inside: impl IntoIterator<Item = (String, u32)>,
        deployed_ms: i64,
    ) -> Result<NextVersion, DeployError> {
        let mut kept: std::collections::BTreeSet<(String, u32)> =
            planned.kept.into_iter().collect();
        kept.extend(inside);
        let kept: Vec<(String, u32)> = kept.into_iter().collect();
        let program = self.compile(&planned.sources, &kept).map_err(|why| {
            DeployError::Invalid(format!(
                "the customers inside the earlier versions of {} stay on them, and those no \
                 longer compile beside this project:\n{why}",
                kept.iter()
                    .map(|(name, v)| format!("`{name}` (version {v})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let number = planned.live + 1;
        let record = Record::new(&planned.sources, kept.clone(), deployed_ms, &program);
        Ok(NextVersion {
            number,
            record,
            program,
            deployed: Deployed {
                version: number,
                deployed: true,
                plan: planned.plan,
                kept,
            },
        })
    }
}

fn missing(number: u32) -> String {
    format!("version {number} of the journeys is not in the data directory")
}

/// The errors of a project, one per line (`file:line:col: error[E…]: …`),
/// for an operator's log or an HTTP answer.
pub fn diagnostics_text(diagnostics: &Diagnostics, sources: &SourceMap) -> String {
    diagnostics
        .items
        .iter()
        .filter(|d| d.is_error())
        .map(|d| crate::diagnostic::print::one_line(d, sources))
        .collect::<Vec<_>>()
        .join("\n")
}
