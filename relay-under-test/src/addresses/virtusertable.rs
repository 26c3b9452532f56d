//! `FEATURE(virtusertable)`: virtual users and domains (spec §3.8).
//!
//! Talks to nothing. Lines `key target`:
//! - keys `user@domain` (specific) and `@domain` (catch-all); a specific key
//!   beats the catch-all;
//! - targets an address (looked up again by the caller: nesting), a bare
//!   local name, or `error:...` (refused at RCPT);
//! - `%1` in a target is the local part, `%2` the detail of `user+detail`
//!   and `%3` the `+detail` (`[S cf/README]`).
//!
//! Only the envelope recipient changes; headers keep the old address and
//! the log's `to=` shows it too.

use super::{table_lines, TableLine};
use crate::profile::check_domain;
use crate::routing::mailer::ErrorReply;
use std::collections::HashMap;

/// What a virtusertable entry maps a recipient to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VirtTarget {
    /// A new recipient (`%n` already substituted): an address or a local name.
    Address(String),
    /// Refuse at RCPT with this reply.
    Error(ErrorReply),
}

/// The parsed table.
#[derive(Debug, Clone, Default)]
pub struct Virtusertable {
    entries: HashMap<String, VirtTarget>,
}

/// Why a virtusertable line was refused; the message quotes the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("virtusertable line {line:?}: {why}")]
pub struct VirtusertableError {
    /// The line as given.
    pub line: String,
    /// What is wrong and what would be right.
    pub why: String,
}

fn check_target(t: &str) -> Result<VirtTarget, String> {
    if let Some(rest) = t.strip_prefix("error:") {
        return Ok(VirtTarget::Error(ErrorReply::parse(rest)?));
    }
    if t.contains(char::is_whitespace) {
        return Err(format!(
            "target {t:?} is more than one word; a virtusertable entry maps to one address (use an alias for lists)"
        ));
    }
    let probe = t.replace("%1", "u").replace("%2", "d").replace("%3", "+d");
    match super::split(&probe) {
        ("", _) => Err(format!("target {t:?} has no local part")),
        (_, Some(d)) => {
            check_domain(&d).map(|_| VirtTarget::Address(t.to_string())).map_err(|why| format!("target {t:?}: {why}"))
        }
        (_, None) if probe.contains('@') => Err(format!("target {t:?} has an empty domain")),
        (_, None) => Ok(VirtTarget::Address(t.to_string())),
    }
}

impl Virtusertable {
    /// Parse the table's lines; blank lines and `#` comments are skipped.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Virtusertable, VirtusertableError> {
        let mut entries = HashMap::new();
        for TableLine { raw, text: line } in table_lines(lines) {
            let bad = |why: String| VirtusertableError { line: raw.to_string(), why };
            let (key, target) = line
                .split_once(char::is_whitespace)
                .map(|(k, t)| (k, t.trim()))
                .ok_or_else(|| bad("no target; write `user@domain target` or `@domain target`".into()))?;
            let (user, domain) = key
                .rsplit_once('@')
                .ok_or_else(|| bad(format!("key {key:?} has no @domain; keys are user@domain or @domain")))?;
            let domain = domain.trim_end_matches('.');
            check_domain(domain).map_err(|why| bad(format!("key {key:?}: domain {why}")))?;
            let key = format!("{}@{}", user.to_ascii_lowercase(), domain.to_ascii_lowercase());
            let target = check_target(target).map_err(bad)?;
            if entries.insert(key.clone(), target).is_some() {
                return Err(bad(format!("key {key:?} appears twice")));
            }
        }
        Ok(Virtusertable { entries })
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Look up `user@domain` in Sendmail's order (`[S proto.m4]`):
    /// `user+detail@domain`, `user+*@domain`, `user@domain`, `@domain`.
    pub fn lookup(&self, user: &str, domain: &str) -> Option<VirtTarget> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let lower = user.to_ascii_lowercase();
        let get = |k: String| self.entries.get(&k);
        // The whole local part, as typed.
        if let Some(t) = get(format!("{lower}@{domain}")) {
            return Some(substitute(t, user, "", ""));
        }
        let (base, detail) = match user.split_once('+') {
            Some((b, d)) => (b, Some(d)),
            None => (user, None),
        };
        let (d, plus) = match detail {
            Some(d) => (d.to_string(), format!("+{d}")),
            None => (String::new(), String::new()),
        };
        if detail.is_some() {
            let lb = base.to_ascii_lowercase();
            for k in [format!("{lb}+*@{domain}"), format!("{lb}@{domain}")] {
                if let Some(t) = get(k) {
                    return Some(substitute(t, base, &d, &plus));
                }
            }
        }
        get(format!("@{domain}")).map(|t| substitute(t, base, &d, &plus))
    }
}

