//! relaylab's slammer and MX sink against Postfix's `smtp-source` and
//! `smtp-sink`, side by side in one run, on loopback.
//!
//! ```text
//! cargo bench -p relaylab-mock-hosts --bench postfix
//! RELAYLAB_BENCH_MESSAGES=100000 RELAYLAB_BENCH_SESSIONS=20 cargo bench -p relaylab-mock-hosts --bench postfix
//! ```
//!
//! Four runs, the same load each time (one message per session, as
//! `smtp-source` sends by default; the same concurrency; a 2048-octet payload
//! after the headers, as `smtp-source -l 2048`):
//!
//! 1. `smtp-source` → `smtp-sink`: the Postfix baseline;
//! 2. relaylab slammer → `smtp-sink`: the slammer, measured against (1);
//! 3. `smtp-source` → relaylab MX sink: the sink, measured against (1);
//! 4. relaylab slammer → relaylab MX sink, for reference.
//!
//! relaylab keeps every transcript and every message while it runs (checked
//! after each run); the Postfix tools keep nothing. When the Postfix tools are
//! missing (`apt-get install postfix` provides them), the comparison is
//! skipped, loudly, and only run 4 is made.

use lab_core::clock;
use mock_hosts::slammer::Slam;
use mock_hosts::{LabTime, MxSink, SinkConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':').map(Path::new).chain([Path::new("/usr/sbin"), Path::new("/usr/local/sbin")]).map(|d| d.join(tool)).find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    // The effective uid, without a libc dependency.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// `smtp-sink` on `port`, started and listening.
fn start_smtp_sink(tool: &Path, port: u16) -> Child {
    let mut cmd = Command::new(tool);
    if is_root() {
        // smtp-sink refuses to run as root without a user to drop to.
        cmd.args(["-u", "nobody"]);
    }
    let child = cmd
        .arg(format!("127.0.0.1:{port}"))
        .arg("1024")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smtp-sink starts");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "smtp-sink did not listen on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Time `smtp-source` sending `messages` over `sessions` parallel sessions.
fn run_smtp_source(tool: &Path, port: u16, sessions: usize, messages: usize, payload: usize) -> Duration {
    let started = Instant::now();
    let out = Command::new(tool)
        .args(["-s", &sessions.to_string(), "-m", &messages.to_string(), "-l", &payload.to_string()])
        .args(["-f", "bench@source.example", "-t", "sink@sink.example"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .expect("smtp-source runs");
    let took = started.elapsed();
    assert!(out.status.success(), "smtp-source failed: {}", String::from_utf8_lossy(&out.stderr));
    took
}

/// The slammer with the same load as `smtp-source -s sessions -m messages -l payload`.
async fn run_slammer(target: SocketAddr, sessions: usize, messages: usize, payload: usize) -> (Duration, u64, usize) {
    let mut message = b"From: <bench@source.example>\r\nTo: <sink@sink.example>\r\nSubject: relaylab bench\r\n\r\n".to_vec();
    let body = mock_hosts::slammer::sized_message("x", "y", "z", payload + 200);
    let filler = &body[body.len() - payload..];
    message.extend_from_slice(filler);
    let slam = Slam {
        target,
        sources: Vec::new(),
        connections: sessions,
        messages: messages / sessions,
        per_session: 1,
        rate: None,
        pipelining: true,
        helo: "source.example".into(),
        mail_from: "bench@source.example".into(),
        rcpt_to: vec!["sink@sink.example".into()],
        message,
        timeout: Duration::from_secs(30),
        deadline: Duration::from_secs(600),
        label: "slammer -> sink".into(),
        time: LabTime::wall(),
    };
    let r = slam.run().await;
    assert_eq!(r.messages.accepted as usize, sessions * (messages / sessions), "{:?}", r.first_problem);
    (r.elapsed, r.messages.accepted, r.transcripts.len())
}

async fn relaylab_sink() -> MxSink {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    MxSink::start(addr, SinkConfig::accept("sink.example"), clock::wall()).await.expect("sink starts")
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing useful: run only under bench.
    if !std::env::args().any(|a| a == "--bench") {
        println!("postfix comparison: run it with `cargo bench -p relaylab-mock-hosts --bench postfix`");
        return;
    }
    let messages = env_usize("RELAYLAB_BENCH_MESSAGES", 20_000);
    let sessions = env_usize("RELAYLAB_BENCH_SESSIONS", 20);
    let payload = env_usize("RELAYLAB_BENCH_SIZE", 2048);
    let messages = messages / sessions * sessions;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("relaylab vs Postfix smtp-source/smtp-sink: {messages} messages, {sessions} parallel sessions, one message per session, {payload}-octet payload\n");

    let tools = (find("smtp-source"), find("smtp-sink"));
    let mut rows: Vec<(String, f64)> = Vec::new();
    if let (Some(source), Some(sink_tool)) = &tools {
        // 1. Postfix to Postfix.
        let port = free_port();
        let mut sink = start_smtp_sink(sink_tool, port);
        let t = run_smtp_source(source, port, sessions, messages, payload);
        rows.push(("smtp-source -> smtp-sink".into(), rate(messages, t)));
        // 2. The slammer into smtp-sink.
        let port2 = free_port();
        let mut sink2 = start_smtp_sink(sink_tool, port2);
        let (t, accepted, transcripts) =
            rt.block_on(run_slammer(format!("127.0.0.1:{port2}").parse().unwrap(), sessions, messages, payload));
        assert_eq!(transcripts, messages, "one transcript per session");
        rows.push((format!("relaylab slammer -> smtp-sink ({transcripts} transcripts kept)"), rate(accepted as usize, t)));
        let _ = sink.kill();
        let _ = sink2.kill();
        let _ = sink.wait();
        let _ = sink2.wait();
        // 3. smtp-source into the relaylab sink.
        let ours = rt.block_on(relaylab_sink());
        let t = run_smtp_source(source, ours.addr().port(), sessions, messages, payload);
        let kept = ours.message_count();
        let sessions_kept = ours.session_count();
        assert_eq!(kept, messages, "the sink recorded every message");
        rows.push((format!("smtp-source -> relaylab sink ({kept} messages, {sessions_kept} transcripts kept)"), rate(messages, t)));
        rt.block_on(ours.shutdown());
    } else {
        println!("==============================================================================");
        println!("!! Postfix's smtp-source/smtp-sink not found: the comparison was SKIPPED.     !!");
        println!("!! Install them (Debian: apt-get install postfix) and run the benchmark again. !!");
        println!("==============================================================================\n");
    }
    // 4. relaylab to relaylab.
    let ours = rt.block_on(relaylab_sink());
    let (t, accepted, transcripts) = rt.block_on(run_slammer(ours.addr(), sessions, messages, payload));
    assert_eq!(ours.message_count(), messages);
    rows.push((format!("relaylab slammer -> relaylab sink ({transcripts} + {} transcripts kept)", ours.session_count()), rate(accepted as usize, t)));
    rt.block_on(ours.shutdown());

    for (what, r) in &rows {
        println!("{r:>10.0} messages/s  {what}");
    }
    if rows.len() == 4 {
        let base = rows[0].1;
        println!();
        println!("slammer vs smtp-source (both into smtp-sink):   {:.2}x", rows[1].1 / base);
        println!("relaylab sink vs smtp-sink (both fed by smtp-source): {:.2}x", rows[2].1 / base);
        let verdict = |x: f64| if x >= 1.0 { "at least as fast" } else { "SLOWER than Postfix" };
        println!("slammer: {}; sink: {}", verdict(rows[1].1 / base), verdict(rows[2].1 / base));
    }
}
