//! A slammer: many concurrent SMTP connections pushing many messages, as bulk
//! mailers and load generators (Postfix `smtp-source`) do. It records what
//! every message met (accepted, 4xx, 5xx, refused, timed out, broken) and how
//! long each took, and keeps every session's transcript.
//!
//! Each of `connections` workers sends `messages` messages, `per_session` to a
//! session (0: all in one), from its own source address when `sources` has
//! enough of them. With `pipelining`, and when the server offers PIPELINING
//! (RFC 2920), MAIL, RCPT and DATA leave in one write. A target `rate` spaces
//! message starts over all workers. Everything is bounded: the number of
//! messages, each read (`timeout`), and the whole run (`deadline`); messages
//! not started by the deadline are reported as unsent.

use crate::outbound::{Delivery, Tally};
use crate::timing::LabTime;
use lab_core::codec::{self, CodecError};
use lab_core::{Reply, Transcript, TranscriptRecorder};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpSocket;

/// What to slam.
#[derive(Debug, Clone)]
pub struct Slam {
    /// The server.
    pub target: SocketAddr,
    /// Worker `i` connects from `sources[i % len]`; empty: the OS chooses.
    pub sources: Vec<IpAddr>,
    /// Concurrent workers, one connection each at a time.
    pub connections: usize,
    /// Messages per worker.
    pub messages: usize,
    /// Messages per SMTP session; 0: all of a worker's messages in one session.
    pub per_session: usize,
    /// Target message starts per second over all workers; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// Pipeline MAIL, RCPT and DATA when the server offers PIPELINING.
    pub pipelining: bool,
    /// The EHLO name.
    pub helo: String,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// The message, CRLF line ends.
    pub message: Vec<u8>,
    /// Per connect and per reply.
    pub timeout: Duration,
    /// The whole run.
    pub deadline: Duration,
    /// Transcript labels.
    pub label: String,
    /// Lab time (rate pacing).
    pub time: LabTime,
}

/// A message of `size` octets: headers naming the envelope, then filler lines.
pub fn sized_message(from: &str, to: &str, subject: &str, size: usize) -> Vec<u8> {
    let mut m = format!("From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\r\n").into_bytes();
    let line = b"relaylab slammer filler text 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMN\r\n";
    while m.len() < size {
        let left = size - m.len();
        if left >= line.len() {
            m.extend_from_slice(line);
        } else if left > 2 {
            m.extend(std::iter::repeat_n(b'x', left - 2));
            m.extend_from_slice(b"\r\n");
        } else {
            m.extend_from_slice(&b"\r\n"[..left.min(2)]);
        }
    }
    m
}

/// What a slam did.
#[derive(Debug, Clone, Default)]
pub struct SlamReport {
    /// One count per message.
    pub messages: Tally,
    /// One count per session: accepted when all its messages were, else the
    /// first other outcome.
    pub sessions: Tally,
    /// Messages never started (the deadline came first).
    pub unsent: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Per-message latency (MAIL to the final reply), microseconds, sorted.
    pub latencies_us: Vec<u64>,
    /// Every session's transcript, ordered by connection, then session.
    pub transcripts: Vec<Transcript>,
    /// The first error or refusal seen, for the report.
    pub first_problem: Option<String>,
}

impl SlamReport {
    /// The `p`th percentile (0–100) of message latency, nearest rank.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as usize;
        Some(Duration::from_micros(self.latencies_us[rank.min(n) - 1]))
    }

    /// Accepted messages per second of wall time.
    pub fn accepted_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.messages.accepted as f64 / secs
        } else {
            0.0
        }
    }
}

#[derive(Default)]
struct Shared {
    messages: Tally,
    sessions: Tally,
    latencies: Vec<u64>,
    /// Each session's transcript, keyed by (connection, session) so the
    /// report lists them in that order, not in the order they happened to start.
    transcripts: Vec<((usize, usize), TranscriptRecorder)>,
    first_problem: Option<String>,
}

struct Pacer {
    rate: Option<f64>,
    /// Lab time of the start.
    started: chrono::DateTime<chrono::Utc>,
    tickets: AtomicU64,
    time: LabTime,
}

