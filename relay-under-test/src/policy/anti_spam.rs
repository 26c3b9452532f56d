//! Anti-spam decisions (spec §4.7, §9.3, §9.5): DNSBL query names and
//! refusals, the greylist's triplet store, compiled header checks.
//!
//! Talks to nothing: the server does the DNS lookups and hands the answers
//! over; the greylist compares times read from the lab clock, so virtual
//! time (`advance:` steps) moves it.

use crate::intake;
use crate::policy::Refusal;
use crate::profile::anti_spam::{split_code, DnsblZone, Greylist, HeaderCheck, WhiteEntry};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// `4.3.2.1.bl.spamcop.net` for client `1.2.3.4` (`dnsbl.m4`); `None` for IPv6.
pub fn dnsbl_query(ip: IpAddr, zone: &str) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(format!("{}.{}.{}.{}.{}", o[3], o[2], o[1], o[0], zone.trim_end_matches('.').to_ascii_lowercase()))
        }
        IpAddr::V6(_) => None,
    }
}

/// What one zone said about the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsblAnswer {
    /// An A record: listed.
    Listed,
    /// NXDOMAIN or no record: not listed.
    NotListed,
    /// SERVFAIL, timeout: unknown.
    TempFail,
}

/// The refusal for a client `ip` listed in `z` (`dnsbl.m4` 8.13): the
/// configured text, else `550 5.7.1 Rejected: <ip> listed at <zone>`.
pub fn dnsbl_listed(z: &DnsblZone, ip: IpAddr) -> Refusal {
    let zone = z.zone.trim_end_matches('.');
    let Some(message) = &z.message else {
        return Refusal { code: 550, dsn: "5.7.1".into(), text: format!("Rejected: {ip} listed at {zone}") };
    };
    let message = message.replace("$&{client_addr}", &ip.to_string());
    match split_code(&message) {
        Some((code, rest)) => {
            let (dsn, text) = match rest.split_once(' ') {
                Some((d, t)) if is_dsn(d) => (d.to_string(), t.to_string()),
                _ => (format!("{}.7.1", code / 100), rest.to_string()),
            };
            Refusal { code, dsn, text }
        }
        // A text without a code: `553 5.3.0 <text>` (spec §9.3, D5).
        None => Refusal { code: 553, dsn: "5.3.0".into(), text: message.trim().to_string() },
    }
}

fn is_dsn(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The `t` flag's refusal: `451 4.7.1 Temporary lookup failure of <ip> at <zone>`.
pub fn dnsbl_tempfail(z: &DnsblZone, ip: IpAddr) -> Refusal {
    Refusal {
        code: 451,
        dsn: "4.7.1".into(),
        text: format!("Temporary lookup failure of {ip} at {}", z.zone.trim_end_matches('.')),
    }
}

/// The verdict over every zone's answer, in the profile's order: the first
/// listing refuses; a temporary failure refuses only with `t`.
pub fn dnsbl_verdict(zones: &[DnsblZone], answers: &[DnsblAnswer], ip: IpAddr) -> Option<Refusal> {
    for (z, a) in zones.iter().zip(answers) {
        match a {
            DnsblAnswer::Listed => return Some(dnsbl_listed(z, ip)),
            DnsblAnswer::TempFail if z.t => return Some(dnsbl_tempfail(z, ip)),
            _ => {}
        }
    }
    None
}

/// The milter-greylist reply to an unknown triplet.
pub const GREYLIST_REPLY: &str = "4.7.1 Greylisting in action, please come back later";

/// What the greylist decided for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GreyVerdict {
    /// Whitelisted or auto-whitelisted: pass, nothing logged.
    Pass,
    /// Known for at least the delay: pass; it was delayed this long.
    PassedAfter(Duration),
    /// Unknown or too young: `451 4.7.1 Greylisting in action, ...`.
    Defer,
}

