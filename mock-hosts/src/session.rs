//! The server side of one SMTP session as a state machine, without a socket.
//!
//! The connection task feeds it command lines and the message read after
//! `354`; it answers with [`Outcome`]s. Everything SMTP-specific the sink does
//! (replies, sequencing, the envelope) lives here, so it is unit-testable.
//!
//! The state follows RFC 5321 4.1.4: a mail transaction starts with `MAIL`,
//! collects one or more `RCPT`, and ends with `DATA` and the message; `RSET`,
//! `HELO`/`EHLO` and a finished message clear it. Several transactions may
//! follow one another in one session.
//!
//! At each phase the sink's [`SinkBehaviour`] is asked for a [`Decision`]:
//! answer normally, answer otherwise, hang up, fall silent, and how long to
//! wait first. Scripted faults are consulted only for commands that are
//! otherwise in sequence; a refusal does not advance the transaction.

use crate::behaviour::{Action, Ask, Decision, Phase, SinkBehaviour};
use crate::config::MAX_MESSAGE_SIZE;
use crate::timing::LabTime;
use chrono::{Datelike, Timelike};
use lab_core::command::{self, Command, Parsed};
use lab_core::envelope::strip_path;
use lab_core::{AddressMap, Envelope, Reply, SharedClock};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the connection should do after a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send the reply and read the next command.
    Reply(Reply),
    /// Send the reply (`354`), then read the message up to the final `.`.
    Data(Reply),
    /// Send the reply, then close the connection.
    Close(Reply),
    /// Close the connection without a word.
    Disconnect,
    /// Say nothing more: keep reading and ignoring input until the client goes.
    Silence,
    /// Wait, then do the inner outcome.
    Delayed(Duration, Box<Outcome>),
}

impl Outcome {
    /// The reply to send, if the outcome has one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Outcome::Reply(r) | Outcome::Data(r) | Outcome::Close(r) => Some(r),
            Outcome::Disconnect | Outcome::Silence => None,
            Outcome::Delayed(_, inner) => inner.reply(),
        }
    }

    /// This outcome after `delay` (unchanged when the delay is zero).
    pub fn after(self, delay: Duration) -> Outcome {
        if delay.is_zero() {
            self
        } else {
            Outcome::Delayed(delay, Box::new(self))
        }
    }

    /// The outcome without its delays, and the total delay.
    pub fn undelayed(self) -> (Duration, Outcome) {
        let mut total = Duration::ZERO;
        let mut o = self;
        while let Outcome::Delayed(d, inner) = o {
            total += d;
            o = *inner;
        }
        (total, o)
    }
}

/// A message the session accepted, before the server adds host, peer and session index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The id given in the `250` reply.
    pub queue_id: String,
    /// The HELO/EHLO argument, if the client gave one.
    pub helo: Option<String>,
    /// The envelope.
    pub envelope: Envelope,
    /// The message, dot-unstuffed, CRLF line ends.
    pub data: Vec<u8>,
}

/// Hands out queue ids, unique per sink, in the Sendmail style: six base-60
/// characters of date and time (year, month, day, hour, minute, second) read
/// from the lab clock, then an eight-digit sequence number. `q7DFAJ00000001`.
#[derive(Debug)]
pub struct QueueIds {
    clock: SharedClock,
    next: AtomicU64,
}

const BASE60: &[u8; 60] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx";

impl QueueIds {
    /// A fresh sequence starting at 1.
    pub fn new(clock: SharedClock) -> Self {
        QueueIds { clock, next: AtomicU64::new(1) }
    }

    /// The next id; 14 characters.
    pub fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let t = self.clock.now();
        let digits =
            [(t.year() - 1900).rem_euclid(60) as u32, t.month0(), t.day(), t.hour(), t.minute(), t.second() % 60];
        let mut id: String = digits.iter().map(|&d| BASE60[d as usize % 60] as char).collect();
        id.push_str(&format!("{:08}", n % 100_000_000));
        id
    }
}

/// What every session of one sink shares: its name, behaviour, queue ids,
/// the lab's time and address map.
#[derive(Debug)]
pub struct SinkEnv {
    /// The name in the greeting and replies.
    pub hostname: String,
    /// How it answers.
    pub behaviour: SinkBehaviour,
    /// Queue ids.
    pub queue_ids: QueueIds,
    /// Lab time (greylist, schedules).
    pub time: LabTime,
    /// Real ↔ lab addresses: clients are known by their lab address.
    pub addresses: AddressMap,
}

