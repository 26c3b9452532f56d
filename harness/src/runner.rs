//! Running one lab: bring it up, play the steps, let the relay settle, check
//! the expectations, bring it down. The runner never prints; it returns a
//! [`LabReport`] and reports progress through a callback.

use crate::actors;
use crate::expect::{self, Checker, Compare};
use crate::lab::{Lab, RelayBackend};
use crate::scenario::{KnownDifference, LoadedScenario, RelayName, Scenario, ScriptSpec, SendSpec, Step};
use lab_core::{codec, SmtpClient, TranscriptRecorder};
use relay_under_test::netns::LabNamespace;
use reports::model::ActorReport;
use reports::{DifferenceKind, LabReport, Observations, Verdict};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings for a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Budget for labs that do not set one.
    pub default_budget: Duration,
    /// How many labs run at once.
    pub jobs: usize,
    /// Write the golden files of golden labs instead of comparing (`run --update`).
    pub update_golden: bool,
    /// How strictly to compare (`--compare`); by default exact on the
    /// builtin relay, behaviour on real MTAs (see [`Compare`]).
    pub compare: Option<Compare>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { default_budget: Duration::from_secs(20), jobs: 4, update_golden: false, compare: None }
    }
}

/// How long one SMTP read may take before the client gives up.
const SMTP_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Extra time a real MTA gets to come up (render, m4, start), on top of the lab's budget.
const REAL_START_ALLOWANCE: Duration = Duration::from_secs(60);

/// Run one lab to its verdict, against the builtin relay.
pub async fn run_lab(loaded: &LoadedScenario, opts: &RunOptions) -> LabReport {
    run_lab_on(loaded, opts, RelayName::Builtin).await
}

/// Why `relay` cannot run `s` at all (the scenario's `relays:` list, queue
/// steps or lab time the harness drives only on the builtin relay, profile
/// keys the flavour does not render), or `None`.
pub fn not_applicable(s: &Scenario, relay: RelayName) -> Option<String> {
    if let Some(list) = &s.relays {
        if !list.contains(&relay) {
            let names: Vec<&str> = list.iter().map(|r| r.as_str()).collect();
            return Some(format!("scenario declares relays: {}", names.join(", ")));
        }
    }
    if !relay.is_real() {
        return None;
    }
    let queue_steps = s.steps.iter().any(|st| st.flush.is_some() || st.queue_run.is_some() || st.mailq.is_some());
    if queue_steps || s.expect.queue.is_some() {
        return Some(format!(
            "uses queue steps or expectations (flush, queue_run, mailq, expect.queue) the harness drives only on the builtin relay, not {relay}"
        ));
    }
    if s.run_until.is_some() || s.steps.iter().any(|st| st.advance.is_some()) {
        return Some(format!("runs lab time forward (advance, run_until); {relay} runs on the wall clock"));
    }
    // A user's whole native file configures the MTA; the profile does not.
    let whole = s.native.get(&relay).is_some_and(|n| n.is_whole());
    let keys = if whole { Vec::new() } else { unrendered_profile_keys(&s.relay, relay) };
    if !keys.is_empty() {
        return Some(format!("profile keys {relay} cannot render: {}", keys.join(", ")));
    }
    None
}

/// The profile keys of `profile` set to something other than their default
/// that `relay`'s rendering does not carry (see the flavour modules' tables).
fn unrendered_profile_keys(profile: &relay_under_test::RelayProfile, relay: RelayName) -> Vec<String> {
    // Each flavour lists the keys it renders (and the values it cannot carry):
    // relay_under_test::flavours::unrendered_key.
    let default = relay_under_test::RelayProfile::new(profile.hostname.clone());
    let (Ok(serde_yaml::Value::Mapping(set)), Ok(serde_yaml::Value::Mapping(def))) =
        (serde_yaml::to_value(profile), serde_yaml::to_value(&default))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in &set {
        let Some(key) = k.as_str() else { continue };
        if def.get(k) == Some(v) {
            continue;
        }
        out.extend(relay_under_test::flavours::unrendered_key(relay.as_str(), profile, key));
    }
    out
}

