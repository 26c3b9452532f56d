//! Delivery status notifications (spec §7.6, §10.4): the delay warning and
//! the returned-mail message, as RFC 3464 `multipart/report` messages from
//! `MAILER-DAEMON` with the null sender.
//!
//! Talks to nothing: builds the message bytes (with mail-builder) from the
//! original queue entry and what happened to its recipients. The texts are
//! Sendmail 8.13's (`savemail.c`): the subjects `Warning: could not send
//! message for past 4 hours` and `Returned mail: see transcript for
//! details`, `From: Mail Delivery Subsystem <MAILER-DAEMON@$j>`, the warning
//! banner, `----- The following addresses had permanent fatal errors -----`,
//! `----- Transcript of session follows -----`. The three parts:
//! 1. a human-readable explanation (`text/plain`);
//! 2. `message/delivery-status`: `Reporting-MTA`, `Received-From-MTA`,
//!    `Arrival-Date`, then per recipient `Final-Recipient`, `Action`
//!    (`failed` or `delayed`), `Status`, `Remote-MTA`, `Diagnostic-Code`,
//!    `Last-Attempt-Date` and, for a warning, `Will-Retry-Until`;
//! 3. the original message (`message/rfc822`) for a returned message, its
//!    headers only (`text/rfc822-headers`) for a warning and for a message
//!    of negative precedence class (`Precedence: bulk`, `list`, `junk`: as
//!    Sendmail, their bodies are never returned).

use super::entry::QueueEntry;
use crate::dates::Zone;
use chrono::{DateTime, Utc};
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use mail_builder::MessageBuilder;
use std::time::Duration;

/// Which notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnKind {
    /// Still trying: the delay warning after `queuewarn`.
    Warning,
    /// Given up: recipients that failed for good, or everything left after `queuereturn`.
    Failure,
}

impl DsnKind {
    /// `warning` or `failure`, as reports name it.
    pub fn word(self) -> &'static str {
        match self {
            DsnKind::Warning => "warning",
            DsnKind::Failure => "failure",
        }
    }
}

/// One recipient the notice reports on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRcpt {
    /// As the log shows it (`<john@sysiphus.com>`).
    pub typed: String,
    /// The address (`Final-Recipient`).
    pub addr: String,
    /// The enhanced status (`5.1.1`, `4.4.7`, `4.0.0`).
    pub status: String,
    /// The next hop, if one was reached or tried (`int1.sysiphus.com.`).
    pub remote: Option<String>,
    /// What went wrong: the `stat=` text.
    pub stat: String,
}

/// Everything one notice needs.
#[derive(Debug, Clone)]
pub struct DsnInput<'a> {
    /// Which notice.
    pub kind: DsnKind,
    /// The message it is about.
    pub original: &'a QueueEntry,
    /// The recipients it reports on.
    pub rcpts: &'a [DsnRcpt],
    /// `$j`.
    pub hostname: &'a str,
    /// `$v/$Z`.
    pub version: &'a str,
    /// The relay's zone.
    pub zone: &'a Zone,
    /// Now.
    pub now: DateTime<Utc>,
    /// The notice's own queue id.
    pub qid: &'a str,
    /// `Timeout.queuewarn` (the warning's subject).
    pub queuewarn: Duration,
    /// `Timeout.queuereturn`.
    pub queuereturn: Duration,
    /// True when the message is returned because `queuereturn` passed.
    pub timed_out: bool,
}

/// A built notice.
#[derive(Debug, Clone)]
pub struct Dsn {
    /// The message, CRLF line ends.
    pub data: Vec<u8>,
    /// Its `Message-Id:`.
    pub msgid: String,
    /// The log's reason (`Cannot send message for 5 days`, `User unknown`).
    pub reason: String,
}

