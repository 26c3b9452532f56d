//! Identity settings of the profile: what the relay tells the world about
//! itself (spec §2.2–2.3, §9.8).
//!
//! - `smtp_login_msg` (`confSMTP_LOGIN_MSG`, option `SmtpGreetingMessage`):
//!   the greeting template, default `$j Sendmail $v/$Z; $b`. Sendmail writes
//!   `ESMTP` after the first word of the first line (`srvrsmtp.c`), so
//!   `mailer ready` greets as `220 mailer ESMTP ready`.
//! - `privacy_flags` (`confPRIVACY_FLAGS`, option `PrivacyOptions`): which
//!   commands are refused and left out of the EHLO list. The default is
//!   Sendmail's, `authwarnings`; setting the list replaces it (spec D11).

use super::RelayProfile;
use std::fmt;

/// One `PrivacyOptions` word (`conf.c` `PrivacyValues`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivacyFlag {
    /// `public`: no restrictions.
    Public,
    /// `needmailhelo`: MAIL needs HELO first (else MAIL without HELO is
    /// accepted and, under `authwarnings`, the message gets
    /// `X-Authentication-Warning: ... didn't use HELO protocol`).
    NeedMailHelo,
    /// `needexpnhelo`: EXPN needs HELO first.
    NeedExpnHelo,
    /// `needvrfyhelo`: VRFY needs HELO first.
    NeedVrfyHelo,
    /// `noexpn`: refuse EXPN (and VERB, which gives out the same).
    NoExpn,
    /// `novrfy`: refuse VRFY.
    NoVrfy,
    /// `noverb`: refuse VERB.
    NoVerb,
    /// `noetrn`: refuse ETRN.
    NoEtrn,
    /// `noreceipts`: offer no DSN.
    NoReceipts,
    /// `nobodyreturn`: bounces carry headers only.
    NoBodyReturn,
    /// `authwarnings`: add `X-Authentication-Warning:` headers (the default).
    AuthWarnings,
    /// `restrictmailq`: only the queue's group may run mailq.
    RestrictMailq,
    /// `restrictqrun`: only root and the queue owner may run the queue.
    RestrictQrun,
    /// `restrictexpand`: `-bv` and `-v` only for trusted users.
    RestrictExpand,
    /// `goaway`: all of needmailhelo … nobodyreturn at once.
    GoAway,
}

/// Every flag with its word, in `conf.c` order.
const WORDS: &[(&str, PrivacyFlag)] = &[
    ("public", PrivacyFlag::Public),
    ("needmailhelo", PrivacyFlag::NeedMailHelo),
    ("needexpnhelo", PrivacyFlag::NeedExpnHelo),
    ("needvrfyhelo", PrivacyFlag::NeedVrfyHelo),
    ("noexpn", PrivacyFlag::NoExpn),
    ("novrfy", PrivacyFlag::NoVrfy),
    ("restrictmailq", PrivacyFlag::RestrictMailq),
    ("restrictqrun", PrivacyFlag::RestrictQrun),
    ("noetrn", PrivacyFlag::NoEtrn),
    ("noverb", PrivacyFlag::NoVerb),
    ("authwarnings", PrivacyFlag::AuthWarnings),
    ("noreceipts", PrivacyFlag::NoReceipts),
    ("nobodyreturn", PrivacyFlag::NoBodyReturn),
    ("goaway", PrivacyFlag::GoAway),
    ("restrictexpand", PrivacyFlag::RestrictExpand),
];

impl PrivacyFlag {
    /// Parse one word, case-insensitively.
    pub fn parse(word: &str) -> Option<PrivacyFlag> {
        WORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(word.trim())).map(|(_, f)| *f)
    }
}

impl fmt::Display for PrivacyFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = WORDS.iter().find(|(_, x)| x == self).map_or("?", |(w, _)| w);
        f.write_str(w)
    }
}

/// The effective privacy options, `goaway` expanded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Privacy {
    /// EXPN is refused (and VERB with it).
    pub no_expn: bool,
    /// VRFY is refused.
    pub no_vrfy: bool,
    /// VERB is refused.
    pub no_verb: bool,
    /// ETRN is refused.
    pub no_etrn: bool,
    /// DSN is not offered.
    pub no_receipts: bool,
    /// EXPN needs HELO first.
    pub need_expn_helo: bool,
    /// VRFY needs HELO first.
    pub need_vrfy_helo: bool,
    /// `X-Authentication-Warning:` headers are added.
    pub auth_warnings: bool,
    /// MAIL needs HELO/EHLO first (`503 5.0.0 Polite people say HELO first`).
    pub need_mail_helo: bool,
}

