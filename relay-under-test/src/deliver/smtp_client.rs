//! The SMTP client side of delivery: talks to MX hosts.
//!
//! Tries the hosts of one domain in preference order, each of its addresses
//! in DNS order (spec §3.2). A host that cannot be reached or that refuses
//! us before the transaction (greeting, EHLO/HELO, a 4xx to MAIL) is skipped
//! for the next one; once MAIL is accepted the outcome is that host's. The
//! dialogue is Sendmail's: `EHLO $j` (HELO if EHLO is refused with 5xx),
//! `MAIL From:<s> [SIZE=n]`, one `RCPT To:<r>` per recipient, `DATA`, the
//! message, `QUIT`. Every connection is recorded as a transcript labelled
//! `<our host> -> <mx name>`.

use super::DeliveryContext;
use crate::queue::Recipient;
use crate::routing::{DnsError, MxHost};
use lab_core::client::ClientError;
use lab_core::{Reply, SmtpClient, TranscriptRecorder};
use std::net::IpAddr;

/// How one recipient's attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Handed over to the next hop.
    Sent,
    /// Temporary failure: stays queued.
    Deferred,
    /// Permanent failure: leaves the queue; the sender gets a DSN.
    Failed,
}

/// The `relay=`, `dsn=` and `stat=` of a `to=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Outcome.
    pub kind: Kind,
    /// Enhanced status code.
    pub dsn: String,
    /// `stat=` text.
    pub stat: String,
    /// `relay=` text.
    pub relay: Option<String>,
}

impl Status {
    /// Delivered by the local mailer: `stat=Sent`, no `relay=` (spec §6.3).
    pub fn sent_locally() -> Status {
        Status { kind: Kind::Sent, dsn: "2.0.0".into(), stat: "Sent".into(), relay: None }
    }

    /// Delivered; `text` is the next hop's final reply without codes.
    pub fn sent(text: &str, relay: Option<String>) -> Status {
        Status { kind: Kind::Sent, dsn: "2.0.0".into(), stat: format!("Sent ({text})"), relay }
    }

    /// Deferred with `stat` (already starting `Deferred: `). Sendmail logs
    /// `dsn=4.0.0` for deferrals whatever the remote's code (spec §6.3).
    pub fn deferred(stat: String, relay: Option<String>) -> Status {
        Status { kind: Kind::Deferred, dsn: "4.0.0".into(), stat, relay }
    }

    /// Failed for good.
    pub fn failed(dsn: &str, stat: String, relay: Option<String>) -> Status {
        Status { kind: Kind::Failed, dsn: dsn.into(), stat, relay }
    }

    /// From a 4xx/5xx reply of the next hop.
    fn from_reply(r: &Reply, relay: Option<String>) -> Status {
        if r.is_permanent() {
            Status::failed(&enhanced_code(r).unwrap_or_else(|| "5.0.0".into()), reply_line(r), relay)
        } else {
            Status::deferred(format!("Deferred: {}", reply_line(r)), relay)
        }
    }

    /// True when the recipient leaves the queue.
    pub fn is_final(&self) -> bool {
        self.kind != Kind::Deferred
    }
}

/// Recipients that ended the same way.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Who.
    pub rcpts: Vec<Recipient>,
    /// How.
    pub status: Status,
}

/// `550 5.1.1 <x>... User unknown`: the reply's code and last line.
fn reply_line(r: &Reply) -> String {
    format!("{} {}", r.code, r.lines.last().map(String::as_str).unwrap_or(""))
}

/// The RFC 3463 code at the start of the reply's last line, if it has one
/// of the reply's class.
fn enhanced_code(r: &Reply) -> Option<String> {
    let text = r.lines.last()?;
    let word = text.split_whitespace().next()?;
    let parts: Vec<&str> = word.split('.').collect();
    let ok = parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        && parts[0].parse::<u16>().ok() == Some(r.code / 100);
    ok.then(|| word.to_string())
}

/// The final reply's text without its codes: `Sent (<this>)`.
fn sent_text(r: &Reply) -> String {
    let text = r.lines.last().cloned().unwrap_or_default();
    match enhanced_code(r) {
        Some(code) => text[code.len()..].trim_start().to_string(),
        None => text,
    }
}

