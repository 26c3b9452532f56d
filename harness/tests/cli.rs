//! The `relaylab` command over fixture labs whose verdicts are known:
//! pass, fail (a changed expectation), invalid (file:line:column), budget.

use std::path::Path;
use std::process::{Command, Output};

fn relaylab(args: &[&str], report_dir: &Path) -> Output {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relaylab"));
    cmd.current_dir(&fixtures);
    cmd.args(args);
    if args.first() == Some(&"run") {
        cmd.arg("--report-dir").arg(report_dir);
    }
    cmd.output().expect("relaylab runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("relaylab-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn passing_lab_exits_zero_and_writes_reports() {
    let dir = tmp("pass");
    let o = relaylab(&["run", "pass"], &dir);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("PASS  fixture/pass"), "{out}");
    assert!(out.contains("relaylab: 1 passed, 0 failed, 0 skipped"), "{out}");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit.xml written");
    assert!(junit.contains(r#"name="fixture/pass""#), "{junit}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report.json written")).unwrap();
    assert_eq!(json["labs"][0]["verdict"], "passed");
    assert!(json["labs"][0]["observations"]["relay_log"].as_array().is_some_and(|l| !l.is_empty()));
}

#[test]
fn changed_reply_expectation_fails_showing_expected_and_actual() {
    let dir = tmp("fail");
    let o = relaylab(&["run", "fail/wrong-reply-code.yaml"], &dir);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL  fixture/fail"), "{out}");
    assert!(out.contains("rcpt[0] reply"), "{out}");
    assert!(out.contains("expected: 550 5.7.1 /Relaying denied/"), "{out}");
    assert!(out.contains("actual:   250 2.1.5 <b@example.com>... Recipient ok"), "{out}");
    // The transcript of the session is shown with the failure.
    assert!(out.contains("| C: RCPT TO:<b@example.com>"), "{out}");
}

#[test]
fn changed_header_expectation_fails_showing_the_header() {
    let dir = tmp("fail-header");
    let o = relaylab(&["run", "fail/wrong-header.yaml"], &dir);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("expect.delivered[0].headers[0].Received"), "{out}");
    assert!(out.contains(r"expected: /^from liar\.example\.org /"), "{out}");
    assert!(out.contains("actual:   Received: from honest.example.org (["), "{out}");
}

#[test]
fn unknown_key_is_reported_with_file_line_column() {
    let dir = tmp("invalid");
    let o = relaylab(&["check", "invalid/unknown-key.yaml"], &dir);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("invalid/unknown-key.yaml:12:7: steps[0].expect: unknown field `rcptt`"), "{out}");
    // `run` refuses to start when a scenario is invalid.
    let o = relaylab(&["run", "invalid"], &dir);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nothing was run"), "{}", text(&o));
}

#[test]
fn yaml_syntax_error_is_reported_with_file_line_column() {
    let dir = tmp("yaml");
    let o = relaylab(&["check", "invalid/yaml-error.yaml"], &dir);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let re = regex::Regex::new(r"invalid/yaml-error\.yaml:\d+:\d+: ").unwrap();
    assert!(re.is_match(&out), "{out}");
}

#[test]
fn lab_over_budget_fails_instead_of_hanging() {
    let dir = tmp("budget");
    let started = std::time::Instant::now();
    let o = relaylab(&["run", "budget"], &dir);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("budget"), "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{out}");
}

#[test]
fn nothing_selected_is_not_a_pass() {
    let dir = tmp("none");
    let o = relaylab(&["run", "pass", "--filter", "no-such-lab"], &dir);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
}

#[test]
fn list_and_tags() {
    let dir = tmp("list");
    let o = relaylab(&["list", "pass", "fail"], &dir);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("fixture/pass"), "{out}");
    let o = relaylab(&["list", "--tags", "pass", "fail"], &dir);
    let out = text(&o);
    assert!(out.lines().any(|l| l.starts_with("fixture") && l.trim_end().ends_with('3')), "{out}");
}
