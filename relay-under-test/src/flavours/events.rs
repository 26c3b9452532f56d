//! The shared event model: what any relay's log says happened to a message,
//! whatever the MTA. One normalizer per flavour turns a syslog line
//! (`Nov 21 11:38:20 external postfix/smtpd[2641]: ...`) into zero or more
//! events; MTA-neutral assertions are written against these.
//!
//! | event | Postfix | Sendmail | Exim | OpenSMTPD |
//! |---|---|---|---|---|
//! | received | `QID: client=` | `QID: from=..., relay=` | `<=` | `smtp message msgid=` |
//! | delivered | `status=sent` | `stat=Sent` | `=>`, `->` | `result="Ok"` |
//! | deferred | `status=deferred` | `stat=Deferred` | `==` | `result="TempFail"` |
//! | bounced | `status=bounced` | `dsn=5...` without Sent | `**` | `result="PermFail"` |
//! | rejected | `reject:` | `ruleset=... reject=` | `rejected RCPT/MAIL/after DATA` | `failed-command ... result="5..."` |
//! | dsn_sent | `sender non-delivery notification: NEWQID` | `QID: NEWQID: DSN:` | `<= <> ... R=QID` | `<> ... bounce` |
//!
//! Talks to nothing.

use serde::Serialize;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A message was accepted into the queue.
    Received,
    /// A recipient was handed to the next hop (2xx).
    Delivered,
    /// A delivery attempt failed for now; the message stays queued.
    Deferred,
    /// A recipient failed for good.
    Bounced,
    /// An SMTP command of a client was refused (the message was not taken).
    Rejected,
    /// The relay made a delivery status notification (bounce) message.
    DsnSent,
}

/// One normalized log event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayEvent {
    /// What happened.
    pub kind: EventKind,
    /// The MTA's queue id, when the line has one.
    pub qid: Option<String>,
    /// Envelope sender, without brackets (`""` for `<>`), when logged.
    pub from: Option<String>,
    /// Envelope recipient, without brackets, when logged.
    pub to: Option<String>,
    /// The peer: the client for received/rejected, the next hop for deliveries.
    pub peer: Option<String>,
    /// Enhanced status code or reply code (`5.7.1`, `554`), when logged.
    pub status: Option<String>,
    /// The reason or reply text.
    pub text: Option<String>,
    /// For dsn_sent: the queue id of the notification message.
    pub dsn_qid: Option<String>,
    /// The log line it came from.
    pub line: String,
}

impl RelayEvent {
    fn new(kind: EventKind, line: &str) -> RelayEvent {
        RelayEvent {
            kind,
            qid: None,
            from: None,
            to: None,
            peer: None,
            status: None,
            text: None,
            dsn_qid: None,
            line: line.to_string(),
        }
    }
}

/// `prog[pid]: message` → (`prog`, `message`) from a syslog-file line.
pub fn split_syslog(line: &str) -> Option<(&str, &str)> {
    // "Mmm dd hh:mm:ss host prog[pid]: msg"
    let rest = line.get(16..)?;
    let (_host, rest) = rest.split_once(' ')?;
    let (tag, msg) = rest.split_once(": ")?;
    let prog = tag.split('[').next().unwrap_or(tag);
    Some((prog, msg))
}

/// The value of `key=` in `k=v, k=v` text: up to `, ` or the end; `<...>`
/// brackets removed for addresses.
pub fn field<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("{key}=");
    let mut start = 0;
    while let Some(i) = msg[start..].find(&pat) {
        let at = start + i;
        if at == 0 || matches!(msg.as_bytes()[at - 1], b' ' | b',') {
            let v = &msg[at + pat.len()..];
            let end = if let Some(inner) = v.strip_prefix('"') {
                inner.find('"').map(|e| e + 2).unwrap_or(v.len())
            } else if v.starts_with('<') {
                v.find('>').map(|e| e + 1).unwrap_or(v.len())
            } else {
                v.find([',', ' ']).unwrap_or(v.len())
            };
            return Some(v[..end].trim_end_matches(','));
        }
        start = at + pat.len();
    }
    None
}

