//! A self-contained HTML report: one file, no network, no scripts.
//!
//! Per lab: the verdict and the missed expectations, every SMTP session as a
//! sequence diagram (client on the left, server on the right, arrows in
//! order), the headers of what was delivered, the relay's log lines and the
//! DNS questions asked. Everything is escaped; nothing is fetched.

use crate::{LabReport, ReportError, RunReport, Verdict};
use lab_core::{Direction, Transcript};
use std::fmt::Write as _;
use std::path::Path;

/// Escape text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f6f7f9;color:#1d2430}
header{background:#1d2430;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px}
header .counts span{margin-right:14px}
main{padding:16px 24px;max-width:1200px}
table.summary{border-collapse:collapse;width:100%;background:#fff;margin-bottom:18px}
table.summary td,table.summary th{border-bottom:1px solid #e3e6eb;padding:6px 8px;text-align:left}
.v{font-weight:700;border-radius:4px;padding:1px 7px;font-size:12px;color:#fff}
.v.passed{background:#2e7d32}.v.failed{background:#c62828}.v.error{background:#6a1b9a}.v.skipped{background:#757575}
section.lab{background:#fff;border:1px solid #e3e6eb;border-radius:6px;margin:14px 0;padding:10px 16px}
section.lab h2{font-size:16px;margin:6px 0}
.about{color:#55606e;margin:2px 0 8px}
.miss{border-left:4px solid #c62828;background:#fff5f5;padding:6px 10px;margin:6px 0}
.note{border-left:4px solid #f9a825;background:#fffbea;padding:6px 10px;margin:6px 0}
.miss pre{margin:4px 0}
pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all;margin:0}
details{margin:6px 0}
summary{cursor:pointer;font-weight:600}
.seq{display:grid;grid-template-columns:1fr 1fr;gap:2px 0;margin:6px 0 10px;border:1px solid #e3e6eb;border-radius:4px;padding:6px}
.seq .lane{font-weight:700;text-align:center;border-bottom:2px solid #1d2430;padding-bottom:3px;margin-bottom:4px}
.seq .c{grid-column:1/3;justify-self:start;max-width:75%;background:#e8f0fe;border-radius:4px;padding:2px 8px}
.seq .c::after{content:" \2192";color:#1a73e8;font-weight:700}
.seq .s{grid-column:1/3;justify-self:end;max-width:75%;background:#f1f3f4;border-radius:4px;padding:2px 8px;text-align:right}
.seq .s::before{content:"\2190 ";color:#5f6368;font-weight:700}
.seq .n{grid-column:1/3;justify-self:center;color:#80868b;font-style:italic;font-size:12px}
.seq .s.neg{background:#fde7e7}
.seq pre{display:inline}
table.dns{border-collapse:collapse}table.dns td{padding:1px 10px 1px 0;font:12px ui-monospace,monospace}
"#;

/// Build the HTML document.
pub fn to_string(run: &RunReport) -> String {
    let (p, f, e, s) = run.counts();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>relaylab report</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        h,
        "<header><h1>relaylab report</h1><div class=\"counts\"><span>{} labs</span><span>{p} passed</span><span>{f} failed</span><span>{e} errors</span><span>{s} skipped</span><span>started {}</span><span>{} ms</span></div></header><main>",
        run.labs.len(),
        esc(&run.started_at),
        run.duration_ms
    );
    h.push_str("<table class=\"summary\"><tr><th>verdict</th><th>lab</th><th>relay</th><th>about</th><th>ms</th></tr>");
    for (i, lab) in run.labs.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td><a href=\"#lab{i}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            verdict(lab.verdict),
            esc(&lab.name),
            esc(&lab.relay),
            esc(&lab.about),
            lab.duration_ms
        );
    }
    h.push_str("</table>");
    for (i, lab) in run.labs.iter().enumerate() {
        lab_section(&mut h, i, lab);
    }
    h.push_str("</main></body></html>\n");
    h
}

fn verdict(v: Verdict) -> String {
    let word = match v {
        Verdict::Passed => "passed",
        Verdict::Failed => "failed",
        Verdict::Error => "error",
        Verdict::Skipped => "skipped",
    };
    format!("<span class=\"v {word}\">{}</span>", v.word())
}

fn lab_section(h: &mut String, i: usize, lab: &LabReport) {
    let _ = write!(
        h,
        "<section class=\"lab\" id=\"lab{i}\"><h2>{} {}</h2><div class=\"about\">{} — <code>{}</code>{}</div>",
        verdict(lab.verdict),
        esc(&lab.name),
        esc(&lab.about),
        esc(&lab.file),
        if lab.tags.is_empty() { String::new() } else { format!(" — tags: {}", esc(&lab.tags.join(", "))) }
    );
    if let Some(e) = &lab.error {
        let _ = write!(h, "<div class=\"miss\"><pre>{}</pre></div>", esc(e));
    }
    for f in &lab.failures {
        let _ = write!(
            h,
            "<div class=\"miss\"><b>{}</b><pre>expected: {}\nactual:   {}</pre>",
            esc(&f.what),
            esc(&f.expected),
            esc(&f.actual)
        );
        if let Some(c) = &f.context {
            let _ = write!(h, "<details><summary>context</summary><pre>{}</pre></details>", esc(c));
        }
        h.push_str("</div>");
    }
    for d in &lab.differences {
        let kind = if d.kind == crate::DifferenceKind::Bug { "known bug" } else { "documented difference" };
        let _ = write!(
            h,
            "<div class=\"note\"><b>{kind}: {}</b> — {}<pre>expected: {}\nactual:   {}</pre></div>",
            esc(&d.failure.what),
            esc(&d.why),
            esc(&d.failure.expected),
            esc(&d.failure.actual)
        );
    }
    if !lab.wording.is_empty() || !lab.not_compared.is_empty() {
        let _ = write!(
            h,
            "<details class=\"note\"><summary>wording differences ({}) and checks not compared ({})</summary><pre>",
            lab.wording.len(),
            lab.not_compared.len()
        );
        for w in &lab.wording {
            let _ = writeln!(h, "{}\n  expected: {}\n  actual:   {}", esc(&w.what), esc(&w.expected), esc(&w.actual));
        }
        for n in &lab.not_compared {
            let _ = writeln!(h, "not compared: {}", esc(n));
        }
        h.push_str("</pre></details>");
    }
    let obs = &lab.observations;
    let open = if lab.verdict == Verdict::Passed { "" } else { " open" };
    let _ = write!(h, "<details{open}><summary>SMTP sessions ({})</summary>", obs.sessions.len());
    for t in &obs.sessions {
        sequence(h, t);
    }
    h.push_str("</details>");
    let _ = write!(h, "<details{open}><summary>delivered messages ({})</summary>", obs.delivered.len());
    for d in &obs.delivered {
        let _ = write!(
            h,
            "<p><b>at {}</b>: &lt;{}&gt; → {} ({} octets)</p><pre>{}</pre>",
            esc(&d.at),
            esc(&d.mail_from),
            esc(&d.rcpt_to.join(", ")),
            d.size,
            esc(&d.headers)
        );
    }
    h.push_str("</details>");
    let _ = write!(
        h,
        "<details{open}><summary>relay log ({} lines)</summary><pre>{}</pre></details>",
        obs.relay_log.len(),
        esc(&obs.relay_log.join("\n"))
    );
    let _ = write!(h, "<details><summary>DNS queries ({})</summary><table class=\"dns\">", obs.dns_queries.len());
    for q in &obs.dns_queries {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&q.qtype),
            esc(&q.name),
            esc(&q.protocol),
            esc(&q.rcode)
        );
    }
    h.push_str("</table></details>");
    if !obs.queue.is_empty() {
        let _ = write!(
            h,
            "<details open><summary>left in the relay's queue ({})</summary><pre>{}</pre></details>",
            obs.queue.len(),
            esc(&obs.queue.join("\n"))
        );
    }
    if let Some(q) = &obs.queue_history {
        crate::html_queue::section(h, q, &esc);
    }
    if !obs.actors.is_empty() {
        actors(h, &obs.actors);
    }
    h.push_str("</section>");
}

/// What the lab's actors saw: outcome counts, rates and latency for load
/// generators, and each attempt of retrying senders.
fn actors(h: &mut String, actors: &[crate::model::ActorReport]) {
    let _ = write!(h, "<details open><summary>actors ({})</summary><table class=\"dns\">", actors.len());
    h.push_str("<tr><td><b>actor</b></td><td><b>outcomes</b></td><td><b>sessions</b></td><td><b>msg/s</b></td><td><b>latency p50/p90/p99/max ms</b></td></tr>");
    for a in actors {
        let outcomes: Vec<String> = a.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let rate = a.messages_per_sec.map(|r| format!("{r:.1}")).unwrap_or_default();
        let lat = a
            .latency_ms
            .map(|l| format!("{:.1} / {:.1} / {:.1} / {:.1}", l.p50, l.p90, l.p99, l.max))
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.name),
            esc(&a.kind),
            esc(&outcomes.join(", ")),
            a.sessions,
            rate,
            lat
        );
        for at in &a.attempts {
            let _ = write!(
                h,
                "<tr><td></td><td colspan=\"4\">+{} ms {} &lt;{}&gt; → {}: {} {}</td></tr>",
                at.at_ms,
                esc(at.from.as_deref().unwrap_or("")),
                esc(&at.mail_from),
                esc(&at.rcpt_to.join(", ")),
                esc(&at.outcome),
                esc(at.reply.as_deref().unwrap_or(""))
            );
        }
        for n in &a.notes {
            let _ = write!(h, "<tr><td></td><td colspan=\"4\"><i>{}</i></td></tr>", esc(n));
        }
    }
    h.push_str("</table></details>");
}

/// One session as a sequence diagram: client lines point right, server lines point left.
fn sequence(h: &mut String, t: &Transcript) {
    let (client, server) = t.label.split_once(" -> ").unwrap_or((t.label.as_str(), "server"));
    let _ = write!(
        h,
        "<div class=\"seq\"><div class=\"lane\">{}</div><div class=\"lane\">{}</div>",
        esc(client),
        esc(server)
    );
    for l in &t.lines {
        let class = match l.dir {
            Direction::Client => "c",
            Direction::Server if l.text.starts_with(['4', '5']) => "s neg",
            Direction::Server => "s",
            Direction::Note => "n",
        };
        let _ = write!(h, "<div class=\"{class}\"><pre>{}</pre></div>", esc(&l.text));
    }
    h.push_str("</div>");
}

/// Write the HTML report to `path`.
pub fn write(run: &RunReport, path: &Path) -> Result<(), ReportError> {
    std::fs::write(path, to_string(run)).map_err(|source| ReportError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeliveredMessage, Failure};
    use lab_core::TranscriptRecorder;

    #[test]
    fn report_shows_sessions_headers_log_and_escapes_everything() {
        let rec = TranscriptRecorder::new("spammer -> relay");
        rec.server("220 relay ESMTP");
        rec.client("RCPT TO:<victim@elsewhere.example>");
        rec.server("550 5.7.1 <victim@elsewhere.example>... Relaying denied");
        let mut lab = LabReport::new("open-relay/denied", "scenarios/open-relay/denied.yaml");
        lab.verdict = Verdict::Failed;
        lab.failures.push(Failure {
            what: "rcpt".into(),
            expected: "250".into(),
            actual: "550 <x>".into(),
            context: None,
        });
        lab.observations.sessions.push(rec.snapshot());
        lab.observations.relay_log.push("x: ruleset=check_rcpt, arg1=<victim@elsewhere.example>".into());
        lab.observations.delivered.push(DeliveredMessage {
            at: "mx".into(),
            mail_from: "a@b".into(),
            rcpt_to: vec!["c@d".into()],
            headers: "Subject: <script>alert(1)</script>\r\n".into(),
            size: 10,
        });
        let mut run = RunReport::new();
        run.labs.push(lab);
        let html = to_string(&run);
        assert!(html.contains("<div class=\"lane\">spammer</div><div class=\"lane\">relay</div>"), "{html}");
        assert!(html.contains("<div class=\"c\"><pre>RCPT TO:&lt;victim@elsewhere.example&gt;</pre></div>"));
        assert!(
            html.contains("<div class=\"s neg\"><pre>550 5.7.1 &lt;victim@elsewhere.example&gt;... Relaying denied")
        );
        assert!(html.contains("Subject: &lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<script>"), "no script, no network");
        assert!(!html.contains("http://") && !html.contains("https://"), "self-contained");
        assert!(html.contains("ruleset=check_rcpt, arg1=&lt;victim@elsewhere.example&gt;"));
        assert!(html.contains("<span class=\"v failed\">FAIL</span>"));
    }

    #[test]
    fn actors_show_outcomes_latency_and_attempts() {
        let mut lab = LabReport::new("throttling/slam", "s.yaml");
        lab.verdict = Verdict::Passed;
        let mut a = crate::model::ActorReport {
            name: "steps[0]: slam from spammer".into(),
            kind: "slam".into(),
            outcomes: Default::default(),
            sessions: 4,
            duration_ms: 100,
            messages_per_sec: Some(200.0),
            latency_ms: Some(crate::model::Latency { p50: 1.5, p90: 2.0, p99: 3.0, max: 4.0 }),
            attempts: Vec::new(),
            notes: vec!["gave up after 3 tries".into()],
        };
        a.outcomes.insert("accepted".into(), 20);
        a.attempts.push(crate::model::ActorAttempt {
            at_ms: 1000,
            from: Some("198.51.100.7".into()),
            mail_from: "a@b".into(),
            rcpt_to: vec!["c@d".into()],
            outcome: "tempfailed".into(),
            reply: Some("451 4.7.1 greylisted".into()),
        });
        lab.observations.actors.push(a);
        let mut run = RunReport::new();
        run.labs.push(lab);
        let html = to_string(&run);
        assert!(html.contains("steps[0]: slam from spammer (slam)</td><td>accepted 20</td><td>4</td><td>200.0</td><td>1.5 / 2.0 / 3.0 / 4.0</td>"), "{html}");
        assert!(html.contains("+1000 ms 198.51.100.7 &lt;a@b&gt; → c@d: tempfailed 451 4.7.1 greylisted"), "{html}");
        assert!(html.contains("<i>gave up after 3 tries</i>"));
    }
}
