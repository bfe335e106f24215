//! Validation and server-side normalization of Machine configs, done the way Fly does
//! it: defaults filled in (`init`, `restart`, `guest`), `size` resolved into `guest`,
//! mounts completed from their volume, `autostop` answered in its compatibility form,
//! `stop_config.timeout` answered as a Go duration (`90s` → `1m30s`).
//! A client that diffs raw responses sees these as changes, exactly as on Fly.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::platform::machine_config::{GoDuration, SIGNALS};
use crate::platform::{self, CpuKind};

use super::error::ApiError;
use super::ids::digest;
use super::model::{Guest, ImageRef, MachineConfig, Restart};
use super::world::{App, MachineState};

const MAX_IMAGE_LEN: usize = 512;

fn cpu_kind(s: &str) -> Option<CpuKind> {
    match s {
        "shared" => Some(CpuKind::Shared),
        "performance" => Some(CpuKind::Performance),
        _ => None,
    }
}

fn normalize_guest(size: Option<&str>, guest: Option<Guest>) -> Result<Guest, ApiError> {
    if let Some(size) = size {
        if guest.as_ref().is_some_and(|g| g != &Guest::default()) {
            return Err(ApiError::bad_request(
                "invalid config: guest and size are mutually exclusive",
            ));
        }
        let p = platform::preset(size).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid config.size: {size:?} is not a machine preset"
            ))
        })?;
        return Ok(Guest {
            cpu_kind: Some(p.cpu_kind.as_str().into()),
            cpus: Some(p.cpus),
            memory_mb: Some(p.base_memory_mb),
            other: Default::default(),
        });
    }
    let mut g = guest.unwrap_or_default();
    let kind_name = g.cpu_kind.clone().unwrap_or_else(|| "shared".into());
    let kind = cpu_kind(&kind_name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid config.guest.cpu_kind {kind_name:?}: expected \"shared\" or \"performance\""
        ))
    })?;
    let cpus = g.cpus.unwrap_or(1);
    let preset = platform::preset_for(kind, cpus).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid config.guest: {cpus} {kind_name} CPUs is not an available machine size"
        ))
    })?;
    let memory = g.memory_mb.unwrap_or(preset.base_memory_mb);
    if !memory.is_multiple_of(256) {
        return Err(ApiError::bad_request(format!(
            "invalid config.guest.memory_mb {memory}: must be a multiple of 256"
        )));
    }
    if memory < preset.min_memory_mb() || memory > preset.max_memory_mb() {
        return Err(ApiError::bad_request(format!(
            "invalid config.guest.memory_mb {memory}: {} allows {} to {} MB",
            preset.name,
            preset.min_memory_mb(),
            preset.max_memory_mb()
        )));
    }
    g.cpu_kind = Some(kind_name);
    g.cpus = Some(cpus);
    g.memory_mb = Some(memory);
    Ok(g)
}

fn normalize_restart(r: Option<Restart>) -> Result<Restart, ApiError> {
    let mut r = r.unwrap_or_default();
    let policy = r.policy.clone().unwrap_or_else(|| "on-failure".into());
    match policy.as_str() {
        "no" | "always" => {}
        "on-failure" => {
            r.max_retries.get_or_insert(10);
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid config.restart.policy {other:?}: expected \"no\", \"always\" or \"on-failure\""
            )));
        }
    }
    r.policy = Some(policy);
    Ok(r)
}

