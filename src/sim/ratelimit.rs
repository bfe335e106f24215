//! Fly's documented Machines API rate limits as token buckets keyed by action and
//! identifier: 1 req/s with bursts of 3 per action, Get Machine 5 req/s with bursts
//! of 10, app deletes 100 per minute. Rates are multiplied by the time scale.

use std::collections::HashMap;
use std::time::Instant;

/// The rate-limited action kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Action {
    AppCreate,
    AppGet,
    AppList,
    AppDelete,
    MachineCreate,
    MachineList,
    MachineGet,
    MachineUpdate,
    MachineDelete,
    MachineStart,
    MachineStop,
    MachineSuspend,
    MachineRestart,
    MachineCordon,
    MachineUncordon,
    MachineWait,
    MachineEvents,
    LeaseGet,
    LeaseCreate,
    LeaseRelease,
    MetadataGet,
    MetadataSet,
    MetadataDelete,
    VolumeCreate,
    VolumeList,
    VolumeGet,
    VolumeUpdate,
    VolumeExtend,
    VolumeDelete,
    SnapshotList,
    SnapshotCreate,
    SecretsList,
    SecretGet,
    SecretSet,
    SecretDelete,
    SecretsUpdate,
}

impl Action {
    /// (sustained requests per second, burst).
    fn limits(self) -> (f64, f64) {
        match self {
            Action::MachineGet => (5.0, 10.0),
            Action::AppDelete => (100.0 / 60.0, 100.0),
            _ => (1.0, 3.0),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

pub(crate) struct RateLimiter {
    scale: f64,
    buckets: HashMap<(Action, String), Bucket>,
}

impl RateLimiter {
    pub fn new(scale: f64) -> RateLimiter {
        RateLimiter {
            scale,
            buckets: HashMap::new(),
        }
    }

    /// Takes one token; `Err(seconds)` says how long until one is available.
    pub fn check(&mut self, action: Action, id: &str, now: Instant) -> Result<(), f64> {
        let (rate, burst) = action.limits();
        let rate = rate * self.scale;
        if self.buckets.len() > 200_000 {
            // Bound memory: full buckets carry no information.
            self.buckets
                .retain(|_, b| now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = self
            .buckets
            .entry((action, id.to_string()))
            .or_insert(Bucket {
                tokens: burst,
                at: now,
            });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - bucket.tokens) / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_sustained() {
        let mut rl = RateLimiter::new(1.0);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(rl.check(Action::MachineStart, "m1", t).is_ok());
        }
        let wait = rl.check(Action::MachineStart, "m1", t).unwrap_err();
        assert!(wait > 0.9 && wait <= 1.0, "{wait}");
        // Another identifier and another action have their own buckets.
        assert!(rl.check(Action::MachineStart, "m2", t).is_ok());
        assert!(rl.check(Action::MachineStop, "m1", t).is_ok());
        assert!(
            rl.check(Action::MachineStart, "m1", t + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn get_machine_allows_ten() {
        let mut rl = RateLimiter::new(1.0);
        let t = Instant::now();
        for _ in 0..10 {
            assert!(rl.check(Action::MachineGet, "m", t).is_ok());
        }
        assert!(rl.check(Action::MachineGet, "m", t).is_err());
    }

    #[test]
    fn time_scale_shortens_windows() {
        let mut rl = RateLimiter::new(100.0);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(rl.check(Action::MachineStart, "m", t).is_ok());
        }
        let wait = rl.check(Action::MachineStart, "m", t).unwrap_err();
        assert!(wait <= 0.01 + 1e-9);
        assert!(
            rl.check(Action::MachineStart, "m", t + Duration::from_millis(10))
                .is_ok()
        );
    }
}
