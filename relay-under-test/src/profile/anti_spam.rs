//! Anti-spam settings of the profile (spec §8.3, §9.3, §9.5, §4.7):
//!
//! - `dnsbl`: `FEATURE(dnsbl)` zones, each with an optional reply text and
//!   the `t` flag (temporary lookup failures refuse with 451);
//! - `greylist`: milter-greylist style greylisting of the (client, sender,
//!   recipient) triplet;
//! - `connection_rate_throttle`, `max_daemon_children`,
//!   `max_rcpts_per_message`, `max_message_size`: the tuning options
//!   `ConnectionRateThrottle`, `MaxDaemonChildren`, `MaxRecipientsPerMessage`,
//!   `MaxMessageSize` (0: off);
//! - `header_checks`: header name + pattern → refusal at end of DATA, in the
//!   spirit of the PLM `HSubject:` rulesets.

use super::{check_domain, RelayProfile};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::net::IpAddr;
use std::time::Duration;

/// One `FEATURE(dnsbl, zone, message, t)` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsblZone {
    /// The list's zone (`bl.spamcop.net`); required (spec D8).
    pub zone: String,
    /// The refusal text. With a leading code (`550 Rejected- see ...`) it is
    /// the reply (status 5.7.1 inserted unless given); without one Sendmail
    /// 8.13 sends `553 5.3.0 <text>` (spec D5). `$&{client_addr}` becomes
    /// the client's address. Unset: `550 5.7.1 Rejected: <ip> listed at <zone>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The `t` argument: a temporary lookup failure refuses with
    /// `451 4.7.1 Temporary lookup failure of <ip> at <zone>` instead of
    /// being ignored.
    #[serde(default, alias = "tempfail")]
    pub t: bool,
}

/// milter-greylist style greylisting (spec §9.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Greylist {
    /// How long a new triplet is deferred (`30m`; milter-greylist's default).
    #[serde(default = "default_grey_delay", deserialize_with = "de_dur", serialize_with = "ser_dur")]
    pub delay: Duration,
    /// How long a client that passed stays auto-whitelisted (`3d`; `0s`: never).
    #[serde(default = "default_autowhite", deserialize_with = "de_dur", serialize_with = "ser_dur")]
    pub autowhite: Duration,
    /// 32: the client's address is part of the triplet; 24: only its /24
    /// (server farms, spec §9.5).
    #[serde(default = "default_netmask")]
    pub netmask: u8,
    /// Never greylisted: client addresses, networks (`192.0.2.0/24`), sender
    /// or recipient addresses (`lists@example.org`) and domains (`example.org`).
    #[serde(default)]
    pub whitelist: Vec<String>,
}

fn default_grey_delay() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_autowhite() -> Duration {
    Duration::from_secs(3 * 24 * 3600)
}
fn default_netmask() -> u8 {
    32
}

fn de_dur<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("\"{s}\" is not a duration like \"30m\" or \"3d\": {e}")))
}

fn ser_dur<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// One header check: refuse at end of DATA when a header matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderCheck {
    /// The header's name (`Subject`), any case.
    pub header: String,
    /// A regular expression matched against the header's unfolded value.
    #[serde(rename = "match")]
    pub pattern: String,
    /// The reply, code first: `553 Delivery blocked; HSubject: indicates unsolicited commercial email.`
    pub reply: String,
}

/// A whitelist entry, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhiteEntry {
    /// A network (`addr/bits`; a lone address is /32).
    Net(IpAddr, u8),
    /// An address (`user@domain`), lower case.
    Address(String),
    /// A domain and its subdomains, lower case.
    Domain(String),
}

