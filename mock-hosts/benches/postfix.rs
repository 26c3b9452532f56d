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
//!
//! On a shared machine wall-clock rates swing with other work, so each run
//! waits for an idle CPU, the runs of each comparison are adjacent and swap
//! order from one round to the next (so each side goes first as often), the
//! ratios are taken within each round (then their median), and the CPU time
//! per message of each tool's own process is printed too, which other work
//! barely moves. `RELAYLAB_BENCH_ROUNDS`
//! (default 4, even so that both orders count alike), `RELAYLAB_BENCH_THREADS`
//! (relaylab's runtime threads, default 2, as a lab runs), `RELAYLAB_BENCH_SIZE`
//! (default 2048), `RELAYLAB_BENCH_ONLY=sinks` (runs 1 and 3 only: the sink
//! comparison) and `RELAYLAB_BENCH_ONLY=sink` (run 3 only, for profiling)
//! adjust it.

use lab_core::clock;
use mock_hosts::postfix_tools::{env_usize, find, rate, smtp_source, start_smtp_sink};
use mock_hosts::slammer::Slam;
use mock_hosts::{LabTime, MxSink, SinkConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The slammer with the same load as `smtp-source -s sessions -m messages -l payload`.
async fn run_slammer(target: SocketAddr, sessions: usize, messages: usize, payload: usize) -> (Duration, u64, usize) {
    let mut message =
        b"From: <bench@source.example>\r\nTo: <sink@sink.example>\r\nSubject: relaylab bench\r\n\r\n".to_vec();
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

/// The four runs of one round; `None` where the Postfix tools are missing.
#[derive(Default)]
struct Round {
    postfix: Option<f64>,
    slammer_into_smtp_sink: Option<f64>,
    smtp_source_into_sink: Option<f64>,
    relaylab: Option<f64>,
    kept: String,
    /// CPU per message, microseconds: smtp-source, smtp-sink, slammer, relaylab
    /// sink, and smtp-source again while it feeds the relaylab sink.
    cpu: [Option<f64>; 5],
}

/// What a round measures.
#[derive(Clone, Copy, PartialEq)]
enum Only {
    /// All four runs.
    All,
    /// `RELAYLAB_BENCH_ONLY=sink`: smtp-source into the relaylab sink (for profiling).
    Sink,
    /// `RELAYLAB_BENCH_ONLY=sinks`: smtp-sink and the relaylab sink, both fed by smtp-source.
    Sinks,
}

/// The load every run gets.
#[derive(Clone, Copy)]
struct Load {
    messages: usize,
    sessions: usize,
    payload: usize,
}

impl Load {
    /// Microseconds per message.
    fn per_msg(&self, d: Duration) -> Option<f64> {
        Some(d.as_secs_f64() * 1e6 / self.messages as f64)
    }
}

/// Run 1: smtp-source into smtp-sink. Rate, and CPU per message of each.
fn postfix_to_postfix(source: &Path, sink_tool: &Path, load: Load) -> (f64, Option<f64>, Option<f64>) {
    wait_for_quiet();
    let port = free_port();
    let mut sink = start_smtp_sink(sink_tool, port);
    let (_, children0) = proc_cpu("self");
    let t = smtp_source(source, SocketAddr::from(([127, 0, 0, 1], port)), load.sessions, load.messages, load.payload);
    let (_, children1) = proc_cpu("self");
    let sink_cpu = load.per_msg(proc_cpu(&sink.id().to_string()).0);
    let _ = sink.kill();
    let _ = sink.wait();
    (rate(load.messages, t), load.per_msg(children1 - children0), sink_cpu)
}

/// Run 2: the slammer into smtp-sink. Rate and the slammer's CPU per message.
fn slammer_to_postfix(rt: &tokio::runtime::Runtime, sink_tool: &Path, load: Load) -> (f64, Option<f64>) {
    wait_for_quiet();
    let port = free_port();
    let mut sink = start_smtp_sink(sink_tool, port);
    let target = format!("127.0.0.1:{port}").parse().unwrap();
    let (mine0, _) = proc_cpu("self");
    let (t, accepted, transcripts) = rt.block_on(run_slammer(target, load.sessions, load.messages, load.payload));
    let cpu = load.per_msg(proc_cpu("self").0 - mine0);
    assert_eq!(transcripts, load.messages, "one transcript per session");
    let _ = sink.kill();
    let _ = sink.wait();
    (rate(accepted as usize, t), cpu)
}

/// Run 3: smtp-source into the relaylab sink. Rate, and CPU per message of the sink and of smtp-source.
fn postfix_to_sink(rt: &tokio::runtime::Runtime, source: &Path, load: Load) -> (f64, Option<f64>, Option<f64>) {
    wait_for_quiet();
    let ours = rt.block_on(relaylab_sink());
    // Drive the runtime while smtp-source runs (a current-thread runtime runs only inside block_on).
    let (source, port) = (source.to_path_buf(), ours.addr().port());
    let (mine0, children0) = proc_cpu("self");
    let t = rt.block_on(async move {
        tokio::task::spawn_blocking(move || {
            smtp_source(&source, SocketAddr::from(([127, 0, 0, 1], port)), load.sessions, load.messages, load.payload)
        })
        .await
        .unwrap()
    });
    let (mine1, children1) = proc_cpu("self");
    assert_eq!(ours.message_count(), load.messages, "the sink recorded every message");
    assert_eq!(ours.session_count(), load.messages, "the sink kept every transcript");
    rt.block_on(ours.shutdown());
    (rate(load.messages, t), load.per_msg(mine1 - mine0), load.per_msg(children1 - children0))
}

/// Run 4: the slammer into the relaylab sink. Rate, and what both kept.
fn relaylab_to_sink(rt: &tokio::runtime::Runtime, load: Load) -> (f64, String) {
    wait_for_quiet();
    let ours = rt.block_on(relaylab_sink());
    let (t, accepted, transcripts) = rt.block_on(run_slammer(ours.addr(), load.sessions, load.messages, load.payload));
    assert_eq!(ours.message_count(), load.messages);
    let kept = format!("{} messages, {} + {} transcripts", ours.message_count(), transcripts, ours.session_count());
    rt.block_on(ours.shutdown());
    (rate(accepted as usize, t), kept)
}

/// One round. Each comparison's two runs are adjacent, and their order flips
/// from one round to the next (odd rounds run the relaylab side first, even
/// ones the Postfix side), so a machine getting busier or quieter during the
/// benchmark does not favour either side.
fn round(
    rt: &tokio::runtime::Runtime,
    tools: &(Option<PathBuf>, Option<PathBuf>),
    load: Load,
    only: Only,
    index: usize,
) -> Round {
    let mut r = Round::default();
    let flip = index.is_multiple_of(2);
    match (only, tools) {
        (Only::Sink, (Some(source), _)) => {
            let (rate, cpu, src) = postfix_to_sink(rt, source, load);
            (r.smtp_source_into_sink, r.cpu[3], r.cpu[4]) = (Some(rate), cpu, src);
        }
        (Only::Sinks, (Some(source), Some(sink_tool))) => {
            for relaylab_side in [flip, !flip] {
                if relaylab_side {
                    let (rate, cpu, src) = postfix_to_sink(rt, source, load);
                    (r.smtp_source_into_sink, r.cpu[3], r.cpu[4]) = (Some(rate), cpu, src);
                } else {
                    let (rate, src, snk) = postfix_to_postfix(source, sink_tool, load);
                    (r.postfix, r.cpu[0], r.cpu[1]) = (Some(rate), src, snk);
                }
            }
        }
        (Only::All, (Some(source), Some(sink_tool))) => {
            // Flipped: sink, Postfix, slammer; else slammer, Postfix, sink.
            for run in if flip { [3, 1, 2] } else { [2, 1, 3] } {
                match run {
                    1 => {
                        let (rate, src, snk) = postfix_to_postfix(source, sink_tool, load);
                        (r.postfix, r.cpu[0], r.cpu[1]) = (Some(rate), src, snk);
                    }
                    2 => {
                        let (rate, cpu) = slammer_to_postfix(rt, sink_tool, load);
                        (r.slammer_into_smtp_sink, r.cpu[2]) = (Some(rate), cpu);
                    }
                    _ => {
                        let (rate, cpu, src) = postfix_to_sink(rt, source, load);
                        (r.smtp_source_into_sink, r.cpu[3], r.cpu[4]) = (Some(rate), cpu, src);
                    }
                }
            }
        }
        _ => {}
    }
    if only == Only::All {
        let (rate, kept) = relaylab_to_sink(rt, load);
        (r.relaylab, r.kept) = (Some(rate), kept);
    }
    r
}

/// CPU time (user + system) of a process and of its waited-for children, from /proc.
fn proc_cpu(pid: &str) -> (Duration, Duration) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest: Vec<u64> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // Fields 14-17 of proc(5): utime, stime, cutime, cstime, in clock ticks (100 per second on Linux).
    let tick = |i: usize| Duration::from_millis(rest.get(i).copied().unwrap_or(0) * 10);
    (tick(10) + tick(11), tick(12) + tick(13))
}

/// Busy and total jiffies of all CPUs, from /proc/stat.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = cpu.iter().sum();
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Wait (at most a minute) until the machine is nearly idle, so that another
/// build on a shared box does not decide the comparison. Says so when it never is.
fn wait_for_quiet() {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (Some((b0, t0)), _) = (cpu_jiffies(), std::thread::sleep(Duration::from_millis(500))) else { return };
        let Some((b1, t1)) = cpu_jiffies() else { return };
        let busy = (b1 - b0) as f64 / (t1 - t0).max(1) as f64;
        if busy < 0.10 {
            return;
        }
        if Instant::now() > deadline {
            println!(
                "   (the machine stayed busy ({:.0}% CPU) for a minute: this round runs alongside other work)",
                busy * 100.0
            );
            return;
        }
    }
}

