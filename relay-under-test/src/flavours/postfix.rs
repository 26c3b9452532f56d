//! Postfix (Debian 3.7) under test.
//!
//! Configuration: Debian's packaged `main.cf` (`/usr/share/postfix/main.cf.debian`,
//! which keeps the compiled-in directories right) followed by the rendered
//! profile, then the scenario's snippet (a later setting wins in `main.cf`),
//! then the lab block (listen address, no log file). A whole `main.cf` from
//! the scenario replaces the first three; the lab block is still appended,
//! and when the file sets no `mynetworks`, it gets `127.0.0.0/8` and the
//! relay's own address: Postfix's default (`mynetworks_style`) would take
//! every lab address (all on the namespace's `lo`) for its own network.
//! `master.cf` is Debian's with every service's chroot column set to `n`
//! (a chrooted smtp client would not read the root's resolv.conf).
//!
//! Profile mapping:
//! | profile | main.cf |
//! |---|---|
//! | `hostname` | `myhostname` (also `myorigin`) |
//! | `local_host_names` | `mydestination = $myhostname, localhost, ...` |
//! | `relay_domains` names | `relay_domains` (each also as `.name` unless `relay_hosts_only`: Postfix 3 matches subdomains only when told) |
//! | `relay_domains` IP prefixes | `mynetworks` (with 127.0.0.0/8, as Sendmail relays for localhost) |
//! | `max_hop_count` | `hopcount_limit` |
//! | `smtp_timeout` | `smtp_{helo,mail,rcpt,data_init,data_done}_timeout` |
//! | `access` | texthash maps: `Connect:` and `From:` in `smtpd_sender_restrictions` (checked at MAIL, `smtpd_delay_reject = no`; OK/SKIP → `DUNNO` so a longer key shadows a shorter one); `To:` RELAY and `Connect:` RELAY in `smtpd_relay_restrictions` |
//! | `blacklist_recipients` | `To:` refusals in the recipient map, before the relay decision |
//! | `privacy_flags` | `disable_vrfy_command`, `smtpd_etrn_restrictions = reject`, `smtpd_discard_ehlo_keywords` (etrn, dsn), `smtpd_helo_required` (no EXPN/VERB in Postfix; `authwarnings` without `needmailhelo` is a gap: no X-Authentication-Warning) |
//! | `delay_checks`, `Spam:` entries | `smtpd_delay_reject = yes`; client and sender checks in `smtpd_recipient_restrictions` (after `smtpd_relay_restrictions`): `friend` behind a FRIEND → `OK` recipient map, `hater` in a restriction class that a HATER recipient map names |
//! | `accept_unresolvable_domains`, `accept_unqualified_senders` | without them `reject_unknown_sender_domain`, `reject_non_fqdn_sender/recipient` (codes 553) |
//! | `promiscuous_relay`, `relay_entire_domain` | every address in `mynetworks`; `$m` in `relay_domains` and the relay-client map |
//! | `mailertable`, `smart_host` | regexp `transport_maps`; `error:` entries (and virtusertable ones) in a regexp `check_recipient_access` |
//! | `virtusertable`, `virtuser_domains` | regexp `virtual_alias_maps`; the domains in `relay_domains` |
//! | `aliases`, `include_files` | texthash `alias_maps` |
//! | masquerading | regexp `sender_/recipient_canonical_maps` on our names, `local_header_rewrite_clients = static:all` |
//! | `smtp_login_msg` | `smtpd_banner` (without `$b`) |
//! | `max_message_size`, `max_rcpts_per_message` | `message_size_limit`, `smtpd_recipient_limit` |
//! | `queue_interval`, `queuewarn`, `queuereturn` | `queue_run_delay`/`maximal_backoff_time` (`minimal_backoff_time = 1s`), `delay_warning_time`, `maximal_/bounce_queue_lifetime` |

use super::policy::{self, access_for, re_domain, Act, AliasTarget, MtKey, MtRoute, Tag};
use super::{
    events, relay_lists, timeout_secs, Flavour, FlavourError, ListingReader, MtaGroup, MtaUser, NativeConfig,
    QueueSnapshot, RelayEvent,
};
use crate::netns::RootFile;
use crate::profile::DelayChecks;
use crate::{LabNetwork, RelayProfile};
use std::path::Path;

/// The Postfix flavour.
#[derive(Debug, Default, Clone, Copy)]
pub struct Postfix;

