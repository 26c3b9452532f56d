//! OpenSMTPD (Debian 6.8.0p2) under test.
//!
//! Configuration: one rendered `/etc/smtpd.conf`; a snippet goes before the
//! rendered `match` rules (first match wins, so a snippet's rules take
//! precedence); a whole file replaces it, with every `listen on <if>` line's
//! interface replaced by the lab address. Debian's build runs as the users
//! `opensmtpd` and `opensmtpq`; `smtpctl` must be set-gid `opensmtpq` (the
//! package's postinst would do both).
//!
//! Profile mapping:
//! | profile | smtpd.conf |
//! |---|---|
//! | `hostname` | `listen on ... hostname`, `action relay helo` |
//! | `local_host_names` | `table localnames`, delivered locally (no mailboxes: unknown users are refused) |
//! | `relay_domains` names | `table relaydomains` (`name`, `*.name` unless `relay_hosts_only`) |
//! | `relay_domains` IP prefixes | `table relaynets` (with 127.0.0.0/8), `match from src <relaynets> for any` |
//! | `max_hop_count` | not configurable: OpenSMTPD refuses mail past 100 `Received:` headers (compiled in) |
//! | `smtp_timeout` | not configurable per command in 6.8 (fixed internal timeouts) |
//! | `max_message_size` | `smtp max-message-size` |
//! | `promiscuous_relay` | `match from any for any action "relay"` |
//! | `smart_host`, mailertable `.` | `relay host smtp://<host>` on the relay action, `[host]` only (no MX lookup) |
//!
//! | `access` | builtin filters chained on the listener, most specific key first: `Connect:` by CIDR (longer keys cut out) and `From:` at MAIL (`reject "<reply>"`, OK/RELAY/SKIP → `bypass`), `To:` at RCPT under `blacklist_recipients`; `Connect:`/`To:` RELAY → relay rules |
//! | `delay_checks` | the client and sender filters at RCPT, after a FRIEND `bypass` / before a HATER guard |
//! | mailertable `[host]` entries | an `action "mtN" relay host` each, `from any` only for domains we accept, else from the relay networks; `error:` → RCPT filters |
//! | (relay tricks) | `%`, `!`, a second `@` in the local part from a client outside `<relaynets>`: `match ... reject` (`550 Invalid recipient`) unless the one hidden host is ours (a single `user%host` or `host!user` hop) |
//! | `relay_entire_domain` | not rendered: the `from rdns` half (clients named in `$m` relay) did not match in the lab |
//! | `privacy_flags` | `noreceipts` → `no-dsn`; VRFY/EXPN/ETRN/VERB are not implemented; HELO required |
//! | `smtp_login_msg` | not configurable: the greeting stays `ESMTP OpenSMTPD` (wording only) |
//!
//! Not rendered: `DISCARD` and `Connect:` host-name entries, virtual tables,
//! aliases, masquerading, size-limited recipient counts and retry intervals
//! (compiled-in scheduler backoff).

use super::{
    arrived_now, events, postmaster_aliases, relay_lists, sh, Flavour, FlavourError, MtaGroup, MtaUser, NativeConfig,
    QueueSnapshot, RelayEvent, RelayLists,
};
use super::policy::{access, access_for, mailertable, spam_keys, Act, Key, MtKey, MtRoute, Tag};
use crate::netns::RootFile;
use crate::profile::DelayChecks;
use crate::{LabNetwork, QueuedMessage, RelayProfile};
use std::path::Path;

/// The OpenSMTPD flavour.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenSmtpd;

fn quoted(list: &[String]) -> String {
    list.iter().map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(", ")
}

/// A literal for a POSIX extended regex, letters matched in either case and
/// without backslashes (`.` → `[.]`).
fn re_lit(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphabetic() {
            out.push_str(&format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase()));
        } else if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '@' {
            out.push(c);
        } else {
            out.push('[');
            out.push(c);
            out.push(']');
        }
    }
    out
}

