//! The `journey` binary end to end: exit codes, output formats and colour,
//! run on the projects under `tests/fixtures/cli/` from the crate root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CLEAN: &str = "tests/fixtures/cli/clean";
const ERROR: &str = "tests/fixtures/cli/error";
const WARNING: &str = "tests/fixtures/cli/warning";
const EMPTY: &str = "tests/fixtures/cli/empty";

/// Runs `journey <args>` in the crate root with `NO_COLOR` unset; stdout and
/// stderr are pipes, so never a terminal.
fn journey(args: &[&str]) -> Output {
    journey_with(args, None)
}

fn journey_with(args: &[&str], no_color: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_journey"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    command.output().expect("the journey binary runs")
}

fn code(output: &Output) -> i32 {
    output
        .status
        .code()
        .expect("exited, not killed by a signal")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON value ({e}):\n{}", stdout(output)))
}

/// A directory of its own under cargo's scratch space for generated inputs.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

// ------------------------------------------------------------------ exit 0

#[test]
fn a_clean_project_exits_0_with_no_problems() {
    let output = journey(&["check", CLEAN]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    assert_eq!(stderr(&output), "checked 2 files: no problems\n");
}

#[test]
fn a_clean_project_in_every_machine_format() {
    let output = journey(&["check", CLEAN, "--format", "json", "--deny-warnings"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "{\"diagnostics\":[],\"errors\":0,\"warnings\":0}\n"
    );

    let output = journey(&["check", CLEAN, "--format", "github"]);
    assert_eq!(code(&output), 0);
    assert_eq!(stdout(&output), "");

    let output = journey(&["check", CLEAN, "--format", "sarif"]);
    assert_eq!(code(&output), 0);
    let sarif = json(&output);
    assert_sarif_shape(&sarif);
    assert_eq!(sarif["runs"][0]["results"], serde_json::json!([]));
}

#[test]
fn files_may_be_given_one_by_one() {
    let output = journey(&[
        "check",
        "tests/fixtures/cli/clean/welcome.journey",
        "./tests/fixtures/cli/clean/schema.journey",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stderr(&output), "checked 2 files: no problems\n");
}

// ------------------------------------------------------------------ exit 1
// These need the parser and the checker: they fail until both report.

#[test]
fn a_project_with_errors_exits_1_in_every_format() {
    for format in ["human", "json", "github", "sarif"] {
        let output = journey(&["check", ERROR, "--format", format]);
        assert_eq!(code(&output), 1, "--format {format}: {}", stderr(&output));
    }
}

#[test]
fn the_human_report_names_every_file_and_ends_with_a_summary() {
    let output = journey(&["check", ERROR]);
    assert_eq!(code(&output), 1);
    assert_eq!(stdout(&output), "", "human diagnostics go to stderr");
    let err = stderr(&output);
    assert!(err.contains("E0206"), "{err}");
    assert!(err.contains("E0401"), "{err}");
    assert!(
        err.contains("tests/fixtures/cli/error/cart.journey:10:"),
        "{err}"
    );
    assert!(err.contains("did you mean `cart_abandoned`?"), "{err}");
    assert!(
        err.ends_with("checked 2 files: 2 errors, 0 warnings\n"),
        "{err}"
    );
}

#[test]
fn the_json_report_has_the_documented_shape() {
    let output = journey(&["check", ERROR, "--format", "json"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert_eq!(stderr(&output), "", "machine formats keep stderr quiet");
    let report = json(&output);
    let diagnostics = report["diagnostics"].as_array().expect("a list");
    assert!(!diagnostics.is_empty());
    for d in diagnostics {
        let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = [
            "severity",
            "code",
            "message",
            "help",
            "file",
            "line",
            "column",
            "end_line",
            "end_column",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }
    assert_eq!(report["errors"], 2);
    assert_eq!(report["warnings"], 0);
    insta::assert_json_snapshot!("error_project_json", report);
}

#[test]
fn github_annotations_are_one_workflow_command_per_diagnostic() {
    let output = journey(&["check", ERROR, "--format", "github"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("::error file=tests/fixtures/cli/error/cart.journey,line=10,col="),
        "{out}"
    );
    assert!(lines[0].contains(",title=E0206::"), "{out}");
    assert!(
        lines[0].ends_with("%0Ahelp: did you mean `cart_abandoned`?"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("::error file=tests/fixtures/cli/error/no_trigger.journey,line="),
        "{out}"
    );
    assert!(lines[1].contains(",title=E0401::"), "{out}");
    for line in lines {
        let (properties, message) = line
            .strip_prefix("::error ")
            .and_then(|l| l.split_once("::"))
            .unwrap_or_else(|| panic!("not a workflow command: {line}"));
        let names: Vec<&str> = properties
            .split(',')
            .map(|p| p.split_once('=').expect("name=value").0)
            .collect();
        assert_eq!(
            names,
            ["file", "line", "col", "endLine", "endColumn", "title"]
        );
        assert!(!message.contains('\n') && !message.is_empty());
    }
}

#[test]
fn sarif_is_valid_and_locates_every_result() {
    let output = journey(&["check", ERROR, "--format", "sarif"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let sarif = json(&output);
    assert_sarif_shape(&sarif);
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(rule_ids, ["E0206", "E0401"]);
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(result["ruleId"], rules[index]["id"]);
        assert_eq!(result["level"], "error");
        assert!(
            result["message"]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().unwrap();
        assert!(uri.starts_with("tests/fixtures/cli/error/"), "{uri}");
        assert_eq!(location["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        for key in ["startLine", "startColumn", "endLine", "endColumn"] {
            assert!(
                location["region"][key].as_u64().is_some_and(|n| n >= 1),
                "{key}"
            );
        }
    }
}

#[test]
fn warnings_pass_unless_denied() {
    let output = journey(&["check", WARNING]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stderr(&output).contains("W0002"), "{}", stderr(&output));
    assert!(stderr(&output).ends_with("checked 1 file: 0 errors, 1 warning\n"));

    let output = journey(&["check", WARNING, "--deny-warnings"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(stderr(&output).ends_with("checked 1 file: 1 error, 0 warnings\n"));

    for (format, needle) in [
        ("json", "\"severity\":\"error\""),
        ("github", "::error "),
        ("sarif", "\"level\": \"error\""),
    ] {
        let output = journey(&["check", WARNING, "--deny-warnings", "--format", format]);
        assert_eq!(code(&output), 1, "--format {format}");
        assert!(
            stdout(&output).contains(needle),
            "--format {format}: {}",
            stdout(&output)
        );
    }
}

#[test]
fn an_allowed_warning_passes_deny_warnings() {
    // W0005 on its legitimate pattern (a new cart replaces the old one),
    // allowed in that journey: `--deny-warnings` passes.
    let output = journey(&[
        "check",
        "tests/fixtures/check/constructs/allow.journey",
        "--deny-warnings",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    // The other journey's W0005 is not allowed, so it still blocks.
    let output = journey(&[
        "check",
        "tests/fixtures/check/warnings/allow_elsewhere.journey",
        "--deny-warnings",
        "--format",
        "json",
    ]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["errors"], 1, "{report}");
    assert_eq!(report["diagnostics"][0]["code"], "W0005", "{report}");
    assert_eq!(report["diagnostics"][0]["line"], 12, "{report}");
}

#[test]
fn output_does_not_depend_on_the_order_of_paths_or_runs() {
    let a = journey(&["check", ERROR, CLEAN, "--format", "sarif"]);
    let b = journey(&["check", CLEAN, ERROR, "--format", "sarif"]);
    assert_eq!(stdout(&a), stdout(&b));
    let c = journey(&["check", CLEAN, ERROR, "--format", "sarif"]);
    assert_eq!(stdout(&b), stdout(&c));
    assert_eq!(code(&a), 1);
}

// ------------------------------------------------------------------ exit 2

#[test]
fn a_missing_path_exits_2() {
    let output = journey(&["check", CLEAN, "tests/fixtures/cli/missing"]);
    assert_eq!(code(&output), 2);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "error: `tests/fixtures/cli/missing` does not exist\n"
    );
}

#[test]
fn a_directory_without_journeys_exits_2() {
    let output = journey(&["check", EMPTY]);
    assert_eq!(code(&output), 2);
    assert_eq!(
        stderr(&output),
        "error: `tests/fixtures/cli/empty` contains no `.journey` file\n"
    );
}

#[test]
fn a_file_that_is_not_utf8_exits_2() {
    let dir = scratch("latin1");
    let file = dir.join("caf\u{e9}.journey");
    std::fs::write(&file, b"journey cafe {\n  name \"caf\xe9\"\n}\n").unwrap();
    let output = journey(&["check", file.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code(&output), 2);
    assert_eq!(
        stdout(&output),
        "",
        "no report when the project could not be read"
    );
    let err = stderr(&output);
    assert!(err.starts_with("error: `"), "{err}");
    assert!(
        err.ends_with("café.journey` is not valid UTF-8 (byte 27)\n"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

#[cfg(unix)]
#[test]
fn dev_zero_is_refused_at_the_size_limit() {
    // Read whole, it would fill memory: refused after 8 MiB.
    let output = journey(&["check", "/dev/zero"]);
    assert_eq!(code(&output), 2);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "error: `/dev/zero` is larger than 8 MiB, the limit for a source file\n"
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_in_a_directory_is_skipped() {
    let dir = scratch("fifo");
    std::fs::copy(
        "tests/fixtures/cli/clean/welcome.journey",
        dir.join("welcome.journey"),
    )
    .unwrap();
    std::fs::copy(
        "tests/fixtures/cli/clean/schema.journey",
        dir.join("schema.journey"),
    )
    .unwrap();
    let fifo = dir.join("waiting.journey");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo runs");
    // Nothing writes to the FIFO: opening it to read would wait forever.
    let output = journey(&["check", dir.to_str().unwrap()]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stderr(&output), "checked 2 files: no problems\n");
}

#[test]
fn a_journey_800_directories_deep_is_found() {
    let dir = scratch("deep");
    let mut deep = dir.clone();
    for _ in 0..800 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::copy(
        "tests/fixtures/cli/error/no_trigger.journey",
        deep.join("no_trigger.journey"),
    )
    .unwrap();
    let output = journey(&["check", dir.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let report = json(&output);
    let file = report["diagnostics"][0]["file"].as_str().unwrap();
    assert!(file.ends_with("/d/d/d/no_trigger.journey"), "{file}");
    assert_eq!(file.matches("/d").count(), 800, "{file}");
}

#[test]
fn escape_sequences_in_sources_reach_no_terminal_or_log() {
    let dir = scratch("escapes");
    // A clear-screen in a string, a colour before a name, a lone carriage
    // return, and a colour and a C1 control in the file name.
    let source = "journey a {\n  name \"x\u{1b}[2J\ry\"\n  trigger \u{1b}[31mred\n}\n";
    let file = dir.join("a\u{1b}[31m\u{9b}.journey");
    std::fs::write(&file, source).unwrap();
    for format in ["human", "github"] {
        let output = journey(&["check", dir.to_str().unwrap(), "--format", format]);
        assert_eq!(code(&output), 1, "--format {format}: {}", stderr(&output));
        let all = [output.stdout.as_slice(), output.stderr.as_slice()].concat();
        let text = String::from_utf8(all).unwrap();
        assert!(
            !text.contains(['\u{1b}', '\u{9b}', '\r']),
            "--format {format}: {text:?}"
        );
        assert!(
            text.contains("a\\u{1b}[31m\\u{9b}.journey"),
            "--format {format}: {text}"
        );
        if format == "human" {
            assert!(text.contains("\"x\\u{1b}[2J\\u{d}y\""), "{text}");
            assert!(text.contains("trigger \\u{1b}[31mred"), "{text}");
        }
    }
    // JSON escapes C0 controls by its own rules; DEL, C1 and bidirectional
    // characters too, so JSON on a terminal is as safe (SARIF's file names
    // are percent-encoded URIs besides).
    for format in ["json", "sarif"] {
        let output = journey(&["check", dir.to_str().unwrap(), "--format", format]);
        let out = stdout(&output);
        assert!(
            !out.contains(['\u{1b}', '\u{9b}']),
            "--format {format}: {out:?}"
        );
    }
    let output = journey(&["check", dir.to_str().unwrap(), "--format", "json"]);
    assert!(
        stdout(&output).contains("\\u009b.journey"),
        "{}",
        stdout(&output)
    );
    let name = json(&output)["diagnostics"][0]["file"].clone();
    assert!(
        name.as_str()
            .unwrap()
            .ends_with("a\u{1b}[31m\u{9b}.journey"),
        "{name}"
    );
}

#[cfg(unix)]
#[test]
fn a_full_disk_on_stdout_exits_2_and_says_so() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full opens");
    let output = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(["check", ERROR, "--format", "json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(full)
        .output()
        .expect("the journey binary runs");
    assert_eq!(code(&output), 2);
    assert_eq!(
        stderr(&output),
        "error: cannot write to stdout: no space left on device (os error 28)\n"
    );
}

#[test]
fn the_human_report_draws_100_diagnostics_and_counts_the_rest() {
    let dir = scratch("many");
    let mut source = String::from("event known { id: string }\n");
    for i in 0..20_000 {
        source.push_str(&format!(
            "journey j{i} {{\n  trigger unknown{i}\n  send email \"m\"\n}}\n"
        ));
    }
    let file = dir.join("many.journey");
    std::fs::write(&file, source).unwrap();
    let output = journey(&["check", file.to_str().unwrap()]);
    assert_eq!(code(&output), 1);
    let err = stderr(&output);
    assert_eq!(err.matches("× unknown event").count(), 100, "{err}");
    assert!(err.contains("`unknown99`"), "the first hundred, in order");
    assert!(!err.contains("`unknown100`"), "no more");
    assert!(
        err.ends_with(
            "... and 19900 more not shown (19900 errors, 0 warnings); \
             `journey check --format json` lists them all\n\n\
             checked 1 file: 20000 errors, 0 warnings\n"
        ),
        "{}",
        &err[err.len().saturating_sub(400)..]
    );

    let output = journey(&["check", file.to_str().unwrap(), "--format", "json"]);
    let report = json(&output);
    assert_eq!(report["errors"], 20_000);
    assert_eq!(report["diagnostics"].as_array().unwrap().len(), 20_000);
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["check", CLEAN, "--frobnicate"][..],
        &["check", CLEAN, "--format", "xml"],
        &["check"],
        &["explode"],
        &[],
    ] {
        let output = journey(args);
        assert_eq!(code(&output), 2, "journey {args:?}");
        assert_eq!(stdout(&output), "", "journey {args:?}");
        let err = stderr(&output);
        assert!(err.contains("--help"), "journey {args:?}: {err}");
    }
}

#[test]
fn help_and_version_exit_0() {
    let output = journey(&["--help"]);
    assert_eq!(code(&output), 0);
    assert!(stdout(&output).contains("check"));
    let output = journey(&["--version"]);
    assert_eq!(code(&output), 0);
    assert_eq!(
        stdout(&output),
        format!("journey {}\n", env!("CARGO_PKG_VERSION"))
    );
}

// ------------------------------------------------------------------ explain

#[test]
fn explain_prints_a_code_and_rejects_an_unknown_one() {
    let output = journey(&["explain", "E0404"]);
    assert_eq!(code(&output), 0);
    assert!(!stdout(&output).trim().is_empty());

    let output = journey(&["explain", "E9999"]);
    assert_eq!(code(&output), 2);
    assert_eq!(stdout(&output), "");
    assert!(stderr(&output).starts_with("error: unknown code `E9999`\nhelp: "));
}

// ------------------------------------------------------------------ colour

#[test]
fn no_escape_codes_off_a_terminal_or_under_no_color() {
    for no_color in [None, Some("1"), Some("")] {
        for args in [
            &["check", ERROR][..],
            &["check", WARNING, "--deny-warnings"],
            &["check", "tests/fixtures/cli/missing"],
            &["check", "--frobnicate"],
            &["explain", "E9999"],
        ] {
            let output = journey_with(args, no_color);
            let all = format!("{}{}", stdout(&output), stderr(&output));
            assert!(
                !all.contains('\u{1b}'),
                "NO_COLOR={no_color:?} {args:?}: {all}"
            );
        }
    }
}

/// The fields of SARIF 2.1.0 that code scanning tools require.
fn assert_sarif_shape(sarif: &serde_json::Value) {
    assert_eq!(sarif["version"], "2.1.0");
    assert!(
        sarif["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("sarif-2.1.0"))
    );
    let runs = sarif["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "journey");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    assert!(driver["informationUri"].is_string());
    for rule in driver["rules"].as_array().expect("rules") {
        let id = rule["id"].as_str().expect("rule id");
        assert!(rule["shortDescription"]["text"].is_string());
        assert_eq!(rule["helpUri"], format!("docs/errors/{id}.md"));
    }
    assert!(runs[0]["results"].is_array());
}

#[test]
fn compile_writes_a_loadable_envelope_and_refuses_errors() {
    let out = scratch("compile").join("program.json");
    let output = journey(&["compile", "journeys", "-o", out.to_str().unwrap()]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = std::fs::read_to_string(&out).unwrap();
    let program = journey::compile::load(&text).expect("the envelope loads back");
    assert!(program.journey_id("abandoned_cart").is_some());
    let envelope: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(envelope["format_version"], 3);

    let output = journey(&[
        "compile",
        "tests/fixtures/cli/error",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("error"), "{}", stderr(&output));
}

#[test]
fn graph_draws_a_journey_and_names_unknown_ones() {
    let output = journey(&["graph", "journeys", "--journey", "abandoned_cart"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("digraph"),
        "{}",
        stdout(&output)
    );
    let output = journey(&[
        "graph",
        "journeys",
        "--journey",
        "abandoned_cart",
        "--format",
        "mermaid",
    ]);
    assert_eq!(code(&output), 0);
    assert!(
        stdout(&output).starts_with("flowchart"),
        "{}",
        stdout(&output)
    );

    let output = journey(&["graph", "journeys", "--journey", "abandoned_kart"]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("did you mean `abandoned_cart`?"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn check_summary_prints_the_limits_of_every_journey() {
    let output = journey(&["check", "journeys", "--summary"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stdout(&output).contains("abandoned_cart"),
        "{}",
        stdout(&output)
    );
    let output = journey(&["check", "journeys", "--summary", "--format", "json"]);
    assert_eq!(code(&output), 2);
}

#[test]
fn simulate_reports_malformed_lines_and_loses_nothing_else() {
    let events = scratch("simulate").join("events.ndjson");
    let good = [
        r#"{"type":"identify","userId":"u1","traits":{"email":"ana@example.com","timezone":"Europe/Paris","country":"FR","lifetime_value":10,"consent":{}},"timestamp":"2026-03-02T09:00:00Z"}"#,
        r#"{"type":"track","userId":"u1","event":"cart_abandoned","properties":{"cart_id":"c1","total":80,"items":["sku-1"]},"timestamp":"2026-03-02T10:00:00Z","messageId":"e-1"}"#,
    ];
    let text = format!(
        "{}\n{{not json\n{}\n{{\"type\":\"track\",\"userId\":\"u2\"}}\n",
        good[0], good[1]
    );
    std::fs::write(&events, text).unwrap();
    let output = journey(&["simulate", "journeys", "--events", events.to_str().unwrap()]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("events.ndjson:2:"), "{err}");
    assert!(err.contains("events.ndjson:4:"), "{err}");
    assert!(err.contains("2 malformed"), "{err}");
    let actions: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each action is one JSON line"))
        .collect();
    assert!(
        actions
            .iter()
            .any(|a| a["kind"] == "send" && a["template"] == "cart_reminder"),
        "the good lines still drive the journey: {actions:?}"
    );

    let missing = journey(&["simulate", "journeys", "--events", "no/such/file.ndjson"]);
    assert_eq!(code(&missing), 2);
}

#[test]
fn simulate_skips_a_line_longer_than_the_limit_without_holding_it() {
    // Like `--events /dev/zero`, but ending: five megabytes with no newline,
    // then a good line.
    let events = scratch("long-line").join("events.ndjson");
    let mut bytes = vec![0u8; 5 << 20];
    bytes.extend_from_slice(
        b"\n{\"type\":\"identify\",\"userId\":\"u1\",\"timestamp\":\"2026-03-02T09:00:00Z\"}\n",
    );
    std::fs::write(&events, bytes).unwrap();
    let output = journey(&[
        "simulate",
        "journeys",
        "--events",
        events.to_str().unwrap(),
        "--max-line-bytes",
        "1024",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("events.ndjson:1: line longer than 1024 bytes\n"),
        "{err}"
    );
    assert!(err.contains("1 malformed"), "{err}");
    assert!(!err.contains("events.ndjson:2:"), "{err}");
}

#[test]
fn simulate_is_byte_for_byte_reproducible_and_writes_a_json_report() {
    let report = scratch("report").join("report.json");
    let args = [
        "simulate",
        "journeys",
        "--events",
        "journeys/events.ndjson",
        "--report",
        report.to_str().unwrap(),
    ];
    let first = journey(&args);
    let second = journey(&args);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert!(!first.stdout.is_empty());
    assert_eq!(first.stdout, second.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let cart = report["journeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["journey"] == "abandoned_cart")
        .unwrap();
    assert!(cart["entered"].as_u64().unwrap() > 0);
    // The window forgot nothing early, and the text report says nothing of it.
    assert_eq!(report["events"]["dedup_evicted_early"], 0);
    assert!(!stderr(&first).contains("forgotten"), "{}", stderr(&first));
}

#[test]
fn simulate_reports_a_template_that_failed_to_render_with_its_error() {
    let args = [
        "simulate",
        "tests/fixtures/runtime/render_failed.journey",
        "--events",
        "tests/fixtures/runtime/render_failed.ndjson",
    ];
    let output = journey(&args);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("capped 1, render_failed 1)"), "{err}");
    let line =
        "template total failed to render 1 times (step at line 22): first `body: invalid operation";
    assert!(err.contains(line), "{err}");

    let report = scratch("render-failed").join("report.json");
    let mut with_report = args.to_vec();
    with_report.extend(["--report", report.to_str().unwrap()]);
    assert_eq!(code(&journey(&with_report)), 0);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let order = &report["journeys"][0];
    assert_eq!(order["suppressed"]["render_failed"], 1);
    assert_eq!(order["render_failures"][0]["template"], "total");
    assert_eq!(order["render_failures"][0]["count"], 1);
    assert_eq!(report["events"]["render_errors"], 1);
}

// ------------------------------------------------------------------ the report

const REPORT: &str = "tests/fixtures/cli/report";

/// `simulate` of the report fixture up to the night it stops in, with
/// `--report` when `report` is given.
fn simulate_report_fixture(report: Option<&Path>) -> Output {
    let mut args = vec![
        "simulate",
        REPORT,
        "--events",
        "tests/fixtures/cli/report/events.ndjson",
        "--until",
        "2026-03-03T07:00:00Z",
    ];
    let path;
    if let Some(report) = report {
        path = report.to_str().unwrap().to_string();
        args.extend(["--report", &path]);
    }
    journey(&args)
}

/// The human report of a run that has every fact the report can add: an
/// A/B split, refused entries, sends still waiting or ended before being
/// decided, instances still active, a journey no one entered, events out
/// of order, and the attribution table.
#[test]
fn the_human_report_of_a_run_says_what_happened_and_why() {
    let output = simulate_report_fixture(None);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = stderr(&output);
    insta::assert_snapshot!("simulate_human_report", report);
    // The facts a reader relies on, whatever the layout.
    assert!(
        report.contains("journeys with no entry: dormant"),
        "{report}"
    );
    assert!(!report.contains("journey dormant"), "{report}");
    assert!(
        report.contains(
            "2 events out of time order, up to 3h behind the latest before them (lines 13, 19)"
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "jq -c -s 'sort_by(.timestamp)[]' tests/fixtures/cli/report/events.ndjson > sorted.ndjson"
        ),
        "{report}"
    );
    assert!(report.contains("\nattribution: 3 conversions"), "{report}");
}

#[test]
fn the_json_report_has_the_same_facts() {
    let path = scratch("report-facts").join("report.json");
    let output = simulate_report_fixture(Some(&path));
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(report["events"]["late"], 2);
    assert_eq!(report["events"]["late_lines"], serde_json::json!([13, 19]));
    assert_eq!(report["events"]["late_max_behind_ms"], 3 * 3_600_000);
    let journey = |name: &str| {
        report["journeys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["journey"] == name)
            .unwrap_or_else(|| panic!("no journey {name}"))
            .clone()
    };
    let test = journey("subject_test");
    assert_eq!(
        test["not_admitted"],
        serde_json::json!({"already_active": 1, "audience": 1, "null_key": 0, "reentry": 0})
    );
    let split = test["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["arms"].is_array())
        .expect("the split step has its arms");
    let arms = split["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 2);
    let sum = |field: &str| arms.iter().map(|a| a[field].as_u64().unwrap()).sum::<u64>();
    // Four entered the test; each got its arm's email and the follow-up;
    // u1 and u3 ordered.
    assert_eq!((sum("entered"), sum("sent"), sum("converted")), (4, 8, 2));
    for arm in arms {
        let (entered, converted) = (
            arm["entered"].as_f64().unwrap(),
            arm["converted"].as_f64().unwrap(),
        );
        if entered > 0.0 {
            assert_eq!(
                arm["conversion_rate"].as_f64().unwrap(),
                converted / entered
            );
        }
    }
    let reminder = journey("reminder");
    assert_eq!(reminder["not_admitted"]["reentry"], 1);
    assert_eq!(reminder["active"], 1);
    let send = &reminder["steps"][0];
    assert_eq!(send["arrived"], 3);
    assert_eq!(
        send["undecided"],
        serde_json::json!({"waiting": 1, "exited": 1})
    );
    let attribution = &report["attribution"];
    assert_eq!(attribution["conversions"], 3);
    assert_eq!(attribution["unattributed"], 0);
    assert_eq!(attribution["value"], 115.0);
    let touches = attribution["touches"].as_array().unwrap();
    let credit: f64 = touches
        .iter()
        .map(|t| t["credit"]["linear"].as_f64().unwrap())
        .sum();
    assert!((credit - 3.0).abs() < 1e-9, "{touches:?}");
    assert!(
        touches.windows(2).all(|w| (
            &w[0]["journey"].as_str(),
            &w[0]["channel"].as_str(),
            &w[0]["template"].as_str()
        ) < (
            &w[1]["journey"].as_str(),
            &w[1]["channel"].as_str(),
            &w[1]["template"].as_str()
        )),
        "sorted by journey, channel, template: {touches:?}"
    );
}

#[test]
fn simulate_runs_only_the_journeys_named() {
    let path = scratch("only").join("report.json");
    let output = journey(&[
        "simulate",
        REPORT,
        "--events",
        "tests/fixtures/cli/report/events.ndjson",
        "--journey",
        "reminder",
        "--report",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let names: Vec<&str> = report["journeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["journey"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["reminder"]);
    let actions = stdout(&output);
    assert!(actions.contains("\"journey\":\"reminder\""), "{actions}");
    assert!(!actions.contains("subject_test"), "{actions}");
}

#[test]
fn simulate_refuses_a_journey_the_project_lacks_and_lists_its_journeys() {
    let output = journey(&[
        "simulate",
        REPORT,
        "--events",
        "tests/fixtures/cli/report/events.ndjson",
        "--journey",
        "remindr",
    ]);
    assert_eq!(code(&output), 2);
    let err = stderr(&output);
    assert!(
        err.contains("`--journey remindr`: the project has no such journey"),
        "{err}"
    );
    assert!(
        err.contains("its journeys are `dormant`, `reminder`, `subject_test`"),
        "{err}"
    );
    assert!(stdout(&output).is_empty());
}

#[test]
fn check_summary_weighs_each_policy_cap_against_all_journeys() {
    let dir = scratch("caps");
    std::fs::write(
        dir.join("caps.journey"),
        "policy { cap email 2 per 7d  cap sms 1 per 1d }\n\
         journey welcome {\n  trigger signed_up\n  send email welcome_email\n  wait 2d\n  send email tips_email\n}\n\
         journey cart {\n  trigger cart_abandoned\n  reentry after 3d\n  send email cart_reminder\n  send email receipt transactional\n}\n\
         journey alerts {\n  trigger price_drop\n  reentry always\n  send sms price_alert\n}\n",
    )
    .unwrap();
    let output = journey(&["check", dir.to_str().unwrap(), "--summary"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let out = stdout(&output);
    // cart starts at most 3 times in 7 days (its receipt is transactional
    // and not counted), welcome sends twice; alerts can start again at once.
    assert!(
        out.contains("cap email 2 per 7d  5 (3 over)                cart 3, welcome 2"),
        "{out}"
    );
    assert!(out.contains("cap sms 1 per 1d    no bound (over)"), "{out}");
    assert!(out.contains("alerts no bound"), "{out}");
}
