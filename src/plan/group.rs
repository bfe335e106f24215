//! Grouping of a plan's changes: at fleet scale most changes are the same change made to
//! many tenants (an image roll-out touches every tenant's `machine[0]` alike), and a plan
//! that prints each of them once per tenant cannot be read. Changes are grouped when they
//! touch the same slot of their owner (`machine[0]`, `volume.data[0]`) of the same kind,
//! with the same action, flags, field changes (same before and after) and reasons; a
//! created resource also by the shape of what is created (its description without the
//! owner's names). One pass with a hash map: O(n) in the number of changes.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};

use foldhash::{HashMap, HashMapExt};

use super::{Action, Change, FieldChange, FieldPath, GuestField};
use crate::money::Usd;
use crate::resource::{Kind, Owner};

/// Changes that are one change made to several owners (or a single change).
#[derive(Debug, Clone)]
pub struct ChangeGroup<'a> {
    /// The members, in plan order; the first stands for all.
    pub members: Vec<&'a Change>,
    /// The address within its owner (`machine[0]`), or the whole address of a change
    /// without an owner. The owner's name inside it reads `{tenant}` (`{app}`), so that
    /// `cert#alice.example.com` and `cert#bob.example.com` are one slot,
    /// `cert#{tenant}.example.com`.
    pub slot: Cow<'a, str>,
    /// Whether the members' owners are tenants (else shared apps, or no owner).
    pub tenants: bool,
    /// What a created resource is, without its owner's names (creates only).
    pub shape: Option<String>,
    /// The members' costs, added up as they join: a group of a large fleet's plan has
    /// tens of thousands of members spread over the plan, and reading them again costs
    /// a cache miss each.
    costs: GroupCosts,
}

/// The running cost totals of a group's members.
#[derive(Debug, Clone, Copy)]
struct GroupCosts {
    priced: bool,
    before: Usd,
    after: Usd,
    /// The first member's cost change, while every member's is the same.
    each: Option<Usd>,
}

impl GroupCosts {
    fn of(c: &Change) -> GroupCosts {
        GroupCosts {
            priced: false,
            before: Usd::ZERO,
            after: Usd::ZERO,
            each: Some(delta(c)),
        }
        .with(c)
    }

    fn with(mut self, c: &Change) -> GroupCosts {
        self.priced |= c.monthly_cost_before.is_some() || c.monthly_cost_after.is_some();
        self.before += c.monthly_cost_before.unwrap_or_default();
        self.after += c.monthly_cost_after.unwrap_or_default();
        self.each = self.each.filter(|d| *d == delta(c));
        self
    }
}

/// A change's monthly cost change (a side without a figure counts as zero).
fn delta(c: &Change) -> Usd {
    c.monthly_cost_after.unwrap_or_default() - c.monthly_cost_before.unwrap_or_default()
}

impl<'a> ChangeGroup<'a> {
    fn new(c: &'a Change, slot: Cow<'a, str>, tenants: bool, shape: Option<String>) -> Self {
        ChangeGroup {
            members: vec![c],
            slot,
            tenants,
            shape,
            costs: GroupCosts::of(c),
        }
    }

    fn push(&mut self, c: &'a Change) {
        self.members.push(c);
        self.costs = self.costs.with(c);
    }

    /// The change every member makes.
    pub fn first(&self) -> &'a Change {
        self.members[0]
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// One change of one resource, shown with its address.
    pub fn is_single(&self) -> bool {
        self.members.len() == 1
    }

    /// The members' owner names (tenants or shared apps), in plan order.
    pub fn owner_names(&self) -> impl DoubleEndedIterator<Item = &'a str> + '_ {
        self.members
            .iter()
            .filter_map(|c| c.address.owner().map(|o| o.name()))
    }

    /// The members' monthly cost before and after, summed, when any member has one.
    pub fn monthly(&self) -> Option<(Usd, Usd)> {
        let c = self.costs;
        c.priced.then_some((c.before, c.after))
    }

