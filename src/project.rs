//! A project: every `.journey` file given on the command line, parsed.
//! Loading files from disk and parsing them all lives here so the CLI, the
//! tests and embedders share one entry point.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use crate::diagnostic::Diagnostic;
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

/// Why a set of paths could not be loaded; each is one line for the user.
#[derive(Debug)]
pub enum LoadError {
    /// A path given on the command line does not exist.
    NotFound { path: String },
    /// A file or directory exists but could not be read.
    Unreadable { path: String, reason: String },
    /// A file is not UTF-8; `byte` is the 1-based position of the first bad
    /// byte (as `cmp` counts them), consistent with 1-based lines and columns.
    NotUtf8 { path: String, byte: usize },
    /// A directory (searched recursively) holds no `.journey` file.
    NoJourneyFiles { path: String },
    /// A file is longer than [`MAX_SOURCE_BYTES`].
    TooLarge { path: String },
}

/// The longest source file read, in bytes: 8 MiB. The largest journey
/// seen in practice is a few kilobytes; parsing and checking a file takes
/// memory proportional to its length, so this keeps a stray log or a device
/// (`/dev/zero`) from exhausting memory while leaving a thousand times the
/// room real files need. Change it here; docs/compiler.md states it.
pub const MAX_SOURCE_BYTES: u64 = 8 << 20;

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotFound { path } => write!(f, "`{path}` does not exist"),
            LoadError::Unreadable { path, reason } => write!(f, "cannot read `{path}`: {reason}"),
            LoadError::NotUtf8 { path, byte } => {
                write!(f, "`{path}` is not valid UTF-8 (byte {byte})")
            }
            LoadError::NoJourneyFiles { path } => {
                write!(f, "`{path}` contains no `.journey` file")
            }
            LoadError::TooLarge { path } => write!(
                f,
                "`{path}` is larger than {} MiB, the limit for a source file",
                MAX_SOURCE_BYTES >> 20
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads every file and directory given (directories recursively, `*.journey`
/// only, hidden entries skipped) into one [`SourceMap`], ordered by path.
/// A file named explicitly is read whatever its extension and kind (a pipe
/// such as `<(cat a.journey)` too); a directory's entries are read only when
/// they are regular files, so a FIFO or a device found there cannot block
/// or flood the load. A file reached twice is read once; no file is read
/// past [`MAX_SOURCE_BYTES`]. Display names are relative to the current
/// directory when under it, with forward slashes, and otherwise as given.
pub fn load_paths(paths: &[PathBuf]) -> Result<SourceMap, LoadError> {
    let cwd = std::env::current_dir().ok();
    load_paths_from(paths, cwd.as_deref())
}

/// [`load_paths`] with the directory that display names are relative to.
pub fn load_paths_from(paths: &[PathBuf], cwd: Option<&Path>) -> Result<SourceMap, LoadError> {
    let mut found = Vec::new();
    for path in paths {
        let shown = display_name(path, cwd);
        let metadata = std::fs::metadata(path).map_err(|e| io_error(shown.clone(), &e))?;
        if metadata.is_dir() {
            let before = found.len();
            walk(path, &metadata, cwd, &mut found, &mut BTreeSet::new())?;
            if found.len() == before {
                return Err(LoadError::NoJourneyFiles { path: shown });
            }
        } else {
            found.push((path.clone(), Identity::of(path, &metadata)));
        }
    }

    let mut files: Vec<(String, PathBuf, Identity)> = found
        .into_iter()
        .map(|(p, id)| (display_name(&p, cwd), p, id))
        .collect();
    files.sort_by(|a, b| Path::new(&a.0).cmp(Path::new(&b.0)).then(a.0.cmp(&b.0)));

    let mut seen = BTreeSet::new();
    let mut sources = SourceMap::new();
    for (name, path, identity) in files {
        // The same file given twice (a directory and a file inside it) would
        // otherwise declare every name twice.
        if !seen.insert(identity) {
            continue;
        }
        let text = read_source(&path, &name)?;
        sources.add(name, text);
    }
    Ok(sources)
}

/// Reads one source file, never more than [`MAX_SOURCE_BYTES`] + 1 bytes
/// whatever its length claims: a pipe or a device has none.
fn read_source(path: &Path, name: &str) -> Result<String, LoadError> {
    let unreadable = |e: &io::Error| io_error(name.to_string(), e);
    let file = File::open(path).map_err(|e| unreadable(&e))?;
    let mut bytes = Vec::new();
    file.take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(&e))?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(LoadError::TooLarge {
            path: name.to_string(),
        });
    }
    String::from_utf8(bytes).map_err(|e| LoadError::NotUtf8 {
        path: name.to_string(),
        byte: e.utf8_error().valid_up_to() + 1,
    })
}

