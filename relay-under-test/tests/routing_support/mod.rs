//! Helpers for the routing and address tests: a lab with named MX sinks,
//! one-shot transactions, and the relay's `to=` lines.

#![allow(dead_code)]

use super::support::*;
use lab_core::Reply;
use relay_under_test::{RelayProfile, RelayUnderTest};
use std::net::SocketAddr;
use std::time::Duration;

/// Start sinks at 192.0.2.`octet` (name given) and the relay.
pub async fn lab(mut profile: RelayProfile, zone: Vec<Rec>, sinks: &[(u8, &str)]) -> (Lab, Vec<FakeMx>) {
    // Sender domains here have no DNS; that check is not what these tests are about.
    profile.accept_unresolvable_domains = true;
    let net = subnet();
    let port = free_port(host_real_ip(net, 10)).await;
    let mut started = Vec::new();
    for (octet, name) in sinks {
        started.push(FakeMx::start(SocketAddr::new(host_real_ip(net, *octet), port), SinkConfig::accept(name)).await);
    }
    (Lab::start(net, LabSpec::new(profile, zone, port)).await, started)
}

/// One SMTP transaction from client `octet`: RCPT replies, and the final
/// reply when DATA was reached.
pub async fn send(lab: &Lab, octet: u8, from: &str, rcpts: &[&str], msg: &str) -> (Vec<Reply>, Option<Reply>) {
    let mut c = lab.client(octet).await;
    c.read_reply().await.unwrap();
    c.command("EHLO client.example").await.unwrap();
    assert_eq!(c.command(&format!("MAIL FROM:{from}")).await.unwrap().code, 250);
    let mut replies = Vec::new();
    for r in rcpts {
        replies.push(c.command(&format!("RCPT TO:{r}")).await.unwrap());
    }
    let mut done = None;
    if replies.iter().any(|r| r.code == 250) {
        assert_eq!(c.command("DATA").await.unwrap().code, 354);
        done = Some(c.send_message(msg.replace('\n', "\r\n").as_bytes()).await.unwrap());
    }
    c.quit().await;
    assert!(lab.relay.settle(Duration::from_secs(10)).await);
    (replies, done)
}

pub fn qid(r: &Option<Reply>) -> String {
    let r = r.as_ref().expect("DATA reached");
    assert_eq!(r.code, 250, "{r}");
    r.lines[0].split_whitespace().nth(1).unwrap().to_string()
}

/// The relay's `to=` lines for `qid`, without the syslog prefix.
pub fn to_lines(lab: &Lab, qid: &str) -> Vec<String> {
    let mark = format!("{qid}: to=");
    lab.relay
        .log_lines()
        .into_iter()
        .filter_map(|l| l.find(&mark).map(|i| l[i + qid.len() + 2..].to_string()))
        .collect()
}

pub fn firsts(rs: &[Reply]) -> Vec<String> {
    rs.iter().map(Reply::first_line).collect()
}
