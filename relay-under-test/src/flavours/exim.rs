//! Exim (Debian 4.96, exim4-daemon-light) under test.
//!
//! Configuration: one rendered file at Exim's compiled-in path
//! `/etc/exim4/exim4.conf` (in the lab's own root, so Debian's
//! TRUSTED_CONFIG_LIST / `-C` restrictions never come into play). A snippet
//! is added to the main section, before `begin acl` (Exim refuses an option
//! set twice, so a snippet sets options the rendering leaves alone, or adds
//! macros and lists); a whole file replaces it, with the lab's main options
//! put first (`local_interfaces`, syslog); a user's own file setting those
//! again is refused by Exim, which the start error then shows. Beware `@[]`
//! in a user's host or domain lists: it means "any address of this host",
//! and every lab address is on the lab namespace's `lo`.
//!
//! Profile mapping:
//! | profile | exim4.conf |
//! |---|---|
//! | `hostname` | `primary_hostname` |
//! | `local_host_names` | `domainlist local_domains = @ : localhost : ...` |
//! | `relay_domains` names | `domainlist relay_to_domains` (`name : *.name`, only `name` with `relay_hosts_only`) |
//! | `relay_domains` IP prefixes | `hostlist relay_from_hosts` (with 127.0.0.0/8) |
//! | `max_hop_count` | `received_headers_max` |
//! | `smtp_timeout` | the smtp transport's `command_timeout` and `data_timeout` |
//! | `access` (`Connect:`, `From:`, `To:`, untagged) | `acl_smtp_mail` / `acl_smtp_rcpt` statements, most specific key first: `Connect:` by `hosts =` (CIDR, or `name : *.name` against the verified PTR name), `From:` by `senders =`, `To:` by `recipients =`; `REJECT` → `550 5.7.1 Access denied`, `ERROR:` → its reply, `DISCARD` → `discard`, `RELAY` → accepted by the relay decision; client and sender refusals at MAIL, as Sendmail |
//! | `blacklist_recipients` | `To:` refusals in the RCPT ACL (`550 5.2.1 Mailbox disabled for this recipient`) |
//! | `privacy_flags` | VRFY/EXPN/ETRN: ACLs left unset (refused, not advertised); `noreceipts` → `dsn_advertise_hosts =`; `needmailhelo` → a MAIL ACL `503` |
//! | `delay_checks`, `Spam:` entries | client and sender verdicts computed at MAIL, refused at RCPT after the relay verdict, with `!recipients =` FRIEND / `recipients =` HATER keys |
//! | (relay tricks) | `%`, `!`, `@` in the local part from a client that may not relay: refused unless every hidden host is ours, as Sendmail |
//! | `accept_unresolvable_domains` | not rendered: Exim does not check the sender domain (a `verify = sender` try refused resolvable lab senders) |
//! | `accept_unqualified_senders` | `sender_unqualified_hosts = *`, `recipient_unqualified_hosts = *`, `qualify_domain` |
//! | `promiscuous_relay`, `relay_entire_domain` | `accept` before the relay refusal; `$m` in `relay_to_domains` and `hosts = *.$m` |
//! | `mailertable`, `smart_host` | a `manualroute` router (`host/MX bydns` or `[host]` → `host byname`); `error:` entries refused in the RCPT ACL |
//! | `virtusertable`, `virtuser_domains` | a `redirect` router on an lsearch file (`%1` → `$local_part`), the domains in `relay_to_domains`; `error:` entries in the RCPT ACL |
//! | `aliases`, `include_files` | a `redirect` router for local domains on an lsearch file |
//! | `smtp_login_msg` | `smtp_banner` (without `$b`) |
//! | `max_message_size`, `max_rcpts_per_message` | `message_size_limit`, `recipients_max` (`452` past it) |
//! | `queue_interval`, `queuereturn`, `queuewarn` | the daemon's `-q<interval>`; retry rule `* * F,<queuereturn>,1s` (retried at each queue run; a host that failed once is not skipped for new mail); `delay_warning` |

