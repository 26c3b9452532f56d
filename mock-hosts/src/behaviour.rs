//! How a scripted MX host misbehaves: per-phase rules, per-recipient rules,
//! greylisting, faults named in the recipient address, outage windows.
//!
//! All of it is data; the [`Session`](crate::session::Session) asks
//! [`SinkBehaviour::decide`] once per phase and acts on the [`Decision`]
//! (delay, then answer normally, answer with another reply, hang up, or fall
//! silent). Rules that count ("fail twice, then succeed") and the greylist
//! keep their state behind an `Arc`, so every session of one sink shares it.
//!
//! Real-world counterparts: Postfix `smtp-sink` (`-r` reject, `-q`
//! disconnect, `-W cmd:delay`), Mailpit's chaos triggers, the address
//! grammars of the Stalwart and mox test suites (`tempfail-451@`), postgrey
//! and milter-greylist for the greylist.

use chrono::{DateTime, Utc};
use lab_core::Reply;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Where in the SMTP dialogue a sink is when it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Phase {
    /// Just after the TCP connection was accepted, before any banner.
    Connect,
    /// The `220` banner.
    Banner,
    /// `HELO` / `EHLO`.
    Helo,
    /// `MAIL FROM`.
    Mail,
    /// `RCPT TO`.
    Rcpt,
    /// `DATA`, before the `354`.
    Data,
    /// After the final `.` of the message.
    DataEnd,
    /// `QUIT`.
    Quit,
}

impl Phase {
    /// Every phase, in dialogue order.
    pub const ALL: [Phase; 8] = [
        Phase::Connect,
        Phase::Banner,
        Phase::Helo,
        Phase::Mail,
        Phase::Rcpt,
        Phase::Data,
        Phase::DataEnd,
        Phase::Quit,
    ];

    /// The name scenarios use: `connect`, `banner`, `helo`, `mail`, `rcpt`, `data`, `data_end`, `quit`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Banner => "banner",
            Phase::Helo => "helo",
            Phase::Mail => "mail",
            Phase::Rcpt => "rcpt",
            Phase::Data => "data",
            Phase::DataEnd => "data_end",
            Phase::Quit => "quit",
        }
    }

    /// The phase called `name` (`ehlo` is `helo`).
    pub fn parse(name: &str) -> Option<Phase> {
        let name = name.trim().to_ascii_lowercase();
        if name == "ehlo" {
            return Some(Phase::Helo);
        }
        Phase::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// What a sink does at a phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer as a healthy MX would.
    Accept,
    /// Answer with this reply. A 2xx/3xx reply goes on as `Accept` would, with
    /// this text; a 4xx/5xx reply refuses the command; `421` also closes.
    Reply(Reply),
    /// Close the connection without a word (Postfix smtp-sink `-q`).
    Disconnect,
    /// Say nothing more and keep the connection open, so the client times out.
    Silence,
}

impl Action {
    /// Parse what a scenario writes: `accept`, `disconnect`, `silence` (or
    /// `blackhole`), or a reply `CODE [text]` such as `550 5.1.1 unknown`.
    pub fn parse(text: &str) -> Result<Action, String> {
        let t = text.trim();
        match t.to_ascii_lowercase().as_str() {
            "accept" => return Ok(Action::Accept),
            "disconnect" => return Ok(Action::Disconnect),
            "silence" | "silent" | "blackhole" => return Ok(Action::Silence),
            _ => {}
        }
        let code = t.get(..3).filter(|c| c.bytes().all(|b| b.is_ascii_digit())).and_then(|c| c.parse::<u16>().ok());
        match code {
            Some(code) if (200..600).contains(&code) && t[3..].chars().next().is_none_or(|c| c == ' ') => {
                Ok(Action::Reply(Reply::new(code, t[3..].trim())))
            }
            _ => Err(format!(
                "expected `accept`, `disconnect`, `silence` or a reply such as \"550 5.1.1 unknown user\", found {t:?}"
            )),
        }
    }
}

