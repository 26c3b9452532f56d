//! Real MTAs behind [`RelayUnderTest`]: Postfix, Sendmail, Exim and OpenSMTPD,
//! each run from its own unpacked Debian tree in a private root inside a lab
//! network namespace ([`crate::netns`]).
//!
//! A [`Flavour`] knows one MTA: how to render the MTA-neutral
//! [`RelayProfile`] (common subset) into native configuration, how to take a
//! user's native snippet or whole file ([`NativeConfig`]), which users it
//! needs, and the commands that prepare, start, stop, flush and list its
//! queue. [`RealRelay`] drives any flavour through the same steps:
//!
//! 1. render files (configuration, `/etc/passwd` with the MTA's users,
//!    `/etc/hosts`, `/etc/resolv.conf` pointing at the lab DNS only);
//! 2. build the private root ([`MtaRoot::start`]) and write them in;
//! 3. run the flavour's prepare commands (set permissions, compile `.mc`);
//! 4. start the daemon and wait until it listens on `<lab address>:25`;
//!    a start that fails returns the MTA's own syslog lines.
//!
//! Talks to the MTA through its own tools (`postqueue`, `mailq`, `exim -bp`,
//! `smtpctl`) and its syslog (`/dev/log` of the root).
//!
//! Each flavour lists the profile keys it renders ([`Flavour::RENDERED_KEYS`])
//! and, among those, the values it cannot carry ([`Flavour::value_gaps`]);
//! [`unrendered_key`] answers for the harness, which marks a lab n/a on a
//! flavour that cannot render one of its keys. The neutral reading of the
//! policy tables is in [`policy`]; what each flavour renders and how is in
//! its module's table and in `docs/relay-profile.md` ("Real MTAs").

pub mod events;
pub mod exim;
pub mod opensmtpd;
pub mod policy;
pub mod postfix;
pub mod sendmail;

use crate::netns::{LabNamespace, MtaRoot, NetnsError, RootFile};
use crate::profile::RelayEntry;
use crate::{LabNetwork, QueuedMessage, RelayProfile, RelayUnderTest};
use async_trait::async_trait;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use events::{EventKind, RelayEvent};
pub use exim::Exim;
pub use opensmtpd::OpenSmtpd;
pub use policy::unrendered_key;
pub use postfix::Postfix;
pub use sendmail::Sendmail;

/// Postfix under test.
pub type PostfixRelay = RealRelay<Postfix>;
/// Sendmail under test.
pub type SendmailRelay = RealRelay<Sendmail>;
/// Exim under test.
pub type EximRelay = RealRelay<Exim>;
/// OpenSMTPD under test.
pub type OpenSmtpdRelay = RealRelay<OpenSmtpd>;

/// The names of the real flavours, as `relaylab matrix --relay` would take them.
pub const REAL_FLAVOURS: [&str; 4] = ["postfix", "sendmail", "exim", "opensmtpd"];

/// Where `mta/install.sh` unpacked the trees: `$RELAYLAB_MTA_DIR`, default
/// `/opt/relaylab/mta`.
pub fn mta_dir() -> PathBuf {
    std::env::var_os("RELAYLAB_MTA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/opt/relaylab/mta"))
}

/// The root of one flavour's tree.
pub fn tree_of(flavour: &str) -> PathBuf {
    mta_dir().join(flavour).join("root")
}

/// True when `mta/install.sh` has unpacked this flavour.
pub fn installed(flavour: &str) -> bool {
    mta_dir().join(flavour).join("VERSIONS").is_file() && tree_of(flavour).join("usr").is_dir()
}

/// How the scenario configures the MTA natively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NativeConfig {
    /// Only what the profile renders.
    #[default]
    Rendered,
    /// Native text added to the rendered main configuration (Postfix: `main.cf`
    /// lines, a later setting wins; Sendmail: `.mc` lines before the MAILER
    /// lines; Exim: main-section options; OpenSMTPD: `smtpd.conf` lines before
    /// the rendered rules, first match wins).
    Snippet(String),
    /// A user's whole native file (`main.cf`, `sendmail.mc`, Exim's
    /// configuration, `smtpd.conf`) used instead of the rendered one. The lab
    /// still adds what places the MTA in the lab (listen address, no chroot,
    /// syslog), as each flavour documents.
    Whole(String),
}

