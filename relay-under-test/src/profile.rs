//! The relay section of a scenario: what the course would put in a `.mc`
//! file and the `/etc/mail` data files.
//!
//! Talks to nothing: deserialised from scenario YAML, checked by
//! [`RelayProfile::validate`], then read by every other part of the relay.

use crate::dates::{Zone, ZoneError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

mod routing;
pub use routing::RoutingError;

pub mod anti_spam;
pub mod identity;
pub mod queue;
pub mod relay_control;
pub use anti_spam::{AntiSpamError, DnsblZone, Greylist, HeaderCheck};
pub use identity::{IdentityError, Privacy, PrivacyFlag};
pub use queue::QueueError;
pub use relay_control::DelayChecks;

/// The relay's configuration, in the course's vocabulary.
///
/// ```yaml
/// hostname: external.sysiphus.com
/// relay_domains: [sysiphus.com, 192.168.2]
/// timezone: "-0800 PST"
/// max_hop_count: 50
/// smtp_timeout: 30s
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayProfile {
    /// `$j`: the relay's canonical name, shown in the greeting, `Received:`,
    /// `Message-Id:` and QUIT reply (e.g. `external.sysiphus.com`).
    pub hostname: String,
    /// `local-host-names` (class `$=w`): further names this host treats as
    /// local. On an external relay it stays empty (spec §3.6).
    #[serde(default)]
    pub local_host_names: Vec<String>,
    /// `relay-domains` (class `{R}`): domains we accept mail for (each with
    /// all its subdomains, Sendmail 8.9+), and octet-aligned IP prefixes
    /// (`10.1.1`, `192.168.2`) of clients allowed to relay (spec §3.6, §4.1).
    #[serde(default)]
    pub relay_domains: Vec<String>,
    /// `FEATURE(relay_hosts_only)`: a relay_domains name matches only that
    /// exact host, not its subdomains (the course's description, spec D2).
    #[serde(default)]
    pub relay_hosts_only: bool,
    /// `$v/$Z`: binary and cf version, shown in the greeting and `Received:`.
    #[serde(default = "default_version")]
    pub version: String,
    /// The daemon's `Name=` (`DaemonPortOptions`), logged as `daemon=`.
    #[serde(default = "default_daemon_name")]
    pub daemon_name: String,
    /// The syslog tag (`-L sm-mta`).
    #[serde(default = "default_log_tag")]
    pub log_tag: String,
    /// The relay's time zone as a UTC offset, optionally with a zone name for
    /// the date comment: `"-0800"`, `"-0800 PST"`. Dates in the banner,
    /// headers and log use it; queue ids and `Message-Id:` stamps are UTC.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// `MaxHopCount` (`confMAX_HOP`): more trace headers than this and the
    /// message is refused (spec §5.6; 8.13 default 25).
    #[serde(default = "default_max_hop_count")]
    pub max_hop_count: u32,
    /// How long outbound delivery waits for each reply of the next hop
    /// (humantime: `30s`, `2m`).
    #[serde(default = "default_smtp_timeout", deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub smtp_timeout: Duration,

    // Routing and addresses (spec §3, §10); checked in profile/routing.rs,
    // documented in docs/relay-profile.md. Tables take a list of lines or
    // one block of text.
    /// `FEATURE(mailertable)`: `domain mailer:host` lines (spec §3.3).
    #[serde(default, deserialize_with = "routing::de_lines")]
    pub mailertable: Vec<String>,
    /// `SMART_HOST`: `[mailer:]host` for non-local mail not in the mailertable (spec §3.4).
    #[serde(default)]
    pub smart_host: Option<String>,
    /// `MAIL_HUB`: `[mailer:]host` that gets mail for local names instead of local delivery (spec §3.4).
    #[serde(default)]
    pub mail_hub: Option<String>,
    /// `LUSER_RELAY`: `[mailer:]host` for local names that are neither alias nor user (spec §3.4).
    #[serde(default)]
    pub luser_relay: Option<String>,
    /// `FEATURE(domaintable)`: `parallel.com canonical.com` lines (spec §3.7).
    #[serde(default, deserialize_with = "routing::de_lines")]
    pub domaintable: Vec<String>,
    /// `FEATURE(virtusertable)`: `user@domain target` and `@domain target` lines (spec §3.8).
    #[serde(default, deserialize_with = "routing::de_lines")]
    pub virtusertable: Vec<String>,
    /// `VIRTUSER_DOMAIN_FILE`: domains routed by the virtusertable, ours for the relay check.
    #[serde(default, deserialize_with = "routing::de_lines")]
    pub virtuser_domains: Vec<String>,
    /// The aliases file: `name: target, target` lines (spec §10.1).
    #[serde(default, deserialize_with = "routing::de_lines")]
    pub aliases: Vec<String>,
    /// Contents of the files `:include:` names, by path (a lab has no filesystem).
    #[serde(default)]
    pub include_files: BTreeMap<String, String>,
    /// The users with a mailbox on this host (the passwd file).
    #[serde(default, deserialize_with = "routing::de_lines")]
    pub local_users: Vec<String>,
    /// `MASQUERADE_AS`: the domain local senders appear to come from (spec §3.5).
    #[serde(default)]
    pub masquerade_as: Option<String>,
    /// `FEATURE(masquerade_envelope)`: masquerade the envelope too.
    #[serde(default)]
    pub masquerade_envelope: bool,
    /// `FEATURE(allmasquerade)`: masquerade recipient addresses too.
    #[serde(default)]
    pub allmasquerade: bool,
    /// `EXPOSED_USER`: users never masqueraded (`root`).
    #[serde(default, deserialize_with = "routing::de_lines")]
    pub exposed_users: Vec<String>,
    /// `FEATURE(accept_unqualified_senders)`: take bare names in MAIL and RCPT,
    /// qualified with `$j` (or masqueraded) on the way out.
    #[serde(default)]
    pub accept_unqualified_senders: bool,

    // Identity (spec §2.2–2.3); checked in profile/identity.rs, documented in
    // docs/relay-profile.md.
    /// `confSMTP_LOGIN_MSG`: the greeting template (`$j Sendmail $v/$Z; $b`
    /// when unset); `ESMTP` is inserted after its first word.
    #[serde(default)]
    pub smtp_login_msg: Option<String>,
    /// `confPRIVACY_FLAGS`: `noexpn`, `novrfy`, `noverb`, `noetrn`,
    /// `noreceipts`, `goaway`, ... (default `authwarnings`).
    #[serde(default = "identity::default_privacy_flags", deserialize_with = "routing::de_lines")]
    pub privacy_flags: Vec<String>,

    // Relay control (spec §3.6, §4, §9.2); checked in profile/relay_control.rs.
    /// `FEATURE(promiscuous_relay)`: relay for anyone (internal relays only).
    #[serde(default)]
    pub promiscuous_relay: bool,
    /// `FEATURE(relay_entire_domain)`: relay to and from the host name's
    /// domain (`$m`, the name without its first label).
    #[serde(default)]
    pub relay_entire_domain: bool,
    /// `FEATURE(access_db)`: the access map's lines (`From:foo.biz REJECT`).
    #[serde(default, deserialize_with = "routing::de_lines")]
    pub access: Vec<String>,
    /// `FEATURE(blacklist_recipients)`: `To:` entries may refuse recipients.
    #[serde(default)]
    pub blacklist_recipients: bool,
    /// `FEATURE(delay_checks)`: `true`, `friend` or `hater` (default off).
    #[serde(default)]
    pub delay_checks: DelayChecks,
    /// `FEATURE(accept_unresolvable_domains)`: take senders whose domain has
    /// neither MX nor A record.
    #[serde(default)]
    pub accept_unresolvable_domains: bool,
    /// `FEATURE(greet_pause)`: milliseconds to wait before the greeting; a
    /// client that talks first gets a null session (0 or unset: no pause).
    #[serde(default)]
    pub greet_pause: u64,

    // Anti-spam (spec §4.7, §8.3, §9.3, §9.5); checked in profile/anti_spam.rs,
    // documented in docs/relay-profile.md ("Anti-spam").
    /// `FEATURE(dnsbl)`: DNS blacklist zones, looked up for each client.
    #[serde(default)]
    pub dnsbl: Vec<DnsblZone>,
    /// milter-greylist style greylisting at RCPT.
    #[serde(default)]
    pub greylist: Option<Greylist>,
    /// `ConnectionRateThrottle`: at most this many new connections accepted
    /// per second; the rest wait (0: off).
    #[serde(default)]
    pub connection_rate_throttle: u32,
    /// `MaxDaemonChildren`: at most this many sessions at once; the daemon
    /// stops accepting while at the limit (0: off).
    #[serde(default)]
    pub max_daemon_children: u32,
    /// `MaxRecipientsPerMessage`: `452 4.5.3 Too many recipients` past it (0: off).
    #[serde(default)]
    pub max_rcpts_per_message: u32,
    /// `MaxMessageSize` in bytes: advertised with SIZE, `552 5.2.3` above it (0: off).
    #[serde(default)]
    pub max_message_size: u64,
    /// Header checks: refuse at end of DATA when a header matches a pattern.
    #[serde(default)]
    pub header_checks: Vec<HeaderCheck>,

    // The queue (spec §7); checked in profile/queue.rs, documented in
    // docs/relay-profile.md and docs/queue.md.
    /// `QUEUE_DIR`: where the queue's `qf`/`df` files live. Default: a fresh
    /// temporary directory for this relay, removed when it stops.
    #[serde(default)]
    pub queue_directory: Option<std::path::PathBuf>,
    /// The daemon's `-q` interval: how often a queue run starts (`1h`).
    #[serde(
        default = "queue::default_queue_interval",
        deserialize_with = "queue::de_duration",
        serialize_with = "queue::ser_duration"
    )]
    pub queue_interval: Duration,
    /// `confMIN_QUEUE_AGE`: a queue run skips messages tried less than this long ago (`0s`).
    #[serde(default, deserialize_with = "queue::de_duration", serialize_with = "queue::ser_duration")]
    pub min_queue_age: Duration,
    /// `confMAX_QUEUE_RUN_SIZE`: at most this many messages per queue run (0: all).
    #[serde(default)]
    pub max_queue_run_size: usize,
    /// `confTO_QUEUEWARN`: warn the sender after this long undelivered (`4h`; `0s`: never).
    #[serde(
        default = "queue::default_queuewarn",
        deserialize_with = "queue::de_duration",
        serialize_with = "queue::ser_duration"
    )]
    pub queuewarn: Duration,
    /// `confTO_QUEUERETURN`: return the message to its sender after this long (`5d`).
    #[serde(
        default = "queue::default_queuereturn",
        deserialize_with = "queue::de_duration",
        serialize_with = "queue::ser_duration"
    )]
    pub queuereturn: Duration,
}

