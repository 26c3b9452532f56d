//! Checking expectations against what a lab observed.
//!
//! Every miss becomes a [`Failure`] with what was expected (as the scenario
//! wrote it), what was seen, and the transcript or log that shows it. Text
//! expectations that differ from what was seen get a line diff in the style of
//! pretty_assertions.

use crate::lab::Lab;
use crate::message::{self, ParsedMessage};
use crate::scenario::{DeliveredExpect, FinalExpect, RcptExpect, ReplyMatcher, StepExpect as SendExpect, ValueMatcher};
use lab_core::{Reply, Transcript};
use relay_under_test::flavours::events::{self, RelayEvent};
use reports::{Failure, Observations};

/// How strictly a lab's observations are compared.
///
/// The scenarios are written against the course's Sendmail 8.13. A real MTA
/// words its replies and logs its lines its own way; what a mail
/// administrator asks of it is the same *behaviour*. So on real relays the
/// harness compares, by default:
/// - replies by their class (2xx, 4xx, 5xx): a reply of the right class but
///   other code or text is a *wording* difference, listed, not a failure;
/// - `relay_log` lines (Sendmail 8.13's, as the builtin relay writes them)
///   not at all: every real MTA, Sendmail 8.17 too, logs its own way; they
///   are listed as not compared, and the MTA-neutral `expect.events` carry
///   the check;
/// - the recipients of a delivered transaction as a set: the order of the
///   RCPT commands is each MTA's own;
/// - everything else (delivered messages and headers, events, DNS questions,
///   what the hosts saw) exactly as on the builtin relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compare {
    /// Every expectation as written (the builtin relay's default).
    #[default]
    Exact,
    /// Reply classes, not wording; events, not Sendmail log lines (the real relays' default).
    Behaviour,
}

/// Collects failures, and in [`Compare::Behaviour`] the differences that are only wording.
#[derive(Debug, Default)]
pub struct Checker {
    failures: Vec<Failure>,
    compare: Compare,
    /// The relay logs Sendmail's format (the builtin relay and Sendmail).
    sendmail_log: bool,
    wording: Vec<Failure>,
    not_compared: Vec<String>,
}

impl Checker {
    /// A checker for a lab on `relay` (`builtin`, `postfix`, ...).
    pub fn new(compare: Compare, relay: &str) -> Self {
        // The library's log lines are Sendmail 8.13's, as the builtin relay
        // writes them; Sendmail 8.17 words and adds lines its own way too.
        Checker { compare, sendmail_log: relay == "builtin", ..Default::default() }
    }

    /// Record a missed expectation.
    pub fn fail(&mut self, what: String, expected: String, actual: String, context: Option<String>) {
        self.failures.push(Failure { what, expected, actual, context });
    }

    /// True while nothing has failed.
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }

    /// Failures, wording differences, and what was not compared.
    pub fn finish(self) -> (Vec<Failure>, Vec<Failure>, Vec<String>) {
        (self.failures, self.wording, self.not_compared)
    }

    /// A reply that missed its matcher: a failure, or in behaviour mode a
    /// wording difference when the class (first digit) is the one expected.
    fn reply_miss(&mut self, m: &ReplyMatcher, r: &Reply, what: String, context: String) {
        let same_class = m.code_class().is_some_and(|c| r.code / 100 == u16::from(c));
        let f = Failure { what, expected: m.to_string(), actual: r.text(), context: Some(context) };
        if self.compare == Compare::Behaviour && same_class {
            self.wording.push(f);
        } else {
            self.failures.push(f);
        }
    }

    /// Whether Sendmail-format log expectations are compared on this relay;
    /// when not, notes them as not compared.
    fn compares_sendmail_log(&mut self, what: &str, n: usize) -> bool {
        if n == 0 || self.compare == Compare::Exact || self.sendmail_log {
            return true;
        }
        self.not_compared.push(format!(
            "{what}: {n} Sendmail 8.13 log line(s), not compared on a real MTA, which logs its own way (expect.events is)"
        ));
        false
    }
}

/// The replies one structured send produced.
#[derive(Debug, Default)]
pub struct SendReplies {
    /// Greeting.
    pub greeting: Option<Reply>,
    /// HELO/EHLO reply.
    pub helo: Option<Reply>,
    /// MAIL reply.
    pub mail: Option<Reply>,
    /// RCPT replies in order.
    pub rcpt: Vec<Reply>,
    /// DATA reply.
    pub data: Option<Reply>,
    /// End-of-data reply.
    pub data_end: Option<Reply>,
    /// QUIT reply.
    pub quit: Option<Reply>,
    /// Set when the session broke off.
    pub transport_error: Option<String>,
}

