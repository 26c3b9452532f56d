//! The virtual internet's inhabitants, as a lab runs them: host SMTP specs
//! become sink configurations; `slam`, `mta` and `dns` steps run; what the
//! actors did becomes [`ActorReport`]s and is checked against expectations.

use crate::expect::{check_reply, Checker};
use crate::lab::Lab;
use crate::scenario::{
    BehaviourWord, DnsStepSpec, HostExpect, MtaSpec, RcptRules, RuleSpec, Scenario, SlamSpec, SmtpMapping, SmtpSpec,
    StepExpect,
};
use lab_core::{codec, AddressMap, Transcript};
use mock_hosts::mta::{Fate, RetryPolicy, RetryRecord, RetryingSender};
use mock_hosts::relay_back::{AutoResponder, Forward, MailingList, Outbound, Reaction};
use mock_hosts::slammer::{sized_message, Slam, SlamReport};
use mock_hosts::{
    Action, Greylist, LabTime, Phase, RcptPattern, Rule, Schedule, Script, SinkBehaviour, SinkConfig, Tally,
};
use reports::model::{ActorAttempt, ActorReport, Latency};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Default per-reply timeout of actors.
const ACTOR_TIMEOUT: Duration = Duration::from_secs(10);

/// Default cap on what one host sends on in a lab.
const DEFAULT_MAX_SENT: usize = 50;

/// How many slam transcripts a lab report keeps (the slammer keeps all).
const REPORT_TRANSCRIPTS: usize = 20;

/// Lab time past an `mta` step's give-up within which its driver may jump
/// (the first attempt starts a moment after the step).
const DRIVE_SLACK: chrono::Duration = chrono::Duration::minutes(1);

/// Wall time after which an `mta` step's driver stops jumping; the runner's
/// step timeout (the lab's budget) is always shorter.
const DRIVE_BOUND: Duration = Duration::from_secs(3600);

/// The postgrey default greylist delay.
const DEFAULT_GREYLIST_DELAY: Duration = Duration::from_secs(300);

fn rule(spec: &RuleSpec) -> Rule {
    // Validated when the scenario was loaded.
    let mut r = Rule::new(Action::parse(&spec.reply).unwrap_or(Action::Accept));
    if let Some(d) = spec.delay {
        r = r.delayed(d.0);
    }
    if let Some(n) = spec.times {
        r = r.times(n);
    }
    r
}

/// The sink configuration for host `name`.
pub fn sink_config(
    name: &str,
    smtp: &SmtpSpec,
    time: &LabTime,
    addresses: &AddressMap,
    relay: SocketAddr,
    source: IpAddr,
) -> SinkConfig {
    let mut config = SinkConfig::accept(name);
    config.epoch = Some(time.epoch());
    config.addresses = addresses.clone();
    let Some(m) = smtp.mapping() else { return config };
    config.behaviour = behaviour(m);
    if let Some(w) = &m.down {
        config.schedule = Schedule { down: w.0.iter().map(|(a, b)| (a.0, b.0)).collect() };
    }
    let outbound = Outbound {
        target: relay,
        source: Some(source),
        timeout: ACTOR_TIMEOUT,
        max_messages: m.max_sent.unwrap_or(DEFAULT_MAX_SENT),
    };
    let add_received = |v: Option<bool>| v.unwrap_or(true);
    let reaction = if let Some(f) = &m.forward {
        Some(Reaction::Forward(Forward {
            to: f.to.clone(),
            add_received: add_received(f.add_received),
            strip_received: f.strip_received,
        }))
    } else if let Some(l) = &m.list {
        let sender = l.sender.clone().unwrap_or_else(|| format!("owner-{}", l.address));
        Some(Reaction::List(MailingList {
            address: l.address.clone(),
            members: l.members.clone(),
            sender: if sender == "<>" { String::new() } else { sender },
            precedence: l.precedence.clone(),
            add_received: add_received(l.add_received),
        }))
    } else {
        m.autoresponder.as_ref().map(|a| {
            let d = AutoResponder::default();
            Reaction::AutoReply(AutoResponder {
                obey_rules: a.obey_rules,
                sender: a.sender.clone().map(|s| if s == "<>" { String::new() } else { s }),
                subject: a.subject.clone().unwrap_or(d.subject),
                quote_original: a.quote_original,
            })
        })
    };
    config.reaction = reaction.map(|r| (r, outbound));
    config
}

