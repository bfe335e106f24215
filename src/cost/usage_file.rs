//! The usage file (`flotilla cost SPEC --usage FILE`, `flotilla plan SPEC --usage FILE`):
//! usage assumptions kept apart from the spec, e.g. figures measured from last month's
//! invoice, overriding the spec's `usage:` for the whole fleet, a tier, a tenant or one
//! resource. Its keys are the spec's `usage.*` settings (the same declarations in
//! `spec::decl`, the same types and ranges), read with the spec's positioned YAML reader
//! and schema checker, so every problem names file:line:column.
//!
//! Precedence, per key: `resources.<address>` > `tenants.<name>` > `tiers.<name>` >
//! `defaults` > the spec's usage (which itself layers defaults → tier → tenant). A key
//! the file does not set keeps the spec's value.
//!
//! Pure: parsing takes bytes; [`template`] returns text. Reading the file is the
//! operation's job (bounded, regular files only).

use std::fmt::Write as _;

use rust_decimal::Decimal;

use crate::diag::{Diagnostic, Diagnostics, Mark, suggest};
use crate::resource::{Desired, Resource, ResourceSet, Usage};
use crate::spec::decl;
use crate::spec::schema::{Checker, Field, Ty, f};
use crate::spec::yaml::{self, Node};

const USAGE_TY: Ty = Ty::Struct(decl::USAGE_FIELDS);

/// The keys of a usage file.
const TOP: &[Field] = &[
    f("version", Ty::Int { min: 1, max: 1 }),
    f("defaults", USAGE_TY),
    f("tiers", Ty::Dict(&USAGE_TY)),
    f("tenants", Ty::Dict(&USAGE_TY)),
    f("resources", Ty::Dict(&USAGE_TY)),
];

/// The usage keys one entry of the file sets (`None`: keep the value below it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    pub active_hours_per_day: Option<Decimal>,
    pub rootfs_gb: Option<Decimal>,
    pub egress_gb_month: Option<Decimal>,
    pub private_egress_gb_month: Option<Decimal>,
    pub volume_used_gb: Option<Decimal>,
    pub snapshot_daily_change: Option<Decimal>,
    pub dedicated_ipv4: Option<u32>,
    pub certificates: Option<u32>,
    pub wildcard_certificates: Option<u32>,
}

impl Patch {
    fn read(node: &Node) -> Patch {
        let num = |s: &decl::Setting<decl::Number>| s.leaf(node).map(|(v, _)| v);
        let int = |s: &decl::Setting<decl::Count>| s.leaf(node).map(|(v, _)| v);
        Patch {
            active_hours_per_day: num(&decl::USAGE_ACTIVE_HOURS),
            rootfs_gb: num(&decl::USAGE_ROOTFS_GB),
            egress_gb_month: num(&decl::USAGE_EGRESS_GB),
            private_egress_gb_month: num(&decl::USAGE_PRIVATE_EGRESS_GB),
            volume_used_gb: num(&decl::USAGE_VOLUME_USED_GB),
            snapshot_daily_change: num(&decl::USAGE_SNAPSHOT_DAILY_CHANGE),
            dedicated_ipv4: int(&decl::USAGE_DEDICATED_IPV4),
            certificates: int(&decl::USAGE_CERTIFICATES),
            wildcard_certificates: int(&decl::USAGE_WILDCARD_CERTIFICATES),
        }
    }

    /// Sets every key this entry names.
    pub fn apply(&self, u: &mut Usage) {
        fn set<T: Copy>(slot: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *slot = v;
            }
        }
        set(&mut u.active_hours_per_day, self.active_hours_per_day);
        u.active_hours_declared |= self.active_hours_per_day.is_some();
        set(&mut u.rootfs_gb, self.rootfs_gb);
        set(&mut u.egress_gb_month, self.egress_gb_month);
        set(&mut u.private_egress_gb_month, self.private_egress_gb_month);
        if self.volume_used_gb.is_some() {
            u.volume_used_gb = self.volume_used_gb;
        }
        set(&mut u.snapshot_daily_change, self.snapshot_daily_change);
        set(&mut u.dedicated_ipv4, self.dedicated_ipv4);
        set(&mut u.certificates, self.certificates);
        set(&mut u.wildcard_certificates, self.wildcard_certificates);
    }
}

/// One named entry (a tier, a tenant or a resource address) and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub mark: Mark,
    pub patch: Patch,
}

/// A parsed usage file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFile {
    pub file: String,
    pub defaults: Patch,
    pub tiers: Vec<Entry>,
    pub tenants: Vec<Entry>,
    pub resources: Vec<Entry>,
}

