//! Fly's failure modes, against the simulator over loopback and the real binary: every
//! form of capacity error Fly answers falls back to the next region and converges, an
//! organization quota stops without falling back, Machines and apps briefly invisible
//! after their create are waited for, and a plan large for a region's reported room
//! warns before apply.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reconcile_common;

use reconcile_common::{Org, text};
use serde_json::{Value, json};

const SCALE: f64 = 40.0;

/// Two tenants in sjc with a volume each, falling back to iad.
fn spec(org: &str) -> String {
    format!(
        r#"
version: 1
org: {org}
naming: {{ app: "{org}-{{{{ tenant.name }}}}" }}
defaults:
  image: registry.fly.io/cap:1
  region: sjc
  fallback_regions: [iad]
  memory: 512mb
  volume: {{ name: data, size_gb: 1, mount: /data }}
tenants: [{{ name: a }}, {{ name: b }}]
"#
    )
}

/// A raw request to the simulator's control endpoints (`/__sim/…`).
fn control(org: &Org, method: reqwest::Method, path: &str, body: Value) -> Value {
    let url = format!("{}{path}", org.sim.base_url());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .request(method, url)
            .bearer_auth(reconcile_common::TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    })
}

#[test]
fn every_capacity_form_falls_back_to_the_next_region_and_converges() {
    // 422 insufficient_capacity (both creates), 409 insufficient memory and 412
    // volume_placement_capacity (Machine creates), 400 "no capacity" (volume creates).
    for (form, org_name) in [
        ("sjc", "c422"),
        ("sjc:409", "c409"),
        ("sjc:412", "c412"),
        ("sjc:400", "c400"),
    ] {
        let org = Org::new(SCALE);
        org.write("specs/cap.yaml", &spec(org_name));
        org.set_faults(&format!("capacity={form}"));
        let out = org.apply_ok("specs/cap.yaml", &[]);
        for t in ["a", "b"] {
            let app = format!("{org_name}-{t}");
            let m = &org.machines(&app);
            let v = &org.volumes(&app);
            assert_eq!(m.len(), 1, "{form}: {}", text(&out));
            assert_eq!(m[0]["region"], "iad", "{form}: {}", text(&out));
            assert_eq!(v.len(), 1, "{form}: one volume, none left behind in sjc");
            assert_eq!(
                v[0]["region"], "iad",
                "{form}: the volume is where the Machine is"
            );
            assert_eq!(m[0]["config"]["mounts"][0]["volume"], v[0]["id"]);
        }
        let injected = org.counters().faults_by_kind.get("capacity").copied();
        assert!(injected.unwrap_or(0) >= 2, "{form}: {injected:?}");
        // Converged: nothing left to do, even with the region still full.
        let (plan, code) = org.plan_json("specs/cap.yaml", &[]);
        assert_eq!(code, 0, "{form}: {}", plan["summary"]);
    }
}

#[test]
fn an_organization_quota_stops_with_an_error_instead_of_falling_back() {
    let org = Org::new(SCALE);
    org.write("specs/cap.yaml", &spec("quota"));
    org.set_faults("capacity=sjc:403");
    let out = org.apply("specs/cap.yaml", &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("not created: the organization is over its memory quota in sjc"),
        "{all}"
    );
    // The API's answer is shown: method, path, status and body.
    assert!(all.contains("POST /apps/quota-a/machines → 403"), "{all}");
    assert!(all.contains("over the allowed quota"), "{all}");
    assert!(all.contains("fallback_regions are not tried"), "{all}");
    for t in ["a", "b"] {
        let machines = org.machines(&format!("quota-{t}"));
        assert!(machines.is_empty(), "no Machine anywhere: {machines:?}");
    }
    // Once the quota is raised, the same spec applies in the primary region.
    org.set_faults("none");
    org.apply_ok("specs/cap.yaml", &[]);
    assert_eq!(org.machines("quota-a")[0]["region"], "sjc");
    let (plan, code) = org.plan_json("specs/cap.yaml", &[]);
    assert_eq!(code, 0, "{}", plan["summary"]);
}

