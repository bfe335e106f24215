//! Multi-request steps on one Machine or volume that `restore` and the executor's region
//! moves both take: waiting for a Machine state (a failed boot ends the wait at once),
//! waiting for a volume condition, and the record of volumes a Machine retired
//! ([`crate::resource::META_RETIRED`]). Written once so the two stay the same.

use std::time::Duration;

use crate::fly::client::Client;
use crate::wire::api as fly;

/// How many API seconds each wait (volume ready, Machine stopped or started) lasts at most.
pub const WAIT_SECS: u64 = 300;

/// Waits until the Machine is in `state` (and, for `started`, its checks pass); a
/// Machine that failed to boot is an error at once.
pub async fn wait_machine(client: &Client, app: &str, id: &str, state: &str) -> Result<(), String> {
    /// API seconds each round waits at most; the rounds add up to [`WAIT_SECS`].
    const ROUND_SECS: u64 = 5;
    let mut last = String::new();
    for _ in 0..WAIT_SECS / ROUND_SECS {
        let m = client
            .get_machine(app, id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("Machine {id} disappeared"))?;
        match (state, m.state.as_str()) {
            ("started", "failed") => {
                return Err(format!("Machine {id} failed to start (state failed)"));
            }
            // A Machine that failed to boot is as stopped as it gets: it can be updated.
            ("stopped", "failed") => return Ok(()),
            _ => {}
        }
        let failing = failing_checks(&m);
        if m.state == state && (state != "started" || failing.is_empty()) {
            return Ok(());
        }
        last = if failing.is_empty() {
            format!("state {}", m.state)
        } else {
            format!("checks not passing: {}", failing.join(", "))
        };
        if m.state == state {
            client.sleep(Duration::from_secs(1)).await;
        } else {
            client
                .wait(app, id, state, m.instance_id.as_deref(), ROUND_SECS)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Err(format!(
        "Machine {id} did not reach {state} within {WAIT_SECS} s ({last})"
    ))
}

/// The names of the Machine's checks that are not passing.
pub fn failing_checks(m: &fly::Machine) -> Vec<String> {
    m.checks
        .iter()
        .flatten()
        .filter(|c| c.status != "passing")
        .map(|c| c.name.clone())
        .collect()
}

/// Waits until volume `id` satisfies `ready`.
pub async fn wait_volume(
    client: &Client,
    app: &str,
    id: &str,
    ready: impl Fn(&fly::Volume) -> bool,
) -> Result<(), String> {
    for _ in 0..WAIT_SECS {
        let v = client
            .get_volume(app, id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("volume {id} disappeared"))?;
        if ready(&v) {
            return Ok(());
        }
        client.sleep(Duration::from_secs(1)).await;
    }
    Err(format!("volume {id} did not settle within {WAIT_SECS} s"))
}

/// The retired-volumes record with `old` added to the `existing` one (comma-separated
/// volume ids, empty entries dropped, no repeats).
pub fn retired_with(existing: Option<&str>, old: &str) -> String {
    let mut ids: Vec<&str> = existing
        .map(|l| l.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if !ids.contains(&old) {
        ids.push(old);
    }
    ids.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retired_record_appends_once() {
        assert_eq!(retired_with(None, "vol_1"), "vol_1");
        assert_eq!(retired_with(Some("vol_1,,"), "vol_2"), "vol_1,vol_2");
        assert_eq!(retired_with(Some("vol_1"), "vol_1"), "vol_1");
    }
}