/// Why `relay` cannot run on this machine (no root, MTA not installed), or `None`.
pub fn prerequisites(relay: RelayName) -> Option<String> {
    if !relay.is_real() {
        return None;
    }
    if !relay_under_test::netns::is_root() {
        return Some("netns backend needs root".into());
    }
    if !relay_under_test::flavours::installed(relay.as_str()) {
        return Some(format!("{relay} not installed: run relay-under-test/mta/install.sh"));
    }
    None
}

fn skipped(loaded: &LoadedScenario, relay: RelayName, why: String) -> LabReport {
    let s = &loaded.scenario;
    let mut report = LabReport::new(s.name.clone(), loaded.path.display().to_string());
    report.about = s.about.clone();
    report.tags = s.tags.clone();
    report.relay = relay.as_str().to_string();
    report.verdict = Verdict::Skipped;
    report.error = Some(why);
    report
}

/// Run one lab to its verdict against `relay`. A relay that does not apply
/// ([`not_applicable`], reason prefixed `not applicable: `) or cannot run
/// here ([`prerequisites`]) gives a `skipped` report with the reason, never a pass.
/// A real relay's lab runs on a runtime whose threads joined a fresh lab
/// namespace, so every socket of the lab (DNS, hosts, actors, clients) is
/// made inside it.
pub async fn run_lab_on(loaded: &LoadedScenario, opts: &RunOptions, relay: RelayName) -> LabReport {
    if let Some(why) = not_applicable(&loaded.scenario, relay) {
        return skipped(loaded, relay, format!("{}{why}", reports::matrix::NOT_APPLICABLE_PREFIX));
    }
    if let Some(why) = prerequisites(relay) {
        return skipped(loaded, relay, why);
    }
    if !relay.is_real() {
        return run_lab_in(loaded, opts, RelayBackend::Builtin).await;
    }
    let ns = match LabNamespace::create() {
        Ok(ns) => ns,
        Err(e) => {
            let mut r = skipped(loaded, relay, String::new());
            r.verdict = Verdict::Error;
            r.error = Some(format!("could not create the lab namespace: {e}"));
            return r;
        }
    };
    let (inner_loaded, inner_opts, inner_ns) = (loaded.clone(), opts.clone(), ns.clone());
    let entered = ns
        .enter(move || {
            // Built on a thread inside the namespace: its worker threads are too.
            let report = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => {
                    let r = rt.block_on(run_lab_in(&inner_loaded, &inner_opts, RelayBackend::Real(relay, inner_ns)));
                    rt.shutdown_timeout(Duration::from_secs(2));
                    Ok(r)
                }
                Err(e) => Err(e.to_string()),
            };
            std::future::ready(report)
        })
        .await;
    ns.delete();
    match entered {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let mut r = skipped(loaded, relay, String::new());
            r.verdict = Verdict::Error;
            r.error = Some(format!("could not start a runtime in the lab namespace: {e}"));
            r
        }
        Err(e) => {
            let mut r = skipped(loaded, relay, String::new());
            r.verdict = Verdict::Error;
            r.error = Some(format!("could not enter the lab namespace: {e}"));
            r
        }
    }
}

