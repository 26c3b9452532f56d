//! Scripted SMTP senders: spammers, forgers, well-behaved clients.
//!
//! A [`Sender`] plays a list of [`Step`]s against a server. The lines are
//! whatever the script says, including what a real client would never send
//! (a forged HELO, forged `Received:` headers inside the message, junk), so
//! the lab can see how a relay copes with them.
//!
//! Two ways to play:
//! - [`Mode::Lockstep`]: one step at a time, each reply read before the next
//!   line is sent, as a well-behaved client without PIPELINING does.
//! - [`Mode::Pipelined`]: the whole script is written at once, even before the
//!   greeting (like `cat session | nc host 25`), then the replies are read.
//!   This is what spamware does, and what RFC 5321 4.3.1 ("the client must
//!   wait for the greeting") and RFC 2920 (only some commands may be
//!   pipelined) forbid; greet-pause / early-talker checks in a relay catch it.

use lab_core::client::ClientError;
use lab_core::codec;
use lab_core::{Reply, SmtpClient, Transcript, TranscriptRecorder};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::time::timeout;

/// How long a pipelined run keeps listening for replies nobody asked for
/// after the expected ones have arrived (at most the sender's timeout).
const EXTRA_REPLY_GRACE: Duration = Duration::from_millis(100);

/// One step of a scripted dialogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read the greeting (one reply).
    Greeting,
    /// Send one command line (CRLF added), read one reply.
    Line(String),
    /// After a `354`: send the message dot-stuffed with the final `.`, read one reply.
    Message(Vec<u8>),
    /// Write bytes verbatim, read no reply.
    Raw(Vec<u8>),
    /// Read one reply.
    ReadReply,
}

impl Step {
    /// A command line.
    pub fn line(text: impl Into<String>) -> Step {
        Step::Line(text.into())
    }

    /// A message (headers and body; bare LF line ends become CRLF on the wire).
    pub fn message(text: impl AsRef<[u8]>) -> Step {
        Step::Message(text.as_ref().to_vec())
    }

    /// Raw bytes.
    pub fn raw(bytes: impl AsRef<[u8]>) -> Step {
        Step::Raw(bytes.as_ref().to_vec())
    }

    /// Whether this step has a slot in [`SessionRecord::replies`].
    pub fn expects_reply(&self) -> bool {
        !matches!(self, Step::Raw(_))
    }
}

/// How to play the steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Each reply is read before the next step.
    #[default]
    Lockstep,
    /// Everything is written at once, then the replies are read.
    Pipelined,
}

/// A scripted SMTP client.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The address to connect from (its lab identity on the loopback backend).
    pub source_ip: Option<IpAddr>,
    /// The server to talk to.
    pub target: SocketAddr,
    /// How long each connect or read may take.
    pub timeout: Duration,
    /// The transcript's label (`spammer -> relay`).
    pub label: String,
}

/// What happened when a script was played.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRecord {
    /// One entry per step that expects a reply (`Greeting`, `Line`, `Message`,
    /// `ReadReply`), in step order; `None` when there was none (not sent,
    /// skipped, timed out, connection closed).
    pub replies: Vec<Option<Reply>>,
    /// Everything said, both ways.
    pub transcript: Transcript,
    /// Transport error, refused connection, timeout: human-readable.
    pub error: Option<String>,
    /// Whether the TCP connection was made.
    pub connected: bool,
}

impl SessionRecord {
    /// The reply codes, `None` where there was no reply.
    pub fn codes(&self) -> Vec<Option<u16>> {
        self.replies.iter().map(|r| r.as_ref().map(|r| r.code)).collect()
    }
}

/// The parts of a record a run fills in; kept outside the run's future so a
/// run cut short by the overall time limit keeps what it got.
struct Progress {
    replies: Vec<Option<Reply>>,
    error: Option<String>,
    connected: bool,
}

impl Progress {
    fn fail(&mut self, e: impl ToString) {
        self.error.get_or_insert_with(|| e.to_string());
    }
}

