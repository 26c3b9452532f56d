//! The queue on disk: talks to the file system only.
//!
//! One directory per relay (`queue_directory`), Sendmail's split (spec §7.1)
//! in a format of our own, documented in `docs/queue.md`:
//!
//! - `qf<qid>`: the envelope, the recipients still to deliver and the
//!   header lines, as text, one record per line (`S<sender>`, `R<typed>\t<addr>`,
//!   `H<header line>`, ...), ending with a line `.` so a torn file is noticed.
//! - `df<qid>`: the body, byte for byte as it will be sent (CRLF line ends).
//! - `status`: a journal of attempt state (attempts, last attempt, last
//!   error, per-recipient notes, whether the warning went out), one JSON
//!   line per attempt. It is advisory: losing its tail in a crash only
//!   loses the latest error text and counters.
//! - `tf<qid>`: a control file being written; renamed to `qf<qid>` when complete.
//! - `Qf<qid>`: a control file that could not be read at start-up, set aside
//!   (Sendmail's "lost" queue file).
//!
//! # Durability
//! A message is committed when its `qf` exists: `df` and `tf` are written and
//! fsynced, `tf` is renamed to `qf`, and the directory is fsynced; only then
//! does the SMTP server answer 250. Removing a delivered message and rewriting
//! a `qf` whose recipient list changed are made durable the same way. All of
//! this runs on one writer thread that takes every request waiting for it as
//! one batch: a batch of N messages costs one fsync per file and one
//! directory fsync, not N rounds.
//!
//! # Recovery
//! At start-up: `tf` files are removed (with their `df` when no `qf` exists:
//! that message was never acknowledged), `df` files without a `qf` are
//! removed, unreadable `qf` files become `Qf`, and the journal is compacted.

use super::entry::{EntryKind, QueueEntry, RcptNote, Recipient};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// The journal's file name.
pub const JOURNAL: &str = "status";

/// Most requests written as one batch.
const MAX_BATCH: usize = 1024;

/// One attempt-state record of the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecord {
    /// Queue id.
    pub qid: String,
    /// Completed attempts.
    pub attempts: u32,
    /// When the last attempt ended.
    #[serde(default)]
    pub last_attempt: Option<DateTime<Utc>>,
    /// Whether the delay warning was dealt with.
    #[serde(default)]
    pub warned: bool,
    /// The last error.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Per pending recipient: `[typed, dsn, remote, stat]`.
    #[serde(default)]
    pub notes: Vec<(String, String, Option<String>, String)>,
}

impl StatusRecord {
    /// The state of `e` as a journal record.
    pub fn of(e: &QueueEntry) -> StatusRecord {
        StatusRecord {
            qid: e.qid.clone(),
            attempts: e.attempts,
            last_attempt: e.last_attempt,
            warned: e.warned,
            last_error: e.last_error.clone(),
            notes: e.notes.iter().map(|n| (n.typed.clone(), n.dsn.clone(), n.remote.clone(), n.stat.clone())).collect(),
        }
    }

