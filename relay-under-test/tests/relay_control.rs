//! Relay control over real sockets: relay_domains and the relay FEATUREs,
//! relay tricks, the access database (Connect:, From:, To:, Spam:, legacy
//! keys; OK, RELAY, REJECT, DISCARD, ERROR, SKIP), delay_checks, the
//! built-in sender checks and greet_pause (spec §3.6, §4, §9.2).

mod support;

use lab_core::SmtpClient;
use pretty_assertions::assert_eq;
use relay_under_test::profile::DelayChecks;
use relay_under_test::{RelayProfile, RelayUnderTest};
use std::net::SocketAddr;
use std::time::Duration;
use support::*;

async fn greeted(lab: &Lab, client: u8) -> SmtpClient {
    let mut c = lab.client(client).await;
    c.read_reply().await.unwrap();
    c.command("HELO client.example").await.unwrap();
    c
}

/// Send `line`; after a 250, RSET to be ready for the next MAIL.
async fn say_then_reset(c: &mut SmtpClient, line: &str) -> String {
    let r = c.command(line).await.unwrap().text();
    if r.starts_with("250") {
        c.command("RSET").await.unwrap();
    }
    r
}

#[tokio::test]
async fn relay_tricks_are_refused_as_relaying() {
    let lab = external_lab(|_| {}).await;
    let mut c = greeted(&lab, 66).await;
    c.command("MAIL FROM:<john@sysiphus.com>").await.unwrap();
    let tricks = [
        "<victim%elsewhere.example@sysiphus.com>",
        "<victim%elsewhere.example@eng.sysiphus.com>",
        "<elsewhere.example!victim@sysiphus.com>",
        "<@sysiphus.com:victim@elsewhere.example>",
        "<@sysiphus.com,@eng.sysiphus.com:victim@elsewhere.example>",
        "<\"victim@elsewhere.example\"@sysiphus.com>",
        "<\"victim%elsewhere.example\"@sysiphus.com>",
        "<victim%elsewhere.example@[198.51.100.25]>",
        "<victim%elsewhere.example@external.sysiphus.com>",
        "<victim@sysiphus.com@elsewhere.example>",
        "<victim@[192.0.2.99]>",
        "<Victim@ElseWhere.Example.>",
    ];
    for t in tricks {
        let reply = c.command(&format!("RCPT TO:{t}")).await.unwrap();
        assert_eq!(reply.text(), format!("550 5.7.1 {t}... Relaying denied"), "{t}");
    }
    // Our own domain, however it is spelled, is accepted.
    for ok in ["<john@SYSIPHUS.COM.>", "<john%eng.sysiphus.com@sysiphus.com>"] {
        assert_eq!(
            c.command(&format!("RCPT TO:{ok}")).await.unwrap().text(),
            format!("250 2.1.5 {ok}... Recipient ok")
        );
    }
    let log = log_of(&lab);
    assert_eq!(log.len(), tricks.len());
    assert_eq!(
        log[0],
        "QID: ruleset=check_rcpt, arg1=<victim%elsewhere.example@sysiphus.com>, relay=real.dom.com [203.0.113.66], \
         reject=550 5.7.1 <victim%elsewhere.example@sysiphus.com>... Relaying denied"
    );
    // A client allowed to relay may use them (it relays anyway).
    let mut c = greeted(&lab, 9).await;
    c.command("MAIL FROM:<hal@sysiphus.com>").await.unwrap();
    assert_eq!(c.command("RCPT TO:<victim%elsewhere.example@sysiphus.com>").await.unwrap().code, 250);
}

#[tokio::test]
async fn promiscuous_relay_relays_for_anyone() {
    let lab = external_lab(|p| p.promiscuous_relay = true).await;
    let mut c = greeted(&lab, 66).await;
    assert_eq!(
        talk(&mut c, &["MAIL FROM:<a@b.example>", "RCPT TO:<x@deer-run.com>"]).await[1],
        "250 2.1.5 <x@deer-run.com>... Recipient ok"
    );
    let lab = lab_off().await;
    let mut c = greeted(&lab, 66).await;
    assert_eq!(
        talk(&mut c, &["MAIL FROM:<a@b.example>", "RCPT TO:<x@deer-run.com>"]).await[1],
        "550 5.7.1 <x@deer-run.com>... Relaying denied"
    );
}

async fn lab_off() -> Lab {
    external_lab(|_| {}).await
}