/// An access key as an anchored regex over `user@domain` (`ours`: the
/// domains a `user@` key stands for, `None` for any domain).
fn key_re(k: &Key, ours: Option<&[String]>) -> String {
    match k {
        Key::Domain(d) => format!("^.*@(.*[.])?{}$", re_lit(d)),
        Key::Address(a) => format!("^{}$", re_lit(a)),
        Key::User(u) => match ours {
            Some(ds) => format!("^{}@({})$", re_lit(u), ds.iter().map(|d| re_lit(d)).collect::<Vec<_>>().join("|")),
            None => format!("^{}@.*$", re_lit(u)),
        },
        Key::Ip(_) => String::new(),
    }
}

/// Access rows most specific first: addresses, domains with more labels
/// first, then `user@` keys (Sendmail's lookup order).
fn by_specificity(mut rows: Vec<(Key, Act)>) -> Vec<(Key, Act)> {
    rows.sort_by_key(|(k, _)| match k {
        Key::Address(_) => (0, 0),
        Key::Ip(o) => (1, usize::MAX - o.len()),
        Key::Domain(d) => (1, usize::MAX - d.split('.').count()),
        Key::User(_) => (2, 0),
    });
    rows
}

/// `(address, prefix length)` of an octet-aligned prefix.
fn prefix_of(o: &[u8]) -> (u32, u32) {
    let mut a = [0u8; 4];
    a[..o.len()].copy_from_slice(o);
    (u32::from_be_bytes(a), (o.len() * 8) as u32)
}

fn contains((a, n): (u32, u32), (b, m): (u32, u32)) -> bool {
    let mask = if n == 0 { 0 } else { u32::MAX << (32 - n) };
    m >= n && (a & mask) == (b & mask)
}

/// `block` without the `holes`, as CIDR blocks.
fn subtract(block: (u32, u32), holes: &[(u32, u32)]) -> Vec<(u32, u32)> {
    if holes.iter().any(|h| contains(*h, block)) {
        return Vec::new();
    }
    if !holes.iter().any(|h| contains(block, *h)) {
        return vec![block];
    }
    let (a, n) = block;
    let half = 1u32 << (31 - n);
    let mut out = subtract((a, n + 1), holes);
    out.extend(subtract((a | half, n + 1), holes));
    out
}

fn cidr((a, n): (u32, u32)) -> String {
    let o = a.to_be_bytes();
    format!("{}.{}.{}.{}/{n}", o[0], o[1], o[2], o[3])
}

/// `code dsn text` as a filter's reply.
fn reply_text(code: u16, dsn: &str, text: &str) -> String {
    format!("{code} {dsn} {}", text.replace('"', "'"))
}

/// What the rendering adds for the access map, the mailertable's per-domain
/// entries and `delay_checks`: tables, builtin filters (chained in order on
/// the listener) and `match` rules placed before the general ones.
#[derive(Debug, Default)]
struct Policy {
    /// `table` lines.
    tables: String,
    /// `filter` lines, in chain order.
    filters: Vec<(String, String)>,
    /// `action` lines.
    actions: String,
    /// `match` lines before the general rules.
    rules: String,
    /// Extra clients that may relay (`Connect:` RELAY), CIDR.
    relay_from: Vec<String>,
    /// Files of regex tables: (path, lines).
    files: Vec<(String, String)>,
}

impl Policy {
    fn re_table(&mut self, name: &str, res: &[String]) -> String {
        let path = format!("/etc/smtpd/{name}");
        self.tables.push_str(&format!("table {name} file:{path}\n"));
        self.files.push((path, res.iter().map(|r| format!("{r}\n")).collect()));
        name.to_string()
    }

    fn filter(&mut self, phase: &str, cond: &str, decision: &str) {
        let name = format!("f{}", self.filters.len() + 1);
        let line = format!("filter \"{name}\" phase {phase} match {cond} {decision}\n");
        self.filters.push((name, line));
    }