impl Pacer {
    /// Wait for this message's slot: message `n` starts no sooner than `n / rate` after the start.
    async fn slot(&self) {
        if let Some(rate) = self.rate.filter(|r| *r > 0.0) {
            let n = self.tickets.fetch_add(1, Ordering::Relaxed);
            let due =
                chrono::Duration::from_std(Duration::from_secs_f64(n as f64 / rate)).unwrap_or(chrono::Duration::MAX);
            self.time.sleep_until(self.started + due).await;
        }
    }
}

impl Slam {
    /// Run it. Never fails: what went wrong is counted.
    pub async fn run(&self) -> SlamReport {
        let started = Instant::now();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let sent = Arc::new(AtomicU64::new(0));
        let pacer = Arc::new(Pacer {
            rate: self.rate,
            started: self.time.now(),
            tickets: AtomicU64::new(0),
            time: self.time.clone(),
        });
        let wire = Arc::new(codec::dot_stuff(&self.message));
        let this = Arc::new(self.clone());
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..self.connections {
            let (this, shared, sent, pacer, wire) =
                (Arc::clone(&this), Arc::clone(&shared), Arc::clone(&sent), Arc::clone(&pacer), Arc::clone(&wire));
            workers.spawn(async move { this.worker(w, &shared, &sent, &pacer, &wire).await });
        }
        let all = async { while workers.join_next().await.is_some() {} };
        if tokio::time::timeout(self.deadline, all).await.is_err() {
            workers.abort_all();
        }
        let total = (self.connections * self.messages) as u64;
        let mut s = std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner));
        s.latencies.sort_unstable();
        SlamReport {
            messages: s.messages,
            sessions: s.sessions,
            unsent: total.saturating_sub(sent.load(Ordering::SeqCst)),
            elapsed: started.elapsed(),
            latencies_us: s.latencies,
            transcripts: {
                let mut ts = s.transcripts;
                ts.sort_by_key(|(key, _)| *key);
                ts.iter().map(|(_, rec)| rec.snapshot()).collect()
            },
            first_problem: s.first_problem,
        }
    }

    async fn worker(&self, w: usize, shared: &Mutex<Shared>, sent: &AtomicU64, pacer: &Pacer, wire: &[u8]) {
        let source = (!self.sources.is_empty()).then(|| self.sources[w % self.sources.len()]);
        let mut left = self.messages;
        let mut session_no = 0;
        while left > 0 {
            let batch = if self.per_session == 0 { left } else { self.per_session.min(left) };
            session_no += 1;
            let rec = TranscriptRecorder::new(format!("{} (connection {}, session {session_no})", self.label, w + 1));
            lock(shared).transcripts.push(((w, session_no), rec.clone()));
            let done = self.session(source, batch, &rec, shared, sent, pacer, wire).await;
            // A broken session gives up the message it was on, then a new session carries on.
            left -= done.max(1).min(left);
        }
    }

    /// One session carrying up to `batch` messages; returns how many it used up.
    #[allow(clippy::too_many_arguments)]
    async fn session(
        &self,
        source: Option<IpAddr>,
        batch: usize,
        rec: &TranscriptRecorder,
        shared: &Mutex<Shared>,
        sent: &AtomicU64,
        pacer: &Pacer,
        wire: &[u8],
    ) -> usize {
        let count = |shared: &Mutex<Shared>, d: Delivery, n: u64, why: Option<String>| {
            let mut s = lock(shared);
            s.messages.add_n(d, n);
            s.sessions.add(d);
            if d != Delivery::Accepted && s.first_problem.is_none() {
                s.first_problem = why;
            }
        };
        let mut conn = match Conn::open(source, self.target, self.timeout, rec.clone()).await {
            Ok(c) => c,
            Err(e) => {
                // Nothing was sent: the whole batch met the refusal.
                sent.fetch_add(batch as u64, Ordering::SeqCst);
                count(shared, e.delivery(), batch as u64, Some(e.to_string()));
                return batch;
            }
        };
        let greeting = match conn.read_reply().await {
            Ok(r) => r,
            Err(e) => {
                sent.fetch_add(batch as u64, Ordering::SeqCst);
                count(shared, e.delivery(), batch as u64, Some(e.to_string()));
                return batch;
            }
        };
        let hello = async {
            if !greeting.is_positive() {
                return Ok(Err(greeting));
            }
            let mut ehlo = conn.command(&format!("EHLO {}", self.helo)).await?;
            if ehlo.is_permanent() {
                ehlo = conn.command(&format!("HELO {}", self.helo)).await?;
            }
            Ok::<_, ConnError>(if ehlo.is_positive() { Ok(ehlo) } else { Err(ehlo) })
        };
        let ehlo = match hello.await {
            Ok(Ok(r)) => r,
            Ok(Err(refusal)) => {
                sent.fetch_add(batch as u64, Ordering::SeqCst);
                count(shared, Delivery::of_reply(&refusal), batch as u64, Some(refusal.first_line()));
                conn.quit().await;
                return batch;
            }
            Err(e) => {
                sent.fetch_add(batch as u64, Ordering::SeqCst);
                count(shared, e.delivery(), batch as u64, Some(e.to_string()));
                return batch;
            }
        };
        let pipelining =
            self.pipelining && ehlo.lines.iter().skip(1).any(|l| l.split_whitespace().next() == Some("PIPELINING"));
        let mut session_outcome = Delivery::Accepted;
        let mut used = 0;
        for _ in 0..batch {
            pacer.slot().await;
            sent.fetch_add(1, Ordering::SeqCst);
            used += 1;
            let t0 = Instant::now();
            let result = self.transaction(&mut conn, pipelining, wire).await;
            // A 421 closes the channel (RFC 5321 3.8): the session is over too.
            let (delivery, why, broken) = match result {
                Ok(reply) => (Delivery::of_reply(&reply), Some(reply.first_line()), reply.code == 421),
                Err(e) => (e.delivery(), Some(e.to_string()), true),
            };
            {
                let mut s = lock(shared);
                s.messages.add(delivery);
                if !broken {
                    s.latencies.push(t0.elapsed().as_micros() as u64);
                }
                if delivery != Delivery::Accepted && s.first_problem.is_none() {
                    s.first_problem = why;
                }
            }
            if delivery != Delivery::Accepted && session_outcome == Delivery::Accepted {
                session_outcome = delivery;
            }
            if broken {
                lock(shared).sessions.add(session_outcome);
                return used;
            }
        }
        lock(shared).sessions.add(session_outcome);
        conn.quit().await;
        used
    }

    /// One mail transaction; the reply that decided it.
    async fn transaction(&self, conn: &mut Conn, pipelining: bool, wire: &[u8]) -> Result<Reply, ConnError> {
        let mail = format!("MAIL FROM:<{}>", self.mail_from);
        let rcpts: Vec<String> = self.rcpt_to.iter().map(|r| format!("RCPT TO:<{r}>")).collect();
        let (mail_reply, rcpt_replies, data_reply) = if pipelining {
            // RFC 2920 3.1: MAIL, RCPT and DATA may go in one group; DATA ends it.
            let mut lines = vec![mail.as_str()];
            lines.extend(rcpts.iter().map(String::as_str));
            lines.push("DATA");
            conn.send_lines(&lines).await?;
            let m = conn.read_reply().await?;
            let mut rs = Vec::with_capacity(rcpts.len());
            for _ in &rcpts {
                rs.push(conn.read_reply().await?);
            }
            let d = conn.read_reply().await?;
            (m, rs, Some(d))
        } else {
            let m = conn.command(&mail).await?;
            if !m.is_positive() {
                return Ok(m);
            }
            let mut rs = Vec::with_capacity(rcpts.len());
            for r in &rcpts {
                rs.push(conn.command(r).await?);
            }
            let d = if rs.iter().any(Reply::is_positive) { Some(conn.command("DATA").await?) } else { None };
            (m, rs, d)
        };
        if !mail_reply.is_positive() {
            if data_reply.as_ref().is_some_and(|d| d.code == 354) {
                // A server that said 354 anyway expects a message: end it empty.
                conn.send_message(b"").await?;
            }
            return Ok(mail_reply);
        }
        match data_reply {
            Some(d) if d.code == 354 => conn.send_message(wire).await,
            Some(d) if rcpt_replies.iter().any(Reply::is_positive) => Ok(d),
            _ => Ok(rcpt_replies
                .into_iter()
                .find(|r| !r.is_positive())
                .unwrap_or_else(|| Reply::new(554, "no recipients"))),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("connection closed by the server")]
    Closed,
    #[error("malformed reply line {0:?}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ConnError {
    fn delivery(&self) -> Delivery {
        match self {
            ConnError::Connect(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Delivery::Refused,
            ConnError::Connect(e) if e.kind() == std::io::ErrorKind::TimedOut => Delivery::TimedOut,
            ConnError::Timeout(_) => Delivery::TimedOut,
            _ => Delivery::Error,
        }
    }
}

/// A lean recorded client connection: one write per command group, the
/// message written from one pre-stuffed buffer.
struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    rec: TranscriptRecorder,
    timeout: Duration,
}

