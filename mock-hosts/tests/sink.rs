//! The MX sink on real sockets.

mod common;

use common::{client, client_lines, sink, sink_with, until, T};
use lab_core::Direction;
use mock_hosts::{MxSink, SinkConfig};
use std::time::{Duration, Instant};

/// Greeting, EHLO, MAIL, RCPT and DATA in lockstep, checking each reply.
async fn up_to_data(c: &mut lab_core::SmtpClient) {
    assert_eq!(c.read_reply().await.unwrap().first_line(), "220 mx.example ESMTP relaylab-sink");
    assert_eq!(c.command("EHLO client.example").await.unwrap().code, 250);
    assert_eq!(c.command("MAIL FROM:<a@client.example>").await.unwrap().first_line(), "250 2.1.0 Sender ok");
    assert_eq!(c.command("RCPT TO:<b@mx.example>").await.unwrap().first_line(), "250 2.1.5 Recipient ok");
    let r = c.command("DATA").await.unwrap();
    assert_eq!(r.first_line(), "354 Enter mail, end with \".\" on a line by itself");
}

#[tokio::test]
async fn dot_transparency_removes_exactly_one_dot() {
    let sink = sink("mx.example").await;
    let mut c = client(sink.addr()).await;
    up_to_data(&mut c).await;
    // As stuffed on the wire by a correct client (RFC 5321 4.5.2).
    c.send_raw(b"Subject: dots\r\n\r\n..one dot\r\n...two dots\r\n..\r\nlast line\r\n.\r\n").await.unwrap();
    let done = c.read_reply().await.unwrap();
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].data, b"Subject: dots\r\n\r\n.one dot\r\n..two dots\r\n.\r\nlast line\r\n".to_vec());
    assert_eq!(done.first_line(), format!("250 2.0.0 {} Message accepted for delivery", msgs[0].queue_id));
    assert_eq!(msgs[0].envelope.mail_from, "a@client.example");
    assert_eq!(msgs[0].envelope.rcpt_to, vec!["b@mx.example"]);
    assert_eq!(msgs[0].helo.as_deref(), Some("client.example"));
    assert_eq!(msgs[0].host, "mx.example");
    assert_eq!(msgs[0].session, 0);
    // The transcript summarises the body instead of recording it.
    let t = &sink.sessions()[0];
    assert_eq!(t.label, "127.0.0.1 -> mx.example");
    let note = format!("<message: {} octets>", msgs[0].data.len());
    assert!(t.lines.iter().any(|l| l.dir == Direction::Note && l.text == note), "{}", t.render());
    assert!(!client_lines(&sink, 0).iter().any(|l| l.contains("dots")), "{}", t.render());
    assert_eq!(c.quit().await.map(|r| r.code), Some(221));
    sink.shutdown().await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let sink = sink("mx.example").await;
    let mut c = client(sink.addr()).await;
    assert_eq!(c.read_reply().await.unwrap().code, 220);
    // One write, as a PIPELINING client sends a command group (RFC 2920 3.1).
    c.send_raw(b"EHLO pipe.example\r\nMAIL FROM:<a@b> SIZE=123 BODY=8BITMIME\r\nRCPT TO:<one@y>\r\nRCPT TO:<two@y>\r\nDATA\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(c.read_reply().await.unwrap().first_line());
    }
    assert_eq!(
        got,
        vec![
            "250 mx.example Hello [127.0.0.1]".to_string(),
            "250 2.1.0 Sender ok".into(),
            "250 2.1.5 Recipient ok".into(),
            "250 2.1.5 Recipient ok".into(),
            "354 Enter mail, end with \".\" on a line by itself".into(),
        ]
    );
    assert_eq!(c.send_message(b"Subject: p\r\n\r\nbody\r\n").await.unwrap().code, 250);
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].envelope.rcpt_to, vec!["one@y", "two@y"]);
    assert_eq!(msgs[0].data, b"Subject: p\r\n\r\nbody\r\n".to_vec());
    sink.shutdown().await;
}

#[tokio::test]
async fn two_messages_in_one_session_without_rset() {
    let sink = sink("mx.example").await;
    let mut c = client(sink.addr()).await;
    up_to_data(&mut c).await;
    assert_eq!(c.send_message(b"first\r\n").await.unwrap().code, 250);
    // The next transaction may start right away (RFC 5321 4.1.4), pipelined this time.
    c.send_raw(b"MAIL FROM:<>\r\nRCPT TO:<c@mx.example>\r\nDATA\r\nsecond\r\n.\r\n").await.unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(c.read_reply().await.unwrap().code);
    }
    assert_eq!(got, vec![250, 250, 354, 250]);
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].data, b"first\r\n".to_vec());
    assert_eq!(msgs[1].data, b"second\r\n".to_vec());
    assert_eq!(msgs[1].envelope.mail_from, "");
    assert_eq!(msgs[1].envelope.rcpt_to, vec!["c@mx.example"]);
    assert_eq!(msgs[1].helo.as_deref(), Some("client.example"));
    assert_eq!((msgs[0].session, msgs[1].session), (0, 0));
    assert_ne!(msgs[0].queue_id, msgs[1].queue_id);
    sink.shutdown().await;
}

