//! Sendmail (Debian 8.17) under test, built from a course-style `sendmail.mc`.
//!
//! The rendered `.mc` includes `cf.m4` from sendmail-cf, `OSTYPE(debian)` (the
//! package's paths), and the profile; a snippet goes before the MAILER lines;
//! a whole `.mc` from the scenario replaces it (it may `include(../m4/cf.m4)`:
//! m4 runs in `/usr/share/sendmail/cf/cf`; one that includes no `cf.m4` gets
//! it on the m4 command line, as sendmail-cf's Build does).
//!
//! After m4, the compiled `sendmail.cf` is placed in the lab: every
//! `O DaemonPortOptions` gets `Addr=<lab address>` (one is added when there is
//! none), `O ClientPortOptions` gets the same source address, and
//! `O DontProbeInterfaces=True` is forced: every lab address sits on the lab
//! namespace's `lo`, so probed interfaces would make every lab client "this
//! host" and let it relay (seen with a course `.mc` that did not set it). Map sources
//! present in `/etc/mail` (`access`, `mailertable`, `virtusertable`,
//! `genericstable`, `domaintable`) are compiled with makemap, `aliases` with
//! `sendmail -bi`.
//!
//! Profile mapping:
//! | profile | sendmail.mc / files |
//! |---|---|
//! | `hostname` | `confDOMAIN_NAME` (`$j`), also the root's host name |
//! | `local_host_names` | `/etc/mail/local-host-names` (class w) |
//! | `relay_domains` | `/etc/mail/relay-domains` (class R; names and IP prefixes as they are) |
//! | `relay_hosts_only` | `FEATURE(relay_hosts_only)` |
//! | `max_hop_count` | `confMAX_HOP` |
//! | `smtp_timeout` | `confTO_{HELO,MAIL,RCPT,DATAINIT,DATABLOCK,DATAFINAL}` |
//! | `daemon_name` | `Name=` of `DAEMON_OPTIONS` |
//! | `log_tag` | `-L` on the daemon's command line |
//! | `access`, `mailertable`, `domaintable`, `virtusertable`, `virtuser_domains` | `/etc/mail/<map>` (makemap hash) and its FEATURE / `VIRTUSER_DOMAIN_FILE` |
//! | `aliases`, `include_files` | `/etc/mail/aliases` (`sendmail -bi`), the files at their paths |
//! | `smart_host`, `mail_hub`, `luser_relay` | `SMART_HOST`, `MAIL_HUB`, `LUSER_RELAY` |
//! | `masquerade_as`, `masquerade_envelope`, `allmasquerade`, `exposed_users` | `MASQUERADE_AS`, FEATUREs, `EXPOSED_USER` |
//! | `smtp_login_msg`, `privacy_flags` | `confSMTP_LOGIN_MSG`, `confPRIVACY_FLAGS` |
//! | `promiscuous_relay`, `relay_entire_domain`, `blacklist_recipients`, `delay_checks`, `accept_unresolvable_domains`, `accept_unqualified_senders`, `greet_pause` | the FEATUREs of those names |
//! | `max_message_size`, `max_rcpts_per_message` | `confMAX_MESSAGE_SIZE`, `confMAX_RCPTS_PER_MESSAGE` |
//! | `queue_interval` | the daemon's `-q<interval>` (on the wall clock) |
//! | `queuewarn`, `queuereturn`, `min_queue_age`, `max_queue_run_size` | `confTO_QUEUEWARN`, `confTO_QUEUERETURN`, `confMIN_QUEUE_AGE`, `confMAX_QUEUE_RUN_SIZE` |
//! | `version`, `timezone`, `local_users` | not rendered: the real binary's version; the root's clock; no mailboxes yet |
//!
//! Not rendered (the lab is n/a): `dnsbl`, `greylist`, `connection_rate_throttle`,
//! `max_daemon_children`, `header_checks`, `local_users`, `queue_directory`.
//! `smtp_timeout` also sets `confTO_INITIAL` (the next hop's greeting), and
//! Debian's `HostStatusDirectory` is undefined (see [`render_mc`]).

use super::{
    events, sh, timeout_secs, Flavour, FlavourError, ListingReader, MtaGroup, MtaUser, NativeConfig, QueueSnapshot,
    RelayEvent,
};
use crate::netns::RootFile;
use crate::{LabNetwork, RelayProfile};
use std::path::Path;

/// The Sendmail flavour.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sendmail;

/// The daemon binary in the tree.
pub const SENDMAIL: &str = "/usr/libexec/sendmail/sendmail";

