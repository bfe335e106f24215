//! Secret values and their fingerprints.
//!
//! Values are read from the referenced environment variables and files only when they
//! are needed (apply, or a live plan), held in [`SecretValue`] (redacted `Debug`, zeroed on
//! drop) and never printed, logged, journaled or saved.
//!
//! Change detection uses a keyed fingerprint, `HMAC-SHA256(k, value)` truncated to 64
//! bits, with a per-secret key `k` derived from org, app and name under the run's
//! [`Keying`]: a [`FingerprintKey`] the user holds (`FLOTILLA_FINGERPRINT_KEY`, or the
//! spec's `fingerprint_key:` reference — the caller reads it; this module never reads
//! the process environment for it), or, without one, the public derivation of earlier
//! versions (warned about). Each Machine records, in its metadata, the fingerprints of the
//! app secrets it was last (re)started with (`flotilla_secrets = NAME:fp,…`), the id of
//! the key they were made with (`flotilla_secrets_key`) and a tag of Fly's digest of each
//! secret right after flotilla set it (`flotilla_secret_digests`). A secret whose
//! fingerprint or key id differs from the recorded ones, or whose digest on Fly differs
//! from the recorded tag (changed outside flotilla), is set once, and the app's Machines
//! are updated so they load it — without a restart when Fly's digest did not change.
//!
//! Threat model: fingerprints never leave the Machines' metadata — plans show only
//! "changed", saved plans and `--show-state` files carry none — so the artifacts that
//! travel (PR comments, CI logs, plan files) give nothing to test a guessed value
//! against. A reader of Machine metadata without the key cannot confirm a guess either;
//! with the public fallback they can, for a low-entropy value, which is why it warns.
//! The per-app, per-name derivation stops precomputed tables and correlating one value
//! across apps or names; 64 bits keep accidental collisions out of reach. See
//! ARCHITECTURE.md, "Secrets and their fingerprints".

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::diag::{Diagnostic, Diagnostics};
use crate::resource::{Address, Desired, META_SECRETS, ResourceSet, SecretSource, Spec};

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

/// The fewest characters a fingerprint key may have (`openssl rand -hex 32` gives 64).
pub const MIN_KEY_LEN: usize = 32;

/// Machine metadata: the id of the key the recorded fingerprints were made with (absent:
/// the public derivation of earlier versions).
pub const META_SECRETS_KEY: &str = "flotilla_secrets_key";

/// Machine metadata: per secret, the tag of Fly's digest right after flotilla set it
/// (`NAME:tag,…`); a different digest on Fly later means the value was changed outside
/// flotilla.
pub const META_SECRET_DIGESTS: &str = "flotilla_secret_digests";

/// The key id of the public derivation, in comparisons (never recorded).
pub const PUBLIC_KEY_ID: &str = "public";

/// The metadata keys that record secrets on Machines; the executor writes them, plans
/// never show them.
pub const SECRET_METADATA: [&str; 3] = [META_SECRETS, META_SECRETS_KEY, META_SECRET_DIGESTS];

/// A short tag of one of Fly's secret digests, as Machines record it: 64 bits of a
/// domain-separated SHA-256, so that whatever Fly's digest format, the record is a
/// fixed-width hex string that only compares equal for the same digest.
pub fn digest_tag(fly_digest: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"flotilla-fly-digest-v1\0");
    h.update(fly_digest.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// A key the user holds, under which secret fingerprints are computed
/// (`FLOTILLA_FINGERPRINT_KEY`, or the spec's `fingerprint_key:` reference). Never shown
/// by `Debug`; zeroed when dropped. Its id, recorded beside the fingerprints, says which
/// key made them without revealing it.
#[derive(Clone, PartialEq, Eq)]
pub struct FingerprintKey {
    material: Vec<u8>,
    id: String,
}

impl FingerprintKey {
    /// A key from its text; refused when shorter than [`MIN_KEY_LEN`] characters (a
    /// short key could be guessed, and then every value behind it).
    pub fn new(material: &str) -> Result<FingerprintKey, String> {
        let material = material.trim();
        if material.chars().count() < MIN_KEY_LEN {
            return Err(format!(
                "the fingerprint key has fewer than {MIN_KEY_LEN} characters"
            ));
        }
        let mut h = Sha256::new();
        h.update(b"flotilla-fingerprint-key-id-v2\0");
        h.update(material.as_bytes());
        let id = format!("k{}", &hex::encode(h.finalize())[..12]);
        Ok(FingerprintKey {
            material: material.as_bytes().to_vec(),
            id,
        })
    }

    /// The key's id (`k` and 12 hex digits of a domain-separated SHA-256 of the key).
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FingerprintKey(<redacted>, id {})", self.id)
    }
}

