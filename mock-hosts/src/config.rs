//! How an MX sink is configured and how it behaves.

use crate::session::Outcome;
use std::time::Duration;

/// Longest message a sink stores (50 MB), advertised as `SIZE` in EHLO
/// (RFC 1870). Bytes past it are read and dropped, and the message is refused
/// with `552`, so a broken peer cannot exhaust memory.
pub const MAX_MESSAGE_SIZE: usize = 50 * 1024 * 1024;

/// Default read timeout: RFC 5321 4.5.3.2.7 asks servers to wait at least five
/// minutes for the next command.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Where in the SMTP dialogue a sink is when it answers. A scripted behaviour
/// may answer any phase with a reply of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// The `220` greeting after connect.
    Greeting,
    /// `HELO` / `EHLO`.
    Helo,
    /// `MAIL FROM`.
    Mail,
    /// `RCPT TO`.
    Rcpt,
    /// `DATA`, before the `354`.
    Data,
    /// After the final `.` of the message.
    EndOfData,
}

/// How a sink answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SinkBehaviour {
    /// Accept every well-formed transaction, as a healthy MX does.
    #[default]
    Accept,
}

impl SinkBehaviour {
    /// The scripted answer for `phase`, or `None` to answer normally.
    ///
    /// This is the one hook scripted faults plug into: a later `Script`
    /// variant returns its `4xx`/`5xx` (or a close) for a phase here. The
    /// session consults it only for commands that are otherwise in sequence,
    /// and a scripted answer does not advance the transaction.
    pub(crate) fn answer(&self, _phase: Phase) -> Option<Outcome> {
        match self {
            SinkBehaviour::Accept => None,
        }
    }
}

/// Everything an [`MxSink`](crate::MxSink) needs besides its address and clock.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// The name the sink gives in its greeting, EHLO reply and received messages.
    pub hostname: String,
    /// How it answers.
    pub behaviour: SinkBehaviour,
    /// How long to wait for the next command or for the whole message.
    pub read_timeout: Duration,
}

impl SinkConfig {
    /// A sink that accepts everything, with the default read timeout.
    pub fn accept(hostname: impl Into<String>) -> Self {
        SinkConfig { hostname: hostname.into(), behaviour: SinkBehaviour::Accept, read_timeout: DEFAULT_READ_TIMEOUT }
    }
}