/// What makes two paths the same file or directory: the device and inode
/// on Unix, read from metadata already at hand; elsewhere the canonical
/// path. Canonicalising costs a system call per component of the path, so
/// doing it for every directory of a deep tree made the walk quadratic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Identity {
    #[cfg(unix)]
    Inode { device: u64, inode: u64 },
    #[cfg(not(unix))]
    Path(PathBuf),
}

impl Identity {
    #[cfg(unix)]
    fn of(_path: &Path, metadata: &Metadata) -> Identity {
        use std::os::unix::fs::MetadataExt;
        Identity::Inode {
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }

    #[cfg(not(unix))]
    fn of(path: &Path, _metadata: &Metadata) -> Identity {
        Identity::Path(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
    }
}

/// Collects the regular `*.journey` files under `dir` with their identity,
/// skipping hidden entries and directories already visited (a symbolic
/// link back up the tree).
fn walk(
    dir: &Path,
    metadata: &Metadata,
    cwd: Option<&Path>,
    found: &mut Vec<(PathBuf, Identity)>,
    visited: &mut BTreeSet<Identity>,
) -> Result<(), LoadError> {
    if !visited.insert(Identity::of(dir, metadata)) {
        return Ok(());
    }
    let unreadable = |e: &io::Error| io_error(display_name(dir, cwd), e);
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| unreadable(&e))? {
        let entry = entry.map_err(|e| unreadable(&e))?;
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        entries.push((name, entry.path()));
    }
    // By name: every path here shares the directory's prefix, however deep.
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (_, path) in entries {
        // Follows symbolic links; a dangling one is not a journey file.
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            walk(&path, &metadata, cwd, found, visited)?;
        } else if metadata.is_file() && path.extension().is_some_and(|e| e == "journey") {
            let identity = Identity::of(&path, &metadata);
            found.push((path, identity));
        }
    }
    Ok(())
}