    fn apply(&self, e: &mut QueueEntry) {
        e.attempts = self.attempts;
        e.last_attempt = self.last_attempt;
        e.warned = self.warned;
        e.last_error = self.last_error.clone();
        e.notes = self
            .notes
            .iter()
            .filter(|(t, ..)| e.rcpts.iter().any(|r| &r.typed == t))
            .map(|(typed, dsn, remote, stat)| RcptNote {
                typed: typed.clone(),
                dsn: dsn.clone(),
                remote: remote.clone(),
                stat: stat.clone(),
            })
            .collect();
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Where a message's header block ends, and whether a blank line follows it.
fn split_message(data: &[u8]) -> (&[u8], bool, &[u8]) {
    let block = crate::intake::header_block(data);
    let rest = &data[block.end..];
    if block.terminated {
        let sep = if rest.starts_with(b"\r\n") { 2 } else { 1 };
        (&data[..block.end], true, &rest[sep.min(rest.len())..])
    } else {
        (&data[..block.end], false, rest)
    }
}

/// The `qf` text of `e` (see the module docs).
pub fn encode_qf(e: &QueueEntry) -> Vec<u8> {
    let (head, separated, _) = split_message(&e.data);
    let mut out = Vec::with_capacity(head.len() + 512);
    let mut line = |tag: char, value: &str| {
        out.extend_from_slice(format!("{tag}{}\n", one_line(value)).as_bytes());
    };
    line('V', "1");
    line('T', &e.arrived.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
    line('P', &e.pid.to_string());
    line('C', &e.class.to_string());
    line('Z', &e.size.to_string());
    line('n', &e.nrcpts.to_string());
    line('I', &e.msgid);
    line('F', &e.client);
    line('S', &e.sender_typed);
    line('s', &e.sender);
    if e.kind == EntryKind::Dsn {
        line('D', "");
    }
    for r in &e.rcpts {
        line('R', &format!("{}\t{}", one_line(&r.typed), one_line(&r.addr)));
    }
    for l in head.split_inclusive(|&b| b == b'\n') {
        let l = l.strip_suffix(b"\n").unwrap_or(l);
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if l.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            out.extend_from_slice(l);
        } else {
            out.push(b'H');
            out.extend_from_slice(l);
        }
        out.push(b'\n');
    }
    if !separated {
        out.extend_from_slice(b"h\n");
    }
    out.extend_from_slice(b".\n");
    out
}

/// The `df` bytes of `e`: the body.
pub fn encode_df(e: &QueueEntry) -> Vec<u8> {
    split_message(&e.data).2.to_vec()
}

/// Rebuild an entry from its `qf` and `df`.
pub fn decode(qid: &str, qf: &[u8], df: &[u8]) -> Result<QueueEntry, String> {
    if !qf.ends_with(b"\n.\n") {
        return Err("the control file is incomplete (no end marker)".into());
    }
    let mut e = QueueEntry { qid: qid.to_string(), ..QueueEntry::default() };
    let mut head: Vec<u8> = Vec::new();
    let mut separated = true;
    let mut version = false;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for raw in qf[..qf.len() - 2].split(|&b| b == b'\n') {
        let Some((&tag, v)) = raw.split_first() else { continue };
        let num = |what: &str| -> Result<i64, String> {
            text(v).trim().parse::<i64>().map_err(|_| format!("bad {what} line {:?}", text(raw)))
        };
        match tag {
            b'V' => version = v == b"1",
            b'T' => {
                e.arrived = DateTime::parse_from_rfc3339(text(v).trim())
                    .map_err(|err| format!("bad arrival time {:?}: {err}", text(v)))?
                    .with_timezone(&Utc)
            }
            b'P' => e.pid = num("pid")? as u32,
            b'C' => e.class = num("class")?,
            b'Z' => e.size = num("size")? as u64,
            b'n' => e.nrcpts = num("nrcpts")? as usize,
            b'I' => e.msgid = text(v),
            b'F' => e.client = text(v),
            b'S' => e.sender_typed = text(v),
            b's' => e.sender = text(v),
            b'D' => e.kind = EntryKind::Dsn,
            b'R' => {
                let t = text(v);
                let (typed, addr) = t.split_once('\t').ok_or_else(|| format!("bad recipient line {t:?}"))?;
                e.rcpts.push(Recipient { typed: typed.into(), addr: addr.into() });
            }
            b'H' => {
                head.extend_from_slice(v);
                head.extend_from_slice(b"\r\n");
            }
            b' ' | b'\t' => {
                head.extend_from_slice(raw);
                head.extend_from_slice(b"\r\n");
            }
            b'h' => separated = false,
            _ => return Err(format!("unknown line {:?}", text(raw))),
        }
    }
    if !version {
        return Err("not a relaylab control file (no V1 line)".into());
    }
    let mut data = head;
    if separated {
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(df);
    e.data = Arc::new(data);
    Ok(e)
}

/// What was found in a queue directory.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Messages, oldest first.
    pub entries: Vec<QueueEntry>,
    /// What recovery did or found (for the log): removed leftovers, lost files.
    pub notes: Vec<String>,
}

fn read_journal(dir: &Path) -> HashMap<String, StatusRecord> {
    let mut out = HashMap::new();
    if let Ok(f) = File::open(dir.join(JOURNAL)) {
        for line in io::BufReader::new(f).split(b'\n').map_while(Result::ok) {
            // A torn last line (a crash mid-append) does not parse: skipped.
            if let Ok(r) = serde_json::from_slice::<StatusRecord>(&line) {
                out.insert(r.qid.clone(), r);
            }
        }
    }
    out
}

/// Read every message in `dir`. With `repair`, also clean up what a crash
/// left (see the module docs); without it nothing is changed (for `mailq`
/// next to a running relay).
pub fn read_dir(dir: &Path, repair: bool) -> io::Result<Recovered> {
    let mut out = Recovered::default();
    let (mut qf, mut tf, mut df) = (HashSet::new(), HashSet::new(), HashSet::new());
    for ent in fs::read_dir(dir)? {
        let name = ent?.file_name().to_string_lossy().into_owned();
        if let Some(q) = name.strip_prefix("qf") {
            qf.insert(q.to_string());
        } else if let Some(q) = name.strip_prefix("tf") {
            tf.insert(q.to_string());
        } else if let Some(q) = name.strip_prefix("df") {
            df.insert(q.to_string());
        }
    }
    if repair {
        for q in &tf {
            let _ = fs::remove_file(dir.join(format!("tf{q}")));
            if !qf.contains(q) && df.remove(q) {
                let _ = fs::remove_file(dir.join(format!("df{q}")));
                out.notes.push(format!("{q}: removed an unfinished queue file (the message was never acknowledged)"));
            }
        }
        for q in df.iter().filter(|q| !qf.contains(*q)) {
            let _ = fs::remove_file(dir.join(format!("df{q}")));
            out.notes.push(format!("{q}: removed a data file without a control file"));
        }
    }
    let journal = read_journal(dir);
    let mut ids: Vec<&String> = qf.iter().collect();
    ids.sort();
    for q in ids {
        let qf_bytes = fs::read(dir.join(format!("qf{q}")));
        let df_bytes = fs::read(dir.join(format!("df{q}")));
        let decoded = match (qf_bytes, df_bytes) {
            (Ok(a), Ok(b)) => decode(q, &a, &b),
            (Err(e), _) => Err(format!("cannot read qf{q}: {e}")),
            (_, Err(e)) => Err(format!("cannot read df{q}: {e}")),
        };
        match decoded {
            Ok(mut e) => {
                if let Some(r) = journal.get(q) {
                    r.apply(&mut e);
                }
                out.entries.push(e);
            }
            Err(why) => {
                if repair {
                    let _ = fs::rename(dir.join(format!("qf{q}")), dir.join(format!("Qf{q}")));
                    out.notes.push(format!("Losing {}: {why}", dir.join(format!("qf{q}")).display()));
                } else {
                    out.notes.push(format!("{q}: {why}"));
                }
            }
        }
    }
    out.entries.sort_by(|a, b| a.arrived.cmp(&b.arrived).then_with(|| a.qid.cmp(&b.qid)));
    Ok(out)
}

enum Op {
    Create { qid: String, qf: Vec<u8>, df: Vec<u8> },
    Rewrite { qid: String, qf: Vec<u8> },
    Remove { qid: String },
    Status(Vec<u8>),
    Compact(Vec<u8>),
}

impl Op {
    fn qid(&self) -> Option<&str> {
        match self {
            Op::Create { qid, .. } | Op::Rewrite { qid, .. } | Op::Remove { qid } => Some(qid),
            Op::Status(_) | Op::Compact(_) => None,
        }
    }
}

struct Job {
    op: Op,
    done: Option<oneshot::Sender<io::Result<()>>>,
}

/// Counters of what the writer did, for benchmarks and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Batches written.
    pub batches: u64,
    /// Requests written.
    pub requests: u64,
    /// fsync calls made (files and the directory).
    pub fsyncs: u64,
    /// Journal records appended since the last compaction.
    pub journal_records: u64,
}

/// The queue directory and its writer thread.
#[derive(Debug, Clone)]
pub struct QueueStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    stats: Arc<Mutex<StoreStats>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the queue writer has stopped")
}

