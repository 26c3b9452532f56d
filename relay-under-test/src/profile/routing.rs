//! The routing and address keys of the profile: their errors, their checks,
//! and the "lines" form the tables take.
//!
//! A table (`mailertable`, `virtusertable`, `aliases`, ...) is written either
//! as a YAML list of lines or as one block of text, one entry per line, as
//! in the course's `/etc/mail` files:
//!
//! ```yaml
//! mailertable: |
//!   sysiphus.com  smtp:exch01.sysiphus.com
//!   .             smtp:external.sysiphus.com
//! ```

use super::{check_domain, RelayProfile};
use crate::addresses::{AliasesError, DomaintableError, VirtusertableError};
use crate::routing::mailertable::MailertableError;
use crate::routing::Router;
use serde::de::{self, SeqAccess, Visitor};
use serde::Deserializer;
use std::fmt;

/// Why the routing or address keys of a profile were refused. Every message
/// quotes the offending value first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoutingError {
    /// A `mailertable` line is malformed.
    #[error(transparent)]
    Mailertable(#[from] MailertableError),
    /// A `virtusertable` line is malformed.
    #[error(transparent)]
    Virtusertable(#[from] VirtusertableError),
    /// A `domaintable` line is malformed.
    #[error(transparent)]
    Domaintable(#[from] DomaintableError),
    /// An `aliases` line or an include file is malformed.
    #[error(transparent)]
    Aliases(#[from] AliasesError),
    /// `smart_host`, `mail_hub` or `luser_relay` is not `[mailer:]host`.
    #[error("{key} {value:?}: {why}; write a host (internal.sysiphus.com), [host] to skip MX lookup, or mailer:host (smtp:internal.sysiphus.com)")]
    RelayTarget {
        /// Which key.
        key: &'static str,
        /// What was given.
        value: String,
        /// What is wrong.
        why: String,
    },
    /// A `virtuser_domains` entry or `masquerade_as` is not a domain.
    #[error("{key} entry {value:?} is not a domain: {why}")]
    Domain {
        /// Which key.
        key: &'static str,
        /// What was given.
        value: String,
        /// What is wrong.
        why: String,
    },
    /// A `local_users` or `exposed_users` entry is not a user name.
    #[error(
        "{key} entry {value:?} is not a user name: give the local part only, one word without @ or blanks (e.g. root)"
    )]
    User {
        /// Which key.
        key: &'static str,
        /// What was given.
        value: String,
    },
}

fn check_users(key: &'static str, users: &[String]) -> Result<(), RoutingError> {
    for u in users {
        if u.trim().is_empty() || u.contains('@') || u.trim().contains(char::is_whitespace) {
            return Err(RoutingError::User { key, value: u.clone() });
        }
    }
    Ok(())
}

fn check_domains(key: &'static str, domains: &[String]) -> Result<(), RoutingError> {
    for d in domains {
        check_domain(d.trim().trim_end_matches('.')).map_err(|why| RoutingError::Domain {
            key,
            value: d.clone(),
            why,
        })?;
    }
    Ok(())
}

impl RelayProfile {
    /// Check the routing and address keys (spec §3, §10): every table parses,
    /// every include file is given, every name is well formed.
    pub fn validate_routing(&self) -> Result<(), RoutingError> {
        check_domains("virtuser_domains", &self.virtuser_domains)?;
        check_domains("masquerade_as", self.masquerade_as.as_slice())?;
        check_users("local_users", &self.local_users)?;
        check_users("exposed_users", &self.exposed_users)?;
        Router::from_profile(self)?;
        Ok(())
    }
}

/// Deserialise a table: a list of lines, or one block of text split into
/// lines.
pub(crate) fn de_lines<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Lines;
    impl<'de> Visitor<'de> for Lines {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of lines, or one block of text with one entry per line")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(v.lines().map(str::to_string).filter(|l| !l.trim().is_empty()).collect())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(line) = seq.next_element::<String>()? {
                out.push(line);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_as_lists_or_text_blocks() {
        let y = "hostname: ext.sysiphus.com\nmailertable: |\n  sysiphus.com smtp:internal.sysiphus.com\n\n  . smtp:x.sysiphus.com\n\
                 virtusertable:\n  - \"@virtual.com marketing@sysiphus.com\"\nvirtuser_domains: virtual.com\n";
        let p: RelayProfile = serde_yaml::from_str(y).unwrap();
        assert_eq!(p.mailertable, vec!["sysiphus.com smtp:internal.sysiphus.com", ". smtp:x.sysiphus.com"]);
        assert_eq!(p.virtusertable, vec!["@virtual.com marketing@sysiphus.com"]);
        assert_eq!(p.virtuser_domains, vec!["virtual.com"]);
        p.validate().unwrap();
        let e = serde_yaml::from_str::<RelayProfile>("hostname: a.b\nmailertable: {a: b}\n").unwrap_err();
        assert!(e.to_string().contains("a list of lines, or one block of text"), "{e}");
    }

    #[test]
    fn bad_values_fail_validate_quoting_the_value_first() {
        type Case = (Box<dyn Fn(&mut RelayProfile)>, &'static str, &'static str);
        let cases: Vec<Case> = vec![
            (Box::new(|p| p.mailertable = vec!["sysiphus.com exch01".into()]), "sysiphus.com exch01", "mailer:host"),
            (Box::new(|p| p.mailertable = vec!["x.com uucp:y.com".into()]), "x.com uucp:y.com", "unknown mailer"),
            (Box::new(|p| p.virtusertable = vec!["virtual.com bob@x.com".into()]), "virtual.com bob@x.com", "@domain"),
            (Box::new(|p| p.aliases = vec!["staff hal".into()]), "staff hal", "no colon"),
            (Box::new(|p| p.aliases = vec!["c: :include: /lists/c".into()]), "/lists/c", "include_files"),
            (Box::new(|p| p.domaintable = vec!["parallel.com".into()]), "parallel.com", "two domains"),
            (Box::new(|p| p.smart_host = Some("uucp:x.com".into())), "uucp:x.com", "unknown mailer"),
            (Box::new(|p| p.mail_hub = Some("[internal".into())), "[internal", "mailer:host"),
            (Box::new(|p| p.virtuser_domains = vec!["bad domain".into()]), "bad domain", "not a domain"),
            (Box::new(|p| p.masquerade_as = Some("".into())), "", "not a domain"),
            (Box::new(|p| p.local_users = vec!["hal@x.com".into()]), "hal@x.com", "local part only"),
            (Box::new(|p| p.exposed_users = vec!["two words".into()]), "two words", "user name"),
        ];
        for (set, quoted, hint) in cases {
            let mut p = RelayProfile::new("ext.sysiphus.com");
            set(&mut p);
            let e = p.validate().unwrap_err().to_string();
            assert_eq!(e.split('"').nth(1), Some(quoted), "{e}");
            assert!(e.contains(hint), "{e}");
        }
    }
}
