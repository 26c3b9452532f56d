//! Routing knobs over real sockets: mailertable, SMART_HOST, MAIL_HUB,
//! LUSER_RELAY, domaintable (spec §3.1–3.4, §3.7).
//!
//! Lab clients: 203.0.113.66 (outside, PTR real.dom.com) and 203.0.113.9
//! (inside: relay_domains lists it). Lab hosts 192.0.2.10/20/30 are MX sinks.

mod routing_support;
mod support;

use pretty_assertions::assert_eq;
use relay_under_test::RelayUnderTest;
use routing_support::*;
use support::*;

const MSG: &str = "Subject: route\n\nhi\n";

#[tokio::test]
async fn mailertable_exact_dot_default_bracket_and_literal_keys() {
    let mut p = external_profile();
    p.mailertable = vec![
        "sysiphus.com smtp:exch01.sysiphus.com".into(),
        ".sysiphus.com esmtp:[gw.sysiphus.com]".into(),
        "lit.example smtp:[192.0.2.30]".into(),
        ". relay:outer.example".into(),
    ];
    let zone = vec![
        a("exch01.sysiphus.com", "192.0.2.10"),
        a("gw.sysiphus.com", "192.0.2.20"),
        // An MX for gw that must be ignored: [gw] means "no MX lookup".
        mx("gw.sysiphus.com", 10, "exch01.sysiphus.com"),
        mx("outer.example", 10, "mx.outer.example"),
        a("mx.outer.example", "192.0.2.30"),
    ];
    let (lab, sinks) =
        lab(p, zone, &[(10, "exch01.sysiphus.com"), (20, "gw.sysiphus.com"), (30, "mx.outer.example")]).await;
    let rcpts = ["<a@sysiphus.com>", "<b@deep.sub.sysiphus.com>", "<c@lit.example>", "<d@deer-run.com>"];
    let (replies, done) = send(&lab, 9, "<hal@sysiphus.com>", &rcpts, MSG).await;
    assert!(replies.iter().all(|r| r.code == 250), "{replies:?}");
    let qid = qid(&done);
    let rcpts_at = |i: usize| sinks[i].messages().iter().flat_map(|m| m.rcpts.clone()).collect::<Vec<_>>();
    assert_eq!(rcpts_at(0), ["<a@sysiphus.com>"]);
    assert_eq!(rcpts_at(1), ["<b@deep.sub.sysiphus.com>"]);
    assert_eq!(rcpts_at(2), ["<c@lit.example>", "<d@deer-run.com>"]);
    // pri = 19 + 4 * 30000.
    assert_eq!(
        to_lines(&lab, &qid),
        [
            "to=<a@sysiphus.com>, delay=00:00:00, xdelay=00:00:00, mailer=smtp, pri=120019, \
             relay=exch01.sysiphus.com. [192.0.2.10], dsn=2.0.0, stat=Sent (S0001 Message accepted for delivery)",
            "to=<b@deep.sub.sysiphus.com>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=120019, \
             relay=gw.sysiphus.com. [192.0.2.20], dsn=2.0.0, stat=Sent (S0001 Message accepted for delivery)",
            "to=<c@lit.example>, delay=00:00:00, xdelay=00:00:00, mailer=smtp, pri=120019, \
             relay=[192.0.2.30] [192.0.2.30], dsn=2.0.0, stat=Sent (S0001 Message accepted for delivery)",
            "to=<d@deer-run.com>, delay=00:00:00, xdelay=00:00:00, mailer=relay, pri=120019, \
             relay=mx.outer.example. [192.0.2.30], dsn=2.0.0, stat=Sent (S0002 Message accepted for delivery)",
        ]
    );
    let asked = lab.dns.asked();
    assert!(asked.contains(&"MX exch01.sysiphus.com".to_string()), "{asked:?}");
    assert!(!asked.iter().any(|q| q == "MX gw.sysiphus.com" || q.ends_with("deer-run.com")), "{asked:?}");
    lab.relay.stop().await;
}

