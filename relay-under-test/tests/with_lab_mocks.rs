//! End to end against the lab's own mock DNS and MX sink, so the relay and
//! the mocks are known to agree on the wire.

use lab_core::{AddressMap, SmtpClient, TranscriptRecorder};
use mock_dns::{MockDns, Record};
use mock_hosts::{MxSink, SinkConfig};
use relay_under_test::{BuiltinRelay, LabNetwork, RelayProfile, RelayUnderTest};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

fn real(host: u8) -> IpAddr {
    format!("127.{}.251.{host}", 100 + std::process::id() % 100).parse().unwrap()
}

#[tokio::test]
async fn relays_to_the_mock_mx_found_in_the_mock_dns() {
    let clock = lab_core::clock::wall();
    let sink = MxSink::start(SocketAddr::new(real(10), 0), SinkConfig::accept("internal.sysiphus.com"), clock.clone())
        .await
        .unwrap();
    let port = sink.addr().port();
    let dns = MockDns::start(
        SocketAddr::new(real(53), 0),
        vec![
            Record::parse("sysiphus.com", "MX", "10 internal.sysiphus.com").unwrap(),
            Record::parse("internal.sysiphus.com", "A", "192.0.2.10").unwrap(),
            Record::parse("66.113.0.203.in-addr.arpa", "PTR", "real.dom.com").unwrap(),
            // The PTR name resolves back: no "(may be forged)".
            Record::parse("real.dom.com", "A", "203.0.113.66").unwrap(),
            // The sender's domain must resolve (spec §3.10): an MX is enough.
            Record::parse("lying.com", "MX", "10 mail.lying.com").unwrap(),
        ],
    )
    .await
    .unwrap();
    let mut addresses = AddressMap::identity();
    addresses.insert("192.0.2.10".parse().unwrap(), real(10));
    addresses.insert("203.0.113.66".parse().unwrap(), real(66));
    let mut profile = RelayProfile::new("external.sysiphus.com");
    profile.relay_domains = vec!["sysiphus.com".into()];
    let net = LabNetwork {
        listen: SocketAddr::new(real(2), 0),
        virtual_ip: "198.51.100.25".parse().unwrap(),
        dns: dns.addr(),
        smtp_port: port,
        addresses,
        clock,
    };
    let relay = BuiltinRelay::start(profile, net).await.unwrap();

    let mut c =
        SmtpClient::connect(Some(real(66)), relay.smtp_addr(), Duration::from_secs(10), TranscriptRecorder::new("c"))
            .await
            .unwrap();
    c.read_reply().await.unwrap();
    let hello = c.command("EHLO spoof.example.com").await.unwrap();
    assert!(hello.lines[0].contains("Hello real.dom.com [203.0.113.66]"), "{hello}");
    assert_eq!(c.command("MAIL FROM:<Im@lying.com>").await.unwrap().code, 250);
    assert_eq!(c.command("RCPT TO:<john@sysiphus.com>").await.unwrap().code, 250);
    assert_eq!(c.command("DATA").await.unwrap().code, 354);
    let done = c.send_message(b"Subject: hi\r\n\r\nhello\r\n").await.unwrap();
    assert_eq!(done.code, 250, "{done}");
    c.quit().await;
    assert!(relay.settle(Duration::from_secs(15)).await);

    let got = sink.messages();
    assert_eq!(got.len(), 1, "{:#?}", relay.outbound_sessions());
    assert_eq!(got[0].envelope.mail_from, "Im@lying.com");
    assert_eq!(got[0].envelope.rcpt_to, vec!["john@sysiphus.com"]);
    assert!(got[0].text().starts_with("Received: from spoof.example.com (real.dom.com [203.0.113.66])\r\n"));
    let to = relay.log_lines().into_iter().find(|l| l.contains(" to=")).unwrap();
    assert!(to.contains("relay=internal.sysiphus.com. [192.0.2.10], dsn=2.0.0, stat=Sent ("), "{to}");
    assert!(relay.queue().is_empty());
    relay.stop().await;
    sink.shutdown().await;
    dns.shutdown().await;
}
