//! The anti-relay check, Sendmail 8.9+ `check_rcpt` (spec §3.1, §3.6, §4.1, §4.2).
//!
//! Talks to nothing: a pure function of the recipient, the client and the
//! profile. Exactly two flows are allowed on an Internet-facing relay: mail
//! *to* our domains and mail *from* our networks; anything else is refused
//! as relaying. Outbound legitimacy is decided by the connecting address (or
//! an explicit `Connect:` entry), never by the (forgeable) sender.
//!
//! Before deciding, relay tricks are undone (`ParseRecipient`, spec §4.2): a
//! local part that hides another destination behind one of our names —
//! `user%elsewhere@ourdomain`, `elsewhere!user@ourdomain`,
//! `"user@elsewhere"@ourdomain`, `<@ourdomain:user@elsewhere>` (a source
//! route counts by its final mailbox) — is rechecked as that destination.

use crate::policy::access_db::{AccessAction, AccessDb};
use crate::profile::{DelayChecks, ProfileError, RelayEntry, RelayProfile};
use std::net::IpAddr;

/// What to do with one `RCPT TO:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptVerdict {
    /// No `@domain`: refused, `553 5.5.4 ... Domain name required`.
    Unqualified,
    /// The domain is this host (`$j`, `local_host_names`, `[our address]`): local delivery.
    Local,
    /// The domain may be relayed to: a relay_domains domain, `$m` under
    /// `relay_entire_domain`, or a `To:` RELAY entry (which one is given).
    RelayTo(String),
    /// The client may relay anywhere: a relay_domains prefix, a `Connect:`
    /// RELAY entry, `relay_entire_domain` or `promiscuous_relay` (which one is given).
    RelayFrom(String),
    /// None of these: `550 5.7.1 ... Relaying denied`.
    Denied,
}

impl RcptVerdict {
    /// True when the recipient is accepted for relaying.
    pub fn relays(&self) -> bool {
        matches!(self, RcptVerdict::RelayTo(_) | RcptVerdict::RelayFrom(_))
    }
}

