//! The builtin relay's durable queue under load, compared in the same run
//! with Postfix's `smtp-source` sending to Postfix's `smtp-sink`.
//!
//! ```text
//! cargo bench -p relaylab --bench queue
//! RELAYLAB_BENCH_MESSAGES=20000 RELAYLAB_BENCH_SESSIONS=20 RELAYLAB_BENCH_DEEP=10000 cargo bench -p relaylab --bench queue
//! RELAYLAB_BENCH_PARTS=2 cargo bench -p relaylab --bench queue     # the deep queue only
//! ```
//!
//! Part 1, messages per second accepted, the same client each time
//! (`smtp-source -s SESSIONS -m MESSAGES -l SIZE`, one message per session):
//! 1. into `smtp-sink` (Postfix's sink: keeps nothing, syncs nothing): the
//!    ceiling of the machine;
//! 2. into the builtin relay whose only MX refuses connections: every
//!    message is written to the queue directory and fsynced before its 250,
//!    then tried once and left queued;
//! 3. into the builtin relay delivering to `smtp-sink`: the same, plus the
//!    delivery and the removal from the queue (also synced).
//!
//! Part 2, a deep queue on the virtual clock: RELAYLAB_BENCH_DEEP (10,000)
//! messages queued for a dead host, then two simulated days of hourly
//! queue runs; reports the wall time per simulated day.
//!
//! When `smtp-source`/`smtp-sink` are missing (Debian: `apt-get install
//! postfix`), part 1 is SKIPPED, loudly, and the relay is loaded with
//! relaylab's own slammer instead.

use lab_core::clock;
use mock_dns::{MockDns, Record};
use mock_hosts::postfix_tools::{env_usize, find, rate, smtp_source, start_smtp_sink};
use mock_hosts::slammer::Slam;
use mock_hosts::LabTime;
use relay_under_test::{BuiltinRelay, LabNetwork, RelayProfile, RelayUnderTest};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

async fn slam(
    target: SocketAddr,
    from: Option<IpAddr>,
    rcpt: &str,
    sessions: usize,
    messages: usize,
    size: usize,
    per_session: usize,
) -> (Duration, u64) {
    let s = Slam {
        target,
        sources: from.into_iter().collect(),
        connections: sessions,
        messages: messages / sessions,
        per_session,
        rate: None,
        pipelining: true,
        helo: "source.example".into(),
        mail_from: "bench@source.example".into(),
        rcpt_to: vec![rcpt.into()],
        message: mock_hosts::slammer::sized_message("bench@source.example", rcpt, "bench", size),
        timeout: Duration::from_secs(60),
        deadline: Duration::from_secs(3600),
        label: "bench".into(),
        time: LabTime::wall(),
    };
    let r = s.run().await;
    (r.elapsed, r.messages.accepted)
}

/// The builtin relay on 127.0.0.2, its MX `sink.example` at 127.0.0.1 (`up`)
/// or at 127.0.0.3 where nothing listens, on `mx_port`.
async fn relay(dir: &Path, mx_port: u16, up: bool) -> (BuiltinRelay, MockDns) {
    let mx = if up { "127.0.0.1" } else { "127.0.0.3" };
    let dns = MockDns::start(
        "127.0.0.1:0".parse().unwrap(),
        vec![
            Record::parse("sink.example", "MX", "10 mx.sink.example").unwrap(),
            Record::parse("mx.sink.example", "A", mx).unwrap(),
        ],
    )
    .await
    .unwrap();
    let mut profile = RelayProfile::new("relay.bench.example");
    profile.relay_domains = vec!["sink.example".into()];
    profile.accept_unresolvable_domains = true;
    profile.queue_directory = Some(dir.to_path_buf());
    let _ = std::fs::remove_dir_all(dir);
    let net = LabNetwork {
        listen: SocketAddr::new("127.0.0.2".parse().unwrap(), free_port("127.0.0.2")),
        virtual_ip: "127.0.0.2".parse().unwrap(),
        dns: dns.addr(),
        smtp_port: mx_port,
        addresses: lab_core::AddressMap::identity(),
        clock: clock::wall(),
    };
    (BuiltinRelay::start(profile, net).await.unwrap(), dns)
}

const DEEP_LAB: &str = r#"
name: bench/queue-deep
relay:
  hostname: external.sysiphus.com
  relay_domains: [sysiphus.com]
  accept_unresolvable_domains: true
  queue_interval: 1h
  queuewarn: 0s
hosts:
  bulk.example.net: { ip: 203.0.113.20 }
  internal.sysiphus.com: { ip: 10.1.1.10, smtp: down }
dns:
  sysiphus.com: { MX: "10 internal.sysiphus.com" }
steps:
  - settle: 1s
