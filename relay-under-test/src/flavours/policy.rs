//! The profile's policy tables (access map, mailertable, virtusertable,
//! aliases) read into a neutral form that the Postfix, Exim and OpenSMTPD
//! renderings translate into their own maps, and the list of what a flavour
//! renders ([`unrendered_key`]).
//!
//! The profile has been validated before a flavour renders it
//! ([`RelayProfile::validate`]), so these readers skip what they cannot read
//! instead of reporting it.

use super::{Exim, Flavour, OpenSmtpd, Postfix, Sendmail};
use crate::routing::mailer::ErrorReply;
use crate::RelayProfile;

/// Keys every flavour carries, or that are cosmetic for a real MTA (the real
/// binary has its own version, clock, daemon name and log tag).
pub const COMMON_KEYS: &[&str] = &[
    "hostname",
    "local_host_names",
    "relay_domains",
    "relay_hosts_only",
    "max_hop_count",
    "smtp_timeout",
    "version",
    "timezone",
    "daemon_name",
    "log_tag",
];

/// Why `flavour` cannot render `key` of `profile` as it is set (the key is
/// assumed to differ from its default): `None` when it renders it, else the
/// key, with the reason in parentheses when the flavour renders the key but not
/// this value (`access (Spam: entries need delay_checks)`). `builtin` renders
/// everything; an unknown flavour nothing.
pub fn unrendered_key(flavour: &str, profile: &RelayProfile, key: &str) -> Option<String> {
    fn check<F: Flavour>(f: F, profile: &RelayProfile, key: &str) -> Option<String> {
        if COMMON_KEYS.contains(&key) {
            return None;
        }
        if !F::RENDERED_KEYS.contains(&key) {
            return Some(key.to_string());
        }
        f.value_gaps(profile).into_iter().find(|(k, _)| *k == key).map(|(k, why)| format!("{k} ({why})"))
    }
    match flavour {
        "builtin" => None,
        "postfix" => check(Postfix, profile, key),
        "sendmail" => check(Sendmail, profile, key),
        "exim" => check(Exim, profile, key),
        "opensmtpd" => check(OpenSmtpd, profile, key),
        _ => Some(key.to_string()),
    }
}

/// The lines of a table: trimmed, without blank lines and `#` comments.
pub(crate) fn lines(table: &[String]) -> impl Iterator<Item = &str> {
    table.iter().map(|l| l.trim()).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// An access map tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    Connect,
    From,
    To,
    Spam,
    GreetPause,
}

/// What an access key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    /// An octet-aligned IPv4 prefix (`63.99.230`).
    Ip(Vec<u8>),
    /// A host or domain, with its subdomains.
    Domain(String),
    /// `user@domain`.
    Address(String),
    /// `user@` (the local part, any of our domains).
    User(String),
}

impl Key {
    /// The key as Sendmail and Postfix access maps write it.
    pub(crate) fn text(&self) -> String {
        match self {
            Key::Ip(o) => o.iter().map(u8::to_string).collect::<Vec<_>>().join("."),
            Key::Domain(d) | Key::Address(d) => d.clone(),
            Key::User(u) => format!("{u}@"),
        }
    }
}

/// An access map action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Act {
    Ok,
    Relay,
    Reject,
    Discard,
    /// `code dsn text`.
    Error(u16, String, String),
    Skip,
    /// `Spam:` `FRIEND`.
    Friend,
    /// `Spam:` `HATER`.
    Hater,
    /// `GreetPause:` values (and anything unreadable).
    Other,
}

/// One access line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessEntry {
    pub tag: Option<Tag>,
    pub key: Key,
    pub act: Act,
}

fn parse_key(k: &str) -> Key {
    let k = k.trim().trim_start_matches('<').trim_end_matches('>').trim_end_matches('.').to_ascii_lowercase();
    if let Some((user, domain)) = k.rsplit_once('@') {
        return if domain.is_empty() { Key::User(user.to_string()) } else { Key::Address(k.clone()) };
    }
    if !k.is_empty() && k.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
        if let Ok(o) = k.split('.').map(str::parse::<u8>).collect::<Result<Vec<u8>, _>>() {
            return Key::Ip(o);
        }
    }
    Key::Domain(k)
}

