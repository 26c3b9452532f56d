//! Matchers: how a scenario says what a reply, header or log line must look like.
//!
//! Two small languages, both plain strings in YAML:
//!
//! - **Reply matcher** `CODE [TEXT] [/REGEX/]`: the reply's first line must
//!   start with `CODE TEXT`, and the regex (if any) must match somewhere in the
//!   whole reply. `"250"`, `"550 5.7.1"`, `"550 5.7.1 /Relaying denied/"`,
//!   `"/^220 .* ESMTP/"`.
//! - **Value matcher** (headers, bodies, log lines): `/REGEX/` searches with a
//!   regex; anything else must match exactly (headers) or appear as a
//!   substring (log lines, bodies).

use lab_core::Reply;
use regex::Regex;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// Matches one SMTP reply.
#[derive(Debug, Clone)]
pub struct ReplyMatcher {
    source: String,
    prefix: String,
    regex: Option<Regex>,
}

impl ReplyMatcher {
    /// Parse `CODE [TEXT] [/REGEX/]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let trimmed = s.trim();
        let (prefix, regex) = match trimmed.find('/') {
            Some(i) if trimmed.ends_with('/') && trimmed.len() > i + 1 => {
                let re = &trimmed[i + 1..trimmed.len() - 1];
                let re = Regex::new(re).map_err(|e| format!("invalid regex in reply matcher {s:?}: {e}"))?;
                (trimmed[..i].trim_end().to_string(), Some(re))
            }
            _ => (trimmed.to_string(), None),
        };
        if !prefix.is_empty() {
            let code_ok = prefix.len() >= 3 && prefix.as_bytes()[..3].iter().all(u8::is_ascii_digit);
            if !code_ok {
                return Err(format!(
                    "expected a reply matcher such as \"250\", \"550 5.7.1\" or \"550 5.7.1 /Relaying denied/\", found {s:?}"
                ));
            }
        } else if regex.is_none() {
            return Err("empty reply matcher: write a code such as \"250\" or a /regex/".into());
        }
        Ok(ReplyMatcher { source: trimmed.to_string(), prefix, regex })
    }

    /// Does `reply` match?
    pub fn matches(&self, reply: &Reply) -> bool {
        let first = reply.first_line();
        first.starts_with(&self.prefix) && self.regex.as_ref().is_none_or(|re| re.is_match(&reply.text()))
    }

    /// The reply class it expects (`5` for `"550 5.7.1 ..."`), when it names a code.
    pub fn code_class(&self) -> Option<u8> {
        self.prefix.as_bytes().first().map(|b| b - b'0')
    }

    /// The matcher as the scenario wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for ReplyMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for ReplyMatcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = scalar(d, "a reply matcher such as \"550 5.7.1 /Relaying denied/\"")?;
        ReplyMatcher::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Matches a header value, a body or a log line.
#[derive(Debug, Clone)]
pub enum ValueMatcher {
    /// `/regex/`: the regex must match somewhere.
    Regex(String, Regex),
    /// Plain text: exact for headers, substring for log lines and bodies.
    Text(String),
}

impl ValueMatcher {
    /// Parse a matcher.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() >= 2 && s.starts_with('/') && s.ends_with('/') {
            let re = Regex::new(&s[1..s.len() - 1]).map_err(|e| format!("invalid regex {s:?}: {e}"))?;
            Ok(ValueMatcher::Regex(s.to_string(), re))
        } else {
            Ok(ValueMatcher::Text(s.to_string()))
        }
    }

    /// Exact (text) or regex match, for header values.
    pub fn matches_exact(&self, value: &str) -> bool {
        match self {
            ValueMatcher::Regex(_, re) => re.is_match(value),
            ValueMatcher::Text(t) => t == value,
        }
    }

    /// Substring (text) or regex match, for log lines and bodies.
    pub fn matches_within(&self, value: &str) -> bool {
        match self {
            ValueMatcher::Regex(_, re) => re.is_match(value),
            ValueMatcher::Text(t) => value.contains(t.as_str()),
        }
    }
}

impl fmt::Display for ValueMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueMatcher::Regex(s, _) | ValueMatcher::Text(s) => f.write_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for ValueMatcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = scalar(d, "a text or a /regex/")?;
        ValueMatcher::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Read a scalar as a string (numbers such as `250` are accepted too), or say what was expected.
fn scalar<'de, D: Deserializer<'de>>(d: D, what: &str) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        N(u64),
    }
    match Scalar::deserialize(d) {
        Ok(Scalar::S(s)) => Ok(s),
        Ok(Scalar::N(n)) => Ok(n.to_string()),
        Err(_) => Err(serde::de::Error::custom(format!("expected {what}, found a list or a mapping"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Reply {
        Reply::new(code, text)
    }

    #[test]
    fn reply_matcher_checks_prefix_and_regex() {
        let m = ReplyMatcher::parse("550 5.7.1 /Relaying denied/").unwrap();
        assert!(m.matches(&reply(550, "5.7.1 <a@b.c>... Relaying denied")));
        assert!(!m.matches(&reply(550, "5.7.1 <a@b.c>... Access denied")));
        assert!(!m.matches(&reply(250, "2.1.5 <a@b.c>... Relaying denied")));
        let code_only = ReplyMatcher::parse("250").unwrap();
        assert!(code_only.matches(&reply(250, "ok")));
        assert!(!code_only.matches(&reply(251, "ok")));
        let re_only = ReplyMatcher::parse("/^220 .* ESMTP/").unwrap();
        assert!(re_only.matches(&reply(220, "relay ESMTP Sendmail")));
    }

    #[test]
    fn multi_line_replies_are_searched_whole() {
        let m = ReplyMatcher::parse("250 /PIPELINING/").unwrap();
        let r = Reply::multi(250, vec!["relay Hello".into(), "PIPELINING".into()]);
        assert!(m.matches(&r));
    }

    #[test]
    fn bad_matchers_say_what_was_expected() {
        assert!(ReplyMatcher::parse("Relaying denied").unwrap_err().contains("expected a reply matcher"));
        assert!(ReplyMatcher::parse("550 /(/").unwrap_err().contains("invalid regex"));
    }

    #[test]
    fn value_matchers_exact_substring_and_regex() {
        let t = ValueMatcher::parse("Santa@Northpole.com").unwrap();
        assert!(t.matches_exact("Santa@Northpole.com"));
        assert!(!t.matches_exact("x Santa@Northpole.com"));
        assert!(t.matches_within("x Santa@Northpole.com"));
        let r = ValueMatcher::parse(r"/^from \S+ \(/").unwrap();
        assert!(r.matches_exact("from a.b (c [1.2.3.4])"));
    }
}