#[derive(Debug, Default)]
struct GreyState {
    /// Triplet (client key, sender, recipient) → first seen.
    tuples: HashMap<(String, String, String), DateTime<Utc>>,
    /// Client key → auto-whitelisted until.
    white: HashMap<String, DateTime<Utc>>,
}

/// The greylist's store, shared by every session of one relay.
#[derive(Debug)]
pub struct GreylistDb {
    cfg: Greylist,
    whitelist: Vec<WhiteEntry>,
    state: Mutex<GreyState>,
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn addr_matches(entry: &WhiteEntry, addr: &str) -> bool {
    let addr = addr.to_ascii_lowercase();
    match entry {
        WhiteEntry::Address(a) => *a == addr,
        WhiteEntry::Domain(d) => {
            addr.rsplit_once('@').is_some_and(|(_, dom)| dom == d || dom.ends_with(&format!(".{d}")))
        }
        WhiteEntry::Net(..) => false,
    }
}

impl GreylistDb {
    /// The store for `cfg` (already validated).
    pub fn new(cfg: &Greylist) -> GreylistDb {
        GreylistDb {
            whitelist: cfg.whitelist.iter().filter_map(|w| WhiteEntry::parse(w).ok()).collect(),
            cfg: cfg.clone(),
            state: Mutex::new(GreyState::default()),
        }
    }

    /// The client part of the triplet: the address, or its /24.
    pub fn client_key(&self, ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(v4) if self.cfg.netmask == 24 => {
                let o = v4.octets();
                format!("{}.{}.{}.0/24", o[0], o[1], o[2])
            }
            _ => ip.to_string(),
        }
    }

    fn whitelisted(&self, ip: IpAddr, sender: &str, rcpt: &str) -> bool {
        self.whitelist.iter().any(|w| match w {
            WhiteEntry::Net(n, bits) => in_net(ip, *n, *bits),
            other => addr_matches(other, sender) || addr_matches(other, rcpt),
        })
    }

    /// Look the triplet up at `now`, recording it when new.
    pub fn check(&self, ip: IpAddr, sender: &str, rcpt: &str, now: DateTime<Utc>) -> GreyVerdict {
        if self.whitelisted(ip, sender, rcpt) {
            return GreyVerdict::Pass;
        }
        let client = self.client_key(ip);
        let mut st = self.state.lock().unwrap();
        if st.white.get(&client).is_some_and(|until| now < *until) {
            return GreyVerdict::Pass;
        }
        let key = (client.clone(), sender.to_ascii_lowercase(), rcpt.to_ascii_lowercase());
        let first = *st.tuples.entry(key.clone()).or_insert(now);
        let waited = (now - first).to_std().unwrap_or_default();
        if waited < self.cfg.delay {
            return GreyVerdict::Defer;
        }
        st.tuples.remove(&key);
        if !self.cfg.autowhite.is_zero() {
            let until = now + chrono::Duration::from_std(self.cfg.autowhite).unwrap_or(chrono::Duration::MAX);
            st.white.insert(client, until);
        }
        GreyVerdict::PassedAfter(waited)
    }
}

/// `HH:MM:SS`, as milter-greylist prints delays.
pub fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `header_checks`, compiled.
#[derive(Debug, Clone, Default)]
pub struct HeaderRules {
    rules: Vec<(HeaderCheck, regex::Regex)>,
}

/// A header check that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderHit {
    /// The ruleset name logged: `check_` and the header name in lower case
    /// (`check_subject`).
    pub ruleset: String,
    /// The header's value.
    pub value: String,
    /// The reply code.
    pub code: u16,
    /// The reply text after the code.
    pub text: String,
}

impl HeaderRules {
    /// Compile (patterns already validated; a bad one is skipped).
    pub fn new(checks: &[HeaderCheck]) -> HeaderRules {
        HeaderRules {
            rules: checks.iter().filter_map(|c| regex::Regex::new(&c.pattern).ok().map(|r| (c.clone(), r))).collect(),
        }
    }

