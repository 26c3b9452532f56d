//! The lab's client-side actors on real sockets: the retrying MTA against a
//! greylisting MX (farm and list-server habits), the slammer, a forwarder.

mod common;

use common::{sink, sink_with, T};
use lab_core::AddressMap;
use mock_hosts::mta::{Fate, RetryPolicy, RetryingSender};
use mock_hosts::relay_back::{Forward, Outbound, Reaction};
use mock_hosts::slammer::{sized_message, Slam};
use mock_hosts::{Delivery, Greylist, LabTime, SinkBehaviour, SinkConfig};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn mta(target: SocketAddr, sources: Vec<IpAddr>, retry: &[u64], give_up_ms: u64) -> RetryingSender {
    RetryingSender {
        target,
        sources,
        helo: "mail.example.net".into(),
        mail_from: "alice@example.net".into(),
        vary_sender: false,
        rcpt_to: vec!["hal@mx.example".into()],
        data: b"Subject: retry\r\n\r\nbody\r\n".to_vec(),
        policy: RetryPolicy {
            intervals: retry.iter().map(|ms| Duration::from_millis(*ms)).collect(),
            give_up_after: Duration::from_millis(give_up_ms),
        },
        timeout: T,
        label: "mail.example.net -> mx.example".into(),
        time: LabTime::wall(),
    }
}

/// A greylisting sink that sees 127.77.0.x as the lab's 203.0.113.x.
async fn greylisting(delay_ms: u64, prefix_bits: u8) -> mock_hosts::MxSink {
    let mut addresses = AddressMap::identity();
    for last in 10..13u8 {
        addresses.insert(IpAddr::from([203, 0, 113, last]), IpAddr::from([127, 77, 0, last]));
    }
    let g = Greylist::new(Duration::from_millis(delay_ms)).by_prefix(prefix_bits);
    let config = SinkConfig { addresses, ..SinkConfig::with_behaviour("mx.example", SinkBehaviour::greylisting(g)) };
    mock_hosts::MxSink::start("127.77.0.1:0".parse().unwrap(), config, lab_core::clock::wall()).await.unwrap()
}

#[tokio::test]
async fn an_mta_queues_on_the_greylist_4xx_and_gets_through_on_retry() {
    let sink = greylisting(250, 32).await;
    let rec = mta(sink.addr(), vec![ip("127.77.0.10")], &[100, 200, 400], 3000).run().await;
    assert_eq!(rec.fate, Fate::Delivered);
    let outcomes: Vec<Delivery> = rec.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, vec![Delivery::TempFailed, Delivery::TempFailed, Delivery::Accepted]);
    assert!(rec.attempts[0].reply.as_ref().unwrap().first_line().starts_with("451 4.7.1 Greylisting"));
    // Retries keep to the schedule: +100 ms after the first, +200 ms after the second.
    assert!(rec.attempts[1].at >= Duration::from_millis(100), "{:?}", rec.attempts[1].at);
    assert!(rec.attempts[2].at >= Duration::from_millis(300), "{:?}", rec.attempts[2].at);
    assert_eq!(sink.messages().len(), 1);
    sink.shutdown().await;
}

#[tokio::test]
async fn spamware_that_never_retries_is_never_delivered() {
    let sink = greylisting(100, 32).await;
    let rec = mta(sink.addr(), vec![ip("127.77.0.10")], &[], 3000).run().await;
    assert_eq!(rec.fate, Fate::GaveUp);
    assert_eq!(rec.attempts.len(), 1);
    assert!(sink.messages().is_empty());
    sink.shutdown().await;
}

#[tokio::test]
async fn a_server_farm_passes_a_slash_24_greylist_but_not_an_exact_one() {
    let farm = vec![ip("127.77.0.10"), ip("127.77.0.11"), ip("127.77.0.12")];
    let exact = greylisting(150, 32).await;
    let rec = mta(exact.addr(), farm.clone(), &[200], 500).run().await;
    assert_eq!(rec.fate, Fate::GaveUp, "each retry comes from a new address: a new triplet each time");
    assert_eq!(rec.attempts.iter().map(|a| a.source.unwrap()).collect::<Vec<_>>(), farm);
    exact.shutdown().await;

    let by24 = greylisting(150, 24).await;
    let rec = mta(by24.addr(), farm, &[200], 500).run().await;
    assert_eq!(rec.fate, Fate::Delivered);
    assert_eq!(rec.attempts.len(), 2);
    by24.shutdown().await;
}

