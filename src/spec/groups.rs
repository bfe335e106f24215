//! `process_groups:`, as fly.toml has them: each group is its own set of Machines (its
//! own command, count, standbys, services, checks, size, memory and env over the entry's settings),
//! addressed `OWNER.machine.GROUP[N]` and tagged `fly_process_group: GROUP` as flyctl
//! tags them. A group resolves as one more layer over the entry's stack, through the
//! same phases as any stack (`spec::resolve`); an entry without groups is untouched.

use crate::diag::Mark;
use crate::spec::decl;
use crate::spec::expand::{Sink, err};
use crate::spec::procs::Tpl;
use crate::spec::resolve::{Resolved, resolve_stack};
use crate::spec::settings::{Effective, Layer};
use crate::spec::templates::Templates;
use crate::spec::templates::is_template;
use crate::spec::yaml::Node;

/// One process group, resolved.
pub(crate) struct GroupSettings {
    pub name: String,
    /// `cmd`, sent as Fly's `init.cmd` (empty: the image's command); each argument a
    /// template, compiled here and rendered per Machine.
    pub cmd: Vec<Tpl>,
    pub settings: Resolved,
}

/// Whether `name` can be a process group: lowercase letters, digits, `-` and `_`, up to
/// 63 characters, as Fly's process group names.
fn group_name_problem(name: &str) -> Option<&'static str> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    (!ok).then_some("takes lowercase letters, digits, `-` and `_` (up to 63)")
}

/// Each declared group of `eff`, resolved over its settings; `None` when one is wrong.
pub(crate) fn resolve(
    sink: &mut Sink,
    templates: &mut Templates,
    eff: &Effective<'_>,
    what: &str,
    address: &str,
    base: &Resolved,
) -> Option<Vec<GroupSettings>> {
    let origin = eff.origin_of(&decl::PROCESS_GROUPS);
    let entries = eff.value(&decl::PROCESS_GROUPS).and_then(Node::as_map)?;
    let mut ok = true;
    let report = |sink: &mut Sink, ok: &mut bool, d: crate::diag::Diagnostic| {
        *ok = false;
        sink.add(d.address(address.to_string()));
    };
    if base.volume.is_some() {
        report(
            sink,
            &mut ok,
            err(
                "a volume with process_groups is not supported: each Machine's volume slot would be shared by the groups",
                &origin,
                eff.mark_of(&decl::PROCESS_GROUPS),
            )
            .hint("remove `volume:` from this tenant, or declare the groups as separate tenants or apps"),
        );
    }
    let mut groups = Vec::with_capacity(entries.len());
    for (k, node) in entries {
        let Some(name) = k.scalar_text() else {
            continue;
        };
        let path = format!("{origin}.{name}");
        if let Some(problem) = group_name_problem(name) {
            report(
                sink,
                &mut ok,
                err(format!("process group `{name}` {problem}"), &path, k.mark),
            );
            continue;
        }
        let mut layers: Vec<Layer<'_>> = eff.layers.clone();
        layers.push(Layer {
            path: path.clone(),
            node,
        });
        let geff = Effective::new(layers);
        let gwhat = format!("{what}, process group `{name}`");
        let Some(settings) = resolve_stack(sink, templates, &geff, &gwhat, address) else {
            ok = false;
            continue;
        };
        groups.push(GroupSettings {
            name: name.to_string(),
            cmd: cmd(sink, templates, node, &path, address, &mut ok),
            settings,
        });
    }
    if groups.is_empty() && ok {
        report(
            sink,
            &mut ok,
            err("process_groups declares no group", &origin, Mark::default()).hint(
                "declare at least one group (e.g. `web: { count: 1 }`), or remove process_groups",
            ),
        );
    }
    ok.then_some(groups)
}

