//! The MX sink's listener and per-connection tasks.
//!
//! One task per sink accepts connections and drives every open session
//! itself, as one event loop (see `Sessions`), the way Postfix's smtp-sink
//! serves all its clients from one process: a session reads command lines,
//! asks the [`Session`] what to answer, and writes the replies. Shutdown and
//! outages reach the sessions through two flags the accept task sets.
//!
//! Pipelining (RFC 2920): a client may send several commands in one packet and
//! read the replies later. Commands are read from one `BufReader` for the whole
//! connection, so nothing the client sent ahead is lost, and replies are
//! written to a `BufWriter` that is flushed only when no complete command line
//! is waiting in the input buffer, before a `354`, and before closing; the
//! replies to a batch of commands thus leave together, in order, as Postfix's
//! smtpd does it.
//!
//! Scripted behaviour: the session's outcomes may say to wait first, to hang
//! up without a reply, or to fall silent (the connection is then read and
//! ignored until the client gives up). An outage schedule closes the listening
//! port for its windows and ends open sessions, as a crash would. Accepted
//! messages go to the host's reactor (forwarder, list, auto-responder), if it
//! has one, before the `250` leaves.

use crate::activity::Activity;
use crate::behaviour::{GreylistStats, Schedule};
use crate::config::{SinkConfig, MAX_MESSAGE_SIZE};
use crate::relay_back::{Reactor, ReactorLog};
use crate::session::{Accepted, Outcome, Session, SinkEnv};
use crate::timing::LabTime;
use lab_core::codec::{self, CodecError, MAX_LINE};
use lab_core::{ReceivedMessage, Reply, SharedClock, Transcript, TranscriptRecorder};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How long shutdown waits for open sessions to say goodbye before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The reply buffer of a connection: replies to a batch of pipelined commands collect here.
const WRITE_BUFFER: usize = 8 * 1024;

/// How long a last write (a `421` on shutdown) may take.
const GOODBYE_WRITE: Duration = Duration::from_millis(500);

/// An SMTP server standing in for a lab's MX host: it accepts mail (or
/// misbehaves as its [`SinkBehaviour`](crate::SinkBehaviour) says) and records
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
    env: Arc<SinkEnv>,
    read_timeout: Duration,
    schedule: Schedule,
    reactor: Option<Reactor>,
    messages: Mutex<Vec<ReceivedMessage>>,
    sessions: Mutex<Vec<TranscriptRecorder>>,
    events: Mutex<Vec<String>>,
    active: AtomicUsize,
    /// Set on shutdown: every session says `421` and ends.
    stopping: AtomicBool,
    /// Bumped when the host goes down: every session open then ends at once.
    outages: AtomicU64,
}

impl Shared {
    fn event(&self, what: &str) {
        let line = format!("{} ms: {what}", self.env.time.elapsed().as_millis());
        tracing::debug!(host = %self.env.hostname, "{line}");
        lock(&self.events).push(line);
    }
}

