//! The mail queue (spec §7): durable, per recipient, run at an interval.
//!
//! Talks to the file system through [`store`]; everything else here is in
//! memory. The SMTP server commits an accepted message ([`MailQueue::commit`])
//! before it answers 250; delivery takes a message out for an attempt
//! ([`MailQueue::begin_attempt`]) and puts back what is left
//! ([`MailQueue::finish_attempt`]): recipients delivered or failed for good
//! leave, deferred ones stay with the remote's reply; the message leaves the
//! queue with its last recipient. [`queue_run`] is the queue runner (the
//! daemon's `-q1h`, `MinQueueAge`, `MaxQueueRunSize`, the DSN deadlines),
//! [`bounce`] writes DSNs, [`mailq`] prints Sendmail's `-bp` listing, and
//! [`control`] lets `relaylab relay mailq`/`flush` reach a running daemon.
//!
//! The on-disk layout is documented in `docs/queue.md` and [`store`].

pub mod bounce;
pub mod control;
pub mod entry;
pub mod history;
pub mod mailq;
pub mod queue_run;
pub mod store;

pub use entry::{EntryKind, QueueEntry, QueuedMessage, RcptNote, Recipient};
pub use history::{Fate, QueueHistory};
pub use store::{QueueStore, StoreStats};

use chrono::{DateTime, Utc};
use history::{AttemptRecord, DsnRecord, Recorder};
use lab_core::SharedClock;
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The profile's queue settings, as durations on the lab clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// `-q` interval.
    pub interval: Duration,
    /// `MinQueueAge`.
    pub min_age: Duration,
    /// `MaxQueueRunSize` (0: no limit).
    pub max_run: usize,
    /// `Timeout.queuewarn` (zero: never).
    pub warn: Duration,
    /// `Timeout.queuereturn`.
    pub ret: Duration,
}

impl QueueSettings {
    /// The settings of `p`.
    pub fn from_profile(p: &crate::RelayProfile) -> QueueSettings {
        QueueSettings {
            interval: p.queue_interval,
            min_age: p.min_queue_age,
            max_run: p.max_queue_run_size,
            warn: p.queuewarn,
            ret: p.queuereturn,
        }
    }

    fn cd(d: Duration) -> chrono::Duration {
        chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }

    /// When `e` next needs looking at for a DSN: its warning, else its return.
    pub fn deadline(&self, e: &QueueEntry) -> DateTime<Utc> {
        if !e.warned && !self.warn.is_zero() && e.may_warn() {
            e.arrived + Self::cd(self.warn)
        } else {
            e.arrived + Self::cd(self.ret)
        }
    }
}

/// What one attempt did to a message, for [`MailQueue::finish_attempt`].
#[derive(Debug, Clone, Default)]
pub struct AttemptOutcome {
    /// Queued recipients (as typed) that are done: delivered or failed for good.
    pub done: Vec<String>,
    /// Per recipient still pending: what the attempt said.
    pub notes: Vec<RcptNote>,
    /// The error to show in `mailq`.
    pub last_error: Option<String>,
    /// Copies delivered, deferred and failed (for the history).
    pub counts: (usize, usize, usize),
    /// The error of a failed copy, when no copy was deferred.
    pub fail_stat: Option<String>,
    /// `arrival`, `queue run`, `flush`.
    pub trigger: &'static str,
}

struct State {
    entries: BTreeMap<String, QueueEntry>,
    in_flight: HashSet<String>,
    failed_any: HashSet<String>,
    history: Recorder,
}

struct Inner {
    state: Mutex<State>,
    store: QueueStore,
    temp: bool,
    clock: SharedClock,
    journal_since_compact: AtomicU64,
    next_wake: Mutex<Option<DateTime<Utc>>>,
    kicker: Mutex<Option<Kicker>>,
}