#[tokio::test]
async fn mailertable_error_entries_refuse_at_rcpt_and_grant_no_relaying() {
    let mut p = external_profile();
    p.mailertable = vec![
        "old.com error:5.1.1:550 moved".into(),
        "gone.com error:nouser 550 No such user here".into(),
        "other.com smtp:internal.sysiphus.com".into(),
    ];
    let (lab, sinks) = lab(p, vec![a("internal.sysiphus.com", "192.0.2.10")], &[(10, "internal.sysiphus.com")]).await;
    let (replies, done) = send(&lab, 66, "<a@b.example>", &["<u@old.com>", "u@gone.com", "<u@other.com>"], MSG).await;
    assert_eq!(
        firsts(&replies),
        [
            "550 5.1.1 <u@old.com>... moved",
            "550 5.1.1 u@gone.com... No such user here",
            // A mailertable entry is not a relay domain (spec §3.3).
            "550 5.7.1 <u@other.com>... Relaying denied",
        ]
    );
    assert!(done.is_none());
    let log = lab.relay.log_lines();
    assert!(log.iter().any(|l| l.ends_with(": <u@old.com>... moved")), "{log:#?}");
    assert!(sinks[0].messages().is_empty());
    lab.relay.stop().await;
}

#[tokio::test]
async fn smart_host_takes_non_local_mail_with_mailer_relay_after_the_mailertable() {
    let mut p = external_profile();
    p.smart_host = Some("internal.sysiphus.com".into());
    p.mailertable = vec!["sysiphus.com smtp:[exch01.sysiphus.com]".into()];
    let zone = vec![
        a("internal.sysiphus.com", "192.0.2.10"),
        a("exch01.sysiphus.com", "192.0.2.20"),
        mx("deer-run.com", 10, "bullwinkle.deer-run.com"),
        a("bullwinkle.deer-run.com", "192.0.2.30"),
    ];
    let (lab, sinks) =
        lab(p, zone, &[(10, "internal.sysiphus.com"), (20, "exch01.sysiphus.com"), (30, "bullwinkle.deer-run.com")])
            .await;
    let (_, done) = send(&lab, 9, "<hal@sysiphus.com>", &["<info@deer-run.com>", "<bob@sysiphus.com>"], MSG).await;
    let qid = qid(&done);
    assert_eq!(sinks[0].messages()[0].rcpts, ["<info@deer-run.com>"]);
    assert_eq!(sinks[1].messages()[0].rcpts, ["<bob@sysiphus.com>"]);
    assert!(sinks[2].messages().is_empty(), "the MX of deer-run.com is never used");
    assert_eq!(
        to_lines(&lab, &qid),
        [
            "to=<info@deer-run.com>, delay=00:00:00, xdelay=00:00:00, mailer=relay, pri=60019, \
             relay=internal.sysiphus.com. [192.0.2.10], dsn=2.0.0, stat=Sent (S0001 Message accepted for delivery)",
            "to=<bob@sysiphus.com>, delay=00:00:00, xdelay=00:00:00, mailer=smtp, pri=60019, \
             relay=exch01.sysiphus.com. [192.0.2.20], dsn=2.0.0, stat=Sent (S0001 Message accepted for delivery)",
        ]
    );
    lab.relay.stop().await;
}

#[tokio::test]
async fn mail_hub_gets_local_names_rewritten_to_the_hub() {
    let mut p = external_profile();
    p.mail_hub = Some("internal.sysiphus.com".into());
    // A stray alias is never expanded: the hub wins (spec §3.1).
    p.aliases = vec!["root: |/bin/sh -c evil".into()];
    let (lab, sinks) = lab(p, vec![a("internal.sysiphus.com", "192.0.2.10")], &[(10, "internal.sysiphus.com")]).await;
    let (replies, done) = send(&lab, 66, "<a@b.example>", &["<root@external.sysiphus.com>"], MSG).await;
    assert_eq!(firsts(&replies), ["250 2.1.5 <root@external.sysiphus.com>... Recipient ok"]);
    let qid = qid(&done);
    let got = sinks[0].messages();
    assert_eq!(got[0].rcpts, ["<root@internal.sysiphus.com>"]);
    assert!(got[0].data.contains(&format!("id {qid}\r\n\tfor <root@external.sysiphus.com>;")), "{}", got[0].data);
    assert_eq!(
        to_lines(&lab, &qid),
        ["to=<root@external.sysiphus.com>, delay=00:00:00, xdelay=00:00:00, mailer=relay, pri=30019, \
          relay=internal.sysiphus.com. [192.0.2.10], dsn=2.0.0, stat=Sent (S0001 Message accepted for delivery)"]
    );
    assert!(lab.relay.mailboxes().names().is_empty());
    lab.relay.stop().await;
}