fn is_dsn(s: &str) -> bool {
    let p: Vec<&str> = s.split('.').collect();
    p.len() == 3 && p.iter().all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
}

/// `ERROR:` text as the builtin relay reads it: `D.S.N:code text`,
/// `code [D.S.N] text`, or a bare text (`553 5.3.0`).
fn parse_access_error(rest: &str) -> Act {
    let mut t = rest.trim().trim_matches('"').trim();
    let mut dsn = None;
    if let Some((first, after)) = t.split_once(':') {
        if is_dsn(first) {
            dsn = Some(first.to_string());
            t = after.trim();
        }
    }
    let code = t.get(..3).filter(|c| c.bytes().all(|b| b.is_ascii_digit()) && t.len() > 3).and_then(|c| c.parse().ok());
    let Some(code) = code else {
        return Act::Error(553, "5.3.0".into(), t.to_string());
    };
    let mut text = t[3..].trim_start();
    if let Some((first, after)) = text.split_once(' ') {
        if dsn.is_none() && is_dsn(first) {
            dsn = Some(first.to_string());
            text = after.trim_start();
        }
    }
    let dsn = dsn.unwrap_or_else(|| format!("{}.0.0", code / 100));
    Act::Error(code, dsn, text.to_string())
}

/// The access map's lines.
pub(crate) fn access(profile: &RelayProfile) -> Vec<AccessEntry> {
    let mut out = Vec::new();
    for line in lines(&profile.access) {
        let Some((lhs, value)) = line.split_once(char::is_whitespace) else { continue };
        let value = value.trim();
        let (tag, key) = match lhs.split_once(':') {
            Some((t, k)) => {
                let tag = match t.to_ascii_lowercase().as_str() {
                    "connect" => Tag::Connect,
                    "from" => Tag::From,
                    "to" => Tag::To,
                    "spam" => Tag::Spam,
                    _ => Tag::GreetPause,
                };
                (Some(tag), k)
            }
            None => (None, lhs),
        };
        let act = if tag == Some(Tag::Spam) {
            match value.to_ascii_uppercase().as_str() {
                "FRIEND" => Act::Friend,
                "HATER" => Act::Hater,
                _ => Act::Other,
            }
        } else if tag == Some(Tag::GreetPause) {
            Act::Other
        } else if value.len() >= 6 && value[..6].eq_ignore_ascii_case("ERROR:") {
            parse_access_error(&value[6..])
        } else {
            match value.to_ascii_uppercase().as_str() {
                "OK" => Act::Ok,
                "RELAY" => Act::Relay,
                "REJECT" => Act::Reject,
                "DISCARD" => Act::Discard,
                "SKIP" => Act::Skip,
                _ => Act::Other,
            }
        };
        out.push(AccessEntry { tag, key: parse_key(key), act });
    }
    out
}

/// The entries one check consults: those with `tag` first, then untagged ones
/// whose key no tagged entry has (Sendmail looks up the tagged key first), of
/// the key kinds that check takes.
pub(crate) fn access_for(entries: &[AccessEntry], tag: Tag) -> Vec<(Key, Act)> {
    let fits = |k: &Key| match tag {
        Tag::Connect => matches!(k, Key::Ip(_) | Key::Domain(_)),
        _ => !matches!(k, Key::Ip(_)),
    };
    let mut out: Vec<(Key, Act)> = Vec::new();
    for e in entries.iter().filter(|e| e.tag == Some(tag)) {
        out.push((e.key.clone(), e.act.clone()));
    }
    for e in entries.iter().filter(|e| e.tag.is_none() && fits(&e.key)) {
        if !out.iter().any(|(k, _)| *k == e.key) {
            out.push((e.key.clone(), e.act.clone()));
        }
    }
    out
}

