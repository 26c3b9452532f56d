//! Scripted MX behaviours on real sockets: per-phase replies, per-recipient
//! rules, delays, hang-ups, silence, greylisting, outage windows, faults
//! named in the address, "fail N times then succeed".

mod common;

use common::{client, sink_with, T};
use lab_core::{Direction, SmtpClient, TranscriptRecorder};
use mock_hosts::{Action, Greylist, MxSink, Phase, RcptPattern, Rule, Schedule, Script, SinkBehaviour, SinkConfig};
use std::time::{Duration, Instant};

fn rule(text: &str) -> Rule {
    Rule::new(Action::parse(text).unwrap())
}

fn scripted(script: Script) -> SinkConfig {
    SinkConfig::with_behaviour("mx.example", SinkBehaviour::scripted(script))
}

/// Greeting and EHLO, checking both are positive.
async fn hello(c: &mut SmtpClient) {
    assert_eq!(c.read_reply().await.unwrap().code, 220);
    assert_eq!(c.command("EHLO client.example").await.unwrap().code, 250);
}

#[tokio::test]
async fn per_phase_replies_refuse_without_advancing_the_transaction() {
    let sink = sink_with(scripted(Script {
        phases: vec![
            (Phase::Mail, rule("452 4.3.1 Insufficient system storage").times(1)),
            (Phase::DataEnd, rule("554 5.7.1 Message refused")),
        ],
        ..Script::default()
    }))
    .await;
    let mut c = client(sink.addr()).await;
    hello(&mut c).await;
    assert_eq!(c.command("MAIL FROM:<a@b>").await.unwrap().first_line(), "452 4.3.1 Insufficient system storage");
    // The refused MAIL opened no transaction; the next one is accepted.
    assert_eq!(c.command("RCPT TO:<x@y>").await.unwrap().first_line(), "503 5.0.0 Need MAIL before RCPT");
    assert_eq!(c.command("MAIL FROM:<a@b>").await.unwrap().first_line(), "250 2.1.0 Sender ok");
    assert_eq!(c.command("RCPT TO:<x@y>").await.unwrap().code, 250);
    assert_eq!(c.command("DATA").await.unwrap().code, 354);
    assert_eq!(c.send_message(b"Subject: s\r\n\r\nb\r\n").await.unwrap().first_line(), "554 5.7.1 Message refused");
    assert!(sink.messages().is_empty(), "a refused message is not recorded");
    // The transaction is over after the final reply.
    assert_eq!(c.command("MAIL FROM:<a@b>").await.unwrap().code, 250);
    sink.shutdown().await;
}

#[tokio::test]
async fn per_recipient_rules_and_the_address_grammar() {
    let sink = sink_with(scripted(Script {
        recipients: vec![(
            RcptPattern::parse("bad@mx.example").unwrap(),
            rule("550 5.1.1 <bad@mx.example>... User unknown"),
        )],
        ..Script::default()
    }))
    .await;
    let mut c = client(sink.addr()).await;
    hello(&mut c).await;
    assert_eq!(c.command("MAIL FROM:<a@b>").await.unwrap().code, 250);
    assert_eq!(
        c.command("RCPT TO:<bad@mx.example>").await.unwrap().first_line(),
        "550 5.1.1 <bad@mx.example>... User unknown"
    );
    assert_eq!(
        c.command("RCPT TO:<tempfail-451@mx.example>").await.unwrap().first_line(),
        "451 4.0.0 <tempfail-451@mx.example>... temporary failure requested by the address"
    );
    assert_eq!(c.command("RCPT TO:<good@mx.example>").await.unwrap().code, 250);
    assert_eq!(c.command("RCPT TO:<reject-554-data@mx.example>").await.unwrap().code, 250);
    assert_eq!(c.command("DATA").await.unwrap().code, 354);
    let end = c.send_message(b"Subject: s\r\n\r\nb\r\n").await.unwrap();
    assert_eq!(end.first_line(), "554 5.0.0 <reject-554-data@mx.example>... rejection requested by the address");
    assert!(sink.messages().is_empty());
    sink.shutdown().await;
}

#[tokio::test]
async fn fail_twice_then_succeed_counts_across_sessions() {
    let sink = sink_with(scripted(Script {
        phases: vec![(Phase::DataEnd, rule("451 4.3.0 Try again later").times(2))],
        ..Script::default()
    }))
    .await;
    let mut finals = Vec::new();
    for _ in 0..3 {
        let mut c = client(sink.addr()).await;
        hello(&mut c).await;
        c.command("MAIL FROM:<a@b>").await.unwrap();
        c.command("RCPT TO:<x@mx.example>").await.unwrap();
        c.command("DATA").await.unwrap();
        finals.push(c.send_message(b"Subject: s\r\n\r\nb\r\n").await.unwrap().code);
        c.quit().await;
    }
    assert_eq!(finals, vec![451, 451, 250]);
    assert_eq!(sink.messages().len(), 1);
    sink.shutdown().await;
}

#[tokio::test]
async fn a_554_banner_serves_only_quit() {
    let sink = sink_with(scripted(Script {
        phases: vec![(Phase::Banner, rule("554 5.3.2 mx.example not accepting messages"))],
        ..Script::default()
    }))
    .await;
    let mut c = client(sink.addr()).await;
    assert_eq!(c.read_reply().await.unwrap().first_line(), "554 5.3.2 mx.example not accepting messages");
    assert_eq!(c.command("EHLO x").await.unwrap().first_line(), "503 5.5.1 No service here; say QUIT");
    assert_eq!(c.quit().await.map(|r| r.code), Some(221));
    sink.shutdown().await;
}