fn entries(root: &Node, key: &str) -> Vec<Entry> {
    let Some(map) = root.get(key).and_then(Node::as_map) else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            Some(Entry {
                name: k.scalar_text()?.to_string(),
                mark: k.mark,
                patch: Patch::read(v),
            })
        })
        .collect()
}

/// Parses and checks a usage file; every problem at once, each with file:line:column.
pub fn parse(bytes: &[u8], file: &str) -> Result<UsageFile, Diagnostics> {
    let root = yaml::parse(bytes).map_err(|d| {
        Diagnostics::one(
            d.file(file)
                .hint("write one with `flotilla cost SPEC --usage-template`"),
        )
    })?;
    if root.as_map().is_none() && !root.is_null() {
        return Err(Diagnostics::one(
            Diagnostic::error(format!(
                "a usage file is a mapping (defaults, tiers, tenants, resources), found {}",
                root.type_name()
            ))
            .file(file)
            .at(root.mark)
            .hint("write one with `flotilla cost SPEC --usage-template`"),
        ));
    }
    let mut c = Checker::new();
    if !root.is_null() {
        c.check_struct(&root, "", &[TOP]);
    }
    if !c.diags.is_empty() {
        return Err(Diagnostics(
            c.diags.into_iter().map(|d| d.file(file)).collect(),
        ));
    }
    Ok(UsageFile {
        file: file.to_string(),
        defaults: root.get("defaults").map(Patch::read).unwrap_or_default(),
        tiers: entries(&root, "tiers"),
        tenants: entries(&root, "tenants"),
        resources: entries(&root, "resources"),
    })
}

impl UsageFile {
    fn unknown(&self, e: &Entry, what: &str, path: &str, names: &[&str]) -> Diagnostic {
        Diagnostic::error(format!("the spec has no {what} `{}`", e.name))
            .file(self.file.clone())
            .at(e.mark)
            .path(format!("{path}.{}", e.name))
            .hint(suggest(&e.name, names.iter().copied(), path))
    }

    /// Checks that every tier, tenant and address the file names exists in `d`.
    pub fn check(&self, d: &Desired) -> Result<(), Diagnostics> {
        let tiers: Vec<&str> = d.tenants.iter().filter_map(|t| t.tier.as_deref()).collect();
        let tenants: Vec<&str> = d.tenants.iter().map(|t| t.name.as_str()).collect();
        let addresses: Vec<&str> = d.resources.iter().map(|r| r.address.as_str()).collect();
        let mut out = Vec::new();
        for (list, what, path, names) in [
            (&self.tiers, "tier", "tiers", &tiers),
            (&self.tenants, "tenant", "tenants", &tenants),
            (&self.resources, "resource", "resources", &addresses),
        ] {
            for e in list {
                if !names.contains(&e.name.as_str()) {
                    out.push(self.unknown(e, what, path, names));
                }
            }
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(out))
        }
    }

    /// The usage `r` is priced with: the spec's (else `fallback`), then the file's
    /// defaults, tier, tenant and address entries, in that order.
    pub fn usage_for(&self, d: &Desired, r: &Resource, fallback: &Usage) -> Usage {
        let mut u = r.usage.as_deref().unwrap_or(fallback).clone();
        self.defaults.apply(&mut u);
        let tenant = r
            .tenant
            .as_deref()
            .and_then(|t| d.tenants.iter().find(|x| x.name == t));
        let tier = tenant.and_then(|t| t.tier.as_deref());
        let find = |list: &[Entry], name: Option<&str>| {
            name.and_then(|n| list.iter().find(|e| e.name == n).map(|e| e.patch.clone()))
        };
        for p in [
            find(&self.tiers, tier),
            find(&self.tenants, r.tenant.as_deref()),
            find(&self.resources, Some(r.address.as_str())),
        ]
        .into_iter()
        .flatten()
        {
            p.apply(&mut u);
        }
        u
    }

    /// Applies the file to a desired state: every resource's usage, and the default
    /// usage that resources without their own borrow.
    pub fn apply(&self, d: &mut Desired) {
        let fallback = d.default_usage.clone();
        let resources: Vec<Resource> = d
            .resources
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.usage = Some(self.usage_for(d, &r, &fallback).into());
                r
            })
            .collect();
        d.resources = ResourceSet::new(resources);
        self.defaults.apply(&mut d.default_usage);
    }
}

