//! Fly Machine config fields flotilla passes through as declared: `stop_config`,
//! `restart.max_retries`, `init`, `dns`, `metrics`, `statics`, `auto_destroy` and
//! `schedule`. They live in one struct ([`MachineExtras`]) beside the fields flotilla
//! models itself, so the spec, the diff and the wire mapping treat them as one group.
//!
//! Every field is `None` when the spec does not declare it (then it is not compared and
//! an update sends back what Fly has). Inside a declared field, keys the spec leaves out
//! are `None` too: the comparison covers what is written. Observed values are read with
//! Fly's defaults filled in ([`MachineExtras::with_fly_defaults`]: absent lists are
//! empty, absent flags false), so a declared empty list or `false` matches Fly leaving
//! the key out. Durations are kept in nanoseconds and written as Go writes them
//! (`1m30s`), the form Fly answers with.

use serde::{Deserialize, Serialize};

pub use crate::platform::machine_config::{GoDuration, SCHEDULES, SIGNALS};

/// Fly's `restart.max_retries` under the `on-failure` policy when none is given.
pub const FLY_DEFAULT_MAX_RETRIES: u32 = 10;

/// The pass-through Machine config fields a spec declares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MachineExtras {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_config: Option<StopConfig>,
    /// `restart.max_retries` (the policy is `MachineSpec::restart`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_max_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<Init>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statics: Option<Vec<Static>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_destroy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Fly's `standbys`: the IDs of the Machines this one stands by for. Never declared
    /// (a spec says `standbys: COUNT`, which makes standby Machines): the executor
    /// writes the primary's ID into a standby's config, and observed configs carry it.
    /// Not compared by the diff (`plan::cascade_standbys` checks it against the primary).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub standbys: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StopConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Init {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_size_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_args: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_registration: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nameservers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub searches: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<DnsOption>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DnsOption {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Static {
    #[serde(default)]
    pub guest_path: String,
    #[serde(default)]
    pub url_prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tigris_bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_document: Option<String>,
}

impl MachineExtras {
    /// Nothing declared.
    pub fn is_empty(&self) -> bool {
        self == &MachineExtras::default()
    }

    /// A scheduled Machine: Fly starts it on its schedule, so apply creates it without
    /// starting it and plans do not expect it to be running.
    pub fn is_scheduled(&self) -> bool {
        self.schedule.is_some()
    }

    /// Every text value (templates are rendered through this).
    pub fn texts_mut(&mut self) -> Vec<&mut String> {
        let mut out: Vec<&mut String> = Vec::new();
        fn list<'a>(out: &mut Vec<&'a mut String>, l: &'a mut Option<Vec<String>>) {
            out.extend(l.iter_mut().flatten());
        }
        if let Some(i) = &mut self.init {
            list(&mut out, &mut i.cmd);
            list(&mut out, &mut i.entrypoint);
            list(&mut out, &mut i.exec);
            list(&mut out, &mut i.kernel_args);
        }
        if let Some(d) = &mut self.dns {
            list(&mut out, &mut d.nameservers);
            list(&mut out, &mut d.searches);
            for o in d.options.iter_mut().flatten() {
                out.push(&mut o.name);
                out.extend(o.value.as_mut());
            }
        }
        if let Some(m) = &mut self.metrics {
            out.extend(m.path.as_mut());
        }
        for s in self.statics.iter_mut().flatten() {
            out.push(&mut s.guest_path);
            out.push(&mut s.url_prefix);
            out.extend(s.tigris_bucket.as_mut());
            out.extend(s.index_document.as_mut());
        }
        out
    }

    /// An observed config as flotilla keeps it: a mapping, list or flag that says no
    /// more than Fly's default (`init: {}`, `statics: []`, `auto_destroy: false`) is
    /// left out, so a Machine without these fields has an empty group (and the observed
    /// state's fingerprint does not depend on how Fly spells "nothing").
    pub fn without_fly_defaults(mut self) -> MachineExtras {
        let defaults = MachineExtras::default().with_fly_defaults();
        if self.init.is_some() && self.init.clone().map(fill_init) == defaults.init {
            self.init = None;
        }
        if self.dns.is_some() && self.dns.clone().map(fill_dns) == defaults.dns {
            self.dns = None;
        }
        if self.stop_config == Some(StopConfig::default()) {
            self.stop_config = None;
        }
        if self.metrics == Some(Metrics::default()) {
            self.metrics = None;
        }
        if self.statics.as_ref().is_some_and(Vec::is_empty) {
            self.statics = None;
        }
        if self.auto_destroy == Some(false) {
            self.auto_destroy = None;
        }
        self
    }

    /// An observed config with Fly's defaults filled in, for comparison with what a spec
    /// declares: absent lists are empty, absent flags false, no `auto_destroy` is false,
    /// no `restart.max_retries` is Fly's 10 (it counts only under `on-failure`).
    pub fn with_fly_defaults(mut self) -> MachineExtras {
        self.init = Some(fill_init(self.init.unwrap_or_default()));
        self.dns = Some(fill_dns(self.dns.unwrap_or_default()));
        list(&mut self.statics);
        self.auto_destroy.get_or_insert(false);
        self.restart_max_retries
            .get_or_insert(FLY_DEFAULT_MAX_RETRIES);
        self
    }
}

fn list<T>(l: &mut Option<Vec<T>>) {
    l.get_or_insert_with(Vec::new);
}

/// `init` with Fly's defaults: no lists are empty lists, no `tty` is false.
fn fill_init(mut i: Init) -> Init {
    list(&mut i.cmd);
    list(&mut i.entrypoint);
    list(&mut i.exec);
    list(&mut i.kernel_args);
    i.tty.get_or_insert(false);
    i
}

/// `dns` with Fly's defaults: no lists are empty lists, no `skip_registration` is false.
fn fill_dns(mut d: Dns) -> Dns {
    d.skip_registration.get_or_insert(false);
    list(&mut d.nameservers);
    list(&mut d.searches);
    list(&mut d.options);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fly_defaults_fill_absent_lists_and_flags() {
        let o = MachineExtras::default().with_fly_defaults();
        assert_eq!(o.auto_destroy, Some(false));
        assert_eq!(o.init.as_ref().unwrap().cmd, Some(vec![]));
        assert_eq!(o.statics, Some(vec![]));
        assert!(MachineExtras::default().is_empty());
        let nothing = MachineExtras {
            restart_max_retries: None,
            ..o.clone()
        };
        assert!(nothing.without_fly_defaults().is_empty());
        let kept = MachineExtras {
            auto_destroy: Some(true),
            init: Some(Init {
                tty: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(kept.clone().without_fly_defaults(), kept);
    }
}