    /// Client checks (`Connect:` by address) in `phase`.
    fn client_checks(&mut self, phase: &str, rows: &[(Key, Act)]) {
        let ips: Vec<((u32, u32), &Act)> =
            rows.iter().filter_map(|(k, a)| if let Key::Ip(o) = k { Some((prefix_of(o), a)) } else { None }).collect();
        let mut by_reply: Vec<(String, Vec<String>)> = Vec::new();
        for (p, a) in &ips {
            let reply = match a {
                Act::Reject => "550 5.7.1 Access denied".to_string(),
                Act::Error(c, d, t) => reply_text(*c, d, t),
                _ => continue,
            };
            // a longer key inside decides for its addresses (longest match)
            let holes: Vec<(u32, u32)> = ips.iter().map(|(q, _)| *q).filter(|q| q.1 > p.1 && contains(*p, *q)).collect();
            let blocks: Vec<String> = subtract(*p, &holes).into_iter().map(cidr).collect();
            match by_reply.iter_mut().find(|(r, _)| *r == reply) {
                Some((_, b)) => b.extend(blocks),
                None => by_reply.push((reply, blocks)),
            }
        }
        for (reply, blocks) in by_reply {
            if blocks.is_empty() {
                continue;
            }
            let name = format!("clients{}", self.filters.len() + 1);
            self.tables.push_str(&format!("table {name} {{ {} }}\n", blocks.join(", ")));
            self.filter(phase, &format!("src <{name}>"), &format!("reject \"{reply}\""));
        }
    }

    /// Sender checks (`From:`) in `phase`, most specific key first; OK/RELAY
    /// entries end the checks of that phase (`bypass`).
    fn sender_checks(&mut self, phase: &str, rows: &[(Key, Act)]) {
        for (k, a) in by_specificity(rows.to_vec()) {
            let decision = match &a {
                Act::Reject => "reject \"550 5.7.1 Access denied\"".to_string(),
                Act::Error(c, d, t) => format!("reject \"{}\"", reply_text(*c, d, t)),
                Act::Ok | Act::Relay | Act::Skip => "bypass".to_string(),
                _ => continue,
            };
            let t = self.re_table(&format!("senders{}", self.filters.len() + 1), &[key_re(&k, None)]);
            self.filter(phase, &format!("mail-from regex <{t}>"), &decision);
        }
    }
}

