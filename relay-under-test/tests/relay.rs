//! The builtin relay over real sockets: a fake lab DNS, fake MX hosts and
//! lab clients on their own 127.x addresses.

mod support;

use lab_core::{Reply, SmtpClient};
use pretty_assertions::assert_eq;
use relay_under_test::queue_id::decode_queue_id;
use relay_under_test::{RelayProfile, RelayUnderTest};
use std::net::SocketAddr;
use std::time::Duration;
use support::*;

const FORGED: &[u8] = b"From: Santa@Northpole.com\r\nTo: naughty@somewhere.com\r\nSubject: Ho Ho Ho\r\n\r\nYou've been a naughty boy this year!\r\n";

/// Send one message; returns the final reply.
async fn send(c: &mut SmtpClient, from: &str, rcpts: &[&str], msg: &[u8]) -> Reply {
    assert_eq!(c.command(&format!("MAIL FROM:{from}")).await.unwrap().code, 250);
    for r in rcpts {
        let reply = c.command(&format!("RCPT TO:{r}")).await.unwrap();
        assert_eq!(reply.code, 250, "{reply}");
    }
    assert_eq!(c.command("DATA").await.unwrap().code, 354);
    c.send_message(msg).await.unwrap()
}

/// The queue id in `250 2.0.0 <qid> Message accepted for delivery`.
fn qid_of(r: &Reply) -> String {
    assert_eq!(r.code, 250, "{r}");
    let qid = r.lines[0].split_whitespace().nth(1).unwrap().to_string();
    assert!(regex::Regex::new("^[0-9A-Za-x]{8}[0-9]{6}$").unwrap().is_match(&qid), "{qid}");
    qid
}

fn pid_of(qid: &str) -> u32 {
    qid[8..].parse().unwrap()
}

/// A lab where sysiphus.com has MX internal.sysiphus.com (192.0.2.10) and
/// client 203.0.113.66 has PTR real.dom.com.
async fn sysiphus_lab() -> (Lab, FakeMx) {
    sysiphus_lab_with(|_| {}).await
}

async fn sysiphus_lab_with(f: impl FnOnce(&mut RelayProfile)) -> (Lab, FakeMx) {
    let net = subnet();
    let port = free_port(host_real_ip(net, 10)).await;
    let zone = vec![
        mx("sysiphus.com", 10, "internal.sysiphus.com"),
        a("internal.sysiphus.com", "192.0.2.10"),
        ptr("203.0.113.66", "real.dom.com"),
        // The PTR name resolves back: no "(may be forged)".
        a("real.dom.com", "203.0.113.66"),
        // A PTR name that resolves elsewhere: "(may be forged)".
        ptr("203.0.113.9", "spoof.dom.com"),
        a("spoof.dom.com", "192.0.2.99"),
    ];
    let sink =
        FakeMx::start(SocketAddr::new(host_real_ip(net, 10), port), SinkConfig::accept("internal.sysiphus.com")).await;
    let mut profile = external_profile();
    f(&mut profile);
    let lab = Lab::start(net, LabSpec::new(profile, zone, port)).await;
    (lab, sink)
}

#[tokio::test]
async fn received_header_with_ptr_ehlo_and_one_recipient_and_added_headers() {
    let (lab, sink) = sysiphus_lab().await;
    let mut c = lab.client(66).await;
    let greeting = c.read_reply().await.unwrap();
    assert_eq!(
        greeting.first_line(),
        "220 external.sysiphus.com ESMTP Sendmail 8.13.4/8.13.4; Wed, 4 Jan 2006 22:28:13 -0800"
    );
    let ehlo = c.command("EHLO spoof.example.com").await.unwrap();
    assert_eq!(ehlo.first_line(), "250 external.sysiphus.com Hello real.dom.com [203.0.113.66], pleased to meet you");
    let qid = qid_of(&send(&mut c, "<Im@lying.com>", &["<john@sysiphus.com>"], FORGED).await);
    assert_eq!(c.quit().await.unwrap().first_line(), "221 2.0.0 external.sysiphus.com closing connection");
    assert!(lab.relay.settle(Duration::from_secs(10)).await);

    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].data,
        format!(
            "Received: from spoof.example.com (real.dom.com [203.0.113.66])\r\n\
             \tby external.sysiphus.com (8.13.4/8.13.4) with ESMTP id {qid}\r\n\
             \tfor <john@sysiphus.com>; Wed, 4 Jan 2006 22:28:13 -0800 (PST)\r\n\
             Date: Wed, 4 Jan 2006 22:28:13 -0800 (PST)\r\n\
             Message-Id: <200601050628.{qid}@external.sysiphus.com>\r\n\
             From: Santa@Northpole.com\r\nTo: naughty@somewhere.com\r\nSubject: Ho Ho Ho\r\n\
             \r\nYou've been a naughty boy this year!\r\n"
        )
    );
    assert_eq!(got[0].mail_from, "<Im@lying.com> SIZE=108");
    assert_eq!(got[0].rcpts, vec!["<john@sysiphus.com>"]);
    assert_eq!(got[0].helo, "external.sysiphus.com");
    // Outbound connections come from the relay's own address.
    assert_eq!(got[0].peer.ip(), ip(lab.net, 2));
    lab.relay.stop().await;
}