impl SinkEnv {
    /// An accepting sink's environment on `time`, without address translation.
    pub fn new(hostname: impl Into<String>, behaviour: SinkBehaviour, time: LabTime) -> SinkEnv {
        let queue_ids = QueueIds::new(time.clock().clone());
        SinkEnv { hostname: hostname.into(), behaviour, queue_ids, time, addresses: AddressMap::identity() }
    }
}

/// One SMTP session's state.
#[derive(Debug)]
pub struct Session {
    env: Arc<SinkEnv>,
    /// The client's lab address.
    client: IpAddr,
    helo: Option<String>,
    /// `MAIL` given: the transaction is open.
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    /// A `354` was sent; the next input is the message.
    awaiting_data: bool,
    /// The banner refused service (`554`): only QUIT is served (RFC 5321 3.1).
    no_service: bool,
}

impl Session {
    /// A new session with a client at `peer` (its real address).
    pub fn new(env: Arc<SinkEnv>, peer: SocketAddr) -> Self {
        let client = env.addresses.to_virtual(peer.ip());
        Session {
            env,
            client,
            helo: None,
            mail_from: None,
            rcpt_to: Vec::new(),
            awaiting_data: false,
            no_service: false,
        }
    }

    /// The HELO/EHLO argument so far.
    pub fn helo(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    /// The client's lab address.
    pub fn client(&self) -> IpAddr {
        self.client
    }

    fn hostname(&self) -> &str {
        &self.env.hostname
    }

    fn decide(&self, phase: Phase, rcpt: Option<&str>) -> Decision {
        self.env.behaviour.decide(&Ask {
            phase,
            client: self.client,
            mail_from: self.mail_from.as_deref(),
            rcpt,
            rcpts: &self.rcpt_to,
            now: self.env.time.now(),
        })
    }

    /// Act on a decision: `normal` builds the usual answer (given the
    /// scripted reply text, if any); a refusal leaves the state alone.
    fn apply(&mut self, d: Decision, normal: impl FnOnce(&mut Self, Option<Reply>) -> Outcome) -> Outcome {
        let outcome = match d.action {
            Action::Accept => normal(self, None),
            Action::Reply(r) if r.code < 400 => normal(self, Some(r)),
            // RFC 5321 3.8: 421 means the server is closing the channel.
            Action::Reply(r) if r.code == 421 => Outcome::Close(r),
            Action::Reply(r) => Outcome::Reply(r),
            Action::Disconnect => Outcome::Disconnect,
            Action::Silence => Outcome::Silence,
        };
        outcome.after(d.delay)
    }

    /// The opening (RFC 5321 4.3.1: `220 <domain> <text>`), after what the
    /// `connect` and `banner` phases script.
    pub fn greeting(&mut self) -> Outcome {
        let connect = self.decide(Phase::Connect, None);
        let (delay, banner) = match connect.action {
            Action::Accept => {
                let b = self.decide(Phase::Banner, None);
                (connect.delay + b.delay, b.action)
            }
            other => (connect.delay, other),
        };
        let outcome = match banner {
            Action::Accept => Outcome::Reply(Reply::new(220, format!("{} ESMTP relaylab-sink", self.hostname()))),
            Action::Reply(r) if r.code < 400 => Outcome::Reply(r),
            Action::Reply(r) if r.code == 421 => Outcome::Close(r),
            Action::Reply(r) => {
                self.no_service = true;
                Outcome::Reply(r)
            }
            Action::Disconnect => Outcome::Disconnect,
            Action::Silence => Outcome::Silence,
        };
        outcome.after(delay)
    }

    /// Answer one command line.
    ///
    /// The sink reads more strictly than the shared parser: a line with blanks
    /// before the verb, or other than space or tab after it, is not a command
    /// it knows; arguments to DATA or RSET, text glued to a path, a null
    /// recipient and VRFY without an argument are syntax errors. A `<` inside
    /// a path is let through.
    pub fn command(&mut self, line: &str) -> Outcome {
        let reply = |code, text: &str| Outcome::Reply(Reply::new(code, text));
        if self.awaiting_data {
            // The connection must read the message, not commands, after a 354.
            return reply(503, "5.5.0 Message expected after 354");
        }
        let syntax_error = || reply(501, "5.5.2 Syntax error in parameters");
        let Parsed { command, quirks, .. } = command::parse(line);
        if self.no_service && !matches!(command, Command::Quit) {
            return reply(503, "5.5.1 No service here; say QUIT");
        }
        if quirks.odd_spacing {
            return unrecognized(line);
        }
        if quirks.stray_args || quirks.glued_path {
            return syntax_error();
        }
        match command {
            // RFC 5321 4.1.4: HELO/EHLO may come again at any time and reset
            // the transaction as RSET does.
            Command::Helo(name) => self.hello(name, false),
            Command::Ehlo(name) => self.hello(name, true),
            Command::Mail { path, .. } => {
                if self.mail_from.is_some() {
                    return reply(503, "5.5.0 Sender already specified");
                }
                let d = self.decide(Phase::Mail, None);
                self.apply(d, |s, r| {
                    s.mail_from = Some(address(&path));
                    Outcome::Reply(r.unwrap_or_else(|| Reply::new(250, "2.1.0 Sender ok")))
                })
            }
            Command::Rcpt { path, .. } => {
                let to = address(&path);
                if to.is_empty() {
                    return syntax_error();
                }
                if self.mail_from.is_none() {
                    return reply(503, "5.0.0 Need MAIL before RCPT");
                }
                let d = self.decide(Phase::Rcpt, Some(&to));
                self.apply(d, |s, r| {
                    s.rcpt_to.push(to);
                    Outcome::Reply(r.unwrap_or_else(|| Reply::new(250, "2.1.5 Recipient ok")))
                })
            }
            Command::Data => {
                if self.mail_from.is_none() {
                    return reply(503, "5.0.0 Need MAIL command");
                }
                if self.rcpt_to.is_empty() {
                    return reply(503, "5.0.0 Need RCPT (recipient)");
                }
                let d = self.decide(Phase::Data, None);
                self.apply(d, |s, r| {
                    s.awaiting_data = true;
                    Outcome::Data(
                        r.unwrap_or_else(|| Reply::new(354, "Enter mail, end with \".\" on a line by itself")),
                    )
                })
            }
            Command::Rset => {
                self.reset();
                reply(250, "2.0.0 Reset state")
            }
            Command::Noop => reply(250, "2.0.0 OK"),
            Command::Quit => {
                let d = self.decide(Phase::Quit, None);
                let bye = Reply::new(221, format!("2.0.0 {} closing connection", self.hostname()));
                match d.action {
                    Action::Accept => Outcome::Close(bye),
                    Action::Reply(r) => Outcome::Close(r),
                    Action::Disconnect => Outcome::Disconnect,
                    Action::Silence => Outcome::Silence,
                }
                .after(d.delay)
            }
            Command::Vrfy(arg) if arg.is_empty() => syntax_error(),
            // RFC 5321 3.5.3: 252 means "cannot verify, but will accept and try".
            Command::Vrfy(_) => reply(252, "2.5.2 Cannot VRFY user"),
            Command::Help(_) => Outcome::Reply(Reply::multi(
                214,
                vec![
                    "2.0.0 This is relaylab-sink, a test MX".into(),
                    "2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP".into(),
                    "2.0.0 End of HELP info".into(),
                ],
            )),
            Command::Invalid { .. } => syntax_error(),
            // The sink does not offer EXPN, VERB or ETRN.
            Command::Expn(_) | Command::Verb | Command::Etrn(_) | Command::Unknown(_) => unrecognized(line),
        }
    }

    /// Answer HELO (`extended` false) or EHLO.
    fn hello(&mut self, name: String, extended: bool) -> Outcome {
        let d = self.decide(Phase::Helo, None);
        self.apply(d, |s, scripted| {
            s.reset();
            s.helo = Some(name);
            if let Some(r) = scripted {
                return Outcome::Reply(r);
            }
            let hello = format!("{} Hello [{}]", s.hostname(), s.client);
            if !extended {
                return Outcome::Reply(Reply::new(250, hello));
            }
            // RFC 5321 4.1.1.1: the first line greets, each further line names one
            // extension the client may use (RFC 2920 PIPELINING, RFC 6152
            // 8BITMIME, RFC 1870 SIZE, RFC 2034 ENHANCEDSTATUSCODES).
            Outcome::Reply(Reply::multi(
                250,
                vec![
                    hello,
                    "PIPELINING".into(),
                    "8BITMIME".into(),
                    format!("SIZE {MAX_MESSAGE_SIZE}"),
                    "ENHANCEDSTATUSCODES".into(),
                    "HELP".into(),
                ],
            ))
        })
    }

    /// The reply to a command line longer than the codec allows (RFC 5321 4.5.3.1.4).
    pub fn line_too_long(&self) -> Outcome {
        Outcome::Reply(Reply::new(500, "5.5.2 Line too long"))
    }

    /// The message after `354` has been read (`oversize` when it passed
    /// [`MAX_MESSAGE_SIZE`]). Answers the final reply and, when the message is
    /// accepted, what to record. The transaction is over either way.
    pub fn end_of_data(&mut self, data: Vec<u8>, oversize: bool) -> (Outcome, Option<Accepted>) {
        if !self.awaiting_data {
            return (Outcome::Reply(Reply::new(503, "5.5.0 No DATA in progress")), None);
        }
        self.awaiting_data = false;
        if oversize {
            self.reset();
            let r = Reply::new(552, "5.3.4 Message size exceeds fixed maximum message size");
            return (Outcome::Reply(r), None);
        }
        let d = self.decide(Phase::DataEnd, None);
        let mut accepted = None;
        let outcome = self.apply(d, |s, scripted| {
            let queue_id = s.env.queue_ids.next_id();
            let envelope =
                Envelope { mail_from: s.mail_from.take().unwrap_or_default(), rcpt_to: std::mem::take(&mut s.rcpt_to) };
            accepted = Some(Accepted { queue_id: queue_id.clone(), helo: s.helo.clone(), envelope, data });
            Outcome::Reply(
                scripted.unwrap_or_else(|| Reply::new(250, format!("2.0.0 {queue_id} Message accepted for delivery"))),
            )
        });
        // Accepted or not, the transaction is over.
        self.reset();
        (outcome, accepted)
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
        self.awaiting_data = false;
    }
}

/// `500` for a line that is not a command the sink knows, quoting it.
fn unrecognized(line: &str) -> Outcome {
    Outcome::Reply(Reply::new(500, format!("5.5.1 Command unrecognized: \"{}\"", printable(line))))
}

/// The address of a path as typed: brackets stripped, and blanks inside them
/// (`< a@b >`) too.
fn address(path: &str) -> String {
    strip_path(path).trim().to_string()
}

/// Control characters would garble a reply line; show them as `?`.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_core::clock::FixedClock;
    use std::sync::Arc;

