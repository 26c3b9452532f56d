//! The conformance matrix of `relaylab matrix`: scenario × relay, each cell
//! `pass`, `fail` with the first differing observation, `not applicable`
//! with the reason, `skipped` with the reason (the relay cannot run here:
//! no root, MTA not installed) or `error` (the lab could not be set up).
//! Written as `matrix.md` and `matrix.json`, and as a console table.

use crate::{DifferenceKind, LabReport, ReportError, Verdict};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The state of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    /// Every expectation was met as written.
    Pass,
    /// The behaviour was met; some replies are worded differently (same class).
    Wording,
    /// Misses that the scenario documents as legitimate differences of this MTA.
    Differs,
    /// An expectation was missed, unexplained.
    Fail,
    /// Misses that the scenario documents as a known bug.
    Bug,
    /// The scenario does not apply to this relay.
    NotApplicable,
    /// The relay cannot run on this machine.
    Skipped,
    /// The lab could not be set up.
    Error,
}

impl CellStatus {
    /// The word shown in tables.
    pub fn word(self) -> &'static str {
        match self {
            CellStatus::Pass => "pass",
            CellStatus::Wording => "wording",
            CellStatus::Differs => "differs",
            CellStatus::Fail => "fail",
            CellStatus::Bug => "bug",
            CellStatus::NotApplicable => "n/a",
            CellStatus::Skipped => "skipped",
            CellStatus::Error => "error",
        }
    }
}

/// What each cell word means, for the tables' readers.
pub const LEGEND: &[(&str, &str)] = &[
    ("pass", "every expectation met as written"),
    ("wording", "same behaviour (reply classes, deliveries, events); some replies worded differently"),
    ("differs", "differs from the builtin relay where the scenario documents a legitimate MTA difference"),
    ("fail", "an expectation missed, not explained: a bug to look at"),
    ("bug", "misses the scenario documents as a known bug"),
    ("n/a", "the scenario does not apply to this relay (reason given)"),
    ("skipped", "the relay cannot run on this machine (no root, MTA not installed)"),
    ("error", "the lab could not be set up"),
];

/// One scenario on one relay.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The relay (`builtin`, `postfix`, ...).
    pub relay: String,
    /// Its state.
    pub status: CellStatus,
    /// Fail: the first differing observation; wording, differs, bug: the
    /// first difference; n/a, skipped, error: the reason.
    pub detail: Option<String>,
    /// Every documented difference in this cell: `kind: expectation — why`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<String>,
}

/// Reports that mean "not applicable" carry this prefix in their `error`.
pub const NOT_APPLICABLE_PREFIX: &str = "not applicable: ";

fn miss(f: &crate::Failure) -> String {
    format!("{}: expected {}, got {}", f.what, f.expected, f.actual)
}

impl Cell {
    /// The cell for one lab report on `relay`.
    pub fn from_report(relay: &str, r: &LabReport) -> Cell {
        let differences: Vec<String> = r
            .differences
            .iter()
            .map(|d| {
                let kind = match d.kind {
                    DifferenceKind::Legitimate => "legitimate",
                    DifferenceKind::Bug => "bug",
                };
                format!("{kind}: {} — {}", d.failure.what, d.why)
            })
            .collect();
        let bug = r.differences.iter().find(|d| d.kind == DifferenceKind::Bug);
        let (status, detail) = match r.verdict {
            Verdict::Passed if !r.differences.is_empty() => (CellStatus::Differs, differences.first().cloned()),
            Verdict::Passed if !r.wording.is_empty() => (CellStatus::Wording, r.wording.first().map(miss)),
            Verdict::Passed => (CellStatus::Pass, None),
            Verdict::Failed if r.failures.is_empty() && r.error.is_none() && bug.is_some() => {
                (CellStatus::Bug, bug.map(|d| format!("{} — {}", d.why, miss(&d.failure))))
            }
            Verdict::Failed => (CellStatus::Fail, r.failures.first().map(miss).or_else(|| r.error.clone())),
            Verdict::Error => (CellStatus::Error, r.error.clone()),
            Verdict::Skipped => match r.error.as_deref() {
                Some(e) if e.starts_with(NOT_APPLICABLE_PREFIX) => {
                    (CellStatus::NotApplicable, Some(e[NOT_APPLICABLE_PREFIX.len()..].to_string()))
                }
                other => (CellStatus::Skipped, Some(other.unwrap_or("skipped").to_string())),
            },
        };
        Cell { relay: relay.to_string(), status, detail, differences }
    }
}

