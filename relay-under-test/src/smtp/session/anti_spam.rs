//! The anti-spam checks in the dialogue (spec §4.7, §8.3, §9.3, §9.5):
//! the DNSBL verdict (at connect, or at RCPT under `delay_checks`), the
//! greylist at RCPT, `MaxRecipientsPerMessage`, `MaxMessageSize` at MAIL
//! and end of DATA, and header checks at end of DATA.

use super::checks::NullServer;
use super::{r, Outcome, Session, MAX_MESSAGE_SIZE};
use crate::policy::anti_spam::{hms, GreyVerdict, GreylistDb, HeaderHit, HeaderRules, GREYLIST_REPLY};
use crate::policy::Refusal;
use crate::profile::RelayProfile;
use lab_core::Reply;

/// Anti-spam state shared by every session of one relay.
#[derive(Debug, Default)]
pub struct AntiSpam {
    /// The greylist's triplets, when greylisting is on.
    pub greylist: Option<GreylistDb>,
    /// `header_checks`, compiled.
    pub headers: HeaderRules,
}

impl AntiSpam {
    /// From a validated profile.
    pub fn from_profile(p: &RelayProfile) -> AntiSpam {
        AntiSpam { greylist: p.greylist.as_ref().map(GreylistDb::new), headers: HeaderRules::new(&p.header_checks) }
    }
}

impl Session {
    /// True when the server should look the client up in the `dnsbl` zones:
    /// zones are configured and `check_relay` has not refused already.
    pub fn dnsbl_wanted(&self) -> bool {
        !self.cfg.profile.dnsbl.is_empty() && self.checks.null.is_none()
    }

    /// What the DNSBL lookups decided (`None`: not listed). Without
    /// `delay_checks` the session becomes a null server now (spec D3);
    /// with it, each RCPT that gets the delayed checks is refused (D4).
    pub fn dnsbl_result(&mut self, refusal: Option<Refusal>) {
        let Some(refusal) = refusal else { return };
        if self.cfg.policy.delay_checks().delayed() {
            self.checks.dnsbl = Some(refusal);
            return;
        }
        let arg1 = self.client.name.clone().unwrap_or_else(|| format!("[{}]", self.client.ip));
        let line = refusal.line(None);
        self.log_ruleset(None, "check_relay", &arg1, true, &format!("reject={line}"));
        self.checks.null = Some(NullServer::Refused(line));
    }

    /// The largest message taken: `max_message_size`, else the memory bound.
    pub fn max_message_size(&self) -> usize {
        match self.cfg.profile.max_message_size {
            0 => MAX_MESSAGE_SIZE,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        }
    }

    /// `SIZE` or `SIZE <max>` for EHLO.
    pub(super) fn size_keyword(&self) -> String {
        match self.cfg.profile.max_message_size {
            0 => "SIZE".into(),
            n => format!("SIZE {n}"),
        }
    }

    pub(super) fn oversize_reply(&self) -> Reply {
        Reply::new(552, format!("5.2.3 Message size exceeds fixed maximum message size ({})", self.max_message_size()))
    }

    /// `MAIL ... SIZE=<n>` above `max_message_size` (`srvrsmtp.c`).
    pub(super) fn mail_size_check(&self, params: &[String]) -> Option<Outcome> {
        if self.cfg.profile.max_message_size == 0 {
            return None;
        }
        let size = params.iter().find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.eq_ignore_ascii_case("SIZE").then(|| v.parse::<u64>().ok()).flatten()
        })?;
        (size > self.cfg.profile.max_message_size).then(|| Outcome::Reply(self.oversize_reply()))
    }

    /// `MaxRecipientsPerMessage`: `452 4.5.3 Too many recipients` once the
    /// transaction holds that many.
    pub(super) fn too_many_rcpts(&self) -> Option<Outcome> {
        let max = self.cfg.profile.max_rcpts_per_message as usize;
        let n = self.txn.as_ref().map_or(0, |t| t.rcpts.len());
        (max > 0 && n >= max).then(|| r(452, "4.5.3 Too many recipients"))
    }

    /// The greylist, for a recipient every other check accepted (a milter's
    /// RCPT callback). Logged as Sendmail logs a milter's refusal, and
    /// milter-greylist's "delayed for" line when a retry passes.
    pub(super) fn greylist_rcpt(&self, path: &str, addr: &str) -> Option<Outcome> {
        let db = self.cfg.anti_spam.greylist.as_ref()?;
        let sender = self.txn.as_ref().map(|t| t.sender.clone()).unwrap_or_default();
        let now = self.cfg.clock.now();
        match db.check(self.client.ip, &sender, addr, now) {
            GreyVerdict::Pass => None,
            GreyVerdict::PassedAfter(waited) => {
                self.log(&format!("addr {} from <{sender}> to <{addr}> delayed for {}", self.client.ip, hms(waited)));
                None
            }
            GreyVerdict::Defer => {
                self.log(&format!("Milter: to={path}, reject=451 {GREYLIST_REPLY}"));
                Some(r(451, GREYLIST_REPLY))
            }
        }
    }

    /// `header_checks` at end of DATA: the first matching rule's refusal.
    pub(super) fn header_check(&self, raw: &[u8]) -> Option<HeaderHit> {
        self.cfg.anti_spam.headers.check(raw)
    }
}