#[tokio::test]
async fn relay_entire_domain_covers_the_hosts_domain_both_ways() {
    // $m = sysiphus.com; relay_domains names only the outbound client.
    let zone = vec![ptr("203.0.113.67", "ws7.sysiphus.com")];
    let lab = external_lab_with(
        |p| {
            p.relay_entire_domain = true;
            p.relay_domains = vec![];
        },
        zone,
    )
    .await;
    let mut outside = greeted(&lab, 66).await;
    assert_eq!(
        talk(&mut outside, &["MAIL FROM:<a@b.example>", "RCPT TO:<x@eng.sysiphus.com>", "RCPT TO:<x@deer-run.com>"])
            .await[1..],
        ["250 2.1.5 <x@eng.sysiphus.com>... Recipient ok", "550 5.7.1 <x@deer-run.com>... Relaying denied"]
    );
    let mut inside = greeted(&lab, 67).await;
    assert_eq!(
        talk(&mut inside, &["MAIL FROM:<a@b.example>", "RCPT TO:<x@deer-run.com>"]).await[1],
        "250 2.1.5 <x@deer-run.com>... Recipient ok"
    );
}

#[tokio::test]
async fn relay_hosts_only_matches_exact_names() {
    let lab = external_lab(|p| p.relay_hosts_only = true).await;
    let mut c = greeted(&lab, 66).await;
    assert_eq!(
        talk(&mut c, &["MAIL FROM:<a@b.example>", "RCPT TO:<x@sysiphus.com>", "RCPT TO:<x@eng.sysiphus.com>"]).await
            [1..],
        ["250 2.1.5 <x@sysiphus.com>... Recipient ok", "550 5.7.1 <x@eng.sysiphus.com>... Relaying denied"]
    );
}

#[tokio::test]
async fn our_address_literal_is_local() {
    let lab = external_lab(|_| {}).await;
    let mut c = greeted(&lab, 66).await;
    let r =
        talk(&mut c, &["MAIL FROM:<a@b.example>", "RCPT TO:<root@[198.51.100.25]>", "RCPT TO:<root@[198.51.100.26]>"])
            .await;
    // [198.51.100.25] is the relay's own address: ours, not a relay attempt.
    assert!(!r[1].contains("Relaying denied"), "{}", r[1]);
    assert_eq!(r[2], "550 5.7.1 <root@[198.51.100.26]>... Relaying denied");
}

#[tokio::test]
async fn connect_reject_makes_a_null_session() {
    let lab = external_lab(|p| p.access = vec!["Connect:203.0.113.66 REJECT".into()]).await;
    let mut c = lab.client(66).await;
    assert!(c.read_reply().await.unwrap().text().starts_with("220 external.sysiphus.com ESMTP Sendmail"));
    assert_eq!(
        talk(&mut c, &["EHLO x", "MAIL FROM:<a@b.example>", "RCPT TO:<john@sysiphus.com>", "DATA", "RSET"]).await,
        [
            "250 external.sysiphus.com Hello real.dom.com [203.0.113.66], pleased to meet you\n250 ENHANCEDSTATUSCODES",
            "550 5.7.1 Access denied",
            "550 5.7.1 Access denied",
            "550 5.7.1 Access denied",
            "250 2.0.0 Reset state",
        ]
    );
    c.quit().await;
    assert_eq!(
        log_of(&lab),
        ["NOQUEUE: ruleset=check_relay, arg1=real.dom.com, arg2=203.0.113.66, relay=real.dom.com [203.0.113.66], \
          reject=550 5.7.1 Access denied"]
    );
    // Another client is not affected.
    let mut c = greeted(&lab, 67).await;
    assert_eq!(c.command("MAIL FROM:<a@b.example>").await.unwrap().code, 250);
}

#[tokio::test]
async fn connect_entries_by_name_and_prefix_with_error_texts() {
    let zone = vec![ptr("203.0.113.67", "dialup-67.spam.example")];
    let lab = external_lab_with(
        |p| {
            p.access = vec![
                "Connect:spam.example ERROR:5.7.1:550 Dialups go through their ISP".into(),
                "Connect:203.0.113 ERROR:421 Come back later".into(),
                "Connect:203.0.113.9 OK".into(),
            ]
        },
        zone,
    )
    .await;
    let mut by_name = greeted(&lab, 67).await;
    assert_eq!(
        by_name.command("MAIL FROM:<a@b.example>").await.unwrap().text(),
        "550 5.7.1 Dialups go through their ISP"
    );
    // A 421 refusal takes the greeting's place and ends the session (srvrsmtp.c).
    let mut by_prefix = lab.client(66).await;
    assert_eq!(by_prefix.read_reply().await.unwrap().text(), "421 4.0.0 Come back later");
    assert!(by_prefix.command("HELO x").await.is_err());
    // The longest prefix is tried first: OK wins for .9.
    let mut ok = greeted(&lab, 9).await;
    assert_eq!(ok.command("MAIL FROM:<a@b.example>").await.unwrap().code, 250);
}