    fn session_with(behaviour: SinkBehaviour) -> Session {
        let clock = chrono::DateTime::parse_from_rfc3339("2025-08-13T15:10:19Z").unwrap().to_utc();
        let time = LabTime::new(Arc::new(FixedClock(clock)), clock);
        Session::new(Arc::new(SinkEnv::new("mx.example", behaviour, time)), "192.0.2.7:40000".parse().unwrap())
    }

    fn session() -> Session {
        session_with(SinkBehaviour::accept())
    }

    fn line(s: &mut Session, cmd: &str) -> String {
        s.command(cmd).reply().expect("a reply").first_line()
    }

    #[test]
    fn greeting_names_the_host() {
        assert_eq!(session().greeting(), Outcome::Reply(Reply::new(220, "mx.example ESMTP relaylab-sink")));
    }

    #[test]
    fn ehlo_lists_extensions_and_helo_is_one_line() {
        let mut s = session();
        let ehlo = s.command("EHLO client.example");
        assert_eq!(
            ehlo.reply().unwrap().to_wire(),
            "250-mx.example Hello [192.0.2.7]\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 52428800\r\n\
             250-ENHANCEDSTATUSCODES\r\n250 HELP\r\n"
        );
        assert_eq!(s.helo(), Some("client.example"));
        assert_eq!(line(&mut s, "helo other"), "250 mx.example Hello [192.0.2.7]");
        assert_eq!(s.helo(), Some("other"));
    }

