//! relaylab: a test harness and SMTP conformance simulator for mail relays.
//!
//! A **lab** is one YAML scenario run on a virtual internet: the relay under
//! test in the middle, a mock DNS and mock MX hosts around it, scripted
//! clients in front of it. The harness records everything that crosses the
//! relay and checks it against the scenario's expectations.
//!
//! # Layout
//! - [`scenario`]: the YAML format, loading with `file:line:column` errors, discovery.
//! - [`lab`]: bringing a lab's DNS, hosts and relay up on the loopback backend (builtin relay) or the netns backend (real MTAs).
//! - [`actors`]: the virtual internet's inhabitants as a lab runs them:
//!   scripted MX hosts, slammers, retrying MTAs, forwarders, DNS changes.
//! - [`runner`]: playing the steps, letting the relay settle, producing a report.
//! - [`expect`]: checking replies, delivered messages, log lines and DNS queries.
//! - [`clock_driver`]: moving a lab's virtual clock (`advance`, `wait`, `run_until`).
//! - [`queue_checks`]: the relay queue's observations and expectations
//!   (`queue_run`, `flush`, `mailq`, `expect.queue`, MIME parts).
//! - [`message`]: reading delivered messages (mail-parser).
//! - [`exit_codes`]: what `relaylab` exits with.
//!
//! The `relaylab` binary (`src/main.rs`) is thin glue over these.
//!
//! # Example
//! ```no_run
//! # async fn demo() {
//! let lab = relaylab::scenario::load_file("scenarios/open-relay/relaying-denied.yaml".as_ref()).unwrap();
//! let report = relaylab::runner::run_lab(&lab, &Default::default()).await;
//! assert_eq!(report.verdict, reports::Verdict::Passed, "{}", report.render_failures());
//! # }
//! ```

pub mod actors;
pub mod clock_driver;
pub mod exit_codes;
pub mod expect;
pub mod explain;
pub mod golden;
pub mod lab;
pub mod message;
pub mod queue_checks;
pub mod runner;
pub mod scenario;