/// What the sink does now: wait, then act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Wait this long before answering.
    pub delay: Duration,
    /// Then this.
    pub action: Action,
}

impl Decision {
    /// Answer normally, at once.
    pub fn accept() -> Decision {
        Decision { delay: Duration::ZERO, action: Action::Accept }
    }
}

/// One scripted rule: an action, an optional delay, and optionally a number of
/// times it applies (then the phase is answered normally: "fail twice, then
/// succeed"). The count is shared by every session of the sink.
#[derive(Debug, Clone)]
pub struct Rule {
    /// What to do.
    pub action: Action,
    /// How long to wait first.
    pub delay: Duration,
    /// Apply only to the first `n` matching commands; `None` = always.
    pub times: Option<u32>,
    used: Arc<AtomicU32>,
}

impl Rule {
    /// A rule that always applies.
    pub fn new(action: Action) -> Rule {
        Rule { action, delay: Duration::ZERO, times: None, used: Arc::default() }
    }

    /// The same rule, after a delay.
    pub fn delayed(mut self, delay: Duration) -> Rule {
        self.delay = delay;
        self
    }

    /// The same rule, for the first `n` matching commands only.
    pub fn times(mut self, n: u32) -> Rule {
        self.times = Some(n);
        self
    }

    /// How many times it has applied so far.
    pub fn used(&self) -> u32 {
        self.used.load(Ordering::SeqCst)
    }

    /// Whether it applies now; counts one use when it does.
    fn take(&self) -> bool {
        match self.times {
            None => {
                self.used.fetch_add(1, Ordering::SeqCst);
                true
            }
            Some(n) => self.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| (u < n).then_some(u + 1)).is_ok(),
        }
    }
}

/// Which recipients a per-recipient rule is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptPattern {
    /// This address (case-insensitive).
    Address(String),
    /// Every address at this domain (`@example.com`).
    Domain(String),
    /// Every address (`*`).
    Any,
}

impl RcptPattern {
    /// `a@b` (one address), `@b` (a domain) or `*` (anyone).
    pub fn parse(text: &str) -> Result<RcptPattern, String> {
        let t = text.trim().trim_start_matches('<').trim_end_matches('>').to_ascii_lowercase();
        if t == "*" {
            Ok(RcptPattern::Any)
        } else if let Some(d) = t.strip_prefix('@') {
            Ok(RcptPattern::Domain(d.to_string()))
        } else if t.contains('@') {
            Ok(RcptPattern::Address(t))
        } else {
            Err(format!("expected a recipient such as \"bad@example.com\", \"@example.com\" or \"*\", found {text:?}"))
        }
    }

    fn matches(&self, addr: &str) -> bool {
        let addr = addr.to_ascii_lowercase();
        match self {
            RcptPattern::Any => true,
            RcptPattern::Address(a) => *a == addr,
            RcptPattern::Domain(d) => addr.rsplit_once('@').is_some_and(|(_, dom)| dom == d),
        }
    }
}

/// Scripted answers: a rule per phase, rules per recipient, delays per phase.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// At most one rule per phase.
    pub phases: Vec<(Phase, Rule)>,
    /// Rules for `RCPT`, tried in order before the `rcpt` phase rule.
    pub recipients: Vec<(RcptPattern, Rule)>,
    /// Extra waits before answering a phase, whatever the answer.
    pub delays: Vec<(Phase, Duration)>,
}

impl Script {
    /// True when the script changes nothing.
    pub fn is_empty(&self) -> bool {
        self.phases.is_empty() && self.recipients.is_empty() && self.delays.is_empty()
    }

    fn phase_rule(&self, phase: Phase) -> Option<&Rule> {
        self.phases.iter().find(|(p, _)| *p == phase).map(|(_, r)| r)
    }

    fn delay(&self, phase: Phase) -> Duration {
        self.delays.iter().filter(|(p, _)| *p == phase).map(|(_, d)| *d).sum()
    }
}

