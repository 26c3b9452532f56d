//! The SMTP dialogue as a state machine, without a socket.
//!
//! Talks to nothing directly: takes command lines and message bytes, returns
//! [`Reply`]s, writes log lines, and hands accepted messages back to the
//! server for the queue. States (RFC 5321 4.1.4): connected → greeted
//! (HELO/EHLO) → in a transaction (MAIL) → with recipients (RCPT) → DATA.
//! Reply texts are Sendmail 8.13's (spec §2.2–2.4).

use crate::dates::Zone;
use crate::intake::{self, Intake, Proto};
use crate::log::{relay_name, FromLine, RelayLog};
use crate::policy::{RcptVerdict, RelayPolicy};
use crate::profile::RelayProfile;
use crate::queue::{QueueEntry, Recipient};
use crate::queue_id::QueueIdGen;
use crate::routing::Router;
use lab_core::command::{self, Command};
use lab_core::envelope::strip_path;
use lab_core::{Reply, SharedClock};
use std::net::IpAddr;
use std::sync::Arc;

mod anti_spam;
mod checks;
mod identity;

pub use anti_spam::AntiSpam;

/// Largest message accepted (`MaxMessageSize` is unset in the course's
/// configs; this only bounds memory).
pub const MAX_MESSAGE_SIZE: usize = 32 * 1024 * 1024;

/// Unknown commands tolerated before the session is closed (Sendmail's `MAXBADCOMMANDS`).
pub const MAX_BAD_COMMANDS: u32 = 25;

/// What every session of one relay shares.
#[derive(Debug)]
pub struct SessionConfig {
    /// The profile.
    pub profile: RelayProfile,
    /// Its time zone, parsed.
    pub zone: Zone,
    /// Its relay policy, parsed.
    pub policy: RelayPolicy,
    /// Its routing and address tables, parsed (RCPT refusals, spec §3.1).
    pub router: Arc<Router>,
    /// The lab clock.
    pub clock: SharedClock,
    /// The relay log.
    pub log: RelayLog,
    /// The greylist's store and the compiled header checks.
    pub anti_spam: AntiSpam,
}

/// Who is connected: lab address and PTR name (looked up at connect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's lab address.
    pub ip: IpAddr,
    /// Its PTR name, if it has one.
    pub name: Option<String>,
    /// The PTR name does not resolve (A) back to `ip`: Sendmail's
    /// `(may be forged)` (spec §5.2).
    pub forged: bool,
}

impl ClientInfo {
    /// `name [ip]`, `name [ip] (may be forged)` or `[ip]`, as replies, logs
    /// and `Received:` name the client (Sendmail's `$_`, `CurSmtpClient`).
    pub fn relay(&self) -> String {
        let base = relay_name(self.name.as_deref(), self.ip);
        if self.forged && self.name.is_some() {
            format!("{base} (may be forged)")
        } else {
            base
        }
    }

    /// Sendmail's `peerhostname`: the PTR name, else `[ip]`; stands in for
    /// the HELO name when the client sent MAIL without one.
    pub fn peer_host_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("[{}]", self.ip))
    }
}

/// What the server must do after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send this reply and read the next command.
    Reply(Reply),
    /// Send this `354`, read the message, then call [`Session::end_of_data`].
    StartData(Reply),
    /// Send this reply and close the connection.
    Close(Reply),
}

#[derive(Debug)]
struct Transaction {
    qid: String,
    sender_typed: String,
    sender: String,
    rcpts: Vec<Recipient>,
    /// A check said DISCARD: accept, deliver nothing (spec §4.4).
    discard: bool,
    /// MAIL came before any HELO/EHLO (allowed without `needmailhelo`):
    /// `$s` is the client's name and `authwarnings` adds a warning.
    no_helo: bool,
}

/// One SMTP session's state.
#[derive(Debug)]
pub struct Session {
    cfg: Arc<SessionConfig>,
    client: ClientInfo,
    ids: QueueIdGen,
    helo: Option<(Proto, String)>,
    txn: Option<Transaction>,
    last_cmd: Option<&'static str>,
    issued_mail: bool,
    bad_commands: u32,
    /// Policy state: null session, DISCARD, the sender's DNS answer.
    checks: checks::SessionChecks,
}

fn r(code: u16, text: impl Into<String>) -> Outcome {
    Outcome::Reply(Reply::new(code, text))
}

/// Sendmail takes the first word of the HELO/EHLO argument.
fn first_word(arg: String) -> String {
    arg.split_whitespace().next().unwrap_or("").to_string()
}

const MAIL_PARAMS: &[&str] = &["SIZE", "BODY", "AUTH", "ENVID", "RET"];
const RCPT_PARAMS: &[&str] = &["NOTIFY", "ORCPT"];

/// The first parameter whose keyword is not in `known`.
fn unknown_param<'a>(params: &'a [String], known: &[&str]) -> Option<&'a str> {
    params.iter().map(|p| p.split('=').next().unwrap_or(p)).find(|k| !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
}

impl Session {
    /// A session for `client`, run by pseudo-process `pid`.
    pub fn new(cfg: Arc<SessionConfig>, client: ClientInfo, pid: u32) -> Session {
        let mut s = Session {
            cfg,
            client,
            ids: QueueIdGen::new(pid),
            helo: None,
            txn: None,
            last_cmd: None,
            issued_mail: false,
            bad_commands: 0,
            checks: checks::SessionChecks::default(),
        };
        s.connect_checks();
        s
    }

    /// The pseudo-pid in this session's log lines and queue ids.
    pub fn pid(&self) -> u32 {
        self.ids.pid()
    }

    /// The client.
    pub fn client(&self) -> &ClientInfo {
        &self.client
    }

    /// The queue id of the open transaction, if any.
    pub fn qid(&self) -> Option<&str> {
        self.txn.as_ref().map(|t| t.qid.as_str())
    }

    fn host(&self) -> &str {
        &self.cfg.profile.hostname
    }

