//! Masquerading and qualification on the way out (spec §3.5).
//!
//! Talks to nothing. What an SMTP mailer does to addresses it sends
//! (`[S proto.m4]` rulesets `EnvFromSMTP`, `EnvToSMTP`, `HdrFromSMTP`,
//! `HdrToSMTP`):
//! - a bare name is qualified with `$j` (`eve` → `eve@internal.sysiphus.com`);
//! - `MASQUERADE_AS` replaces a local domain (`$j`, `local_host_names`) by the
//!   masquerade domain in sender headers, unless the user is an `EXPOSED_USER`;
//! - `FEATURE(allmasquerade)` does the same to recipient headers;
//! - `FEATURE(masquerade_envelope)` to the envelope sender, and with
//!   allmasquerade to envelope recipients too.

use crate::profile::RelayProfile;

/// Whose address it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The envelope sender, or `From:`, `Sender:`, `Reply-To:`, ...
    Sender,
    /// An envelope recipient, or `To:`, `Cc:`, ...
    Recipient,
}

/// The masquerading setup, from the profile.
#[derive(Debug, Clone, Default)]
pub struct Masquerade {
    /// `$j`.
    hostname: String,
    /// Class `$=w`: `$j` and `local_host_names`, lower case.
    local: Vec<String>,
    /// `MASQUERADE_AS`.
    domain: Option<String>,
    /// `FEATURE(masquerade_envelope)`.
    envelope: bool,
    /// `FEATURE(allmasquerade)`.
    all: bool,
    /// `EXPOSED_USER`, lower case.
    exposed: Vec<String>,
}

impl Masquerade {
    /// From the profile's `masquerade_*` keys.
    pub fn from_profile(p: &RelayProfile) -> Masquerade {
        let norm = |s: &str| s.trim().trim_end_matches('.').to_ascii_lowercase();
        let mut local = vec![norm(&p.hostname)];
        local.extend(p.local_host_names.iter().map(|n| norm(n)));
        Masquerade {
            hostname: norm(&p.hostname),
            local,
            domain: p.masquerade_as.as_deref().map(norm),
            envelope: p.masquerade_envelope,
            all: p.allmasquerade,
            exposed: p.exposed_users.iter().map(|u| u.to_ascii_lowercase()).collect(),
        }
    }

    /// `eve` → `eve@$j`; qualified addresses and `<>` (empty) unchanged.
    pub fn qualify(&self, addr: &str) -> String {
        if addr.is_empty() || addr.contains('@') {
            addr.to_string()
        } else {
            format!("{addr}@{}", self.hostname)
        }
    }

    /// The masquerade domain for a bare recipient typed in RCPT under
    /// allmasquerade, else `$j`.
    pub fn qualify_recipient(&self, addr: &str) -> String {
        match (&self.domain, self.all) {
            (Some(d), true) if !addr.is_empty() && !addr.contains('@') => format!("{addr}@{d}"),
            _ => self.qualify(addr),
        }
    }

    fn masq(&self, addr: &str) -> String {
        let q = self.qualify(addr);
        let Some(domain) = &self.domain else { return q };
        match super::split(&q) {
            (user, Some(d)) if self.local.contains(&d) && !self.exposed.contains(&user.to_ascii_lowercase()) => {
                super::join(user, domain)
            }
            _ => q,
        }
    }

    /// An address in a header, as an SMTP mailer writes it.
    pub fn header(&self, addr: &str, role: Role) -> String {
        match role {
            Role::Sender => self.masq(addr),
            Role::Recipient if self.all => self.masq(addr),
            Role::Recipient => self.qualify(addr),
        }
    }

    /// An envelope address, as an SMTP mailer sends it in MAIL/RCPT.
    pub fn envelope(&self, addr: &str, role: Role) -> String {
        match role {
            Role::Sender if self.envelope => self.masq(addr),
            Role::Recipient if self.envelope && self.all => self.masq(addr),
            _ => self.qualify(addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(envelope: bool, all: bool) -> Masquerade {
        let mut p = RelayProfile::new("internal.sysiphus.com");
        p.local_host_names = vec!["int1.sysiphus.com".into()];
        p.masquerade_as = Some("sysiphus.com".into());
        p.masquerade_envelope = envelope;
        p.allmasquerade = all;
        p.exposed_users = vec!["root".into()];
        Masquerade::from_profile(&p)
    }

    #[test]
    fn headers_masquerade_senders_and_with_allmasquerade_recipients() {
        let m = internal(false, false);
        assert_eq!(m.header("eve", Role::Sender), "eve@sysiphus.com");
        assert_eq!(m.header("eve@INT1.sysiphus.com", Role::Sender), "eve@sysiphus.com");
        assert_eq!(m.header("eve@deer-run.com", Role::Sender), "eve@deer-run.com");
        assert_eq!(m.header("root", Role::Sender), "root@internal.sysiphus.com", "EXPOSED_USER");
        assert_eq!(m.header("alice", Role::Recipient), "alice@internal.sysiphus.com");
        assert_eq!(m.envelope("eve", Role::Sender), "eve@internal.sysiphus.com");
        assert_eq!(m.envelope("", Role::Sender), "");
        let m = internal(true, true);
        assert_eq!(m.header("alice", Role::Recipient), "alice@sysiphus.com");
        assert_eq!(m.envelope("eve", Role::Sender), "eve@sysiphus.com");
        assert_eq!(m.envelope("alice@internal.sysiphus.com", Role::Recipient), "alice@sysiphus.com");
        assert_eq!(m.qualify_recipient("alice"), "alice@sysiphus.com");
        // Without masquerading only qualification happens.
        let plain = Masquerade::from_profile(&RelayProfile::new("internal.sysiphus.com"));
        assert_eq!(plain.header("eve", Role::Sender), "eve@internal.sysiphus.com");
        assert_eq!(plain.qualify_recipient("alice"), "alice@internal.sysiphus.com");
    }
}
