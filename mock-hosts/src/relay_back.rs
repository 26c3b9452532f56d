//! Actors that accept mail and send mail back toward the relay: forwarders
//! (an alias or `.forward` pointing elsewhere), mailing lists, and
//! auto-responders. Put two of them in front of each other, or a list in
//! front of a responder, and the lab has a mail loop (spec §5.6, §10.4–10.7).
//!
//! - A [`Forward`] keeps every header and adds its own `Received:`, so each
//!   round trip through the relay adds hops until the relay's MaxHopCount
//!   refuses the message (`554 5.4.6 Too many hops`). With
//!   `strip_received` it behaves like the forwarder of the 2002 mail-loop
//!   incident: the hop count never grows and only the lab's cap ends the loop.
//! - A [`MailingList`] explodes a post to its members with its own envelope
//!   sender. A well-run list uses `owner-<list>`; one that uses its own
//!   address re-mails every bounce and auto-reply to every member.
//! - An [`AutoResponder`] answers the envelope sender. One that obeys RFC 3834
//!   and the course's natabot rules stays silent for `<>`, MAILER-DAEMON,
//!   `Precedence: bulk|list|junk`, `Auto-Submitted:` and `List-Id:`, and
//!   answers from `<>` with `Precedence: junk`; one that ignores them answers
//!   everything, from its own address.
//!
//! [`react`] decides what to send (no sockets, unit-tested); the sink's
//! [`Reactor`] sends it through the relay, at most `max_messages` times.

use crate::activity::Activity;
use crate::message;
use crate::outbound::{self, Delivery, Submission};
use crate::timing::LabTime;
use chrono::{DateTime, Utc};
use lab_core::{AddressMap, ReceivedMessage, Transcript};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;

/// What a host does with a message it accepted.
#[derive(Debug, Clone)]
pub enum Reaction {
    /// Send it on (an alias, a `.forward`).
    Forward(Forward),
    /// Explode it to a list's members.
    List(MailingList),
    /// Answer its sender.
    AutoReply(AutoResponder),
}

/// An alias or `.forward`.
#[derive(Debug, Clone, Default)]
pub struct Forward {
    /// New recipients (the alias target); empty: the same recipients again.
    pub to: Vec<String>,
    /// Add this host's own `Received:`, as a real MTA does.
    pub add_received: bool,
    /// Remove every `Received:` before sending on.
    pub strip_received: bool,
}

/// A mailing list.
#[derive(Debug, Clone)]
pub struct MailingList {
    /// The list's address; mail to it is exploded.
    pub address: String,
    /// Who gets the copies.
    pub members: Vec<String>,
    /// Envelope sender of the copies (`owner-<list>@...`, or the list itself).
    pub sender: String,
    /// `Precedence:` set on the copies (`list`, `bulk`), if any.
    pub precedence: Option<String>,
    /// Add this host's own `Received:`.
    pub add_received: bool,
}

/// An auto-responder (vacation, natabot).
#[derive(Debug, Clone)]
pub struct AutoResponder {
    /// Follow RFC 3834 and the natabot rules (spec §10.5).
    pub obey_rules: bool,
    /// Envelope sender of the replies; `None`: `<>` when obeying the rules,
    /// else the address the message was sent to.
    pub sender: Option<String>,
    /// The reply's subject.
    pub subject: String,
    /// Return the original message below the text, as natabot does.
    pub quote_original: bool,
}

impl Default for AutoResponder {
    fn default() -> Self {
        AutoResponder { obey_rules: true, sender: None, subject: "FYI -- Invalid Address".into(), quote_original: true }
    }
}

/// Where and how a reacting host sends.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The relay.
    pub target: SocketAddr,
    /// Connect from this address (the host's own).
    pub source: Option<IpAddr>,
    /// Per connect and per reply.
    pub timeout: Duration,
    /// The most messages this host sends in one lab: a loop the relay does
    /// not stop is cut here and reported.
    pub max_messages: usize,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Envelope sender (`""` for `<>`).
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// The message, CRLF line ends.
    pub data: Vec<u8>,
}