#[tokio::test]
async fn from_entries_refuse_at_mail_with_their_texts() {
    let lab = external_lab(|p| {
        p.access = vec![
            "From:foo.biz REJECT".into(),
            "From:zecpax@yahoo.com ERROR: You annoy me".into(),
            "From:biz ERROR:550 Move out of biz".into(),
            "From:friend@some.biz RELAY".into(),
            "From:spam.example REJECT".into(),
            "From:ok.spam.example SKIP".into(),
            "cyberspammer.com REJECT".into(),
        ]
    })
    .await;
    let mut c = greeted(&lab, 66).await;
    let mut say = async |l: &str| say_then_reset(&mut c, l).await;
    assert_eq!(say("mail from: spam@foo.biz").await, "550 5.7.1 spam@foo.biz... Access denied");
    assert_eq!(say("MAIL FROM:<x@mail.foo.biz>").await, "550 5.7.1 <x@mail.foo.biz>... Access denied");
    assert_eq!(say("MAIL FROM:<zecpax@yahoo.com>").await, "553 5.3.0 <zecpax@yahoo.com>... You annoy me");
    assert_eq!(say("MAIL FROM:<someone@yahoo.com>").await, "250 2.1.0 <someone@yahoo.com>... Sender ok");
    assert_eq!(say("MAIL FROM:<x@shop.biz>").await, "550 5.0.0 <x@shop.biz>... Move out of biz");
    assert_eq!(say("MAIL FROM:<friend@some.biz>").await, "250 2.1.0 <friend@some.biz>... Sender ok");
    assert_eq!(say("MAIL FROM:<x@ok.spam.example>").await, "250 2.1.0 <x@ok.spam.example>... Sender ok");
    assert_eq!(say("MAIL FROM:<x@spam.example>").await, "550 5.7.1 <x@spam.example>... Access denied");
    assert_eq!(say("MAIL FROM:<x@cyberspammer.com>").await, "550 5.7.1 <x@cyberspammer.com>... Access denied");
    assert_eq!(
        log_of(&lab)[0],
        "QID: ruleset=check_mail, arg1=spam@foo.biz, relay=real.dom.com [203.0.113.66], \
         reject=550 5.7.1 spam@foo.biz... Access denied"
    );
    // From: RELAY whitelists the sender; it grants no relaying.
    let mut c = greeted(&lab, 66).await;
    assert_eq!(
        talk(&mut c, &["MAIL FROM:<friend@some.biz>", "RCPT TO:<x@deer-run.com>"]).await[1],
        "550 5.7.1 <x@deer-run.com>... Relaying denied"
    );
}

#[tokio::test]
async fn to_and_connect_relay_entries_grant_relaying() {
    let lab = external_lab(|p| p.access = vec!["To:friend.domain RELAY".into(), "203.0.113.67 RELAY".into()]).await;
    let mut outside = greeted(&lab, 66).await;
    assert_eq!(
        talk(&mut outside, &["MAIL FROM:<a@b.example>", "RCPT TO:<x@mx.friend.domain>", "RCPT TO:<x@deer-run.com>"])
            .await[1..],
        ["250 2.1.5 <x@mx.friend.domain>... Recipient ok", "550 5.7.1 <x@deer-run.com>... Relaying denied"]
    );
    let mut listed = greeted(&lab, 67).await;
    assert_eq!(
        talk(&mut listed, &["MAIL FROM:<a@b.example>", "RCPT TO:<x@deer-run.com>"]).await[1],
        "250 2.1.5 <x@deer-run.com>... Recipient ok"
    );
}

