//! The scenario format, as serde reads it.
//!
//! Unknown keys are errors everywhere (`deny_unknown_fields`): a mistyped
//! expectation must never pass silently. The format is documented for users
//! in `scenarios/README.md`; keep the two in step.

use super::actor_spec::{dnsbl_list, DnsFaultSpec, DnsStepSpec, DnsblSpec, ForgeSpec, MtaSpec, SlamSpec};
use super::conformance_spec::{EventExpect, KnownDifference, NativeSpec};
use super::duration::LabDuration;
use super::matcher::{ReplyMatcher, ValueMatcher};
use super::queue_spec::{ClockKind, FlushSpec, QueueExpect, QueueRunSpec};
use super::smtp_spec::SmtpSpec;
use relay_under_test::RelayProfile;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One lab: a relay, the virtual internet around it, what happens, what must result.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name, conventionally `<family>/<case>`.
    pub name: String,
    /// One line: what the lab shows.
    #[serde(default)]
    pub about: String,
    /// The course module it comes from.
    #[serde(default)]
    pub course: Option<String>,
    /// A paragraph in plain words (from the course, in our words) that
    /// `relaylab explain` prints before what it derives from the scenario.
    #[serde(default)]
    pub explain: Option<String>,
    /// Compare munged output against `<scenario>.golden` beside the file:
    /// `true` (transcripts and relay log) or a list of `transcripts`, `relay_log`.
    #[serde(default)]
    pub golden: Option<GoldenSpec>,
    /// Tags; the first is conventionally the family.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Wall-clock budget for the whole lab (default 20s). A relay that hangs
    /// fails the lab when it runs out; the run goes on.
    #[serde(default)]
    pub budget: Option<LabDuration>,
    /// The relay's profile (hostname, relay_domains, ...).
    pub relay: RelayProfile,
    /// The relays the scenario applies to (default: every relay). On the
    /// others it is reported "not applicable" (`relaylab matrix`, `run --relay`).
    #[serde(default)]
    pub relays: Option<Vec<RelayName>>,
    /// Native configuration per real MTA: a snippet added to what the
    /// profile renders, or the user's whole file (`sendmail.mc`, `main.cf`).
    #[serde(default)]
    pub native: BTreeMap<RelayName, NativeSpec>,
    /// Differences from the builtin relay that were looked at, per relay:
    /// legitimate ones do not fail the lab, bugs still do (`relaylab matrix`).
    #[serde(default)]
    pub differences: BTreeMap<RelayName, Vec<KnownDifference>>,
    /// Network settings of the lab.
    #[serde(default)]
    pub network: NetworkSpec,
    /// The virtual hosts around the relay, by name.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostSpec>,
    /// Extra DNS records, by owner name.
    #[serde(default)]
    pub dns: BTreeMap<String, DnsNode>,
    /// DNS faults in force from the start (SERVFAIL, timeouts, ...).
    #[serde(default)]
    pub dns_faults: Vec<DnsFaultSpec>,
    /// DNS blacklist zones and who is listed in them.
    #[serde(default, deserialize_with = "dnsbl_list")]
    pub dnsbl: Vec<DnsblSpec>,
    /// The lab's clock: `virtual` (default) or `wall`.
    #[serde(default)]
    pub clock: ClockKind,
    /// After the steps, let lab time run until this long after the lab's
    /// start (queue runs, retries and DSN deadlines happen on the way).
    #[serde(default)]
    pub run_until: Option<LabDuration>,
    /// What happens, in order.
    pub steps: Vec<Step>,
    /// What must be true once every step ran and the relay settled.
    #[serde(default)]
    pub expect: FinalExpect,
}

/// What part of a lab's output is compared against its golden file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoldenPart {
    /// The SMTP sessions (client to relay, relay to MX hosts, hosts sending on).
    Transcripts,
    /// The relay's log lines.
    RelayLog,
}

/// `golden: true`, `golden: false` or `golden: [transcripts, relay_log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenSpec(pub Vec<GoldenPart>);

