//! `journey test` end to end on the projects under
//! `tests/fixtures/testing/`: passing and failing scenarios (the failure
//! output snapshotted), the diagnostics of a test that names what the
//! project lacks, the JUnit XML read back, and the example journeys' own
//! tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quick_xml::events::Event;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn journey(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the journey binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("journey-tests-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

#[test]
fn passing_scenarios_exit_0() {
    let output = journey(&["test", "tests/fixtures/testing/pass"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert_eq!(
        stdout(&output),
        "ok      tests/fixtures/testing/pass/cart.journey-test: a reminder an hour later\n\
         ok      tests/fixtures/testing/pass/cart.journey-test: an order stops the reminder\n\
         \n2 tests: 2 passed, 0 failed\n"
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn a_test_file_alone_runs_against_the_journeys_beside_it() {
    let output = journey(&["test", "tests/fixtures/testing/pass/cart.journey-test"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).ends_with("2 tests: 2 passed, 0 failed\n"));
}

#[test]
fn failing_scenarios_print_a_timeline_diff_and_exit_1() {
    let output = journey(&["test", "tests/fixtures/testing/fail"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let out = stdout(&output);
    insta::assert_snapshot!(out);
    assert!(out.ends_with("3 tests: 1 passed, 2 failed\n"), "{out}");
}

#[test]
fn a_test_naming_what_the_project_lacks_is_reported_with_places() {
    let output = journey(&["test", "tests/fixtures/testing/errors"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "", "nothing runs");
    let err = stderr(&output);
    insta::assert_snapshot!(err);
    for code in ["E0206", "E0207", "E0204", "E0205", "E0202"] {
        assert!(err.contains(code), "{code}: {err}");
    }
}

#[test]
fn a_syntax_error_in_a_test_file_is_a_diagnostic() {
    let dir = scratch("syntax");
    std::fs::copy(
        root().join("tests/fixtures/testing/pass/project.journey"),
        dir.join("project.journey"),
    )
    .unwrap();
    std::fs::write(
        dir.join("bad.journey-test"),
        "test \"x\" {\n  at 1h ana cart_abandoned\n  expect ana exits cart because bored\n}\n",
    )
    .unwrap();
    let output = journey(&["test", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("E0101"), "{err}");
    assert!(err.contains("bad.journey-test:2:6"), "{err}");
    assert!(
        err.contains("expected a time (`+1h` or a timestamp), found `1h`"),
        "{err}"
    );

    std::fs::write(
        dir.join("bad.journey-test"),
        "test \"x\" {\n  at +1x ana cart_abandoned\n  expect ana exits cart because bored\n}\n",
    )
    .unwrap();
    let err = stderr(&journey(&["test", dir.to_str().unwrap()]));
    assert!(err.contains("E0102"), "{err}");
    assert!(err.contains("the reasons are `completed`"), "{err}");
}

#[test]
fn no_test_file_exits_2() {
    let output = journey(&["test", "tests/fixtures/cli/clean"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no `.journey-test` file"),
        "{}",
        stderr(&output)
    );
}

/// An element's name and its attributes.
type Element = (String, Vec<(String, String)>);

/// `(element, attributes)` of every start tag, in document order, and the
/// text inside each `<failure>`.
fn xml_elements(xml: &str) -> (Vec<Element>, Vec<String>) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut elements = Vec::new();
    let mut failures = Vec::new();
    let mut in_failure = false;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                in_failure = name == "failure";
                if in_failure {
                    failures.push(String::new());
                }
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.expect("an attribute");
                        (
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            a.unescape_value().expect("text").into_owned(),
                        )
                    })
                    .collect();
                elements.push((name, attrs));
            }
            Event::Text(t) if in_failure => {
                let text = t.decode().expect("UTF-8");
                let text = quick_xml::escape::unescape(&text).expect("text");
                failures.last_mut().unwrap().push_str(&text);
            }
            Event::GeneralRef(r) if in_failure => {
                let name = r.decode().expect("UTF-8");
                let text = match r.resolve_char_ref().expect("a character reference") {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_xml_entity(&name)
                        .expect("an XML entity")
                        .to_owned(),
                };
                failures.last_mut().unwrap().push_str(&text);
            }
            Event::End(_) => in_failure = false,
            Event::Eof => break,
            _ => {}
        }
    }
    (elements, failures)
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> &'a str {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

#[test]
fn junit_xml_has_a_suite_per_file_and_a_case_per_test() {
    let dir = scratch("junit");
    let file = dir.join("report.xml");
    let output = journey(&[
        "test",
        "tests/fixtures/testing/fail",
        "--junit",
        file.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let xml = std::fs::read_to_string(&file).expect("the report is written");
    let (elements, failures) = xml_elements(&xml);
    let names: Vec<&str> = elements.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "testsuites",
            "testsuite",
            "testcase",
            "failure",
            "testcase",
            "failure",
            "testcase",
        ]
    );
    let (_, top) = &elements[0];
    assert_eq!(attr(top, "tests"), "3");
    assert_eq!(attr(top, "failures"), "2");
    let (_, fail_suite) = &elements[1];
    assert_eq!(
        attr(fail_suite, "name"),
        "tests/fixtures/testing/fail/cart.journey-test"
    );
    assert_eq!(attr(fail_suite, "tests"), "3");
    assert_eq!(attr(fail_suite, "failures"), "2");
    let (_, first) = &elements[2];
    assert_eq!(attr(first, "name"), "the reminder goes out at once");
    assert_eq!(
        attr(first, "classname"),
        "tests/fixtures/testing/fail/cart.journey-test"
    );
    let (_, failure) = &elements[3];
    assert_eq!(
        attr(failure, "message"),
        "tests/fixtures/testing/fail/cart.journey-test:1: the timeline differs"
    );
    assert_eq!(failures.len(), 2);
    assert!(
        failures[0].contains("- +0s         send email reminder to ana\n"),
        "{}",
        failures[0]
    );
    assert!(
        failures[1].contains("- (any time)  bo enters cart"),
        "{}",
        failures[1]
    );
    // The same tests write the same file.
    let again = dir.join("again.xml");
    journey(&[
        "test",
        "tests/fixtures/testing/fail",
        "--junit",
        again.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&again).unwrap(), xml);
}

#[test]
fn every_example_journey_has_tests_and_they_pass() {
    let dir = root().join("journeys");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "journey") {
            let text = std::fs::read_to_string(&path).unwrap();
            let has_journey = text.lines().any(|l| l.starts_with("journey "));
            if has_journey && !path.with_extension("journey-test").exists() {
                missing.push(path.display().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "journeys without tests: {missing:?}");
    let output = journey(&["test", "journeys"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
}