/// `key: value` lines of a usage, commented out, with each setting's description.
fn commented(out: &mut String, indent: &str, u: &Usage) {
    let n = |v: Decimal| v.normalize().to_string();
    let rows: [(&Field, String); 9] = [
        (&decl::USAGE_ACTIVE_HOURS.field, n(u.active_hours_per_day)),
        (&decl::USAGE_ROOTFS_GB.field, n(u.rootfs_gb)),
        (&decl::USAGE_EGRESS_GB.field, n(u.egress_gb_month)),
        (
            &decl::USAGE_PRIVATE_EGRESS_GB.field,
            n(u.private_egress_gb_month),
        ),
        (
            &decl::USAGE_VOLUME_USED_GB.field,
            u.volume_used_gb
                .map(n)
                .unwrap_or_else(|| "null  # the volume's size".into()),
        ),
        (
            &decl::USAGE_SNAPSHOT_DAILY_CHANGE.field,
            n(u.snapshot_daily_change),
        ),
        (
            &decl::USAGE_DEDICATED_IPV4.field,
            u.dedicated_ipv4.to_string(),
        ),
        (&decl::USAGE_CERTIFICATES.field, u.certificates.to_string()),
        (
            &decl::USAGE_WILDCARD_CERTIFICATES.field,
            u.wildcard_certificates.to_string(),
        ),
    ];
    for (field, value) in rows {
        let _ = writeln!(out, "{indent}# {}: {value}", field.name);
    }
}

/// A tenant's current usage: its first Machine's, with its app's addresses and
/// certificates.
fn tenant_usage(d: &Desired, tenant: &str) -> Usage {
    let mine = |r: &&Resource| r.tenant.as_deref() == Some(tenant);
    let of = |k: crate::resource::Kind| {
        d.resources
            .iter()
            .filter(mine)
            .find(|r| r.kind() == k)
            .and_then(|r| r.usage.as_deref().cloned())
    };
    let mut u = of(crate::resource::Kind::Machine).unwrap_or_else(|| d.default_usage.clone());
    if let Some(app) = of(crate::resource::Kind::App) {
        u.dedicated_ipv4 = app.dedicated_ipv4;
        u.certificates = app.certificates;
        u.wildcard_certificates = app.wildcard_certificates;
    }
    u
}