/// The relay policy: the parts of the profile the checks need, parsed once.
#[derive(Debug, Clone)]
pub struct RelayPolicy {
    local_names: Vec<String>,
    relay_domains: Vec<String>,
    relay_prefixes: Vec<Vec<u8>>,
    hosts_only: bool,
    promiscuous: bool,
    /// `$m` when `relay_entire_domain` is on.
    entire_domain: Option<String>,
    pub(crate) access: AccessDb,
    pub(crate) delay_checks: DelayChecks,
    pub(crate) blacklist_recipients: bool,
    pub(crate) accept_unqualified_senders: bool,
    pub(crate) accept_unresolvable_domains: bool,
    pub(crate) greet_pause: u64,
    pub(crate) hostname: String,
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

/// `"a@b"` → `a@b` (Sendmail's `dequote` map: quotes and backslashes go).
fn dequote(local: &str) -> String {
    let Some(inner) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
        return local.to_string();
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// The `$=O` operators: characters that route inside a local part.
fn has_route_operator(local: &str) -> bool {
    local.contains(['@', '%', '!'])
}

/// A local part that routes elsewhere, as an address (ruleset 3): the last
/// `%` becomes `@` (`user%site` → `user@site`), and a bang path names its
/// first host (`site!user` → `user@site`).
fn focus(local: &str) -> String {
    if local.contains('@') {
        return local.to_string();
    }
    if let Some((user, site)) = local.rsplit_once('%') {
        return format!("{user}@{site}");
    }
    if let Some((site, user)) = local.split_once('!') {
        return format!("{user}@{site}");
    }
    local.to_string()
}

/// A source route `@a,@b:user@c` → `user@c`. Sendmail strips the route and
/// goes by the final mailbox (RFC 5321 appendix C lets a server do so): so
/// `<@ourdomain:user@elsewhere>` is relaying, and `<@elsewhere:user@ourdomain>`
/// is mail for our domain (real Sendmail 8.17 delivers it there).
fn strip_route(addr: &str) -> Option<String> {
    let rest = addr.strip_prefix('@')?;
    let (_route, mailbox) = rest.split_once(':')?;
    Some(mailbox.to_string())
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
        let entire_domain = if p.relay_entire_domain { p.our_domain() } else { None };
        if let Some(m) = &entire_domain {
            if !m.contains('.') {
                // [L] MAPS note: a two-label host name makes "our domain" a TLD.
                tracing::warn!(
                    "relay_entire_domain: our domain is {m:?}, a top-level domain: this relays for all of it"
                );
            }
        }
        Ok(RelayPolicy {
            local_names,
            relay_domains,
            relay_prefixes,
            hosts_only: p.relay_hosts_only,
            promiscuous: p.promiscuous_relay,
            entire_domain,
            access: p.access_db()?,
            delay_checks: p.delay_checks,
            blacklist_recipients: p.blacklist_recipients,
            accept_unqualified_senders: p.accept_unqualified_senders,
            accept_unresolvable_domains: p.accept_unresolvable_domains,
            greet_pause: p.greet_pause,
            hostname: norm(&p.hostname),
        })
    }

    /// The relay's own address: `user@[ip]` is local (class `$=w` holds
    /// `[ip]` for each of the host's addresses).
    pub fn with_own_address(mut self, ip: IpAddr) -> RelayPolicy {
        self.local_names.push(format!("[{ip}]"));
        self
    }

    /// Whether `domain` is one of this host's own names.
    pub fn is_local(&self, domain: &str) -> bool {
        let d = norm(domain);
        self.local_names.contains(&d)
    }

    /// The access database.
    pub fn access(&self) -> &AccessDb {
        &self.access
    }

    /// A relay_domains domain (or `$m`) that `domain` is, or is below.
    fn relay_domain(&self, domain: &str) -> Option<String> {
        let below = |r: &str| {
            domain.len() > r.len() && domain.ends_with(r) && domain.as_bytes()[domain.len() - r.len() - 1] == b'.'
        };
        for r in &self.relay_domains {
            if domain == r || (!self.hosts_only && below(r)) {
                return Some(r.clone());
            }
        }
        // relay_entire_domain: `$* $=m`, always with subdomains.
        let m = self.entire_domain.as_deref()?;
        (domain == m || below(m)).then(|| m.to_string())
    }

    /// Why mail for `domain` may be relayed, if it may.
    fn relay_to(&self, domain: &str) -> Option<String> {
        self.relay_domain(domain).or_else(|| self.access.relay_to(domain, self.hosts_only).map(|k| format!("To:{k}")))
    }

    /// `ParseRecipient`: strip our names and relayable domains off a local
    /// part that routes further, until the real destination shows.
    pub fn real_destination(&self, rcpt: &str) -> String {
        let mut addr = rcpt.trim().to_string();
        if let Some(p) = strip_route(&addr) {
            addr = p;
        }
        for _ in 0..16 {
            let Some((local, domain)) = addr.rsplit_once('@') else { break };
            let local = dequote(local);
            let domain = norm(domain);
            let ours = self.is_local(&domain) || self.relay_to(&domain).is_some();
            if !(ours && has_route_operator(&local)) {
                break;
            }
            addr = focus(&local);
        }
        addr
    }

    /// Why the client may relay anywhere, if it may (`Relay_ok`).
    fn client_may_relay(&self, client: IpAddr, name: Option<&str>) -> Option<String> {
        if self.promiscuous {
            return Some("promiscuous_relay".into());
        }
        let v4 = match client {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        };
        if let Some(v4) = v4 {
            for p in &self.relay_prefixes {
                if v4.octets().starts_with(p) {
                    return Some(RelayEntry::IpPrefix(p.clone()).to_string());
                }
            }
        }
        if self.access.client_address(client) == Some(&AccessAction::Relay) {
            return Some(format!("Connect:{client}"));
        }
        if self.is_local(&format!("[{client}]")) {
            return Some(format!("[{client}]"));
        }
        let name = norm(name?);
        if self.is_local(&name) {
            return Some(name);
        }
        if let Some(m) = &self.entire_domain {
            if name == *m || name.ends_with(&format!(".{m}")) {
                return Some(m.clone());
            }
        }
        (self.access.client_name(&name) == Some(&AccessAction::Relay)).then(|| format!("Connect:{name}"))
    }

    /// Decide on recipient `rcpt` (brackets stripped) from a client at lab address `client`.
    pub fn check_rcpt(&self, rcpt: &str, client: IpAddr) -> RcptVerdict {
        self.check_rcpt_from(rcpt, client, None)
    }

    /// Decide on `rcpt` from a client at `client` whose PTR name is `name`.
    pub fn check_rcpt_from(&self, rcpt: &str, client: IpAddr, name: Option<&str>) -> RcptVerdict {
        let dest = self.real_destination(rcpt);
        let Some(domain) = domain_of(&dest) else {
            return RcptVerdict::Unqualified;
        };
        if self.is_local(&domain) {
            return RcptVerdict::Local;
        }
        if let Some(why) = self.relay_to(&domain) {
            return RcptVerdict::RelayTo(why);
        }
        match self.client_may_relay(client, name) {
            Some(why) => RcptVerdict::RelayFrom(why),
            None => RcptVerdict::Denied,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_with(domains: &[&str], f: impl FnOnce(&mut RelayProfile)) -> RelayPolicy {
        let mut p = RelayProfile::new("external.sysiphus.com");
        p.local_host_names = vec!["mail.sysiphus.com".into()];
        p.relay_domains = domains.iter().map(|s| s.to_string()).collect();
        f(&mut p);
        RelayPolicy::from_profile(&p).unwrap().with_own_address("198.51.100.25".parse().unwrap())
    }

    fn policy(domains: &[&str]) -> RelayPolicy {
        policy_with(domains, |_| {})
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
        assert_eq!(p.check_rcpt("root@[198.51.100.25]", c), RcptVerdict::Local);
        assert_eq!(p.check_rcpt("root@[198.51.100.26]", c), RcptVerdict::Denied);
        assert_eq!(p.check_rcpt("root", c), RcptVerdict::Unqualified);
        assert_eq!(p.check_rcpt("root@", c), RcptVerdict::Unqualified);
    }

    #[test]
    fn relay_tricks_are_rechecked_as_their_real_destination() {
        let p = policy(&["sysiphus.com"]);
        let c = ip("203.0.113.66");
        for trick in [
            "victim%elsewhere.com@sysiphus.com",
            "victim%elsewhere.com@external.sysiphus.com",
            "victim%elsewhere.com@[198.51.100.25]",
            "elsewhere.com!victim@sysiphus.com",
            "@sysiphus.com:victim@elsewhere.com",
            "@external.sysiphus.com,@sysiphus.com:victim@elsewhere.com",
            "\"victim@elsewhere.com\"@sysiphus.com",
            "\"victim%elsewhere.com\"@sysiphus.com",
            "victim%elsewhere.com%sysiphus.com@sysiphus.com",
            "victim@sysiphus.com@elsewhere.com",
        ] {
            assert_eq!(p.check_rcpt(trick, c), RcptVerdict::Denied, "{trick}");
        }
        assert_eq!(p.real_destination("victim%elsewhere.com@sysiphus.com"), "victim@elsewhere.com");
        assert_eq!(p.real_destination("elsewhere.com!victim@sysiphus.com"), "victim@elsewhere.com");
        assert_eq!(p.real_destination("@sysiphus.com:victim@elsewhere.com"), "victim@elsewhere.com");
        // A route through someone else's host to our domain is mail for us.
        assert_eq!(p.real_destination("@elsewhere.com:john@sysiphus.com"), "john@sysiphus.com");
        assert_eq!(p.check_rcpt("@elsewhere.com:john@sysiphus.com", c), RcptVerdict::RelayTo("sysiphus.com".into()));
        // A hidden destination that is ours is fine.
        assert_eq!(p.check_rcpt("john%eng.sysiphus.com@sysiphus.com", c), RcptVerdict::RelayTo("sysiphus.com".into()));
        // Not our host: nothing is stripped, the outer domain decides.
        assert_eq!(p.real_destination("a%b@elsewhere.com"), "a%b@elsewhere.com");
        // A client that may relay may use them all.
        let inside = policy(&["sysiphus.com", "10.1.1"]);
        assert!(inside.check_rcpt("victim%elsewhere.com@sysiphus.com", ip("10.1.1.9")).relays());
    }

    #[test]
    fn relay_hosts_only_matches_exact_names() {
        let p = policy_with(&["other.com"], |p| {
            p.relay_hosts_only = true;
            p.access = vec!["To:friend.example RELAY".into()];
        });
        let c = ip("203.0.113.66");
        assert!(p.check_rcpt("a@other.com", c).relays());
        assert_eq!(p.check_rcpt("a@sub.other.com", c), RcptVerdict::Denied);
        assert!(p.check_rcpt("a@friend.example", c).relays());
        assert_eq!(p.check_rcpt("a@sub.friend.example", c), RcptVerdict::Denied);
    }

    #[test]
    fn access_relay_entries() {
        let p = policy_with(&[], |p| {
            p.access = vec![
                "To:friend.domain RELAY".into(),
                "192.168.2 RELAY".into(),
                "Connect:gw.partner.example RELAY".into(),
                "Connect:10.9 OK".into(),
            ]
        });
        let c = ip("203.0.113.66");
        assert_eq!(p.check_rcpt("x@mx.friend.domain", c), RcptVerdict::RelayTo("To:friend.domain".into()));
        assert_eq!(
            p.check_rcpt("x@deer-run.com", ip("192.168.2.5")),
            RcptVerdict::RelayFrom("Connect:192.168.2.5".into())
        );
        assert_eq!(
            p.check_rcpt_from("x@deer-run.com", c, Some("gw.partner.example")),
            RcptVerdict::RelayFrom("Connect:gw.partner.example".into())
        );
        // OK accepts a client but grants no relaying.
        assert_eq!(p.check_rcpt("x@deer-run.com", ip("10.9.1.1")), RcptVerdict::Denied);
    }

    #[test]
    fn promiscuous_and_entire_domain() {
        let p = policy_with(&[], |p| p.promiscuous_relay = true);
        assert_eq!(
            p.check_rcpt("x@deer-run.com", ip("203.0.113.66")),
            RcptVerdict::RelayFrom("promiscuous_relay".into())
        );
        assert_eq!(p.check_rcpt("root@external.sysiphus.com", ip("203.0.113.66")), RcptVerdict::Local);
        let p = policy_with(&[], |p| p.relay_entire_domain = true);
        let c = ip("203.0.113.66");
        assert_eq!(p.check_rcpt("x@eng.sysiphus.com", c), RcptVerdict::RelayTo("sysiphus.com".into()));
        assert_eq!(p.check_rcpt("x@deer-run.com", c), RcptVerdict::Denied);
        assert_eq!(
            p.check_rcpt_from("x@deer-run.com", c, Some("ws7.sysiphus.com")),
            RcptVerdict::RelayFrom("sysiphus.com".into())
        );
        assert_eq!(p.check_rcpt_from("x@deer-run.com", c, Some("sysiphus.com.evil.example")), RcptVerdict::Denied);
    }
}
