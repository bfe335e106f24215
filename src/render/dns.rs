//! Renderings of custom domains' DNS records and certificate status: a table per
//! tenant (`flotilla dns`), a zone-file fragment (`--format bind`: fully qualified
//! names with trailing dots, TTL 300) and the short block `apply` prints after it
//! created hostnames or left certificates pending. Pure: callers decide where it goes.

use std::fmt::Write as _;

use crate::resource::dns::{DnsRecord, HostDns, HostStatus};

/// The TTL of the records in a zone-file fragment (seconds).
pub const BIND_TTL: u32 = 300;

/// Who a hostname belongs to, as a heading: `tenant alice (app web-alice)` or
/// `app router`.
fn owner_heading(h: &HostDns) -> String {
    match &h.tenant {
        Some(t) => format!("tenant {t} (app {})", h.app),
        None => format!("app {}", h.app),
    }
}

fn status_text(h: &HostDns) -> String {
    match (&h.status, &h.waits_for) {
        (HostStatus::Issued, _) => "issued".into(),
        (s, Some(w)) => format!("{}: waits for {w}", s.as_str()),
        (s, None) => s.as_str().into(),
    }
}

fn fqdn(name: &str) -> String {
    format!("{name}.")
}

/// One table per owner: each hostname's status, then its records (name, type, value).
pub fn text(org: &str, hosts: &[HostDns]) -> String {
    let mut out = String::new();
    if hosts.is_empty() {
        let _ = writeln!(out, "No hostnames declared (org {org}).");
        out.push_str("Declare `hostnames:` in the spec to serve custom domains.\n");
        return out;
    }
    let _ = writeln!(out, "DNS records for org {org}:");
    let mut i = 0;
    while i < hosts.len() {
        let heading = owner_heading(&hosts[i]);
        let group: Vec<&HostDns> = hosts[i..]
            .iter()
            .take_while(|h| owner_heading(h) == heading)
            .collect();
        i += group.len();
        let _ = writeln!(out, "\n{heading}");
        write_group(&mut out, &group);
    }
    let pending = hosts
        .iter()
        .filter(|h| h.status != HostStatus::Issued)
        .count();
    let _ = writeln!(
        out,
        "\n{} hostname(s): {} issued, {pending} not issued yet.",
        hosts.len(),
        hosts.len() - pending
    );
    out
}