/// Why a real relay could not be configured, started or asked something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlavourError {
    /// The namespace plumbing failed (includes "needs root").
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The flavour's tree is not unpacked.
    #[error("{flavour} is not installed under {dir}: run relay-under-test/mta/install.sh as root")]
    NotInstalled {
        /// Which flavour.
        flavour: String,
        /// Where it was looked for.
        dir: String,
    },
    /// The profile or native configuration cannot be rendered for this MTA.
    #[error("{flavour}: {why}")]
    Render {
        /// Which flavour.
        flavour: String,
        /// What cannot be done.
        why: String,
    },
    /// The MTA did not come up.
    #[error("{flavour} did not start: {detail}\n  its log:\n    {}", .log.join("\n    "))]
    Start {
        /// Which flavour.
        flavour: String,
        /// What was seen.
        detail: String,
        /// The MTA's syslog lines so far.
        log: Vec<String>,
    },
}

/// What a queue listing says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// Messages held.
    pub messages: Vec<QueuedMessage>,
    /// Messages being delivered right now, or not yet tried.
    pub busy: usize,
}

/// A user an MTA runs as: `(name, uid, gid, home)`.
pub type MtaUser = (&'static str, u32, u32, &'static str);
/// A group: `(name, gid, members)`.
pub type MtaGroup = (&'static str, u32, &'static str);

/// One MTA: its configuration language and its tools.
pub trait Flavour: Send + Sync + Default + 'static {
    /// `postfix`, `sendmail`, `exim`, `opensmtpd` (also the tree's folder).
    fn name(&self) -> &'static str;

    /// The profile keys beyond [`policy::COMMON_KEYS`] this flavour renders
    /// into native configuration with the same behaviour; any other key set
    /// away from its default makes a lab n/a on this flavour.
    const RENDERED_KEYS: &'static [&'static str];

    /// Keys of [`Self::RENDERED_KEYS`] whose value in `profile` this flavour
    /// cannot carry, each with the reason (`("access", "Connect: entries by host name")`).
    fn value_gaps(&self, _profile: &RelayProfile) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// The users and groups the MTA runs as: `(name, uid, gid, home)` and
    /// `(name, gid, members)`. Added to the root's `/etc/passwd` and `/etc/group`.
    fn users(&self) -> (Vec<MtaUser>, Vec<MtaGroup>);

    /// Native configuration files for the profile in this lab.
    fn render(
        &self,
        tree: &std::path::Path,
        profile: &RelayProfile,
        net: &LabNetwork,
        native: &NativeConfig,
    ) -> Result<Vec<RootFile>, FlavourError>;

    /// Commands run in the root before start, in order (each must succeed).
    fn prepare(&self) -> Vec<Vec<String>>;

    /// The start command (must return once the daemon runs in the background).
    fn start(&self) -> Vec<String>;

    /// The clean stop command.
    fn stop(&self) -> Vec<String>;

    /// Trigger a queue run.
    fn queue_run(&self) -> Vec<String>;

    /// List the queue.
    fn mailq(&self) -> Vec<String>;

    /// Parse the queue listing.
    fn parse_mailq(&self, text: &str) -> QueueSnapshot;

    /// Turn one syslog line of this MTA into events.
    fn events(&self, line: &str) -> Vec<RelayEvent>;
}

/// A real MTA in a private root inside a lab namespace.
pub struct RealRelay<F: Flavour> {
    flavour: F,
    root: MtaRoot,
    addr: SocketAddr,
    stopped: AtomicBool,
    last_queue: Mutex<QueueSnapshot>,
}

impl<F: Flavour> std::fmt::Debug for RealRelay<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealRelay").field("flavour", &self.flavour.name()).field("addr", &self.addr).finish()
    }
}

/// Common files every flavour's root gets: hosts, resolv.conf (the lab DNS
/// only), mailname, hostname, and passwd/group with the MTA's users.
pub fn common_files<F: Flavour>(flavour: &F, profile: &RelayProfile, net: &LabNetwork) -> Vec<RootFile> {
    let host = profile.hostname.trim_end_matches('.');
    let short = profile.short_hostname();
    let (users, groups) = flavour.users();
    let mut passwd =
        std::fs::read_to_string("/etc/passwd").unwrap_or_else(|_| "root:x:0:0:root:/root:/bin/sh\n".into());
    let mut group = std::fs::read_to_string("/etc/group").unwrap_or_else(|_| "root:x:0:\n".into());
    for (name, uid, gid, home) in users {
        if !passwd.lines().any(|l| l.split(':').next() == Some(name)) {
            passwd.push_str(&format!("{name}:x:{uid}:{gid}:relaylab {name}:{home}:/usr/sbin/nologin\n"));
        }
    }
    for (name, gid, members) in groups {
        if !group.lines().any(|l| l.split(':').next() == Some(name)) {
            group.push_str(&format!("{name}:x:{gid}:{members}\n"));
        }
    }
    vec![
        RootFile::new("/etc/passwd", passwd),
        RootFile::new("/etc/group", group),
        RootFile::new("/etc/hosts", format!("127.0.0.1\tlocalhost\n{}\t{host} {short}\n", net.virtual_ip)),
        RootFile::new(
            "/etc/resolv.conf",
            format!("# the lab's DNS only\nnameserver {}\noptions attempts:2 timeout:2\n", net.dns.ip()),
        ),
        RootFile::new("/etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"),
        RootFile::new("/etc/mailname", format!("{host}\n")),
        RootFile::new("/etc/hostname", format!("{host}\n")),
    ]
}