#[tokio::test]
async fn sequence_errors_and_unknown_commands_do_not_end_the_session() {
    let sink = sink("mx.example").await;
    let mut c = client(sink.addr()).await;
    c.read_reply().await.unwrap();
    for (cmd, want) in [
        ("RCPT TO:<x@y>", "503 5.0.0 Need MAIL before RCPT"),
        ("DATA", "503 5.0.0 Need MAIL command"),
        ("XYZZY plugh", "500 5.5.1 Command unrecognized: \"XYZZY plugh\""),
        ("mail from: <a@b>", "250 2.1.0 Sender ok"),
        ("MAIL FROM:<c@d>", "503 5.5.0 Sender already specified"),
        ("DATA", "503 5.0.0 Need RCPT (recipient)"),
        ("RCPT TO:<broken", "501 5.5.2 Syntax error in parameters"),
        ("VRFY root", "252 2.5.2 Cannot VRFY user"),
        ("NOOP", "250 2.0.0 OK"),
        ("RCPT TO:<x@y>", "250 2.1.5 Recipient ok"),
    ] {
        assert_eq!(c.command(cmd).await.unwrap().first_line(), want, "after {cmd}");
    }
    // An overlong line is refused and skipped whole; the next command is read normally.
    let long = "X".repeat(lab_core::codec::MAX_LINE + 100);
    assert_eq!(c.command(&long).await.unwrap().first_line(), "500 5.5.2 Line too long");
    assert_eq!(c.command("DATA").await.unwrap().code, 354);
    assert_eq!(c.send_message(b"still here\r\n").await.unwrap().code, 250);
    assert_eq!(sink.messages()[0].envelope.mail_from, "a@b");
    assert_eq!(c.command("RSET").await.unwrap().first_line(), "250 2.0.0 Reset state");
    assert_eq!(c.quit().await.unwrap().first_line(), "221 2.0.0 mx.example closing connection");
    sink.shutdown().await;
}

#[tokio::test]
async fn client_vanishing_mid_data_is_recorded_not_fatal() {
    let sink = sink("mx.example").await;
    let mut c = client(sink.addr()).await;
    up_to_data(&mut c).await;
    c.send_raw(b"Subject: cut\r\n\r\nhalf a mess").await.unwrap();
    assert_eq!(sink.active_sessions(), 1);
    drop(c);
    until("the session ends", || sink.active_sessions() == 0).await;
    assert!(sink.messages().is_empty());
    let t = &sink.sessions()[0];
    assert!(t.lines.iter().any(|l| l.dir == Direction::Note && l.text.contains("during DATA")), "{}", t.render());
    // The sink still serves.
    let mut c = client(sink.addr()).await;
    assert_eq!(c.read_reply().await.unwrap().code, 220);
    drop(c);
    until("the second session ends", || sink.active_sessions() == 0).await;
    let t = &sink.sessions()[1];
    assert!(t.lines.iter().any(|l| l.text.contains("without QUIT")), "{}", t.render());
    sink.shutdown().await;
}

#[tokio::test]
async fn silent_client_times_out_with_421() {
    let mut config = SinkConfig::accept("mx.example");
    config.read_timeout = Duration::from_millis(50);
    let sink = sink_with(config).await;
    let mut c = client(sink.addr()).await;
    assert_eq!(c.read_reply().await.unwrap().code, 220);
    let bye = c.read_reply().await.unwrap();
    assert_eq!(bye.first_line(), "421 4.4.2 mx.example Error: timeout exceeded");
    assert!(c.read_reply().await.is_err(), "connection closed after 421");
    until("the session ends", || sink.active_sessions() == 0).await;
    sink.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_open_sessions_and_stops_listening() {
    let sink = sink("mx.example").await;
    let addr = sink.addr();
    let mut c = client(addr).await;
    c.read_reply().await.unwrap();
    assert_eq!(c.command("EHLO x").await.unwrap().code, 250);
    let started = Instant::now();
    tokio::time::timeout(T, sink.shutdown()).await.expect("shutdown is bounded");
    assert!(started.elapsed() < Duration::from_secs(1), "open sessions were told, not waited out");
    assert_eq!(c.read_reply().await.unwrap().first_line(), "421 4.3.2 mx.example Service shutting down");
    let refused = lab_core::SmtpClient::connect(None, addr, T, lab_core::TranscriptRecorder::new("late")).await;
    assert!(refused.is_err_and(|e| e.is_refused()));
}

#[tokio::test]
async fn sink_on_a_lab_address_sees_the_source_address() {
    let sink =
        MxSink::start("127.45.3.7:0".parse().unwrap(), SinkConfig::accept("mx.example"), lab_core::clock::wall())
            .await
            .unwrap();
    assert_eq!(sink.hostname(), "mx.example");
    assert_eq!(sink.addr().ip().to_string(), "127.45.3.7");
    let rec = lab_core::TranscriptRecorder::new("c");
    let mut c = lab_core::SmtpClient::connect(Some("127.9.9.9".parse().unwrap()), sink.addr(), T, rec).await.unwrap();
    c.read_reply().await.unwrap();
    let ehlo = c.command("EHLO c").await.unwrap();
    assert_eq!(
        ehlo.lines,
        vec!["mx.example Hello [127.9.9.9]", "PIPELINING", "8BITMIME", "SIZE 52428800", "ENHANCEDSTATUSCODES", "HELP"]
    );
    assert_eq!(sink.sessions()[0].label, "127.9.9.9 -> mx.example");
    sink.shutdown().await;
}
