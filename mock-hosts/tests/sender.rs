//! Scripted senders against the sink and against hand-made servers.

mod common;

use common::{client_lines, sink, until, T};
use lab_core::codec;
use mock_hosts::{Mode, Sender, Step};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn sender(target: SocketAddr) -> Sender {
    Sender { source_ip: None, target, timeout: T, label: "spammer -> mx.example".into() }
}

const FORGED: &str = "Received: from trusted.example (trusted.example [198.51.100.1])\r\n\tby mx.example; Tue, 1 Jul 2025 10:00:00 +0000\r\nSubject: forged\r\n\r\n.dot line\r\nbody\r\n";

fn full_script(message: &str) -> Vec<Step> {
    vec![
        Step::Greeting,
        Step::line("EHLO forged.example"),
        Step::line("mail from:<>"),
        Step::line("RCPT TO:<victim@mx.example>"),
        Step::line("DATA"),
        Step::message(message),
        Step::line("QUIT"),
    ]
}

#[tokio::test]
async fn lockstep_delivers_envelope_and_data() {
    let sink = sink("mx.example").await;
    let s = Sender { source_ip: Some("127.0.0.9".parse().unwrap()), ..sender(sink.addr()) };
    let rec = s.run(&full_script(FORGED), Mode::Lockstep).await;
    assert!(rec.connected);
    assert_eq!(rec.error, None, "{}", rec.transcript.render());
    assert_eq!(rec.codes(), vec![Some(220), Some(250), Some(250), Some(250), Some(354), Some(250), Some(221)]);
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].envelope.mail_from, "");
    assert_eq!(msgs[0].envelope.rcpt_to, vec!["victim@mx.example"]);
    assert_eq!(msgs[0].helo.as_deref(), Some("forged.example"));
    assert_eq!(msgs[0].data, FORGED.as_bytes().to_vec());
    assert_eq!(msgs[0].peer.ip().to_string(), "127.0.0.9");
    let queue_id = &msgs[0].queue_id;
    assert!(rec.replies[5].as_ref().unwrap().first_line().contains(queue_id.as_str()));
    assert_eq!(rec.transcript.label, "spammer -> mx.example");
    sink.shutdown().await;
}

#[tokio::test]
async fn lockstep_never_sends_the_message_after_a_refused_data() {
    let sink = sink("mx.example").await;
    let steps = vec![
        Step::Greeting,
        Step::line("HELO x"),
        Step::line("MAIL FROM:<a@b>"),
        // No RCPT: the sink answers DATA with 503.
        Step::line("DATA"),
        Step::message("MAIL FROM:<smuggled@evil>\r\nRSET\r\n"),
        Step::line("NOOP"),
    ];
    let rec = sender(sink.addr()).run(&steps, Mode::Lockstep).await;
    assert_eq!(rec.error, None, "{}", rec.transcript.render());
    assert_eq!(rec.codes(), vec![Some(220), Some(250), Some(250), Some(503), None, Some(250)]);
    assert!(sink.messages().is_empty());
    let seen = client_lines(&sink, 0);
    assert_eq!(seen, vec!["HELO x", "MAIL FROM:<a@b>", "DATA", "NOOP"]);
    assert!(rec.transcript.render().contains("message not sent"));
    sink.shutdown().await;
}

#[tokio::test]
async fn pipelined_script_against_the_sink() {
    let sink = sink("mx.example").await;
    let rec = sender(sink.addr()).run(&full_script("Subject: slam\r\n\r\n..\r\n"), Mode::Pipelined).await;
    assert_eq!(rec.error, None, "{}", rec.transcript.render());
    assert_eq!(rec.codes(), vec![Some(220), Some(250), Some(250), Some(250), Some(354), Some(250), Some(221)]);
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].data, b"Subject: slam\r\n\r\n..\r\n".to_vec());
    assert_eq!(msgs[0].envelope.rcpt_to, vec!["victim@mx.example"]);
    until("the sink closes the session", || sink.active_sessions() == 0).await;
    sink.shutdown().await;
}

/// A server that insists on receiving `expect` before it greets: only a
/// client that writes before the greeting gets anywhere.
async fn early_talker_trap(expect: &'static [u8], replies: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else { return };
        let mut got = vec![0u8; expect.len()];
        if stream.read_exact(&mut got).await.is_err() || got != expect {
            return;
        }
        let _ = stream.write_all(replies).await;
        let _ = stream.shutdown().await;
    });
    addr
}

#[tokio::test]
async fn pipelined_writes_everything_before_the_greeting_and_keeps_extra_replies() {
    let mut wire = b"EHLO x\r\nMAIL FROM:<a@b>\r\nDATA\r\n".to_vec();
    wire.extend_from_slice(&codec::dot_stuff(b".hidden\r\n"));
    wire.extend_from_slice(b"junk\r\n");
    let expect: &'static [u8] = wire.leak();
    let addr =
        early_talker_trap(expect, b"220 trap\r\n250 hi\r\n250 ok\r\n354 go\r\n250 queued\r\n500 what junk\r\n").await;
    let steps = vec![
        Step::Greeting,
        Step::line("EHLO x"),
        Step::line("MAIL FROM:<a@b>"),
        Step::line("DATA"),
        Step::message(".hidden\n"),
        Step::raw("junk\r\n"),
    ];
    let rec = sender(addr).run(&steps, Mode::Pipelined).await;
    assert_eq!(rec.error, None, "{}", rec.transcript.render());
    assert_eq!(rec.codes(), vec![Some(220), Some(250), Some(250), Some(354), Some(250)]);
    let text = rec.transcript.render();
    assert!(text.contains("S: 500 what junk"), "{text}");
    assert!(text.contains("extra reply, not expected by the script: 500 what junk"), "{text}");
}

#[tokio::test]
async fn connect_refused_is_reported() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    for mode in [Mode::Lockstep, Mode::Pipelined] {
        let rec = sender(addr).run(&full_script("x"), mode).await;
        assert!(!rec.connected);
        assert_eq!(rec.replies, vec![None; 7]);
        let err = rec.error.expect("error set");
        assert!(err.contains(&addr.to_string()), "{err}");
    }
}

#[tokio::test]
async fn silent_server_times_out_per_read() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let keep = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        // Hold the connection open without a word.
        tokio::time::sleep(T).await;
        drop(stream);
    });
    let s = Sender { timeout: Duration::from_millis(50), ..sender(addr) };
    let started = Instant::now();
    let rec = s.run(&[Step::Greeting, Step::line("EHLO x")], Mode::Lockstep).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(rec.connected);
    assert_eq!(rec.replies, vec![None, None]);
    assert!(rec.error.as_deref().is_some_and(|e| e.contains("timed out")), "{:?}", rec.error);
    keep.abort();
}

#[tokio::test]
async fn lockstep_stops_when_the_server_hangs_up() {
    let addr = early_talker_trap(b"", b"554 go away\r\n").await;
    let rec = sender(addr).run(&full_script("x"), Mode::Lockstep).await;
    assert!(rec.connected);
    assert_eq!(rec.codes(), vec![Some(554), None, None, None, None, None, None]);
    assert!(rec.error.is_some(), "{}", rec.transcript.render());
}