/// The receiving host as a reaction sees itself.
#[derive(Debug, Clone, Copy)]
pub struct Me<'a> {
    /// Its name.
    pub hostname: &'a str,
    /// The sending client's lab address (for `Received:`).
    pub peer: IpAddr,
    /// Now.
    pub now: DateTime<Utc>,
}

/// What to send for `msg`: messages, or why nothing (`Err`, a reason for the report).
pub fn react(reaction: &Reaction, msg: &ReceivedMessage, me: &Me<'_>) -> Result<Vec<Outgoing>, String> {
    match reaction {
        Reaction::Forward(f) => {
            let mut data = if f.strip_received { message::without(&msg.data, "Received") } else { msg.data.clone() };
            if f.add_received && !f.strip_received {
                data = message::prepend(&data, &received(msg, me));
            }
            let rcpt_to = if f.to.is_empty() { msg.envelope.rcpt_to.clone() } else { f.to.clone() };
            Ok(vec![Outgoing { mail_from: msg.envelope.mail_from.clone(), rcpt_to, data }])
        }
        Reaction::List(l) => {
            let to_list = msg.envelope.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(&l.address));
            if !to_list {
                return Err(format!("not addressed to the list {}", l.address));
            }
            let mut data = msg.data.clone();
            if let Some(p) = &l.precedence {
                data = message::append_header(&message::without(&data, "Precedence"), &format!("Precedence: {p}"));
            }
            if l.add_received {
                data = message::prepend(&data, &received(msg, me));
            }
            Ok(vec![Outgoing { mail_from: l.sender.clone(), rcpt_to: l.members.clone(), data }])
        }
        Reaction::AutoReply(a) => auto_reply(a, msg, me).map(|o| vec![o]),
    }
}

/// This host's `Received:` line for `msg`.
fn received(msg: &ReceivedMessage, me: &Me<'_>) -> String {
    let helo = msg.helo.as_deref().unwrap_or("unknown");
    let for_part = match msg.envelope.rcpt_to.as_slice() {
        [one] => format!("\r\n\tfor <{one}>"),
        _ => String::new(),
    };
    format!(
        "Received: from {helo} ([{}])\r\n\tby {} (relaylab-sink) with ESMTP id {}{for_part}; {}",
        me.peer,
        me.hostname,
        msg.queue_id,
        message::date(me.now)
    )
}

/// Why an RFC 3834 responder stays silent for `msg`, if it does.
pub fn rfc3834_silence(msg: &ReceivedMessage) -> Option<String> {
    let sender = &msg.envelope.mail_from;
    if sender.is_empty() {
        return Some("the envelope sender is <> (RFC 3834 2)".into());
    }
    let local = sender.rsplit_once('@').map_or(sender.as_str(), |(l, _)| l).to_ascii_lowercase();
    if local == "mailer-daemon" || local.starts_with("owner-") || local.ends_with("-request") {
        return Some(format!("the envelope sender <{sender}> is a daemon or list address (RFC 3834 2)"));
    }
    if let Some(p) = message::header(&msg.data, "Precedence") {
        if ["bulk", "list", "junk"].contains(&p.to_ascii_lowercase().as_str()) {
            return Some(format!("Precedence: {p}"));
        }
    }
    if let Some(a) = message::header(&msg.data, "Auto-Submitted") {
        if !a.eq_ignore_ascii_case("no") {
            return Some(format!("Auto-Submitted: {a} (RFC 3834 2)"));
        }
    }
    if message::header(&msg.data, "List-Id").is_some() {
        return Some("the message came from a list (List-Id, RFC 3834 2)".into());
    }
    None
}