/// The access map, the mailertable's per-domain entries and `delay_checks`
/// rendered; `accepted` are the domains anyone may send to (local names and
/// relay domains with their `*.` patterns), `ip` the relay's address.
fn policy(profile: &RelayProfile, accepted: &[String], ours: &[String], host: &str, ip: &str) -> Policy {
    let mut p = Policy::default();
    let entries = access(profile);
    let delayed = profile.delay_checks != DelayChecks::Off;
    let client = access_for(&entries, Tag::Connect);
    let sender = access_for(&entries, Tag::From);
    for (k, a) in &client {
        if let (Key::Ip(o), Act::Relay) = (k, a) {
            p.relay_from.push(super::prefix_cidr(o));
        }
    }
    if !delayed {
        p.client_checks("mail-from", &client);
        p.sender_checks("mail-from", &sender);
    }
    // routing refusals: the mailertable's error: entries, at RCPT
    let mt = mailertable(profile);
    for (k, r) in &mt {
        let MtRoute::Error(e) = r else { continue };
        let re = match k {
            MtKey::Exact(d) => format!("^.*@{}$", re_lit(d)),
            MtKey::Below(d) => format!("^.*@.+[.]{}$", re_lit(d)),
            MtKey::Default => continue,
        };
        let t = p.re_table(&format!("routes{}", p.filters.len() + 1), &[re]);
        p.filter("rcpt-to", &format!("rcpt-to regex <{t}>"), &format!("reject \"{}\"", reply_text(e.code, &e.dsn, &e.text)));
    }
    // To: entries: refusals under blacklist_recipients; RELAY opens relaying to them
    let rcpt = by_specificity(access_for(&entries, Tag::To));
    let mut to_relay = Vec::new();
    for (k, a) in &rcpt {
        if *a == Act::Relay {
            to_relay.push(key_re(k, Some(ours)));
        }
        let decision = match a {
            Act::Reject if profile.blacklist_recipients => "reject \"550 5.2.1 Mailbox disabled for this recipient\"".to_string(),
            Act::Error(c, d, t) if profile.blacklist_recipients => format!("reject \"{}\"", reply_text(*c, d, t)),
            Act::Ok | Act::Relay | Act::Skip if profile.blacklist_recipients => "bypass".to_string(),
            _ => continue,
        };
        let t = p.re_table(&format!("rcpts{}", p.filters.len() + 1), &[key_re(k, Some(ours))]);
        p.filter("rcpt-to", &format!("rcpt-to regex <{t}>"), &decision);
    }
    if delayed {
        let spam: Vec<String> = spam_keys(profile).iter().map(|k| key_re(k, Some(ours))).collect();
        let apply = match profile.delay_checks {
            DelayChecks::Friend if !spam.is_empty() => {
                let t = p.re_table("friends", &spam);
                p.filter("rcpt-to", &format!("rcpt-to regex <{t}>"), "bypass");
                true
            }
            DelayChecks::Hater if spam.is_empty() => false,
            DelayChecks::Hater => {
                let t = p.re_table("haters", &spam);
                p.filter("rcpt-to", &format!("!rcpt-to regex <{t}>"), "bypass");
                true
            }
            _ => true,
        };
        if apply {
            p.client_checks("rcpt-to", &client);
            p.sender_checks("rcpt-to", &sender);
        }
    }
    // the mailertable's SMTP entries: a relay action each; anyone may send to
    // a domain we accept mail for, only the relay clients elsewhere
    for (i, (k, r)) in mt.iter().enumerate() {
        let MtRoute::Smtp { host: to, .. } = r else { continue };
        let dom = match k {
            MtKey::Exact(d) => d.clone(),
            MtKey::Below(d) => format!("*.{d}"),
            MtKey::Default => continue,
        };
        let name = format!("mt{}", i + 1);
        p.tables.push_str(&format!("table {name} {{ \"{dom}\" }}\n"));
        p.actions.push_str(&format!("action \"{name}\" relay host smtp://{to} helo {host} src {ip}\n"));
        let ok = accepted.iter().any(|a| {
            a == &dom || a.strip_prefix("*.").is_some_and(|base| dom.ends_with(&format!(".{base}")))
        });
        if ok {
            p.rules.push_str(&format!("match from any for domain <{name}> action \"{name}\"\n"));
        } else {
            p.rules.push_str(&format!("match from src <relaynets> for domain <{name}> action \"{name}\"\n"));
            p.rules.push_str(&format!("match from socket for domain <{name}> action \"{name}\"\n"));
        }
    }
    if !to_relay.is_empty() {
        p.re_table("torelay", &to_relay);
    }
    p
}

/// The rendered `smtpd.conf`, `snippet` before the rules.
pub fn render_conf(profile: &RelayProfile, net: &LabNetwork, snippet: &str) -> Result<String, FlavourError> {
    Ok(render_all(profile, net, snippet)?.0)
}