fn addr(v: &str) -> String {
    v.trim_matches('"').trim_start_matches('<').trim_end_matches('>').to_string()
}

fn qid_prefix(msg: &str) -> Option<(&str, &str)> {
    let (q, rest) = msg.split_once(": ")?;
    (!q.is_empty() && q.len() <= 24 && q.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')).then_some((q, rest))
}

/// First `d.d.d` enhanced status code in the text.
fn enhanced(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')').find_map(|w| {
        let p: Vec<&str> = w.split('.').collect();
        (p.len() == 3
            && p.iter().all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
            && matches!(p[0], "2" | "4" | "5"))
        .then(|| w.to_string())
    })
}

/// The status of a refusal's reply text: its enhanced code, else its reply code.
fn reply_status(reply: &str) -> Option<String> {
    enhanced(reply).or_else(|| reply.get(..3).map(str::to_string))
}

/// Postfix 3.7 lines.
pub fn postfix(line: &str) -> Vec<RelayEvent> {
    let Some((prog, msg)) = split_syslog(line) else { return vec![] };
    if !prog.starts_with("postfix") {
        return vec![];
    }
    if let Some(rest) =
        msg.strip_prefix("NOQUEUE: reject: ").or_else(|| qid_prefix(msg).and_then(|(_, r)| r.strip_prefix("reject: ")))
    {
        let mut e = RelayEvent::new(EventKind::Rejected, line);
        e.qid = qid_prefix(msg).map(|(q, _)| q.to_string()).filter(|q| q != "NOQUEUE");
        // "RCPT from unknown[203.0.113.66]: 554 5.7.1 <v@e>: Relay access denied; from=<a> to=<b> proto=ESMTP helo=<vm>"
        if let Some((what, reply)) = rest.split_once("]: ") {
            e.peer = what.split_once(" from ").map(|(_, p)| format!("{p}]"));
            let (text, tail) = reply.split_once("; ").unwrap_or((reply, ""));
            e.status = reply_status(text);
            e.text = Some(text.to_string());
            e.from = field(tail, "from").map(addr);
            e.to = field(tail, "to").map(addr);
        }
        return vec![e];
    }
    let Some((qid, rest)) = qid_prefix(msg) else { return vec![] };
    if let Some(client) = rest.strip_prefix("client=") {
        let mut e = RelayEvent::new(EventKind::Received, line);
        e.qid = Some(qid.into());
        e.peer = Some(client.split(", ").next().unwrap_or(client).to_string());
        return vec![e];
    }
    if prog.ends_with("/pickup") && rest.starts_with("uid=") {
        let mut e = RelayEvent::new(EventKind::Received, line);
        e.qid = Some(qid.into());
        e.from = field(rest, "from").map(addr);
        return vec![e];
    }
    for (marker, _) in [("sender non-delivery notification: ", 0), ("sender delivery status notification: ", 0)] {
        if let Some(new) = rest.strip_prefix(marker) {
            let mut e = RelayEvent::new(EventKind::DsnSent, line);
            e.qid = Some(qid.into());
            e.dsn_qid = Some(new.trim().to_string());
            return vec![e];
        }
    }
    if let Some(status) = field(rest, "status") {
        let kind = match status {
            "sent" => EventKind::Delivered,
            "deferred" => EventKind::Deferred,
            "bounced" => EventKind::Bounced,
            _ => return vec![],
        };
        let mut e = RelayEvent::new(kind, line);
        e.qid = Some(qid.into());
        e.to = field(rest, "to").map(addr);
        e.peer = field(rest, "relay").map(str::to_string);
        e.status = field(rest, "dsn").map(str::to_string);
        e.text = rest
            .split_once(&format!("status={status} "))
            .map(|(_, t)| t.trim_start_matches('(').trim_end_matches(')').to_string());
        return vec![e];
    }
    vec![]
}

