//! The mail queue, in memory for now (a durable queue comes later).
//!
//! Talks to nothing: the SMTP server puts accepted messages here, delivery
//! takes recipients off as they are sent or fail for good, and what is left
//! is what `mailq` would show: deferred messages with their last error.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// A message still held by the relay, as `mailq` would list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedMessage {
    /// Queue id.
    pub qid: String,
    /// Envelope sender as the client gave it (`<a@b>` or `a@b`).
    pub sender: String,
    /// Recipients not yet delivered, as the client gave them.
    pub recipients: Vec<String>,
    /// Message size as logged (`size=`).
    pub size: u64,
    /// The last delivery error (`stat=` text), `None` before the first attempt ends.
    pub last_error: Option<String>,
    /// When the message arrived (lab clock).
    pub arrived: DateTime<Utc>,
}

/// One envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// As the client typed it in RCPT (`<a@b>` or `a@b`): what logs show.
    pub typed: String,
    /// The address without brackets: what is sent on.
    pub addr: String,
}

/// A queued message with everything delivery needs.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    /// Queue id.
    pub qid: String,
    /// Pseudo-pid of the session that accepted it.
    pub pid: u32,
    /// Sender as typed.
    pub sender_typed: String,
    /// Sender without brackets (`""` for `<>`).
    pub sender: String,
    /// Recipients still to deliver.
    pub rcpts: Vec<Recipient>,
    /// Recipients accepted at arrival (for `pri=`).
    pub nrcpts: usize,
    /// Message bytes as queued (with our headers), CRLF line ends.
    pub data: Arc<Vec<u8>>,
    /// Logged size.
    pub size: u64,
    /// Precedence class.
    pub class: i64,
    /// Arrival time.
    pub arrived: DateTime<Utc>,
    /// Completed delivery attempts.
    pub attempts: u32,
    /// Last delivery error.
    pub last_error: Option<String>,
}

/// The queue.
#[derive(Debug, Clone, Default)]
pub struct MailQueue {
    entries: Arc<Mutex<Vec<QueueEntry>>>,
}

impl MailQueue {
    /// Add an accepted message.
    pub fn insert(&self, e: QueueEntry) {
        self.entries.lock().unwrap().push(e);
    }

    /// A copy of the entry `qid`.
    pub fn get(&self, qid: &str) -> Option<QueueEntry> {
        self.entries.lock().unwrap().iter().find(|e| e.qid == qid).cloned()
    }

    /// Record an attempt's outcome: `done` recipients (sent or failed for
    /// good) leave; the entry leaves when none remain.
    pub fn finish_attempt(&self, qid: &str, done: &[String], last_error: Option<String>) {
        let mut entries = self.entries.lock().unwrap();
        if let Some(i) = entries.iter().position(|e| e.qid == qid) {
            let e = &mut entries[i];
            e.rcpts.retain(|r| !done.contains(&r.typed));
            e.attempts += 1;
            if last_error.is_some() {
                e.last_error = last_error;
            }
            if e.rcpts.is_empty() {
                entries.remove(i);
            }
        }
    }

    /// What `mailq` would show.
    pub fn list(&self) -> Vec<QueuedMessage> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .map(|e| QueuedMessage {
                qid: e.qid.clone(),
                sender: e.sender_typed.clone(),
                recipients: e.rcpts.iter().map(|r| r.typed.clone()).collect(),
                size: e.size,
                last_error: e.last_error.clone(),
                arrived: e.arrived,
            })
            .collect()
    }
}