impl<'de> Deserialize<'de> for GoldenSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Parts(Vec<String>),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Flag(true)) => Ok(GoldenSpec(vec![GoldenPart::Transcripts, GoldenPart::RelayLog])),
            Ok(Raw::Flag(false)) => Ok(GoldenSpec(Vec::new())),
            Ok(Raw::Parts(v)) => {
                let mut out = Vec::new();
                for p in v {
                    let part = match p.as_str() {
                        "transcripts" => GoldenPart::Transcripts,
                        "relay_log" => GoldenPart::RelayLog,
                        other => {
                            return Err(serde::de::Error::custom(format!(
                                "golden: unknown part `{other}`: expected transcripts or relay_log"
                            )))
                        }
                    };
                    if !out.contains(&part) {
                        out.push(part);
                    }
                }
                Ok(GoldenSpec(out))
            }
            Err(_) => {
                Err(serde::de::Error::custom("golden: expected true, false, or a list of transcripts, relay_log"))
            }
        }
    }
}

impl Scenario {
    /// The parts compared against the golden file (empty: golden output is off).
    pub fn golden_parts(&self) -> &[GoldenPart] {
        self.golden.as_ref().map(|g| g.0.as_slice()).unwrap_or(&[])
    }
}

/// Network settings of a lab.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// The relay's lab address (default 192.0.2.25).
    #[serde(default = "default_relay_ip")]
    pub relay_ip: IpAddr,
    /// Which network backend runs the lab's builtin relay (`loopback`). Real MTAs
    /// (`--relay postfix` ...) always run on the `netns` backend.
    #[serde(default)]
    pub backend: Backend,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec { relay_ip: default_relay_ip(), backend: Backend::Loopback }
    }
}

fn default_relay_ip() -> IpAddr {
    IpAddr::from([192, 0, 2, 25])
}

/// A relay the harness can put under test (`relaylab run --relay`, `relays:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayName {
    /// The builtin reference relay (loopback backend, no privileges).
    #[default]
    Builtin,
    /// Postfix, on the netns backend.
    Postfix,
    /// Sendmail, on the netns backend.
    Sendmail,
    /// Exim, on the netns backend.
    Exim,
    /// OpenSMTPD, on the netns backend.
    Opensmtpd,
}

impl RelayName {
    /// Every relay, builtin first.
    pub const ALL: [RelayName; 5] =
        [RelayName::Builtin, RelayName::Postfix, RelayName::Sendmail, RelayName::Exim, RelayName::Opensmtpd];

    /// `builtin`, `postfix`, `sendmail`, `exim`, `opensmtpd`.
    pub fn as_str(self) -> &'static str {
        match self {
            RelayName::Builtin => "builtin",
            RelayName::Postfix => "postfix",
            RelayName::Sendmail => "sendmail",
            RelayName::Exim => "exim",
            RelayName::Opensmtpd => "opensmtpd",
        }
    }

    /// True for the real MTAs (netns backend).
    pub fn is_real(self) -> bool {
        self != RelayName::Builtin
    }
}

impl std::fmt::Display for RelayName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RelayName {
    type Err = String;
    fn from_str(s: &str) -> Result<RelayName, String> {
        RelayName::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| format!("unknown relay `{s}`: expected one of builtin, postfix, sendmail, exim, opensmtpd"))
    }
}

/// A network backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Every virtual host on its own 127.x.y.z address; no privileges needed.
    #[default]
    Loopback,
}

/// One virtual host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Its lab address. Hosts without one get the next free address in 198.51.100.0/24.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// Its reverse-DNS name. Default: the host's name when that is a domain
    /// name (has a dot); `""` means no PTR record at all.
    #[serde(default)]
    pub ptr: Option<String>,
    /// Whether to publish an A record for the host's name (default: when the name has a dot).
    #[serde(default)]
    pub a_record: Option<bool>,
    /// The SMTP service it runs on the lab's SMTP port, if any: `accept`,
    /// `down`, `blackhole`, `greylist`, or a mapping of behaviours.
    #[serde(default)]
    pub smtp: Option<SmtpSpec>,
    /// How many addresses the host owns in its /24, starting with its own
    /// (a server farm; default: as many as its `slam`/`mta` steps need).
    #[serde(default)]
    pub farm: Option<usize>,
}

