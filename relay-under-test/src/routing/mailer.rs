//! Mailers, next hops and `error:` entries: the right-hand sides shared by
//! `mailertable`, `SMART_HOST`, `MAIL_HUB`, `LUSER_RELAY` and `virtusertable`
//! (spec §3.3, §3.4, §3.8).
//!
//! Talks to nothing: parsing and formatting only.

use crate::profile::check_domain;
use lab_core::Reply;
use std::fmt;
use std::net::IpAddr;

/// A delivery agent, by the name `mailer=` shows in the log (spec §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mailer {
    /// `smtp`: plain SMTP (`mailertable` `smtp:`).
    Smtp,
    /// `esmtp`: the default for MX-routed mail.
    Esmtp,
    /// `smtp8`: SMTP that sends 8-bit data as is.
    Smtp8,
    /// `dsmtp`: on-demand SMTP.
    Dsmtp,
    /// `relay`: SMTP to a relay host; the default for `SMART_HOST`, `MAIL_HUB`, `LUSER_RELAY`.
    Relay,
    /// `local`: the local mailbox.
    Local,
    /// `*file*`: an alias target that is a file.
    File,
    /// `prog`: an alias target that is a program.
    Prog,
}

/// The mailer names a table entry may use before `:`.
pub const MAILER_NAMES: &str = "smtp, esmtp, smtp8, dsmtp, relay, local, error";

impl Mailer {
    /// A mailer that speaks SMTP to a host, by name.
    pub fn parse_smtp(name: &str) -> Option<Mailer> {
        match name.to_ascii_lowercase().as_str() {
            "smtp" => Some(Mailer::Smtp),
            "esmtp" => Some(Mailer::Esmtp),
            "smtp8" => Some(Mailer::Smtp8),
            "dsmtp" => Some(Mailer::Dsmtp),
            "relay" => Some(Mailer::Relay),
            _ => None,
        }
    }

    /// The name in `mailer=`.
    pub fn name(self) -> &'static str {
        match self {
            Mailer::Smtp => "smtp",
            Mailer::Esmtp => "esmtp",
            Mailer::Smtp8 => "smtp8",
            Mailer::Dsmtp => "dsmtp",
            Mailer::Relay => "relay",
            Mailer::Local => "local",
            Mailer::File => "*file*",
            Mailer::Prog => "prog",
        }
    }

    /// True for the mailers that talk SMTP to a next hop.
    pub fn is_smtp(self) -> bool {
        !matches!(self, Mailer::Local | Mailer::File | Mailer::Prog)
    }
}

/// Where an SMTP mailer connects (`[S cf/README]`, `[S domain.c getmxrr]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostSpec {
    /// `host`: MX records of the host are used, then its A record.
    Mx(String),
    /// `[host]`: the host's A record only, MX is skipped.
    Bracketed(String),
    /// `[192.0.2.1]`: that address.
    Literal(IpAddr),
}

impl HostSpec {
    /// Parse `host`, `[host]` or `[a.b.c.d]`.
    pub fn parse(text: &str) -> Result<HostSpec, String> {
        let t = text.trim();
        if let Some(inner) = t.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(|| "a '[' without its ']'".to_string())?;
            if let Ok(ip) = inner.parse::<IpAddr>() {
                return Ok(HostSpec::Literal(ip));
            }
            let h = inner.trim_end_matches('.');
            check_domain(h)?;
            return Ok(HostSpec::Bracketed(h.to_ascii_lowercase()));
        }
        let h = t.trim_end_matches('.');
        check_domain(h)?;
        Ok(HostSpec::Mx(h.to_ascii_lowercase()))
    }

    /// The host's name (or address literal) without brackets: what a
    /// rewritten recipient gets after `@` (`MAIL_HUB`, `LUSER_RELAY`).
    pub fn name(&self) -> String {
        match self {
            HostSpec::Mx(h) | HostSpec::Bracketed(h) => h.clone(),
            HostSpec::Literal(ip) => format!("[{ip}]"),
        }
    }
}

impl fmt::Display for HostSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostSpec::Mx(h) => f.write_str(h),
            HostSpec::Bracketed(h) => write!(f, "[{h}]"),
            HostSpec::Literal(ip) => write!(f, "[{ip}]"),
        }
    }
}

/// `[mailer:]host` as `SMART_HOST`, `MAIL_HUB` and `LUSER_RELAY` take it;
/// the mailer defaults to `relay` (spec §3.4).
pub fn parse_relay_target(text: &str) -> Result<(Mailer, HostSpec), String> {
    let t = text.trim();
    let (mailer, host) = match t.split_once(':') {
        // `[::1]`-style text has no mailer; `$~[` in the course's rules.
        Some((m, h)) if !m.starts_with('[') => {
            let mailer = Mailer::parse_smtp(m)
                .ok_or_else(|| format!("unknown mailer {m:?}; use one of smtp, esmtp, smtp8, dsmtp, relay"))?;
            (mailer, h)
        }
        _ => (Mailer::Relay, t),
    };
    let host = HostSpec::parse(host).map_err(|why| format!("host {host:?}: {why}"))?;
    Ok((mailer, host))
}

/// An `error:` right-hand side: the reply a recipient gets at RCPT
/// (`[S cf/README]`, spec §3.3, §3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// SMTP code, 4xx or 5xx.
    pub code: u16,
    /// Enhanced status code.
    pub dsn: String,
    /// The text after `<addr>... `.
    pub text: String,
}