fn default_version() -> String {
    "8.13.4/8.13.4".into()
}
fn default_daemon_name() -> String {
    "MTA".into()
}
fn default_log_tag() -> String {
    "sm-mta".into()
}
fn default_timezone() -> String {
    "+0000".into()
}
fn default_max_hop_count() -> u32 {
    25
}
fn default_smtp_timeout() -> Duration {
    Duration::from_secs(30)
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration like \"30s\" or \"2m\": {e}")))
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// Why a profile was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// `hostname` is empty or not a domain name.
    #[error("hostname {value:?} is not a host name: {why}; give the relay's fully qualified name, e.g. external.sysiphus.com")]
    Hostname {
        /// What was given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A `local_host_names` entry is not a domain name.
    #[error("local_host_names entry {value:?} is not a host name: {why}")]
    LocalHostName {
        /// What was given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A `relay_domains` entry is neither a domain nor an octet-aligned IP prefix.
    #[error("relay_domains entry {value:?}: {why}")]
    RelayDomain {
        /// What was given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// `timezone` is not a UTC offset.
    #[error(transparent)]
    Timezone(#[from] ZoneError),
    /// A free-text field that ends up in a protocol line holds blanks or control characters.
    #[error("{field} {value:?} must be one word without blanks or control characters (it is written into SMTP replies and log lines)")]
    Word {
        /// Which field.
        field: &'static str,
        /// What was given.
        value: String,
    },
    /// `max_hop_count` is zero.
    #[error("max_hop_count must be at least 1 (Sendmail's default is 25, the course recommends 50)")]
    MaxHopCount,
    /// `smtp_timeout` is zero.
    #[error("smtp_timeout must be longer than zero, e.g. \"30s\"")]
    SmtpTimeout,
    /// A routing or address key (mailertable, aliases, ...) is malformed.
    #[error(transparent)]
    Routing(#[from] RoutingError),
    /// An identity key (`smtp_login_msg`, `privacy_flags`) is malformed.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// An `access` line is malformed.
    #[error(transparent)]
    Access(#[from] crate::policy::access_db::AccessError),
    /// A queue key (`queue_interval`, `queuewarn`, ...) is out of range.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// An anti-spam key (`dnsbl`, `greylist`, `header_checks`) is malformed.
    #[error(transparent)]
    AntiSpam(#[from] AntiSpamError),
}

/// One `relay_domains` entry, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEntry {
    /// A domain (lower case, no trailing dot): recipients there may be relayed to.
    Domain(String),
    /// An octet-aligned IPv4 prefix (`10.1.1` = 10.1.1.0/24): clients there may relay anywhere.
    IpPrefix(Vec<u8>),
}

impl fmt::Display for RelayEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayEntry::Domain(d) => f.write_str(d),
            RelayEntry::IpPrefix(p) => {
                let parts: Vec<String> = p.iter().map(u8::to_string).collect();
                f.write_str(&parts.join("."))
            }
        }
    }
}

impl RelayEntry {
    /// Parse one entry: all-numeric dotted text is an IP prefix, anything else a domain.
    pub fn parse(text: &str) -> Result<RelayEntry, ProfileError> {
        let bad = |why: &str| ProfileError::RelayDomain { value: text.to_string(), why: why.to_string() };
        let t = text.trim();
        if t.is_empty() {
            return Err(bad("empty entry; remove it"));
        }
        if t.contains('/') {
            return Err(bad(
                "relay-domains takes octet-aligned prefixes only (no CIDR); write 10.1.1 for 10.1.1.0/24, or list addresses one by one",
            ));
        }
        if t.contains(':') {
            return Err(bad("IPv6 prefixes are not supported; list IPv4 prefixes such as 192.168.2"));
        }
        if t.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
            let parts: Vec<&str> = t.split('.').collect();
            if parts.len() > 4 {
                return Err(bad("an IP prefix has at most four octets"));
            }
            let mut octets = Vec::with_capacity(parts.len());
            for p in parts {
                match p.parse::<u8>() {
                    Ok(o) => octets.push(o),
                    Err(_) => return Err(bad("each octet of an IP prefix must be 0..255")),
                }
            }
            return Ok(RelayEntry::IpPrefix(octets));
        }
        let d = t.trim_start_matches('.').trim_end_matches('.');
        check_domain(d).map_err(|why| bad(&format!("not a domain or IP prefix: {why}")))?;
        Ok(RelayEntry::Domain(d.to_ascii_lowercase()))
    }
}

/// Check domain-name syntax (RFC 1035 letters, digits, hyphens; labels 1..63).
pub(crate) fn check_domain(d: &str) -> Result<(), String> {
    if d.is_empty() {
        return Err("empty".into());
    }
    if d.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    for label in d.split('.') {
        if label.is_empty() {
            return Err("empty label (two dots in a row)".into());
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} longer than 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(format!("label {label:?} has characters other than letters, digits and '-'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with '-'"));
        }
    }
    Ok(())
}