/// The rows of one owner's table, columns padded to the widest cell.
fn write_group(out: &mut String, group: &[&HostDns]) {
    let mut rows: Vec<[String; 4]> = vec![[
        "HOSTNAME".into(),
        "TYPE".into(),
        "NAME".into(),
        "VALUE".into(),
    ]];
    for h in group {
        if h.records.is_empty() {
            rows.push([h.hostname.clone(), "-".into(), "-".into(), "-".into()]);
        }
        for (n, r) in h.records.iter().enumerate() {
            let host = if n == 0 {
                h.hostname.clone()
            } else {
                String::new()
            };
            rows.push([
                host,
                r.record_type.to_string(),
                r.name.clone(),
                r.value.clone(),
            ]);
        }
    }
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for r in &rows {
        let line = format!("  {:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3]);
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for h in group {
        let _ = writeln!(out, "  {}: {}", h.hostname, status_text(h));
    }
}

fn bind_record(out: &mut String, r: &DnsRecord) {
    let value = match r.record_type {
        crate::resource::dns::RecordType::Cname => fqdn(&r.value),
        _ => r.value.clone(),
    };
    let _ = writeln!(
        out,
        "{}\t{BIND_TTL}\tIN\t{}\t{value}",
        fqdn(&r.name),
        r.record_type
    );
}

/// A zone-file fragment: every record with its FQDN and TTL, a comment per hostname
/// with its owner and status; hostnames not applied yet are comments only.
pub fn bind(org: &str, fleet: &str, hosts: &[HostDns]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "; DNS records for fleet {fleet} in org {org} (flotilla dns)"
    );
    for h in hosts {
        let _ = writeln!(
            out,
            "; {} ({}): {}",
            h.hostname,
            owner_heading(h),
            status_text(h)
        );
        for r in &h.records {
            bind_record(&mut out, r);
        }
    }
    out
}

/// The short block after an apply: the records of the hostnames it created or whose
/// certificate is not issued, and where to see all of them. Empty for no hostnames.
pub fn after_apply(spec: &str, hosts: &[HostDns]) -> String {
    if hosts.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nDNS records to create at your DNS host:\n");
    let mut rows: Vec<[String; 3]> = Vec::new();
    for h in hosts {
        for r in &h.records {
            rows.push([fqdn(&r.name), r.record_type.to_string(), r.value.clone()]);
        }
    }
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let (w0, w1) = (width(0), width(1));
    for r in &rows {
        let _ = writeln!(out, "  {:w0$}  {:w1$}  {}", r[0], r[1], r[2]);
    }
    for h in hosts {
        let _ = writeln!(out, "  {}: {}", h.hostname, status_text(h));
    }
    let _ = writeln!(
        out,
        "All hostnames, their records and status: flotilla dns {spec} (--format bind for a zone file)."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::dns::{Purpose, RecordType};
    use crate::resource::{Address, Owner};

    fn record(name: &str, t: RecordType, value: &str, purpose: Purpose) -> DnsRecord {
        DnsRecord {
            name: name.into(),
            record_type: t,
            value: value.into(),
            purpose,
        }
    }

    fn host(owner: Owner<'_>, app: &str, hostname: &str, status: HostStatus) -> HostDns {
        HostDns {
            hostname: hostname.into(),
            address: Address::certificate(&owner, hostname),
            tenant: match owner {
                Owner::Tenant(t) => Some(t.into()),
                Owner::SharedApp(_) => None,
            },
            app: app.into(),
            wildcard: hostname.starts_with("*."),
            apex: hostname.split('.').count() == 2 && !hostname.starts_with("*."),
            status,
            fly_status: match status {
                HostStatus::NotApplied => None,
                HostStatus::Pending => Some("pending".into()),
                HostStatus::Issued => Some("issued".into()),
            },
            waits_for: None,
            records: Vec::new(),
        }
    }

    /// A fleet with every case: an apex with dedicated and v6 addresses (issued), a
    /// pending subdomain, a pending wildcard, a shared app's hostname, and a tenant not
    /// applied yet.
    pub(crate) fn fleet() -> Vec<HostDns> {
        let mut apex = host(
            Owner::Tenant("alice"),
            "my-jarvis-alice",
            "alice.io",
            HostStatus::Issued,
        );
        apex.records = vec![
            record("alice.io", RecordType::A, "198.51.100.1", Purpose::Traffic),
            record(
                "alice.io",
                RecordType::Aaaa,
                "2001:db8::1",
                Purpose::Traffic,
            ),
        ];
        let mut sub = host(
            Owner::Tenant("alice"),
            "my-jarvis-alice",
            "alice.myjarvis.io",
            HostStatus::Pending,
        );
        sub.waits_for = Some("the CNAME record to resolve to the app".into());
        sub.records = vec![record(
            "alice.myjarvis.io",
            RecordType::Cname,
            "my-jarvis-alice.fly.dev",
            Purpose::Traffic,
        )];
        let mut wild = host(
            Owner::SharedApp("router"),
            "my-jarvis-router",
            "*.myjarvis.io",
            HostStatus::Pending,
        );
        wild.waits_for =
            Some("the _acme-challenge CNAME (Let's Encrypt validates wildcards over DNS)".into());
        wild.records = vec![
            record(
                "*.myjarvis.io",
                RecordType::Cname,
                "my-jarvis-router.fly.dev",
                Purpose::Traffic,
            ),
            record(
                "_acme-challenge.myjarvis.io",
                RecordType::Cname,
                "myjarvis.io.5f2a9c1e.flydns.net",
                Purpose::AcmeChallenge,
            ),
        ];
        let mut later = host(
            Owner::Tenant("bob"),
            "my-jarvis-bob",
            "bob.myjarvis.io",
            HostStatus::NotApplied,
        );
        later.waits_for = Some("`flotilla apply` (app my-jarvis-bob does not exist yet)".into());
        vec![wild, apex, sub, later]
    }

    #[test]
    fn text_is_a_table_per_owner() {
        insta::assert_snapshot!("dns_text", text("my-jarvis", &fleet()));
        insta::assert_snapshot!("dns_text_empty", text("my-jarvis", &[]));
    }

    #[test]
    fn bind_is_a_zone_fragment_with_fqdns_and_ttl() {
        let b = bind("my-jarvis", "jarvis", &fleet());
        for line in b.lines().filter(|l| !l.starts_with(';')) {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 5, "{line}");
            assert!(cols[0].ends_with('.') && cols[1] == "300" && cols[2] == "IN");
        }
        insta::assert_snapshot!("dns_bind", b);
    }

    #[test]
    fn json_lists_every_hostname_with_its_records_and_status() {
        let o = crate::ops::dns::Outcome {
            org: "my-jarvis".into(),
            fleet: "jarvis".into(),
            hostnames: fleet(),
        };
        let json = serde_json::to_string_pretty(&o).unwrap_or_default();
        insta::assert_snapshot!("dns_json", json);
    }

    #[test]
    fn after_apply_is_short_and_points_at_the_command() {
        let hosts: Vec<HostDns> = fleet()
            .into_iter()
            .filter(|h| h.status != HostStatus::Issued)
            .collect();
        insta::assert_snapshot!("dns_after_apply", after_apply("specs/jarvis.yaml", &hosts));
        assert_eq!(after_apply("specs/jarvis.yaml", &[]), "");
    }
}