/// Greylisting as postgrey and milter-greylist do it (spec §9.5): the first
/// attempt of a (client, sender, recipient) triplet is deferred with a 4xx;
/// a retry after `delay` passes. Clients can be tracked by /24 (server farms),
/// senders can be whitelisted (broken list servers), and a client that passed
/// once can be whitelisted for good.
#[derive(Debug, Clone)]
pub struct Greylist {
    /// How long a triplet must wait before it passes (postgrey: 300 s; the lab: seconds).
    pub delay: Duration,
    /// The deferral's code (451, as milter-greylist; postgrey says 450).
    pub code: u16,
    /// Track IPv4 clients by this many leading bits (32: exact address; 24: the /24).
    pub prefix_bits: u8,
    /// Once a triplet passed, let every later triplet from that client pass.
    pub auto_whitelist: bool,
    /// Senders (`a@b` or `@domain`) never greylisted.
    pub whitelist_senders: Vec<RcptPattern>,
    state: Arc<Mutex<GreylistState>>,
}

#[derive(Debug, Default)]
struct GreylistState {
    first_seen: HashMap<(String, String, String), DateTime<Utc>>,
    whitelisted: HashSet<String>,
    deferred: u64,
    passed: u64,
}

/// How many attempts a greylist deferred and let through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GreylistStats {
    /// Attempts answered with the 4xx.
    pub deferred: u64,
    /// Attempts let through.
    pub passed: u64,
}

impl Greylist {
    /// A greylist deferring new triplets for `delay`, exact client addresses, 451.
    pub fn new(delay: Duration) -> Greylist {
        Greylist {
            delay,
            code: 451,
            prefix_bits: 32,
            auto_whitelist: false,
            whitelist_senders: Vec::new(),
            state: Arc::default(),
        }
    }

    /// Track IPv4 clients by their first `bits` bits (24: server farms pass).
    pub fn by_prefix(mut self, bits: u8) -> Greylist {
        self.prefix_bits = bits.min(32);
        self
    }

    /// Defer with this code (450, 451).
    pub fn with_code(mut self, code: u16) -> Greylist {
        self.code = code;
        self
    }

    /// Whitelist a client once one of its triplets passed.
    pub fn with_auto_whitelist(mut self, on: bool) -> Greylist {
        self.auto_whitelist = on;
        self
    }

    /// Never greylist these senders.
    pub fn with_whitelisted_senders(mut self, senders: Vec<RcptPattern>) -> Greylist {
        self.whitelist_senders = senders;
        self
    }

    /// What it deferred and passed so far.
    pub fn stats(&self) -> GreylistStats {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        GreylistStats { deferred: s.deferred, passed: s.passed }
    }

    fn client_key(&self, ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(v4) if self.prefix_bits < 32 => {
                let bits = u32::from(v4) & (u32::MAX.checked_shl(32 - u32::from(self.prefix_bits)).unwrap_or(0));
                format!("{}/{}", std::net::Ipv4Addr::from(bits), self.prefix_bits)
            }
            other => other.to_string(),
        }
    }

    /// The deferral for this attempt, or `None` to let it pass.
    pub fn check(&self, client: IpAddr, sender: &str, rcpt: &str, now: DateTime<Utc>) -> Option<Reply> {
        if self.whitelist_senders.iter().any(|p| p.matches(sender)) {
            return None;
        }
        let key = self.client_key(client);
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.whitelisted.contains(&key) {
            s.passed += 1;
            return None;
        }
        let triplet = (key.clone(), sender.to_ascii_lowercase(), rcpt.to_ascii_lowercase());
        let first = *s.first_seen.entry(triplet).or_insert(now);
        let waited = (now - first).to_std().unwrap_or(Duration::ZERO);
        if waited >= self.delay && now > first {
            s.passed += 1;
            if self.auto_whitelist {
                s.whitelisted.insert(key);
            }
            return None;
        }
        s.deferred += 1;
        let left = self.delay.saturating_sub(waited).as_secs().max(1);
        let class = self.code / 100;
        Some(Reply::new(
            self.code,
            format!(
                "{class}.7.1 Greylisting in action, please come back in {:02}:{:02}:{:02}",
                left / 3600,
                left / 60 % 60,
                left % 60
            ),
        ))
    }
}

