//! MX routing, the SMTP delivery algorithm (spec §3.2).
//!
//! Talks to DNS through [`Resolver`]. Query MX for the recipient domain;
//! lower preference first (equal preferences keep the DNS order); no MX → the
//! domain's own A record; neither → the domain is unknown and the message
//! bounces. An MX list that names this host is cut there, so the relay never
//! sends mail to itself (Sendmail's "MX list points back to me" rule).

use async_trait::async_trait;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    /// Lower is preferred.
    pub preference: u16,
    /// The mail exchanger's name, without trailing dot.
    pub exchange: String,
}

/// How a lookup failed, in the resolver's (`h_errno`) terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// NXDOMAIN: the name does not exist.
    #[error("host not found")]
    NotFound,
    /// The name exists but has no record of that type.
    #[error("no data known")]
    NoData,
    /// The name server did not answer in time.
    #[error("timeout")]
    Timeout,
    /// Any other failure (SERVFAIL, REFUSED, transport): try again later.
    #[error("host name lookup failure ({0})")]
    TempFail(String),
}

/// The lookups the relay makes.
#[async_trait]
pub trait Resolver: Send + Sync + fmt::Debug {
    /// MX records of `domain`, in the order the server gave them.
    async fn mx(&self, domain: &str) -> Result<Vec<MxRecord>, DnsError>;
    /// IPv4 addresses of `host`.
    async fn a(&self, host: &str) -> Result<Vec<IpAddr>, DnsError>;
    /// The PTR name of `ip`, without trailing dot.
    async fn ptr(&self, ip: IpAddr) -> Result<String, DnsError>;
}

/// A [`Resolver`] that asks exactly one name server: the lab's.
pub struct HickoryResolver {
    inner: TokioResolver,
    server: SocketAddr,
}

impl fmt::Debug for HickoryResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HickoryResolver").field("server", &self.server).finish()
    }
}

/// Per-query wait for the lab's DNS server; it is local, so an unanswered
/// query means it is down or told to time out.
const DNS_TIMEOUT: Duration = Duration::from_secs(3);

impl HickoryResolver {
    /// A resolver for the server at `server`, sending from `source` when given
    /// (so the lab's DNS log shows which host asked). No system configuration
    /// is read, no hosts file, no search list; nothing is cached, because a
    /// scenario may change its zone between steps.
    pub fn new(server: SocketAddr, source: Option<IpAddr>) -> Result<HickoryResolver, String> {
        let mut connections = vec![ConnectionConfig::udp(), ConnectionConfig::tcp()];
        for c in &mut connections {
            c.port = server.port();
            c.bind_addr = source.filter(|s| s.is_ipv4() == server.is_ipv4()).map(|s| SocketAddr::new(s, 0));
        }
        let ns = NameServerConfig::new(server.ip(), true, connections);
        let config = ResolverConfig::from_parts(None, Vec::new(), vec![ns]);
        let mut opts = ResolverOpts::default();
        opts.timeout = DNS_TIMEOUT;
        opts.attempts = 1;
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        opts.edns0 = false;
        let inner = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HickoryResolver { inner, server })
    }

    async fn lookup(&self, name: &str, rtype: RecordType) -> Result<Vec<RData>, DnsError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.inner.lookup(fqdn.as_str(), rtype).await {
            Ok(l) => Ok(l.answers().iter().map(|r| r.data.clone()).collect()),
            Err(e) => Err(map_error(e)),
        }
    }
}

fn map_error(e: NetError) -> DnsError {
    if e.is_nx_domain() {
        DnsError::NotFound
    } else if e.is_no_records_found() {
        DnsError::NoData
    } else {
        match e {
            NetError::Timeout => DnsError::Timeout,
            NetError::Dns(HickoryDnsError::ResponseCode(code)) => DnsError::TempFail(code.to_string()),
            other => DnsError::TempFail(other.to_string()),
        }
    }
}

fn trim_dot(s: String) -> String {
    s.strip_suffix('.').map(str::to_string).unwrap_or(s)
}

