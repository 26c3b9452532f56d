//! Helpers shared by the socket tests.
#![allow(dead_code)]

use lab_core::{SmtpClient, TranscriptRecorder};
use mock_hosts::{MxSink, SinkConfig};
use std::net::SocketAddr;
use std::time::Duration;

/// Every wait in these tests is bounded by this.
pub const T: Duration = Duration::from_secs(5);

pub async fn sink(host: &str) -> MxSink {
    sink_with(SinkConfig::accept(host)).await
}

pub async fn sink_with(config: SinkConfig) -> MxSink {
    MxSink::start("127.0.0.1:0".parse().unwrap(), config, lab_core::clock::wall()).await.expect("sink starts")
}

pub async fn client(addr: SocketAddr) -> SmtpClient {
    SmtpClient::connect(None, addr, T, TranscriptRecorder::new("test client")).await.expect("connects")
}

/// Wait (bounded, polling every few ms) until `cond` holds.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The sink's client lines of session `i`.
pub fn client_lines(sink: &MxSink, i: usize) -> Vec<String> {
    sink.sessions()[i].lines.iter().filter(|l| l.dir == lab_core::Direction::Client).map(|l| l.text.clone()).collect()
}
