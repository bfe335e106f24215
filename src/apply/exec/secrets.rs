//! Secrets: one request per app sets and removes its secrets. Fly's digests before and
//! after tell whether anything changed (equal digests, equal values), so Machines
//! restart only when their secrets really changed; the outcome is recorded in
//! [`Shared`] for the app's Machine updates.

use std::collections::{BTreeMap, HashMap};

use super::{OpError, OpResult, Shared};
use crate::resource::Address;

pub(super) async fn set(
    sh: &Shared,
    app: &str,
    set: &[(String, Address)],
    delete: &[String],
) -> OpResult {
    let mut values = BTreeMap::new();
    for (name, addr) in set {
        let v = sh.secrets.values.get(addr).ok_or_else(|| {
            OpError::internal(format!("the value of secret {name} was not loaded"))
        })?;
        values.insert(name.clone(), Some(v));
    }
    for name in delete {
        values.insert(name.clone(), None);
    }
    // In an app created a moment ago, Fly may answer 404 for a while.
    let update = || sh.client.update_secrets(app, &values);
    let after = if sh.app_is_new(app) {
        sh.client.fresh(update).await?
    } else {
        update().await?
    };
    let now: HashMap<&str, &str> = after
        .iter()
        .map(|s| (s.name.as_str(), s.digest.as_str()))
        .collect();
    let changed = !delete.is_empty() || set_changed(set, sh.observed_digests(app), &now);
    sh.set_secrets_changed(app, changed);
    sh.set_secret_digests(
        app,
        now.iter()
            .map(|(n, d)| (n.to_string(), d.to_string()))
            .collect(),
    );
    Ok(describe(set, delete, changed))
}

/// Whether any secret set differs from what Fly held before (or has no digest now).
fn set_changed(
    set: &[(String, Address)],
    before: Option<&HashMap<String, String>>,
    now: &HashMap<&str, &str>,
) -> bool {
    set.iter().any(|(name, _)| {
        let now = now.get(name.as_str()).copied();
        now.is_none() || before.and_then(|b| b.get(name)).map(String::as_str) != now
    })
}

fn describe(set: &[(String, Address)], delete: &[String], changed: bool) -> String {
    let names: Vec<&str> = set.iter().map(|(n, _)| n.as_str()).collect();
    let mut detail = format!(
        "set {}{}",
        if names.is_empty() {
            "nothing".to_string()
        } else {
            names.join(", ")
        },
        if changed { "" } else { " (values unchanged)" }
    );
    if !delete.is_empty() {
        detail.push_str(&format!("; removed {}", delete.join(", ")));
    }
    detail
}
