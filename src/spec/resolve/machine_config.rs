//! The resolution phase of the pass-through Machine config settings (`stop_config`,
//! `restart_max_retries`, `init`, `dns`, `metrics`, `statics`, `auto_destroy`,
//! `schedule`): read through their declarations into `resource::MachineExtras`, values
//! checked (durations, addresses, paths), templates compiled. Templates are rendered
//! per Machine in `expand` ([`TemplateSites`] says where each was written).

use std::collections::HashMap;

use super::Resolver;
use crate::diag::{Diagnostic, Mark};
use crate::resource::machine_config::{
    Dns, DnsOption, GoDuration, Init, MachineExtras, Metrics, Static, StopConfig,
};
use crate::spec::decl::{self, Setting, Tree};
use crate::spec::expand::err;
use crate::spec::templates::is_template;
use crate::spec::yaml::Node;

/// Where each template of the group was written: source → (document path, mark).
pub(crate) type TemplateSites = HashMap<String, (String, Mark)>;

/// The texts of a list node, each with its path and mark.
fn texts(node: Option<&Node>, origin: &str) -> Option<Vec<(String, String, Mark)>> {
    let items = node?.as_seq()?;
    Some(
        items
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                Some((
                    n.scalar_text()?.to_string(),
                    format!("{origin}[{i}]"),
                    n.mark,
                ))
            })
            .collect(),
    )
}

impl Resolver<'_, '_> {
    /// The group's settings, checked; the templates they hold and where.
    pub(super) fn machine_extras(&mut self) -> (MachineExtras, TemplateSites) {
        let mut sites = TemplateSites::new();
        let extras = MachineExtras {
            stop_config: self.stop_config(),
            restart_max_retries: self.restart_max_retries(),
            init: self.init(&mut sites),
            dns: self.dns(&mut sites),
            metrics: self.metrics(&mut sites),
            statics: self.statics(&mut sites),
            auto_destroy: self.auto_destroy(),
            schedule: self.eff.value(&decl::SCHEDULE).map(str::to_string),
            standbys: Vec::new(),
        };
        (extras, sites)
    }

    /// A list of texts, templates compiled and recorded.
    fn text_list(&mut self, s: &Setting<Tree>, sites: &mut TemplateSites) -> Option<Vec<String>> {
        let origin = self.eff.origin_of(s);
        let items = texts(self.eff.value(s), &origin)?;
        Some(
            items
                .into_iter()
                .map(|(v, p, m)| self.site(v, p, m, sites))
                .collect(),
        )
    }

    /// Compiles a text that is a template and records where it was written.
    fn site(&mut self, v: String, path: String, mark: Mark, sites: &mut TemplateSites) -> String {
        if is_template(&v) {
            self.compile(&v, &path, mark);
            sites.entry(v.clone()).or_insert((path, mark));
        }
        v
    }

    fn stop_config(&mut self) -> Option<StopConfig> {
        self.eff.value(&decl::STOP_CONFIG)?;
        let signal = self.eff.value(&decl::STOP_SIGNAL).map(str::to_string);
        let timeout = match self.eff.set(&decl::STOP_TIMEOUT) {
            None => None,
            Some((t, mark)) => {
                let origin = self.eff.origin_of(&decl::STOP_TIMEOUT);
                let max = GoDuration::from_secs(decl::STOP_TIMEOUT_MAX_SECS);
                match GoDuration::parse(t) {
                    Some(d) if d.as_nanos() > 0 && d <= max => Some(d),
                    Some(d) => {
                        let what = if d.as_nanos() == 0 {
                            "is not longer than 0s".to_string()
                        } else {
                            format!("is longer than {}h", decl::STOP_TIMEOUT_MAX_SECS / 3600)
                        };
                        let d = err(format!("stop timeout `{t}` {what}"), &origin, mark)
                            .hint("write a duration between 1s and 24h, e.g. 30s");
                        self.add(d);
                        None
                    }
                    None => {
                        let d = err(format!("`{t}` is not a duration"), &origin, mark)
                            .hint("write a duration such as `30s`, `1m30s` or `500ms`");
                        self.add(d);
                        None
                    }
                }
            }
        };
        Some(StopConfig { signal, timeout })
    }

    /// `auto_destroy: true` without `restart: always`: a Machine whose process exits is
    /// gone, and the next apply creates it again (a warning).
    fn auto_destroy(&mut self) -> Option<bool> {
        let (on, mark) = self.eff.set(&decl::AUTO_DESTROY)?;
        if on && self.eff.value(&decl::RESTART) != Some("always") {
            let d = Diagnostic::warning(
                "auto_destroy: a Machine whose process exits is destroyed, and the next apply creates it again",
            )
            .path(self.eff.origin_of(&decl::AUTO_DESTROY))
            .at(mark)
            .hint("for a Machine that should stay, set `restart: always` or leave auto_destroy unset");
            self.add(d);
        }
        Some(on)
    }