/// The group's `cmd` arguments, each compiled as a template (a syntax error is reported
/// at the argument).
fn cmd(
    sink: &mut Sink,
    templates: &mut Templates,
    node: &Node,
    path: &str,
    address: &str,
    ok: &mut bool,
) -> Vec<Tpl> {
    let Some(items) = decl::GROUP_CMD.get(node).and_then(Node::as_seq) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, n) in items.iter().enumerate() {
        let Some(src) = n.scalar_text() else { continue };
        let p = format!("{path}.{}[{i}]", decl::GROUP_CMD.key);
        if is_template(src)
            && let Err(e) = templates.compile(src)
        {
            *ok = false;
            sink.add(err(format!("template error: {e}"), &p, n.mark).address(address.to_string()));
        }
        out.push((src.to_string(), p, n.mark));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::resource::{META_FLY_PROCESS_GROUP, META_GROUP};

    const SPEC: &str = "version: 1\norg: o\ndefaults:\n  image: i\n  region: iad\n  env: { A: \"1\" }\n  process_groups:\n    web: { cmd: [serve], count: 2, size: shared-cpu-2x, env: { B: \"2\" }, services: [{ internal_port: 8080, ports: [{ port: 443 }] }] }\n    worker: { cmd: [work] }\ntenants: [{ name: a }]\n";

    #[test]
    fn groups_become_machines_of_their_own() {
        let l = crate::spec::load_bytes(SPEC.as_bytes(), "s.yaml").unwrap();
        let ms: Vec<_> = l
            .desired
            .resources
            .iter()
            .filter_map(|r| r.machine().map(|m| (r.address.to_string(), m)))
            .collect();
        let addrs: Vec<&str> = ms.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            addrs,
            vec![
                "tenant.a.machine.web[0]",
                "tenant.a.machine.web[1]",
                "tenant.a.machine.worker[0]"
            ]
        );
        let (_, web) = &ms[0];
        assert_eq!(web.name, "a-0-web");
        assert_eq!(web.size, "shared-cpu-2x");
        assert_eq!(web.env.get("A").map(String::as_str), Some("1"));
        assert_eq!(web.env.get("B").map(String::as_str), Some("2"));
        assert_eq!(
            web.metadata.get(META_GROUP).map(String::as_str),
            Some("web")
        );
        assert_eq!(
            web.metadata.get(META_FLY_PROCESS_GROUP).map(String::as_str),
            Some("web")
        );
        assert_eq!(
            web.config.init.as_ref().and_then(|i| i.cmd.as_deref()),
            Some(&["serve".to_string()][..])
        );
        assert!(web.services.is_some());
        let (_, worker) = &ms[2];
        assert_eq!(worker.size, "shared-cpu-1x");
        assert!(worker.services.is_none());
        assert_eq!(
            worker.config.init.as_ref().and_then(|i| i.cmd.as_deref()),
            Some(&["work".to_string()][..])
        );
    }

    #[test]
    fn group_names_and_volumes_are_checked() {
        let bad = SPEC.replace("worker:", "Worker:");
        let e = crate::spec::load_bytes(bad.as_bytes(), "s.yaml").unwrap_err();
        assert!(
            e.to_string().contains("process group `Worker` takes"),
            "{e}"
        );
        let vol = SPEC.replace("  env: { A", "  volume: { mount: /data }\n  env: { A");
        let e = crate::spec::load_bytes(vol.as_bytes(), "s.yaml").unwrap_err();
        assert!(
            e.to_string().contains("a volume with process_groups"),
            "{e}"
        );
    }

    #[test]
    fn a_group_command_is_a_template_per_machine() {
        let spec = SPEC.replace("cmd: [work]", "cmd: [work, \"--tenant={{ tenant.name }}\"]");
        let l = crate::spec::load_bytes(spec.as_bytes(), "s.yaml").unwrap();
        let worker = l
            .desired
            .resources
            .iter()
            .filter_map(|r| r.machine())
            .find(|m| m.metadata.get(META_GROUP).is_some_and(|g| g == "worker"))
            .unwrap();
        assert_eq!(
            worker.config.init.as_ref().and_then(|i| i.cmd.as_deref()),
            Some(&["work".to_string(), "--tenant=a".to_string()][..])
        );
        let bad = SPEC.replace("cmd: [work]", "cmd: [work, \"{{ tenant.name \"]");
        let e = crate::spec::load_bytes(bad.as_bytes(), "s.yaml").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("template error"), "{text}");
        assert!(
            text.contains("defaults.process_groups.worker.cmd[1]"),
            "the argument is named: {text}"
        );
    }
}