    fn log(&self, text: &str) {
        self.cfg.log.log(self.pid(), self.qid(), text);
    }

    /// `220 $j ESMTP Sendmail $v/$Z; $b`, or `smtp_login_msg` (spec §2.2).
    pub fn greeting(&self) -> Reply {
        self.login_greeting()
    }

    /// Handle one command line (without CRLF).
    pub fn handle_line(&mut self, line: &str) -> Outcome {
        let parsed = command::parse(line);
        // Sendmail's address parser refuses a second `<` in a path.
        let cmd = if parsed.quirks.angle_in_path { parsed.refuse("< inside the path") } else { parsed.command };
        if !matches!(cmd, Command::Unknown(_)) {
            self.last_cmd = Some(cmd.name());
        }
        self.checks.line = line.trim().to_string();
        self.handle(cmd)
    }

    /// Handle one parsed command.
    pub fn handle(&mut self, cmd: Command) -> Outcome {
        if matches!(cmd, Command::Mail { .. } | Command::Vrfy(_) | Command::Expn(_) | Command::Etrn(_)) {
            self.issued_mail = true;
        }
        if let Some(refused) = self.null_server(&cmd) {
            return refused;
        }
        match cmd {
            Command::Helo(d) => self.hello(Proto::Smtp, first_word(d)),
            Command::Ehlo(d) => self.hello(Proto::Esmtp, first_word(d)),
            Command::Mail { path, params } => self.mail(path, params),
            Command::Rcpt { path, params } => self.rcpt(path, params),
            Command::Data => self.data(),
            Command::Rset => {
                self.txn = None;
                r(250, "2.0.0 Reset state")
            }
            Command::Noop => r(250, "2.0.0 OK"),
            Command::Quit => {
                self.end_of_session();
                Outcome::Close(Reply::new(221, format!("2.0.0 {} closing connection", self.host())))
            }
            // As `privacy_flags` allow (spec §2.3, §9.8).
            Command::Vrfy(arg) => self.verify(true, &arg),
            Command::Expn(arg) => self.verify(false, &arg),
            Command::Etrn(arg) => self.etrn(&arg),
            Command::Verb => self.verb(),
            Command::Help(_) => Outcome::Reply(Reply::multi(
                214,
                vec![
                    format!("2.0.0 This is sendmail version {}", self.cfg.profile.version),
                    "2.0.0 Topics:".into(),
                    "2.0.0 \tHELO\tEHLO\tMAIL\tRCPT\tDATA".into(),
                    "2.0.0 \tRSET\tNOOP\tQUIT\tHELP\tVRFY".into(),
                    "2.0.0 End of HELP info".into(),
                ],
            )),
            Command::Unknown(line) => {
                self.bad_commands += 1;
                if self.bad_commands > MAX_BAD_COMMANDS {
                    self.log(&format!(
                        "{}: possible SMTP attack: command=UNKNOWN, count={}",
                        self.client.relay(),
                        self.bad_commands
                    ));
                    return Outcome::Close(Reply::new(
                        421,
                        format!("4.7.0 {} Too many bad commands; closing connection", self.host()),
                    ));
                }
                r(500, format!("5.5.1 Command unrecognized: \"{line}\""))
            }
            // Sendmail 8.13's replies to arguments it cannot read (`[S srvrsmtp.c]`).
            Command::Invalid { verb: verb @ ("HELO" | "EHLO"), .. } => {
                r(501, format!("5.0.0 {verb} requires domain address"))
            }
            Command::Invalid { args, .. } => r(501, format!("5.5.2 Syntax error in parameters scanning \"{args}\"")),
        }
    }

    fn hello(&mut self, proto: Proto, arg: String) -> Outcome {
        if self.helo.is_some() {
            return r(503, format!("5.0.0 {} Duplicate HELO/EHLO", self.host()));
        }
        let first = format!("{} Hello {}, pleased to meet you", self.host(), self.client.relay());
        self.helo = Some((proto, arg));
        match proto {
            Proto::Smtp => r(250, first),
            Proto::Esmtp => {
                let mut lines = vec![first];
                lines.extend(self.ehlo_keywords());
                Outcome::Reply(Reply::multi(250, lines))
            }
        }
    }

    fn mail(&mut self, path: String, params: Vec<String>) -> Outcome {
        // srvrsmtp.c: only `needmailhelo` (or `goaway`) insists on HELO.
        if self.helo.is_none() && self.cfg.profile.privacy().need_mail_helo {
            return r(503, "5.0.0 Polite people say HELO first");
        }
        if self.txn.is_some() {
            return r(503, "5.5.0 Sender already specified");
        }
        let sender = strip_path(&path).to_string();
        if let Some(k) = unknown_param(&params, MAIL_PARAMS) {
            return r(555, format!("5.5.4 {k} parameter unrecognized"));
        }
        if let Some(refused) = self.mail_size_check(&params) {
            return refused;
        }
        // Sendmail assigns the queue id when the envelope starts (spec §6.5),
        // so a check_mail refusal is logged under it.
        let qid = self.ids.next_id(self.cfg.clock.now());
        // check_mail: access From:, unqualified and unresolvable senders (spec §4.6).
        let discard = match self.mail_checks(&path, &sender, &qid) {
            Ok(discard) => discard,
            Err(refused) => return refused,
        };
        let no_helo = self.helo.is_none();
        self.txn = Some(Transaction { qid, sender_typed: path.clone(), sender, rcpts: Vec::new(), discard, no_helo });
        r(250, format!("2.1.0 {path}... Sender ok"))
    }

