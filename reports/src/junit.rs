//! JUnit XML, the format CI systems read.
//!
//! One test suite per run (`relaylab`), one test case per lab; a missed
//! expectation is a `failure`, a lab that could not run is an `error`, a
//! skipped lab is `skipped` with its reason — never a pass.

use crate::{ReportError, RunReport, Verdict};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::path::Path;
use std::time::Duration;

/// Build the JUnit document.
pub fn to_string(run: &RunReport) -> Result<String, ReportError> {
    let mut report = Report::new("relaylab");
    let mut suite = TestSuite::new("relaylab");
    for lab in &run.labs {
        let status = match lab.verdict {
            Verdict::Passed => TestCaseStatus::success(),
            Verdict::Failed | Verdict::Error => {
                let kind = if lab.verdict == Verdict::Failed { NonSuccessKind::Failure } else { NonSuccessKind::Error };
                let mut s = TestCaseStatus::non_success(kind);
                let first = lab
                    .failures
                    .first()
                    .map(|f| format!("{}: expected {}, got {}", f.what, f.expected, f.actual))
                    .or_else(|| lab.error.clone())
                    .or_else(|| lab.differences.first().map(|d| format!("known bug: {} — {}", d.failure.what, d.why)))
                    .unwrap_or_default();
                s.set_message(first);
                s.set_description(lab.render_failures());
                s
            }
            Verdict::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(lab.error.clone().unwrap_or_else(|| "skipped".into()));
                s
            }
        };
        let mut case = TestCase::new(lab.name.clone(), status);
        case.set_classname(format!("relaylab.{}", lab.relay));
        case.set_time(Duration::from_millis(lab.duration_ms));
        if lab.verdict != Verdict::Passed {
            let sessions: Vec<String> = lab.observations.sessions.iter().map(|t| t.render()).collect();
            case.set_system_out(sessions.join("\n"));
        } else if lab.has_details() {
            // A pass on a real MTA: its wording and documented differences.
            case.set_system_out(lab.render_failures());
        }
        suite.add_test_case(case);
    }
    suite.set_time(Duration::from_millis(run.duration_ms));
    report.add_test_suite(suite);
    report.to_string().map_err(|e| ReportError::Serialise(e.to_string()))
}

/// Write the JUnit document to `path`.
pub fn write(run: &RunReport, path: &Path) -> Result<(), ReportError> {
    std::fs::write(path, to_string(run)?).map_err(|source| ReportError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Failure, LabReport};

    #[test]
    fn failed_and_skipped_labs_are_not_successes() {
        let mut run = RunReport::new();
        let mut ok = LabReport::new("a", "a.yaml");
        ok.verdict = Verdict::Passed;
        let mut bad = LabReport::new("b", "b.yaml");
        bad.verdict = Verdict::Failed;
        bad.failures.push(Failure {
            what: "rcpt".into(),
            expected: "550".into(),
            actual: "250 ok".into(),
            context: None,
        });
        let mut skip = LabReport::new("c", "c.yaml");
        skip.verdict = Verdict::Skipped;
        skip.error = Some("needs root".into());
        run.labs = vec![ok, bad, skip];
        let xml = to_string(&run).unwrap();
        assert!(xml.contains(r#"tests="3""#), "{xml}");
        assert!(xml.contains(r#"failures="1""#), "{xml}");
        assert!(xml.contains(r#"skipped="1""#), "{xml}");
        assert!(xml.contains("rcpt: expected 550, got 250 ok"), "{xml}");
        assert!(xml.contains("needs root"), "{xml}");
    }
}
