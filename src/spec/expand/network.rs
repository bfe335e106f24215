//! The networking resources of an app: one IP assignment per declared kind and one
//! certificate per custom domain. Hostnames are templates, rendered with the entry's
//! context, checked for DNS syntax, and unique across the fleet (a hostname can point at
//! one app only): a second declaration is an error naming both.

use minijinja::Value as Ctx;

use super::{Expander, Output, err};
use crate::diag::Mark;
use crate::resource::network::hostname_problem;
use crate::resource::{Address, CertSpec, IpSpec, Owner, Resource, Spec};
use crate::spec::resolve::Resolved;

/// Whose networking is expanded: the app's owner, and for messages the entry.
pub(super) struct NetOwner<'n> {
    /// The owner of the app (a tenant hosted in a shared app: the shared app).
    pub owner: Owner<'n>,
    pub app: &'n str,
    pub tenant: Option<&'n str>,
    /// "tenant `alice`" or "app `router`".
    pub desc: &'n str,
}

/// Where a hostname was first declared: who, the document path and its position.
pub(super) type HostBook = foldhash::HashMap<String, (String, String, Mark)>;

impl Expander<'_> {
    /// The IP assignments and certificates one entry declares for its app.
    pub(super) fn expand_network(
        &mut self,
        out: &mut Output,
        who: &NetOwner<'_>,
        settings: &Resolved,
        ctx: &Ctx,
    ) {
        let net = &settings.network;
        for kind in &net.ips {
            let network = match kind {
                crate::resource::IpKind::PrivateV6 => net.flycast_network.clone(),
                _ => None,
            };
            out.resources.push(network_resource(
                who,
                Address::ip(&who.owner, *kind),
                Spec::Ip(Box::new(IpSpec {
                    ip_kind: *kind,
                    network,
                    ip: None,
                })),
            ));
        }
        for (src, path, mark) in &net.hostnames {
            let address = Address::app(&who.owner).to_string();
            let Some(hostname) = self.render(src, ctx, path, *mark, &address) else {
                continue;
            };
            if !self.hostname_ok(&hostname, path, *mark, who, &mut out.hostnames) {
                continue;
            }
            out.resources.push(network_resource(
                who,
                Address::certificate(&who.owner, &hostname),
                Spec::Certificate(Box::new(CertSpec {
                    hostname,
                    status: None,
                })),
            ));
        }
    }

    /// Valid DNS syntax, and not declared by another entry of the fleet.
    fn hostname_ok(
        &mut self,
        hostname: &str,
        path: &str,
        mark: Mark,
        who: &NetOwner<'_>,
        book: &mut HostBook,
    ) -> bool {
        let address = Address::certificate(&who.owner, hostname).to_string();
        if let Some(problem) = hostname_problem(hostname) {
            self.sink.add(
                err(format!("hostname `{hostname}` {problem}"), path, mark)
                    .address(address)
                    .hint("write a domain such as `{{ tenant.name }}.example.com`, or `*.example.com` for a wildcard"),
            );
            return false;
        }
        if let Some((first, first_path, first_mark)) = book.get(hostname) {
            let msg = format!(
                "hostname `{hostname}` of {} ({path} at {}:{}) is already declared by {first} ({first_path} at {}:{})",
                who.desc, mark.line, mark.col, first_mark.line, first_mark.col
            );
            self.sink.add(err(msg, path, mark).address(address).hint(
                "a hostname points at one app: give each tenant its own, e.g. with `{{ tenant.name }}`",
            ));
            return false;
        }
        book.insert(
            hostname.to_string(),
            (who.desc.to_string(), path.to_string(), mark),
        );
        true
    }
}

fn network_resource(who: &NetOwner<'_>, address: Address, spec: Spec) -> Resource {
    Resource {
        address,
        tenant: who.tenant.map(str::to_string),
        app: who.app.to_string(),
        prevent_destroy: false,
        id: None,
        usage: None,
        spec,
    }
}