/// How a new message wakes the queue runner early: when its DSN deadline
/// comes before the runner's planned wake-up. The kick carries a busy guard,
/// so a lab on virtual time cannot jump past the deadline before the runner
/// has planned for it.
struct Kicker {
    tx: tokio::sync::mpsc::UnboundedSender<crate::activity::BusyGuard>,
    activity: crate::activity::Activity,
    settings: QueueSettings,
}

/// The queue: in memory, backed by the queue directory.
#[derive(Clone)]
pub struct MailQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MailQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailQueue").field("dir", &self.dir()).field("len", &self.len()).finish()
    }
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system's temporary directory.
pub fn temp_queue_dir() -> PathBuf {
    let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    std::env::temp_dir().join(format!("relaylab-mqueue-{}-{n}-{nanos:08x}", std::process::id()))
}

impl MailQueue {
    /// Open the queue in `dir`, or in a fresh temporary directory (removed
    /// again by [`close`](Self::close)) when `None`. Messages found there
    /// are loaded; what recovery cleaned up is returned for the log.
    pub fn open(dir: Option<&Path>, clock: SharedClock) -> io::Result<(MailQueue, Vec<String>)> {
        let (path, temp) = match dir {
            Some(d) => (d.to_path_buf(), false),
            None => (temp_queue_dir(), true),
        };
        let (store, recovered) = QueueStore::open(&path)?;
        let mut history = Recorder::default();
        let mut entries = BTreeMap::new();
        for e in recovered.entries {
            history.arrived(&e, true);
            entries.insert(e.qid.clone(), e);
        }
        history.recovery = recovered.notes.clone();
        history.sample(clock.now(), entries.len());
        let state = State { entries, in_flight: HashSet::new(), failed_any: HashSet::new(), history };
        let inner = Inner {
            state: Mutex::new(state),
            store,
            temp,
            clock,
            journal_since_compact: AtomicU64::new(0),
            next_wake: Mutex::new(None),
            kicker: Mutex::new(None),
        };
        Ok((MailQueue { inner: Arc::new(inner) }, recovered.notes))
    }

    /// The queue directory.
    pub fn dir(&self) -> &Path {
        self.inner.store.dir()
    }