#[tokio::test]
async fn blacklist_recipients_lets_to_entries_refuse() {
    let access =
        vec!["To:old@sysiphus.com REJECT".into(), "To:gone.sysiphus.com ERROR:5.1.6:550 Moved to other.com".into()];
    let strict = external_lab(|p| {
        p.access = access.clone();
        p.blacklist_recipients = true;
    })
    .await;
    let mut c = greeted(&strict, 66).await;
    assert_eq!(
        talk(&mut c, &["MAIL FROM:<a@b.example>", "RCPT TO:<old@sysiphus.com>", "RCPT TO:<x@gone.sysiphus.com>"]).await
            [1..],
        [
            "550 5.2.1 <old@sysiphus.com>... Mailbox disabled for this recipient",
            "550 5.1.6 <x@gone.sysiphus.com>... Moved to other.com"
        ]
    );
    assert_eq!(
        log_of(&strict)[0],
        "QID: ruleset=check_rcpt, arg1=<old@sysiphus.com>, relay=real.dom.com [203.0.113.66], \
         reject=550 5.2.1 <old@sysiphus.com>... Mailbox disabled for this recipient"
    );
    // Without the FEATURE, To: entries only grant relaying.
    let lab = external_lab(|p| p.access = access).await;
    let mut c = greeted(&lab, 66).await;
    assert_eq!(
        talk(&mut c, &["MAIL FROM:<a@b.example>", "RCPT TO:<old@sysiphus.com>"]).await[1],
        "250 2.1.5 <old@sysiphus.com>... Recipient ok"
    );
}

#[tokio::test]
async fn delay_checks_friend_reproduces_the_course_exercise() {
    // [C:Ex 6.1.3], as typed there (no brackets).
    let lab = external_lab(|p| {
        p.access = vec!["Spam:abuse@sysiphus.com FRIEND".into(), "From:foo.biz REJECT".into()];
        p.delay_checks = DelayChecks::Friend;
    })
    .await;
    let mut c = greeted(&lab, 66).await;
    assert_eq!(
        talk(&mut c, &["mail from: spam@foo.biz", "rcpt to: hal@sysiphus.com", "rcpt to: abuse@sysiphus.com"]).await,
        [
            "250 2.1.0 spam@foo.biz... Sender ok",
            "550 5.7.1 hal@sysiphus.com... Access denied",
            "250 2.1.5 abuse@sysiphus.com... Recipient ok"
        ]
    );
    assert_eq!(
        log_of(&lab),
        ["QID: ruleset=check_rcpt, arg1=hal@sysiphus.com, relay=real.dom.com [203.0.113.66], \
          reject=550 5.7.1 hal@sysiphus.com... Access denied"]
    );
}

#[tokio::test]
async fn delay_checks_moves_connect_and_sender_checks_to_rcpt() {
    let zone = vec![Rec::ServFail("lamers.org".into())];
    let lab = external_lab_with(
        |p| {
            p.access = vec!["Connect:203.0.113.66 REJECT".into(), "Spam:abuse@sysiphus.com FRIEND".into()];
            p.delay_checks = DelayChecks::On;
            p.accept_unresolvable_domains = false;
        },
        zone,
    )
    .await;
    // The client refusal waits for the recipient; plain `true` spares nobody.
    let mut c = greeted(&lab, 66).await;
    assert_eq!(
        talk(&mut c, &["MAIL FROM:<>", "RCPT TO:<abuse@sysiphus.com>"]).await,
        ["250 2.1.0 <>... Sender ok", "550 5.7.1 <abuse@sysiphus.com>... Access denied"]
    );
    // So does the sender domain check.
    let mut c = greeted(&lab, 67).await;
    assert_eq!(
        talk(&mut c, &["MAIL FROM:<bounce@lamers.org>", "RCPT TO:<mary@sysiphus.com>"]).await,
        [
            "250 2.1.0 <bounce@lamers.org>... Sender ok",
            "451 4.1.8 <mary@sysiphus.com>... Domain of sender address bounce@lamers.org does not resolve"
        ]
    );
}

#[tokio::test]
async fn delay_checks_hater_filters_only_haters() {
    let lab = external_lab(|p| {
        p.access = vec!["Spam:hal@sysiphus.com HATER".into(), "From:foo.biz REJECT".into()];
        p.delay_checks = DelayChecks::Hater;
    })
    .await;
    let mut c = greeted(&lab, 66).await;
    assert_eq!(
        talk(&mut c, &["MAIL FROM:<spam@foo.biz>", "RCPT TO:<hal@sysiphus.com>", "RCPT TO:<john@sysiphus.com>"]).await
            [1..],
        ["550 5.7.1 <hal@sysiphus.com>... Access denied", "250 2.1.5 <john@sysiphus.com>... Recipient ok"]
    );
}

