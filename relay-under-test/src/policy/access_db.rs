//! The access database, Sendmail's `FEATURE(access_db)` (spec §4.3–4.4), in
//! the text form an administrator writes before `makemap hash access`.
//!
//! Talks to nothing: parsed once from the profile's `access:` lines, then
//! asked by the checks. One line is `KEY VALUE`; a key may carry a tag
//! (`Connect:`, `From:`, `To:`, `Spam:`, `GreetPause:`) or none (the legacy
//! form, consulted after the tagged key). Keys are matched without regard to
//! case, as `makemap` folds them.
//!
//! Lookups follow `cf/m4/proto.m4`'s search order: an address is tried whole
//! (`user+detail@dom`, `user+*@dom`, `user@dom`), as `user@`, and by domain
//! with each parent domain (`a.b.c`, `b.c`, `c`); a client by name (and
//! parents) and then by address (`1.2.3.4`, `1.2.3`, `1.2`, `1`). `SKIP` on a
//! domain or address stops that search with nothing found.

use crate::addresses::table_lines;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// The tag in front of a key: which check an entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessTag {
    /// `Connect:` — the connecting client, by name or address (`check_relay`).
    Connect,
    /// `From:` — the envelope sender (`check_mail`).
    From,
    /// `To:` — the envelope recipient (`check_rcpt`).
    To,
    /// `Spam:` — a recipient's `FRIEND` or `HATER` choice (`delay_checks`).
    Spam,
    /// `GreetPause:` — the greeting pause for a client, in milliseconds.
    GreetPause,
}

impl AccessTag {
    fn parse(tag: &str) -> Option<AccessTag> {
        Some(match tag.to_ascii_lowercase().as_str() {
            "connect" => AccessTag::Connect,
            "from" => AccessTag::From,
            "to" => AccessTag::To,
            "spam" => AccessTag::Spam,
            "greetpause" => AccessTag::GreetPause,
            _ => return None,
        })
    }

    /// The tag as written, with its colon (`"From:"`).
    pub fn as_str(self) -> &'static str {
        match self {
            AccessTag::Connect => "Connect:",
            AccessTag::From => "From:",
            AccessTag::To => "To:",
            AccessTag::Spam => "Spam:",
            AccessTag::GreetPause => "GreetPause:",
        }
    }
}

/// A custom refusal, `ERROR:[D.S.N:]code text` or `ERROR: text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// The SMTP reply code (553 when the entry gives none).
    pub code: u16,
    /// The enhanced status code (`5.7.1`); when the entry gives none, `5.3.0`
    /// without a reply code and `X.0.0` with one (Sendmail's `buildaddr`/`usrerr`).
    pub dsn: String,
    /// The text after the address.
    pub text: String,
}

/// What an access entry tells a check to do (spec §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessAction {
    /// `OK`: accept even if other rules would refuse; grants no relaying.
    Ok,
    /// `RELAY`: accept, and relay to (`To:`) or from (`Connect:`) this entity.
    Relay,
    /// `REJECT`: refuse with the generic text (`550 5.7.1 ... Access denied`).
    Reject,
    /// `DISCARD`: accept, then silently drop the whole message.
    Discard,
    /// `ERROR:...`: refuse with this reply.
    Error(ErrorReply),
    /// `SKIP`: stop searching this domain or address; fall back to the defaults.
    Skip,
}

/// A recipient's choice about spam checks (`Spam:` entries, `delay_checks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpamChoice {
    /// `FRIEND`: this recipient wants no filtering (`delay_checks` `friend`).
    Friend,
    /// `HATER`: this recipient wants filtering (`delay_checks` `hater`).
    Hater,
}

/// The right-hand side of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessValue {
    /// An action (`Connect:`, `From:`, `To:` and untagged keys).
    Action(AccessAction),
    /// `FRIEND`/`HATER` (`Spam:` keys).
    Spam(SpamChoice),
    /// Milliseconds (`GreetPause:` keys).
    Pause(u64),
}

