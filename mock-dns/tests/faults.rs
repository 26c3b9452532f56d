//! Faults on real sockets: SERVFAIL, NXDOMAIN, no answer, delay, truncation
//! forcing TCP, "fail once then answer", and DNSBL listings.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{bind, query, Proto};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use mock_dns::{dnsbl_records, Fault, FaultKind, MockDns, Record};
use tokio::net::UdpSocket;

async fn lab() -> MockDns {
    let records = vec![
        Record::parse("sysiphus.com", "MX", "10 int1.sysiphus.com").unwrap(),
        Record::parse("int1.sysiphus.com", "A", "10.1.1.11").unwrap(),
    ];
    MockDns::start(bind(), records).await.unwrap()
}

/// One UDP query; `None` when nothing came back within `wait`.
async fn udp_query(addr: SocketAddr, name: &str, rtype: RecordType, wait: Duration) -> Option<Message> {
    let wire = common::request(name, rtype, false).to_vec().unwrap();
    let sock = UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).await.unwrap();
    sock.connect(addr).await.unwrap();
    sock.send(&wire).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(wait, sock.recv(&mut buf)).await.ok()?.unwrap();
    Some(Message::from_vec(&buf[..n]).unwrap())
}

fn resolver(dns: SocketAddr) -> TokioResolver {
    let mut connections = vec![ConnectionConfig::udp(), ConnectionConfig::tcp()];
    for c in &mut connections {
        c.port = dns.port();
    }
    let config = ResolverConfig::from_parts(None, vec![], vec![NameServerConfig::new(dns.ip(), true, connections)]);
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 1;
    opts.edns0 = false;
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default()).with_options(opts).build().unwrap()
}

#[tokio::test]
async fn servfail_and_nxdomain_replace_the_answer_for_that_name_and_type_only() {
    let dns = lab().await;
    dns.add_fault(Fault::new("sysiphus.com", FaultKind::ServFail).for_type("MX"));
    dns.add_fault(Fault::new("int1.sysiphus.com.", FaultKind::NxDomain));
    let mx = query(dns.addr(), Proto::Udp, "sysiphus.com.", RecordType::MX).await;
    assert_eq!(mx.metadata.response_code, ResponseCode::ServFail);
    assert!(mx.answers.is_empty());
    let a = query(dns.addr(), Proto::Tcp, "int1.sysiphus.com.", RecordType::A).await;
    assert_eq!(a.metadata.response_code, ResponseCode::NXDomain);
    // Another type of the faulted name is answered from the zone.
    let other = query(dns.addr(), Proto::Udp, "sysiphus.com.", RecordType::A).await;
    assert_eq!(other.metadata.response_code, ResponseCode::NoError);
    let log = dns.queries();
    assert_eq!((log[0].rcode.as_str(), log[0].fault.as_deref()), ("SERVFAIL", Some("servfail")));
    assert_eq!((log[1].rcode.as_str(), log[1].fault.as_deref()), ("NXDOMAIN", Some("nxdomain")));
    assert_eq!((log[2].rcode.as_str(), log[2].fault.as_deref()), ("NOERROR", None));
    // Cleared, the zone answers again.
    dns.clear_faults();
    let mx = query(dns.addr(), Proto::Udp, "sysiphus.com.", RecordType::MX).await;
    assert_eq!(mx.answers.len(), 1);
    dns.shutdown().await;
}

#[tokio::test]
async fn timeout_sends_nothing_and_logs_the_query() {
    let dns = lab().await;
    dns.add_fault(Fault::new("sysiphus.com", FaultKind::Timeout));
    assert!(udp_query(dns.addr(), "sysiphus.com.", RecordType::MX, Duration::from_millis(400)).await.is_none());
    let log = dns.queries();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].rcode.as_str(), log[0].fault.as_deref()), ("TIMEOUT", Some("timeout")));
    dns.shutdown().await;
}

