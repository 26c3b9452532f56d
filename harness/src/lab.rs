//! Bringing a lab up and down, on the `loopback` backend (builtin relay) or
//! the `netns` backend (real MTAs; see [`NetPlan`] for the difference).
//!
//! Each lab gets its own random `127.a.b.0/24`, so labs run side by side (and
//! in parallel test processes) without sharing addresses:
//! `.1` is the mock DNS, `.2` the relay, `.10` onwards the virtual hosts, and
//! after them the extra addresses of server farms (a slammer's distinct
//! sources, an MTA retrying from another address of its /24). All SMTP
//! services of one lab listen on one port, as they would all be on port 25
//! in a real network. Scenario addresses (documentation ranges) are mapped
//! onto these loopback addresses with an [`AddressMap`], which the builtin
//! relay and the mock hosts use to see and reach lab addresses.

use crate::actors;
use crate::scenario::{RelayName, Scenario};
use lab_core::{AddressMap, SharedClock};
use mock_dns::{MockDns, Record};
use mock_hosts::{LabTime, MxSink};
use relay_under_test::netns::LabNamespace;
use relay_under_test::{BuiltinRelay, LabNetwork, RelayUnderTest};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A virtual host's two addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// MX sinks by host name (every host whose SMTP port listens).
    pub sinks: BTreeMap<String, MxSink>,
    /// The relay under test.
    pub relay: Box<dyn RelayUnderTest>,
    /// Every host's addresses by name.
    pub hosts: BTreeMap<String, HostAddr>,
    /// Every host's farm: its own addresses first, then the others it owns in its /24.
    pub farms: BTreeMap<String, Vec<HostAddr>>,
    /// The port every SMTP service of the lab listens on.
    pub smtp_port: u16,
    /// Lab time, counted from the lab's start.
    pub time: LabTime,
    /// The lab namespace (netns backend), deleted when the lab stops.
    pub ns: Option<Arc<LabNamespace>>,
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

/// Where a lab's parts live: the backend's answer to "which address does
/// host X bind", "where does the DNS listen", "which port do SMTP services
/// use", "how does the relay map lab addresses" and "which relay runs".
///
/// - `loopback` (builtin relay, no privileges): every host on its own
///   `127.a.b.c`, one free port for every SMTP service, the DNS on `.1`, the
///   relay on `.2`, lab addresses mapped onto them with an [`AddressMap`].
/// - `netns` (real MTAs, root): every lab address itself on the lab
///   namespace's `lo`, SMTP on port 25, the DNS on port 53 of a lab address
///   (192.0.2.53 unless a host has it), an identity map. The whole lab runs
///   on threads that joined the namespace (see [`Lab::start_on`]).
struct NetPlan {
    hosts: BTreeMap<String, HostAddr>,
    farms: BTreeMap<String, Vec<HostAddr>>,
    dns_bind: SocketAddr,
    relay_listen: SocketAddr,
    smtp_port: u16,
    addresses: AddressMap,
}

impl NetPlan {
    fn loopback(s: &Scenario, subnet: [u8; 3]) -> Result<NetPlan, Attempt> {
        let at = |n: u8| IpAddr::V4(Ipv4Addr::new(subnet[0], subnet[1], subnet[2], n));
        let (hosts, farms) = assign_addresses(s, at);
        let relay_real = at(2);
        // One port for every SMTP service of the lab: take a free one on the relay's address.
        let probe =
            std::net::TcpListener::bind(SocketAddr::new(relay_real, 0)).map_err(|e| Attempt::Retry(e.to_string()))?;
        let smtp_port = probe.local_addr().map_err(|e| Attempt::Retry(e.to_string()))?.port();
        drop(probe);
        let mut addresses = AddressMap::identity();
        addresses.insert(s.network.relay_ip, relay_real);
        for farm in farms.values() {
            for h in farm {
                addresses.insert(h.lab_ip, h.real_ip);
            }
        }
        Ok(NetPlan {
            hosts,
            farms,
            dns_bind: SocketAddr::new(at(1), 0),
            relay_listen: SocketAddr::new(relay_real, smtp_port),
            smtp_port,
            addresses,
        })
    }