/// A fault named in the recipient address, as the Stalwart and mox test
/// suites do it, so that a scenario works against a relay we cannot
/// instrument: the relay passes the address on, the MX reads it.
///
/// The local part is one of `tempfail[-4NN]`, `reject[-5NN]`, `slow-<time>`
/// (`slow-2s`, `slow-500ms`), `disconnect`, `silence`; with `-data` after it
/// (`reject-554-data@x`) the fault strikes at the end of DATA instead of at RCPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFault {
    /// `Rcpt` or `DataEnd`.
    pub phase: Phase,
    /// What to do there.
    pub decision: Decision,
}

/// The fault `addr` names, if it names one.
pub fn address_fault(addr: &str) -> Option<AddressFault> {
    let (local, _) = addr.rsplit_once('@')?;
    let local = local.to_ascii_lowercase();
    let (word, phase) = match local.strip_suffix("-data") {
        Some(w) => (w.to_string(), Phase::DataEnd),
        None => (local, Phase::Rcpt),
    };
    let reply = |code: u16, what: &str| {
        Action::Reply(Reply::new(code, format!("{}.0.0 <{addr}>... {what} requested by the address", code / 100)))
    };
    let (delay, action) = match word.as_str() {
        "tempfail" => (Duration::ZERO, reply(451, "temporary failure")),
        "reject" => (Duration::ZERO, reply(550, "rejection")),
        "disconnect" => (Duration::ZERO, Action::Disconnect),
        "silence" | "blackhole" => (Duration::ZERO, Action::Silence),
        w => {
            if let Some(code) = w.strip_prefix("tempfail-").and_then(|c| c.parse::<u16>().ok()) {
                if !(400..500).contains(&code) {
                    return None;
                }
                (Duration::ZERO, reply(code, "temporary failure"))
            } else if let Some(code) = w.strip_prefix("reject-").and_then(|c| c.parse::<u16>().ok()) {
                if !(500..600).contains(&code) {
                    return None;
                }
                (Duration::ZERO, reply(code, "rejection"))
            } else if let Some(t) = w.strip_prefix("slow-") {
                (parse_short_duration(t)?, Action::Accept)
            } else {
                return None;
            }
        }
    };
    Some(AddressFault { phase, decision: Decision { delay, action } })
}

/// `2s`, `500ms`, `1m`: the durations the address grammar takes.
fn parse_short_duration(t: &str) -> Option<Duration> {
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = t[..split].parse().ok()?;
    match &t[split..] {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        _ => None,
    }
}

/// When the host is down (nothing listens: connections are refused), as
/// windows of lab time counted from the lab's start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// `(from, until)` windows; `until` is exclusive.
    pub down: Vec<(Duration, Duration)>,
}

impl Schedule {
    /// If the host is down at `at`, until when.
    pub fn down_until(&self, at: Duration) -> Option<Duration> {
        self.down.iter().filter(|(from, until)| *from <= at && at < *until).map(|(_, until)| *until).max()
    }

    /// When the next outage after `at` starts.
    pub fn next_down(&self, at: Duration) -> Option<Duration> {
        self.down.iter().map(|(from, _)| *from).filter(|from| *from > at).min()
    }
}

/// Everything that decides how a sink answers. The default accepts every
/// well-formed transaction and reads faults from recipient addresses.
#[derive(Debug, Clone)]
pub struct SinkBehaviour {
    /// Scripted rules and delays.
    pub script: Script,
    /// Greylisting at RCPT.
    pub greylist: Option<Greylist>,
    /// Whether recipient addresses may name faults (`tempfail-451@`).
    pub address_faults: bool,
}

impl Default for SinkBehaviour {
    fn default() -> Self {
        SinkBehaviour::accept()
    }
}

