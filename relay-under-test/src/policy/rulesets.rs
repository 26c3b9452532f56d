//! The policy rulesets of Sendmail's `proto.m4`: `check_relay` (the client),
//! `check_mail` (the sender) and the access part of `check_rcpt` (spec §4).
//!
//! Talks to nothing: each check is a pure function of what the session
//! knows, returning a [`Verdict`]. The session decides *when* they run
//! (`delay_checks`, spec §4.5) and logs the `ruleset=` lines (spec §6.4).

use crate::policy::access_db::{AccessAction, AccessTag, AccessValue, ErrorReply, SpamChoice};
use crate::policy::relay_check::RelayPolicy;
use crate::profile::DelayChecks;
use std::net::IpAddr;
use std::time::Duration;

/// A refusal: reply code, enhanced status and text. The reply puts the
/// address in between, as Sendmail's `usrerr` does (spec §0.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// SMTP reply code (`550`).
    pub code: u16,
    /// Enhanced status (`5.7.1`).
    pub dsn: String,
    /// Text after the address (`Access denied`).
    pub text: String,
}

impl Refusal {
    fn new(code: u16, dsn: &str, text: impl Into<String>) -> Refusal {
        Refusal { code, dsn: dsn.into(), text: text.into() }
    }

    /// `5.7.1 <addr>... Access denied` (the reply without its code), or
    /// `5.7.1 Access denied` when no address is concerned.
    pub fn text_for(&self, addr: Option<&str>) -> String {
        match addr {
            Some(a) => format!("{} {a}... {}", self.dsn, self.text),
            None => format!("{} {}", self.dsn, self.text),
        }
    }

    /// The whole reply line, `550 5.7.1 <addr>... Access denied`.
    pub fn line(&self, addr: Option<&str>) -> String {
        format!("{} {}", self.code, self.text_for(addr))
    }
}

impl From<&ErrorReply> for Refusal {
    fn from(e: &ErrorReply) -> Refusal {
        Refusal::new(e.code, &e.dsn, e.text.clone())
    }
}

/// What a check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Accept,
    /// Refuse the command with this reply.
    Refuse(Refusal),
    /// Accept, and silently drop the message (`$#discard`).
    Discard,
}

/// Whether the sender's domain resolves (Sendmail's `resolve` map, spec §3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderDomain {
    /// An MX or an A record exists.
    Resolves,
    /// Neither exists (NXDOMAIN, or the name has no such records).
    DoesNotExist,
    /// The lookup failed for now (SERVFAIL, timeout).
    TempFail,
    /// Not looked up (no domain, the check is off, or a test without DNS).
    NotChecked,
}

/// `REJECT`, `DISCARD` and `ERROR:` as a verdict; `OK`, `RELAY`, `SKIP` accept.
fn verdict_of(action: &AccessAction, reject: &Refusal) -> Verdict {
    match action {
        AccessAction::Reject => Verdict::Refuse(reject.clone()),
        AccessAction::Discard => Verdict::Discard,
        AccessAction::Error(e) => Verdict::Refuse(e.into()),
        AccessAction::Ok | AccessAction::Relay | AccessAction::Skip => Verdict::Accept,
    }
}

fn access_denied() -> Refusal {
    Refusal::new(550, "5.7.1", "Access denied")
}

impl RelayPolicy {
    /// `FEATURE(delay_checks)` as configured.
    pub fn delay_checks(&self) -> DelayChecks {
        self.delay_checks
    }

    /// `check_relay`: `Connect:` entries for the client, by PTR name (and
    /// parent domains), then by address (`Basic_check_relay`).
    pub fn check_relay(&self, name: Option<&str>, ip: IpAddr) -> Verdict {
        match self.access.client(AccessTag::Connect, name, ip, true) {
            Some(AccessValue::Action(a)) => verdict_of(a, &access_denied()),
            _ => Verdict::Accept,
        }
    }

    /// The sender domain the `check_mail` DNS test needs, if it needs one:
    /// qualified senders other than `<>` and `@$j`, unless
    /// `accept_unresolvable_domains`.
    pub fn sender_domain_to_resolve(&self, sender: &str) -> Option<String> {
        if self.accept_unresolvable_domains {
            return None;
        }
        let d = crate::policy::relay_check::domain_of(sender)?;
        (d != self.hostname && !d.starts_with('[')).then_some(d)
    }

