//! What the session says about the relay itself: the greeting, the EHLO
//! keywords and the information commands VRFY, EXPN, VERB and ETRN, as
//! `smtp_login_msg` and `privacy_flags` allow (spec §2.2–2.4, §9.8).

use super::{r, Outcome, Session};
use crate::profile::identity::{expand, greeting_lines, GreetingMacros};
use lab_core::Reply;

/// srvrsmtp.c's refusal of EXPN and ETRN.
const NOT_ALLOWED: &str = "5.7.0 Sorry, we do not allow this operation";
/// srvrsmtp.c's refusal of VRFY under `novrfy`.
const CANNOT_VRFY: &str = "2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)";

impl Session {
    /// The greeting: `smtp_login_msg` (default `$j Sendmail $v/$Z; $b`) with
    /// `ESMTP` after its first word (spec §2.2); `554 $j ESMTP not accepting
    /// messages` after pre-greeting traffic (spec §2.5).
    pub(super) fn login_greeting(&self) -> Reply {
        let p = &self.cfg.profile;
        if let Some(refusal) = self.greeting_refusal() {
            return refusal;
        }
        if self.checks.greet_pause_tripped {
            return Reply::new(554, format!("{} ESMTP not accepting messages", p.hostname));
        }
        let macros = GreetingMacros {
            hostname: &p.hostname,
            version: &p.version,
            date: self.cfg.zone.rfc2822(self.cfg.clock.now()),
        };
        // Checked at start; a bad template cannot get here.
        let text = expand(p.login_template(), &macros).unwrap_or_else(|_| p.hostname.clone());
        Reply::multi(220, greeting_lines(&text))
    }

    /// The EHLO keywords after the hello line, in Sendmail 8.13's order;
    /// EXPN, VERB, DSN and ETRN only as `privacy_flags` allow. A null
    /// session offers `ENHANCEDSTATUSCODES` alone.
    pub(super) fn ehlo_keywords(&self) -> Vec<String> {
        if self.checks.null.is_some() {
            return vec!["ENHANCEDSTATUSCODES".into()];
        }
        let privacy = self.cfg.profile.privacy();
        let mut k = vec!["ENHANCEDSTATUSCODES", "PIPELINING"];
        if !privacy.no_expn {
            k.push("EXPN");
            if !privacy.no_verb {
                k.push("VERB");
            }
        }
        k.push("8BITMIME");
        let size = self.size_keyword();
        k.push(&size);
        if !privacy.no_receipts {
            k.push("DSN");
        }
        if !privacy.no_etrn {
            k.push("ETRN");
        }
        k.push("HELP");
        k.into_iter().map(String::from).collect()
    }

    /// `<client>: <command line>` (with ` [rejected]`), logged for VRFY, EXPN and ETRN.
    fn log_command(&self, rejected: bool) {
        let tail = if rejected { " [rejected]" } else { "" };
        self.log(&format!("{}: {}{tail}", self.client.relay(), self.checks.line));
    }

    /// VRFY (`vrfy`) or EXPN: refused under `novrfy`/`noexpn`; else local
    /// names are looked up (no mailbox: `550 5.1.1`) and remote ones cannot
    /// be verified (`252`) or are shown as they are (EXPN).
    pub(super) fn verify(&mut self, vrfy: bool, arg: &str) -> Outcome {
        self.issued_mail = true;
        let privacy = self.cfg.profile.privacy();
        if (vrfy && privacy.no_vrfy) || (!vrfy && privacy.no_expn) {
            self.log_command(true);
            return if vrfy { r(252, CANNOT_VRFY) } else { r(502, NOT_ALLOWED) };
        }
        let need_helo = if vrfy { privacy.need_vrfy_helo } else { privacy.need_expn_helo };
        if need_helo && self.helo.is_none() {
            return r(503, "5.0.0 I demand that you introduce yourself first");
        }
        self.log_command(false);
        let arg = arg.trim();
        if arg.is_empty() {
            return r(501, "5.5.2 Argument required");
        }
        let addr = lab_core::envelope::strip_path(arg).to_string();
        let domain = crate::policy::relay_check::domain_of(&addr);
        let local = domain.as_deref().is_none_or(|d| self.cfg.policy.is_local(d) || self.cfg.router.is_local(d));
        if !local {
            return if vrfy {
                r(252, "2.1.5 Cannot VRFY user; try RCPT to attempt delivery (or try finger)")
            } else {
                r(250, format!("2.1.5 <{addr}>"))
            };
        }
        let qualified = if domain.is_some() { addr } else { format!("{addr}@{}", self.cfg.profile.hostname) };
        match self.cfg.router.refusal(&qualified) {
            Some(refusal) => Outcome::Reply(refusal.reply(arg)),
            None => r(250, format!("2.1.5 <{qualified}>")),
        }
    }

    /// VERB: `250 2.0.0 Verbose mode`, or refused under `noverb`/`noexpn`.
    pub(super) fn verb(&mut self) -> Outcome {
        let privacy = self.cfg.profile.privacy();
        if privacy.no_expn || privacy.no_verb {
            return r(502, "5.7.0 Verbose unavailable");
        }
        r(250, "2.0.0 Verbose mode")
    }

    /// ETRN: refused under `noetrn`; else acknowledged (the builtin relay has
    /// no queue runs yet, so nothing more happens).
    pub(super) fn etrn(&mut self, arg: &str) -> Outcome {
        self.issued_mail = true;
        if self.cfg.profile.privacy().no_etrn {
            self.log_command(true);
            return r(502, NOT_ALLOWED);
        }
        let arg = arg.trim();
        if arg.is_empty() {
            return r(500, "5.5.2 Parameter required");
        }
        self.log(&format!("{}: ETRN {arg}", self.client.relay()));
        r(250, format!("2.0.0 Queuing for node {arg} started"))
    }
}