/// The rendered `smtpd.conf` and the regex table files it names.
fn render_all(profile: &RelayProfile, net: &LabNetwork, snippet: &str) -> Result<(String, Vec<RootFile>), FlavourError> {
    let RelayLists { mut relay_to, relay_from, local_names } = relay_lists(profile, "*.")?;
    let host = profile.hostname.trim_end_matches('.');
    let ip = net.virtual_ip;
    let mut local = vec![host.to_string(), "localhost".to_string()];
    local.extend(local_names);
    // relay_entire_domain: the hostname's domain and below are ours to relay to
    let entire = if profile.relay_entire_domain { host.split_once('.').map(|(_, m)| m.to_ascii_lowercase()) } else { None };
    if let Some(m) = &entire {
        for d in [m.clone(), format!("*.{m}")] {
            if !relay_to.contains(&d) {
                relay_to.push(d);
            }
        }
    }
    let mut accepted = local.clone();
    accepted.extend(relay_to.iter().cloned());
    let ours: Vec<String> = local.iter().map(|d| d.to_ascii_lowercase()).collect();
    let pol = policy(profile, &accepted, &ours, host, &ip.to_string());
    let mut relay_from = relay_from;
    relay_from.extend(pol.relay_from.iter().cloned());
    let mut s = String::new();
    s.push_str("# relaylab: rendered from the relay profile\n");
    s.push_str("table aliases file:/etc/aliases\n");
    s.push_str(&format!("table localnames {{ {} }}\n", quoted(&local)));
    if !relay_to.is_empty() {
        s.push_str(&format!("table relaydomains {{ {} }}\n", quoted(&relay_to)));
    }
    s.push_str(&format!("table relaynets {{ {} }}\n", relay_from.join(", ")));
    s.push_str(&pol.tables);
    let mut files: Vec<RootFile> = pol.files.iter().map(|(p, c)| RootFile::new(p.clone(), c.clone())).collect();
    if !profile.promiscuous_relay {
        s.push_str("table tricks file:/etc/smtpd/tricks\ntable hiddenours file:/etc/smtpd/hiddenours\n");
    }
    if let Some(m) = &entire {
        s.push_str(&format!("table entireclients {{ \"{m}\", \"*.{m}\" }}\n"));
    }
    // the access checks: builtin filters chained on the listener, in order
    let mut listen = format!("listen on {ip} port 25 hostname {host}");
    if profile.privacy().no_receipts {
        listen.push_str(" no-dsn");
    }
    if !pol.filters.is_empty() {
        for (_, f) in &pol.filters {
            s.push_str(f);
        }
        let names: Vec<String> = pol.filters.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        s.push_str(&format!("filter \"relaylab\" chain {{ {} }}\n", names.join(", ")));
        listen.push_str(" filter \"relaylab\"");
    }
    s.push_str(&listen);
    s.push('\n');
    if profile.max_message_size > 0 {
        s.push_str(&format!("smtp max-message-size {}\n", profile.max_message_size));
    }
    // smart_host (or the mailertable's `.`), A record only: `relay host` does no MX lookup
    let via = match super::policy::default_route(profile) {
        Some((h, true)) => format!(" host smtp://{h}"),
        _ => String::new(),
    };
    s.push_str(&format!("action \"local\" mbox alias <aliases>\naction \"relay\" relay{via} helo {host} src {ip}\n"));
    s.push_str(&pol.actions);
    if !snippet.is_empty() {
        s.push_str("# relaylab: the scenario's snippet\n");
        s.push_str(snippet);
        s.push('\n');
    }
    // relay tricks (Sendmail undoes them and checks the hidden destination):
    // `user%host@ours`, `host!user@ours` (and an unquoted second `@`) from a
    // client that may not relay are refused unless the one hidden host is ours.
    // A `match ... reject` rule, not a builtin filter: 6.8's filters take one
    // condition each (no "outsider and trick") and an access `bypass` ends the
    // filter chain, while the rules are matched after every filter.
    let tricks = !profile.promiscuous_relay;
    if tricks {
        let mut names: Vec<String> = Vec::new();
        for d in local.iter().chain(relay_to.iter()) {
            let d = d.to_ascii_lowercase();
            let re = match d.strip_prefix("*.") {
                Some(base) => format!("[^%!@]+[.]{}", re_lit(base)),
                None => re_lit(&d),
            };
            if !names.contains(&re) {
                names.push(re);
            }
        }
        let o = names.join("|");
        // the same routes as below, for a local part hiding one host of ours
        let same = |rule: &str| rule.replacen(" action ", " rcpt-to regex <hiddenours> action ", 1);
        s.push_str(&same("match from any for domain <localnames> action \"local\"\n"));
        for r in pol.rules.lines().filter(|r| r.starts_with("match from any for domain <")) {
            s.push_str(&same(r));
            s.push('\n');
        }
        if !relay_to.is_empty() {
            s.push_str(&same("match from any for domain <relaydomains> action \"relay\"\n"));
        }
        s.push_str("match !from src <relaynets> for rcpt-to regex <tricks> reject\n");
        files.push(RootFile::new("/etc/smtpd/tricks", "[%!]\n@.*@\n"));
        files.push(RootFile::new(
            "/etc/smtpd/hiddenours",
            format!("^[^%!@]+%({o})@[^@]+$\n^({o})![^%!@]+@[^@]+$\n"),
        ));
    }
    s.push_str("match from any for domain <localnames> action \"local\"\n");
    s.push_str(&pol.rules);
    if !relay_to.is_empty() {
        s.push_str("match from any for domain <relaydomains> action \"relay\"\n");
    }
    if pol.files.iter().any(|(f, _)| f.ends_with("/torelay")) {
        s.push_str("match from any for rcpt-to regex <torelay> action \"relay\"\n");
    }
    s.push_str("match from src <relaynets> for any action \"relay\"\n");
    if entire.is_some() {
        // clients named in our domain (the PTR name, as the builtin relay trusts it)
        s.push_str("match from rdns <entireclients> for any action \"relay\"\n");
    }
    // the relay's own bounces come in through its local socket; `from local`
    // would match every client here (all lab addresses are on lo)
    s.push_str("match from socket for any action \"relay\"\n");
    if profile.promiscuous_relay {
        s.push_str("match from any for any action \"relay\"\n");
    }
    Ok((s, files))
}

