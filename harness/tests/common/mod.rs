//! What the tests that run `relaylab relay serve` as a daemon share: starting
//! it and waiting until it listens.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};

/// A port free on `ip` right now.
pub fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

/// Start `relaylab relay serve` with `profile`, listening on `listen`, resolving
/// with `dns`, delivering to port `smtp_port` of MX hosts and, when given,
/// keeping its queue in `queue`; its standard output goes to `stdout`. Returns
/// once its first line on standard error, the "listening on" notice, has come:
/// the daemon, the rest of its standard error (the caller drains it if the
/// daemon may write more), and that first line.
pub fn spawn_serve(
    profile: &Path,
    listen: SocketAddr,
    dns: SocketAddr,
    smtp_port: u16,
    queue: Option<&Path>,
    stdout: Stdio,
) -> (Child, BufReader<ChildStderr>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relaylab"));
    cmd.args(["relay", "serve", "--config"]).arg(profile).args([
        "--listen",
        &listen.to_string(),
        "--dns",
        &dns.to_string(),
        "--smtp-port",
        &smtp_port.to_string(),
    ]);
    if let Some(queue) = queue {
        cmd.arg("--queue-dir").arg(queue);
    }
    let mut child = cmd.stdout(stdout).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.contains("listening on"), "{first}");
    (child, err, first)
}