fn substitute(t: &VirtTarget, user: &str, detail: &str, plus: &str) -> VirtTarget {
    match t {
        VirtTarget::Address(a) => VirtTarget::Address(a.replace("%1", user).replace("%2", detail).replace("%3", plus)),
        e @ VirtTarget::Error(_) => e.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(a: &str) -> Option<VirtTarget> {
        Some(VirtTarget::Address(a.into()))
    }

    #[test]
    fn the_course_table() {
        let t = Virtusertable::parse(&[
            "@fictional.com          bob@sysiphus.com",
            "abuse@virtu.com         postmaster@sysiphus.com",
            "@virtu.com              alice@sysiphus.com",
            "support@virtu.com       support@responder.com",
            "sue@virtual.com         BoyNamedSue@AOL.com",
        ])
        .unwrap();
        assert_eq!(t.lookup("anyone", "fictional.com"), addr("bob@sysiphus.com"));
        assert_eq!(t.lookup("Abuse", "VIRTU.com"), addr("postmaster@sysiphus.com"), "specific beats catch-all");
        assert_eq!(t.lookup("y", "virtu.com"), addr("alice@sysiphus.com"));
        assert_eq!(t.lookup("support", "virtu.com"), addr("support@responder.com"));
        assert_eq!(t.lookup("sue", "virtual.com"), addr("BoyNamedSue@AOL.com"));
        assert_eq!(t.lookup("x", "elsewhere.com"), None);
    }

    #[test]
    fn percent_substitution_detail_and_errors() {
        let t = Virtusertable::parse(&[
            "@foo.org %1@example.com",
            "@plus.org %1%3@example.com",
            "list+*@plus.org lists+%2@example.com",
            "joe@bar.com error:nouser 550 No such user here",
            "local@bar.com bob",
        ])
        .unwrap();
        assert_eq!(t.lookup("someone", "foo.org"), addr("someone@example.com"));
        assert_eq!(t.lookup("hal+work", "plus.org"), addr("hal+work@example.com"));
        assert_eq!(t.lookup("list+tech", "plus.org"), addr("lists+tech@example.com"));
        match t.lookup("joe", "bar.com") {
            Some(VirtTarget::Error(e)) => {
                assert_eq!(e.reply("<joe@bar.com>").first_line(), "550 5.1.1 <joe@bar.com>... No such user here")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.lookup("local", "bar.com"), addr("bob"));
    }

    #[test]
    fn bad_lines() {
        for (line, hint) in [
            ("@virtual.com", "no target"),
            ("virtual.com marketing@sysiphus.com", "no @domain"),
            ("@virtual.com a b", "more than one word"),
            ("@virtual.com error:nosuch 550 x", "unknown status"),
            ("@bad!.com x@y.com", "domain"),
            ("@v.com x@", "empty domain"),
        ] {
            let e = Virtusertable::parse(&[line]).unwrap_err().to_string();
            assert!(e.starts_with(&format!("virtusertable line {line:?}")) && e.contains(hint), "{line}: {e}");
        }
    }
}
