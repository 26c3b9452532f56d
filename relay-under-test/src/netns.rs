//! The `netns` backend's plumbing: a private network namespace per lab, and a
//! private root (mount namespace + overlay + chroot) per real MTA.
//!
//! Talks to the kernel (`ip netns`, `setns(2)`, `unshare`, `nsenter`) and to
//! the MTA's syslog socket. Needs root; every entry point says so clearly when
//! it is missing ([`NetnsError::NotRoot`]).
//!
//! # The lab namespace
//! [`LabNamespace::create`] makes `relaylab-<random>` with only `lo`, up. Every
//! lab address (relay, mock DNS, MX hosts, clients) goes on `lo` as a `/32`
//! (the dummy link type is not available on every kernel), so nothing inside
//! can reach anything outside: there is no other interface and no route.
//! [`LabNamespace::enter`] runs a future on a thread that has joined the
//! namespace with `setns(2)`, so sockets the harness binds or connects there
//! (mock DNS, MX sinks, scripted clients) live in the lab; once made, they can
//! be used from any task. Dropping the guard kills what runs inside and
//! deletes the namespace.
//!
//! # The MTA root
//! A real MTA has paths compiled in (`/etc/postfix`, `/var/spool/...`) and the
//! four Debian MTAs cannot be installed side by side, so `mta/install.sh`
//! unpacks each into its own tree. [`MtaRoot::start`] builds, inside the lab
//! namespace and a private mount and UTS namespace:
//! - a tmpfs holding a copy of the tree, the overlay's upper and work folders;
//! - an overlay root: the tree laid over the host's `/`, writes going to the
//!   tmpfs (users, configuration, spool: nothing touches the host);
//! - a fresh `/dev` with `null`, `zero`, `full`, `random`, `urandom`, `tty` and
//!   `log`, the last being a bind mount of a datagram socket the harness
//!   listens on ([`SyslogListener`]): the MTA's syslog lines become the relay's
//!   log, and fatal start-up errors (Postfix reports those only to syslog) are
//!   seen;
//! - its own `/proc` and `/tmp`, and the hostname set to the relay's name;
//! - fresh tmpfs folders for the MTAs' spool, state and configuration folders
//!   (`/var/spool`, `/etc/postfix`, `/etc/mail`, `/etc/exim4`, `/var/lib/<mta>`),
//!   holding only the tree's files: an MTA installed on the host (its queue,
//!   its `main.cf`) never shows through;
//! - a holder process (`sleep infinity`, chrooted there) that keeps it all
//!   alive; commands run in it with `nsenter --target <holder> -m -n -u -r -w`.
//!
//! Files are written and read through `/proc/<holder>/root/...`.

use std::ffi::OsStr;
use std::fs;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// Where per-relay folders (the syslog socket) are made on the host.
pub const RUN_DIR: &str = "/run/relaylab";

/// What went wrong setting up or using a namespace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// Not running as root.
    #[error("the netns backend needs root: run as root or use the loopback backend")]
    NotRoot,
    /// A command failed.
    #[error("{command}: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status and stderr, or the spawn error.
        detail: String,
    },
    /// A command did not finish in time.
    #[error("{command}: no answer within {timeout:?}")]
    Timeout {
        /// The command line.
        command: String,
        /// The limit.
        timeout: Duration,
    },
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> NetnsError {
    let what = what.into();
    move |source| NetnsError::Io { what, source }
}

/// True when this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// [`NetnsError::NotRoot`] unless root.
pub fn require_root() -> Result<(), NetnsError> {
    if is_root() {
        Ok(())
    } else {
        Err(NetnsError::NotRoot)
    }
}

fn render_cmd<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    args.into_iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
}

/// Run a host command to completion (blocking), error with its stderr.
fn run_host(args: &[&str]) -> Result<String, NetnsError> {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetnsError::Command { command: render_cmd(args), detail: e.to_string() })?;
    if !out.status.success() {
        return Err(NetnsError::Command { command: render_cmd(args), detail: failure_detail(&out) });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// "exit status: stderr" of a command that failed.
fn failure_detail(out: &std::process::Output) -> String {
    format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())
}

