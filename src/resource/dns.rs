//! The DNS records a custom domain needs, derived from the app's addresses and what its
//! certificate asks for: Fly's advice is A/AAAA records at the app's addresses for an
//! apex domain (a CNAME is not allowed there) and a CNAME to `APP.fly.dev` for a
//! subdomain; a wildcard certificate is validated over DNS (DNS-01), so it also needs the
//! `_acme-challenge` CNAME Fly names. Pure: the caller reads the addresses and the
//! certificate.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Address;
use super::network::is_wildcard;

/// The record types flotilla asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "CNAME")]
    Cname,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a record is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Sends the hostname's traffic to the app.
    Traffic,
    /// Lets Fly prove control of the domain to Let's Encrypt (DNS-01).
    AcmeChallenge,
}

/// One record to create: owner name and value are fully qualified, without the
/// trailing dot (renderings add it where their format wants one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    pub value: String,
    pub purpose: Purpose,
}

/// The app's public addresses, as Fly assigned them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublicAddresses {
    /// Dedicated IPv4 addresses.
    pub v4: Vec<String>,
    /// The organization's shared IPv4 address, if the app has it.
    pub shared_v4: Option<String>,
    /// Public IPv6 addresses.
    pub v6: Vec<String>,
}

impl PublicAddresses {
    /// The IPv4 addresses an A record points at: the dedicated ones, else the shared one.
    pub fn a_targets(&self) -> Vec<String> {
        if self.v4.is_empty() {
            self.shared_v4.iter().cloned().collect()
        } else {
            self.v4.clone()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.shared_v4.is_none() && self.v6.is_empty()
    }
}

/// What a certificate names for its records (Fly's `dns_requirements`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// The CNAME target Fly gives (`APP.fly.dev` when it names none).
    pub cname: Option<String>,
    /// The `_acme-challenge` record: its name and target.
    pub acme_challenge: Option<(String, String)>,
}

/// Whether a hostname is an apex domain (exactly two labels, `example.com`), where DNS
/// allows no CNAME. Hostnames under a multi-label public suffix (`example.co.uk`) count
/// as subdomains; their owners use A/AAAA records by hand if their DNS host has no
/// CNAME flattening.
pub fn is_apex(hostname: &str) -> bool {
    !is_wildcard(hostname) && hostname.split('.').count() == 2
}

/// The records `hostname` on `app` needs: A/AAAA at the app's public addresses for an
/// apex domain, a CNAME for a subdomain or wildcard, and for a wildcard the
/// `_acme-challenge` CNAME. An apex domain of an app without public addresses gets no
/// traffic records (the caller says what is missing).
pub fn records(
    hostname: &str,
    app: &str,
    addrs: &PublicAddresses,
    req: &Requirements,
) -> Vec<DnsRecord> {
    let traffic = |record_type, value: &str| DnsRecord {
        name: hostname.to_string(),
        record_type,
        value: value.to_string(),
        purpose: Purpose::Traffic,
    };
    let mut out: Vec<DnsRecord> = if is_apex(hostname) {
        let a = addrs.a_targets();
        let a = a.iter().map(|ip| traffic(RecordType::A, ip));
        let aaaa = addrs.v6.iter().map(|ip| traffic(RecordType::Aaaa, ip));
        a.chain(aaaa).collect()
    } else {
        let target = req
            .cname
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| format!("{app}.fly.dev"));
        vec![traffic(RecordType::Cname, strip_dot(&target))]
    };
    if is_wildcard(hostname) {
        let base = hostname.trim_start_matches("*.");
        let (name, target) = req
            .acme_challenge
            .clone()
            .unwrap_or_else(|| (format!("_acme-challenge.{base}"), String::new()));
        if !target.is_empty() {
            out.push(DnsRecord {
                name: strip_dot(&name).to_string(),
                record_type: RecordType::Cname,
                value: strip_dot(&target).to_string(),
                purpose: Purpose::AcmeChallenge,
            });
        }
    }
    out
}

fn strip_dot(s: &str) -> &str {
    s.strip_suffix('.').unwrap_or(s)
}

/// Where a hostname stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Declared, but its app or certificate does not exist yet: apply first.
    NotApplied,
    /// The certificate waits for its DNS records.
    Pending,
    /// The certificate is issued: the hostname is served over TLS.
    Issued,
}

impl HostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::NotApplied => "not applied yet",
            HostStatus::Pending => "pending",
            HostStatus::Issued => "issued",
        }
    }
}

/// One declared hostname: its records and its certificate's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostDns {
    pub hostname: String,
    /// The certificate's address (`OWNER.cert#HOSTNAME`).
    pub address: Address,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub app: String,
    pub wildcard: bool,
    /// An apex domain (`example.com`): A/AAAA records instead of a CNAME.
    pub apex: bool,
    pub status: HostStatus,
    /// Fly's own status word for the certificate, as it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fly_status: Option<String>,
    /// What the certificate (or the hostname) waits for; none once issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<String>,
    /// The records to create, traffic first (empty when not applied yet).
    pub records: Vec<DnsRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> PublicAddresses {
        PublicAddresses {
            v4: vec![],
            shared_v4: Some("203.0.113.1".into()),
            v6: vec!["2001:db8::1".into()],
        }
    }

    #[test]
    fn apex_domains_get_address_records_subdomains_a_cname() {
        let r = records("example.com", "web", &addrs(), &Requirements::default());
        let got: Vec<_> = r
            .iter()
            .map(|r| (r.record_type, r.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (RecordType::A, "203.0.113.1"),
                (RecordType::Aaaa, "2001:db8::1")
            ]
        );
        let r = records("a.example.com", "web", &addrs(), &Requirements::default());
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].record_type, r[0].value.as_str()),
            (RecordType::Cname, "web.fly.dev")
        );
    }

    #[test]
    fn a_dedicated_v4_wins_over_the_shared_one() {
        let mut a = addrs();
        a.v4.push("198.51.100.1".into());
        assert_eq!(a.a_targets(), ["198.51.100.1"]);
    }

    #[test]
    fn wildcards_add_the_challenge_cname_fly_names() {
        let req = Requirements {
            cname: Some("web.fly.dev.".into()),
            acme_challenge: Some((
                "_acme-challenge.example.com".into(),
                "example.com.x1.flydns.net.".into(),
            )),
        };
        let r = records("*.example.com", "web", &addrs(), &req);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name, "*.example.com");
        assert_eq!(r[0].value, "web.fly.dev");
        assert_eq!(r[1].purpose, Purpose::AcmeChallenge);
        assert_eq!(r[1].name, "_acme-challenge.example.com");
        assert_eq!(r[1].value, "example.com.x1.flydns.net");
        assert!(!is_apex("*.example.com") && is_apex("example.com"));
    }

    #[test]
    fn an_apex_without_addresses_gets_no_traffic_records() {
        let r = records(
            "example.com",
            "web",
            &PublicAddresses::default(),
            &Requirements::default(),
        );
        assert!(r.is_empty());
    }
}