/// A course-style `sendmail.mc` for the profile, `snippet` before the MAILERs.
pub fn render_mc(profile: &RelayProfile, net: &LabNetwork, snippet: &str) -> String {
    let host = profile.hostname.trim_end_matches('.');
    let t = format!("{}s", timeout_secs(profile));
    let mut s = String::new();
    s.push_str("divert(-1)dnl\ndnl relaylab: rendered from the relay profile\ndivert(0)dnl\n");
    s.push_str("include(`/usr/share/sendmail/cf/m4/cf.m4')dnl\n");
    s.push_str("VERSIONID(`relaylab rendered profile')dnl\nOSTYPE(`debian')dnl\n");
    // Debian's OSTYPE keeps host status on disk (HostStatusDirectory): one failed
    // connection then marks the host down for every later process for
    // Timeout.hoststatus (30m), so mail arriving after the host came back is
    // deferred "(cached)" without a try. The generic .mc of the course has no such
    // directory: each process starts with a clean host status.
    s.push_str("undefine(`confHOST_STATUS_DIRECTORY')dnl\n");
    s.push_str(&format!("define(`confDOMAIN_NAME', `{host}')dnl\n"));
    s.push_str(&format!("define(`confMAX_HOP', `{}')dnl\n", profile.max_hop_count));
    // INITIAL: the wait for the next hop's greeting (a blackhole MX says nothing)
    for o in ["INITIAL", "HELO", "MAIL", "RCPT", "DATAINIT", "DATABLOCK", "DATAFINAL"] {
        s.push_str(&format!("define(`confTO_{o}', `{t}')dnl\n"));
    }
    s.push_str("define(`confDONT_PROBE_INTERFACES', `True')dnl\n");
    s.push_str("FEATURE(`no_default_msa')dnl\n");
    if profile.relay_hosts_only {
        s.push_str("FEATURE(`relay_hosts_only')dnl\n");
    }
    s.push_str(&render_policy_mc(profile));
    s.push_str(&format!(
        "DAEMON_OPTIONS(`Family=inet, Name={}, Addr={}, Port=smtp')dnl\n",
        profile.daemon_name, net.virtual_ip
    ));
    s.push_str(&format!("CLIENT_OPTIONS(`Family=inet, Addr={}')dnl\n", net.virtual_ip));
    if !snippet.is_empty() {
        s.push_str("dnl relaylab: the scenario's snippet\n");
        s.push_str(snippet);
        if !snippet.ends_with('\n') {
            s.push('\n');
        }
    }
    s.push_str("MAILER(`local')dnl\nMAILER(`smtp')dnl\n");
    s
}

/// The `.mc` lines for the profile's routing, address and relay-control
/// settings (the course's FEATUREs and defines); their map files come from
/// [`policy_files`]; also the size and recipient limits and the queue's
/// timeouts (the queue interval is the daemon's `-q`, see [`Sendmail::start`]).
pub fn render_policy_mc(p: &RelayProfile) -> String {
    use crate::profile::DelayChecks;
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push_str("dnl\n");
    };
    if let Some(m) = &p.smtp_login_msg {
        line(format!("define(`confSMTP_LOGIN_MSG', `{m}')"));
    }
    if !p.privacy_flags.is_empty() {
        line(format!("define(`confPRIVACY_FLAGS', `{}')", p.privacy_flags.join(",")));
    }
    for (on, feature) in [
        (p.promiscuous_relay, "promiscuous_relay"),
        (p.relay_entire_domain, "relay_entire_domain"),
        (p.accept_unresolvable_domains, "accept_unresolvable_domains"),
        (p.accept_unqualified_senders, "accept_unqualified_senders"),
        (p.masquerade_envelope, "masquerade_envelope"),
        (p.allmasquerade, "allmasquerade"),
    ] {
        if on {
            line(format!("FEATURE(`{feature}')"));
        }
    }
    if !p.access.is_empty() {
        line("FEATURE(`access_db')".into());
        if p.blacklist_recipients {
            line("FEATURE(`blacklist_recipients')".into());
        }
    }
    match p.delay_checks {
        DelayChecks::Off => {}
        DelayChecks::On => line("FEATURE(`delay_checks')".into()),
        DelayChecks::Friend => line("FEATURE(`delay_checks', `friend')".into()),
        DelayChecks::Hater => line("FEATURE(`delay_checks', `hater')".into()),
    }
    if p.greet_pause > 0 {
        line(format!("FEATURE(`greet_pause', `{}')", p.greet_pause));
    }
    if !p.mailertable.is_empty() {
        line("FEATURE(`mailertable')".into());
    }
    if !p.domaintable.is_empty() {
        line("FEATURE(`domaintable')".into());
    }
    if !p.virtusertable.is_empty() {
        line("FEATURE(`virtusertable')".into());
    }
    if !p.virtuser_domains.is_empty() {
        line("VIRTUSER_DOMAIN_FILE(`/etc/mail/virtuser-domains')".into());
    }
    for (name, v) in [("SMART_HOST", &p.smart_host), ("MAIL_HUB", &p.mail_hub), ("LUSER_RELAY", &p.luser_relay)] {
        if let Some(v) = v {
            line(format!("define(`{name}', `{v}')"));
        }
    }
    if let Some(m) = &p.masquerade_as {
        line(format!("MASQUERADE_AS(`{m}')"));
    }
    for u in &p.exposed_users {
        line(format!("EXPOSED_USER(`{u}')"));
    }
    if p.max_message_size > 0 {
        line(format!("define(`confMAX_MESSAGE_SIZE', `{}')", p.max_message_size));
    }
    if p.max_rcpts_per_message > 0 {
        line(format!("define(`confMAX_RCPTS_PER_MESSAGE', `{}')", p.max_rcpts_per_message));
    }
    line(format!("define(`confTO_QUEUEWARN', `{}s')", p.queuewarn.as_secs()));
    line(format!("define(`confTO_QUEUERETURN', `{}s')", super::policy::secs(p.queuereturn)));
    if !p.min_queue_age.is_zero() {
        line(format!("define(`confMIN_QUEUE_AGE', `{}s')", p.min_queue_age.as_secs()));
    }
    if p.max_queue_run_size > 0 {
        line(format!("define(`confMAX_QUEUE_RUN_SIZE', `{}')", p.max_queue_run_size));
    }
    s
}

