//! The whole report model as JSON.

use crate::{ReportError, RunReport};
use std::path::Path;

/// Serialise the run.
pub fn to_string(run: &RunReport) -> Result<String, ReportError> {
    serde_json::to_string_pretty(run).map_err(|e| ReportError::Serialise(e.to_string()))
}

/// Write the run to `path`.
pub fn write(run: &RunReport, path: &Path) -> Result<(), ReportError> {
    std::fs::write(path, to_string(run)?).map_err(|source| ReportError::Write { path: path.to_path_buf(), source })
}