fn connect_stat(e: &ClientError, host: &str) -> String {
    match e {
        ClientError::Connect { source, .. } => match source.kind() {
            std::io::ErrorKind::ConnectionRefused => format!("Deferred: Connection refused by {host}."),
            std::io::ErrorKind::TimedOut => format!("Deferred: Connection timed out with {host}."),
            _ => format!("Deferred: {source} with {host}."),
        },
        ClientError::Timeout(_) => format!("Deferred: Connection timed out with {host}."),
        _ => format!("Deferred: Connection reset by {host}."),
    }
}

/// What one SMTP transaction carries besides its recipients.
#[derive(Debug, Clone, Copy)]
pub struct Transfer<'a> {
    /// The envelope sender as sent (`""` for `<>`).
    pub sender: &'a str,
    /// The message bytes, CRLF line ends.
    pub data: &'a [u8],
    /// The logged size, offered as `SIZE=`.
    pub size: u64,
}

enum Attempt {
    /// This host settled the recipients' fate.
    Done(Vec<Outcome>),
    /// This host could not be used; try the next with this status kept.
    TryNext(Status),
    /// No connection could be made: the same, and the queue run remembers it.
    Unreachable(Status),
}

/// The address of an `[a.b.c.d]` host name.
fn literal(name: &str) -> Option<IpAddr> {
    name.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Deliver `rcpts` (one route) to the first usable host of `hosts`.
pub async fn deliver_to_hosts(
    ctx: &DeliveryContext,
    t: &Transfer<'_>,
    hosts: &[MxHost],
    rcpts: &[Recipient],
) -> Vec<Outcome> {
    let mut last: Option<Status> = None;
    let mut unknown_host: Option<String> = None;
    for host in hosts {
        let looked_up = match (literal(&host.name), &ctx.run_cache) {
            (Some(ip), _) => Ok(vec![ip]),
            (None, Some(cache)) => cache.addrs(ctx.resolver.as_ref(), &host.name).await,
            (None, None) => ctx.resolver.a(&host.name).await,
        };
        let ips = match looked_up {
            Ok(ips) => ips,
            Err(DnsError::NotFound | DnsError::NoData) => {
                unknown_host = Some(host.name.clone());
                continue;
            }
            Err(e) => {
                let stat = match e {
                    DnsError::Timeout => "Deferred: Name server timeout".to_string(),
                    _ => format!("Deferred: Name server: {}.: host name lookup failure", host.name),
                };
                last = Some(Status::deferred(stat, Some(format!("{}.", host.name))));
                continue;
            }
        };
        for ip in ips {
            // Found unreachable earlier in this queue run: not tried again.
            if let Some(status) = ctx.run_cache.as_ref().and_then(|c| c.down(&host.name, ip)) {
                last = Some(status);
                continue;
            }
            match session(ctx, t, &host.name, ip, rcpts).await {
                Attempt::Done(outcomes) => return outcomes,
                Attempt::TryNext(status) => last = Some(status),
                Attempt::Unreachable(status) => {
                    if let Some(c) = &ctx.run_cache {
                        c.set_down(&host.name, ip, &status);
                    }
                    last = Some(status)
                }
            }
        }
    }
    let status = match (last, unknown_host) {
        (Some(s), _) => s,
        (None, Some(h)) => {
            Status::failed("5.1.2", format!("Host unknown (Name server: {h}: host not found)"), Some(format!("{h}.")))
        }
        (None, None) => Status::deferred("Deferred: no usable MX host".into(), None),
    };
    vec![Outcome { rcpts: rcpts.to_vec(), status }]
}

/// One SMTP session with one address of one host.
async fn session(ctx: &DeliveryContext, t: &Transfer<'_>, host: &str, ip: IpAddr, rcpts: &[Recipient]) -> Attempt {
    // `name. [ip]`, or `[ip] [ip]` for an address literal (spec §6.3).
    let relay = Some(if host.starts_with('[') { format!("{host} [{ip}]") } else { format!("{host}. [{ip}]") });
    let target = ctx.net.smtp_target(ip);
    let rec = TranscriptRecorder::new(format!("{} -> {host}", ctx.hostname));
    ctx.transcripts.lock().unwrap().push(rec.clone());
    let mut c = match SmtpClient::connect(ctx.net.outbound_source(target), target, ctx.smtp_timeout, rec).await {
        Ok(c) => c,
        Err(e) => return Attempt::Unreachable(Status::deferred(connect_stat(&e, host), relay)),
    };
    let all = |status: Status| Attempt::Done(vec![Outcome { rcpts: rcpts.to_vec(), status }]);
    let io_fail = |e: &ClientError| Status::deferred(connect_stat(e, host), relay.clone());

    // Greeting and EHLO/HELO: any failure here means "try the next host".
    let greeting = match c.read_reply().await {
        Ok(r) => r,
        // A host that takes the connection and never greets is as good as down.
        Err(e) => return Attempt::Unreachable(io_fail(&e)),
    };
    if !greeting.is_positive() {
        c.quit().await;
        return Attempt::TryNext(Status::from_reply(&greeting, relay));
    }
    let ehlo = match c.command(&format!("EHLO {}", ctx.hostname)).await {
        Ok(r) => r,
        Err(e) => return Attempt::TryNext(io_fail(&e)),
    };
    let mut offers_size = false;
    if ehlo.is_positive() {
        offers_size = ehlo
            .lines
            .iter()
            .skip(1)
            .any(|l| l.split_whitespace().next().is_some_and(|k| k.eq_ignore_ascii_case("SIZE")));
    } else if ehlo.is_permanent() {
        // Not an ESMTP server: fall back to HELO (RFC 5321 4.1.1.1).
        match c.command(&format!("HELO {}", ctx.hostname)).await {
            Ok(r) if r.is_positive() => {}
            Ok(r) => {
                c.quit().await;
                return Attempt::TryNext(Status::from_reply(&r, relay));
            }
            Err(e) => return Attempt::TryNext(io_fail(&e)),
        }
    } else {
        c.quit().await;
        return Attempt::TryNext(Status::from_reply(&ehlo, relay));
    }

    let size = if offers_size { format!(" SIZE={}", t.size) } else { String::new() };
    let mail = match c.command(&format!("MAIL From:<{}>{size}", t.sender)).await {
        Ok(r) => r,
        Err(e) => return Attempt::TryNext(io_fail(&e)),
    };
    if mail.is_transient() {
        c.quit().await;
        return Attempt::TryNext(Status::from_reply(&mail, relay));
    }
    if !mail.is_positive() {
        c.quit().await;
        return all(Status::from_reply(&mail, relay));
    }

    // From here on this host decides.
    let mut outcomes = Vec::new();
    let mut accepted = Vec::new();
    for r in rcpts {
        match c.command(&format!("RCPT To:<{}>", r.addr)).await {
            Ok(reply) if reply.is_positive() => accepted.push(r.clone()),
            Ok(reply) => {
                outcomes.push(Outcome { rcpts: vec![r.clone()], status: Status::from_reply(&reply, relay.clone()) })
            }
            Err(e) => {
                let mut rest: Vec<Recipient> = accepted;
                rest.extend(rcpts.iter().skip_while(|x| x.typed != r.typed).cloned());
                outcomes.push(Outcome { rcpts: rest, status: io_fail(&e) });
                return Attempt::Done(outcomes);
            }
        }
    }
    if accepted.is_empty() {
        c.quit().await;
        return Attempt::Done(outcomes);
    }
    let status = match c.command("DATA").await {
        Ok(r) if r.code == 354 => match c.send_message(t.data).await {
            Ok(r) if r.is_positive() => Status::sent(&sent_text(&r), relay.clone()),
            Ok(r) => Status::from_reply(&r, relay.clone()),
            Err(e) => io_fail(&e),
        },
        Ok(r) => Status::from_reply(&r, relay.clone()),
        Err(e) => io_fail(&e),
    };
    outcomes.insert(0, Outcome { rcpts: accepted, status });
    c.quit().await;
    Attempt::Done(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_texts() {
        let r = Reply::new(250, "2.0.0 S0001 Message accepted for delivery");
        assert_eq!(sent_text(&r), "S0001 Message accepted for delivery");
        assert_eq!(sent_text(&Reply::new(250, "Ok: queued as 1234")), "Ok: queued as 1234");
        let r = Reply::new(550, "5.1.1 <x@y>... User unknown");
        assert_eq!(
            Status::from_reply(&r, None),
            Status::failed("5.1.1", "550 5.1.1 <x@y>... User unknown".into(), None)
        );
        let r = Reply::new(451, "4.1.8 Domain of sender address bounce@lamers.org does not resolve");
        let s = Status::from_reply(&r, None);
        assert_eq!(s.dsn, "4.0.0");
        assert_eq!(s.stat, "Deferred: 451 4.1.8 Domain of sender address bounce@lamers.org does not resolve");
        assert_eq!(Status::from_reply(&Reply::new(554, "no"), None).dsn, "5.0.0");
        // An enhanced code of the wrong class is not taken.
        assert_eq!(enhanced_code(&Reply::new(550, "4.1.1 odd")), None);
    }
}