impl Sender {
    /// Play `steps` in `mode`. Never panics on network trouble: whatever went
    /// wrong is in [`SessionRecord::error`]. Every read waits at most
    /// `self.timeout`, and the whole run at most that times the number of
    /// replies expected plus two.
    pub async fn run(&self, steps: &[Step], mode: Mode) -> SessionRecord {
        let rec = TranscriptRecorder::new(self.label.clone());
        let expected = steps.iter().filter(|s| s.expects_reply()).count();
        let mut progress = Progress { replies: vec![None; expected], error: None, connected: false };
        let rounds = u32::try_from(expected).unwrap_or(u32::MAX).saturating_add(2);
        let budget = self.timeout.saturating_mul(rounds).saturating_add(EXTRA_REPLY_GRACE);
        if timeout(budget, self.drive(steps, mode, &rec, &mut progress)).await.is_err() {
            let msg = format!("session did not finish within {budget:?}");
            rec.note(msg.clone());
            progress.fail(msg);
        }
        SessionRecord {
            replies: progress.replies,
            transcript: rec.snapshot(),
            error: progress.error,
            connected: progress.connected,
        }
    }

    async fn drive(&self, steps: &[Step], mode: Mode, rec: &TranscriptRecorder, progress: &mut Progress) {
        let mut client = match SmtpClient::connect(self.source_ip, self.target, self.timeout, rec.clone()).await {
            Ok(c) => c,
            Err(e) => return progress.fail(e),
        };
        progress.connected = true;
        let result = match mode {
            Mode::Lockstep => lockstep(&mut client, steps, progress).await,
            Mode::Pipelined => pipelined(&mut client, steps, progress, self.timeout).await,
        };
        if let Err(e) = result {
            progress.fail(e);
        }
    }
}

/// One step at a time. A `Message` is sent only while the last reply was
/// `354`: after a refused DATA the message text would otherwise be read by the
/// server as commands (RFC 5321 3.3).
async fn lockstep(client: &mut SmtpClient, steps: &[Step], progress: &mut Progress) -> Result<(), ClientError> {
    let mut slots = progress.replies.iter_mut();
    let mut last_code: Option<u16> = None;
    for step in steps {
        let reply = match step {
            Step::Greeting | Step::ReadReply => Some(client.read_reply().await?),
            Step::Line(line) => Some(client.command(line).await?),
            Step::Message(_) if last_code != Some(354) => {
                client.transcript().note("message not sent: DATA was not answered 354");
                None
            }
            Step::Message(message) => Some(client.send_message(message).await?),
            Step::Raw(bytes) => {
                client.send_raw(bytes).await?;
                continue;
            }
        };
        last_code = reply.as_ref().map(|r| r.code);
        if let Some(slot) = slots.next() {
            *slot = reply;
        }
    }
    Ok(())
}

/// Everything at once, then the replies. Lines the server sends beyond those
/// the script expects are read for a short while and land in the transcript.
async fn pipelined(
    client: &mut SmtpClient,
    steps: &[Step],
    progress: &mut Progress,
    read_timeout: Duration,
) -> Result<(), ClientError> {
    let mut wire = Vec::new();
    for step in steps {
        match step {
            Step::Line(line) => {
                wire.extend_from_slice(line.as_bytes());
                wire.extend_from_slice(b"\r\n");
            }
            Step::Message(message) => wire.extend_from_slice(&codec::dot_stuff(message)),
            Step::Raw(bytes) => wire.extend_from_slice(bytes),
            Step::Greeting | Step::ReadReply => {}
        }
    }
    client.transcript().note(format!("pipelining {} octets in one write, before the greeting", wire.len()));
    if !wire.is_empty() {
        // A server that rejects early talkers may close on us mid-write; its
        // replies may still be readable, so note the error and read on.
        if let Err(e) = client.send_raw(&wire).await {
            progress.fail(e);
        }
    }
    for slot in progress.replies.iter_mut() {
        *slot = Some(client.read_reply().await?);
    }
    let grace = EXTRA_REPLY_GRACE.min(read_timeout);
    while let Ok(Ok(extra)) = timeout(grace, client.read_reply()).await {
        client.transcript().note(format!("extra reply, not expected by the script: {}", extra.first_line()));
    }
    Ok(())
}