/// Sendmail 8.x lines.
pub fn sendmail(line: &str) -> Vec<RelayEvent> {
    let Some((prog, msg)) = split_syslog(line) else { return vec![] };
    if !(prog.starts_with("sm-") || prog.starts_with("sendmail")) {
        return vec![];
    }
    // "QID: ruleset=check_rcpt, arg1=<v@e>, relay=h [ip], reject=550 5.7.1 <v@e>... Relaying denied"
    let (qid, rest) = match qid_prefix(msg) {
        Some((q, r)) => (Some(q), r),
        None => (None, msg),
    };
    if let Some(reject) = field(rest, "reject").map(|_| rest.split_once("reject=").unwrap().1) {
        let mut e = RelayEvent::new(EventKind::Rejected, line);
        e.qid = qid.map(str::to_string);
        e.status = reply_status(reject);
        e.text = Some(reject.to_string());
        e.peer = sendmail_relay(rest);
        let arg1 = field(rest, "arg1").map(addr);
        match field(rest, "ruleset") {
            Some("check_mail") => e.from = arg1,
            // check_relay's arg1 is the client's name, not an address
            Some("check_relay") => {}
            _ => e.to = arg1,
        }
        return vec![e];
    }
    let Some(qid) = qid else { return vec![] };
    // "QID: NEWQID: DSN: Service unavailable"
    if let Some((new, _)) = rest.split_once(": DSN: ") {
        if qid_prefix(&format!("{new}: x")).is_some() {
            let mut e = RelayEvent::new(EventKind::DsnSent, line);
            e.qid = Some(qid.into());
            e.dsn_qid = Some(new.to_string());
            e.text = rest.split_once(": DSN: ").map(|(_, t)| t.to_string());
            return vec![e];
        }
    }
    if rest.starts_with("from=") && field(rest, "relay").is_some() && field(rest, "nrcpts") != Some("0") {
        let mut e = RelayEvent::new(EventKind::Received, line);
        e.qid = Some(qid.into());
        e.from = field(rest, "from").map(addr);
        e.peer = rest.split_once("relay=").map(|(_, r)| r.to_string());
        return vec![e];
    }
    if rest.starts_with("to=") {
        if let Some(stat) = rest.split_once("stat=").map(|(_, s)| s) {
            let dsn = field(rest, "dsn").map(str::to_string);
            let kind = if stat.starts_with("Sent") {
                EventKind::Delivered
            } else if stat.starts_with("Deferred") || dsn.as_deref().is_some_and(|d| d.starts_with('4')) {
                EventKind::Deferred
            } else if dsn.as_deref().is_some_and(|d| d.starts_with('5'))
                || stat.starts_with("User unknown")
                || stat.starts_with("Service unavailable")
            {
                EventKind::Bounced
            } else {
                return vec![];
            };
            let mut e = RelayEvent::new(kind, line);
            e.qid = Some(qid.into());
            e.to = field(rest, "to").map(addr);
            e.peer = sendmail_relay(rest);
            e.status = dsn;
            e.text = Some(stat.to_string());
            return vec![e];
        }
    }
    vec![]
}

/// Sendmail's `relay=host. [ip]` (name and address, with a space between), up to the next `, key=`.
fn sendmail_relay(rest: &str) -> Option<String> {
    let at = rest.match_indices("relay=").find(|(i, _)| *i == 0 || rest[..*i].ends_with(' '))?.0;
    let v = &rest[at + "relay=".len()..];
    Some(v.split(", ").next().unwrap_or(v).to_string())
}

