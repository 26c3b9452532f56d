//! SMTP replies (RFC 5321 4.2).
//!
//! A reply is a three-digit code and one or more text lines. Continuation lines
//! carry a `-` after the code (`250-PIPELINING`), the last line a space
//! (`250 HELP`). The text may start with an enhanced status code (`2.1.0`,
//! RFC 3463), which we keep inside the text, as the wire does.

use serde::Serialize;
use std::fmt;

/// One SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The text of each line, without the code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Reply { code, lines: vec![text.into()] }
    }

    /// A multi-line reply (EHLO).
    pub fn multi(code: u16, lines: Vec<String>) -> Self {
        assert!(!lines.is_empty(), "a reply has at least one line");
        Reply { code, lines }
    }

    /// The first line as it appeared on the wire: `250 2.1.0 <a@b>... Sender ok`.
    pub fn first_line(&self) -> String {
        format!("{} {}", self.code, self.lines[0])
    }

    /// Every line joined with `\n`, each as on the wire but with `-`
    /// continuation marks normalised to spaces; what matchers search.
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| format!("{} {}", self.code, l)).collect::<Vec<_>>().join("\n")
    }

    /// Positive completion (2xx) or intermediate (3xx).
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Transient negative completion (4xx).
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// Permanent negative completion (5xx).
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The bytes to send: every line but the last with `code-`, the last with `code `.
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        let last = self.lines.len() - 1;
        for (i, l) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            out.push_str(&format!("{}{}{}\r\n", self.code, sep, l));
        }
        out
    }

    /// Parse one wire line into (code, is_last, text). `None` when it is not a reply line.
    pub fn parse_line(line: &str) -> Option<(u16, bool, &str)> {
        let b = line.as_bytes();
        if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let code: u16 = line[..3].parse().ok()?;
        match b.get(3) {
            None => Some((code, true, "")),
            Some(b' ') => Some((code, true, &line[4..])),
            Some(b'-') => Some((code, false, &line[4..])),
            _ => None,
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_wire_form_marks_continuations() {
        let r = Reply::multi(250, vec!["relay Hello".into(), "PIPELINING".into(), "HELP".into()]);
        assert_eq!(r.to_wire(), "250-relay Hello\r\n250-PIPELINING\r\n250 HELP\r\n");
        assert_eq!(r.first_line(), "250 relay Hello");
    }

    #[test]
    fn parses_reply_lines() {
        assert_eq!(Reply::parse_line("250-PIPELINING"), Some((250, false, "PIPELINING")));
        assert_eq!(Reply::parse_line("221 bye"), Some((221, true, "bye")));
        assert_eq!(Reply::parse_line("250"), Some((250, true, "")));
        assert_eq!(Reply::parse_line("hello"), None);
        assert_eq!(Reply::parse_line("25x ok"), None);
    }
}
