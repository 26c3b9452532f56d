//! The mock DNS over real sockets, with a raw client.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use common::{answer_data, bind, exchange, query, request, Proto, WAIT};
use hickory_proto::{
    op::ResponseCode,
    rr::{
        rdata::{A, AAAA, CNAME, MX, PTR},
        Name, RData, RecordType,
    },
};
use mock_dns::{ptr_name, DnsError, MockDns, QueryLogEntry, Record, RecordData};

fn lab_records() -> Vec<Record> {
    vec![
        Record::parse("sysiphus.com", "MX", "10 internal.sysiphus.com").unwrap(),
        Record::parse("sysiphus.com", "MX", "20 backup.sysiphus.com.").unwrap(),
        Record::parse("sysiphus.com", "TXT", "\"v=spf1 ip4:127.45.3.0/24 -all\"").unwrap(),
        Record::parse("internal.sysiphus.com", "A", "127.45.3.20").unwrap(),
        Record::parse("internal.sysiphus.com", "AAAA", "fd00::20").unwrap(),
        Record::parse("smtp.sysiphus.com", "CNAME", "internal.sysiphus.com").unwrap(),
        Record::parse(&ptr_name("203.0.113.66".parse().unwrap()), "PTR", "mail.example.net").unwrap(),
        // DNSBL style: 203.0.113.66 is listed.
        Record::parse("66.113.0.203.zen.spamhaus.org", "A", "127.0.0.2").unwrap(),
    ]
}

async fn lab() -> MockDns {
    MockDns::start(bind(), lab_records()).await.unwrap()
}

fn a(ip: [u8; 4]) -> RData {
    RData::A(A(Ipv4Addr::from(ip)))
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn entry(name: &str, qtype: &str, protocol: &str, rcode: &str, answers: usize) -> QueryLogEntry {
    QueryLogEntry {
        name: name.into(),
        qtype: qtype.into(),
        protocol: protocol.into(),
        rcode: rcode.into(),
        answers,
        fault: None,
    }
}

#[tokio::test]
async fn answers_every_type_over_udp_and_tcp() {
    let dns = lab().await;
    let addr = dns.addr();
    assert_eq!(addr.ip(), bind().ip());
    assert_ne!(addr.port(), 0, "port 0 must be replaced by the chosen port");

    for proto in [Proto::Udp, Proto::Tcp] {
        let msg = query(addr, proto, "internal.sysiphus.com.", RecordType::A).await;
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError, "{proto:?}");
        assert!(msg.metadata.authoritative, "{proto:?}: answers must be authoritative");
        assert_eq!(answer_data(&msg), vec![a([127, 45, 3, 20])], "{proto:?}");

        let msg = query(addr, proto, "internal.sysiphus.com.", RecordType::AAAA).await;
        assert_eq!(answer_data(&msg), vec![RData::AAAA(AAAA("fd00::20".parse::<Ipv6Addr>().unwrap()))], "{proto:?}");

        let msg = query(addr, proto, "sysiphus.com.", RecordType::MX).await;
        let mut mx: Vec<(u16, Name)> = msg
            .answers
            .iter()
            .map(|r| match &r.data {
                RData::MX(mx) => (mx.preference, mx.exchange.clone()),
                other => panic!("not MX: {other:?}"),
            })
            .collect();
        mx.sort();
        assert_eq!(mx, vec![(10, name("internal.sysiphus.com.")), (20, name("backup.sysiphus.com."))], "{proto:?}");

        let msg = query(addr, proto, "66.113.0.203.in-addr.arpa.", RecordType::PTR).await;
        assert_eq!(answer_data(&msg), vec![RData::PTR(PTR(name("mail.example.net.")))], "{proto:?}");

        let msg = query(addr, proto, "sysiphus.com.", RecordType::TXT).await;
        let texts: Vec<String> = msg
            .answers
            .iter()
            .map(|r| match &r.data {
                RData::TXT(txt) => txt.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect(),
                other => panic!("not TXT: {other:?}"),
            })
            .collect();
        assert_eq!(texts, vec!["v=spf1 ip4:127.45.3.0/24 -all".to_string()], "{proto:?}");

        let msg = query(addr, proto, "smtp.sysiphus.com.", RecordType::CNAME).await;
        assert_eq!(answer_data(&msg), vec![RData::CNAME(CNAME(name("internal.sysiphus.com.")))], "{proto:?}");
        // An A query on the alias follows the CNAME inside the zone.
        let msg = query(addr, proto, "smtp.sysiphus.com.", RecordType::A).await;
        assert_eq!(
            answer_data(&msg),
            vec![RData::CNAME(CNAME(name("internal.sysiphus.com."))), a([127, 45, 3, 20])],
            "{proto:?}"
        );

        let msg = query(addr, proto, "66.113.0.203.zen.spamhaus.org.", RecordType::A).await;
        assert_eq!(answer_data(&msg), vec![a([127, 0, 0, 2])], "{proto:?}");
    }
    dns.shutdown().await;
}

