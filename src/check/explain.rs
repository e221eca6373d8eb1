//! The long explanation of each diagnostic code, as printed by
//! `journey explain CODE` (the pages of docs/errors/).

use super::codes::{self, Code};

/// The explanation page of a code, or `None` for an unknown code.
pub fn explain(id: &str) -> Option<(Code, &'static str)> {
    codes::lookup(id).map(|c| (c, c.title))
}