    fn rcpt(&mut self, path: String, params: Vec<String>) -> Outcome {
        if self.txn.is_none() {
            return r(503, "5.0.0 Need MAIL before RCPT");
        }
        if let Some(refused) = self.too_many_rcpts() {
            return refused;
        }
        let addr = strip_path(&path).to_string();
        if addr.is_empty() {
            return r(553, format!("5.0.0 {path}... User address required"));
        }
        if let Some(k) = unknown_param(&params, RCPT_PARAMS) {
            return r(555, format!("5.5.4 {k} parameter unrecognized"));
        }
        // Routing first (spec §3.1): `error:` entries, unknown local users and
        // alias loops are refused before the relay check.
        let addr = self.cfg.router.qualify_rcpt(&addr);
        // A relay trick that hides a destination we may not relay to is refused
        // as relaying before routing reads the hidden part (spec §4.2).
        if let Some(denied) = self.relay_trick(&path, &addr) {
            return denied;
        }
        if let Some(refusal) = self.cfg.router.refusal(&addr) {
            self.log(&refusal.log_text(&path));
            return Outcome::Reply(refusal.reply(&path));
        }
        // check_rcpt (spec §4): blacklist_recipients, the relay decision,
        // then under delay_checks the sender and client checks.
        let local = crate::policy::relay_check::domain_of(&addr).is_none_or(|d| self.cfg.policy.is_local(&d));
        if let Some(refused) = self.rcpt_access(&path, &addr, local) {
            return refused;
        }
        let verdict = match self.cfg.policy.check_rcpt_from(&addr, self.client.ip, self.client.name.as_deref()) {
            // virtuser_domains and domaintable domains are ours (spec §3.7, §3.8).
            RcptVerdict::Denied if self.cfg.router.is_ours(&addr) => RcptVerdict::Local,
            v => v,
        };
        if matches!(verdict, RcptVerdict::Local | RcptVerdict::RelayTo(_) | RcptVerdict::RelayFrom(_)) {
            if let Some(refused) = self.rcpt_delayed(&path, &addr, local) {
                return refused;
            }
            if let Some(deferred) = self.greylist_rcpt(&path, &addr) {
                return deferred;
            }
        }
        match verdict {
            RcptVerdict::Unqualified => r(553, format!("5.5.4 {path}... Domain name required")),
            RcptVerdict::Local => {
                self.txn.as_mut().expect("checked above").rcpts.push(Recipient { typed: path.clone(), addr });
                r(250, format!("2.1.5 {path}... Recipient ok"))
            }
            RcptVerdict::Denied => self.refuse_rcpt(&checks::relaying_denied(), &path),
            RcptVerdict::RelayTo(_) | RcptVerdict::RelayFrom(_) => {
                self.txn.as_mut().expect("checked above").rcpts.push(Recipient { typed: path.clone(), addr });
                r(250, format!("2.1.5 {path}... Recipient ok"))
            }
        }
    }

    fn data(&mut self) -> Outcome {
        match &self.txn {
            None => r(503, "5.0.0 Need MAIL command"),
            Some(t) if t.rcpts.is_empty() => r(503, "5.0.0 Need RCPT (recipient)"),
            Some(_) => Outcome::StartData(Reply::new(354, "Enter mail, end with \".\" on a line by itself")),
        }
    }

    /// The message has been read (dot-unstuffed). Returns the final reply and,
    /// when accepted, the queue entry. The transaction ends either way.
    pub fn end_of_data(&mut self, raw: &[u8], oversize: bool) -> (Reply, Option<QueueEntry>) {
        let Some(txn) = self.txn.take() else {
            return (Reply::new(503, "5.0.0 Need MAIL command"), None);
        };
        let p = &self.cfg.profile;
        let pid = self.pid();
        let log = |text: &str| self.cfg.log.log(pid, Some(&txn.qid), text);
        if oversize {
            log(&format!("message size exceeds maximum ({})", self.max_message_size()));
            return (self.oversize_reply(), None);
        }
        // header_checks (spec §4.7): refused at end of DATA, logged as a ruleset.
        if let Some(hit) = self.header_check(raw) {
            let reply = Reply::new(hit.code, hit.text.clone());
            log(&format!(
                "ruleset={}, arg1={}, relay={}, reject={}",
                hit.ruleset,
                hit.value,
                self.client.relay(),
                reply.first_line()
            ));
            return (reply, None);
        }
        // MaxHopCount (spec §5.6): trace headers, plus one per alias level.
        let depth = txn.rcpts.iter().map(|r| self.cfg.router.alias_depth(&r.addr)).max().unwrap_or(0);
        let hops = intake::hop_count(raw) + depth as usize;
        if hops > p.max_hop_count as usize {
            let via = self.client.name.clone().unwrap_or_else(|| format!("[{}]", self.client.ip));
            let text = intake::too_many_hops(hops, p.max_hop_count, &txn.sender_typed, &via, &txn.rcpts[0].typed);
            log(&format!("SYSERR(root): 554 {text}"));
            return (Reply::new(554, text), None);
        }
        // Without HELO Sendmail sets `$s` to the client's name (`peerhostname`)
        // and `$r` to SMTP, and `authwarnings` flags it (spec §5.5).
        let (proto, helo) = match &self.helo {
            Some(h) if !txn.no_helo => h.clone(),
            _ => (Proto::Smtp, self.client.peer_host_name()),
        };
        let warnings: Vec<String> = if txn.no_helo && p.privacy().auth_warnings {
            vec![format!("{} didn't use HELO protocol", self.client.relay())]
        } else {
            Vec::new()
        };
        let now = self.cfg.clock.now();
        let typed: Vec<String> = txn.rcpts.iter().map(|r| r.typed.clone()).collect();
        let intake = Intake {
            helo: &helo,
            proto,
            client_name: self.client.name.as_deref(),
            client_ip: self.client.ip,
            may_be_forged: self.client.forged,
            hostname: &p.hostname,
            version: &p.version,
            qid: &txn.qid,
            rcpts_typed: &typed,
            now,
            zone: &self.cfg.zone,
            auth_warnings: &warnings,
        };
        let prepared = intake::prepare(&intake, raw);
        let size = intake::logged_size(raw);
        let relay = self.client.relay();
        // DISCARD (spec §4.4): `sendall` logs "discarded", the arrival line
        // follows, and nothing is queued.
        let discard = txn.discard || self.checks.discard;
        if discard {
            log("discarded");
        }
        log(&FromLine {
            from: &txn.sender_typed,
            size,
            class: prepared.class,
            nrcpts: txn.rcpts.len(),
            msgid: &prepared.msgid,
            proto: proto.as_str(),
            daemon: &p.daemon_name,
            relay: &relay,
        }
        .render());
        let reply = Reply::new(250, format!("2.0.0 {} Message accepted for delivery", txn.qid));
        if discard {
            return (reply, None);
        }
        let entry = QueueEntry {
            qid: txn.qid,
            pid,
            sender_typed: txn.sender_typed,
            sender: txn.sender,
            nrcpts: txn.rcpts.len(),
            rcpts: txn.rcpts,
            data: Arc::new(prepared.data),
            size,
            class: prepared.class,
            arrived: now,
            attempts: 0,
            last_error: None,
            msgid: prepared.msgid.clone(),
            client: relay.clone(),
            ..QueueEntry::default()
        };
        (reply, Some(entry))
    }