/// The profile's relay entries split into domains and client networks (CIDR).
pub fn relay_split(profile: &RelayProfile) -> Result<(Vec<String>, Vec<String>), FlavourError> {
    let entries =
        profile.relay_entries().map_err(|e| FlavourError::Render { flavour: "profile".into(), why: e.to_string() })?;
    let mut domains = Vec::new();
    let mut nets = Vec::new();
    for e in entries {
        match e {
            RelayEntry::Domain(d) => domains.push(d),
            RelayEntry::IpPrefix(p) => nets.push(prefix_cidr(&p)),
        }
    }
    Ok((domains, nets))
}

/// The relay entries and local names of the profile as the Postfix, Exim and
/// OpenSMTPD renderings list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelayLists {
    /// The `relay_domains` names, each followed by the pattern for its
    /// subdomains unless `relay_hosts_only`.
    pub relay_to: Vec<String>,
    /// The clients that may relay: `127.0.0.0/8` (Sendmail relays for
    /// localhost) and the `relay_domains` IP prefixes as CIDR.
    pub relay_from: Vec<String>,
    /// `local_host_names`, lower case, without trailing dots.
    pub local_names: Vec<String>,
}

/// The profile's [`RelayLists`]; a domain's subdomains are written
/// `{subdomains}{domain}` (`.` for Postfix, `*.` for Exim and OpenSMTPD).
pub(crate) fn relay_lists(profile: &RelayProfile, subdomains: &str) -> Result<RelayLists, FlavourError> {
    let (domains, nets) = relay_split(profile)?;
    let mut relay_to = Vec::new();
    for d in domains {
        let below = (!profile.relay_hosts_only).then(|| format!("{subdomains}{d}"));
        relay_to.push(d);
        relay_to.extend(below);
    }
    let mut relay_from = vec!["127.0.0.0/8".to_string()];
    relay_from.extend(nets);
    let local_names = profile.local_host_names.iter().map(|n| n.trim_end_matches('.').to_ascii_lowercase()).collect();
    Ok(RelayLists { relay_to, relay_from, local_names })
}

/// The profile's `smtp_timeout` in whole seconds, at least one.
pub(crate) fn timeout_secs(profile: &RelayProfile) -> u64 {
    profile.smtp_timeout.as_secs().max(1)
}

/// The `/etc/aliases` of an MTA that has no local mailboxes.
pub(crate) fn postmaster_aliases() -> RootFile {
    RootFile::new("/etc/aliases", "postmaster: root\n")
}

/// A command that runs `script` with `sh -c` in the root.
pub(crate) fn sh(script: impl Into<String>) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// `[10, 1, 1]` → `10.1.1.0/24`.
pub fn prefix_cidr(p: &[u8]) -> String {
    let mut o = p.to_vec();
    let bits = o.len() * 8;
    o.resize(4, 0);
    format!("{}.{}.{}.{}/{bits}", o[0], o[1], o[2], o[3])
}

