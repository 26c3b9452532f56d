//! `FEATURE(domaintable)`: parallel domains rewritten to the canonical one
//! (spec §3.7).
//!
//! Talks to nothing. Lines `parallel.com sysiphus.com`; the key matches the
//! exact domain only (`[S proto.m4]`). Every address is rewritten — envelope
//! and headers, senders and recipients — and the left-hand domains count as
//! ours for the relay check.

use super::{table_lines, TableLine};
use crate::profile::check_domain;
use std::collections::HashMap;

/// The parsed table.
#[derive(Debug, Clone, Default)]
pub struct Domaintable {
    map: HashMap<String, String>,
}

/// Why a domaintable line was refused; the message quotes the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("domaintable line {line:?}: {why}")]
pub struct DomaintableError {
    /// The line as given.
    pub line: String,
    /// What is wrong and what would be right.
    pub why: String,
}

impl Domaintable {
    /// Parse `from.domain to.domain` lines; blank lines and `#` comments are skipped.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Domaintable, DomaintableError> {
        let mut map = HashMap::new();
        for TableLine { raw, text: line } in table_lines(lines) {
            let bad = |why: String| DomaintableError { line: raw.to_string(), why };
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() != 2 {
                return Err(bad(
                    "write two domains, the parallel one and the canonical one: `parallel.com sysiphus.com`".into(),
                ));
            }
            let mut norm = Vec::new();
            for w in &words {
                let d = w.trim_end_matches('.');
                check_domain(d).map_err(|why| bad(format!("{w:?} is not a domain: {why}")))?;
                norm.push(d.to_ascii_lowercase());
            }
            if norm[0] == norm[1] {
                return Err(bad("maps a domain to itself".into()));
            }
            if map.insert(norm[0].clone(), norm[1].clone()).is_some() {
                return Err(bad(format!("domain {:?} appears twice", norm[0])));
            }
        }
        Ok(Domaintable { map })
    }

    /// The canonical domain for `domain`, when it is a left-hand side.
    pub fn lookup(&self, domain: &str) -> Option<&str> {
        self.map.get(&domain.trim_end_matches('.').to_ascii_lowercase()).map(String::as_str)
    }

    /// `addr` with its domain rewritten, or unchanged.
    pub fn rewrite(&self, addr: &str) -> String {
        match super::split(addr) {
            (user, Some(d)) => match self.lookup(&d) {
                Some(canon) => super::join(user, canon),
                None => addr.to_string(),
            },
            _ => addr.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_exact_domains_only() {
        let t =
            Domaintable::parse(&["parallel.com  sysiphus.com", "# x", "internal.sysiphus.com sysiphus.com"]).unwrap();
        assert_eq!(t.rewrite("hal@Parallel.COM"), "hal@sysiphus.com");
        assert_eq!(t.rewrite("user@internal.sysiphus.com"), "user@sysiphus.com");
        assert_eq!(t.rewrite("hal@sub.parallel.com"), "hal@sub.parallel.com");
        assert_eq!(t.rewrite("hal"), "hal");
        assert_eq!(t.lookup("parallel.com."), Some("sysiphus.com"));
    }

    #[test]
    fn bad_lines() {
        for (line, hint) in
            [("parallel.com", "two domains"), ("a.com b_ad!", "not a domain"), ("a.com A.com", "itself")]
        {
            let e = Domaintable::parse(&[line]).unwrap_err().to_string();
            assert!(e.starts_with(&format!("domaintable line {line:?}")) && e.contains(hint), "{e}");
        }
    }
}
