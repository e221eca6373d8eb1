//! Diagnostics for CI systems: GitHub Actions workflow commands (inline
//! annotations on pull requests) and SARIF 2.1.0 (code scanning). Both are
//! deterministic: no timestamps, no absolute paths unless given.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::escape;
use super::print::JsonDiagnostic;
use crate::diagnostic::codes::Code;
use crate::diagnostic::{Diagnostic, Severity};
use crate::source::SourceMap;

/// One `::error file=..,line=..,col=..,endLine=..,endColumn=..,title=CODE::message`
/// line per diagnostic (`::warning` for warnings); help follows the message
/// after an (escaped) newline.
pub fn github(diagnostics: &[Diagnostic], sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let j = JsonDiagnostic::new(d, sources);
        let command = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // Writing into a String cannot fail.
        let _ = writeln!(
            out,
            "::{command} file={},line={},col={},endLine={},endColumn={},title={}::{}",
            escape_property(j.file),
            j.line,
            j.column,
            j.end_line,
            j.end_column,
            escape_property(j.code),
            escape_data(&message_with_help(d)),
        );
    }
    out
}

/// The message, then "help: ..." on a second line when there is help.
fn message_with_help(d: &Diagnostic) -> String {
    match &d.help {
        Some(help) => format!("{}\nhelp: {help}", d.message),
        None => d.message.clone(),
    }
}

/// GitHub's escaping of a workflow command's message. Control characters
/// that GitHub's log would act on (ANSI colours) are first written as
/// people see them elsewhere, `\u{1b}`; a carriage return among them.
fn escape_data(s: &str) -> String {
    escape::text(s).replace('%', "%25").replace('\n', "%0A")
}

/// GitHub's escaping of a workflow command's property value.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// A SARIF 2.1.0 log with one run: the rules of every code used (sorted by
/// code) and one result per diagnostic, pretty-printed.
pub fn sarif(diagnostics: &[Diagnostic], sources: &SourceMap) -> String {
    let used: BTreeMap<&str, Code> = diagnostics.iter().map(|d| (d.code.id, d.code)).collect();
    let index: BTreeMap<&str, usize> = used.keys().enumerate().map(|(i, id)| (*id, i)).collect();
    let rules = used.values().map(|c| SarifRule::new(*c)).collect();
    let results = diagnostics
        .iter()
        .map(|d| SarifResult::new(d, sources, index.get(d.code.id).copied().unwrap_or(0)))
        .collect();
    let log = SarifLog {
        schema: SARIF_SCHEMA,
        version: "2.1.0",
        runs: vec![SarifRun {
            tool: SarifTool {
                driver: SarifDriver {
                    name: "journey",
                    version: env!("CARGO_PKG_VERSION"),
                    information_uri: information_uri(),
                    rules,
                },
            },
            column_kind: "unicodeCodePoints",
            results,
        }],
    };
    escape::json_pretty(&log)
}

/// The project's home from Cargo.toml (`homepage`, else `repository`); the
/// README, relative to the checkout, until one is set.
fn information_uri() -> &'static str {
    [env!("CARGO_PKG_HOMEPAGE"), env!("CARGO_PKG_REPOSITORY")]
        .into_iter()
        .find(|u| !u.is_empty())
        .unwrap_or("README.md")
}

