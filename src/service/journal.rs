//! What the journal holds: every input that changes a partition's state,
//! each with the instant it takes effect, decided when it is journaled, so
//! that a replay never reads a clock (SERVICE.md §1).

use serde::{Deserialize, Serialize};

/// One journal entry of one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// An accepted Segment message (its JSON text, with `type` and
    /// `messageId` filled in), applied at `at` (epoch milliseconds).
    Message { at: i64, line: String },
    /// The clock moves to `to`: every timer due by then fires.
    Tick { to: i64 },
    /// The end of the input (`POST /admin/clock {"to": "end"}`): time runs
    /// on until no timer is pending, as `journey simulate` ends.
    End,
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        // An entry is plain data: serializing it cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        for entry in [
            Entry::Message {
                at: 1_772_445_600_000,
                line: r#"{"type":"track","userId":"u1"}"#.to_string(),
            },
            Entry::Tick { to: 5 },
            Entry::End,
        ] {
            assert_eq!(Entry::decode(&entry.encode()), Ok(entry));
        }
        assert!(Entry::decode(b"{\"kind\":\"tick\"").is_err());
    }
}
