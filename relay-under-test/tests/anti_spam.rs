//! Anti-spam knobs over real sockets (spec §4.7, §8.3, §9.3, §9.5, §12 rows
//! 60–66): DNSBL zones, greylisting, ConnectionRateThrottle,
//! MaxDaemonChildren, MaxRecipientsPerMessage, MaxMessageSize, header checks.

mod support;

use lab_core::clock::VirtualClock;
use pretty_assertions::assert_eq;
use relay_under_test::profile::{DnsblZone, Greylist, HeaderCheck};
use relay_under_test::RelayProfile;
use std::time::Duration;
use support::*;

const LISTED: &str = "550 5.7.1 Rejected: 203.0.113.66 listed at bl.spamcop.net";

fn zone(name: &str, message: Option<&str>, t: bool) -> DnsblZone {
    DnsblZone { zone: name.into(), message: message.map(str::to_string), t }
}

#[tokio::test]
async fn dnsbl_listed_client_gets_a_null_session() {
    let lab = external_lab_with(
        |p| p.dnsbl = vec![zone("bl.spamcop.net", None, false)],
        vec![a("66.113.0.203.bl.spamcop.net", "127.0.0.2")],
    )
    .await;
    let mut c = lab.client(66).await;
    // D3: the greeting stays 220; every transaction command gets the refusal.
    assert!(c.read_reply().await.unwrap().text().starts_with("220 external.sysiphus.com ESMTP"));
    assert_eq!(
        talk(
            &mut c,
            &["HELO real.dom.com", "MAIL FROM:<offers@example.net>", "RCPT TO:<john@sysiphus.com>", "DATA", "NOOP"]
        )
        .await,
        [
            "250 external.sysiphus.com Hello real.dom.com [203.0.113.66], pleased to meet you",
            LISTED,
            LISTED,
            LISTED,
            "250 2.0.0 OK",
        ]
    );
    c.quit().await;
    assert!(lab.dns.asked().contains(&"A 66.113.0.203.bl.spamcop.net".to_string()), "{:?}", lab.dns.asked());
    assert_eq!(
        log_of(&lab)[0],
        format!(
            "NOQUEUE: ruleset=check_relay, arg1=real.dom.com, arg2=203.0.113.66, \
             relay=real.dom.com [203.0.113.66], reject={LISTED}"
        )
    );
    // A client that is not listed is served.
    let mut c = lab.client(67).await;
    c.read_reply().await.unwrap();
    assert_eq!(
        talk(&mut c, &["HELO x", "MAIL FROM:<a@example.net>"]).await[1],
        "250 2.1.0 <a@example.net>... Sender ok"
    );
    c.quit().await;
}

#[tokio::test]
async fn dnsbl_with_delay_checks_refuses_at_rcpt() {
    let lab = external_lab_with(
        |p| {
            p.dnsbl = vec![zone("bl.spamcop.net", None, false)];
            p.delay_checks = relay_under_test::profile::DelayChecks::On;
        },
        vec![a("66.113.0.203.bl.spamcop.net", "127.0.0.2")],
    )
    .await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    let got =
        talk(&mut c, &["HELO real.dom.com", "MAIL FROM:<offers@example.net>", "RCPT TO:<john@sysiphus.com>"]).await;
    assert_eq!(got[1], "250 2.1.0 <offers@example.net>... Sender ok");
    let rcpt = "550 5.7.1 <john@sysiphus.com>... Rejected: 203.0.113.66 listed at bl.spamcop.net";
    assert_eq!(got[2], rcpt);
    c.quit().await;
    assert_eq!(
        log_of(&lab)[0],
        format!("QID: ruleset=check_rcpt, arg1=<john@sysiphus.com>, relay=real.dom.com [203.0.113.66], reject={rcpt}")
    );
}