/// Exim 4 lines (main log written to syslog).
pub fn exim(line: &str) -> Vec<RelayEvent> {
    let Some((prog, msg)) = split_syslog(line) else { return vec![] };
    if !prog.starts_with("exim") {
        return vec![];
    }
    // Exim's syslog lines may still carry its own date: "2025-11-21 11:38:20 1vMxx-... <= ..."
    let msg = strip_exim_date(msg);
    if let Some(i) =
        msg.find(" rejected RCPT ").or_else(|| msg.find(" rejected MAIL ")).or_else(|| msg.find(" rejected after DATA"))
    {
        let mut e = RelayEvent::new(EventKind::Rejected, line);
        let (head, tail) = msg.split_at(i);
        e.peer = head.split_whitespace().find(|w| w.starts_with('[')).map(|w| w.trim_matches(['[', ']']).to_string());
        let tail = &tail[" rejected ".len()..];
        if let Some(r) = tail.strip_prefix("RCPT ") {
            let (a, why) = r.split_once(": ").unwrap_or((r, ""));
            e.to = Some(addr(a));
            e.text = Some(why.to_string());
        } else if let Some(r) = tail.strip_prefix("MAIL ") {
            let (a, why) = r.split_once(": ").unwrap_or((r, ""));
            e.from = Some(addr(a));
            e.text = Some(why.to_string());
        } else {
            e.text = Some(tail.to_string());
        }
        return vec![e];
    }
    let mut w = msg.splitn(3, ' ');
    let (Some(qid), Some(flag), rest) = (w.next(), w.next(), w.next().unwrap_or("")) else { return vec![] };
    if qid.len() < 16 || qid.matches('-').count() != 2 {
        return vec![];
    }
    let first = rest.split_whitespace().next().unwrap_or("").trim_end_matches(':');
    let field_of = |k: &str| rest.split_whitespace().find_map(|t| t.strip_prefix(k)).map(str::to_string);
    let mut e = match flag {
        "<=" => {
            let mut e = RelayEvent::new(EventKind::Received, line);
            e.from = Some(if first == "<>" { String::new() } else { first.to_string() });
            e.peer =
                rest.split_whitespace().find(|t| t.starts_with('[')).map(|t| t.trim_matches(['[', ']']).to_string());
            if first == "<>" {
                if let Some(orig) = field_of("R=") {
                    let mut d = RelayEvent::new(EventKind::DsnSent, line);
                    d.qid = Some(orig);
                    d.dsn_qid = Some(qid.to_string());
                    e.qid = Some(qid.to_string());
                    return vec![e, d];
                }
            }
            e
        }
        "=>" | "->" => {
            let mut e = RelayEvent::new(EventKind::Delivered, line);
            e.to = Some(addr(first));
            e.peer = field_of("H=");
            e.text = rest.split_once("C=\"").map(|(_, c)| c.trim_end_matches('"').to_string());
            e
        }
        "==" => {
            let mut e = RelayEvent::new(EventKind::Deferred, line);
            e.to = Some(addr(first));
            e.text = Some(rest.split_once(' ').map(|(_, t)| t).unwrap_or("").to_string());
            e
        }
        "**" => {
            let mut e = RelayEvent::new(EventKind::Bounced, line);
            e.to = Some(addr(first));
            e.text = Some(rest.split_once(' ').map(|(_, t)| t).unwrap_or("").to_string());
            e
        }
        _ => return vec![],
    };
    e.qid = Some(qid.to_string());
    if let Some(t) = &e.text {
        e.status = enhanced(t).or_else(|| {
            t.split_whitespace().find(|w| w.len() == 3 && w.bytes().all(|b| b.is_ascii_digit())).map(str::to_string)
        });
    }
    vec![e]
}

fn strip_exim_date(msg: &str) -> &str {
    let b = msg.as_bytes();
    if b.len() > 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[19] == b' ' {
        &msg[20..]
    } else {
        msg
    }
}