/// Why an `access:` line was refused. Each message quotes the line first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The line has a key and nothing after it.
    #[error("access line {line:?}: no value after the key; write KEY VALUE, e.g. \"From:foo.biz REJECT\"")]
    MissingValue {
        /// The line.
        line: String,
    },
    /// The tag before the key is not one the access map knows.
    #[error(
        "access line {line:?}: unknown tag {tag:?}; valid tags are Connect:, From:, To:, Spam:, GreetPause: (or none)"
    )]
    UnknownTag {
        /// The line.
        line: String,
        /// The tag as written.
        tag: String,
    },
    /// The key is not an address, a domain or an IP prefix of the kind the tag takes.
    #[error("access line {line:?}: key {key:?} {why}")]
    BadKey {
        /// The line.
        line: String,
        /// The key as written.
        key: String,
        /// What is wrong with it.
        why: String,
    },
    /// The value is not an action.
    #[error(
        "access line {line:?}: unknown action {value:?}; valid: OK, RELAY, REJECT, DISCARD, SKIP, \
         ERROR:[D.S.N:]code text, ERROR: text"
    )]
    UnknownAction {
        /// The line.
        line: String,
        /// The value as written.
        value: String,
    },
    /// An `ERROR:` value that cannot become a reply.
    #[error("access line {line:?}: {why}")]
    BadError {
        /// The line.
        line: String,
        /// What is wrong with it.
        why: String,
    },
    /// A value that does not fit its tag (`FRIEND` outside `Spam:`, ...).
    #[error("access line {line:?}: {why}")]
    WrongValue {
        /// The line.
        line: String,
        /// What is wrong with it.
        why: String,
    },
    /// The same key twice (`makemap` refuses duplicates).
    #[error("access line {line:?}: duplicate key, already given by {first:?}")]
    Duplicate {
        /// The second line.
        line: String,
        /// The first line with that key.
        first: String,
    },
}

/// The access database.
#[derive(Debug, Clone, Default)]
pub struct AccessDb {
    map: HashMap<(Option<AccessTag>, String), AccessValue>,
}

/// What a key looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    IpPrefix,
    Domain,
    /// `user@domain`.
    Address,
    /// `user@`.
    User,
}

fn key_kind(key: &str) -> Result<KeyKind, String> {
    if key.is_empty() {
        return Err("is empty".into());
    }
    if key.to_ascii_lowercase().starts_with("ipv6:") {
        return Err(
            "is an IPv6 key, which the builtin relay does not support; use IPv4 prefixes such as 192.168.2".into()
        );
    }
    if key.contains('/') {
        return Err("is a CIDR net; the access map takes octet-aligned prefixes only (10.1.1 for 10.1.1.0/24)".into());
    }
    if let Some((user, domain)) = key.rsplit_once('@') {
        if user.is_empty() {
            return Err("has nothing before '@'; write user@domain, user@ or a domain".into());
        }
        if user.contains(char::is_whitespace) {
            return Err("has a blank in its local part".into());
        }
        if domain.is_empty() {
            return Ok(KeyKind::User);
        }
        crate::profile::check_domain(domain).map_err(|why| format!("has a domain that is not a domain name: {why}"))?;
        return Ok(KeyKind::Address);
    }
    if key.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
        let parts: Vec<&str> = key.split('.').collect();
        if parts.len() > 4 {
            return Err("is not an IP prefix: an IPv4 address has at most four octets".into());
        }
        if parts.iter().any(|p| p.parse::<u8>().is_err()) {
            return Err("is not an IP prefix: each octet must be 0..255".into());
        }
        return Ok(KeyKind::IpPrefix);
    }
    crate::profile::check_domain(key.trim_end_matches('.'))
        .map_err(|why| format!("is not an address, domain or IP prefix: {why}"))?;
    Ok(KeyKind::Domain)
}

