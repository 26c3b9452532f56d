//! Queue observations and their expectations: the `queue_run`, `flush` and
//! `mailq` steps, `expect.queue`, and `expect.delivered[].parts`.

use crate::expect::{closest_unused, Checker};
use crate::lab::Lab;
use crate::message;
use crate::scenario::{FlushSpec, MessageExpect, PartExpect, QueueExpect, ValueMatcher};
use chrono::{DateTime, Utc};
use reports::{DsnSent, QueueAttempt, QueueDepth, QueueObservations, QueuedMessageHistory};

/// What the relay's queue did, for the report (`None` for relays that do not say).
pub fn observe(lab: &Lab) -> Option<QueueObservations> {
    let h = lab.relay.queue_history()?;
    let epoch = lab.time.epoch();
    let ms = |t: DateTime<Utc>| (t - epoch).num_milliseconds();
    Some(QueueObservations {
        directory: h.directory.clone(),
        mailq: lab.relay.mailq().unwrap_or_default(),
        max_depth: h.depth.iter().map(|d| d.depth).max().unwrap_or(0),
        depth: h.depth.iter().map(|d| QueueDepth { at_ms: ms(d.at), depth: d.depth }).collect(),
        queue_runs: h.queue_runs,
        messages: h
            .messages
            .iter()
            .map(|m| QueuedMessageHistory {
                qid: m.qid.clone(),
                kind: m.kind.word().into(),
                sender: m.sender.clone(),
                recipients: m.recipients.clone(),
                arrived_ms: ms(m.arrived),
                fate: m.fate.word().into(),
                left_ms: m.left_at.map(ms),
                recovered: m.recovered,
                attempts: m
                    .attempts
                    .iter()
                    .map(|a| QueueAttempt {
                        at_ms: ms(a.at),
                        trigger: a.trigger.clone(),
                        sent: a.sent,
                        deferred: a.deferred,
                        failed: a.failed,
                        stat: a.stat.clone(),
                    })
                    .collect(),
            })
            .collect(),
        dsns: h
            .dsns
            .iter()
            .map(|d| DsnSent {
                qid: d.qid.clone(),
                original: d.original.clone(),
                kind: d.kind.clone(),
                to: d.to.clone(),
                at_ms: ms(d.at),
                reason: d.reason.clone(),
                recipients: d.recipients.clone(),
            })
            .collect(),
        recovery: h.recovery.clone(),
        fsyncs: h.store.fsyncs,
        write_batches: h.store.batches,
    })
}

/// Lines of `text` must match `matchers` in order (each a later line).
fn lines_in_order(text: &str, matchers: &[ValueMatcher], what: &str, checker: &mut Checker) {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    for (i, m) in matchers.iter().enumerate() {
        match lines[from.min(lines.len())..].iter().position(|l| m.matches_within(l)) {
            Some(p) => from += p + 1,
            None => {
                let actual = if lines.iter().any(|l| m.matches_within(l)) {
                    "a matching line exists, but before the line matched by the previous matcher"
                } else {
                    "no line matches"
                };
                checker.fail(format!("{what}[{i}]"), m.to_string(), actual.into(), Some(text.to_string()));
            }
        }
    }
}

/// The `mailq` step: the listing now.
pub fn check_mailq_step(lab: &Lab, i: usize, matchers: &[ValueMatcher], checker: &mut Checker) {
    match lab.relay.mailq() {
        Some(text) => lines_in_order(&text, matchers, &format!("steps[{i}] (mailq): line"), checker),
        None => checker.fail(
            format!("steps[{i}] (mailq)"),
            "a mailq listing".into(),
            format!("the {} relay does not list its queue", lab.relay.flavour()),
            None,
        ),
    }
}

/// The `flush` and `queue_run` steps.
pub async fn run_flush(lab: &Lab, i: usize, spec: &FlushSpec, action: &str, checker: &mut Checker) {
    match lab.relay.flush_queue(spec.domain.as_deref()).await {
        Ok(summary) => {
            if let Some(n) = spec.tried {
                if summary.tried.len() != n {
                    checker.fail(
                        format!("steps[{i}] ({action}): tried"),
                        n.to_string(),
                        format!("{} ({})", summary.tried.len(), summary.tried.join(", ")),
                        lab.relay.mailq(),
                    );
                }
            }
        }
        Err(e) => checker.fail(format!("steps[{i}] ({action})"), "a queue run".into(), e, None),
    }
}