    /// Each member's monthly cost change when they all change by the same amount.
    pub fn monthly_each(&self) -> Option<Usd> {
        self.costs.each
    }
}

/// The address text after its owner's prefix (`machine[0]`), with whether the owner is
/// a tenant; a change without an owner keeps its whole address.
fn slot_of(c: &Change) -> (&str, Option<bool>) {
    let text = c.address.as_str();
    let Some(owner) = c.address.owner() else {
        return (text, None);
    };
    let (scope, tenant) = match owner {
        Owner::Tenant(_) => ("tenant.", true),
        Owner::SharedApp(_) => ("app.", false),
    };
    let skip = scope.len() + owner.name().len();
    let rest = text.get(skip..).unwrap_or(text);
    (rest.strip_prefix('.').unwrap_or(rest), Some(tenant))
}

/// `text` with the owner's name in it written as `{tenant}` (`{app}`): names derived
/// from the owner's group as one slot. Names of one character are left alone.
fn owner_templated<'t>(text: &'t str, c: &Change) -> Cow<'t, str> {
    match c.address.owner() {
        Some(owner) if owner.name().len() > 1 && text.contains(owner.name()) => {
            let word = match owner {
                Owner::Tenant(_) => "{tenant}",
                Owner::SharedApp(_) => "{app}",
            };
            Cow::Owned(text.replace(owner.name(), word))
        }
        _ => Cow::Borrowed(text),
    }
}

/// What makes two changes the same change (borrowed from the first member).
struct Key<'a> {
    slot: Cow<'a, str>,
    owner: Option<bool>,
    kind: Kind,
    action: Action,
    flags: u8,
    fields: &'a [FieldChange],
    reasons: &'a [String],
    shape: Option<String>,
}

impl<'a> Key<'a> {
    fn of(c: &'a Change, shape: Option<String>) -> Key<'a> {
        let (slot, owner) = slot_of(c);
        let slot = owner_templated(slot, c);
        let shape = shape.map(|s| {
            let templated = match owner_templated(&s, c) {
                Cow::Owned(t) => Some(t),
                Cow::Borrowed(_) => None,
            };
            templated.unwrap_or(s)
        });
        let flags = u8::from(c.restart)
            | u8::from(c.stays_idle) << 1
            | u8::from(c.adopt) << 2
            | u8::from(c.data_loss) << 3
            | u8::from(c.prevent_destroy) << 4;
        Key {
            slot,
            owner,
            kind: c.kind,
            action: c.action,
            flags,
            fields: &c.fields,
            reasons: &c.reasons,
            shape,
        }
    }
}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.slot.hash(h);
        self.owner.hash(h);
        self.kind.hash(h);
        self.action.hash(h);
        self.flags.hash(h);
        self.fields.len().hash(h);
        for f in self.fields {
            f.path.hash(h);
            f.before.hash(h);
            f.after.hash(h);
            f.forces_replace.hash(h);
        }
        self.reasons.hash(h);
        self.shape.hash(h);
    }
}

impl PartialEq for Key<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.slot == o.slot
            && self.owner == o.owner
            && self.kind == o.kind
            && self.action == o.action
            && self.flags == o.flags
            && self.fields == o.fields
            && self.reasons == o.reasons
            && self.shape == o.shape
    }
}

// Every part compares by equality (JSON values included).
impl Eq for Key<'_> {}

/// Groups `changes` (in plan order) into identical changes; groups come in the order of
/// their first member. `shape` describes a created resource without its owner's names
/// (`None`: creates of one slot group by slot alone).
pub fn group_changes<'a>(
    changes: impl IntoIterator<Item = &'a Change>,
    shape: impl Fn(&Change) -> Option<String>,
) -> Vec<ChangeGroup<'a>> {
    let changes = changes.into_iter();
    let mut index: HashMap<Key<'a>, usize> = HashMap::with_capacity(changes.size_hint().0 / 4);
    let mut groups: Vec<ChangeGroup<'a>> = Vec::new();
    for c in changes {
        let s = if c.action == Action::Create {
            shape(c)
        } else {
            None
        };
        let key = Key::of(c, s);
        if key.owner.is_none() {
            // Nothing to share with: a change of its own.
            groups.push(ChangeGroup::new(c, key.slot, false, key.shape));
            continue;
        }
        match index.get(&key) {
            Some(&i) => groups[i].push(c),
            None => {
                groups.push(ChangeGroup::new(
                    c,
                    key.slot.clone(),
                    key.owner == Some(true),
                    key.shape.clone(),
                ));
                index.insert(key, groups.len() - 1);
            }
        }
    }
    groups
}