    /// `check_mail` (`Basic_check_mail`): the null sender passes; a `From:`
    /// entry decides if there is one; else an unqualified sender is refused
    /// (unless `accept_unqualified_senders`) and so is a domain that does
    /// not resolve (unless `accept_unresolvable_domains`).
    pub fn check_mail(&self, sender: &str, domain: SenderDomain) -> Verdict {
        if sender.is_empty() {
            return Verdict::Accept;
        }
        if let Some(a) = self.access.sender(sender) {
            return verdict_of(a, &access_denied());
        }
        if crate::policy::relay_check::domain_of(sender).is_none() {
            if self.accept_unqualified_senders {
                return Verdict::Accept;
            }
            let text = format!("Domain name required for sender address {sender}");
            return Verdict::Refuse(Refusal::new(553, "5.5.4", text));
        }
        if self.accept_unresolvable_domains {
            return Verdict::Accept;
        }
        match domain {
            SenderDomain::DoesNotExist => {
                Verdict::Refuse(Refusal::new(553, "5.1.8", format!("Domain of sender address {sender} does not exist")))
            }
            SenderDomain::TempFail => Verdict::Refuse(Refusal::new(
                451,
                "4.1.8",
                format!("Domain of sender address {sender} does not resolve"),
            )),
            SenderDomain::Resolves | SenderDomain::NotChecked => Verdict::Accept,
        }
    }

    /// `FEATURE(blacklist_recipients)`: `To:` entries may refuse a recipient
    /// (`550 5.2.1 ... Mailbox disabled for this recipient`). `local` says
    /// whether the recipient is this host's (then `user@` keys count too).
    pub fn check_rcpt_access(&self, rcpt: &str, local: bool) -> Verdict {
        if !self.blacklist_recipients {
            return Verdict::Accept;
        }
        match self.access.recipient(rcpt, local) {
            Some(a) => verdict_of(a, &Refusal::new(550, "5.2.1", "Mailbox disabled for this recipient")),
            None => Verdict::Accept,
        }
    }

    /// Under `delay_checks`, whether this recipient gets the client and
    /// sender checks: `friend` spares `Spam:... FRIEND` recipients, `hater`
    /// checks only `Spam:... HATER` ones.
    pub fn delayed_checks_apply(&self, rcpt: &str, local: bool) -> bool {
        let choice = self.access.spam(rcpt, local);
        match self.delay_checks {
            DelayChecks::Off => false,
            DelayChecks::On => true,
            DelayChecks::Friend => choice != Some(SpamChoice::Friend),
            DelayChecks::Hater => choice == Some(SpamChoice::Hater),
        }
    }