fn behaviour(m: &SmtpMapping) -> SinkBehaviour {
    if m.behaviour == Some(BehaviourWord::Blackhole) {
        return SinkBehaviour::blackhole();
    }
    let mut script = Script::default();
    let phases = [
        (Phase::Connect, &m.connect),
        (Phase::Banner, &m.banner),
        (Phase::Helo, &m.helo),
        (Phase::Mail, &m.mail),
        (Phase::Data, &m.data),
        (Phase::DataEnd, &m.data_end),
        (Phase::Quit, &m.quit),
    ];
    for (phase, spec) in phases {
        if let Some(spec) = spec {
            script.phases.push((phase, rule(spec)));
        }
    }
    match &m.rcpt {
        Some(RcptRules::All(spec)) => script.phases.push((Phase::Rcpt, rule(spec))),
        Some(RcptRules::By(rules)) => {
            for (who, spec) in rules {
                if let Ok(p) = RcptPattern::parse(who) {
                    script.recipients.push((p, rule(spec)));
                }
            }
        }
        None => {}
    }
    for (phase, d) in &m.delay {
        if let Some(p) = Phase::parse(phase) {
            script.delays.push((p, d.0));
        }
    }
    let greylist = m.greylist.as_ref().map(|g| {
        Greylist::new(g.delay.map(|d| d.0).unwrap_or(DEFAULT_GREYLIST_DELAY))
            .by_prefix(g.prefix.unwrap_or(32))
            .with_code(g.code.unwrap_or(451))
            .with_auto_whitelist(g.auto_whitelist)
            .with_whitelisted_senders(g.whitelist.iter().filter_map(|w| RcptPattern::parse(w).ok()).collect())
    });
    SinkBehaviour { script, greylist, address_faults: m.address_faults.unwrap_or(true) }
}

