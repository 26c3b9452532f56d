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

/// The course's external relay as a daemon, probed from an outside address the
/// way an open-relay tester does: every trick is refused at RCPT, and mail for
/// its own domain still goes through.
#[tokio::test]
async fn serve_with_the_external_relay_profile_refuses_every_relay_trick() {
    // Another /24 than the test above, so the two can run at once.
    let net = |n: u8| {
        let s = subnet();
        IpAddr::from([s[0], s[1], s[2].wrapping_add(1), n])
    };
    let port = free_port(net(2));
    let sink = MxSink::start(
        SocketAddr::new(net(10), port),
        SinkConfig::accept("internal.sysiphus.com"),
        lab_core::clock::wall(),
    )
    .await
    .unwrap();
    let dns = MockDns::start(
        SocketAddr::new(net(1), 0),
        vec![
            Record::parse("sysiphus.com", "MX", "10 internal.sysiphus.com").unwrap(),
            Record::parse("internal.sysiphus.com", "A", &net(10).to_string()).unwrap(),
            Record::parse("example.net", "MX", "10 mail.example.net").unwrap(),
        ],
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("relaylab-serve-external-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("external.yaml");
    // The course's external relay (spec §15): our domain, the internal net, hidden
    // version, privacy flags, an access DB with delay_checks.
    std::fs::write(
        &profile,
        "hostname: external.sysiphus.com\n\
         relay_domains: [sysiphus.com, 192.168.2]\n\
         smtp_login_msg: mailer ready\n\
         privacy_flags: noexpn,novrfy,noverb,noetrn,noreceipts\n\
         access: |\n  Spam:abuse@sysiphus.com FRIEND\n  From:foo.biz REJECT\n\
         delay_checks: friend\n",
    )
    .unwrap();
    let listen = SocketAddr::new(net(2), port);
    let (mut child, _stderr, _) = spawn_serve(&profile, listen, dns.addr(), port, None, Stdio::null());

    let rec = TranscriptRecorder::new("open-relay probe -> relay");
    let mut c = SmtpClient::connect(Some(net(66)), listen, Duration::from_secs(5), rec.clone()).await.unwrap();
    assert_eq!(c.read_reply().await.unwrap().first_line(), "220 mailer ESMTP ready");
    c.command("HELO relay-test.example.net").await.unwrap();
    assert_eq!(c.command("MAIL FROM:<probe@example.net>").await.unwrap().code, 250);
    let tricks = [
        "<victim@elsewhere.example>",
        "<victim%elsewhere.example@sysiphus.com>",
        "<victim%elsewhere.example@external.sysiphus.com>",
        "<elsewhere.example!victim@sysiphus.com>",
        "<@sysiphus.com:victim@elsewhere.example>",
        "<\"victim@elsewhere.example\"@sysiphus.com>",
        "<victim@[203.0.113.99]>",
        "<victim@ElseWhere.Example>",
        "<victim@elsewhere.example.>",
        "<victim@sysiphus.com@elsewhere.example>",
    ];
    for t in tricks {
        let r = c.command(&format!("RCPT TO:{t}")).await.unwrap();
        assert!(r.is_permanent(), "{t} was not refused: {}\n{}", r.text(), rec.snapshot().render());
    }
    // A sender from our own domain is trivially forged: it grants nothing.
    assert_eq!(c.command("RSET").await.unwrap().code, 250);
    assert_eq!(c.command("MAIL FROM:<john@sysiphus.com>").await.unwrap().code, 250);
    let r = c.command("RCPT TO:<victim@elsewhere.example>").await.unwrap();
    assert_eq!(r.first_line(), "550 5.7.1 <victim@elsewhere.example>... Relaying denied");
    // Mail for its own domain is accepted and delivered.
    assert_eq!(c.command("RSET").await.unwrap().code, 250);
    assert_eq!(c.command("MAIL FROM:<probe@example.net>").await.unwrap().code, 250);
    assert_eq!(c.command("RCPT TO:<hal@sysiphus.com>").await.unwrap().code, 250);
    assert_eq!(c.command("DATA").await.unwrap().code, 354);
    assert_eq!(c.send_message(b"Subject: probe\r\n\r\nours\r\n").await.unwrap().code, 250);
    c.quit().await;

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.messages().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1, "{}", rec.snapshot().render());
    assert_eq!(msgs[0].envelope.rcpt_to, vec!["hal@sysiphus.com".to_string()]);

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    sink.shutdown().await;
    dns.shutdown().await;
}