impl Privacy {
    /// Fold a list of flags into the options they set.
    pub fn from_flags(flags: &[PrivacyFlag]) -> Privacy {
        let mut p = Privacy::default();
        for f in flags {
            match f {
                PrivacyFlag::NoExpn => p.no_expn = true,
                PrivacyFlag::NoVrfy => p.no_vrfy = true,
                PrivacyFlag::NoVerb => p.no_verb = true,
                PrivacyFlag::NoEtrn => p.no_etrn = true,
                PrivacyFlag::NoReceipts => p.no_receipts = true,
                PrivacyFlag::NeedExpnHelo => p.need_expn_helo = true,
                PrivacyFlag::NeedVrfyHelo => p.need_vrfy_helo = true,
                PrivacyFlag::AuthWarnings => p.auth_warnings = true,
                PrivacyFlag::NeedMailHelo => p.need_mail_helo = true,
                // sendmail.h (8.13): PRIV_GOAWAY is 0x0000ffff, every flag of
                // the SMTP dialogue, needmailhelo and authwarnings included.
                PrivacyFlag::GoAway => {
                    p.need_mail_helo = true;
                    p.auth_warnings = true;
                    p.no_expn = true;
                    p.no_vrfy = true;
                    p.no_verb = true;
                    p.no_etrn = true;
                    p.no_receipts = true;
                    p.need_expn_helo = true;
                    p.need_vrfy_helo = true;
                }
                PrivacyFlag::Public
                | PrivacyFlag::NoBodyReturn
                | PrivacyFlag::RestrictMailq
                | PrivacyFlag::RestrictQrun
                | PrivacyFlag::RestrictExpand => {}
            }
        }
        p
    }
}

/// Why an identity setting was refused. Each message quotes the value first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A `privacy_flags` entry is not a `PrivacyOptions` word.
    #[error(
        "privacy_flags entry {value:?} is not a privacy flag; valid: public, needmailhelo, needexpnhelo, \
         needvrfyhelo, noexpn, novrfy, noverb, noetrn, noreceipts, nobodyreturn, authwarnings, goaway, \
         restrictmailq, restrictqrun, restrictexpand"
    )]
    PrivacyFlag {
        /// What was given.
        value: String,
    },
    /// `smtp_login_msg` cannot be a greeting.
    #[error("smtp_login_msg {value:?}: {why}")]
    LoginMessage {
        /// What was given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
}

/// The greeting template when `smtp_login_msg` is not set (`cf/m4/cfhead.m4`).
pub const DEFAULT_LOGIN_MSG: &str = "$j Sendmail $v/$Z; $b";

/// The macros a greeting may use.
const MACROS: &str = "$j (host name), $w (short host name), $m (domain), $v (version), $Z (cf version), $b (date), $$";

/// What the greeting's macros stand for.
#[derive(Debug, Clone)]
pub struct GreetingMacros<'a> {
    /// `$j`.
    pub hostname: &'a str,
    /// `$v/$Z`, split at the slash.
    pub version: &'a str,
    /// `$b`, the current date.
    pub date: String,
}

/// Expand `$j $w $m $v $Z $b $$` in `template`; an unknown macro is an error.
pub fn expand(template: &str, m: &GreetingMacros<'_>) -> Result<String, String> {
    let (v, z) = m.version.split_once('/').unwrap_or((m.version, m.version));
    let short = m.hostname.split('.').next().unwrap_or(m.hostname);
    let domain = m.hostname.split_once('.').map_or("", |(_, d)| d);
    let mut out = String::new();
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('j') => out.push_str(m.hostname),
            Some('w') => out.push_str(short),
            Some('m') => out.push_str(domain),
            Some('v') => out.push_str(v),
            Some('Z') => out.push_str(z),
            Some('b') => out.push_str(&m.date),
            Some('$') => out.push('$'),
            Some(other) => return Err(format!("unknown macro ${other}; a greeting may use {MACROS}")),
            None => return Err(format!("ends with a lone $; a greeting may use {MACROS}")),
        }
    }
    Ok(out)
}

/// The greeting's lines: `ESMTP` goes after the first word of the first
/// line, always, as `srvrsmtp.c` writes `"%.*s ESMTP%s"`.
pub fn greeting_lines(expanded: &str) -> Vec<String> {
    let mut lines: Vec<String> = expanded.split('\n').map(|l| l.trim_end_matches('\r').to_string()).collect();
    let first = &lines[0];
    let (word, rest) = match first.find(' ') {
        Some(i) => first.split_at(i),
        None => (first.as_str(), ""),
    };
    lines[0] = format!("{word} ESMTP{rest}");
    for l in lines.iter_mut().skip(1) {
        if l.starts_with([' ', '\t']) {
            l.remove(0);
        }
    }
    lines
}

impl RelayProfile {
    /// `privacy_flags`, parsed.
    pub fn privacy_flags(&self) -> Result<Vec<PrivacyFlag>, IdentityError> {
        self.privacy_flags
            .iter()
            .flat_map(|e| e.split(','))
            .filter(|w| !w.trim().is_empty())
            .map(|w| PrivacyFlag::parse(w).ok_or_else(|| IdentityError::PrivacyFlag { value: w.trim().to_string() }))
            .collect()
    }

    /// The effective privacy options (checked at start; unknown words are ignored here).
    pub fn privacy(&self) -> Privacy {
        Privacy::from_flags(&self.privacy_flags().unwrap_or_default())
    }

    /// The greeting template: `smtp_login_msg` or Sendmail's default.
    pub fn login_template(&self) -> &str {
        self.smtp_login_msg.as_deref().unwrap_or(DEFAULT_LOGIN_MSG)
    }