use super::policy::{self, access_for, Act, AliasTarget, Key, MtKey, MtRoute, Tag};
use super::{
    arrived_now, events, postmaster_aliases, relay_lists, sh, timeout_secs, Flavour, FlavourError, MtaGroup, MtaUser,
    NativeConfig, QueueSnapshot, RelayEvent,
};
use crate::netns::RootFile;
use crate::profile::DelayChecks;
use crate::{LabNetwork, QueuedMessage, RelayProfile};
use std::path::Path;

/// The Exim flavour.
#[derive(Debug, Default, Clone, Copy)]
pub struct Exim;

/// The daemon binary in the tree.
pub const EXIM: &str = "/usr/sbin/exim4";

/// The lab's main-section options (listen address, syslog).
pub fn lab_options(net: &LabNetwork) -> String {
    format!(
        "# relaylab: the lab\nlocal_interfaces = {ip}\ndaemon_smtp_ports = 25\nlog_file_path = syslog\n\
         syslog_duplication = false\nsyslog_timestamp = false\nsyslog_processname = exim\nkeep_environment =\n\
         tls_advertise_hosts =\nrfc1413_hosts =\n",
        ip = net.virtual_ip
    )
}

/// An Exim list item: colons doubled.
fn item(s: &str) -> String {
    s.replace(':', "::")
}

/// A hostlist for an access key: an IP prefix as CIDR, a domain as itself and
/// everything below it (matched against the verified PTR name).
fn host_pattern(k: &Key) -> String {
    match k {
        Key::Ip(o) => super::prefix_cidr(o),
        Key::Domain(d) => format!("{d} : *.{d}"),
        Key::Address(a) => item(a),
        Key::User(u) => format!("{u}@*"),
    }
}

/// An address list for an access key (sender or recipient).
fn address_pattern(k: &Key) -> String {
    match k {
        Key::Domain(d) => format!("{d} : *.{d}"),
        Key::Address(a) => item(a),
        Key::User(u) => format!("{}@*", item(u)),
        Key::Ip(o) => super::prefix_cidr(o),
    }
}

/// Most specific key first: the ACL takes the first entry that matches.
fn by_specificity(mut v: Vec<(Key, Act)>) -> Vec<(Key, Act)> {
    v.sort_by_key(|(k, _)| match k {
        Key::Address(_) => 0usize,
        Key::User(_) => 1,
        Key::Ip(o) => 10 - o.len(),
        Key::Domain(d) => 100 - d.split('.').count(),
    });
    v
}

/// ACL statements that set `$acl_m_<var>` from the first matching entry
/// (`condition` + `hosts`/`senders`/`recipients`).
fn first_match(
    var: &str,
    cond: &str,
    rows: &[(Key, Act)],
    pattern: fn(&Key) -> String,
    value: impl Fn(&Act) -> String,
) -> String {
    let mut s = String::new();
    for (k, a) in rows {
        s.push_str(&format!(
            "  warn    condition = ${{if eq{{$acl_m_{var}}}{{}}}}\n          {cond} = {}\n          set acl_m_{var} = {}\n",
            pattern(k),
            value(a)
        ));
    }
    s
}

/// `code dsn text` for an ACL `message =` (Exim takes the leading code and status).
fn reply(code: u16, dsn: &str, text: &str) -> String {
    format!("{code} {dsn} {}", text.replace('$', "\\$"))
}

fn act_value(a: &Act, reject: &str) -> String {
    match a {
        Act::Reject => reject.to_string(),
        Act::Error(c, d, t) => reply(*c, d, t),
        Act::Discard => "DISCARD".into(),
        Act::Ok => "OK".into(),
        Act::Relay => "RELAY".into(),
        _ => "DUNNO".into(),
    }
}

/// The client and sender refusals (computed at MAIL into `$acl_m_client` and
/// `$acl_m_sender`), each statement with the extra `conditions` lines: at
/// MAIL, or under `delay_checks` at RCPT for the recipients they apply to.
fn delayed_checks(conditions: &str) -> String {
    format!(
        "  discard condition = ${{if or{{{{eq{{$acl_m_client}}{{DISCARD}}}}{{eq{{$acl_m_sender}}{{DISCARD}}}}}}}}\n{conditions}\
         \x20 deny    condition = ${{if match{{$acl_m_client}}{{\\N^[45]\\N}}}}\n{conditions}          message = $acl_m_client\n\
         \x20 deny    condition = ${{if match{{$acl_m_sender}}{{\\N^[45]\\N}}}}\n{conditions}          message = $acl_m_sender\n"
    )
}