fn auto_reply(a: &AutoResponder, msg: &ReceivedMessage, me: &Me<'_>) -> Result<Outgoing, String> {
    if a.obey_rules {
        if let Some(why) = rfc3834_silence(msg) {
            return Err(format!("silent: {why}"));
        }
    }
    let me_addr = msg.envelope.rcpt_to.first().cloned().unwrap_or_else(|| format!("postmaster@{}", me.hostname));
    // RFC 3834 3.1: reply to the envelope sender only. A responder that
    // ignores the rules falls back to the From: header, as broken ones do.
    let to = if !msg.envelope.mail_from.is_empty() {
        msg.envelope.mail_from.clone()
    } else if a.obey_rules {
        return Err("silent: no envelope sender to answer".into());
    } else {
        match message::header(&msg.data, "From").and_then(|f| bare_address(&f)) {
            Some(f) => f,
            None => return Err("silent: nobody to answer".into()),
        }
    };
    let mail_from = a.sender.clone().unwrap_or_else(|| if a.obey_rules { String::new() } else { me_addr.clone() });
    let from_header = if a.obey_rules { "MAILER-DAEMON".to_string() } else { me_addr.clone() };
    let mut text =
        format!("From: {from_header}\r\nTo: {to}\r\nSubject: {}\r\nDate: {}\r\n", a.subject, message::date(me.now));
    text.push_str(&format!("Message-Id: <auto.{}@{}>\r\n", msg.queue_id, me.hostname));
    if let Some(id) = message::header(&msg.data, "Message-Id") {
        text.push_str(&format!("In-Reply-To: {id}\r\n"));
    }
    if a.obey_rules {
        // RFC 3834 5 and the natabot reply (spec §10.5).
        text.push_str("Auto-Submitted: auto-replied\r\nPrecedence: junk\r\n");
    }
    text.push_str("\r\nYou have sent mail to an address which is no longer valid.\r\n");
    let mut data = text.into_bytes();
    if a.quote_original {
        data.extend_from_slice(b"Your message is returned below for your convenience.\r\n\r\n");
        data.extend_from_slice(&msg.data);
    }
    Ok(Outgoing { mail_from, rcpt_to: vec![to], data })
}

/// `Name <a@b>` or `a@b` → `a@b`.
fn bare_address(field: &str) -> Option<String> {
    let inner = match (field.rfind('<'), field.rfind('>')) {
        (Some(l), Some(r)) if l < r => &field[l + 1..r],
        _ => field,
    };
    let a = inner.trim();
    a.contains('@').then(|| a.to_string())
}

/// One message a reacting host sent.
#[derive(Debug, Clone, Serialize)]
pub struct SentRecord {
    /// Lab time when the attempt started, since the lab's start.
    pub at_ms: u64,
    /// The queue id of the received message it came from.
    pub cause: String,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// Trace headers in what was sent.
    pub hops: usize,
    /// How it ended.
    pub outcome: Delivery,
    /// The deciding reply's first line.
    pub reply: Option<String>,
    /// The transport error, if any.
    pub error: Option<String>,
}

/// What a reacting host did, for reports and assertions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReactorLog {
    /// Messages sent, in start order.
    pub sent: Vec<SentRecord>,
    /// Their transcripts.
    #[serde(skip)]
    pub transcripts: Vec<Transcript>,
    /// Why messages were not answered or passed on.
    pub silent: Vec<String>,
    /// Messages not sent because `max_messages` was reached (a loop the relay did not stop).
    pub capped: u64,
}

/// A sink's sending half: reacts to accepted messages, sends through the relay.
#[derive(Debug)]
pub(crate) struct Reactor {
    reaction: Reaction,
    outbound: Outbound,
    hostname: String,
    time: LabTime,
    addresses: AddressMap,
    activity: Activity,
    log: Arc<Mutex<ReactorLog>>,
    started: AtomicUsize,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Reactor {
    pub(crate) fn new(
        reaction: Reaction,
        outbound: Outbound,
        hostname: String,
        time: LabTime,
        addresses: AddressMap,
    ) -> Reactor {
        Reactor {
            reaction,
            outbound,
            hostname,
            time,
            addresses,
            activity: Activity::default(),
            log: Arc::default(),
            started: AtomicUsize::new(0),
            tasks: Mutex::default(),
        }
    }

    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    pub(crate) fn sent_count(&self) -> usize {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).sent.len()
    }