/// OpenSMTPD 6.8 lines.
pub fn opensmtpd(line: &str) -> Vec<RelayEvent> {
    let Some((prog, msg)) = split_syslog(line) else { return vec![] };
    if !prog.starts_with("smtpd") {
        return vec![];
    }
    // "<sess> smtp message msgid=0a1b2c3d size=123 nrcpt=1 proto=ESMTP"
    let mut it = msg.splitn(3, ' ');
    let (Some(_sess), Some(kind), rest) = (it.next(), it.next(), it.next().unwrap_or("")) else { return vec![] };
    let q = |k: &str| field(rest, k).map(|v| v.trim_matches('"').to_string());
    match kind {
        "smtp" if rest.starts_with("message ") => {
            let mut e = RelayEvent::new(EventKind::Received, line);
            e.qid = q("msgid");
            vec![e]
        }
        "smtp" if rest.starts_with("failed-command ") => {
            let result = q("result").unwrap_or_default();
            if !result.starts_with('5') && !result.starts_with('4') {
                return vec![];
            }
            let mut e = RelayEvent::new(EventKind::Rejected, line);
            let command = q("command").unwrap_or_default();
            if let Some(a) = command.strip_prefix("RCPT TO:") {
                e.to = Some(addr(a.split_whitespace().next().unwrap_or(a)));
            } else if let Some(a) = command.strip_prefix("MAIL FROM:") {
                e.from = Some(addr(a.split_whitespace().next().unwrap_or(a)));
            }
            e.status = reply_status(&result);
            e.text = Some(result);
            vec![e]
        }
        "mta" | "delivery" if rest.starts_with("delivery ") => {
            let result = q("result").unwrap_or_default();
            let k = match result.as_str() {
                "Ok" => EventKind::Delivered,
                "TempFail" => EventKind::Deferred,
                "PermFail" => EventKind::Bounced,
                _ => return vec![],
            };
            let mut e = RelayEvent::new(k, line);
            e.qid = q("evpid").map(|v| v.get(..8).unwrap_or(&v).to_string());
            e.from = q("from").map(|a| addr(&a));
            e.to = q("to").map(|a| addr(&a));
            e.peer = q("relay");
            e.text = q("stat");
            e.status = e.text.as_deref().and_then(enhanced);
            let mut out = vec![e];
            if k == EventKind::Bounced {
                let mut d = RelayEvent::new(EventKind::DsnSent, line);
                d.qid = out[0].qid.clone();
                out.push(d);
            }
            out
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: Vec<RelayEvent>) -> RelayEvent {
        assert_eq!(v.len(), 1, "{v:#?}");
        v.into_iter().next().unwrap()
    }

    // Lines captured from Debian's Postfix 3.7.11 in a lab namespace.
    #[test]
    fn postfix_lines() {
        let r = one(postfix("Nov 21 11:38:20 external postfix/smtpd[2641]: NOQUEUE: reject: RCPT from unknown[203.0.113.66]: 554 5.7.1 <victim@elsewhere.example>: Relay access denied; from=<a@lying.com> to=<victim@elsewhere.example> proto=ESMTP helo=<vm>"));
        assert_eq!(r.kind, EventKind::Rejected);
        assert_eq!(r.peer.as_deref(), Some("unknown[203.0.113.66]"));
        assert_eq!(r.status.as_deref(), Some("5.7.1"));
        assert_eq!(r.to.as_deref(), Some("victim@elsewhere.example"));
        assert_eq!(r.from.as_deref(), Some("a@lying.com"));
        assert_eq!(r.qid, None);

        let r = one(postfix("Nov 21 11:38:20 external postfix/smtpd[2641]: 6B88B1B0: client=unknown[203.0.113.66]"));
        assert_eq!((r.kind, r.qid.as_deref()), (EventKind::Received, Some("6B88B1B0")));

        let d = one(postfix("Nov 21 11:38:20 external postfix/relay/smtp[2647]: 6B88B1B0: to=<john@sysiphus.com>, relay=none, delay=0.01, delays=0.01/0.01/0/0, dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for name=sysiphus.com type=MX: Host not found, try again)"));
        assert_eq!(d.kind, EventKind::Deferred);
        assert_eq!(d.status.as_deref(), Some("4.4.3"));
        assert_eq!(d.to.as_deref(), Some("john@sysiphus.com"));
        assert!(d.text.unwrap().starts_with("Host or domain name not found"));

        assert!(postfix("Nov 21 11:38:17 external postfix/master[2619]: daemon started -- version 3.7.11, configuration /etc/postfix").is_empty());
        assert!(postfix("Nov 21 11:38:20 external postfix/qmgr[2621]: 6B88B1B0: from=<a@lying.com>, size=425, nrcpt=1 (queue active)").is_empty());
    }

    // Lines captured from Debian's Sendmail 8.17.1.9 in a lab namespace.
    #[test]
    fn sendmail_lines() {
        let r = one(sendmail("Nov 21 11:42:15 external sm-mta[9707]: 6ALBgFg5009707: ruleset=check_mail, arg1=<a@lying.com>, relay=[203.0.113.66], reject=451 4.1.8 Domain of sender address a@lying.com does not resolve"));
        assert_eq!(r.kind, EventKind::Rejected);
        assert_eq!(r.from.as_deref(), Some("a@lying.com"));
        assert_eq!(r.status.as_deref(), Some("4.1.8"));
        assert_eq!(r.peer.as_deref(), Some("[203.0.113.66]"));

        let r = one(sendmail("Nov 21 11:43:09 external sm-mta[19722]: 6ALBh99k019722: from=<alice@sysiphus.com>, size=16, class=0, nrcpts=1, msgid=<202611211143.6ALBh99k019722@external.sysiphus.com>, proto=ESMTP, daemon=MTA, relay=[10.1.1.5]"));
        assert_eq!((r.kind, r.from.as_deref()), (EventKind::Received, Some("alice@sysiphus.com")));
        assert_eq!(r.peer.as_deref(), Some("[10.1.1.5]"));
        // nrcpts=0: a session whose recipients were all refused is no message
        assert!(sendmail("Nov 21 11:42:15 external sm-mta[9707]: 6ALBgFg5009707: from=<a@lying.com>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA, relay=[203.0.113.66]").is_empty());

        let b = one(sendmail("Nov 21 11:43:09 external sm-mta[19724]: 6ALBh99k019722: to=<bob@nowhere.invalid>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30016, relay=nowhere.invalid, dsn=5.1.2, stat=Host unknown (Name server: nowhere.invalid: host not found)"));
        assert_eq!((b.kind, b.status.as_deref()), (EventKind::Bounced, Some("5.1.2")));
        let d = one(sendmail("Nov 21 11:43:09 external sm-mta[19724]: 6ALBh99k019722: 6ALBh99k019724: DSN: Host unknown (Name server: nowhere.invalid: host not found)"));
        assert_eq!((d.kind, d.dsn_qid.as_deref()), (EventKind::DsnSent, Some("6ALBh99k019724")));
        let s = one(sendmail("Nov 21 11:43:09 external sm-mta[19724]: 6ALBh99k019724: to=<alice@sysiphus.com>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=31040, relay=internal.sysiphus.com. [192.0.2.10], dsn=2.0.0, stat=Sent (6ALBh900000001 Message accepted for delivery)"));
        assert_eq!((s.kind, s.to.as_deref()), (EventKind::Delivered, Some("alice@sysiphus.com")));
        // the next hop keeps its address: scenarios match the peer by IP on every MTA
        assert_eq!(s.peer.as_deref(), Some("internal.sysiphus.com. [192.0.2.10]"));
        let c = one(sendmail("Nov 21 13:58:04 external sm-mta[14549]: NOQUEUE: ruleset=check_relay, arg1=mail.spammer.example, arg2=202.9.145.21, relay=mail.spammer.example [202.9.145.21], reject=550 5.7.1 Access denied"));
        assert_eq!((c.to, c.peer.as_deref()), (None, Some("mail.spammer.example [202.9.145.21]")));
        assert!(sendmail("Nov 21 11:42:13 external sm-mta[9666]: starting daemon (8.17.1.9): SMTP+queueing@00:30:00")
            .is_empty());
    }

    // Lines captured from Debian's Exim 4.96 in a lab namespace.
    #[test]
    fn exim_lines() {
        let r = one(exim("Nov 21 11:43:37 external exim[23632]: H=(vm) [203.0.113.66] F=<a@lying.com> rejected RCPT <victim@elsewhere.example>: relay not permitted"));
        assert_eq!(r.kind, EventKind::Rejected);
        assert_eq!(r.to.as_deref(), Some("victim@elsewhere.example"));
        assert_eq!(r.peer.as_deref(), Some("203.0.113.66"));
        let r = one(exim("Nov 21 11:45:46 external exim[9197]: 1xUjXO-0002OL-27 <= alice@sysiphus.com H=(inside.sysiphus.com) [10.1.1.5] P=esmtp S=236"));
        assert_eq!((r.kind, r.qid.as_deref()), (EventKind::Received, Some("1xUjXO-0002OL-27")));
        let b = one(exim(
            "Nov 21 11:45:46 external exim[9198]: 1xUjXO-0002OL-27 ** bob@nowhere.invalid: Unrouteable address",
        ));
        assert_eq!((b.kind, b.to.as_deref()), (EventKind::Bounced, Some("bob@nowhere.invalid")));
        let v = exim("Nov 21 11:45:46 external exim[9199]: 1xUjXO-0002ON-29 <= <> R=1xUjXO-0002OL-27 U=Debian-exim P=local S=1470");
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[1].kind, v[1].qid.as_deref(), v[1].dsn_qid.as_deref()),
            (EventKind::DsnSent, Some("1xUjXO-0002OL-27"), Some("1xUjXO-0002ON-29"))
        );
        let d = one(exim("Nov 21 11:45:46 external exim[9200]: 1xUjXO-0002ON-29 => alice@sysiphus.com R=dnslookup T=remote_smtp H=internal.sysiphus.com [192.0.2.10] C=\"250 2.0.0 6ALBjk00000001 Message accepted for delivery\""));
        assert_eq!((d.kind, d.status.as_deref()), (EventKind::Delivered, Some("2.0.0")));
        let q = one(exim("Nov 21 11:43:37 external exim[23721]: 1xUjVJ-0006AW-2N == john@sysiphus.com R=dnslookup defer (-1): host lookup did not complete"));
        assert_eq!(q.kind, EventKind::Deferred);
        assert!(exim("Nov 21 11:45:46 external exim[9198]: 1xUjXO-0002OL-27 Completed").is_empty());
    }

    // Lines captured from Debian's OpenSMTPD 6.8.0p2 in a lab namespace.
    #[test]
    fn opensmtpd_lines() {
        let r = one(opensmtpd("Nov 21 11:44:13 external smtpd[27318]: 474d889df8f5140b smtp failed-command command=\"RCPT TO:<victim@elsewhere.example>\" result=\"550 Invalid recipient: <victim@elsewhere.example>\""));
        assert_eq!(
            (r.kind, r.to.as_deref(), r.status.as_deref()),
            (EventKind::Rejected, Some("victim@elsewhere.example"), Some("550"))
        );
        let m = one(opensmtpd("Nov 21 11:44:14 external smtpd[27318]: 474d889e4ecba6a3 smtp message msgid=9ca9182e size=417 nrcpt=1 proto=ESMTP"));
        assert_eq!((m.kind, m.qid.as_deref()), (EventKind::Received, Some("9ca9182e")));
        let t = one(opensmtpd("Nov 21 11:44:14 external smtpd[27318]: 0000000000000000 mta delivery evpid=9ca9182e9edd0834 from=<a@lying.com> to=<john@sysiphus.com> rcpt=<-> source=\"-\" relay=\"sysiphus.com\" delay=0s result=\"TempFail\" stat=\"Temporary failure in MX lookup\""));
        assert_eq!(
            (t.kind, t.qid.as_deref(), t.to.as_deref()),
            (EventKind::Deferred, Some("9ca9182e"), Some("john@sysiphus.com"))
        );
        assert_eq!(t.text.as_deref(), Some("Temporary failure in MX lookup"));
        assert!(opensmtpd("Nov 21 11:44:12 external smtpd[27312]: info: OpenSMTPD 6.8.0p2 starting").is_empty());
    }
}