#[tokio::test]
async fn received_header_without_ptr_helo_and_two_recipients_keeps_client_headers() {
    let (lab, sink) = sysiphus_lab().await;
    let mut c = lab.client(67).await;
    c.read_reply().await.unwrap();
    let helo = c.command("HELO foo.example").await.unwrap();
    assert_eq!(helo.first_line(), "250 external.sysiphus.com Hello [203.0.113.67], pleased to meet you");
    let msg = b"Message-ID: <abc@client.example>\r\nDate: Tue, 3 Jan 2006 10:00:00 +0000\r\nSubject: two\r\n\r\nhi\r\n";
    let qid = qid_of(&send(&mut c, "Im@lying.com", &["john@sysiphus.com", "<mary@sysiphus.com>"], msg).await);
    c.quit().await;
    assert!(lab.relay.settle(Duration::from_secs(10)).await);
    let got = sink.messages();
    assert_eq!(got.len(), 1, "one transaction for one domain");
    assert_eq!(
        got[0].data,
        format!(
            "Received: from foo.example ([203.0.113.67])\r\n\
             \tby external.sysiphus.com (8.13.4/8.13.4) with SMTP id {qid}; Wed, 4 Jan 2006 22:28:13 -0800 (PST)\r\n\
             Message-ID: <abc@client.example>\r\nDate: Tue, 3 Jan 2006 10:00:00 +0000\r\nSubject: two\r\n\r\nhi\r\n"
        )
    );
    assert_eq!(got[0].rcpts, vec!["<john@sysiphus.com>", "<mary@sysiphus.com>"]);
    // The log shows the client's msgid, and one to= line for both recipients.
    let log = lab.relay.log_lines();
    let pid = pid_of(&qid);
    assert!(
        log.contains(&format!(
            "Jan  4 22:28:13 external sm-mta[{pid}]: {qid}: from=Im@lying.com, size=87, class=0, nrcpts=2, \
         msgid=<abc@client.example>, proto=SMTP, daemon=MTA, relay=[203.0.113.67]"
        )),
        "{log:#?}"
    );
    assert!(
        log.contains(&format!(
            "Jan  4 22:28:13 external sm-mta[{pid}]: {qid}: to=john@sysiphus.com,<mary@sysiphus.com>, delay=00:00:00, \
         xdelay=00:00:00, mailer=esmtp, pri=60087, relay=internal.sysiphus.com. [192.0.2.10], dsn=2.0.0, \
         stat=Sent (S0001 Message accepted for delivery)"
        )),
        "{log:#?}"
    );
    lab.relay.stop().await;
}

#[tokio::test]
async fn from_and_to_log_lines_exactly() {
    let (lab, _sink) = sysiphus_lab().await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    c.command("EHLO spoof.example.com").await.unwrap();
    let qid = qid_of(&send(&mut c, "<Im@lying.com>", &["<john@sysiphus.com>"], FORGED).await);
    c.quit().await;
    assert!(lab.relay.settle(Duration::from_secs(10)).await);
    let pid = pid_of(&qid);
    let mine: Vec<String> = lab.relay.log_lines().into_iter().filter(|l| l.contains(&qid)).collect();
    assert_eq!(
        mine,
        vec![
            format!(
                "Jan  4 22:28:13 external sm-mta[{pid}]: {qid}: from=<Im@lying.com>, size=108, class=0, nrcpts=1, \
                 msgid=<200601050628.{qid}@external.sysiphus.com>, proto=ESMTP, daemon=MTA, \
                 relay=real.dom.com [203.0.113.66]"
            ),
            // pri = 108 - 0*1800 + 1*30000, the course's 30108.
            format!(
                "Jan  4 22:28:13 external sm-mta[{pid}]: {qid}: to=<john@sysiphus.com>, delay=00:00:00, \
                 xdelay=00:00:00, mailer=esmtp, pri=30108, relay=internal.sysiphus.com. [192.0.2.10], dsn=2.0.0, \
                 stat=Sent (S0001 Message accepted for delivery)"
            ),
        ]
    );
    lab.relay.stop().await;
}

