//! Relay-control settings of the profile: who may relay, and the access
//! database with its helpers (spec §3.6, §4).
//!
//! - `promiscuous_relay`, `relay_entire_domain`, `relay_hosts_only`: the
//!   `FEATURE`s of the same names.
//! - `access`: the access map's text lines (`FEATURE(access_db)`), checked by
//!   [`AccessDb::parse`]; `blacklist_recipients` lets `To:` entries refuse.
//! - `delay_checks`: `FEATURE(delay_checks)`, with `friend` or `hater`.
//! - `accept_unqualified_senders`, `accept_unresolvable_domains`: the
//!   `FEATURE`s that switch the built-in sender checks off (spec §4.6).
//! - `greet_pause`: `FEATURE(greet_pause)`, milliseconds (spec §9.2).

use super::RelayProfile;
use crate::policy::access_db::{AccessDb, AccessError};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// `FEATURE(delay_checks)`: when the client and sender checks run (spec §4.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DelayChecks {
    /// Not delayed: client checks at connect, sender checks at MAIL.
    #[default]
    Off,
    /// Delayed to each RCPT, for every recipient.
    On,
    /// Delayed; recipients with `Spam:... FRIEND` skip them.
    Friend,
    /// Delayed; only recipients with `Spam:... HATER` get them.
    Hater,
}

impl DelayChecks {
    /// True unless `Off`.
    pub fn delayed(self) -> bool {
        self != DelayChecks::Off
    }
}

impl Serialize for DelayChecks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DelayChecks::Off => s.serialize_bool(false),
            DelayChecks::On => s.serialize_bool(true),
            DelayChecks::Friend => s.serialize_str("friend"),
            DelayChecks::Hater => s.serialize_str("hater"),
        }
    }
}

impl<'de> Deserialize<'de> for DelayChecks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DelayChecks, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = DelayChecks;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, \"friend\" or \"hater\"")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<DelayChecks, E> {
                Ok(if b { DelayChecks::On } else { DelayChecks::Off })
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DelayChecks, E> {
                match s.to_ascii_lowercase().as_str() {
                    "friend" => Ok(DelayChecks::Friend),
                    "hater" => Ok(DelayChecks::Hater),
                    "true" => Ok(DelayChecks::On),
                    "false" => Ok(DelayChecks::Off),
                    _ => Err(E::custom(format!(
                        "delay_checks {s:?} is not valid; use true, false, friend (Spam: FRIEND recipients are not filtered) \
                         or hater (only Spam: HATER recipients are filtered)"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl RelayProfile {
    /// `access`, parsed.
    pub fn access_db(&self) -> Result<AccessDb, AccessError> {
        AccessDb::parse(&self.access)
    }

    /// `$m` for `relay_entire_domain`: the host name without its first label.
    pub fn our_domain(&self) -> Option<String> {
        let h = self.hostname.trim_end_matches('.').to_ascii_lowercase();
        h.split_once('.').map(|(_, d)| d.to_string()).filter(|d| !d.is_empty())
    }

    /// Check the relay-control settings.
    pub(super) fn validate_relay_control(&self) -> Result<(), AccessError> {
        self.access_db()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_checks_from_yaml() {
        let p = |y: &str| serde_yaml::from_str::<RelayProfile>(&format!("hostname: a.example\n{y}"));
        assert_eq!(p("").unwrap().delay_checks, DelayChecks::Off);
        assert_eq!(p("delay_checks: true\n").unwrap().delay_checks, DelayChecks::On);
        assert_eq!(p("delay_checks: friend\n").unwrap().delay_checks, DelayChecks::Friend);
        assert_eq!(p("delay_checks: hater\n").unwrap().delay_checks, DelayChecks::Hater);
        let e = p("delay_checks: freind\n").unwrap_err().to_string();
        assert!(e.contains("delay_checks \"freind\" is not valid; use true, false, friend"), "{e}");
        let back = serde_yaml::to_string(&p("delay_checks: friend\n").unwrap()).unwrap();
        assert!(back.contains("delay_checks: friend"), "{back}");
    }

    #[test]
    fn access_lines_are_checked_by_validate() {
        let mut p = RelayProfile::new("external.sysiphus.com");
        p.access = vec!["From:foo.biz REJECT".into(), "Connect:10.1.1.0/24 REJECT".into()];
        let e = p.validate().unwrap_err().to_string();
        assert!(e.starts_with("access line \"Connect:10.1.1.0/24 REJECT\": key \"10.1.1.0/24\" is a CIDR net"), "{e}");
        p.access.pop();
        p.validate().unwrap();
        assert_eq!(p.our_domain().as_deref(), Some("sysiphus.com"));
    }
}