#[tokio::test]
async fn discard_accepts_the_message_and_delivers_nothing() {
    let net = subnet();
    let port = free_port(host_real_ip(net, 10)).await;
    let sink =
        FakeMx::start(SocketAddr::new(host_real_ip(net, 10), port), SinkConfig::accept("internal.sysiphus.com")).await;
    let zone = vec![mx("sysiphus.com", 10, "internal.sysiphus.com"), a("internal.sysiphus.com", "192.0.2.10")];
    let mut p = external_profile();
    p.access = vec!["From:junk.example DISCARD".into(), "Connect:203.0.113.67 DISCARD".into()];
    let lab = Lab::start(net, LabSpec::new(p, zone, port)).await;
    for (client, sender) in [(66, "<a@junk.example>"), (67, "<a@b.example>")] {
        let mut c = greeted(&lab, client).await;
        let r = talk(&mut c, &[&format!("MAIL FROM:{sender}"), "RCPT TO:<john@sysiphus.com>", "DATA"]).await;
        assert_eq!(r[0], format!("250 2.1.0 {sender}... Sender ok"));
        assert_eq!(r[1], "250 2.1.5 <john@sysiphus.com>... Recipient ok");
        let done = c.send_message(b"Subject: bye\r\n\r\ngone\r\n").await.unwrap();
        assert!(done.text().ends_with(" Message accepted for delivery"), "{done}");
        c.quit().await;
    }
    assert!(lab.relay.settle(Duration::from_secs(5)).await);
    assert!(sink.messages().is_empty());
    assert!(lab.relay.queue().is_empty());
    let log = log_of(&lab);
    assert_eq!(log[0], "QID: ruleset=check_mail, arg1=<a@junk.example>, relay=[203.0.113.66], discard");
    assert_eq!(log[1], "QID: discarded");
    assert!(log[2].starts_with("QID: from=<a@junk.example>, size="), "{}", log[2]);
    assert_eq!(
        log[3],
        "NOQUEUE: ruleset=check_relay, arg1=[203.0.113.67], arg2=203.0.113.67, relay=[203.0.113.67], discard"
    );
    assert_eq!(log[4], "QID: discarded");
    assert!(log[5].starts_with("QID: from=<a@b.example>, size="), "{}", log[5]);
    assert!(log.iter().all(|l| !l.contains(": to=")), "{log:#?}");
}

#[tokio::test]
async fn unqualified_senders_are_refused_unless_accepted() {
    let lab = external_lab(|_| {}).await;
    let mut c = greeted(&lab, 66).await;
    assert_eq!(
        c.command("MAIL FROM:<eve>").await.unwrap().text(),
        "553 5.5.4 <eve>... Domain name required for sender address eve"
    );
    assert_eq!(
        log_of(&lab),
        ["QID: ruleset=check_mail, arg1=<eve>, relay=real.dom.com [203.0.113.66], \
          reject=553 5.5.4 <eve>... Domain name required for sender address eve"]
    );
    let lab = lab_accepting_bare_names().await;
    let mut c = greeted(&lab, 66).await;
    assert_eq!(c.command("MAIL FROM:<eve>").await.unwrap().text(), "250 2.1.0 <eve>... Sender ok");
}

async fn lab_accepting_bare_names() -> Lab {
    external_lab(|p| p.accept_unqualified_senders = true).await
}

