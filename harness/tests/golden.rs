//! Golden output: munged transcripts and relay log compared with
//! `<scenario>.golden`; a second run is byte-identical; a changed reply fails.

use relaylab::golden;
use relaylab::runner::{run_lab, RunOptions};
use relaylab::scenario::load_file;
use reports::Verdict;
use std::path::PathBuf;

fn lib(p: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios")).join(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_munge_to_the_same_bytes() {
    let lab = load_file(&lib("queue-deep/bounce-on-permanent-failure.yaml")).unwrap();
    let parts = lab.scenario.golden_parts().to_vec();
    assert!(!parts.is_empty());
    let a = run_lab(&lab, &RunOptions::default()).await;
    let b = run_lab(&lab, &RunOptions::default()).await;
    assert_eq!(a.verdict, Verdict::Passed, "{}", a.render_failures());
    let (ga, gb) = (
        golden::render(&lab.scenario.name, &parts, &a.observations),
        golden::render(&lab.scenario.name, &parts, &b.observations),
    );
    pretty_assertions::assert_eq!(ga, gb);
    assert!(ga.contains("QID1") && !ga.contains("Sendmail 8.13.4/8.13.4; Sat"), "{ga}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_reply_text_fails_with_a_diff_and_update_writes() {
    let dir = std::env::temp_dir().join(format!("relaylab-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = dir.join("denied.yaml");
    std::fs::copy(lib("open-relay/relaying-denied.yaml"), &yaml).unwrap();
    let golden_file = dir.join("denied.golden");
    let _ = std::fs::remove_file(&golden_file);
    let lab = load_file(&yaml).unwrap();

    // Missing: the lab fails and says how to create it.
    let r = run_lab(&lab, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Failed);
    assert!(r.render_failures().contains("relaylab run --update"), "{}", r.render_failures());

    // --update writes it; then the lab passes.
    let r = run_lab(&lab, &RunOptions { update_golden: true, ..Default::default() }).await;
    assert_eq!(r.verdict, Verdict::Passed, "{}", r.render_failures());
    assert_eq!(r.golden_written.as_deref(), Some(golden_file.to_str().unwrap()));
    assert_eq!(run_lab(&lab, &RunOptions::default()).await.verdict, Verdict::Passed);

    // A golden file with another reply text: the lab fails with a unified diff.
    let text = std::fs::read_to_string(&golden_file).unwrap();
    assert!(text.contains("Relaying denied"));
    std::fs::write(&golden_file, text.replacen("Relaying denied", "Relaying refused", 1)).unwrap();
    let r = run_lab(&lab, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Failed);
    let f = r.render_failures();
    assert!(f.contains("-S: 550 5.7.1 <victim@elsewhere.example>... Relaying refused"), "{f}");
    assert!(f.contains("+S: 550 5.7.1 <victim@elsewhere.example>... Relaying denied"), "{f}");
    assert!(f.contains("@@ -"), "{f}");
    std::fs::remove_dir_all(&dir).ok();
}
