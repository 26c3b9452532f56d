//! The MX sink's listener and per-connection tasks.
//!
//! One task accepts connections; each connection gets its own task that reads
//! command lines, asks the [`Session`] what to answer, and writes the replies.
//! Shutdown is one `watch` channel every task listens on.
//!
//! Pipelining (RFC 2920): a client may send several commands in one packet and
//! read the replies later. Commands are read from one `BufReader` for the whole
//! connection, so nothing the client sent ahead is lost, and replies are
//! written to a `BufWriter` that is flushed only when no complete command line
//! is waiting in the input buffer, before a `354`, and before closing; the
//! replies to a batch of commands thus leave together, in order, as Postfix's
//! smtpd does it.

use crate::config::{SinkConfig, MAX_MESSAGE_SIZE};
use crate::session::{Accepted, Outcome, QueueIds, Session};
use lab_core::codec::{self, CodecError, MAX_LINE};
use lab_core::{ReceivedMessage, Reply, SharedClock, Transcript, TranscriptRecorder};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;

/// How long shutdown waits for open sessions to say goodbye before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How long a last write (a `421` on shutdown) may take.
const GOODBYE_WRITE: Duration = Duration::from_millis(500);

/// An SMTP server standing in for a lab's MX host: it accepts mail and records
/// every session and every message. Dropping it stops it abruptly; prefer
/// [`MxSink::shutdown`].
#[derive(Debug)]
pub struct MxSink {
    addr: SocketAddr,
    hostname: String,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept_task: Option<JoinHandle<()>>,
}

/// What the sink's tasks share.
#[derive(Debug)]
struct Shared {
    config: SinkConfig,
    queue_ids: Arc<QueueIds>,
    messages: Mutex<Vec<ReceivedMessage>>,
    sessions: Mutex<Vec<TranscriptRecorder>>,
    active: AtomicUsize,
}

/// Lock, ignoring poisoning: the data are append-only records, valid after a panic elsewhere.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MxSink {
    /// Listen on `bind` (port 0 picks a free port) and start serving.
    pub async fn start(bind: SocketAddr, config: SinkConfig, clock: SharedClock) -> io::Result<MxSink> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let hostname = config.hostname.clone();
        let shared = Arc::new(Shared {
            config,
            queue_ids: Arc::new(QueueIds::new(clock)),
            messages: Mutex::new(Vec::new()),
            sessions: Mutex::new(Vec::new()),
            active: AtomicUsize::new(0),
        });
        let (tx, rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), rx));
        tracing::debug!(%addr, host = %hostname, "mx sink listening");
        Ok(MxSink { addr, hostname, shared, shutdown: tx, accept_task: Some(accept_task) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The name it announces.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Every message accepted so far, in order of acceptance.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        lock(&self.shared.messages).clone()
    }

    /// The transcript of every session so far, in order of connection; open
    /// sessions show what has been said until now.
    pub fn sessions(&self) -> Vec<Transcript> {
        lock(&self.shared.sessions).iter().map(TranscriptRecorder::snapshot).collect()
    }

    /// How many connections are open now.
    pub fn active_sessions(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Stop accepting, tell open sessions `421` and close them (waiting a
    /// bounded time), then return. Recorded messages and transcripts stay
    /// readable through clones taken before.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.accept_task.take() {
            let abort = task.abort_handle();
            // The accept loop bounds its own wait; this is a second fence.
            if timeout(SHUTDOWN_GRACE * 2, task).await.is_err() {
                abort.abort();
            }
        }
        tracing::debug!(addr = %self.addr, "mx sink stopped");
    }
}

impl Drop for MxSink {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.accept_task.take() {
            // Dropping the accept loop drops its JoinSet, which aborts sessions.
            task.abort();
        }
    }
}

/// Counts an open connection for as long as it lives.
struct ActiveGuard(Arc<Shared>);

impl ActiveGuard {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.active.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(Arc::clone(shared))
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let guard = ActiveGuard::new(&shared);
                    // Register the session here, so indices follow connection order.
                    let rec = TranscriptRecorder::new(format!("{} -> {}", peer.ip(), shared.config.hostname));
                    let index = {
                        let mut sessions = lock(&shared.sessions);
                        sessions.push(rec.clone());
                        sessions.len() - 1
                    };
                    tasks.spawn(serve(stream, peer, Arc::clone(&shared), rec, index, shutdown.clone(), guard));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "mx sink accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    // Every session sees the same signal and closes itself; wait, bounded.
    let drain = async { while tasks.join_next().await.is_some() {} };
    if timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tasks.abort_all();
    }
}

