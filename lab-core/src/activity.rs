//! Busy tracking for `settle`: a shared count of work in flight and a way to
//! wait for it to reach zero.
//!
//! The builtin relay counts inbound messages between DATA and the final reply
//! and delivery attempts pending or running; a forwarding mock host is busy from
//! the moment it accepts a message it will pass on (before its `250` leaves)
//! until its own delivery attempt has its final reply. The lab settles when the
//! relay and every actor are idle at once.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_every_guard() {
        let a = Activity::default();
        assert!(a.wait_idle(Duration::from_millis(1)).await);
        let g1 = a.busy();
        let g2 = a.busy();
        assert_eq!(a.in_flight(), 2);
        assert!(!a.wait_idle(Duration::from_millis(20)).await);
        drop(g1);
        let t = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(g2);
        });
        assert!(a.wait_idle(Duration::from_secs(5)).await);
        t.await.unwrap();
        assert_eq!(a.in_flight(), 0);
    }
}