    /// A command line longer than the limit was received and skipped.
    pub fn line_too_long(&mut self) -> Reply {
        Reply::new(500, "5.5.0 Command line too long")
    }

    /// The session ended normally (QUIT).
    fn end_of_session(&mut self) {
        // Not for a null session (`srvrsmtp.c`: `nullserver == NULL`).
        if !self.issued_mail && self.checks.null.is_none() {
            self.log(&format!(
                "{} did not issue MAIL/EXPN/VRFY/ETRN during connection to {}",
                self.client.relay(),
                self.cfg.profile.daemon_name
            ));
        }
    }

    /// The client went away without QUIT (spec §6.4).
    pub fn lost_input(&mut self, in_data: bool) {
        if in_data {
            self.log("collect: premature EOM: unexpected close");
        }
        let after = if in_data { "data" } else { self.last_cmd.unwrap_or("startup") };
        // At the default LogLevel 9 only a client inside a transaction is
        // logged (`srvrsmtp.c`: `LogLevel > (gotmail ? 1 : 19)`).
        if self.txn.is_some() {
            self.log(&format!(
                "lost input channel from {} to {} after {after}",
                self.client.relay(),
                self.cfg.profile.daemon_name
            ));
        }
        self.txn = None;
        self.end_of_session();
    }

