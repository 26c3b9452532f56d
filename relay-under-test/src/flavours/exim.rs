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

use super::{
    arrived_now, events, postmaster_aliases, relay_lists, sh, timeout_secs, Flavour, FlavourError, MtaGroup, MtaUser,
    NativeConfig, QueueSnapshot, RelayEvent,
};
use crate::netns::RootFile;
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

/// The whole rendered configuration, `snippet` at the end of the main section.
pub fn render_conf(profile: &RelayProfile, net: &LabNetwork, snippet: &str) -> Result<String, FlavourError> {
    let lists = relay_lists(profile, "*.")?;
    let host = profile.hostname.trim_end_matches('.');
    let mut local = vec!["@".to_string(), "localhost".to_string()];
    local.extend(lists.local_names);
    let t = timeout_secs(profile);
    let mut s = lab_options(net);
    s.push_str("\n# relaylab: rendered from the relay profile\n");
    s.push_str(&format!("primary_hostname = {host}\n"));
    s.push_str(&format!("domainlist local_domains = {}\n", local.join(" : ")));
    s.push_str(&format!("domainlist relay_to_domains = {}\n", lists.relay_to.join(" : ")));
    s.push_str(&format!("hostlist relay_from_hosts = {}\n", lists.relay_from.join(" : ")));
    s.push_str(&format!("received_headers_max = {}\n", profile.max_hop_count));
    s.push_str("acl_smtp_rcpt = acl_check_rcpt\nhost_lookup = *\n");
    s.push_str("ignore_bounce_errors_after = 2d\ntimeout_frozen_after = 7d\n");
    // profile hook: message_size_limit, recipients_max, an access ACL (hosts/senders
    // lsearch files), a manualroute router for the routing table, a redirect router
    // for virtual aliases and aliases, and the retry section go here.
    if !snippet.is_empty() {
        s.push_str("\n# relaylab: the scenario's snippet\n");
        s.push_str(snippet);
        s.push('\n');
    }
    s.push_str(&format!(
        r#"
begin acl

acl_check_rcpt:
  accept  hosts = :
  accept  domains = +local_domains
          verify = recipient
  accept  domains = +relay_to_domains
  accept  hosts = +relay_from_hosts
  deny    message = relay not permitted

begin routers

dnslookup:
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

*   *   F,2h,15m; G,16h,1h,1.5; F,4d,6h
"#,
        ip = net.virtual_ip
    ));
    Ok(s)
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
        Ok(vec![RootFile::new("/etc/exim4/exim4.conf", conf), postmaster_aliases()])
    }

    fn prepare(&self) -> Vec<Vec<String>> {
        vec![sh(PREPARE)]
    }

    fn start(&self) -> Vec<String> {
        vec![EXIM.into(), "-bd".into(), "-q30m".into()]
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
        // a message line: " 0m   444 1xUjVJ-0006AW-2N <a@lying.com>" (age, size, id, sender)
        if f.len() >= 4 && f[2].matches('-').count() == 2 && f[1].parse::<u64>().is_ok() {
            snap.messages.push(QueuedMessage {
                qid: f[2].to_string(),
                sender: f[3].to_string(),
                recipients: Vec::new(),
                size: f[1].parse().unwrap_or(0),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
