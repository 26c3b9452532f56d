//! The policy checks in the dialogue and their log lines (spec §4, §6.4, §9.2).
//!
//! `check_relay` runs at connect and `check_mail` at MAIL; under
//! `delay_checks` both run from `check_rcpt`, after the recipient checks,
//! so their refusals name the recipient ([C:Ex 6.1.3]: MAIL `250`, RCPT
//! `550 5.7.1 hal@sysiphus.com... Access denied`). A refused client gets a
//! null session; `DISCARD` accepts everything and delivers nothing.

use super::{r, Outcome, Session, MAX_BAD_COMMANDS};
use crate::policy::{Refusal, SenderDomain, Verdict};
use lab_core::command::{self, Command};
use lab_core::envelope::strip_path;
use lab_core::Reply;

/// `550 5.7.1 ... Relaying denied` (`proto.m4` `Basic_check_rcpt`).
pub(super) fn relaying_denied() -> Refusal {
    Refusal { code: 550, dsn: "5.7.1".into(), text: "Relaying denied".into() }
}

/// Why the session refuses every transaction command (`nullserver`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NullServer {
    /// `check_relay` refused the client: this reply line for each command.
    Refused(String),
    /// The client talked before the greeting (`greet_pause`).
    GreetPause,
}

/// Connection-wide check state.
#[derive(Debug, Default)]
pub(super) struct SessionChecks {
    /// Set when the session is a null server.
    pub null: Option<NullServer>,
    /// The 554 greeting is due (pre-greeting traffic).
    pub greet_pause_tripped: bool,
    /// `check_relay` said DISCARD: every message of the session is dropped.
    pub discard: bool,
    /// The sender domain the server looked up for the next MAIL, and what DNS said.
    pub sender_domain: Option<(String, SenderDomain)>,
    /// A DNSBL refusal waiting for RCPT (`delay_checks`, spec §4.5).
    pub dnsbl: Option<Refusal>,
    /// The command line being handled, as typed (for VRFY/EXPN/ETRN log lines).
    pub line: String,
}

impl Session {
    /// `ruleset=<rs>, arg1=<arg1>[, arg2=<ip>], relay=<client>, reject=<reply>`
    /// or `..., discard` (`parseaddr.c` `rscheck`).
    pub(super) fn log_ruleset(&self, qid: Option<&str>, ruleset: &str, arg1: &str, arg2: bool, outcome: &str) {
        let arg2 = if arg2 { format!(", arg2={}", self.client.ip) } else { String::new() };
        let text = format!("ruleset={ruleset}, arg1={arg1}{arg2}, relay={}, {outcome}", self.client.relay());
        self.cfg.log.log(self.pid(), qid, &text);
    }

    /// `check_relay` at connect (spec §4.4 `Connect:`), unless delayed.
    pub(super) fn connect_checks(&mut self) {
        if self.cfg.policy.delay_checks().delayed() {
            return;
        }
        let arg1 = self.client.name.clone().unwrap_or_else(|| format!("[{}]", self.client.ip));
        match self.cfg.policy.check_relay(self.client.name.as_deref(), self.client.ip) {
            Verdict::Accept => {}
            Verdict::Refuse(refusal) => {
                let line = refusal.line(None);
                self.log_ruleset(None, "check_relay", &arg1, true, &format!("reject={line}"));
                self.checks.null = Some(NullServer::Refused(line));
            }
            Verdict::Discard => {
                self.log_ruleset(None, "check_relay", &arg1, true, "discard");
                self.checks.discard = true;
            }
        }
    }

    /// A null session answers HELO, EHLO, NOOP, RSET and QUIT as usual and
    /// refuses every other known command (`srvrsmtp.c` `nullserver`).
    pub(super) fn null_server(&mut self, cmd: &Command) -> Option<Outcome> {
        let null = self.checks.null.clone()?;
        match cmd {
            Command::Helo(_)
            | Command::Ehlo(_)
            | Command::Noop
            | Command::Rset
            | Command::Quit
            | Command::Unknown(_) => return None,
            Command::Invalid { verb: "HELO" | "EHLO", .. } => return None,
            _ => {}
        }
        self.bad_commands += 1;
        if self.bad_commands > MAX_BAD_COMMANDS {
            let text = format!("4.7.0 {} Too many bad commands; closing connection", self.cfg.profile.hostname);
            return Some(Outcome::Close(Reply::new(421, text)));
        }
        Some(match null {
            NullServer::Refused(line) => {
                let (code, text) = line.split_at(3);
                r(code.parse().unwrap_or(550), text.trim_start())
            }
            NullServer::GreetPause => r(550, "5.0.0 Command rejected"),
        })
    }

    /// A `421` refusal from `check_relay` replaces the greeting and ends the
    /// session (`srvrsmtp.c`); this is that reply.
    pub(super) fn greeting_refusal(&self) -> Option<Reply> {
        match &self.checks.null {
            Some(NullServer::Refused(line)) if line.starts_with("421 ") => Some(Reply::new(421, &line[4..])),
            _ => None,
        }
    }

    /// True when the connection is to be closed right after the greeting.
    pub fn closes_after_greeting(&self) -> bool {
        self.greeting_refusal().is_some()
    }

    /// How long to wait for pre-greeting traffic (`greet_pause`, spec §9.2).
    pub fn greet_pause(&self) -> std::time::Duration {
        self.cfg.policy.greet_pause(self.client.name.as_deref(), self.client.ip)
    }

