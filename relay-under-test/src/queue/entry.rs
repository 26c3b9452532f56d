//! What the queue holds: one [`QueueEntry`] per accepted message, with the
//! state of each recipient still to deliver.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

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

/// What the last attempt said about a recipient that is still queued
/// (for `mailq`, warnings and the final bounce).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RcptNote {
    /// The recipient as typed.
    pub typed: String,
    /// The `dsn=` of the last attempt (`4.0.0`).
    pub dsn: String,
    /// The next hop it was trying (`relay=` without the address), if any.
    pub remote: Option<String>,
    /// The `stat=` text (`Deferred: Connection refused by ...`).
    pub stat: String,
}

/// Whether an entry is mail from a client or a notice the relay wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A message a client handed over.
    #[default]
    Message,
    /// A delivery status notification this relay generated (sender `<>`).
    Dsn,
}

impl EntryKind {
    /// `message` or `dsn`.
    pub fn word(self) -> &'static str {
        match self {
            EntryKind::Message => "message",
            EntryKind::Dsn => "dsn",
        }
    }
}

/// A queued message with everything delivery needs.
#[derive(Debug, Clone, Default)]
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
    /// Completed delivery attempts (each adds to `pri=`).
    pub attempts: u32,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// The `Message-Id:` value, as logged.
    pub msgid: String,
    /// The client that handed it over, `name [ip]` (the arrival line's `relay=`).
    pub client: String,
    /// When the last attempt ended.
    pub last_attempt: Option<DateTime<Utc>>,
    /// True once the delay warning went out (or was found not due to this sender).
    pub warned: bool,
    /// Per pending recipient: what the last attempt said.
    pub notes: Vec<RcptNote>,
    /// Client mail or one of our DSNs.
    pub kind: EntryKind,
}

impl QueueEntry {
    /// True for the null sender `<>`.
    pub fn null_sender(&self) -> bool {
        self.sender.is_empty()
    }

    /// Queue priority for ordering queue runs (lower runs first, as in
    /// Sendmail's `QueueSortOrder=Priority`).
    pub fn priority(&self) -> i64 {
        crate::log::priority(self.size, self.class, self.nrcpts as u64, self.attempts as u64)
    }

    /// The note for pending recipient `typed`, if an attempt left one.
    pub fn note(&self, typed: &str) -> Option<&RcptNote> {
        self.notes.iter().find(|n| n.typed == typed)
    }

    /// Whether a delay warning may go to this sender (spec §7.6, `[S envelope.c]`):
    /// not for `<>`, `owner-*`, `*-request`, or a negative precedence class.
    pub fn may_warn(&self) -> bool {
        let s = self.sender.to_ascii_lowercase();
        let local = s.split('@').next().unwrap_or("");
        !(s.is_empty() || local.starts_with("owner-") || local.ends_with("-request") || self.class < 0)
    }

    /// Whether a recipient of this message is at `domain` or below it.
    pub fn has_rcpt_in(&self, domain: &str) -> bool {
        let d = domain.trim().trim_start_matches('@').trim_end_matches('.').to_ascii_lowercase();
        self.rcpts.iter().any(|r| {
            let rd = r.addr.rsplit_once('@').map(|(_, x)| x).unwrap_or("").trim_end_matches('.').to_ascii_lowercase();
            rd == d || rd.ends_with(&format!(".{d}"))
        })
    }

    /// As `mailq` lists it.
    pub fn listing(&self) -> QueuedMessage {
        QueuedMessage {
            qid: self.qid.clone(),
            sender: self.sender_typed.clone(),
            recipients: self.rcpts.iter().map(|r| r.typed.clone()).collect(),
            size: self.size,
            last_error: self.last_error.clone(),
            arrived: self.arrived,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sender: &str, class: i64) -> QueueEntry {
        QueueEntry {
            sender: sender.into(),
            class,
            rcpts: vec![Recipient { typed: "<a@Sysiphus.com>".into(), addr: "a@Sysiphus.com".into() }],
            ..QueueEntry::default()
        }
    }

    #[test]
    fn who_gets_a_warning() {
        assert!(entry("alice@example.net", 0).may_warn());
        assert!(!entry("", 0).may_warn());
        assert!(!entry("owner-staff@lists.example", 0).may_warn());
        assert!(!entry("staff-request@lists.example", 0).may_warn());
        assert!(!entry("alice@example.net", -60).may_warn());
        assert!(entry("alice@example.net", 100).may_warn());
    }

    #[test]
    fn recipient_domains() {
        let e = entry("a@b", 0);
        assert!(e.has_rcpt_in("sysiphus.com"));
        assert!(e.has_rcpt_in("@SYSIPHUS.com"));
        assert!(!e.has_rcpt_in("phus.com"));
        assert!(!e.has_rcpt_in("eng.sysiphus.com"));
        let mut sub = entry("a@b", 0);
        sub.rcpts[0].addr = "x@eng.sysiphus.com".into();
        assert!(sub.has_rcpt_in("sysiphus.com"));
    }
}