#[async_trait]
impl Resolver for HickoryResolver {
    async fn mx(&self, domain: &str) -> Result<Vec<MxRecord>, DnsError> {
        let mx: Vec<MxRecord> = self
            .lookup(domain, RecordType::MX)
            .await?
            .into_iter()
            .filter_map(|d| match d {
                RData::MX(mx) => {
                    Some(MxRecord { preference: mx.preference, exchange: trim_dot(mx.exchange.to_string()) })
                }
                _ => None,
            })
            .collect();
        if mx.is_empty() {
            return Err(DnsError::NoData);
        }
        Ok(mx)
    }

    async fn a(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let ips: Vec<IpAddr> = self
            .lookup(host, RecordType::A)
            .await?
            .into_iter()
            .filter_map(|d| match d {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect();
        if ips.is_empty() {
            return Err(DnsError::NoData);
        }
        Ok(ips)
    }

    async fn ptr(&self, ip: IpAddr) -> Result<String, DnsError> {
        let rev = hickory_resolver::proto::rr::Name::from(ip);
        let answers = match self.inner.lookup(rev, RecordType::PTR).await {
            Ok(l) => l.answers().iter().map(|r| r.data.clone()).collect::<Vec<_>>(),
            Err(e) => return Err(map_error(e)),
        };
        answers
            .into_iter()
            .find_map(|d| match d {
                RData::PTR(p) => Some(trim_dot(p.0.to_string())),
                _ => None,
            })
            .ok_or(DnsError::NoData)
    }
}

/// One host to try, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    /// The host's name (the domain itself when it has no MX).
    pub name: String,
    /// Its MX preference (0 for the implicit MX of an A-only domain).
    pub preference: u16,
}

/// Why no host could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The domain has neither MX nor A: permanent, the message bounces.
    #[error("Host unknown (Name server: {domain}: {why})")]
    HostUnknown {
        /// The recipient domain.
        domain: String,
        /// `host not found` or `no data known`.
        why: DnsError,
    },
    /// DNS did not answer usefully: the message stays queued.
    #[error("{}", temp_text(.domain, .why))]
    TempFail {
        /// The recipient domain.
        domain: String,
        /// What went wrong.
        why: DnsError,
    },
    /// The best MX is this host itself: a routing loop (config error).
    #[error("MX list for {domain}. points back to {hostname}")]
    PointsBack {
        /// The recipient domain.
        domain: String,
        /// Our own name.
        hostname: String,
    },
}

fn temp_text(domain: &str, why: &DnsError) -> String {
    match why {
        DnsError::Timeout => "Name server timeout".to_string(),
        _ => format!("Name server: {domain}.: host name lookup failure"),
    }
}

