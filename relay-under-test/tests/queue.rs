//! The durable queue end to end, against the lab's mock DNS and MX sink:
//! committed before the 250, kept across a restart, retried by queue runs
//! on a virtual clock.

use chrono::{TimeZone, Utc};
use lab_core::{AddressMap, SharedClock, SmtpClient, TranscriptRecorder, VirtualClock};
use mock_dns::{MockDns, Record};
use mock_hosts::{MxSink, SinkConfig};
use relay_under_test::{BuiltinRelay, LabNetwork, RelayProfile, RelayUnderTest};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

fn real(subnet: u8, host: u8) -> IpAddr {
    format!("127.{}.{subnet}.{host}", 100 + std::process::id() % 100).parse().unwrap()
}

fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

async fn dns(subnet: u8) -> MockDns {
    MockDns::start(
        SocketAddr::new(real(subnet, 53), 0),
        vec![
            Record::parse("sysiphus.com", "MX", "10 internal.sysiphus.com").unwrap(),
            Record::parse("internal.sysiphus.com", "A", "192.0.2.10").unwrap(),
            Record::parse("example.net", "MX", "10 mail.example.net").unwrap(),
        ],
    )
    .await
    .unwrap()
}

async fn start(subnet: u8, port: u16, dns: &MockDns, dir: &Path, clock: SharedClock) -> BuiltinRelay {
    let mut addresses = AddressMap::identity();
    addresses.insert("192.0.2.10".parse().unwrap(), real(subnet, 10));
    let mut profile = RelayProfile::new("external.sysiphus.com");
    profile.relay_domains = vec!["sysiphus.com".into()];
    profile.queue_directory = Some(dir.to_path_buf());
    let net = LabNetwork {
        listen: SocketAddr::new(real(subnet, 2), port),
        virtual_ip: "198.51.100.25".parse().unwrap(),
        dns: dns.addr(),
        smtp_port: port,
        addresses,
        clock,
    };
    BuiltinRelay::start(profile, net).await.unwrap()
}

/// Send one message; the queue id from the 250.
async fn send(subnet: u8, relay: &BuiltinRelay, to: &str) -> String {
    let rec = TranscriptRecorder::new("client");
    let mut c =
        SmtpClient::connect(Some(real(subnet, 66)), relay.smtp_addr(), Duration::from_secs(10), rec).await.unwrap();
    c.read_reply().await.unwrap();
    c.command("EHLO mail.example.net").await.unwrap();
    assert_eq!(c.command("MAIL FROM:<alice@example.net>").await.unwrap().code, 250);
    assert_eq!(c.command(&format!("RCPT TO:<{to}>")).await.unwrap().code, 250);
    assert_eq!(c.command("DATA").await.unwrap().code, 354);
    let done = c.send_message(b"Subject: queued\r\n\r\nhello\r\n").await.unwrap();
    assert_eq!(done.code, 250, "{done}");
    c.quit().await;
    done.lines[0].split_whitespace().nth(1).unwrap().to_string()
}

fn tmp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("relaylab-queue-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[tokio::test]
async fn a_message_is_on_disk_before_its_250_and_is_delivered_after_a_restart() {
    let dns = dns(240).await;
    let port = free_port(real(240, 2));
    let dir = tmp("restart");
    let relay = start(240, port, &dns, &dir, lab_core::clock::wall()).await;
    // Nothing listens at the MX yet: the message is deferred.
    let qid = send(240, &relay, "john@sysiphus.com").await;
    // The 250 came after the commit: both files exist now, whatever delivery is doing.
    assert!(dir.join(format!("qf{qid}")).is_file() && dir.join(format!("df{qid}")).is_file());
    assert!(relay.settle(Duration::from_secs(10)).await);
    let mailq = relay.mailq().unwrap();
    assert!(
        mailq.contains(&format!("{qid} "))
            && mailq.contains("(Deferred: Connection refused by internal.sysiphus.com.)"),
        "{mailq}"
    );
    relay.stop().await;
    assert!(dir.join(format!("qf{qid}")).is_file(), "a clean stop keeps the queue");

    // The MX comes up; a new relay on the same queue delivers at once.
    let sink = MxSink::start(
        SocketAddr::new(real(240, 10), port),
        SinkConfig::accept("internal.sysiphus.com"),
        lab_core::clock::wall(),
    )
    .await
    .unwrap();
    let relay = start(240, port, &dns, &dir, lab_core::clock::wall()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.messages().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(relay.settle(Duration::from_secs(10)).await);
    assert_eq!(sink.messages().len(), 1);
    assert!(String::from_utf8_lossy(&sink.messages()[0].data).contains(&format!("with ESMTP id {qid}")));
    assert!(relay.queue().is_empty());
    assert!(!dir.join(format!("qf{qid}")).exists() && !dir.join(format!("df{qid}")).exists());
    let h = relay.queue_history().unwrap();
    assert!(h.messages[0].recovered && h.messages[0].fate.word() == "delivered", "{h:?}");
    relay.stop().await;
    sink.shutdown().await;
    dns.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn queue_runs_happen_on_the_lab_clock() {
    let dns = dns(241).await;
    let port = free_port(real(241, 2));
    let dir = tmp("runs");
    let t0 = Utc.with_ymd_and_hms(2006, 1, 5, 6, 28, 0).unwrap();
    let clock = VirtualClock::new(t0);
    let relay = start(241, port, &dns, &dir, clock.clone()).await;
    send(241, &relay, "john@sysiphus.com").await;
    assert!(relay.settle(Duration::from_secs(10)).await);
    let attempts = || relay.log_lines().iter().filter(|l| l.contains("to=<john@sysiphus.com>")).count();
    assert_eq!(attempts(), 1);
    // Frozen time: nothing more happens however long we wait in real time.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(attempts(), 1);
    // The runner sleeps until the first queue run, an hour after the start.
    assert_eq!(clock.next_due(), Some(t0 + chrono::Duration::hours(1)));
    clock.advance_to_next(t0 + chrono::Duration::days(1)).unwrap();
    // The lab waits while the woken runner has not yet said it is busy.
    while clock.waking() > 0 {
        tokio::task::yield_now().await;
    }
    assert!(relay.settle(Duration::from_secs(10)).await);
    assert_eq!(attempts(), 2);
    let second = relay.log_lines().into_iter().filter(|l| l.contains("to=<john@sysiphus.com>")).nth(1).unwrap();
    assert!(
        second.contains("delay=01:00:00") && second.contains("pri=120") && second.contains("stat=Deferred"),
        "{second}"
    );
    // The MX comes back; the next run delivers.
    let sink =
        MxSink::start(SocketAddr::new(real(241, 10), port), SinkConfig::accept("internal.sysiphus.com"), clock.clone())
            .await
            .unwrap();
    clock.advance_to_next(t0 + chrono::Duration::days(1)).unwrap();
    while clock.waking() > 0 {
        tokio::task::yield_now().await;
    }
    assert!(relay.settle(Duration::from_secs(10)).await);
    assert_eq!(sink.messages().len(), 1);
    assert!(relay.queue().is_empty());
    assert!(relay.mailq().unwrap().ends_with(" is empty\n"));
    relay.stop().await;
    sink.shutdown().await;
    dns.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