#[tokio::test]
async fn a_list_server_changing_its_sender_never_matches_its_triplet() {
    let sink = greylisting(100, 32).await;
    let mut m = mta(sink.addr(), vec![ip("127.77.0.10")], &[150], 600);
    m.mail_from = "list-bounces-{n}@lists.example".into();
    let rec = m.run().await;
    assert_eq!(rec.fate, Fate::GaveUp);
    assert!(rec.attempts.len() >= 3);
    assert_eq!(rec.attempts[1].mail_from, "list-bounces-2@lists.example");
    assert!(rec.attempts.iter().all(|a| a.outcome == Delivery::TempFailed));
    sink.shutdown().await;
}

#[tokio::test]
async fn an_mta_stops_at_a_5xx() {
    let sink = sink("mx.example").await;
    let mut m = mta(sink.addr(), Vec::new(), &[50], 1000);
    m.rcpt_to = vec!["reject-550@mx.example".into()];
    let rec = m.run().await;
    assert_eq!(rec.fate, Fate::Bounced);
    assert_eq!(rec.attempts.len(), 1);
    sink.shutdown().await;
}

/// A greylisting sink on `clock` that sees 127.77.0.x as the lab's 203.0.113.x.
async fn greylisting_on(delay: Duration, clock: lab_core::SharedClock) -> mock_hosts::MxSink {
    let mut addresses = AddressMap::identity();
    addresses.insert(IpAddr::from([203, 0, 113, 10]), IpAddr::from([127, 77, 0, 10]));
    let g = Greylist::new(delay);
    let config = SinkConfig { addresses, ..SinkConfig::with_behaviour("mx.example", SinkBehaviour::greylisting(g)) };
    mock_hosts::MxSink::start("127.77.0.1:0".parse().unwrap(), config, clock).await.unwrap()
}