/// Lock, ignoring poisoning: the data are append-only records, valid after a panic elsewhere.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MxSink {
    /// Listen on `bind` (port 0 picks a free port) and start serving. A sink
    /// whose schedule has it down at the start binds (so a taken address is
    /// reported now), then closes its port until the window ends.
    pub async fn start(bind: SocketAddr, config: SinkConfig, clock: SharedClock) -> io::Result<MxSink> {
        let listener = listen(bind)?;
        let addr = listener.local_addr()?;
        let hostname = config.hostname.clone();
        let time = match config.epoch {
            Some(epoch) => LabTime::new(clock, epoch),
            None => LabTime::starting_now(clock),
        };
        let mut env = SinkEnv::new(config.hostname.clone(), config.behaviour, time.clone());
        env.addresses = config.addresses.clone();
        let reactor = config
            .reaction
            .map(|(reaction, outbound)| Reactor::new(reaction, outbound, hostname.clone(), time, config.addresses));
        let shared = Arc::new(Shared {
            env: Arc::new(env),
            read_timeout: config.read_timeout,
            schedule: config.schedule,
            reactor,
            messages: Mutex::new(Vec::new()),
            sessions: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            active: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            outages: AtomicU64::new(0),
        });
        let (tx, rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, addr, Arc::clone(&shared), rx));
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

    /// How many messages were accepted so far.
    pub fn message_count(&self) -> usize {
        lock(&self.shared.messages).len()
    }

    /// The transcript of every session so far, in order of connection; open
    /// sessions show what has been said until now.
    pub fn sessions(&self) -> Vec<Transcript> {
        lock(&self.shared.sessions).iter().map(TranscriptRecorder::snapshot).collect()
    }

    /// How many connections were accepted so far.
    pub fn session_count(&self) -> usize {
        lock(&self.shared.sessions).len()
    }

    /// How many connections are open now.
    pub fn active_sessions(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// What happened to the host itself: `1999 ms: up (listening again)`.
    pub fn events(&self) -> Vec<String> {
        lock(&self.shared.events).clone()
    }

    /// What its greylist deferred and passed, if it greylists.
    pub fn greylist_stats(&self) -> Option<GreylistStats> {
        self.shared.env.behaviour.greylist.as_ref().map(|g| g.stats())
    }

    /// What it sent on (forwarders, lists, auto-responders).
    pub fn reactor_log(&self) -> Option<ReactorLog> {
        self.shared.reactor.as_ref().map(Reactor::log)
    }

    /// How many messages it sent on so far (finished attempts).
    pub fn sent_count(&self) -> usize {
        self.shared.reactor.as_ref().map_or(0, Reactor::sent_count)
    }

    /// Messages it is still about to send on (0 for hosts that only receive).
    pub fn busy(&self) -> usize {
        self.shared.reactor.as_ref().map_or(0, |r| r.activity().in_flight())
    }

    /// Wait until it has nothing left to send; false if `within` passed first.
    pub async fn wait_idle(&self, within: Duration) -> bool {
        match &self.shared.reactor {
            Some(r) => r.activity().wait_idle(within).await,
            None => true,
        }
    }

    /// The activity counter of its sends, if it sends.
    pub fn activity(&self) -> Option<Activity> {
        self.shared.reactor.as_ref().map(|r| r.activity().clone())
    }

    /// Stop accepting, tell open sessions `421` and close them (waiting a
    /// bounded time), stop its sends, then return. Recorded messages and
    /// transcripts stay readable through clones taken before.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.accept_task.take() {
            let abort = task.abort_handle();
            // The accept loop bounds its own wait; this is a second fence.
            if timeout(SHUTDOWN_GRACE * 2, task).await.is_err() {
                abort.abort();
            }
        }
        if let Some(r) = &self.shared.reactor {
            r.abort_all();
        }
        tracing::debug!(addr = %self.addr, "mx sink stopped");
    }
}

