//! The `relaylab` command: parse arguments, run, exit with a code from
//! [`relaylab::exit_codes`].

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use relaylab::exit_codes;
use relaylab::runner::{self, RunOptions};
use relaylab::scenario::{self, LoadedScenario, RelayName};
use reports::{RunReport, Verdict};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "relaylab", version, about = "Test harness and SMTP conformance simulator for mail relays")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios (files or folders) against the builtin relay or a real MTA.
    Run {
        /// The relay under test: builtin (default), or a real MTA on the netns
        /// backend (root and relay-under-test/mta/install.sh): postfix,
        /// sendmail, exim, opensmtpd.
        #[arg(long, default_value = "builtin")]
        relay: RelayName,
        #[command(flatten)]
        labs: LabArgs,
        /// Print every lab's observations (transcripts, log), not only failures.
        #[arg(long, short = 'v')]
        verbose: bool,
        /// Write (or overwrite) the golden files of the golden labs that ran,
        /// instead of comparing against them. Review what it writes.
        #[arg(long)]
        update: bool,
    },
    /// Explain a lab in plain words: what it sets up, what it sends, and why
    /// the expected outcome follows.
    Explain {
        /// A scenario file, or a scenario name (`open-relay/relaying-denied`)
        /// looked up under scenarios/.
        scenario: String,
        /// Where to look names up (default: scenarios/).
        #[arg(long, default_value = "scenarios")]
        library: PathBuf,
    },
    /// Run scenarios on several relays and write the conformance matrix
    /// (scenario x relay: pass, fail with the first difference, n/a or
    /// skipped with the reason) to the console, matrix.md and matrix.json.
    #[command(mut_arg("report_dir", |a| a.help("Where to write matrix.md and matrix.json")))]
    Matrix {
        /// The relays, comma-separated (default: all five).
        #[arg(long, value_delimiter = ',', default_value = "builtin,postfix,sendmail,exim,opensmtpd")]
        relay: Vec<RelayName>,
        #[command(flatten)]
        labs: LabArgs,
    },
    /// List scenarios with their tags and one-line descriptions.
    List {
        /// Scenario files or folders (default: scenarios/).
        paths: Vec<PathBuf>,
        /// Show each tag with the number of scenarios carrying it.
        #[arg(long)]
        tags: bool,
    },
    /// Validate scenarios without running them.
    Check {
        /// Scenario files or folders (default: scenarios/).
        paths: Vec<PathBuf>,
    },
    /// The builtin relay on its own.
    Relay {
        #[command(subcommand)]
        command: RelayCommand,
    },
}

/// Which labs to run and how: the arguments `run` and `matrix` share.
#[derive(Args)]
struct LabArgs {
    /// Scenario files or folders (default: scenarios/).
    paths: Vec<PathBuf>,
    /// Only scenarios whose name contains this text.
    #[arg(long, short = 'f')]
    filter: Option<String>,
    /// Only scenarios with this tag (repeat for any of several).
    #[arg(long, short = 't')]
    tag: Vec<String>,
    // `matrix` gives this its own help text (matrix.md and matrix.json).
    /// Where to write junit.xml and report.json.
    #[arg(long, default_value = "reports/out")]
    report_dir: PathBuf,
    /// How many labs run at once.
    #[arg(long, short = 'j', default_value_t = 4)]
    jobs: usize,
    /// Budget for labs that set none, e.g. 20s.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    budget: Duration,
    /// How strictly to compare: `exact` (every reply and log line as written)
    /// or `behaviour` (reply classes, and events instead of Sendmail log lines).
    /// Default: exact on the builtin relay, behaviour on real MTAs.
    #[arg(long, value_enum)]
    compare: Option<relaylab::expect::Compare>,
}

