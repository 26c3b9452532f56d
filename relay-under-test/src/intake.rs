//! Intake, the cleanup step at end of DATA: what the relay adds to a message
//! before queueing it (spec §5.2, §5.4, §5.6).
//!
//! Talks to nothing: pure functions from the received bytes and the session's
//! facts to the bytes that are queued.
//!
//! - `Received:` is prepended, in Sendmail's shape:
//!   `from <HELO> (<rDNS> [<ip>])`, `by $j ($v/$Z) with SMTP|ESMTP id <qid>`,
//!   `for <rcpt as typed>` only with exactly one recipient, then the date
//!   with its zone comment.
//! - `Date:` and `Message-Id: <YYYYMMDDHHMM.qid@$j>` (UTC stamp) are added,
//!   only when absent, right after our own trace lines and before the
//!   message's headers, where Sendmail puts the headers its configuration
//!   defines (the course's delivered example; real Sendmail 8.17 the same).
//! - `X-Authentication-Warning: $j: <text>` follows our `Received:`, one per
//!   warning the session raised (spec §5.5; the session decides when, as
//!   `PrivacyOptions` `authwarnings` says).
//! - Trace headers are counted for `MaxHopCount`.

use crate::dates::{message_id_stamp, Zone};
use chrono::{DateTime, Utc};
use std::net::IpAddr;

/// The protocol the client spoke, by its greeting command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// The client said `HELO`.
    Smtp,
    /// The client said `EHLO`.
    Esmtp,
}

impl Proto {
    /// `SMTP` or `ESMTP`, as in `Received: ... with` and the log's `proto=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Smtp => "SMTP",
            Proto::Esmtp => "ESMTP",
        }
    }
}

/// What intake needs to know about the transaction.
#[derive(Debug, Clone)]
pub struct Intake<'a> {
    /// The HELO/EHLO argument.
    pub helo: &'a str,
    /// Which greeting the client used.
    pub proto: Proto,
    /// The client's PTR name, if it has one.
    pub client_name: Option<&'a str>,
    /// The client's lab address.
    pub client_ip: IpAddr,
    /// The PTR name does not resolve back to `client_ip`: ` (may be forged)`
    /// goes inside the comment (spec §5.2).
    pub may_be_forged: bool,
    /// `$j`.
    pub hostname: &'a str,
    /// `$v/$Z`.
    pub version: &'a str,
    /// This hop's queue id.
    pub qid: &'a str,
    /// Accepted recipients exactly as typed in RCPT.
    pub rcpts_typed: &'a [String],
    /// Arrival time.
    pub now: DateTime<Utc>,
    /// The profile's zone.
    pub zone: &'a Zone,
    /// `X-Authentication-Warning:` texts, e.g. `<client> didn't use HELO protocol`.
    pub auth_warnings: &'a [String],
}

/// The message ready for the queue.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Bytes to queue and send on, CRLF line ends.
    pub data: Vec<u8>,
    /// The `Message-Id:` value (the client's, or the one we added).
    pub msgid: String,
    /// Precedence class from a `Precedence:` header (0 when none).
    pub class: i64,
}

/// Build this hop's `Received:` header, CRLF-terminated, folded with tabs.
pub fn received_header(i: &Intake<'_>) -> String {
    let client = match i.client_name {
        Some(n) if i.may_be_forged => format!("{n} [{}] (may be forged)", i.client_ip),
        Some(n) => format!("{n} [{}]", i.client_ip),
        None => format!("[{}]", i.client_ip),
    };
    let date = i.zone.rfc2822_commented(i.now);
    let by = format!("by {} ({}) with {} id {}", i.hostname, i.version, i.proto.as_str(), i.qid);
    match i.rcpts_typed {
        [one] => format!("Received: from {} ({client})\r\n\t{by}\r\n\tfor {one}; {date}\r\n", i.helo),
        _ => format!("Received: from {} ({client})\r\n\t{by}; {date}\r\n", i.helo),
    }
}

/// The `554` text when a message has passed too many hops (spec §2.4,
/// `[S deliver.c]`): `via` is the client that handed it to us
/// (`RealHostName`: its PTR name, else `[ip]`), `to` the first recipient.
pub fn too_many_hops(hops: usize, max: u32, from: &str, via: &str, to: &str) -> String {
    format!("5.4.6 Too many hops {hops} ({max} max): from {from} via {via}, to {to}")
}

/// One `X-Authentication-Warning:` header (spec §5.5), CRLF-terminated.
pub fn auth_warning_header(hostname: &str, text: &str) -> String {
    format!("X-Authentication-Warning: {hostname}: {text}\r\n")
}

/// The `Message-Id:` value this relay makes: `<YYYYMMDDHHMM.qid@host>`.
pub fn make_message_id(now: DateTime<Utc>, qid: &str, hostname: &str) -> String {
    format!("<{}.{qid}@{hostname}>", message_id_stamp(now))
}

/// One parsed header: name, unfolded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Field name as written.
    pub name: String,
    /// Value, continuation lines joined, trimmed.
    pub value: String,
}

