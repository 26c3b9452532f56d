//! Queue settings of the profile (spec §7): where the queue lives, how often
//! it is run, and when senders hear about mail that cannot be delivered.
//!
//! | key | Sendmail | default |
//! |---|---|---|
//! | `queue_directory` | `QUEUE_DIR` (`/var/spool/mqueue`) | a fresh temporary directory per relay |
//! | `queue_interval` | the daemon's `-q1h` | `1h` |
//! | `min_queue_age` | `confMIN_QUEUE_AGE` | `0s` |
//! | `max_queue_run_size` | `confMAX_QUEUE_RUN_SIZE` | `0` (no limit) |
//! | `queuewarn` | `confTO_QUEUEWARN` | `4h` (`0s`: never warn) |
//! | `queuereturn` | `confTO_QUEUERETURN` | `5d` |
//!
//! Durations are humantime (`30m`, `4h`, `5d`).

use super::RelayProfile;
use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// Why a queue setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// `queue_interval` is zero.
    #[error("queue_interval must be longer than zero, e.g. \"1h\" (Sendmail's -q1h) or \"30m\"")]
    Interval,
    /// `queuereturn` is zero.
    #[error("queuereturn must be longer than zero; Sendmail's default is \"5d\" and the course says never below about 3 days")]
    Return,
    /// `queuewarn` is not shorter than `queuereturn`.
    #[error("queuewarn ({warn}) must be shorter than queuereturn ({ret}); \"0s\" turns the warning off")]
    WarnAfterReturn {
        /// `queuewarn` as given.
        warn: String,
        /// `queuereturn` as given.
        ret: String,
    },
    /// `queue_directory` is empty.
    #[error("queue_directory must name a directory, e.g. /var/spool/mqueue; leave it out for a fresh temporary one")]
    Directory,
}

pub(super) fn default_queue_interval() -> Duration {
    Duration::from_secs(3600)
}
pub(super) fn default_queuewarn() -> Duration {
    Duration::from_secs(4 * 3600)
}
pub(super) fn default_queuereturn() -> Duration {
    Duration::from_secs(5 * 86_400)
}

pub(super) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(s.trim())
        .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration like \"30m\", \"4h\" or \"5d\": {e}")))
}

pub(super) fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

impl RelayProfile {
    /// Check the queue keys.
    pub(super) fn validate_queue(&self) -> Result<(), QueueError> {
        if self.queue_interval.is_zero() {
            return Err(QueueError::Interval);
        }
        if self.queuereturn.is_zero() {
            return Err(QueueError::Return);
        }
        if !self.queuewarn.is_zero() && self.queuewarn >= self.queuereturn {
            let f = |d: Duration| humantime::format_duration(d).to_string();
            return Err(QueueError::WarnAfterReturn { warn: f(self.queuewarn), ret: f(self.queuereturn) });
        }
        if self.queue_directory.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return Err(QueueError::Directory);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let p: RelayProfile = serde_yaml::from_str("hostname: a.example\n").unwrap();
        assert_eq!(p.queue_interval, Duration::from_secs(3600));
        assert_eq!(p.queuewarn, Duration::from_secs(4 * 3600));
        assert_eq!(p.queuereturn, Duration::from_secs(5 * 86_400));
        assert_eq!((p.min_queue_age, p.max_queue_run_size), (Duration::ZERO, 0));
        assert!(p.queue_directory.is_none());
        p.validate().unwrap();

        let p: RelayProfile = serde_yaml::from_str(
            "hostname: a.example\nqueue_interval: 30m\nmin_queue_age: 2h\nqueuewarn: 8h\nqueuereturn: 3d\nmax_queue_run_size: 100\nqueue_directory: /tmp/q\n",
        )
        .unwrap();
        p.validate().unwrap();
        assert_eq!(p.queuereturn, Duration::from_secs(3 * 86_400));

        let mut bad = p.clone();
        bad.queuewarn = Duration::from_secs(4 * 86_400);
        assert!(bad.validate().unwrap_err().to_string().contains("must be shorter than queuereturn"));
        bad.queuewarn = Duration::ZERO;
        bad.validate().unwrap();
        bad.queue_interval = Duration::ZERO;
        assert!(bad.validate().unwrap_err().to_string().contains("queue_interval"));
        let e = serde_yaml::from_str::<RelayProfile>("hostname: a.example\nqueuewarn: soonish\n").unwrap_err();
        assert!(e.to_string().contains("not a duration"), "{e}");
    }
}