#[derive(Serialize)]
struct SarifLog {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<SarifRun>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRun {
    tool: SarifTool,
    column_kind: &'static str,
    results: Vec<SarifResult>,
}

#[derive(Serialize)]
struct SarifTool {
    driver: SarifDriver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifDriver {
    name: &'static str,
    version: &'static str,
    information_uri: &'static str,
    rules: Vec<SarifRule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRule {
    id: &'static str,
    short_description: SarifText,
    help_uri: String,
    default_configuration: SarifConfiguration,
}

impl SarifRule {
    fn new(code: Code) -> SarifRule {
        SarifRule {
            id: code.id,
            short_description: SarifText {
                text: code.title.to_string(),
            },
            help_uri: format!("docs/errors/{}.md", code.id),
            default_configuration: SarifConfiguration {
                level: level(code.severity),
            },
        }
    }
}

#[derive(Serialize)]
struct SarifConfiguration {
    level: &'static str,
}

#[derive(Serialize)]
struct SarifText {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: &'static str,
    rule_index: usize,
    level: &'static str,
    message: SarifText,
    locations: Vec<SarifLocation>,
}

impl SarifResult {
    fn new(d: &Diagnostic, sources: &SourceMap, rule_index: usize) -> SarifResult {
        let j = JsonDiagnostic::new(d, sources);
        let (uri, uri_base_id) = artifact_uri(j.file);
        SarifResult {
            rule_id: d.code.id,
            rule_index,
            level: level(d.severity),
            message: SarifText {
                text: message_with_help(d),
            },
            locations: vec![SarifLocation {
                physical_location: SarifPhysicalLocation {
                    artifact_location: SarifArtifactLocation { uri, uri_base_id },
                    region: SarifRegion {
                        start_line: j.line,
                        start_column: j.column,
                        end_line: j.end_line,
                        end_column: j.end_column,
                    },
                },
            }],
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation {
    physical_location: SarifPhysicalLocation,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifPhysicalLocation {
    artifact_location: SarifArtifactLocation,
    region: SarifRegion,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifArtifactLocation {
    uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_base_id: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRegion {
    start_line: usize,
    start_column: usize,
    end_line: usize,
    end_column: usize,
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A file's display name as a URI: relative to `%SRCROOT%` (the checkout)
/// when relative, a `file://` URI when absolute.
fn artifact_uri(name: &str) -> (String, Option<&'static str>) {
    if std::path::Path::new(name).is_absolute() {
        let slash = if name.starts_with('/') { "" } else { "/" };
        (
            format!("file://{slash}{}", percent_encode(name, true)),
            None,
        )
    } else {
        (percent_encode(name, false), Some("%SRCROOT%"))
    }
}

/// Percent-encodes everything but unreserved characters and `/` (and `:`
/// when allowed: a relative reference must not have one before its first
/// `/`, or it would read as a scheme).
fn percent_encode(s: &str, keep_colon: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/')
            || (keep_colon && b == b':');
        if keep {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::codes;

    fn sample() -> (SourceMap, Vec<Diagnostic>) {
        let mut sources = SourceMap::new();
        let cart = sources.add(
            "journeys/cart, 100%.journey",
            "journey cart {\n  trigger cart_abandonded\n}\n",
        );
        let quiet = sources.add("journeys/quiet.journey", "journey q {\n  trigger a\n}\n");
        let error = Diagnostic::new(
            codes::UNKNOWN_EVENT,
            sources.get(cart).span(25, 40),
            "unknown event `cart_abandonded`",
        )
        .with_help("did you mean `cart_abandoned`?");
        let warning = Diagnostic::new(
            codes::SENDS_NOTHING,
            sources.get(quiet).span(8, 9),
            "journey `q` sends nothing",
        );
        (sources, vec![error, warning])
    }

    #[test]
    fn github_lines_escape_properties_and_data() {
        let (sources, ds) = sample();
        let out = github(&ds, &sources);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                "::error file=journeys/cart%2C 100%25.journey,line=2,col=11,endLine=2,endColumn=26,\
                 title=E0206::unknown event `cart_abandonded`%0Ahelp: did you mean `cart_abandoned`?",
                "::warning file=journeys/quiet.journey,line=1,col=9,endLine=1,endColumn=10,\
                 title=W0002::journey `q` sends nothing",
            ]
        );
        assert_eq!(escape_property("a:b\n"), "a%3Ab%0A");
        assert_eq!(escape_data("a\u{1b}[31m\r\n"), "a\\u{1b}[31m\\u{d}%0A");
        assert_eq!(escape_data("a:b,c"), "a:b,c");
    }

    #[test]
    fn sarif_has_rules_for_used_codes_and_located_results() {
        let (sources, ds) = sample();
        let v: serde_json::Value = serde_json::from_str(&sarif(&ds, &sources)).unwrap();
        assert_eq!(v["version"], "2.1.0");
        assert_eq!(v["$schema"], SARIF_SCHEMA);
        let run = &v["runs"][0];
        let driver = &run["tool"]["driver"];
        assert_eq!(driver["name"], "journey");
        assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
        let rules = driver["rules"].as_array().unwrap();
        let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["E0206", "W0002"]);
        assert_eq!(rules[0]["shortDescription"]["text"], "unknown event");
        assert_eq!(rules[0]["helpUri"], "docs/errors/E0206.md");

        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        let first = &results[0];
        assert_eq!(first["ruleId"], "E0206");
        assert_eq!(first["ruleIndex"], 0);
        assert_eq!(first["level"], "error");
        assert_eq!(
            first["message"]["text"],
            "unknown event `cart_abandonded`\nhelp: did you mean `cart_abandoned`?"
        );
        let location = &first["locations"][0]["physicalLocation"];
        assert_eq!(
            location["artifactLocation"]["uri"],
            "journeys/cart%2C%20100%25.journey"
        );
        assert_eq!(location["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        let region = &location["region"];
        assert_eq!(
            [
                &region["startLine"],
                &region["startColumn"],
                &region["endLine"],
                &region["endColumn"]
            ],
            [2, 11, 2, 26]
        );
        assert_eq!(results[1]["ruleIndex"], 1);
        assert_eq!(results[1]["level"], "warning");
    }

    #[test]
    fn sarif_of_nothing_is_an_empty_run() {
        let v: serde_json::Value = serde_json::from_str(&sarif(&[], &SourceMap::new())).unwrap();
        assert_eq!(v["runs"][0]["results"], serde_json::json!([]));
        assert_eq!(
            v["runs"][0]["tool"]["driver"]["rules"],
            serde_json::json!([])
        );
    }

    #[test]
    fn absolute_files_become_file_uris() {
        assert_eq!(
            artifact_uri("/home/ana/my journeys/a.journey"),
            ("file:///home/ana/my%20journeys/a.journey".to_string(), None)
        );
        assert_eq!(artifact_uri("a:b.journey").0, "a%3Ab.journey");
    }
}