    fn netns(s: &Scenario) -> NetPlan {
        let (hosts, mut farms) = assign_addresses(s, |_| IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let identity = |h: &HostAddr| HostAddr { lab_ip: h.lab_ip, real_ip: h.lab_ip };
        let hosts: BTreeMap<String, HostAddr> = hosts.into_iter().map(|(n, h)| (n, identity(&h))).collect();
        for farm in farms.values_mut() {
            farm.iter_mut().for_each(|h| *h = identity(h));
        }
        let taken: Vec<IpAddr> =
            farms.values().flatten().map(|h| h.lab_ip).chain(hosts.values().map(|h| h.lab_ip)).collect();
        let dns_ip = (53u8..=254)
            .map(|n| IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)))
            .find(|ip| !taken.contains(ip) && *ip != s.network.relay_ip)
            .unwrap_or(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53)));
        NetPlan {
            hosts,
            farms,
            dns_bind: SocketAddr::new(dns_ip, 53),
            relay_listen: SocketAddr::new(s.network.relay_ip, 25),
            smtp_port: 25,
            addresses: AddressMap::identity(),
        }
    }

    /// Every lab address the plan uses (the netns backend puts them on `lo`).
    fn all_ips(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self.hosts.values().map(|h| h.real_ip).collect();
        v.extend(self.farms.values().flatten().map(|h| h.real_ip));
        v.push(self.dns_bind.ip());
        v.push(self.relay_listen.ip());
        v.sort();
        v.dedup();
        v
    }
}

/// Which relay a lab starts, and where the real ones run.
#[derive(Clone)]
pub enum RelayBackend {
    /// The builtin reference relay on the loopback backend.
    Builtin,
    /// A real MTA in the lab namespace `ns` (netns backend). The lab must be
    /// started from a thread that joined `ns` (see [`Lab::start_on`]).
    Real(RelayName, Arc<LabNamespace>),
}

impl Lab {
    /// Start everything the scenario declares, against the builtin relay.
    pub async fn start(s: &Scenario, clock: SharedClock) -> Result<Lab, LabError> {
        Self::start_on(s, clock, RelayBackend::Builtin).await
    }

    /// Start everything the scenario declares, against `relay`. For a real
    /// relay every socket is made in the calling thread's network namespace:
    /// call this (and run the lab) on a runtime whose threads joined the lab
    /// namespace ([`crate::runner`] does so).
    pub async fn start_on(s: &Scenario, clock: SharedClock, relay: RelayBackend) -> Result<Lab, LabError> {
        let time = LabTime::starting_now(clock);
        if let RelayBackend::Real(_, ns) = &relay {
            let plan = NetPlan::netns(s);
            for ip in plan.all_ips() {
                ns.add_address(ip).map_err(|e| LabError::Relay(e.to_string()))?;
            }
            return match Self::try_start(s, time, plan, relay.clone()).await {
                Ok(lab) => Ok(lab),
                Err(Attempt::Retry(e)) => Err(LabError::Addresses(1, e)),
                Err(Attempt::Fatal(e)) => Err(e),
            };
        }
        let mut last = String::new();
        for _ in 0..8 {
            let subnet = [127u8, rand::random_range(16..=250), rand::random::<u8>()];
            let attempt = match NetPlan::loopback(s, subnet) {
                Ok(plan) => Self::try_start(s, time.clone(), plan, RelayBackend::Builtin).await,
                Err(e) => Err(e),
            };
            match attempt {
                Ok(lab) => return Ok(lab),
                Err(Attempt::Retry(e)) => last = e,
                Err(Attempt::Fatal(e)) => return Err(e),
            }
        }
        Err(LabError::Addresses(8, last))
    }