    /// The relay is stopping: the reply to send before closing.
    pub fn shutting_down(&mut self) -> Reply {
        self.txn = None;
        Reply::new(421, format!("4.3.2 {} Shutting down", self.host()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::SenderDomain;
    use chrono::TimeZone;
    use lab_core::clock::FixedClock;
    use pretty_assertions::assert_eq;

    fn session(name: Option<&str>, ip: &str) -> (Session, RelayLog) {
        session_with(name, ip, |_| {})
    }

    /// The course's external relay (privacy flags of external.mc), adjusted by `f`.
    fn session_with(name: Option<&str>, ip: &str, f: impl FnOnce(&mut RelayProfile)) -> (Session, RelayLog) {
        let mut p = RelayProfile::new("external.sysiphus.com");
        p.relay_domains = vec!["sysiphus.com".into(), "192.168.2".into()];
        p.timezone = "-0800".into();
        p.privacy_flags = vec!["noexpn,novrfy,noverb,noetrn,noreceipts".into()];
        f(&mut p);
        let clock: SharedClock = Arc::new(FixedClock(chrono::Utc.with_ymd_and_hms(2006, 1, 5, 5, 18, 5).unwrap()));
        let zone = p.zone().unwrap();
        let log = RelayLog::new("external", "sm-mta", zone.clone(), clock.clone());
        let cfg = SessionConfig {
            policy: RelayPolicy::from_profile(&p).unwrap(),
            router: Arc::new(Router::from_profile(&p).unwrap()),
            zone,
            anti_spam: AntiSpam::from_profile(&p),
            profile: p,
            clock,
            log: log.clone(),
        };
        let client = ClientInfo { ip: ip.parse().unwrap(), name: name.map(str::to_string), forged: false };
        (Session::new(Arc::new(cfg), client, 3739), log)
    }

    fn text(o: Outcome) -> String {
        match o {
            Outcome::Reply(r) | Outcome::StartData(r) | Outcome::Close(r) => r.text(),
        }
    }

    #[test]
    fn greeting_and_hello() {
        let (mut s, _) = session(Some("real.dom.com"), "130.55.1.2");
        assert_eq!(
            s.greeting().first_line(),
            "220 external.sysiphus.com ESMTP Sendmail 8.13.4/8.13.4; Wed, 4 Jan 2006 21:18:05 -0800"
        );
        assert_eq!(
            text(s.handle_line("HELO spoof.example.com")),
            "250 external.sysiphus.com Hello real.dom.com [130.55.1.2], pleased to meet you"
        );
        assert_eq!(text(s.handle_line("EHLO again")), "503 5.0.0 external.sysiphus.com Duplicate HELO/EHLO");
        let (mut s, _) = session(None, "192.168.1.1");
        assert_eq!(
            text(s.handle_line("EHLO x")),
            "250 external.sysiphus.com Hello [192.168.1.1], pleased to meet you\n250 ENHANCEDSTATUSCODES\n\
             250 PIPELINING\n250 8BITMIME\n250 SIZE\n250 HELP"
        );
        // Sendmail's default privacy (authwarnings only) offers everything, in 8.13's order.
        let (mut s, _) = session_with(None, "192.168.1.1", |p| p.privacy_flags = vec!["authwarnings".into()]);
        assert_eq!(
            text(s.handle_line("EHLO x")),
            "250 external.sysiphus.com Hello [192.168.1.1], pleased to meet you\n250 ENHANCEDSTATUSCODES\n\
             250 PIPELINING\n250 EXPN\n250 VERB\n250 8BITMIME\n250 SIZE\n250 DSN\n250 ETRN\n250 HELP"
        );
        // noverb alone drops VERB; noexpn drops both.
        let (mut s, _) = session_with(None, "192.168.1.1", |p| p.privacy_flags = vec!["noverb".into()]);
        assert!(text(s.handle_line("EHLO x")).contains("250 EXPN\n250 8BITMIME"));
    }

    #[test]
    fn login_message_hides_the_version() {
        let (s, _) = session_with(None, "192.168.1.1", |p| p.smtp_login_msg = Some("mailer ready".into()));
        assert_eq!(s.greeting().text(), "220 mailer ESMTP ready");
        let (s, _) = session_with(None, "192.168.1.1", |p| p.smtp_login_msg = Some("$j ready at $b\nno spam".into()));
        assert_eq!(
            s.greeting().text(),
            "220 external.sysiphus.com ESMTP ready at Wed, 4 Jan 2006 21:18:05 -0800\n220 no spam"
        );
    }

    #[test]
    fn information_commands_follow_the_privacy_flags() {
        // Refused (external.mc's flags), each logged with [rejected].
        let (mut s, log) = session(Some("scan.example"), "203.0.113.9");
        assert_eq!(text(s.handle_line("VERB")), "502 5.7.0 Verbose unavailable");
        assert_eq!(text(s.handle_line("etrn sysiphus.com")), "502 5.7.0 Sorry, we do not allow this operation");
        assert_eq!(
            log.lines(),
            ["Jan  4 21:18:05 external sm-mta[3739]: NOQUEUE: scan.example [203.0.113.9]: etrn sysiphus.com [rejected]"]
        );
        // Allowed (Sendmail's default).
        let (mut s, log) = session_with(None, "203.0.113.9", |p| p.privacy_flags = vec![]);
        assert_eq!(text(s.handle_line("VERB")), "250 2.0.0 Verbose mode");
        assert_eq!(text(s.handle_line("VRFY root")), "550 5.1.1 root... User unknown");
        assert_eq!(
            text(s.handle_line("VRFY <x@deer-run.com>")),
            "252 2.1.5 Cannot VRFY user; try RCPT to attempt delivery (or try finger)"
        );
        assert_eq!(text(s.handle_line("EXPN x@deer-run.com")), "250 2.1.5 <x@deer-run.com>");
        assert_eq!(text(s.handle_line("VRFY")), "501 5.5.2 Argument required");
        assert_eq!(text(s.handle_line("ETRN")), "500 5.5.2 Parameter required");
        assert_eq!(text(s.handle_line("ETRN sysiphus.com")), "250 2.0.0 Queuing for node sysiphus.com started");
        assert!(log.lines().iter().any(|l| l.ends_with("NOQUEUE: [203.0.113.9]: VRFY root")), "{:#?}", log.lines());
        assert!(log.lines().iter().any(|l| l.ends_with("NOQUEUE: [203.0.113.9]: ETRN sysiphus.com")));
        // goaway also wants HELO first.
        let (mut s, _) = session_with(None, "203.0.113.9", |p| p.privacy_flags = vec!["needvrfyhelo".into()]);
        assert_eq!(text(s.handle_line("VRFY root")), "503 5.0.0 I demand that you introduce yourself first");
    }

    #[test]
    fn connect_reject_makes_a_null_session() {
        let (mut s, log) = session_with(Some("mail.spam.example"), "202.9.145.21", |p| {
            p.access = vec!["Connect:202.9.145.21 REJECT".into()]
        });
        assert_eq!(s.greeting().code, 220);
        assert_eq!(
            log.lines(),
            ["Jan  4 21:18:05 external sm-mta[3739]: NOQUEUE: ruleset=check_relay, arg1=mail.spam.example, \
              arg2=202.9.145.21, relay=mail.spam.example [202.9.145.21], reject=550 5.7.1 Access denied"]
        );
        assert_eq!(
            text(s.handle_line("EHLO x")),
            "250 external.sysiphus.com Hello mail.spam.example [202.9.145.21], pleased to meet you\n250 ENHANCEDSTATUSCODES"
        );
        assert_eq!(text(s.handle_line("MAIL FROM:<a@b.com>")), "550 5.7.1 Access denied");
        assert_eq!(text(s.handle_line("RCPT TO:<john@sysiphus.com>")), "550 5.7.1 Access denied");
        assert_eq!(text(s.handle_line("VRFY root")), "550 5.7.1 Access denied");
        assert_eq!(text(s.handle_line("NOOP")), "250 2.0.0 OK");
        assert_eq!(text(s.handle_line("junk")), "500 5.5.1 Command unrecognized: \"junk\"");
        s.handle_line("QUIT");
        // A null session is not reported as "did not issue MAIL".
        assert_eq!(log.lines().len(), 1, "{:#?}", log.lines());
    }

    #[test]
    fn greet_pause_traffic_makes_a_554_null_session() {
        let (mut s, log) = session_with(None, "192.168.1.1", |p| p.greet_pause = 1500);
        assert_eq!(s.greet_pause(), std::time::Duration::from_millis(1500));
        s.pre_greeting_traffic();
        assert_eq!(s.greeting().text(), "554 external.sysiphus.com ESMTP not accepting messages");
        assert_eq!(text(s.handle_line("HELO x")), "250 external.sysiphus.com Hello [192.168.1.1], pleased to meet you");
        assert_eq!(text(s.handle_line("MAIL FROM:<hal@deer-run.com>")), "550 5.0.0 Command rejected");
        assert_eq!(text(s.handle_line("DATA")), "550 5.0.0 Command rejected");
        assert_eq!(
            log.lines(),
            ["Jan  4 21:18:05 external sm-mta[3739]: NOQUEUE: rejecting commands from [192.168.1.1] [192.168.1.1] \
              due to pre-greeting traffic"]
        );
    }

    #[test]
    fn sender_checks_at_mail_time() {
        let (mut s, log) = session_with(Some("real.dom.com"), "130.55.1.2", |p| {
            p.access = vec!["From:foo.biz REJECT".into(), "From:biz ERROR:550 Move out of biz".into()]
        });
        s.handle_line("HELO c");
        assert_eq!(text(s.handle_line("mail from: spam@foo.biz")), "550 5.7.1 spam@foo.biz... Access denied");
        assert_eq!(text(s.handle_line("MAIL FROM:<x@shop.biz>")), "550 5.0.0 <x@shop.biz>... Move out of biz");
        s.note_sender_domain("nowhere.example".into(), SenderDomain::DoesNotExist);
        assert_eq!(
            text(s.handle_line("MAIL FROM:<a@nowhere.example>")),
            "553 5.1.8 <a@nowhere.example>... Domain of sender address a@nowhere.example does not exist"
        );
        s.note_sender_domain("lamers.org".into(), SenderDomain::TempFail);
        assert_eq!(
            text(s.handle_line("MAIL FROM:<bounce@lamers.org>")),
            "451 4.1.8 <bounce@lamers.org>... Domain of sender address bounce@lamers.org does not resolve"
        );
        assert!(s.qid().is_none());
        let lines = log.lines();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[0].ends_with(
                ": ruleset=check_mail, arg1=spam@foo.biz, relay=real.dom.com [130.55.1.2], \
                 reject=550 5.7.1 spam@foo.biz... Access denied"
            ),
            "{}",
            lines[0]
        );
        assert!(!lines[0].contains("NOQUEUE"), "{}", lines[0]);
        // Only a MAIL command asks for a DNS lookup of the sender domain.
        assert_eq!(s.sender_domain_to_resolve("MAIL FROM:<a@Deer-Run.com>"), Some("deer-run.com".into()));
        assert_eq!(s.sender_domain_to_resolve("RCPT TO:<a@deer-run.com>"), None);
        assert_eq!(s.sender_domain_to_resolve("MAIL FROM:<>"), None);
    }

    #[test]
    fn delay_checks_moves_the_refusal_to_rcpt() {
        // [C:Ex 6.1.3]: MAIL accepted, RCPT refused, Spam: FRIEND spared.
        let (mut s, log) = session_with(Some("localhost.localdomain"), "127.0.0.1", |p| {
            p.access = vec!["Spam:abuse@sysiphus.com FRIEND".into(), "From:foo.biz REJECT".into()];
            p.delay_checks = crate::profile::DelayChecks::Friend;
        });
        s.handle_line("helo localhost.localdomain");
        assert_eq!(text(s.handle_line("mail from: spam@foo.biz")), "250 2.1.0 spam@foo.biz... Sender ok");
        assert_eq!(text(s.handle_line("rcpt to: hal@sysiphus.com")), "550 5.7.1 hal@sysiphus.com... Access denied");
        assert_eq!(text(s.handle_line("rcpt to: abuse@sysiphus.com")), "250 2.1.5 abuse@sysiphus.com... Recipient ok");
        // The recipient checks come first: relaying is refused as relaying.
        assert_eq!(text(s.handle_line("rcpt to: x@deer-run.com")), "550 5.7.1 x@deer-run.com... Relaying denied");
        let qid = s.qid().unwrap().to_string();
        assert_eq!(
            log.lines()[0],
            format!(
                "Jan  4 21:18:05 external sm-mta[3739]: {qid}: ruleset=check_rcpt, arg1=hal@sysiphus.com, \
                 relay=localhost.localdomain [127.0.0.1], reject=550 5.7.1 hal@sysiphus.com... Access denied"
            )
        );
    }

    #[test]
    fn discard_accepts_and_drops() {
        let (mut s, log) = session_with(None, "192.168.2.9", |p| p.access = vec!["From:junk.example DISCARD".into()]);
        s.handle_line("HELO x");
        assert_eq!(text(s.handle_line("MAIL FROM:<a@junk.example>")), "250 2.1.0 <a@junk.example>... Sender ok");
        let qid = s.qid().unwrap().to_string();
        assert_eq!(text(s.handle_line("RCPT TO:<b@deer-run.com>")), "250 2.1.5 <b@deer-run.com>... Recipient ok");
        s.handle_line("DATA");
        let (reply, entry) = s.end_of_data(b"Subject: x\r\n\r\nbody\r\n", false);
        assert_eq!(reply.text(), format!("250 2.0.0 {qid} Message accepted for delivery"));
        assert!(entry.is_none());
        let lines = log.lines();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0]
            .ends_with(&format!("{qid}: ruleset=check_mail, arg1=<a@junk.example>, relay=[192.168.2.9], discard")));
        assert!(lines[1].ends_with(&format!("{qid}: discarded")));
        assert!(lines[2].contains(&format!("{qid}: from=<a@junk.example>, size=")));
    }

