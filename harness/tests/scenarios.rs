//! Every scenario in the library is a test case: `cargo test` runs the whole
//! library against the builtin relay, one rstest case per file.

use relaylab::runner::{run_lab, RunOptions};
use relaylab::scenario::load_file;
use reports::Verdict;
use rstest::rstest;
use std::path::PathBuf;

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario(#[files("../scenarios/**/*.yaml")] path: PathBuf) {
    let lab = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let report = run_lab(&lab, &RunOptions::default()).await;
    assert_eq!(report.verdict, Verdict::Passed, "{}\n{}", report.name, report.render_failures());
}