/// A usage file with every key, commented out at the spec's current values: fed back
/// unchanged it prices the fleet exactly as the spec does. Uncomment a key to change it.
pub fn template(d: &Desired, spec: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Usage assumptions for {spec}.");
    let _ = writeln!(
        out,
        "# flotilla cost {spec} --usage FILE (or flotilla plan ... --usage FILE)."
    );
    let _ = writeln!(
        out,
        "# Every key is optional and overrides the spec's usage for what its entry names."
    );
    let _ = writeln!(
        out,
        "# Precedence, per key: resources > tenants > tiers > defaults > the spec's usage."
    );
    let _ = writeln!(
        out,
        "# Commented values are the spec's current assumptions; uncomment to change one."
    );
    let _ = writeln!(out, "version: 1");
    let _ = writeln!(out, "defaults:");
    commented(&mut out, "  ", &d.default_usage);
    let mut tiers: Vec<&str> = d.tenants.iter().filter_map(|t| t.tier.as_deref()).collect();
    tiers.sort_unstable();
    tiers.dedup();
    if tiers.is_empty() {
        let _ = writeln!(out, "tiers: {{}}");
    } else {
        let _ = writeln!(out, "tiers:");
        for tier in tiers {
            let _ = writeln!(out, "  {tier}:");
            let first = d.tenants.iter().find(|t| t.tier.as_deref() == Some(tier));
            let u = first.map(|t| tenant_usage(d, &t.name));
            commented(&mut out, "    ", u.as_ref().unwrap_or(&d.default_usage));
        }
    }
    if d.tenants.is_empty() {
        let _ = writeln!(out, "tenants: {{}}");
    } else {
        let _ = writeln!(out, "tenants:");
        for t in &d.tenants {
            let _ = writeln!(out, "  {}:", t.name);
            commented(&mut out, "    ", &tenant_usage(d, &t.name));
        }
    }
    let _ = writeln!(
        out,
        "# Per resource, by address (see `flotilla cost {spec}`), e.g.:"
    );
    let _ = writeln!(
        out,
        "#   \"tenant.NAME.machine[0]\": {{ egress_gb_month: 10 }}"
    );
    let _ = writeln!(out, "resources: {{}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::{Item, price_set};
    use crate::pricing::Catalog;

    /// alice and carol in tier `std`, bob in tier `big` (tests/fixtures/cost/head.yaml).
    const SPEC: &str = include_str!("../../tests/fixtures/cost/head.yaml");

    fn desired() -> Desired {
        crate::spec::load_bytes(SPEC.as_bytes(), "head.yaml")
            .unwrap()
            .desired
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn priced(d: &Desired) -> crate::cost::CostReport {
        let c = Catalog::embedded().unwrap();
        let t = c.at("2026-02-01".parse().unwrap()).unwrap();
        price_set(t, &d.resources, &d.default_usage).unwrap()
    }

    fn amount(r: &crate::cost::CostReport, address: &str, item: Item) -> Decimal {
        r.lines
            .iter()
            .filter(|l| l.address.as_str() == address && l.item == item)
            .map(|l| l.monthly)
            .sum()
    }

    #[test]
    fn address_beats_tenant_beats_tier_beats_defaults_beats_spec() {
        let file = parse(
            b"version: 1
defaults: { egress_gb_month: 10, private_egress_gb_month: 5 }
tiers:
  std: { egress_gb_month: 20 }
  big: { egress_gb_month: 20 }
tenants:
  carol: { egress_gb_month: 30 }
  bob: { egress_gb_month: 30 }
resources:
  \"tenant.bob.machine[0]\": { egress_gb_month: 40 }
",
            "usage.yaml",
        )
        .unwrap();
        let mut dd = desired();
        file.check(&dd).unwrap();
        let before = priced(&dd);
        file.apply(&mut dd);
        let after = priced(&dd);
        // iad is north_america: $0.02 per GB to the internet, $0.006 private.
        // alice (std): tier 20 GB over defaults 10 → 20 × 0.02 = 0.40.
        // carol (std): tenant 30 GB over tier → 30 × 0.02 = 0.60.
        // bob (big): address 40 GB over tenant 30 → 40 × 0.02 = 0.80.
        for (t, want) in [("alice", "0.40"), ("carol", "0.60"), ("bob", "0.80")] {
            let a = format!("tenant.{t}.machine[0]");
            assert_eq!(amount(&after, &a, Item::Egress), d(want), "{t}");
            // Defaults only: 5 GB × 0.006 = 0.03 each.
            assert_eq!(amount(&after, &a, Item::PrivateEgress), d("0.03"), "{t}");
        }
        // Nothing else moves: 0.40 + 0.60 + 0.80 + 3 × 0.03 = 1.89.
        assert_eq!(after.total - before.total, d("1.89"));
        // Keys the file leaves alone keep the spec's values.
        let bob = dd
            .resources
            .iter()
            .find(|r| r.address.as_str() == "tenant.bob.machine[0]")
            .unwrap();
        assert_eq!(bob.usage.as_ref().unwrap().active_hours_per_day, d("24"));
    }

    #[test]
    fn a_tenant_entry_sets_app_counts_and_hours() {
        // carol: 1 dedicated IPv4 (1 × $2.00) and 2 certificates (inside the free 10:
        // 2 × $0.10 charged, 2 × $0.10 deducted by the organization line).
        let file = parse(
            b"tenants: { carol: { dedicated_ipv4: 1, certificates: 2 } }",
            "u.yaml",
        )
        .unwrap();
        let mut dd = desired();
        let before = priced(&dd);
        file.apply(&mut dd);
        let after = priced(&dd);
        assert_eq!(
            amount(&after, "tenant.carol.app", Item::DedicatedIpv4),
            d("2")
        );
        assert_eq!(
            amount(&after, "tenant.carol.app", Item::Certificate),
            d("0.2")
        );
        assert_eq!(after.total - before.total, d("2"));
    }

    #[test]
    fn the_template_round_trips() {
        let dd = desired();
        let text = template(&dd, "head.yaml");
        let file = parse(text.as_bytes(), "t.yaml").unwrap();
        file.check(&dd).unwrap();
        let mut again = dd.clone();
        file.apply(&mut again);
        assert_eq!(priced(&again), priced(&dd));
        for key in decl::USAGE_FIELDS {
            assert!(text.contains(&format!("# {}:", key.name)), "{}", key.name);
        }
    }

    #[test]
    fn errors_are_positioned_and_names_checked() {
        let e = parse(b"defaults:\n  egres_gb_month: 3\n", "u.yaml").unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("u.yaml:2:3") && s.contains("egress_gb_month"),
            "{s}"
        );
        let e = parse(b"tenants:\n  bob: { active_hours_per_day: 25 }\n", "u.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("u.yaml:2:"), "{e}");
        let f = parse(b"tenants:\n  alicee: {}\n", "u.yaml").unwrap();
        let e = f.check(&desired()).unwrap_err().to_string();
        assert!(e.contains("u.yaml:2:3") && e.contains("`alice`"), "{e}");
        let e = parse(b"- 1\n", "u.yaml").unwrap_err().to_string();
        assert!(e.contains("a usage file is a mapping"), "{e}");
    }
}