fn argv(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

impl<F: Flavour> RealRelay<F> {
    /// Render, build the root in `ns`, prepare and start the MTA on
    /// `net.listen` (a lab address, port 25), which is added to the namespace.
    /// `net.dns` must be on port 53 (resolv.conf has no port) and
    /// `net.smtp_port` 25 (real MTAs deliver to port 25).
    pub async fn start(
        ns: Arc<LabNamespace>,
        profile: RelayProfile,
        net: LabNetwork,
        native: NativeConfig,
    ) -> Result<RealRelay<F>, FlavourError> {
        let flavour = F::default();
        let name = flavour.name();
        let render_err = |why: String| FlavourError::Render { flavour: name.into(), why };
        if !installed(name) {
            return Err(FlavourError::NotInstalled {
                flavour: name.into(),
                dir: mta_dir().join(name).display().to_string(),
            });
        }
        profile.validate().map_err(|e| render_err(e.to_string()))?;
        if net.dns.port() != 53 {
            return Err(render_err(format!(
                "the lab DNS must listen on port 53 for a real MTA (resolv.conf has no port), not {}",
                net.dns
            )));
        }
        if net.smtp_port != 25 {
            return Err(render_err(format!(
                "real MTAs deliver to port 25; the lab's hosts listen on {}",
                net.smtp_port
            )));
        }
        if net.listen.ip() != net.virtual_ip {
            return Err(render_err(format!(
                "on the netns backend the relay listens on its lab address: listen {} but virtual_ip {}",
                net.listen, net.virtual_ip
            )));
        }
        let tree = tree_of(name);
        let mut files = common_files(&flavour, &profile, &net);
        files.extend(flavour.render(&tree, &profile, &net, &native)?);
        ns.add_address(net.virtual_ip)?;
        let root = MtaRoot::start(ns, &tree, profile.hostname.trim_end_matches('.'), &files).await?;
        let addr = SocketAddr::new(net.virtual_ip, net.listen.port());
        let relay = RealRelay {
            flavour,
            root,
            addr,
            stopped: AtomicBool::new(false),
            last_queue: Mutex::new(QueueSnapshot::default()),
        };
        let start_err = |detail: String, root: &MtaRoot| FlavourError::Start {
            flavour: name.into(),
            detail,
            log: root.log_lines(),
        };
        for cmd in relay.flavour.prepare() {
            if let Err(e) = relay.root.run(&argv(&cmd), Duration::from_secs(60)).await {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Err(start_err(e.to_string(), &relay.root));
            }
        }
        if let Err(e) = relay.root.run(&argv(&relay.flavour.start()), Duration::from_secs(30)).await {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Err(start_err(e.to_string(), &relay.root));
        }
        relay.wait_listening(Duration::from_secs(20)).await.map_err(|d| start_err(d, &relay.root))?;
        Ok(relay)
    }

    async fn wait_listening(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let port = format!(":{}", self.addr.port());
        let want = format!("{}{port}", self.addr.ip());
        loop {
            let (_, out) =
                self.root.run_status(&["ss", "-Hltn"], Duration::from_secs(5)).await.map_err(|e| e.to_string())?;
            if out.split_whitespace().any(|w| w == want || w == format!("0.0.0.0{port}") || w == format!("*{port}")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("nothing listens on {} after {limit:?}", self.addr));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The flavour.
    pub fn flavour_impl(&self) -> &F {
        &self.flavour
    }

    /// The private root (run commands in it, read its files).
    pub fn root(&self) -> &MtaRoot {
        &self.root
    }

    /// Ask the MTA for a queue run now.
    pub async fn queue_run(&self) -> Result<(), FlavourError> {
        self.root.run(&argv(&self.flavour.queue_run()), Duration::from_secs(30)).await?;
        Ok(())
    }

    /// List the queue with the MTA's own tool.
    pub async fn read_queue(&self) -> Result<QueueSnapshot, FlavourError> {
        let (_, out) = self.root.run_status(&argv(&self.flavour.mailq()), Duration::from_secs(15)).await?;
        let snap = self.flavour.parse_mailq(&out);
        *self.last_queue.lock().unwrap() = snap.clone();
        Ok(snap)
    }

    /// SIGKILL the MTA's processes (a crash); the root stays for inspection.
    pub fn kill(&self) {
        self.root.kill_processes();
    }

    /// The log so far as events of the shared model.
    pub fn events(&self) -> Vec<RelayEvent> {
        let log = self.root.log_lines();
        let mut out: Vec<RelayEvent> = log.iter().flat_map(|l| self.flavour.events(l)).collect();
        events::join_log(&mut out, &log);
        out
    }
}

#[async_trait]
impl<F: Flavour> RelayUnderTest for RealRelay<F> {
    fn flavour(&self) -> &str {
        self.flavour.name()
    }

    fn smtp_addr(&self) -> SocketAddr {
        self.addr
    }

    fn log_lines(&self) -> Vec<String> {
        self.root.log_lines()
    }

    /// Real MTAs do not hand out their outbound transcripts; the lab's MX
    /// sinks record the server side of every session.
    fn outbound_sessions(&self) -> Vec<lab_core::Transcript> {
        Vec::new()
    }

    /// Runs the MTA's queue lister (a blocking call of some 10 ms); when it
    /// fails, the last listing read.
    fn queue(&self) -> Vec<QueuedMessage> {
        if self.stopped.load(Ordering::SeqCst) {
            return self.last_queue.lock().unwrap().messages.clone();
        }
        let mut cmd: std::process::Command = self.root.command(&argv(&self.flavour.mailq())).into_std();
        match cmd.output() {
            Ok(out) => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                let snap = self.flavour.parse_mailq(&text);
                *self.last_queue.lock().unwrap() = snap.clone();
                snap.messages
            }
            Err(_) => self.last_queue.lock().unwrap().messages.clone(),
        }
    }

    async fn settle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut quiet = 0;
        let mut last_len = usize::MAX;
        loop {
            let busy = match self.read_queue().await {
                Ok(s) => s.busy,
                Err(_) => 1,
            };
            let len = self.root.log_lines().len();
            // settled: nothing busy in two listings in a row with no new log line between
            if busy == 0 && len == last_len {
                quiet += 1;
                if quiet >= 2 {
                    return true;
                }
            } else {
                quiet = 0;
            }
            last_len = len;
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.read_queue().await;
        let _ = self.root.run(&argv(&self.flavour.stop()), Duration::from_secs(15)).await;
        self.root.kill_processes();
    }
}

/// A lab address of the relay as `LabNetwork` wants it on the netns backend:
/// listen = lab address:25, DNS on port 53, hosts on port 25, identity map.
pub fn netns_lab_network(relay_ip: IpAddr, dns_ip: IpAddr) -> LabNetwork {
    LabNetwork {
        listen: SocketAddr::new(relay_ip, 25),
        virtual_ip: relay_ip,
        dns: SocketAddr::new(dns_ip, 53),
        smtp_port: 25,
        addresses: lab_core::AddressMap::identity(),
        clock: lab_core::clock::wall(),
    }
}

/// Reads a queue listing in which each message line is followed by indented
/// lines: `(reason)` for its last error, any other line a recipient
/// (`postqueue -p`, `sendmail -bp`). A message is busy while it is active or
/// has not failed yet.
#[derive(Debug, Default)]
pub(crate) struct ListingReader {
    snap: QueueSnapshot,
    current: Option<(QueuedMessage, bool)>,
}

impl ListingReader {
    /// End the message being read, if any.
    pub(crate) fn end_message(&mut self) {
        if let Some((m, active)) = self.current.take() {
            if active || m.last_error.is_none() {
                self.snap.busy += 1;
            }
            self.snap.messages.push(m);
        }
    }

    /// Start a message, ending the one before; `active` when it is being
    /// delivered now.
    pub(crate) fn start_message(&mut self, qid: String, sender: String, size: u64, active: bool) {
        self.end_message();
        let m = QueuedMessage { qid, sender, recipients: Vec::new(), size, last_error: None, arrived: arrived_now() };
        self.current = Some((m, active));
    }

    /// An indented line of the current message, trimmed; before the first
    /// message it is ignored.
    pub(crate) fn detail(&mut self, line: &str) {
        if let Some((m, _)) = self.current.as_mut() {
            if let Some(reason) = line.strip_prefix('(') {
                m.last_error = Some(reason.trim_end_matches(')').to_string());
            } else {
                m.recipients.push(line.to_string());
            }
        }
    }

    /// The listing read, its last message ended.
    pub(crate) fn finish(mut self) -> QueueSnapshot {
        self.end_message();
        self.snap
    }
}

/// Parse a `mailq` arrival date loosely into UTC now (the queue listers print
/// local dates without a year; the exact arrival is in the log).
pub(crate) fn arrived_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_become_cidr() {
        assert_eq!(prefix_cidr(&[10, 1, 1]), "10.1.1.0/24");
        assert_eq!(prefix_cidr(&[192, 168]), "192.168.0.0/16");
        assert_eq!(prefix_cidr(&[10, 1, 2, 7]), "10.1.2.7/32");
    }

    #[test]
    fn relay_entries_split() {
        let mut p = RelayProfile::new("external.sysiphus.com");
        p.relay_domains = vec!["sysiphus.com".into(), "10.1.1".into()];
        assert_eq!(relay_split(&p).unwrap(), (vec!["sysiphus.com".to_string()], vec!["10.1.1.0/24".to_string()]));
    }
}