/// Why a change moves its resource's monthly cost, by component: `memory 1 GB → 2 GB`,
/// `volume 2 GB → 3 GB`, `snapshots kept 5 → 14 days`; a created or destroyed resource
/// is `new KIND` / `KIND removed`.
pub fn cost_reasons(c: &Change) -> Vec<String> {
    match c.action {
        Action::Create => return vec![format!("new {}", c.kind)],
        Action::Delete => return vec![format!("{} removed", c.kind)],
        Action::Noop => return Vec::new(),
        Action::Update | Action::Replace | Action::Move => {}
    }
    let mut out = Vec::new();
    for f in &c.fields {
        let (b, a) = (f.before.as_ref(), f.after.as_ref());
        let shown = |v: Option<&serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "none".into(),
        };
        match &f.path {
            FieldPath::Guest(GuestField::MemoryMb) => out.push(format!(
                "memory {} → {}",
                memory(b.and_then(serde_json::Value::as_u64)),
                memory(a.and_then(serde_json::Value::as_u64))
            )),
            FieldPath::Guest(GuestField::Cpus) => {
                out.push(format!("cpus {} → {}", shown(b), shown(a)));
            }
            FieldPath::Guest(GuestField::CpuKind) => {
                out.push(format!("cpu kind {} → {}", shown(b), shown(a)));
            }
            FieldPath::SizeGb => out.push(format!("volume {} GB → {} GB", shown(b), shown(a))),
            FieldPath::SnapshotRetention => {
                out.push(format!("snapshots kept {} → {} days", shown(b), shown(a)))
            }
            FieldPath::AutoBackup => {
                out.push(format!("daily snapshots {} → {}", shown(b), shown(a)));
            }
            FieldPath::Region => out.push(format!("region {} → {}", shown(b), shown(a))),
            _ => {}
        }
    }
    out
}