/// Access entries a flavour cannot carry faithfully, as a reason. `Spam:`
/// entries matter only under `delay_checks` (`spam_ok`: the flavour renders
/// them there), `GreetPause:` entries only under `greet_pause` (no flavour
/// but Sendmail renders those).
pub(crate) fn access_gaps(profile: &RelayProfile, names_ok: bool, users_ok: bool, spam_ok: bool) -> Option<String> {
    let e = access(profile);
    let spam = profile.delay_checks != crate::profile::DelayChecks::Off
        && !spam_ok
        && e.iter().any(|e| e.tag == Some(Tag::Spam));
    let pause = profile.greet_pause != 0 && e.iter().any(|e| e.tag == Some(Tag::GreetPause));
    if spam || pause {
        return Some("Spam:/GreetPause: entries".into());
    }
    if !names_ok && e.iter().any(|e| matches!(e.tag, Some(Tag::Connect) | None) && matches!(e.key, Key::Domain(_))) {
        return Some("Connect: entries by host name".into());
    }
    if !users_ok && e.iter().any(|e| matches!(e.key, Key::User(_))) {
        return Some("user@ keys".into());
    }
    None
}

/// The recipients `delay_checks` singles out: under `friend` the `Spam:`
/// FRIEND keys (they skip the delayed client and sender checks), under
/// `hater` the HATER keys (only they get them); empty for `true` and off.
pub(crate) fn spam_keys(profile: &RelayProfile) -> Vec<Key> {
    use crate::profile::DelayChecks;
    let want = match profile.delay_checks {
        DelayChecks::Friend => Act::Friend,
        DelayChecks::Hater => Act::Hater,
        _ => return Vec::new(),
    };
    access(profile).into_iter().filter(|e| e.tag == Some(Tag::Spam) && e.act == want).map(|e| e.key).collect()
}

/// `privacy_flags` a flavour without `X-Authentication-Warning:` headers and
/// without a HELO requirement of its own for VRFY cannot carry: `authwarnings`
/// set explicitly while MAIL without HELO is accepted (the only case in which
/// the header is written), and `needvrfyhelo` while VRFY is allowed.
pub(crate) fn privacy_gaps(profile: &RelayProfile) -> Option<String> {
    let p = profile.privacy();
    if p.auth_warnings && !p.need_mail_helo {
        return Some("authwarnings: no X-Authentication-Warning header for MAIL without HELO".into());
    }
    if p.need_vrfy_helo && !p.no_vrfy {
        return Some("needvrfyhelo with VRFY allowed".into());
    }
    None
}

/// A mailertable key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MtKey {
    /// `eng.sysiphus.com`.
    Exact(String),
    /// `.sysiphus.com`: strictly below.
    Below(String),
    /// `.`.
    Default,
}

/// A mailertable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MtRoute {
    /// SMTP to `host` (`%1` possibly in it); `bracketed`: A record only.
    Smtp { host: String, bracketed: bool },
    /// `local:` or `local:user`.
    Local(Option<String>),
    /// `error:...`.
    Error(ErrorReply),
}

/// The mailertable, most specific key first (exact names, then `.domain`
/// keys with more labels first, then `.`).
pub(crate) fn mailertable(profile: &RelayProfile) -> Vec<(MtKey, MtRoute)> {
    let mut out = Vec::new();
    for line in lines(&profile.mailertable) {
        let mut w = line.split_whitespace();
        let (Some(k), v) = (w.next(), w.collect::<Vec<_>>().join(" ")) else { continue };
        let k = k.to_ascii_lowercase();
        let key = if k == "." {
            MtKey::Default
        } else if let Some(d) = k.strip_prefix('.') {
            MtKey::Below(d.trim_end_matches('.').to_string())
        } else {
            MtKey::Exact(k.trim_end_matches('.').to_string())
        };
        let Some((mailer, rest)) = v.split_once(':') else { continue };
        let route = match mailer.to_ascii_lowercase().as_str() {
            "error" => match ErrorReply::parse(rest) {
                Ok(e) => MtRoute::Error(e),
                Err(_) => continue,
            },
            "local" => MtRoute::Local((!rest.trim().is_empty()).then(|| rest.trim().to_string())),
            _ => {
                let r = rest.trim();
                match r.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                    Some(inner) => MtRoute::Smtp { host: inner.trim_end_matches('.').to_string(), bracketed: true },
                    None => MtRoute::Smtp { host: r.trim_end_matches('.').to_string(), bracketed: false },
                }
            }
        };
        out.push((key, route));
    }
    out.sort_by_key(|(k, _)| match k {
        MtKey::Exact(_) => (0, 0),
        MtKey::Below(d) => (1, usize::MAX - d.split('.').count()),
        MtKey::Default => (2, 0),
    });
    out
}