#[tokio::test]
async fn an_mta_is_idle_only_while_its_retry_timer_is_set_so_a_virtual_clock_can_jump_to_it() {
    let start = chrono::DateTime::parse_from_rfc3339("2006-01-05T06:28:00Z").unwrap().to_utc();
    let clock = lab_core::VirtualClock::flowing(start);
    let sink = greylisting_on(Duration::from_secs(25 * 60), clock.clone()).await;
    let mut m = mta(sink.addr(), vec![ip("127.77.0.10")], &[], 0);
    // RFC 5321 4.5.4.1: 30 minutes, then backing off; a day at most here.
    m.policy = RetryPolicy {
        intervals: [30, 60, 120].iter().map(|min| Duration::from_secs(min * 60)).collect(),
        give_up_after: Duration::from_secs(24 * 3600),
    };
    m.mail_from = "list-bounces-{n}@lists.example".into();
    m.time = LabTime::new(clock.clone(), start);

    // Busy from the call on, before anything polled it.
    let activity = lab_core::Activity::default();
    let early = m.run_tracked(&activity);
    assert_eq!(activity.in_flight(), 1);
    drop(early);
    assert_eq!(activity.in_flight(), 0);

    // A driver as the lab's: jump only when the sender is idle and nobody is waking.
    let wall = std::time::Instant::now();
    let run = tokio::spawn({
        let (m, activity) = (m.clone(), activity.clone());
        async move { m.run_tracked(&activity).await }
    });
    let mut jumps = Vec::new();
    while !run.is_finished() {
        assert!(wall.elapsed() < T, "the sender did not finish: jumps so far {jumps:?}");
        if activity.in_flight() > 0 || clock.waking() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        // Idle means asleep on a retry timer, never between timers.
        match clock.advance_to_next(start + chrono::Duration::days(2)) {
            Some(t) => jumps.push(t - start),
            None => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    let rec = run.await.unwrap();
    assert!(wall.elapsed() < Duration::from_secs(3), "a day of retries took {:?} of wall time", wall.elapsed());
    // A new sender each time: a new triplet each time, never through. Attempts at
    // 0, 30m, 1h30, 3h30, then every 2 hours up to 23h30.
    assert_eq!(rec.fate, Fate::GaveUp);
    let at: Vec<u64> = rec.attempts.iter().map(|a| a.at.as_secs() / 60).collect();
    let want: Vec<u64> = [0, 30, 90].into_iter().chain((210..=1410).step_by(120)).collect();
    assert_eq!(at, want);
    assert!(rec.attempts.iter().all(|a| a.outcome == Delivery::TempFailed));
    // Each attempt started within a moment of its timer (wall-speed flow only).
    for (a, w) in rec.attempts.iter().zip(&want) {
        assert!(a.at - Duration::from_secs(w * 60) < Duration::from_secs(1), "{:?}", a.at);
    }
    assert_eq!(jumps.len(), want.len() - 1, "one jump per retry: {jumps:?}");
    assert_eq!(sink.session_count(), want.len());
    sink.shutdown().await;
}

fn slam(target: SocketAddr, connections: usize, messages: usize) -> Slam {
    Slam {
        target,
        sources: Vec::new(),
        connections,
        messages,
        per_session: 0,
        rate: None,
        pipelining: true,
        helo: "slammer.example".into(),
        mail_from: "bulk@slammer.example".into(),
        rcpt_to: vec!["victim@mx.example".into()],
        message: sized_message("bulk@slammer.example", "victim@mx.example", "buy now", 2048),
        timeout: T,
        deadline: Duration::from_secs(20),
        label: "slammer -> mx.example".into(),
        time: LabTime::wall(),
    }
}

#[tokio::test]
async fn a_slammer_counts_every_message_and_keeps_every_transcript() {
    let sink = sink("mx.example").await;
    let mut s = slam(sink.addr(), 5, 8);
    s.per_session = 4;
    s.sources = (20..25).map(|n| IpAddr::from([127, 78, 0, n])).collect();
    let r = s.run().await;
    assert_eq!(r.messages.accepted, 40, "{:?}", r.first_problem);
    assert_eq!(r.messages.total(), 40);
    assert_eq!(r.sessions.accepted, 10);
    assert_eq!(r.unsent, 0);
    assert_eq!(r.latencies_us.len(), 40);
    assert!(r.percentile(50.0).unwrap() <= r.percentile(99.0).unwrap());
    assert_eq!(r.transcripts.len(), 10);
    assert_eq!(sink.messages().len(), 40);
    assert!(sink.messages().iter().all(|m| m.data.len() == 2048));
    // Each connection came from its own address.
    let peers: std::collections::BTreeSet<IpAddr> = sink.messages().iter().map(|m| m.peer.ip()).collect();
    assert_eq!(peers.len(), 5);
    // PIPELINING was offered, so MAIL, RCPT and DATA left before their replies came back.
    let t = &r.transcripts[0];
    let lines: Vec<&str> = t.lines.iter().map(|l| l.text.as_str()).collect();
    let mail = lines.iter().position(|l| l.starts_with("MAIL FROM")).unwrap();
    assert_eq!(&lines[mail..mail + 3], ["MAIL FROM:<bulk@slammer.example>", "RCPT TO:<victim@mx.example>", "DATA"]);
    sink.shutdown().await;
}

#[tokio::test]
async fn a_slammer_sees_refusals_rejections_and_a_target_rate() {
    // Nothing listens: every message meets a refused connection.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let r = slam(closed, 3, 2).run().await;
    assert_eq!(r.messages.refused, 6);
    assert_eq!(r.sessions.refused, 3);

    let sink = sink("mx.example").await;
    let mut s = slam(sink.addr(), 2, 5);
    s.rcpt_to = vec!["reject-550@mx.example".into()];
    s.rate = Some(50.0);
    let r = s.run().await;
    assert_eq!(r.messages.rejected, 10);
    assert!(r.first_problem.as_deref().unwrap().starts_with("550 5.0.0"));
    // 10 messages at 50/s: the last starts no sooner than 180 ms in.
    assert!(r.elapsed >= Duration::from_millis(180), "{:?}", r.elapsed);
    sink.shutdown().await;
}

#[tokio::test]
async fn a_slammer_is_bounded_by_its_deadline() {
    let sink = sink_with(SinkConfig::with_behaviour("mx.example", SinkBehaviour::blackhole())).await;
    let mut s = slam(sink.addr(), 2, 3);
    s.timeout = Duration::from_secs(10);
    s.deadline = Duration::from_millis(300);
    let r = s.run().await;
    assert!(r.elapsed < Duration::from_secs(2));
    assert_eq!(r.unsent, 6);
    sink.shutdown().await;
}

#[tokio::test]
async fn a_forwarder_sends_what_it_accepts_on_with_its_own_received_line() {
    let next = sink("next.example").await;
    let fwd =
        Reaction::Forward(Forward { to: vec!["b@two.example".into()], add_received: true, strip_received: false });
    let out = Outbound { target: next.addr(), source: None, timeout: T, max_messages: 10 };
    let config = SinkConfig { reaction: Some((fwd, out)), ..SinkConfig::accept("fwd.one.example") };
    let fwd_sink = sink_with(config).await;
    let s = slam(fwd_sink.addr(), 1, 2);
    assert_eq!(s.run().await.messages.accepted, 2);
    assert!(fwd_sink.wait_idle(T).await);
    let got = next.messages();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].envelope.mail_from, "bulk@slammer.example");
    assert_eq!(got[0].envelope.rcpt_to, vec!["b@two.example"]);
    assert!(got[0]
        .text()
        .starts_with("Received: from slammer.example ([127.0.0.1])\r\n\tby fwd.one.example (relaylab-sink)"));
    let log = fwd_sink.reactor_log().unwrap();
    assert_eq!(log.sent.len(), 2);
    assert!(log.sent.iter().all(|s| s.outcome == Delivery::Accepted && s.hops == 1));
    fwd_sink.shutdown().await;
    next.shutdown().await;
}