/// A user's whole `smtpd.conf` placed in the lab: each `listen on <if>` listens
/// on the lab address instead, and `from local` becomes "from loopback or the
/// relay's own address" (every lab address is on the namespace's `lo`, so
/// OpenSMTPD would take all lab clients for local ones).
pub fn place_whole(conf: &str, net: &LabNetwork) -> String {
    let mut out = String::from("# relaylab: the scenario's smtpd.conf, listen addresses set to the lab's\n");
    // `from local` means "from an address of this host"; every lab address is on
    // the lab namespace's lo, so it is narrowed to loopback and the relay's own address
    out.push_str(&format!("table relaylab_local {{ 127.0.0.0/8, {} }}\n", net.virtual_ip));
    let conf = conf.replace("from local ", "from src <relaylab_local> ");
    for line in conf.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("listen on ") {
            let mut words = rest.split_whitespace();
            let _interface = words.next();
            let tail: Vec<&str> = words.collect();
            out.push_str(&format!("listen on {} {}\n", net.virtual_ip, tail.join(" ")));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

const PREPARE: &str = "set -e
mkdir -p /var/empty /var/spool/smtpd
chmod 711 /var/spool/smtpd
chgrp opensmtpq /usr/sbin/smtpctl
chmod 2555 /usr/sbin/smtpctl
smtpd -n -f /etc/smtpd.conf
";

impl Flavour for OpenSmtpd {
    fn name(&self) -> &'static str {
        "opensmtpd"
    }

    const RENDERED_KEYS: &'static [&'static str] = &[
        "promiscuous_relay",
        "smart_host",
        "mailertable",
        "max_message_size",
        "access",
        "blacklist_recipients",
        "delay_checks",
        // not relay_entire_domain: `match from rdns <table>` did not match a
        // client named in the domain in the lab, so its "clients may relay" half
        // is not carried
        "privacy_flags",
        "smtp_login_msg",
    ];

    fn value_gaps(&self, profile: &RelayProfile) -> Vec<(&'static str, String)> {
        use super::policy::{access_gaps, default_route, mailertable_gaps, privacy_gaps, smart_host};
        let mut gaps = Vec::new();
        gaps.extend(access_gaps(profile, false, true, true).map(|w| ("access", w)));
        if access(profile).iter().any(|e| e.act == Act::Discard) {
            gaps.push(("access", "DISCARD entries: OpenSMTPD cannot accept and drop a message".into()));
        }
        gaps.extend(mailertable_gaps(profile, false).map(|w| ("mailertable", w)));
        if mailertable(profile).iter().any(|(k, r)| *k != MtKey::Default && matches!(r, MtRoute::Smtp { bracketed: false, .. })) {
            gaps.push(("mailertable", "a host without [brackets]: `relay host` does no MX lookup".into()));
        }
        if let Some((_, false)) = default_route(profile) {
            let key = if smart_host(profile).is_some() && mailertable(profile).is_empty() { "smart_host" } else { "mailertable" };
            gaps.push((key, "a host without [brackets]: `relay host` does no MX lookup".into()));
        }
        gaps.extend(privacy_gaps(profile).map(|w| ("privacy_flags", w)));
        gaps
    }

    fn users(&self) -> (Vec<MtaUser>, Vec<MtaGroup>) {
        (
            vec![("opensmtpd", 60131, 60131, "/var/empty"), ("opensmtpq", 60132, 60132, "/var/empty")],
            vec![("opensmtpd", 60131, ""), ("opensmtpq", 60132, "")],
        )
    }

    fn render(
        &self,
        _tree: &Path,
        profile: &RelayProfile,
        net: &LabNetwork,
        native: &NativeConfig,
    ) -> Result<Vec<RootFile>, FlavourError> {
        let (conf, tables) = match native {
            NativeConfig::Rendered => render_all(profile, net, "")?,
            NativeConfig::Snippet(s) => render_all(profile, net, s)?,
            NativeConfig::Whole(w) => (place_whole(w, net), Vec::new()),
        };
        let mut files = vec![RootFile::new("/etc/smtpd.conf", conf), postmaster_aliases()];
        files.extend(tables);
        Ok(files)
    }

    fn prepare(&self) -> Vec<Vec<String>> {
        vec![sh(PREPARE)]
    }

    fn start(&self) -> Vec<String> {
        vec!["smtpd".into(), "-f".into(), "/etc/smtpd.conf".into()]
    }

    fn stop(&self) -> Vec<String> {
        sh("kill $(cat /run/smtpd.pid)")
    }

    fn queue_run(&self) -> Vec<String> {
        vec!["smtpctl".into(), "schedule".into(), "all".into()]
    }

    fn mailq(&self) -> Vec<String> {
        vec!["smtpctl".into(), "show".into(), "queue".into()]
    }

    fn parse_mailq(&self, text: &str) -> QueueSnapshot {
        parse_show_queue(text)
    }

    fn events(&self, line: &str) -> Vec<RelayEvent> {
        events::opensmtpd(line)
    }
}

