//! hickory-resolver 0.26 pointed at the mock, configured the way the relay
//! under test will be: one name server at a SocketAddr, no system config,
//! no hosts file, no cache.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::bind;
use hickory_resolver::{
    config::{ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig, ResolverOpts},
    net::runtime::TokioRuntimeProvider,
    proto::rr::{RData, RecordType},
    TokioResolver,
};
use mock_dns::{MockDns, QueryLogEntry, Record};

/// The snippet handed to the relay: UDP first, TCP on truncation.
fn resolver(dns: SocketAddr, protocols: &[ProtocolConfig]) -> TokioResolver {
    let connections = protocols
        .iter()
        .map(|p| {
            let mut conn = ConnectionConfig::new(p.clone());
            conn.port = dns.port(); // ConnectionConfig::new uses port 53
            conn
        })
        .collect();
    let server = NameServerConfig::new(dns.ip(), true, connections);
    let config = ResolverConfig::from_parts(None, vec![], vec![server]);
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0; // every lookup reaches the mock
    opts.use_hosts_file = ResolveHosts::Never; // no /etc/hosts
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 1;
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .expect("resolver config is valid")
}

fn entries(dns: &MockDns) -> Vec<(String, String, String, String)> {
    dns.queries()
        .into_iter()
        .map(|QueryLogEntry { name, qtype, protocol, rcode, .. }| (name, qtype, protocol, rcode))
        .collect()
}

fn row(name: &str, qtype: &str, protocol: &str, rcode: &str) -> (String, String, String, String) {
    (name.into(), qtype.into(), protocol.into(), rcode.into())
}

#[tokio::test]
async fn hickory_resolver_over_udp_sees_lab_data_nxdomain_and_no_cache() {
    let dns = MockDns::start(
        bind(),
        vec![
            Record::parse("sysiphus.com", "MX", "10 internal.sysiphus.com").unwrap(),
            Record::parse("internal.sysiphus.com", "A", "127.45.3.20").unwrap(),
            Record::parse("66.113.0.203.in-addr.arpa", "PTR", "mail.example.net").unwrap(),
        ],
    )
    .await
    .unwrap();
    let resolver = resolver(dns.addr(), &[ProtocolConfig::Udp, ProtocolConfig::Tcp]);

    let mx = resolver.mx_lookup("sysiphus.com.").await.unwrap();
    let mx: Vec<(u16, String)> = mx
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(mx, vec![(10, "internal.sysiphus.com.".to_string())]);

    let ips: Vec<_> = resolver.lookup_ip("internal.sysiphus.com.").await.unwrap().iter().collect();
    assert_eq!(ips, vec!["127.45.3.20".parse::<std::net::IpAddr>().unwrap()]);

    let ptr = resolver.lookup("66.113.0.203.in-addr.arpa.", RecordType::PTR).await.unwrap();
    assert_eq!(ptr.answers().len(), 1);

    let err = resolver.mx_lookup("nosuch.example.").await.unwrap_err();
    assert!(err.is_nx_domain(), "expected NXDOMAIN, got {err:?}");
    let err = resolver.mx_lookup("internal.sysiphus.com.").await.unwrap_err();
    assert!(err.is_no_records_found() && !err.is_nx_domain(), "expected NODATA, got {err:?}");

    // cache_size 0: the second identical lookup reaches the server again.
    resolver.mx_lookup("sysiphus.com.").await.unwrap();

    let log = entries(&dns);
    let mx_queries = log.iter().filter(|e| **e == row("sysiphus.com", "MX", "udp", "NOERROR")).count();
    assert_eq!(mx_queries, 2, "log: {log:?}");
    assert!(log.contains(&row("internal.sysiphus.com", "A", "udp", "NOERROR")), "{log:?}");
    assert!(log.contains(&row("nosuch.example", "MX", "udp", "NXDOMAIN")), "{log:?}");
    assert!(log.iter().all(|e| e.2 == "udp"), "{log:?}");
    dns.shutdown().await;
}

#[tokio::test]
async fn hickory_resolver_over_tcp_only() {
    let dns = MockDns::start(bind(), vec![Record::parse("sysiphus.com", "MX", "10 internal.sysiphus.com").unwrap()])
        .await
        .unwrap();
    let resolver = resolver(dns.addr(), &[ProtocolConfig::Tcp]);
    resolver.mx_lookup("sysiphus.com.").await.unwrap();
    let err = resolver.mx_lookup("nosuch.example.").await.unwrap_err();
    assert!(err.is_nx_domain(), "{err:?}");
    assert_eq!(
        entries(&dns),
        vec![row("sysiphus.com", "MX", "tcp", "NOERROR"), row("nosuch.example", "MX", "tcp", "NXDOMAIN"),]
    );
    dns.shutdown().await;
}
