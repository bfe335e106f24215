//! `dns`: the DNS records each declared custom domain needs, read from the live apps'
//! IP assignments and certificates, with where each certificate stands (issued, pending
//! and what it waits for, or not applied yet). Read-only: it asks Fly nothing to check
//! or issue. `apply` uses [`read`] to show the records of the hostnames it created or
//! whose certificate is still pending.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::diag::Diagnostic;
use crate::fly::client::{ApiError, Client};
use crate::ops::target::{Session, TargetOptions};
use crate::ops::{Error, check_tenants, load_spec};
use crate::resource::dns::{
    DnsRecord, PublicAddresses, Requirements, is_apex, records as records_for,
};
pub use crate::resource::dns::{HostDns, HostStatus};
use crate::resource::network::is_wildcard;
use crate::resource::{Address, CertStatus, IpKind, ResourceSet, Spec};
use crate::wire::network::{Certificate, IpAssignment};

/// Which hostnames to look at.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub spec: PathBuf,
    /// Only these tenants' hostnames (empty: every declared hostname, shared apps too).
    pub tenants: Vec<String>,
    pub target: TargetOptions,
}

/// What `dns` found, hostnames in address order.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub org: String,
    pub fleet: String,
    pub hostnames: Vec<HostDns>,
}

/// A hostname the spec declares.
#[derive(Debug, Clone)]
pub(crate) struct Declared {
    pub hostname: String,
    pub address: Address,
    pub tenant: Option<String>,
    pub app: String,
}

/// Reads the records and status of every selected declared hostname.
pub fn run(opts: &Options) -> Result<Outcome, Error> {
    if !opts.target.is_live() {
        return Err(Error::new(
            Diagnostic::error("dns needs an organization to read the apps' addresses from")
                .hint("use --sim for the local simulator, or set FLY_API_TOKEN"),
        ));
    }
    let loaded = load_spec(&opts.spec)?;
    let desired = &loaded.desired;
    check_tenants(desired, &opts.tenants, Some(&opts.spec))?;
    let declared = declared(&desired.resources, &opts.tenants);
    let session = Session::connect(&opts.target)?;
    let client = &session.target().client;
    let hostnames = session.block_on(read(client, &declared)).map_err(|e| {
        Error::new(
            Diagnostic::error(format!(
                "cannot read the apps' addresses and certificates: {e}"
            ))
            .hint("check FLY_API_TOKEN and the network, then run `flotilla dns` again"),
        )
    })?;
    Ok(Outcome {
        org: desired.org.clone(),
        fleet: desired.fleet.clone(),
        hostnames,
    })
}