impl WhiteEntry {
    /// Parse one entry.
    pub fn parse(s: &str) -> Result<WhiteEntry, String> {
        let t = s.trim();
        let (addr, bits) = match t.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (t, None),
        };
        if let Ok(ip) = addr.parse::<IpAddr>() {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits =
                match bits {
                    None => max,
                    Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| {
                        format!("the prefix length must be 0..{max}; write a network as 192.0.2.0/24")
                    })?,
                };
            return Ok(WhiteEntry::Net(ip, bits));
        }
        if bits.is_some() {
            return Err("only an IP network takes a /prefix; write a network as 192.0.2.0/24".into());
        }
        if let Some((local, domain)) = t.split_once('@') {
            if local.is_empty() || check_domain(domain).is_err() {
                return Err("not an address like lists@example.org".into());
            }
            return Ok(WhiteEntry::Address(t.to_ascii_lowercase()));
        }
        check_domain(t.trim_end_matches('.'))
            .map_err(|why| format!("not an IP address, network, mail address or domain: {why}"))?;
        Ok(WhiteEntry::Domain(t.trim_end_matches('.').to_ascii_lowercase()))
    }
}

/// Why an anti-spam key was refused. Each message quotes the offending value first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AntiSpamError {
    /// A `dnsbl` zone is empty or not a domain.
    #[error("\"{value}\" is not a DNSBL zone ({why}); give the list's zone explicitly, e.g. zone: bl.spamcop.net (there is no default zone)")]
    DnsblZone {
        /// What was given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A `dnsbl` message is empty or has a line break.
    #[error("\"{value}\" is not a DNSBL message: it must be one non-empty line, e.g. \"550 Rejected- see http://spamcop.net/\"")]
    DnsblMessage {
        /// What was given.
        value: String,
    },
    /// `greylist.delay` is zero.
    #[error("\"{value}\" is not a greylist delay: it must be longer than zero, e.g. \"30m\"")]
    GreylistDelay {
        /// What was given.
        value: String,
    },
    /// `greylist.netmask` is neither 24 nor 32.
    #[error("\"{value}\" is not a greylist netmask: use 32 (the client's address) or 24 (its /24, for server farms)")]
    GreylistNetmask {
        /// What was given.
        value: String,
    },
    /// A `greylist.whitelist` entry is malformed.
    #[error("\"{value}\" is not a greylist whitelist entry: {why}")]
    GreylistWhitelist {
        /// What was given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A `header_checks` header name is not a header field name.
    #[error("\"{value}\" is not a header name: give it without the colon, e.g. header: Subject")]
    HeaderName {
        /// What was given.
        value: String,
    },
    /// A `header_checks` pattern is not a regular expression.
    #[error("\"{value}\" is not a regular expression: {why}")]
    HeaderPattern {
        /// What was given.
        value: String,
        /// The regex error.
        why: String,
    },
    /// A `header_checks` reply lacks a 4xx/5xx code.
    #[error("\"{value}\" is not a refusal reply: start it with a 4xx or 5xx code, e.g. \"553 Delivery blocked; HSubject: indicates unsolicited commercial email.\"")]
    HeaderReply {
        /// What was given.
        value: String,
    },
}

/// The 3-digit 4xx/5xx code at the start of `s`, and the rest.
pub fn split_code(s: &str) -> Option<(u16, &str)> {
    let code = s.get(..3)?;
    let rest = &s[3..];
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let n: u16 = code.parse().ok()?;
    (400..600).contains(&n).then_some((n, rest.trim_start()))
}

impl RelayProfile {
    /// Check `dnsbl`, `greylist` and `header_checks`.
    pub fn validate_anti_spam(&self) -> Result<(), AntiSpamError> {
        for z in &self.dnsbl {
            let name = z.zone.trim().trim_end_matches('.');
            if name.is_empty() {
                return Err(AntiSpamError::DnsblZone { value: z.zone.clone(), why: "empty".into() });
            }
            check_domain(name).map_err(|why| AntiSpamError::DnsblZone { value: z.zone.clone(), why })?;
            if let Some(m) = &z.message {
                if m.trim().is_empty() || m.contains(['\r', '\n']) {
                    return Err(AntiSpamError::DnsblMessage { value: m.clone() });
                }
            }
        }
        if let Some(g) = &self.greylist {
            if g.delay.is_zero() {
                return Err(AntiSpamError::GreylistDelay { value: humantime::format_duration(g.delay).to_string() });
            }
            if g.netmask != 24 && g.netmask != 32 {
                return Err(AntiSpamError::GreylistNetmask { value: g.netmask.to_string() });
            }
            for w in &g.whitelist {
                WhiteEntry::parse(w).map_err(|why| AntiSpamError::GreylistWhitelist { value: w.clone(), why })?;
            }
        }
        for h in &self.header_checks {
            if h.header.is_empty() || !h.header.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(AntiSpamError::HeaderName { value: h.header.clone() });
            }
            regex::Regex::new(&h.pattern)
                .map_err(|e| AntiSpamError::HeaderPattern { value: h.pattern.clone(), why: e.to_string() })?;
            if split_code(&h.reply).is_none_or(|(_, rest)| rest.is_empty()) || h.reply.contains(['\r', '\n']) {
                return Err(AntiSpamError::HeaderReply { value: h.reply.clone() });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(y: &str) -> RelayProfile {
        serde_yaml::from_str(&format!("hostname: ext.sysiphus.com\n{y}")).unwrap()
    }

    #[test]
    fn parses_every_key() {
        let p = profile(
            "dnsbl:\n  - zone: bl.spamcop.net\n  - { zone: dnsbl.njabl.org, message: \"550 Rejected- see http://njabl.org/\", t: true }\n\
             greylist: { delay: 30m, autowhite: 30d, netmask: 24, whitelist: [192.0.2.0/24, lists@example.org, example.com] }\n\
             connection_rate_throttle: 5\nmax_daemon_children: 24\nmax_rcpts_per_message: 25\nmax_message_size: 1000000\n\
             header_checks:\n  - { header: Subject, match: \"^ADV ?:\", reply: \"553 Delivery blocked; HSubject: indicates unsolicited commercial email.\" }\n",
        );
        p.validate().unwrap();
        assert_eq!(p.dnsbl.len(), 2);
        assert!(p.dnsbl[1].t && !p.dnsbl[0].t);
        let g = p.greylist.as_ref().unwrap();
        assert_eq!((g.delay, g.netmask), (Duration::from_secs(1800), 24));
        assert_eq!(WhiteEntry::parse("192.0.2.0/24").unwrap(), WhiteEntry::Net("192.0.2.0".parse().unwrap(), 24));
        assert_eq!((p.connection_rate_throttle, p.max_daemon_children), (5, 24));
        assert_eq!((p.max_rcpts_per_message, p.max_message_size), (25, 1_000_000));
    }

    #[test]
    fn bad_values_are_quoted_with_a_hint() {
        for (y, start, hint) in [
            ("dnsbl: [{ zone: \"\" }]", "\"\" is not a DNSBL zone", "no default zone"),
            ("dnsbl: [{ zone: \"bad zone\" }]", "\"bad zone\" is not a DNSBL zone", "bl.spamcop.net"),
            ("dnsbl: [{ zone: a.b, message: \"\" }]", "\"\" is not a DNSBL message", "one non-empty line"),
            ("greylist: { delay: 0s }", "\"0s\" is not a greylist delay", "30m"),
            ("greylist: { netmask: 16 }", "\"16\" is not a greylist netmask", "/24"),
            ("greylist: { whitelist: [\"10.0.0.0/40\"] }", "\"10.0.0.0/40\" is not a greylist whitelist", "0..32"),
            (
                "header_checks: [{ header: \"Subject:\", match: x, reply: \"553 no\" }]",
                "\"Subject:\" is not a header",
                "colon",
            ),
            (
                "header_checks: [{ header: Subject, match: \"(\", reply: \"553 no\" }]",
                "\"(\" is not a regular",
                "regex",
            ),
            (
                "header_checks: [{ header: Subject, match: x, reply: \"Delivery blocked\" }]",
                "\"Delivery blocked\" is not a refusal",
                "4xx or 5xx",
            ),
        ] {
            let e = profile(&format!("{y}\n")).validate().unwrap_err().to_string();
            assert!(e.starts_with(start), "{y}: {e}");
            assert!(e.contains(hint), "{y}: {e}");
        }
        // A zone is required; unknown keys are refused.
        assert!(serde_yaml::from_str::<RelayProfile>("hostname: a.b\ndnsbl: [{ message: x }]\n").is_err());
        assert!(serde_yaml::from_str::<RelayProfile>("hostname: a.b\ngreylist: { delay: 1m, delai: 2m }\n").is_err());
    }
}