/// `D.S.N` with class 2, 4 or 5 and numbers of at most three digits.
fn is_dsn(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..].iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A three-digit SMTP code at the start of `s`, followed by a blank or the end.
fn leading_code(s: &str) -> Option<(u16, &str)> {
    let b = s.as_bytes();
    if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) && (b.len() == 3 || b[3] == b' ') {
        Some((s[..3].parse().ok()?, s[3..].trim_start()))
    } else {
        None
    }
}

/// Parse the text after `ERROR:` (`proto.m4`: `ERROR:$-.$-.$-:$+` sets the
/// status; the text then may start with a code and its own status).
fn parse_error(rest: &str) -> Result<ErrorReply, String> {
    let mut dsn = None;
    let mut t = rest.trim();
    if let Some((first, after)) = t.split_once(':') {
        if is_dsn(first) {
            dsn = Some(first.to_string());
            t = after.trim();
        }
    }
    let Some((code, after)) = leading_code(t) else {
        if t.is_empty() {
            return Err("ERROR: needs a text, e.g. \"ERROR:550 Move out of biz\"".into());
        }
        // No reply code: Sendmail's buildaddr answers `553 5.3.0 <text>`.
        return Ok(ErrorReply { code: 553, dsn: "5.3.0".into(), text: t.to_string() });
    };
    if !(400..600).contains(&code) {
        return Err(format!("ERROR code {code} is not a refusal; use a 4xx or 5xx code"));
    }
    let mut text = after;
    if let Some((first, after)) = text.split_once(' ') {
        if is_dsn(first) && dsn.is_none() {
            dsn = Some(first.to_string());
            text = after.trim_start();
        }
    }
    if text.is_empty() {
        return Err(format!("ERROR:{code} needs a text after the code"));
    }
    let class = (code / 100).to_string();
    let dsn = dsn.unwrap_or_else(|| format!("{class}.0.0"));
    if !dsn.starts_with(&class) {
        return Err(format!("status {dsn} does not match reply code {code}; the first digits must agree"));
    }
    Ok(ErrorReply { code, dsn, text: text.to_string() })
}

/// The parent domains of `domain`, itself first: `a.b.c`, `b.c`, `c`.
fn domain_and_parents(domain: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(domain);
    std::iter::from_fn(move || {
        let cur = next?;
        next = cur.split_once('.').map(|(_, rest)| rest).filter(|r| !r.is_empty());
        Some(cur)
    })
}

/// `1.2.3.4`, `1.2.3`, `1.2`, `1`.
fn ip_prefixes(ip: IpAddr) -> Vec<String> {
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    let Some(v4) = v4 else { return vec![ip.to_string()] };
    let o = v4.octets();
    (1..=4).rev().map(|n| o[..n].iter().map(u8::to_string).collect::<Vec<_>>().join(".")).collect()
}

/// Lower case, no brackets, no trailing dot.
fn norm(s: &str) -> String {
    s.trim().trim_start_matches('<').trim_end_matches('>').trim_end_matches('.').to_ascii_lowercase()
}

