//! Eventual consistency right after a create: Fly can answer 404 for a moment to a
//! `wait` or get of a Machine it just created, and to a get of an app it just created
//! (superfly/flyctl#4618, #3112). Reads made right after a create go through
//! [`Client::fresh`], which repeats such a 404 a bounded number of times with backoff
//! in API time; a 404 that outlasts the attempts is returned as it came (method, path,
//! status, body). Reads of anything not just created never use it: there a 404 means
//! gone.

use std::time::Duration;

use super::{ApiError, Client, enc};
use crate::fly::ratelimit::Act;
use crate::wire::api as fly;

/// Attempts of a read right after a create while it answers 404 (the first included):
/// with [`fresh_delay`] they span about 10 s of API time.
pub const FRESH_READ_ATTEMPTS: u32 = 7;

/// The pause (API time) after the `attempt`-th 404 (1-based): 250 ms doubling, at most 2 s.
pub fn fresh_delay(attempt: u32) -> Duration {
    let ms = 250u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(8));
    Duration::from_millis(ms.min(2_000))
}

impl Client {
    /// Runs `read` (made right after a create) until it answers something other than
    /// 404, at most [`FRESH_READ_ATTEMPTS`] times.
    pub async fn fresh<T, F, Fut>(&self, mut read: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let mut attempt = 1;
        loop {
            match read().await {
                Err(e) if e.is_not_found() && attempt < FRESH_READ_ATTEMPTS => {
                    self.count_retry();
                    self.sleep(fresh_delay(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// A Machine created a moment ago; a 404 is retried (see [`Client::fresh`]), one
    /// that persists is an error.
    pub async fn get_new_machine(&self, app: &str, id: &str) -> Result<fly::Machine, ApiError> {
        let path = format!("/apps/{}/machines/{}", enc(app), enc(id));
        self.fresh(|| self.get(&path, Act::MachineGet, id)).await
    }

    /// An app created a moment ago (or whose create's outcome is unknown): `None` when
    /// it stays invisible through the retries.
    pub async fn get_new_app(&self, app: &str) -> Result<Option<fly::App>, ApiError> {
        let path = format!("/apps/{}", enc(app));
        match self.fresh(|| self.get(&path, Act::AppGet, app)).await {
            Ok(a) => Ok(Some(a)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`Client::wait`] on a Machine created a moment ago.
    pub async fn wait_new(
        &self,
        app: &str,
        id: &str,
        state: &str,
        timeout_secs: u64,
    ) -> Result<bool, ApiError> {
        self.fresh(|| self.wait(app, id, state, None, timeout_secs))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let d: Vec<u64> = (1..FRESH_READ_ATTEMPTS)
            .map(|a| fresh_delay(a).as_millis() as u64)
            .collect();
        assert_eq!(d, vec![250, 500, 1000, 2000, 2000, 2000]);
        assert_eq!(fresh_delay(40), Duration::from_secs(2));
        // Long enough to outlast a moment of invisibility, short enough to fail soon.
        let total: u64 = d.iter().sum();
        assert!((5_000..=15_000).contains(&total), "{total}");
    }
}
