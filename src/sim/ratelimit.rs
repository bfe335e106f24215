//! Fly's documented Machines API rate limits as token buckets keyed by action and
//! identifier: 1 req/s with bursts of 3 per action, Get Machine 5 req/s with bursts
//! of 10, app deletes 100 per minute. Rates are multiplied by the time scale.

use std::collections::HashMap;
use std::time::{Duration, Instant};

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
    MachineExec,
    MachinePs,
    MachineSignal,
    MachineVersions,
    RegionsGet,
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
    IpList,
    IpAssign,
    IpRelease,
    CertList,
    CertGet,
    CertCreate,
    CertCheck,
    CertDelete,
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

/// Above this many buckets, full ones (which carry no information) are dropped.
const MAX_BUCKETS: usize = 200_000;

/// The shortest time between two such prunes: when every bucket is in use, a prune
/// frees nothing, and scanning them on every request would cost O(buckets) each.
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// This bucket's own refill rate (tokens per real second) and capacity.
    rate: f64,
    burst: f64,
}

impl Bucket {
    /// Whether the bucket has refilled by `now`, so dropping it changes nothing.
    fn is_full(&self, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * self.rate >= self.burst
    }
}

pub(crate) struct RateLimiter {
    scale: f64,
    buckets: HashMap<(Action, String), Bucket>,
    max_buckets: usize,
    last_prune: Option<Instant>,
}

impl RateLimiter {
    pub fn new(scale: f64) -> RateLimiter {
        RateLimiter {
            scale,
            buckets: HashMap::new(),
            max_buckets: MAX_BUCKETS,
            last_prune: None,
        }
    }

    /// Bounds memory: drops the buckets that have refilled, each judged by its own
    /// limits, at most once per [`PRUNE_INTERVAL`].
    fn prune(&mut self, now: Instant) {
        if self.buckets.len() <= self.max_buckets
            || self
                .last_prune
                .is_some_and(|at| now.saturating_duration_since(at) < PRUNE_INTERVAL)
        {
            return;
        }
        self.last_prune = Some(now);
        self.buckets.retain(|_, b| !b.is_full(now));
    }

    /// Takes one token; `Err(seconds)` says how long until one is available.
    pub fn check(&mut self, action: Action, id: &str, now: Instant) -> Result<(), f64> {
        let (rate, burst) = action.limits();
        let rate = rate * self.scale;
        self.prune(now);
        let bucket = self
            .buckets
            .entry((action, id.to_string()))
            .or_insert(Bucket {
                tokens: burst,
                at: now,
                rate,
                burst,
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

    #[test]
    fn pruning_judges_each_bucket_by_its_own_limits() {
        let mut rl = RateLimiter::new(1.0);
        rl.max_buckets = 2;
        let t = Instant::now();
        // App creates: 1/s, bursts of 3. Drain one bucket; leave another barely used.
        for _ in 0..3 {
            assert!(rl.check(Action::AppCreate, "drained", t).is_ok());
        }
        assert!(rl.check(Action::AppCreate, "used-once", t).is_ok());
        // App deletes: 100/min, bursts of 100; one used, refilled only after 0.6 s.
        assert!(rl.check(Action::AppDelete, "*", t).is_ok());
        // 2.5 s later a Get Machine (5/s, bursts of 10) triggers the prune. By the Get
        // Machine's limits every bucket would count as full (2.5 s × 5 ≥ 10), but the
        // drained one holds only 2.5 of its 3 tokens and must survive.
        let later = t + Duration::from_millis(2500);
        assert!(rl.check(Action::MachineGet, "m", later).is_ok());
        assert!(
            rl.buckets
                .contains_key(&(Action::AppCreate, "drained".into()))
        );
        assert!(
            !rl.buckets
                .contains_key(&(Action::AppCreate, "used-once".into()))
        );
        assert!(!rl.buckets.contains_key(&(Action::AppDelete, "*".into())));
        assert!(rl.check(Action::AppCreate, "drained", later).is_ok());
        assert!(rl.check(Action::AppCreate, "drained", later).is_ok());
        assert!(rl.check(Action::AppCreate, "drained", later).is_err());
    }

    #[test]
    fn pruning_scans_at_most_once_per_interval() {
        let mut rl = RateLimiter::new(1.0);
        rl.max_buckets = 2;
        let t = Instant::now();
        for id in ["a", "b", "c"] {
            for _ in 0..3 {
                let _ = rl.check(Action::MachineStart, id, t);
            }
        }
        // Over the bound with every bucket in use: the prune ran once and freed nothing.
        assert_eq!(rl.last_prune, Some(t));
        assert_eq!(rl.buckets.len(), 3);
        // Further requests within the interval do not scan again.
        let soon = t + Duration::from_millis(500);
        assert!(rl.check(Action::MachineStart, "d", soon).is_ok());
        assert_eq!(rl.last_prune, Some(t));
        // After it, a scan runs again and drops the buckets that have refilled.
        let later = t + Duration::from_secs(4);
        assert!(rl.check(Action::MachineStart, "e", later).is_ok());
        assert_eq!(rl.last_prune, Some(later));
        assert_eq!(rl.buckets.len(), 1, "only the new bucket remains");
    }
}