fn fail_msg(m: &MessageExpect) -> String {
    let mut parts = Vec::new();
    if let Some(r) = &m.rcpt {
        parts.push(format!("to {r}"));
    }
    if let Some(k) = &m.kind {
        parts.push(format!("kind {k}"));
    }
    if parts.is_empty() {
        "a queued message".into()
    } else {
        format!("a queued message {}", parts.join(", "))
    }
}

fn bare(addr: &str) -> String {
    addr.trim().trim_start_matches('<').trim_end_matches('>').to_ascii_lowercase()
}

/// One missed field: `(field, expected, actual)`.
type Miss = (String, String, String);

/// What is wrong with `got` for `want` (empty: it matches).
fn message_misses(want: &MessageExpect, got: &QueuedMessageHistory) -> Vec<Miss> {
    let mut out = Vec::new();
    if let Some(r) = &want.rcpt {
        if !got.recipients.iter().any(|x| bare(x) == bare(r)) {
            out.push(("rcpt".into(), r.clone(), got.recipients.join(", ")));
        }
    }
    if let Some(k) = &want.kind {
        if *k != got.kind {
            out.push(("kind".into(), k.clone(), got.kind.clone()));
        }
    }
    let times: Vec<String> = got.attempts.iter().map(|a| format!("{}ms ({})", a.at_ms, a.trigger)).collect();
    if let Some(n) = want.attempts {
        if got.attempts.len() != n {
            out.push(("attempts".into(), n.to_string(), format!("{} at {}", got.attempts.len(), times.join(", "))));
        }
    }
    if let Some(n) = want.min_attempts {
        if got.attempts.len() < n {
            out.push(("min_attempts".into(), n.to_string(), format!("{} at {}", got.attempts.len(), times.join(", "))));
        }
    }
    if let Some(f) = &want.fate {
        if *f != got.fate {
            out.push(("fate".into(), f.clone(), got.fate.clone()));
        }
    }
    if let Some(gap) = want.spacing {
        let gap = gap.0.as_millis() as i64;
        if let Some(w) = got.attempts.windows(2).find(|w| w[1].at_ms - w[0].at_ms < gap) {
            out.push((
                "spacing".into(),
                format!("at least {gap}ms between attempts"),
                format!("{}ms then {}ms (all: {})", w[0].at_ms, w[1].at_ms, times.join(", ")),
            ));
        }
    }
    if let Some(after) = want.left_after {
        let need = after.0.as_millis() as i64;
        match got.left_ms {
            Some(t) if t - got.arrived_ms >= need => {}
            Some(t) => out.push((
                "left_after".into(),
                format!("{need}ms"),
                format!("left {}ms after arrival", t - got.arrived_ms),
            )),
            None => out.push(("left_after".into(), format!("{need}ms"), "still queued".into())),
        }
    }
    out
}