impl Drop for MxSink {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.accept_task.take() {
            // Aborting the accept loop drops the sessions it drives.
            task.abort();
        }
        if let Some(r) = &self.shared.reactor {
            r.abort_all();
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

/// Wait until the lab has run for `offset`, or forever when there is none.
async fn until_offset(time: &LabTime, offset: Option<Duration>) {
    match offset {
        Some(o) => time.sleep_until_offset(o).await,
        None => std::future::pending().await,
    }
}

/// A listening socket on `addr` with `TCP_NODELAY` set: Linux copies it to
/// every accepted socket, which saves a `setsockopt` per connection.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As TcpListener::bind does: a port just closed (an outage) may be taken again at once.
    socket.set_reuseaddr(true)?;
    if cfg!(target_os = "linux") {
        socket.set_nodelay(true)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accept connections and drive the open sessions; close the port while the
/// schedule has the host down (ending open sessions, as a crash would), and
/// open it again after.
async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sessions = Sessions::default();
    let mut listener = Some(listener);
    let time = shared.env.time.clone();
    loop {
        let now = time.elapsed();
        if let Some(until) = shared.schedule.down_until(now) {
            if listener.take().is_some() {
                shared.outages.fetch_add(1, Ordering::SeqCst);
                sessions.wake_all();
                shared.event(&format!("down (not listening) until {} ms", until.as_millis()));
            }
            tokio::select! {
                never = sessions.drive() => match never {},
                _ = time.sleep_until_offset(until) => continue,
                _ = shutdown.changed() => break,
            }
        }
        let current = match &listener {
            Some(l) => l,
            None => match listen(addr) {
                Ok(l) => {
                    shared.event("up (listening again)");
                    listener.insert(l)
                }
                Err(e) => {
                    tracing::warn!(error = %e, %addr, "mx sink could not listen again; retrying");
                    tokio::select! {
                        never = sessions.drive() => match never {},
                        _ = time.sleep(Duration::from_millis(20)) => continue,
                        _ = shutdown.changed() => break,
                    }
                }
            },
        };
        let next_down = shared.schedule.next_down(now);
        let accepted = tokio::select! {
            // Sessions first: answering open sessions before taking new ones bounds their wait.
            biased;
            never = sessions.drive() => match never {},
            accepted = current.accept() => accepted,
            _ = until_offset(&time, next_down) => continue,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let guard = ActiveGuard::new(&shared);
                // Register the session here, so indices follow connection order.
                let rec = TranscriptRecorder::new(format!(
                    "{} -> {}",
                    shared.env.addresses.to_virtual(peer.ip()),
                    shared.env.hostname
                ));
                let index = {
                    let mut all = lock(&shared.sessions);
                    all.push(rec.clone());
                    all.len() - 1
                };
                let outage = shared.outages.load(Ordering::SeqCst);
                sessions.push(Box::pin(serve(stream, peer, Arc::clone(&shared), rec, index, outage, guard)));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                tracing::warn!(error = %e, "mx sink accept failed");
                tokio::select! {
                    never = sessions.drive() => match never {},
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        }
    }
    drop(listener);
    // Every session sees the flag and closes itself; wait, bounded (dropping the rest aborts them).
    shared.stopping.store(true, Ordering::SeqCst);
    sessions.wake_all();
    let _ = timeout(SHUTDOWN_GRACE, sessions.drain()).await;
}

/// A session's future, as [`Sessions`] keeps it.
type SessionFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The open sessions of one sink, polled by its accept task: a small
/// `FuturesUnordered`. One task rather than one per connection because the
/// sessions are short and light: a task each cost a spawn and, on a
/// multi-thread runtime, wake-ups handed between worker threads (measured
/// against smtp-sink: those hand-offs cost more than the work itself).
/// A session woken by its socket or timer is queued in [`ReadyList`] and
/// polled at the task's next turn; the others are not touched.
#[derive(Default)]
struct Sessions {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    ready: Arc<ReadyList>,
    /// The list being worked through (kept for its allocation).
    batch: Vec<(usize, u64)>,
    /// Slot generations, so a stale wake-up of a finished session is ignored.
    generation: u64,
    open: usize,
}

struct Slot {
    future: SessionFuture,
    wake: Arc<SlotWake>,
    waker: Waker,
}

/// Sessions woken since the last turn, and the accept task's waker.
#[derive(Default)]
struct ReadyList(Mutex<ReadyInner>);

#[derive(Default)]
struct ReadyInner {
    woken: Vec<(usize, u64)>,
    task: Option<Waker>,
    /// The accept task is in a turn and looks at `woken` again before it
    /// ends: a wake-up need not reschedule it (on a multi-thread runtime that
    /// would wake a second worker for nothing).
    in_turn: bool,
}

/// One session's waker: queues it (once until it is polled) and wakes the accept task.
struct SlotWake {
    index: usize,
    generation: u64,
    queued: AtomicBool,
    ready: Arc<ReadyList>,
}

impl Wake for SlotWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let task = {
            let mut ready = lock(&self.ready.0);
            ready.woken.push((self.index, self.generation));
            if ready.in_turn {
                None
            } else {
                ready.task.take()
            }
        };
        if let Some(t) = task {
            t.wake();
        }
    }
}

impl SlotWake {
    /// Queue the session from the accept task itself, which drives the
    /// sessions next anyway: no need to wake it.
    fn queue(&self) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            lock(&self.ready.0).woken.push((self.index, self.generation));
        }
    }
}

/// How many times one turn goes back for sessions woken during it, before
/// it yields to the runtime (tokio's budget, other tasks).
const PASSES_PER_TURN: usize = 8;

impl Sessions {
    fn push(&mut self, future: SessionFuture) {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        self.generation += 1;
        let wake = Arc::new(SlotWake {
            index,
            generation: self.generation,
            queued: AtomicBool::new(false),
            ready: Arc::clone(&self.ready),
        });
        let waker = Waker::from(Arc::clone(&wake));
        // Queued at once: a new session is polled at the next turn.
        wake.queue();
        self.slots[index] = Some(Slot { future, wake, waker });
        self.open += 1;
    }

    /// Queue every open session (shutdown, outage: each must see the flags).
    fn wake_all(&mut self) {
        for slot in self.slots.iter().flatten() {
            slot.wake.queue();
        }
    }