fn lines_file(path: &str, lines: &[String]) -> RootFile {
    let mut text = lines.join("\n");
    text.push('\n');
    RootFile::new(path, text)
}

/// A class file (`relay-domains`, `local-host-names`): one name a line,
/// without trailing dots.
fn names_file(path: &str, names: &[String]) -> RootFile {
    let mut text = String::new();
    for n in names {
        text.push_str(n.trim_end_matches('.'));
        text.push('\n');
    }
    RootFile::new(path, text)
}

/// The profile's map sources and `:include:` files (compiled by the build script).
pub fn policy_files(p: &RelayProfile) -> Vec<RootFile> {
    let mut files = Vec::new();
    for (path, lines) in [
        ("/etc/mail/access", &p.access),
        ("/etc/mail/mailertable", &p.mailertable),
        ("/etc/mail/domaintable", &p.domaintable),
        ("/etc/mail/virtusertable", &p.virtusertable),
        ("/etc/mail/virtuser-domains", &p.virtuser_domains),
    ] {
        if !lines.is_empty() {
            files.push(lines_file(path, lines));
        }
    }
    let mut aliases = p.aliases.clone();
    for (name, target) in [("postmaster", "root"), ("MAILER-DAEMON", "postmaster")] {
        let lower = name.to_ascii_lowercase();
        if !aliases.iter().any(|a| a.split(':').next().map(|n| n.trim().to_ascii_lowercase()) == Some(lower.clone())) {
            aliases.push(format!("{name}: {target}"));
        }
    }
    files.push(lines_file("/etc/mail/aliases", &aliases));
    files.extend(super::policy::include_file_roots(p));
    // profile hook: local_users need passwd entries in the root (common_files
    // writes passwd from the flavour's users only, so they have no mailbox yet)
    files
}