#[tokio::test]
async fn queue_ids_encode_the_clock_and_the_session_pid() {
    let (lab, _sink) = sysiphus_lab().await;
    let mut qids = Vec::new();
    for octet in [66, 67] {
        let mut c = lab.client(octet).await;
        c.read_reply().await.unwrap();
        c.command("HELO x.example").await.unwrap();
        qids.push(qid_of(&send(&mut c, "<a@b.example>", &["<john@sysiphus.com>"], b"x\r\n").await));
        qids.push(qid_of(&send(&mut c, "<a@b.example>", &["<john@sysiphus.com>"], b"y\r\n").await));
        c.quit().await;
    }
    assert!(lab.relay.settle(Duration::from_secs(10)).await);
    for q in &qids {
        let d = decode_queue_id(q).unwrap();
        assert_eq!(d.at.to_rfc3339(), "2006-01-05T06:28:13+00:00", "{q}");
        // The arrival line's [pid] is the id's last six digits.
        let from_line = lab.relay.log_lines().into_iter().find(|l| l.contains(&format!("{q}: from="))).unwrap();
        assert!(from_line.contains(&format!("sm-mta[{}]: {q}", d.pid)), "{from_line}");
    }
    // Same session: same pid, next sequence. Other session: other pid.
    let (a, b) = (decode_queue_id(&qids[0]).unwrap(), decode_queue_id(&qids[1]).unwrap());
    assert_eq!(a.pid, b.pid);
    assert_eq!((a.seq + 1) % 3600, b.seq);
    assert_ne!(a.pid, decode_queue_id(&qids[2]).unwrap().pid);
    lab.relay.stop().await;
}

#[tokio::test]
async fn relaying_denied_for_outside_client_to_outside_domain() {
    let (lab, sink) = sysiphus_lab().await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    c.command("HELO spoof.example.com").await.unwrap();
    assert_eq!(c.command("MAIL FROM:<spam@foo.biz>").await.unwrap().code, 250);
    let r = c.command("RCPT TO:<victim@deer-run.com>").await.unwrap();
    assert_eq!(r.first_line(), "550 5.7.1 <victim@deer-run.com>... Relaying denied");
    let r = c.command("RCPT TO:victim@deer-run.com").await.unwrap();
    assert_eq!(r.first_line(), "550 5.7.1 victim@deer-run.com... Relaying denied");
    // Our own domain (and below it) is accepted; our own name has no mailboxes.
    assert_eq!(
        c.command("RCPT TO:<john@sysiphus.com>").await.unwrap().first_line(),
        "250 2.1.5 <john@sysiphus.com>... Recipient ok"
    );
    assert_eq!(
        c.command("RCPT TO:<bob@eng.sysiphus.com>").await.unwrap().first_line(),
        "250 2.1.5 <bob@eng.sysiphus.com>... Recipient ok"
    );
    assert_eq!(
        c.command("RCPT TO:<root@external.sysiphus.com>").await.unwrap().first_line(),
        "550 5.1.1 <root@external.sysiphus.com>... User unknown"
    );
    assert_eq!(c.command("RCPT TO:<root>").await.unwrap().first_line(), "553 5.5.4 <root>... Domain name required");
    c.command("RSET").await.unwrap();
    c.quit().await;
    let log = lab.relay.log_lines();
    let re = regex::Regex::new(
        r"^Jan  4 22:28:13 external sm-mta\[\d+\]: [0-9A-Za-x]{8}\d{6}: ruleset=check_rcpt, arg1=<victim@deer-run\.com>, relay=real\.dom\.com \[203\.0\.113\.66\], reject=550 5\.7\.1 <victim@deer-run\.com>\.\.\. Relaying denied$",
    )
    .unwrap();
    assert_eq!(log.iter().filter(|l| re.is_match(l)).count(), 1, "{log:#?}");
    assert!(log.iter().any(|l| l.ends_with("reject=550 5.7.1 victim@deer-run.com... Relaying denied")), "{log:#?}");
    assert!(lab.relay.settle(Duration::from_secs(5)).await);
    assert!(sink.messages().is_empty());
    lab.relay.stop().await;
}

