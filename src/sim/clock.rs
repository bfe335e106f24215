//! Wall-clock helpers and time scaling. Every simulated delay is divided by the time
//! scale; timestamps in responses stay real wall-clock times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn datetime(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

/// RFC 3339 with whole seconds, as Fly prints Machine timestamps.
pub(crate) fn rfc3339_secs(ms: i64) -> String {
    datetime(ms).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// RFC 3339 with milliseconds, as Fly prints volume and secret timestamps.
pub(crate) fn rfc3339_millis(ms: i64) -> String {
    datetime(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Divides simulated durations by a constant factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scale(pub f64);

/// The longest delay the simulator schedules: about 30 years, far beyond any run and
/// far from overflowing clock arithmetic.
const MAX_SECS: f64 = 1.0e9;

impl Scale {
    fn real_secs(self, sim_secs: f64) -> f64 {
        let secs = sim_secs / self.0;
        if secs.is_nan() || secs <= 0.0 {
            0.0
        } else {
            secs.min(MAX_SECS)
        }
    }

    /// A simulated duration in real milliseconds.
    pub fn ms(self, d: Duration) -> i64 {
        (self.real_secs(d.as_secs_f64()) * 1000.0).round() as i64
    }

    /// A simulated duration in real time.
    pub fn real(self, d: Duration) -> Duration {
        Duration::from_secs_f64(self.real_secs(d.as_secs_f64()))
    }

    /// Simulated seconds in real milliseconds.
    pub fn secs_ms(self, secs: f64) -> i64 {
        (self.real_secs(secs) * 1000.0).round() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling() {
        let s = Scale(100.0);
        assert_eq!(s.ms(Duration::from_secs(2)), 20);
        assert_eq!(s.real(Duration::from_secs(1)), Duration::from_millis(10));
        assert_eq!(Scale(1.0).secs_ms(1.5), 1500);
        assert_eq!(Scale(1.0).secs_ms(-3.0), 0);
        assert_eq!(Scale(1.0).secs_ms(f64::NAN), 0);
        assert_eq!(Scale(1e-300).ms(Duration::from_secs(1)), 1_000_000_000_000);
        assert_eq!(
            Scale(1e-300).real(Duration::MAX),
            Duration::from_secs(1_000_000_000)
        );
    }

    #[test]
    fn formats() {
        assert_eq!(rfc3339_secs(1_699_408_350_300), "2023-11-08T01:52:30Z");
        assert_eq!(
            rfc3339_millis(1_699_408_350_300),
            "2023-11-08T01:52:30.300Z"
        );
    }
}
