//! Secret values and their fingerprints.
//!
//! Values are read from the referenced environment variables and files only when they
//! are needed (apply, or a live plan), held in [`SecretValue`] (redacted `Debug`, zeroed on
//! drop) and never printed, logged, journaled or saved.
//!
//! Change detection uses a keyed fingerprint: `HMAC-SHA256(key, value)` truncated to 64
//! bits, where `key = SHA-256("flotilla-secret-fp-v1" ‖ org ‖ app ‖ name)`. Each Machine
//! records, in its `flotilla_secrets` metadata, the fingerprints of the app secrets it was
//! last (re)started with (`NAME:fp,NAME:fp`). A secret whose fingerprint differs from the
//! one the Machines recorded is set once, and the app's Machines are updated so they load
//! it.
//!
//! Threat model: metadata is readable by anyone with access to the organization's
//! Machines — who can also read those Machines' environment, secrets included — so the
//! fingerprint reveals nothing that access does not already give. The per-app,
//! per-name key stops precomputed tables and stops correlating one value across apps or
//! names; 64 bits keep accidental collisions out of reach for change detection. A
//! low-entropy secret could still be guessed offline from its fingerprint by someone with
//! that access; use generated secrets.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::diag::{Diagnostic, Diagnostics};
use crate::resource::{Address, Desired, META_SECRETS, SecretSource, Spec};

/// A secret value: redacted in `Debug`, zeroed when dropped.
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(v: String) -> Self {
        SecretValue(v)
    }

    /// The value, for the one place that sends it to Fly.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Values by secret address.
#[derive(Debug, Default)]
pub struct SecretValues {
    pub values: HashMap<Address, SecretValue>,
}

/// The fingerprint of one secret value.
pub fn fingerprint(org: &str, app: &str, name: &str, value: &str) -> String {
    let mut kh = Sha256::new();
    for part in ["flotilla-secret-fp-v1", org, app, name] {
        kh.update((part.len() as u64).to_be_bytes());
        kh.update(part.as_bytes());
    }
    let key = kh.finalize();
    // HMAC accepts keys of any length; this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return String::new();
    };
    mac.update(value.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..8])
}

/// Reads every secret of `desired` from its environment variable or file (files are
/// relative to `spec_dir`, confined and bounded by `files`:
/// [`crate::secret_files::FilePolicy::read`]). All missing values are reported together,
/// by name only.
pub fn load_values(
    desired: &Desired,
    spec_dir: &Path,
    files: &crate::secret_files::FilePolicy,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SecretValues, Diagnostics> {
    let mut out = SecretValues::default();
    let mut errors = Diagnostics::new();
    for r in desired.resources.iter() {
        let Spec::Secret(s) = &r.spec else { continue };
        let value = match &s.source {
            SecretSource::Env(var) => match env(var) {
                Some(v) if !v.is_empty() => Ok(v),
                Some(_) => Err(format!("environment variable {var} is empty")),
                None => Err(format!("environment variable {var} is not set")),
            },
            SecretSource::File(f) => match files.read(spec_dir, f) {
                Ok(v) if v.is_empty() => {
                    Err(format!("file {} is empty", spec_dir.join(f).display()))
                }
                Ok(v) => Ok(v),
                Err(refusal) => Err(format!("secret file {}", refusal.message())),
            },
            SecretSource::Unknown => continue,
        };
        match value {
            Ok(v) => {
                out.values.insert(r.address.clone(), SecretValue::new(v));
            }
            Err(msg) => errors.push(
                Diagnostic::error(format!("secret {} of app {}: {msg}", s.name, r.app))
                    .address(r.address.to_string())
                    .hint("export the variable (or create the file) before applying; the value is never printed or stored"),
            ),
        }
    }
    if errors.has_errors() {
        errors.sort();
        return Err(errors);
    }
    Ok(out)
}

/// Records the fingerprints of the values in the desired state: on each secret, and on
/// each Machine as the `flotilla_secrets` metadata it will be started with.
pub fn apply_fingerprints(desired: &mut Desired, values: &SecretValues) {
    let org = desired.org.clone();
    let mut by_app: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    for r in &mut desired.resources.resources {
        let app = r.app.clone();
        if let Spec::Secret(s) = &mut r.spec
            && let Some(v) = values.values.get(&r.address)
        {
            let fp = fingerprint(&org, &app, &s.name, v.expose());
            by_app
                .entry(app)
                .or_default()
                .insert(s.name.clone(), fp.clone());
            s.fingerprint = Some(fp);
        }
    }
    for r in &mut desired.resources.resources {
        if let Spec::Machine(m) = &mut r.spec
            && let Some(fps) = by_app.get(&r.app)
        {
            m.metadata.insert(META_SECRETS.to_string(), encode(fps));
        }
    }
}

/// `NAME:fp,NAME:fp` in name order.
pub fn encode(fps: &BTreeMap<String, String>) -> String {
    fps.iter()
        .map(|(n, f)| format!("{n}:{f}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `NAME:fp,NAME:fp`.
pub fn decode(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter_map(|item| item.split_once(':'))
        .map(|(n, f)| (n.to_string(), f.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_keyed_and_stable() {
        let a = fingerprint("org", "app-a", "KEY", "value");
        assert_eq!(a.len(), 16);
        assert_eq!(a, fingerprint("org", "app-a", "KEY", "value"));
        assert_ne!(a, fingerprint("org", "app-b", "KEY", "value"));
        assert_ne!(a, fingerprint("org", "app-a", "OTHER", "value"));
        assert_ne!(a, fingerprint("org", "app-a", "KEY", "value2"));
        // Length-prefixed key parts: no ambiguity between ("ab","c") and ("a","bc").
        assert_ne!(
            fingerprint("o", "ab", "c", "v"),
            fingerprint("o", "a", "bc", "v")
        );
    }

    #[test]
    fn encode_decode() {
        let m: BTreeMap<String, String> =
            [("B".into(), "2".into()), ("A".into(), "1".into())].into();
        assert_eq!(encode(&m), "A:1,B:2");
        assert_eq!(decode("A:1,B:2"), m);
        assert!(decode("").is_empty());
    }

    #[test]
    fn debug_is_redacted() {
        let v = SecretValue::new("hunter2".into());
        assert_eq!(format!("{v:?}"), "SecretValue(***)");
    }

    #[test]
    fn missing_values_are_reported_by_name() {
        let spec = b"version: 1\norg: o\ndefaults: {image: i, region: iad, secrets: {A: {env: FLOTILLA_TEST_A}, B: {file: nope.txt}}}\ntenants: [{name: t}]\n";
        let d = crate::spec::load_bytes(spec, "s.yaml").unwrap().desired;
        let files = crate::secret_files::FilePolicy::default();
        let e = load_values(&d, Path::new("/nonexistent"), &files, &|_| None).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("FLOTILLA_TEST_A is not set") && s.contains("nope.txt"),
            "{s}"
        );
        let ok = load_values(&d, Path::new("/nonexistent"), &files, &|v| {
            (v == "FLOTILLA_TEST_A").then(|| "x".to_string())
        });
        assert!(ok.is_err(), "the file is still missing");
    }
}
