//! Report writers for relaylab runs.
//!
//! The runner never prints. It produces a [`RunReport`]: one [`LabReport`] per
//! scenario, each with its verdict, the expectations it missed (expected versus
//! actual) and everything the lab observed (SMTP transcripts, delivered
//! messages, relay log lines, DNS queries). Each writer here turns that one
//! model into one format, so adding a format never touches the runner
//! (nextest's reporter/aggregator split).
//!
//! # Layout
//! - [`model`]: the report model, the only contract with the runner.
//! - [`console`]: the human summary printed at the end of `relaylab run`.
//! - [`junit`]: JUnit XML for CI systems (quick-junit).
//! - [`json`]: the whole model as JSON, for scripts and later tools.
//! - [`html`]: one self-contained HTML file: sessions as sequence diagrams, headers, logs, DNS.
//! - [`matrix`]: the conformance matrix of `relaylab matrix` (scenario × relay) as `matrix.md` and `matrix.json`.
//!
//! # Example
//! ```
//! use reports::{RunReport, LabReport, Verdict};
//! let mut run = RunReport::new();
//! run.labs.push(LabReport::new("open-relay/denied", "scenarios/open-relay/denied.yaml"));
//! run.labs[0].verdict = Verdict::Passed;
//! assert!(reports::console::summary(&run).contains("1 passed, 0 failed"));
//! ```

pub mod console;
pub mod html;
mod html_queue;
pub mod json;
pub mod junit;
pub mod matrix;
pub mod model;

pub use model::{
    DeliveredMessage, Difference, DifferenceKind, DnsQuery, DsnSent, Failure, LabReport, Observations, QueueAttempt,
    QueueDepth, QueueObservations, QueuedMessageHistory, RunReport, Verdict,
};

use std::path::{Path, PathBuf};

/// Why writing a report failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The report folder or a file in it could not be written.
    #[error("cannot write report {path}: {source} (check that the folder is writable, or pass --report-dir)")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Serialising failed (a bug: the model is always serialisable).
    #[error("cannot serialise report: {0}")]
    Serialise(String),
}

/// Write `junit.xml`, `report.json` and `report.html` into `dir`, creating it. Returns the paths written.
pub fn write_all(run: &RunReport, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Write { path: dir.to_path_buf(), source })?;
    let junit_path = dir.join("junit.xml");
    junit::write(run, &junit_path)?;
    let json_path = dir.join("report.json");
    json::write(run, &json_path)?;
    let html_path = dir.join("report.html");
    html::write(run, &html_path)?;
    Ok(vec![junit_path, json_path, html_path])
}