async fn run_lab_in(loaded: &LoadedScenario, opts: &RunOptions, backend: RelayBackend) -> LabReport {
    let s = &loaded.scenario;
    let mut started = Instant::now();
    let mut report = LabReport::new(s.name.clone(), loaded.path.display().to_string());
    report.about = s.about.clone();
    report.tags = s.tags.clone();
    let budget = s.budget.map(|b| b.0).unwrap_or(opts.default_budget);
    let (real, backend_name) = match &backend {
        RelayBackend::Real(name, _) => (true, *name),
        RelayBackend::Builtin => (false, RelayName::Builtin),
    };
    // A real MTA runs on the wall clock, and gets time to come up besides the
    // lab's budget; lab time starts once it is up.
    let latch = real.then(lab_core::StartLatchedClock::new);
    let (clock, start_limit): (lab_core::SharedClock, _) = match &latch {
        Some(l) => (l.clone(), budget + REAL_START_ALLOWANCE),
        None => (crate::clock_driver::clock_for(s.clock), budget),
    };
    let first = Instant::now();

    let lab = match tokio::time::timeout(start_limit, Lab::start_on(s, clock, backend)).await {
        Ok(Ok(lab)) => lab,
        Ok(Err(e)) => {
            report.verdict = Verdict::Error;
            report.error = Some(format!("could not start the lab: {e}"));
            report.duration_ms = started.elapsed().as_millis() as u64;
            return report;
        }
        Err(_) => {
            report.verdict = Verdict::Failed;
            report.error = Some(format!("the lab did not start within its budget of {start_limit:?}"));
            report.duration_ms = started.elapsed().as_millis() as u64;
            return report;
        }
    };
    if let Some(l) = &latch {
        l.release();
        started = Instant::now();
    }
    let deadline = started + budget;
    report.relay = lab.relay.flavour().to_string();

    let compare = opts.compare.unwrap_or(if real { Compare::Behaviour } else { Compare::Exact });
    let mut checker = Checker::new(compare, lab.relay.flavour());
    let mut sessions = Vec::new();
    let mut actor_reports = Vec::new();
    let read_timeout = SMTP_READ_TIMEOUT.min(budget);
    for (i, step) in s.steps.iter().enumerate() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let outcome =
            tokio::time::timeout(remaining, run_step(&lab, i, step, read_timeout, remaining, &mut checker)).await;
        match outcome {
            Ok(out) => {
                sessions.extend(out.transcripts);
                actor_reports.extend(out.actor);
            }
            Err(_) => {
                checker.fail(
                    format!("steps[{i}]"),
                    format!("the lab to finish within its budget of {budget:?}"),
                    "the budget ran out during this step (the relay hung or was too slow)".to_string(),
                    Some(lab.relay.log_lines().join("\n")),
                );
                break;
            }
        }
    }

    // `run_until`: let lab time run on (queue runs, retries, DSN deadlines).
    if let Some(until) = s.run_until {
        let target = lab.time.epoch() + chrono::Duration::from_std(until.0).unwrap_or(chrono::Duration::MAX);
        if let Err(e) = crate::clock_driver::advance_to(&lab, target, deadline).await {
            checker.fail(
                "run_until".into(),
                format!("lab time to reach {:?} within the budget of {budget:?}", until.0),
                e,
                Some(lab.relay.log_lines().join("\n")),
            );
        }
    }

    // Let the relay (and every host that sends on) finish before looking at the results.
    let remaining = deadline.saturating_duration_since(Instant::now());
    if !lab.settle(remaining).await {
        let outbound: Vec<String> = lab.relay.outbound_sessions().iter().map(|t| t.render()).collect();
        checker.fail(
            "relay settles".into(),
            format!("every delivery attempt (and every forwarder's send) to finish within the budget of {budget:?}"),
            "deliveries were still running when the budget ran out".into(),
            Some(outbound.join("\n")),
        );
    }

    let observations = observe(&lab, s, sessions, actor_reports);
    expect::check_final(&s.expect, &lab, &observations, &mut checker);
    if let Some(q) = &s.expect.queue {
        crate::queue_checks::check_final(q, observations.queue_history.as_ref(), &lab, &mut checker);
    }
    actors::check_hosts(&s.expect.hosts, &lab, &mut checker);
    lab.stop().await;

    let (failures, wording, not_compared) = checker.finish();
    (report.failures, report.differences) = explain_differences(failures, s.differences.get(&backend_name));
    (report.wording, report.not_compared) = (wording, not_compared);
    // Golden output only on the builtin relay: real MTAs word things their own way.
    if !real {
        match crate::golden::check(loaded, &observations, opts.update_golden) {
            crate::golden::Outcome::Failed(f) => report.failures.push(f),
            crate::golden::Outcome::Written(p) => report.golden_written = Some(p.display().to_string()),
            crate::golden::Outcome::Off | crate::golden::Outcome::Same => {}
        }
    }
    let known_bug = report.differences.iter().any(|d| d.kind == DifferenceKind::Bug);
    report.verdict = if report.failures.is_empty() && !known_bug { Verdict::Passed } else { Verdict::Failed };
    report.observations = observations;
    report.duration_ms = first.elapsed().as_millis() as u64;
    report
}