/// The hosts to try for `domain`, most preferred first. `is_me` tells which
/// names are this relay; hosts at or after the first such preference are
/// dropped.
pub async fn mx_hosts(
    resolver: &dyn Resolver,
    domain: &str,
    is_me: &(dyn Fn(&str) -> bool + Send + Sync),
) -> Result<Vec<MxHost>, RouteError> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    match resolver.mx(&domain).await {
        Ok(mut records) => {
            records.sort_by_key(|r| r.preference); // stable: equal preferences keep DNS order
                                                   // Only hosts more preferred than our own entry may be used.
            if let Some(mine) = records.iter().find(|r| is_me(&r.exchange)) {
                let (cut, me) = (mine.preference, mine.exchange.clone());
                records.retain(|r| r.preference < cut);
                if records.is_empty() {
                    return Err(RouteError::PointsBack { domain, hostname: me });
                }
            }
            Ok(records.into_iter().map(|r| MxHost { name: r.exchange, preference: r.preference }).collect())
        }
        Err(DnsError::NoData) => match resolver.a(&domain).await {
            Ok(_) => {
                if is_me(&domain) {
                    return Err(RouteError::PointsBack { hostname: domain.clone(), domain });
                }
                Ok(vec![MxHost { name: domain, preference: 0 }])
            }
            Err(why @ (DnsError::NotFound | DnsError::NoData)) => Err(RouteError::HostUnknown { domain, why }),
            Err(why) => Err(RouteError::TempFail { domain, why }),
        },
        Err(why @ DnsError::NotFound) => Err(RouteError::HostUnknown { domain, why }),
        Err(why) => Err(RouteError::TempFail { domain, why }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Debug, Default)]
    struct Table {
        mx: HashMap<String, Result<Vec<MxRecord>, DnsError>>,
        a: HashMap<String, Result<Vec<IpAddr>, DnsError>>,
    }

    #[async_trait]
    impl Resolver for Table {
        async fn mx(&self, d: &str) -> Result<Vec<MxRecord>, DnsError> {
            self.mx.get(d).cloned().unwrap_or(Err(DnsError::NotFound))
        }
        async fn a(&self, h: &str) -> Result<Vec<IpAddr>, DnsError> {
            self.a.get(h).cloned().unwrap_or(Err(DnsError::NotFound))
        }
        async fn ptr(&self, _: IpAddr) -> Result<String, DnsError> {
            Err(DnsError::NotFound)
        }
    }

    fn mx(p: u16, e: &str) -> MxRecord {
        MxRecord { preference: p, exchange: e.into() }
    }

    fn not_me(_: &str) -> bool {
        false
    }

    #[tokio::test]
    async fn sorted_by_preference_keeping_dns_order_for_ties() {
        let mut t = Table::default();
        t.mx.insert("x.com".into(), Ok(vec![mx(20, "b"), mx(10, "c"), mx(10, "a"), mx(5, "d")]));
        let names: Vec<String> = mx_hosts(&t, "X.com.", &not_me).await.unwrap().into_iter().map(|h| h.name).collect();
        assert_eq!(names, ["d", "c", "a", "b"]);
    }

    #[tokio::test]
    async fn no_mx_falls_back_to_a_and_neither_is_unknown() {
        let mut t = Table::default();
        t.mx.insert("a-only.com".into(), Err(DnsError::NoData));
        t.a.insert("a-only.com".into(), Ok(vec!["192.0.2.1".parse().unwrap()]));
        assert_eq!(
            mx_hosts(&t, "a-only.com", &not_me).await.unwrap(),
            vec![MxHost { name: "a-only.com".into(), preference: 0 }]
        );
        let e = mx_hosts(&t, "nowhere.com", &not_me).await.unwrap_err();
        assert_eq!(e.to_string(), "Host unknown (Name server: nowhere.com: host not found)");
        t.mx.insert("slow.com".into(), Err(DnsError::Timeout));
        assert_eq!(mx_hosts(&t, "slow.com", &not_me).await.unwrap_err().to_string(), "Name server timeout");
        t.mx.insert("broken.com".into(), Err(DnsError::TempFail("SERVFAIL".into())));
        assert_eq!(
            mx_hosts(&t, "broken.com", &not_me).await.unwrap_err().to_string(),
            "Name server: broken.com.: host name lookup failure"
        );
    }

    #[tokio::test]
    async fn mx_list_is_cut_at_this_host() {
        let mut t = Table::default();
        t.mx.insert("x.com".into(), Ok(vec![mx(10, "primary"), mx(20, "me"), mx(30, "backup")]));
        t.mx.insert("y.com".into(), Ok(vec![mx(10, "me"), mx(20, "backup")]));
        let is_me = |n: &str| n == "me";
        let hosts = mx_hosts(&t, "x.com", &is_me).await.unwrap();
        assert_eq!(hosts, vec![MxHost { name: "primary".into(), preference: 10 }]);
        let e = mx_hosts(&t, "y.com", &is_me).await.unwrap_err();
        assert!(matches!(e, RouteError::PointsBack { .. }));
        assert_eq!(e.to_string(), "MX list for y.com. points back to me");
        // A peer at our own preference is not more preferred: cut too.
        t.mx.insert("z.com".into(), Ok(vec![mx(10, "peer"), mx(10, "me"), mx(20, "backup")]));
        assert!(matches!(mx_hosts(&t, "z.com", &is_me).await, Err(RouteError::PointsBack { .. })));
    }
}