    /// Check `smtp_login_msg` and `privacy_flags`.
    pub(super) fn validate_identity(&self) -> Result<(), IdentityError> {
        self.privacy_flags()?;
        if let Some(msg) = &self.smtp_login_msg {
            let bad = |why: String| IdentityError::LoginMessage { value: msg.clone(), why };
            if msg.trim().is_empty() {
                return Err(bad("is empty; give a greeting such as \"mailer ready\" (ESMTP is inserted)".into()));
            }
            if msg.chars().any(|c| c.is_control() && c != '\n') {
                return Err(bad("holds control characters; only \\n (a multi-line greeting) is allowed".into()));
            }
            let m = GreetingMacros { hostname: &self.hostname, version: &self.version, date: String::new() };
            expand(msg, &m).map_err(bad)?;
        }
        Ok(())
    }
}

/// `privacy_flags` when not set: Sendmail's compiled-in `authwarnings`.
pub fn default_privacy_flags() -> Vec<String> {
    vec!["authwarnings".into()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn macros() -> GreetingMacros<'static> {
        GreetingMacros {
            hostname: "external.sysiphus.com",
            version: "8.13.4/8.13.4",
            date: "Wed, 4 Jan 2006 21:18:05 -0800".into(),
        }
    }

    #[test]
    fn esmtp_goes_after_the_first_word() {
        let g = |t: &str| greeting_lines(&expand(t, &macros()).unwrap());
        assert_eq!(
            g(DEFAULT_LOGIN_MSG),
            ["external.sysiphus.com ESMTP Sendmail 8.13.4/8.13.4; Wed, 4 Jan 2006 21:18:05 -0800"]
        );
        // [C:Ex 3.1.3]: "mailer ready" greets as "mailer ESMTP ready".
        assert_eq!(g("mailer ready"), ["mailer ESMTP ready"]);
        assert_eq!(g("$w"), ["external ESMTP"]);
        // Sendmail inserts it even when the text has it already.
        assert_eq!(g("$j ESMTP ready"), ["external.sysiphus.com ESMTP ESMTP ready"]);
        assert_eq!(g("$j at $m\n no spam here"), ["external.sysiphus.com ESMTP at sysiphus.com", "no spam here"]);
        assert_eq!(g("cost: $$5"), ["cost: ESMTP $5"]);
        assert!(expand("$q", &macros()).unwrap_err().contains("unknown macro $q"));
    }

    #[test]
    fn privacy_flags_from_yaml_as_list_or_mc_string() {
        let p: RelayProfile =
            serde_yaml::from_str("hostname: a.example\nprivacy_flags: noexpn,novrfy,noverb,noetrn,noreceipts\n")
                .unwrap();
        let pr = p.privacy();
        assert!(pr.no_expn && pr.no_vrfy && pr.no_verb && pr.no_etrn && pr.no_receipts && !pr.auth_warnings);
        let p: RelayProfile = serde_yaml::from_str("hostname: a.example\nprivacy_flags: [goaway]\n").unwrap();
        assert!(p.privacy().need_expn_helo);
        let p: RelayProfile = serde_yaml::from_str("hostname: a.example\n").unwrap();
        assert_eq!(p.privacy_flags, ["authwarnings"]);
    }

    #[test]
    fn privacy_words_and_goaway() {
        let mut p = RelayProfile::new("a.example");
        assert_eq!(p.privacy(), Privacy { auth_warnings: true, ..Privacy::default() });
        p.privacy_flags = vec!["noexpn,novrfy".into(), "NoVerb".into(), "noetrn".into(), "noreceipts".into()];
        let pr = p.privacy();
        assert!(pr.no_expn && pr.no_vrfy && pr.no_verb && pr.no_etrn && pr.no_receipts && !pr.auth_warnings);
        p.privacy_flags = vec!["goaway".into()];
        let pr = p.privacy();
        assert!(pr.no_expn && pr.no_vrfy && pr.need_vrfy_helo && pr.need_mail_helo && pr.auth_warnings);
        p.privacy_flags = vec!["needmailhelo".into()];
        assert_eq!(p.privacy(), Privacy { need_mail_helo: true, ..Privacy::default() });
        p.privacy_flags = vec!["noexpm".into()];
        let e = p.validate().unwrap_err().to_string();
        assert!(e.starts_with("privacy_flags entry \"noexpm\" is not a privacy flag; valid: public"), "{e}");
    }

    #[test]
    fn bad_login_messages() {
        let mut p = RelayProfile::new("a.example");
        for (msg, hint) in [("", "is empty"), ("hi $q", "unknown macro $q"), ("a\tb", "control"), ("oops $", "lone $")]
        {
            p.smtp_login_msg = Some(msg.into());
            let e = p.validate().unwrap_err().to_string();
            assert!(e.starts_with(&format!("smtp_login_msg {msg:?}")) && e.contains(hint), "{msg}: {e}");
        }
        p.smtp_login_msg = Some("mailer ready".into());
        p.validate().unwrap();
    }
}
