//! The diff of the pass-through Machine config fields (`resource::MachineExtras`):
//! each declared field against the observed one (read with Fly's defaults filled in),
//! as a subset of what the spec writes, with a change per position
//! (`stop_config.timeout`, `init.cmd`, `statics[0].url_prefix`).

use serde::Serialize;
use serde_json::Value;

use super::diff_json_subset;
use super::field::{ConfigField, FieldChange, Section, SubPath};
use crate::resource::MachineExtras;

fn json<T: Serialize>(v: Option<&T>) -> Value {
    v.and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or(Value::Null)
}

/// Changes of the fields `desired` declares, against `o` with Fly's defaults filled in.
pub(super) fn diff_extras(d: &MachineExtras, o: &MachineExtras, out: &mut Vec<FieldChange>) {
    if d.is_empty() {
        return;
    }
    let o = &o.clone().with_fly_defaults();
    let pairs: [(ConfigField, Value, Value); 8] = [
        (
            ConfigField::StopConfig,
            json(d.stop_config.as_ref()),
            json(o.stop_config.as_ref()),
        ),
        (
            ConfigField::RestartMaxRetries,
            json(d.restart_max_retries.as_ref()),
            json(o.restart_max_retries.as_ref()),
        ),
        (
            ConfigField::Init,
            json(d.init.as_ref()),
            json(o.init.as_ref()),
        ),
        (ConfigField::Dns, json(d.dns.as_ref()), json(o.dns.as_ref())),
        (
            ConfigField::Metrics,
            json(d.metrics.as_ref()),
            json(o.metrics.as_ref()),
        ),
        (
            ConfigField::Statics,
            json(d.statics.as_ref()),
            json(o.statics.as_ref()),
        ),
        (
            ConfigField::AutoDestroy,
            json(d.auto_destroy.as_ref()),
            json(o.auto_destroy.as_ref()),
        ),
        (
            ConfigField::Schedule,
            json(d.schedule.as_ref()),
            json(o.schedule.as_ref()),
        ),
    ];
    for (field, dv, ov) in pairs {
        if dv.is_null() {
            continue;
        }
        let ov = if ov.is_null() && dv.is_object() {
            Value::Object(Default::default())
        } else {
            ov
        };
        diff_json_subset(Section::Config(field), &SubPath::default(), &dv, &ov, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::machine_config::{GoDuration, Init, Static, StopConfig};

    fn paths(d: &MachineExtras, o: &MachineExtras) -> Vec<String> {
        let mut out = Vec::new();
        diff_extras(d, o, &mut out);
        out.iter().map(|c| c.path.to_string()).collect()
    }

    #[test]
    fn declared_fields_compare_against_flys_defaults() {
        let observed = MachineExtras::default();
        let d = MachineExtras {
            init: Some(Init {
                cmd: Some(vec![]),
                tty: Some(false),
                ..Default::default()
            }),
            statics: Some(vec![]),
            auto_destroy: Some(false),
            ..Default::default()
        };
        assert!(paths(&d, &observed).is_empty());
        assert!(paths(&MachineExtras::default(), &observed).is_empty());
    }

    #[test]
    fn changes_name_their_position() {
        let stop = |t: &str| StopConfig {
            signal: Some("SIGTERM".into()),
            timeout: GoDuration::parse(t),
        };
        let st = |p: &str| Static {
            guest_path: "/app/public".into(),
            url_prefix: p.into(),
            ..Default::default()
        };
        let o = MachineExtras {
            stop_config: Some(stop("90s")),
            statics: Some(vec![st("/a")]),
            schedule: Some("daily".into()),
            ..Default::default()
        }
        .with_fly_defaults();
        let same = MachineExtras {
            stop_config: Some(stop("1m30s")),
            ..Default::default()
        };
        assert!(
            paths(&same, &o).is_empty(),
            "90s and 1m30s are one duration"
        );
        let d = MachineExtras {
            stop_config: Some(stop("30s")),
            statics: Some(vec![st("/b")]),
            schedule: Some("weekly".into()),
            restart_max_retries: Some(3),
            init: Some(Init {
                entrypoint: Some(vec!["/bin/sh".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            paths(&d, &o),
            [
                "stop_config.timeout",
                "restart.max_retries",
                "init.entrypoint",
                "statics[0].url_prefix",
                "schedule"
            ]
        );
    }
}