/// Check one reply against its matcher.
pub fn check_reply(
    m: &ReplyMatcher,
    reply: Option<&Reply>,
    transport_error: Option<&str>,
    what: String,
    transcript: &Transcript,
    checker: &mut Checker,
) {
    match reply {
        Some(r) if m.matches(r) => {}
        Some(r) => checker.reply_miss(m, r, what, transcript.render()),
        None => {
            let why = match transport_error {
                Some(e) => format!("no reply: {e}"),
                None => "no reply: the command was not sent (an earlier reply ended the transaction)".to_string(),
            };
            checker.fail(what, m.to_string(), why, Some(transcript.render()))
        }
    }
}

/// Check a structured send's replies.
pub fn check_send(
    exp: &SendExpect,
    got: &SendReplies,
    what: &dyn Fn(&str) -> String,
    transcript: &Transcript,
    checker: &mut Checker,
) {
    let err = got.transport_error.as_deref();
    let mut one = |m: &Option<ReplyMatcher>, r: &Option<Reply>, part: &str| {
        if let Some(m) = m {
            check_reply(m, r.as_ref(), err, what(part), transcript, checker);
        }
    };
    one(&exp.greeting, &got.greeting, "greeting");
    one(&exp.helo, &got.helo, "helo reply");
    one(&exp.mail, &got.mail, "mail reply");
    one(&exp.data, &got.data, "data reply");
    one(&exp.data_end, &got.data_end, "end-of-data reply");
    one(&exp.quit, &got.quit, "quit reply");
    match &exp.rcpt {
        None => {}
        Some(RcptExpect::All(m)) => {
            let n = got.rcpt.len().max(1);
            for k in 0..n {
                check_reply(m, got.rcpt.get(k), err, what(&format!("rcpt[{k}] reply")), transcript, checker);
            }
        }
        Some(RcptExpect::Each(ms)) => {
            for (k, m) in ms.iter().enumerate() {
                check_reply(m, got.rcpt.get(k), err, what(&format!("rcpt[{k}] reply")), transcript, checker);
            }
        }
    }
}

