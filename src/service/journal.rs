//! What the journal holds: every input that changes a partition's state,
//! each with the instant it takes effect, decided when it is journaled, so
//! that a replay never reads a clock (SERVICE.md §1).

/// One journal entry of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// An accepted Segment message (its JSON text, with `type` and
    /// `messageId` filled in), applied at `at` (epoch milliseconds).
    Message { at: i64, line: String },
    /// The clock moves to `to`: every timer due by then fires.
    Tick { to: i64 },
    /// The end of the input (`POST /admin/clock {"to": "end"}`): time runs
    /// on until no timer is pending, as `journey simulate` ends.
    End,
    /// Version `version` of the journeys takes over (SERVICE.md §8): its
    /// record is in the storage's versions ([`super::versions`]).
    Deploy { version: u32 },
}

impl Entry {
    /// One tag byte, then the instant (eight bytes, little-endian) and the
    /// message's text as it came: a message is written and replayed without
    /// being escaped into, or parsed out of, another layer of JSON.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Entry::Message { at, line } => {
                let mut out = Vec::with_capacity(9 + line.len());
                out.push(b'M');
                out.extend_from_slice(&at.to_le_bytes());
                out.extend_from_slice(line.as_bytes());
                out
            }
            Entry::Tick { to } => {
                let mut out = vec![b'T'];
                out.extend_from_slice(&to.to_le_bytes());
                out
            }
            Entry::End => vec![b'E'],
            Entry::Deploy { version } => {
                let mut out = vec![b'D'];
                out.extend_from_slice(&version.to_le_bytes());
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, String> {
        let instant = |rest: &[u8]| -> Result<i64, String> {
            rest.get(..8)
                .and_then(|b| b.try_into().ok())
                .map(i64::from_le_bytes)
                .ok_or_else(|| "an entry cut short".to_string())
        };
        match bytes.split_first() {
            Some((b'M', rest)) => Ok(Entry::Message {
                at: instant(rest)?,
                line: std::str::from_utf8(&rest[8..])
                    .map_err(|_| "a message that is not UTF-8".to_string())?
                    .to_string(),
            }),
            Some((b'T', rest)) if rest.len() == 8 => Ok(Entry::Tick { to: instant(rest)? }),
            Some((b'E', [])) => Ok(Entry::End),
            Some((b'D', &[a, b, c, d])) => Ok(Entry::Deploy {
                version: u32::from_le_bytes([a, b, c, d]),
            }),
            Some((tag, _)) => Err(format!("an entry of unknown kind `{}`", tag.escape_ascii())),
            None => Err("an empty entry".to_string()),
        }
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
            Entry::Deploy { version: 7 },
        ] {
            assert_eq!(Entry::decode(&entry.encode()), Ok(entry));
        }
        for damaged in [
            &b""[..],
            b"M\x01\x02",
            b"T\x00",
            b"Ezz",
            b"D\x01\x00",
            b"{\"kind\":\"tick\"",
            b"M\x00\x00\x00\x00\x00\x00\x00\x00\xff",
        ] {
            assert!(Entry::decode(damaged).is_err(), "{damaged:?}");
        }
    }
}