#[tokio::test]
async fn delay_answers_late_and_other_queries_are_not_held_up() {
    let dns = lab().await;
    dns.add_fault(Fault::new("sysiphus.com", FaultKind::Answer).delayed(Duration::from_millis(400)));
    let addr = dns.addr();
    let started = Instant::now();
    let slow =
        tokio::spawn(async move { udp_query(addr, "sysiphus.com.", RecordType::MX, Duration::from_secs(3)).await });
    let fast = udp_query(addr, "int1.sysiphus.com.", RecordType::A, Duration::from_secs(3)).await.unwrap();
    assert_eq!(fast.answers.len(), 1);
    assert!(started.elapsed() < Duration::from_millis(400), "the undelayed query waited for the delayed one");
    let slow = slow.await.unwrap().expect("answered after the delay");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(slow.answers.len(), 1);
    assert!(dns.queries().iter().any(|q| q.fault.as_deref() == Some("delay 400ms")));
    dns.shutdown().await;
}

#[tokio::test]
async fn truncation_makes_a_resolver_retry_over_tcp() {
    let dns = lab().await;
    dns.add_fault(Fault::new("sysiphus.com", FaultKind::Truncate).for_type("MX"));
    let raw = udp_query(dns.addr(), "sysiphus.com.", RecordType::MX, Duration::from_secs(3)).await.unwrap();
    assert!(raw.metadata.truncation);
    assert!(raw.answers.is_empty());
    let r = resolver(dns.addr());
    let lookup = r.lookup("sysiphus.com.", RecordType::MX).await.expect("answered over TCP");
    assert!(matches!(lookup.answers()[0].data, RData::MX(_)));
    let log: Vec<(String, String, Option<String>)> =
        dns.queries().into_iter().map(|q| (q.protocol, q.rcode, q.fault)).collect();
    assert_eq!(
        log[1..],
        [
            ("udp".to_string(), "NOERROR".to_string(), Some("truncate".to_string())),
            ("tcp".to_string(), "NOERROR".to_string(), Some("truncate (tcp: answered)".to_string())),
        ]
    );
    dns.shutdown().await;
}

#[tokio::test]
async fn a_fault_can_strike_only_the_first_times() {
    let dns = lab().await;
    dns.add_fault(Fault::new("*", FaultKind::ServFail).times(2));
    for _ in 0..2 {
        let m = query(dns.addr(), Proto::Udp, "sysiphus.com.", RecordType::MX).await;
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }
    let m = query(dns.addr(), Proto::Udp, "sysiphus.com.", RecordType::MX).await;
    assert_eq!(m.answers.len(), 1);
    dns.shutdown().await;
}

#[tokio::test]
async fn a_dnsbl_listing_answers_127_0_0_2_with_its_reason() {
    let listed = dnsbl_records(
        "bl.spamcop.net",
        "203.0.113.66".parse().unwrap(),
        Ipv4Addr::new(127, 0, 0, 2),
        Some("spam source"),
    );
    let dns = MockDns::start(bind(), listed).await.unwrap();
    let a = query(dns.addr(), Proto::Udp, "66.113.0.203.bl.spamcop.net.", RecordType::A).await;
    assert_eq!(common::answer_data(&a), vec![RData::A(hickory_proto::rr::rdata::A(Ipv4Addr::new(127, 0, 0, 2)))]);
    let txt = query(dns.addr(), Proto::Udp, "66.113.0.203.bl.spamcop.net.", RecordType::TXT).await;
    assert!(matches!(&common::answer_data(&txt)[0], RData::TXT(t) if t.to_string() == "spam source"));
    // Not listed: NXDOMAIN, as a DNSBL answers.
    let clean = query(dns.addr(), Proto::Udp, "67.113.0.203.bl.spamcop.net.", RecordType::A).await;
    assert_eq!(clean.metadata.response_code, ResponseCode::NXDomain);
    dns.shutdown().await;
}