    /// Poll the sessions woken since the last turn, and those woken
    /// meanwhile, a bounded number of passes; ready when none is open.
    fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut batch = std::mem::take(&mut self.batch);
        let mut passes = 0;
        loop {
            {
                let mut ready = lock(&self.ready.0);
                if ready.woken.is_empty() || passes == PASSES_PER_TURN {
                    let more = !ready.woken.is_empty();
                    ready.in_turn = false;
                    if !ready.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                        ready.task = Some(cx.waker().clone());
                    }
                    drop(ready);
                    if more {
                        // Sessions still waiting: come back after the others had their turn.
                        cx.waker().wake_by_ref();
                    }
                    break;
                }
                ready.in_turn = true;
                std::mem::swap(&mut ready.woken, &mut batch);
            }
            passes += 1;
            for &(index, generation) in &batch {
                let Some(slot) = self.slots[index].as_mut().filter(|s| s.wake.generation == generation) else {
                    continue;
                };
                slot.wake.queued.store(false, Ordering::Release);
                let mut scx = Context::from_waker(&slot.waker);
                let future = &mut slot.future;
                // A panicking session ends alone, as a task of its own would.
                let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(&mut scx)))
                    .map_or(true, |p| p.is_ready());
                if done {
                    self.slots[index] = None;
                    self.free.push(index);
                    self.open -= 1;
                }
            }
            batch.clear();
        }
        self.batch = batch;
        if self.open == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Drive the sessions forever (a branch of the accept loop's `select!`).
    fn drive(&mut self) -> impl Future<Output = Infallible> + '_ {
        std::future::poll_fn(move |cx| {
            let _ = self.poll_turn(cx);
            Poll::Pending
        })
    }

    /// Drive the sessions until none is open.
    fn drain(&mut self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| self.poll_turn(cx))
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
    #[error("the host went down (scheduled outage)")]
    Crashed,
    #[error("transport error: {0}")]
    Io(#[from] io::Error),
}

/// What the dialogue does after an answer.
enum Flow {
    Continue,
    /// Read the message next.
    Data,
    Close,
    /// Say nothing more.
    Silent,
}

/// One connection's reader, writer and transcript.
struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
    rec: TranscriptRecorder,
    limit: Limit,
    time: LabTime,
    /// Fell silent on purpose: no goodbye either.
    silent: bool,
}

/// The read (and write) timeout of a connection: one timer for its whole
/// life, moved later at each wait, rather than a `timeout()` per line, which
/// would put a timer in tokio's wheel and take it out again for every command.
/// (Moving a registered timer later is one atomic update; the wheel sees it
/// only when the earlier deadline comes.)
struct Limit {
    timeout: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Limit {
    fn new(timeout: Duration) -> Limit {
        Limit { timeout, timer: Box::pin(tokio::time::sleep_until(Limit::deadline(timeout))) }
    }

    /// Now plus `timeout` (far ahead when that overflows, as `timeout()` treats it).
    fn deadline(timeout: Duration) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
    }

    /// `fut`, if it finishes within the timeout from now.
    async fn within<T>(&mut self, fut: impl Future<Output = T>) -> Result<T, ConnError> {
        self.timer.as_mut().reset(Limit::deadline(self.timeout));
        tokio::select! {
            biased;
            done = fut => Ok(done),
            _ = self.timer.as_mut() => Err(ConnError::Timeout(self.timeout)),
        }
    }
}

impl Conn {
    /// Queue a reply (recorded now, written at the next flush).
    async fn send(&mut self, reply: &Reply) -> Result<(), ConnError> {
        let wire = reply.to_wire();
        // The transcript gets the lines as they go on the wire (formatted once).
        for line in wire.split_terminator("\r\n") {
            self.rec.server(line);
        }
        if self.writer.buffer().len() + wire.len() > WRITE_BUFFER {
            self.flush().await?;
        }
        if self.writer.buffer().len() + wire.len() < WRITE_BUFFER {
            // It fits in the buffer: no I/O now, so no timer either (this is the hot path).
            self.writer.write_all(wire.as_bytes()).await?;
            return Ok(());
        }
        Ok(self.limit.within(self.writer.write_all(wire.as_bytes())).await??)
    }

    async fn flush(&mut self) -> Result<(), ConnError> {
        let mut flush = std::pin::pin!(self.writer.flush());
        // Almost always the socket takes the replies at once: no timer for that.
        if let std::task::Poll::Ready(r) =
            std::future::poll_fn(|cx| std::task::Poll::Ready(flush.as_mut().poll(cx))).await
        {
            return Ok(r?);
        }
        Ok(self.limit.within(flush).await??)
    }