    #[test]
    fn sequence_errors() {
        let (mut s, _) = session_with(None, "203.0.113.66", |p| {
            p.privacy_flags = vec!["needmailhelo,noexpn,novrfy,noverb,noetrn,noreceipts".into()]
        });
        assert_eq!(text(s.handle_line("MAIL FROM:<a@b.com>")), "503 5.0.0 Polite people say HELO first");
        assert_eq!(text(s.handle_line("RCPT TO:<john@sysiphus.com>")), "503 5.0.0 Need MAIL before RCPT");
        assert_eq!(text(s.handle_line("DATA")), "503 5.0.0 Need MAIL command");
        s.handle_line("HELO c");
        assert_eq!(text(s.handle_line("MAIL FROM:<a@b.com>")), "250 2.1.0 <a@b.com>... Sender ok");
        assert_eq!(text(s.handle_line("MAIL FROM:<a@b.com>")), "503 5.5.0 Sender already specified");
        assert_eq!(text(s.handle_line("DATA")), "503 5.0.0 Need RCPT (recipient)");
        assert_eq!(text(s.handle_line("RSET")), "250 2.0.0 Reset state");
        assert_eq!(text(s.handle_line("RCPT TO:<john@sysiphus.com>")), "503 5.0.0 Need MAIL before RCPT");
        assert_eq!(text(s.handle_line("NOOP")), "250 2.0.0 OK");
        assert_eq!(text(s.handle_line("bogus stuff")), "500 5.5.1 Command unrecognized: \"bogus stuff\"");
        assert_eq!(
            text(s.handle_line("MAIL FROM:<eve>")),
            "553 5.5.4 <eve>... Domain name required for sender address eve"
        );
        assert_eq!(text(s.handle_line("MAIL FROM:<a@b.com> FOO=1")), "555 5.5.4 FOO parameter unrecognized");
        assert_eq!(
            text(s.handle_line("VRFY root")),
            "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)"
        );
        assert_eq!(text(s.handle_line("EXPN staff")), "502 5.7.0 Sorry, we do not allow this operation");
        assert!(
            matches!(s.handle_line("QUIT"), Outcome::Close(r) if r.first_line() == "221 2.0.0 external.sysiphus.com closing connection")
        );
    }

