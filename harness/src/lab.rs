//! Bringing a lab up and down on the `loopback` backend.
//!
//! Each lab gets its own random `127.a.b.0/24`, so labs run side by side (and
//! in parallel test processes) without sharing addresses:
//! `.1` is the mock DNS, `.2` the relay, `.10` onwards the virtual hosts. All
//! SMTP services of one lab listen on one port, as they would all be on port
//! 25 in a real network. Scenario addresses (documentation ranges) are mapped
//! onto these loopback addresses with an [`AddressMap`], which the builtin
//! relay uses to see and reach lab addresses.

use crate::scenario::{Scenario, SmtpService};
use lab_core::{AddressMap, SharedClock};
use mock_dns::{MockDns, Record};
use mock_hosts::{MxSink, SinkConfig};
use relay_under_test::{BuiltinRelay, LabNetwork, RelayUnderTest};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A virtual host's two addresses.
#[derive(Debug, Clone, Copy)]
pub struct HostAddr {
    /// The address the scenario (and the relay) sees.
    pub lab_ip: IpAddr,
    /// The loopback address it really uses.
    pub real_ip: IpAddr,
}

/// A running lab.
pub struct Lab {
    /// The lab's DNS server.
    pub dns: MockDns,
    /// MX sinks by host name.
    pub sinks: BTreeMap<String, MxSink>,
    /// The relay under test.
    pub relay: Box<dyn RelayUnderTest>,
    /// Every host's addresses by name.
    pub hosts: BTreeMap<String, HostAddr>,
    /// The port every SMTP service of the lab listens on.
    pub smtp_port: u16,
}

/// Why a lab could not be brought up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// No free loopback subnet/port could be found.
    #[error("could not find free loopback addresses for the lab after {0} tries: {1}")]
    Addresses(usize, String),
    /// The mock DNS failed to start.
    #[error("mock DNS: {0}")]
    Dns(String),
    /// A mock host failed to start.
    #[error("host `{0}`: {1}")]
    Host(String, String),
    /// The relay failed to start.
    #[error("relay: {0}")]
    Relay(String),
}

impl Lab {
    /// Start everything the scenario declares.
    pub async fn start(s: &Scenario, clock: SharedClock) -> Result<Lab, LabError> {
        let mut last = String::new();
        for _ in 0..8 {
            let subnet = [127u8, rand::random_range(16..=250), rand::random::<u8>()];
            match Self::try_start(s, clock.clone(), subnet).await {
                Ok(lab) => return Ok(lab),
                Err(Attempt::Retry(e)) => last = e,
                Err(Attempt::Fatal(e)) => return Err(e),
            }
        }
        Err(LabError::Addresses(8, last))
    }

    async fn try_start(s: &Scenario, clock: SharedClock, subnet: [u8; 3]) -> Result<Lab, Attempt> {
        let at = |n: u8| IpAddr::V4(Ipv4Addr::new(subnet[0], subnet[1], subnet[2], n));
        let hosts = assign_addresses(s, at);
        let relay_real = at(2);

        // One port for every SMTP service of the lab: take a free one on the relay's address.
        let probe = std::net::TcpListener::bind(SocketAddr::new(relay_real, 0)).map_err(|e| Attempt::Retry(e.to_string()))?;
        let smtp_port = probe.local_addr().map_err(|e| Attempt::Retry(e.to_string()))?.port();
        drop(probe);

        let dns = MockDns::start(SocketAddr::new(at(1), 0), records(s, &hosts))
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?;

        let mut sinks = BTreeMap::new();
        for (name, spec) in &s.hosts {
            if spec.smtp == Some(SmtpService::Accept) {
                let bind = SocketAddr::new(hosts[name].real_ip, smtp_port);
                match MxSink::start(bind, SinkConfig::accept(name.clone()), clock.clone()).await {
                    Ok(sink) => {
                        sinks.insert(name.clone(), sink);
                    }
                    Err(e) => {
                        shutdown_sinks(sinks).await;
                        dns.shutdown().await;
                        return Err(if e.kind() == std::io::ErrorKind::AddrInUse {
                            Attempt::Retry(e.to_string())
                        } else {
                            Attempt::Fatal(LabError::Host(name.clone(), e.to_string()))
                        });
                    }
                }
            }
        }

        let mut addresses = AddressMap::identity();
        addresses.insert(s.network.relay_ip, relay_real);
        for h in hosts.values() {
            addresses.insert(h.lab_ip, h.real_ip);
        }
        let net = LabNetwork {
            listen: SocketAddr::new(relay_real, smtp_port),
            virtual_ip: s.network.relay_ip,
            dns: dns.addr(),
            smtp_port,
            addresses,
            clock,
        };
        let relay = match BuiltinRelay::start(s.relay.clone(), net).await {
            Ok(r) => r,
            Err(e) => {
                shutdown_sinks(sinks).await;
                dns.shutdown().await;
                let msg = e.to_string();
                return Err(if msg.contains("in use") { Attempt::Retry(msg) } else { Attempt::Fatal(LabError::Relay(msg)) });
            }
        };
        Ok(Lab { dns, sinks, relay: Box::new(relay), hosts, smtp_port })
    }

