//! The JUnit XML report of `journey test --junit FILE`, written by the
//! `quick-junit` crate: one `<testsuite>` per test file, one `<testcase>`
//! per test, a `<failure>` holding the timeline diff for each that failed.
//! No times or host names: the same tests give the same file.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

/// One test's result, as the report needs it.
pub struct CaseResult {
    pub name: String,
    /// `None`: passed. Otherwise the failure's one-line message and its
    /// timeline diff.
    pub failure: Option<(String, String)>,
}

/// The report of every file's tests, in the order given.
pub fn report(files: &[(String, Vec<CaseResult>)]) -> Result<String, String> {
    let mut report = Report::new("journey test");
    for (file, cases) in files {
        let mut suite = TestSuite::new(file.as_str());
        for case in cases {
            let status = match &case.failure {
                None => TestCaseStatus::success(),
                Some((message, diff)) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(message.as_str());
                    status.set_description(diff.as_str());
                    status
                }
            };
            let mut test_case = TestCase::new(case.name.as_str(), status);
            test_case.set_classname(file.as_str());
            suite.add_test_case(test_case);
        }
        report.add_test_suite(suite);
    }
    report.to_string().map_err(|e| e.to_string())
}
