//! Envelopes and received messages.

use serde::Serialize;
use std::net::SocketAddr;

/// The SMTP envelope: routing happens on this, never on the header `From:`/`To:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// The MAIL FROM address without angle brackets (`""` for the null sender `<>`).
    pub mail_from: String,
    /// The RCPT TO addresses without angle brackets, in the order given.
    pub rcpt_to: Vec<String>,
}

/// One message as a server received it: envelope plus the raw bytes of DATA
/// after dot-unstuffing, lines ending in CRLF.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedMessage {
    /// Name of the host that received it (an MX sink's hostname).
    pub host: String,
    /// The id the receiver gave it in its `250` reply.
    pub queue_id: String,
    /// The HELO/EHLO argument the client gave.
    pub helo: Option<String>,
    /// The client's address as seen on the socket.
    pub peer: SocketAddr,
    /// The envelope.
    pub envelope: Envelope,
    /// Raw message bytes (headers and body), dot-unstuffed, CRLF line ends.
    #[serde(serialize_with = "lossy")]
    pub data: Vec<u8>,
    /// Index of the session (in the receiver's session list) that carried it.
    pub session: usize,
}

fn lossy<S: serde::Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(data))
}

impl ReceivedMessage {
    /// The message as text (lossy for non-UTF-8 bytes).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Strip one pair of angle brackets and surrounding blanks from an SMTP path.
/// `<a@b>` → `a@b`, `<>` → ``, `a@b` → `a@b`.
pub fn strip_path(path: &str) -> &str {
    let p = path.trim();
    p.strip_prefix('<').and_then(|p| p.strip_suffix('>')).unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::strip_path;

    #[test]
    fn strips_brackets_once() {
        assert_eq!(strip_path("<a@b>"), "a@b");
        assert_eq!(strip_path(" a@b "), "a@b");
        assert_eq!(strip_path("<>"), "");
    }
}
