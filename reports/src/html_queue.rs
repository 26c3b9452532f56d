//! The queue part of a lab's HTML section: depth over lab time as an inline
//! SVG step chart, each message's attempts and fate, and the DSNs sent.
//! No scripts, nothing fetched: the report stays one file.

use crate::model::QueueObservations;
use std::fmt::Write as _;

const W: f64 = 640.0;
const H: f64 = 120.0;
const PAD: f64 = 28.0;

/// `1d 2h`, `4h 30m`, `45s`, `120ms`: lab time for axis labels.
fn span(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        _ if ms < 1000 => format!("{ms}ms"),
        _ if s < 60 => format!("{s}s"),
        _ if s < 3600 => format!("{}m", s / 60),
        _ if s < 86_400 => {
            format!("{}h{}", s / 3600, if s % 3600 >= 60 { format!(" {}m", s % 3600 / 60) } else { String::new() })
        }
        _ => format!(
            "{}d{}",
            s / 86_400,
            if s % 86_400 >= 3600 { format!(" {}h", s % 86_400 / 3600) } else { String::new() }
        ),
    }
}

/// The depth chart: a step line from the first sample to the last.
fn chart(h: &mut String, q: &QueueObservations) {
    let (Some(first), Some(last)) = (q.depth.first(), q.depth.last()) else { return };
    let t0 = first.at_ms.min(0);
    let t1 = last.at_ms.max(t0 + 1);
    let top = q.max_depth.max(1) as f64;
    let x = |t: i64| PAD + (t - t0) as f64 / (t1 - t0) as f64 * (W - 2.0 * PAD);
    let y = |d: usize| H - PAD + 4.0 - d as f64 / top * (H - 2.0 * PAD);
    let mut path = String::new();
    let mut prev: Option<usize> = None;
    for s in &q.depth {
        match prev {
            None => {
                let _ = write!(path, "M{:.1},{:.1}", x(s.at_ms), y(s.depth));
            }
            Some(_) => {
                let _ = write!(path, " H{:.1} V{:.1}", x(s.at_ms), y(s.depth));
            }
        }
        prev = Some(s.depth);
    }
    let _ = write!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"queue depth over lab time\">\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>\
         <line x1=\"{PAD}\" y1=\"{b:.1}\" x2=\"{r:.1}\" y2=\"{b:.1}\" stroke=\"#999\"/>\
         <line x1=\"{PAD}\" y1=\"{t:.1}\" x2=\"{PAD}\" y2=\"{b:.1}\" stroke=\"#999\"/>\
         <path d=\"{path}\" fill=\"none\" stroke=\"#1a73e8\" stroke-width=\"2\"/>\
         <text x=\"2\" y=\"{t:.1}\" font-size=\"10\">{}</text><text x=\"2\" y=\"{b:.1}\" font-size=\"10\">0</text>\
         <text x=\"{PAD}\" y=\"{H}\" font-size=\"10\">{}</text><text x=\"{r:.1}\" y=\"{H}\" font-size=\"10\" text-anchor=\"end\">{}</text></svg>",
        q.max_depth,
        span(t0),
        span(t1),
        b = y(0),
        t = y(q.max_depth.max(1)),
        r = W - PAD,
    );
}

/// Delivery latency over lab time: one dot per message that left the queue,
/// at its arrival time, as high as it took to leave (delivered or returned).
fn latency_chart(h: &mut String, q: &QueueObservations) {
    let points: Vec<(i64, i64, bool)> = q
        .messages
        .iter()
        .filter(|m| m.kind == "message")
        .filter_map(|m| m.left_ms.map(|l| (m.arrived_ms, (l - m.arrived_ms).max(0), m.fate == "delivered")))
        .collect();
    if points.is_empty() {
        return;
    }
    let t0 = points.iter().map(|p| p.0).min().unwrap_or(0).min(0);
    let t1 = points.iter().map(|p| p.0).max().unwrap_or(0).max(t0 + 1);
    let top = points.iter().map(|p| p.1).max().unwrap_or(0).max(1);
    let x = |t: i64| PAD + (t - t0) as f64 / (t1 - t0) as f64 * (W - 2.0 * PAD);
    let y = |d: i64| H - PAD + 4.0 - d as f64 / top as f64 * (H - 2.0 * PAD);
    let mut dots = String::new();
    for (at, lat, delivered) in &points {
        // Delivered in blue, returned to the sender in red.
        let colour = if *delivered { "#1a73e8" } else { "#c62828" };
        let _ = write!(dots, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\"/>", x(*at), y(*lat));
    }
    let _ = write!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"delivery latency over lab time\">\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>\
         <line x1=\"{PAD}\" y1=\"{b:.1}\" x2=\"{r:.1}\" y2=\"{b:.1}\" stroke=\"#999\"/>\
         <line x1=\"{PAD}\" y1=\"{t:.1}\" x2=\"{PAD}\" y2=\"{b:.1}\" stroke=\"#999\"/>{dots}\
         <text x=\"2\" y=\"{t:.1}\" font-size=\"10\">{}</text><text x=\"2\" y=\"{b:.1}\" font-size=\"10\">0</text>\
         <text x=\"{PAD}\" y=\"{H}\" font-size=\"10\">{}</text><text x=\"{r:.1}\" y=\"{H}\" font-size=\"10\" text-anchor=\"end\">{}</text></svg>",
        span(top),
        span(t0),
        span(t1),
        b = y(0),
        t = y(top),
        r = W - PAD,
    );
}