/// `privacy_flags` as main-section options. Exim refuses VRFY, EXPN and ETRN
/// while `acl_smtp_vrfy`/`_expn`/`_etrn` are unset (`252`, `550`, `458
/// Administrative prohibition`) and leaves them out of the EHLO list; setting
/// an ACL would advertise them, and an ETRN ACL cannot answer 5xx (Exim keeps
/// its `458`): `novrfy`, `noexpn`, `noetrn` need nothing. `noreceipts`: DSN
/// not advertised. `needmailhelo` is a statement of the MAIL ACL; Exim has no
/// VERB and writes no `X-Authentication-Warning:` for MAIL without HELO.
fn privacy_options(profile: &RelayProfile) -> String {
    let p = profile.privacy();
    let mut s = String::new();
    if p.no_receipts {
        s.push_str("dsn_advertise_hosts =\n");
    }
    s
}

/// The whole rendered configuration, `snippet` at the end of the main section.
pub fn render_conf(profile: &RelayProfile, net: &LabNetwork, snippet: &str) -> Result<String, FlavourError> {
    let mut lists = relay_lists(profile, "*.")?;
    let host = profile.hostname.trim_end_matches('.');
    let mut local = vec!["@".to_string(), "localhost".to_string()];
    local.extend(lists.local_names.clone());
    for d in &profile.virtuser_domains {
        lists.relay_to.push(d.trim().trim_end_matches('.').to_ascii_lowercase());
    }
    let our_domain = profile.relay_entire_domain.then(|| profile.our_domain()).flatten();
    if let Some(m) = &our_domain {
        lists.relay_to.push(m.clone());
        lists.relay_to.push(format!("*.{m}"));
    }
    let t = timeout_secs(profile);
    let mut s = lab_options(net);
    s.push_str("\n# relaylab: rendered from the relay profile\n");
    s.push_str(&format!("primary_hostname = {host}\nqualify_domain = {host}\n"));
    s.push_str(&format!("domainlist local_domains = {}\n", local.join(" : ")));
    s.push_str(&format!("domainlist relay_to_domains = {}\n", lists.relay_to.join(" : ")));
    s.push_str(&format!("hostlist relay_from_hosts = {}\n", lists.relay_from.join(" : ")));
    s.push_str(&format!("received_headers_max = {}\n", profile.max_hop_count));
    s.push_str("acl_smtp_mail = acl_check_mail\nacl_smtp_rcpt = acl_check_rcpt\nhost_lookup = *\n");
    s.push_str(&privacy_options(profile));
    s.push_str("ignore_bounce_errors_after = 2d\ntimeout_frozen_after = 7d\n");
    if let Some(b) = policy::banner(profile) {
        s.push_str(&format!("smtp_banner = {}\n", b.replace('\\', "\\\\").replace('$', "\\$")));
    }
    if profile.max_message_size > 0 {
        s.push_str(&format!("message_size_limit = {}\n", profile.max_message_size));
    } else {
        s.push_str("message_size_limit = 0\n");
    }
    if profile.max_rcpts_per_message > 0 {
        s.push_str(&format!("recipients_max = {}\nrecipients_max_reject = false\n", profile.max_rcpts_per_message));
    }
    if profile.accept_unqualified_senders {
        s.push_str("sender_unqualified_hosts = *\nrecipient_unqualified_hosts = *\n");
    }
    s.push_str(&format!("delay_warning = {}s\n", profile.queuewarn.as_secs()));
    if !snippet.is_empty() {
        s.push_str("\n# relaylab: the scenario's snippet\n");
        s.push_str(snippet);
        s.push('\n');
    }

    // ---- ACLs: client and sender at MAIL, routing refusals, To: entries and the relay decision at RCPT
    let entries = policy::access(profile);
    let client = by_specificity(access_for(&entries, Tag::Connect));
    let sender = by_specificity(access_for(&entries, Tag::From));
    let rcpt = by_specificity(access_for(&entries, Tag::To));
    let denied = "550 5.7.1 Access denied";
    let mut acl = String::from("\nbegin acl\n\nacl_check_mail:\n");
    acl.push_str(&first_match("client", "hosts", &client, host_pattern, |a| act_value(a, denied)));
    acl.push_str(&first_match("sender", "senders", &sender, address_pattern, |a| act_value(a, denied)));
    let delayed = profile.delay_checks.delayed();
    if profile.privacy().need_mail_helo {
        acl.push_str(
            "  deny    condition = ${if def:sender_helo_name{no}{yes}}\n          \
             message = 503 5.0.0 Polite people say HELO first\n",
        );
    }
    if !delayed {
        acl.push_str(&delayed_checks(""));
    }
    // No sender-domain check: `verify = sender` refused resolvable lab senders
    // ("550 Sender verify failed") in the matrix; accept_unresolvable_domains is
    // not rendered (Exim accepts unresolvable sender domains, as before).
    acl.push_str("  accept\n\nacl_check_rcpt:\n  accept  hosts = :\n");
    // routing refusals (mailertable and virtusertable error: entries) come first
    let mut route_rows = String::new();
    let virt = policy::virtusertable(profile);
    if virt.iter().any(|(_, _, t)| matches!(t, policy::VirtTarget::Error(_))) {
        for (user, domain, target) in &virt {
            let pat = match user {
                Some(u) => format!("recipients = {}@{domain}", item(u)),
                None => format!("domains = {domain}"),
            };
            let v = match target {
                policy::VirtTarget::Error(e) => reply(e.code, &e.dsn, &e.text),
                _ => "DUNNO".into(),
            };
            route_rows.push_str(&format!(
                "  warn    condition = ${{if eq{{$acl_m_route}}{{}}}}\n          {pat}\n          set acl_m_route = {v}\n"
            ));
        }
    }
    let mt = policy::mailertable(profile);
    if mt.iter().any(|(_, r)| matches!(r, MtRoute::Error(_))) {
        route_rows.push_str("  warn    domains = +local_domains\n          set acl_m_route = DUNNO\n");
        for (k, r) in &mt {
            let pat = match k {
                MtKey::Exact(d) => d.clone(),
                MtKey::Below(d) => format!("*.{d}"),
                MtKey::Default => continue,
            };
            let v = match r {
                MtRoute::Error(e) => reply(e.code, &e.dsn, &e.text),
                _ => "DUNNO".into(),
            };
            route_rows.push_str(&format!(
                "  warn    condition = ${{if eq{{$acl_m_route}}{{}}}}\n          domains = {pat}\n          set acl_m_route = {v}\n"
            ));
        }
    }
    if !profile.promiscuous_relay {
        // relay tricks (Sendmail undoes them and checks the hidden destination):
        // user%host@ours, host!user@ours and "user@host"@ours from a client that
        // may not relay are refused unless every hidden host is ours; Exim would
        // otherwise pass the local part on unchanged to our domain's MX
        acl.push_str(
            "  deny    local_parts = ^.*[%!@]\n          !hosts = +relay_from_hosts\n          \
             condition = ${if eq{$acl_m_client}{RELAY}{no}{yes}}\n          \
             condition = ${if forall{${if match{$local_part}{!}\
             {${sg{${sg{$local_part}{\\N![^!]*$\\N}{}}}{!}{:}}}\
             {${sg{${sg{$local_part}{\\N^[^%@]*[%@]\\N}{}}}{[%@]}{:}}}}}\
             {match_domain{$item}{+local_domains : +relay_to_domains}}{no}{yes}}\n          \
             message = 550 5.7.1 Relaying denied\n",
        );
    }
    if !route_rows.is_empty() {
        acl.push_str("  warn    set acl_m_route =\n");
        acl.push_str(&route_rows);
        acl.push_str(
            "  deny    condition = ${if match{$acl_m_route}{\\N^[45]\\N}}\n          message = $acl_m_route\n",
        );
    }
    if !rcpt.is_empty() {
        acl.push_str("  warn    set acl_m_rcpt =\n");
        let mail_disabled = "550 5.2.1 Mailbox disabled for this recipient";
        acl.push_str(&first_match("rcpt", "recipients", &rcpt, address_pattern, |a| match a {
            Act::Relay => "RELAY".into(),
            Act::Reject | Act::Error(..) | Act::Discard if profile.blacklist_recipients => act_value(a, mail_disabled),
            _ => "DUNNO".into(),
        }));
        acl.push_str(
            "  discard condition = ${if eq{$acl_m_rcpt}{DISCARD}}\n\
             \x20 deny    condition = ${if match{$acl_m_rcpt}{\\N^[45]\\N}}\n          message = $acl_m_rcpt\n\
",
        );
        if !delayed {
            acl.push_str("  accept  condition = ${if eq{$acl_m_rcpt}{RELAY}}\n");
        }
    }
    if delayed {
        // delay_checks: the relay decision first, then the client and sender
        // checks for the recipients they apply to (friend: all but the Spam:
        // FRIEND ones; hater: the HATER ones only)
        acl.push_str(
            "  warn    set acl_m_relay =\n  warn    domains = +local_domains : +relay_to_domains\n          \
             set acl_m_relay = yes\n  warn    hosts = +relay_from_hosts\n          set acl_m_relay = yes\n  \
             warn    condition = ${if or{{eq{$acl_m_client}{RELAY}}{eq{$acl_m_rcpt}{RELAY}}}}\n          \
             set acl_m_relay = yes\n",
        );
        if let Some(m) = &our_domain {
            acl.push_str(&format!("  warn    hosts = *.{m}\n          set acl_m_relay = yes\n"));
        }
        if !profile.promiscuous_relay {
            acl.push_str(
                "  deny    condition = ${if eq{$acl_m_relay}{}}\n          message = 550 5.7.1 Relaying denied\n",
            );
        }
        let spam: Vec<String> = policy::spam_keys(profile).iter().map(address_pattern).collect();
        let who = match profile.delay_checks {
            DelayChecks::Friend if !spam.is_empty() => format!("          !recipients = {}\n", spam.join(" : ")),
            DelayChecks::Hater => format!("          recipients = {}\n", spam.join(" : ")),
            _ => String::new(),
        };
        if profile.delay_checks != DelayChecks::Hater || !spam.is_empty() {
            acl.push_str(&delayed_checks(&who));
        }
        acl.push_str("  accept  condition = ${if eq{$acl_m_rcpt}{RELAY}}\n");
    }
    acl.push_str(
        "  accept  domains = +local_domains\n          verify = recipient\n  accept  domains = +relay_to_domains\n  \
         accept  hosts = +relay_from_hosts\n  accept  condition = ${if eq{$acl_m_client}{RELAY}}\n",
    );
    if let Some(m) = &our_domain {
        acl.push_str(&format!("  accept  hosts = *.{m}\n"));
    }
    if profile.promiscuous_relay {
        acl.push_str("  accept\n");
    }
    acl.push_str("  deny    message = 550 5.7.1 Relaying denied\n");
    s.push_str(&acl);

    // ---- routers: virtual aliases, aliases, mailertable, smart host, MX
    s.push_str("\nbegin routers\n\n");
    let has_virt = virt.iter().any(|(_, _, t)| matches!(t, policy::VirtTarget::Address(_)));
    if has_virt {
        let mut domains: Vec<String> = virt.iter().map(|(_, d, _)| d.clone()).collect();
        domains.dedup();
        s.push_str(&format!(
            "virtusertable:\n  driver = redirect\n  domains = {}\n  no_verify_sender\n  \
             data = ${{sg{{${{lookup{{$local_part@$domain}}lsearch{{{VIRTUAL}}}{{$value}}{{${{lookup{{@$domain}}lsearch{{{VIRTUAL}}}}}}}}}}}{{%1}}{{$local_part}}}}\n\n",
            domains.join(" : ")
        ));
    }
    s.push_str(&format!(
        "aliases:\n  driver = redirect\n  domains = +local_domains\n  no_verify_sender\n  \
         data = ${{lookup{{$local_part}}lsearch{{{ALIASES}}}}}\n  user = Debian-exim\n\n"
    ));
    let mut routes = Vec::new();
    for (k, r) in &mt {
        let MtRoute::Smtp { host, bracketed } = r else { continue };
        let pat = match k {
            MtKey::Exact(d) => d.clone(),
            MtKey::Below(d) => format!("*.{d}"),
            MtKey::Default => continue,
        };
        routes.push(format!("{pat} {}", exim_host(host, *bracketed)));
    }
    if let Some((h, b)) = policy::default_route(profile) {
        routes.push(format!("* {}", exim_host(&h, b)));
    }
    if !routes.is_empty() {
        s.push_str(&format!(
            "mailertable:\n  driver = manualroute\n  domains = ! +local_domains\n  no_verify_sender\n  \
             transport = remote_smtp\n  ignore_target_hosts = 0.0.0.0 : 127.0.0.0/8\n  route_list = <; {}\n\n",
            routes.join(" ; ")
        ));
    }
    // a real retry interval would make Exim skip a host that failed once for every
    // new message (its hints database); retries wait for the next queue run (-q)
    let ret = policy::secs(profile.queuereturn);
    s.push_str(&format!(
        r#"dnslookup:
  driver = dnslookup
  domains = ! +local_domains
  transport = remote_smtp
  ignore_target_hosts = 0.0.0.0 : 127.0.0.0/8
  no_more

begin transports

remote_smtp:
  driver = smtp
  interface = {ip}
  command_timeout = {t}s
  data_timeout = {t}s

begin retry

*   *   F,{ret}s,1s
"#,
        ip = net.virtual_ip
    ));
    Ok(s)
}

