//! Local delivery: the relay's own mailboxes, in memory (a lab has no
//! `/var/mail`, no files and runs no programs).
//!
//! Talks to nothing outside the process. The local mailer adds
//! `Return-Path: <sender>` (the `P` flag, spec §5.5); alias targets that are
//! files or programs keep their copies here too, under the path or command,
//! and nothing is executed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Every local delivery so far, by mailbox: a user name (lower case), a
/// file path, or a `|command`.
#[derive(Debug, Clone, Default)]
pub struct Mailboxes {
    boxes: Arc<Mutex<BTreeMap<String, Vec<Vec<u8>>>>>,
}

impl Mailboxes {
    /// Append `message` (CRLF bytes) to `mailbox`, behind `Return-Path: <sender>`.
    pub fn append(&self, mailbox: &str, sender: &str, message: &[u8]) {
        let mut copy = format!("Return-Path: <{sender}>\r\n").into_bytes();
        copy.extend_from_slice(message);
        self.boxes.lock().unwrap().entry(mailbox.to_string()).or_default().push(copy);
    }

    /// The messages in `mailbox`, oldest first.
    pub fn messages(&self, mailbox: &str) -> Vec<Vec<u8>> {
        self.boxes.lock().unwrap().get(mailbox).cloned().unwrap_or_default()
    }

    /// The mailboxes that hold mail.
    pub fn names(&self) -> Vec<String> {
        self.boxes.lock().unwrap().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_with_return_path() {
        let m = Mailboxes::default();
        m.append("hal", "alice@example.net", b"Subject: x\r\n\r\nhi\r\n");
        m.append("hal", "", b"Subject: y\r\n\r\n");
        assert_eq!(m.names(), vec!["hal"]);
        let got = m.messages("hal");
        assert_eq!(got[0], b"Return-Path: <alice@example.net>\r\nSubject: x\r\n\r\nhi\r\n");
        assert!(got[1].starts_with(b"Return-Path: <>\r\n"));
        assert!(m.messages("nobody").is_empty());
    }
}