/// Where the header block ends and what it holds.
#[derive(Debug, Clone)]
pub struct HeaderBlock {
    /// Byte offset just past the last header line.
    pub end: usize,
    /// True when a blank line follows the headers.
    pub terminated: bool,
    /// The headers in order.
    pub headers: Vec<Header>,
}

fn is_field_name(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| (33..=126).contains(&b) && b != b':')
}

/// Split off the header block (RFC 5322 2.2): header lines up to the first
/// empty line; a line that is neither a header nor a continuation ends the
/// block too (it is the start of a body without separator).
pub fn header_block(data: &[u8]) -> HeaderBlock {
    let mut headers: Vec<Header> = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let nl = data[pos..].iter().position(|&b| b == b'\n').map(|i| pos + i + 1).unwrap_or(data.len());
        let line = &data[pos..nl];
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            return HeaderBlock { end: pos, terminated: true, headers };
        }
        if (text[0] == b' ' || text[0] == b'\t') && !headers.is_empty() {
            let last = headers.last_mut().expect("checked non-empty");
            last.value.push(' ');
            last.value.push_str(String::from_utf8_lossy(text).trim());
            last.value = last.value.trim().to_string();
        } else if let Some(colon) = text.iter().position(|&b| b == b':').filter(|&c| is_field_name(&text[..c])) {
            headers.push(Header {
                name: String::from_utf8_lossy(&text[..colon]).into_owned(),
                value: String::from_utf8_lossy(&text[colon + 1..]).trim().to_string(),
            });
        } else {
            return HeaderBlock { end: pos, terminated: false, headers };
        }
        pos = nl;
    }
    HeaderBlock { end: data.len(), terminated: false, headers }
}

/// Trace headers counted as hops: `Received:`, `X400-Received:`, `Via:`,
/// `Mail-From:` (spec §5.6).
pub fn hop_count(data: &[u8]) -> usize {
    header_block(data)
        .headers
        .iter()
        .filter(|h| ["received", "x400-received", "via", "mail-from"].iter().any(|n| h.name.eq_ignore_ascii_case(n)))
        .count()
}

/// The size the log's `size=` shows: octets as received, each line end
/// counted as one octet. Sendmail stores messages with LF line ends, which
/// is how the course's `size=108` / `pri=30108` example adds up; headers the
/// relay adds are not counted.
pub fn logged_size(data: &[u8]) -> u64 {
    let crlf = data.windows(2).filter(|w| w == b"\r\n").count();
    (data.len() - crlf) as u64
}

/// Message class from `Precedence:` (spec §5.5, `[S proto.m4]`).
pub fn precedence_class(value: &str) -> i64 {
    match value.trim().to_ascii_lowercase().as_str() {
        "special-delivery" => 100,
        "list" => -30,
        "bulk" => -60,
        "junk" => -100,
        _ => 0,
    }
}