/// Check the end-of-lab expectations.
pub fn check_final(exp: &FinalExpect, lab: &Lab, obs: &Observations, checker: &mut Checker) {
    let delivered: Vec<(String, lab_core::ReceivedMessage, ParsedMessage)> = lab
        .sinks
        .iter()
        .flat_map(|(name, sink)| {
            sink.messages().into_iter().map(move |m| {
                let p = message::parse(&m.data);
                (name.clone(), m, p)
            })
        })
        .collect();

    if let Some(n) = exp.delivered_count {
        if delivered.len() != n {
            checker.fail(
                "expect.delivered_count".into(),
                n.to_string(),
                format!("{} ({})", delivered.len(), summary(&delivered)),
                Some(obs.relay_log.join("\n")),
            );
        }
    }

    let mut used = vec![false; delivered.len()];
    // The order of RCPT commands within one transaction is each MTA's own.
    let rcpt_order = checker.compare == Compare::Exact;
    for (i, d) in exp.delivered.iter().enumerate() {
        match closest_unused(&delivered, &used, |(at, m, p)| delivered_misses(d, at, m, p, rcpt_order)) {
            Some((k, misses)) if misses.is_empty() => used[k] = true,
            Some((k, misses)) => {
                let (at, _, p) = &delivered[k];
                let context = format!("closest delivered message (at {at}):\n{}", p.header_block.trim_end());
                for miss in misses {
                    let actual = match (&miss.expected_text, &miss.actual) {
                        (Some(e), a) if !a.starts_with('(') => format!("{a}\n{}", indent(&diff(e, a))),
                        _ => miss.actual.clone(),
                    };
                    checker.fail(
                        format!("expect.delivered[{i}].{}", miss.field),
                        miss.expected,
                        actual,
                        Some(context.clone()),
                    );
                }
            }
            None => checker.fail(
                format!("expect.delivered[{i}]"),
                describe(d),
                "no message was delivered to any lab host".into(),
                Some(obs.relay_log.join("\n")),
            ),
        }
    }

    check_events(exp, lab, obs, checker);

    // Log lines must appear in the order given.
    let mut from = 0;
    let relay_log: &[ValueMatcher] =
        if checker.compares_sendmail_log("expect.relay_log", exp.relay_log.len()) { &exp.relay_log } else { &[] };
    let relay_log_absent: &[ValueMatcher] =
        if checker.compares_sendmail_log("expect.relay_log_absent", exp.relay_log_absent.len()) {
            &exp.relay_log_absent
        } else {
            &[]
        };
    for (i, m) in relay_log.iter().enumerate() {
        match obs.relay_log[from..].iter().position(|l| m.matches_within(l)) {
            Some(p) => from += p + 1,
            None => {
                let anywhere = obs.relay_log.iter().any(|l| m.matches_within(l));
                let actual = if anywhere {
                    "a matching line exists, but before the line matched by the previous expectation".to_string()
                } else {
                    "no log line matches".to_string()
                };
                checker.fail(format!("expect.relay_log[{i}]"), m.to_string(), actual, Some(obs.relay_log.join("\n")));
            }
        }
    }
    for (i, m) in relay_log_absent.iter().enumerate() {
        if let Some(l) = obs.relay_log.iter().find(|l| m.matches_within(l)) {
            checker.fail(format!("expect.relay_log_absent[{i}]"), format!("no line matching {m}"), l.clone(), None);
        }
    }

    for (i, q) in exp.dns_queries.iter().enumerate() {
        let mut parts = q.split_whitespace();
        let (t, n) = (parts.next().unwrap_or(""), parts.next().unwrap_or("").trim_end_matches('.'));
        let proto = parts.next();
        let asked = obs.dns_queries.iter().any(|d| {
            d.qtype.eq_ignore_ascii_case(t)
                && d.name.eq_ignore_ascii_case(n)
                && proto.is_none_or(|p| d.protocol.eq_ignore_ascii_case(p))
        });
        if !asked {
            let seen: Vec<String> = obs
                .dns_queries
                .iter()
                .map(|d| format!("{} {} over {} -> {}", d.qtype, d.name, d.protocol, d.rcode))
                .collect();
            checker.fail(format!("expect.dns_queries[{i}]"), q.clone(), "not asked".into(), Some(seen.join("\n")));
        }
    }

    if let Some(n) = exp.queued {
        let q = lab.relay.queue();
        if q.len() != n {
            checker.fail("expect.queued".into(), n.to_string(), q.len().to_string(), Some(obs.queue.join("\n")));
        }
    }
}

/// The relay's log as shared-model events: each flavour's normalizer; the
/// builtin relay logs as Sendmail does.
pub fn relay_events(flavour: &str, log: &[String]) -> Vec<RelayEvent> {
    let normalize = match flavour {
        "postfix" => events::postfix,
        "exim" => events::exim,
        "opensmtpd" => events::opensmtpd,
        _ => events::sendmail,
    };
    let mut out: Vec<RelayEvent> = log.iter().flat_map(|l| normalize(l)).collect();
    // OpenSMTPD names the client and the sender on the session's earlier lines.
    events::join_log(&mut out, log);
    // Postfix names the sender on its own `QID: from=<...>` line (qmgr), not
    // on the `client=` line that says the message came in: join them.
    for e in out.iter_mut().filter(|e| e.from.is_none()) {
        let Some(qid) = &e.qid else { continue };
        let key = format!(" {qid}: from=<");
        e.from = log.iter().find_map(|l| {
            let i = l.find(&key)?;
            l[i + key.len()..].split_once('>').map(|(a, _)| a.to_string())
        });
    }
    out
}

/// `expect.events` and `expect.events_absent`, on every relay.
fn check_events(exp: &FinalExpect, lab: &Lab, obs: &Observations, checker: &mut Checker) {
    if exp.events.is_empty() && exp.events_absent.is_empty() {
        return;
    }
    let seen = relay_events(lab.relay.flavour(), &obs.relay_log);
    let context = || {
        let lines: Vec<String> = seen.iter().map(describe_event).collect();
        if lines.is_empty() {
            "(the relay's log has no events)".to_string()
        } else {
            format!("events read from the relay's log:\n{}", lines.join("\n"))
        }
    };
    for (i, e) in exp.events.iter().enumerate() {
        let n = seen.iter().filter(|ev| e.matches(ev)).count();
        let ok = match e.count {
            Some(want) => n == want,
            None => n > 0,
        };
        if !ok {
            checker.fail(
                format!("expect.events[{i}]"),
                e.to_string(),
                format!("{n} matching event(s)"),
                Some(context()),
            );
        }
    }
    for (i, e) in exp.events_absent.iter().enumerate() {
        if let Some(ev) = seen.iter().find(|ev| e.matches(ev)) {
            checker.fail(format!("expect.events_absent[{i}]"), format!("no {e}"), describe_event(ev), Some(context()));
        }
    }
}