fn check_word(field: &'static str, value: &str) -> Result<(), ProfileError> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ProfileError::Word { field, value: value.to_string() });
    }
    Ok(())
}

impl RelayProfile {
    /// A profile with every optional field at its default.
    pub fn new(hostname: impl Into<String>) -> RelayProfile {
        RelayProfile {
            hostname: hostname.into(),
            local_host_names: Vec::new(),
            relay_domains: Vec::new(),
            relay_hosts_only: false,
            version: default_version(),
            daemon_name: default_daemon_name(),
            log_tag: default_log_tag(),
            timezone: default_timezone(),
            max_hop_count: default_max_hop_count(),
            smtp_timeout: default_smtp_timeout(),
            mailertable: Vec::new(),
            smart_host: None,
            mail_hub: None,
            luser_relay: None,
            domaintable: Vec::new(),
            virtusertable: Vec::new(),
            virtuser_domains: Vec::new(),
            aliases: Vec::new(),
            include_files: BTreeMap::new(),
            local_users: Vec::new(),
            masquerade_as: None,
            masquerade_envelope: false,
            allmasquerade: false,
            exposed_users: Vec::new(),
            accept_unqualified_senders: false,
            smtp_login_msg: None,
            privacy_flags: identity::default_privacy_flags(),
            promiscuous_relay: false,
            relay_entire_domain: false,
            access: Vec::new(),
            blacklist_recipients: false,
            delay_checks: DelayChecks::Off,
            accept_unresolvable_domains: false,
            greet_pause: 0,
            dnsbl: Vec::new(),
            greylist: None,
            connection_rate_throttle: 0,
            max_daemon_children: 0,
            max_rcpts_per_message: 0,
            max_message_size: 0,
            header_checks: Vec::new(),
            queue_directory: None,
            queue_interval: queue::default_queue_interval(),
            min_queue_age: Duration::ZERO,
            max_queue_run_size: 0,
            queuewarn: queue::default_queuewarn(),
            queuereturn: queue::default_queuereturn(),
        }
    }