/// A mailertable host for `route_list`: `[host]` by its A record, `host` by its MX records.
fn exim_host(host: &str, bracketed: bool) -> String {
    if bracketed {
        format!("{host} byname")
    } else {
        format!("{host}/MX bydns")
    }
}

const VIRTUAL: &str = "/etc/exim4/relaylab_virtual";
const ALIASES: &str = "/etc/exim4/relaylab_aliases";

/// The lsearch files the configuration names.
pub fn render_files(profile: &RelayProfile) -> Vec<RootFile> {
    let mut v = String::new();
    for (user, domain, target) in policy::virtusertable(profile) {
        if let policy::VirtTarget::Address(a) = target {
            v.push_str(&format!("\"{}@{domain}\": {a}\n", user.unwrap_or_default()));
        }
    }
    let mut al = String::new();
    for (name, targets) in policy::aliases(profile) {
        let t: Vec<String> = targets.iter().map(AliasTarget::text).collect();
        al.push_str(&format!("{name}: {}\n", t.join(", ")));
    }
    let mut files = vec![RootFile::new(VIRTUAL, v), RootFile::new(ALIASES, al)];
    files.extend(policy::include_file_roots(profile));
    files
}

const PREPARE: &str = "set -e
mkdir -p /var/spool/exim4 /run/exim4 /var/log/exim4
chown Debian-exim:Debian-exim /var/spool/exim4 /run/exim4 /var/log/exim4
chmod 750 /var/spool/exim4
/usr/sbin/exim4 -bV >/dev/null
";