impl Drop for FingerprintKey {
    fn drop(&mut self) {
        self.material.zeroize();
    }
}

/// How one run computes fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keying {
    /// Under a key the user holds: a fingerprint proves nothing to anyone without it.
    Key(FingerprintKey),
    /// No key was given: the public derivation (org, app and name), which anyone who can
    /// read the fingerprints can use to confirm a guessed value. Kept so that fleets
    /// without a key still see value changes; warned about on every use.
    Public,
}

impl Keying {
    /// The key id recorded beside the fingerprints (`None`: the public derivation).
    pub fn id(&self) -> Option<&str> {
        match self {
            Keying::Key(k) => Some(k.id()),
            Keying::Public => None,
        }
    }

    /// The fingerprint of one secret value: `HMAC-SHA256(k, value)` truncated to 64 bits,
    /// where `k` is derived per org, app and secret name — from the user's key
    /// (`HMAC-SHA256(key, "flotilla-secret-fp-v2" ‖ org ‖ app ‖ name)`), or, without
    /// one, publicly (`SHA-256("flotilla-secret-fp-v1" ‖ org ‖ app ‖ name)`). Parts are
    /// length-prefixed.
    pub fn fingerprint(&self, org: &str, app: &str, name: &str, value: &str) -> String {
        let subkey: Vec<u8> = match self {
            Keying::Key(k) => {
                let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&k.material) else {
                    return String::new();
                };
                for part in ["flotilla-secret-fp-v2", org, app, name] {
                    mac.update(&(part.len() as u64).to_be_bytes());
                    mac.update(part.as_bytes());
                }
                mac.finalize().into_bytes().to_vec()
            }
            Keying::Public => {
                let mut kh = Sha256::new();
                for part in ["flotilla-secret-fp-v1", org, app, name] {
                    kh.update((part.len() as u64).to_be_bytes());
                    kh.update(part.as_bytes());
                }
                kh.finalize().to_vec()
            }
        };
        // HMAC accepts keys of any length; this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&subkey) else {
            return String::new();
        };
        mac.update(value.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..8])
    }
}

/// The warning a run without a fingerprint key carries whenever it fingerprints values.
pub fn public_keying_warning() -> Diagnostic {
    Diagnostic::warning(
        "no fingerprint key: the secret fingerprints recorded on Machines are derived from public data (org, app, name), so anyone who can read Machine metadata can confirm a guessed value",
    )
    .hint("set FLOTILLA_FINGERPRINT_KEY (e.g. `openssl rand -hex 32`) or declare `fingerprint_key: { env: NAME }` in the spec; see README \"Secrets\"")
}

/// Reads every secret of `desired` from its environment variable or file (files are
/// relative to `spec_dir`, confined and bounded by `files`:
/// [`crate::secret_files::FilePolicy::read`]). All missing values are reported together,
/// by name only, one error per variable or file with the apps that need it (a fleet's
/// tenants usually share their secrets' sources).
pub fn load_values(
    desired: &Desired,
    spec_dir: &Path,
    files: &crate::secret_files::FilePolicy,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SecretValues, Diagnostics> {
    let mut out = SecretValues::default();
    let mut missing: BTreeMap<String, Vec<(&str, &str, &crate::resource::Address)>> =
        BTreeMap::new();
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
            Err(msg) => {
                missing
                    .entry(msg)
                    .or_default()
                    .push((s.name.as_str(), r.app.as_str(), &r.address))
            }
        }
    }
    if missing.is_empty() {
        return Ok(out);
    }
    let mut errors = Diagnostics::new();
    for (msg, needs) in &missing {
        errors.push(missing_value(msg, needs));
    }
    Err(errors)
}

