//! Property tests of the request handlers: random methods, paths, headers and JSON
//! bodies never get a 5xx (no faults are configured) and every error has Fly's shape.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod simkit;

use std::sync::OnceLock;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use reqwest::Method;
use serde_json::{Map, Value, json};
use simkit::*;

struct World {
    rt: tokio::runtime::Runtime,
    sim: TestSim,
    machine: String,
    volume: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (sim, machine, volume) = rt.block_on(async {
            let sim = start_with_app("fz").await;
            let volume = sim.create_volume("fz", "data", "sjc").await;
            let m = sim
                .create_machine(
                    "fz",
                    json!({"region": "sjc", "config": {"image": "nginx",
                        "mounts": [{"volume": volume, "path": "/d"}]}}),
                )
                .await;
            (sim, id(&m), volume)
        });
        World {
            rt,
            sim,
            machine,
            volume,
        }
    })
}

const KEYS: &[&str] = &[
    "config",
    "image",
    "guest",
    "cpus",
    "cpu_kind",
    "memory_mb",
    "size",
    "services",
    "internal_port",
    "autostop",
    "autostart",
    "ports",
    "mounts",
    "volume",
    "path",
    "name",
    "region",
    "size_gb",
    "value",
    "values",
    "ttl",
    "app_name",
    "org_slug",
    "restart",
    "policy",
    "snapshot_id",
    "source_volume_id",
    "snapshot_retention",
    "skip_launch",
    "lease_ttl",
    "current_version",
    "metadata",
    "env",
    "init",
    "checks",
    "schedule",
    "enabled",
    "spec",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
        "[a-z0-9_/:.-]{0,10}".prop_map(Value::from),
        Just(json!("nginx")),
        Just(json!("sjc")),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(
                prop_oneof![
                    prop::sample::select(KEYS).prop_map(String::from),
                    "[a-z_]{1,6}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Bodies that get past the first checks: a Machine config with random parts.
fn arb_body() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        arb_json().prop_map(|v| Some(v.to_string().into_bytes())),
        arb_json().prop_map(|v| {
            let mut cfg = json!({"image": "nginx"});
            if let (Some(c), Value::Object(extra)) = (cfg.as_object_mut(), v) {
                c.extend(extra);
            }
            Some(
                json!({"region": "sjc", "config": cfg})
                    .to_string()
                    .into_bytes(),
            )
        }),
        vec(any::<u8>(), 0..64).prop_map(Some),
    ]
}

fn arb_segment() -> impl Strategy<Value = String> {
    let w = world();
    prop_oneof![
        Just("fz".to_string()),
        Just(w.machine.clone()),
        Just(w.volume.clone()),
        "[a-zA-Z0-9_.~-]{0,12}",
        Just("%00".to_string()),
        Just("%E2%82%AC".to_string()),
    ]
}

fn arb_path() -> impl Strategy<Value = String> {
    let tails = prop::sample::select(vec![
        "",
        "start",
        "stop",
        "suspend",
        "restart",
        "cordon",
        "uncordon",
        "wait",
        "events",
        "lease",
        "metadata",
        "extend",
        "snapshots",
    ]);
    (
        arb_segment(),
        prop::sample::select(vec!["machines", "volumes", "secrets", "x"]),
        arb_segment(),
        tails,
        arb_segment(),
        prop::sample::select(vec![
            "",
            "?force=true",
            "?state=stopped&timeout=1",
            "?timeout=-1",
            "?include_deleted=1&metadata.a=b",
            "?ttl=abc",
            "?org_slug=personal",
        ]),
        0usize..5,
    )
        .prop_map(|(app, kind, id, tail, extra, q, depth)| {
            let mut p = String::from("/v1/apps");
            for seg in [app, kind.to_string(), id, tail.to_string(), extra]
                .into_iter()
                .take(depth)
            {
                p.push('/');
                p.push_str(&seg);
            }
            p + q
        })
}

fn arb_method() -> impl Strategy<Value = Method> {
    prop::sample::select(vec![
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn random_requests_never_get_a_5xx(
        method in arb_method(),
        path in arb_path(),
        body in arb_body(),
        nonce in prop::option::of("[a-f0-9]{0,12}"),
    ) {
        let w = world();
        let (status, text) = w.rt.block_on(async {
            let mut req = w
                .sim
                .client
                .request(method.clone(), format!("{}{}", w.sim.base, path))
                .bearer_auth(TOKEN);
            if let Some(b) = body {
                req = req.body(b);
            }
            if let Some(n) = nonce {
                req = req.header("fly-machine-lease-nonce", n);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        });
        prop_assert!(status < 500, "{method} {path} -> {status}: {text}");
        if status >= 400 && method != Method::HEAD {
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{method} {path}: non-JSON error {text:?}: {e}")))?;
            prop_assert!(v["error"].is_string(), "{method} {path}: {text}");
        }
    }
}