/// `smart_host` as `(host, bracketed)`, the mailer dropped.
pub(crate) fn smart_host(profile: &RelayProfile) -> Option<(String, bool)> {
    let s = profile.smart_host.as_deref()?.trim();
    let host = match s.split_once(':') {
        Some((_, h)) if !s.starts_with('[') => h,
        _ => s,
    };
    Some(match host.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        Some(inner) => (inner.trim_end_matches('.').to_string(), true),
        None => (host.trim_end_matches('.').to_string(), false),
    })
}

/// The mailertable `.` entry, else `smart_host`: where mail no other entry
/// routes goes, as `(host, bracketed)`.
pub(crate) fn default_route(profile: &RelayProfile) -> Option<(String, bool)> {
    match mailertable(profile).into_iter().find(|(k, _)| *k == MtKey::Default) {
        Some((_, MtRoute::Smtp { host, bracketed })) => Some((host, bracketed)),
        Some(_) => None,
        None => smart_host(profile),
    }
}

/// The value gaps of a flavour that renders the policy subset as rules (Postfix,
/// Exim): access, privacy flags, mailertable (`%1` only where `percent_ok`),
/// virtusertable, aliases, and a banner with a date or several lines.
pub(crate) fn rule_value_gaps(profile: &RelayProfile, percent_ok: bool) -> Vec<(&'static str, String)> {
    let mut gaps = Vec::new();
    gaps.extend(access_gaps(profile, true, true, true).map(|w| ("access", w)));
    gaps.extend(privacy_gaps(profile).map(|w| ("privacy_flags", w)));
    gaps.extend(mailertable_gaps(profile, percent_ok).map(|w| ("mailertable", w)));
    gaps.extend(virtusertable_gaps(profile, true).map(|w| ("virtusertable", w)));
    gaps.extend(aliases_gaps(profile).map(|w| ("aliases", w)));
    if profile.smtp_login_msg.is_some() && banner(profile).is_none() {
        gaps.push(("smtp_login_msg", "a date ($b) or several lines: the banner setting has neither".into()));
    }
    gaps
}

/// Mailertable values a flavour cannot carry.
pub(crate) fn mailertable_gaps(profile: &RelayProfile, percent_ok: bool) -> Option<String> {
    let mt = mailertable(profile);
    if mt.iter().any(|(_, r)| matches!(r, MtRoute::Local(_))) {
        return Some("local: entries".into());
    }
    if mt.iter().any(|(k, r)| *k == MtKey::Default && matches!(r, MtRoute::Error(_))) {
        return Some("an error: entry for .".into());
    }
    if !percent_ok && mt.iter().any(|(_, r)| matches!(r, MtRoute::Smtp { host, .. } if host.contains("%1"))) {
        return Some("%1 in a host".into());
    }
    None
}

/// A virtusertable target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VirtTarget {
    /// An address or a local name (`%1` possibly in it).
    Address(String),
    Error(ErrorReply),
}

/// The virtusertable entries that Sendmail consults: those of
/// `virtuser_domains`, the `hostname` and `local_host_names`, as
/// `(local part or None for @domain, domain, target)`, addresses before
/// catch-alls.
pub(crate) fn virtusertable(profile: &RelayProfile) -> Vec<(Option<String>, String, VirtTarget)> {
    let mut ours: Vec<String> =
        profile.virtuser_domains.iter().map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase()).collect();
    ours.push(profile.hostname.trim_end_matches('.').to_ascii_lowercase());
    ours.extend(profile.local_host_names.iter().map(|d| d.trim_end_matches('.').to_ascii_lowercase()));
    let mut out = Vec::new();
    for line in lines(&profile.virtusertable) {
        let Some((k, t)) = line.split_once(char::is_whitespace) else { continue };
        let Some((user, domain)) = k.rsplit_once('@') else { continue };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if !ours.contains(&domain) {
            continue;
        }
        let t = t.trim();
        let target = match t.strip_prefix("error:") {
            Some(rest) => match ErrorReply::parse(rest) {
                Ok(e) => VirtTarget::Error(e),
                Err(_) => continue,
            },
            None => VirtTarget::Address(t.to_string()),
        };
        out.push(((!user.is_empty()).then(|| user.to_ascii_lowercase()), domain, target));
    }
    out.sort_by_key(|(u, _, _)| u.is_none());
    out
}

