//! Time: UTC timestamps in whole seconds, and the injectable clock the store
//! reads them from, so that tests control expiry and grace periods.

use core::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A UTC instant, in whole seconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `seconds` after the Unix epoch.
    pub const fn from_unix(seconds: i64) -> Self {
        Timestamp(seconds)
    }

    /// Seconds since the Unix epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// This instant moved forward by `duration` (saturating).
    pub fn after(self, duration: Duration) -> Self {
        let seconds = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(seconds))
    }

    /// This instant moved back by `duration` (saturating).
    pub fn before(self, duration: Duration) -> Self {
        let seconds = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(seconds))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, such as `2025-01-10T08:30:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = if self.0 >= 0 {
            UNIX_EPOCH.checked_add(Duration::from_secs(self.0 as u64))
        } else {
            UNIX_EPOCH.checked_sub(Duration::from_secs(self.0.unsigned_abs()))
        };
        match time {
            // humantime formats years 0000..=9999; outside that, print seconds.
            Some(time) if (0..253_402_300_800).contains(&self.0) => {
                write!(f, "{}", humantime::format_rfc3339_seconds(time))
            }
            _ => write!(f, "@{}", self.0),
        }
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        #[cfg(target_os = "linux")]
        {
            // Timestamps are whole seconds, so the coarse clock (a few ms of
            // resolution, read from shared memory without the precise
            // clock's counter read) is exact enough; verify reads the time
            // on every call.
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `now` is a valid, writable timespec.
            if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) } == 0 {
                // time_t is narrower than i64 on some targets.
                #[allow(clippy::useless_conversion)]
                return Timestamp(i64::from(now.tv_sec));
            }
        }
        let seconds = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
        };
        Timestamp(seconds)
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Arc::new(AtomicI64::new(start.0)),
        }
    }

    /// Moves the clock forward by `duration`.
    pub fn advance(&self, duration: Duration) {
        let seconds = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        let _ = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(seconds))
            });
    }

    /// Sets the clock to `instant`.
    pub fn set(&self, instant: Timestamp) {
        self.now.store(instant.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }
}

/// Parses a duration such as `90d`, `24h`, `30m` or `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|error| format!("invalid duration {text:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_rfc3339_utc() {
        assert_eq!(Timestamp::from_unix(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix(1_736_497_800).to_string(),
            "2025-01-10T08:30:00Z"
        );
        assert_eq!(Timestamp::from_unix(-5).to_string(), "@-5");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_unix(100));
        let shared = clock.clone();
        clock.advance(Duration::from_secs(60));
        assert_eq!(shared.now(), Timestamp::from_unix(160));
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert!(parse_duration("soon").is_err());
    }
}