#[derive(Subcommand)]
enum RelayCommand {
    /// Run the builtin relay as a daemon, to poke with swaks or telnet like any MTA.
    /// Log lines go to standard output; stop with Ctrl-C.
    Serve {
        /// The relay profile: a YAML file holding what a scenario's `relay:` section holds.
        #[arg(long)]
        config: PathBuf,
        /// Where to listen for SMTP, e.g. 127.0.0.1:2525.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The DNS server the relay resolves MX, A and PTR records with, e.g. 127.0.0.1:5353.
        #[arg(long)]
        dns: std::net::SocketAddr,
        /// The port the relay delivers to on MX hosts.
        #[arg(long, default_value_t = 25)]
        smtp_port: u16,
        /// The queue directory (overrides the profile's `queue_directory`).
        /// Messages found there are delivered; without either, a temporary
        /// directory is used and removed when the relay stops.
        #[arg(long)]
        queue_dir: Option<PathBuf>,
    },
    /// List the queue of a relay in Sendmail's `mailq` (`-bp`) layout: asks the
    /// running relay, or reads the queue directory when none runs.
    Mailq {
        /// The relay's queue directory.
        #[arg(long)]
        queue_dir: PathBuf,
        /// The relay's profile, for its time zone (default UTC).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the queue of a running relay now (`sendmail -q`), or only the
    /// messages with a recipient in one domain (`sendmail -qR@domain`).
    Flush {
        /// The relay's queue directory.
        #[arg(long)]
        queue_dir: PathBuf,
        /// Only messages with a recipient in this domain (and its subdomains).
        #[arg(long)]
        domain: Option<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("relaylab: error: {e:#}");
            exit_codes::INVALID
        }
    };
    std::process::exit(code);
}