    /// Check every field; the first problem found is returned with what to fix.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let h = self.hostname.trim_end_matches('.');
        check_domain(h).map_err(|why| ProfileError::Hostname { value: self.hostname.clone(), why })?;
        for n in &self.local_host_names {
            check_domain(n.trim_end_matches('.'))
                .map_err(|why| ProfileError::LocalHostName { value: n.clone(), why })?;
        }
        self.relay_entries()?;
        self.zone()?;
        check_word("version", &self.version)?;
        check_word("daemon_name", &self.daemon_name)?;
        check_word("log_tag", &self.log_tag)?;
        if self.max_hop_count == 0 {
            return Err(ProfileError::MaxHopCount);
        }
        if self.smtp_timeout.is_zero() {
            return Err(ProfileError::SmtpTimeout);
        }
        self.validate_routing()?;
        self.validate_identity()?;
        self.validate_relay_control()?;
        self.validate_queue()?;
        self.validate_anti_spam()?;
        Ok(())
    }

    /// `relay_domains`, parsed.
    pub fn relay_entries(&self) -> Result<Vec<RelayEntry>, ProfileError> {
        self.relay_domains.iter().map(|e| RelayEntry::parse(e)).collect()
    }

    /// `timezone`, parsed.
    pub fn zone(&self) -> Result<Zone, ProfileError> {
        Ok(Zone::parse(&self.timezone)?)
    }

    /// The first label of `hostname`, as syslog prints it.
    pub fn short_hostname(&self) -> &str {
        self.hostname.split('.').next().unwrap_or(&self.hostname)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_with_defaults() {
        let p: RelayProfile = serde_yaml::from_str("hostname: external.sysiphus.com\n").unwrap();
        assert_eq!(p.version, "8.13.4/8.13.4");
        assert_eq!(p.daemon_name, "MTA");
        assert_eq!(p.log_tag, "sm-mta");
        assert_eq!(p.timezone, "+0000");
        assert_eq!(p.max_hop_count, 25);
        assert_eq!(p.smtp_timeout, Duration::from_secs(30));
        assert!(p.relay_domains.is_empty() && p.local_host_names.is_empty() && !p.relay_hosts_only);
        p.validate().unwrap();
        assert_eq!(p.short_hostname(), "external");
    }

    #[test]
    fn yaml_full_and_round_trip() {
        let y =
            "hostname: ext1.sysiphus.com\nlocal_host_names: [sysiphus.com]\nrelay_domains: [sysiphus.com, 192.168.2]\n\
                 timezone: \"-0800 PST\"\nmax_hop_count: 50\nsmtp_timeout: 2m\n";
        let p: RelayProfile = serde_yaml::from_str(y).unwrap();
        p.validate().unwrap();
        assert_eq!(p.smtp_timeout, Duration::from_secs(120));
        assert_eq!(
            p.relay_entries().unwrap(),
            vec![RelayEntry::Domain("sysiphus.com".into()), RelayEntry::IpPrefix(vec![192, 168, 2])]
        );
        let back: RelayProfile = serde_yaml::from_str(&serde_yaml::to_string(&p).unwrap()).unwrap();
        assert_eq!(back.smtp_timeout, p.smtp_timeout);
    }

    #[test]
    fn unknown_fields_and_bad_durations_are_refused() {
        assert!(serde_yaml::from_str::<RelayProfile>("hostname: a.b\nrelay_domain: [x]\n").is_err());
        let e = serde_yaml::from_str::<RelayProfile>("hostname: a.b\nsmtp_timeout: soon\n").unwrap_err();
        assert!(e.to_string().contains("not a duration"), "{e}");
    }

    #[test]
    fn validate_explains_bad_entries() {
        let mut p = RelayProfile::new("external.sysiphus.com");
        for (bad, hint) in [
            ("10.1.1.0/24", "octet-aligned"),
            ("10.1.256", "0..255"),
            ("1.2.3.4.5", "four octets"),
            ("bad domain", "not a domain"),
            ("", "empty"),
        ] {
            p.relay_domains = vec![bad.into()];
            let e = p.validate().unwrap_err();
            assert!(matches!(e, ProfileError::RelayDomain { .. }), "{bad}: {e:?}");
            assert!(e.to_string().contains(hint), "{bad}: {e}");
        }
        p.relay_domains = vec![".Other.COM".into(), "10.1.1".into(), "10.1.2.7".into()];
        p.validate().unwrap();
        assert_eq!(p.relay_entries().unwrap()[0], RelayEntry::Domain("other.com".into()));

        let mut q = RelayProfile::new("");
        assert!(matches!(q.validate(), Err(ProfileError::Hostname { .. })));
        q.hostname = "ok.example".into();
        q.timezone = "PST".into();
        assert!(matches!(q.validate(), Err(ProfileError::Timezone(_))));
        q.timezone = "-0800".into();
        q.daemon_name = "my daemon".into();
        assert!(matches!(q.validate(), Err(ProfileError::Word { field: "daemon_name", .. })));
        q.daemon_name = "MTA".into();
        q.max_hop_count = 0;
        assert_eq!(q.validate(), Err(ProfileError::MaxHopCount));
        q.max_hop_count = 25;
        q.smtp_timeout = Duration::ZERO;
        assert_eq!(q.validate(), Err(ProfileError::SmtpTimeout));
    }
}