const MAILQ: &str = "/usr/sbin/exim4 -bp
for f in /var/spool/exim4/msglog/*; do
  [ -f \"$f\" ] || continue
  echo \"MSGLOG ${f##*/}\"
  cat \"$f\"
done
";

impl Flavour for Exim {
    fn name(&self) -> &'static str {
        "exim"
    }

    const RENDERED_KEYS: &'static [&'static str] = &[
        "access",
        "privacy_flags",
        "delay_checks",
        "blacklist_recipients",
        "promiscuous_relay",
        "relay_entire_domain",
        "accept_unqualified_senders",
        "mailertable",
        "smart_host",
        "virtusertable",
        "virtuser_domains",
        "aliases",
        "include_files",
        "smtp_login_msg",
        "max_message_size",
        "max_rcpts_per_message",
        "queue_interval",
        "queuewarn",
        "queuereturn",
    ];

    fn value_gaps(&self, profile: &RelayProfile) -> Vec<(&'static str, String)> {
        policy::rule_value_gaps(profile, false)
    }

    fn users(&self) -> (Vec<MtaUser>, Vec<MtaGroup>) {
        (vec![("Debian-exim", 60121, 60121, "/var/spool/exim4")], vec![("Debian-exim", 60121, "")])
    }

    fn render(
        &self,
        _tree: &Path,
        profile: &RelayProfile,
        net: &LabNetwork,
        native: &NativeConfig,
    ) -> Result<Vec<RootFile>, FlavourError> {
        let conf = match native {
            NativeConfig::Rendered => render_conf(profile, net, "")?,
            NativeConfig::Snippet(s) => render_conf(profile, net, s)?,
            NativeConfig::Whole(w) => format!("{}\n# relaylab: the scenario's configuration\n{w}\n", lab_options(net)),
        };
        let mut files = vec![RootFile::new("/etc/exim4/exim4.conf", conf), postmaster_aliases()];
        files.extend(render_files(profile));
        files.push(RootFile::new(
            "/etc/exim4/relaylab-queue-interval",
            format!("{}s\n", policy::secs(profile.queue_interval)),
        ));
        Ok(files)
    }

    fn prepare(&self) -> Vec<Vec<String>> {
        vec![sh(PREPARE)]
    }

    fn start(&self) -> Vec<String> {
        // the queue interval comes from the profile (written by render)
        sh(format!("exec {EXIM} -bd -q\"$(cat /etc/exim4/relaylab-queue-interval)\""))
    }

    fn stop(&self) -> Vec<String> {
        sh("kill $(cat /run/exim4/exim.pid)")
    }

    fn queue_run(&self) -> Vec<String> {
        vec![EXIM.into(), "-qff".into()]
    }

    fn mailq(&self) -> Vec<String> {
        sh(MAILQ)
    }

    fn parse_mailq(&self, text: &str) -> QueueSnapshot {
        parse_exim_bp(text)
    }

    fn events(&self, line: &str) -> Vec<RelayEvent> {
        events::exim(line)
    }
}