/// `stop_config`: the signal must be one Fly knows; the timeout (a Go duration string
/// or nanoseconds) is answered in Go's text form (`90s` → `1m30s`), as Fly does.
fn normalize_stop_config(other: &mut Map<String, Value>) -> Result<(), ApiError> {
    let Some(Value::Object(sc)) = other.get_mut("stop_config") else {
        return Ok(());
    };
    match sc.get("signal") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if SIGNALS.contains(&s.as_str()) => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid config.stop_config.signal {other}: expected one of {}",
                SIGNALS.join(", ")
            )));
        }
    }
    let timeout = match sc.get("timeout") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(GoDuration::parse(t).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid config.stop_config.timeout {t:?}: not a duration"
            ))
        })?),
        Some(Value::Number(n)) => Some(n.as_u64().map(GoDuration).ok_or_else(|| {
            ApiError::bad_request("invalid config.stop_config.timeout: not a duration")
        })?),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid config.stop_config.timeout: not a duration",
            ));
        }
    };
    if let Some(t) = timeout {
        sc.insert("timeout".into(), Value::String(t.to_string()));
    }
    Ok(())
}

/// `metrics.port` is a port; every static has a `guest_path` and a `url_prefix`.
fn check_metrics_and_statics(other: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(port) = other.get("metrics").and_then(|m| m.get("port"))
        && !port.as_u64().is_some_and(|p| (1..=65535).contains(&p))
    {
        return Err(ApiError::bad_request(format!(
            "invalid config.metrics.port {port}: expected a port between 1 and 65535"
        )));
    }
    let statics = other.get("statics").and_then(Value::as_array);
    for (i, st) in statics.into_iter().flatten().enumerate() {
        for key in ["guest_path", "url_prefix"] {
            if st
                .get(key)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ApiError::bad_request(format!(
                    "invalid config.statics[{i}]: {key} is required"
                )));
            }
        }
    }
    Ok(())
}

fn check_image(image: Option<&str>) -> Result<&str, ApiError> {
    let image = image.unwrap_or("");
    if image.is_empty() {
        return Err(ApiError::bad_request(
            "invalid config.image: an image is required",
        ));
    }
    if image.len() > MAX_IMAGE_LEN || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::bad_request(format!(
            "invalid config.image {image:?}: not a valid image reference"
        )));
    }
    Ok(image)
}

/// Resolves an image reference the way a registry would: registry, repository, tag and
/// a content digest (stable for a given reference).
pub(crate) fn image_ref(image: &str) -> ImageRef {
    let (name, given_digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (image, None),
    };
    let (registry, rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => ("registry-1.docker.io".to_string(), name.to_string()),
    };
    let (repository, tag) = match rest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), Some(tag.to_string())),
        _ => (rest.clone(), None),
    };
    let repository = if registry == "registry-1.docker.io" && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    let tag = tag.or_else(|| given_digest.is_none().then(|| "latest".to_string()));
    let digest = given_digest.unwrap_or_else(|| format!("sha256:{}", digest(&["image", image])));
    ImageRef {
        registry,
        repository,
        tag,
        digest,
        labels: BTreeMap::new(),
    }
}

/// `standbys` names live Machines of the app other than this one, as Fly requires; an
/// empty list is no list.
fn check_standbys(
    cfg: &mut MachineConfig,
    app: &App,
    machine_id: Option<&str>,
) -> Result<(), ApiError> {
    if cfg.standbys.as_ref().is_some_and(Vec::is_empty) {
        cfg.standbys = None;
    }
    for id in cfg.standbys.iter().flatten() {
        if Some(id.as_str()) == machine_id {
            return Err(ApiError::bad_request(format!(
                "invalid config.standbys: machine {id} cannot be a standby for itself"
            )));
        }
        let live = app.machines.get(id).is_some_and(|m| {
            !matches!(m.state, MachineState::Destroyed | MachineState::Destroying)
        });
        if !live {
            return Err(ApiError::bad_request(format!(
                "invalid config.standbys: machine {id:?} not found in app {}",
                app.name
            )));
        }
    }
    Ok(())
}