#[tokio::test]
async fn a_421_banner_closes_the_connection() {
    let sink =
        sink_with(scripted(Script { phases: vec![(Phase::Banner, rule("421 4.3.2 too busy"))], ..Script::default() }))
            .await;
    let mut c = client(sink.addr()).await;
    assert_eq!(c.read_reply().await.unwrap().first_line(), "421 4.3.2 too busy");
    assert!(c.read_reply().await.is_err(), "closed after 421");
    sink.shutdown().await;
}

#[tokio::test]
async fn delays_hold_the_answer_back() {
    let sink =
        sink_with(scripted(Script { delays: vec![(Phase::Mail, Duration::from_millis(300))], ..Script::default() }))
            .await;
    let mut c = client(sink.addr()).await;
    hello(&mut c).await;
    let t = Instant::now();
    assert_eq!(c.command("MAIL FROM:<a@b>").await.unwrap().code, 250);
    assert!(t.elapsed() >= Duration::from_millis(300), "answered after {:?}", t.elapsed());
    // The address grammar delays too.
    let t = Instant::now();
    assert_eq!(c.command("RCPT TO:<slow-200ms@mx.example>").await.unwrap().code, 250);
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert!(sink.sessions()[0].lines.iter().any(|l| l.text == "waiting 300ms before answering (scripted)"));
    sink.shutdown().await;
}

#[tokio::test]
async fn disconnect_hangs_up_without_a_reply() {
    let sink =
        sink_with(scripted(Script { phases: vec![(Phase::Rcpt, rule("disconnect"))], ..Script::default() })).await;
    let mut c = client(sink.addr()).await;
    hello(&mut c).await;
    c.command("MAIL FROM:<a@b>").await.unwrap();
    let err = c.command("RCPT TO:<x@mx.example>").await.unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");
    let t = &sink.sessions()[0];
    assert!(t.lines.iter().any(|l| l.text == "hanging up without a reply (scripted)"), "{}", t.render());
    sink.shutdown().await;
}

#[tokio::test]
async fn a_blackhole_accepts_and_never_speaks() {
    let sink = sink_with(SinkConfig::with_behaviour("mx.example", SinkBehaviour::blackhole())).await;
    let rec = TranscriptRecorder::new("c");
    let mut c = SmtpClient::connect(None, sink.addr(), Duration::from_millis(300), rec).await.expect("TCP is accepted");
    let t = Instant::now();
    let err = c.read_reply().await.unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(sink.active_sessions(), 1, "the connection stays open");
    drop(c);
    common::until("the silent session ends when the client goes", || sink.active_sessions() == 0).await;
    assert!(sink.sessions()[0].lines.iter().all(|l| l.dir != Direction::Server));
    sink.shutdown().await;
}

#[tokio::test]
async fn greylisting_defers_the_first_try_and_passes_a_later_one() {
    let grey = Greylist::new(Duration::from_millis(300));
    let sink = sink_with(SinkConfig::with_behaviour("mx.example", SinkBehaviour::greylisting(grey))).await;
    let attempt = |addr| async move {
        let mut c = client(addr).await;
        hello(&mut c).await;
        c.command("MAIL FROM:<a@b.example>").await.unwrap();
        let r = c.command("RCPT TO:<x@mx.example>").await.unwrap();
        c.quit().await;
        r
    };
    let first = attempt(sink.addr()).await;
    assert_eq!(first.code, 451);
    assert!(first.first_line().starts_with("451 4.7.1 Greylisting in action"), "{}", first.first_line());
    assert_eq!(attempt(sink.addr()).await.code, 451, "too early");
    tokio::time::sleep(Duration::from_millis(320)).await;
    assert_eq!(attempt(sink.addr()).await.code, 250);
    let stats = sink.greylist_stats().unwrap();
    assert_eq!((stats.deferred, stats.passed), (2, 1));
    sink.shutdown().await;
}

#[tokio::test]
async fn a_scheduled_outage_refuses_connections_then_the_host_comes_back() {
    let config = SinkConfig {
        schedule: Schedule { down: vec![(Duration::ZERO, Duration::from_millis(300))] },
        ..SinkConfig::accept("mx.example")
    };
    let sink: MxSink = sink_with(config).await;
    let rec = TranscriptRecorder::new("c");
    // Down from the start: refused.
    common::until("the port closes", || {
        std::net::TcpStream::connect_timeout(&sink.addr(), Duration::from_millis(50)).is_err()
    })
    .await;
    let refused = SmtpClient::connect(None, sink.addr(), T, rec.clone()).await.unwrap_err();
    assert!(refused.is_refused(), "{refused}");
    // Up again after the window.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut c = client(sink.addr()).await;
    assert_eq!(c.read_reply().await.unwrap().code, 220);
    let events = sink.events();
    assert!(events[0].contains("down (not listening) until 300 ms"), "{events:?}");
    assert!(events[1].contains("up (listening again)"), "{events:?}");
    sink.shutdown().await;
}

#[tokio::test]
async fn an_outage_in_mid_lab_ends_open_sessions() {
    let config = SinkConfig {
        schedule: Schedule { down: vec![(Duration::from_millis(200), Duration::from_secs(60))] },
        ..SinkConfig::accept("mx.example")
    };
    let sink = sink_with(config).await;
    let mut c = client(sink.addr()).await;
    hello(&mut c).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(c.command("NOOP").await.is_err(), "the session died with the host");
    let t = &sink.sessions()[0];
    assert!(t.lines.iter().any(|l| l.text.contains("the host went down")), "{}", t.render());
    sink.shutdown().await;
}