    /// The client talked during the greeting pause: `554` greeting and a null
    /// session (spec §2.5, logged as in 8.13.6).
    pub fn pre_greeting_traffic(&mut self) {
        let name = self.client.name.clone().unwrap_or_else(|| format!("[{}]", self.client.ip));
        self.log(&format!("rejecting commands from {name} [{}] due to pre-greeting traffic", self.client.ip));
        self.checks.greet_pause_tripped = true;
        self.checks.null = Some(NullServer::GreetPause);
    }

    /// The sender domain to look up in DNS before this line is handled, if
    /// it is a MAIL command whose `check_mail` needs one (spec §3.10).
    pub fn sender_domain_to_resolve(&self, line: &str) -> Option<String> {
        if self.checks.null.is_some() || self.helo.is_none() || self.txn.is_some() {
            return None;
        }
        match command::parse(line).command {
            Command::Mail { path, .. } => self.cfg.policy.sender_domain_to_resolve(strip_path(&path)),
            _ => None,
        }
    }

    /// What DNS said about `domain` (see [`Session::sender_domain_to_resolve`]).
    pub fn note_sender_domain(&mut self, domain: String, status: SenderDomain) {
        self.checks.sender_domain = Some((domain, status));
    }

    fn sender_domain_status(&self, sender: &str) -> SenderDomain {
        let domain = crate::policy::relay_check::domain_of(sender);
        match (&self.checks.sender_domain, domain) {
            (Some((d, status)), Some(want)) if *d == want => *status,
            _ => SenderDomain::NotChecked,
        }
    }

    fn refuse(&self, refusal: &Refusal, path: &str) -> Outcome {
        r(refusal.code, refusal.text_for(Some(path)))
    }

    /// `check_mail` at MAIL, unless delayed. `Ok(true)`: accept and discard
    /// the message; `Err`: the refusal to send.
    pub(super) fn mail_checks(&mut self, path: &str, sender: &str, qid: &str) -> Result<bool, Outcome> {
        if self.cfg.policy.delay_checks().delayed() {
            return Ok(false);
        }
        match self.cfg.policy.check_mail(sender, self.sender_domain_status(sender)) {
            Verdict::Accept => Ok(false),
            Verdict::Discard => {
                self.log_ruleset(Some(qid), "check_mail", path, false, "discard");
                Ok(true)
            }
            Verdict::Refuse(refusal) => {
                let reject = format!("reject={}", refusal.line(Some(path)));
                self.log_ruleset(Some(qid), "check_mail", path, false, &reject);
                Err(self.refuse(&refusal, path))
            }
        }
    }

    /// Log and reply a `check_rcpt` refusal.
    pub(super) fn refuse_rcpt(&self, refusal: &Refusal, path: &str) -> Outcome {
        let reject = format!("reject={}", refusal.line(Some(path)));
        self.log_ruleset(self.qid(), "check_rcpt", path, false, &reject);
        self.refuse(refusal, path)
    }

    /// Log a `check_rcpt` DISCARD and mark the transaction.
    fn discard_rcpt(&mut self, path: &str) {
        self.log_ruleset(self.qid(), "check_rcpt", path, false, "discard");
        if let Some(t) = self.txn.as_mut() {
            t.discard = true;
        }
    }

    /// `user%elsewhere@ourdomain` and its kin (spec §4.2): when the hidden
    /// destination may not be relayed to, `550 5.7.1 ... Relaying denied`.
    pub(super) fn relay_trick(&self, path: &str, addr: &str) -> Option<Outcome> {
        let policy = &self.cfg.policy;
        if policy.real_destination(addr) == addr.trim() {
            return None;
        }
        let verdict = policy.check_rcpt_from(addr, self.client.ip, self.client.name.as_deref());
        (verdict == crate::policy::RcptVerdict::Denied).then(|| self.refuse_rcpt(&relaying_denied(), path))
    }

    /// `FEATURE(blacklist_recipients)`, before the relay decision.
    pub(super) fn rcpt_access(&mut self, path: &str, addr: &str, local: bool) -> Option<Outcome> {
        match self.cfg.policy.check_rcpt_access(addr, local) {
            Verdict::Accept => None,
            Verdict::Refuse(refusal) => Some(self.refuse_rcpt(&refusal, path)),
            Verdict::Discard => {
                self.discard_rcpt(path);
                None
            }
        }
    }

    /// Under `delay_checks`, after the recipient passed: the sender checks,
    /// then the client checks, unless this recipient is exempt (spec §4.5).
    pub(super) fn rcpt_delayed(&mut self, path: &str, addr: &str, local: bool) -> Option<Outcome> {
        let policy = &self.cfg.policy;
        if !policy.delay_checks().delayed() || !policy.delayed_checks_apply(addr, local) {
            return None;
        }
        let sender = self.txn.as_ref().map(|t| t.sender.clone()).unwrap_or_default();
        let mut verdict = policy.check_mail(&sender, self.sender_domain_status(&sender));
        if verdict == Verdict::Accept {
            verdict = policy.check_relay(self.client.name.as_deref(), self.client.ip);
        }
        // check_relay's DNSBL part (spec §4.5: DNSBL moves to RCPT too).
        if verdict == Verdict::Accept {
            if let Some(dnsbl) = &self.checks.dnsbl {
                verdict = Verdict::Refuse(dnsbl.clone());
            }
        }
        match verdict {
            Verdict::Accept => None,
            Verdict::Refuse(refusal) => Some(self.refuse_rcpt(&refusal, path)),
            Verdict::Discard => {
                self.discard_rcpt(path);
                None
            }
        }
    }
}