#[tokio::test]
async fn client_in_relay_prefix_may_relay_anywhere_by_mx_preference_with_fallback() {
    let net = subnet();
    let port = free_port(host_real_ip(net, 20)).await;
    // DNS order is not preference order; mx1 (pref 10) has nothing listening.
    let zone = vec![
        mx("deer-run.com", 30, "mx3.deer-run.com"),
        mx("deer-run.com", 10, "mx1.deer-run.com"),
        mx("deer-run.com", 20, "mx2.deer-run.com"),
        a("mx1.deer-run.com", "192.0.2.10"),
        a("mx2.deer-run.com", "192.0.2.20"),
        a("mx3.deer-run.com", "192.0.2.30"),
    ];
    let mx2 = FakeMx::start(SocketAddr::new(host_real_ip(net, 20), port), SinkConfig::accept("mx2.deer-run.com")).await;
    let mx3 = FakeMx::start(SocketAddr::new(host_real_ip(net, 30), port), SinkConfig::accept("mx3.deer-run.com")).await;
    let lab = Lab::start(net, LabSpec::new(external_profile(), zone, port)).await;

    // 203.0.113.9 is listed in relay_domains: outbound relaying allowed.
    let mut c = lab.client(9).await;
    c.read_reply().await.unwrap();
    c.command("EHLO ws9.sysiphus.com").await.unwrap();
    let qid =
        qid_of(&send(&mut c, "<hal@sysiphus.com>", &["<info@deer-run.com>"], b"Subject: out\r\n\r\nhi\r\n").await);
    c.quit().await;
    assert!(lab.relay.settle(Duration::from_secs(10)).await);

    assert_eq!(mx2.messages().len(), 1);
    assert!(mx3.messages().is_empty());
    let log = lab.relay.log_lines();
    let to = log.iter().find(|l| l.contains(&format!("{qid}: to="))).unwrap();
    assert!(
        to.ends_with(
            "to=<info@deer-run.com>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30017, \
             relay=mx2.deer-run.com. [192.0.2.20], dsn=2.0.0, stat=Sent (S0001 Message accepted for delivery)"
        ),
        "{to}"
    );
    let sessions = lab.relay.outbound_sessions();
    let labels: Vec<&str> = sessions.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["external.sysiphus.com -> mx1.deer-run.com", "external.sysiphus.com -> mx2.deer-run.com"]);
    assert!(sessions[0].render().contains("connect failed"), "{}", sessions[0].render());
    assert!(lab.relay.queue().is_empty());
    lab.relay.stop().await;
}

