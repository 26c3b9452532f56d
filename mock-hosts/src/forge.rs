//! Forged headers, as spammers and the course's telnet forger write them
//! into DATA (spec §5.3): a `From:` that is not the sender, a `Message-Id:`
//! naming someone else's host, and `Received:` lines that claim a path the
//! message never took. A relay's own `Received:` on top tells the truth.

use crate::message;
use chrono::{DateTime, Utc};

/// Headers to forge; anything left `None` is not written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forgery {
    /// `Received:` values, top (most recent) first.
    pub received: Vec<String>,
    /// `From:`.
    pub from: Option<String>,
    /// `To:`.
    pub to: Option<String>,
    /// `Subject:`.
    pub subject: Option<String>,
    /// `Date:`.
    pub date: Option<String>,
    /// `Message-Id:`.
    pub message_id: Option<String>,
    /// More fields, in order.
    pub headers: Vec<(String, String)>,
}

impl Forgery {
    /// The forged header lines (without line ends), `Received:` first.
    pub fn header_lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self.received.iter().map(|r| format!("Received: {r}")).collect();
        let named = [
            ("From", &self.from),
            ("To", &self.to),
            ("Subject", &self.subject),
            ("Date", &self.date),
            ("Message-Id", &self.message_id),
        ];
        out.extend(named.into_iter().filter_map(|(n, v)| v.as_ref().map(|v| format!("{n}: {v}"))));
        out.extend(self.headers.iter().map(|(n, v)| format!("{n}: {v}")));
        out
    }

    /// The message: forged headers, then `rest` (more headers, an empty line
    /// and the body, as a scenario's `data:` holds them), or a short body.
    pub fn build(&self, rest: Option<&str>) -> String {
        let mut text = String::new();
        for l in self.header_lines() {
            text.push_str(&l);
            text.push('\n');
        }
        match rest {
            Some(r) => text.push_str(r),
            None => text.push_str("\nThis message was forged in a relaylab lab.\n"),
        }
        text
    }
}

/// A plausible chain of `n` forged `Received:` values, top first: the
/// message claims to have come from `hop1.forged.example` through
/// `hop2`...`hop<n>` before reaching the first real host.
pub fn received_chain(n: usize, now: DateTime<Utc>) -> Vec<String> {
    (1..=n)
        .rev()
        .map(|k| {
            let when = message::date(now - chrono::Duration::minutes((n - k + 1) as i64));
            format!(
                "from hop{k}.forged.example (hop{k}.forged.example [192.0.2.{k}]) by hop{}.forged.example with SMTP id F{k:05}; {when}",
                k + 1
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_headers_before_the_rest() {
        let f = Forgery {
            from: Some("Santa@Northpole.com".into()),
            message_id: Some("<1@trusted.example>".into()),
            received: vec!["from a by b; now".into()],
            headers: vec![("X-Mailer".into(), "Outlook".into())],
            ..Forgery::default()
        };
        assert_eq!(
            f.build(Some("Subject: hi\n\nbody\n")),
            "Received: from a by b; now\nFrom: Santa@Northpole.com\nMessage-Id: <1@trusted.example>\nX-Mailer: Outlook\nSubject: hi\n\nbody\n"
        );
        assert!(f.build(None).ends_with("\n\nThis message was forged in a relaylab lab.\n"));
    }

    #[test]
    fn a_chain_reads_top_down() {
        let now = DateTime::parse_from_rfc3339("2025-07-01T10:00:00Z").unwrap().to_utc();
        let c = received_chain(2, now);
        assert_eq!(c.len(), 2);
        assert!(
            c[0].starts_with("from hop2.forged.example (hop2.forged.example [192.0.2.2]) by hop3.forged.example"),
            "{}",
            c[0]
        );
        assert!(c[1].starts_with("from hop1.forged.example"), "{}", c[1]);
        assert!(c[1].ends_with("Tue, 1 Jul 2025 09:58:00 +0000"), "{}", c[1]);
    }
}