/// Validates `cfg` for a Machine in `region` of `app` and returns Fly's normalized form.
/// `machine_id` is the Machine being updated, if any (its own volume is not "taken").
pub(crate) fn normalize_config(
    mut cfg: MachineConfig,
    app: &App,
    region: &str,
    machine_id: Option<&str>,
) -> Result<MachineConfig, ApiError> {
    check_image(cfg.image.as_deref())?;
    cfg.guest = Some(normalize_guest(cfg.size.as_deref(), cfg.guest.take())?);
    cfg.size = None;
    cfg.restart = Some(normalize_restart(cfg.restart.take())?);
    if cfg.auto_destroy == Some(false) {
        cfg.auto_destroy = None;
    }
    if let Some(sched) = &cfg.schedule
        && !matches!(sched.as_str(), "hourly" | "daily" | "weekly" | "monthly")
    {
        return Err(ApiError::bad_request(format!(
            "invalid config.schedule {sched:?}: expected hourly, daily, weekly or monthly"
        )));
    }
    check_standbys(&mut cfg, app, machine_id)?;
    if let Some(checks) = &cfg.checks {
        let checks = serde_json::to_value(checks).unwrap_or_default();
        super::gotypes::check_check_durations("config.checks", &checks)?;
    }
    normalize_stop_config(&mut cfg.other)?;
    check_metrics_and_statics(&cfg.other)?;
    for (i, svc) in cfg.services.iter_mut().flatten().enumerate() {
        if let Some(checks) = svc.other.get("checks") {
            super::gotypes::check_check_durations(&format!("config.services[{i}].checks"), checks)?;
        }
        let protocol = svc.protocol.get_or_insert_with(|| "tcp".into());
        if protocol != "tcp" && protocol != "udp" {
            return Err(ApiError::bad_request(format!(
                "invalid config.services[{i}].protocol {protocol:?}: expected tcp or udp"
            )));
        }
        match svc.internal_port {
            Some(p) if (1..=65535).contains(&p) => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid config.services[{i}].internal_port: a port between 1 and 65535 is required"
                )));
            }
        }
    }
    let mounts = cfg.mounts.get_or_insert_with(Vec::new);
    if mounts.len() > 1 {
        return Err(ApiError::bad_request(
            "invalid config.mounts: a Machine can mount at most one volume",
        ));
    }
    for m in mounts.iter_mut() {
        let vol_id = m.volume.clone().unwrap_or_default();
        let path = m.path.clone().unwrap_or_default();
        if !path.starts_with('/') {
            return Err(ApiError::bad_request(format!(
                "invalid config.mounts: path {path:?} must be absolute"
            )));
        }
        let vol = app.volumes.get(&vol_id).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid config.mounts: volume {vol_id:?} not found in app {}",
                app.name
            ))
        })?;
        if vol.region != region {
            return Err(ApiError::bad_request(format!(
                "invalid config.mounts: volume {vol_id} is in region {}, the Machine in {region}",
                vol.region
            )));
        }
        if let Some(holder) = &vol.attached_machine_id
            && Some(holder.as_str()) != machine_id
        {
            let holder_gone = app
                .machines
                .get(holder)
                .is_some_and(|h| h.state == MachineState::Destroyed);
            let what = if holder_gone {
                "is still being detached from destroyed Machine"
            } else {
                "is attached to Machine"
            };
            return Err(ApiError::precondition(format!(
                "volume {vol_id} {what} {holder}"
            )));
        }
        m.name = Some(vol.name.clone());
        m.size_gb = Some(vol.size_gb);
        m.encrypted = Some(vol.encrypted);
    }
    if cfg.mounts.as_ref().is_some_and(Vec::is_empty) {
        cfg.mounts = None;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App::new(
            "a".into(),
            "a".into(),
            "personal".into(),
            "default".into(),
            0,
        )
    }

    fn cfg(v: serde_json::Value) -> MachineConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fills_fly_defaults() {
        let out = normalize_config(
            cfg(serde_json::json!({"image": "nginx"})),
            &app(),
            "iad",
            None,
        )
        .unwrap();
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(v["init"], serde_json::json!({}));
        assert_eq!(
            v["restart"],
            serde_json::json!({"policy": "on-failure", "max_retries": 10})
        );
        assert_eq!(
            v["guest"],
            serde_json::json!({"cpu_kind": "shared", "cpus": 1, "memory_mb": 256})
        );
    }

    #[test]
    fn stop_timeouts_are_answered_as_go_durations() {
        for (sent, answered) in [
            (serde_json::json!("90s"), "1m30s"),
            (serde_json::json!(30_000_000_000u64), "30s"),
            (serde_json::json!("1m"), "1m0s"),
        ] {
            let c = cfg(serde_json::json!({"image": "nginx",
                "stop_config": {"signal": "SIGTERM", "timeout": sent}}));
            let out = normalize_config(c, &app(), "iad", None).unwrap();
            let v = serde_json::to_value(&out).unwrap();
            assert_eq!(v["stop_config"]["timeout"], answered);
            assert_eq!(v["stop_config"]["signal"], "SIGTERM");
        }
    }

    #[test]
    fn standbys_name_machines_of_the_app() {
        let e = normalize_config(
            cfg(serde_json::json!({"image": "nginx", "standbys": ["nope"]})),
            &app(),
            "iad",
            None,
        )
        .unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.message.contains("config.standbys"), "{}", e.message);
        let out = normalize_config(
            cfg(serde_json::json!({"image": "nginx", "standbys": []})),
            &app(),
            "iad",
            None,
        )
        .unwrap();
        assert!(!out.is_standby());
        assert!(
            serde_json::to_value(&out)
                .unwrap()
                .get("standbys")
                .is_none()
        );
    }

    #[test]
    fn size_becomes_guest() {
        let out = normalize_config(
            cfg(serde_json::json!({"image": "nginx", "size": "performance-2x"})),
            &app(),
            "iad",
            None,
        )
        .unwrap();
        let v = serde_json::to_value(&out).unwrap();
        assert!(v.get("size").is_none());
        assert_eq!(v["guest"]["memory_mb"], 4096);
    }

    #[test]
    fn rejects_bad_configs() {
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"image": "has space"}),
            serde_json::json!({"image": "x", "size": "huge"}),
            serde_json::json!({"image": "x", "guest": {"cpu_kind": "gpu"}}),
            serde_json::json!({"image": "x", "guest": {"cpus": 3}}),
            serde_json::json!({"image": "x", "guest": {"memory_mb": 300}}),
            serde_json::json!({"image": "x", "guest": {"memory_mb": 4096}}),
            serde_json::json!({"image": "x", "restart": {"policy": "sometimes"}}),
            serde_json::json!({"image": "x", "services": [{"protocol": "tcp"}]}),
            serde_json::json!({"image": "x", "mounts": [{"volume": "vol_x", "path": "/d"}]}),
            serde_json::json!({"image": "x", "schedule": "yearly"}),
            serde_json::json!({"image": "x", "stop_config": {"signal": "SIGWINCH"}}),
            serde_json::json!({"image": "x", "stop_config": {"timeout": "soon"}}),
            serde_json::json!({"image": "x", "metrics": {"port": 0, "path": "/m"}}),
            serde_json::json!({"image": "x", "statics": [{"guest_path": "/p"}]}),
        ] {
            assert!(
                normalize_config(cfg(bad.clone()), &app(), "iad", None).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn image_refs() {
        let r = image_ref("nginx");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("registry-1.docker.io", "library/nginx", Some("latest"))
        );
        assert!(r.digest.starts_with("sha256:"));
        let r = image_ref("registry.fly.io/my-jarvis:1.4.43");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("registry.fly.io", "my-jarvis", Some("1.4.43"))
        );
        assert_eq!(image_ref("a/b@sha256:abc").digest, "sha256:abc");
        assert_eq!(image_ref("nginx").digest, image_ref("nginx").digest);
    }
}