#[tokio::test]
async fn deferred_when_every_mx_refuses_and_bounced_when_domain_unknown() {
    let net = subnet();
    let port = free_port(host_real_ip(net, 10)).await;
    let zone = vec![
        mx("sysiphus.com", 10, "internal.sysiphus.com"),
        a("internal.sysiphus.com", "192.0.2.10"),
        // a-only.sysiphus.com has no MX: its A record is the host (spec §3.2).
        a("a-only.sysiphus.com", "192.0.2.20"),
        Rec::ServFail("broken.example".into()),
    ];
    let direct =
        FakeMx::start(SocketAddr::new(host_real_ip(net, 20), port), SinkConfig::accept("a-only.sysiphus.com")).await;
    let mut profile = external_profile();
    profile.relay_domains.push("nowhere.example".into());
    profile.relay_domains.push("broken.example".into());
    let lab = Lab::start(net, LabSpec::new(profile, zone, port)).await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    c.command("HELO x.example").await.unwrap();
    let deferred = qid_of(&send(&mut c, "<a@b.example>", &["<john@sysiphus.com>"], b"x\r\n").await);
    let bounced = qid_of(&send(&mut c, "<a@b.example>", &["<x@nowhere.example>"], b"x\r\n").await);
    let direct_qid = qid_of(&send(&mut c, "<a@b.example>", &["<x@a-only.sysiphus.com>"], b"x\r\n").await);
    let dns_down = qid_of(&send(&mut c, "<a@b.example>", &["<x@broken.example>"], b"x\r\n").await);
    c.quit().await;
    assert!(lab.relay.settle(Duration::from_secs(10)).await);

    let log = lab.relay.log_lines();
    let line = |q: &str| log.iter().find(|l| l.contains(&format!("{q}: to="))).cloned().unwrap();
    assert!(line(&deferred).ends_with(
        "pri=30002, relay=internal.sysiphus.com. [192.0.2.10], dsn=4.0.0, stat=Deferred: Connection refused by internal.sysiphus.com."
    ), "{}", line(&deferred));
    assert!(
        line(&bounced).ends_with(
            "relay=nowhere.example, dsn=5.1.2, stat=Host unknown (Name server: nowhere.example: host not found)"
        ),
        "{}",
        line(&bounced)
    );
    assert!(
        line(&direct_qid).contains("relay=a-only.sysiphus.com. [192.0.2.20], dsn=2.0.0, stat=Sent ("),
        "{}",
        line(&direct_qid)
    );
    assert_eq!(direct.messages().len(), 1);
    assert!(
        line(&dns_down).ends_with(
            "relay=broken.example, dsn=4.0.0, stat=Deferred: Name server: broken.example.: host name lookup failure"
        ),
        "{}",
        line(&dns_down)
    );

    let q = lab.relay.queue();
    assert_eq!(q.len(), 2, "{q:#?}");
    assert_eq!(q[1].qid, dns_down);
    assert_eq!(q[0].qid, deferred);
    assert_eq!(q[0].sender, "<a@b.example>");
    assert_eq!(q[0].recipients, vec!["<john@sysiphus.com>"]);
    assert_eq!(q[0].last_error.as_deref(), Some("Deferred: Connection refused by internal.sysiphus.com."));
    lab.relay.stop().await;
}

#[tokio::test]
async fn remote_permanent_refusal_is_logged_per_recipient() {
    let net = subnet();
    let port = free_port(host_real_ip(net, 10)).await;
    let zone = vec![mx("sysiphus.com", 10, "internal.sysiphus.com"), a("internal.sysiphus.com", "192.0.2.10")];
    let mut cfg = SinkConfig::accept("internal.sysiphus.com");
    cfg.reject_rcpt = Some(("nobody".into(), "550 5.1.1 <nobody@sysiphus.com>... User unknown".into()));
    let sink = FakeMx::start(SocketAddr::new(host_real_ip(net, 10), port), cfg).await;
    let lab = Lab::start(net, LabSpec::new(external_profile(), zone, port)).await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    c.command("HELO x.example").await.unwrap();
    let qid = qid_of(&send(&mut c, "<a@b.example>", &["<nobody@sysiphus.com>", "<john@sysiphus.com>"], b"x\r\n").await);
    c.quit().await;
    assert!(lab.relay.settle(Duration::from_secs(10)).await);
    let log: Vec<String> = lab.relay.log_lines().into_iter().filter(|l| l.contains(&format!("{qid}: to="))).collect();
    assert_eq!(log.len(), 2, "{log:#?}");
    assert!(
        log[0].contains("to=<john@sysiphus.com>,")
            && log[0].ends_with("dsn=2.0.0, stat=Sent (S0001 Message accepted for delivery)"),
        "{log:#?}"
    );
    assert!(
        log[1].ends_with(
            "to=<nobody@sysiphus.com>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=60002, \
         relay=internal.sysiphus.com. [192.0.2.10], dsn=5.1.1, stat=550 5.1.1 <nobody@sysiphus.com>... User unknown"
        ),
        "{log:#?}"
    );
    assert_eq!(sink.messages()[0].rcpts, vec!["<john@sysiphus.com>"]);
    assert!(lab.relay.queue().is_empty());
    lab.relay.stop().await;
}