/// Sendmail's `pintvl`: `4 hours`, `5 days`, `1 day, 12 hours`, `30 minutes`.
pub fn interval(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [(s / 86_400, "day"), (s % 86_400 / 3600, "hour"), (s % 3600 / 60, "minute"), (s % 60, "second")];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if words.is_empty() {
        "0 seconds".into()
    } else {
        words.join(", ")
    }
}

/// The short reason a failed recipient gives the log (`User unknown`):
/// the text after `addr... `, else without the reply codes.
pub fn short_reason(stat: &str) -> String {
    if let Some((_, after)) = stat.split_once("... ") {
        return after.trim().to_string();
    }
    let mut words = stat.split_whitespace().peekable();
    if words.peek().is_some_and(|w| w.len() == 3 && w.bytes().all(|b| b.is_ascii_digit())) {
        words.next();
        if words.peek().is_some_and(|w| w.split('.').count() == 3 && w.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        {
            words.next();
        }
    }
    words.collect::<Vec<_>>().join(" ")
}

/// The transcript line for a failed recipient: the remote's reply as it
/// was, else `<code> <status> <addr>... <text>` as Sendmail writes its own.
fn transcript_line(r: &DsnRcpt) -> String {
    let first = r.stat.split_whitespace().next().unwrap_or("");
    if first.len() == 3 && first.bytes().all(|b| b.is_ascii_digit()) {
        r.stat.clone()
    } else if r.stat.starts_with("Deferred") {
        format!("{}... {}", r.typed, r.stat)
    } else {
        let code = if r.status.starts_with('5') { "550" } else { "451" };
        format!("{code} {} {}... {}", r.status, r.typed, r.stat)
    }
}

/// `mail.example.net` out of `mail.example.net [203.0.113.45]`, `[ip]` when nameless.
fn client_name(client: &str) -> String {
    client.split_whitespace().next().unwrap_or("localhost").to_string()
}

/// Build the notice.
pub fn build(i: &DsnInput<'_>) -> Dsn {
    let o = i.original;
    let arrival = i.zone.rfc2822(o.arrived);
    let msgid = crate::intake::make_message_id(i.now, i.qid, i.hostname);
    let (subject, reason) = match (i.kind, i.timed_out) {
        (DsnKind::Warning, _) => {
            let w = format!("Warning: could not send message for past {}", interval(i.queuewarn));
            (w.clone(), w)
        }
        (DsnKind::Failure, true) => (
            "Returned mail: see transcript for details".to_string(),
            format!("Cannot send message for {}", interval(i.queuereturn)),
        ),
        (DsnKind::Failure, false) => (
            "Returned mail: see transcript for details".to_string(),
            i.rcpts.first().map(|r| short_reason(&r.stat)).unwrap_or_default(),
        ),
    };

    // 1. The explanation.
    let mut text = String::new();
    if i.kind == DsnKind::Warning {
        text.push_str("    **********************************************\r\n");
        text.push_str("    **      THIS IS A WARNING MESSAGE ONLY      **\r\n");
        text.push_str("    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **\r\n");
        text.push_str("    **********************************************\r\n\r\n");
    }
    text.push_str(&format!("The original message was received at {arrival}\r\nfrom {}\r\n\r\n", o.client));
    if i.kind == DsnKind::Failure {
        text.push_str("   ----- The following addresses had permanent fatal errors -----\r\n");
        for r in i.rcpts {
            text.push_str(&format!("{}\r\n    (reason: {})\r\n", r.typed, r.stat));
        }
        text.push_str("\r\n");
    }
    text.push_str("   ----- Transcript of session follows -----\r\n");
    for r in i.rcpts {
        text.push_str(&transcript_line(r));
        text.push_str("\r\n");
    }
    match (i.kind, i.timed_out) {
        (DsnKind::Warning, _) => {
            text.push_str(&format!("Warning: message still undelivered after {}\r\n", interval(i.queuewarn)));
            text.push_str(&format!("Will keep trying until message is {} old\r\n", interval(i.queuereturn)));
        }
        (DsnKind::Failure, true) => {
            text.push_str(&format!("Message could not be delivered for {}\r\n", interval(i.queuereturn)));
            text.push_str("Message will be deleted from queue\r\n");
        }
        _ => {}
    }

    // 2. The machine-readable report.
    let mut status = format!(
        "Reporting-MTA: dns; {}\r\nReceived-From-MTA: DNS; {}\r\nArrival-Date: {arrival}\r\n",
        i.hostname,
        client_name(&o.client)
    );
    let retry_until = i.zone.rfc2822(o.arrived + chrono::Duration::from_std(i.queuereturn).unwrap_or_default());
    for r in i.rcpts {
        let action = match i.kind {
            DsnKind::Warning => "delayed",
            DsnKind::Failure => "failed",
        };
        status.push_str(&format!(
            "\r\nFinal-Recipient: RFC822; {}\r\nAction: {action}\r\nStatus: {}\r\n",
            r.addr, r.status
        ));
        if let Some(remote) = &r.remote {
            status.push_str(&format!("Remote-MTA: DNS; {}\r\n", remote.trim_end_matches('.')));
        }
        let first = r.stat.split_whitespace().next().unwrap_or("");
        if first.len() == 3 && first.bytes().all(|b| b.is_ascii_digit()) {
            status.push_str(&format!("Diagnostic-Code: SMTP; {}\r\n", r.stat));
        } else if let Some(reply) =
            r.stat.strip_prefix("Deferred: ").filter(|s| s.as_bytes().first().is_some_and(u8::is_ascii_digit))
        {
            status.push_str(&format!("Diagnostic-Code: SMTP; {reply}\r\n"));
        }
        if let Some(t) = o.last_attempt {
            status.push_str(&format!("Last-Attempt-Date: {}\r\n", i.zone.rfc2822(t)));
        }
        if i.kind == DsnKind::Warning {
            status.push_str(&format!("Will-Retry-Until: {retry_until}\r\n"));
        }
    }

    // 3. The original (headers only for a warning or a negative class).
    let whole = i.kind == DsnKind::Failure && o.class >= 0;
    let original: Vec<u8> = if whole {
        o.data.as_ref().clone()
    } else {
        let end = crate::intake::header_block(&o.data).end;
        o.data[..end].to_vec()
    };
    let eight_bit = original.iter().any(|b| *b >= 0x80);
    let cte = if eight_bit { "8bit" } else { "7bit" };
    let original_type = if whole { "message/rfc822" } else { "text/rfc822-headers" };

    let boundary = format!("{}.{}/{}", i.qid, i.now.timestamp(), i.hostname);
    let report = MimePart::new(
        ContentType::new("multipart/report")
            .attribute("report-type", "delivery-status")
            .attribute("boundary", boundary),
        vec![
            MimePart::new(ContentType::new("text/plain").attribute("charset", "us-ascii"), text.into_bytes())
                .header("Content-Transfer-Encoding", Raw::new("7bit")),
            MimePart::new(ContentType::new("message/delivery-status"), status.into_bytes())
                .header("Content-Transfer-Encoding", Raw::new("7bit")),
            MimePart::new(ContentType::new(original_type), original).header("Content-Transfer-Encoding", Raw::new(cte)),
        ],
    );
    let received = format!(
        "from localhost (localhost) by {} ({}) id {}; {}",
        i.hostname,
        i.version,
        i.qid,
        i.zone.rfc2822_commented(i.now)
    );
    let auto = match i.kind {
        DsnKind::Warning => "auto-generated (warning-timeout)",
        DsnKind::Failure if i.timed_out => "auto-generated (failure-timeout)",
        DsnKind::Failure => "auto-generated (failure)",
    };
    let to = if o.sender.is_empty() { String::new() } else { o.sender.clone() };
    let data = MessageBuilder::new()
        .header("Received", Raw::new(received))
        .header("Date", Raw::new(i.zone.rfc2822_commented(i.now)))
        .from(("Mail Delivery Subsystem", format!("MAILER-DAEMON@{}", i.hostname).as_str()))
        .header("Message-ID", Raw::new(msgid.clone()))
        .to(to.as_str())
        .subject(subject)
        .header("Auto-Submitted", Raw::new(auto))
        .body(report)
        .write_to_vec()
        .unwrap_or_default();
    Dsn { data, msgid, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Recipient;
    use chrono::TimeZone;
    use std::sync::Arc;

    fn original() -> QueueEntry {
        QueueEntry {
            qid: "k056SDUq003739".into(),
            sender_typed: "<alice@example.net>".into(),
            sender: "alice@example.net".into(),
            rcpts: vec![Recipient { typed: "<john@sysiphus.com>".into(), addr: "john@sysiphus.com".into() }],
            data: Arc::new(b"Received: from mail.example.net\r\nSubject: Lunch\r\nMessage-Id: <1@example.net>\r\n\r\nSee you at noon.\r\n".to_vec()),
            arrived: Utc.with_ymd_and_hms(2006, 1, 5, 6, 28, 13).unwrap(),
            last_attempt: Some(Utc.with_ymd_and_hms(2006, 1, 5, 10, 28, 13).unwrap()),
            client: "mail.example.net [203.0.113.45]".into(),
            ..QueueEntry::default()
        }
    }

    fn input<'a>(
        kind: DsnKind,
        o: &'a QueueEntry,
        rcpts: &'a [DsnRcpt],
        zone: &'a Zone,
        timed_out: bool,
    ) -> DsnInput<'a> {
        DsnInput {
            kind,
            original: o,
            rcpts,
            hostname: "external.sysiphus.com",
            version: "8.13.4/8.13.4",
            zone,
            now: Utc.with_ymd_and_hms(2006, 1, 5, 10, 28, 14).unwrap(),
            qid: "k05ASEUr003740",
            queuewarn: Duration::from_secs(4 * 3600),
            queuereturn: Duration::from_secs(5 * 86_400),
            timed_out,
        }
    }

    #[test]
    fn intervals_and_reasons() {
        assert_eq!(interval(Duration::from_secs(4 * 3600)), "4 hours");
        assert_eq!(interval(Duration::from_secs(5 * 86_400)), "5 days");
        assert_eq!(interval(Duration::from_secs(3600)), "1 hour");
        assert_eq!(interval(Duration::from_secs(86_400 + 12 * 3600)), "1 day, 12 hours");
        assert_eq!(short_reason("550 5.1.1 <john@sysiphus.com>... User unknown"), "User unknown");
        assert_eq!(short_reason("554 5.7.1 go away"), "go away");
        assert_eq!(
            short_reason("Host unknown (Name server: nowhere.example: host not found)"),
            "Host unknown (Name server: nowhere.example: host not found)"
        );
    }

    #[test]
    fn a_warning_is_a_multipart_report_with_the_original_headers() {
        let z = Zone::parse("-0800 PST").unwrap();
        let o = original();
        let rcpts = [DsnRcpt {
            typed: "<john@sysiphus.com>".into(),
            addr: "john@sysiphus.com".into(),
            status: "4.0.0".into(),
            remote: Some("internal.sysiphus.com.".into()),
            stat: "Deferred: Connection refused by internal.sysiphus.com.".into(),
        }];
        let d = build(&input(DsnKind::Warning, &o, &rcpts, &z, false));
        let text = String::from_utf8(d.data.clone()).unwrap();
        assert_eq!(d.reason, "Warning: could not send message for past 4 hours");
        assert_eq!(d.msgid, "<200601051028.k05ASEUr003740@external.sysiphus.com>");
        for want in [
            "Subject: Warning: could not send message for past 4 hours\r\n",
            "From: \"Mail Delivery Subsystem\" <MAILER-DAEMON@external.sysiphus.com>\r\n",
            "To: <alice@example.net>\r\n",
            "Auto-Submitted: auto-generated (warning-timeout)\r\n",
            "Content-Type: multipart/report; report-type=\"delivery-status\";",
            "**      THIS IS A WARNING MESSAGE ONLY      **",
            "The original message was received at Wed, 4 Jan 2006 22:28:13 -0800\r\nfrom mail.example.net [203.0.113.45]\r\n",
            "<john@sysiphus.com>... Deferred: Connection refused by internal.sysiphus.com.\r\n",
            "Warning: message still undelivered after 4 hours\r\nWill keep trying until message is 5 days old\r\n",
            "Content-Type: message/delivery-status\r\n",
            "Reporting-MTA: dns; external.sysiphus.com\r\n",
            "Received-From-MTA: DNS; mail.example.net\r\n",
            "Final-Recipient: RFC822; john@sysiphus.com\r\nAction: delayed\r\nStatus: 4.0.0\r\nRemote-MTA: DNS; internal.sysiphus.com\r\n",
            "Will-Retry-Until: Mon, 9 Jan 2006 22:28:13 -0800\r\n",
            "Content-Type: text/rfc822-headers\r\n",
            "Subject: Lunch\r\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("See you at noon"), "a warning carries the headers only\n{text}");
        assert!(text.starts_with("Received: from localhost (localhost)"), "{text}");
        // A well-formed MIME message.
        let hb = crate::intake::header_block(&d.data);
        assert!(hb.headers.iter().any(|h| h.name == "MIME-Version"), "{text}");
    }

    #[test]
    fn a_returned_message_lists_the_failed_recipients_and_carries_the_original() {
        let z = Zone::utc();
        let o = original();
        let rcpts = [DsnRcpt {
            typed: "<john@sysiphus.com>".into(),
            addr: "john@sysiphus.com".into(),
            status: "5.1.1".into(),
            remote: Some("int1.sysiphus.com.".into()),
            stat: "550 5.1.1 <john@sysiphus.com>... User unknown".into(),
        }];
        let d = build(&input(DsnKind::Failure, &o, &rcpts, &z, false));
        let text = String::from_utf8(d.data).unwrap();
        assert_eq!(d.reason, "User unknown");
        for want in [
            "Subject: Returned mail: see transcript for details\r\n",
            "   ----- The following addresses had permanent fatal errors -----\r\n<john@sysiphus.com>\r\n    (reason: 550 5.1.1 <john@sysiphus.com>... User unknown)\r\n",
            "   ----- Transcript of session follows -----\r\n550 5.1.1 <john@sysiphus.com>... User unknown\r\n",
            "Action: failed\r\nStatus: 5.1.1\r\n",
            "Diagnostic-Code: SMTP; 550 5.1.1 <john@sysiphus.com>... User unknown\r\n",
            "Content-Type: message/rfc822\r\n",
            "See you at noon.",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        let timed =
            [DsnRcpt { status: "4.4.7".into(), stat: "Deferred: Connection refused by x.".into(), ..rcpts[0].clone() }];
        let d = build(&input(DsnKind::Failure, &o, &timed, &z, true));
        let text = String::from_utf8(d.data).unwrap();
        assert_eq!(d.reason, "Cannot send message for 5 days");
        // Bulk mail gets its headers back, never its body.
        let mut bulk = o.clone();
        bulk.class = -60;
        let b = String::from_utf8(build(&input(DsnKind::Failure, &bulk, &timed, &z, true)).data).unwrap();
        assert!(b.contains("Content-Type: text/rfc822-headers") && !b.contains("See you at noon"), "{b}");
        assert!(
            text.contains("Message could not be delivered for 5 days\r\nMessage will be deleted from queue\r\n"),
            "{text}"
        );
        assert!(text.contains("Auto-Submitted: auto-generated (failure-timeout)"), "{text}");
    }
}