/// One scenario across the relays.
#[derive(Debug, Clone, Serialize)]
pub struct MatrixRow {
    /// The scenario's name.
    pub scenario: String,
    /// Its file.
    pub file: String,
    /// One cell per relay, in the matrix's relay order.
    pub cells: Vec<Cell>,
}

/// Counts of one relay's column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ColumnCounts {
    /// The relay.
    pub relay: String,
    /// Cells that passed as written.
    pub pass: usize,
    /// Cells with the same behaviour, other wording.
    pub wording: usize,
    /// Cells with documented legitimate differences.
    pub differs: usize,
    /// Cells that failed, unexplained.
    pub fail: usize,
    /// Cells with documented known bugs.
    pub bug: usize,
    /// Cells not applicable.
    pub not_applicable: usize,
    /// Cells skipped.
    pub skipped: usize,
    /// Cells in error.
    pub error: usize,
}

impl ColumnCounts {
    /// `12 pass, 3 wording, ...` in the legend's order.
    pub fn line(&self) -> String {
        format!(
            "{} pass, {} wording, {} differs, {} fail, {} bug, {} n/a, {} skipped, {} error",
            self.pass, self.wording, self.differs, self.fail, self.bug, self.not_applicable, self.skipped, self.error
        )
    }
}

/// The whole matrix.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Matrix {
    /// The relays, in column order.
    pub relays: Vec<String>,
    /// One row per scenario.
    pub rows: Vec<MatrixRow>,
}

impl Matrix {
    /// An empty matrix over `relays`.
    pub fn new(relays: Vec<String>) -> Matrix {
        Matrix { relays, rows: Vec::new() }
    }

    /// Add one relay's reports (`reports` of any order; rows are matched by scenario name).
    pub fn add_column(&mut self, relay: &str, reports: &[LabReport]) {
        if !self.relays.iter().any(|r| r == relay) {
            self.relays.push(relay.to_string());
        }
        for r in reports {
            let cell = Cell::from_report(relay, r);
            match self.rows.iter_mut().find(|row| row.scenario == r.name) {
                Some(row) => row.cells.push(cell),
                None => self.rows.push(MatrixRow { scenario: r.name.clone(), file: r.file.clone(), cells: vec![cell] }),
            }
        }
    }

    /// The cell of `scenario` on `relay`.
    pub fn cell(&self, scenario: &str, relay: &str) -> Option<&Cell> {
        self.rows.iter().find(|r| r.scenario == scenario)?.cells.iter().find(|c| c.relay == relay)
    }

    /// Per-relay counts, in column order.
    pub fn counts(&self) -> Vec<ColumnCounts> {
        self.relays
            .iter()
            .map(|relay| {
                let mut c = ColumnCounts { relay: relay.clone(), ..Default::default() };
                for cell in self.rows.iter().flat_map(|r| r.cells.iter()).filter(|x| &x.relay == relay) {
                    match cell.status {
                        CellStatus::Pass => c.pass += 1,
                        CellStatus::Wording => c.wording += 1,
                        CellStatus::Differs => c.differs += 1,
                        CellStatus::Fail => c.fail += 1,
                        CellStatus::Bug => c.bug += 1,
                        CellStatus::NotApplicable => c.not_applicable += 1,
                        CellStatus::Skipped => c.skipped += 1,
                        CellStatus::Error => c.error += 1,
                    }
                }
                c
            })
            .collect()
    }
}

fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