#[tokio::test]
async fn sequence_errors_unknown_commands_and_lost_clients() {
    // MAIL before HELO is refused only under needmailhelo.
    let (lab, _sink) = sysiphus_lab_with(|p| p.privacy_flags.push("needmailhelo".into())).await;
    let mut c = lab.client(67).await;
    c.read_reply().await.unwrap();
    let mut say = async |line: &str| c.command(line).await.unwrap().first_line();
    assert_eq!(say("MAIL FROM:<a@b.example>").await, "503 5.0.0 Polite people say HELO first");
    assert_eq!(say("RCPT TO:<john@sysiphus.com>").await, "503 5.0.0 Need MAIL before RCPT");
    assert_eq!(say("DATA").await, "503 5.0.0 Need MAIL command");
    assert_eq!(say("HELO x.example").await, "250 external.sysiphus.com Hello [203.0.113.67], pleased to meet you");
    assert_eq!(say("MAIL FROM:<a@b.example>").await, "250 2.1.0 <a@b.example>... Sender ok");
    assert_eq!(say("MAIL FROM:<a@b.example>").await, "503 5.5.0 Sender already specified");
    assert_eq!(say("DATA").await, "503 5.0.0 Need RCPT (recipient)");
    assert_eq!(
        say("MAIL TO:<x@y.example>").await,
        "501 5.5.2 Syntax error in parameters scanning \"TO:<x@y.example>\""
    );
    assert_eq!(say("From: hal@deer-run.com").await, "500 5.5.1 Command unrecognized: \"From: hal@deer-run.com\"");
    assert_eq!(say("NOOP").await, "250 2.0.0 OK");
    assert_eq!(say("RSET").await, "250 2.0.0 Reset state");
    assert_eq!(say("VRFY root").await, "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)");
    assert_eq!(say("EXPN staff").await, "502 5.7.0 Sorry, we do not allow this operation");
    assert_eq!(say("MAIL FROM:<a@b.example>").await, "250 2.1.0 <a@b.example>... Sender ok");
    assert_eq!(say("RCPT TO:<john@sysiphus.com>").await, "250 2.1.5 <john@sysiphus.com>... Recipient ok");
    // The client vanishes after RCPT.
    drop(c);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let log = lab.relay.log_lines();
        if let Some(l) = log.iter().find(|l| l.contains("lost input channel")) {
            assert!(l.ends_with(": lost input channel from [203.0.113.67] to MTA after rcpt"), "{l}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no lost-input line: {log:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(lab.relay.queue().is_empty());
    lab.relay.stop().await;
}

#[tokio::test]
async fn too_many_hops_is_refused_and_not_queued() {
    let (lab, sink) = sysiphus_lab().await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    c.command("EHLO loop.example").await.unwrap();
    let mut at_limit = "Received: from a by b; Wed, 4 Jan 2006 22:00:00 -0800\r\n".repeat(25);
    at_limit.push_str("\r\nbody\r\n");
    let over = format!("Via: somewhere\r\n{at_limit}");
    // 25 trace headers is MaxHopCount itself: accepted.
    qid_of(&send(&mut c, "<a@b.example>", &["<john@sysiphus.com>"], at_limit.as_bytes()).await);
    let r = send(&mut c, "<a@b.example>", &["<john@sysiphus.com>"], over.as_bytes()).await;
    assert_eq!(
        r.first_line(),
        // `via` names the client that handed the message over (RealHostName).
        "554 5.4.6 Too many hops 26 (25 max): from <a@b.example> via real.dom.com, to <john@sysiphus.com>"
    );
    c.quit().await;
    assert!(lab.relay.settle(Duration::from_secs(10)).await);
    assert_eq!(sink.messages().len(), 1);
    assert!(lab.relay.queue().is_empty());
    lab.relay.stop().await;
}

#[tokio::test]
async fn settle_waits_for_the_immediate_delivery() {
    let net = subnet();
    let port = free_port(host_real_ip(net, 10)).await;
    let zone = vec![mx("sysiphus.com", 10, "internal.sysiphus.com"), a("internal.sysiphus.com", "192.0.2.10")];
    let mut cfg = SinkConfig::accept("internal.sysiphus.com");
    cfg.data_delay = Duration::from_millis(600);
    let sink = FakeMx::start(SocketAddr::new(host_real_ip(net, 10), port), cfg).await;
    let lab = Lab::start(net, LabSpec::new(external_profile(), zone, port)).await;
    assert!(lab.relay.settle(Duration::from_millis(100)).await, "an idle relay is settled");
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    c.command("HELO x.example").await.unwrap();
    let qid = qid_of(&send(&mut c, "<a@b.example>", &["<john@sysiphus.com>"], b"x\r\n").await);
    // The delivery is still running (the MX sits on the final dot).
    assert!(!lab.relay.settle(Duration::from_millis(50)).await);
    assert_eq!(lab.relay.queue().len(), 1);
    assert_eq!(lab.relay.queue()[0].last_error, None);
    assert!(lab.relay.settle(Duration::from_secs(10)).await);
    // Settled means finished: the message is there and logged, the queue empty.
    assert_eq!(sink.messages().len(), 1);
    assert!(lab.relay.log_lines().iter().any(|l| l.contains(&format!("{qid}: to=")) && l.contains("stat=Sent")));
    assert!(lab.relay.queue().is_empty());
    c.quit().await;
    lab.relay.stop().await;
}

#[tokio::test]
async fn stop_is_bounded_and_idempotent() {
    let (lab, _sink) = sysiphus_lab().await;
    let addr = lab.relay.smtp_addr();
    let mut idle = lab.client(66).await;
    idle.read_reply().await.unwrap();
    let t = std::time::Instant::now();
    lab.relay.stop().await;
    lab.relay.stop().await;
    assert!(t.elapsed() < Duration::from_secs(5));
    // The idle client was told, and nobody listens any more.
    assert_eq!(idle.read_reply().await.unwrap().code, 421);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert_eq!(lab.relay.flavour(), "builtin");
}

#[tokio::test]
async fn mail_without_helo_gets_an_authentication_warning_under_the_default_flags() {
    // Sendmail's default PrivacyOptions: authwarnings, no needmailhelo.
    let (lab, sink) = sysiphus_lab_with(|p| p.privacy_flags = vec!["authwarnings".into()]).await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    let qid = qid_of(&send(&mut c, "<Im@lying.com>", &["<john@sysiphus.com>"], FORGED).await);
    c.quit().await.unwrap();
    assert!(lab.relay.settle(Duration::from_secs(10)).await);
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].data.starts_with(&format!(
            "Received: from real.dom.com (real.dom.com [203.0.113.66])\r\n\
             \tby external.sysiphus.com (8.13.4/8.13.4) with SMTP id {qid}\r\n\
             \tfor <john@sysiphus.com>; Wed, 4 Jan 2006 22:28:13 -0800 (PST)\r\n\
             X-Authentication-Warning: external.sysiphus.com: real.dom.com [203.0.113.66] didn't use HELO protocol\r\n\
             Date: Wed, 4 Jan 2006 22:28:13 -0800 (PST)\r\n"
        )),
        "{}",
        got[0].data
    );
    lab.relay.stop().await;

    // The external relay's flags replace the default: accepted, no warning (spec §13 D11).
    let (lab, sink) = sysiphus_lab().await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    send(&mut c, "<Im@lying.com>", &["<john@sysiphus.com>"], FORGED).await;
    c.quit().await.unwrap();
    assert!(lab.relay.settle(Duration::from_secs(10)).await);
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].data.starts_with("Received: from real.dom.com (real.dom.com [203.0.113.66])\r\n"),
        "{}",
        got[0].data
    );
    assert!(!got[0].data.contains("X-Authentication-Warning"), "{}", got[0].data);
    lab.relay.stop().await;
}

#[tokio::test]
async fn a_ptr_name_that_does_not_resolve_back_may_be_forged() {
    let (lab, sink) = sysiphus_lab().await;
    let mut c = lab.client(9).await;
    c.read_reply().await.unwrap();
    let ehlo = c.command("EHLO spoof.example.com").await.unwrap();
    assert_eq!(
        ehlo.first_line(),
        "250 external.sysiphus.com Hello spoof.dom.com [203.0.113.9] (may be forged), pleased to meet you"
    );
    qid_of(&send(&mut c, "<Im@lying.com>", &["<john@sysiphus.com>"], FORGED).await);
    c.quit().await.unwrap();
    assert!(lab.relay.settle(Duration::from_secs(10)).await);
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].data.starts_with("Received: from spoof.example.com (spoof.dom.com [203.0.113.9] (may be forged))\r\n"),
        "{}",
        got[0].data
    );
    let log = log_of(&lab);
    assert!(
        log.iter().any(|l| l.starts_with("QID: from=<Im@lying.com>,")
            && l.ends_with("relay=spoof.dom.com [203.0.113.9] (may be forged)")),
        "{log:#?}"
    );
    lab.relay.stop().await;
}
