//! Networking resources of an app: its IP assignments (`OWNER.ip#KIND`) and the TLS
//! certificates of its custom domains (`OWNER.cert#HOSTNAME`), with the rules their
//! spec values follow (IP kinds, hostname syntax). Pure data and checks.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of IP address an app can be given (Fly's `type` of an IP assignment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpKind {
    /// The organization's shared IPv4 address (free).
    SharedV4,
    /// A dedicated IPv4 address (billed; released addresses are not given back).
    V4,
    /// A dedicated public IPv6 address (free).
    V6,
    /// A Flycast address on a private network (free).
    PrivateV6,
}

impl IpKind {
    pub const ALL: [IpKind; 4] = [IpKind::SharedV4, IpKind::V4, IpKind::V6, IpKind::PrivateV6];

    /// The spelling in specs, addresses and Fly's API.
    pub fn as_str(self) -> &'static str {
        match self {
            IpKind::SharedV4 => "shared_v4",
            IpKind::V4 => "v4",
            IpKind::V6 => "v6",
            IpKind::PrivateV6 => "private_v6",
        }
    }

    /// The kind of that name (`as_str`'s inverse).
    pub fn from_name(s: &str) -> Option<IpKind> {
        IpKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Reachable from the internet (DNS records may point at it).
    pub fn is_public(self) -> bool {
        !matches!(self, IpKind::PrivateV6)
    }

    /// An IPv6 address.
    pub fn is_v6(self) -> bool {
        matches!(self, IpKind::V6 | IpKind::PrivateV6)
    }

    /// The kind of an address Fly reports: Flycast addresses start with `fdaa:`, shared
    /// ones are flagged, the rest is told apart by the address family.
    pub fn of_assignment(ip: &str, shared: bool) -> IpKind {
        if ip.starts_with("fdaa:") {
            IpKind::PrivateV6
        } else if shared {
            IpKind::SharedV4
        } else if ip.contains(':') {
            IpKind::V6
        } else {
            IpKind::V4
        }
    }
}

impl fmt::Display for IpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IP assignment of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSpec {
    pub ip_kind: IpKind,
    /// The private network of a Flycast address (`None`: the organization's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The address Fly assigned (observed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// Where a certificate's ACME issuance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertStatus {
    /// Waiting for the DNS records to be in place.
    Pending,
    /// Issued: the hostname is served over TLS.
    Issued,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Pending => "pending",
            CertStatus::Issued => "issued",
        }
    }

    /// Fly's status words: `ready`/`issued` are issued, anything else still pending.
    pub fn from_fly(status: &str, configured: bool) -> CertStatus {
        match status {
            "issued" | "ready" | "active" => CertStatus::Issued,
            _ if configured && status.is_empty() => CertStatus::Issued,
            _ => CertStatus::Pending,
        }
    }
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The certificate of one custom domain (Let's Encrypt, issued by Fly through ACME).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertSpec {
    pub hostname: String,
    /// Where issuance stands (observed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CertStatus>,
}

impl CertSpec {
    /// `*.example.com`: validated through the `_acme-challenge` CNAME (DNS-01).
    pub fn is_wildcard(&self) -> bool {
        is_wildcard(&self.hostname)
    }
}

/// Whether a hostname is a wildcard (`*.` as its first label).
pub fn is_wildcard(hostname: &str) -> bool {
    hostname.starts_with("*.")
}

/// The longest hostname DNS allows, and the longest label.
const MAX_HOSTNAME: usize = 253;
const MAX_LABEL: usize = 63;

/// What is wrong with a custom domain, if anything: at least two labels of letters,
/// digits and inner dashes (at most 63 characters each, 253 in all), lowercase, a
/// wildcard only as the whole first label, no trailing dot, not a Fly domain.
pub fn hostname_problem(hostname: &str) -> Option<String> {
    if hostname.is_empty() {
        return Some("is empty".into());
    }
    if hostname.len() > MAX_HOSTNAME {
        return Some(format!("is longer than {MAX_HOSTNAME} characters"));
    }
    if hostname.ends_with('.') {
        return Some("ends with a dot".into());
    }
    if hostname.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("has upper-case letters (write hostnames in lower case)".into());
    }
    let labels: Vec<&str> = hostname.split('.').collect();
    if labels.len() < 2 {
        return Some("needs at least two labels (e.g. example.com)".into());
    }
    for (i, label) in labels.iter().enumerate() {
        if *label == "*" {
            if i > 0 {
                return Some("has a wildcard that is not the first label".into());
            }
            continue;
        }
        if let Some(p) = label_problem(label) {
            return Some(p);
        }
    }
    if labels.len() == 2 && labels[0] == "*" {
        return Some("is a wildcard over a top-level domain".into());
    }
    if hostname.ends_with(".fly.dev") || hostname == "fly.dev" {
        return Some("is under fly.dev, which Fly serves already".into());
    }
    None
}

fn label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("has an empty label (two dots in a row)".into());
    }
    if label.len() > MAX_LABEL {
        return Some(format!("has a label longer than {MAX_LABEL} characters"));
    }
    if label.contains('*') {
        return Some("has a `*` that is not a whole first label".into());
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some(format!(
            "has label `{label}` with characters other than letters, digits and dashes"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Some(format!(
            "has label `{label}` starting or ending with a dash"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_kinds_round_trip_and_classify_assignments() {
        for k in IpKind::ALL {
            assert_eq!(IpKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(IpKind::from_name("v5"), None);
        assert_eq!(
            IpKind::of_assignment("fdaa:0:1::3", false),
            IpKind::PrivateV6
        );
        assert_eq!(IpKind::of_assignment("203.0.113.1", true), IpKind::SharedV4);
        assert_eq!(IpKind::of_assignment("2001:db8::1", false), IpKind::V6);
        assert_eq!(IpKind::of_assignment("198.51.100.7", false), IpKind::V4);
    }

    #[test]
    fn hostnames_follow_dns_syntax_with_a_leading_wildcard_only() {
        for ok in ["acme.myjarvis.io", "*.myjarvis.io", "a-1.b.example", "x.io"] {
            assert_eq!(hostname_problem(ok), None, "{ok}");
        }
        let bad = [
            ("", "is empty"),
            ("localhost", "two labels"),
            ("a..io", "empty label"),
            ("a.*.io", "not the first label"),
            ("*x.io", "not a whole first label"),
            ("-a.io", "dash"),
            ("A.io", "upper-case"),
            ("a_b.io", "characters other than"),
            ("a.io.", "ends with a dot"),
            ("*.io", "top-level"),
            ("app.fly.dev", "fly.dev"),
        ];
        for (h, want) in bad {
            let p = hostname_problem(h).unwrap_or_default();
            assert!(p.contains(want), "{h}: {p}");
        }
        let long = format!("{}.io", "a".repeat(64));
        assert!(hostname_problem(&long).is_some_and(|p| p.contains("63")));
        assert!(is_wildcard("*.a.io") && !is_wildcard("a.io"));
    }

    #[test]
    fn fly_statuses_map_to_pending_or_issued() {
        assert_eq!(CertStatus::from_fly("ready", true), CertStatus::Issued);
        assert_eq!(CertStatus::from_fly("issued", true), CertStatus::Issued);
        assert_eq!(
            CertStatus::from_fly("Awaiting configuration", false),
            CertStatus::Pending
        );
        assert_eq!(CertStatus::from_fly("pending", false), CertStatus::Pending);
    }
}