#[tokio::test]
async fn unknown_names_are_nxdomain_known_names_without_the_type_are_nodata() {
    let dns = lab().await;
    let addr = dns.addr();
    for proto in [Proto::Udp, Proto::Tcp] {
        for unknown in [
            "nosuch.example.",
            "www.google.com.",
            "1.2.0.192.in-addr.arpa.",
            "2.0.0.127.zen.spamhaus.org.",
            "nope.sysiphus.com.",
        ] {
            let msg = query(addr, proto, unknown, RecordType::A).await;
            assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain, "{proto:?} {unknown}");
            assert!(msg.metadata.authoritative, "{proto:?} {unknown}");
            assert!(msg.answers.is_empty(), "{proto:?} {unknown}");
            assert!(
                msg.authorities.iter().any(|r| r.record_type() == RecordType::SOA),
                "{proto:?} {unknown}: negative answers carry the SOA"
            );
        }

        // Name exists, type does not: NOERROR, empty answer.
        for (known, rtype) in [
            ("internal.sysiphus.com.", RecordType::MX),
            ("sysiphus.com.", RecordType::A),
            ("66.113.0.203.zen.spamhaus.org.", RecordType::TXT),
            ("66.113.0.203.in-addr.arpa.", RecordType::A),
        ] {
            let msg = query(addr, proto, known, rtype).await;
            assert_eq!(msg.metadata.response_code, ResponseCode::NoError, "{proto:?} {known} {rtype}");
            assert!(msg.answers.is_empty(), "{proto:?} {known} {rtype}");
        }
        // A parent of a lab name exists as an empty non-terminal (RFC 8020):
        // NOERROR with no answers, not NXDOMAIN.
        let msg = query(addr, proto, "zen.spamhaus.org.", RecordType::A).await;
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError, "{proto:?}");
        assert!(msg.answers.is_empty());
    }
    dns.shutdown().await;
}

#[tokio::test]
async fn query_log_records_name_type_protocol_rcode_and_answer_count() {
    let dns = lab().await;
    let addr = dns.addr();
    assert!(dns.queries().is_empty());

    query(addr, Proto::Udp, "SysIphus.COM.", RecordType::MX).await;
    query(addr, Proto::Tcp, "nosuch.example.", RecordType::A).await;
    query(addr, Proto::Tcp, "internal.sysiphus.com.", RecordType::AAAA).await;
    query(addr, Proto::Udp, "sysiphus.com.", RecordType::A).await;
    query(addr, Proto::Udp, "66.113.0.203.in-addr.arpa.", RecordType::PTR).await;

    // No waiting: an entry is logged before its response leaves the server.
    assert_eq!(
        dns.queries(),
        vec![
            entry("sysiphus.com", "MX", "udp", "NOERROR", 2),
            entry("nosuch.example", "A", "tcp", "NXDOMAIN", 0),
            entry("internal.sysiphus.com", "AAAA", "tcp", "NOERROR", 1),
            entry("sysiphus.com", "A", "udp", "NOERROR", 0),
            entry("66.113.0.203.in-addr.arpa", "PTR", "udp", "NOERROR", 1),
        ]
    );
    dns.shutdown().await;
}

#[tokio::test]
async fn non_query_opcodes_and_zone_transfers_are_refused_and_logged() {
    let dns = lab().await;
    let addr = dns.addr();
    let msg = query(addr, Proto::Tcp, ".", RecordType::AXFR).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::Refused);
    assert!(msg.answers.is_empty());

    let mut update = request("sysiphus.com.", RecordType::SOA, false);
    update.metadata.op_code = hickory_proto::op::OpCode::Update;
    let msg = exchange(addr, Proto::Udp, update).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NotImp);

    assert_eq!(
        dns.queries(),
        vec![entry(".", "AXFR", "tcp", "REFUSED", 0), entry("sysiphus.com", "SOA", "udp", "NOTIMP", 0),]
    );
    dns.shutdown().await;
}

#[tokio::test]
async fn responses_keep_question_case_and_udp_truncation() {
    // Four 255-byte TXT strings do not fit the 512 bytes of plain UDP.
    let big = "x".repeat(255);
    let records = (0..4).map(|i| Record::new("big.sysiphus.com", RecordData::Txt(format!("{i}{big}")))).collect();
    let dns = MockDns::start(bind(), records).await.unwrap();
    let addr = dns.addr();

    let msg = exchange(addr, Proto::Udp, request("BiG.SysIphus.com.", RecordType::TXT, false)).await;
    assert!(msg.metadata.truncation, "over 512 bytes on UDP must set TC");
    assert!(msg.answers.len() < 4);
    assert!(
        msg.queries[0].name().eq_case(&name("BiG.SysIphus.com.")),
        "question must be echoed byte for byte, got {}",
        msg.queries[0].name()
    );

    let msg = exchange(addr, Proto::Tcp, request("big.sysiphus.com.", RecordType::TXT, false)).await;
    assert!(!msg.metadata.truncation);
    assert_eq!(msg.answers.len(), 4);

    let log = dns.queries();
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].protocol.as_str(), log[0].name.as_str()), ("udp", "big.sysiphus.com"));
    assert_eq!(log[1], entry("big.sysiphus.com", "TXT", "tcp", "NOERROR", 4));
    dns.shutdown().await;
}