fn io_error(path: String, error: &io::Error) -> LoadError {
    match error.kind() {
        io::ErrorKind::NotFound => LoadError::NotFound { path },
        io::ErrorKind::PermissionDenied => LoadError::Unreadable {
            path,
            reason: "permission denied".to_string(),
        },
        io::ErrorKind::IsADirectory => LoadError::Unreadable {
            path,
            reason: "it is a directory".to_string(),
        },
        _ => LoadError::Unreadable {
            path,
            reason: lowercase_first(&error.to_string()),
        },
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The name a user sees for `path`: relative to `cwd` when under it, else
/// as given; always with forward slashes.
fn display_name(path: &Path, cwd: Option<&Path>) -> String {
    if path.as_os_str().is_empty() {
        return String::new();
    }
    if let Some(cwd) = cwd {
        let absolute = normalize(&cwd.join(path));
        if let Ok(relative) = absolute.strip_prefix(normalize(cwd))
            && relative.components().next().is_some()
        {
            return forward_slashes(relative);
        }
    }
    forward_slashes(path)
}

/// Removes `.` and resolves `..` lexically (no file system access, so a
/// symbolic link keeps the name the user gave).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(component);
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn forward_slashes(path: &Path) -> String {
    let mut out = String::new();
    for component in path.components() {
        let part = component.as_os_str().to_string_lossy();
        match component {
            Component::RootDir => out.push('/'),
            Component::Prefix(_) => out.push_str(&part),
            _ => {
                if !out.is_empty() && !out.ends_with('/') {
                    out.push('/');
                }
                out.push_str(&part);
            }
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty directory under the system temp dir for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("journey-load-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(sources: &SourceMap) -> Vec<&str> {
        sources.files().iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn walks_directories_sorted_and_keeps_journey_files_only() {
        let dir = scratch("walk");
        std::fs::create_dir_all(dir.join("b/nested")).unwrap();
        std::fs::create_dir_all(dir.join(".hidden")).unwrap();
        std::fs::write(dir.join("b/nested/z.journey"), "z").unwrap();
        std::fs::write(dir.join("b/a.journey"), "a").unwrap();
        std::fs::write(dir.join("a.journey"), "top").unwrap();
        std::fs::write(dir.join("notes.txt"), "no").unwrap();
        std::fs::write(dir.join(".hidden/h.journey"), "no").unwrap();
        let sources = load_paths_from(std::slice::from_ref(&dir), Some(&dir)).unwrap();
        assert_eq!(
            names(&sources),
            ["a.journey", "b/a.journey", "b/nested/z.journey"]
        );
        assert_eq!(sources.get(crate::FileId(0)).text.as_ref(), "top");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn explicit_file_is_read_whatever_its_extension_and_only_once() {
        let dir = scratch("explicit");
        std::fs::write(dir.join("one.txt"), "x").unwrap();
        std::fs::write(dir.join("two.journey"), "y").unwrap();
        let paths = [dir.join("one.txt"), dir.clone(), dir.join("two.journey")];
        let sources = load_paths_from(&paths, Some(&dir)).unwrap();
        assert_eq!(names(&sources), ["one.txt", "two.journey"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_outside_the_current_directory_stay_as_given() {
        let dir = scratch("outside");
        std::fs::write(dir.join("x.journey"), "x").unwrap();
        let elsewhere = Path::new("/nonexistent-journey-cwd");
        let sources = load_paths_from(&[dir.join("x.journey")], Some(elsewhere)).unwrap();
        assert_eq!(names(&sources), [forward_slashes(&dir.join("x.journey"))]);
        assert_eq!(
            display_name(Path::new("./a/../b/c.journey"), Some(Path::new("/w"))),
            "b/c.journey"
        );
        assert_eq!(
            display_name(Path::new("../up.journey"), Some(Path::new("/w/x"))),
            "../up.journey"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reports_missing_paths_bad_utf8_and_empty_directories() {
        let dir = scratch("errors");
        let missing = load_paths_from(&[dir.join("nope")], Some(&dir)).unwrap_err();
        assert_eq!(missing.to_string(), "`nope` does not exist");

        std::fs::write(dir.join("bad.journey"), b"journey a {\n  name \"\xff\"\n}").unwrap();
        let bad = load_paths_from(&[dir.join("bad.journey")], Some(&dir)).unwrap_err();
        assert_eq!(
            bad.to_string(),
            "`bad.journey` is not valid UTF-8 (byte 21)"
        );

        std::fs::create_dir_all(dir.join("empty/sub")).unwrap();
        std::fs::write(dir.join("empty/sub/readme.md"), "x").unwrap();
        let empty = load_paths_from(&[dir.join("empty")], Some(&dir)).unwrap_err();
        assert_eq!(empty.to_string(), "`empty` contains no `.journey` file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_a_file_over_the_limit_and_reads_one_at_it() {
        let dir = scratch("large");
        let mut text = "x".repeat(MAX_SOURCE_BYTES as usize);
        std::fs::write(dir.join("at.journey"), &text).unwrap();
        text.push('x');
        std::fs::write(dir.join("over.journey"), &text).unwrap();
        let at = load_paths_from(&[dir.join("at.journey")], Some(&dir)).unwrap();
        assert_eq!(at.get(crate::FileId(0)).text.len() as u64, MAX_SOURCE_BYTES);
        let over = load_paths_from(std::slice::from_ref(&dir), Some(&dir)).unwrap_err();
        assert_eq!(
            over.to_string(),
            "`over.journey` is larger than 8 MiB, the limit for a source file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_walk_skips_fifos_and_symbolic_link_cycles() {
        let dir = scratch("special");
        std::fs::write(dir.join("a.journey"), "a").unwrap();
        let fifo = dir.join("pipe.journey");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo runs");
        std::os::unix::fs::symlink(&dir, dir.join("loop")).unwrap();
        // Reading the FIFO would block forever: nothing writes to it.
        let sources = load_paths_from(std::slice::from_ref(&dir), Some(&dir)).unwrap();
        assert_eq!(names(&sources), ["a.journey"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn reports_unreadable_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("unreadable");
        let file = dir.join("secret.journey");
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
        // Root reads anything: there is nothing to test then.
        if std::fs::read(&file).is_err() {
            let err = load_paths_from(std::slice::from_ref(&file), Some(&dir)).unwrap_err();
            assert_eq!(
                err.to_string(),
                "cannot read `secret.journey`: permission denied"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