/// Parse `smtpctl show queue`: one envelope a line,
/// `evpid|family|type|flags|from|rcpt|dest|ctime|lasttry|lastbounce|retries|state|...|error`.
/// Envelopes of one message (the first 8 hex digits of the evpid) are grouped.
pub fn parse_show_queue(text: &str) -> QueueSnapshot {
    let mut snap = QueueSnapshot::default();
    let mut busy_ids: Vec<String> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 12 {
            continue;
        }
        let msgid = f[0].get(..8).unwrap_or(f[0]).to_string();
        let error = f.last().map(|e| e.trim()).filter(|e| !e.is_empty()).map(str::to_string);
        let tried = f[10].trim() != "0";
        if (f[11] == "inflight" || !tried) && !busy_ids.contains(&msgid) {
            busy_ids.push(msgid.clone());
        }
        match snap.messages.iter_mut().find(|m| m.qid == msgid) {
            Some(m) => {
                m.recipients.push(f[5].to_string());
                if error.is_some() {
                    m.last_error = error;
                }
            }
            None => snap.messages.push(QueuedMessage {
                qid: msgid,
                sender: if f[4].is_empty() { "<>".into() } else { f[4].to_string() },
                recipients: vec![f[5].to_string()],
                size: 0,
                last_error: if tried { error } else { None },
                arrived: arrived_now(),
            }),
        }
    }
    snap.busy = busy_ids.len();
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_queue_lines() {
        let text = "9ca9182e9edd0834|inet4|mta||a@lying.com|john@sysiphus.com|john@sysiphus.com|1795261454|1795261454|0|2|pending|1597|Temporary failure in MX lookup\n\
1a2b3c4d00000001|inet4|mta||b@x.example|c@sysiphus.com|c@sysiphus.com|1795261454|0|0|0|pending|1|\n";
        let s = parse_show_queue(text);
        assert_eq!(s.messages.len(), 2);
        assert_eq!(s.messages[0].qid, "9ca9182e");
        assert_eq!(s.messages[0].last_error.as_deref(), Some("Temporary failure in MX lookup"));
        assert_eq!(s.busy, 1);
        assert!(parse_show_queue("").messages.is_empty());
    }

    #[test]
    fn whole_conf_listens_in_the_lab() {
        let net = super::super::netns_lab_network("192.0.2.25".parse().unwrap(), "192.0.2.53".parse().unwrap());
        let c = place_whole("listen on eth0 tls\naction \"r\" relay\nmatch from local for any action \"r\"\n", &net);
        assert!(c.contains("listen on 192.0.2.25 tls\n"), "{c}");
        assert!(c.contains("match from src <relaylab_local> for any"), "{c}");
        assert!(c.contains("table relaylab_local { 127.0.0.0/8, 192.0.2.25 }"), "{c}");
    }

    #[test]
    fn access_mailertable_and_delay_checks_are_rendered() {
        let net = super::super::netns_lab_network("192.0.2.25".parse().unwrap(), "192.0.2.53".parse().unwrap());
        let p: RelayProfile = serde_yaml::from_str(
            "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com, 10.1.1]\nblacklist_recipients: true\n\
             privacy_flags: noreceipts\nmailertable: |\n  routed.example smtp:[internal.sysiphus.com]\n  \
             eng.sysiphus.com smtp:[internal.sysiphus.com]\n  old.example error:5.1.6:550 moved\naccess: |\n  \
             Connect:63.99.230 REJECT\n  Connect:63.99.230.9 OK\n  203.0.113.77 RELAY\n  From:biz ERROR:550 Move out of biz\n  \
             From:friend@some.biz RELAY\n  To:old@sysiphus.com REJECT\n  To:friend.domain RELAY\n",
        )
        .unwrap();
        let (c, files) = render_all(&p, &net, "").unwrap();
        eprintln!("{c}");
        for f in &files {
            eprintln!("{}: {}", f.path, String::from_utf8_lossy(&f.contents));
        }
        assert!(c.contains("no-dsn filter \"relaylab\""), "{c}");
        assert!(c.contains("63.99.230.0/29, 63.99.230.8/32, 63.99.230.10/31"), "{c}");
        assert!(c.contains("table relaynets { 127.0.0.0/8, 10.1.1.0/24, 203.0.113.77/32 }"), "{c}");
        // the routed outside domain only for the relay clients; ours for anyone
        assert!(c.contains("match from src <relaynets> for domain <mt1> action \"mt1\""), "{c}");
        assert!(c.contains("match from any for domain <mt2> action \"mt2\""), "{c}");
        assert!(!c.contains("match from any for domain <mt1>"), "{c}");
        let fi = c.find("phase mail-from match mail-from regex <senders2> bypass").expect("the longer key first");
        assert!(fi < c.find("reject \"550 5.0.0 Move out of biz\"").unwrap(), "{c}");
        assert!(unrendered_key_ok(&p));
        // relay tricks: refused for outsiders, after routes for a hidden host of ours
        let hid = c.find("match from any for domain <relaydomains> rcpt-to regex <hiddenours> action \"relay\"").expect("hidden ours");
        let rej = c.find("match !from src <relaynets> for rcpt-to regex <tricks> reject").expect("tricks refused");
        assert!(hid < rej && rej < c.find("match from any for domain <localnames> action").unwrap(), "{c}");
        assert!(c.contains("match from any for domain <mt2> rcpt-to regex <hiddenours> action \"mt2\""), "{c}");
        let h = files.iter().find(|f| f.path == "/etc/smtpd/hiddenours").unwrap();
        let h = String::from_utf8_lossy(&h.contents);
        assert!(h.contains("|[^%!@]+[.][sS][yY]"), "{h}");
    }

    fn unrendered_key_ok(p: &RelayProfile) -> bool {
        ["access", "mailertable", "blacklist_recipients", "privacy_flags"]
            .iter()
            .all(|k| super::super::unrendered_key("opensmtpd", p, k).is_none())
    }
}