/// DNS records for one owner name: `MX: ["10 mx.example"]`, `A: 192.0.2.1`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsNode {
    /// IPv4 addresses.
    #[serde(rename = "A", default, deserialize_with = "one_or_many")]
    pub a: Vec<String>,
    /// IPv6 addresses.
    #[serde(rename = "AAAA", default, deserialize_with = "one_or_many")]
    pub aaaa: Vec<String>,
    /// Mail exchangers, `<preference> <host>`.
    #[serde(rename = "MX", default, deserialize_with = "one_or_many")]
    pub mx: Vec<String>,
    /// Reverse names (for `in-addr.arpa` owners).
    #[serde(rename = "PTR", default, deserialize_with = "one_or_many")]
    pub ptr: Vec<String>,
    /// Text records.
    #[serde(rename = "TXT", default, deserialize_with = "one_or_many")]
    pub txt: Vec<String>,
    /// Alias target.
    #[serde(rename = "CNAME", default, deserialize_with = "one_or_many")]
    pub cname: Vec<String>,
}

impl DnsNode {
    /// `(type, value)` pairs in a stable order.
    pub fn records(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        for (t, vs) in [
            ("A", &self.a),
            ("AAAA", &self.aaaa),
            ("MX", &self.mx),
            ("PTR", &self.ptr),
            ("TXT", &self.txt),
            ("CNAME", &self.cname),
        ] {
            out.extend(vs.iter().map(|v| (t, v.as_str())));
        }
        out
    }
}

/// Accept `X: value` as well as `X: [value, value]`.
pub(crate) fn opt_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    one_or_many(d)
}

/// Accept `X: value` as well as `X: [value, value]`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(s)) => vec![s],
        Ok(OneOrMany::Many(v)) => v,
        Err(_) => {
            return Err(serde::de::Error::custom(
                "expected a record value such as \"10 mx.example.com\" or a list of them",
            ))
        }
    })
}

/// One step of a lab. Exactly one action key (`send`, `script`, `settle`,
/// `slam`, `mta`, `dns`, `wait`) per step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Send one message through the relay, structured.
    #[serde(default)]
    pub send: Option<SendSpec>,
    /// Play a raw SMTP dialogue, line by line.
    #[serde(default)]
    pub script: Option<ScriptSpec>,
    /// Wait until the relay (and every forwarder) has finished (at most this long).
    #[serde(default)]
    pub settle: Option<LabDuration>,
    /// Many connections, many messages: a slammer.
    #[serde(default)]
    pub slam: Option<SlamSpec>,
    /// A sending MTA that queues on 4xx and retries on a schedule.
    #[serde(default)]
    pub mta: Option<MtaSpec>,
    /// Change the lab's DNS (records, faults) now.
    #[serde(default)]
    pub dns: Option<DnsStepSpec>,
    /// Let lab time pass (outage windows, greylist delays).
    #[serde(default)]
    pub wait: Option<LabDuration>,
    /// Let lab time pass now, running what falls due on the way (virtual clock).
    #[serde(default)]
    pub advance: Option<LabDuration>,
    /// Run the relay's queue now for one recipient domain (`sendmail -qR@domain`).
    #[serde(default)]
    pub flush: Option<FlushSpec>,
    /// Run the relay's whole queue now (`sendmail -q`).
    #[serde(default)]
    pub queue_run: Option<QueueRunSpec>,
    /// The relay's `mailq` listing now: value matchers for its lines, in order.
    #[serde(default)]
    pub mailq: Option<Vec<ValueMatcher>>,
    /// Expectations for a `send`, `slam` or `mta` step.
    #[serde(default)]
    pub expect: Option<StepExpect>,
}