impl Conn {
    async fn open(
        source: Option<IpAddr>,
        target: SocketAddr,
        timeout: Duration,
        rec: TranscriptRecorder,
    ) -> Result<Conn, ConnError> {
        rec.note(format!("connect to {target}{}", source.map(|s| format!(" from {s}")).unwrap_or_default()));
        let connect = async {
            let socket = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            if let Some(ip) = source {
                socket.bind(SocketAddr::new(ip, 0))?;
            }
            socket.connect(target).await
        };
        let stream = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                rec.note(format!("connect failed: {e}"));
                return Err(ConnError::Connect(e));
            }
            Err(_) => {
                rec.note("connect timed out");
                return Err(ConnError::Connect(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")));
            }
        };
        stream.set_nodelay(true).ok();
        let (r, w) = stream.into_split();
        Ok(Conn { reader: BufReader::with_capacity(4096, r), writer: w, rec, timeout })
    }

    async fn read_reply(&mut self) -> Result<Reply, ConnError> {
        let mut lines = Vec::new();
        loop {
            let line =
                match tokio::time::timeout(self.timeout, codec::read_line(&mut self.reader, codec::MAX_LINE)).await {
                    Ok(Ok(l)) => l,
                    Ok(Err(CodecError::Closed)) => {
                        self.rec.note("connection closed by the server");
                        return Err(ConnError::Closed);
                    }
                    Ok(Err(CodecError::Io(e))) => {
                        self.rec.note(format!("read failed: {e}"));
                        return Err(ConnError::Io(e));
                    }
                    Ok(Err(e)) => return Err(ConnError::Malformed(e.to_string())),
                    Err(_) => {
                        self.rec.note(format!("no reply within {:?}", self.timeout));
                        return Err(ConnError::Timeout(self.timeout));
                    }
                };
            let Some((code, last, text)) = Reply::parse_line(&line) else {
                self.rec.server(line.clone());
                return Err(ConnError::Malformed(line));
            };
            lines.push(text.to_string());
            self.rec.server(line);
            if last {
                return Ok(Reply { code, lines });
            }
        }
    }