    /// The next command line; `None` when it was too long (and has been skipped).
    async fn read_command(&mut self) -> Result<Option<String>, ConnError> {
        match self.limit.within(read_command_line(&mut self.reader, MAX_LINE)).await? {
            Ok(line) => Ok(Some(line)),
            Err(CodecError::Closed) => Err(ConnError::Closed),
            Err(CodecError::Io(e)) => Err(ConnError::Io(e)),
            Err(CodecError::LineTooLong(_)) => Ok(None),
        }
    }

    /// The message after `354`, dot-unstuffed (RFC 5321 4.5.2), bounded in size.
    async fn read_data(&mut self) -> Result<codec::DataRead, ConnError> {
        match self.limit.within(read_message(&mut self.reader, MAX_MESSAGE_SIZE)).await? {
            Ok(read) => Ok(read),
            Err(CodecError::Closed) => Err(ConnError::ClosedInData),
            Err(CodecError::Io(e)) => Err(ConnError::Io(e)),
            Err(CodecError::LineTooLong(_)) => Err(ConnError::DataLineTooLong),
        }
    }

    /// Act on an outcome: wait if scripted to, then reply, hang up or fall silent.
    async fn answer(&mut self, outcome: Outcome) -> Result<Flow, ConnError> {
        let (delay, outcome) = outcome.undelayed();
        if !delay.is_zero() {
            // What was answered so far leaves now; the scripted wait is for this answer only.
            self.flush().await?;
            self.rec.note(format!("waiting {delay:?} before answering (scripted)"));
            self.time.sleep(delay).await;
        }
        match outcome {
            Outcome::Reply(r) => {
                self.send(&r).await?;
                Ok(Flow::Continue)
            }
            Outcome::Data(r) => {
                // The client waits for 354 before sending the message (RFC 2920 3.1).
                self.send(&r).await?;
                self.flush().await?;
                Ok(Flow::Data)
            }
            Outcome::Close(r) => {
                self.send(&r).await?;
                self.flush().await?;
                Ok(Flow::Close)
            }
            Outcome::Disconnect => {
                self.flush().await?;
                self.rec.note("hanging up without a reply (scripted)");
                self.silent = true;
                Ok(Flow::Close)
            }
            Outcome::Silence | Outcome::Delayed(..) => {
                self.flush().await?;
                self.rec.note("falling silent: no more replies (scripted)");
                self.silent = true;
                Ok(Flow::Silent)
            }
        }
    }