#[tokio::test]
async fn dnsbl_temporary_failures_and_custom_texts() {
    // Ignored by default; the first listing (with its own text) refuses.
    let zones = vec![
        a("66.113.0.203.sbl.example.org", "127.0.0.2"),
        Rec::ServFail("66.113.0.203.bl.spamcop.net".into()),
        Rec::ServFail("67.113.0.203.bl.spamcop.net".into()),
    ];
    let lab = external_lab_with(
        |p| {
            p.dnsbl = vec![
                zone("bl.spamcop.net", None, false),
                zone("sbl.example.org", Some("550 Rejected- see http://sbl.example.org/$&{client_addr}"), false),
            ]
        },
        zones.clone(),
    )
    .await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    assert_eq!(
        talk(&mut c, &["HELO x", "MAIL FROM:<a@example.net>"]).await[1],
        "550 5.7.1 Rejected- see http://sbl.example.org/203.0.113.66"
    );
    c.quit().await;
    let mut c = lab.client(67).await;
    c.read_reply().await.unwrap();
    assert_eq!(
        talk(&mut c, &["HELO x", "MAIL FROM:<a@example.net>"]).await[1],
        "250 2.1.0 <a@example.net>... Sender ok"
    );
    c.quit().await;
    // With `t`, a temporary failure refuses with 451.
    let lab = external_lab_with(|p| p.dnsbl = vec![zone("bl.spamcop.net", None, true)], zones).await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    let tempfail = "451 4.7.1 Temporary lookup failure of 203.0.113.66 at bl.spamcop.net";
    assert_eq!(talk(&mut c, &["HELO x", "MAIL FROM:<a@example.net>"]).await[1], tempfail);
    c.quit().await;
    assert_eq!(
        log_of(&lab)[0],
        format!(
            "NOQUEUE: ruleset=check_relay, arg1=real.dom.com, arg2=203.0.113.66, \
             relay=real.dom.com [203.0.113.66], reject={tempfail}"
        )
    );
}

#[tokio::test]
async fn greylisting_defers_then_passes_after_the_delay() {
    let clock = VirtualClock::new(chrono::Utc::now());
    let mut p = external_profile();
    p.greylist = Some(Greylist {
        delay: Duration::from_secs(30 * 60),
        autowhite: Duration::from_secs(24 * 3600),
        netmask: 24,
        whitelist: vec!["lists@example.org".into()],
    });
    let net = subnet();
    let port = free_port(host_real_ip(net, 10)).await;
    let mut spec = LabSpec::new(p, vec![ptr("203.0.113.66", "real.dom.com")], port);
    spec.clock = clock.clone();
    let lab = Lab::start(net, spec).await;
    let grey = "451 4.7.1 Greylisting in action, please come back later";
    let session = |octet: u8, from: &'static str| {
        let lab = &lab;
        async move {
            let mut c = lab.client(octet).await;
            c.read_reply().await.unwrap();
            let mail = format!("MAIL FROM:<{from}>");
            let got = talk(&mut c, &["HELO x", &mail, "RCPT TO:<john@sysiphus.com>"]).await;
            c.quit().await;
            got[2].clone()
        }
    };
    assert_eq!(session(66, "alice@example.net").await, grey);
    clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(session(66, "alice@example.net").await, grey);
    // The whitelist passes at once.
    assert_eq!(session(66, "lists@example.org").await, "250 2.1.5 <john@sysiphus.com>... Recipient ok");
    // After the delay, the retry passes, here from the same /24 (netmask: 24).
    clock.advance(Duration::from_secs(2 * 60));
    assert_eq!(session(67, "alice@example.net").await, "250 2.1.5 <john@sysiphus.com>... Recipient ok");
    // The client network is auto-whitelisted: a new triplet passes.
    assert_eq!(session(66, "bob@example.net").await, "250 2.1.5 <john@sysiphus.com>... Recipient ok");
    let log: Vec<String> = log_of(&lab).into_iter().filter(|l| !l.contains("did not issue")).collect();
    let milter = format!("QID: Milter: to=<john@sysiphus.com>, reject={grey}");
    assert_eq!(
        log,
        [
            milter.clone(),
            milter,
            "QID: addr 203.0.113.67 from <alice@example.net> to <john@sysiphus.com> delayed for 00:31:00".to_string(),
        ]
    );
}

#[tokio::test]
async fn max_rcpts_per_message_answers_452_past_the_limit() {
    let lab = external_lab(|p| p.max_rcpts_per_message = 2).await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    let got = talk(
        &mut c,
        &[
            "HELO x",
            "MAIL FROM:<a@example.net>",
            "RCPT TO:<r1@sysiphus.com>",
            "RCPT TO:<r2@sysiphus.com>",
            "RCPT TO:<r3@sysiphus.com>",
            "DATA",
        ],
    )
    .await;
    assert_eq!(got[4], "452 4.5.3 Too many recipients");
    assert_eq!(got[5], "354 Enter mail, end with \".\" on a line by itself");
    assert!(c.send_message(b"Subject: x\r\n\r\nhi\r\n").await.unwrap().text().starts_with("250 2.0.0 "));
    c.quit().await;
    let log = wait_for_log(&lab, "nrcpts=").await;
    assert!(
        log.iter().any(|l| l.starts_with("QID: from=<a@example.net>, size=") && l.contains(", nrcpts=2, ")),
        "{log:#?}"
    );
}