/// Virtusertable entries a flavour cannot carry.
pub(crate) fn virtusertable_gaps(profile: &RelayProfile, percent1_ok: bool) -> Option<String> {
    for line in lines(&profile.virtusertable) {
        if line.contains("%2") || line.contains("%3") || line.split_whitespace().next().is_some_and(|k| k.contains('+'))
        {
            return Some("+detail entries or %2/%3".into());
        }
        if !percent1_ok && line.contains("%1") {
            return Some("%1 in a target".into());
        }
    }
    None
}

/// An alias target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AliasTarget {
    /// An address or a local name.
    Address(String),
    /// `:include: /path`.
    Include(String),
    /// A file or a program: the builtin relay records them, a real MTA would
    /// write or run them.
    FileOrProgram(String),
}

impl AliasTarget {
    /// As an aliases file writes it (`addr`, `:include:/path`, `/file`, `"|prog"`).
    pub(crate) fn text(&self) -> String {
        match self {
            AliasTarget::Address(a) | AliasTarget::FileOrProgram(a) => a.clone(),
            AliasTarget::Include(p) => format!(":include:{p}"),
        }
    }
}

/// The profile's `include_files` with absolute paths, as files of the MTA's root.
pub(crate) fn include_file_roots(profile: &RelayProfile) -> impl Iterator<Item = super::RootFile> + '_ {
    profile
        .include_files
        .iter()
        .filter(|(path, _)| path.starts_with('/'))
        .map(|(path, text)| super::RootFile::new(path.clone(), text.clone()))
}

/// The aliases, `(name, targets)`, with the `postmaster` and `MAILER-DAEMON`
/// aliases every MTA expects.
pub(crate) fn aliases(profile: &RelayProfile) -> Vec<(String, Vec<AliasTarget>)> {
    let mut out: Vec<(String, Vec<AliasTarget>)> = Vec::new();
    for line in lines(&profile.aliases) {
        let Some((name, rhs)) = line.split_once(':') else { continue };
        let mut targets = Vec::new();
        // the builtin relay's own reading of a right-hand side
        for t in crate::addresses::aliases::split_targets(rhs) {
            let t = t.trim();
            if let Some(p) = t.strip_prefix(":include:") {
                targets.push(AliasTarget::Include(p.trim().to_string()));
            } else if t.starts_with('/') || t.trim_matches('"').starts_with('|') {
                targets.push(AliasTarget::FileOrProgram(t.to_string()));
            } else if !t.is_empty() {
                targets.push(AliasTarget::Address(t.to_string()));
            }
        }
        out.push((name.trim().to_ascii_lowercase(), targets));
    }
    for (name, target) in [("postmaster", "root"), ("mailer-daemon", "postmaster")] {
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.to_string(), vec![AliasTarget::Address(target.to_string())]));
        }
    }
    out
}


/// Alias targets a real MTA would act on differently from the builtin relay.
pub(crate) fn aliases_gaps(profile: &RelayProfile) -> Option<String> {
    aliases(profile)
        .iter()
        .any(|(_, t)| t.iter().any(|t| matches!(t, AliasTarget::FileOrProgram(_))))
        .then(|| "file or program targets (the builtin relay records them; a real MTA would write or run them)".into())
}

/// `smtp_login_msg` expanded for a banner without a date: `$j`, `$w`, `$m`,
/// `$v`/`$Z` (the profile's version) and `$$`, with `ESMTP` after the first
/// word as Sendmail writes it; `None` when it uses `$b` (the date) or spans
/// several lines.
pub(crate) fn banner(profile: &RelayProfile) -> Option<String> {
    let t = profile.smtp_login_msg.as_deref()?;
    if t.contains("$b") || t.contains("\\n") || t.contains('\n') {
        return None;
    }
    let host = profile.hostname.trim_end_matches('.');
    let (w, m) = host.split_once('.').unwrap_or((host, ""));
    let (v, z) = profile.version.split_once('/').unwrap_or((&profile.version, &profile.version));
    let text = t
        .replace("$$", "\u{0}")
        .replace("$j", host)
        .replace("$w", w)
        .replace("$m", m)
        .replace("$v", v)
        .replace("$Z", z)
        .replace('\u{0}', "$");
    if text.contains('$') {
        return None;
    }
    let (first, rest) = text.split_once(' ').unwrap_or((&text, ""));
    Some(if rest.is_empty() { format!("{first} ESMTP") } else { format!("{first} ESMTP {rest}") })
}

