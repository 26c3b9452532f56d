//! The human summary printed at the end of `relaylab run`.

use crate::RunReport;

/// One line per lab, failure details for the ones that did not pass, and a
/// closing count line (`N passed, N failed, N skipped`) that CI log readers
/// recognise.
pub fn summary(run: &RunReport) -> String {
    let mut out = String::new();
    for lab in &run.labs {
        out.push_str(&format!("{:5} {} ({} ms)\n", lab.verdict.word(), lab.name, lab.duration_ms));
        if lab.has_details() {
            out.push_str(&format!("      {}\n", lab.file));
            out.push_str(&lab.render_failures());
        }
    }
    let (p, f, e, s) = run.counts();
    out.push_str(&format!("\nrelaylab: {} passed, {} failed, {} skipped", p, f + e, s));
    if e > 0 {
        out.push_str(&format!(" ({e} could not run)"));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Failure, LabReport, Verdict};

    #[test]
    fn failures_show_expected_and_actual() {
        let mut run = RunReport::new();
        let mut lab = LabReport::new("open-relay/denied", "scenarios/open-relay/denied.yaml");
        lab.verdict = Verdict::Failed;
        lab.failures.push(Failure {
            what: "steps[0]: rcpt[0] reply".into(),
            expected: "550 5.7.1 /Relaying denied/".into(),
            actual: "250 2.1.5 <x@y>... Recipient ok".into(),
            context: Some("C: RCPT TO:<x@y>\nS: 250 2.1.5 <x@y>... Recipient ok".into()),
        });
        run.labs.push(lab);
        let s = summary(&run);
        assert!(s.contains("FAIL  open-relay/denied"), "{s}");
        assert!(s.contains("expected: 550 5.7.1 /Relaying denied/"), "{s}");
        assert!(s.contains("actual:   250 2.1.5 <x@y>... Recipient ok"), "{s}");
        assert!(s.contains("| C: RCPT TO:<x@y>"), "{s}");
        assert!(s.ends_with("relaylab: 0 passed, 1 failed, 0 skipped\n"), "{s}");
        assert!(!run.all_passed());
    }
}