/// Prepend `Received:`, add `Date:`/`Message-Id:` when absent.
pub fn prepare(i: &Intake<'_>, raw: &[u8]) -> Prepared {
    let block = header_block(raw);
    let find = |name: &str| block.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.clone());
    let class = find("Precedence").map(|v| precedence_class(&v)).unwrap_or(0);
    let mut added = String::new();
    if find("Date").is_none() {
        added.push_str(&format!("Date: {}\r\n", i.zone.rfc2822_commented(i.now)));
    }
    let msgid = match find("Message-Id") {
        Some(v) => v,
        None => {
            let id = make_message_id(i.now, i.qid, i.hostname);
            added.push_str(&format!("Message-Id: {id}\r\n"));
            id
        }
    };
    let mut data = Vec::with_capacity(raw.len() + 256);
    data.extend_from_slice(received_header(i).as_bytes());
    for w in i.auth_warnings {
        data.extend_from_slice(auth_warning_header(i.hostname, w).as_bytes());
    }
    data.extend_from_slice(added.as_bytes());
    let head = &raw[..block.end];
    data.extend_from_slice(head);
    if !head.is_empty() && !head.ends_with(b"\n") {
        data.extend_from_slice(b"\r\n");
    }
    if !block.terminated && block.end < raw.len() {
        // A body with no blank line before it: give it one.
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(&raw[block.end..]);
    Prepared { data, msgid, class }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use pretty_assertions::assert_eq;

    fn intake<'a>(rcpts: &'a [String], zone: &'a Zone, name: Option<&'a str>, proto: Proto) -> Intake<'a> {
        Intake {
            helo: "spoof.example.com",
            proto,
            client_name: name,
            client_ip: "130.55.1.2".parse().unwrap(),
            may_be_forged: false,
            hostname: "external.sysiphus.com",
            version: "8.13.4/8.13.4",
            qid: "jBM2Nc9l027230",
            rcpts_typed: rcpts,
            now: Utc.with_ymd_and_hms(2005, 12, 22, 2, 24, 20).unwrap(),
            zone,
            auth_warnings: &[],
        }
    }

    #[test]
    fn received_shapes() {
        let z = Zone::parse("-0800 PST").unwrap();
        let one = vec!["john@sysiphus.com".to_string()];
        assert_eq!(
            received_header(&intake(&one, &z, Some("real.dom.com"), Proto::Smtp)),
            "Received: from spoof.example.com (real.dom.com [130.55.1.2])\r\n\
             \tby external.sysiphus.com (8.13.4/8.13.4) with SMTP id jBM2Nc9l027230\r\n\
             \tfor john@sysiphus.com; Wed, 21 Dec 2005 18:24:20 -0800 (PST)\r\n"
        );
        let two = vec!["<a@x.com>".to_string(), "<b@x.com>".to_string()];
        assert_eq!(
            received_header(&intake(&two, &z, None, Proto::Esmtp)),
            "Received: from spoof.example.com ([130.55.1.2])\r\n\
             \tby external.sysiphus.com (8.13.4/8.13.4) with ESMTP id jBM2Nc9l027230; Wed, 21 Dec 2005 18:24:20 -0800 (PST)\r\n"
        );
        let mut forged = intake(&one, &z, Some("real.dom.com"), Proto::Smtp);
        forged.may_be_forged = true;
        assert!(received_header(&forged)
            .starts_with("Received: from spoof.example.com (real.dom.com [130.55.1.2] (may be forged))\r\n"));
    }

    #[test]
    fn adds_date_and_message_id_only_when_missing() {
        let z = Zone::parse("-0800").unwrap();
        let one = vec!["<john@sysiphus.com>".to_string()];
        let i = intake(&one, &z, None, Proto::Smtp);
        let bare = b"From: Santa@Northpole.com\r\nSubject: Ho\r\n\r\nbody\r\n";
        let p = prepare(&i, bare);
        let text = String::from_utf8(p.data).unwrap();
        assert!(
            text.ends_with(
                "Date: Wed, 21 Dec 2005 18:24:20 -0800 (UTC-08:00)\r\n\
             Message-Id: <200512220224.jBM2Nc9l027230@external.sysiphus.com>\r\n\
             From: Santa@Northpole.com\r\nSubject: Ho\r\n\r\nbody\r\n"
            ),
            "{text}"
        );
        assert_eq!(p.msgid, "<200512220224.jBM2Nc9l027230@external.sysiphus.com>");

        let full =
            b"Message-ID: <x@client>\r\nDate: Mon, 1 Jan 2001 00:00:00 +0000\r\nPrecedence: bulk\r\n\r\nbody\r\n";
        let p = prepare(&i, full);
        let text = String::from_utf8(p.data).unwrap();
        assert_eq!(text.matches("Date:").count(), 1);
        assert_eq!(text.to_ascii_lowercase().matches("message-id:").count(), 1);
        assert_eq!(p.msgid, "<x@client>");
        assert_eq!(p.class, -60);
        assert!(text.starts_with("Received: "));
    }

    #[test]
    fn body_without_separator_and_empty_message() {
        let z = Zone::utc();
        let one = vec!["a@b.c".to_string()];
        let i = intake(&one, &z, None, Proto::Smtp);
        let text = String::from_utf8(prepare(&i, b"1 2 3\r\n").data).unwrap();
        assert!(
            text.contains("(UTC)\r\nMessage-Id: <200512220224.jBM2Nc9l027230@external.sysiphus.com>\r\n\r\n1 2 3\r\n"),
            "{text}"
        );
        let text = String::from_utf8(prepare(&i, b"").data).unwrap();
        assert!(text.ends_with("@external.sysiphus.com>\r\n"), "{text}");
    }

    #[test]
    fn auth_warnings_follow_our_received_header() {
        let z = Zone::utc();
        let one = vec!["a@b.c".to_string()];
        let warnings = vec!["real.dom.com [130.55.1.2] didn't use HELO protocol".to_string()];
        let mut i = intake(&one, &z, None, Proto::Smtp);
        i.auth_warnings = &warnings;
        let text = String::from_utf8(prepare(&i, b"Subject: x\r\n\r\nbody\r\n").data).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert!(lines[2].starts_with("\tfor a@b.c;"), "{text}");
        assert_eq!(
            lines[3],
            "X-Authentication-Warning: external.sysiphus.com: real.dom.com [130.55.1.2] didn't use HELO protocol"
        );
        assert!(lines[4].starts_with("Date: "), "{text}");
        assert!(lines[5].starts_with("Message-Id: "), "{text}");
        assert_eq!(lines[6], "Subject: x");
        assert_eq!(
            too_many_hops(26, 25, "<a@b>", "real.dom.com", "<c@d>"),
            "5.4.6 Too many hops 26 (25 max): from <a@b> via real.dom.com, to <c@d>"
        );
    }

    #[test]
    fn counts_hops_and_sizes() {
        let m = b"Received: from a\r\n\tby b\r\nVia: x\r\nX400-Received: y\r\nMail-From: z\r\nSubject: Received: no\r\n\r\nReceived: body\r\n";
        assert_eq!(hop_count(m), 4);
        // The course's forged message: 108 octets with LF line ends.
        let forged = b"From: Santa@Northpole.com\r\nTo: naughty@somewhere.com\r\nSubject: Ho Ho Ho\r\n\r\nYou've been a naughty boy this year!\r\n";
        assert_eq!(logged_size(forged), 108);
    }
}