    /// Where lab clients reach the relay.
    pub fn relay_addr(&self) -> SocketAddr {
        self.relay.smtp_addr()
    }

    /// Stop the relay, the sinks and the DNS, in that order.
    pub async fn stop(self) {
        self.relay.stop().await;
        shutdown_sinks(self.sinks).await;
        self.dns.shutdown().await;
    }
}

enum Attempt {
    Retry(String),
    Fatal(LabError),
}

async fn shutdown_sinks(sinks: BTreeMap<String, MxSink>) {
    for (_, sink) in sinks {
        sink.shutdown().await;
    }
}

/// Give every host its lab address (declared, or the next free one in
/// 198.51.100.0/24) and its loopback address (`.10` onwards, in name order).
fn assign_addresses(s: &Scenario, at: impl Fn(u8) -> IpAddr) -> BTreeMap<String, HostAddr> {
    let used: Vec<IpAddr> = s.hosts.values().filter_map(|h| h.ip).chain([s.network.relay_ip]).collect();
    let mut next_auto = 10u8;
    let mut out = BTreeMap::new();
    for (i, (name, spec)) in s.hosts.iter().enumerate() {
        let lab_ip = spec.ip.unwrap_or_else(|| loop {
            let candidate = IpAddr::V4(Ipv4Addr::new(198, 51, 100, next_auto));
            next_auto = next_auto.wrapping_add(1);
            if !used.contains(&candidate) {
                break candidate;
            }
        });
        out.insert(name.clone(), HostAddr { lab_ip, real_ip: at(10u8.saturating_add(i as u8)) });
    }
    out
}

/// The lab's DNS data: the scenario's records, plus A and PTR records for
/// hosts with domain names, plus the relay's own A and PTR.
fn records(s: &Scenario, hosts: &BTreeMap<String, HostAddr>) -> Vec<Record> {
    let mut out = Vec::new();
    for (name, node) in &s.dns {
        for (rtype, value) in node.records() {
            // Already validated when the scenario was loaded.
            if let Ok(r) = Record::parse(name, rtype, value) {
                out.push(r);
            }
        }
    }
    let mut add_host = |name: &str, ip: IpAddr, ptr: Option<&str>, a_record: bool| {
        if a_record {
            if let Ok(r) = Record::parse(name, if ip.is_ipv4() { "A" } else { "AAAA" }, &ip.to_string()) {
                out.push(r);
            }
        }
        if let Some(ptr) = ptr.filter(|p| !p.is_empty()) {
            if let Ok(r) = Record::parse(&mock_dns::ptr_name(ip), "PTR", ptr) {
                out.push(r);
            }
        }
    };
    for (name, spec) in &s.hosts {
        let is_fqdn = name.contains('.');
        let ptr = spec.ptr.as_deref().or(if is_fqdn { Some(name.as_str()) } else { None });
        add_host(name, hosts[name].lab_ip, ptr, spec.a_record.unwrap_or(is_fqdn));
    }
    add_host(&s.relay.hostname, s.network.relay_ip, Some(&s.relay.hostname), true);
    out
}
