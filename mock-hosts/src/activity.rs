//! Work in flight, so the lab can wait until every actor is quiet.
//!
//! A forwarder is busy from the moment it accepts a message it will pass on
//! (before its `250` leaves) until its own delivery attempt has its final
//! reply; the lab settles when the relay and every actor are idle at once.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A shared count of work in flight.
#[derive(Debug, Clone)]
pub struct Activity {
    tx: Arc<watch::Sender<usize>>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity { tx: Arc::new(watch::channel(0).0) }
    }
}

/// One unit of work in flight; dropping it (also by panic or abort) ends it.
#[derive(Debug)]
pub struct BusyGuard {
    tx: Arc<watch::Sender<usize>>,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.tx.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Activity {
    /// Count one more unit of work until the guard is dropped.
    pub fn busy(&self) -> BusyGuard {
        self.tx.send_modify(|n| *n += 1);
        BusyGuard { tx: self.tx.clone() }
    }

    /// Work in flight now.
    pub fn in_flight(&self) -> usize {
        *self.tx.borrow()
    }

    /// Wait until nothing is in flight; false if `timeout` passed first.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let mut rx = self.tx.subscribe();
        let idle = tokio::time::timeout(timeout, rx.wait_for(|n| *n == 0)).await;
        matches!(idle, Ok(Ok(_)))
    }
}
