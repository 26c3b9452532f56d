//! `relaylab relay serve`: the builtin relay as a daemon, poked over real
//! sockets like any MTA, with a mock DNS and an MX sink around it.

mod common;

use common::{free_port, spawn_serve};
use lab_core::{SmtpClient, TranscriptRecorder};
use mock_dns::{MockDns, Record};
use mock_hosts::{MxSink, SinkConfig};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

fn subnet() -> [u8; 3] {
    // A /24 of our own, so parallel tests do not meet.
    [127, 200 + (std::process::id() % 50) as u8, (std::process::id() / 50 % 250) as u8]
}

fn ip(n: u8) -> IpAddr {
    let s = subnet();
    IpAddr::from([s[0], s[1], s[2], n])
}

#[tokio::test]
async fn serve_accepts_mail_for_its_domain_and_refuses_relaying() {
    let port = free_port(ip(2));
    let sink =
        MxSink::start(SocketAddr::new(ip(10), port), SinkConfig::accept("mx.example.com"), lab_core::clock::wall())
            .await
            .unwrap();
    let dns = MockDns::start(
        SocketAddr::new(ip(1), 0),
        vec![
            Record::parse("example.com", "MX", "10 mx.example.com").unwrap(),
            Record::parse("mx.example.com", "A", &ip(10).to_string()).unwrap(),
            // The sender's domain must resolve, or the relay refuses it at MAIL.
            Record::parse("example.org", "MX", "10 mx.example.org").unwrap(),
        ],
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("relaylab-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("relay.yaml");
    std::fs::write(&profile, "hostname: relay.example.com\nrelay_domains: [example.com]\n").unwrap();

    let listen = SocketAddr::new(ip(2), port);
    // Waits for the "listening" notice on stderr.
    let (child, _err, _) = spawn_serve(&profile, listen, dns.addr(), port, None, Stdio::piped());

    let rec = TranscriptRecorder::new("swaks-like client");
    let mut c = SmtpClient::connect(Some(ip(20)), listen, Duration::from_secs(5), rec.clone()).await.unwrap();
    assert!(c.read_reply().await.unwrap().first_line().starts_with("220 relay.example.com ESMTP"));
    c.command("EHLO outside.example.org").await.unwrap();
    assert_eq!(c.command("MAIL FROM:<a@example.org>").await.unwrap().code, 250);
    let denied = c.command("RCPT TO:<victim@elsewhere.example>").await.unwrap();
    assert_eq!(denied.first_line(), "550 5.7.1 <victim@elsewhere.example>... Relaying denied");
    assert_eq!(c.command("RCPT TO:<b@example.com>").await.unwrap().code, 250);
    assert_eq!(c.command("DATA").await.unwrap().code, 354);
    let done = c.send_message(b"Subject: hi\r\n\r\nhello\r\n").await.unwrap();
    assert!(done.first_line().starts_with("250 2.0.0 "), "{}", rec.snapshot().render());
    c.quit().await;

    // Delivered to the MX sink.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.messages().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1, "{}", rec.snapshot().render());
    assert_eq!(msgs[0].envelope.rcpt_to, vec!["b@example.com".to_string()]);

    // Ctrl-C stops it cleanly, and the log lines have reached stdout.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("ruleset=check_rcpt, arg1=<victim@elsewhere.example>"), "{log}");
    assert!(log.contains("stat=Sent"), "{log}");
    sink.shutdown().await;
    dns.shutdown().await;
}

#[test]
fn serve_refuses_a_bad_profile_with_file_line_column() {
    let dir = std::env::temp_dir().join(format!("relaylab-serve-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("bad.yaml");
    std::fs::write(&profile, "hostname: relay.example.com\nrelay_domain: [example.com]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_relaylab"))
        .args(["relay", "serve", "--config"])
        .arg(&profile)
        .args(["--listen", "127.0.0.1:0", "--dns", "127.0.0.1:53"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("bad.yaml:2:1: unknown field `relay_domain`"), "{text}");
    assert!(text.contains("the relay was not started"), "{text}");
}