/// The declared certificates of the selected tenants (all, shared apps too, when
/// `tenants` is empty), in address order.
pub(crate) fn declared(resources: &ResourceSet, tenants: &[String]) -> Vec<Declared> {
    let mut out: Vec<Declared> = resources
        .iter()
        .filter(|r| {
            tenants.is_empty()
                || r.tenant
                    .as_ref()
                    .is_some_and(|t| tenants.iter().any(|x| x == t))
        })
        .filter_map(|r| match &r.spec {
            Spec::Certificate(c) => Some(Declared {
                hostname: c.hostname.clone(),
                address: r.address.clone(),
                tenant: r.tenant.clone(),
                app: r.app.clone(),
            }),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.address.cmp(&b.address));
    out
}

/// Reads each app's addresses and certificates once and derives every hostname's
/// records. An app that does not exist leaves its hostnames "not applied yet".
pub(crate) async fn read(client: &Client, declared: &[Declared]) -> Result<Vec<HostDns>, ApiError> {
    let mut by_app: BTreeMap<&str, Vec<&Declared>> = BTreeMap::new();
    for d in declared {
        by_app.entry(d.app.as_str()).or_default().push(d);
    }
    let mut out = Vec::with_capacity(declared.len());
    for (app, hosts) in by_app {
        let Some((ips, certs)) = read_app(client, app).await? else {
            let why = format!("`flotilla apply` (app {app} does not exist yet)");
            out.extend(hosts.into_iter().map(|d| not_applied(d, &why)));
            continue;
        };
        let addrs = public_addresses(&ips);
        for d in hosts {
            let cert = match certs.iter().find(|c| c.hostname == d.hostname) {
                Some(c) if c.dns_requirements.is_none() => {
                    client.get_certificate(app, &d.hostname).await?
                }
                found => found.cloned(),
            };
            out.push(match cert {
                Some(c) => host(d, &addrs, &c),
                None => not_applied(d, "`flotilla apply` (the certificate is not requested yet)"),
            });
        }
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(out)
}

/// The app's addresses and certificates; `None` when the app does not exist.
async fn read_app(
    client: &Client,
    app: &str,
) -> Result<Option<(Vec<IpAssignment>, Vec<Certificate>)>, ApiError> {
    let ips = match client.list_ips(app).await {
        Ok(ips) => ips,
        Err(e) if e.status() == Some(404) => return Ok(None),
        Err(e) => return Err(e),
    };
    let certs = match client.list_certificates(app).await {
        Ok(c) => c,
        Err(e) if e.status() == Some(404) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some((ips, certs)))
}

/// The public addresses among an app's assignments (egress and Flycast ones are not).
pub(crate) fn public_addresses(ips: &[IpAssignment]) -> PublicAddresses {
    let mut out = PublicAddresses::default();
    for a in ips.iter().filter(|a| !a.egress) {
        match IpKind::of_assignment(&a.ip, a.shared) {
            IpKind::SharedV4 => out.shared_v4 = Some(a.ip.clone()),
            IpKind::V4 => out.v4.push(a.ip.clone()),
            IpKind::V6 => out.v6.push(a.ip.clone()),
            IpKind::PrivateV6 => {}
        }
    }
    out.v4.sort();
    out.v6.sort();
    out
}

fn not_applied(d: &Declared, why: &str) -> HostDns {
    HostDns {
        hostname: d.hostname.clone(),
        address: d.address.clone(),
        tenant: d.tenant.clone(),
        app: d.app.clone(),
        wildcard: is_wildcard(&d.hostname),
        apex: is_apex(&d.hostname),
        status: HostStatus::NotApplied,
        fly_status: None,
        waits_for: Some(why.to_string()),
        records: Vec::new(),
    }
}

/// A hostname whose certificate exists: its records, status and what it waits for.
pub(crate) fn host(d: &Declared, addrs: &PublicAddresses, c: &Certificate) -> HostDns {
    let req = c
        .dns_requirements
        .as_ref()
        .map(|r| Requirements {
            cname: r.cname.clone(),
            acme_challenge: r
                .acme_challenge
                .as_ref()
                .map(|t| (t.name.clone(), t.target.clone())),
        })
        .unwrap_or_default();
    let records = records_for(&d.hostname, &d.app, addrs, &req);
    let status = match CertStatus::from_fly(&c.status, c.configured) {
        CertStatus::Issued => HostStatus::Issued,
        CertStatus::Pending => HostStatus::Pending,
    };
    let mut h = not_applied(d, "");
    h.status = status;
    h.fly_status = (!c.status.is_empty()).then(|| c.status.clone());
    h.waits_for = (status == HostStatus::Pending).then(|| waits_for(&h, addrs, &records));
    h.records = records;
    h
}

/// What a pending certificate waits for, in words.
fn waits_for(h: &HostDns, addrs: &PublicAddresses, records: &[DnsRecord]) -> String {
    if records.is_empty() || addrs.is_empty() {
        return "a public address: add `shared_v4` and `v6` to the app's `ips` and apply".into();
    }
    if h.wildcard {
        "the _acme-challenge CNAME (Let's Encrypt validates wildcards over DNS)".into()
    } else if h.apex {
        "the A/AAAA records to resolve to the app".into()
    } else {
        "the CNAME record to resolve to the app".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Owner;
    use crate::wire::network::{DnsRequirements, DnsTarget};

    fn declared(hostname: &str) -> Declared {
        let owner = Owner::Tenant("alice");
        Declared {
            hostname: hostname.into(),
            address: Address::certificate(&owner, hostname),
            tenant: Some("alice".into()),
            app: "web-alice".into(),
        }
    }

    fn ip(ip: &str, shared: bool) -> IpAssignment {
        IpAssignment {
            ip: ip.into(),
            shared,
            ..IpAssignment::default()
        }
    }

    #[test]
    fn pending_and_issued_certificates_say_what_they_wait_for() {
        let addrs = public_addresses(&[
            ip("203.0.113.1", true),
            ip("2001:db8::1", false),
            ip("fdaa:0:db8::1", false),
        ]);
        assert_eq!(addrs.v6, ["2001:db8::1"]);
        let mut c = Certificate {
            hostname: "*.alice.io".into(),
            status: "pending".into(),
            dns_requirements: Some(DnsRequirements {
                acme_challenge: Some(DnsTarget {
                    name: "_acme-challenge.alice.io".into(),
                    target: "alice.io.abc.flydns.net".into(),
                }),
                ..DnsRequirements::default()
            }),
            ..Certificate::default()
        };
        let h = host(&declared("*.alice.io"), &addrs, &c);
        assert_eq!(h.status, HostStatus::Pending);
        assert!(
            h.waits_for
                .as_deref()
                .unwrap_or("")
                .contains("_acme-challenge")
        );
        assert_eq!(h.records.len(), 2);
        c.status = "issued".into();
        let h = host(&declared("*.alice.io"), &addrs, &c);
        assert_eq!((h.status, h.waits_for), (HostStatus::Issued, None));
    }

    #[test]
    fn an_apex_without_public_addresses_waits_for_one() {
        let c = Certificate {
            hostname: "alice.io".into(),
            status: "pending".into(),
            ..Certificate::default()
        };
        let h = host(&declared("alice.io"), &PublicAddresses::default(), &c);
        assert!(h.records.is_empty());
        assert!(h.waits_for.unwrap_or_default().contains("public address"));
    }
}
