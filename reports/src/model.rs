//! The report model: what one run of labs produced.

use lab_core::Transcript;
use serde::Serialize;

/// The outcome of one lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every expectation was met.
    Passed,
    /// At least one expectation was missed, or the lab ran out of its budget.
    Failed,
    /// The lab could not be set up or observed (harness error, invalid scenario).
    Error,
    /// The lab was not run, and says why (e.g. it needs root or a real MTA).
    Skipped,
}

impl Verdict {
    /// Upper-case word for console output.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Passed => "PASS",
            Verdict::Failed => "FAIL",
            Verdict::Error => "ERROR",
            Verdict::Skipped => "SKIP",
        }
    }
}

/// One missed expectation.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Which expectation: `steps[0] (send from spammer): rcpt[0] reply`.
    pub what: String,
    /// What the scenario expected, as written.
    pub expected: String,
    /// What was observed.
    pub actual: String,
    /// The transcript or log excerpt that shows it, when one applies.
    pub context: Option<String>,
}

/// A message one of the lab's MX hosts received.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveredMessage {
    /// The receiving host's name.
    pub at: String,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// The header block as received.
    pub headers: String,
    /// Size in octets.
    pub size: usize,
}

/// One DNS query the lab's DNS answered.
#[derive(Debug, Clone, Serialize)]
pub struct DnsQuery {
    /// Queried name, lower case, no trailing dot.
    pub name: String,
    /// Record type (`MX`, `A`, `PTR`).
    pub qtype: String,
    /// `udp` or `tcp`.
    pub protocol: String,
    /// Response code (`NOERROR`, `NXDOMAIN`).
    pub rcode: String,
}

/// Everything a lab observed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observations {
    /// SMTP sessions: clients to the relay, and the relay to MX hosts.
    pub sessions: Vec<Transcript>,
    /// Messages the lab's MX hosts received.
    pub delivered: Vec<DeliveredMessage>,
    /// The relay's log lines.
    pub relay_log: Vec<String>,
    /// DNS queries in arrival order.
    pub dns_queries: Vec<DnsQuery>,
    /// Messages still in the relay's queue at the end: `qid sender -> rcpts (last error)`.
    pub queue: Vec<String>,
    /// What the virtual internet's actors did: slammers, retrying MTAs,
    /// forwarders, lists, auto-responders, greylisting hosts.
    pub actors: Vec<ActorReport>,
    /// What the relay's queue did over lab time (relays that keep it: the builtin one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_history: Option<QueueObservations>,
}

/// What the relay's queue did: its depth over lab time, each message's
/// attempts and fate, the DSNs it sent. Times are milliseconds of lab time
/// since the lab started (a virtual clock makes days of them in a moment).
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueObservations {
    /// The queue directory.
    pub directory: String,
    /// `mailq` at the end of the lab.
    pub mailq: String,
    /// Depth over time, one sample per change.
    pub depth: Vec<QueueDepth>,
    /// The deepest it got.
    pub max_depth: usize,
    /// Queue runs started.
    pub queue_runs: usize,
    /// Every message that passed through the queue, in arrival order.
    pub messages: Vec<QueuedMessageHistory>,
    /// DSNs the relay generated.
    pub dsns: Vec<DsnSent>,
    /// What start-up recovery found in the queue directory.
    pub recovery: Vec<String>,
    /// fsync calls the queue writer made.
    pub fsyncs: u64,
    /// Write batches (fsync groups) of the queue writer.
    pub write_batches: u64,
}

/// The queue's depth at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct QueueDepth {
    /// Lab time, ms since the lab started.
    pub at_ms: i64,
    /// Messages held.
    pub depth: usize,
}

/// One message's life in the queue.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueuedMessageHistory {
    /// Queue id.
    pub qid: String,
    /// `message` or `dsn` (a notice the relay wrote).
    pub kind: String,
    /// Envelope sender as typed.
    pub sender: String,
    /// Recipients as typed.
    pub recipients: Vec<String>,
    /// When it was queued (lab ms).
    pub arrived_ms: i64,
    /// `queued`, `delivered`, `bounced` or `expired`.
    pub fate: String,
    /// When it left the queue (lab ms).
    pub left_ms: Option<i64>,
    /// Found in the queue directory when the relay started.
    pub recovered: bool,
    /// Each attempt, in order.
    pub attempts: Vec<QueueAttempt>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueAttempt {
    /// When it ended (lab ms).
    pub at_ms: i64,
    /// `arrival`, `queue run` or `flush`.
    pub trigger: String,
    /// Copies delivered, deferred, failed.
    pub sent: usize,
    /// Copies deferred.
    pub deferred: usize,
    /// Copies failed for good.
    pub failed: usize,
    /// The deferral or failure text.
    pub stat: Option<String>,
}

/// One DSN the relay generated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DsnSent {
    /// Its queue id.
    pub qid: String,
    /// The message it reports on.
    pub original: String,
    /// `warning` or `failure`.
    pub kind: String,
    /// Who it went to.
    pub to: String,
    /// When (lab ms).
    pub at_ms: i64,
    /// The log's reason.
    pub reason: String,
    /// The recipients it reports on.
    pub recipients: Vec<String>,
}