/// SIGKILL `pid`.
fn sigkill(pid: u32) {
    // SAFETY: kill with a pid read from the kernel just now; worst case ESRCH.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// SIGKILL what `pids` lists until it lists nothing, at most `rounds` times,
/// `pause` apart.
fn kill_all(pids: impl Fn() -> Vec<u32>, rounds: usize, pause: Duration) {
    for _ in 0..rounds {
        let pids = pids();
        if pids.is_empty() {
            break;
        }
        pids.into_iter().for_each(sigkill);
        std::thread::sleep(pause);
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A short name unique on this machine for a while: pid, sequence, time.
fn unique_suffix() -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{:x}-{n:x}-{:04x}", std::process::id(), (t >> 8) & 0xffff)
}

/// A private network namespace for one lab; deleted when dropped.
#[derive(Debug)]
pub struct LabNamespace {
    name: String,
    addresses: Mutex<Vec<IpAddr>>,
    deleted: AtomicBool,
}

impl LabNamespace {
    /// Create `relaylab-<random>` with `lo` up and nothing else.
    pub fn create() -> Result<Arc<LabNamespace>, NetnsError> {
        require_root()?;
        let name = format!("relaylab-{}", unique_suffix());
        run_host(&["ip", "netns", "add", &name])?;
        let ns = LabNamespace { name, addresses: Mutex::new(Vec::new()), deleted: AtomicBool::new(false) };
        run_host(&["ip", "-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(Arc::new(ns))
    }

    /// The namespace's name (`ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// Put a lab address on `lo` as a /32 (/128); adding one twice is fine.
    pub fn add_address(&self, ip: IpAddr) -> Result<(), NetnsError> {
        let mut have = self.addresses.lock().unwrap();
        if have.contains(&ip) || ip.is_loopback() {
            return Ok(());
        }
        let cidr = match ip {
            IpAddr::V4(_) => format!("{ip}/32"),
            IpAddr::V6(_) => format!("{ip}/128"),
        };
        let mut args = vec!["ip", "-n", &self.name, "addr", "add", &cidr, "dev", "lo"];
        if ip.is_ipv6() {
            args.push("nodad");
        }
        run_host(&args)?;
        have.push(ip);
        Ok(())
    }

    /// The lab addresses added so far.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.addresses.lock().unwrap().clone()
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`).
    pub fn command(&self, program: impl AsRef<OsStr>) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program).stdin(Stdio::null()).kill_on_drop(true);
        c
    }

    /// Run the future made by `make` on a fresh thread that has joined the
    /// namespace, driven by the current tokio runtime. Sockets it binds or
    /// connects belong to the lab and stay there when used from other tasks;
    /// tasks it spawns run on the runtime's own threads (outside the
    /// namespace), so a spawned task must not open sockets itself.
    pub async fn enter<F, Fut, T>(&self, make: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let handle = tokio::runtime::Handle::current();
        let path = self.path();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("netns-{}", self.name))
            .spawn(move || {
                let joined = join_netns(&path);
                let _ = tx.send(joined.map(|()| handle.block_on(make())));
            })
            .map_err(io_err("spawning a thread to enter the lab namespace"))?;
        rx.await.map_err(|_| NetnsError::Io {
            what: "the thread inside the lab namespace".into(),
            source: io::Error::other("it panicked"),
        })?
    }

    /// Process ids running in the namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<u32> {
        run_host(&["ip", "netns", "pids", &self.name])
            .map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Kill everything inside and delete the namespace. Idempotent.
    pub fn delete(&self) {
        if self.deleted.swap(true, Ordering::SeqCst) {
            return;
        }
        kill_all(|| self.pids(), 20, Duration::from_millis(50));
        if let Err(e) = run_host(&["ip", "netns", "delete", &self.name]) {
            tracing::warn!("deleting lab namespace: {e}");
        }
    }
}

impl Drop for LabNamespace {
    fn drop(&mut self) {
        self.delete();
    }
}

/// `setns(2)` this thread into the network namespace at `path`.
fn join_netns(path: &Path) -> Result<(), NetnsError> {
    let f = fs::File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    // SAFETY: a valid open fd of a namespace file; affects only this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(NetnsError::Io {
            what: format!("setns into {}", path.display()),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// A `/dev/log` listener: each datagram becomes one log line in syslog-file
/// form, `Nov 21 11:38:20 <host> postfix/smtpd[2641]: message`.
#[derive(Debug)]
pub struct SyslogListener {
    path: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SyslogListener {
    /// Bind a datagram socket at `path` (world-writable: MTAs log from
    /// unprivileged users) and collect what arrives, tagging lines with `host`.
    pub fn bind(path: &Path, host: &str) -> Result<SyslogListener, NetnsError> {
        let _ = fs::remove_file(path);
        let sock = tokio::net::UnixDatagram::bind(path).map_err(io_err(format!("binding {}", path.display())))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o666))
            .map_err(io_err(format!("chmod {}", path.display())))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let host = host.to_string();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = sock.recv(&mut buf).await {
                let text = String::from_utf8_lossy(&buf[..n]);
                for l in text.split('\n').filter(|l| !l.trim().is_empty()) {
                    sink.lock().unwrap().push(syslog_to_line(l, &host));
                }
            }
        });
        Ok(SyslogListener { path: path.to_path_buf(), lines, task })
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The socket's path on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SyslogListener {
    fn drop(&mut self) {
        self.task.abort();
        let _ = fs::remove_file(&self.path);
    }
}

/// `<22>Nov 21 11:38:20 postfix/smtpd[2641]: msg` (what glibc's syslog(3)
/// sends, no host name) → `Nov 21 11:38:20 host postfix/smtpd[2641]: msg`.
/// Anything else is kept as it came, less the priority.
pub fn syslog_to_line(datagram: &str, host: &str) -> String {
    let d = datagram.trim_end_matches(['\0', '\r', '\n']);
    let d = match d.strip_prefix('<').and_then(|r| r.split_once('>')) {
        Some((pri, rest)) if pri.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => d,
    };
    // "Mmm dd hh:mm:ss " is 16 bytes
    if d.len() > 16 && d.as_bytes()[15] == b' ' && d.as_bytes()[9] == b':' && d.as_bytes()[12] == b':' {
        format!("{} {} {}", &d[..15], host, &d[16..])
    } else {
        d.to_string()
    }
}

/// A file to put into an MTA root before start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFile {
    /// Absolute path inside the root (`/etc/postfix/main.cf`).
    pub path: String,
    /// Contents.
    pub contents: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
}

impl RootFile {
    /// A file with mode 0644.
    pub fn new(path: impl Into<String>, contents: impl Into<Vec<u8>>) -> RootFile {
        RootFile { path: path.into(), contents: contents.into(), mode: 0o644 }
    }
}

const SETUP: &str = r#"set -e
D=$1; TREE=$2; HOST=$3
mount -t tmpfs -o mode=755 relaylab-rw "$D/rw"
mkdir -p "$D/rw/upper" "$D/rw/work" "$D/rw/root" "$D/rw/tree"
cp -a "$TREE/." "$D/rw/tree/"
R=$D/rw/root
mount -t overlay relaylab-root -o "lowerdir=$D/rw/tree:/,upperdir=$D/rw/upper,workdir=$D/rw/work" "$R"
# the host's own MTA folders (an MTA installed on the host) must not show through:
# each becomes a tmpfs holding only the tree's version
for p in var/spool etc/postfix etc/mail etc/exim4 var/lib/postfix var/lib/exim4 var/lib/sendmail var/lib/opensmtpd; do
  if [ -d "$R/$p" ] && [ ! -L "$R/$p" ]; then
    mount -t tmpfs -o mode=755 relaylab-mta "$R/$p"
    if [ -d "$D/rw/tree/$p" ]; then cp -a "$D/rw/tree/$p/." "$R/$p/"; fi
  fi
done
[ -e "$R/var/spool/mail" ] || ln -s ../mail "$R/var/spool/mail"
for f in etc/aliases etc/aliases.db etc/smtpd.conf etc/mailname; do
  if [ -e "$R/$f" ] && [ ! -e "$D/rw/tree/$f" ]; then rm -f "$R/$f"; fi
done
mount -t tmpfs -o mode=755 relaylab-dev "$R/dev"
for n in null zero full random urandom tty; do touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"; done
ln -s /proc/self/fd "$R/dev/fd"; mkdir "$R/dev/shm" "$R/dev/pts"
touch "$R/dev/log"; mount --bind "$D/log.sock" "$R/dev/log"
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=1777 relaylab-tmp "$R/tmp"
mount -t tmpfs -o mode=755 relaylab-run "$R/run"
mkdir -p "$R/run/lock"; ln -sfn /run "$R/var/run" 2>/dev/null || true
hostname "$HOST"
echo ready
exec chroot "$R" /bin/sleep infinity
"#;

/// A private root for one MTA inside a lab namespace: see the module docs.
#[derive(Debug)]
pub struct MtaRoot {
    ns: Arc<LabNamespace>,
    dir: PathBuf,
    holder: Mutex<Option<tokio::process::Child>>,
    holder_pid: u32,
    log: SyslogListener,
}

impl MtaRoot {
    /// Build the root from `tree` (a folder made by `mta/install.sh`) in `ns`,
    /// with host name `hostname`, and put `files` into it.
    pub async fn start(
        ns: Arc<LabNamespace>,
        tree: &Path,
        hostname: &str,
        files: &[RootFile],
    ) -> Result<MtaRoot, NetnsError> {
        require_root()?;
        if !tree.join("usr").is_dir() {
            return Err(NetnsError::Io {
                what: format!("MTA tree {}", tree.display()),
                source: io::Error::new(io::ErrorKind::NotFound, "missing; run relay-under-test/mta/install.sh as root"),
            });
        }
        let dir = Path::new(RUN_DIR).join(format!("{}-{}", ns.name(), unique_suffix()));
        fs::create_dir_all(dir.join("rw")).map_err(io_err(format!("creating {}", dir.display())))?;
        let short = hostname.split('.').next().unwrap_or(hostname).to_string();
        let log = SyslogListener::bind(&dir.join("log.sock"), &short)?;
        let mut cmd = ns.command("unshare");
        cmd.args(["--mount", "--uts", "--propagation", "private", "sh", "-c", SETUP, "sh"])
            .arg(&dir)
            .arg(tree)
            .arg(hostname)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let command =
            format!("ip netns exec {} unshare --mount --uts ... (MTA root for {})", ns.name(), tree.display());
        let mut child =
            cmd.spawn().map_err(|e| NetnsError::Command { command: command.clone(), detail: e.to_string() })?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        let pid = child.id();
        let failed = |detail: String| NetnsError::Command { command: command.clone(), detail };
        match (ready, pid) {
            (Ok(Ok(Some(l))), Some(pid)) if l == "ready" => {
                let root = MtaRoot { ns, dir, holder: Mutex::new(Some(child)), holder_pid: pid, log };
                // exec chain: the pid becomes `sleep` once chroot has run
                for _ in 0..100 {
                    if fs::read_link(format!("/proc/{pid}/exe")).map(|p| p.ends_with("sleep")).unwrap_or(false) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                for f in files {
                    root.write_file(f)?;
                }
                Ok(root)
            }
            (Err(_), _) => {
                let _ = child.kill().await;
                let _ = fs::remove_dir_all(&dir);
                Err(NetnsError::Timeout { command, timeout: Duration::from_secs(30) })
            }
            _ => {
                let out = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output()).await;
                let _ = fs::remove_dir_all(&dir);
                let err = match out {
                    Ok(Ok(o)) => failure_detail(&o),
                    _ => "the set-up script ended without saying ready".into(),
                };
                Err(failed(err))
            }
        }
    }

    /// The lab namespace.
    pub fn namespace(&self) -> &Arc<LabNamespace> {
        &self.ns
    }

    /// The holder's pid (the root is `/proc/<pid>/root`).
    pub fn holder_pid(&self) -> u32 {
        self.holder_pid
    }

    /// Where a path inside the root is reached from the host.
    pub fn host_path(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root/{}", self.holder_pid, inside.trim_start_matches('/')))
    }

    /// Write a file into the root (parents made as needed).
    pub fn write_file(&self, f: &RootFile) -> Result<(), NetnsError> {
        let p = self.host_path(&f.path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(io_err(format!("creating {} in the MTA root", f.path)))?;
        }
        fs::write(&p, &f.contents).map_err(io_err(format!("writing {} in the MTA root", f.path)))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(f.mode))
            .map_err(io_err(format!("chmod {} in the MTA root", f.path)))
    }

    /// Read a file from the root.
    pub fn read_file(&self, inside: &str) -> Result<Vec<u8>, NetnsError> {
        fs::read(self.host_path(inside)).map_err(io_err(format!("reading {inside} in the MTA root")))
    }

    /// A command running `argv` inside the root, the lab namespace and its own
    /// mount and UTS namespaces.
    pub fn command(&self, argv: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("nsenter");
        c.arg("--target")
            .arg(self.holder_pid.to_string())
            .args(["--mount", "--net", "--uts", "--root", "--wd"])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Run `argv` inside the root; its stdout, or an error with status and
    /// stderr when it fails or takes longer than `timeout`.
    pub async fn run(&self, argv: &[&str], timeout: Duration) -> Result<String, NetnsError> {
        let out = self.output(argv, timeout).await?;
        if !out.status.success() {
            let mut detail = failure_detail(&out);
            let so = String::from_utf8_lossy(&out.stdout);
            if !so.trim().is_empty() {
                detail.push_str(&format!(" (stdout: {})", so.trim()));
            }
            return Err(NetnsError::Command { command: render_cmd(argv), detail });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Like [`MtaRoot::run`], stdout and stderr together and the exit status,
    /// without failing on a non-zero status.
    pub async fn run_status(&self, argv: &[&str], timeout: Duration) -> Result<(bool, String), NetnsError> {
        let out = self.output(argv, timeout).await?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok((out.status.success(), text))
    }

    /// Run `argv` inside the root to its end, within `timeout`.
    async fn output(&self, argv: &[&str], timeout: Duration) -> Result<std::process::Output, NetnsError> {
        let command = render_cmd(argv);
        tokio::time::timeout(timeout, self.command(argv).output())
            .await
            .map_err(|_| NetnsError::Timeout { command: command.clone(), timeout })?
            .map_err(|e| NetnsError::Command { command, detail: e.to_string() })
    }

    /// The MTA's syslog lines so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    /// Process ids in this root's mount namespace (the holder included).
    pub fn pids(&self) -> Vec<u32> {
        let Ok(mine) = fs::read_link(format!("/proc/{}/ns/mnt", self.holder_pid)) else {
            return Vec::new();
        };
        self.ns
            .pids()
            .into_iter()
            .filter(|p| fs::read_link(format!("/proc/{p}/ns/mnt")).map(|m| m == mine).unwrap_or(false))
            .collect()
    }

    /// SIGKILL every process of the root but the holder (the MTA "crashes").
    pub fn kill_processes(&self) {
        self.pids().into_iter().filter(|p| *p != self.holder_pid).for_each(sigkill);
    }

    /// Kill everything in the root, the holder last: the mounts go with the
    /// mount namespace. Idempotent.
    pub fn destroy(&self) {
        kill_all(|| self.pids(), 10, Duration::from_millis(30));
        if let Some(mut c) = self.holder.lock().unwrap().take() {
            let _ = c.start_kill();
            let _ = c.try_wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for MtaRoot {
    fn drop(&mut self) {
        self.destroy();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_datagrams_become_file_lines() {
        assert_eq!(
            syslog_to_line("<22>Nov 21 11:38:20 postfix/smtpd[2641]: connect from unknown[203.0.113.66]", "external"),
            "Nov 21 11:38:20 external postfix/smtpd[2641]: connect from unknown[203.0.113.66]"
        );
        assert_eq!(syslog_to_line("<18>Nov  1 01:02:03 sm-mta[7]: x\0", "h"), "Nov  1 01:02:03 h sm-mta[7]: x");
        assert_eq!(syslog_to_line("no header", "h"), "no header");
    }

    #[test]
    fn not_root_is_said_clearly() {
        assert_eq!(
            NetnsError::NotRoot.to_string(),
            "the netns backend needs root: run as root or use the loopback backend"
        );
    }
}