/// The shell script that compiles `/etc/mail/sendmail.mc` and places the
/// result in the lab (see the module docs).
pub fn build_script(net: &LabNetwork, mc_includes_cf_m4: bool) -> String {
    let ip = net.virtual_ip;
    let pre = if mc_includes_cf_m4 { "" } else { "/usr/share/sendmail/cf/m4/cf.m4 " };
    format!(
        r#"set -e
mkdir -p /var/spool/mqueue /var/spool/mqueue-client /var/lib/sendmail/host_status /run/sendmail/mta
chmod 700 /var/spool/mqueue
chown smmsp:smmsp /var/spool/mqueue-client; chmod 770 /var/spool/mqueue-client
touch /etc/mail/local-host-names /etc/mail/relay-domains /etc/mail/trusted-users
cd /usr/share/sendmail/cf/cf
m4 {pre}/etc/mail/sendmail.mc > /etc/mail/sendmail.cf.new
grep -q '^O DaemonPortOptions=' /etc/mail/sendmail.cf.new || echo 'O DaemonPortOptions=Name=MTA' >> /etc/mail/sendmail.cf.new
# every lab address is on the namespace's lo: probed, they would all count as this host's own
sed -i -E '/^#? *O DontProbeInterfaces=/d' /etc/mail/sendmail.cf.new
echo 'O DontProbeInterfaces=True' >> /etc/mail/sendmail.cf.new
sed -i -E -e '/^O DaemonPortOptions=/{{s/,? *Addr=[^,]*//; s/$/, Addr={ip}/}}' \
  -e '/^O ClientPortOptions=/{{s/,? *Addr=[^,]*//; s/$/, Addr={ip}/}}' /etc/mail/sendmail.cf.new
mv /etc/mail/sendmail.cf.new /etc/mail/sendmail.cf
for m in access mailertable virtusertable genericstable domaintable; do
  [ -f /etc/mail/$m ] && /usr/libexec/sendmail/makemap hash /etc/mail/$m < /etc/mail/$m
done
{SENDMAIL} -bi >/dev/null
"#
    )
}

impl Flavour for Sendmail {
    fn name(&self) -> &'static str {
        "sendmail"
    }

    const RENDERED_KEYS: &'static [&'static str] = &[
        "access",
        "mailertable",
        "domaintable",
        "virtusertable",
        "virtuser_domains",
        "aliases",
        "include_files",
        "smart_host",
        "mail_hub",
        "luser_relay",
        "masquerade_as",
        "masquerade_envelope",
        "allmasquerade",
        "exposed_users",
        "smtp_login_msg",
        "privacy_flags",
        "promiscuous_relay",
        "relay_entire_domain",
        "blacklist_recipients",
        "delay_checks",
        "accept_unresolvable_domains",
        "accept_unqualified_senders",
        "greet_pause",
        "max_message_size",
        "max_rcpts_per_message",
        "queue_interval",
        "queuewarn",
        "queuereturn",
        "min_queue_age",
        "max_queue_run_size",
    ];

    fn users(&self) -> (Vec<MtaUser>, Vec<MtaGroup>) {
        (
            vec![("smmta", 60111, 60111, "/var/lib/sendmail"), ("smmsp", 60112, 60112, "/var/lib/sendmail")],
            vec![("smmta", 60111, ""), ("smmsp", 60112, "")],
        )
    }

    fn render(
        &self,
        _tree: &Path,
        profile: &RelayProfile,
        net: &LabNetwork,
        native: &NativeConfig,
    ) -> Result<Vec<RootFile>, FlavourError> {
        let (mc, includes) = match native {
            NativeConfig::Rendered => (render_mc(profile, net, ""), true),
            NativeConfig::Snippet(s) => (render_mc(profile, net, s), true),
            NativeConfig::Whole(w) => (w.clone(), w.contains("cf.m4")),
        };
        let mut build = RootFile::new("/etc/mail/relaylab-build.sh", build_script(net, includes));
        build.mode = 0o755;
        let mut files = vec![
            RootFile::new("/etc/mail/sendmail.mc", mc),
            names_file("/etc/mail/relay-domains", &profile.relay_domains),
            names_file("/etc/mail/local-host-names", &profile.local_host_names),
            RootFile::new("/etc/mail/relaylab-log-tag", format!("{}\n", profile.log_tag)),
            RootFile::new(
                "/etc/mail/relaylab-queue-interval",
                format!("{}s\n", super::policy::secs(profile.queue_interval)),
            ),
            build,
        ];
        files.extend(policy_files(profile));
        Ok(files)
    }

    fn prepare(&self) -> Vec<Vec<String>> {
        vec![vec!["sh".into(), "/etc/mail/relaylab-build.sh".into()]]
    }

    fn start(&self) -> Vec<String> {
        // the log tag and the queue interval come from the profile (written by render)
        sh(format!(
            "exec {SENDMAIL} -L \"$(cat /etc/mail/relaylab-log-tag)\" -bd -q\"$(cat /etc/mail/relaylab-queue-interval)\""
        ))
    }

    fn stop(&self) -> Vec<String> {
        sh("kill $(head -1 /run/sendmail/mta/sendmail.pid 2>/dev/null || head -1 /var/run/sendmail.pid)")
    }

    fn queue_run(&self) -> Vec<String> {
        // forget cached host status first (`-bH` purges only expired entries), or a
        // host that was down stays "down (cached)" for Timeout.hoststatus
        sh(format!(
            "rm -rf /var/lib/sendmail/host_status/*; exec {SENDMAIL} -L \"$(cat /etc/mail/relaylab-log-tag)\" -q"
        ))
    }

    fn mailq(&self) -> Vec<String> {
        vec![SENDMAIL.into(), "-bp".into()]
    }

    fn parse_mailq(&self, text: &str) -> QueueSnapshot {
        parse_sendmail_bp(text)
    }

    fn events(&self, line: &str) -> Vec<RelayEvent> {
        events::sendmail(line)
    }
}