/// Why a connection ended other than by QUIT.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("client closed the connection without QUIT")]
    Closed,
    #[error("client closed the connection during DATA; message discarded")]
    ClosedInData,
    #[error("no input within {0:?}")]
    Timeout(Duration),
    #[error("line too long in message")]
    DataLineTooLong,
    #[error("sink shutting down")]
    Shutdown,
    #[error("transport error: {0}")]
    Io(#[from] io::Error),
}

/// One connection's reader, writer and transcript.
struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
    rec: TranscriptRecorder,
    timeout: Duration,
}

impl Conn {
    /// Queue a reply (recorded now, written at the next flush).
    async fn send(&mut self, reply: &Reply) -> Result<(), ConnError> {
        self.rec.reply(reply);
        let wire = reply.to_wire();
        match timeout(self.timeout, self.writer.write_all(wire.as_bytes())).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(ConnError::Timeout(self.timeout)),
        }
    }

    async fn flush(&mut self) -> Result<(), ConnError> {
        match timeout(self.timeout, self.writer.flush()).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(ConnError::Timeout(self.timeout)),
        }
    }

    /// The next command line; `None` when it was too long (and has been skipped).
    async fn read_command(&mut self) -> Result<Option<String>, ConnError> {
        match timeout(self.timeout, read_command_line(&mut self.reader, MAX_LINE)).await {
            Ok(Ok(line)) => Ok(Some(line)),
            Ok(Err(CodecError::Closed)) => Err(ConnError::Closed),
            Ok(Err(CodecError::Io(e))) => Err(ConnError::Io(e)),
            Ok(Err(CodecError::LineTooLong(_))) => Ok(None),
            Err(_) => Err(ConnError::Timeout(self.timeout)),
        }
    }

    /// The message after `354`, dot-unstuffed (RFC 5321 4.5.2), bounded in size.
    async fn read_data(&mut self) -> Result<codec::DataRead, ConnError> {
        match timeout(self.timeout, codec::read_data(&mut self.reader, MAX_MESSAGE_SIZE)).await {
            Ok(Ok(read)) => Ok(read),
            Ok(Err(CodecError::Closed)) => Err(ConnError::ClosedInData),
            Ok(Err(CodecError::Io(e))) => Err(ConnError::Io(e)),
            Ok(Err(CodecError::LineTooLong(_))) => Err(ConnError::DataLineTooLong),
            Err(_) => Err(ConnError::Timeout(self.timeout)),
        }
    }

    /// Send an outcome's reply; true when the connection is to close.
    async fn answer(&mut self, outcome: &Outcome) -> Result<bool, ConnError> {
        self.send(outcome.reply()).await?;
        match outcome {
            Outcome::Close(_) => {
                self.flush().await?;
                Ok(true)
            }
            Outcome::Data(_) => {
                // The client waits for 354 before sending the message (RFC 2920 3.1).
                self.flush().await?;
                Ok(false)
            }
            Outcome::Reply(_) => Ok(false),
        }
    }

    /// Best-effort last words before closing; the peer may be gone already.
    async fn goodbye(&mut self, reply: Reply) {
        self.rec.reply(&reply);
        let write = async {
            self.writer.write_all(reply.to_wire().as_bytes()).await?;
            self.writer.flush().await
        };
        let _ = timeout(GOODBYE_WRITE, write).await;
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    rec: TranscriptRecorder,
    index: usize,
    mut shutdown: watch::Receiver<bool>,
    _active: ActiveGuard,
) {
    let config = &shared.config;
    rec.note(format!("connection from {peer}"));
    tracing::debug!(%peer, host = %config.hostname, "sink session opened");
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let mut conn =
        Conn { reader: BufReader::new(r), writer: BufWriter::new(w), rec: rec.clone(), timeout: config.read_timeout };
    let mut session =
        Session::new(config.hostname.clone(), peer, config.behaviour.clone(), Arc::clone(&shared.queue_ids));

    let ended = tokio::select! {
        end = converse(&mut conn, &mut session, &shared, peer, index) => end,
        _ = shutdown.changed() => Err(ConnError::Shutdown),
    };
    let host = &config.hostname;
    match ended {
        Ok(()) => rec.note("connection closed"),
        Err(e @ ConnError::Timeout(_)) => {
            rec.note(e.to_string());
            conn.goodbye(Reply::new(421, format!("4.4.2 {host} Error: timeout exceeded"))).await;
        }
        Err(e @ ConnError::DataLineTooLong) => {
            rec.note(e.to_string());
            conn.goodbye(Reply::new(421, format!("4.5.0 {host} Line too long in message, closing connection"))).await;
        }
        Err(e @ ConnError::Shutdown) => {
            rec.note(e.to_string());
            conn.goodbye(Reply::new(421, format!("4.3.2 {host} Service shutting down"))).await;
        }
        Err(e) => rec.note(e.to_string()),
    }
    let _ = timeout(GOODBYE_WRITE, conn.writer.shutdown()).await;
    tracing::debug!(%peer, host = %config.hostname, "sink session closed");
}