    #[test]
    fn mail_without_helo_is_accepted_and_warned_about() {
        // Sendmail's default flags (authwarnings, no needmailhelo).
        let (mut s, _) = session_with(Some("real.dom.com"), "130.55.1.2", |p| {
            p.privacy_flags = crate::profile::identity::default_privacy_flags()
        });
        assert_eq!(text(s.handle_line("MAIL FROM:<a@b.com>")), "250 2.1.0 <a@b.com>... Sender ok");
        assert_eq!(text(s.handle_line("RCPT TO:<john@sysiphus.com>")), "250 2.1.5 <john@sysiphus.com>... Recipient ok");
        s.handle_line("DATA");
        let (reply, entry) = s.end_of_data(b"Subject: x\r\n\r\nbody\r\n", false);
        assert_eq!(reply.code, 250);
        let data = String::from_utf8(entry.unwrap().data.to_vec()).unwrap();
        assert!(data.starts_with("Received: from real.dom.com (real.dom.com [130.55.1.2])\r\n\tby external.sysiphus.com (8.13.4/8.13.4) with SMTP id "), "{data}");
        assert!(
            data.contains("\r\nX-Authentication-Warning: external.sysiphus.com: real.dom.com [130.55.1.2] didn't use HELO protocol\r\nDate: "),
            "{data}"
        );
        // The external relay's flags replace the default: no warning (§13 D11).
        let (mut s, _) = session(None, "203.0.113.66");
        s.handle_line("MAIL FROM:<a@b.com>");
        s.handle_line("RCPT TO:<john@sysiphus.com>");
        s.handle_line("DATA");
        let data =
            String::from_utf8(s.end_of_data(b"Subject: x\r\n\r\nbody\r\n", false).1.unwrap().data.to_vec()).unwrap();
        assert!(data.starts_with("Received: from [203.0.113.66] ([203.0.113.66])\r\n"), "{data}");
        assert!(!data.contains("X-Authentication-Warning"), "{data}");
        // goaway implies needmailhelo.
        let (mut s, _) = session_with(None, "203.0.113.66", |p| p.privacy_flags = vec!["goaway".into()]);
        assert_eq!(text(s.handle_line("MAIL FROM:<a@b.com>")), "503 5.0.0 Polite people say HELO first");
    }

    #[test]
    fn may_be_forged_names_the_client() {
        let c = ClientInfo { ip: "198.51.100.130".parse().unwrap(), name: Some("real.dom.com".into()), forged: true };
        assert_eq!(c.relay(), "real.dom.com [198.51.100.130] (may be forged)");
        let c = ClientInfo { name: None, ..c };
        assert_eq!(c.relay(), "[198.51.100.130]");
    }

    #[test]
    fn syntax_errors_reply_like_sendmail() {
        let (mut s, _) = session(None, "203.0.113.66");
        assert_eq!(text(s.handle_line("MAIL TO:<x@y>")), "501 5.5.2 Syntax error in parameters scanning \"TO:<x@y>\"");
        assert_eq!(text(s.handle_line("RCPT TO:<x@y")), "501 5.5.2 Syntax error in parameters scanning \"TO:<x@y\"");
        assert_eq!(text(s.handle_line("RCPT")), "501 5.5.2 Syntax error in parameters scanning \"\"");
        assert_eq!(text(s.handle_line("HELO")), "501 5.0.0 HELO requires domain address");
        assert_eq!(text(s.handle_line("EHLO ")), "501 5.0.0 EHLO requires domain address");
        // Sendmail refuses a `<` inside a path, before looking at the session.
        assert_eq!(
            text(s.handle_line("MAIL FROM:<a<b@c.com> SIZE=1")),
            "501 5.5.2 Syntax error in parameters scanning \"FROM:<a<b@c.com> SIZE=1\""
        );
        assert_eq!(
            text(s.handle_line("rcpt to: a<b@c.com")),
            "501 5.5.2 Syntax error in parameters scanning \"to: a<b@c.com\""
        );
        // Lenient where Sendmail is: blanks before the verb, arguments to
        // DATA, a path glued to its parameters, HELO with several words.
        assert_eq!(
            text(s.handle_line(" HELO c d")),
            "250 external.sysiphus.com Hello [203.0.113.66], pleased to meet you"
        );
        assert_eq!(s.helo.as_ref().map(|(_, h)| h.as_str()), Some("c"));
        assert_eq!(text(s.handle_line("MAIL FROM:<a@b.com>SIZE=1")), "250 2.1.0 <a@b.com>... Sender ok");
        assert_eq!(text(s.handle_line("DATA now")), "503 5.0.0 Need RCPT (recipient)");
    }