    #[test]
    fn a_full_transaction_is_accepted_with_its_envelope() {
        let mut s = session();
        s.command("EHLO c");
        assert_eq!(line(&mut s, "MAIL FROM:<a@b> SIZE=123 BODY=8BITMIME"), "250 2.1.0 Sender ok");
        assert_eq!(line(&mut s, "RCPT TO:<x@y>"), "250 2.1.5 Recipient ok");
        assert_eq!(line(&mut s, "rcpt to: <z@y>"), "250 2.1.5 Recipient ok");
        let data = s.command("DATA");
        assert_eq!(data, Outcome::Data(Reply::new(354, "Enter mail, end with \".\" on a line by itself")));
        let (reply, acc) = s.end_of_data(b"Subject: t\r\n\r\nhi\r\n".to_vec(), false);
        let acc = acc.expect("accepted");
        assert_eq!(
            reply.reply().unwrap().first_line(),
            format!("250 2.0.0 {} Message accepted for delivery", acc.queue_id)
        );
        assert_eq!(acc.envelope, Envelope { mail_from: "a@b".into(), rcpt_to: vec!["x@y".into(), "z@y".into()] });
        assert_eq!(acc.helo.as_deref(), Some("c"));
        assert_eq!(acc.data, b"Subject: t\r\n\r\nhi\r\n".to_vec());
    }