    /// Read and ignore input until the client gives up (or the read timeout).
    async fn stay_silent(&mut self) -> Result<(), ConnError> {
        loop {
            match self.read_command().await {
                Ok(Some(line)) => self.rec.client(line),
                Ok(None) => {}
                Err(ConnError::Closed) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Best-effort last words before closing; the peer may be gone already.
    async fn goodbye(&mut self, reply: Reply) {
        if self.silent {
            return;
        }
        self.rec.reply(&reply);
        let write = async {
            self.writer.write_all(reply.to_wire().as_bytes()).await?;
            self.writer.flush().await
        };
        let _ = timeout(GOODBYE_WRITE, write).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    rec: TranscriptRecorder,
    index: usize,
    outage: u64,
    _active: ActiveGuard,
) {
    let host = &shared.env.hostname;
    rec.note(format!("connection from {peer}"));
    tracing::debug!(%peer, host = %host, "sink session opened");
    // Replies leave at once (measured: without it, Nagle and delayed ACKs cost a tenth of
    // the throughput). On Linux the socket has it from the listener already.
    if !cfg!(target_os = "linux") {
        let _ = stream.set_nodelay(true);
    }
    let (r, w) = stream.into_split();
    let mut conn = Conn {
        reader: BufReader::new(r),
        writer: BufWriter::with_capacity(WRITE_BUFFER, w),
        rec: rec.clone(),
        limit: Limit::new(shared.read_timeout),
        time: shared.env.time.clone(),
        silent: false,
    };
    let mut session = Session::new(Arc::clone(&shared.env), peer);

    let ended = {
        let inner = std::pin::pin!(converse(&mut conn, &mut session, &shared, peer, index));
        Interruptible { shared: &shared, outage, inner }.await
    };
    let clean = ended.is_ok() && conn.reader.buffer().is_empty();
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
    if clean {
        // Closing is enough after QUIT; dropping the write half would shut it down first (one more syscall).
        conn.writer.into_inner().forget();
    } else {
        // Closing with unread input would reset the connection; say FIN first.
        let _ = timeout(GOODBYE_WRITE, conn.writer.shutdown()).await;
    }
    tracing::debug!(%peer, host = %host, "sink session closed");
}

/// A session's dialogue, cut short on shutdown or when the host goes down.
/// The flags are read each time the session is polled (two atomic loads);
/// the accept loop wakes every session when it sets them.
struct Interruptible<'a, F> {
    shared: &'a Shared,
    /// The outage count when the session began.
    outage: u64,
    inner: Pin<&'a mut F>,
}

impl<F: Future<Output = Result<(), ConnError>>> Future for Interruptible<'_, F> {
    type Output = Result<(), ConnError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.shared.stopping.load(Ordering::SeqCst) {
            return Poll::Ready(Err(ConnError::Shutdown));
        }
        if self.shared.outages.load(Ordering::SeqCst) != self.outage {
            return Poll::Ready(Err(ConnError::Crashed));
        }
        self.inner.as_mut().poll(cx)
    }
}

/// The dialogue proper; returns `Ok` when the session ended by our choice
/// (QUIT, a scripted hang-up) or the client left a silent sink.
async fn converse(
    conn: &mut Conn,
    session: &mut Session,
    shared: &Shared,
    peer: SocketAddr,
    index: usize,
) -> Result<(), ConnError> {
    match conn.answer(session.greeting()).await? {
        Flow::Close => return Ok(()),
        Flow::Silent => return conn.stay_silent().await,
        Flow::Continue | Flow::Data => {}
    }
    loop {
        // Flush once the batch of pipelined commands already received is answered.
        if !conn.reader.buffer().contains(&b'\n') {
            conn.flush().await?;
        }
        let outcome = match conn.read_command().await? {
            Some(line) => {
                let outcome = session.command(&line);
                conn.rec.client(line);
                outcome
            }
            None => {
                conn.rec.note(format!("command line longer than {MAX_LINE} octets, discarded"));
                session.line_too_long()
            }
        };
        match conn.answer(outcome).await? {
            Flow::Continue => continue,
            Flow::Close => return Ok(()),
            Flow::Silent => return conn.stay_silent().await,
            Flow::Data => {}
        }
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
        match conn.answer(outcome).await? {
            Flow::Continue | Flow::Data => {}
            Flow::Close => return Ok(()),
            Flow::Silent => return conn.stay_silent().await,
        }
    }
}

fn record(shared: &Shared, acc: Accepted, peer: SocketAddr, session: usize) {
    tracing::debug!(host = %shared.env.hostname, queue_id = %acc.queue_id, "sink accepted message");
    let msg = ReceivedMessage {
        host: shared.env.hostname.clone(),
        queue_id: acc.queue_id,
        helo: acc.helo,
        peer,
        envelope: acc.envelope,
        data: acc.data,
        session,
    };
    // React (and count as busy) before the 250 leaves, so the lab never sees
    // the relay and this host idle at once while a loop is still going.
    if let Some(r) = &shared.reactor {
        r.on_accepted(&msg);
    }
    lock(&shared.messages).push(msg);
}

/// Longest line inside a message (RFC 5321 4.5.3.1.6 says 1000; a test tool
/// must see what a broken peer sends, so far more, but bounded).
const MAX_DATA_LINE: usize = 1 << 20;

/// Read a message after `354` up to the terminating `.` line, removing one
/// leading dot from each line (RFC 5321 4.5.2), every line ending in CRLF,
/// at most `max_size` octets kept (`oversize` past that, read to the end
/// anyway). The same result as `lab_core::codec::read_data`, without an
/// allocation per line: lines are taken from the reader's buffer in place.
async fn read_message<R: AsyncBufRead + Unpin>(r: &mut R, max_size: usize) -> Result<codec::DataRead, CodecError> {
    let mut data = Vec::with_capacity(4096);
    let mut oversize = false;
    // A line split across two reads.
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Err(CodecError::Closed);
        }
        let mut used = 0;
        let mut done = false;
        while let Some(nl) = buf[used..].iter().position(|&b| b == b'\n') {
            let piece = &buf[used..used + nl];
            used += nl + 1;
            let end = if partial.is_empty() {
                take_data_line(piece, &mut data, &mut oversize, max_size)
            } else {
                partial.extend_from_slice(piece);
                let end = take_data_line(&partial, &mut data, &mut oversize, max_size);
                partial.clear();
                end
            };
            if partial.len() > MAX_DATA_LINE || piece.len() > MAX_DATA_LINE + 1 {
                return Err(CodecError::LineTooLong(MAX_DATA_LINE));
            }
            if end {
                done = true;
                break;
            }
        }
        if !done {
            partial.extend_from_slice(&buf[used..]);
            used = buf.len();
            if partial.len() > MAX_DATA_LINE + 1 {
                return Err(CodecError::LineTooLong(MAX_DATA_LINE));
            }
        }
        r.consume(used);
        if done {
            // The sink keeps every message: give back the unused capacity (glibc shrinks in place).
            data.shrink_to_fit();
            return Ok(codec::DataRead { data, oversize });
        }
    }
}