#[test]
fn machines_and_apps_briefly_invisible_after_create_converge() {
    let org = Org::new(SCALE);
    let tenants: Vec<String> = (1..=30).map(|i| format!("{{ name: t{i} }}")).collect();
    let spec = format!(
        r#"
version: 1
org: ev
naming: {{ app: "ev-{{{{ tenant.name }}}}" }}
defaults:
  image: registry.fly.io/ev:1
  region: iad
  memory: 256mb
  volume: {{ name: data, size_gb: 1, mount: /data }}
  env: {{ MODE: soak }}
  secrets: {{ API_KEY: {{ env: ANTHROPIC_API_KEY }} }}
tenants: [{}]
"#,
        tenants.join(", ")
    );
    org.write("specs/ev.yaml", &spec);
    org.set_faults("eventual=0.3");
    org.apply_ok("specs/ev.yaml", &[]);
    let hidden = org.counters().faults_by_kind.get("eventual").copied();
    assert!(
        hidden.unwrap_or(0) > 0,
        "the fault hid something: {hidden:?}"
    );
    for i in 1..=30 {
        let m = org.machines(&format!("ev-t{i}"));
        assert_eq!(m.len(), 1, "t{i}: exactly one Machine");
        assert_eq!(m[0]["state"], "started", "t{i}");
        assert_eq!(
            org.volumes(&format!("ev-t{i}")).len(),
            1,
            "t{i}: one volume"
        );
    }
    let (plan, code) = org.plan_json("specs/ev.yaml", &[]);
    assert_eq!(code, 0, "{}", plan["summary"]);
}

/// `n` tenants with one shared-cpu-1x Machine each in iad, no fallback.
fn many(n: usize) -> String {
    let tenants: Vec<String> = (1..=n).map(|i| format!("{{ name: t{i} }}")).collect();
    format!(
        r#"
version: 1
org: pre
naming: {{ app: "pre-{{{{ tenant.name }}}}" }}
defaults:
  image: registry.fly.io/pre:1
  region: iad
  memory: 256mb
tenants: [{}]
"#,
        tenants.join(", ")
    )
}

fn set_room(org: &Org, region: &str, n: u64) {
    control(
        org,
        reqwest::Method::PUT,
        "/__sim/regions/capacity",
        json!({ "region": region, "size": "shared-cpu-1x", "capacity": n }),
    );
}

fn capacity_lines(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("capacity") || l.contains("room for"))
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_plan_larger_than_a_regions_room_warns_before_apply() {
    let org = Org::new(SCALE);
    org.write("specs/pre.yaml", &many(12));
    set_room(&org, "iad", 3);
    let out = org.run("plan", &["specs/pre.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    insta::assert_snapshot!("preflight_text", capacity_lines(&out));
    let md = org.run("plan", &["specs/pre.yaml", "--format", "markdown"]);
    insta::assert_snapshot!("preflight_markdown", capacity_lines(&md));
    let (plan, _) = org.plan_json("specs/pre.yaml", &[]);
    assert_eq!(
        plan["capacity"],
        json!([{ "region": "iad", "size": "shared-cpu-1x", "planned": 12, "capacity": 3, "with_fallback": 0 }])
    );
    // Off, or enough room, or below the threshold: no warning.
    let (off, _) = org.plan_json("specs/pre.yaml", &["--capacity-threshold", "0"]);
    assert!(off.get("capacity").is_none(), "{}", off["capacity"]);
    set_room(&org, "iad", 12);
    let (roomy, _) = org.plan_json("specs/pre.yaml", &[]);
    assert!(roomy.get("capacity").is_none(), "{}", roomy["capacity"]);
    set_room(&org, "iad", 3);
    org.write("specs/small.yaml", &many(9));
    let before = regions_reads(&org);
    let (small, _) = org.plan_json("specs/small.yaml", &[]);
    assert!(small.get("capacity").is_none(), "{}", small["capacity"]);
    assert_eq!(regions_reads(&org), before, "below the threshold: no read");
}

/// How many times the region list was read.
fn regions_reads(org: &Org) -> usize {
    org.requests()
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/v1/platform/regions"))
        })
        .count()
}

#[test]
fn a_404_that_outlasts_the_retries_after_a_create_is_an_error() {
    use flotilla::fly::client::{Client, ClientConfig, FRESH_READ_ATTEMPTS, Token};
    let org = Org::new(SCALE);
    let mut cfg = ClientConfig::new(
        &org.sim.base_url(),
        Token::new(reconcile_common::TOKEN.into()),
    );
    cfg.time_scale = SCALE;
    let client = Client::new(cfg).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = org.counters().requests;
    let e = rt
        .block_on(client.get_new_machine("nowhere", "0123456789abcd"))
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert_eq!(
        e.to_string(),
        "GET /apps/nowhere/machines/0123456789abcd → 404 Not Found: {\"error\":\"app not found\"}"
    );
    assert_eq!(
        org.counters().requests - before,
        u64::from(FRESH_READ_ATTEMPTS),
        "bounded: one read per attempt"
    );
    assert_eq!(client.stats().retries, u64::from(FRESH_READ_ATTEMPTS - 1));
    // An app that never appears reads as absent, after the same bounded attempts.
    assert_eq!(rt.block_on(client.get_new_app("nowhere")).unwrap(), None);
}
