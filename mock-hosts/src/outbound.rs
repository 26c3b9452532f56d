//! Handing one message to an SMTP server the way a well-mannered MTA does,
//! and naming how it ended. Used by every actor that sends mail on its own
//! (the retrying MTA, forwarders, lists, auto-responders).
//!
//! The dialogue: greeting, `EHLO` (`HELO` when EHLO is refused with 5xx),
//! `MAIL FROM`, one `RCPT TO` each, `DATA` only when a recipient was
//! accepted, the message, `QUIT`. Every read is bounded by the timeout.

use lab_core::client::ClientError;
use lab_core::{Reply, SmtpClient, Transcript, TranscriptRecorder};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How an attempt to hand over a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The server took it (`250` after the final dot).
    Accepted,
    /// A 4xx: try again later.
    TempFailed,
    /// A 5xx: do not try again.
    Rejected,
    /// The connection was refused (nothing listens).
    Refused,
    /// No reply (or no connection) within the timeout.
    TimedOut,
    /// The connection broke (closed, reset, not SMTP).
    Error,
}

impl Delivery {
    /// The word reports and scenarios use: `accepted`, `tempfailed`, ...
    pub fn word(self) -> &'static str {
        match self {
            Delivery::Accepted => "accepted",
            Delivery::TempFailed => "tempfailed",
            Delivery::Rejected => "rejected",
            Delivery::Refused => "refused",
            Delivery::TimedOut => "timed_out",
            Delivery::Error => "errors",
        }
    }

    /// What a reply means for the message.
    pub fn of_reply(r: &Reply) -> Delivery {
        if r.is_positive() {
            Delivery::Accepted
        } else if r.is_transient() {
            Delivery::TempFailed
        } else {
            Delivery::Rejected
        }
    }

    /// What a transport error means for the message.
    pub fn of_error(e: &ClientError) -> Delivery {
        match e {
            e if e.is_refused() => Delivery::Refused,
            ClientError::Connect { source, .. } if source.kind() == std::io::ErrorKind::TimedOut => Delivery::TimedOut,
            ClientError::Timeout(_) => Delivery::TimedOut,
            _ => Delivery::Error,
        }
    }

    /// True when a sender should try again later.
    pub fn is_retryable(self) -> bool {
        !matches!(self, Delivery::Accepted | Delivery::Rejected)
    }
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Accepted.
    pub accepted: u64,
    /// 4xx.
    pub tempfailed: u64,
    /// 5xx.
    pub rejected: u64,
    /// Connection refused.
    pub refused: u64,
    /// Timed out.
    pub timed_out: u64,
    /// Broken connections.
    pub errors: u64,
}

impl Tally {
    /// Count one outcome.
    pub fn add(&mut self, d: Delivery) {
        *self.slot(d) += 1;
    }

    /// Count `n` of one outcome.
    pub fn add_n(&mut self, d: Delivery, n: u64) {
        *self.slot(d) += n;
    }

    fn slot(&mut self, d: Delivery) -> &mut u64 {
        match d {
            Delivery::Accepted => &mut self.accepted,
            Delivery::TempFailed => &mut self.tempfailed,
            Delivery::Rejected => &mut self.rejected,
            Delivery::Refused => &mut self.refused,
            Delivery::TimedOut => &mut self.timed_out,
            Delivery::Error => &mut self.errors,
        }
    }

    /// The count for an outcome.
    pub fn get(&self, d: Delivery) -> u64 {
        match d {
            Delivery::Accepted => self.accepted,
            Delivery::TempFailed => self.tempfailed,
            Delivery::Rejected => self.rejected,
            Delivery::Refused => self.refused,
            Delivery::TimedOut => self.timed_out,
            Delivery::Error => self.errors,
        }
    }

    /// Every count.
    pub fn total(&self) -> u64 {
        self.accepted + self.tempfailed + self.rejected + self.refused + self.timed_out + self.errors
    }

