//! What the queue did over the lab's time, for reports and assertions:
//! its depth, each message's attempts and fate, and the DSNs it sent.

use super::store::StoreStats;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// Most depth samples kept; past it every other one is dropped.
const MAX_SAMPLES: usize = 20_000;

/// The queue's depth at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DepthSample {
    /// When (lab clock).
    pub at: DateTime<Utc>,
    /// Messages held then.
    pub depth: usize,
}

/// One delivery attempt of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    /// When it ended (lab clock).
    pub at: DateTime<Utc>,
    /// What started it: `arrival`, `queue run`, `flush`.
    pub trigger: String,
    /// Recipients delivered.
    pub sent: usize,
    /// Recipients deferred.
    pub deferred: usize,
    /// Recipients failed for good.
    pub failed: usize,
    /// The error of a deferred or failed recipient, if any.
    pub stat: Option<String>,
}

/// How a message left the queue (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fate {
    /// Still queued.
    Queued,
    /// Every recipient delivered.
    Delivered,
    /// At least one recipient failed for good (a DSN was due), none left.
    Bounced,
    /// Returned after `queuereturn`.
    Expired,
}

impl Fate {
    /// `queued`, `delivered`, `bounced`, `expired`.
    pub fn word(self) -> &'static str {
        match self {
            Fate::Queued => "queued",
            Fate::Delivered => "delivered",
            Fate::Bounced => "bounced",
            Fate::Expired => "expired",
        }
    }
}

/// One message's life in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageHistory {
    /// Queue id.
    pub qid: String,
    /// Envelope sender as typed.
    pub sender: String,
    /// Recipients as typed.
    pub recipients: Vec<String>,
    /// `message` or `dsn`.
    pub kind: super::entry::EntryKind,
    /// When it was queued.
    pub arrived: DateTime<Utc>,
    /// Each attempt, in order.
    pub attempts: Vec<AttemptRecord>,
    /// Where it stands.
    pub fate: Fate,
    /// When it left the queue.
    pub left_at: Option<DateTime<Utc>>,
    /// True when it was found in the queue directory at start-up.
    pub recovered: bool,
}

/// One delivery status notification the relay generated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DsnRecord {
    /// The DSN's own queue id.
    pub qid: String,
    /// The message it reports on.
    pub original: String,
    /// `warning` (delayed) or `failure` (returned).
    pub kind: String,
    /// Who it goes to (the original envelope sender).
    pub to: String,
    /// When it was generated (lab clock).
    pub at: DateTime<Utc>,
    /// The log's reason (`Cannot send message for 5 days`).
    pub reason: String,
    /// The recipients it reports on.
    pub recipients: Vec<String>,
}

/// Everything above, as the relay hands it to the harness.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueHistory {
    /// The queue directory.
    pub directory: String,
    /// Depth over time (lab clock), one sample per change.
    pub depth: Vec<DepthSample>,
    /// Every message that passed through, in arrival order.
    pub messages: Vec<MessageHistory>,
    /// DSNs generated, in order.
    pub dsns: Vec<DsnRecord>,
    /// What start-up recovery found (removed leftovers, lost control files).
    pub recovery: Vec<String>,
    /// What the queue writer did (batches, fsyncs).
    pub store: StoreStats,
    /// Queue runs started (interval, deadline and manual).
    pub queue_runs: usize,
}

/// The history as it is kept while the relay runs.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub depth: Vec<DepthSample>,
    pub order: Vec<String>,
    pub messages: BTreeMap<String, MessageHistory>,
    pub dsns: Vec<DsnRecord>,
    pub recovery: Vec<String>,
    pub queue_runs: usize,
}

impl Recorder {
    pub fn sample(&mut self, at: DateTime<Utc>, depth: usize) {
        if let Some(last) = self.depth.last_mut() {
            if last.depth == depth {
                return;
            }
            if last.at == at {
                last.depth = depth;
                return;
            }
        }
        if self.depth.len() >= MAX_SAMPLES {
            let kept: Vec<DepthSample> = self.depth.iter().step_by(2).copied().collect();
            self.depth = kept;
        }
        self.depth.push(DepthSample { at, depth });
    }

    pub fn arrived(&mut self, e: &super::QueueEntry, recovered: bool) {
        self.order.push(e.qid.clone());
        self.messages.insert(
            e.qid.clone(),
            MessageHistory {
                qid: e.qid.clone(),
                sender: e.sender_typed.clone(),
                recipients: e.rcpts.iter().map(|r| r.typed.clone()).collect(),
                kind: e.kind,
                arrived: e.arrived,
                attempts: Vec::new(),
                fate: Fate::Queued,
                left_at: None,
                recovered,
            },
        );
    }

    pub fn attempt(&mut self, qid: &str, rec: AttemptRecord) {
        if let Some(m) = self.messages.get_mut(qid) {
            m.attempts.push(rec);
        }
    }

    pub fn left(&mut self, qid: &str, fate: Fate, at: DateTime<Utc>) {
        if let Some(m) = self.messages.get_mut(qid) {
            if m.fate == Fate::Queued || fate == Fate::Expired {
                m.fate = fate;
            }
            m.left_at = Some(at);
        }
    }

    pub fn snapshot(&self) -> (Vec<DepthSample>, Vec<MessageHistory>, Vec<DsnRecord>) {
        let messages = self.order.iter().filter_map(|q| self.messages.get(q).cloned()).collect();
        (self.depth.clone(), messages, self.dsns.clone())
    }
}
