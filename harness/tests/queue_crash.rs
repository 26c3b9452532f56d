//! The durable queue survives `kill -9`: the builtin relay runs as its own
//! process (`relaylab relay serve --queue-dir`), is killed while a load of
//! messages is being accepted and delivered, is killed again while it
//! recovers, and is started a third time on the same queue directory. Every
//! message it acknowledged with 250 must reach the MX sink: the acknowledged
//! `Message-Id`s are compared with the delivered ones. Duplicates (a message
//! delivered, then redelivered because the crash came before its removal
//! was on disk) are allowed, counted and printed. The MX answers each end of
//! DATA 40 ms late (`slow-40ms-data@`, a fault named in the address), so the
//! kill finds deliveries in flight as well as messages just committed.

mod common;

use common::{free_port, spawn_serve};
use lab_core::{SmtpClient, TranscriptRecorder};
use mock_dns::{MockDns, Record};
use mock_hosts::{MxSink, SinkConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn subnet() -> [u8; 3] {
    // A /24 of our own, apart from the other test files' ranges.
    [127, 150 + (std::process::id() % 40) as u8, (std::process::id() / 40 % 250) as u8]
}

fn ip(n: u8) -> IpAddr {
    let s = subnet();
    IpAddr::from([s[0], s[1], s[2], n])
}

/// The daemon, with its output drained into `log` (a full pipe would stall it).
struct Daemon {
    child: Child,
}

fn start_daemon(
    profile: &Path,
    listen: SocketAddr,
    dns: SocketAddr,
    port: u16,
    queue: &Path,
    log: &Arc<Mutex<Vec<String>>>,
) -> Daemon {
    let (mut child, err, first) = spawn_serve(profile, listen, dns, port, Some(queue), Stdio::piped());
    for pipe in [Box::new(err) as Box<dyn BufRead + Send>, Box::new(BufReader::new(child.stdout.take().unwrap()))] {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in pipe.lines().map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
    }
    log.lock().unwrap().push(first.trim_end().to_string());
    Daemon { child }
}

impl Daemon {
    /// SIGKILL: no chance to flush or clean up.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// One client: sessions of up to ten messages, until `stop` or an error.
async fn client(n: usize, relay: SocketAddr, next: Arc<AtomicUsize>, total: usize, acked: Arc<Mutex<Vec<String>>>) {
    'sessions: loop {
        let rec = TranscriptRecorder::new(format!("client {n}"));
        let Ok(mut c) = SmtpClient::connect(Some(ip(20 + n as u8)), relay, Duration::from_secs(10), rec).await else {
            return;
        };
        if c.read_reply().await.is_err() || c.command("EHLO load.example.org").await.is_err() {
            return;
        }
        for _ in 0..10 {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= total {
                c.quit().await;
                return;
            }
            let id = format!("<crash-{i}@load.example.org>");
            let body = format!("Message-Id: {id}\r\nSubject: load {i}\r\n\r\nmessage number {i}\r\n");
            let ok = async {
                c.command("MAIL FROM:<load@example.org>").await.ok()?.is_positive().then_some(())?;
                c.command("RCPT TO:<slow-40ms-data@sysiphus.example>").await.ok()?.is_positive().then_some(())?;
                (c.command("DATA").await.ok()?.code == 354).then_some(())?;
                c.send_message(body.as_bytes()).await.ok()?.is_positive().then_some(())
            }
            .await;
            match ok {
                Some(()) => acked.lock().unwrap().push(id),
                None => break 'sessions,
            }
        }
        c.quit().await;
    }
}

fn delivered_ids(sink: &MxSink) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in sink.messages() {
        let text = String::from_utf8_lossy(&m.data);
        if let Some(line) = text.lines().find(|l| l.to_ascii_lowercase().starts_with("message-id:")) {
            *out.entry(line["message-id:".len()..].trim().to_string()).or_insert(0) += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_message_survives_kill_9() {
    let port = free_port(ip(2));
    let sink = MxSink::start(
        SocketAddr::new(ip(10), port),
        SinkConfig::accept("mx.sysiphus.example"),
        lab_core::clock::wall(),
    )
    .await
    .unwrap();
    let dns = MockDns::start(
        SocketAddr::new(ip(1), 0),
        vec![
            Record::parse("sysiphus.example", "MX", "10 mx.sysiphus.example").unwrap(),
            Record::parse("mx.sysiphus.example", "A", &ip(10).to_string()).unwrap(),
            Record::parse("example.org", "MX", "10 mx.example.org").unwrap(),
        ],
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("relaylab-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let queue = dir.join("mqueue");
    let profile = dir.join("relay.yaml");
    std::fs::write(&profile, "hostname: relay.example.com\nrelay_domains: [sysiphus.example]\n").unwrap();
    let listen = SocketAddr::new(ip(2), port);
    let log = Arc::new(Mutex::new(Vec::new()));

    // 1. Load, and kill -9 in the middle of it.
    let total = 600;
    let daemon = start_daemon(&profile, listen, dns.addr(), port, &queue, &log);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..6).map(|n| tokio::spawn(client(n, listen, next.clone(), total, acked.clone()))).collect();
    let started = Instant::now();
    while acked.lock().unwrap().len() < 200 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    daemon.kill9();
    for c in clients {
        c.await.unwrap();
    }
    let acked_at_kill = acked.lock().unwrap().len();
    let delivered_at_kill = sink.messages().len();
    let left = std::fs::read_dir(&queue)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("qf"))
        .count();
    println!(
        "kill 1: {acked_at_kill} acknowledged, {delivered_at_kill} delivered, {left} control files left in the queue"
    );
    assert!(acked_at_kill >= 200, "the load did not get going");

    // 2. Restart on the same queue, and kill -9 again while it recovers.
    let daemon = start_daemon(&profile, listen, dns.addr(), port, &queue, &log);
    tokio::time::sleep(Duration::from_millis(30)).await;
    daemon.kill9();
    println!("kill 2: {} delivered so far", sink.messages().len());

    // 3. Restart once more and let it finish.
    let daemon = start_daemon(&profile, listen, dns.addr(), port, &queue, &log);
    let acked: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert_eq!(acked.len(), acked_at_kill, "message ids are unique");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = delivered_ids(&sink);
        if acked.iter().all(|id| got.contains_key(id)) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the last removals reach the disk, then look at the queue.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mailq = Command::new(env!("CARGO_BIN_EXE_relaylab"))
        .args(["relay", "mailq", "--queue-dir"])
        .arg(&queue)
        .output()
        .unwrap();
    let mailq = String::from_utf8_lossy(&mailq.stdout).into_owned();
    daemon.kill9();

    let got = delivered_ids(&sink);
    let missing: Vec<&String> = acked.iter().filter(|id| !got.contains_key(*id)).collect();
    let duplicates: Vec<(&String, &usize)> = got.iter().filter(|(_, n)| **n > 1).collect();
    let unacked_delivered = got.keys().filter(|id| !acked.contains(*id)).count();
    println!(
        "acknowledged {}, delivered {} distinct ({} copies), missing {}, duplicates {}, delivered though never acknowledged {}",
        acked.len(),
        got.len(),
        got.values().sum::<usize>(),
        missing.len(),
        duplicates.len(),
        unacked_delivered
    );
    for (id, n) in &duplicates {
        println!("  duplicate: {id} delivered {n} times");
    }
    let tail: Vec<String> = log.lock().unwrap().iter().rev().take(40).cloned().collect();
    assert!(
        missing.is_empty(),
        "acknowledged but never delivered: {missing:?}\nrelay log (last lines, newest first):\n{}",
        tail.join("\n")
    );
    // Every delivered message was one we sent.
    assert!(got.keys().all(|id| id.starts_with("<crash-")), "{got:?}");
    assert!(mailq.trim_end().ends_with("is empty"), "the queue should be empty at the end:\n{mailq}");
    // Recovery said what it found.
    let log = log.lock().unwrap().join("\n");
    assert!(log.contains("message(s) found"), "{log}");
    sink.shutdown().await;
    dns.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
