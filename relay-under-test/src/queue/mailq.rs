//! `mailq` (`sendmail -bp`) in Sendmail 8.13's layout (spec §7.2):
//!
//! ```text
//! /var/spool/mqueue (2 requests)
//! -----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------
//! k056SDUq003739       85 Wed Jan  4 22:28 <alice@example.net>
//!                  (Deferred: Connection refused by internal.sysiphus.com.)
//!                                        <john@sysiphus.com>
//! ...
//!                 Total requests: 2
//! ```
//!
//! Talks to nothing. Three lines per message, as `queue.c` prints them: the
//! queue id (14 columns, then `*` while an attempt has the message), the
//! body size (`%8ld`, line ends counted as one octet as in Sendmail's `df`
//! file), the arrival time (`ctime`'s first 16 characters, in the relay's
//! zone) and the sender (at most 40 characters); the last error in
//! parentheses (at most 60), under a 17-column indent; each recipient under
//! a 39-column indent. An empty queue prints `<dir> is empty`.

use super::entry::QueueEntry;
use crate::dates::Zone;
use std::collections::HashSet;

/// The column header of the non-verbose listing.
pub const HEADER: &str = "-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------";

/// Sendmail's `prtstr`: at most `max` characters, control characters as `^X`.
fn prtstr(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let piece = if c.is_control() { format!("^{}", ((c as u8) ^ 0x40) as char) } else { c.to_string() };
        if out.chars().count() + piece.chars().count() > max {
            break;
        }
        out.push_str(&piece);
    }
    out
}

/// The body's size as Sendmail's `df` file would have it.
pub fn body_size(e: &QueueEntry) -> u64 {
    let block = crate::intake::header_block(&e.data);
    let mut body = &e.data[block.end..];
    if block.terminated {
        body = body.strip_prefix(b"\r\n").or_else(|| body.strip_prefix(b"\n")).unwrap_or(body);
    }
    crate::intake::logged_size(body)
}

/// The listing of `entries` (oldest first) in queue directory `dir`;
/// `busy` names those an attempt has right now.
pub fn format(dir: &str, entries: &[QueueEntry], busy: &HashSet<String>, zone: &Zone) -> String {
    if entries.is_empty() {
        return format!("{dir} is empty\n");
    }
    let n = entries.len();
    let mut out = format!("{dir} ({n} request{})\n{HEADER}\n", if n == 1 { "" } else { "s" });
    for e in entries {
        let flag = if busy.contains(&e.qid) { '*' } else { ' ' };
        let when = e.arrived.with_timezone(&zone.offset()).format("%a %b %e %H:%M").to_string();
        out.push_str(&format!("{:>14}{flag}{:>8} {when} {}", e.qid, body_size(e), prtstr(&e.sender_typed, 40)));
        if let Some(err) = &e.last_error {
            out.push_str(&format!("\n    {:10}   ({})", "", prtstr(err, 60)));
        }
        for r in &e.rcpts {
            out.push_str(&format!("\n\t\t\t\t       {}", prtstr(&r.typed, 40)));
        }
        out.push('\n');
    }
    out.push_str(&format!("\t\tTotal requests: {n}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Recipient;
    use chrono::{TimeZone, Utc};
    use std::sync::Arc;

    #[test]
    fn the_bp_layout() {
        let z = Zone::parse("-0800 PST").unwrap();
        assert_eq!(format("/var/spool/mqueue", &[], &HashSet::new(), &z), "/var/spool/mqueue is empty\n");
        let e = QueueEntry {
            qid: "jBLHvTar021527".into(),
            sender_typed: "<bounce@lamers.org>".into(),
            rcpts: vec![Recipient { typed: "<mary@sysiphus.com>".into(), addr: "mary@sysiphus.com".into() }],
            data: Arc::new(b"Received: x\r\nSubject: y\r\n\r\n0123456789\r\n".to_vec()),
            arrived: Utc.with_ymd_and_hms(2005, 12, 21, 17, 57, 0).unwrap(),
            last_error: Some("host map: lookup (lamers.org): deferred".into()),
            ..QueueEntry::default()
        };
        let mut two = e.clone();
        two.qid = "jBHKqB8k002934".into();
        two.last_error = None;
        let busy: HashSet<String> = ["jBHKqB8k002934".to_string()].into();
        let text = format("/var/spool/mqueue", &[e, two], &busy, &z);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "/var/spool/mqueue (2 requests)");
        assert_eq!(lines[1], HEADER);
        assert_eq!(lines[2], "jBLHvTar021527       11 Wed Dec 21 09:57 <bounce@lamers.org>");
        // 17 columns, then the error in parentheses (spec §7.2).
        assert_eq!(lines[3], "                 (host map: lookup (lamers.org): deferred)");
        // 39 columns (four tabs and seven blanks), then the recipient.
        assert_eq!(lines[4], "\t\t\t\t       <mary@sysiphus.com>");
        assert_eq!(lines[5], "jBHKqB8k002934*      11 Wed Dec 21 09:57 <bounce@lamers.org>");
        assert_eq!(lines[7], "\t\tTotal requests: 2");
        assert_eq!(prtstr("a\u{7}b", 40), "a^Gb");
        assert_eq!(prtstr(&"x".repeat(50), 40).len(), 40);
    }
}
