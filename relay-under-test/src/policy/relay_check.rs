//! The default anti-relay check, Sendmail 8.9+ `check_rcpt` (spec §3.1, §3.6, §4.1).
//!
//! Talks to nothing: a pure function of the recipient, the client's lab
//! address and the profile. Exactly two flows are allowed on an
//! Internet-facing relay: mail *to* our domains and mail *from* our networks;
//! anything else is refused as relaying. Outbound legitimacy is decided by
//! the connecting address, never by the (forgeable) sender.

use crate::profile::{ProfileError, RelayEntry, RelayProfile};
use std::net::IpAddr;

/// What to do with one `RCPT TO:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptVerdict {
    /// No `@domain`: refused, `553 5.5.4 ... Domain name required`.
    Unqualified,
    /// The domain is this host (`$j` or `local_host_names`): local delivery.
    Local,
    /// The domain is, or is below, a relay_domains domain (the entry given).
    RelayTo(String),
    /// The client's address is in a relay_domains IP prefix (the prefix given).
    RelayFrom(String),
    /// Neither: `550 5.7.1 ... Relaying denied`.
    Denied,
}

impl RcptVerdict {
    /// True when the recipient is accepted for relaying.
    pub fn relays(&self) -> bool {
        matches!(self, RcptVerdict::RelayTo(_) | RcptVerdict::RelayFrom(_))
    }
}

/// The parts of the profile the check needs, parsed once.
#[derive(Debug, Clone)]
pub struct RelayPolicy {
    local_names: Vec<String>,
    relay_domains: Vec<String>,
    relay_prefixes: Vec<Vec<u8>>,
    hosts_only: bool,
}

fn norm(d: &str) -> String {
    d.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The domain part of an address (after the last `@`), lower-cased, without
/// a trailing dot; `None` when there is no non-empty domain.
pub fn domain_of(addr: &str) -> Option<String> {
    let (_, d) = addr.rsplit_once('@')?;
    let d = norm(d);
    (!d.is_empty()).then_some(d)
}

impl RelayPolicy {
    /// Build from a profile (fails on the same entries `validate` refuses).
    pub fn from_profile(p: &RelayProfile) -> Result<RelayPolicy, ProfileError> {
        let mut local_names = vec![norm(&p.hostname)];
        local_names.extend(p.local_host_names.iter().map(|n| norm(n)));
        let mut relay_domains = Vec::new();
        let mut relay_prefixes = Vec::new();
        for e in p.relay_entries()? {
            match e {
                RelayEntry::Domain(d) => relay_domains.push(d),
                RelayEntry::IpPrefix(o) => relay_prefixes.push(o),
            }
        }
        Ok(RelayPolicy { local_names, relay_domains, relay_prefixes, hosts_only: p.relay_hosts_only })
    }

    /// Whether `domain` is one of this host's own names.
    pub fn is_local(&self, domain: &str) -> bool {
        let d = norm(domain);
        self.local_names.contains(&d)
    }

    /// Decide on recipient `rcpt` (brackets stripped) from a client at lab address `client`.
    pub fn check_rcpt(&self, rcpt: &str, client: IpAddr) -> RcptVerdict {
        let Some(domain) = domain_of(rcpt) else {
            return RcptVerdict::Unqualified;
        };
        if self.is_local(&domain) {
            return RcptVerdict::Local;
        }
        for r in &self.relay_domains {
            let below = !self.hosts_only
                && domain.len() > r.len()
                && domain.ends_with(r.as_str())
                && domain.as_bytes()[domain.len() - r.len() - 1] == b'.';
            if domain == *r || below {
                return RcptVerdict::RelayTo(r.clone());
            }
        }
        let v4 = match client {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        };
        if let Some(v4) = v4 {
            let octets = v4.octets();
            for p in &self.relay_prefixes {
                if octets.starts_with(p) {
                    return RcptVerdict::RelayFrom(RelayEntry::IpPrefix(p.clone()).to_string());
                }
            }
        }
        RcptVerdict::Denied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(domains: &[&str]) -> RelayPolicy {
        let mut p = RelayProfile::new("external.sysiphus.com");
        p.local_host_names = vec!["mail.sysiphus.com".into()];
        p.relay_domains = domains.iter().map(|s| s.to_string()).collect();
        RelayPolicy::from_profile(&p).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_two_legitimate_flows() {
        let p = policy(&["sysiphus.com", "192.168.2"]);
        let outside = ip("203.0.113.66");
        // Inbound to our domain and its subdomains (Sendmail 8.9+ semantics, spec D2).
        assert_eq!(p.check_rcpt("john@sysiphus.com", outside), RcptVerdict::RelayTo("sysiphus.com".into()));
        assert_eq!(p.check_rcpt("bob@eng.Sysiphus.COM.", outside), RcptVerdict::RelayTo("sysiphus.com".into()));
        assert_eq!(p.check_rcpt("x@notsysiphus.com", outside), RcptVerdict::Denied);
        // Outbound from our network, to anywhere; decided by address, not sender.
        assert_eq!(p.check_rcpt("x@deer-run.com", ip("192.168.2.7")), RcptVerdict::RelayFrom("192.168.2".into()));
        assert_eq!(p.check_rcpt("x@deer-run.com", ip("192.168.20.7")), RcptVerdict::Denied);
        assert_eq!(
            p.check_rcpt("x@deer-run.com", ip("::ffff:192.168.2.7")),
            RcptVerdict::RelayFrom("192.168.2".into())
        );
        // Everything else is relaying.
        assert_eq!(p.check_rcpt("victim@deer-run.com", outside), RcptVerdict::Denied);
    }

    #[test]
    fn local_names_and_unqualified() {
        let p = policy(&["sysiphus.com"]);
        let c = ip("203.0.113.66");
        assert_eq!(p.check_rcpt("root@external.sysiphus.com", c), RcptVerdict::Local);
        assert_eq!(p.check_rcpt("root@MAIL.sysiphus.com", c), RcptVerdict::Local);
        assert_eq!(p.check_rcpt("root", c), RcptVerdict::Unqualified);
        assert_eq!(p.check_rcpt("root@", c), RcptVerdict::Unqualified);
        // The percent hack ends at our own name: local, not relayed.
        assert_eq!(p.check_rcpt("user%victim.com@external.sysiphus.com", c), RcptVerdict::Local);
    }

    #[test]
    fn relay_hosts_only_matches_exact_names() {
        let mut prof = RelayProfile::new("external.sysiphus.com");
        prof.relay_domains = vec!["other.com".into()];
        prof.relay_hosts_only = true;
        let p = RelayPolicy::from_profile(&prof).unwrap();
        let c = ip("203.0.113.66");
        assert!(p.check_rcpt("a@other.com", c).relays());
        assert_eq!(p.check_rcpt("a@sub.other.com", c), RcptVerdict::Denied);
    }
}