    async fn send_lines(&mut self, lines: &[&str]) -> Result<(), ConnError> {
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 2).sum());
        for l in lines {
            self.rec.client(l.to_string());
            buf.extend_from_slice(l.as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&buf).await?;
        Ok(())
    }

    async fn command(&mut self, line: &str) -> Result<Reply, ConnError> {
        self.send_lines(&[line]).await?;
        self.read_reply().await
    }

    /// Write a message already dot-stuffed and terminated, read the final reply.
    async fn send_message(&mut self, wire: &[u8]) -> Result<Reply, ConnError> {
        let wire: std::borrow::Cow<'_, [u8]> = if wire.is_empty() { codec::dot_stuff(b"").into() } else { wire.into() };
        self.rec.note(format!("<message: {} octets on the wire>", wire.len()));
        self.rec.client(".");
        self.writer.write_all(&wire).await?;
        self.read_reply().await
    }

    async fn quit(mut self) {
        // The server closes after 221; closing our end then needs no shutdown first.
        if self.command("QUIT").await.is_ok() {
            self.writer.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_size_asked_for() {
        for size in [10, 100, 2048, 2049, 5000] {
            let m = sized_message("a@b", "c@d", "s", size);
            assert!(m.len() == size || (size < 40 && m.len() > size), "{size}: {}", m.len());
            assert!(m.ends_with(b"\r\n"));
        }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let r = SlamReport { latencies_us: (1..=100).collect(), ..SlamReport::default() };
        assert_eq!(r.percentile(50.0), Some(Duration::from_micros(50)));
        assert_eq!(r.percentile(99.0), Some(Duration::from_micros(99)));
        assert_eq!(r.percentile(100.0), Some(Duration::from_micros(100)));
        assert_eq!(SlamReport::default().percentile(50.0), None);
    }
}