#[tokio::test]
async fn live_edits_change_the_answer() {
    let dns = lab().await;
    let addr = dns.addr();
    let q = || query(addr, Proto::Udp, "late.sysiphus.com.", RecordType::A);

    assert_eq!(q().await.metadata.response_code, ResponseCode::NXDomain);

    dns.upsert(Record::parse("late.sysiphus.com", "A", "127.45.3.30").unwrap()).await.unwrap();
    let msg = q().await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answer_data(&msg), vec![a([127, 45, 3, 30])]);

    // upsert adds to the RRset; the same record again changes nothing.
    dns.upsert(Record::parse("late.sysiphus.com", "A", "127.45.3.31").unwrap()).await.unwrap();
    dns.upsert(Record::parse("late.sysiphus.com", "A", "127.45.3.31").unwrap()).await.unwrap();
    let mut got = answer_data(&q().await);
    got.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(got, vec![a([127, 45, 3, 30]), a([127, 45, 3, 31])]);

    // replace swaps the whole RRset.
    dns.replace(Record::parse("late.sysiphus.com", "A", "127.45.3.32").unwrap()).await.unwrap();
    assert_eq!(answer_data(&q().await), vec![a([127, 45, 3, 32])]);

    // Changing an MX target mid-scenario.
    dns.replace(Record::parse("sysiphus.com", "MX", "5 late.sysiphus.com").unwrap()).await.unwrap();
    let msg = query(addr, Proto::Tcp, "sysiphus.com.", RecordType::MX).await;
    assert_eq!(answer_data(&msg), vec![RData::MX(MX::new(5, name("late.sysiphus.com.")))]);

    // A CNAME next to other data is refused and the zone is unchanged.
    let err =
        dns.upsert(Record::parse("late.sysiphus.com", "CNAME", "internal.sysiphus.com").unwrap()).await.unwrap_err();
    assert!(matches!(err, DnsError::CnameConflict { .. }), "{err}");
    assert!(err.to_string().contains("`late.sysiphus.com`"), "{err}");
    assert_eq!(answer_data(&q().await), vec![a([127, 45, 3, 32])]);

    assert!(dns.remove("late.sysiphus.com.", "a").await.unwrap());
    assert!(!dns.remove("late.sysiphus.com", "A").await.unwrap());
    assert_eq!(q().await.metadata.response_code, ResponseCode::NXDomain);

    let err = dns.remove("late.sysiphus.com", "SRV").await.unwrap_err();
    assert!(err.to_string().contains("unsupported record type `SRV`"), "{err}");
    let err = dns.upsert(Record::new("bad name", RecordData::A(Ipv4Addr::LOCALHOST))).await.unwrap_err();
    assert!(matches!(err, DnsError::InvalidRecord { .. }), "{err}");
    dns.shutdown().await;
}

#[tokio::test]
async fn start_rejects_bad_zones_and_busy_addresses() {
    let err =
        MockDns::start(bind(), vec![Record::new("mx.example", RecordData::Ptr("bad..host".into()))]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "record `mx.example` cannot be served: PTR host `bad..host` is not a valid DNS name: \
         it has an empty label (`..` or a leading dot); fix it in the scenario"
    );

    let err = MockDns::start(
        bind(),
        vec![
            Record::parse("www.example", "CNAME", "example").unwrap(),
            Record::parse("www.example", "A", "192.0.2.1").unwrap(),
        ],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DnsError::CnameConflict { rtype: "A", .. }), "{err}");

    let first = lab().await;
    let err = MockDns::start(first.addr(), vec![]).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DnsError::Bind { .. }), "{text}");
    assert!(text.starts_with(&format!("cannot bind mock DNS on {} (udp): ", first.addr())), "{text}");
    first.shutdown().await;
}

#[tokio::test]
async fn shutdown_is_prompt_and_frees_the_address() {
    let dns = lab().await;
    let addr = dns.addr();
    // An idle TCP client must not hold shutdown up.
    let _idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    query(addr, Proto::Tcp, "sysiphus.com.", RecordType::MX).await;

    tokio::time::timeout(WAIT, dns.shutdown()).await.expect("shutdown must return promptly");

    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "nothing may listen after shutdown");
    // Both sockets are released: the same address can serve again.
    let again = MockDns::start(addr, lab_records()).await.unwrap();
    assert_eq!(again.addr(), addr);
    let msg = query(addr, Proto::Udp, "internal.sysiphus.com.", RecordType::A).await;
    assert_eq!(answer_data(&msg), vec![a([127, 45, 3, 20])]);
    again.shutdown().await;
}