/// Status names an `error:` entry may use instead of a D.S.N code
/// (Sendmail's exit status names), with their enhanced code.
const STATUS_NAMES: &[(&str, &str)] =
    &[("nouser", "5.1.1"), ("nohost", "5.1.2"), ("unavailable", "5.0.0"), ("tempfail", "4.0.0")];

fn is_dsn(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        && matches!(parts[0], "4" | "5")
}

impl ErrorReply {
    /// Parse what follows `error:`: `D.S.N:CODE text`, `name CODE text`
    /// (`nouser 550 No such user here`), `name:CODE text` or `CODE text`.
    pub fn parse(spec: &str) -> Result<ErrorReply, String> {
        let s = spec.trim();
        let (status, rest) = match s.split_once(|c: char| c == ':' || c.is_whitespace()) {
            Some((first, rest)) if is_dsn(first) => (Some(first.to_string()), rest),
            Some((first, rest)) if first.bytes().all(|b| b.is_ascii_alphabetic()) && !first.is_empty() => {
                let dsn = STATUS_NAMES
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(first))
                    .map(|(_, d)| d.to_string())
                    .ok_or_else(|| {
                        format!(
                            "unknown status {first:?}; give a D.S.N code (error:5.1.1:550 text) or one of nouser, nohost, unavailable, tempfail"
                        )
                    })?;
                (Some(dsn), rest)
            }
            _ => (None, s),
        };
        let rest = rest.trim();
        let (code, text) = match rest.split_once(char::is_whitespace) {
            Some((c, t)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()) => (Some(c), t.trim()),
            _ if rest.len() == 3 && rest.bytes().all(|b| b.is_ascii_digit()) => (Some(rest), ""),
            _ => (None, rest),
        };
        let code: u16 = match (code, &status) {
            (Some(c), _) => c.parse().expect("three digits"),
            (None, Some(d)) if d.starts_with('4') => 451,
            (None, _) => 550,
        };
        if !(400..600).contains(&code) {
            return Err(format!("reply code {code} is not a 4xx or 5xx refusal"));
        }
        let dsn = status.unwrap_or_else(|| format!("{}.0.0", code / 100));
        if !dsn.starts_with(&(code / 100).to_string()) {
            return Err(format!("status {dsn} and reply code {code} disagree (both 4 or both 5)"));
        }
        if text.is_empty() {
            return Err("no text after the code; write e.g. error:5.1.1:550 User unknown".into());
        }
        Ok(ErrorReply { code, dsn, text: text.to_string() })
    }

    /// The RCPT reply: `550 5.1.1 <addr>... text`, `path` as the client typed it.
    pub fn reply(&self, path: &str) -> Reply {
        Reply::new(self.code, format!("{} {path}... {}", self.dsn, self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_entries_in_every_spelling() {
        let e = ErrorReply::parse("5.1.1:550 moved").unwrap();
        assert_eq!(e.reply("<u@old.com>").first_line(), "550 5.1.1 <u@old.com>... moved");
        let e = ErrorReply::parse("nouser 550 No such user here").unwrap();
        assert_eq!(e.reply("joe@bar.com").first_line(), "550 5.1.1 joe@bar.com... No such user here");
        let e = ErrorReply::parse("5.7.0:550 Address invalid").unwrap();
        assert_eq!((e.code, e.dsn.as_str()), (550, "5.7.0"));
        let e = ErrorReply::parse("550 Go away").unwrap();
        assert_eq!((e.code, e.dsn.as_str(), e.text.as_str()), (550, "5.0.0", "Go away"));
        let e = ErrorReply::parse("tempfail:451 Try later").unwrap();
        assert_eq!((e.code, e.dsn.as_str()), (451, "4.0.0"));
        let e = ErrorReply::parse("nouser User unknown").unwrap();
        assert_eq!((e.code, e.dsn.as_str()), (550, "5.1.1"));
        for (bad, hint) in [
            ("4.1.1:550 x", "disagree"),
            ("bogus 550 x", "unknown status"),
            ("5.1.1:550", "no text"),
            ("250 fine", "not a 4xx"),
        ] {
            let e = ErrorReply::parse(bad).unwrap_err();
            assert!(e.contains(hint), "{bad}: {e}");
        }
    }

    #[test]
    fn hosts_and_relay_targets() {
        assert_eq!(HostSpec::parse("Exch01.sysiphus.com.").unwrap(), HostSpec::Mx("exch01.sysiphus.com".into()));
        assert_eq!(HostSpec::parse("[gw.sysiphus.com]").unwrap(), HostSpec::Bracketed("gw.sysiphus.com".into()));
        assert_eq!(HostSpec::parse("[127.0.0.1]").unwrap().to_string(), "[127.0.0.1]");
        assert!(HostSpec::parse("[gw").is_err());
        assert_eq!(
            parse_relay_target("internal.sysiphus.com").unwrap(),
            (Mailer::Relay, HostSpec::Mx("internal.sysiphus.com".into()))
        );
        assert_eq!(
            parse_relay_target("smtp:[10.1.1.10]").unwrap(),
            (Mailer::Smtp, HostSpec::Literal("10.1.1.10".parse().unwrap()))
        );
        assert!(parse_relay_target("uucp:x.com").unwrap_err().contains("unknown mailer"));
        assert_eq!(Mailer::File.name(), "*file*");
    }
}
