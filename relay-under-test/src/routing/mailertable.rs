//! `FEATURE(mailertable)`: routing by recipient domain (spec §3.3).
//!
//! Talks to nothing. One entry per line, `key value`:
//! - keys: an exact domain (`eng.sysiphus.com`), a leading-dot partial
//!   domain matching anything below it (`.sysiphus.com`, not the bare
//!   `sysiphus.com`), or `.` for everything else; line order is irrelevant,
//!   the most specific key wins;
//! - values: `mailer:host` (`smtp:exch01.sysiphus.com`, `relay:[gw.x.com]`),
//!   `local:` or `local:user`, `error:D.S.N:code text` or `error:code text`.
//!   `%1` in a value is the part a leading-dot key matched.

use super::mailer::{ErrorReply, HostSpec, Mailer, MAILER_NAMES};
use crate::addresses::{table_lines, TableLine};
use crate::profile::check_domain;
use std::collections::HashMap;

/// What a mailertable entry says to do with a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailertableRoute {
    /// Send with this SMTP mailer to this host.
    Relay(Mailer, HostSpec),
    /// Deliver locally, to this user or (`None`) to the recipient's local part.
    Local(Option<String>),
    /// Refuse at RCPT with this reply.
    Error(ErrorReply),
}

#[derive(Debug, Clone)]
enum Value {
    /// `mailer:host`, host possibly holding `%1`.
    Relay(Mailer, String),
    Local(Option<String>),
    Error(ErrorReply),
}

/// The parsed table.
#[derive(Debug, Clone, Default)]
pub struct Mailertable {
    entries: HashMap<String, Value>,
}

/// Why a mailertable line was refused; the message quotes the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mailertable line {line:?}: {why}")]
pub struct MailertableError {
    /// The line as given.
    pub line: String,
    /// What is wrong and what would be right.
    pub why: String,
}

fn parse_value(v: &str) -> Result<Value, String> {
    let (mailer, rest) = v
        .split_once(':')
        .ok_or_else(|| format!("value {v:?} is not mailer:host; write e.g. smtp:{v} (mailers: {MAILER_NAMES})"))?;
    match mailer.to_ascii_lowercase().as_str() {
        "error" => Ok(Value::Error(ErrorReply::parse(rest)?)),
        "local" => {
            let user = rest.trim();
            if user.contains(char::is_whitespace) {
                return Err(format!("local:{user} names more than one user"));
            }
            Ok(Value::Local((!user.is_empty()).then(|| user.to_string())))
        }
        name => {
            let m = Mailer::parse_smtp(name)
                .ok_or_else(|| format!("unknown mailer {mailer:?}; use one of {MAILER_NAMES}"))?;
            // Check the host with a stand-in for %1.
            HostSpec::parse(&rest.replace("%1", "x")).map_err(|why| format!("host {rest:?}: {why}"))?;
            Ok(Value::Relay(m, rest.trim().to_string()))
        }
    }
}

impl Mailertable {
    /// Parse the table's lines; blank lines and `#` comments are skipped.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Mailertable, MailertableError> {
        let mut entries = HashMap::new();
        for TableLine { raw, text: line } in table_lines(lines) {
            let bad = |why: String| MailertableError { line: raw.to_string(), why };
            let mut words = line.split_whitespace();
            let key = words.next().expect("non-empty line");
            let value = words.collect::<Vec<_>>().join(" ");
            if value.is_empty() {
                return Err(bad(
                    "no value; write `domain mailer:host`, e.g. `sysiphus.com smtp:exch01.sysiphus.com`".into()
                ));
            }
            let key = key.to_ascii_lowercase();
            if key != "." {
                let d = key.strip_prefix('.').unwrap_or(&key).trim_end_matches('.');
                check_domain(d).map_err(|why| {
                    bad(format!("key {key:?} is not a domain ({why}); keys are domains, .partial.domains or ."))
                })?;
            }
            let value = parse_value(&value).map_err(bad)?;
            let key = if key == "." { key } else { key.trim_end_matches('.').to_string() };
            if entries.insert(key.clone(), value).is_some() {
                return Err(bad(format!("key {key:?} appears twice; keep one line per key")));
            }
        }
        Ok(Mailertable { entries })
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Look up `domain`: exact key first, then `.parent` keys from the most
    /// specific up, then `.` (`[S proto.m4 Mailertable]`).
    pub fn lookup(&self, domain: &str) -> Option<MailertableRoute> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if let Some(v) = self.entries.get(&domain) {
            return Some(resolve(v, ""));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        for i in 1..labels.len() {
            let key = format!(".{}", labels[i..].join("."));
            if let Some(v) = self.entries.get(&key) {
                return Some(resolve(v, &labels[..i].join(".")));
            }
        }
        self.entries.get(".").map(|v| resolve(v, &domain))
    }
}