#[tokio::test]
async fn a_forwarding_loop_is_cut_at_the_cap() {
    // Two forwarders that strip Received and point at each other: nothing
    // counts hops, so only the cap ends the loop.
    let probe = std::net::TcpListener::bind("127.79.0.2:0").unwrap();
    let b_addr = probe.local_addr().unwrap();
    drop(probe);
    let forwarder = |name: &str, to: SocketAddr| {
        let r = Reaction::Forward(Forward { to: Vec::new(), add_received: true, strip_received: true });
        SinkConfig {
            reaction: Some((r, Outbound { target: to, source: None, timeout: T, max_messages: 5 })),
            ..SinkConfig::accept(name)
        }
    };
    let a = mock_hosts::MxSink::start(
        "127.79.0.1:0".parse().unwrap(),
        forwarder("a.example", b_addr),
        lab_core::clock::wall(),
    )
    .await
    .unwrap();
    let b = mock_hosts::MxSink::start(b_addr, forwarder("b.example", a.addr()), lab_core::clock::wall()).await.unwrap();
    assert_eq!(slam(a.addr(), 1, 1).run().await.messages.accepted, 1);
    common::until("both forwarders are quiet", || {
        a.busy() == 0 && b.busy() == 0 && a.reactor_log().unwrap().capped > 0
    })
    .await;
    let (la, lb) = (a.reactor_log().unwrap(), b.reactor_log().unwrap());
    assert_eq!(la.sent.len(), 5);
    assert_eq!(lb.sent.len(), 5);
    assert_eq!(la.capped, 1, "the 6th copy reaching a is not sent");
    assert!(la.sent.iter().chain(&lb.sent).all(|s| s.hops == 0), "the hop count never grows");
    a.shutdown().await;
    b.shutdown().await;
}