/// `master.cf` with column 5 (chroot) set to `n` on every service line.
pub fn unchroot_master_cf(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !line.starts_with(['#', ' ', '\t']) && fields.len() >= 8 && fields[4] != "n" {
            let mut f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
            f[4] = "n".into();
            let (head, tail) = f.split_at(8);
            out.push_str(&format!(
                "{:<10} {:<5} {:<7} {:<7} {:<7} {:<7} {:<7} {}",
                head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]
            ));
            for t in tail {
                out.push(' ');
                out.push_str(t);
            }
            out.push('\n');
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Join `main.cf` texts; a parameter set in a later text (or later in the
/// same one) removes the earlier setting, so Postfix sees each once (it would
/// use the last one anyway, with a warning on every command).
pub fn merge_main_cf(parts: &[&str]) -> String {
    // entries: (parameter name or None for comments/blank lines, text with continuations)
    let mut entries: Vec<(Option<String>, String)> = Vec::new();
    for part in parts {
        for line in part.lines() {
            let continuation = line.starts_with([' ', '\t']) && !line.trim().is_empty();
            if continuation {
                if let Some((Some(_), text)) = entries.last_mut() {
                    text.push('\n');
                    text.push_str(line);
                    continue;
                }
            }
            let t = line.trim_start();
            let name = (!t.starts_with('#'))
                .then(|| t.split_once('=').map(|(n, _)| n.trim().to_string()))
                .flatten()
                .filter(|n| !n.is_empty() && !n.contains(char::is_whitespace));
            if let Some(n) = &name {
                entries.retain(|(e, _)| e.as_deref() != Some(n.as_str()));
            }
            entries.push((name, line.to_string()));
        }
    }
    let mut out = String::new();
    for (_, text) in entries {
        out.push_str(&text);
        out.push('\n');
    }
    out
}

/// True when a `main.cf` text sets `name`.
pub fn sets_parameter(main_cf: &str, name: &str) -> bool {
    main_cf
        .lines()
        .any(|l| !l.starts_with([' ', '\t', '#']) && l.split_once('=').map(|(n, _)| n.trim() == name).unwrap_or(false))
}

/// A Postfix access-map result for a refusal `code dsn text`.
fn refusal(code: u16, dsn: &str, text: &str) -> String {
    format!("{code} {dsn} {text}")
}

/// One texthash line per key.
fn map_text(rows: &[(String, String)]) -> String {
    let mut t = String::from("# relaylab: rendered from the relay profile\n");
    for (k, v) in rows {
        t.push_str(&format!("{k}\t{v}\n"));
    }
    t
}

/// The access map for one check, each action as `action` turns it into a
/// Postfix result (`DUNNO` ends the search of shorter keys, as the more
/// specific Sendmail entry does).
fn access_map(entries: &[policy::AccessEntry], tag: Tag, action: impl Fn(&Act) -> String) -> Vec<(String, String)> {
    access_for(entries, tag).iter().map(|(k, a)| (k.text(), action(a))).collect()
}

/// The names this host is final destination for (`mydestination`).
fn local_names(profile: &RelayProfile) -> Vec<String> {
    let mut v = vec![profile.hostname.trim_end_matches('.').to_ascii_lowercase(), "localhost".into()];
    v.extend(profile.local_host_names.iter().map(|n| n.trim_end_matches('.').to_ascii_lowercase()));
    v
}

/// The rendered `main.cf` lines and the map files they name.
pub fn render_all(profile: &RelayProfile) -> Result<(String, Vec<RootFile>), FlavourError> {
    let mut lists = relay_lists(profile, ".")?;
    let host = profile.hostname.trim_end_matches('.');
    let mut dest = vec!["$myhostname".to_string(), "localhost".to_string()];
    dest.extend(lists.local_names.clone());
    let t = timeout_secs(profile);
    let mut files = Vec::new();
    let mut s = String::new();
    s.push_str("\n# --- relaylab: rendered from the relay profile ---\n");
    s.push_str(&format!("myhostname = {host}\nmyorigin = $myhostname\n"));
    s.push_str(&format!("mydestination = {}\n", dest.join(", ")));
    // virtual domains are ours for the relay check; unmatched addresses go on by MX
    for d in &profile.virtuser_domains {
        lists.relay_to.push(d.trim().trim_end_matches('.').to_ascii_lowercase());
    }
    let our_domain = profile.relay_entire_domain.then(|| profile.our_domain()).flatten();
    if let Some(m) = &our_domain {
        lists.relay_to.push(m.clone());
        lists.relay_to.push(format!(".{m}"));
    }
    s.push_str(&format!("relay_domains = {}\n", lists.relay_to.join(", ")));
    if profile.promiscuous_relay {
        // every client is a relay client; a bare `permit` before
        // reject_unauth_destination is refused by smtpd ("specify at least one
        // working instance of: reject_unauth_destination ...")
        lists.relay_from.extend(["0.0.0.0/0".to_string(), "[::]/0".to_string()]);
    }
    s.push_str(&format!("mynetworks = {}\n", lists.relay_from.join(", ")));
    s.push_str(&format!("hopcount_limit = {}\n", profile.max_hop_count));
    for p in [
        "smtp_helo_timeout",
        "smtp_mail_timeout",
        "smtp_rcpt_timeout",
        "smtp_data_init_timeout",
        "smtp_data_done_timeout",
    ] {
        s.push_str(&format!("{p} = {t}s\n"));
    }
    if let Some(b) = policy::banner(profile) {
        s.push_str(&format!("smtpd_banner = {}\n", b.replace('$', "$$")));
    }
    s.push_str(&privacy(profile));

    // --- access control: Sendmail checks the client and the sender at MAIL (a
    // refused client still gets its greeting and HELO), the recipient at RCPT
    // (under delay_checks they are made at RCPT, see below)
    let delay_reject = if profile.delay_checks.delayed() { "yes" } else { "no" };
    s.push_str(&format!("smtpd_delay_reject = {delay_reject}\naccess_map_reject_code = 550\n"));
    s.push_str("unknown_address_reject_code = 553\nunknown_address_tempfail_action = defer\n");
    s.push_str("non_fqdn_reject_code = 553\nrecipient_delimiter = +\n");
    // relay_domains names match exactly; their subdomains are listed as .name
    // (relay_hosts_only leaves them out)
    s.push_str(
        "parent_domain_matches_subdomains = debug_peer_list, fast_flush_domains, mynetworks, \
         permit_mbox_mail_if_configured, smtpd_access_maps\n",
    );
    let entries = policy::access(profile);
    let denied = || refusal(550, "5.7.1", "Access denied");
    let client = access_map(&entries, Tag::Connect, |a| match a {
        Act::Reject => denied(),
        Act::Error(c, d, t) => refusal(*c, d, t),
        Act::Discard => "DISCARD".into(),
        _ => "DUNNO".into(),
    });
    let sender = access_map(&entries, Tag::From, |a| match a {
        Act::Reject => denied(),
        Act::Error(c, d, t) => refusal(*c, d, t),
        Act::Discard => "DISCARD".into(),
        Act::Ok | Act::Relay => "OK".into(),
        _ => "DUNNO".into(),
    });
    let mut relay_clients = access_map(&entries, Tag::Connect, |a| {
        if *a == Act::Relay {
            "OK".into()
        } else {
            "DUNNO".into()
        }
    });
    if let Some(m) = &our_domain {
        if !relay_clients.iter().any(|(k, _)| k == m) {
            relay_clients.push((m.clone(), "OK".into()));
        }
    }
    let rcpt = access_map(&entries, Tag::To, |a| match a {
        Act::Relay => "OK".into(),
        Act::Reject if profile.blacklist_recipients => refusal(550, "5.2.1", "Mailbox disabled for this recipient"),
        Act::Error(c, d, t) if profile.blacklist_recipients => refusal(*c, d, t),
        Act::Discard if profile.blacklist_recipients => "DISCARD".into(),
        _ => "DUNNO".into(),
    });
    let mut sender_r = Vec::new();
    if !client.is_empty() {
        files.push(RootFile::new(CLIENT_MAP, map_text(&client)));
        sender_r.push(format!("check_client_access texthash:{CLIENT_MAP}"));
    }
    if !sender.is_empty() {
        files.push(RootFile::new(SENDER_MAP, map_text(&sender)));
        sender_r.push(format!("check_sender_access texthash:{SENDER_MAP}"));
    }
    if !profile.accept_unqualified_senders {
        sender_r.push("reject_non_fqdn_sender".into());
    }
    if !profile.accept_unresolvable_domains {
        sender_r.push("reject_unknown_sender_domain".into());
    }
    s.push_str("smtpd_client_restrictions =\nsmtpd_helo_restrictions =\n");
    // --- delay_checks: the client and sender checks move to RCPT, after the
    // relay decision (smtpd_relay_restrictions is evaluated before
    // smtpd_recipient_restrictions, and an OK here grants no relaying)
    let mut recipient_r = Vec::new();
    if profile.delay_checks.delayed() {
        s.push_str("smtpd_sender_restrictions =\n");
        if !sender_r.is_empty() {
            let spam: Vec<(String, String)> = policy::spam_keys(profile).iter().map(|k| (k.text(), String::new())).collect();
            match profile.delay_checks {
                DelayChecks::Friend => {
                    if !spam.is_empty() {
                        let rows: Vec<_> = spam.into_iter().map(|(k, _)| (k, "OK".to_string())).collect();
                        files.push(RootFile::new(SPAM_MAP, map_text(&rows)));
                        recipient_r.push(format!("check_recipient_access texthash:{SPAM_MAP}"));
                    }
                    recipient_r.extend(sender_r);
                }
                DelayChecks::Hater => {
                    if !spam.is_empty() {
                        let rows: Vec<_> = spam.into_iter().map(|(k, _)| (k, DELAYED_CLASS.to_string())).collect();
                        files.push(RootFile::new(SPAM_MAP, map_text(&rows)));
                        s.push_str(&format!(
                            "smtpd_restriction_classes = {DELAYED_CLASS}\n{DELAYED_CLASS} = {}\n",
                            sender_r.join(", ")
                        ));
                        recipient_r.push(format!("check_recipient_access texthash:{SPAM_MAP}"));
                    }
                }
                _ => recipient_r.extend(sender_r),
            }
        }
    } else {
        s.push_str(&format!("smtpd_sender_restrictions = {}\n", sender_r.join(", ")));
    }

    // --- the recipient: routing refusals, then To: entries, then the relay decision
    let mut relay_r = Vec::new();
    if !profile.accept_unqualified_senders {
        relay_r.push("reject_non_fqdn_recipient".to_string());
    }
    let checks = rcpt_checks(profile);
    if !checks.is_empty() {
        files.push(RootFile::new(RCPT_CHECKS, checks));
        relay_r.push(format!("check_recipient_access regexp:{RCPT_CHECKS}"));
    }
    if !rcpt.is_empty() {
        files.push(RootFile::new(RCPT_MAP, map_text(&rcpt)));
        relay_r.push(format!("check_recipient_access texthash:{RCPT_MAP}"));
    }
    relay_r.push("permit_mynetworks".into());
    if !relay_clients.is_empty() {
        files.push(RootFile::new(RELAY_CLIENTS, map_text(&relay_clients)));
        relay_r.push(format!("check_client_access texthash:{RELAY_CLIENTS}"));
    }
    relay_r.push("reject_unauth_destination".into());
    s.push_str(&format!("smtpd_relay_restrictions = {}\n", relay_r.join(", ")));
    s.push_str(&format!("smtpd_recipient_restrictions = {}\n", recipient_r.join(", ")));

    // --- routing: mailertable and smart_host as a regexp transport table
    let transport = transport_table(profile);
    if !transport.is_empty() {
        files.push(RootFile::new(TRANSPORT, transport));
        s.push_str(&format!("transport_maps = regexp:{TRANSPORT}\n"));
    }
    let virt = policy::virtusertable(profile);
    let mut vt = String::new();
    for (user, domain, target) in &virt {
        if let policy::VirtTarget::Address(a) = target {
            match user {
                Some(u) => vt.push_str(&format!("/^{}@{}$/\t{a}\n", regex_escape(u), re_domain(domain))),
                None => vt.push_str(&format!("/^(.*)@{}$/\t{}\n", re_domain(domain), a.replace("%1", "$1"))),
            }
        }
    }
    if !vt.is_empty() {
        files.push(RootFile::new(VIRTUAL, vt));
        s.push_str(&format!("virtual_alias_maps = regexp:{VIRTUAL}\n"));
    }

    // --- aliases (local names only, as Sendmail's)
    let mut al = String::new();
    for (name, targets) in policy::aliases(profile) {
        let t: Vec<String> = targets.iter().map(AliasTarget::text).collect();
        al.push_str(&format!("{name}\t{}\n", t.join(", ")));
    }
    files.push(RootFile::new(ALIASES, al));
    files.extend(policy::include_file_roots(profile));
    s.push_str(&format!("alias_maps = texthash:{ALIASES}\nalias_database =\n"));
    // no local mailboxes (the course's relay has none): local names answer User unknown
    s.push_str("local_recipient_maps = proxy:unix:passwd.byname $alias_maps\n");

    // --- masquerading, as canonical maps limited to our own names
    if let Some(masq) = &profile.masquerade_as {
        let names = local_names(profile).iter().map(|n| re_domain(n)).collect::<Vec<_>>().join("|");
        let mut m = String::new();
        for u in &profile.exposed_users {
            m.push_str(&format!("/^({})@({names})$/\t$1@$2\n", regex_escape(u)));
        }
        m.push_str(&format!("/^([^@]+)@({names})$/\t$1@{masq}\n"));
        files.push(RootFile::new(MASQUERADE, m));
        let env = profile.masquerade_envelope;
        s.push_str(&format!("sender_canonical_maps = regexp:{MASQUERADE}\n"));
        s.push_str(&format!(
            "sender_canonical_classes = header_sender{}\n",
            if env { ", envelope_sender" } else { "" }
        ));
        if profile.allmasquerade {
            s.push_str(&format!("recipient_canonical_maps = regexp:{MASQUERADE}\n"));
            s.push_str(&format!(
                "recipient_canonical_classes = header_recipient{}\n",
                if env { ", envelope_recipient" } else { "" }
            ));
        }
        // Sendmail rewrites the headers of every message, not only local ones
        s.push_str("local_header_rewrite_clients = static:all\n");
    }

    // --- limits
    if profile.max_message_size > 0 {
        s.push_str(&format!("message_size_limit = {}\n", profile.max_message_size));
        s.push_str(&format!("mailbox_size_limit = {}\n", profile.max_message_size.max(51200000)));
    }
    if profile.max_rcpts_per_message > 0 {
        s.push_str(&format!("smtpd_recipient_limit = {}\n", profile.max_rcpts_per_message));
    }

    // --- the queue: a deferred message is retried at each queue run, as Sendmail's
    // -q; a short minimal backoff also keeps qmgr from suspending a destination that
    // failed once ("delivery temporarily suspended") for a whole interval: new mail
    // to it is tried at once, as Sendmail tries each new message
    let qi = policy::secs(profile.queue_interval);
    s.push_str(&format!("queue_run_delay = {qi}s\nminimal_backoff_time = 1s\nmaximal_backoff_time = {qi}s\n"));
    let ret = policy::secs(profile.queuereturn);
    s.push_str(&format!("maximal_queue_lifetime = {ret}s\nbounce_queue_lifetime = {ret}s\n"));
    s.push_str(&format!("delay_warning_time = {}s\n", profile.queuewarn.as_secs()));
    Ok((s, files))
}

/// The `main.cf` lines the profile gives (without the map files; see [`render_all`]).
pub fn render_profile(profile: &RelayProfile) -> Result<String, FlavourError> {
    Ok(render_all(profile)?.0)
}

/// `privacy_flags` as `main.cf` lines. Postfix has no `EXPN` and no `VERB`
/// (`noexpn`, `noverb`, `needexpnhelo`: nothing to do) and writes no
/// `X-Authentication-Warning:` (`authwarnings`, see [`policy::privacy_gaps`]).
fn privacy(profile: &RelayProfile) -> String {
    let p = profile.privacy();
    let mut s = String::new();
    if p.no_vrfy {
        // 502 5.5.1 VRFY command is disabled (Sendmail: 252 2.5.2); VRFY leaves the EHLO list
        s.push_str("disable_vrfy_command = yes\n");
    }
    let mut discard = Vec::new();
    if p.no_etrn {
        s.push_str("smtpd_etrn_restrictions = reject\n");
        discard.push("etrn");
    }
    if p.no_receipts {
        discard.push("dsn");
    }
    if !discard.is_empty() {
        s.push_str(&format!("smtpd_discard_ehlo_keywords = silent-discard, {}\n", discard.join(", ")));
    }
    if p.need_mail_helo {
        s.push_str("smtpd_helo_required = yes\n");
    }
    s
}

/// The restriction class of the client and sender checks that
/// `delay_checks hater` applies to HATER recipients only.
const DELAYED_CLASS: &str = "relaylab_delayed_checks";

const SPAM_MAP: &str = "/etc/postfix/relaylab_spam";
const CLIENT_MAP: &str = "/etc/postfix/relaylab_client_access";
const SENDER_MAP: &str = "/etc/postfix/relaylab_sender_access";
const RCPT_MAP: &str = "/etc/postfix/relaylab_recipient_access";
const RELAY_CLIENTS: &str = "/etc/postfix/relaylab_relay_clients";
const RCPT_CHECKS: &str = "/etc/postfix/relaylab_recipient_checks";
const TRANSPORT: &str = "/etc/postfix/relaylab_transport";
const VIRTUAL: &str = "/etc/postfix/relaylab_virtual";
const ALIASES: &str = "/etc/postfix/relaylab_aliases";
const MASQUERADE: &str = "/etc/postfix/relaylab_masquerade";

fn regex_escape(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$/".contains(c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// The regexp pattern of a mailertable key against a whole address; `.domain`
/// keys capture the part below the domain (`%1`).
fn mt_pattern(k: &MtKey) -> Option<String> {
    match k {
        MtKey::Exact(d) => Some(format!("/@{}$/", re_domain(d))),
        MtKey::Below(d) => Some(format!("/@(.+)\\.{}$/", re_domain(d))),
        MtKey::Default => None,
    }
}

/// Refusals at RCPT that Sendmail makes while parsing the address:
/// mailertable and virtusertable `error:` entries (before the relay check, for
/// every client). Other entries of the same tables answer `DUNNO` so a more
/// specific key shadows a less specific one, as in the tables.
fn rcpt_checks(profile: &RelayProfile) -> String {
    let mut out = String::new();
    let virt = policy::virtusertable(profile);
    if virt.iter().any(|(_, _, t)| matches!(t, policy::VirtTarget::Error(_))) {
        for (user, domain, target) in &virt {
            let pat = match user {
                Some(u) => format!("/^{}@{}$/", regex_escape(u), re_domain(domain)),
                None => format!("/@{}$/", re_domain(domain)),
            };
            let res = match target {
                policy::VirtTarget::Error(e) => refusal(e.code, &e.dsn, &e.text),
                _ => "DUNNO".into(),
            };
            out.push_str(&format!("{pat}\t{res}\n"));
        }
    }
    let mt = policy::mailertable(profile);
    if mt.iter().any(|(_, r)| matches!(r, MtRoute::Error(_))) {
        for n in local_names(profile) {
            out.push_str(&format!("/@{}$/\tDUNNO\n", re_domain(&n)));
        }
        for (k, r) in &mt {
            let Some(pat) = mt_pattern(k) else { continue };
            let res = match r {
                MtRoute::Error(e) => refusal(e.code, &e.dsn, &e.text),
                _ => "DUNNO".into(),
            };
            out.push_str(&format!("{pat}\t{res}\n"));
        }
    }
    out
}

/// `smtp:host` (MX lookup) or `smtp:[host]` (A record only).
fn nexthop(host: &str, bracketed: bool) -> String {
    if bracketed {
        format!("smtp:[{host}]")
    } else {
        format!("smtp:{host}")
    }
}

/// The mailertable, then `.` or `smart_host` for every domain that is not
/// ours, as a regexp transport table (first match wins, most specific first).
fn transport_table(profile: &RelayProfile) -> String {
    let mut out = String::new();
    for (k, r) in policy::mailertable(profile) {
        let Some(pat) = mt_pattern(&k) else { continue };
        match r {
            MtRoute::Smtp { host, bracketed } => {
                out.push_str(&format!("{pat}\t{}\n", nexthop(&host.replace("%1", "$1"), bracketed)))
            }
            MtRoute::Error(e) => out.push_str(&format!("{pat}\terror:{} {}\n", e.dsn, e.text)),
            MtRoute::Local(_) => {}
        }
    }
    if let Some((host, bracketed)) = policy::default_route(profile) {
        let names = local_names(profile).iter().map(|n| re_domain(n)).collect::<Vec<_>>().join("|");
        out.push_str(&format!("!/@({names})$/\t{}\n", nexthop(&host, bracketed)));
    }
    out
}

/// What places Postfix in the lab; appended last, also after a whole `main.cf`.
pub fn lab_block(net: &LabNetwork) -> String {
    format!(
        "\n# --- relaylab: the lab (always last) ---\ninet_interfaces = {ip}\ninet_protocols = {proto}\n\
         smtp_bind_address = {ip}\nmaillog_file =\nsmtp_address_preference = ipv4\n",
        ip = net.virtual_ip,
        proto = if net.virtual_ip.is_ipv4() { "ipv4" } else { "ipv6" },
    )
}

impl Flavour for Postfix {
    fn name(&self) -> &'static str {
        "postfix"
    }

    const RENDERED_KEYS: &'static [&'static str] = &[
        "access",
        "privacy_flags",
        "delay_checks",
        "blacklist_recipients",
        "promiscuous_relay",
        "relay_entire_domain",
        "accept_unresolvable_domains",
        "accept_unqualified_senders",
        "mailertable",
        "smart_host",
        "virtusertable",
        "virtuser_domains",
        "aliases",
        "include_files",
        "masquerade_as",
        "masquerade_envelope",
        "allmasquerade",
        "exposed_users",
        "smtp_login_msg",
        "max_message_size",
        "max_rcpts_per_message",
        "queue_interval",
        "queuewarn",
        "queuereturn",
    ];

    fn value_gaps(&self, profile: &RelayProfile) -> Vec<(&'static str, String)> {
        policy::rule_value_gaps(profile, true)
    }

    fn users(&self) -> (Vec<MtaUser>, Vec<MtaGroup>) {
        (vec![("postfix", 60101, 60101, "/var/spool/postfix")], vec![("postfix", 60101, ""), ("postdrop", 60102, "")])
    }

    fn render(
        &self,
        tree: &Path,
        profile: &RelayProfile,
        net: &LabNetwork,
        native: &NativeConfig,
    ) -> Result<Vec<RootFile>, FlavourError> {
        let read = |p: &str| {
            std::fs::read_to_string(tree.join(p)).map_err(|e| FlavourError::Render {
                flavour: "postfix".into(),
                why: format!("reading {p} from the tree: {e}; re-run relay-under-test/mta/install.sh"),
            })
        };
        let packaged = read("usr/share/postfix/main.cf.debian")?;
        let (rendered, maps) = render_all(profile)?;
        let main = match native {
            NativeConfig::Rendered => format!("{packaged}{rendered}"),
            NativeConfig::Snippet(s) => {
                format!("{packaged}{rendered}\n# --- relaylab: the scenario's snippet ---\n{s}\n")
            }
            NativeConfig::Whole(w) => format!("# --- relaylab: the scenario's main.cf ---\n{w}\n"),
        };
        let mut lab = lab_block(net);
        if !sets_parameter(&main, "mynetworks") {
            // the default (mynetworks_style) would take every address on lo, that is
            // every lab host, for this host's own network and let it relay
            lab.push_str(&format!("mynetworks = 127.0.0.0/8, {}\n", net.virtual_ip));
        }
        let main = merge_main_cf(&[&main, &lab]);
        let mut files = maps;
        files.extend(vec![
            RootFile::new("/etc/postfix/main.cf", main),
            RootFile::new("/etc/postfix/master.cf", unchroot_master_cf(&read("usr/share/postfix/master.cf.dist")?)),
            RootFile::new("/etc/postfix/dynamicmaps.cf", read("usr/share/postfix/dynamicmaps.cf")?),
            // what the package's postinst copies to $meta_directory (set-permissions checks them)
            RootFile::new("/etc/postfix/main.cf.proto", read("usr/share/postfix/main.cf.dist")?),
            RootFile::new("/etc/postfix/master.cf.proto", read("usr/share/postfix/master.cf.dist")?),
            RootFile::new("/etc/postfix/makedefs.out", read("usr/share/postfix/makedefs.out")?),
            super::postmaster_aliases(),
        ]);
        Ok(files)
    }

    fn prepare(&self) -> Vec<Vec<String>> {
        // what the package's postinst would do: owners and modes of spool and tools
        vec![vec!["postfix".into(), "set-permissions".into()], vec!["postfix".into(), "check".into()]]
    }

    fn start(&self) -> Vec<String> {
        vec!["postfix".into(), "start".into()]
    }

    fn stop(&self) -> Vec<String> {
        vec!["postfix".into(), "stop".into()]
    }

    fn queue_run(&self) -> Vec<String> {
        vec!["postqueue".into(), "-f".into()]
    }

    fn mailq(&self) -> Vec<String> {
        vec!["postqueue".into(), "-p".into()]
    }

    fn parse_mailq(&self, text: &str) -> QueueSnapshot {
        parse_postqueue(text)
    }

    fn events(&self, line: &str) -> Vec<RelayEvent> {
        events::postfix(line)
    }
}

/// Parse `postqueue -p`.
pub fn parse_postqueue(text: &str) -> QueueSnapshot {
    let mut listing = ListingReader::default();
    for line in text.lines() {
        if line.starts_with("-Queue ID-") || line.starts_with("--") || line.starts_with("Mail queue is empty") {
            continue;
        }
        if line.trim().is_empty() {
            listing.end_message();
            continue;
        }
        if !line.starts_with([' ', '\t', '(']) {
            listing.end_message();
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 7 {
                continue;
            }
            let active = f[0].ends_with('*');
            let qid = f[0].trim_end_matches(['*', '!']).to_string();
            let sender = f[6..].join(" ");
            let sender = if sender == "MAILER-DAEMON" { "<>".into() } else { sender };
            listing.start_message(qid, sender, f[1].parse().unwrap_or(0), active);
        } else {
            listing.detail(line.trim());
        }
    }
    listing.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postqueue_listing() {
        let text = [
            "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------",
            "6B88B1B0        425 Sat Nov 21 11:38:20  a@lying.com",
            "(Host or domain name not found. Name service error for name=sysiphus.com type=MX: Host not found, try again)",
            "                                         john@sysiphus.com",
            "",
            "7C11A2B3*       500 Sat Nov 21 11:39:00  MAILER-DAEMON",
            "                                         x@y.example",
            "",
            "-- 0 Kbytes in 2 Requests.",
        ]
        .join("\n");
        let text = text.as_str();
        let s = parse_postqueue(text);
        assert_eq!(s.messages.len(), 2);
        assert_eq!(s.busy, 1);
        assert_eq!(s.messages[0].qid, "6B88B1B0");
        assert_eq!(s.messages[0].recipients, vec!["john@sysiphus.com"]);
        assert!(s.messages[0].last_error.as_deref().unwrap().starts_with("Host or domain name not found"));
        assert_eq!(s.messages[1].sender, "<>");
        assert_eq!(parse_postqueue("Mail queue is empty\n"), QueueSnapshot::default());
    }

    #[test]
    fn master_cf_loses_its_chroots() {
        let m = "# comment\nsmtp      inet  n       -       y       -       -       smtpd\n  -o x=y\nqmgr      unix  n       -       n       300     1       qmgr\n";
        let out = unchroot_master_cf(m);
        assert!(out.lines().nth(1).unwrap().split_whitespace().nth(4) == Some("n"), "{out}");
        assert!(out.contains("\n  -o x=y\n"));
    }

    #[test]
    fn later_settings_replace_earlier_ones() {
        let m = merge_main_cf(&["a = 1\nb = 2\n  continued\n# c = 3\n", "b = 4\nd = 5\n"]);
        assert_eq!(m, "a = 1\n# c = 3\nb = 4\nd = 5\n");
    }

    #[test]
    fn profile_renders() {
        let mut p = RelayProfile::new("external.sysiphus.com");
        p.relay_domains = vec!["sysiphus.com".into(), "10.1.1".into()];
        p.max_hop_count = 50;
        let s = render_profile(&p).unwrap();
        assert!(s.contains("relay_domains = sysiphus.com, .sysiphus.com\n"), "{s}");
        assert!(s.contains("mynetworks = 127.0.0.0/8, 10.1.1.0/24\n"), "{s}");
        assert!(s.contains("hopcount_limit = 50\n"));
    }

    #[test]
    fn privacy_and_delay_checks_render() {
        let p: RelayProfile = serde_yaml::from_str(
            "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com]\n\
             privacy_flags: noexpn,novrfy,noverb,noetrn,noreceipts\n\
             access: |\n  Spam:abuse@sysiphus.com FRIEND\n  From:foo.biz REJECT\ndelay_checks: friend\n",
        )
        .unwrap();
        let (s, files) = render_all(&p).unwrap();
        eprintln!("{s}");
        assert!(s.contains("disable_vrfy_command = yes\n"), "{s}");
        assert!(s.contains("smtpd_etrn_restrictions = reject\n"));
        assert!(s.contains("smtpd_discard_ehlo_keywords = silent-discard, etrn, dsn\n"));
        assert!(!s.contains("smtpd_helo_required"));
        assert!(s.contains("smtpd_delay_reject = yes\n"));
        assert!(s.contains("smtpd_sender_restrictions =\n"), "{s}");
        assert!(s.contains(&format!(
            "smtpd_recipient_restrictions = check_recipient_access texthash:{SPAM_MAP}, \
             check_sender_access texthash:{SENDER_MAP}, reject_non_fqdn_sender, reject_unknown_sender_domain\n"
        )));
        let spam = files.iter().find(|f| f.path == SPAM_MAP).expect("spam map");
        assert!(String::from_utf8_lossy(&spam.contents).contains("abuse@sysiphus.com\tOK\n"));

        let h: RelayProfile = serde_yaml::from_str(
            "hostname: ext1.sysiphus.com\nrelay_domains: [sysiphus.com]\naccept_unresolvable_domains: true\n\
             privacy_flags: goaway\naccess: |\n  Spam:hal@sysiphus.com HATER\n  Connect:203.0.113.99 REJECT\n\
             delay_checks: hater\n",
        )
        .unwrap();
        let (s, _) = render_all(&h).unwrap();
        assert!(s.contains("smtpd_helo_required = yes\n"), "{s}");
        assert!(s.contains(&format!("{DELAYED_CLASS} = check_client_access texthash:{CLIENT_MAP}, reject_non_fqdn_sender\n")), "{s}");
        assert!(s.contains(&format!("smtpd_recipient_restrictions = check_recipient_access texthash:{SPAM_MAP}\n")), "{s}");
    }
}