/// Seconds, at least one.
pub(crate) fn secs(d: std::time::Duration) -> u64 {
    d.as_secs().max(1)
}

/// A domain as a regular expression (dots escaped).
pub(crate) fn re_domain(d: &str) -> String {
    d.replace('.', "\\.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(y: &str) -> RelayProfile {
        serde_yaml::from_str(&format!("hostname: ext.sysiphus.com\n{y}")).unwrap()
    }

    #[test]
    fn access_lines_are_read() {
        let p = profile(
            "access: |\n  Connect:63.99.230 REJECT\n  From:zecpax@yahoo.com ERROR: You annoy me\n  From:biz ERROR:550 Move out of biz\n  \
             From:g.example ERROR:5.7.1:550 No\n  10.1 RELAY\n  To:x.example RELAY\n",
        );
        let e = access(&p);
        assert_eq!(e[0], AccessEntry { tag: Some(Tag::Connect), key: Key::Ip(vec![63, 99, 230]), act: Act::Reject });
        assert_eq!(e[1].act, Act::Error(553, "5.3.0".into(), "You annoy me".into()));
        assert_eq!(e[2].act, Act::Error(550, "5.0.0".into(), "Move out of biz".into()));
        assert_eq!(e[3].act, Act::Error(550, "5.7.1".into(), "No".into()));
        let c = access_for(&e, Tag::Connect);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[1], (Key::Ip(vec![10, 1]), Act::Relay));
        assert_eq!(access_for(&e, Tag::To), vec![(Key::Domain("x.example".into()), Act::Relay)]);
    }

    #[test]
    fn mailertable_most_specific_first() {
        let p = profile(
            "mailertable: |\n  . smtp:[gw.example]\n  .sysiphus.com smtp:%1.mail.sysiphus.com\n  \
             .eng.sysiphus.com smtp:x.example\n  old.com error:5.1.1:550 moved\n",
        );
        let mt = mailertable(&p);
        assert_eq!(mt[0].0, MtKey::Exact("old.com".into()));
        assert_eq!(mt[1].0, MtKey::Below("eng.sysiphus.com".into()));
        assert_eq!(mt[2].0, MtKey::Below("sysiphus.com".into()));
        assert_eq!(default_route(&p), Some(("gw.example".into(), true)));
        assert_eq!(mailertable_gaps(&p, false).as_deref(), Some("%1 in a host"));
    }

    #[test]
    fn banner_without_date() {
        let p = profile("smtp_login_msg: mailer ready\n");
        assert_eq!(banner(&p).as_deref(), Some("mailer ESMTP ready"));
        let p = profile("smtp_login_msg: \"$j Sendmail $v/$Z; $b\"\n");
        assert_eq!(banner(&p), None);
    }

    #[test]
    fn which_keys_render() {
        let p = profile("access: [\"From:foo.biz REJECT\", \"Spam:abuse@sysiphus.com FRIEND\"]\ndelay_checks: friend\n");
        assert_eq!(unrendered_key("postfix", &p, "delay_checks"), None);
        assert_eq!(unrendered_key("exim", &p, "access"), None);
        assert_eq!(unrendered_key("opensmtpd", &p, "delay_checks"), None);
        assert_eq!(spam_keys(&p), vec![Key::Address("abuse@sysiphus.com".into())]);
        let p = profile("privacy_flags: goaway\n");
        assert_eq!(unrendered_key("postfix", &p, "privacy_flags"), None);
        let p = profile("privacy_flags: [authwarnings, novrfy]\n");
        assert!(unrendered_key("exim", &p, "privacy_flags").unwrap().starts_with("privacy_flags (authwarnings"));
        assert_eq!(unrendered_key("postfix", &p, "hostname"), None);
        assert_eq!(unrendered_key("sendmail", &p, "delay_checks"), None);
        assert_eq!(unrendered_key("builtin", &p, "anything"), None);
    }
}