/// The console table: one line per scenario, then the details of every cell
/// that is not a pass, then the counts per relay.
pub fn console(m: &Matrix) -> String {
    let width = m.rows.iter().map(|r| r.scenario.len()).max().unwrap_or(8).max(8);
    let mut out = format!("{:width$}", "scenario");
    for r in &m.relays {
        out.push_str(&format!("  {r:>9}"));
    }
    out.push('\n');
    for row in &m.rows {
        out.push_str(&format!("{:width$}", row.scenario));
        for relay in &m.relays {
            let w = row.cells.iter().find(|c| &c.relay == relay).map(|c| c.status.word()).unwrap_or("-");
            out.push_str(&format!("  {w:>9}"));
        }
        out.push('\n');
    }
    let mut details = String::new();
    for row in &m.rows {
        for c in row.cells.iter().filter(|c| c.status != CellStatus::Pass) {
            if let Some(d) = &c.detail {
                details.push_str(&format!(
                    "  {} on {}: {} — {}\n",
                    row.scenario,
                    c.relay,
                    c.status.word(),
                    one_line(d)
                ));
            }
        }
    }
    if !details.is_empty() {
        out.push('\n');
        out.push_str(&details);
    }
    out.push('\n');
    for c in m.counts() {
        out.push_str(&format!("matrix: {}: {}\n", c.relay, c.line()));
    }
    out
}

/// `matrix.md`: a table of words, the counts, then every non-pass cell's detail.
pub fn to_markdown(m: &Matrix) -> String {
    let mut out = String::from("# Conformance matrix\n\n| scenario |");
    for r in &m.relays {
        out.push_str(&format!(" {r} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(m.relays.len()));
    out.push('\n');
    for row in &m.rows {
        out.push_str(&format!("| `{}` |", row.scenario));
        for relay in &m.relays {
            let w = row.cells.iter().find(|c| &c.relay == relay).map(|c| c.status.word()).unwrap_or("-");
            out.push_str(&format!(" {w} |"));
        }
        out.push('\n');
    }
    out.push_str("\n| word | meaning |\n|---|---|\n");
    for (w, meaning) in LEGEND {
        out.push_str(&format!("| {w} | {meaning} |\n"));
    }
    out.push_str(
        "\n## Counts\n\n| relay | pass | wording | differs | fail | bug | n/a | skipped | error |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in m.counts() {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.relay, c.pass, c.wording, c.differs, c.fail, c.bug, c.not_applicable, c.skipped, c.error
        ));
    }
    out.push_str("\n## Details\n\n");
    for row in &m.rows {
        for c in row.cells.iter().filter(|c| c.status != CellStatus::Pass) {
            let d = c.detail.as_deref().map(one_line).unwrap_or_default().replace('|', "\\|");
            out.push_str(&format!("- `{}` on **{}**: {} — {}\n", row.scenario, c.relay, c.status.word(), d));
        }
    }
    let documented: Vec<String> = m
        .rows
        .iter()
        .flat_map(|row| {
            row.cells.iter().flat_map(move |c| {
                // in full: the why is the documentation
                let whole = |d: &str| d.split_whitespace().collect::<Vec<_>>().join(" ");
                c.differences.iter().map(move |d| format!("- `{}` on **{}**: {}\n", row.scenario, c.relay, whole(d)))
            })
        })
        .collect();
    if !documented.is_empty() {
        out.push_str("\n## Documented differences\n\n");
        out.push_str(&documented.concat());
    }
    out
}

/// `matrix.json`: relays, rows with cells, counts.
pub fn to_json(m: &Matrix) -> Result<String, ReportError> {
    #[derive(Serialize)]
    struct Out<'a> {
        relays: &'a [String],
        rows: &'a [MatrixRow],
        counts: Vec<ColumnCounts>,
    }
    serde_json::to_string_pretty(&Out { relays: &m.relays, rows: &m.rows, counts: m.counts() })
        .map_err(|e| ReportError::Serialise(e.to_string()))
}