fn real_main(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Matrix { relay, labs: LabArgs { paths, filter, tag, report_dir, jobs, budget, compare } } => {
            let Some(labs) = load_all_valid(&paths) else {
                return Ok(exit_codes::INVALID);
            };
            let labs = select(labs, filter.as_deref(), &tag);
            if labs.is_empty() || relay.is_empty() {
                eprintln!("relaylab: no scenario or relay selected (check the paths, --filter, --tag and --relay)");
                return Ok(exit_codes::NOTHING_RAN);
            }
            let mut relays: Vec<RelayName> = Vec::new();
            for r in relay {
                if !relays.contains(&r) {
                    relays.push(r);
                }
            }
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let opts = RunOptions { default_budget: budget, jobs, compare, ..Default::default() };
            let mut matrix = reports::matrix::Matrix::new(relays.iter().map(|r| r.to_string()).collect());
            for r in &relays {
                eprintln!("relaylab: matrix: running {} scenario(s) on {r}", labs.len());
                let reports = rt.block_on(runner::run_all_on(labs.clone(), &opts, *r, |_| {}));
                matrix.add_column(r.as_str(), &reports);
            }
            print!("{}", reports::matrix::console(&matrix));
            match reports::matrix::write(&matrix, &report_dir) {
                Ok(paths) => {
                    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                    println!("reports: {}", shown.join(", "));
                }
                Err(e) => {
                    eprintln!("relaylab: {e}");
                    return Ok(exit_codes::INVALID);
                }
            }
            // Real MTAs differing from the library is what the matrix shows; the
            // builtin reference relay missing an expectation is a failure.
            let builtin_bad = matrix.rows.iter().flat_map(|r| r.cells.iter()).any(|c| {
                c.relay == "builtin"
                    && matches!(c.status, reports::matrix::CellStatus::Fail | reports::matrix::CellStatus::Error)
            });
            Ok(if builtin_bad { exit_codes::LAB_FAILED } else { exit_codes::OK })
        }
        Command::Explain { scenario: wanted, library } => match relaylab::explain::resolve(&wanted, &library) {
            Ok(loaded) => {
                print!("{}", relaylab::explain::explain(&loaded));
                Ok(exit_codes::OK)
            }
            Err(e) => {
                eprintln!("relaylab: {e}");
                Ok(exit_codes::INVALID)
            }
        },
        Command::Run {
            relay,
            labs: LabArgs { paths, filter, tag, report_dir, jobs, budget, compare },
            verbose,
            update,
        } => {
            let Some(labs) = load_all_valid(&paths) else {
                return Ok(exit_codes::INVALID);
            };
            let labs = select(labs, filter.as_deref(), &tag);
            if labs.is_empty() {
                eprintln!("relaylab: no scenario selected (check the paths, --filter and --tag)");
                return Ok(exit_codes::NOTHING_RAN);
            }
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let opts = RunOptions { default_budget: budget, jobs, update_golden: update, compare };
            let started = Instant::now();
            let mut run = RunReport::new();
            let bar = ProgressBar::new(labs.len() as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} labs {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            if labs.len() == 1 {
                bar.finish_and_clear();
            }
            run.labs = rt.block_on(runner::run_all_on(labs, &opts, relay, |r| {
                bar.set_message(format!("{} {}", r.verdict.word(), r.name));
                bar.inc(1);
            }));
            bar.finish_and_clear();
            run.duration_ms = started.elapsed().as_millis() as u64;
            if verbose {
                for lab in &run.labs {
                    println!("=== {} ({})", lab.name, lab.verdict.word());
                    for t in &lab.observations.sessions {
                        print!("{}", t.render());
                    }
                    println!("--- relay log ---");
                    for l in &lab.observations.relay_log {
                        println!("{l}");
                    }
                }
            }
            print!("{}", reports::console::summary(&run));
            if update {
                let written: Vec<&str> = run.labs.iter().filter_map(|l| l.golden_written.as_deref()).collect();
                for w in &written {
                    println!("golden: wrote {w}");
                }
                if written.is_empty() {
                    println!("golden: no lab that ran has `golden:` set; nothing written");
                }
            }
            match reports::write_all(&run, &report_dir) {
                Ok(paths) => {
                    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                    println!("reports: {}", shown.join(", "));
                }
                Err(e) => eprintln!("relaylab: {e}"),
            }
            let (_, failed, errored, skipped) = run.counts();
            Ok(if errored > 0 && failed == 0 {
                exit_codes::INVALID
            } else if failed > 0 || errored > 0 {
                exit_codes::LAB_FAILED
            } else if skipped == run.labs.len() {
                exit_codes::NOTHING_RAN
            } else {
                debug_assert!(run.labs.iter().all(|l| matches!(l.verdict, Verdict::Passed | Verdict::Skipped)));
                exit_codes::OK
            })
        }
        Command::List { paths, tags } => {
            let (labs, errors) = load(&paths);
            for e in &errors {
                eprintln!("{e}");
            }
            if tags {
                let mut counts = std::collections::BTreeMap::<&str, usize>::new();
                for l in &labs {
                    for t in &l.scenario.tags {
                        *counts.entry(t.as_str()).or_default() += 1;
                    }
                }
                for (t, n) in counts {
                    println!("{t:24} {n}");
                }
            } else {
                for l in &labs {
                    println!("{:44} [{}] {}", l.scenario.name, l.scenario.tags.join(","), l.scenario.about);
                }
            }
            println!("{} scenario(s)", labs.len());
            Ok(if errors.is_empty() { exit_codes::OK } else { exit_codes::INVALID })
        }
        Command::Relay { command: RelayCommand::Mailq { queue_dir, config } } => {
            let zone = match config.map(|c| scenario::load_profile(&c)).transpose() {
                Ok(p) => p.and_then(|p| p.zone().ok()).unwrap_or_else(relay_under_test::dates::Zone::utc),
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(exit_codes::INVALID);
                }
            };
            use relay_under_test::queue::control;
            let text = match control::request(&queue_dir, "MAILQ", Duration::from_secs(10)) {
                Ok(t) => t,
                Err(_) => control::listing_from_dir(&queue_dir, &zone)
                    .with_context(|| format!("reading the queue directory {}", queue_dir.display()))?,
            };
            print!("{text}");
            Ok(exit_codes::OK)
        }
        Command::Relay { command: RelayCommand::Flush { queue_dir, domain } } => {
            use relay_under_test::queue::control;
            let request = match &domain {
                Some(d) => format!("FLUSH {d}"),
                None => "FLUSH".to_string(),
            };
            let text = control::request(&queue_dir, &request, Duration::from_secs(3600)).with_context(|| {
                format!(
                    "no relay answers on {} (is `relaylab relay serve --queue-dir {}` running?)",
                    control::socket_path(&queue_dir).display(),
                    queue_dir.display()
                )
            })?;
            print!("{text}");
            Ok(if text.starts_with("error:") { exit_codes::INVALID } else { exit_codes::OK })
        }
        Command::Relay { command: RelayCommand::Serve { config, listen, dns, smtp_port, queue_dir } } => {
            let mut profile = match scenario::load_profile(&config) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    eprintln!("relaylab: the relay was not started (fix the profile; its keys are listed in scenarios/README.md)");
                    return Ok(exit_codes::INVALID);
                }
            };
            if let Some(dir) = queue_dir {
                profile.queue_directory = Some(dir);
            }
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(serve(profile, listen, dns, smtp_port))?;
            Ok(exit_codes::OK)
        }
        Command::Check { paths } => {
            let (labs, errors) = load(&paths);
            for e in &errors {
                eprintln!("{e}");
            }
            println!("{} valid, {} invalid", labs.len(), errors.len());
            Ok(if errors.is_empty() { exit_codes::OK } else { exit_codes::INVALID })
        }
    }
}