/// One event on a line: `rejected from=<a@b> to=<c@d> peer=... status=5.7.1`.
fn describe_event(e: &RelayEvent) -> String {
    let mut s = e.kind.as_str().to_string();
    for (k, v) in [("from", &e.from), ("to", &e.to), ("peer", &e.peer), ("status", &e.status)] {
        if let Some(v) = v {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    s
}

struct Miss {
    field: String,
    expected: String,
    actual: String,
    /// Plain expected text, when a diff against `actual` helps.
    expected_text: Option<String>,
}

fn delivered_misses(
    d: &DeliveredExpect,
    at: &str,
    m: &lab_core::ReceivedMessage,
    p: &ParsedMessage,
    rcpt_order: bool,
) -> Vec<Miss> {
    let mut out = Vec::new();
    if let Some(want) = &d.at {
        if want != at {
            out.push(Miss { field: "at".into(), expected: want.clone(), actual: at.to_string(), expected_text: None });
        }
    }
    if let Some(want) = &d.mail_from {
        if *want != m.envelope.mail_from {
            out.push(Miss {
                field: "mail_from".into(),
                expected: want.clone(),
                actual: m.envelope.mail_from.clone(),
                expected_text: Some(want.clone()),
            });
        }
    }
    if let Some(want) = &d.rcpt_to {
        let sorted = |v: &[String]| {
            let mut v: Vec<String> = v.iter().map(|a| a.to_ascii_lowercase()).collect();
            v.sort();
            v
        };
        let same = if rcpt_order { *want == m.envelope.rcpt_to } else { sorted(want) == sorted(&m.envelope.rcpt_to) };
        if !same {
            out.push(Miss {
                field: "rcpt_to".into(),
                expected: format!("{want:?}"),
                actual: format!("{:?}", m.envelope.rcpt_to),
                expected_text: None,
            });
        }
    }
    // Headers in order: each expectation matches a later header than the previous one.
    let mut pos = 0;
    for (k, h) in d.headers.iter().enumerate() {
        for (name, matcher) in h {
            let found =
                p.headers[pos..].iter().position(|(n, v)| n.eq_ignore_ascii_case(name) && matcher.matches_exact(v));
            match found {
                Some(f) => pos += f + 1,
                None => {
                    let values = p.all(name);
                    let earlier =
                        p.headers[..pos].iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && matcher.matches_exact(v));
                    let actual = if values.is_empty() {
                        format!("(no {name}: header)")
                    } else if earlier {
                        format!(
                            "(a matching {name}: header is there, but before the header matched by headers[{}])",
                            k.saturating_sub(1)
                        )
                    } else {
                        values.iter().map(|v| format!("{name}: {v}")).collect::<Vec<_>>().join("\n")
                    };
                    let expected_text = match matcher {
                        ValueMatcher::Text(t) if values.len() == 1 => Some(format!("{name}: {t}")),
                        _ => None,
                    };
                    out.push(Miss {
                        field: format!("headers[{k}].{name}"),
                        expected: matcher.to_string(),
                        actual,
                        expected_text,
                    });
                }
            }
        }
    }
    for (name, n) in &d.header_count {
        let got = p.all(name).len();
        if got != *n {
            out.push(Miss {
                field: format!("header_count.{name}"),
                expected: n.to_string(),
                actual: got.to_string(),
                expected_text: None,
            });
        }
    }
    if let Some(b) = &d.body {
        if !b.matches_within(&p.body) {
            out.push(Miss {
                field: "body".into(),
                expected: b.to_string(),
                actual: p.body.clone(),
                expected_text: None,
            });
        }
    }
    if let Some(n) = d.hops {
        let got = mock_hosts::message::hop_count(&m.data);
        if got != n {
            out.push(Miss {
                field: "hops".into(),
                expected: n.to_string(),
                actual: got.to_string(),
                expected_text: None,
            });
        }
    }
    for (field, expected, actual) in crate::queue_checks::part_misses(&d.parts, &m.data) {
        out.push(Miss { field, expected, actual, expected_text: None });
    }
    if !d.received_by.is_empty() {
        let by: Vec<String> = p.all("Received").iter().map(|v| received_by(v)).collect();
        for (k, m) in d.received_by.iter().enumerate() {
            let ok = by.get(k).is_some_and(|b| m.matches_exact(b));
            if !ok {
                out.push(Miss {
                    field: format!("received_by[{k}]"),
                    expected: m.to_string(),
                    actual: format!("Received: headers by (top first): {}", by.join(", ")),
                    expected_text: None,
                });
                break;
            }
        }
    }
    out
}

/// The candidate not yet `used` that `misses` finds the fewest misses with, and
/// those misses: the first with none, else the first with the fewest; `None`
/// when every candidate is used.
pub(crate) fn closest_unused<T, M>(
    candidates: &[T],
    used: &[bool],
    mut misses: impl FnMut(&T) -> Vec<M>,
) -> Option<(usize, Vec<M>)> {
    let mut best: Option<(usize, Vec<M>)> = None;
    for (k, c) in candidates.iter().enumerate() {
        if used[k] {
            continue;
        }
        let misses = misses(c);
        if misses.is_empty() {
            return Some((k, misses));
        }
        if best.as_ref().is_none_or(|(_, b)| misses.len() < b.len()) {
            best = Some((k, misses));
        }
    }
    best
}

/// The `by` host of a `Received:` value (`from a (b [ip]) by HOST (...)`), or `""`.
pub fn received_by(value: &str) -> String {
    let words: Vec<&str> = value.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0].eq_ignore_ascii_case("by"))
        .map(|w| w[1].trim_end_matches(';').to_string())
        .unwrap_or_default()
}

