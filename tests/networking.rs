//! Networking end to end against the simulator over loopback, driving the real binary:
//! IP addresses and custom domains are applied and re-plan clean; `flotilla dns` lists
//! every hostname with its records and status; a certificate goes from pending to
//! issued once its DNS records are in place (`POST /__sim/dns`); releasing a dedicated
//! IPv4 needs `--allow-destroy`; costs of addresses and certificates come from the
//! declarations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reconcile_common;

use reconcile_common::{Org, TOKEN, changed_addresses, text};
use serde_json::{Value, json};

const SCALE: f64 = 50.0;

/// alice: a dedicated IPv4 and IPv6, a subdomain, an apex and a wildcard; bob: the
/// shared IPv4 and IPv6 and the default hostname. The default usage assumes a dedicated
/// IPv4 and certificates, which the declarations replace.
const SPEC: &str = "\
version: 1
org: net-test
fleet: web
naming:
  app: \"web-{{ tenant.name }}\"
defaults:
  image: registry.fly.io/web:1.0.0
  region: ams
  size: shared-cpu-1x
  memory: 256mb
  ips: [shared_v4, v6]
  hostnames: [\"{{ tenant.name }}.example.com\"]
  usage: { dedicated_ipv4: 1, certificates: 3 }
tenants:
  - name: alice
    ips: [v4, v6]
    hostnames: [\"alice.example.com\", \"alice.io\", \"*.alice.example.com\"]
  - name: bob
";

fn applied() -> Org {
    let org = Org::new(SCALE);
    org.write("net.yaml", SPEC);
    let out = org.apply_ok("net.yaml", &["-q"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("DNS records to create")
            && stdout.contains("bob.example.com.")
            && stdout.contains("flotilla dns net.yaml"),
        "{stdout}"
    );
    org
}

fn dns_json(org: &Org, extra: &[&str]) -> Value {
    let mut args = vec!["net.yaml", "--format", "json"];
    args.extend_from_slice(extra);
    let out = org.run("dns", &args);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn host<'a>(dns: &'a Value, hostname: &str) -> &'a Value {
    dns["hostnames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hostname"] == hostname)
        .unwrap_or_else(|| panic!("{hostname} not listed: {dns}"))
}

fn records(h: &Value) -> Vec<(String, String, String)> {
    h["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("type"), s("name"), s("value"))
        })
        .collect()
}

fn mark_dns_present(org: &Org, hostname: &str) {
    let url = format!("{}/__sim/dns", org.sim.base_url());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(TOKEN)
            .json(&json!({ "hostname": hostname }))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert!(status.is_success(), "{status}");
}

#[test]
fn applied_networking_replans_clean_and_dns_lists_every_hostname() {
    let org = applied();
    let (plan, code) = org.plan_json("net.yaml", &[]);
    assert_eq!(code, 0, "{plan}");
    assert!(changed_addresses(&plan).is_empty(), "{plan}");

    let dns = dns_json(&org, &[]);
    assert_eq!(dns["org"], "net-test");
    let names: Vec<&str> = dns["hostnames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for h in dns["hostnames"].as_array().unwrap() {
        assert_eq!(h["status"], "pending", "{h}");
        assert!(h["waits_for"].is_string(), "{h}");
        assert!(!h["records"].as_array().unwrap().is_empty(), "{h}");
    }
    let sub = host(&dns, "alice.example.com");
    assert_eq!(
        records(sub),
        [(
            "CNAME".to_string(),
            "alice.example.com".to_string(),
            "web-alice.fly.dev".to_string()
        )]
    );
    // The apex points at alice's dedicated IPv4 and her IPv6, not the shared address.
    let apex = records(host(&dns, "alice.io"));
    let types: Vec<&str> = apex.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(types, ["A", "AAAA"], "{apex:?}");
    assert!(apex[0].2.starts_with("198.51.100."), "{apex:?}");
    let wild = records(host(&dns, "*.alice.example.com"));
    assert_eq!(wild[1].1, "_acme-challenge.alice.example.com", "{wild:?}");
    assert!(wild[1].2.ends_with(".flydns.net"), "{wild:?}");

    // One tenant, as a zone file.
    let out = org.run("dns", &["net.yaml", "--tenant", "bob", "--format", "bind"]);
    let zone = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{zone}");
    assert!(
        zone.contains("bob.example.com.\t300\tIN\tCNAME\tweb-bob.fly.dev."),
        "{zone}"
    );
    assert!(!zone.contains("alice"), "{zone}");
}