#[tokio::test]
async fn luser_relay_takes_unknown_local_names_and_mailertable_local_delivers_here() {
    let mut p = external_profile();
    p.local_users = vec!["hal".into()];
    p.luser_relay = Some("smtp:internal.sysiphus.com".into());
    p.mailertable = vec!["mbox.example local:hal".into()];
    let (lab, sinks) = lab(p, vec![a("internal.sysiphus.com", "192.0.2.10")], &[(10, "internal.sysiphus.com")]).await;
    let rcpts = ["<jim@external.sysiphus.com>", "<hal@external.sysiphus.com>", "<anyone@mbox.example>"];
    let (_, done) = send(&lab, 9, "<a@b.example>", &rcpts, MSG).await;
    let qid = qid(&done);
    assert_eq!(sinks[0].messages()[0].rcpts, ["<jim@internal.sysiphus.com>"]);
    assert_eq!(
        to_lines(&lab, &qid),
        [
            "to=<jim@external.sysiphus.com>, delay=00:00:00, xdelay=00:00:00, mailer=smtp, pri=90019, \
             relay=internal.sysiphus.com. [192.0.2.10], dsn=2.0.0, stat=Sent (S0001 Message accepted for delivery)",
            // anyone@mbox.example is hal too: a duplicate, delivered and logged once.
            "to=<hal@external.sysiphus.com>, delay=00:00:00, xdelay=00:00:00, mailer=local, pri=90019, dsn=2.0.0, \
             stat=Sent",
        ]
    );
    assert_eq!(lab.relay.mailboxes().messages("hal").len(), 1);
    lab.relay.stop().await;
}

#[tokio::test]
async fn domaintable_rewrites_envelope_and_headers_and_its_domains_are_ours() {
    let mut p = external_profile();
    p.domaintable = vec!["parallel.com sysiphus.com".into()];
    let zone = vec![mx("sysiphus.com", 10, "internal.sysiphus.com"), a("internal.sysiphus.com", "192.0.2.10")];
    let (lab, sinks) = lab(p, zone, &[(10, "internal.sysiphus.com")]).await;
    // parallel.com is in no relay_domains: the domaintable makes it ours.
    let msg = "From: Eve <eve@parallel.com>\nTo: hal@parallel.com\nSubject: p\n\nmail to hal@parallel.com\n";
    let (replies, done) = send(&lab, 66, "<eve@parallel.com>", &["<hal@parallel.com>"], msg).await;
    assert_eq!(firsts(&replies), ["250 2.1.5 <hal@parallel.com>... Recipient ok"]);
    let qid = qid(&done);
    let got = &sinks[0].messages()[0];
    assert_eq!(got.mail_from, format!("<eve@sysiphus.com> SIZE={}", msg.len()));
    assert_eq!(got.rcpts, ["<hal@sysiphus.com>"]);
    let body_at = got.data.find("\r\n\r\n").unwrap();
    assert!(got.data.contains(&format!("id {qid}\r\n\tfor <hal@parallel.com>;")), "{}", got.data);
    assert!(
        got.data[..body_at].ends_with("\r\nFrom: Eve <eve@sysiphus.com>\r\nTo: hal@sysiphus.com\r\nSubject: p"),
        "{}",
        got.data
    );
    assert!(got.data.ends_with("\r\n\r\nmail to hal@parallel.com\r\n"), "bodies are not rewritten");
    // to= shows the address before rewriting (spec §6.3).
    assert!(to_lines(&lab, &qid)[0].starts_with("to=<hal@parallel.com>, delay="), "{:?}", to_lines(&lab, &qid));
    lab.relay.stop().await;
}