    /// `FEATURE(greet_pause)` for this client: a `GreetPause:` entry, else the
    /// profile's pause; at most 300 s (RFC 2821's greeting timeout).
    pub fn greet_pause(&self, name: Option<&str>, ip: IpAddr) -> Duration {
        let ms = self.access.greet_pause(name, ip).unwrap_or(self.greet_pause);
        Duration::from_millis(ms.min(300_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::RelayProfile;
    use pretty_assertions::assert_eq;

    fn policy(f: impl FnOnce(&mut RelayProfile)) -> RelayPolicy {
        let mut p = RelayProfile::new("external.sysiphus.com");
        p.relay_domains = vec!["sysiphus.com".into()];
        f(&mut p);
        RelayPolicy::from_profile(&p).unwrap()
    }

    fn refused(v: Verdict, addr: &str) -> String {
        match v {
            Verdict::Refuse(r) => r.line(Some(addr)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn check_mail_order() {
        let p = policy(|p| {
            p.access = vec![
                "From:foo.biz REJECT".into(),
                "From:friend@foo.biz OK".into(),
                "From:eve@ RELAY".into(),
                "From:junk.example DISCARD".into(),
                "From:ghost.example OK".into(),
            ]
        });
        use SenderDomain::*;
        assert_eq!(p.check_mail("", DoesNotExist), Verdict::Accept);
        assert_eq!(
            refused(p.check_mail("spam@foo.biz", Resolves), "spam@foo.biz"),
            "550 5.7.1 spam@foo.biz... Access denied"
        );
        assert_eq!(p.check_mail("friend@foo.biz", Resolves), Verdict::Accept);
        assert_eq!(p.check_mail("x@junk.example", Resolves), Verdict::Discard);
        // An access entry decides before the DNS and unqualified tests.
        assert_eq!(p.check_mail("x@ghost.example", DoesNotExist), Verdict::Accept);
        assert_eq!(p.check_mail("eve", NotChecked), Verdict::Accept);
        assert_eq!(
            refused(p.check_mail("adam", NotChecked), "<adam>"),
            "553 5.5.4 <adam>... Domain name required for sender address adam"
        );
        assert_eq!(
            refused(p.check_mail("a@nowhere.example", DoesNotExist), "<a@nowhere.example>"),
            "553 5.1.8 <a@nowhere.example>... Domain of sender address a@nowhere.example does not exist"
        );
        assert_eq!(
            refused(p.check_mail("bounce@lamers.org", TempFail), "bounce@lamers.org"),
            "451 4.1.8 bounce@lamers.org... Domain of sender address bounce@lamers.org does not resolve"
        );
        let lax = policy(|p| {
            p.accept_unresolvable_domains = true;
            p.accept_unqualified_senders = true;
        });
        assert_eq!(lax.check_mail("a@nowhere.example", DoesNotExist), Verdict::Accept);
        assert_eq!(lax.check_mail("adam", NotChecked), Verdict::Accept);
        assert_eq!(lax.sender_domain_to_resolve("a@nowhere.example"), None);
        assert_eq!(p.sender_domain_to_resolve("a@Nowhere.Example."), Some("nowhere.example".into()));
        assert_eq!(p.sender_domain_to_resolve("root@external.sysiphus.com"), None);
        assert_eq!(p.sender_domain_to_resolve("adam"), None);
    }

    #[test]
    fn check_relay_by_name_then_address() {
        let p = policy(|p| {
            p.access = vec![
                "Connect:202.9.145.21 REJECT".into(),
                "Connect:spammer.example ERROR:5.7.1:550 Go away".into(),
                "Connect:good.spammer.example OK".into(),
                "Connect:63.99.230 DISCARD".into(),
            ]
        });
        let ip = |s: &str| s.parse().unwrap();
        assert_eq!(
            p.check_relay(None, ip("202.9.145.21")),
            Verdict::Refuse(Refusal::new(550, "5.7.1", "Access denied"))
        );
        assert_eq!(
            p.check_relay(Some("dialup.spammer.example"), ip("1.2.3.4")),
            Verdict::Refuse(Refusal::new(550, "5.7.1", "Go away"))
        );
        // The name is looked up first, and OK there ends the search.
        assert_eq!(p.check_relay(Some("good.spammer.example"), ip("202.9.145.21")), Verdict::Accept);
        assert_eq!(p.check_relay(Some("x.example"), ip("63.99.230.1")), Verdict::Discard);
        assert_eq!(Refusal::new(550, "5.7.1", "Access denied").line(None), "550 5.7.1 Access denied");
    }

    #[test]
    fn blacklist_recipients_and_spam_choices() {
        let p = policy(|p| {
            p.blacklist_recipients = true;
            p.access = vec![
                "To:old@sysiphus.com REJECT".into(),
                "To:bin@ DISCARD".into(),
                "To:gone.sysiphus.com ERROR:5.1.1:550 Moved away".into(),
                "Spam:abuse@sysiphus.com FRIEND".into(),
                "Spam:hal@sysiphus.com HATER".into(),
            ];
            p.delay_checks = DelayChecks::Friend;
        });
        assert_eq!(
            refused(p.check_rcpt_access("old@sysiphus.com", false), "<old@sysiphus.com>"),
            "550 5.2.1 <old@sysiphus.com>... Mailbox disabled for this recipient"
        );
        assert_eq!(
            refused(p.check_rcpt_access("x@gone.sysiphus.com", false), "x@gone.sysiphus.com"),
            "550 5.1.1 x@gone.sysiphus.com... Moved away"
        );
        // user@ keys are for local recipients only.
        assert_eq!(p.check_rcpt_access("bin@sysiphus.com", false), Verdict::Accept);
        assert_eq!(p.check_rcpt_access("bin@external.sysiphus.com", true), Verdict::Discard);
        assert!(!p.delayed_checks_apply("abuse@sysiphus.com", false));
        assert!(p.delayed_checks_apply("hal@sysiphus.com", false));
        assert!(p.delayed_checks_apply("john@sysiphus.com", false));
        let mut h = p.clone();
        h.delay_checks = DelayChecks::Hater;
        assert!(h.delayed_checks_apply("hal@sysiphus.com", false));
        assert!(!h.delayed_checks_apply("john@sysiphus.com", false));
        let mut off = p.clone();
        off.blacklist_recipients = false;
        assert_eq!(off.check_rcpt_access("old@sysiphus.com", false), Verdict::Accept);
    }

    #[test]
    fn greet_pause_default_override_and_cap() {
        let p = policy(|p| {
            p.greet_pause = 1500;
            p.access = vec!["GreetPause:192.168 0".into(), "GreetPause:slow.example 900000".into()];
        });
        let ip = |s: &str| s.parse().unwrap();
        assert_eq!(p.greet_pause(None, ip("203.0.113.1")), Duration::from_millis(1500));
        assert_eq!(p.greet_pause(None, ip("192.168.1.1")), Duration::ZERO);
        assert_eq!(p.greet_pause(Some("mx.slow.example"), ip("203.0.113.1")), Duration::from_secs(300));
    }
}