/// The queue section.
pub(crate) fn section(h: &mut String, q: &QueueObservations, esc: &dyn Fn(&str) -> String) {
    let _ = write!(
        h,
        "<details><summary>relay queue: {} message(s), deepest {}, {} queue run(s), {} DSN(s)</summary>",
        q.messages.len(),
        q.max_depth,
        q.queue_runs,
        q.dsns.len()
    );
    h.push_str("<p class=\"about\">queue depth over lab time</p>");
    chart(h, q);
    h.push_str(
        "<p class=\"about\">delivery latency by arrival time (blue: delivered, red: returned to the sender)</p>",
    );
    latency_chart(h, q);
    h.push_str("<table class=\"dns\"><tr><td><b>qid</b></td><td><b>kind</b></td><td><b>sender → recipients</b></td><td><b>attempts</b></td><td><b>fate</b></td><td><b>last</b></td></tr>");
    for m in &q.messages {
        let times: Vec<String> = m.attempts.iter().map(|a| span(a.at_ms)).collect();
        let last = m.attempts.last().and_then(|a| a.stat.clone()).unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{} → {}</td><td>{} ({})</td><td>{}{}</td><td>{}</td></tr>",
            esc(&m.qid),
            esc(&m.kind),
            esc(&m.sender),
            esc(&m.recipients.join(", ")),
            m.attempts.len(),
            esc(&times.join(", ")),
            esc(&m.fate),
            m.left_ms.map(|t| format!(" at {}", span(t))).unwrap_or_default(),
            esc(&last)
        );
    }
    h.push_str("</table>");
    if !q.dsns.is_empty() {
        h.push_str("<p><b>DSNs</b></p><table class=\"dns\">");
        for d in &q.dsns {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>about {}</td><td>to &lt;{}&gt;</td><td>at {}</td><td>{}</td></tr>",
                esc(&d.qid),
                esc(&d.kind),
                esc(&d.original),
                esc(&d.to),
                span(d.at_ms),
                esc(&d.reason)
            );
        }
        h.push_str("</table>");
    }
    let _ = write!(h, "<pre>{}</pre></details>", esc(&q.mailq));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{QueueDepth, QueuedMessageHistory};

    #[test]
    fn spans_and_chart() {
        assert_eq!(span(250), "250ms");
        assert_eq!(span(4 * 3_600_000), "4h");
        assert_eq!(span(5 * 86_400_000 + 3_600_000), "5d 1h");
        let q = QueueObservations {
            depth: vec![QueueDepth { at_ms: 0, depth: 1 }, QueueDepth { at_ms: 3_600_000, depth: 0 }],
            max_depth: 1,
            messages: vec![QueuedMessageHistory { qid: "<x>".into(), ..Default::default() }],
            ..Default::default()
        };
        let mut h = String::new();
        let esc = |s: &str| s.replace('<', "&lt;").replace('>', "&gt;");
        section(&mut h, &q, &esc);
        assert!(h.contains("<svg") && h.contains(" H") && h.contains("&lt;x&gt;"), "{h}");
    }

    #[test]
    fn latency_chart_has_a_dot_per_message_that_left() {
        let msg = |arrived_ms, left_ms: Option<i64>, fate: &str| QueuedMessageHistory {
            kind: "message".into(),
            arrived_ms,
            left_ms,
            fate: fate.into(),
            ..Default::default()
        };
        let q = QueueObservations {
            messages: vec![
                msg(0, Some(1_800_000), "delivered"),
                msg(60_000, Some(5 * 86_400_000), "bounced"),
                msg(120_000, None, "queued"),
            ],
            ..Default::default()
        };
        let mut h = String::new();
        latency_chart(&mut h, &q);
        assert!(h.contains("aria-label=\"delivery latency over lab time\""), "{h}");
        assert_eq!(h.matches("<circle").count(), 2, "one dot per message that left the queue: {h}");
        assert_eq!(h.matches("fill=\"#c62828\"").count(), 1, "the returned message is red: {h}");
        assert!(h.contains(">4d 23h<") || h.contains(">5d<"), "the latency axis reaches the 5-day bounce: {h}");
    }
}