/// Write `matrix.md` and `matrix.json` into `dir`, creating it. Returns the paths written.
pub fn write(m: &Matrix, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Write { path: dir.to_path_buf(), source })?;
    let md = dir.join("matrix.md");
    std::fs::write(&md, to_markdown(m)).map_err(|source| ReportError::Write { path: md.clone(), source })?;
    let json = dir.join("matrix.json");
    std::fs::write(&json, to_json(m)?).map_err(|source| ReportError::Write { path: json.clone(), source })?;
    Ok(vec![md, json])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_never_turn_skips_into_passes() {
        let mut pass = LabReport::new("a", "a.yaml");
        pass.verdict = Verdict::Passed;
        let mut na = LabReport::new("b", "b.yaml");
        na.verdict = Verdict::Skipped;
        na.error = Some(format!("{NOT_APPLICABLE_PREFIX}scenario declares relays: builtin"));
        let mut skip = LabReport::new("a", "a.yaml");
        skip.verdict = Verdict::Skipped;
        skip.error = Some("netns backend needs root".into());
        let mut m = Matrix::new(vec![]);
        m.add_column("builtin", &[pass, na.clone()]);
        m.add_column("postfix", &[skip, na]);
        assert_eq!(m.cell("a", "builtin").unwrap().status, CellStatus::Pass);
        assert_eq!(m.cell("a", "postfix").unwrap().status, CellStatus::Skipped);
        let b = m.cell("b", "postfix").unwrap();
        assert_eq!(b.status, CellStatus::NotApplicable);
        assert_eq!(b.detail.as_deref(), Some("scenario declares relays: builtin"));
        let md = to_markdown(&m);
        assert!(md.contains("| `a` | pass | skipped |"), "{md}");
        assert!(md.contains("| postfix | 0 | 0 | 0 | 0 | 0 | 1 | 1 | 0 |"), "{md}");
        assert!(to_json(&m).unwrap().contains("\"not_applicable\""));
    }

    fn failure(what: &str) -> crate::Failure {
        crate::Failure { what: what.into(), expected: "550".into(), actual: "554".into(), context: None }
    }

    #[test]
    fn wording_documented_differences_and_known_bugs_get_their_own_words() {
        let mut wording = LabReport::new("w", "w.yaml");
        wording.verdict = Verdict::Passed;
        wording.wording.push(failure("steps[0]: rcpt[0] reply"));
        let mut differs = LabReport::new("d", "d.yaml");
        differs.verdict = Verdict::Passed;
        differs.differences.push(crate::Difference {
            failure: failure("steps[0]: helo reply"),
            kind: DifferenceKind::Legitimate,
            why: "Postfix does not echo the client".into(),
        });
        let mut bug = LabReport::new("b", "b.yaml");
        bug.verdict = Verdict::Failed;
        bug.differences.push(crate::Difference {
            failure: failure("expect.events[0]"),
            kind: DifferenceKind::Bug,
            why: "filed".into(),
        });
        // A known bug beside an unexplained miss is a plain fail.
        let mut both = bug.clone();
        both.name = "f".into();
        both.failures.push(failure("expect.delivered_count"));
        let mut m = Matrix::new(vec![]);
        m.add_column("postfix", &[wording, differs, bug, both]);
        let status = |n: &str| m.cell(n, "postfix").unwrap().status;
        assert_eq!(status("w"), CellStatus::Wording);
        assert_eq!(status("d"), CellStatus::Differs);
        assert_eq!(status("b"), CellStatus::Bug);
        assert_eq!(status("f"), CellStatus::Fail);
        assert!(m.cell("f", "postfix").unwrap().detail.as_deref().unwrap().starts_with("expect.delivered_count"));
        let md = to_markdown(&m);
        assert!(md.contains("## Documented differences"), "{md}");
        assert!(md.contains("legitimate: steps[0]: helo reply — Postfix does not echo the client"), "{md}");
        assert!(md.contains("| postfix | 0 | 1 | 1 | 1 | 1 | 0 | 0 | 0 |"), "{md}");
    }
}
