//! The queue and clock parts of the scenario format:
//!
//! ```yaml
//! clock: virtual            # (default) or wall
//! run_until: 6d             # after the steps, let lab time run this far from the start
//! steps:
//!   - advance: 4h           # let lab time pass now (queue runs, deadlines happen on the way)
//!   - queue_run: {}         # sendmail -q
//!   - flush: { domain: sysiphus.com }   # sendmail -qR@sysiphus.com
//!   - mailq: ["/is empty/"] # the mailq listing now, lines matched in order
//! expect:
//!   queue:
//!     depth: 0
//!     max_depth: 1
//!     mailq: ["/is empty/"]
//!     dsns: [{ kind: warning, to: alice@example.net, after: 4h }]
//!     messages: [{ rcpt: john@sysiphus.com, attempts: 4, fate: delivered }]
//! ```

use super::duration::LabDuration;
use super::matcher::ValueMatcher;
use serde::Deserialize;

/// Which clock a lab runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    /// Lab time that runs at wall speed and jumps over idle stretches: the
    /// runner advances it to the next due timer (a queue run, a DSN
    /// deadline, a host coming back) when everyone is idle, and `advance`
    /// and `wait` cost nothing.
    #[default]
    Virtual,
    /// The system clock: `wait: 2s` takes two seconds.
    Wall,
}

/// `flush: { domain: sysiphus.com }`: run the queue now for the messages
/// with a recipient in that domain (`sendmail -qR@sysiphus.com`); without
/// `domain`, every message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlushSpec {
    /// The recipient domain (its subdomains too).
    #[serde(default)]
    pub domain: Option<String>,
    /// How many messages the run must have tried.
    #[serde(default)]
    pub tried: Option<usize>,
}

/// `queue_run: {}`: run the whole queue now (`sendmail -q`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueRunSpec {
    /// How many messages the run must have tried.
    #[serde(default)]
    pub tried: Option<usize>,
}

/// What the relay's queue must show at the end of the lab.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueExpect {
    /// Messages left in the queue.
    #[serde(default)]
    pub depth: Option<usize>,
    /// The deepest the queue got.
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// Lines of the final `mailq` listing, in order (value matchers).
    #[serde(default)]
    pub mailq: Vec<ValueMatcher>,
    /// How many DSNs the relay generated.
    #[serde(default)]
    pub dsn_count: Option<usize>,
    /// DSNs that must have been generated (each matched by a different one).
    #[serde(default)]
    pub dsns: Vec<DsnExpect>,
    /// Messages that must have passed through the queue (each matched by a different one).
    #[serde(default)]
    pub messages: Vec<MessageExpect>,
    /// How many queue runs (interval, deadline and manual) started.
    #[serde(default)]
    pub queue_runs: Option<usize>,
}

/// One expected DSN.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DsnExpect {
    /// `warning` or `failure`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Its recipient (the original sender), without brackets.
    #[serde(default)]
    pub to: Option<String>,
    /// The log's reason (`Cannot send message for 5 days`).
    #[serde(default)]
    pub reason: Option<ValueMatcher>,
    /// Generated at least this long after the message it reports on arrived.
    #[serde(default)]
    pub after: Option<LabDuration>,
    /// ... and less than this long after.
    #[serde(default)]
    pub before: Option<LabDuration>,
}

/// One expected message's life in the queue.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageExpect {
    /// One of its recipients, without brackets.
    #[serde(default)]
    pub rcpt: Option<String>,
    /// `message` (from a client) or `dsn` (one the relay wrote).
    #[serde(default)]
    pub kind: Option<String>,
    /// Delivery attempts made.
    #[serde(default)]
    pub attempts: Option<usize>,
    /// At least this many attempts.
    #[serde(default)]
    pub min_attempts: Option<usize>,
    /// `queued`, `delivered`, `bounced` or `expired`.
    #[serde(default)]
    pub fate: Option<String>,
    /// Consecutive attempts at least this far apart in lab time (`min_queue_age`).
    #[serde(default)]
    pub spacing: Option<LabDuration>,
    /// Left the queue at least this long after it arrived.
    #[serde(default)]
    pub left_after: Option<LabDuration>,
}

/// The words `fate` takes.
pub const FATES: &[&str] = &["queued", "delivered", "bounced", "expired"];
/// The words a DSN's `kind` takes.
pub const DSN_KINDS: &[&str] = &["warning", "failure"];

/// One MIME part a delivered message must have (`expect.delivered[].parts`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartExpect {
    /// Its content type, `type/subtype` (compared without case).
    #[serde(default, rename = "type")]
    pub content_type: Option<String>,
    /// Its body as sent (value matcher: plain text is contained).
    #[serde(default)]
    pub body: Option<ValueMatcher>,
}

/// Cross-checks of the queue keys; an error carries text to locate it by.
pub(crate) fn validate(s: &super::Scenario) -> Result<(), (String, String)> {
    let word = |value: &str, allowed: &[&str], key: String| -> Result<(), (String, String)> {
        if allowed.contains(&value) {
            Ok(())
        } else {
            Err((value.to_string(), format!("{key}: expected one of {}, found {value:?}", allowed.join(", "))))
        }
    };
    if let Some(q) = &s.expect.queue {
        for (i, d) in q.dsns.iter().enumerate() {
            if let Some(k) = &d.kind {
                word(k, DSN_KINDS, format!("expect.queue.dsns[{i}].kind"))?;
            }
        }
        for (i, m) in q.messages.iter().enumerate() {
            if let Some(f) = &m.fate {
                word(f, FATES, format!("expect.queue.messages[{i}].fate"))?;
            }
            if let Some(k) = &m.kind {
                word(k, &["message", "dsn"], format!("expect.queue.messages[{i}].kind"))?;
            }
        }
    }
    if s.run_until.is_some_and(|d| d.0.is_zero()) {
        return Err(("run_until".into(), "run_until: give a lab time after the start, e.g. \"6d\"".into()));
    }
    for (i, step) in s.steps.iter().enumerate() {
        if let Some(d) = step.flush.as_ref().and_then(|f| f.domain.as_ref()) {
            if d.trim().trim_start_matches('@').is_empty() || d.contains(char::is_whitespace) {
                return Err((
                    d.clone(),
                    format!("steps[{i}].flush.domain: expected a domain such as sysiphus.com, found {d:?}"),
                ));
            }
        }
    }
    Ok(())
}