/// One missing secret source: what is wrong, and which secrets of which apps need it
/// (the first few apps named, the rest counted).
fn missing_value(msg: &str, needs: &[(&str, &str, &crate::resource::Address)]) -> Diagnostic {
    const SHOWN: usize = 5;
    let mut names: Vec<&str> = needs.iter().map(|(name, _, _)| *name).collect();
    names.sort_unstable();
    names.dedup();
    let apps: Vec<&str> = needs.iter().map(|(_, app, _)| *app).collect();
    let listed = apps
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    let more = match apps.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let secrets = if names.len() == 1 {
        "secret"
    } else {
        "secrets"
    };
    let app_word = if apps.len() == 1 { "app" } else { "apps" };
    let d = Diagnostic::error(format!(
        "{msg}: needed by {secrets} {} of {} {app_word} ({listed}{more})",
        names.join(", "),
        apps.len()
    ))
    .hint("export the variable (or create the file) before applying; the value is never printed or stored");
    match needs.first() {
        Some((_, _, address)) => d.address(address.to_string()),
        None => d,
    }
}

/// Records the fingerprints of the values in the desired state: on each secret, and on
/// each Machine as the `flotilla_secrets` metadata it will be started with, beside the
/// key's id (`flotilla_secrets_key`, absent for the public derivation).
pub fn apply_fingerprints(desired: &mut Desired, values: &SecretValues, keying: &Keying) {
    let org = desired.org.clone();
    let mut by_app: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    for r in &mut desired.resources.resources {
        let app = r.app.clone();
        if let Spec::Secret(s) = &mut r.spec
            && let Some(v) = values.values.get(&r.address)
        {
            let fp = keying.fingerprint(&org, &app, &s.name, v.expose());
            by_app
                .entry(app)
                .or_default()
                .insert(s.name.clone(), fp.clone());
            s.fingerprint = Some(fp);
            s.fingerprint_key = Some(keying.id().unwrap_or(PUBLIC_KEY_ID).to_string());
        }
    }
    for r in &mut desired.resources.resources {
        if let Spec::Machine(m) = &mut r.spec
            && let Some(fps) = by_app.get(&r.app)
        {
            m.metadata.insert(META_SECRETS.to_string(), encode(fps));
            match keying.id() {
                Some(id) => m
                    .metadata
                    .insert(META_SECRETS_KEY.to_string(), id.to_string()),
                None => m.metadata.remove(META_SECRETS_KEY),
            };
        }
    }
}