fn resolve(v: &Value, matched: &str) -> MailertableRoute {
    match v {
        Value::Relay(m, host) => {
            let host = HostSpec::parse(&host.replace("%1", matched))
                .unwrap_or_else(|_| HostSpec::Mx(host.replace("%1", matched)));
            MailertableRoute::Relay(*m, host)
        }
        Value::Local(u) => MailertableRoute::Local(u.clone()),
        Value::Error(e) => MailertableRoute::Error(e.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(h: &str) -> Option<MailertableRoute> {
        Some(MailertableRoute::Relay(Mailer::Smtp, HostSpec::Mx(h.into())))
    }

    #[test]
    fn the_internal_relay_table_of_the_course() {
        let t = Mailertable::parse(&[
            "sysiphus.com       smtp:exch01.sysiphus.com",
            "eng.sysiphus.com   smtp:mail.eng.sysiphus.com",
            "# comment",
            "",
            "other.com          smtp:exch01.sfo.sysiphus.com",
            ".                  smtp:external.sysiphus.com",
        ])
        .unwrap();
        assert_eq!(t.lookup("sysiphus.com"), smtp("exch01.sysiphus.com"));
        assert_eq!(t.lookup("ENG.sysiphus.com."), smtp("mail.eng.sysiphus.com"));
        assert_eq!(t.lookup("other.com"), smtp("exch01.sfo.sysiphus.com"));
        assert_eq!(t.lookup("deer-run.com"), smtp("external.sysiphus.com"));
        // An exact key does not cover subdomains; `.` catches them.
        assert_eq!(t.lookup("sfo.sysiphus.com"), smtp("external.sysiphus.com"));
    }

    #[test]
    fn leading_dot_keys_brackets_percent_one_local_and_errors() {
        let t = Mailertable::parse(&[
            ".sysiphus.com esmtp:[gw.sysiphus.com]",
            ".eng.sysiphus.com relay:%1.mail.sysiphus.com",
            "old.com error:5.1.1:550 moved",
            "here.com local:",
            "bob.com local:bob",
        ])
        .unwrap();
        assert_eq!(
            t.lookup("deep.sub.sysiphus.com"),
            Some(MailertableRoute::Relay(Mailer::Esmtp, HostSpec::Bracketed("gw.sysiphus.com".into())))
        );
        assert_eq!(t.lookup("sysiphus.com"), None, "the dot key does not match the bare domain");
        assert_eq!(
            t.lookup("a.b.eng.sysiphus.com"),
            Some(MailertableRoute::Relay(Mailer::Relay, HostSpec::Mx("a.b.mail.sysiphus.com".into())))
        );
        match t.lookup("old.com") {
            Some(MailertableRoute::Error(e)) => {
                assert_eq!(e.reply("<u@old.com>").first_line(), "550 5.1.1 <u@old.com>... moved")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.lookup("here.com"), Some(MailertableRoute::Local(None)));
        assert_eq!(t.lookup("bob.com"), Some(MailertableRoute::Local(Some("bob".into()))));
        assert_eq!(t.lookup("elsewhere.org"), None);
    }

    #[test]
    fn bad_lines_are_quoted_with_a_hint() {
        for (line, hint) in [
            ("sysiphus.com", "no value"),
            ("sysiphus.com exch01.sysiphus.com", "not mailer:host"),
            ("sysiphus.com uucp:exch01", "unknown mailer"),
            ("bad_key! smtp:x.com", "not a domain"),
            ("x.com smtp:[gw", "host"),
            ("x.com error:5.1.1:250 ok", "4xx or 5xx"),
        ] {
            let e = Mailertable::parse(&[line]).unwrap_err();
            assert!(e.to_string().starts_with(&format!("mailertable line {line:?}: ")), "{e}");
            assert!(e.to_string().contains(hint), "{line}: {e}");
        }
        let e = Mailertable::parse(&["a.com smtp:x.com", "A.com smtp:y.com"]).unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
    }
}