impl Step {
    /// The action's name, for messages.
    pub fn action(&self) -> &'static str {
        if self.send.is_some() {
            "send"
        } else if self.script.is_some() {
            "script"
        } else if self.settle.is_some() {
            "settle"
        } else if self.slam.is_some() {
            "slam"
        } else if self.mta.is_some() {
            "mta"
        } else if self.dns.is_some() {
            "dns"
        } else if self.advance.is_some() {
            "advance"
        } else if self.flush.is_some() {
            "flush"
        } else if self.queue_run.is_some() {
            "queue_run"
        } else if self.mailq.is_some() {
            "mailq"
        } else {
            "wait"
        }
    }
}

/// A structured send: one SMTP session carrying one message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendSpec {
    /// The virtual host the session comes from.
    pub from: String,
    /// A lab host to talk to instead of the relay.
    #[serde(default)]
    pub to: Option<String>,
    /// Say `HELO <name>` (SMTP). Default: `EHLO <from host's name>`.
    #[serde(default)]
    pub helo: Option<String>,
    /// Say `EHLO <name>` (ESMTP).
    #[serde(default)]
    pub ehlo: Option<String>,
    /// Envelope sender; written `MAIL FROM:<addr>` unless it already has brackets. `<>` is the null sender.
    pub mail_from: String,
    /// Envelope recipients, one `RCPT TO:` each.
    #[serde(deserialize_with = "one_or_many")]
    pub rcpt_to: Vec<String>,
    /// The message (headers, blank line, body). Default: a minimal message.
    #[serde(default)]
    pub data: Option<String>,
    /// Forged headers written into DATA before `data` (From, Received chain, Message-Id).
    #[serde(default)]
    pub forge: Option<ForgeSpec>,
    /// Write every command at once instead of waiting for each reply (PIPELINING).
    #[serde(default)]
    pub pipelined: bool,
}

/// The former name of [`StepExpect`].
pub type SendExpect = StepExpect;

/// Expectations for a step: reply matchers for `send`; outcome counts for
/// `slam` (and `mta`); attempts, fate and timing for `mta`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepExpect {
    /// The greeting.
    #[serde(default)]
    pub greeting: Option<ReplyMatcher>,
    /// The HELO/EHLO reply.
    #[serde(default)]
    pub helo: Option<ReplyMatcher>,
    /// The MAIL reply.
    #[serde(default)]
    pub mail: Option<ReplyMatcher>,
    /// The RCPT replies: one matcher for all, or a list, one per recipient.
    #[serde(default)]
    pub rcpt: Option<RcptExpect>,
    /// The DATA reply (usually 354).
    #[serde(default)]
    pub data: Option<ReplyMatcher>,
    /// The reply after the final dot.
    #[serde(default)]
    pub data_end: Option<ReplyMatcher>,
    /// The QUIT reply.
    #[serde(default)]
    pub quit: Option<ReplyMatcher>,
    /// Messages accepted (slam: counted per message; mta: 1 when delivered).
    #[serde(default)]
    pub accepted: Option<u64>,
    /// Messages answered 4xx.
    #[serde(default)]
    pub tempfailed: Option<u64>,
    /// Messages answered 5xx.
    #[serde(default)]
    pub rejected: Option<u64>,
    /// Messages that met a refused connection.
    #[serde(default)]
    pub refused: Option<u64>,
    /// Messages that met a timeout.
    #[serde(default)]
    pub timed_out: Option<u64>,
    /// Messages that met a broken connection.
    #[serde(default)]
    pub errors: Option<u64>,
    /// Messages never started (the budget ran out).
    #[serde(default)]
    pub unsent: Option<u64>,
    /// mta: how many attempts were made.
    #[serde(default)]
    pub attempts: Option<usize>,
    /// mta: `delivered`, `bounced` or `gave_up`.
    #[serde(default)]
    pub fate: Option<String>,
    /// mta: the deciding reply of each attempt, in order (one matcher per attempt, from the first).
    #[serde(default)]
    pub replies: Vec<ReplyMatcher>,
    /// mta: each retry started at least this long after the attempt before it.
    #[serde(default)]
    pub spacing: Vec<LabDuration>,
}

impl StepExpect {
    /// True when a reply matcher of a `send` step is given.
    pub fn has_reply_matchers(&self) -> bool {
        self.greeting.is_some()
            || self.helo.is_some()
            || self.mail.is_some()
            || self.rcpt.is_some()
            || self.data.is_some()
            || self.data_end.is_some()
            || self.quit.is_some()
    }