/// Parse `sendmail -bp`.
pub fn parse_sendmail_bp(text: &str) -> QueueSnapshot {
    let mut listing = ListingReader::default();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty()
            || t.starts_with("-----Q-ID")
            || t.starts_with("Total requests")
            || t.starts_with('/')
            || t.starts_with("Warning:")
        {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            let f: Vec<&str> = t.split_whitespace().collect();
            if f.len() < 7 || f[1].parse::<u64>().is_err() {
                continue;
            }
            let active = f[0].ends_with(['*', 'X', '-']) && f[0].ends_with('*');
            let qid = f[0].trim_end_matches(['*', 'X', '-']).to_string();
            listing.start_message(qid, f[f.len() - 1].to_string(), f[1].parse().unwrap_or(0), active);
        } else {
            listing.detail(t);
        }
    }
    listing.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bp_listing() {
        let text = [
            "\t\t/var/spool/mqueue (2 requests)",
            "-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------",
            "6ALBgFg5009707     14 Sat Nov 21 11:42 <a@lying.com>",
            "                 (Deferred: Connection refused by internal.sysiphus.com.)",
            "\t\t\t\t\t <john@sysiphus.com>",
            "6ALBgFg5009708*    20 Sat Nov 21 11:43 <b@lying.com>",
            "\t\t\t\t\t <jim@sysiphus.com>",
            "\t\tTotal requests: 2",
        ]
        .join("\n");
        let text = text.as_str();
        let s = parse_sendmail_bp(text);
        assert_eq!(s.messages.len(), 2, "{s:?}");
        assert_eq!(s.busy, 1);
        assert_eq!(s.messages[0].last_error.as_deref(), Some("Deferred: Connection refused by internal.sysiphus.com."));
        assert_eq!(s.messages[0].recipients, vec!["<john@sysiphus.com>"]);
        assert_eq!(s.messages[1].qid, "6ALBgFg5009708");
        assert!(parse_sendmail_bp("/var/spool/mqueue is empty\n\t\tTotal requests: 0\n").messages.is_empty());
    }

    #[test]
    fn policy_renders_as_the_course_writes_it() {
        let y = "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com]\n\
                 mailertable: [\"sysiphus.com esmtp:[internal.sysiphus.com]\"]\n\
                 access: [\"From:foo.biz REJECT\"]\nmasquerade_as: sysiphus.com\naccept_unresolvable_domains: true\n";
        let p: RelayProfile = serde_yaml::from_str(y).unwrap();
        let mc = render_policy_mc(&p);
        for want in [
            "FEATURE(`access_db')dnl",
            "FEATURE(`mailertable')dnl",
            "MASQUERADE_AS(`sysiphus.com')dnl",
            "FEATURE(`accept_unresolvable_domains')dnl",
        ] {
            assert!(mc.contains(want), "{want} in {mc}");
        }
        let files = policy_files(&p);
        let access = files.iter().find(|f| f.path == "/etc/mail/access").unwrap();
        assert_eq!(access.contents, b"From:foo.biz REJECT\n");
        let aliases = files.iter().find(|f| f.path == "/etc/mail/aliases").unwrap();
        assert!(String::from_utf8_lossy(&aliases.contents).contains("postmaster: root"));
    }

    #[test]
    fn mc_renders_the_profile() {
        let mut p = RelayProfile::new("external.sysiphus.com");
        p.max_hop_count = 50;
        let net = super::super::netns_lab_network("192.0.2.25".parse().unwrap(), "192.0.2.53".parse().unwrap());
        let mc = render_mc(&p, &net, "define(`confPRIVACY_FLAGS', `goaway')dnl");
        assert!(mc.contains("define(`confMAX_HOP', `50')dnl"));
        assert!(mc.contains("DAEMON_OPTIONS(`Family=inet, Name=MTA, Addr=192.0.2.25, Port=smtp')dnl"));
        assert!(mc.find("goaway").unwrap() < mc.find("MAILER(`local')").unwrap());
    }
}
