//! The VS Code extension's TextMate grammar against the language's grammar:
//! valid JSON, every keyword of grammar/journey.pest highlighted, and no
//! word highlighted as a keyword that the language does not have.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

fn tm_grammar() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("editors/vscode/syntaxes/journey.tmLanguage.json");
    let text = std::fs::read_to_string(&path).expect("the TextMate grammar exists");
    serde_json::from_str(&text).expect("the TextMate grammar is JSON")
}

/// Every `match`, `begin` and `end` of the grammar with the scope it
/// gives (its own `name`, or the first capture's).
fn rules(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            let scope = map
                .get("name")
                .or_else(|| {
                    map.get("captures")
                        .and_then(|c| c.get("1"))
                        .and_then(|c| c.get("name"))
                })
                .and_then(Value::as_str)
                .unwrap_or_default();
            for key in ["match", "begin", "end"] {
                if let Some(Value::String(regex)) = map.get(key) {
                    out.push((scope.to_string(), regex.clone()));
                }
            }
            map.values().for_each(|v| rules(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| rules(v, out)),
        _ => {}
    }
}

/// The words of a `\b(?:a|b|c)\b` or `\b(a|b)(\.)` rule.
fn words(regex: &str) -> Vec<String> {
    let Some(inner) = regex
        .strip_prefix("\\b(?:")
        .or_else(|| regex.strip_prefix("\\b("))
    else {
        return Vec::new();
    };
    let Some(end) = inner.find(')') else {
        return Vec::new();
    };
    inner[..end].split('|').map(str::to_string).collect()
}

#[test]
fn the_tm_grammar_highlights_exactly_the_languages_words() {
    let grammar = tm_grammar();
    assert_eq!(grammar["scopeName"], "source.journey");
    let mut all = Vec::new();
    rules(&grammar, &mut all);
    let highlighted: BTreeSet<String> = all
        .iter()
        .filter(|(scope, _)| {
            [
                "keyword.control",
                "keyword.other",
                "keyword.operator.word",
                "storage.type",
                "constant.language",
                "support.type",
                "variable.language",
            ]
            .iter()
            .any(|prefix| scope.starts_with(prefix))
        })
        .flat_map(|(_, regex)| words(regex))
        .collect();
    let missing: Vec<&str> = journey::syntax::keywords()
        .into_iter()
        .filter(|k| !highlighted.contains(*k))
        .collect();
    assert!(missing.is_empty(), "keywords not highlighted: {missing:?}");
    // Every highlighted word is a word of the language's grammar.
    let pest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/journey.pest"))
            .unwrap();
    let foreign: Vec<&String> = highlighted
        .iter()
        .filter(|w| !pest.contains(&format!("\"{w}\"")))
        .collect();
    assert!(
        foreign.is_empty(),
        "highlighted but not in the grammar: {foreign:?}"
    );
}

#[test]
fn the_keyword_list_is_the_grammars() {
    let keywords = journey::syntax::keywords();
    for word in [
        "trigger",
        "send",
        "wait",
        "journey",
        "and",
        "contains",
        "transactional",
    ] {
        assert!(keywords.contains(&word), "{word}");
    }
    // Rule names and fragments of wrong-token rules are not keywords.
    for word in ["kw_send", "rigger", "s", "h"] {
        assert!(!keywords.contains(&word), "{word}");
    }
}
