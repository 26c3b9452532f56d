//! What crossed the wire in one SMTP session.
//!
//! Failures are shown with the transcript of the session that went wrong, so
//! every party that speaks SMTP records one. Lines are stored as text, as the
//! peer sent them; message bodies are summarised to keep reports readable.

use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Who spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The SMTP client sent this line.
    Client,
    /// The SMTP server sent this line.
    Server,
    /// A note from the recorder: connection opened or closed, timeout, summary of DATA.
    Note,
}

/// One line of a transcript.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptLine {
    /// Milliseconds since the session started.
    pub at_ms: u64,
    /// Who spoke.
    pub dir: Direction,
    /// The line, without CRLF.
    pub text: String,
}

/// A whole session.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    /// A label: `spammer -> relay`, `relay -> internal.sysiphus.com`.
    pub label: String,
    /// The lines in order.
    pub lines: Vec<TranscriptLine>,
}

impl Transcript {
    /// Render as `C: ...` / `S: ...` / `*  ...` lines, the form failure messages print.
    pub fn render(&self) -> String {
        let mut out = format!("--- {} ---\n", self.label);
        for l in &self.lines {
            let tag = match l.dir {
                Direction::Client => "C:",
                Direction::Server => "S:",
                Direction::Note => "* ",
            };
            out.push_str(&format!("{tag} {}\n", l.text));
        }
        out
    }
}

/// A cheap, cloneable handle that appends to one transcript.
#[derive(Debug, Clone)]
pub struct TranscriptRecorder {
    inner: Arc<Mutex<Transcript>>,
    start: Instant,
}

impl TranscriptRecorder {
    /// Start recording a session.
    pub fn new(label: impl Into<String>) -> Self {
        TranscriptRecorder {
            inner: Arc::new(Mutex::new(Transcript { label: label.into(), lines: Vec::new() })),
            start: Instant::now(),
        }
    }

    /// Append a line.
    pub fn push(&self, dir: Direction, text: impl Into<String>) {
        let at_ms = self.start.elapsed().as_millis() as u64;
        self.inner.lock().unwrap().lines.push(TranscriptLine { at_ms, dir, text: text.into() });
    }

    /// Record a client line.
    pub fn client(&self, text: impl Into<String>) {
        self.push(Direction::Client, text)
    }

    /// Record a server line.
    pub fn server(&self, text: impl Into<String>) {
        self.push(Direction::Server, text)
    }

    /// Record a note.
    pub fn note(&self, text: impl Into<String>) {
        self.push(Direction::Note, text)
    }

    /// Record every line of a reply as server lines.
    pub fn reply(&self, reply: &crate::Reply) {
        let last = reply.lines.len() - 1;
        for (i, l) in reply.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.server(format!("{}{}{}", reply.code, sep, l));
        }
    }

    /// A copy of what has been recorded so far.
    pub fn snapshot(&self) -> Transcript {
        self.inner.lock().unwrap().clone()
    }
}
