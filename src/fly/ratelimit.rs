//! Client-side rate limiting that mirrors Fly's documented Machines API limits, so a large
//! apply rarely sees a 429 and never a storm of them:
//!
//! - per action and identifier: 1 request/s, bursts of 3;
//! - get Machine: 5 requests/s per Machine, bursts of 10;
//! - app deletes: 100 per minute.
//!
//! Token buckets with reservations: a caller takes a token even when the bucket is empty
//! and sleeps until its turn, so concurrent callers queue in order instead of polling.
//! Windows shrink with the time scale (only ever above 1 against a time-scaled simulator).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The rate-limited actions, one bucket per action and identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Act {
    AppList,
    AppGet,
    AppCreate,
    AppDelete,
    MachineList,
    MachineGet,
    MachineCreate,
    MachineUpdate,
    MachineDelete,
    MachineStart,
    MachineStop,
    MachineWait,
    LeaseGet,
    LeaseCreate,
    LeaseRelease,
    MetadataSet,
    VolumeList,
    VolumeGet,
    VolumeCreate,
    VolumeUpdate,
    VolumeExtend,
    VolumeDelete,
    SnapshotList,
    SnapshotCreate,
    SecretsList,
    SecretsUpdate,
    IpList,
    IpAssign,
    IpRelease,
    CertList,
    CertGet,
    CertCreate,
    CertCheck,
    CertDelete,
    RegionsGet,
}

impl Act {
    /// (sustained requests per second, burst).
    pub fn limits(self) -> (f64, f64) {
        match self {
            Act::MachineGet => (5.0, 10.0),
            Act::AppDelete => (100.0 / 60.0, 100.0),
            _ => (1.0, 3.0),
        }
    }

    /// Whether the action changes anything (reads are retried freely).
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Act::AppList
                | Act::AppGet
                | Act::MachineList
                | Act::MachineGet
                | Act::MachineWait
                | Act::LeaseGet
                | Act::VolumeList
                | Act::VolumeGet
                | Act::SnapshotList
                | Act::SecretsList
                | Act::IpList
                | Act::CertList
                | Act::RegionsGet
                | Act::CertGet
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct Limiter {
    scale: f64,
    enabled: bool,
    buckets: Mutex<HashMap<(Act, String), Bucket>>,
}

impl Limiter {
    pub fn new(scale: f64, enabled: bool) -> Limiter {
        Limiter {
            scale: if scale.is_finite() && scale > 0.0 {
                scale
            } else {
                1.0
            },
            enabled,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// How long the caller must wait for its token (the token is reserved now).
    pub fn reserve(&self, act: Act, id: &str, now: Instant) -> Duration {
        if !self.enabled {
            return Duration::ZERO;
        }
        let (rate, burst) = act.limits();
        let rate = rate * self.scale;
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        let b = buckets.entry((act, id.to_string())).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / rate)
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self, act: Act, id: &str) {
        let wait = self.reserve(act, id, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// After a 429: the server's bucket is emptier than ours; push ours back so that the
    /// next reservation waits at least `retry_after` (real time).
    pub fn penalize(&self, act: Act, id: &str, retry_after: Duration) {
        if !self.enabled {
            return;
        }
        let (rate, _) = act.limits();
        let rate = rate * self.scale;
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(b) = buckets.get_mut(&(act, id.to_string())) {
            let debt = retry_after.as_secs_f64() * rate;
            b.tokens = b.tokens.min(-debt + 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_per_second() {
        let l = Limiter::new(1.0, true);
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.reserve(Act::AppCreate, "org", t), Duration::ZERO);
        }
        // The 4th and 5th wait 1 s and 2 s: reservations queue.
        assert_eq!(l.reserve(Act::AppCreate, "org", t), Duration::from_secs(1));
        assert_eq!(l.reserve(Act::AppCreate, "org", t), Duration::from_secs(2));
        // Other identifiers and actions have their own buckets.
        assert_eq!(l.reserve(Act::AppCreate, "other", t), Duration::ZERO);
        assert_eq!(l.reserve(Act::MachineCreate, "org", t), Duration::ZERO);
    }

    #[test]
    fn get_machine_and_app_delete_limits() {
        let l = Limiter::new(1.0, true);
        let t = Instant::now();
        for _ in 0..10 {
            assert_eq!(l.reserve(Act::MachineGet, "m", t), Duration::ZERO);
        }
        assert_eq!(
            l.reserve(Act::MachineGet, "m", t),
            Duration::from_millis(200)
        );
        for _ in 0..100 {
            assert_eq!(l.reserve(Act::AppDelete, "*", t), Duration::ZERO);
        }
        assert_eq!(
            l.reserve(Act::AppDelete, "*", t),
            Duration::from_millis(600)
        );
    }

    #[test]
    fn time_scale_and_disabled() {
        let l = Limiter::new(100.0, true);
        let t = Instant::now();
        for _ in 0..3 {
            l.reserve(Act::VolumeCreate, "a", t);
        }
        assert_eq!(
            l.reserve(Act::VolumeCreate, "a", t),
            Duration::from_millis(10)
        );
        let off = Limiter::new(1.0, false);
        for _ in 0..100 {
            assert_eq!(off.reserve(Act::VolumeCreate, "a", t), Duration::ZERO);
        }
    }
}
