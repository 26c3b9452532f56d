//! Golden output: a lab's transcripts and relay log, munged so that a second
//! run is byte-identical, compared against `<scenario>.golden` beside the
//! scenario file (`golden: true` in the scenario; `relaylab run --update`
//! writes the file).
//!
//! Munging follows the Exim test suite: whatever changes from run to run
//! becomes a stable token — RFC 2822 dates (`<DATE>`), syslog stamps
//! (`<STAMP>`), Message-Id timestamps (`<MSGIDTIME>`), Sendmail queue ids
//! (`QID1`, `QID2`, ... in order of first appearance within the file), pids
//! (`sm-mta[PID]`), loopback addresses (`127.LAB.n`, the host number kept)
//! and ports (`:PORT`), delays (`delay=DELAY`), sizes and priorities (a
//! message carrying a date has a size that follows the day of the month).

use crate::scenario::{GoldenPart, LoadedScenario};
use regex::{Captures, Regex};
use reports::{Failure, Observations};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The golden file of a scenario: `<file stem>.golden` beside it.
pub fn golden_path(scenario_file: &Path) -> PathBuf {
    scenario_file.with_extension("golden")
}

struct Rules {
    rfc2822: Regex,
    syslog: Regex,
    msgid_time: Regex,
    qid: Regex,
    pid: Regex,
    loopback: Regex,
    port: Regex,
    delay: Regex,
    size: Regex,
    octets: Regex,
    pri: Regex,
    greylist_wait: Regex,
}

fn rules() -> &'static Rules {
    static R: OnceLock<Rules> = OnceLock::new();
    R.get_or_init(|| Rules {
        rfc2822: Regex::new(
            r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}(?: \([A-Za-z0-9:+-]+\))?",
        )
        .unwrap(),
        syslog: Regex::new(r"(?m)^(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2}").unwrap(),
        msgid_time: Regex::new(r"<\d{12}\.").unwrap(),
        qid: Regex::new(r"\b[0-9A-Za-z]{8}\d{6}\b").unwrap(),
        pid: Regex::new(r"(?m)^(<STAMP> \S+ [\w.-]+)\[\d+\]:").unwrap(),
        loopback: Regex::new(r"\b127\.\d{1,3}\.\d{1,3}\.(\d{1,3})\b").unwrap(),
        port: Regex::new(r"(127\.LAB\.\d{1,3}):\d{1,5}\b").unwrap(),
        delay: Regex::new(r"\b(x?delay)=(?:\d+\+)?\d{2}:\d{2}:\d{2}").unwrap(),
        size: Regex::new(r"\b(size|SIZE)=\d+").unwrap(),
        octets: Regex::new(r"<message: \d+ octets").unwrap(),
        pri: Regex::new(r"\bpri=\d+").unwrap(),
        greylist_wait: Regex::new(r"come back in \d{2}:\d{2}:\d{2}").unwrap(),
    })
}

/// Munges text into its stable form; queue ids are numbered across every
/// call on the same `Munger` (one golden file).
#[derive(Default)]
pub struct Munger {
    qids: HashMap<String, usize>,
}

impl Munger {
    /// A fresh numbering of queue ids.
    pub fn new() -> Self {
        Munger::default()
    }

    /// The stable form of `text`.
    pub fn munge(&mut self, text: &str) -> String {
        let r = rules();
        let t = r.rfc2822.replace_all(text, "<DATE>");
        let t = r.syslog.replace_all(&t, "<STAMP>");
        let t = r.msgid_time.replace_all(&t, "<MSGIDTIME.");
        let t = r.qid.replace_all(&t, |c: &Captures| {
            // Keyed without the 6 time characters: an id minted either side of
            // a second boundary is the same id from run to run.
            let next = self.qids.len() + 1;
            let n = *self.qids.entry(c[0][6..].to_string()).or_insert(next);
            format!("QID{n}")
        });
        let t = r.pid.replace_all(&t, "${1}[PID]:");
        let t = r.loopback.replace_all(&t, "127.LAB.$1");
        let t = r.port.replace_all(&t, "${1}:PORT");
        let t = r.delay.replace_all(&t, "$1=DELAY");
        let t = r.size.replace_all(&t, "$1=SIZE");
        let t = r.octets.replace_all(&t, "<message: SIZE octets");
        let t = r.pri.replace_all(&t, "pri=PRI");
        let t = r.greylist_wait.replace_all(&t, "come back in HH:MM:SS");
        t.into_owned()
    }
}

