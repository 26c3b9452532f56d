//! `relaylab relay mailq` and `relaylab relay flush` over a running
//! `relaylab relay serve`, and `mailq` reading the queue directory when no
//! relay runs.

mod common;

use common::{free_port, spawn_serve};
use lab_core::{SmtpClient, TranscriptRecorder};
use mock_dns::{MockDns, Record};
use mock_hosts::{MxSink, SinkConfig};
use std::io::BufRead;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn subnet() -> [u8; 3] {
    [127, 110 + (std::process::id() % 40) as u8, (std::process::id() / 40 % 250) as u8]
}

fn ip(n: u8) -> IpAddr {
    let s = subnet();
    IpAddr::from([s[0], s[1], s[2], n])
}

fn relaylab(args: &[&str], queue: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relaylab")).args(args).arg("--queue-dir").arg(queue).output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

async fn send(relay: SocketAddr, to: &str) {
    let mut c =
        SmtpClient::connect(Some(ip(20)), relay, Duration::from_secs(10), TranscriptRecorder::new("c")).await.unwrap();
    c.read_reply().await.unwrap();
    c.command("EHLO client.example.org").await.unwrap();
    assert_eq!(c.command("MAIL FROM:<a@example.org>").await.unwrap().code, 250);
    assert_eq!(c.command(&format!("RCPT TO:<{to}>")).await.unwrap().code, 250);
    assert_eq!(c.command("DATA").await.unwrap().code, 354);
    assert_eq!(c.send_message(b"Subject: queued\r\n\r\nhello\r\n").await.unwrap().code, 250);
    c.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailq_and_flush_by_domain_over_the_running_relay() {
    let port = free_port(ip(2));
    let dns = MockDns::start(
        SocketAddr::new(ip(1), 0),
        vec![
            Record::parse("sysiphus.example", "MX", "10 mx.sysiphus.example").unwrap(),
            Record::parse("mx.sysiphus.example", "A", &ip(10).to_string()).unwrap(),
            Record::parse("lamers.example", "MX", "10 mx.lamers.example").unwrap(),
            Record::parse("mx.lamers.example", "A", &ip(11).to_string()).unwrap(),
            Record::parse("example.org", "MX", "10 mx.example.org").unwrap(),
        ],
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("relaylab-qtools-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let queue = dir.join("mqueue");
    let profile = dir.join("relay.yaml");
    std::fs::write(&profile, "hostname: relay.example.com\nrelay_domains: [sysiphus.example, lamers.example]\n")
        .unwrap();
    let listen = SocketAddr::new(ip(2), port);
    let (mut child, err, first) = spawn_serve(&profile, listen, dns.addr(), port, Some(&queue), Stdio::null());
    assert!(first.contains("listening on") && first.contains("relaylab.sock"), "{first}");
    // Keep draining stderr: the daemon writes to it when it stops.
    std::thread::spawn(move || for _ in err.lines() {});

    // Both MX hosts are down: both messages wait.
    send(listen, "john@sysiphus.example").await;
    send(listen, "bounce@lamers.example").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut listing = String::new();
    while Instant::now() < deadline {
        listing = relaylab(&["relay", "mailq"], &queue).1;
        if listing.matches("(Deferred: Connection refused by").count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(listing.starts_with(&format!("{} (2 requests)\n", queue.display())), "{listing}");
    assert!(
        listing.contains("\n-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\n"),
        "{listing}"
    );
    assert!(listing.contains("(Deferred: Connection refused by mx.sysiphus.example.)"), "{listing}");
    assert!(listing.contains("\t\t\t\t       <bounce@lamers.example>"), "{listing}");

    // sysiphus.example's MX comes back; flush only that domain (-qR@sysiphus.example).
    let sink = MxSink::start(
        SocketAddr::new(ip(10), port),
        SinkConfig::accept("mx.sysiphus.example"),
        lab_core::clock::wall(),
    )
    .await
    .unwrap();
    let (code, out) = relaylab(&["relay", "flush", "--domain", "sysiphus.example"], &queue);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(sequence 1 of 1)") && out.contains("1 message(s) tried; 1 left in the queue"), "{out}");
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(sink.messages()[0].envelope.rcpt_to, vec!["john@sysiphus.example".to_string()]);
    let listing = relaylab(&["relay", "mailq"], &queue).1;
    assert!(
        listing.contains("(1 request)") && listing.contains("<bounce@lamers.example>") && !listing.contains("john@"),
        "{listing}"
    );

    // Without the daemon, mailq reads the directory.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let (code, offline) = relaylab(&["relay", "mailq"], &queue);
    assert_eq!(code, 0, "{offline}");
    assert!(offline.contains("(1 request)") && offline.contains("<bounce@lamers.example>"), "{offline}");
    // ... and flush needs it.
    let (code, out) = relaylab(&["relay", "flush"], &queue);
    assert_ne!(code, 0);
    assert!(out.contains("no relay answers on"), "{out}");
    sink.shutdown().await;
    dns.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