fn describe(d: &DeliveredExpect) -> String {
    let mut parts = Vec::new();
    if let Some(a) = &d.at {
        parts.push(format!("at {a}"));
    }
    if let Some(f) = &d.mail_from {
        parts.push(format!("from <{f}>"));
    }
    if let Some(r) = &d.rcpt_to {
        parts.push(format!("to {r:?}"));
    }
    if parts.is_empty() {
        "a delivered message".into()
    } else {
        format!("a message {}", parts.join(", "))
    }
}

fn summary(delivered: &[(String, lab_core::ReceivedMessage, ParsedMessage)]) -> String {
    if delivered.is_empty() {
        return "nothing delivered".into();
    }
    delivered
        .iter()
        .map(|(at, m, _)| format!("<{}> -> {:?} at {at}", m.envelope.mail_from, m.envelope.rcpt_to))
        .collect::<Vec<_>>()
        .join("; ")
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("                {l}")).collect::<Vec<_>>().join("\n")
}

/// A line diff of expected versus actual, pretty_assertions style.
/// Colours are stripped so the diff reads the same in JSON and JUnit reports.
fn diff(expected: &str, actual: &str) -> String {
    let coloured = format!("{}", pretty_assertions::StrComparison::new(expected, actual));
    let ansi = regex::Regex::new("\x1b\\[[0-9;]*m").expect("static regex");
    ansi.replace_all(&coloured, "").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(compare: Compare, relay: &str, matcher: &str, code: u16, text: &str) -> (usize, usize) {
        let mut c = Checker::new(compare, relay);
        let m = ReplyMatcher::parse(matcher).unwrap();
        check_reply(&m, Some(&Reply::new(code, text)), None, "rcpt".into(), &lab_core::TranscriptRecorder::new("t").snapshot(), &mut c);
        let (failures, wording, _) = c.finish();
        (failures.len(), wording.len())
    }

    #[test]
    fn behaviour_compares_reply_classes_and_lists_wording() {
        let course = "550 5.7.1 <v@x.example>... Relaying denied";
        // Postfix's refusal: same class, other code and text.
        assert_eq!(check(Compare::Behaviour, "postfix", course, 554, "5.7.1 <v@x.example>: Relay access denied"), (0, 1));
        // Accepting what should be refused is a behaviour difference.
        assert_eq!(check(Compare::Behaviour, "postfix", course, 250, "2.1.5 Ok"), (1, 0));
        // A temporary refusal is not a permanent one.
        assert_eq!(check(Compare::Behaviour, "postfix", course, 450, "4.7.1 try later"), (1, 0));
        // Exact comparison fails on wording.
        assert_eq!(check(Compare::Exact, "postfix", course, 554, "5.7.1 Relay access denied"), (1, 0));
        // A regex-only matcher names no class: compared as written.
        assert_eq!(check(Compare::Behaviour, "postfix", "/Relaying denied/", 554, "5.7.1 Relay access denied"), (1, 0));
    }

    #[test]
    fn recipient_order_within_a_transaction_counts_only_in_exact_mode() {
        let m = lab_core::ReceivedMessage {
            host: "mx".into(),
            queue_id: "q".into(),
            helo: None,
            peer: "127.0.0.1:25".parse().unwrap(),
            envelope: lab_core::Envelope {
                mail_from: "a@b.example".into(),
                rcpt_to: vec!["carol@x.example".into(), "bob@x.example".into()],
            },
            data: b"Subject: s\r\n\r\nbody\r\n".to_vec(),
            session: 0,
        };
        let p = message::parse(&m.data);
        let want = |rcpts: &[&str]| DeliveredExpect {
            rcpt_to: Some(rcpts.iter().map(|r| r.to_string()).collect()),
            ..Default::default()
        };
        let fields = |d: &DeliveredExpect, order| {
            delivered_misses(d, "mx", &m, &p, order).into_iter().map(|x| x.field).collect::<Vec<_>>()
        };
        let swapped = want(&["bob@x.example", "carol@x.example"]);
        assert_eq!(fields(&swapped, true), vec!["rcpt_to".to_string()]);
        assert!(fields(&swapped, false).is_empty());
        // a missing or extra recipient is a miss in both modes
        assert_eq!(fields(&want(&["bob@x.example"]), false), vec!["rcpt_to".to_string()]);
    }

    #[test]
    fn sendmail_log_lines_are_compared_only_on_the_builtin_relay() {
        let mut c = Checker::new(Compare::Behaviour, "exim");
        assert!(!c.compares_sendmail_log("expect.relay_log", 2));
        assert!(c.compares_sendmail_log("expect.relay_log_absent", 0));
        let (_, _, notes) = c.finish();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("expect.relay_log: 2 Sendmail 8.13 log line(s), not compared"), "{notes:?}");
        assert!(Checker::new(Compare::Behaviour, "builtin").compares_sendmail_log("expect.relay_log", 2));
        assert!(!Checker::new(Compare::Behaviour, "sendmail").compares_sendmail_log("expect.relay_log", 2));
        assert!(Checker::new(Compare::Exact, "exim").compares_sendmail_log("expect.relay_log", 2));
    }

    #[test]
    fn events_are_read_with_the_relays_own_normalizer() {
        let sendmail = "Nov 21 13:58:04 external sm-mta[14549]: 6ALDw40r014549: ruleset=check_rcpt, arg1=<victim@elsewhere.example>, relay=dialup-66.example.net [203.0.113.66], reject=550 5.7.1 <victim@elsewhere.example>... Relaying denied";
        let ev = relay_events("builtin", &[sendmail.to_string()]);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].kind, events::EventKind::Rejected);
        let want: crate::scenario::EventExpect =
            serde_yaml::from_str("{ event: rejected, to: Victim@Elsewhere.example, status: \"5\" }").unwrap();
        assert!(want.matches(&ev[0]), "{ev:?}");
        let wrong: crate::scenario::EventExpect =
            serde_yaml::from_str("{ event: rejected, to: victim@elsewhere.example, status: \"4\" }").unwrap();
        assert!(!wrong.matches(&ev[0]));
        // The same line read as Postfix's says nothing.
        assert!(relay_events("postfix", &[sendmail.to_string()]).is_empty());
        // Postfix's sender comes from the qmgr line of the same queue id.
        let postfix = [
            "Nov 21 14:02:51 external postfix/smtpd[2641]: 4F1A2B3C: client=mail.example.net[203.0.113.45]",
            "Nov 21 14:02:51 external postfix/qmgr[2630]: 4F1A2B3C: from=<alice@example.net>, size=420, nrcpt=1 (queue active)",
        ]
        .map(String::from);
        let ev = relay_events("postfix", &postfix);
        let received = ev.iter().find(|e| e.kind == events::EventKind::Received).expect("received");
        assert_eq!(received.from.as_deref(), Some("alice@example.net"), "{ev:?}");
    }
}