    #[test]
    fn recipients_by_relay_policy() {
        let (mut s, log) = session(Some("real.dom.com"), "130.55.1.2");
        s.handle_line("HELO c");
        s.handle_line("MAIL FROM:<Im@lying.com>");
        let qid = s.qid().unwrap().to_string();
        assert_eq!(text(s.handle_line("RCPT To:<john@sysiphus.com>")), "250 2.1.5 <john@sysiphus.com>... Recipient ok");
        assert_eq!(
            text(s.handle_line("rcpt to: bob@eng.sysiphus.com")),
            "250 2.1.5 bob@eng.sysiphus.com... Recipient ok"
        );
        assert_eq!(
            text(s.handle_line("RCPT TO:victim@deer-run.com")),
            "550 5.7.1 victim@deer-run.com... Relaying denied"
        );
        assert_eq!(
            text(s.handle_line("RCPT TO:<root@external.sysiphus.com>")),
            "550 5.1.1 <root@external.sysiphus.com>... User unknown"
        );
        assert_eq!(text(s.handle_line("RCPT TO:<root>")), "553 5.5.4 <root>... Domain name required");
        assert_eq!(text(s.handle_line("RCPT TO:<>")), "553 5.0.0 <>... User address required");
        let lines = log.lines();
        assert_eq!(
            lines[0],
            format!(
                "Jan  4 21:18:05 external sm-mta[3739]: {qid}: ruleset=check_rcpt, arg1=victim@deer-run.com, \
                 relay=real.dom.com [130.55.1.2], reject=550 5.7.1 victim@deer-run.com... Relaying denied"
            )
        );
        // A client inside a relay_domains prefix may relay anywhere.
        let (mut s, _) = session(None, "192.168.2.9");
        s.handle_line("EHLO inside");
        s.handle_line("MAIL FROM:<hal@sysiphus.com>");
        assert_eq!(text(s.handle_line("RCPT TO:<info@deer-run.com>")), "250 2.1.5 <info@deer-run.com>... Recipient ok");
    }

    #[test]
    fn end_of_data_accepts_and_logs() {
        let (mut s, log) = session(None, "192.168.2.9");
        s.handle_line("HELO inside.sysiphus.com");
        s.handle_line("MAIL FROM:<hal@sysiphus.com>");
        s.handle_line("RCPT TO:<info@deer-run.com>");
        assert!(matches!(s.handle_line("DATA"), Outcome::StartData(r) if r.code == 354));
        let qid = s.qid().unwrap().to_string();
        let (reply, entry) = s.end_of_data(b"Subject: hi\r\n\r\nhello\r\n", false);
        assert_eq!(reply.first_line(), format!("250 2.0.0 {qid} Message accepted for delivery"));
        let e = entry.unwrap();
        assert_eq!((e.size, e.nrcpts, e.pid), (19, 1, 3739));
        assert!(s.qid().is_none());
        assert_eq!(
            log.lines().last().unwrap(),
            &format!(
                "Jan  4 21:18:05 external sm-mta[3739]: {qid}: from=<hal@sysiphus.com>, size=19, class=0, nrcpts=1, \
                 msgid=<200601050518.{qid}@external.sysiphus.com>, proto=SMTP, daemon=MTA, relay=[192.168.2.9]"
            )
        );
        // Next transaction in the same session: next sequence, same pid.
        s.handle_line("MAIL FROM:<hal@sysiphus.com>");
        let qid2 = s.qid().unwrap().to_string();
        assert_ne!(qid, qid2);
        assert_eq!(qid[..6], qid2[..6]);
        assert_eq!(qid[8..], qid2[8..]);
    }

    #[test]
    fn too_many_hops_is_refused() {
        let (mut s, _) = session(None, "192.168.2.9");
        s.handle_line("HELO x");
        s.handle_line("MAIL FROM:<a@sysiphus.com>");
        s.handle_line("RCPT TO:<b@deer-run.com>");
        s.handle_line("DATA");
        let mut m = "Received: from a by b\r\n".repeat(26);
        m.push_str("\r\nbody\r\n");
        let (reply, entry) = s.end_of_data(m.as_bytes(), false);
        assert!(entry.is_none());
        assert_eq!(
            reply.first_line(),
            "554 5.4.6 Too many hops 26 (25 max): from <a@sysiphus.com> via [192.168.2.9], to <b@deer-run.com>"
        );
    }

    #[test]
    fn lost_input_names_the_last_command() {
        let (mut s, log) = session(None, "203.0.113.9");
        s.handle_line("HELO x");
        s.handle_line("MAIL FROM:<a@b.c>");
        s.handle_line("RCPT TO:<x@sysiphus.com>");
        s.lost_input(false);
        assert!(log.lines().last().unwrap().ends_with("lost input channel from [203.0.113.9] to MTA after rcpt"));
        // A client that never tried MAIL is noted as well, however it left;
        // outside a transaction the lost channel itself is not logged (LogLevel 9).
        let (mut s, log) = session(Some("scan.example"), "203.0.113.9");
        s.handle_line("EHLO x");
        s.lost_input(false);
        assert_eq!(
            log.lines(),
            ["Jan  4 21:18:05 external sm-mta[3739]: NOQUEUE: scan.example [203.0.113.9] did not issue \
             MAIL/EXPN/VRFY/ETRN during connection to MTA"]
        );
        // After a finished transaction the client is no longer inside one.
        let (mut s, log) = session(None, "192.168.2.9");
        s.handle_line("HELO x");
        s.handle_line("MAIL FROM:<a@sysiphus.com>");
        s.handle_line("RCPT TO:<b@deer-run.com>");
        s.handle_line("DATA");
        s.end_of_data(b"x\r\n", false);
        s.lost_input(false);
        assert!(!log.lines().iter().any(|l| l.contains("lost input")), "{:#?}", log.lines());
        let (mut s, log) = session(None, "203.0.113.9");
        s.handle_line("HELO x");
        s.handle_line("QUIT");
        assert!(log.lines()[0]
            .ends_with("NOQUEUE: [203.0.113.9] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA"));
    }
}