/// The median (of an even count, the mean of the middle two); NaN when empty.
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n.is_multiple_of(2) {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    } else {
        v[n / 2]
    }
}

fn main() {
    // `cargo bench` passes `--bench`; elsewhere (cargo test --benches) do nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("postfix comparison: run it with `cargo bench -p relaylab-mock-hosts --bench postfix`");
        return;
    }
    let messages = env_usize("RELAYLAB_BENCH_MESSAGES", 20_000);
    let sessions = env_usize("RELAYLAB_BENCH_SESSIONS", 20);
    let payload = env_usize("RELAYLAB_BENCH_SIZE", 2048);
    let rounds = env_usize("RELAYLAB_BENCH_ROUNDS", 4).max(1);
    let messages = messages / sessions * sessions;
    let threads = env_usize("RELAYLAB_BENCH_THREADS", 2);
    let only = match std::env::var("RELAYLAB_BENCH_ONLY").as_deref() {
        Ok("sink") => Only::Sink,
        Ok("sinks") => Only::Sinks,
        _ => Only::All,
    };
    let load = Load { messages, sessions, payload };
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap()
    };
    println!(
        "relaylab vs Postfix smtp-source/smtp-sink: {messages} messages, {sessions} parallel sessions, one message per \
         session, {payload}-octet payload, {rounds} rounds (medians), {threads} runtime thread(s)\n"
    );
    let tools = (find("smtp-source"), find("smtp-sink"));
    if tools.0.is_none() || tools.1.is_none() {
        println!("==============================================================================");
        println!("!! Postfix's smtp-source/smtp-sink not found: the comparison was SKIPPED.     !!");
        println!("!! Install them (Debian: apt-get install postfix) and run the benchmark again. !!");
        println!("==============================================================================\n");
    }
    let results: Vec<Round> = (0..rounds).map(|i| round(&rt, &tools, load, only, i)).collect();
    let col = |f: &dyn Fn(&Round) -> Option<f64>| -> Option<(f64, Vec<f64>)> {
        let v: Option<Vec<f64>> = results.iter().map(f).collect();
        v.map(|v| (median(v.clone()), v))
    };
    let show = |what: &str, c: &Option<(f64, Vec<f64>)>| {
        if let Some((m, all)) = c {
            let each: Vec<String> = all.iter().map(|x| format!("{x:.0}")).collect();
            println!("{m:>10.0} messages/s  {what}   (rounds: {})", each.join(", "));
        }
    };
    let postfix = col(&|r| r.postfix);
    let slammer = col(&|r| r.slammer_into_smtp_sink);
    let sink = col(&|r| r.smtp_source_into_sink);
    let ours = col(&|r| r.relaylab);
    show("smtp-source -> smtp-sink (Postfix; keeps nothing)", &postfix);
    show("relaylab slammer -> smtp-sink (slammer keeps every transcript)", &slammer);
    show("smtp-source -> relaylab MX sink (sink keeps every message and transcript)", &sink);
    show(&format!("relaylab slammer -> relaylab MX sink ({})", results[0].kept), &ours);
    let cpu = |i: usize| median(results.iter().filter_map(|r| r.cpu[i]).collect());
    if postfix.is_none() {
        if sink.is_some() {
            println!("\nCPU time per message of the relaylab MX sink: {:.1} us", cpu(3));
        }
        return;
    }
    // Ratios within each round (its runs are adjacent in time), then their median.
    let ratio = |f: &dyn Fn(&Round) -> Option<f64>| {
        let each: Vec<f64> = results.iter().filter_map(|r| Some(f(r)? / r.postfix?)).collect();
        let shown: Vec<String> = each.iter().map(|x| format!("{x:.2}")).collect();
        (median(each), shown.join(", "))
    };
    let verdict = |x: f64| if x >= 1.0 { "at least as fast as Postfix" } else { "SLOWER than Postfix" };
    println!();
    if slammer.is_some() {
        let (s, each) = ratio(&|r| r.slammer_into_smtp_sink);
        println!("slammer / smtp-source (both into smtp-sink):         {s:.2}x  {}   (rounds: {each})", verdict(s));
    }
    let (k, each) = ratio(&|r| r.smtp_source_into_sink);
    println!("relaylab sink / smtp-sink (both fed by smtp-source): {k:.2}x  {}   (rounds: {each})", verdict(k));
    println!("(median of the per-round ratios)");
    let (src, snk, slm, ours) = (cpu(0), cpu(1), cpu(2), cpu(3));
    println!();
    println!(
        "CPU time per message (user + system, the tool's own process; not disturbed by other work on the machine):"
    );
    if slammer.is_some() {
        println!(
            "  smtp-source {src:6.1} us   relaylab slammer {slm:6.1} us   -> slammer uses {:.2}x the CPU of smtp-source",
            slm / src
        );
    }
    println!(
        "  smtp-sink   {snk:6.1} us   relaylab MX sink {ours:6.1} us   -> sink uses {:.2}x the CPU of smtp-sink",
        ours / snk
    );
    println!(
        "  smtp-source {src:6.1} us feeding smtp-sink, {:6.1} us feeding the relaylab MX sink (it bounds both rates)",
        cpu(4)
    );
}