    /// True when an outcome count is given.
    pub fn has_counts(&self) -> bool {
        self.accepted.is_some()
            || self.tempfailed.is_some()
            || self.rejected.is_some()
            || self.refused.is_some()
            || self.timed_out.is_some()
            || self.errors.is_some()
            || self.unsent.is_some()
    }

    /// True when an `mta`-only expectation is given.
    pub fn has_mta_keys(&self) -> bool {
        self.attempts.is_some() || self.fate.is_some() || !self.replies.is_empty() || !self.spacing.is_empty()
    }

    /// `(word, expected count)` for every count given.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        [
            ("accepted", self.accepted),
            ("tempfailed", self.tempfailed),
            ("rejected", self.rejected),
            ("refused", self.refused),
            ("timed_out", self.timed_out),
            ("errors", self.errors),
            ("unsent", self.unsent),
        ]
        .into_iter()
        .filter_map(|(w, n)| n.map(|n| (w, n)))
        .collect()
    }
}

/// One matcher for every RCPT, or one per recipient.
#[derive(Debug, Clone)]
pub enum RcptExpect {
    /// Applies to every recipient.
    All(ReplyMatcher),
    /// One per recipient, in order.
    Each(Vec<ReplyMatcher>),
}

/// A raw dialogue: lines as written, each with an optional reply matcher.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptSpec {
    /// The virtual host the session comes from.
    pub from: String,
    /// A lab host to talk to instead of the relay.
    #[serde(default)]
    pub to: Option<String>,
    /// Write everything at once, before even the greeting (`cat session | nc relay 25`).
    #[serde(default)]
    pub pipelined: bool,
    /// Expected greeting.
    #[serde(default)]
    pub greeting: Option<ReplyMatcher>,
    /// The dialogue.
    pub lines: Vec<ScriptLine>,
}

/// One element of a raw dialogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptLine {
    /// A command line sent as written (one reply expected).
    #[serde(default)]
    pub send: Option<String>,
    /// A message sent after a 354, dot-stuffed and terminated (one reply expected).
    #[serde(default)]
    pub message: Option<String>,
    /// The reply expected for this line.
    #[serde(default)]
    pub expect: Option<ReplyMatcher>,
}

/// What must be true at the end of the lab.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalExpect {
    /// How many messages the lab's MX hosts received in all.
    #[serde(default)]
    pub delivered_count: Option<usize>,
    /// Messages that must have been delivered (each matched by a distinct message).
    #[serde(default)]
    pub delivered: Vec<DeliveredExpect>,
    /// Relay log lines that must appear, in this order (value matchers; plain text = substring).
    #[serde(default)]
    pub relay_log: Vec<ValueMatcher>,
    /// Relay log lines that must not appear.
    #[serde(default)]
    pub relay_log_absent: Vec<ValueMatcher>,
    /// MTA-neutral events the relay's log must show (any order), checked on every relay.
    #[serde(default)]
    pub events: Vec<EventExpect>,
    /// MTA-neutral events the relay's log must not show.
    #[serde(default)]
    pub events_absent: Vec<EventExpect>,
    /// DNS questions that must have been asked: `"MX sysiphus.com"`.
    #[serde(default)]
    pub dns_queries: Vec<String>,
    /// How many messages may remain in the relay's queue.
    #[serde(default)]
    pub queued: Option<usize>,
    /// What each virtual host saw and did, by host name.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostExpect>,
    /// What the relay's queue did: depth, attempts, DSNs, the final `mailq`.
    #[serde(default)]
    pub queue: Option<QueueExpect>,
}