/// What the session knows when it asks.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The phase.
    pub phase: Phase,
    /// The client's lab address.
    pub client: IpAddr,
    /// The envelope sender so far.
    pub mail_from: Option<&'a str>,
    /// For `Rcpt`: the recipient asked for.
    pub rcpt: Option<&'a str>,
    /// For `Data`/`DataEnd`: the accepted recipients.
    pub rcpts: &'a [String],
    /// Now, on the lab clock.
    pub now: DateTime<Utc>,
}

impl SinkBehaviour {
    /// A healthy MX: accepts everything, honours address faults.
    pub fn accept() -> SinkBehaviour {
        SinkBehaviour { script: Script::default(), greylist: None, address_faults: true }
    }

    /// A scripted MX.
    pub fn scripted(script: Script) -> SinkBehaviour {
        SinkBehaviour { script, ..SinkBehaviour::accept() }
    }

    /// Accepts the TCP connection and never says a word (so the client times out).
    pub fn blackhole() -> SinkBehaviour {
        SinkBehaviour::scripted(Script {
            phases: vec![(Phase::Connect, Rule::new(Action::Silence))],
            ..Script::default()
        })
    }

    /// A greylisting MX.
    pub fn greylisting(greylist: Greylist) -> SinkBehaviour {
        SinkBehaviour { greylist: Some(greylist), ..SinkBehaviour::accept() }
    }

    /// True when it answers every phase normally.
    pub fn is_plain(&self) -> bool {
        self.script.is_empty() && self.greylist.is_none()
    }

    /// How to answer now. Sources, first match wins: for RCPT a
    /// per-recipient rule, then a fault in the address, then the phase rule,
    /// then the greylist; at the end of DATA a `-data` address fault of any
    /// recipient, then the phase rule; elsewhere the phase rule. Phase delays
    /// add to the rule's delay.
    pub fn decide(&self, ask: &Ask<'_>) -> Decision {
        if self.is_plain() && !self.address_faults {
            return Decision::accept();
        }
        let extra = self.script.delay(ask.phase);
        let mut d = self.decide_action(ask);
        d.delay += extra;
        d
    }