#[test]
fn a_certificate_is_issued_once_its_dns_records_are_in_place() {
    let org = applied();
    let pending = |org: &Org| {
        let out = org.run("plan", &["net.yaml"]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(pending(&org).contains("~ tenant.bob.cert#bob.example.com"));

    mark_dns_present(&org, "bob.example.com");

    let dns = dns_json(&org, &[]);
    let bob = host(&dns, "bob.example.com");
    assert_eq!(bob["status"], "issued", "{bob}");
    assert!(bob.get("waits_for").is_none(), "{bob}");
    assert_eq!(host(&dns, "alice.example.com")["status"], "pending");
    let plan = pending(&org);
    assert!(!plan.contains("tenant.bob.cert#bob.example.com"), "{plan}");
    assert!(
        plan.contains("~ tenant.alice.cert#alice.example.com"),
        "{plan}"
    );
    // Nothing changed: the next apply prints no DNS block.
    let out = org.apply_ok("net.yaml", &["-q"]);
    assert!(
        !text(&out).contains("DNS records to create"),
        "{}",
        text(&out)
    );
}

#[test]
fn releasing_a_dedicated_ipv4_needs_allow_destroy() {
    let org = applied();
    org.write("net.yaml", &SPEC.replace("ips: [v4, v6]", "ips: [v6]"));
    let (plan, code) = org.plan_json("net.yaml", &[]);
    assert_eq!(code, 2, "{plan}");
    assert_eq!(changed_addresses(&plan), ["tenant.alice.ip#v4"], "{plan}");

    let refused = org.apply("net.yaml", &["-q"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("--allow-destroy"),
        "{}",
        text(&refused)
    );
    let (_, v4s) = org.api("GET", "/apps/web-alice/ip_assignments", None);
    assert!(v4s.to_string().contains("198.51.100."), "{v4s}");

    org.apply_ok("net.yaml", &["-q", "--allow-destroy"]);
    let (_, ips) = org.api("GET", "/apps/web-alice/ip_assignments", None);
    assert!(!ips.to_string().contains("198.51.100."), "{ips}");
    let (plan, code) = org.plan_json("net.yaml", &[]);
    assert_eq!(code, 0, "{plan}");
    // The apex now points at the IPv6 address only (alice has no IPv4 any more).
    let apex = records(host(&dns_json(&org, &[]), "alice.io"));
    assert_eq!(apex.len(), 1, "{apex:?}");
    assert_eq!(apex[0].0, "AAAA");
}

#[test]
fn addresses_and_certificates_are_priced_from_the_declarations() {
    let org = Org::new(SCALE);
    org.write("net.yaml", SPEC);
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("flotilla"))
        .current_dir(org.dir.path())
        .args(["cost", "net.yaml", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let cost: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines = cost["lines"].as_array().unwrap();
    let of = |item: &str| -> Vec<&Value> { lines.iter().filter(|l| l["item"] == item).collect() };
    // One dedicated IPv4 (alice's), not one per app from usage.dedicated_ipv4.
    let v4 = of("dedicated_ipv4");
    assert_eq!(v4.len(), 1, "{v4:?}");
    assert_eq!(v4[0]["address"], "tenant.alice.ip#v4");
    assert!(
        v4[0]["assumptions"]
            .to_string()
            .contains("declared (ips: v4)")
    );
    // Three single-hostname certificates and one wildcard, one line each.
    let certs: Vec<&str> = of("certificate")
        .iter()
        .map(|l| l["address"].as_str().unwrap())
        .collect();
    assert_eq!(certs.len(), 3, "{certs:?}");
    assert!(certs.contains(&"tenant.bob.cert#bob.example.com"));
    assert_eq!(of("wildcard_certificate").len(), 1);
    // The usage assumptions price nothing the spec declares.
    let text_all = cost.to_string();
    for key in ["usage.dedicated_ipv4", "usage.certificates"] {
        assert!(!text_all.contains(key), "{key} still used: {text_all}");
    }
    // The plan prices the same lines per change.
    let (plan, _) = org.plan_json("net.yaml", &[]);
    let change = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "tenant.alice.ip#v4")
        .unwrap();
    assert_eq!(change["monthly_cost_after_usd"], 2, "{change}");
}

#[test]
fn hostnames_of_apps_not_applied_yet_are_listed_as_such() {
    let org = Org::new(SCALE);
    org.write("net.yaml", SPEC);
    let dns = dns_json(&org, &["--tenant", "alice"]);
    let hosts = dns["hostnames"].as_array().unwrap();
    assert_eq!(hosts.len(), 3, "{dns}");
    for h in hosts {
        assert_eq!(h["status"], "not_applied", "{h}");
        assert_eq!(h["tenant"], "alice", "{h}");
        assert!(h["records"].as_array().unwrap().is_empty(), "{h}");
        assert!(
            h["waits_for"].as_str().unwrap().contains("flotilla apply"),
            "{h}"
        );
    }
    let out = org.run("dns", &["net.yaml", "--tenant", "alicia"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no such tenant"), "{}", text(&out));
}
