//! Builders of hand-made resources for tests and benchmarks of the cost engine (no spec
//! needed). Not part of the stable API.

use rust_decimal::Decimal;

use crate::platform::{CpuKind, preset};
use crate::resource::{
    Address, AppSpec, BackupSpec, Guest, IdleMode, IdlePolicy, MachineSpec, Owner, Resource,
    ResourceSet, Spec, Usage, VolumeSpec,
};

/// Usage with the given active hours per day and the defaults otherwise.
pub fn usage(active_hours_per_day: u32) -> Usage {
    Usage {
        active_hours_per_day: Decimal::from(active_hours_per_day),
        ..Usage::default()
    }
}

/// A tenant's app.
pub fn app(tenant: &str, usage: Option<Usage>) -> Resource {
    let name = format!("app-{tenant}");
    Resource {
        address: Address::app(&Owner::Tenant(tenant)),
        tenant: Some(tenant.to_string()),
        app: name.clone(),
        prevent_destroy: false,
        id: None,
        usage: usage.map(Into::into),
        spec: Spec::App(Box::new(AppSpec {
            name,
            org: "test-org".into(),
            shared: false,
        })),
    }
}

/// Machine `index` of a tenant (or of a shared app when `tenant` is `None`): `size` is a
/// preset name, `memory_mb` the guest memory.
pub fn machine(
    tenant: Option<&str>,
    index: u32,
    region: &str,
    size: &str,
    memory_mb: u32,
    idle: IdleMode,
    usage: Option<Usage>,
) -> Resource {
    let (owner, app) = match tenant {
        Some(t) => (Owner::Tenant(t), format!("app-{t}")),
        None => (Owner::SharedApp("shared"), "shared".to_string()),
    };
    let (cpu_kind, cpus) = preset(size)
        .map(|p| (p.cpu_kind, p.cpus))
        .unwrap_or((CpuKind::Shared, 1));
    Resource {
        address: Address::machine(&owner, index),
        tenant: tenant.map(String::from),
        app: app.clone(),
        prevent_destroy: false,
        id: None,
        usage: usage.map(Into::into),
        spec: Spec::Machine(Box::new(MachineSpec {
            name: format!("{app}-{index}"),
            region: region.to_string(),
            fallback_regions: Vec::new(),
            image: "registry.fly.io/app:1".into(),
            size: size.to_string(),
            guest: Guest {
                cpu_kind,
                cpus,
                memory_mb,
            },
            env: crate::resource::StrMap::default(),
            services: None,
            checks: None,
            metadata: crate::resource::StrMap::default(),
            mounts: Vec::new(),
            idle: IdlePolicy {
                mode: idle,
                autostart: true,
                min_running: 0,
            },
            restart: None,
            config: Default::default(),
            secrets: Vec::new(),
            role: "app".into(),
            index,
            run: Default::default(),
        })),
    }
}

/// Volume `name[0]` of a tenant.
pub fn volume(
    tenant: &str,
    name: &str,
    region: &str,
    size_gb: u32,
    usage: Option<Usage>,
) -> Resource {
    let owner = Owner::Tenant(tenant);
    Resource {
        address: Address::volume(&owner, name, 0),
        tenant: Some(tenant.to_string()),
        app: format!("app-{tenant}"),
        prevent_destroy: false,
        id: None,
        usage: usage.map(Into::into),
        spec: Spec::Volume(Box::new(VolumeSpec {
            name: name.to_string(),
            region: region.to_string(),
            fallback_regions: Vec::new(),
            size_gb,
            encrypted: true,
            machine: Some(Address::machine(&owner, 0)),
            attached_machine_id: None,
            aliases: Vec::new(),
            restore_from: None,
        })),
    }
}

/// The backup policy of a tenant's volume `name[0]`.
pub fn backup(tenant: &str, name: &str, retention: u32, auto_backup: bool) -> Resource {
    let owner = Owner::Tenant(tenant);
    Resource {
        address: Address::backup(&owner, name, 0),
        tenant: Some(tenant.to_string()),
        app: format!("app-{tenant}"),
        prevent_destroy: false,
        id: None,
        usage: None,
        spec: Spec::BackupPolicy(Box::new(BackupSpec {
            volume: Address::volume(&owner, name, 0),
            snapshot_retention: retention,
            auto_backup,
            snapshot_before_destroy: true,
        })),
    }
}

/// A fleet of `tenants` tenants, each with an app, one suspend-on-idle shared-cpu-1x
/// Machine with 1 GB, a 3 GB volume and its backup policy (4 resources per tenant), in
/// regions taken in turn from a fixed list; plus two always-on shared router Machines.
pub fn fleet(tenants: usize) -> ResourceSet {
    const REGIONS: [&str; 6] = ["iad", "sjc", "fra", "lax", "sin", "gru"];
    let mut v = Vec::with_capacity(tenants * 4 + 2);
    for i in 0..tenants {
        let t = format!("user-{i}");
        let region = REGIONS[i % REGIONS.len()];
        let u = Usage {
            active_hours_per_day: Decimal::from(1 + (i % 8) as u32),
            egress_gb_month: Decimal::from((i % 20) as u32),
            ..Usage::default()
        };
        v.push(app(&t, None));
        v.push(machine(
            Some(&t),
            0,
            region,
            "shared-cpu-1x",
            1024,
            IdleMode::Suspend,
            Some(u),
        ));
        v.push(volume(&t, "data", region, 3, None));
        v.push(backup(&t, "data", 5, true));
    }
    for i in 0..2 {
        v.push(machine(
            None,
            i,
            "iad",
            "shared-cpu-2x",
            1024,
            IdleMode::Off,
            None,
        ));
    }
    ResourceSet::new(v)
}