/// What one virtual host must have seen and done.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostExpect {
    /// Messages it accepted.
    #[serde(default)]
    pub received: Option<usize>,
    /// Connections it accepted.
    #[serde(default)]
    pub sessions: Option<usize>,
    /// Messages it sent on (forward, list, autoresponder).
    #[serde(default)]
    pub sent: Option<usize>,
    /// How its sends ended: `{ accepted: 12, rejected: 1 }`.
    #[serde(default)]
    pub sent_outcomes: BTreeMap<String, u64>,
    /// Replies its sends got, in order (each matcher matches a later send than the one before).
    #[serde(default)]
    pub sent_replies: Vec<ReplyMatcher>,
    /// Messages it chose not to answer or pass on (an auto-responder's rules).
    #[serde(default)]
    pub silent: Option<usize>,
    /// Whether its send cap cut a loop the relay did not stop.
    #[serde(default)]
    pub loop_cut: Option<bool>,
    /// Its greylist's deferrals.
    #[serde(default)]
    pub greylisted: Option<u64>,
    /// Its greylist's passes.
    #[serde(default)]
    pub greylist_passed: Option<u64>,
}

/// One expected delivered message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveredExpect {
    /// The host that received it.
    #[serde(default)]
    pub at: Option<String>,
    /// Envelope sender (exact, without brackets).
    #[serde(default)]
    pub mail_from: Option<String>,
    /// Envelope recipients (exact, without brackets, in order).
    #[serde(default, deserialize_with = "opt_one_or_many")]
    pub rcpt_to: Option<Vec<String>>,
    /// Headers that must appear in this order: `- Received: "/^from .../"`.
    #[serde(default)]
    pub headers: Vec<BTreeMap<String, ValueMatcher>>,
    /// How many times a header occurs: `{ Received: 2 }`.
    #[serde(default)]
    pub header_count: BTreeMap<String, usize>,
    /// The body (value matcher).
    #[serde(default)]
    pub body: Option<ValueMatcher>,
    /// Trace headers (`Received:`, `Via:`, ...), counted as a relay counts hops.
    #[serde(default)]
    pub hops: Option<usize>,
    /// The `by` host of each `Received:`, top first (the first N must match, in order).
    #[serde(default)]
    pub received_by: Vec<ValueMatcher>,
    /// MIME parts that must appear, in this order (a DSN's report, say).
    #[serde(default)]
    pub parts: Vec<super::queue_spec::PartExpect>,
}

fn opt_one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    one_or_many(d).map(Some)
}

impl<'de> Deserialize<'de> for RcptExpect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Code(u64),
            Many(Vec<String>),
        }
        let parse = |s: &str| ReplyMatcher::parse(s).map_err(serde::de::Error::custom);
        match Raw::deserialize(d) {
            Ok(Raw::One(s)) => Ok(RcptExpect::All(parse(&s)?)),
            Ok(Raw::Code(n)) => Ok(RcptExpect::All(parse(&n.to_string())?)),
            Ok(Raw::Many(v)) => Ok(RcptExpect::Each(v.iter().map(|s| parse(s)).collect::<Result<_, _>>()?)),
            Err(_) => Err(serde::de::Error::custom(
                "rcpt: expected a reply matcher such as \"250 2.1.5\", or a list of them, one per recipient",
            )),
        }
    }
}

/// The most addresses one host's farm may have; the lab's /24 has room for
/// about 240 addresses in all.
pub const MAX_FARM: usize = 200;

impl Scenario {
    /// How many addresses each host owns in its /24 (1: just its own): its
    /// `farm:`, or what its `slam` (`distinct_sources`) and `mta` (`farm`)
    /// steps need.
    pub fn farm_sizes(&self) -> BTreeMap<String, usize> {
        let mut out: BTreeMap<String, usize> = self.hosts.keys().map(|h| (h.clone(), 1)).collect();
        for step in &self.steps {
            let need = match (&step.slam, &step.mta) {
                (Some(s), _) if s.distinct_sources => Some((&s.from, s.connections)),
                (_, Some(m)) if m.farm => Some((&m.from, m.max_attempts(MAX_FARM))),
                _ => None,
            };
            if let Some((host, n)) = need {
                if let Some(slot) = out.get_mut(host) {
                    *slot = (*slot).max(n);
                }
            }
        }
        for (name, h) in &self.hosts {
            if let (Some(n), Some(slot)) = (h.farm, out.get_mut(name)) {
                *slot = n.max(1);
            }
        }
        out
    }
}