/// Parse `exim -bp` followed by `MSGLOG <id>` and each message's msglog (the
/// wrapper in [`Exim::mailq`]): a message whose msglog has a deferral is
/// settled, with that as its last error; one without is busy (being tried).
pub fn parse_exim_bp(text: &str) -> QueueSnapshot {
    let mut snap = QueueSnapshot::default();
    let mut msglog: Option<usize> = None;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("MSGLOG ") {
            msglog = snap.messages.iter().position(|m| m.qid == id.trim());
            continue;
        }
        if let Some(i) = msglog {
            // "2026-11-21 11:43:37 john@sysiphus.com R=dnslookup defer (-1): host lookup did not complete"
            if let Some((_, why)) = line.split_once(" defer ") {
                snap.messages[i].last_error = Some(why.trim().to_string());
            }
            continue;
        }
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let f: Vec<&str> = t.split_whitespace().collect();
        // a message line: " 0m   444 1xUjVJ-0006AW-2N <a@lying.com>" (age, size, id, sender);
        // sizes from 1000 bytes up read "1.8K", "2.1M"
        if let (true, Some(size)) =
            (f.len() >= 4 && f[2].matches('-').count() == 2, f.get(1).and_then(|x| exim_size(x)))
        {
            snap.messages.push(QueuedMessage {
                qid: f[2].to_string(),
                sender: f[3].to_string(),
                recipients: Vec::new(),
                size,
                last_error: t.contains("*** frozen ***").then(|| "frozen".to_string()),
                arrived: arrived_now(),
            });
            continue;
        }
        if let Some(m) = snap.messages.last_mut() {
            // delivered recipients are marked "D"
            if f.len() == 1 {
                m.recipients.push(f[0].to_string());
            }
        }
    }
    snap.busy = snap.messages.iter().filter(|m| m.last_error.is_none()).count();
    snap
}

