//! Postfix's `smtp-source` and `smtp-sink`: the anchors relaylab's benchmarks
//! measure the slammer, the MX sink and the builtin relay against, in the same
//! run (see `shared/anchors.md`). Debian ships both in the `postfix` package.
//! Benchmarks only: these helpers panic when a tool misbehaves.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tool on `PATH` or in the sbin folders Debian puts Postfix's tools in.
pub fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .map(Path::new)
        .chain([Path::new("/usr/sbin"), Path::new("/usr/local/sbin")])
        .map(|d| d.join(tool))
        .find(|p| p.is_file());
    found
}

/// Whether we run as root (the effective uid, without a libc dependency).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// `smtp-sink` on `127.0.0.1:port`, started and listening.
pub fn start_smtp_sink(tool: &Path, port: u16) -> Child {
    let mut cmd = Command::new(tool);
    if is_root() {
        // smtp-sink refuses to run as root without a user to drop to.
        cmd.args(["-u", "nobody"]);
    }
    let child = cmd
        .arg(format!("127.0.0.1:{port}"))
        .arg("1024")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtp-sink starts");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "smtp-sink did not listen on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Time `smtp-source` sending `messages` of `size` octets over `sessions`
/// parallel sessions to `target`.
pub fn smtp_source(tool: &Path, target: SocketAddr, sessions: usize, messages: usize, size: usize) -> Duration {
    let started = Instant::now();
    let out = Command::new(tool)
        .args(["-s", &sessions.to_string(), "-m", &messages.to_string(), "-l", &size.to_string()])
        .args(["-f", "bench@source.example", "-t", "sink@sink.example"])
        .arg(target.to_string())
        .output()
        .expect("smtp-source runs");
    let took = started.elapsed();
    assert!(out.status.success(), "smtp-source failed: {}", String::from_utf8_lossy(&out.stderr));
    took
}

/// A benchmark knob from the environment.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `n` things in `d`, per second.
pub fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}