fn outcomes(t: &Tally) -> BTreeMap<String, u64> {
    t.pairs().into_iter().filter(|(_, n)| *n > 0).map(|(w, n)| (w.to_string(), n)).collect()
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

/// What a step's actor left behind.
pub struct StepActor {
    /// The report.
    pub report: ActorReport,
    /// Transcripts to put in the lab report.
    pub transcripts: Vec<Transcript>,
}

/// Run a `slam:` step and check its counts.
pub async fn run_slam(
    lab: &Lab,
    i: usize,
    spec: &SlamSpec,
    exp: Option<&StepExpect>,
    budget: Duration,
    checker: &mut Checker,
) -> StepActor {
    let farm = &lab.farms[&spec.from];
    let sources: Vec<IpAddr> =
        if spec.distinct_sources { farm.iter().map(|h| h.real_ip).collect() } else { vec![farm[0].real_ip] };
    let target_name = spec.to.as_deref().unwrap_or("relay");
    let rcpt = spec.rcpt_to.first().cloned().unwrap_or_default();
    let slam = Slam {
        target: lab.target(spec.to.as_deref()),
        sources,
        connections: spec.connections,
        messages: spec.messages,
        per_session: spec.per_session,
        rate: spec.rate.map(|r| r.0),
        pipelining: spec.pipelining,
        helo: spec.helo.clone().unwrap_or_else(|| spec.from.clone()),
        mail_from: spec.mail_from.clone(),
        rcpt_to: spec.rcpt_to.clone(),
        message: sized_message(&spec.mail_from, &rcpt, "relaylab slam", spec.size.map_or(1024, |s| s.0)),
        timeout: spec.timeout.map_or(ACTOR_TIMEOUT, |t| t.0),
        deadline: budget,
        label: format!("steps[{i}]: {} -> {target_name}", spec.from),
        time: lab.time.clone(),
    };
    let r = slam.run().await;
    let name = format!("steps[{i}]: slam from {}", spec.from);
    if let Some(exp) = exp {
        check_counts(exp, &name, &r, checker);
    }
    StepActor { report: slam_report(name, &r), transcripts: sample(&r.transcripts) }
}

fn slam_report(name: String, r: &SlamReport) -> ActorReport {
    let mut out = outcomes(&r.messages);
    if r.unsent > 0 {
        out.insert("unsent".into(), r.unsent);
    }
    let latency = r.percentile(50.0).map(|p50| Latency {
        p50: ms(p50),
        p90: ms(r.percentile(90.0).unwrap_or_default()),
        p99: ms(r.percentile(99.0).unwrap_or_default()),
        max: ms(r.percentile(100.0).unwrap_or_default()),
    });
    let mut notes = vec![format!(
        "{} messages in {} sessions, {:.0} accepted/s",
        r.messages.total() + r.unsent,
        r.sessions.total(),
        r.accepted_per_sec()
    )];
    if let Some(p) = &r.first_problem {
        notes.push(format!("first problem: {p}"));
    }
    ActorReport {
        name,
        kind: "slam".into(),
        outcomes: out,
        sessions: r.sessions.total(),
        duration_ms: r.elapsed.as_millis() as u64,
        messages_per_sec: Some((r.accepted_per_sec() * 10.0).round() / 10.0),
        latency_ms: latency,
        attempts: Vec::new(),
        notes,
    }
}

/// The transcripts a report keeps of a slam: the first session, then every
/// session that did not go through, up to a bound.
fn sample(ts: &[Transcript]) -> Vec<Transcript> {
    let failed = |t: &&Transcript| {
        t.lines.iter().any(|l| {
            l.dir == lab_core::Direction::Server
                && l.text.len() >= 3
                && (l.text.starts_with('4') || l.text.starts_with('5'))
        }) || t
            .lines
            .iter()
            .any(|l| l.dir == lab_core::Direction::Note && (l.text.contains("failed") || l.text.contains("no reply")))
    };
    let mut out: Vec<Transcript> = ts.iter().take(1).cloned().collect();
    out.extend(ts.iter().skip(1).filter(failed).take(REPORT_TRANSCRIPTS - 1).cloned());
    out
}

fn check_counts(exp: &StepExpect, what: &str, r: &SlamReport, checker: &mut Checker) {
    for (word, want) in exp.counts() {
        let got = if word == "unsent" {
            r.unsent
        } else {
            r.messages.pairs().into_iter().find(|(w, _)| *w == word).map_or(0, |(_, n)| n)
        };
        if got != want {
            let mut context = format!("all outcomes: {:?}, unsent: {}", r.messages.pairs(), r.unsent);
            if let Some(p) = &r.first_problem {
                context.push_str(&format!("\nfirst problem: {p}"));
            }
            // One transcript that shows it: the first session that did not go through, else the first.
            let shown = sample(&r.transcripts);
            if let Some(t) = shown.get(1).or(shown.first()) {
                context.push('\n');
                context.push_str(&t.render());
            }
            checker.fail(format!("{what}: {word}"), want.to_string(), got.to_string(), Some(context));
        }
    }
}

/// The message an `mta` or `send` step sends when it gives none.
pub fn default_message(from: &str, to: &[String]) -> String {
    format!("From: {from}\nTo: {}\nSubject: relaylab test\n\nA test message from relaylab.\n", to.join(", "))
}

/// Run an `mta:` step and check its expectations.
pub async fn run_mta(
    lab: &Lab,
    i: usize,
    spec: &MtaSpec,
    exp: Option<&StepExpect>,
    checker: &mut Checker,
) -> StepActor {
    let farm = &lab.farms[&spec.from];
    let sources: Vec<IpAddr> = if spec.farm { farm.iter().map(|h| h.real_ip).collect() } else { vec![farm[0].real_ip] };
    let target_name = spec.to.as_deref().unwrap_or("relay");
    let data = spec.data.clone().unwrap_or_else(|| default_message(&spec.mail_from, &spec.rcpt_to));
    let sender = RetryingSender {
        target: lab.target(spec.to.as_deref()),
        sources,
        helo: spec.helo.clone().unwrap_or_else(|| spec.from.clone()),
        mail_from: spec.mail_from.clone(),
        vary_sender: spec.vary_sender,
        rcpt_to: spec.rcpt_to.clone(),
        data: codec::to_crlf(&data),
        policy: RetryPolicy { intervals: spec.retry.iter().map(|d| d.0).collect(), give_up_after: spec.give_up() },
        timeout: spec.timeout.map_or(ACTOR_TIMEOUT, |t| t.0),
        label: format!("steps[{i}]: {} -> {target_name}", spec.from),
        time: lab.time.clone(),
    };
    let started = std::time::Instant::now();
    // On the virtual clock lab time jumps to each retry (and to whatever else
    // is due before it) once the sender is asleep and the lab quiet, so an
    // RFC 5321 schedule of hours and days passes in milliseconds. Every
    // retry timer lies within `give_up_after` of the first attempt; the
    // runner's step timeout (the lab's budget) bounds the whole step.
    let give_up = chrono::Duration::from_std(sender.policy.give_up_after).unwrap_or(chrono::Duration::MAX);
    let limit = lab
        .time
        .now()
        .checked_add_signed(give_up)
        .and_then(|t| t.checked_add_signed(DRIVE_SLACK))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    let activity = lab_core::Activity::default();
    let (rec, stopped) =
        crate::clock_driver::drive(lab, &activity, sender.run_tracked(&activity), limit, started + DRIVE_BOUND).await;
    let name = format!("steps[{i}]: mta from {}", spec.from);
    if let Some(why) = stopped {
        checker.fail(
            format!("{name}: lab time"),
            "lab time to jump to each retry".into(),
            why,
            Some(lab.relay.log_lines().join("\n")),
        );
    }
    let transcripts: Vec<Transcript> = rec.attempts.iter().map(|a| a.transcript.clone()).collect();
    if let Some(exp) = exp {
        check_mta(exp, &rec, &name, &transcripts, checker);
    }
    let addresses: BTreeMap<IpAddr, IpAddr> = lab.farms[&spec.from].iter().map(|h| (h.real_ip, h.lab_ip)).collect();
    let mut tally = Tally::default();
    for a in &rec.attempts {
        tally.add(a.outcome);
    }
    let report = ActorReport {
        name,
        kind: "mta".into(),
        outcomes: outcomes(&tally),
        sessions: rec.attempts.len() as u64,
        duration_ms: started.elapsed().as_millis() as u64,
        messages_per_sec: None,
        latency_ms: None,
        attempts: rec
            .attempts
            .iter()
            .map(|a| ActorAttempt {
                at_ms: a.at.as_millis() as u64,
                from: a.source.map(|s| addresses.get(&s).copied().unwrap_or(s).to_string()),
                mail_from: a.mail_from.clone(),
                rcpt_to: spec.rcpt_to.clone(),
                outcome: a.outcome.word().into(),
                reply: a.reply.as_ref().map(|r| r.first_line()).or(a.error.clone()),
            })
            .collect(),
        notes: vec![format!("{} after {} attempt(s)", rec.fate.word(), rec.attempts.len())],
    };
    StepActor { report, transcripts }
}

fn check_mta(exp: &StepExpect, rec: &RetryRecord, what: &str, transcripts: &[Transcript], checker: &mut Checker) {
    let all = || transcripts.iter().map(Transcript::render).collect::<Vec<_>>().join("");
    let summary = || {
        rec.attempts
            .iter()
            .map(|a| {
                format!(
                    "attempt {} at +{}ms: {} ({})",
                    a.number,
                    a.at.as_millis(),
                    a.outcome.word(),
                    a.reply.as_ref().map(|r| r.first_line()).or(a.error.clone()).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    if let Some(n) = exp.attempts {
        if rec.attempts.len() != n {
            checker.fail(format!("{what}: attempts"), n.to_string(), rec.attempts.len().to_string(), Some(summary()));
        }
    }
    if let Some(f) = &exp.fate {
        if rec.fate.word() != f {
            checker.fail(format!("{what}: fate"), f.clone(), rec.fate.word().into(), Some(summary()));
        }
    }
    let mut tally = Tally::default();
    let delivered = u64::from(rec.fate == Fate::Delivered);
    for a in &rec.attempts {
        tally.add(a.outcome);
    }
    for (word, want) in exp.counts() {
        let got = match word {
            "unsent" => 0,
            "accepted" => delivered,
            w => tally.pairs().into_iter().find(|(x, _)| *x == w).map_or(0, |(_, n)| n),
        };
        if got != want {
            checker.fail(format!("{what}: {word} (attempts)"), want.to_string(), got.to_string(), Some(summary()));
        }
    }
    for (k, m) in exp.replies.iter().enumerate() {
        let w = format!("{what}: attempt {} reply", k + 1);
        match rec.attempts.get(k) {
            Some(a) => check_reply(m, a.reply.as_ref(), a.error.as_deref(), w, &a.transcript, checker),
            None => checker.fail(
                w,
                m.to_string(),
                format!("there were only {} attempt(s)", rec.attempts.len()),
                Some(summary()),
            ),
        }
    }
    for (k, min) in exp.spacing.iter().enumerate() {
        match (rec.attempts.get(k), rec.attempts.get(k + 1)) {
            (Some(a), Some(b)) => {
                let gap = b.at.saturating_sub(a.at);
                if gap < min.0 {
                    checker.fail(
                        format!("{what}: spacing[{k}] (attempt {} after attempt {})", k + 2, k + 1),
                        format!("at least {:?}", min.0),
                        format!("{gap:?}"),
                        Some(summary()),
                    );
                }
            }
            _ => checker.fail(
                format!("{what}: spacing[{k}]"),
                format!("an attempt {} at least {:?} after attempt {}", k + 2, min.0, k + 1),
                format!("only {} attempt(s)", rec.attempts.len()),
                Some(all()),
            ),
        }
    }
}

/// Apply a `dns:` step.
pub async fn run_dns(lab: &Lab, i: usize, spec: &DnsStepSpec, checker: &mut Checker) {
    let what = format!("steps[{i}] (dns)");
    if spec.clear_faults {
        lab.dns.clear_faults();
    }
    for (name, node) in &spec.replace {
        // One replace per type: the first value replaces, the rest join it.
        let mut replaced = std::collections::HashSet::new();
        for (rtype, value) in node.records() {
            let Ok(r) = mock_dns::Record::parse(name, rtype, value) else { continue };
            let res = if replaced.insert(rtype) { lab.dns.replace(r).await } else { lab.dns.upsert(r).await };
            if let Err(e) = res {
                checker.fail(what.clone(), format!("replace {rtype} {name}"), e.to_string(), None);
            }
        }
    }
    for (name, node) in &spec.add {
        for (rtype, value) in node.records() {
            let Ok(r) = mock_dns::Record::parse(name, rtype, value) else { continue };
            if let Err(e) = lab.dns.upsert(r).await {
                checker.fail(what.clone(), format!("add {rtype} {name} {value}"), e.to_string(), None);
            }
        }
    }
    for r in &spec.remove {
        let mut parts = r.split_whitespace();
        let (t, n) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        match lab.dns.remove(n, t).await {
            Ok(true) => {}
            Ok(false) => checker.fail(what.clone(), format!("remove {r}"), "there was no such record".into(), None),
            Err(e) => checker.fail(what.clone(), format!("remove {r}"), e.to_string(), None),
        }
    }
    for f in &spec.faults {
        if let Ok(f) = f.to_fault() {
            lab.dns.add_fault(f);
        }
    }
}

/// Reports for hosts that send on (forward, list, autoresponder) or greylist.
pub fn host_reports(lab: &Lab, s: &Scenario) -> (Vec<ActorReport>, Vec<Transcript>) {
    let mut reports = Vec::new();
    let mut transcripts = Vec::new();
    for (name, sink) in &lab.sinks {
        let smtp = s.hosts.get(name).and_then(|h| h.smtp.as_ref());
        if let Some(log) = sink.reactor_log() {
            let mut tally = Tally::default();
            for sent in &log.sent {
                tally.add(sent.outcome);
            }
            let mut notes = Vec::new();
            if log.capped > 0 {
                notes.push(format!(
                    "loop cut: {} more message(s) were not sent once the cap of {} was reached",
                    log.capped,
                    log.sent.len()
                ));
            }
            notes.extend(log.silent.iter().cloned());
            let attempts = log
                .sent
                .iter()
                .map(|x| ActorAttempt {
                    at_ms: x.at_ms,
                    from: Some(lab.hosts[name].lab_ip.to_string()),
                    mail_from: x.mail_from.clone(),
                    rcpt_to: x.rcpt_to.clone(),
                    outcome: x.outcome.word().into(),
                    reply: x.reply.clone().or(x.error.clone()),
                })
                .collect();
            reports.push(ActorReport {
                name: format!("host {name}"),
                kind: smtp.and_then(SmtpSpec::reaction_kind).unwrap_or("forward").into(),
                outcomes: outcomes(&tally),
                sessions: log.sent.len() as u64,
                attempts,
                notes,
                ..ActorReport::default()
            });
            transcripts.extend(log.transcripts);
        }
        if let Some(g) = sink.greylist_stats() {
            let mut out = BTreeMap::new();
            out.insert("tempfailed".to_string(), g.deferred);
            out.insert("accepted".to_string(), g.passed);
            reports.push(ActorReport {
                name: format!("host {name}"),
                kind: "greylist".into(),
                outcomes: out,
                sessions: sink.session_count() as u64,
                notes: vec![format!("{} attempt(s) greylisted, {} passed", g.deferred, g.passed)],
                ..ActorReport::default()
            });
        }
        let events = sink.events();
        if !events.is_empty() {
            reports.push(ActorReport {
                name: format!("host {name}"),
                kind: "schedule".into(),
                sessions: sink.session_count() as u64,
                notes: events,
                ..ActorReport::default()
            });
        }
    }
    (reports, transcripts)
}

/// Check `expect.hosts`.
pub fn check_hosts(exp: &BTreeMap<String, HostExpect>, lab: &Lab, checker: &mut Checker) {
    for (name, h) in exp {
        let what = |k: &str| format!("expect.hosts.{name}.{k}");
        let Some(sink) = lab.sinks.get(name) else {
            if h.received.is_some_and(|n| n > 0) || h.sessions.is_some_and(|n| n > 0) {
                checker.fail(
                    what("received"),
                    "a host that listens".into(),
                    "nothing listens on this host".into(),
                    None,
                );
            }
            continue;
        };
        let sessions = || sink.sessions().iter().map(Transcript::render).collect::<Vec<_>>().join("");
        if let Some(n) = h.received {
            let got = sink.message_count();
            if got != n {
                checker.fail(what("received"), n.to_string(), got.to_string(), Some(sessions()));
            }
        }
        if let Some(n) = h.sessions {
            let got = sink.session_count();
            if got != n {
                checker.fail(what("sessions"), n.to_string(), got.to_string(), Some(sessions()));
            }
        }
        if let Some(g) = sink.greylist_stats() {
            if let Some(n) = h.greylisted {
                if g.deferred != n {
                    checker.fail(what("greylisted"), n.to_string(), g.deferred.to_string(), Some(sessions()));
                }
            }
            if let Some(n) = h.greylist_passed {
                if g.passed != n {
                    checker.fail(what("greylist_passed"), n.to_string(), g.passed.to_string(), Some(sessions()));
                }
            }
        }
        let Some(log) = sink.reactor_log() else { continue };
        let sent_summary = || {
            log.sent
                .iter()
                .map(|x| {
                    format!(
                        "+{}ms <{}> -> {:?} hops={} {} ({})",
                        x.at_ms,
                        x.mail_from,
                        x.rcpt_to,
                        x.hops,
                        x.outcome.word(),
                        x.reply.clone().or(x.error.clone()).unwrap_or_default()
                    )
                })
                .chain(log.silent.iter().map(|s| format!("silent: {s}")))
                .chain((log.capped > 0).then(|| format!("not sent (cap reached): {}", log.capped)))
                .collect::<Vec<_>>()
                .join("\n")
        };
        if let Some(n) = h.sent {
            if log.sent.len() != n {
                checker.fail(what("sent"), n.to_string(), log.sent.len().to_string(), Some(sent_summary()));
            }
        }
        if !h.sent_outcomes.is_empty() {
            let mut tally = Tally::default();
            for x in &log.sent {
                tally.add(x.outcome);
            }
            for (word, want) in &h.sent_outcomes {
                let got = tally.pairs().into_iter().find(|(w, _)| w == word).map_or(0, |(_, n)| n);
                if got != *want {
                    checker.fail(
                        what(&format!("sent_outcomes.{word}")),
                        want.to_string(),
                        got.to_string(),
                        Some(sent_summary()),
                    );
                }
            }
        }
        let mut from = 0;
        for (k, m) in h.sent_replies.iter().enumerate() {
            let hit = log.sent[from.min(log.sent.len())..]
                .iter()
                .position(|x| x.reply.as_deref().and_then(parse_reply_line).is_some_and(|r| m.matches(&r)));
            match hit {
                Some(p) => from += p + 1,
                None => checker.fail(
                    what(&format!("sent_replies[{k}]")),
                    m.to_string(),
                    "no later send got a matching reply".into(),
                    Some(sent_summary()),
                ),
            }
        }
        if let Some(n) = h.silent {
            if log.silent.len() != n {
                checker.fail(what("silent"), n.to_string(), log.silent.len().to_string(), Some(sent_summary()));
            }
        }
        if let Some(cut) = h.loop_cut {
            if (log.capped > 0) != cut {
                let actual = if log.capped > 0 {
                    format!("the cap cut it: {} message(s) not sent", log.capped)
                } else {
                    "the cap was never reached".into()
                };
                checker.fail(what("loop_cut"), cut.to_string(), actual, Some(sent_summary()));
            }
        }
    }
}

fn parse_reply_line(line: &str) -> Option<lab_core::Reply> {
    let (code, _, text) = lab_core::Reply::parse_line(line)?;
    Some(lab_core::Reply::new(code, text))
}