    #[test]
    fn second_transaction_needs_no_rset_and_gets_a_new_queue_id() {
        let mut s = session();
        let mut ids = Vec::new();
        for rcpt in ["one@y", "two@y"] {
            assert_eq!(line(&mut s, "MAIL FROM:<>"), "250 2.1.0 Sender ok");
            line(&mut s, &format!("RCPT TO:<{rcpt}>"));
            assert!(matches!(s.command("DATA"), Outcome::Data(_)));
            let (_, acc) = s.end_of_data(b"x\r\n".to_vec(), false);
            let acc = acc.unwrap();
            assert_eq!(acc.envelope.mail_from, "");
            assert_eq!(acc.envelope.rcpt_to, vec![rcpt.to_string()]);
            assert_eq!(acc.helo, None);
            ids.push(acc.queue_id);
        }
        assert_ne!(ids[0], ids[1]);
        // 2025-08-13 15:10:19 → year 125%60=5, month0 7, day 13=D, 15=F, 10=A, 19=J.
        assert_eq!(ids[0], "57DFAJ00000001");
        assert_eq!(ids[1], "57DFAJ00000002");
    }

    #[test]
    fn sequence_errors_are_answered_and_the_session_goes_on() {
        let mut s = session();
        assert_eq!(line(&mut s, "RCPT TO:<x@y>"), "503 5.0.0 Need MAIL before RCPT");
        assert_eq!(line(&mut s, "DATA"), "503 5.0.0 Need MAIL command");
        assert_eq!(line(&mut s, "MAIL FROM:<a@b>"), "250 2.1.0 Sender ok");
        assert_eq!(line(&mut s, "MAIL FROM:<c@d>"), "503 5.5.0 Sender already specified");
        assert_eq!(line(&mut s, "DATA"), "503 5.0.0 Need RCPT (recipient)");
        assert_eq!(line(&mut s, "RCPT TO:<>"), "501 5.5.2 Syntax error in parameters");
        assert_eq!(line(&mut s, "RCPT TO:<x@y>"), "250 2.1.5 Recipient ok");
        assert!(matches!(s.command("DATA"), Outcome::Data(_)));
    }

    #[test]
    fn unknown_and_malformed_commands() {
        let mut s = session();
        assert_eq!(line(&mut s, "XYZZY"), "500 5.5.1 Command unrecognized: \"XYZZY\"");
        assert_eq!(line(&mut s, ""), "500 5.5.1 Command unrecognized: \"\"");
        assert_eq!(line(&mut s, "FOO\rbar"), "500 5.5.1 Command unrecognized: \"FOO?bar\"");
        assert_eq!(line(&mut s, "MAIL FROM <a@b>"), "501 5.5.2 Syntax error in parameters");
        assert_eq!(line(&mut s, "VRFY root"), "252 2.5.2 Cannot VRFY user");
        assert_eq!(line(&mut s, "NOOP"), "250 2.0.0 OK");
        assert_eq!(s.command("HELP").reply().unwrap().code, 214);
        assert_eq!(s.line_too_long().reply().unwrap().first_line(), "500 5.5.2 Line too long");
    }