/// Removes every fingerprint from a set of resources (a saved plan's desired state):
/// the secrets' and the Machines' recorded ones, with the key id.
pub fn strip_fingerprints(set: &mut ResourceSet) {
    for r in &mut set.resources {
        match &mut r.spec {
            Spec::Secret(s) => {
                s.fingerprint = None;
                s.fingerprint_key = None;
            }
            Spec::Machine(m) => {
                m.metadata.remove(META_SECRETS);
                m.metadata.remove(META_SECRETS_KEY);
            }
            _ => {}
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

    fn key(text: &str) -> Keying {
        Keying::Key(FingerprintKey::new(text).unwrap())
    }

    #[test]
    fn fingerprints_are_keyed_and_stable() {
        for k in [Keying::Public, key(&"k".repeat(32))] {
            let fingerprint = |o: &str, a: &str, n: &str, v: &str| k.fingerprint(o, a, n, v);
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
    }

    #[test]
    fn a_key_changes_every_fingerprint_and_its_id_reveals_nothing_short() {
        let k1 = FingerprintKey::new(&"a".repeat(40)).unwrap();
        let k2 = FingerprintKey::new(&"b".repeat(40)).unwrap();
        assert_ne!(k1.id(), k2.id());
        assert!(
            k1.id().starts_with('k') && k1.id().len() == 13,
            "{}",
            k1.id()
        );
        assert!(!k1.id().contains("aaaa"));
        let (a, b) = (Keying::Key(k1.clone()), Keying::Key(k2));
        let public = Keying::Public.fingerprint("o", "app", "KEY", "hunter2");
        let fa = a.fingerprint("o", "app", "KEY", "hunter2");
        assert_ne!(fa, public, "a key is not the public derivation");
        assert_ne!(fa, b.fingerprint("o", "app", "KEY", "hunter2"));
        assert_eq!(a.id(), Some(k1.id()));
        assert_eq!(Keying::Public.id(), None);
        // Surrounding whitespace (a trailing newline from a file) is not part of the key.
        let padded = FingerprintKey::new(&format!("  {}\n", "a".repeat(40))).unwrap();
        assert_eq!(padded.id(), k1.id());
    }

    #[test]
    fn short_keys_are_refused_and_keys_never_shown() {
        let e = FingerprintKey::new("hunter2").unwrap_err();
        assert!(e.contains("32"), "{e}");
        assert!(!e.contains("hunter2"));
        let k = FingerprintKey::new(&format!("{}-topsecret", "z".repeat(30))).unwrap();
        let shown = format!("{k:?} {:?}", Keying::Key(k.clone()));
        assert!(
            !shown.contains("topsecret") && !shown.contains("zzzz"),
            "{shown}"
        );
    }

    #[test]
    fn fingerprints_and_the_key_id_go_on_machines() {
        let spec = b"version: 1\norg: o\ndefaults: {image: i, region: iad, secrets: {A: {env: A}}}\ntenants: [{name: t}]\n";
        let mut d = crate::spec::load_bytes(spec, "s.yaml").unwrap().desired;
        let v = load_values(
            &d,
            Path::new("/nonexistent"),
            &crate::secret_files::FilePolicy::default(),
            &|_| Some("x".into()),
        )
        .unwrap();
        let k = key(&"q".repeat(32));
        apply_fingerprints(&mut d, &v, &k);
        let m = d.resources.iter().find_map(|r| r.machine()).unwrap();
        assert_eq!(m.metadata.get(META_SECRETS_KEY).map(String::as_str), k.id());
        let fp = k.fingerprint("o", &d.apps[0], "A", "x");
        assert_eq!(m.metadata.get(META_SECRETS), Some(&format!("A:{fp}")));
        apply_fingerprints(&mut d, &v, &Keying::Public);
        let m = d.resources.iter().find_map(|r| r.machine()).unwrap();
        assert!(!m.metadata.contains_key(META_SECRETS_KEY));
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

    #[test]
    fn one_error_per_missing_variable_names_the_apps_that_need_it() {
        let spec = b"version: 1\norg: o\ndefaults: {image: i, region: iad, secrets: {A: {env: FLOTILLA_TEST_A}, B: {env: FLOTILLA_TEST_B}}}\ntenants: [{name: t1}, {name: t2}, {name: t3}, {name: t4}, {name: t5}, {name: t6}, {name: t7}]\n";
        let d = crate::spec::load_bytes(spec, "s.yaml").unwrap().desired;
        let files = crate::secret_files::FilePolicy::default();
        let e = load_values(&d, Path::new("/nonexistent"), &files, &|_| None).unwrap_err();
        assert_eq!(e.error_count(), 2, "{e}");
        let s = e.to_string();
        assert!(
            s.contains("environment variable FLOTILLA_TEST_A is not set: needed by secret A of 7 apps (o-t1, o-t2, o-t3, o-t4, o-t5 and 2 more)"),
            "{s}"
        );
    }
}