/// Set apart the misses the scenario's `differences:` explain for this relay
/// (matched by the start of the miss's name); the rest stay failures.
fn explain_differences(
    failures: Vec<reports::Failure>,
    known: Option<&Vec<KnownDifference>>,
) -> (Vec<reports::Failure>, Vec<reports::Difference>) {
    let Some(known) = known else { return (failures, Vec::new()) };
    let mut unexplained = Vec::new();
    let mut explained = Vec::new();
    for f in failures {
        match known.iter().find(|k| f.what.starts_with(k.expect.as_str())) {
            Some(k) => explained.push(reports::Difference { failure: f, kind: k.kind, why: k.why.clone() }),
            None => unexplained.push(f),
        }
    }
    (unexplained, explained)
}

/// Run a set of labs against the builtin relay, at most `opts.jobs` at a
/// time; `on_done` hears about each as it finishes.
pub async fn run_all(labs: Vec<LoadedScenario>, opts: &RunOptions, on_done: impl FnMut(&LabReport)) -> Vec<LabReport> {
    run_all_on(labs, opts, RelayName::Builtin, on_done).await
}

/// Run a set of labs against `relay`, at most `opts.jobs` at a time;
/// `on_done` hears about each as it finishes. Reports come back in the order of `labs`.
pub async fn run_all_on(
    labs: Vec<LoadedScenario>,
    opts: &RunOptions,
    relay: RelayName,
    mut on_done: impl FnMut(&LabReport),
) -> Vec<LabReport> {
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (idx, lab) in labs.into_iter().enumerate() {
        let sem = sem.clone();
        let opts = opts.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (idx, run_lab_on(&lab, &opts, relay).await)
        });
    }
    let mut out = Vec::new();
    while let Some(res) = set.join_next().await {
        match res {
            Ok((idx, report)) => {
                on_done(&report);
                out.push((idx, report));
            }
            Err(e) => {
                let mut r = LabReport::new("<panicked lab>", "");
                r.error = Some(format!("the lab panicked: {e} (this is a relaylab bug; please report it)"));
                on_done(&r);
                out.push((usize::MAX, r));
            }
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// What a step left for the report.
#[derive(Default)]
struct StepOutput {
    transcripts: Vec<lab_core::Transcript>,
    actor: Option<ActorReport>,
}

impl StepOutput {
    fn session(t: lab_core::Transcript) -> StepOutput {
        StepOutput { transcripts: vec![t], actor: None }
    }
}

async fn run_step(
    lab: &Lab,
    i: usize,
    step: &Step,
    read_timeout: Duration,
    remaining: Duration,
    checker: &mut Checker,
) -> StepOutput {
    if let Some(send) = &step.send {
        let exp = step.expect.clone().unwrap_or_default();
        return StepOutput::session(run_send(lab, i, send, exp, read_timeout, checker).await);
    }
    if let Some(script) = &step.script {
        return StepOutput::session(run_script(lab, i, script, read_timeout, checker).await);
    }
    if let Some(d) = step.settle {
        if !lab.settle(d.0).await {
            checker.fail(
                format!("steps[{i}] (settle)"),
                format!("the relay to settle within {:?}", d.0),
                "deliveries still running".into(),
                None,
            );
        }
    }
    if let Some(slam) = &step.slam {
        // Bounded by the lab's remaining budget, less a moment to report.
        let bound = remaining.saturating_sub(Duration::from_millis(200)).max(Duration::from_millis(100));
        let a = actors::run_slam(lab, i, slam, step.expect.as_ref(), bound, checker).await;
        return StepOutput { transcripts: a.transcripts, actor: Some(a.report) };
    }
    if let Some(mta) = &step.mta {
        let a = actors::run_mta(lab, i, mta, step.expect.as_ref(), checker).await;
        return StepOutput { transcripts: a.transcripts, actor: Some(a.report) };
    }
    if let Some(dns) = &step.dns {
        actors::run_dns(lab, i, dns, checker).await;
    }
    let step_deadline = Instant::now() + remaining;
    if let Some(d) = step.advance.or(step.wait.filter(|_| lab.time.clock().is_virtual())) {
        if let Err(e) = crate::clock_driver::advance(lab, d.0, step_deadline).await {
            checker.fail(
                format!("steps[{i}] ({})", step.action()),
                format!("lab time to move on by {:?}", d.0),
                e,
                None,
            );
        }
    } else if let Some(d) = step.wait {
        lab.time.sleep(d.0).await;
    }
    // The queue steps look at a settled relay: the immediate attempts are over.
    if step.flush.is_some() || step.queue_run.is_some() || step.mailq.is_some() {
        lab.settle(remaining).await;
    }
    if let Some(f) = &step.flush {
        crate::queue_checks::run_flush(lab, i, f, "flush", checker).await;
    }
    if let Some(q) = &step.queue_run {
        let all = crate::scenario::FlushSpec { domain: None, tried: q.tried };
        crate::queue_checks::run_flush(lab, i, &all, "queue_run", checker).await;
    }
    if let Some(m) = &step.mailq {
        crate::queue_checks::check_mailq_step(lab, i, m, checker);
    }
    StepOutput::default()
}

fn path_arg(addr: &str) -> String {
    if addr.starts_with('<') {
        addr.to_string()
    } else {
        format!("<{addr}>")
    }
}

/// One structured SMTP session, the way a well-behaved MTA would speak it:
/// no DATA when every recipient was refused.
async fn run_send(
    lab: &Lab,
    i: usize,
    send: &SendSpec,
    exp: crate::scenario::SendExpect,
    read_timeout: Duration,
    checker: &mut Checker,
) -> lab_core::Transcript {
    let label = format!("steps[{i}]: {} -> {}", send.from, send.to.as_deref().unwrap_or("relay"));
    let rec = TranscriptRecorder::new(label.clone());
    let what = |part: &str| format!("steps[{i}] (send from {}): {part}", send.from);
    let from_ip = lab.hosts[&send.from].real_ip;
    let target = lab.target(send.to.as_deref());
    let mut client = match SmtpClient::connect(Some(from_ip), target, read_timeout, rec.clone()).await {
        Ok(c) => c,
        Err(e) => {
            checker.fail(
                what("connect"),
                "a connection to the relay".into(),
                e.to_string(),
                Some(rec.snapshot().render()),
            );
            return rec.snapshot();
        }
    };
    let mut replies = expect::SendReplies::default();
    let result: Result<(), lab_core::client::ClientError> = async {
        replies.greeting = Some(client.read_reply().await?);
        let hello = match (&send.helo, &send.ehlo) {
            (Some(h), _) => format!("HELO {h}"),
            (_, Some(e)) => format!("EHLO {e}"),
            _ => format!("EHLO {}", send.from),
        };
        replies.helo = Some(client.command(&hello).await?);
        replies.mail = Some(client.command(&format!("MAIL FROM:{}", path_arg(&send.mail_from))).await?);
        for r in &send.rcpt_to {
            replies.rcpt.push(client.command(&format!("RCPT TO:{}", path_arg(r))).await?);
        }
        if replies.rcpt.iter().any(|r| r.code / 100 == 2) {
            let data = client.command("DATA").await?;
            let go = data.code == 354;
            replies.data = Some(data);
            if go {
                let body = match (&send.forge, &send.data) {
                    (Some(f), data) => codec::to_crlf(&f.forgery(lab.time.now()).build(data.as_deref())),
                    (None, Some(d)) => codec::to_crlf(d),
                    (None, None) => codec::to_crlf(&actors::default_message(&send.mail_from, &send.rcpt_to)),
                };
                replies.data_end = Some(client.send_message(&body).await?);
            }
        }
        replies.quit = client.quit().await;
        Ok(())
    }
    .await;
    let transcript = rec.snapshot();
    if let Err(e) = result {
        replies.transport_error = Some(e.to_string());
    }
    expect::check_send(&exp, &replies, &what, &transcript, checker);
    transcript
}

/// A raw dialogue, played by the mock sender (lockstep or all at once).
async fn run_script(
    lab: &Lab,
    i: usize,
    script: &ScriptSpec,
    read_timeout: Duration,
    checker: &mut Checker,
) -> lab_core::Transcript {
    use mock_hosts::{Mode, Sender, Step as SStep};
    let mut steps = vec![SStep::Greeting];
    let mut matchers = vec![script.greeting.clone()];
    for line in &script.lines {
        if let Some(l) = &line.send {
            steps.push(SStep::Line(l.clone()));
        } else if let Some(m) = &line.message {
            steps.push(SStep::Message(codec::to_crlf(m)));
        }
        matchers.push(line.expect.clone());
    }
    let sender = Sender {
        source_ip: Some(lab.hosts[&script.from].real_ip),
        target: lab.target(script.to.as_deref()),
        timeout: read_timeout,
        label: format!("steps[{i}]: {} -> {}", script.from, script.to.as_deref().unwrap_or("relay")),
    };
    let mode = if script.pipelined { Mode::Pipelined } else { Mode::Lockstep };
    let record = sender.run(&steps, mode).await;
    for (j, (m, reply)) in matchers.iter().zip(record.replies.iter()).enumerate() {
        let Some(m) = m else { continue };
        let part = if j == 0 { "greeting".to_string() } else { format!("lines[{}] reply", j - 1) };
        let what = format!("steps[{i}] (script from {}): {part}", script.from);
        expect::check_reply(m, reply.as_ref(), record.error.as_deref(), what, &record.transcript, checker);
    }
    record.transcript
}

/// Gather what the lab saw, for assertions and reports.
fn observe(
    lab: &Lab,
    s: &crate::scenario::Scenario,
    mut sessions: Vec<lab_core::Transcript>,
    mut actor_reports: Vec<ActorReport>,
) -> Observations {
    sessions.extend(lab.relay.outbound_sessions());
    let (host_reports, host_sessions) = actors::host_reports(lab, s);
    actor_reports.extend(host_reports);
    sessions.extend(host_sessions);
    let mut delivered = Vec::new();
    for (name, sink) in &lab.sinks {
        for m in sink.messages() {
            let parsed = crate::message::parse(&m.data);
            delivered.push(reports::DeliveredMessage {
                at: name.clone(),
                mail_from: m.envelope.mail_from.clone(),
                rcpt_to: m.envelope.rcpt_to.clone(),
                headers: parsed.header_block,
                size: m.data.len(),
            });
        }
    }
    let dns_queries = lab
        .dns
        .queries()
        .into_iter()
        .map(|q| reports::DnsQuery { name: q.name, qtype: q.qtype, protocol: q.protocol, rcode: q.rcode })
        .collect();
    let queue = lab
        .relay
        .queue()
        .iter()
        .map(|q| {
            let error = q.last_error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
            format!(
                "{} {} octets <{}> -> {}{error}",
                q.qid,
                q.size,
                q.sender.trim_matches(['<', '>']),
                q.recipients.join(", ")
            )
        })
        .collect();
    let queue_history = crate::queue_checks::observe(lab);
    Observations {
        sessions,
        delivered,
        relay_log: lab.relay.log_lines(),
        dns_queries,
        queue,
        actors: actor_reports,
        queue_history,
    }
}