    /// `(word, count)` pairs, in a fixed order.
    pub fn pairs(&self) -> Vec<(&'static str, u64)> {
        [
            Delivery::Accepted,
            Delivery::TempFailed,
            Delivery::Rejected,
            Delivery::Refused,
            Delivery::TimedOut,
            Delivery::Error,
        ]
        .into_iter()
        .map(|d| (d.word(), self.get(d)))
        .collect()
    }
}

/// One message to hand over.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Connect from this address (the actor's identity on the loopback backend).
    pub source: Option<IpAddr>,
    /// The server.
    pub target: SocketAddr,
    /// Per connect and per reply.
    pub timeout: Duration,
    /// The EHLO name.
    pub helo: String,
    /// Envelope sender without brackets (`""` for `<>`).
    pub mail_from: String,
    /// Envelope recipients without brackets.
    pub rcpt_to: Vec<String>,
    /// The message, CRLF line ends, not dot-stuffed.
    pub data: Vec<u8>,
    /// The transcript's label.
    pub label: String,
}

/// How a submission went.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The outcome for the message.
    pub outcome: Delivery,
    /// The reply that decided it (the final reply, or the first refusal).
    pub reply: Option<Reply>,
    /// The transport error, if one decided it.
    pub error: Option<String>,
    /// Everything said.
    pub transcript: Transcript,
}

/// Hand `s` over. Never fails: how it went is in the result. The whole
/// dialogue is bounded by the timeout times the number of replies.
pub async fn submit(s: &Submission) -> Submitted {
    let rec = TranscriptRecorder::new(s.label.clone());
    let rounds = u32::try_from(s.rcpt_to.len()).unwrap_or(u32::MAX).saturating_add(7);
    let budget = s.timeout.saturating_mul(rounds);
    let (outcome, reply, error) = match tokio::time::timeout(budget, dialogue(s, &rec)).await {
        Ok(Ok((reply, outcome))) => (outcome, Some(reply), None),
        Ok(Err(e)) => (Delivery::of_error(&e), None, Some(e.to_string())),
        Err(_) => {
            rec.note(format!("dialogue did not finish within {budget:?}"));
            (Delivery::TimedOut, None, Some(format!("dialogue did not finish within {budget:?}")))
        }
    };
    Submitted { outcome, reply, error, transcript: rec.snapshot() }
}

async fn dialogue(s: &Submission, rec: &TranscriptRecorder) -> Result<(Reply, Delivery), ClientError> {
    let mut c = SmtpClient::connect(s.source, s.target, s.timeout, rec.clone()).await?;
    let greeting = c.read_reply().await?;
    if !greeting.is_positive() {
        let _ = c.quit().await;
        return Ok((greeting.clone(), Delivery::of_reply(&greeting)));
    }
    let mut hello = c.command(&format!("EHLO {}", s.helo)).await?;
    if hello.is_permanent() {
        hello = c.command(&format!("HELO {}", s.helo)).await?;
    }
    if !hello.is_positive() {
        let _ = c.quit().await;
        return Ok((hello.clone(), Delivery::of_reply(&hello)));
    }
    let mail = c.command(&format!("MAIL FROM:<{}>", s.mail_from)).await?;
    if !mail.is_positive() {
        let _ = c.quit().await;
        return Ok((mail.clone(), Delivery::of_reply(&mail)));
    }
    let mut first_refusal = None;
    let mut accepted = 0;
    for r in &s.rcpt_to {
        let reply = c.command(&format!("RCPT TO:<{r}>")).await?;
        if reply.is_positive() {
            accepted += 1;
        } else if first_refusal.is_none() {
            first_refusal = Some(reply);
        }
    }
    if accepted == 0 {
        let _ = c.quit().await;
        let r = first_refusal.unwrap_or_else(|| Reply::new(554, "no recipients"));
        return Ok((r.clone(), Delivery::of_reply(&r)));
    }
    let data = c.command("DATA").await?;
    if data.code != 354 {
        let _ = c.quit().await;
        return Ok((data.clone(), Delivery::of_reply(&data)));
    }
    let done = c.send_message(&s.data).await?;
    let _ = c.quit().await;
    Ok((done.clone(), Delivery::of_reply(&done)))
}