impl AccessDb {
    /// Parse the text form, one entry per line; blank lines and `#` comments are skipped.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<AccessDb, AccessError> {
        let mut map = HashMap::new();
        let mut first_line: HashMap<(Option<AccessTag>, String), String> = HashMap::new();
        for line in table_lines(lines).map(|l| l.text) {
            let owned = || line.to_string();
            let (lhs, value) = match line.split_once(char::is_whitespace) {
                Some((k, v)) if !v.trim().is_empty() => (k, v.trim()),
                _ => return Err(AccessError::MissingValue { line: owned() }),
            };
            let (tag, key) = match lhs.split_once(':') {
                Some((t, k)) => match AccessTag::parse(t) {
                    Some(tag) => (Some(tag), k),
                    None => return Err(AccessError::UnknownTag { line: owned(), tag: format!("{t}:") }),
                },
                None => (None, lhs),
            };
            let bad_key = |why: String| AccessError::BadKey { line: owned(), key: key.to_string(), why };
            let kind = key_kind(key).map_err(bad_key)?;
            match (tag, kind) {
                (Some(AccessTag::Connect | AccessTag::GreetPause), KeyKind::Address | KeyKind::User) => {
                    return Err(bad_key("is an address; a client is named by host, domain or IP prefix".into()))
                }
                (Some(AccessTag::From | AccessTag::To | AccessTag::Spam), KeyKind::IpPrefix) => {
                    return Err(bad_key(
                        "is an IP prefix; an envelope address is keyed by user@domain, user@ or domain".into(),
                    ))
                }
                _ => {}
            }
            let value = Self::parse_value(line, tag, kind, value)?;
            let k = (tag, norm(key));
            if let Some(first) = first_line.get(&k) {
                return Err(AccessError::Duplicate { line: owned(), first: first.clone() });
            }
            first_line.insert(k.clone(), owned());
            map.insert(k, value);
        }
        Ok(AccessDb { map })
    }

    fn parse_value(line: &str, tag: Option<AccessTag>, kind: KeyKind, value: &str) -> Result<AccessValue, AccessError> {
        let wrong = |why: &str| AccessError::WrongValue { line: line.to_string(), why: why.to_string() };
        let word = value.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        match tag {
            Some(AccessTag::Spam) => {
                return match word.as_str() {
                    "FRIEND" => Ok(AccessValue::Spam(SpamChoice::Friend)),
                    "HATER" => Ok(AccessValue::Spam(SpamChoice::Hater)),
                    _ => Err(wrong(&format!("Spam: entries take FRIEND or HATER, not {value:?}"))),
                }
            }
            Some(AccessTag::GreetPause) => {
                return value.parse::<u64>().map(AccessValue::Pause).map_err(|_| {
                    wrong(&format!("GreetPause: entries take milliseconds (0 for no pause), not {value:?}"))
                })
            }
            _ => {}
        }
        let action = if value.len() >= 6 && value[..6].eq_ignore_ascii_case("ERROR:") {
            AccessAction::Error(
                parse_error(&value[6..]).map_err(|why| AccessError::BadError { line: line.to_string(), why })?,
            )
        } else {
            if value.split_whitespace().count() > 1 {
                return Err(AccessError::UnknownAction { line: line.to_string(), value: value.to_string() });
            }
            match word.as_str() {
                "OK" => AccessAction::Ok,
                "RELAY" => AccessAction::Relay,
                "REJECT" => AccessAction::Reject,
                "DISCARD" => AccessAction::Discard,
                "SKIP" => AccessAction::Skip,
                "FRIEND" | "HATER" => {
                    return Err(wrong(&format!("{word} belongs to Spam: entries (Spam:user@domain {word})")))
                }
                w if w.starts_with("QUARANTINE") => {
                    return Err(wrong("QUARANTINE is not supported by the builtin relay; use REJECT or DISCARD"))
                }
                _ => return Err(AccessError::UnknownAction { line: line.to_string(), value: value.to_string() }),
            }
        };
        if action == AccessAction::Skip && matches!(kind, KeyKind::Address | KeyKind::User) {
            return Err(wrong("SKIP applies to host, domain and IP keys only, not to addresses"));
        }
        Ok(AccessValue::Action(action))
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// One key, tagged; then untagged when `untagged` (Sendmail's `<+ Tag>`).
    fn key(&self, tag: AccessTag, key: &str, untagged: bool) -> Option<&AccessValue> {
        let key = key.to_ascii_lowercase();
        self.map.get(&(Some(tag), key.clone())).or_else(|| if untagged { self.map.get(&(None, key)) } else { None })
    }

    /// `LookUpDomain`: the domain and its parents; `SKIP` ends the search empty.
    fn domain(&self, tag: AccessTag, domain: &str, untagged: bool) -> Option<&AccessValue> {
        let d = norm(domain);
        for cand in domain_and_parents(&d) {
            if let Some(v) = self.key(tag, cand, untagged) {
                return (v != &AccessValue::Action(AccessAction::Skip)).then_some(v);
            }
        }
        None
    }

    /// `LookUpAddress`: the IP and its shorter prefixes; `SKIP` ends the search empty.
    fn address(&self, tag: AccessTag, ip: IpAddr, untagged: bool) -> Option<&AccessValue> {
        for cand in ip_prefixes(ip) {
            if let Some(v) = self.key(tag, &cand, untagged) {
                return (v != &AccessValue::Action(AccessAction::Skip)).then_some(v);
            }
        }
        None
    }

    /// `LookUpFull`: `user+detail@dom`, `user+*@dom`, `user@dom`.
    fn full(&self, tag: AccessTag, user: &str, domain: &str, untagged: bool) -> Option<&AccessValue> {
        let mut keys = vec![format!("{user}@{domain}")];
        if let Some((base, _)) = user.split_once('+') {
            keys.push(format!("{base}+*@{domain}"));
            keys.push(format!("{base}@{domain}"));
        }
        keys.iter().find_map(|k| self.key(tag, k, untagged))
    }

    /// `LookUpUser`: `user+detail@`, `user+*@`, `user@`.
    fn user(&self, tag: AccessTag, user: &str, untagged: bool) -> Option<&AccessValue> {
        let mut keys = vec![format!("{user}@")];
        if let Some((base, _)) = user.split_once('+') {
            keys.push(format!("{base}+*@"));
            keys.push(format!("{base}@"));
        }
        keys.iter().find_map(|k| self.key(tag, k, untagged))
    }

    /// A client (`check_relay`, `Relay_ok`): by name and its parent domains,
    /// then by address and its prefixes; tagged, then untagged when `untagged`.
    pub fn client(&self, tag: AccessTag, name: Option<&str>, ip: IpAddr, untagged: bool) -> Option<&AccessValue> {
        name.and_then(|n| self.domain(tag, n, untagged)).or_else(|| self.address(tag, ip, untagged))
    }

    /// A client's address only (`Relay_ok`'s first lookup).
    pub fn client_address(&self, ip: IpAddr) -> Option<&AccessAction> {
        action(self.address(AccessTag::Connect, ip, true))
    }

    /// A client's name only (`Relay_ok`'s last lookup).
    pub fn client_name(&self, name: &str) -> Option<&AccessAction> {
        action(self.domain(AccessTag::Connect, name, true))
    }

    /// The envelope sender (`check_mail`): whole address, `user@`, domain.
    pub fn sender(&self, addr: &str) -> Option<&AccessAction> {
        let addr = norm(addr);
        let found = match addr.rsplit_once('@') {
            Some((user, domain)) if !domain.is_empty() => self
                .full(AccessTag::From, user, domain, true)
                .or_else(|| self.user(AccessTag::From, user, true))
                .or_else(|| self.domain(AccessTag::From, domain, true)),
            _ => self.user(AccessTag::From, &addr, true),
        };
        action(found)
    }

    /// A recipient for `FEATURE(blacklist_recipients)`: whole address,
    /// `user@` (local recipients only), domain.
    pub fn recipient(&self, addr: &str, local: bool) -> Option<&AccessAction> {
        let addr = norm(addr);
        let found = match addr.rsplit_once('@') {
            Some((user, domain)) if !domain.is_empty() => self
                .full(AccessTag::To, user, domain, true)
                .or_else(|| if local { self.user(AccessTag::To, user, true) } else { None })
                .or_else(|| self.domain(AccessTag::To, domain, true)),
            _ => self.user(AccessTag::To, &addr, true),
        };
        action(found)
    }

    /// `To:` (or untagged) `RELAY` for a recipient domain: its parents too,
    /// or the exact name only under `relay_hosts_only`. Returns the key.
    pub fn relay_to(&self, domain: &str, hosts_only: bool) -> Option<String> {
        let d = norm(domain);
        let relay = AccessValue::Action(AccessAction::Relay);
        if hosts_only {
            return (self.key(AccessTag::To, &d, true) == Some(&relay)).then_some(d);
        }
        for cand in domain_and_parents(&d) {
            if let Some(v) = self.key(AccessTag::To, cand, true) {
                return (v == &relay).then(|| cand.to_string());
            }
        }
        None
    }

    /// A recipient's `Spam:` choice (tag only): whole address, domain, and
    /// `user@` for local recipients.
    pub fn spam(&self, addr: &str, local: bool) -> Option<SpamChoice> {
        let addr = norm(addr);
        let (user, domain) = addr.rsplit_once('@')?;
        let found = self
            .full(AccessTag::Spam, user, domain, false)
            .or_else(|| self.domain(AccessTag::Spam, domain, false))
            .or_else(|| if local { self.user(AccessTag::Spam, user, false) } else { None });
        match found {
            Some(AccessValue::Spam(c)) => Some(*c),
            _ => None,
        }
    }

    /// The `GreetPause:` entry for a client (tag only), in milliseconds.
    pub fn greet_pause(&self, name: Option<&str>, ip: IpAddr) -> Option<u64> {
        match self.client(AccessTag::GreetPause, name, ip, false) {
            Some(AccessValue::Pause(ms)) => Some(*ms),
            _ => None,
        }
    }
}