    #[test]
    fn stricter_than_the_shared_parser() {
        let mut s = session();
        // Not a command: blanks before the verb or an odd one after it; verbs the sink does not offer.
        assert_eq!(line(&mut s, " QUIT"), "500 5.5.1 Command unrecognized: \" QUIT\"");
        assert_eq!(line(&mut s, "HELO\x0bx"), "500 5.5.1 Command unrecognized: \"HELO?x\"");
        assert_eq!(line(&mut s, "EXPN staff"), "500 5.5.1 Command unrecognized: \"EXPN staff\"");
        assert_eq!(line(&mut s, "VERB"), "500 5.5.1 Command unrecognized: \"VERB\"");
        assert_eq!(line(&mut s, "etrn x"), "500 5.5.1 Command unrecognized: \"etrn x\"");
        // Syntax errors, answered before the sequence is checked.
        for bad in ["DATA now", "RSET x", "MAIL FROM:<a@b>SIZE=1", "RCPT TO:<>", "RCPT TO:< >", "VRFY", "EHLO"] {
            assert_eq!(line(&mut s, bad), "501 5.5.2 Syntax error in parameters", "{bad:?}");
        }
        // Accepted: trailing blanks, a path with blanks or `<` inside the brackets, a bare path.
        assert_eq!(line(&mut s, "HELO a b\x0b"), "250 mx.example Hello [192.0.2.7]");
        assert_eq!(s.helo(), Some("a b"));
        assert_eq!(line(&mut s, "MAIL FROM:< a<b >"), "250 2.1.0 Sender ok");
        assert_eq!(line(&mut s, "RCPT TO:x@y NOTIFY=NEVER"), "250 2.1.5 Recipient ok");
        assert_eq!(line(&mut s, "RCPT TO: <z@y>\t"), "250 2.1.5 Recipient ok");
        assert!(matches!(s.command("DATA\r"), Outcome::Data(_)));
        let (_, acc) = s.end_of_data(b"x\r\n".to_vec(), false);
        assert_eq!(
            acc.unwrap().envelope,
            Envelope { mail_from: "a<b".into(), rcpt_to: vec!["x@y".into(), "z@y".into()] }
        );
    }

    #[test]
    fn rset_and_ehlo_clear_the_transaction() {
        let mut s = session();
        line(&mut s, "MAIL FROM:<a@b>");
        line(&mut s, "RCPT TO:<x@y>");
        assert_eq!(line(&mut s, "RSET"), "250 2.0.0 Reset state");
        assert_eq!(line(&mut s, "DATA"), "503 5.0.0 Need MAIL command");
        line(&mut s, "MAIL FROM:<a@b>");
        line(&mut s, "EHLO again");
        assert_eq!(line(&mut s, "RCPT TO:<x@y>"), "503 5.0.0 Need MAIL before RCPT");
    }

    #[test]
    fn quit_closes() {
        let mut s = session();
        assert_eq!(s.command("QUIT"), Outcome::Close(Reply::new(221, "2.0.0 mx.example closing connection")));
    }

    #[test]
    fn oversize_message_is_refused_and_not_recorded() {
        let mut s = session();
        line(&mut s, "MAIL FROM:<a@b>");
        line(&mut s, "RCPT TO:<x@y>");
        s.command("DATA");
        let (reply, acc) = s.end_of_data(vec![b'x'; 10], true);
        assert_eq!(reply.reply().unwrap().code, 552);
        assert!(acc.is_none());
        // The transaction is over: a new MAIL is fine.
        assert_eq!(line(&mut s, "MAIL FROM:<a@b>"), "250 2.1.0 Sender ok");
    }

    #[test]
    fn end_of_data_without_data_is_refused() {
        let mut s = session();
        let (reply, acc) = s.end_of_data(b"x\r\n".to_vec(), false);
        assert_eq!(reply.reply().unwrap().code, 503);
        assert!(acc.is_none());
    }
}