/// The golden text of a lab: a header line, then each part asked for, munged.
pub fn render(name: &str, parts: &[GoldenPart], obs: &Observations) -> String {
    let mut m = Munger::new();
    let mut out =
        format!("# golden output of {name} (munged; accept changes with `relaylab run --update` after review)\n");
    for part in parts {
        match part {
            GoldenPart::Transcripts => {
                out.push_str("== transcripts ==\n");
                for t in &obs.sessions {
                    out.push_str(&m.munge(&t.render()));
                }
            }
            GoldenPart::RelayLog => {
                out.push_str("== relay_log ==\n");
                for l in &obs.relay_log {
                    out.push_str(&m.munge(l));
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// A unified diff of `expected` (the golden file) against `actual`, three
/// lines of context, `-` for the golden file and `+` for this run.
pub fn unified_diff(expected: &str, actual: &str, expected_name: &str) -> String {
    let lines =
        diff::lines(expected.strip_suffix('\n').unwrap_or(expected), actual.strip_suffix('\n').unwrap_or(actual));
    // (old line no, new line no, tag, text)
    let mut rows: Vec<(usize, usize, char, &str)> = Vec::new();
    let (mut o, mut n) = (0usize, 0usize);
    for l in &lines {
        match l {
            diff::Result::Both(t, _) => {
                o += 1;
                n += 1;
                rows.push((o, n, ' ', t));
            }
            diff::Result::Left(t) => {
                o += 1;
                rows.push((o, n, '-', t));
            }
            diff::Result::Right(t) => {
                n += 1;
                rows.push((o, n, '+', t));
            }
        }
    }
    let changed: Vec<usize> = rows.iter().enumerate().filter(|(_, r)| r.2 != ' ').map(|(i, _)| i).collect();
    if changed.is_empty() {
        return String::new();
    }
    const CTX: usize = 3;
    let mut out = format!("--- {expected_name} (golden)\n+++ this run\n");
    let mut i = 0;
    while i < changed.len() {
        let start = changed[i].saturating_sub(CTX);
        let mut end = (changed[i] + CTX).min(rows.len() - 1);
        let mut j = i + 1;
        while j < changed.len() && changed[j] <= end + CTX {
            end = (changed[j] + CTX).min(rows.len() - 1);
            j += 1;
        }
        let hunk = &rows[start..=end];
        let old_start = hunk.iter().find(|r| r.2 != '+').map(|r| r.0).unwrap_or(hunk[0].0);
        let new_start = hunk.iter().find(|r| r.2 != '-').map(|r| r.1).unwrap_or(hunk[0].1);
        let old_len = hunk.iter().filter(|r| r.2 != '+').count();
        let new_len = hunk.iter().filter(|r| r.2 != '-').count();
        out.push_str(&format!("@@ -{old_start},{old_len} +{new_start},{new_len} @@\n"));
        for r in hunk {
            out.push(r.2);
            out.push_str(r.3);
            out.push('\n');
        }
        i = j;
    }
    out
}

/// What the golden step did.
pub enum Outcome {
    /// Golden output is off for this scenario.
    Off,
    /// The output matches the golden file.
    Same,
    /// The golden file was written (`--update`).
    Written(PathBuf),
    /// A difference, a missing file or an I/O error.
    Failed(Failure),
}

/// Compare the lab's munged output with its golden file, or write it when `update`.
pub fn check(loaded: &LoadedScenario, obs: &Observations, update: bool) -> Outcome {
    let parts = loaded.scenario.golden_parts();
    if parts.is_empty() {
        return Outcome::Off;
    }
    let path = golden_path(&loaded.path);
    let actual = render(&loaded.scenario.name, parts, obs);
    let fail = |expected: String, actual: String, context: Option<String>| {
        Outcome::Failed(Failure { what: format!("golden output ({})", path.display()), expected, actual, context })
    };
    if update {
        return match std::fs::write(&path, &actual) {
            Ok(()) => Outcome::Written(path.clone()),
            Err(e) => fail("the golden file to be written".into(), e.to_string(), None),
        };
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == actual => Outcome::Same,
        Ok(expected) => {
            let d = unified_diff(&expected, &actual, &path.display().to_string());
            let n = d
                .lines()
                .filter(|l| {
                    (l.starts_with('-') || l.starts_with('+')) && !l.starts_with("---") && !l.starts_with("+++")
                })
                .count();
            fail(
                format!("munged output identical to {}", path.display()),
                format!(
                    "{n} line(s) differ; if the change is intended, review it and run `relaylab run --update {}`",
                    loaded.path.display()
                ),
                Some(d),
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(
            format!("a golden file {}", path.display()),
            format!("it is missing: run `relaylab run --update {}` and review what it writes", loaded.path.display()),
            None,
        ),
        Err(e) => fail(format!("a readable golden file {}", path.display()), e.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn munges_dates_ids_pids_ports_and_delays() {
        let mut m = Munger::new();
        let a = m.munge(
            "Nov 21 12:55:31 external sm-mta[13569]: 6ALCtVPr013569: to=<j@x>, delay=00:00:01, xdelay=1+00:00:00, pri=60033, stat=Sent (6ALCtV00000001 ok) msgid=<202611211255.6ALCtVPr013569@h>",
        );
        assert_eq!(
            a,
            "<STAMP> external sm-mta[PID]: QID1: to=<j@x>, delay=DELAY, xdelay=DELAY, pri=PRI, stat=Sent (QID2 ok) msgid=<MSGIDTIME.QID1@h>"
        );
        let b = m.munge("*  connect to 127.60.24.2:43117 from 127.60.24.11\nS: 220 h ESMTP Sendmail 8.13.4/8.13.4; Sat, 1 Nov 2026 02:55:27 +0000\n--- steps[0]: 6ALCtWPr013569");
        assert_eq!(
            b,
            "*  connect to 127.LAB.2:PORT from 127.LAB.11\nS: 220 h ESMTP Sendmail 8.13.4/8.13.4; <DATE>\n--- steps[0]: QID1"
        );
    }

    #[test]
    fn unified_diff_shows_the_changed_line_with_context() {
        let d = unified_diff("a\nb\nc\nd\n", "a\nb\nX\nd\n", "f.golden");
        assert!(d.contains("@@ -1,4 +1,4 @@\n a\n b\n-c\n+X\n d\n"), "{d}");
        assert_eq!(unified_diff("a\n", "a\n", "f"), "");
    }
}