#[tokio::test]
async fn sender_domains_must_resolve() {
    let zone = vec![
        mx("deer-run.com", 10, "bullwinkle.deer-run.com"),
        a("sysiphus-partner.example", "192.0.2.77"),
        Rec::ServFail("lamers.org".into()),
    ];
    let strict = |p: &mut RelayProfile| {
        p.accept_unresolvable_domains = false;
        p.access = vec!["From:ghost.example OK".into()];
    };
    let lab = external_lab_with(strict, zone.clone()).await;
    let mut c = greeted(&lab, 66).await;
    let mut say = async |l: &str| say_then_reset(&mut c, l).await;
    assert_eq!(say("MAIL FROM:<hal@deer-run.com>").await, "250 2.1.0 <hal@deer-run.com>... Sender ok");
    assert_eq!(
        say("MAIL FROM:<a@sysiphus-partner.example>").await,
        "250 2.1.0 <a@sysiphus-partner.example>... Sender ok"
    );
    assert_eq!(
        say("MAIL FROM:<Im@lying.com>").await,
        "553 5.1.8 <Im@lying.com>... Domain of sender address Im@lying.com does not exist"
    );
    assert_eq!(
        say("MAIL FROM:<bounce@lamers.org>").await,
        "451 4.1.8 <bounce@lamers.org>... Domain of sender address bounce@lamers.org does not resolve"
    );
    // An access OK skips the test; so does the null sender.
    assert_eq!(say("MAIL FROM:<x@ghost.example>").await, "250 2.1.0 <x@ghost.example>... Sender ok");
    assert_eq!(say("MAIL FROM:<>").await, "250 2.1.0 <>... Sender ok");
    assert_eq!(
        log_of(&lab)[0],
        "QID: ruleset=check_mail, arg1=<Im@lying.com>, relay=real.dom.com [203.0.113.66], \
         reject=553 5.1.8 <Im@lying.com>... Domain of sender address Im@lying.com does not exist"
    );
    let asked = lab.dns.asked();
    for q in ["A deer-run.com", "MX deer-run.com", "A lying.com", "A lamers.org"] {
        assert!(asked.contains(&q.to_string()), "{q} not in {asked:?}");
    }
    // accept_unresolvable_domains: no test, no question.
    let lab = external_lab_with(|p| p.accept_unresolvable_domains = true, zone).await;
    let mut c = greeted(&lab, 66).await;
    assert_eq!(c.command("MAIL FROM:<Im@lying.com>").await.unwrap().code, 250);
    assert!(!lab.dns.queries.lock().unwrap().iter().any(|(n, _)| n == "lying.com"));
}

#[tokio::test]
async fn greet_pause_catches_slammers_except_exempt_clients() {
    let lab = external_lab(|p| {
        p.greet_pause = 300;
        p.access = vec!["GreetPause:203.0.113.67 0".into()];
    })
    .await;
    // A slammer writes before the greeting.
    let mut c = lab.client(66).await;
    c.send_raw(b"HELO slammer.example\r\nMAIL FROM:<hal@deer-run.com>\r\nQUIT\r\n").await.unwrap();
    let mut replies = Vec::new();
    for _ in 0..4 {
        replies.push(c.read_reply().await.unwrap().text());
    }
    assert_eq!(
        replies,
        [
            "554 external.sysiphus.com ESMTP not accepting messages",
            "250 external.sysiphus.com Hello real.dom.com [203.0.113.66], pleased to meet you",
            "550 5.0.0 Command rejected",
            "221 2.0.0 external.sysiphus.com closing connection",
        ]
    );
    assert_eq!(
        log_of(&lab),
        ["NOQUEUE: rejecting commands from real.dom.com [203.0.113.66] due to pre-greeting traffic"]
    );
    // A patient client waits out the pause and is served.
    let mut c = lab.client(9).await;
    let t = std::time::Instant::now();
    assert_eq!(c.read_reply().await.unwrap().code, 220);
    assert!(t.elapsed() >= Duration::from_millis(250), "{:?}", t.elapsed());
    // GreetPause:... 0 exempts a client: no pause, early talk is fine.
    let mut c = lab.client(67).await;
    c.send_raw(b"HELO partner.example\r\n").await.unwrap();
    assert_eq!(c.read_reply().await.unwrap().code, 220);
    assert_eq!(c.read_reply().await.unwrap().code, 250);
}

#[tokio::test]
async fn bad_access_lines_stop_the_start() {
    let net = subnet();
    for (line, want) in [
        (
            "Connect:10.1.1.0/24 REJECT",
            "relay profile: access line \"Connect:10.1.1.0/24 REJECT\": key \"10.1.1.0/24\" is a CIDR net",
        ),
        (
            "From:foo.biz BLOCK",
            "relay profile: access line \"From:foo.biz BLOCK\": unknown action \"BLOCK\"; valid: OK, RELAY",
        ),
        (
            "Connect:300.1.1 REJECT",
            "relay profile: access line \"Connect:300.1.1 REJECT\": key \"300.1.1\" is not an IP prefix: each octet",
        ),
        ("Frm:foo.biz REJECT", "relay profile: access line \"Frm:foo.biz REJECT\": unknown tag \"Frm:\""),
    ] {
        let mut p = external_profile();
        p.access = vec![line.into()];
        let e = relay_under_test::BuiltinRelay::start(p, refusal_network(net)).await.unwrap_err().to_string();
        assert!(e.starts_with(want), "{e}");
    }
}