impl QueueStore {
    /// Open (creating it if needed) the queue in `dir`, recover what is in
    /// it, and start the writer.
    pub fn open(dir: &Path) -> io::Result<(QueueStore, Recovered)> {
        fs::create_dir_all(dir)?;
        let recovered = read_dir(dir, true)?;
        // Start the journal afresh with one record per message.
        let mut compact = Vec::new();
        for e in &recovered.entries {
            compact.extend_from_slice(&journal_line(&StatusRecord::of(e)));
        }
        write_replace(dir, JOURNAL, &compact)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let stats = Arc::new(Mutex::new(StoreStats::default()));
        let (d, s) = (dir.to_path_buf(), stats.clone());
        let thread = std::thread::Builder::new().name("relay-queue-writer".into()).spawn(move || writer(d, rx, s))?;
        let inner = Inner { dir: dir.to_path_buf(), tx: Mutex::new(Some(tx)), stats, thread: Mutex::new(Some(thread)) };
        Ok((QueueStore { inner: Arc::new(inner) }, recovered))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> StoreStats {
        *self.inner.stats.lock().unwrap()
    }

    fn send(&self, job: Job) -> io::Result<()> {
        match &*self.inner.tx.lock().unwrap() {
            Some(tx) => tx.send(job).map_err(|_| stopped()),
            None => Err(stopped()),
        }
    }

    async fn submit(&self, op: Op) -> io::Result<()> {
        let (done, rx) = oneshot::channel();
        self.send(Job { op, done: Some(done) })?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Commit a new message: on disk and synced when this returns `Ok`.
    pub async fn create(&self, e: &QueueEntry) -> io::Result<()> {
        self.submit(Op::Create { qid: e.qid.clone(), qf: encode_qf(e), df: encode_df(e) }).await
    }

    /// Rewrite the control file (the recipient list changed), synced.
    pub async fn rewrite(&self, e: &QueueEntry) -> io::Result<()> {
        self.submit(Op::Rewrite { qid: e.qid.clone(), qf: encode_qf(e) }).await
    }

    /// Remove a finished message, synced.
    pub async fn remove(&self, qid: &str) -> io::Result<()> {
        self.submit(Op::Remove { qid: qid.to_string() }).await
    }

    /// Append the entry's attempt state to the journal (not synced; not waited for).
    pub fn status(&self, e: &QueueEntry) {
        let _ = self.send(Job { op: Op::Status(journal_line(&StatusRecord::of(e))), done: None });
    }

    /// Replace the journal with one record per entry of `entries` (when it
    /// has grown large).
    pub async fn compact<'a>(&self, entries: impl Iterator<Item = &'a QueueEntry>) -> io::Result<()> {
        let mut all = Vec::new();
        for e in entries {
            all.extend_from_slice(&journal_line(&StatusRecord::of(e)));
        }
        self.submit(Op::Compact(all)).await
    }

    /// Let the writer finish what it was given, then stop it (idempotent).
    /// Later requests fail.
    pub fn close(&self) {
        drop(self.inner.tx.lock().unwrap().take());
        let handle = self.inner.thread.lock().unwrap().take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn journal_line(r: &StatusRecord) -> Vec<u8> {
    let mut l = serde_json::to_vec(r).unwrap_or_default();
    l.push(b'\n');
    l
}

/// Write `name` in `dir` by way of a temporary file, synced, then renamed.
fn write_replace(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.new"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    fs::rename(&tmp, dir.join(name))?;
    Ok(())
}

fn writer(dir: PathBuf, rx: mpsc::Receiver<Job>, stats: Arc<Mutex<StoreStats>>) {
    let dirfd = File::open(&dir).ok();
    let mut journal = OpenOptions::new().append(true).create(true).open(dir.join(JOURNAL)).ok();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        // Two requests for the same message never share a batch.
        let mut part: Vec<Job> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for job in batch {
            if let Some(q) = job.op.qid() {
                if !seen.insert(q.to_string()) {
                    run_batch(&dir, dirfd.as_ref(), &mut journal, std::mem::take(&mut part), &stats);
                    seen.clear();
                    seen.insert(q.to_string());
                }
            }
            part.push(job);
        }
        run_batch(&dir, dirfd.as_ref(), &mut journal, part, &stats);
    }
}

fn run_batch(dir: &Path, dirfd: Option<&File>, journal: &mut Option<File>, jobs: Vec<Job>, stats: &Mutex<StoreStats>) {
    if jobs.is_empty() {
        return;
    }
    let path = |p: &str, q: &str| dir.join(format!("{p}{q}"));
    let mut results: Vec<io::Result<()>> = jobs.iter().map(|_| Ok(())).collect();
    let mut to_sync: Vec<(usize, File)> = Vec::new();
    let mut sync_dir = false;
    let mut status = Vec::new();
    let mut fsyncs = 0u64;
    // 1. write the new files
    for (i, job) in jobs.iter().enumerate() {
        let written = match &job.op {
            Op::Create { qid, qf, df } => {
                sync_dir = true;
                write_file(&path("df", qid), df).and_then(|d| write_file(&path("tf", qid), qf).map(|t| vec![d, t]))
            }
            Op::Rewrite { qid, qf } => {
                sync_dir = true;
                write_file(&path("tf", qid), qf).map(|t| vec![t])
            }
            Op::Remove { .. } => {
                sync_dir = true;
                Ok(Vec::new())
            }
            Op::Status(line) => {
                status.extend_from_slice(line);
                Ok(Vec::new())
            }
            Op::Compact(all) => write_replace(dir, JOURNAL, all).map(|_| {
                fsyncs += 1;
                *journal = OpenOptions::new().append(true).create(true).open(dir.join(JOURNAL)).ok();
                stats.lock().unwrap().journal_records = 0;
                Vec::new()
            }),
        };
        match written {
            Ok(files) => to_sync.extend(files.into_iter().map(|f| (i, f))),
            Err(e) => results[i] = Err(e),
        }
    }
    // 2. make their contents durable (one journal commit covers most of them)
    for (i, f) in &to_sync {
        if results[*i].is_ok() {
            fsyncs += 1;
            if let Err(e) = f.sync_data() {
                results[*i] = Err(e);
            }
        }
    }
    drop(to_sync);
    // 3. commit: tf -> qf; remove finished messages
    for (i, job) in jobs.iter().enumerate() {
        match (&job.op, results[i].is_ok()) {
            (Op::Create { qid, .. } | Op::Rewrite { qid, .. }, true) => {
                if let Err(e) = fs::rename(path("tf", qid), path("qf", qid)) {
                    results[i] = Err(e);
                }
            }
            (Op::Create { qid, .. }, false) => {
                let _ = fs::remove_file(path("tf", qid));
                let _ = fs::remove_file(path("df", qid));
            }
            (Op::Rewrite { qid, .. }, false) => {
                let _ = fs::remove_file(path("tf", qid));
            }
            (Op::Remove { qid }, _) => {
                // qf first: a df left alone is an orphan that recovery removes.
                for p in [path("qf", qid), path("df", qid)] {
                    if let Err(e) = fs::remove_file(p) {
                        if e.kind() != io::ErrorKind::NotFound {
                            results[i] = Err(e);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if sync_dir {
        if let Some(d) = dirfd {
            fsyncs += 1;
            if let Err(e) = d.sync_all() {
                for (i, job) in jobs.iter().enumerate() {
                    if matches!(job.op, Op::Create { .. } | Op::Rewrite { .. } | Op::Remove { .. }) {
                        results[i] = Err(io::Error::new(e.kind(), e.to_string()));
                    }
                }
            }
        }
    }
    if !status.is_empty() {
        if let Some(j) = journal.as_mut() {
            let _ = j.write_all(&status);
        }
    }
    {
        let mut s = stats.lock().unwrap();
        s.batches += 1;
        s.requests += jobs.len() as u64;
        s.fsyncs += fsyncs;
        s.journal_records += jobs.iter().filter(|j| matches!(j.op, Op::Status(_))).count() as u64;
    }
    for (job, result) in jobs.into_iter().zip(results) {
        if let Some(done) = job.done {
            let _ = done.send(result);
        }
    }
}

fn write_file(p: &Path, bytes: &[u8]) -> io::Result<File> {
    let mut f = File::create(p)?;
    f.write_all(bytes)?;
    Ok(f)
}

/// Entries by queue id, for callers that look messages up.
pub fn by_qid(entries: Vec<QueueEntry>) -> BTreeMap<String, QueueEntry> {
    entries.into_iter().map(|e| (e.qid.clone(), e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample(qid: &str) -> QueueEntry {
        QueueEntry {
            qid: qid.into(),
            pid: 3739,
            sender_typed: "<alice@example.net>".into(),
            sender: "alice@example.net".into(),
            rcpts: vec![
                Recipient { typed: "<john@sysiphus.com>".into(), addr: "john@sysiphus.com".into() },
                Recipient { typed: "mary@sysiphus.com".into(), addr: "mary@sysiphus.com".into() },
            ],
            nrcpts: 2,
            data: Arc::new(
                b"Received: from a (b [192.0.2.1])\r\n\tby c; date\r\nSubject: hi\r\n\r\nbody line\r\n.dot\r\n"
                    .to_vec(),
            ),
            size: 70,
            class: -30,
            arrived: Utc.with_ymd_and_hms(2006, 1, 5, 6, 28, 13).unwrap(),
            msgid: "<x@y>".into(),
            client: "mail.example.net [203.0.113.45]".into(),
            ..QueueEntry::default()
        }
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("relaylab-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn qf_and_df_round_trip() {
        let mut e = sample("k056SDUq003739");
        e.kind = EntryKind::Dsn;
        let qf = encode_qf(&e);
        let text = String::from_utf8(qf.clone()).unwrap();
        assert!(text.starts_with("V1\nT2006-01-05T06:28:13"), "{text}");
        assert!(text.contains("\nR<john@sysiphus.com>\tjohn@sysiphus.com\n"), "{text}");
        assert!(text.contains("\nHReceived: from a (b [192.0.2.1])\n\tby c; date\nHSubject: hi\n.\n"), "{text}");
        let df = encode_df(&e);
        assert_eq!(df, b"body line\r\n.dot\r\n");
        let back = decode(&e.qid, &qf, &df).unwrap();
        assert_eq!(back.data, e.data);
        assert_eq!(
            (&back.sender_typed, &back.rcpts, back.class, back.kind),
            (&e.sender_typed, &e.rcpts, -30, EntryKind::Dsn)
        );
        assert_eq!((back.arrived, &back.msgid, &back.client), (e.arrived, &e.msgid, &e.client));
        // A message without a blank line after its headers stays that way.
        e.data = Arc::new(b"Subject: only headers\r\n".to_vec());
        let back = decode(&e.qid, &encode_qf(&e), &encode_df(&e)).unwrap();
        assert_eq!(back.data, e.data);
        // A torn control file is refused.
        assert!(decode(&e.qid, &qf[..qf.len() - 3], &df).is_err());
    }

    #[tokio::test]
    async fn commit_update_remove_and_recover() {
        let dir = tmpdir("cycle");
        let (store, rec) = QueueStore::open(&dir).unwrap();
        assert!(rec.entries.is_empty());
        let mut a = sample("k056SDUq003739");
        let b = sample("k056SDUr003739");
        let (ra, rb) = tokio::join!(store.create(&a), store.create(&b));
        ra.unwrap();
        rb.unwrap();
        assert!(dir.join("qfk056SDUq003739").exists() && dir.join("dfk056SDUr003739").exists());
        // One recipient delivered: the control file is rewritten.
        a.rcpts.remove(0);
        a.attempts = 1;
        a.last_error = Some("Deferred: Connection refused by mx.".into());
        a.notes = vec![RcptNote {
            typed: "mary@sysiphus.com".into(),
            dsn: "4.0.0".into(),
            remote: Some("mx.".into()),
            stat: "Deferred: Connection refused by mx.".into(),
        }];
        store.rewrite(&a).await.unwrap();
        store.status(&a);
        store.remove(&b.qid).await.unwrap();
        assert!(!dir.join("qfk056SDUr003739").exists() && !dir.join("dfk056SDUr003739").exists());
        let stats = store.stats();
        assert!(stats.fsyncs >= 3 && stats.requests >= 5, "{stats:?}");
        // close, not just drop: the writer thread finishes before the files are touched
        store.close();
        drop(store);

        // What a crash leaves: an unfinished tf with its df, and a lone df.
        fs::write(dir.join("tfk056SDUs003739"), b"V1\n").unwrap();
        fs::write(dir.join("dfk056SDUs003739"), b"x").unwrap();
        fs::write(dir.join("dfk056SDUt003739"), b"y").unwrap();
        // A torn qf is set aside.
        fs::write(dir.join("qfk056SDUu003739"), b"V1\nS<a@b>\n").unwrap();
        fs::write(dir.join("dfk056SDUu003739"), b"z").unwrap();
        // A torn journal line is ignored.
        OpenOptions::new().append(true).open(dir.join(JOURNAL)).unwrap().write_all(b"{\"qid\":\"k05").unwrap();

        // mailq's read-only look changes nothing.
        let look = read_dir(&dir, false).unwrap();
        assert_eq!(look.entries.len(), 1);
        assert!(dir.join("tfk056SDUs003739").exists());

        let (store, rec) = QueueStore::open(&dir).unwrap();
        assert_eq!(rec.entries.len(), 1, "{:?}", rec.notes);
        let got = &rec.entries[0];
        assert_eq!(got.qid, "k056SDUq003739");
        assert_eq!(got.rcpts.len(), 1);
        assert_eq!((got.attempts, got.last_error.as_deref()), (1, Some("Deferred: Connection refused by mx.")));
        assert_eq!(got.notes[0].remote.as_deref(), Some("mx."));
        assert!(!dir.join("tfk056SDUs003739").exists() && !dir.join("dfk056SDUs003739").exists());
        assert!(!dir.join("dfk056SDUt003739").exists());
        assert!(dir.join("Qfk056SDUu003739").exists());
        assert!(rec.notes.iter().any(|n| n.starts_with("Losing ")), "{:?}", rec.notes);
        // close, not just drop: the writer thread finishes before the files are touched
        store.close();
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }
}
