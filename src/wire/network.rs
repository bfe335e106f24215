//! Fly's wire shapes for an app's IP assignments (`/apps/{app}/ip_assignments`) and
//! certificates (`/apps/{app}/certificates`), as fly-go's `flaps` client sends and reads
//! them. Unknown fields are ignored on read.

use serde::{Deserialize, Serialize};

/// The private network of a Flycast address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpNetwork {
    /// Empty for the organization's default network.
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_slug: Option<String>,
}

/// One IP address assigned to an app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpAssignment {
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default)]
    pub shared: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub egress: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Flycast (`private_v6`) addresses only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<IpNetwork>,
}

/// `GET /apps/{app}/ip_assignments`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpList {
    #[serde(default)]
    pub ips: Vec<IpAssignment>,
}

/// `POST /apps/{app}/ip_assignments`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignIpRequest {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// The answer to an assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignIpResponse {
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub shared: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<IpNetwork>,
}

/// A DNS record Fly expects for a hostname (the `_acme-challenge` CNAME).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsTarget {
    pub name: String,
    pub target: String,
}

/// The records Fly wants in place for a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRequirements {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub a: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aaaa: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_challenge: Option<DnsTarget>,
}

/// A certificate as `GET /apps/{app}/certificates/{hostname}` (and the create and
/// check routes) answer it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub hostname: String,
    #[serde(default)]
    pub configured: bool,
    #[serde(default)]
    pub acme_requested: bool,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_requirements: Option<DnsRequirements>,
}

/// `GET /apps/{app}/certificates`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateList {
    #[serde(default)]
    pub certificates: Vec<Certificate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /apps/{app}/certificates/acme`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateCertificateRequest {
    pub hostname: String,
}