/// `444`, `1.8K`, `2.1M` → bytes (approximately, as Exim rounds them).
fn exim_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1024.0),
        b'M' => (&s[..s.len() - 1], 1024.0 * 1024.0),
        _ => (s, 1.0),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then(|| (n * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bp_sizes_of_a_kilobyte_and_up_are_read() {
        // a bounce of 1881 bytes is listed as 1.8K; its recipient is its own
        let text = " 0m   329 1xUm3T-0005ZO-2D <alice@example.net>\n          tempfail-451@sysiphus.com\n\n 0m  1.8K 1xUm3U-0005a8-3B <>\n          alice@example.net\n";
        let snap = parse_exim_bp(text);
        assert_eq!(snap.messages.len(), 2, "{snap:?}");
        assert_eq!(snap.messages[0].recipients, vec!["tempfail-451@sysiphus.com".to_string()]);
        assert_eq!((snap.messages[1].sender.as_str(), snap.messages[1].size), ("<>", 1843));
        assert_eq!(snap.messages[1].recipients, vec!["alice@example.net".to_string()]);
    }

    #[test]
    fn bp_listing_with_msglogs() {
        let text = [
            " 0m   444 1xUjVJ-0006AW-2N <a@lying.com>",
            "          john@sysiphus.com",
            "",
            " 1m   500 1xUjVK-0006AX-3O <>",
            "        D x@y.example",
            "          z@y.example",
            "",
            "MSGLOG 1xUjVJ-0006AW-2N",
            "2026-11-21 11:43:37 Received from a@lying.com H=(vm) [203.0.113.66] P=esmtp S=444",
            "2026-11-21 11:43:37 john@sysiphus.com R=dnslookup defer (-1): host lookup did not complete",
            "MSGLOG 1xUjVK-0006AX-3O",
            "2026-11-21 11:44:00 Received from <> R=1xUjVJ-0006AW-2N U=Debian-exim P=local S=500",
        ]
        .join("\n");
        let text = text.as_str();
        let s = parse_exim_bp(text);
        assert_eq!(s.messages.len(), 2, "{s:?}");
        assert_eq!(s.messages[0].recipients, vec!["john@sysiphus.com"]);
        assert_eq!(s.messages[0].last_error.as_deref(), Some("(-1): host lookup did not complete"));
        assert_eq!(s.messages[1].recipients, vec!["z@y.example"]);
        assert_eq!(s.busy, 1);
    }

    #[test]
    fn conf_renders_the_profile() {
        let mut p = RelayProfile::new("external.sysiphus.com");
        p.relay_domains = vec!["sysiphus.com".into(), "10.1.1".into()];
        let net = super::super::netns_lab_network("192.0.2.25".parse().unwrap(), "192.0.2.53".parse().unwrap());
        let c = render_conf(&p, &net, "").unwrap();
        assert!(c.contains("domainlist relay_to_domains = sysiphus.com : *.sysiphus.com\n"), "{c}");
        assert!(c.contains("hostlist relay_from_hosts = 127.0.0.0/8 : 10.1.1.0/24\n"));
        assert!(c.contains("local_interfaces = 192.0.2.25\n"));
    }

    #[test]
    fn privacy_and_delay_checks_render() {
        let net = super::super::netns_lab_network("192.0.2.25".parse().unwrap(), "192.0.2.53".parse().unwrap());
        let p: RelayProfile = serde_yaml::from_str(
            "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com]\n\
             privacy_flags: noexpn,novrfy,noverb,noetrn,noreceipts\n\
             access: |\n  Spam:abuse@sysiphus.com FRIEND\n  From:foo.biz REJECT\ndelay_checks: friend\n",
        )
        .unwrap();
        let c = render_conf(&p, &net, "").unwrap();
        eprintln!("{c}");
        assert!(!c.contains("acl_smtp_vrfy") && !c.contains("acl_smtp_expn") && !c.contains("acl_smtp_etrn"));
        for o in ["dsn_advertise_hosts =\n"] {
            assert!(c.contains(o), "{o}: {c}");
        }
        let (mail, rcpt) = c.split_once("acl_check_rcpt:").unwrap();
        assert!(!mail.contains("message = $acl_m_sender"), "sender refused at RCPT only: {mail}");
        assert!(rcpt.contains("!recipients = abuse@sysiphus.com\n          message = $acl_m_sender"), "{rcpt}");
        assert!(rcpt.find("Relaying denied").unwrap() < rcpt.find("$acl_m_sender").unwrap(), "relaying first: {rcpt}");
        assert!(!c.contains("Polite people"));
    }
}
