//! The virtual internet's actors against the builtin relay, through the
//! runner: what they report, and how a missed expectation reads.

use relaylab::lab::Lab;
use relaylab::runner::{run_lab, RunOptions};
use relaylab::scenario::load_str;
use reports::{LabReport, Verdict};
use std::path::Path;

async fn run(yaml: &str) -> LabReport {
    let lab = load_str(Path::new("test.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"));
    run_lab(&lab, &RunOptions::default()).await
}

fn passed(r: &LabReport) {
    assert_eq!(r.verdict, Verdict::Passed, "{}", r.render_failures());
}

const RELAY: &str = "relay:
  hostname: external.sysiphus.com
  relay_domains: [sysiphus.com, one.example, two.example]
";

const NET: &str = "dns:
  example.net: { MX: \"10 mail.example.net\" }
  sysiphus.com: { MX: \"10 internal.sysiphus.com\" }
  one.example: { MX: \"10 mx.one.example\" }
  two.example: { MX: \"10 mx.two.example\" }
";

fn lab(hosts: &str, steps: &str, expect: &str) -> String {
    format!("name: t/actors\n{RELAY}hosts:\n  mail.example.net: {{ ip: 203.0.113.45 }}\n{hosts}{NET}steps:\n{steps}{expect}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slam_through_the_relay_is_counted_and_reported() {
    let yaml = lab(
        "  internal.sysiphus.com: { ip: 10.1.1.10, smtp: accept }\n",
        "  - slam: { from: mail.example.net, connections: 4, messages: 5, distinct_sources: true, size: 3k, mail_from: a@example.net, rcpt_to: john@sysiphus.com }\n    expect: { accepted: 20, refused: 0 }\n",
        "expect: { delivered_count: 20 }\n",
    );
    let r = run(&yaml).await;
    passed(&r);
    let slam = r.observations.actors.iter().find(|a| a.kind == "slam").expect("a slam report");
    assert_eq!(slam.outcomes.get("accepted"), Some(&20));
    assert_eq!(slam.sessions, 4);
    let lat = slam.latency_ms.expect("latency percentiles");
    assert!(lat.p50 > 0.0 && lat.p50 <= lat.p90 && lat.p90 <= lat.p99 && lat.p99 <= lat.max, "{lat:?}");
    assert!(slam.messages_per_sec.unwrap() > 0.0);
    // The first slam session is in the report's transcripts, and it carried 3 KB messages.
    let t = r.observations.sessions.iter().find(|t| t.label.contains("(connection 1, session 1)")).expect("sampled");
    assert!(t.lines.iter().any(|l| l.text.starts_with("<message: 3")), "{}", t.render());
    // Four connections from four farm addresses, as the relay logged them.
    let clients: std::collections::BTreeSet<&str> = r
        .observations
        .relay_log
        .iter()
        .filter_map(|l| l.split("relay=").nth(1).filter(|_| l.contains("from=<a@")))
        .collect();
    assert_eq!(clients.len(), 4, "{clients:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_count_fails_with_the_outcomes_and_a_transcript() {
    let yaml = lab(
        "  internal.sysiphus.com: { ip: 10.1.1.10, smtp: accept }\n",
        "  - slam: { from: mail.example.net, connections: 2, messages: 2, mail_from: a@example.net, rcpt_to: [john@sysiphus.com, x@elsewhere.example] }\n    expect: { accepted: 3 }\n",
        "",
    );
    let r = run(&yaml).await;
    assert_eq!(r.verdict, Verdict::Failed);
    let f = &r.failures[0];
    assert_eq!(f.what, "steps[0]: slam from mail.example.net: accepted");
    assert_eq!((f.expected.as_str(), f.actual.as_str()), ("3", "4"));
    let context = f.context.as_deref().unwrap();
    assert!(context.contains("(\"accepted\", 4)"), "{context}");
    // One recipient was refused as relaying, the other accepted: the transcript shows both.
    assert!(context.contains("550 5.7.1 <x@elsewhere.example>... Relaying denied"), "{context}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mta_retries_through_a_greylist_behind_the_relay_and_the_timings_are_checked() {
    // The relay defers on the greylisting MX; the MTA retrying the relay itself
    // is accepted every time (the relay does not greylist), so it is sent
    // straight to the MX to exercise the retries.
    let yaml = lab(
        "  internal.sysiphus.com: { ip: 10.1.1.10, smtp: { greylist: { delay: 400ms } } }\n",
        "  - send: { from: mail.example.net, mail_from: a@example.net, rcpt_to: john@sysiphus.com }\n  - mta: { from: mail.example.net, to: internal.sysiphus.com, mail_from: b@example.net, rcpt_to: mary@sysiphus.com, retry: [300ms], give_up_after: 2s }\n    expect: { fate: delivered, attempts: 3, spacing: [300ms, 300ms], replies: [\"451 4.7.1\", \"451 4.7.1\", \"250\"] }\n",
        "expect:\n  queued: 1\n  hosts: { internal.sysiphus.com: { greylisted: 3, greylist_passed: 1 } }\n",
    );
    let r = run(&yaml).await;
    passed(&r);
    let mta = r.observations.actors.iter().find(|a| a.kind == "mta").unwrap();
    assert_eq!(mta.attempts.len(), 3);
    assert!(mta.attempts[1].at_ms >= 300 && mta.attempts[2].at_ms >= 600, "{:?}", mta.attempts);
    assert_eq!(mta.attempts[0].from.as_deref(), Some("203.0.113.45"), "reported by lab address");
    assert_eq!(mta.notes, vec!["delivered after 3 attempt(s)".to_string()]);

    // The same lab expecting too short a schedule fails, naming every attempt.
    let wrong = yaml.replace("spacing: [300ms, 300ms]", "spacing: [300ms, 5s]");
    let r = run(&wrong).await;
    assert_eq!(r.verdict, Verdict::Failed);
    let f = r.failures.iter().find(|f| f.what.contains("spacing[1]")).expect("a spacing failure");
    assert_eq!(f.expected, "at least 5s");
    assert!(f.context.as_deref().unwrap().contains("attempt 3 at +"), "{:?}", f.context);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mta_keeping_rfc_5321_times_passes_the_relays_greylist_in_lab_time_not_wall_time() {
    // The relay greylists for 25 minutes; the sender retries after 30 minutes,
    // then backs off for days. Lab time jumps to each retry: the step takes
    // milliseconds, and the attempts are where the schedule puts them.
    let yaml = lab(
        "  internal.sysiphus.com: { ip: 10.1.1.10, smtp: accept }\n",
        "  - mta: { from: mail.example.net, mail_from: a@example.net, rcpt_to: john@sysiphus.com, retry: [30m, 1h, 2h], give_up_after: 4d }\n    expect: { fate: delivered, attempts: 2, spacing: [30m], replies: [\"451 4.7.1\", \"250 2.0.0\"] }\n",
        "expect: { delivered_count: 1 }\n",
    )
    .replace("relay_domains: [sysiphus.com, one.example, two.example]", "relay_domains: [sysiphus.com]\n  greylist: { delay: 25m }");
    let wall = std::time::Instant::now();
    let r = run(&yaml).await;
    let took = wall.elapsed();
    passed(&r);
    assert!(took < std::time::Duration::from_secs(5), "the lab took {took:?} of wall time");
    let mta = r.observations.actors.iter().find(|a| a.kind == "mta").unwrap();
    assert_eq!(mta.attempts.len(), 2);
    assert_eq!(mta.attempts[0].at_ms, 0);
    let second = mta.attempts[1].at_ms;
    assert!((30 * 60_000..30 * 60_000 + 1_000).contains(&second), "second attempt at +{second} ms of lab time");
    assert!(mta.duration_ms < 3_000, "the step took {} ms of wall time", mta.duration_ms);

    // The same lab on the wall clock still sleeps for real: a 30-minute retry
    // cannot fit its budget, and the step says so.
    let wall_yaml = yaml.replace("name: t/actors\n", "name: t/actors\nclock: wall\nbudget: 1s\n");
    let r = run(&wall_yaml).await;
    assert_eq!(r.verdict, Verdict::Failed, "{}", r.render_failures());
    assert!(r.failures.iter().any(|f| f.actual.contains("budget ran out")), "{}", r.render_failures());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarding_loop_ends_at_max_hop_count_and_the_lab_waits_for_it() {
    let yaml = lab(
        "  mx.one.example: { ip: 198.51.100.11, smtp: { forward: { to: b@two.example } } }\n  mx.two.example: { ip: 198.51.100.12, smtp: { forward: { to: a@one.example } } }\n",
        "  - send: { from: mail.example.net, mail_from: a@example.net, rcpt_to: a@one.example }\n",
        "expect: { delivered_count: 3 }\n",
    )
    .replace("relay_domains: [sysiphus.com, one.example, two.example]", "relay_domains: [one.example, two.example]\n  max_hop_count: 5");
    let r = run(&yaml).await;
    // Hops on arrival at the forwarders: 1, 3, 5; the copy carrying 6 is refused.
    passed(&r);
    let one = r.observations.actors.iter().find(|a| a.name == "host mx.one.example").unwrap();
    assert_eq!(one.kind, "forward");
    assert_eq!(one.outcomes.get("rejected"), Some(&1));
    let last = one.attempts.last().unwrap();
    assert!(last.reply.as_deref().unwrap().starts_with("554 5.4.6 Too many hops 6 (5 max)"), "{last:?}");
    // The forwarders' own sessions are in the report.
    assert!(r.observations.sessions.iter().any(|t| t.label == "mx.one.example -> relay"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_dns_serves_dnsbl_listings_and_faults() {
    let yaml = lab(
        "  spammer: { ip: 203.0.113.66 }\n",
        "  - wait: 1ms\n",
        "dnsbl: { zone: bl.spamcop.net, listed: { spammer: spam source, 192.0.2.1: ~ } }\ndns_faults: [{ name: one.example, fault: nxdomain }]\n",
    );
    let s = load_str(Path::new("t.yaml"), &yaml).unwrap();
    let lab = Lab::start(&s.scenario, lab_core::clock::wall()).await.unwrap();
    let resolver = resolver(lab.dns.addr());
    let a = resolver.lookup("66.113.0.203.bl.spamcop.net.", hickory_proto::rr::RecordType::A).await.unwrap();
    assert_eq!(a.answers()[0].data.to_string(), "127.0.0.2");
    let txt = resolver.lookup("66.113.0.203.bl.spamcop.net.", hickory_proto::rr::RecordType::TXT).await.unwrap();
    assert_eq!(txt.answers()[0].data.to_string(), "spam source");
    // Listed without a reason: an A record only.
    assert!(resolver.lookup("1.2.0.192.bl.spamcop.net.", hickory_proto::rr::RecordType::A).await.is_ok());
    assert!(resolver.lookup("1.2.0.192.bl.spamcop.net.", hickory_proto::rr::RecordType::TXT).await.is_err());
    // The fault from the scenario is in force.
    let nx = resolver.lookup("one.example.", hickory_proto::rr::RecordType::MX).await.unwrap_err();
    assert!(nx.is_nx_domain(), "{nx}");
    lab.stop().await;
}

fn resolver(dns: std::net::SocketAddr) -> hickory_resolver::TokioResolver {
    use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
    let mut c = ConnectionConfig::udp();
    c.port = dns.port();
    let config = ResolverConfig::from_parts(None, vec![], vec![NameServerConfig::new(dns.ip(), true, vec![c])]);
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    hickory_resolver::TokioResolver::builder_with_config(
        config,
        hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
    )
    .with_options(opts)
    .build()
    .unwrap()
}