    fn decide_action(&self, ask: &Ask<'_>) -> Decision {
        let from_rule = |r: &Rule| Decision { delay: r.delay, action: r.action.clone() };
        match ask.phase {
            Phase::Rcpt => {
                let rcpt = ask.rcpt.unwrap_or("");
                for (pattern, rule) in &self.script.recipients {
                    if pattern.matches(rcpt) && rule.take() {
                        return from_rule(rule);
                    }
                }
                if self.address_faults {
                    if let Some(f) = address_fault(rcpt).filter(|f| f.phase == Phase::Rcpt) {
                        return f.decision;
                    }
                }
                if let Some(rule) = self.script.phase_rule(Phase::Rcpt).filter(|r| r.take()) {
                    return from_rule(rule);
                }
                if let Some(g) = &self.greylist {
                    if let Some(reply) = g.check(ask.client, ask.mail_from.unwrap_or(""), rcpt, ask.now) {
                        return Decision { delay: Duration::ZERO, action: Action::Reply(reply) };
                    }
                }
                Decision::accept()
            }
            Phase::DataEnd => {
                if self.address_faults {
                    let fault = ask.rcpts.iter().filter_map(|r| address_fault(r)).find(|f| f.phase == Phase::DataEnd);
                    if let Some(f) = fault {
                        return f.decision;
                    }
                }
                self.script
                    .phase_rule(Phase::DataEnd)
                    .filter(|r| r.take())
                    .map(from_rule)
                    .unwrap_or_else(Decision::accept)
            }
            phase => self.script.phase_rule(phase).filter(|r| r.take()).map(from_rule).unwrap_or_else(Decision::accept),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(phase: Phase, rcpt: Option<&str>, now: DateTime<Utc>) -> Ask<'_> {
        Ask { phase, client: "192.0.2.7".parse().unwrap(), mail_from: Some("a@b.example"), rcpt, rcpts: &[], now }
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn actions_parse_from_scenario_words() {
        assert_eq!(Action::parse("accept"), Ok(Action::Accept));
        assert_eq!(Action::parse("Disconnect"), Ok(Action::Disconnect));
        assert_eq!(Action::parse("blackhole"), Ok(Action::Silence));
        assert_eq!(Action::parse("550 5.1.1 unknown"), Ok(Action::Reply(Reply::new(550, "5.1.1 unknown"))));
        assert_eq!(Action::parse("421"), Ok(Action::Reply(Reply::new(421, ""))));
        assert!(Action::parse("55 no").unwrap_err().contains("expected `accept`"));
        assert!(Action::parse("5501 x").is_err());
        assert!(Action::parse("hang up").is_err());
    }

    #[test]
    fn fail_n_times_then_succeed_counts_across_calls() {
        let rule = Rule::new(Action::Reply(Reply::new(451, "4.3.0 try later"))).times(2);
        let b = SinkBehaviour::scripted(Script { phases: vec![(Phase::DataEnd, rule.clone())], ..Script::default() });
        let codes: Vec<Action> = (0..4).map(|_| b.decide(&ask(Phase::DataEnd, None, t(0))).action).collect();
        assert_eq!(codes[0], Action::Reply(Reply::new(451, "4.3.0 try later")));
        assert_eq!(codes[1], codes[0]);
        assert_eq!(codes[2], Action::Accept);
        assert_eq!(codes[3], Action::Accept);
        assert_eq!(rule.used(), 2);
    }

    #[test]
    fn per_recipient_rules_come_first_then_address_faults_then_the_phase_rule() {
        let script = Script {
            phases: vec![(Phase::Rcpt, Rule::new(Action::parse("452 4.2.2 full").unwrap()))],
            recipients: vec![
                (RcptPattern::parse("bad@x.example").unwrap(), Rule::new(Action::parse("550 5.1.1 unknown").unwrap())),
                (RcptPattern::parse("@ok.example").unwrap(), Rule::new(Action::Accept)),
            ],
            delays: vec![(Phase::Rcpt, Duration::from_millis(5))],
        };
        let b = SinkBehaviour::scripted(script);
        let d = b.decide(&ask(Phase::Rcpt, Some("BAD@x.example"), t(0)));
        assert_eq!(d.action, Action::Reply(Reply::new(550, "5.1.1 unknown")));
        assert_eq!(d.delay, Duration::from_millis(5));
        assert_eq!(b.decide(&ask(Phase::Rcpt, Some("u@ok.example"), t(0))).action, Action::Accept);
        assert_eq!(b.decide(&ask(Phase::Rcpt, Some("disconnect@y"), t(0))).action, Action::Disconnect);
        assert_eq!(b.decide(&ask(Phase::Rcpt, Some("u@y"), t(0))).action, Action::Reply(Reply::new(452, "4.2.2 full")));
    }

    #[test]
    fn the_address_grammar() {
        let f = address_fault("tempfail-452@mx.example").unwrap();
        assert_eq!(f.phase, Phase::Rcpt);
        assert_eq!(
            f.decision.action,
            Action::Reply(Reply::new(
                452,
                "4.0.0 <tempfail-452@mx.example>... temporary failure requested by the address"
            ))
        );
        let f = address_fault("Reject-554-Data@mx.example").unwrap();
        assert_eq!(f.phase, Phase::DataEnd);
        assert!(matches!(f.decision.action, Action::Reply(ref r) if r.code == 554));
        assert_eq!(
            address_fault("reject@x").unwrap().decision.action,
            Action::Reply(Reply::new(550, "5.0.0 <reject@x>... rejection requested by the address"))
        );
        let slow = address_fault("slow-2s@x").unwrap();
        assert_eq!(slow.decision, Decision { delay: Duration::from_secs(2), action: Action::Accept });
        assert_eq!(address_fault("slow-250ms@x").unwrap().decision.delay, Duration::from_millis(250));
        assert_eq!(address_fault("silence@x").unwrap().decision.action, Action::Silence);
        // Not faults: wrong class, unknown words, no domain.
        for plain in ["tempfail-550@x", "reject-451@x", "slow-fast@x", "hal@x", "tempfail"] {
            assert_eq!(address_fault(plain), None, "{plain}");
        }
        // A sink can be told to ignore the grammar.
        let b = SinkBehaviour { address_faults: false, ..SinkBehaviour::accept() };
        assert_eq!(b.decide(&ask(Phase::Rcpt, Some("disconnect@y"), t(0))).action, Action::Accept);
    }

    #[test]
    fn greylist_defers_a_new_triplet_then_passes_after_the_delay() {
        let g = Greylist::new(Duration::from_secs(300));
        let b = SinkBehaviour::greylisting(g.clone());
        let first = b.decide(&ask(Phase::Rcpt, Some("x@y"), t(0))).action;
        assert_eq!(first, Action::Reply(Reply::new(451, "4.7.1 Greylisting in action, please come back in 00:05:00")));
        let early = b.decide(&ask(Phase::Rcpt, Some("x@y"), t(120))).action;
        assert_eq!(early, Action::Reply(Reply::new(451, "4.7.1 Greylisting in action, please come back in 00:03:00")));
        assert_eq!(b.decide(&ask(Phase::Rcpt, Some("x@y"), t(300))).action, Action::Accept);
        // Another recipient is another triplet.
        assert!(matches!(b.decide(&ask(Phase::Rcpt, Some("z@y"), t(301))).action, Action::Reply(_)));
        assert_eq!(g.stats(), GreylistStats { deferred: 3, passed: 1 });
    }

    #[test]
    fn greylist_by_slash_24_lets_a_server_farm_retry_from_another_address() {
        let mut g = Greylist::new(Duration::from_secs(60));
        let farm = |last: u8| IpAddr::from([203, 0, 113, last]);
        assert!(g.check(farm(10), "a@b", "c@d", t(0)).is_some());
        assert!(g.check(farm(11), "a@b", "c@d", t(61)).is_some(), "exact-address tracking defers the other farm host");
        g = Greylist { prefix_bits: 24, ..Greylist::new(Duration::from_secs(60)) };
        assert!(g.check(farm(10), "a@b", "c@d", t(0)).is_some());
        assert!(g.check(farm(11), "a@b", "c@d", t(61)).is_none(), "/24 tracking passes it");
    }

    #[test]
    fn greylist_whitelists_senders_and_clients_that_passed() {
        let g = Greylist {
            auto_whitelist: true,
            whitelist_senders: vec![RcptPattern::parse("@lists.example").unwrap()],
            ..Greylist::new(Duration::from_secs(60))
        };
        let ip: IpAddr = "198.51.100.5".parse().unwrap();
        assert!(g.check(ip, "owner-5@lists.example", "c@d", t(0)).is_none());
        assert!(g.check(ip, "a@b", "c@d", t(0)).is_some());
        assert!(g.check(ip, "a@b", "c@d", t(60)).is_none());
        assert!(g.check(ip, "new@b", "other@d", t(61)).is_none(), "the client is whitelisted after passing once");
    }

    #[test]
    fn schedule_windows() {
        let s = Schedule {
            down: vec![(Duration::ZERO, Duration::from_secs(2)), (Duration::from_secs(5), Duration::from_secs(6))],
        };
        assert_eq!(s.down_until(Duration::from_millis(1500)), Some(Duration::from_secs(2)));
        assert_eq!(s.down_until(Duration::from_secs(2)), None);
        assert_eq!(s.next_down(Duration::from_secs(2)), Some(Duration::from_secs(5)));
        assert_eq!(s.next_down(Duration::from_secs(5)), None);
        assert_eq!(Phase::parse("EHLO"), Some(Phase::Helo));
        assert_eq!(Phase::parse("data_end"), Some(Phase::DataEnd));
        assert_eq!(Phase::parse("end"), None);
    }
}