    async fn try_start(s: &Scenario, time: LabTime, plan: NetPlan, backend: RelayBackend) -> Result<Lab, Attempt> {
        let NetPlan { hosts, farms, dns_bind, relay_listen, smtp_port, addresses } = plan;
        let dns = MockDns::start(dns_bind, records(s, &hosts)).await.map_err(|e| Attempt::Retry(e.to_string()))?;
        for f in &s.dns_faults {
            // Validated when the scenario was loaded.
            if let Ok(f) = f.to_fault() {
                dns.add_fault(f);
            }
        }

        let relay_addr = relay_listen;
        let mut sinks = BTreeMap::new();
        for (name, spec) in &s.hosts {
            let Some(smtp) = spec.smtp.as_ref().filter(|x| x.listens()) else { continue };
            let bind = SocketAddr::new(hosts[name].real_ip, smtp_port);
            let config = actors::sink_config(name, smtp, &time, &addresses, relay_addr, hosts[name].real_ip);
            match MxSink::start(bind, config, time.clock().clone()).await {
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

        let net = LabNetwork {
            listen: relay_addr,
            virtual_ip: s.network.relay_ip,
            dns: dns.addr(),
            smtp_port,
            addresses,
            clock: time.clock().clone(),
        };
        let (relay, ns) = match start_relay(s, net, &backend).await {
            Ok(r) => r,
            Err(msg) => {
                shutdown_sinks(sinks).await;
                dns.shutdown().await;
                return Err(if msg.contains("in use") && matches!(backend, RelayBackend::Builtin) {
                    Attempt::Retry(msg)
                } else {
                    Attempt::Fatal(LabError::Relay(msg))
                });
            }
        };
        Ok(Lab { dns, sinks, relay, hosts, farms, smtp_port, time, ns })
    }

    /// Where lab clients reach the relay.
    pub fn relay_addr(&self) -> SocketAddr {
        self.relay.smtp_addr()
    }

    /// Where lab clients reach `host`'s SMTP service, or the relay when `None`.
    pub fn target(&self, host: Option<&str>) -> SocketAddr {
        match host {
            Some(h) => SocketAddr::new(self.hosts[h].real_ip, self.smtp_port),
            None => self.relay_addr(),
        }
    }

    /// Wait until the relay has no delivery pending or running and no host
    /// has a message still to send on (forwarders, lists, auto-responders),
    /// both at once; false if `within` passed first.
    ///
    /// Mail changes hands with overlap: a host counts as busy from before it
    /// answers the relay's final dot until its own send got its final reply,
    /// and the relay counts as busy from before it answers a host's final
    /// dot. Counters of sessions and sends that did not move between two
    /// looks, with everyone idle at both, mean nothing was in flight.
    pub async fn settle(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.relay.settle(left).await {
                return false;
            }
            for sink in self.sinks.values() {
                if !sink.wait_idle(deadline.saturating_duration_since(Instant::now())).await {
                    return false;
                }
            }
            let before = self.traffic();
            // A real MTA is only known idle after two quiet looks at its queue and log.
            let look = if self.ns.is_some() { Duration::from_secs(3) } else { Duration::ZERO };
            let quiet = self.relay.settle(look).await && self.sinks.values().all(|s| s.busy() == 0);
            if quiet && self.traffic() == before {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::task::yield_now().await;
        }
    }

    /// Sessions accepted and messages sent on by every host: moves whenever mail changes hands.
    fn traffic(&self) -> (usize, usize) {
        self.sinks.values().fold((0, 0), |(a, b), s| (a + s.session_count(), b + s.sent_count()))
    }

    /// Stop the relay, the sinks and the DNS, in that order (then delete
    /// the lab namespace, if any).
    pub async fn stop(self) {
        self.relay.stop().await;
        shutdown_sinks(self.sinks).await;
        self.dns.shutdown().await;
        if let Some(ns) = self.ns {
            ns.delete();
        }
    }
}

/// Start the chosen relay on `net`; the namespace it runs in, if any.
async fn start_relay(
    s: &Scenario,
    net: LabNetwork,
    backend: &RelayBackend,
) -> Result<(Box<dyn RelayUnderTest>, Option<Arc<LabNamespace>>), String> {
    use relay_under_test::flavours::{Exim, NativeConfig, OpenSmtpd, Postfix, RealRelay, Sendmail};
    let (name, ns) = match backend {
        RelayBackend::Builtin => {
            let r = BuiltinRelay::start(s.relay.clone(), net).await.map_err(|e| e.to_string())?;
            return Ok((Box::new(r), None));
        }
        RelayBackend::Real(name, ns) => (*name, ns.clone()),
    };
    let native = s.native.get(&name).map_or(NativeConfig::Rendered, |n| n.config());
    let profile = s.relay.clone();
    let relay: Box<dyn RelayUnderTest> = match name {
        RelayName::Postfix => {
            Box::new(RealRelay::<Postfix>::start(ns.clone(), profile, net, native).await.map_err(|e| e.to_string())?)
        }
        RelayName::Sendmail => {
            Box::new(RealRelay::<Sendmail>::start(ns.clone(), profile, net, native).await.map_err(|e| e.to_string())?)
        }
        RelayName::Exim => {
            Box::new(RealRelay::<Exim>::start(ns.clone(), profile, net, native).await.map_err(|e| e.to_string())?)
        }
        RelayName::Opensmtpd => {
            Box::new(RealRelay::<OpenSmtpd>::start(ns.clone(), profile, net, native).await.map_err(|e| e.to_string())?)
        }
        RelayName::Builtin => unreachable!("handled above"),
    };
    Ok((relay, Some(ns)))
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
/// 198.51.100.0/24) and its loopback address (`.10` onwards, in name order);
/// then give farms their extra addresses: the next free lab addresses after
/// the host's own in its /24, and the next loopback addresses.
fn assign_addresses(
    s: &Scenario,
    at: impl Fn(u8) -> IpAddr,
) -> (BTreeMap<String, HostAddr>, BTreeMap<String, Vec<HostAddr>>) {
    let mut used: Vec<IpAddr> = s.hosts.values().filter_map(|h| h.ip).chain([s.network.relay_ip]).collect();
    let mut next_auto = 10u8;
    let mut hosts = BTreeMap::new();
    for (i, (name, spec)) in s.hosts.iter().enumerate() {
        let lab_ip = spec.ip.unwrap_or_else(|| loop {
            let candidate = IpAddr::V4(Ipv4Addr::new(198, 51, 100, next_auto));
            next_auto = next_auto.wrapping_add(1);
            if !used.contains(&candidate) {
                break candidate;
            }
        });
        used.push(lab_ip);
        hosts.insert(name.clone(), HostAddr { lab_ip, real_ip: at(10u8.saturating_add(i as u8)) });
    }
    let mut next_real = 10usize + s.hosts.len();
    let mut farms = BTreeMap::new();
    for (name, size) in s.farm_sizes() {
        let me = hosts[&name];
        let mut farm = vec![me];
        if let IpAddr::V4(v4) = me.lab_ip {
            let [a, b, c, d] = v4.octets();
            let mut last = d;
            while farm.len() < size && next_real <= 254 {
                last = if last >= 254 { 1 } else { last + 1 };
                if last == d {
                    break; // the /24 is full
                }
                let candidate = IpAddr::V4(Ipv4Addr::new(a, b, c, last));
                if used.contains(&candidate) {
                    continue;
                }
                used.push(candidate);
                farm.push(HostAddr { lab_ip: candidate, real_ip: at(next_real as u8) });
                next_real += 1;
            }
        }
        farms.insert(name, farm);
    }
    (hosts, farms)
}

/// The lab's DNS data: the scenario's records, DNSBL listings, A and PTR
/// records for hosts with domain names, and the relay's own A and PTR.
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
    for bl in &s.dnsbl {
        let code = bl.code.unwrap_or(Ipv4Addr::new(127, 0, 0, 2));
        for (who, reason) in &bl.listed {
            let ip = who.parse::<IpAddr>().ok().or_else(|| hosts.get(who).map(|h| h.lab_ip));
            if let Some(ip) = ip {
                out.extend(mock_dns::dnsbl_records(&bl.zone, ip, code, reason.as_deref().filter(|r| !r.is_empty())));
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