/// The dialogue proper; returns `Ok` when the session ended by our choice (QUIT).
async fn converse(
    conn: &mut Conn,
    session: &mut Session,
    shared: &Shared,
    peer: SocketAddr,
    index: usize,
) -> Result<(), ConnError> {
    if conn.answer(&session.greeting()).await? {
        return Ok(());
    }
    loop {
        // Flush once the batch of pipelined commands already received is answered.
        if !conn.reader.buffer().contains(&b'\n') {
            conn.flush().await?;
        }
        let outcome = match conn.read_command().await? {
            Some(line) => {
                conn.rec.client(line.clone());
                session.command(&line)
            }
            None => {
                conn.rec.note(format!("command line longer than {MAX_LINE} octets, discarded"));
                session.line_too_long()
            }
        };
        if conn.answer(&outcome).await? {
            return Ok(());
        }
        if let Outcome::Data(_) = outcome {
            let read = conn.read_data().await?;
            if read.oversize {
                conn.rec.note(format!("<message: over {MAX_MESSAGE_SIZE} octets, discarded>"));
            } else {
                conn.rec.note(format!("<message: {} octets>", read.data.len()));
            }
            conn.rec.client(".");
            let (outcome, accepted) = session.end_of_data(read.data, read.oversize);
            if let Some(acc) = accepted {
                record(shared, acc, peer, index);
            }
            if conn.answer(&outcome).await? {
                return Ok(());
            }
        }
    }
}

fn record(shared: &Shared, acc: Accepted, peer: SocketAddr, session: usize) {
    tracing::debug!(host = %shared.config.hostname, queue_id = %acc.queue_id, "sink accepted message");
    lock(&shared.messages).push(ReceivedMessage {
        host: shared.config.hostname.clone(),
        queue_id: acc.queue_id,
        helo: acc.helo,
        peer,
        envelope: acc.envelope,
        data: acc.data,
        session,
    });
}

/// Read one command line of at most `max` octets, CRLF or LF stripped.
///
/// Unlike `lab_core::codec::read_line`, an overlong line is consumed through
/// its line end before `LineTooLong` is returned, so the next read starts at
/// the next command and the session can answer `500` and go on.
async fn read_command_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> Result<String, CodecError> {
    let mut buf = Vec::new();
    let mut too_long = false;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Err(CodecError::Closed);
        }
        let (chunk, end) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i, Some(i + 1)),
            None => (available.len(), None),
        };
        if !too_long {
            buf.extend_from_slice(&available[..chunk]);
            // One more octet is allowed for the CR of the line end.
            if buf.len() > max + 1 {
                too_long = true;
                buf = Vec::new();
            }
        }
        r.consume(end.unwrap_or(chunk));
        if end.is_some() {
            break;
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    if too_long || buf.len() > max {
        return Err(CodecError::LineTooLong(max));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_overlong_line_is_skipped_whole() {
        let mut input = vec![b'A'; 50];
        input.extend_from_slice(b"\r\nNOOP\r\nlast");
        // A tiny buffer makes the long line arrive in pieces.
        let mut r = BufReader::with_capacity(8, &input[..]);
        assert!(matches!(read_command_line(&mut r, 10).await, Err(CodecError::LineTooLong(10))));
        assert_eq!(read_command_line(&mut r, 10).await.unwrap(), "NOOP");
        assert!(matches!(read_command_line(&mut r, 10).await, Err(CodecError::Closed)));
    }

    #[tokio::test]
    async fn line_of_exactly_max_with_crlf_is_fine() {
        let mut r = BufReader::with_capacity(4, &b"0123456789\r\n01234567890\n"[..]);
        assert_eq!(read_command_line(&mut r, 10).await.unwrap(), "0123456789");
        assert!(matches!(read_command_line(&mut r, 10).await, Err(CodecError::LineTooLong(10))));
    }
}