    /// The first rule (in profile order) matching a header of `raw`.
    pub fn check(&self, raw: &[u8]) -> Option<HeaderHit> {
        if self.rules.is_empty() {
            return None;
        }
        let block = intake::header_block(raw);
        for (rule, re) in &self.rules {
            for h in block.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(&rule.header)) {
                if re.is_match(&h.value) {
                    let (code, text) = split_code(&rule.reply).unwrap_or((553, rule.reply.as_str()));
                    return Some(HeaderHit {
                        ruleset: format!("check_{}", rule.header.to_ascii_lowercase().replace('-', "_")),
                        value: h.value.clone(),
                        code,
                        text: text.to_string(),
                    });
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(y: &str) -> DnsblZone {
        serde_yaml::from_str(y).unwrap()
    }

    #[test]
    fn dnsbl_names_and_texts() {
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        assert_eq!(dnsbl_query(ip, "bl.spamcop.net.").unwrap(), "4.3.2.1.bl.spamcop.net");
        let z = zone("zone: bl.spamcop.net");
        assert_eq!(dnsbl_listed(&z, ip).line(None), "550 5.7.1 Rejected: 1.2.3.4 listed at bl.spamcop.net");
        assert_eq!(
            dnsbl_tempfail(&z, ip).line(None),
            "451 4.7.1 Temporary lookup failure of 1.2.3.4 at bl.spamcop.net"
        );
        let z = zone("{ zone: x.org, message: \"550 Rejected- see http://x.org/$&{client_addr}\" }");
        assert_eq!(dnsbl_listed(&z, ip).line(None), "550 5.7.1 Rejected- see http://x.org/1.2.3.4");
        let z = zone("{ zone: x.org, message: \"Rejected- see http://x.org/\" }");
        assert_eq!(dnsbl_listed(&z, ip).line(None), "553 5.3.0 Rejected- see http://x.org/");
        let zs = [zone("zone: a.org"), zone("{ zone: b.org, t: true }")];
        assert_eq!(dnsbl_verdict(&zs, &[DnsblAnswer::TempFail, DnsblAnswer::NotListed], ip), None);
        assert_eq!(dnsbl_verdict(&zs, &[DnsblAnswer::NotListed, DnsblAnswer::TempFail], ip).unwrap().code, 451);
    }

    #[test]
    fn greylist_triplets() {
        let g: Greylist =
            serde_yaml::from_str("{ delay: 30m, autowhite: 1d, netmask: 24, whitelist: [lists@example.org] }").unwrap();
        let db = GreylistDb::new(&g);
        let t0 = chrono::Utc::now();
        let ip: IpAddr = "203.0.113.45".parse().unwrap();
        let other: IpAddr = "203.0.113.46".parse().unwrap();
        assert_eq!(db.check(ip, "a@x.net", "j@s.com", t0), GreyVerdict::Defer);
        assert_eq!(db.check(ip, "a@x.net", "j@s.com", t0 + chrono::Duration::minutes(29)), GreyVerdict::Defer);
        // Same /24: the retry from another farm member matches.
        assert_eq!(
            db.check(other, "a@x.net", "j@s.com", t0 + chrono::Duration::minutes(31)),
            GreyVerdict::PassedAfter(Duration::from_secs(31 * 60))
        );
        // Auto-whitelisted: a new triplet passes at once.
        assert_eq!(db.check(ip, "b@x.net", "k@s.com", t0 + chrono::Duration::minutes(32)), GreyVerdict::Pass);
        assert_eq!(db.check(ip, "b@x.net", "k@s.com", t0 + chrono::Duration::days(2)), GreyVerdict::Defer);
        assert_eq!(db.check("198.51.100.1".parse().unwrap(), "lists@example.org", "j@s.com", t0), GreyVerdict::Pass);
        assert_eq!(hms(Duration::from_secs(3723)), "01:02:03");
    }
}