/// `expect.queue`.
pub fn check_final(exp: &QueueExpect, obs: Option<&QueueObservations>, lab: &Lab, checker: &mut Checker) {
    let Some(q) = obs else {
        checker.fail(
            "expect.queue".into(),
            "the relay's queue history".into(),
            format!("the {} relay does not report its queue", lab.relay.flavour()),
            None,
        );
        return;
    };
    let context = || Some(q.mailq.clone());
    if let Some(n) = exp.depth {
        let got = lab.relay.queue().len();
        if got != n {
            checker.fail("expect.queue.depth".into(), n.to_string(), got.to_string(), context());
        }
    }
    if let Some(n) = exp.max_depth {
        if q.max_depth != n {
            checker.fail("expect.queue.max_depth".into(), n.to_string(), q.max_depth.to_string(), None);
        }
    }
    if let Some(n) = exp.queue_runs {
        if q.queue_runs != n {
            checker.fail("expect.queue.queue_runs".into(), n.to_string(), q.queue_runs.to_string(), None);
        }
    }
    lines_in_order(&q.mailq, &exp.mailq, "expect.queue.mailq", checker);
    let dsn_list = || {
        q.dsns
            .iter()
            .map(|d| format!("{} {} to <{}> about {} at {}ms: {}", d.qid, d.kind, d.to, d.original, d.at_ms, d.reason))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if let Some(n) = exp.dsn_count {
        if q.dsns.len() != n {
            checker.fail("expect.queue.dsn_count".into(), n.to_string(), q.dsns.len().to_string(), Some(dsn_list()));
        }
    }
    let mut used = vec![false; q.dsns.len()];
    for (i, want) in exp.dsns.iter().enumerate() {
        let found = q.dsns.iter().enumerate().position(|(k, d)| {
            let arrived = q.messages.iter().find(|m| m.qid == d.original).map(|m| m.arrived_ms).unwrap_or(0);
            let age = d.at_ms - arrived;
            !used[k]
                && want.kind.as_ref().is_none_or(|x| *x == d.kind)
                && want.to.as_ref().is_none_or(|x| bare(x) == bare(&d.to))
                && want.reason.as_ref().is_none_or(|m| m.matches_within(&d.reason))
                && want.after.is_none_or(|a| age >= a.0.as_millis() as i64)
                && want.before.is_none_or(|b| age < b.0.as_millis() as i64)
        });
        match found {
            Some(k) => used[k] = true,
            None => {
                let mut what = Vec::new();
                if let Some(k) = &want.kind {
                    what.push(k.clone());
                }
                if let Some(t) = &want.to {
                    what.push(format!("to <{t}>"));
                }
                if let Some(r) = &want.reason {
                    what.push(format!("reason {r}"));
                }
                if let Some(a) = want.after {
                    what.push(format!("at least {:?} after arrival", a.0));
                }
                if let Some(b) = want.before {
                    what.push(format!("less than {:?} after arrival", b.0));
                }
                let actual = if q.dsns.is_empty() { "no DSN was generated".to_string() } else { dsn_list() };
                checker.fail(format!("expect.queue.dsns[{i}]"), format!("a DSN: {}", what.join(", ")), actual, None);
            }
        }
    }
    let mut used = vec![false; q.messages.len()];
    for (i, want) in exp.messages.iter().enumerate() {
        match closest_unused(&q.messages, &used, |m| message_misses(want, m)) {
            Some((k, misses)) if misses.is_empty() => used[k] = true,
            Some((k, misses)) => {
                for (field, expected, actual) in misses {
                    checker.fail(
                        format!("expect.queue.messages[{i}].{field}"),
                        expected,
                        actual,
                        Some(format!(
                            "closest: {} ({} -> {})",
                            q.messages[k].qid,
                            q.messages[k].sender,
                            q.messages[k].recipients.join(", ")
                        )),
                    );
                }
            }
            None => checker.fail(
                format!("expect.queue.messages[{i}]"),
                fail_msg(want),
                "no message passed through the queue".into(),
                None,
            ),
        }
    }
}

/// The leaf MIME parts of a message: `(type/subtype, body as sent)`.
pub fn leaf_parts(raw: &[u8]) -> Vec<(String, String)> {
    use mail_parser::MimeHeaders;
    let Some(msg) = mail_parser::MessageParser::new().parse(raw) else { return Vec::new() };
    let bytes = msg.raw_message();
    msg.parts
        .iter()
        .skip(1)
        .filter(|p| !p.is_multipart())
        .map(|p| {
            let ct = p
                .content_type()
                .map(|c| match c.subtype() {
                    Some(s) => format!("{}/{}", c.ctype(), s),
                    None => c.ctype().to_string(),
                })
                .unwrap_or_else(|| "text/plain".into())
                .to_ascii_lowercase();
            let (a, b) = (p.raw_body_offset() as usize, (p.raw_end_offset() as usize).min(bytes.len()));
            (ct, String::from_utf8_lossy(&bytes[a.min(b)..b]).into_owned())
        })
        .collect()
}

/// `expect.delivered[].parts`: each must match a later part than the one before.
pub fn part_misses(want: &[PartExpect], raw: &[u8]) -> Vec<Miss> {
    if want.is_empty() {
        return Vec::new();
    }
    let parts = leaf_parts(raw);
    let listing = || parts.iter().map(|(t, b)| format!("{t} ({} octets)", b.len())).collect::<Vec<_>>().join(", ");
    let mut out = Vec::new();
    let mut from = 0;
    for (k, w) in want.iter().enumerate() {
        let ok = |(t, b): &(String, String)| {
            w.content_type.as_ref().is_none_or(|c| c.eq_ignore_ascii_case(t))
                && w.body.as_ref().is_none_or(|m| m.matches_within(b))
        };
        match parts[from.min(parts.len())..].iter().position(ok) {
            Some(p) => from += p + 1,
            None => {
                let expected = format!(
                    "a part{}{}",
                    w.content_type.as_ref().map(|c| format!(" of type {c}")).unwrap_or_default(),
                    w.body.as_ref().map(|b| format!(" whose body matches {b}")).unwrap_or_default()
                );
                let actual = if parts.is_empty() {
                    "(not a MIME multipart message)".to_string()
                } else {
                    format!("(parts: {})", listing())
                };
                out.push((format!("parts[{k}]"), expected, actual));
            }
        }
    }
    out
}

/// A delivered message's body text, parts and all (for context in failures).
pub fn body_text(raw: &[u8]) -> String {
    message::parse(raw).body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::duration::LabDuration;
    use std::time::Duration;

    const REPORT: &[u8] = b"From: MAILER-DAEMON@x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nTHIS IS A WARNING MESSAGE ONLY\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: delayed\r\nStatus: 4.0.0\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: Lunch\r\n--b--\r\n";

    fn part(t: &str, body: &str) -> PartExpect {
        PartExpect { content_type: Some(t.into()), body: Some(ValueMatcher::parse(body).unwrap()) }
    }

    #[test]
    fn parts_in_order() {
        let parts = leaf_parts(REPORT);
        assert_eq!(
            parts.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
            ["text/plain", "message/delivery-status", "text/rfc822-headers"]
        );
        assert!(part_misses(
            &[part("message/delivery-status", "/Action: delayed/"), part("text/rfc822-headers", "Lunch")],
            REPORT
        )
        .is_empty());
        // Wrong content, wrong type, wrong order: each is a miss.
        assert_eq!(part_misses(&[part("message/delivery-status", "/Action: failed/")], REPORT).len(), 1);
        assert_eq!(part_misses(&[part("message/rfc822", "Lunch")], REPORT).len(), 1);
        assert_eq!(
            part_misses(&[part("text/rfc822-headers", "Lunch"), part("text/plain", "WARNING")], REPORT).len(),
            1
        );
        let plain = part_misses(&[part("text/plain", "x")], b"Subject: x\r\n\r\nx\r\n");
        assert_eq!(plain.len(), 1);
    }

    #[test]
    fn message_expectations() {
        let attempt = |at_ms| QueueAttempt { at_ms, trigger: "queue run".into(), ..Default::default() };
        let m = QueuedMessageHistory {
            qid: "q".into(),
            kind: "message".into(),
            recipients: vec!["<john@sysiphus.com>".into()],
            fate: "delivered".into(),
            arrived_ms: 0,
            left_ms: Some(7_200_000),
            attempts: vec![attempt(0), attempt(3_600_000), attempt(7_200_000)],
            ..Default::default()
        };
        let want = MessageExpect {
            rcpt: Some("john@sysiphus.com".into()),
            attempts: Some(3),
            fate: Some("delivered".into()),
            spacing: Some(LabDuration(Duration::from_secs(3600))),
            left_after: Some(LabDuration(Duration::from_secs(7200))),
            ..Default::default()
        };
        assert!(message_misses(&want, &m).is_empty());
        let wrong = MessageExpect {
            attempts: Some(2),
            spacing: Some(LabDuration(Duration::from_secs(7200))),
            fate: Some("queued".into()),
            ..want.clone()
        };
        let fields: Vec<String> = message_misses(&wrong, &m).into_iter().map(|(f, ..)| f).collect();
        assert_eq!(fields, ["attempts", "fate", "spacing"]);
    }
}