    /// True when the directory is a temporary one of this relay.
    pub fn is_temporary(&self) -> bool {
        self.inner.temp
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.inner.state.lock().unwrap().entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Write a newly accepted message to disk (synced), then hold it.
    /// The SMTP server answers 250 only after this returned `Ok`.
    pub async fn commit(&self, e: QueueEntry) -> io::Result<()> {
        self.inner.store.create(&e).await?;
        if let Some(k) = &*self.inner.kicker.lock().unwrap() {
            let planned = *self.inner.next_wake.lock().unwrap();
            if planned.is_none_or(|w| k.settings.deadline(&e) < w) {
                let _ = k.tx.send(k.activity.busy());
            }
        }
        let now = self.now();
        let mut s = self.inner.state.lock().unwrap();
        s.history.arrived(&e, false);
        s.entries.insert(e.qid.clone(), e);
        let n = s.entries.len();
        s.history.sample(now, n);
        Ok(())
    }

    /// A copy of the entry `qid`.
    pub fn get(&self, qid: &str) -> Option<QueueEntry> {
        self.inner.state.lock().unwrap().entries.get(qid).cloned()
    }

    /// Take `qid` out for an attempt: `None` when it is gone or another
    /// attempt has it.
    pub fn begin_attempt(&self, qid: &str) -> Option<QueueEntry> {
        let mut s = self.inner.state.lock().unwrap();
        let e = s.entries.get(qid)?.clone();
        s.in_flight.insert(qid.to_string()).then_some(e)
    }

    /// True while an attempt has `qid`.
    pub fn in_flight(&self, qid: &str) -> bool {
        self.inner.state.lock().unwrap().in_flight.contains(qid)
    }

    /// Put back what an attempt left: done recipients leave (the message
    /// with its last one), the others keep their notes. Persisted before
    /// the attempt counts as ended. Returns the entry when it stays.
    pub async fn finish_attempt(&self, qid: &str, out: AttemptOutcome) -> Option<QueueEntry> {
        let now = self.now();
        let (left, changed, entry) = {
            let mut s = self.inner.state.lock().unwrap();
            let Some(e) = s.entries.get_mut(qid) else {
                s.in_flight.remove(qid);
                return None;
            };
            let before = e.rcpts.len();
            e.rcpts.retain(|r| !out.done.contains(&r.typed));
            let changed = e.rcpts.len() != before;
            e.attempts += 1;
            e.last_attempt = Some(now);
            if out.last_error.is_some() {
                e.last_error = out.last_error.clone();
            }
            e.notes = out.notes.clone();
            let entry = e.clone();
            let (sent, deferred, failed) = out.counts;
            let stat = out.last_error.clone().or(out.fail_stat.clone());
            s.history
                .attempt(qid, AttemptRecord { at: now, trigger: out.trigger.into(), sent, deferred, failed, stat });
            if failed > 0 {
                s.failed_any.insert(qid.to_string());
            }
            let left = entry.rcpts.is_empty();
            if left {
                s.entries.remove(qid);
                let fate = if s.failed_any.remove(qid) { Fate::Bounced } else { Fate::Delivered };
                s.history.left(qid, fate, now);
                let n = s.entries.len();
                s.history.sample(now, n);
            }
            (left, changed, entry)
        };
        let store = &self.inner.store;
        let written = if left {
            store.remove(qid).await
        } else if changed {
            store.rewrite(&entry).await
        } else {
            Ok(())
        };
        if let Err(e) = written {
            tracing::error!("queue {}: cannot update {qid}: {e}", self.dir().display());
        }
        if !left {
            store.status(&entry);
            self.inner.journal_since_compact.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.state.lock().unwrap().in_flight.remove(qid);
        (!left).then_some(entry)
    }

    /// Mark `qid`'s delay warning as dealt with; the entry when this call
    /// did it (so only one caller sends the warning).
    pub fn claim_warning(&self, qid: &str) -> Option<QueueEntry> {
        let e = {
            let mut s = self.inner.state.lock().unwrap();
            let e = s.entries.get_mut(qid).filter(|e| !e.warned)?;
            e.warned = true;
            e.clone()
        };
        self.inner.store.status(&e);
        Some(e)
    }

    /// Remove `qid` for good (returned to its sender after `queuereturn`);
    /// the entry when this call removed it.
    pub async fn expire(&self, qid: &str) -> Option<QueueEntry> {
        let now = self.now();
        let e = {
            let mut s = self.inner.state.lock().unwrap();
            if s.in_flight.contains(qid) {
                return None;
            }
            let e = s.entries.remove(qid)?;
            s.failed_any.remove(qid);
            s.history.left(qid, Fate::Expired, now);
            let n = s.entries.len();
            s.history.sample(now, n);
            e
        };
        if let Err(err) = self.inner.store.remove(qid).await {
            tracing::error!("queue {}: cannot remove {qid}: {err}", self.dir().display());
        }
        Some(e)
    }

    /// Record a DSN the relay generated.
    pub fn record_dsn(&self, rec: DsnRecord) {
        self.inner.state.lock().unwrap().history.dsns.push(rec);
    }

    /// Count a queue run.
    pub fn count_run(&self) {
        self.inner.state.lock().unwrap().history.queue_runs += 1;
    }

    /// What `mailq` would show, in queue order.
    pub fn list(&self) -> Vec<QueuedMessage> {
        self.snapshot().iter().map(QueueEntry::listing).collect()
    }

    /// Every entry, oldest first, and which of them an attempt has now.
    pub fn snapshot_with_flight(&self) -> (Vec<QueueEntry>, HashSet<String>) {
        let s = self.inner.state.lock().unwrap();
        let mut v: Vec<QueueEntry> = s.entries.values().cloned().collect();
        v.sort_by(|a, b| a.arrived.cmp(&b.arrived).then_with(|| a.qid.cmp(&b.qid)));
        (v, s.in_flight.clone())
    }

    /// Every entry, oldest first.
    pub fn snapshot(&self) -> Vec<QueueEntry> {
        self.snapshot_with_flight().0
    }

    /// The messages a queue run started at `at` takes: not being tried,
    /// last tried at least `min_age` before `at` (unless `force`), with a
    /// recipient in `domain` when given; by priority, at most `max` (0: all).
    pub fn due_for_run(
        &self,
        at: DateTime<Utc>,
        min_age: Duration,
        max: usize,
        domain: Option<&str>,
        force: bool,
    ) -> Vec<String> {
        let now = at;
        let min_age = QueueSettings::cd(min_age);
        let s = self.inner.state.lock().unwrap();
        let mut due: Vec<&QueueEntry> = s
            .entries
            .values()
            .filter(|e| !s.in_flight.contains(&e.qid))
            .filter(|e| force || min_age.is_zero() || e.last_attempt.is_none_or(|t| now - t >= min_age))
            .filter(|e| domain.is_none_or(|d| e.has_rcpt_in(d)))
            .collect();
        due.sort_by(|a, b| a.priority().cmp(&b.priority()).then(a.arrived.cmp(&b.arrived)).then(a.qid.cmp(&b.qid)));
        if max > 0 {
            due.truncate(max);
        }
        due.into_iter().map(|e| e.qid.clone()).collect()
    }

    /// The earliest DSN deadline of any message.
    pub fn earliest_deadline(&self, q: &QueueSettings) -> Option<DateTime<Utc>> {
        self.inner.state.lock().unwrap().entries.values().map(|e| q.deadline(e)).min()
    }

    /// Messages whose DSN deadline has passed, not being tried.
    pub fn deadline_due(&self, q: &QueueSettings) -> Vec<String> {
        let now = self.now();
        let s = self.inner.state.lock().unwrap();
        s.entries
            .values()
            .filter(|e| !s.in_flight.contains(&e.qid) && q.deadline(e) <= now)
            .map(|e| e.qid.clone())
            .collect()
    }

    /// The queue runner's next wake-up, as it last planned it.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        *self.inner.next_wake.lock().unwrap()
    }

    pub(crate) fn set_next_wake(&self, t: DateTime<Utc>) {
        *self.inner.next_wake.lock().unwrap() = Some(t);
    }

    pub(crate) fn set_kicker(
        &self,
        tx: tokio::sync::mpsc::UnboundedSender<crate::activity::BusyGuard>,
        activity: crate::activity::Activity,
        settings: QueueSettings,
    ) {
        *self.inner.kicker.lock().unwrap() = Some(Kicker { tx, activity, settings });
    }

    /// Compact the journal when it holds many more records than messages.
    pub async fn maybe_compact(&self) {
        let since = self.inner.journal_since_compact.load(Ordering::Relaxed);
        if since < 50_000 || since < 4 * self.len() as u64 {
            return;
        }
        self.inner.journal_since_compact.store(0, Ordering::Relaxed);
        let entries = self.snapshot();
        if let Err(e) = self.inner.store.compact(entries.iter()).await {
            tracing::warn!("queue {}: cannot compact the journal: {e}", self.dir().display());
        }
    }

    /// Depth, attempts, DSNs so far.
    pub fn history(&self) -> QueueHistory {
        let s = self.inner.state.lock().unwrap();
        let (depth, messages, dsns) = s.history.snapshot();
        QueueHistory {
            directory: self.dir().display().to_string(),
            depth,
            messages,
            dsns,
            recovery: s.history.recovery.clone(),
            store: self.inner.store.stats(),
            queue_runs: s.history.queue_runs,
        }
    }

    /// Stop writing (after what is pending); a temporary directory is removed.
    pub fn close(&self) {
        self.inner.store.close();
        if self.inner.temp {
            let _ = std::fs::remove_dir_all(self.dir());
        }
    }
}