    fn restart_max_retries(&mut self) -> Option<u32> {
        let (n, mark) = self.eff.set(&decl::RESTART_MAX_RETRIES)?;
        if let Some(policy) = self.eff.value(&decl::RESTART)
            && policy != "on-failure"
        {
            let d = Diagnostic::warning(format!(
                "restart_max_retries has no effect with restart policy `{policy}`"
            ))
            .path(self.eff.origin_of(&decl::RESTART_MAX_RETRIES))
            .at(mark)
            .hint("Fly counts retries only under `restart: on-failure`");
            self.add(d);
        }
        Some(n)
    }

    fn init(&mut self, sites: &mut TemplateSites) -> Option<Init> {
        self.eff.value(&decl::INIT)?;
        Some(Init {
            cmd: self.text_list(&decl::INIT_CMD, sites),
            entrypoint: self.text_list(&decl::INIT_ENTRYPOINT, sites),
            exec: self.text_list(&decl::INIT_EXEC, sites),
            tty: self.eff.value(&decl::INIT_TTY),
            swap_size_mb: self.eff.value(&decl::INIT_SWAP_SIZE_MB),
            kernel_args: self.text_list(&decl::INIT_KERNEL_ARGS, sites),
        })
    }

    fn dns(&mut self, sites: &mut TemplateSites) -> Option<Dns> {
        self.eff.value(&decl::DNS)?;
        let nameservers = self.text_list(&decl::DNS_NAMESERVERS, sites);
        self.nameservers_are_addresses();
        let options = self.eff.value(&decl::DNS_OPTIONS).and_then(Node::as_seq);
        let origin = self.eff.origin_of(&decl::DNS_OPTIONS);
        let options = options.map(|items| {
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let Some((name, m)) = decl::DNS_OPTION_NAME.located(item) else {
                        let d = err(
                            "a DNS option needs a `name`",
                            &format!("{origin}[{i}]"),
                            item.mark,
                        )
                        .hint("write each option as `{ name: ndots, value: \"2\" }`");
                        self.add(d);
                        return None;
                    };
                    let name = self.site(name.to_string(), format!("{origin}[{i}].name"), m, sites);
                    let value = decl::DNS_OPTION_VALUE.located(item).map(|(v, m)| {
                        self.site(v.to_string(), format!("{origin}[{i}].value"), m, sites)
                    });
                    Some(DnsOption { name, value })
                })
                .collect()
        });
        Some(Dns {
            skip_registration: self.eff.value(&decl::DNS_SKIP_REGISTRATION),
            nameservers,
            searches: self.text_list(&decl::DNS_SEARCHES, sites),
            options,
        })
    }

    /// Nameservers are IP addresses (templates are checked by Fly once rendered).
    fn nameservers_are_addresses(&mut self) {
        let origin = self.eff.origin_of(&decl::DNS_NAMESERVERS);
        let Some(items) = texts(self.eff.value(&decl::DNS_NAMESERVERS), &origin) else {
            return;
        };
        for (v, path, mark) in items {
            if !is_template(&v) && v.parse::<std::net::IpAddr>().is_err() {
                let d = err(
                    format!("nameserver `{v}` is not an IP address"),
                    &path,
                    mark,
                )
                .hint("write an IPv4 or IPv6 address, e.g. 1.1.1.1 or fdaa::3");
                self.add(d);
            }
        }
    }

    fn metrics(&mut self, sites: &mut TemplateSites) -> Option<Metrics> {
        self.eff.value(&decl::METRICS)?;
        let port = self.eff.value(&decl::METRICS_PORT);
        if port.is_none() {
            let d = err(
                "metrics needs a port",
                &self.eff.origin_of(&decl::METRICS),
                self.eff.mark_of(&decl::METRICS),
            )
            .hint("add `port:` (the port Fly scrapes) and `path:` (e.g. /metrics)");
            self.add(d);
        }
        let path = self.eff.set(&decl::METRICS_PATH).map(|(p, m)| {
            let origin = self.eff.origin_of(&decl::METRICS_PATH);
            if !p.starts_with('/') && !is_template(p) {
                let d = err(
                    format!("metrics path `{p}` does not start with /"),
                    &origin,
                    m,
                )
                .hint("write the HTTP path, e.g. /metrics");
                self.add(d);
            }
            self.site(p.to_string(), origin, m, sites)
        });
        Some(Metrics { port, path })
    }

    fn statics(&mut self, sites: &mut TemplateSites) -> Option<Vec<Static>> {
        let items = self.eff.value(&decl::STATICS)?.as_seq()?;
        let origin = self.eff.origin_of(&decl::STATICS);
        let mut out: Vec<Static> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = format!("{origin}[{i}]");
            let guest_path = self.static_path(item, &decl::STATIC_GUEST_PATH, &at, sites);
            let url_prefix = self.static_path(item, &decl::STATIC_URL_PREFIX, &at, sites);
            let opt = |this: &mut Self, s: &Setting<decl::Text>, sites: &mut TemplateSites| {
                s.located(item)
                    .map(|(v, m)| this.site(v.to_string(), format!("{at}.{}", s.key), m, sites))
            };
            let tigris_bucket = opt(self, &decl::STATIC_TIGRIS_BUCKET, sites);
            let index_document = opt(self, &decl::STATIC_INDEX_DOCUMENT, sites);
            if let (Some(g), Some(u)) = (guest_path, url_prefix) {
                if out.iter().any(|s| s.url_prefix == u) {
                    let d = err(
                        format!("url_prefix `{u}` is served twice"),
                        &format!("{at}.url_prefix"),
                        item.mark,
                    )
                    .hint("give each static a different url_prefix");
                    self.add(d);
                }
                out.push(Static {
                    guest_path: g,
                    url_prefix: u,
                    tigris_bucket,
                    index_document,
                });
            }
        }
        Some(out)
    }

    /// A static's required absolute path (`guest_path`, `url_prefix`).
    fn static_path(
        &mut self,
        item: &Node,
        s: &Setting<decl::Text>,
        at: &str,
        sites: &mut TemplateSites,
    ) -> Option<String> {
        let path = format!("{at}.{}", s.key);
        match s.located(item) {
            None => {
                let d = err(format!("a static needs `{}`", s.key), at, item.mark)
                    .hint("each static has a guest_path and a url_prefix, both starting with /");
                self.add(d);
                None
            }
            Some((v, m)) if !v.starts_with('/') && !is_template(v) => {
                let d = err(format!("{} `{v}` does not start with /", s.key), &path, m)
                    .hint("write an absolute path");
                self.add(d);
                None
            }
            Some((v, m)) => Some(self.site(v.to_string(), path, m, sites)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::load_bytes;

    const HEAD: &str = "version: 1\norg: acme\ndefaults:\n  image: img:1\n  region: iad\n";

    fn machine_config(body: &str) -> crate::resource::MachineExtras {
        let spec = format!("{HEAD}{body}tenants: [{{ name: alice }}]\n");
        let d = load_bytes(spec.as_bytes(), "t.yaml").unwrap().desired;
        let r = d.resources.iter().find(|r| r.machine().is_some()).unwrap();
        r.machine().unwrap().config.clone()
    }

    #[test]
    fn texts_are_rendered_per_machine() {
        let c = machine_config(
            "  init: { exec: [\"/run\", \"{{ tenant.name }}-{{ index }}\"] }\n  statics: [{ guest_path: /srv, url_prefix: \"/{{ tenant.name }}\" }]\n",
        );
        assert_eq!(
            c.init.and_then(|i| i.exec),
            Some(vec!["/run".to_string(), "alice-0".to_string()])
        );
        assert_eq!(c.statics.unwrap()[0].url_prefix, "/alice");
    }

    #[test]
    fn template_errors_name_the_text() {
        let spec = format!(
            "{HEAD}  init: {{ cmd: [\"{{{{ nope }}}}\"] }}\ntenants: [{{ name: alice }}]\n"
        );
        let e = load_bytes(spec.as_bytes(), "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("defaults.init.cmd[0]"), "{e}");
        assert!(e.contains("t.yaml:6:"), "{e}");
    }

    #[test]
    fn a_self_destroying_machine_is_a_warning() {
        let warned = |body: &str| {
            let spec = format!("{HEAD}{body}tenants: [{{ name: alice }}]\n");
            let w = load_bytes(spec.as_bytes(), "t.yaml").unwrap().warnings;
            w.to_string()
                .contains("auto_destroy: a Machine whose process exits")
        };
        assert!(warned("  auto_destroy: true\n"));
        assert!(!warned("  auto_destroy: true\n  restart: always\n"));
        assert!(!warned("  auto_destroy: false\n"));
    }

    #[test]
    fn undeclared_fields_stay_unset() {
        assert!(machine_config("").is_empty());
        let c = machine_config("  stop_config: { signal: SIGUSR1 }\n  auto_destroy: false\n");
        assert_eq!(
            c.stop_config.and_then(|s| s.signal).as_deref(),
            Some("SIGUSR1")
        );
        assert_eq!(c.auto_destroy, Some(false));
        assert_eq!(c.init, None);
    }
}
