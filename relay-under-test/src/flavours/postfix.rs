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

use super::{
    events, postmaster_aliases, relay_lists, timeout_secs, Flavour, FlavourError, ListingReader, MtaGroup, MtaUser,
    NativeConfig, QueueSnapshot, RelayEvent,
};
use crate::netns::RootFile;
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

/// The `main.cf` lines the profile gives.
pub fn render_profile(profile: &RelayProfile) -> Result<String, FlavourError> {
    let lists = relay_lists(profile, ".")?;
    let host = profile.hostname.trim_end_matches('.');
    let mut dest = vec!["$myhostname".to_string(), "localhost".to_string()];
    dest.extend(lists.local_names);
    let t = timeout_secs(profile);
    let mut s = String::new();
    s.push_str("\n# --- relaylab: rendered from the relay profile ---\n");
    s.push_str(&format!("myhostname = {host}\nmyorigin = $myhostname\n"));
    s.push_str(&format!("mydestination = {}\n", dest.join(", ")));
    s.push_str(&format!("relay_domains = {}\n", lists.relay_to.join(", ")));
    s.push_str(&format!("mynetworks = {}\n", lists.relay_from.join(", ")));
    s.push_str("smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n");
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
    // no local mailboxes (the course's relay has none): local names answer User unknown
    s.push_str("alias_maps =\nalias_database =\nlocal_recipient_maps = proxy:unix:passwd.byname $alias_maps\n");
    // profile hook: transport_maps (routing table), smtpd_client/sender_restrictions with
    // access maps, virtual_alias_maps, masquerade_domains, message_size_limit,
    // smtpd_recipient_limit, retry intervals go here once RelayProfile carries them.
    Ok(s)
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
        let main = match native {
            NativeConfig::Rendered => format!("{packaged}{}", render_profile(profile)?),
            NativeConfig::Snippet(s) => {
                format!("{packaged}{}\n# --- relaylab: the scenario's snippet ---\n{s}\n", render_profile(profile)?)
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
        Ok(vec![
            RootFile::new("/etc/postfix/main.cf", main),
            RootFile::new("/etc/postfix/master.cf", unchroot_master_cf(&read("usr/share/postfix/master.cf.dist")?)),
            RootFile::new("/etc/postfix/dynamicmaps.cf", read("usr/share/postfix/dynamicmaps.cf")?),
            // what the package's postinst copies to $meta_directory (set-permissions checks them)
            RootFile::new("/etc/postfix/main.cf.proto", read("usr/share/postfix/main.cf.dist")?),
            RootFile::new("/etc/postfix/master.cf.proto", read("usr/share/postfix/master.cf.dist")?),
            RootFile::new("/etc/postfix/makedefs.out", read("usr/share/postfix/makedefs.out")?),
            postmaster_aliases(),
        ])
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
}
