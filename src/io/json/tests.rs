//! The scanner against `serde_json` on a corpus of valid and invalid JSON.

use super::*;

fn serde_accepts(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

#[test]
fn placeholder() {
    assert!(validate("{}").is_ok());
    assert!(serde_accepts("{}"));
}
