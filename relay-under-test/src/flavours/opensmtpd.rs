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
//! Not rendered: `access` (OpenSMTPD matches its rules once the recipient is
//! known, so a refused client or sender would be refused at RCPT instead of MAIL,
//! and `match ... reject` answers `550 Invalid recipient`), the mailertable's
//! per-domain entries, virtual tables, masquerading, banner text, size-limited
//! recipient counts and retry intervals (compiled-in scheduler backoff).

use super::{
    arrived_now, events, postmaster_aliases, relay_lists, sh, Flavour, FlavourError, MtaGroup, MtaUser, NativeConfig,
    QueueSnapshot, RelayEvent, RelayLists,
};
use crate::netns::RootFile;
use crate::{LabNetwork, QueuedMessage, RelayProfile};
use std::path::Path;

/// The OpenSMTPD flavour.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenSmtpd;

fn quoted(list: &[String]) -> String {
    list.iter().map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(", ")
}

/// The rendered `smtpd.conf`, `snippet` before the rules.
pub fn render_conf(profile: &RelayProfile, net: &LabNetwork, snippet: &str) -> Result<String, FlavourError> {
    let RelayLists { relay_to, relay_from, local_names } = relay_lists(profile, "*.")?;
    let host = profile.hostname.trim_end_matches('.');
    let ip = net.virtual_ip;
    let mut local = vec![host.to_string(), "localhost".to_string()];
    local.extend(local_names);
    let mut s = String::new();
    s.push_str("# relaylab: rendered from the relay profile\n");
    s.push_str(&format!("listen on {ip} port 25 hostname {host}\n"));
    s.push_str("table aliases file:/etc/aliases\n");
    s.push_str(&format!("table localnames {{ {} }}\n", quoted(&local)));
    if !relay_to.is_empty() {
        s.push_str(&format!("table relaydomains {{ {} }}\n", quoted(&relay_to)));
    }
    s.push_str(&format!("table relaynets {{ {} }}\n", relay_from.join(", ")));
    if profile.max_message_size > 0 {
        s.push_str(&format!("smtp max-message-size {}\n", profile.max_message_size));
    }
    // smart_host (or the mailertable's `.`), A record only: `relay host` does no MX lookup
    let via = match super::policy::default_route(profile) {
        Some((h, true)) => format!(" host smtp://{h}"),
        _ => String::new(),
    };
    s.push_str(&format!("action \"local\" mbox alias <aliases>\naction \"relay\" relay{via} helo {host} src {ip}\n"));
    // profile hook: tables for the routing table (action ... relay host), access by
    // client and sender (match !from src / mail-from ... reject), virtual aliases
    // (action ... virtual <table>) and the size limit (smtp max-message-size) go here.
    if !snippet.is_empty() {
        s.push_str("# relaylab: the scenario's snippet\n");
        s.push_str(snippet);
        s.push('\n');
    }
    s.push_str("match from any for domain <localnames> action \"local\"\n");
    if !relay_to.is_empty() {
        s.push_str("match from any for domain <relaydomains> action \"relay\"\n");
    }
    s.push_str("match from src <relaynets> for any action \"relay\"\n");
    // the relay's own bounces come in through its local socket; `from local`
    // would match every client here (all lab addresses are on lo)
    s.push_str("match from socket for any action \"relay\"\n");
    if profile.promiscuous_relay {
        s.push_str("match from any for any action \"relay\"\n");
    }
    Ok(s)
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

    const RENDERED_KEYS: &'static [&'static str] = &["promiscuous_relay", "smart_host", "mailertable", "max_message_size"];

    fn value_gaps(&self, profile: &RelayProfile) -> Vec<(&'static str, String)> {
        use super::policy::{mailertable, smart_host, MtKey};
        let mut gaps = Vec::new();
        if mailertable(profile).iter().any(|(k, _)| *k != MtKey::Default) {
            gaps.push(("mailertable", "entries other than `.`: a per-domain relay rule would also open relaying".into()));
        }
        if let Some((_, false)) = super::policy::default_route(profile) {
            let key = if smart_host(profile).is_some() && mailertable(profile).is_empty() { "smart_host" } else { "mailertable" };
            gaps.push((key, "a host without [brackets]: `relay host` does no MX lookup".into()));
        }
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
        let conf = match native {
            NativeConfig::Rendered => render_conf(profile, net, "")?,
            NativeConfig::Snippet(s) => render_conf(profile, net, s)?,
            NativeConfig::Whole(w) => place_whole(w, net),
        };
        Ok(vec![RootFile::new("/etc/smtpd.conf", conf), postmaster_aliases()])
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
}