    pub(crate) fn log(&self) -> ReactorLog {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// React to an accepted message. Called before the `250` is sent, so
    /// the host counts as busy before the relay's delivery attempt ends.
    pub(crate) fn on_accepted(&self, msg: &ReceivedMessage) {
        let me = Me { hostname: &self.hostname, peer: self.addresses.to_virtual(msg.peer.ip()), now: self.time.now() };
        let outgoing = match react(&self.reaction, msg, &me) {
            Ok(o) => o,
            Err(why) => {
                self.log.lock().unwrap_or_else(PoisonError::into_inner).silent.push(format!("{}: {why}", msg.queue_id));
                return;
            }
        };
        for out in outgoing {
            if self.started.fetch_add(1, Ordering::SeqCst) >= self.outbound.max_messages {
                let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
                log.capped += 1;
                continue;
            }
            let busy = self.activity.busy();
            let submission = Submission {
                source: self.outbound.source,
                target: self.outbound.target,
                timeout: self.outbound.timeout,
                helo: self.hostname.clone(),
                mail_from: out.mail_from.clone(),
                rcpt_to: out.rcpt_to.clone(),
                data: out.data,
                label: format!("{} -> relay", self.hostname),
            };
            let log = Arc::clone(&self.log);
            let time = self.time.clone();
            let cause = msg.queue_id.clone();
            let task = tokio::spawn(async move {
                let _busy = busy;
                let at_ms = time.elapsed().as_millis() as u64;
                let hops = message::hop_count(&submission.data);
                let done = outbound::submit(&submission).await;
                let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                log.sent.push(SentRecord {
                    at_ms,
                    cause,
                    mail_from: submission.mail_from,
                    rcpt_to: submission.rcpt_to,
                    hops,
                    outcome: done.outcome,
                    reply: done.reply.map(|r| r.first_line()),
                    error: done.error,
                });
                log.transcripts.push(done.transcript);
            });
            let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }

    /// Stop every send still running.
    pub(crate) fn abort_all(&self) {
        for t in self.tasks.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_core::Envelope;

    fn msg(from: &str, to: &[&str], data: &str) -> ReceivedMessage {
        ReceivedMessage {
            host: "fwd.example".into(),
            queue_id: "Q1".into(),
            helo: Some("relay.example".into()),
            peer: "127.0.0.2:5000".parse().unwrap(),
            envelope: Envelope { mail_from: from.into(), rcpt_to: to.iter().map(|s| s.to_string()).collect() },
            data: data.as_bytes().to_vec(),
            session: 0,
        }
    }

    fn me() -> Me<'static> {
        let now = DateTime::parse_from_rfc3339("2025-07-01T10:00:00Z").unwrap().to_utc();
        Me { hostname: "fwd.example", peer: "192.0.2.25".parse().unwrap(), now }
    }

    #[test]
    fn a_forward_keeps_the_headers_and_adds_a_hop() {
        let m = msg("a@b", &["x@one.example"], "Received: from r\r\nSubject: s\r\n\r\nbody\r\n");
        let f = Forward { to: vec!["y@two.example".into()], add_received: true, strip_received: false };
        let out = react(&Reaction::Forward(f), &m, &me()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].mail_from, "a@b");
        assert_eq!(out[0].rcpt_to, vec!["y@two.example"]);
        assert_eq!(message::hop_count(&out[0].data), 2);
        assert_eq!(
            message::header(&out[0].data, "Received").unwrap(),
            "from relay.example ([192.0.2.25]) by fwd.example (relaylab-sink) with ESMTP id Q1 for <x@one.example>; Tue, 1 Jul 2025 10:00:00 +0000"
        );
        let strip = Forward { strip_received: true, add_received: true, ..Forward::default() };
        let out = react(&Reaction::Forward(strip), &m, &me()).unwrap();
        assert_eq!(message::hop_count(&out[0].data), 0);
        assert_eq!(out[0].rcpt_to, vec!["x@one.example"]);
    }

    #[test]
    fn a_list_explodes_posts_to_it_with_its_own_sender() {
        let l = MailingList {
            address: "staff@lists.example".into(),
            members: vec!["a@x".into(), "b@y".into()],
            sender: "owner-staff@lists.example".into(),
            precedence: Some("list".into()),
            add_received: false,
        };
        let post = msg("poster@z", &["Staff@lists.example"], "Precedence: junk\r\nSubject: s\r\n\r\nb\r\n");
        let out = react(&Reaction::List(l.clone()), &post, &me()).unwrap();
        assert_eq!(out[0].mail_from, "owner-staff@lists.example");
        assert_eq!(out[0].rcpt_to, vec!["a@x", "b@y"]);
        assert_eq!(message::header(&out[0].data, "Precedence").as_deref(), Some("list"));
        assert_eq!(message::headers(&out[0].data).len(), 2);
        assert!(react(&Reaction::List(l), &msg("p@z", &["other@lists.example"], "\r\n"), &me()).is_err());
    }

    #[test]
    fn an_obeying_responder_answers_once_from_the_null_sender() {
        let a = Reaction::AutoReply(AutoResponder::default());
        let m = msg(
            "hal@deer-run.com",
            &["john@sysiphus.com"],
            "From: Hal <hal@deer-run.com>\r\nMessage-Id: <1@x>\r\nSubject: hi\r\n\r\nbody\r\n",
        );
        let out = react(&a, &m, &me()).unwrap();
        assert_eq!(out[0].mail_from, "");
        assert_eq!(out[0].rcpt_to, vec!["hal@deer-run.com"]);
        let h = |n| message::header(&out[0].data, n);
        assert_eq!(h("From").as_deref(), Some("MAILER-DAEMON"));
        assert_eq!(h("Precedence").as_deref(), Some("junk"));
        assert_eq!(h("Auto-Submitted").as_deref(), Some("auto-replied"));
        assert_eq!(h("Subject").as_deref(), Some("FYI -- Invalid Address"));
        assert_eq!(h("In-Reply-To").as_deref(), Some("<1@x>"));
        assert!(String::from_utf8_lossy(message::body(&out[0].data)).contains("Message-Id: <1@x>"));
        // Silent for the null sender, daemons, bulk mail and other auto-replies.
        for (from, hdr) in [
            ("", "Subject: x"),
            ("MAILER-DAEMON@x", "Subject: x"),
            ("owner-l@x", "Subject: x"),
            ("a@b", "Precedence: bulk"),
            ("a@b", "Precedence: List"),
            ("a@b", "Auto-Submitted: auto-replied"),
            ("a@b", "List-Id: <l.x>"),
        ] {
            let m = msg(from, &["john@sysiphus.com"], &format!("{hdr}\r\n\r\nb\r\n"));
            let why = react(&a, &m, &me()).unwrap_err();
            assert!(why.starts_with("silent: "), "{from} {hdr}: {why}");
        }
        let m = msg("a@b", &["john@sysiphus.com"], "Auto-Submitted: no\r\n\r\nb\r\n");
        assert!(react(&a, &m, &me()).is_ok());
    }

    #[test]
    fn an_ignoring_responder_answers_everything_from_its_own_address() {
        let a = Reaction::AutoReply(AutoResponder { obey_rules: false, ..AutoResponder::default() });
        let m = msg(
            "",
            &["john@sysiphus.com"],
            "From: MAILER-DAEMON <mailer-daemon@x.example>\r\nPrecedence: junk\r\n\r\nb\r\n",
        );
        let out = react(&a, &m, &me()).unwrap();
        assert_eq!(out[0].mail_from, "john@sysiphus.com");
        assert_eq!(out[0].rcpt_to, vec!["mailer-daemon@x.example"]);
        assert_eq!(message::header(&out[0].data, "Precedence"), None);
    }
}
