//! The serialized program: a versioned JSON envelope around [`Program`], as
//! `journey compile` writes it and an embedding service loads it.
//!
//! ```json
//! { "format_version": 3, "compiler": "journey 0.1.0",
//!   "journeys": [{ "name": "abandoned_cart", "content_hash": "…" }],
//!   "program": { … } }
//! ```
//!
//! The `journeys` list is for humans and CI diffs; [`load`] reads `program`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::program::Program;

/// The envelope format this build writes and reads.
pub const FORMAT_VERSION: u64 = 3;

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    format_version: u64,
    compiler: String,
    journeys: Vec<JourneyRef<'a>>,
    program: &'a Program,
}

#[derive(Serialize)]
struct JourneyRef<'a> {
    name: &'a str,
    content_hash: &'a str,
}

/// Only the version, read first so that a future format fails with a clear
/// message rather than a field error.
#[derive(Deserialize)]
struct VersionOnly {
    format_version: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct EnvelopeIn {
    program: Program,
}

/// The program's fingerprint: the SHA-256 of its serialized form, in hex.
/// Two programs with the same fingerprint behave the same; a runtime's
/// snapshot carries it so that it is restored only over its own program.
pub fn fingerprint(program: &Program) -> String {
    sha256_hex(&serde_json::to_vec(program).unwrap_or_default())
}

/// The SHA-256 of `bytes`, in lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

/// `bytes` in lowercase hex: fingerprints, keys and ids.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The compiled program as pretty JSON (with a final newline).
pub fn to_json(program: &Program) -> String {
    let envelope = EnvelopeOut {
        format_version: FORMAT_VERSION,
        compiler: format!("journey {}", env!("CARGO_PKG_VERSION")),
        journeys: program
            .journeys
            .iter()
            .map(|j| JourneyRef {
                name: &j.name,
                content_hash: &j.content_hash,
            })
            .collect(),
        program,
    };
    // Serializing plain data with string keys cannot fail; the fallback
    // keeps this function total anyway.
    let mut text = serde_json::to_string_pretty(&envelope).unwrap_or_default();
    text.push('\n');
    text
}

/// Why a compiled program could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// Not JSON, or not a compiled program.
    Invalid(String),
    /// No `format_version`: not written by `journey compile`.
    MissingVersion,
    /// Written by a newer or older compiler.
    UnsupportedVersion(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Invalid(e) => write!(f, "not a compiled journey program: {e}"),
            LoadError::MissingVersion => write!(
                f,
                "not a compiled journey program: `format_version` is missing; \
                 compile the journeys with `journey compile`"
            ),
            LoadError::UnsupportedVersion(v) => write!(
                f,
                "compiled program format version {v} is not supported (this build reads \
                 version {FORMAT_VERSION}); compile the journeys again with this version of \
                 `journey`"
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads a program written by [`to_json`].
pub fn load(text: &str) -> Result<Program, LoadError> {
    let version: VersionOnly =
        serde_json::from_str(text).map_err(|e| LoadError::Invalid(e.to_string()))?;
    match version.format_version {
        None => return Err(LoadError::MissingVersion),
        Some(v) if v.as_u64() == Some(FORMAT_VERSION) => {}
        Some(v) => return Err(LoadError::UnsupportedVersion(v.to_string())),
    }
    let envelope: EnvelopeIn =
        serde_json::from_str(text).map_err(|e| LoadError::Invalid(e.to_string()))?;
    Ok(envelope.program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_other_versions_clearly() {
        let err = load(r#"{"format_version": 99, "program": {}}"#).unwrap_err();
        assert_eq!(err, LoadError::UnsupportedVersion("99".into()));
        assert!(err.to_string().contains("version 99 is not supported"));
        assert_eq!(
            load(r#"{"program": {}}"#).unwrap_err(),
            LoadError::MissingVersion
        );
        assert!(matches!(load("[1, 2"), Err(LoadError::Invalid(_))));
    }

    #[test]
    fn an_empty_program_round_trips() {
        let program = Program {
            journeys: Vec::new(),
            events: Vec::new(),
            channels: Vec::new(),
            templates: Vec::new(),
            profile_slots: Vec::new(),
            policy: Default::default(),
            any_silence: Vec::new(),
            attribution: None,
        };
        let text = to_json(&program);
        assert!(text.starts_with("{\n  \"format_version\": 3,"));
        assert_eq!(load(&text).unwrap(), program);
    }
}