fn action(v: Option<&AccessValue>) -> Option<&AccessAction> {
    match v {
        Some(AccessValue::Action(a)) => Some(a),
        _ => None,
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.code, self.dsn, self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn db(lines: &[&str]) -> AccessDb {
        AccessDb::parse(lines).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The course's sample access file (spec §4.4).
    const COURSE: &[&str] = &[
        "Spam:abuse@sysiphus.com FRIEND",
        "Connect:202.9.145.21 REJECT",
        "Connect:63.99.230 REJECT",
        "From:insidertrading.com REJECT",
        "From:zecpax@yahoo.com ERROR: You annoy me",
        "From:biz ERROR:550 Move out of biz",
        "From:friend@some.biz RELAY",
        "GreetPause:192.168        0",
    ];

    #[test]
    fn the_course_file_parses_and_answers() {
        let d = db(COURSE);
        assert_eq!(
            d.client(AccessTag::Connect, None, ip("202.9.145.21"), true),
            Some(&AccessValue::Action(AccessAction::Reject))
        );
        assert_eq!(
            d.client(AccessTag::Connect, None, ip("63.99.230.7"), true),
            Some(&AccessValue::Action(AccessAction::Reject))
        );
        assert_eq!(d.client(AccessTag::Connect, None, ip("63.99.231.7"), true), None);
        assert_eq!(d.sender("<bob@insidertrading.com>"), Some(&AccessAction::Reject));
        assert_eq!(d.sender("bob@mail.insidertrading.com"), Some(&AccessAction::Reject));
        assert_eq!(
            d.sender("zecpax@yahoo.com"),
            Some(&AccessAction::Error(ErrorReply { code: 553, dsn: "5.3.0".into(), text: "You annoy me".into() }))
        );
        assert_eq!(d.sender("other@yahoo.com"), None);
        assert_eq!(
            d.sender("x@shop.biz"),
            Some(&AccessAction::Error(ErrorReply { code: 550, dsn: "5.0.0".into(), text: "Move out of biz".into() }))
        );
        // The whole address is tried before its domain.
        assert_eq!(d.sender("Friend@Some.BIZ"), Some(&AccessAction::Relay));
        assert_eq!(d.spam("abuse@sysiphus.com", false), Some(SpamChoice::Friend));
        assert_eq!(d.spam("hal@sysiphus.com", false), None);
        assert_eq!(d.greet_pause(None, ip("192.168.2.9")), Some(0));
        assert_eq!(d.greet_pause(Some("x.example"), ip("10.0.0.1")), None);
    }

    #[test]
    fn order_tags_skip_and_legacy_keys() {
        let d = db(&[
            "From:spam.example REJECT",
            "From:ok.spam.example SKIP",
            "From:boss@ OK",
            "cyberspammer.com REJECT",
            "Connect:cyberspammer.com OK",
            "192.168.2 RELAY",
            "To:friend.domain RELAY",
            "Connect:10.1 SKIP",
            "10 REJECT",
            "From:list+*@lists.example DISCARD",
        ]);
        assert_eq!(d.sender("a@x.spam.example"), Some(&AccessAction::Reject));
        // SKIP stops the parent-domain search: nothing found.
        assert_eq!(d.sender("a@ok.spam.example"), None);
        // user@ is tried before the domain.
        assert_eq!(d.sender("boss@spam.example"), Some(&AccessAction::Ok));
        // Untagged keys serve every tag, after the tagged key.
        assert_eq!(d.sender("x@cyberspammer.com"), Some(&AccessAction::Reject));
        assert_eq!(d.client_name("mail.cyberspammer.com"), Some(&AccessAction::Ok));
        assert_eq!(d.client_address(ip("192.168.2.7")), Some(&AccessAction::Relay));
        assert_eq!(d.client_address(ip("10.1.2.3")), None);
        assert_eq!(d.client_address(ip("10.2.2.3")), Some(&AccessAction::Reject));
        assert_eq!(d.relay_to("Sub.Friend.Domain.", false), Some("friend.domain".into()));
        assert_eq!(d.relay_to("sub.friend.domain", true), None);
        assert_eq!(d.relay_to("friend.domain", true), Some("friend.domain".into()));
        assert_eq!(d.sender("list+news@lists.example"), Some(&AccessAction::Discard));
        assert_eq!(d.sender("list@lists.example"), None);
    }

    #[test]
    fn error_values() {
        let e = |v: &str| parse_error(v);
        assert_eq!(e("5.7.1:550 Go away").unwrap().to_string(), "550 5.7.1 Go away");
        assert_eq!(e("550 5.7.0 Not here").unwrap().to_string(), "550 5.7.0 Not here");
        assert_eq!(e("451 Try later").unwrap().to_string(), "451 4.0.0 Try later");
        assert_eq!(e(" You annoy me").unwrap().to_string(), "553 5.3.0 You annoy me");
        assert!(e("").unwrap_err().contains("needs a text"));
        assert!(e("250 fine").unwrap_err().contains("not a refusal"));
        assert!(e("4.7.1:550 mixed").unwrap_err().contains("does not match"));
        assert!(e("550").unwrap_err().contains("needs a text"));
    }

    #[test]
    fn bad_lines_are_refused_with_the_line_quoted() {
        for (line, hint) in [
            ("From:foo.biz", "no value"),
            ("Conect:1.2.3.4 REJECT", "unknown tag \"Conect:\""),
            ("Connect:10.1.1.0/24 REJECT", "CIDR"),
            ("Connect:10.1.256 REJECT", "0..255"),
            ("Connect:1.2.3.4.5 REJECT", "four octets"),
            ("Connect:a@b.com REJECT", "is an address"),
            ("From:10.1.1 REJECT", "IP prefix"),
            ("From:foo.biz BOGUS", "unknown action \"BOGUS\""),
            ("From:foo.biz REJECT now", "unknown action"),
            ("From:foo.biz ERROR:", "needs a text"),
            ("Spam:abuse@sysiphus.com OK", "FRIEND or HATER"),
            ("From:a@b.com FRIEND", "Spam:"),
            ("GreetPause:192.168 soon", "milliseconds"),
            ("From:a@b.com SKIP", "SKIP applies"),
            ("From:bad_domain!.com REJECT", "not an address, domain or IP prefix"),
            ("Connect:IPv6:::1 REJECT", "IPv6"),
            ("From:x.com QUARANTINE:look", "QUARANTINE"),
        ] {
            let err = AccessDb::parse(&[line]).unwrap_err().to_string();
            assert!(err.starts_with(&format!("access line {line:?}")), "{line}: {err}");
            assert!(err.contains(hint), "{line}: {err}");
        }
        let err = AccessDb::parse(&["From:Foo.biz REJECT", "# comment", "", "From:foo.BIZ OK"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "access line \"From:foo.BIZ OK\": duplicate key, already given by \"From:Foo.biz REJECT\""
        );
    }
}