/// `512 MB`, `1 GB`, `1.5 GB`.
fn memory(mb: Option<u64>) -> String {
    match mb {
        None => "none".into(),
        Some(mb) if mb >= 1024 && mb % 512 == 0 => {
            let gb = mb as f64 / 1024.0;
            format!("{gb} GB")
        }
        Some(mb) => format!("{mb} MB"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(tenant: &str, image_to: &str) -> Change {
        serde_json::from_value(serde_json::json!({
            "address": format!("tenant.{tenant}.machine[0]"),
            "kind": "machine",
            "action": "update",
            "tenant": tenant,
            "app": format!("app-{tenant}"),
            "id": format!("id-{tenant}"),
            "fields": [{"path": "image", "before": "img:1.0", "after": image_to}],
            "restart": true,
            "monthly_cost_before_usd": "5",
            "monthly_cost_after_usd": "5",
        }))
        .unwrap()
    }

    #[test]
    fn names_made_from_the_owner_group_as_one_slot() {
        let cert = |t: &str, host: &str| {
            let mut c = machine(t, "img:2.0");
            c.kind = Kind::Certificate;
            c.action = Action::Create;
            c.fields.clear();
            c.restart = false;
            c.address = format!("tenant.{t}.cert#{host}").parse().unwrap();
            c
        };
        let changes = [
            cert("alice", "alice.example.com"),
            cert("bob", "bob.example.com"),
            cert("carol", "www.other.net"),
        ];
        let groups = group_changes(&changes, |c| {
            Some(format!(
                "cert {}",
                &c.address.as_str()[c.address.as_str().find('#').unwrap() + 1..]
            ))
        });
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].slot, "cert#{tenant}.example.com");
        assert_eq!(
            groups[0].shape.as_deref(),
            Some("cert {tenant}.example.com")
        );
        assert_eq!(groups[0].len(), 2);
        assert_eq!(groups[1].slot, "cert#www.other.net");
    }

    #[test]
    fn identical_changes_of_many_tenants_are_one_group() {
        let mut changes: Vec<Change> = (0..300)
            .map(|i| machine(&format!("u{i:03}"), "img:2.0"))
            .collect();
        changes.insert(7, machine("odd", "img:3.0"));
        let mut shared = machine("x", "img:2.0");
        shared.address = "app.router.machine[0]".parse().unwrap();
        changes.push(shared);
        let groups = group_changes(&changes, |_| None);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].len(), 300);
        assert_eq!(groups[0].slot, "machine[0]");
        assert!(groups[0].tenants);
        assert_eq!(groups[0].owner_names().next(), Some("u000"));
        assert_eq!(groups[0].owner_names().last(), Some("u299"));
        assert_eq!(groups[0].monthly_each(), Some(Usd::ZERO));
        assert!(groups[1].is_single());
        assert_eq!(groups[1].first().address.as_str(), "tenant.odd.machine[0]");
        // A shared app's Machine is not a tenant's.
        assert!(!groups[2].tenants);
        assert_eq!(groups[2].len(), 1);
    }

    #[test]
    fn flags_reasons_and_shapes_split_groups() {
        let a = machine("a", "img:2.0");
        let mut b = machine("b", "img:2.0");
        b.stays_idle = true;
        let mut c = machine("c", "img:2.0");
        c.reasons.push("app secrets changed".into());
        let d = machine("d", "img:2.0");
        let groups = group_changes([&a, &b, &c, &d], |_| None);
        let sizes: Vec<usize> = groups.iter().map(ChangeGroup::len).collect();
        assert_eq!(sizes, [2, 1, 1]);

        let mut e = machine("e", "img:2.0");
        e.action = Action::Create;
        e.fields.clear();
        let mut f = e.clone();
        f.address = "tenant.f.machine[0]".parse().unwrap();
        let mut g = e.clone();
        g.address = "tenant.g.machine[0]".parse().unwrap();
        let shape = |c: &Change| {
            Some(
                if c.address.as_str().contains(".g.") {
                    "big"
                } else {
                    "small"
                }
                .to_string(),
            )
        };
        let groups = group_changes([&e, &f, &g], shape);
        let sizes: Vec<usize> = groups.iter().map(ChangeGroup::len).collect();
        assert_eq!(sizes, [2, 1]);
        assert_eq!(groups[0].shape.as_deref(), Some("small"));
    }

    #[test]
    fn costs_add_up_and_name_their_components() {
        let mut a = machine("a", "img:2.0");
        a.fields.push(FieldChange {
            path: FieldPath::Guest(GuestField::MemoryMb),
            before: Some(1024.into()),
            after: Some(2048.into()),
            forces_replace: false,
        });
        a.monthly_cost_after = Some("10".parse().unwrap());
        let mut b = a.clone();
        b.address = "tenant.b.machine[0]".parse().unwrap();
        b.monthly_cost_after = Some("11".parse().unwrap());
        let groups = group_changes([&a, &b], |_| None);
        assert_eq!(groups.len(), 1);
        let (before, after) = groups[0].monthly().unwrap();
        assert_eq!(
            (before, after),
            ("10".parse().unwrap(), "21".parse().unwrap())
        );
        assert_eq!(groups[0].monthly_each(), None);
        assert_eq!(cost_reasons(&a), ["memory 1 GB → 2 GB"]);
        assert_eq!(memory(Some(1536)), "1.5 GB");
        assert_eq!(memory(Some(256)), "256 MB");
        let mut gone = a.clone();
        gone.action = Action::Delete;
        assert_eq!(cost_reasons(&gone), ["machine removed"]);
    }
}