/// What one actor of the virtual internet did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ActorReport {
    /// Who: `steps[2]: slam from spammer`, `host fwd.one.example`.
    pub name: String,
    /// What kind: `slam`, `mta`, `forward`, `list`, `autoresponder`, `greylist`.
    pub kind: String,
    /// Messages by outcome: `accepted`, `tempfailed`, `rejected`, `refused`, `timed_out`, `errors`, `unsent`.
    pub outcomes: std::collections::BTreeMap<String, u64>,
    /// SMTP sessions it opened.
    pub sessions: u64,
    /// Wall time it ran, in milliseconds.
    pub duration_ms: u64,
    /// Accepted messages per second, for load generators.
    pub messages_per_sec: Option<f64>,
    /// Per-message latency, for load generators.
    pub latency_ms: Option<Latency>,
    /// Each attempt or send, in order.
    pub attempts: Vec<ActorAttempt>,
    /// Anything else worth reading: the fate of a message, a loop cut, why a responder stayed silent.
    pub notes: Vec<String>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// One attempt or send of an actor.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ActorAttempt {
    /// When it started, in milliseconds (after the first attempt, or since the lab's start).
    pub at_ms: u64,
    /// The lab address it left from, if known.
    pub from: Option<String>,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// `accepted`, `tempfailed`, ...
    pub outcome: String,
    /// The deciding reply or error.
    pub reply: Option<String>,
}

/// The result of one lab.
#[derive(Debug, Clone, Serialize)]
pub struct LabReport {
    /// The scenario's name (`open-relay/denied`).
    pub name: String,
    /// The scenario file.
    pub file: String,
    /// The one-line `about`.
    pub about: String,
    /// Tags (families).
    pub tags: Vec<String>,
    /// Which relay ran it (`builtin`).
    pub relay: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Missed expectations (empty when passed).
    pub failures: Vec<Failure>,
    /// Set when the verdict is `Error` or `Skipped`: why.
    pub error: Option<String>,
    /// What the lab saw.
    pub observations: Observations,
    /// The golden file `relaylab run --update` wrote for this lab, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub golden_written: Option<String>,
    /// Behaviour comparison (real relays): replies of the expected class
    /// whose code or text differ. Not failures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wording: Vec<Failure>,
    /// Expectations not compared on this relay, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_compared: Vec<String>,
    /// Misses the scenario's `differences:` explain for this relay.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<Difference>,
}

/// A miss that was looked at and explained.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// The miss.
    pub failure: Failure,
    /// Legitimate MTA difference, or a filed bug.
    pub kind: DifferenceKind,
    /// Why.
    pub why: String,
}

/// How a known difference from the builtin relay is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// The MTA does it its own way on purpose: not a failure.
    Legitimate,
    /// A bug (in the MTA, its rendering, or relaylab), filed: still a failure.
    Bug,
}

impl LabReport {
    /// A report for a lab that has not run yet.
    pub fn new(name: impl Into<String>, file: impl Into<String>) -> Self {
        LabReport {
            name: name.into(),
            file: file.into(),
            about: String::new(),
            tags: Vec::new(),
            relay: "builtin".into(),
            verdict: Verdict::Error,
            duration_ms: 0,
            failures: Vec::new(),
            error: None,
            observations: Observations::default(),
            golden_written: None,
            wording: Vec::new(),
            not_compared: Vec::new(),
            differences: Vec::new(),
        }
    }

    /// Render the failures the way the console prints them: what, an
    /// expected/actual pair, then the context.
    pub fn render_failures(&self) -> String {
        let mut out = String::new();
        if let Some(e) = &self.error {
            out.push_str(&format!("  {e}\n"));
        }
        for f in &self.failures {
            out.push_str(&format!("  ✗ {}\n", f.what));
            out.push_str(&format!("      expected: {}\n", f.expected));
            out.push_str(&format!("      actual:   {}\n", f.actual));
            if let Some(c) = &f.context {
                for l in c.lines() {
                    out.push_str(&format!("      | {l}\n"));
                }
            }
        }
        for d in &self.differences {
            let mark = if d.kind == DifferenceKind::Bug { "✗ known bug" } else { "≠ documented difference" };
            out.push_str(&format!("  {mark}: {} — {}\n", d.failure.what, d.why));
            out.push_str(&format!("      expected: {}\n      actual:   {}\n", d.failure.expected, d.failure.actual));
        }
        for w in &self.wording {
            out.push_str(&format!("  ~ wording: {}\n", w.what));
            out.push_str(&format!("      expected: {}\n      actual:   {}\n", w.expected, w.actual));
        }
        for n in &self.not_compared {
            out.push_str(&format!("  - not compared: {n}\n"));
        }
        out
    }

    /// True when the console should show more than the verdict line.
    pub fn has_details(&self) -> bool {
        self.verdict != Verdict::Passed
            || !self.differences.is_empty()
            || !self.wording.is_empty()
            || !self.not_compared.is_empty()
    }
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// Wall time of the whole run in milliseconds.
    pub duration_ms: u64,
    /// Labs in the order they were selected.
    pub labs: Vec<LabReport>,
}

impl Default for RunReport {
    fn default() -> Self {
        Self::new()
    }
}

impl RunReport {
    /// An empty run starting now.
    pub fn new() -> Self {
        RunReport { started_at: chrono::Utc::now().to_rfc3339(), duration_ms: 0, labs: Vec::new() }
    }

    /// How many labs have each verdict: (passed, failed, error, skipped).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let c = |v| self.labs.iter().filter(|l| l.verdict == v).count();
        (c(Verdict::Passed), c(Verdict::Failed), c(Verdict::Error), c(Verdict::Skipped))
    }

    /// True when at least one lab ran and every lab passed.
    pub fn all_passed(&self) -> bool {
        let (p, ..) = self.counts();
        p > 0 && p == self.labs.len()
    }
}
