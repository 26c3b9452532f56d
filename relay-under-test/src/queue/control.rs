//! The control channel of a running relay: a unix socket in its queue
//! directory (`<queue_directory>/relaylab.sock`), through which
//! `relaylab relay mailq` and `relaylab relay flush` reach the daemon.
//!
//! Talks to one local client at a time, one request per connection: the
//! client writes one line, the relay answers with text and closes.
//!
//! | request | answer |
//! |---|---|
//! | `MAILQ` | the `-bp` listing ([`super::mailq`]) |
//! | `FLUSH` | runs the whole queue now (`sendmail -q`); one `Running <dir>/<qid> (sequence i of n)` line per message tried, then what is left |
//! | `FLUSH sysiphus.com` | the same for messages with a recipient in that domain (`sendmail -qR@sysiphus.com`) |
//!
//! `mailq` works without the daemon too: it then reads the directory
//! (see [`super::store::read_dir`]).

use super::mailq;
use super::queue_run::QueueRunner;
use super::MailQueue;
use crate::dates::Zone;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::watch;

/// The socket's file name in the queue directory.
pub const SOCKET: &str = "relaylab.sock";

/// The socket of the relay whose queue is `dir`.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET)
}

/// The `-bp` listing of `queue` now.
pub fn listing(queue: &MailQueue, zone: &Zone) -> String {
    let (entries, busy) = queue.snapshot_with_flight();
    mailq::format(&queue.dir().display().to_string(), &entries, &busy, zone)
}

/// Answer one request line.
pub async fn answer(line: &str, queue: &MailQueue, runner: &QueueRunner, zone: &Zone) -> String {
    let mut words = line.split_whitespace();
    match words.next().map(str::to_ascii_uppercase).as_deref() {
        Some("MAILQ") => listing(queue, zone),
        Some("FLUSH") => {
            let domain = words.next().map(|d| d.trim_start_matches('@').to_string());
            match runner.run_now(domain).await {
                Ok(s) => {
                    let mut out = String::new();
                    let n = s.tried.len();
                    for (i, q) in s.tried.iter().enumerate() {
                        out.push_str(&format!("Running {}/{q} (sequence {} of {n})\n", queue.dir().display(), i + 1));
                    }
                    out.push_str(&format!("{n} message(s) tried; {} left in the queue\n", s.remaining));
                    out
                }
                Err(e) => format!("error: {e}\n"),
            }
        }
        _ => "error: expected MAILQ, FLUSH or FLUSH <domain>\n".to_string(),
    }
}

/// Serve the socket until the relay stops. A stale socket file (a relay
/// that was killed) is replaced.
pub fn start(
    queue: MailQueue,
    runner: QueueRunner,
    zone: Zone,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<(PathBuf, tokio::task::JoinHandle<()>)> {
    let path = socket_path(queue.dir());
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped(&mut shutdown) => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let (q, r, z) = (queue.clone(), runner.clone(), zone.clone());
                    tokio::spawn(async move {
                        let (rd, mut wr) = stream.into_split();
                        let mut line = String::new();
                        let read = tokio::time::timeout(Duration::from_secs(10), BufReader::new(rd).read_line(&mut line)).await;
                        if matches!(read, Ok(Ok(n)) if n > 0) {
                            let text = answer(line.trim(), &q, &r, &z).await;
                            let _ = wr.write_all(text.as_bytes()).await;
                        }
                        let _ = wr.shutdown().await;
                    });
                }
            }
        }
        let _ = std::fs::remove_file(socket_path(queue.dir()));
    });
    Ok((path, task))
}

/// Send `request` to the relay whose queue is `dir`; its answer.
pub fn request(dir: &Path, request: &str, timeout: Duration) -> io::Result<String> {
    let mut s = std::os::unix::net::UnixStream::connect(socket_path(dir))?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(format!("{request}\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// `mailq` without a daemon: read the directory as it is (nothing is changed).
pub fn listing_from_dir(dir: &Path, zone: &Zone) -> io::Result<String> {
    let found = super::store::read_dir(dir, false)?;
    Ok(mailq::format(&dir.display().to_string(), &found.entries, &Default::default(), zone))
}

async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