/// Load every scenario under `paths`; invalid ones come back as errors, and
/// duplicate names are errors too.
fn load(paths: &[PathBuf]) -> (Vec<LoadedScenario>, Vec<String>) {
    let paths = if paths.is_empty() { vec![PathBuf::from("scenarios")] } else { paths.to_vec() };
    let files = match scenario::discover(&paths) {
        Ok(f) => f,
        Err(e) => return (Vec::new(), vec![e]),
    };
    let mut labs: Vec<LoadedScenario> = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match scenario::load_file(&f) {
            Ok(l) => {
                if let Some(other) = labs.iter().find(|o| o.scenario.name == l.scenario.name) {
                    errors.push(format!(
                        "{}: scenario name `{}` is already used by {}",
                        f.display(),
                        l.scenario.name,
                        other.path.display()
                    ));
                } else {
                    labs.push(l);
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    (labs, errors)
}

/// The scenarios to run, or `None` (the problems printed) when any is invalid:
/// `run` and `matrix` run nothing then.
fn load_all_valid(paths: &[PathBuf]) -> Option<Vec<LoadedScenario>> {
    let (labs, errors) = load(paths);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!(
            "relaylab: {} scenario(s) invalid; nothing was run (fix them, or check with `relaylab check`)",
            errors.len()
        );
        return None;
    }
    Some(labs)
}

fn select(labs: Vec<LoadedScenario>, filter: Option<&str>, tags: &[String]) -> Vec<LoadedScenario> {
    labs.into_iter()
        .filter(|l| filter.is_none_or(|f| l.scenario.name.contains(f)))
        .filter(|l| tags.is_empty() || l.scenario.tags.iter().any(|t| tags.contains(t)))
        .collect()
}

/// `relaylab relay serve`: run the builtin relay until Ctrl-C, printing its log lines as they come.
async fn serve(
    profile: relay_under_test::RelayProfile,
    listen: std::net::SocketAddr,
    dns: std::net::SocketAddr,
    smtp_port: u16,
) -> anyhow::Result<()> {
    use relay_under_test::{BuiltinRelay, LabNetwork, RelayUnderTest};
    let net = LabNetwork {
        listen,
        virtual_ip: listen.ip(),
        dns,
        smtp_port,
        addresses: lab_core::AddressMap::identity(),
        clock: lab_core::clock::wall(),
    };
    let hostname = profile.hostname.clone();
    let relay =
        BuiltinRelay::start(profile, net).await.with_context(|| format!("starting the builtin relay on {listen}"))?;
    let control = relay
        .start_control_socket()
        .with_context(|| format!("opening the control socket in {}", relay.queue_dir().display()))?;
    eprintln!(
        "relaylab: builtin relay {hostname} listening on {} (DNS {dns}); queue {} ({} message(s) found), control {}; Ctrl-C stops it",
        relay.smtp_addr(),
        relay.queue_dir().display(),
        relay.queue().len(),
        control.display()
    );
    let mut printed = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let lines = relay.log_lines();
                for l in &lines[printed.min(lines.len())..] {
                    println!("{l}");
                }
                printed = lines.len();
            }
        }
    }
    relay.stop().await;
    for l in &relay.log_lines()[printed..] {
        println!("{l}");
    }
    eprintln!("relaylab: relay stopped");
    Ok(())
}