/// One line of a message (without its LF): true when it is the final `.`.
fn take_data_line(line: &[u8], data: &mut Vec<u8>, oversize: &mut bool, max_size: usize) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line == b"." {
        return true;
    }
    let line = line.strip_prefix(b".").unwrap_or(line);
    if max_size == 0 || data.len() + line.len() + 2 <= max_size {
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
    } else {
        *oversize = true;
    }
    false
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
    // Valid UTF-8 (nearly always) keeps its buffer: no second allocation.
    Ok(String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
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
    async fn message_reading_matches_the_codec_whatever_the_buffer_size() {
        let wire: &[u8] = b"Subject: dots\r\n\r\n..leading dot\r\nbare lf\n...two\r\n..\r\nend\r\n.\r\nQUIT\r\n";
        let want = codec::read_data(&mut BufReader::new(wire), 0).await.unwrap();
        for cap in [1, 2, 3, 7, 16, 4096] {
            let mut r = BufReader::with_capacity(cap, wire);
            let got = read_message(&mut r, 0).await.unwrap();
            assert_eq!(got.data, want.data, "buffer of {cap}");
            assert!(!got.oversize);
            assert_eq!(read_command_line(&mut r, 100).await.unwrap(), "QUIT", "buffer of {cap}");
        }
        let mut r = BufReader::with_capacity(4, &b"0123456789\r\n0123456789\r\n.\r\nQUIT\r\n"[..]);
        let got = read_message(&mut r, 15).await.unwrap();
        assert!(got.oversize);
        assert_eq!(got.data, b"0123456789\r\n".to_vec());
        assert!(matches!(read_message(&mut BufReader::new(&b"no end\r\n"[..]), 0).await, Err(CodecError::Closed)));
    }

    #[tokio::test]
    async fn the_read_timeout_counts_from_each_wait() {
        use tokio::io::AsyncReadExt;
        let mut config = SinkConfig::accept("mx.example");
        config.read_timeout = Duration::from_millis(400);
        let sink = MxSink::start("127.0.0.1:0".parse().unwrap(), config, lab_core::clock::wall()).await.unwrap();
        let mut c = TcpStream::connect(sink.addr()).await.unwrap();
        // Busy for longer than the timeout, never idle for as long: no timeout.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(120)).await;
            c.write_all(b"NOOP\r\n").await.unwrap();
        }
        // Then idle: the 421 comes one timeout after the last command.
        let idle = std::time::Instant::now();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        let got = String::from_utf8_lossy(&got);
        assert_eq!(got.matches("250 2.0.0 OK").count(), 5, "{got}");
        assert!(got.ends_with("421 4.4.2 mx.example Error: timeout exceeded\r\n"), "{got}");
        assert!(idle.elapsed() >= Duration::from_millis(300), "{:?}", idle.elapsed());
        sink.shutdown().await;
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn accepted_sockets_inherit_nodelay_from_the_listener() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        assert!(server.nodelay().unwrap(), "serve() relies on it and does not set it again");
        drop(client);
    }

    #[tokio::test]
    async fn line_of_exactly_max_with_crlf_is_fine() {
        let mut r = BufReader::with_capacity(4, &b"0123456789\r\n01234567890\n"[..]);
        assert_eq!(read_command_line(&mut r, 10).await.unwrap(), "0123456789");
        assert!(matches!(read_command_line(&mut r, 10).await, Err(CodecError::LineTooLong(10))));
    }
}