#[tokio::test]
async fn max_message_size_is_advertised_and_enforced() {
    let lab = external_lab(|p| p.max_message_size = 100).await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    let too_big = "552 5.2.3 Message size exceeds fixed maximum message size (100)";
    let got = talk(
        &mut c,
        &[
            "EHLO x",
            "MAIL FROM:<a@example.net> SIZE=101",
            "MAIL FROM:<a@example.net> SIZE=100",
            "RCPT TO:<john@sysiphus.com>",
            "DATA",
        ],
    )
    .await;
    assert!(got[0].contains("\n250 SIZE 100\n"), "{}", got[0]);
    assert_eq!(got[1], too_big);
    assert_eq!(got[2], "250 2.1.0 <a@example.net>... Sender ok");
    let body = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(200));
    assert_eq!(c.send_message(body.as_bytes()).await.unwrap().text(), too_big);
    c.quit().await;
    assert_eq!(log_of(&lab)[0], "QID: message size exceeds maximum (100)");
}

#[tokio::test]
async fn header_checks_refuse_at_end_of_data() {
    let reply = "553 Delivery blocked; HSubject: indicates unsolicited commercial email.";
    let lab = external_lab(|p| {
        p.header_checks = vec![HeaderCheck { header: "Subject".into(), pattern: "^ADV ?:".into(), reply: reply.into() }]
    })
    .await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    talk(&mut c, &["HELO x", "MAIL FROM:<a@example.net>", "RCPT TO:<john@sysiphus.com>", "DATA"]).await;
    assert_eq!(c.send_message(b"subject: ADV: cheap stuff\r\n\r\nbuy\r\n").await.unwrap().text(), reply);
    talk(&mut c, &["MAIL FROM:<a@example.net>", "RCPT TO:<john@sysiphus.com>", "DATA"]).await;
    let ok = c.send_message(b"Subject: ADVICE wanted\r\n\r\nhi\r\n").await.unwrap().text();
    assert!(ok.starts_with("250 2.0.0 "), "{ok}");
    c.quit().await;
    assert_eq!(
        log_of(&lab)[0],
        format!("QID: ruleset=check_subject, arg1=ADV: cheap stuff, relay=real.dom.com [203.0.113.66], reject={reply}")
    );
}

/// Open `n` connections at once from client 66; the time each greeting took.
async fn greeting_times(lab: &Lab, n: usize) -> Vec<(Duration, String)> {
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut c = lab.client(66).await;
        tasks.push(tokio::spawn(async move {
            let greeting = c.read_reply().await.unwrap().text();
            let at = start.elapsed();
            c.quit().await;
            (at, greeting)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out.sort();
    out
}

#[tokio::test]
async fn connection_rate_throttle_delays_but_never_refuses() {
    // Six arrivals at once, two a second: served over three seconds.
    let lab = external_lab(|p| p.connection_rate_throttle = 2).await;
    let times = greeting_times(&lab, 6).await;
    assert!(times.iter().all(|(_, g)| g.starts_with("220 ")), "{times:?}");
    assert!(times[1].0 < Duration::from_millis(900), "{times:?}");
    assert!(times[2].0 >= Duration::from_millis(900), "{times:?}");
    assert!(times[5].0 >= Duration::from_millis(1900), "{times:?}");
    // Without the throttle they are all served at once.
    let lab = external_lab(|_| {}).await;
    let times = greeting_times(&lab, 6).await;
    assert!(times[5].0 < Duration::from_millis(900), "{times:?}");
}

#[tokio::test]
async fn max_daemon_children_stops_accepting_at_the_limit() {
    let lab = external_lab(|p| p.max_daemon_children = 1).await;
    let mut first = lab.client(66).await;
    assert!(first.read_reply().await.unwrap().text().starts_with("220 "));
    let mut second = lab.client(67).await;
    // The second client waits in the listen queue: no greeting yet.
    assert!(tokio::time::timeout(Duration::from_millis(500), second.read_reply()).await.is_err());
    let log = wait_for_log(&lab, "rejecting connections").await;
    assert_eq!(log, ["NOQUEUE: rejecting connections on daemon MTA: 1 children, max 1"]);
    first.quit().await;
    let g = tokio::time::timeout(Duration::from_secs(3), second.read_reply()).await.unwrap().unwrap();
    assert!(g.text().starts_with("220 external.sysiphus.com"), "{}", g.text());
    second.quit().await;
}

#[test]
fn bad_anti_spam_values_stop_the_relay_before_it_starts() {
    let mut p = RelayProfile::new("external.sysiphus.com");
    p.dnsbl = vec![zone("", None, false)];
    let e = p.validate().unwrap_err().to_string();
    assert!(e.starts_with("\"\" is not a DNSBL zone"), "{e}");
}