"#;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("queue benchmark: run it with `cargo bench -p relaylab --bench queue`");
        return;
    }
    let messages = env_usize("RELAYLAB_BENCH_MESSAGES", 10_000);
    let sessions = env_usize("RELAYLAB_BENCH_SESSIONS", 20);
    let size = env_usize("RELAYLAB_BENCH_SIZE", 1024);
    let deep = env_usize("RELAYLAB_BENCH_DEEP", 10_000);
    let messages = messages / sessions * sessions;
    let parts = std::env::var("RELAYLAB_BENCH_PARTS").unwrap_or_else(|_| "12".into());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let base = std::env::temp_dir().join(format!("relaylab-bench-queue-{}", std::process::id()));
    if parts.contains('1') {
        println!("== part 1: messages per second accepted ({messages} messages, {sessions} parallel sessions, {size}-octet messages)");
        println!(
            "   queue directory under {} ({} cores)\n",
            base.display(),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        );

        let tools = (find("smtp-source"), find("smtp-sink"));
        let mut rows: Vec<(String, f64)> = Vec::new();
        match &tools {
            (Some(source), Some(sink_tool)) => {
                // 1. Postfix to Postfix: the ceiling.
                let port = free_port("127.0.0.1");
                let mut sink = start_smtp_sink(sink_tool, port);
                let t = smtp_source(source, format!("127.0.0.1:{port}").parse().unwrap(), sessions, messages, size);
                rows.push(("smtp-source -> smtp-sink (Postfix, nothing kept)".into(), rate(messages, t)));
                // 2. Into the relay, MX down: accept, fsync, one failed try, queued.
                let (r, dns) = rt.block_on(relay(&base.join("down"), port, false));
                let t = smtp_source(source, r.smtp_addr(), sessions, messages, size);
                rt.block_on(r.settle(Duration::from_secs(120)));
                let h = r.mail_queue().history();
                assert_eq!(r.mail_queue().len(), messages, "every message queued");
                rows.push((
                    format!(
                        "smtp-source -> builtin relay, MX down ({} queued, {} fsyncs in {} write batches)",
                        r.mail_queue().len(),
                        h.store.fsyncs,
                        h.store.batches
                    ),
                    rate(messages, t),
                ));
                rt.block_on(r.stop());
                rt.block_on(dns.shutdown());
                // 3. Into the relay, delivering to smtp-sink.
                let (r, dns) = rt.block_on(relay(&base.join("up"), port, true));
                let started = Instant::now();
                let t = smtp_source(source, r.smtp_addr(), sessions, messages, size);
                rt.block_on(r.settle(Duration::from_secs(300)));
                let drained = started.elapsed();
                let h = r.mail_queue().history();
                let sent = r.log_lines().iter().filter(|l| l.contains("stat=Sent")).count();
                rows.push((
                format!(
                    "smtp-source -> builtin relay -> smtp-sink ({sent} delivered, queue drained after {:.1}s, {} fsyncs in {} write batches)",
                    drained.as_secs_f64(),
                    h.store.fsyncs,
                    h.store.batches
                ),
                rate(messages, t),
            ));
                rt.block_on(r.stop());
                rt.block_on(dns.shutdown());
                let _ = sink.kill();
                let _ = sink.wait();
            }
            _ => {
                println!("==============================================================================");
                println!("!! Postfix's smtp-source/smtp-sink not found: the comparison was SKIPPED.     !!");
                println!("!! Install them (Debian: apt-get install postfix) and run the benchmark again. !!");
                println!("==============================================================================\n");
                let (r, dns) = rt.block_on(relay(&base.join("down"), free_port("127.0.0.1"), false));
                let (t, accepted) =
                    rt.block_on(slam(r.smtp_addr(), None, "sink@sink.example", sessions, messages, size, 1));
                rows.push((
                    format!("relaylab slammer -> builtin relay, MX down ({accepted} accepted)"),
                    rate(accepted as usize, t),
                ));
                rt.block_on(r.stop());
                rt.block_on(dns.shutdown());
            }
        }
        for (what, r) in &rows {
            println!("{r:>10.0} messages/s  {what}");
        }
        if rows.len() == 3 {
            println!();
            println!(
                "durable queue vs smtp-sink: {:.2}x (MX down), {:.2}x (delivering)",
                rows[1].1 / rows[0].1,
                rows[2].1 / rows[0].1
            );
        }
    }
    if !parts.contains('2') {
        let _ = std::fs::remove_dir_all(&base);
        return;
    }

    println!(
        "\n== part 2: a deep queue on the virtual clock ({deep} messages for a dead host, a queue run every hour)\n"
    );
    rt.block_on(async {
        let loaded = relaylab::scenario::load_str(Path::new("bench/queue-deep.yaml"), DEEP_LAB).expect("bench lab");
        let lab = relaylab::lab::Lab::start(&loaded.scenario, relaylab::clock_driver::clock_for(relaylab::scenario::ClockKind::Virtual))
            .await
            .expect("lab starts");
        let from = lab.hosts["bulk.example.net"].real_ip;
        let (t, accepted) = slam(lab.relay_addr(), Some(from), "john@sysiphus.com", sessions, deep, size, 50).await;
        assert_eq!(accepted as usize, deep / sessions * sessions, "every message queued");
        let budget = Instant::now() + Duration::from_secs(3600);
        assert!(lab.settle(Duration::from_secs(600)).await);
        println!("{:>10.0} messages/s  relaylab slammer -> builtin relay, MX down ({accepted} queued; 50 per session)", rate(accepted as usize, t));
        let h = lab.relay.queue_history().unwrap();
        println!("            queue depth {}, {} fsyncs in {} write batches", lab.relay.queue().len(), h.store.fsyncs, h.store.batches);
        for day in 1..=2 {
            let lines_before = lab.relay.log_lines().len();
            let started = Instant::now();
            relaylab::clock_driver::advance(&lab, Duration::from_secs(86_400), budget).await.expect("a day passes");
            let took = started.elapsed();
            let attempts = lab.relay.log_lines().len() - lines_before;
            println!(
                "{:>10.2} s wall   per simulated day (day {day}: {attempts} delivery attempts logged, {:.0} attempts/s, depth {})",
                took.as_secs_f64(),
                attempts as f64 / took.as_secs_f64(),
                lab.relay.queue().len()
            );
        }
        let h = lab.relay.queue_history().unwrap();
        println!("            {} queue runs, journal and control-file writes: {} fsyncs in {} batches", h.queue_runs, h.store.fsyncs, h.store.batches);
        lab.stop().await;
    });
    let _ = std::fs::remove_dir_all(&base);
}
