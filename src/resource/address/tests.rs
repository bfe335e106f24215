use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;

fn a(s: &str) -> Address {
    s.parse().unwrap()
}

#[test]
fn natural_order_compares_digit_runs_as_numbers() {
    use Ordering::*;
    let cases = [
        ("user-2", "user-10", Less),
        ("tenant.a.machine[9]", "tenant.a.machine[10]", Less),
        ("t7", "t007", Greater), // equal as numbers: ties broken bytewise
        ("t007", "t007", Equal),
        ("a10b2", "a10b10", Less),
        ("app.b", "app.a", Greater),
        ("x1", "x", Greater),
        ("99999999999999999999999", "100000000000000000000000", Less),
    ];
    for (x, y, want) in cases {
        assert_eq!(natural_cmp(x, y), want, "{x} vs {y}");
        assert_eq!(natural_cmp(y, x), want.reverse(), "{y} vs {x}");
    }
}

#[test]
fn addresses_sort_naturally() {
    let mut v: Vec<Address> = [
        "tenant.user-10.app",
        "tenant.user-2.app",
        "tenant.user-1.machine[10]",
        "tenant.user-1.machine[9]",
        "tenant.user-1.app",
    ]
    .iter()
    .map(|s| a(s))
    .collect();
    v.sort();
    let s: Vec<&str> = v.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        s,
        vec![
            "tenant.user-1.app",
            "tenant.user-1.machine[9]",
            "tenant.user-1.machine[10]",
            "tenant.user-2.app",
            "tenant.user-10.app"
        ]
    );
    assert_eq!(natural_cmp("a01", "a1"), "a01".cmp("a1"));
    assert_eq!(natural_cmp("t10x", "t10y"), Ordering::Less);
    assert_eq!(natural_cmp("t109", "t11"), Ordering::Greater);
    assert_eq!(natural_cmp("same", "same"), Ordering::Equal);
    assert_eq!(natural_cmp("ab", "abc"), Ordering::Less);
}

#[test]
fn parts_of_each_form() {
    let m = a("tenant.alice.machine[3]");
    assert_eq!(m.form(), AddressForm::Machine);
    assert_eq!(m.kind(), Some(Kind::Machine));
    assert_eq!(m.owner(), Some(Owner::Tenant("alice")));
    assert_eq!(m.index(), Some(3));
    assert_eq!(m.instance(), None);
    assert_eq!(m, Address::machine(&Owner::Tenant("alice"), 3));

    let d = a("app.web.volume.data[1]#vol_9");
    assert_eq!(d.kind(), Some(Kind::Volume));
    assert_eq!(d.owner(), Some(Owner::SharedApp("web")));
    assert_eq!(
        (d.name(), d.index(), d.instance()),
        (Some("data"), Some(1), Some("vol_9"))
    );
    assert_eq!(
        d.backup_of_volume().unwrap().as_str(),
        "app.web.backup.data[1]#vol_9"
    );
    assert!(d.is_duplicate());

    let u = a("app.web.machine#m1");
    assert_eq!((u.index(), u.instance()), (None, Some("m1")));
    assert_eq!(
        u.slot_volume("data").unwrap().as_str(),
        "app.web.volume.data[0]"
    );
    assert_eq!(
        u,
        Address::unindexed_machine(&Owner::SharedApp("web"), "m1")
    );

    let g = a("tenant.alice.machine.web[2]");
    assert_eq!(g.kind(), Some(Kind::Machine));
    assert_eq!((g.group(), g.index()), (Some("web"), Some(2)));
    assert_eq!(g, Address::group_machine(&Owner::Tenant("alice"), "web", 2));
    assert_eq!(m.group(), None);
    assert_eq!(
        g.duplicate("m3").unwrap().as_str(),
        "tenant.alice.machine.web[2]#m3"
    );
    assert!("tenant.alice.machine.[0]".parse::<Address>().is_err());

    let s = a("tenant.alice.machine.web[2].standby[1]");
    assert_eq!(s.kind(), Some(Kind::Machine));
    assert_eq!(
        (s.group(), s.index(), s.standby_index()),
        (Some("web"), Some(2), Some(1))
    );
    assert_eq!(s, g.standby(1).unwrap());
    assert_eq!(s.primary(), Some(g.clone()));
    assert_eq!(
        a("app.r.machine[0].standby[0]").primary(),
        Some(a("app.r.machine[0]"))
    );
    let sd = s.duplicate("m4").unwrap();
    assert_eq!(sd.as_str(), "tenant.alice.machine.web[2].standby[1]#m4");
    assert_eq!(sd.primary(), Some(g.clone()));
    assert_eq!(g.primary(), None);
    assert_eq!(g.standby_index(), None);
    assert!(s.standby(0).is_none(), "a standby has no standby");
    assert!(sd.standby(0).is_none());
    assert!(g.duplicate("m5").unwrap().standby(0).is_none());
    let group_named_standby = a("tenant.alice.machine.standby[0]");
    assert_eq!(
        (
            group_named_standby.group(),
            group_named_standby.standby_index()
        ),
        (Some("standby"), None),
        "a process group may be called standby"
    );
    assert!(
        "tenant.alice.machine[0].standby"
            .parse::<Address>()
            .is_err()
    );
    assert!(
        "tenant.alice.machine[0].standby[01]"
            .parse::<Address>()
            .is_err()
    );
    assert!(
        "tenant.alice.machine[0].standby[0].standby[0]"
            .parse::<Address>()
            .is_err()
    );
    assert!(
        "tenant.alice.volume.data[0].standby[0]"
            .parse::<Address>()
            .is_err()
    );
    assert!("tenant.alice.machine.web".parse::<Address>().is_err());

    assert_eq!(a("app.web").kind(), Some(Kind::App));
    assert_eq!(a("tenant.a.app").owner(), Some(Owner::Tenant("a")));
    assert_eq!(a("tenant.a.secret.KEY").name(), Some("KEY"));
    assert_eq!(a("tenant.a#secrets").form(), AddressForm::SecretBatch);
    assert_eq!(a("volume#vol_1").instance(), Some("vol_1"));
    assert_eq!(a("rollout.wave[4]").index(), Some(4));
    assert_eq!(
        a("whatif.hybrid 50.5% + pool").name(),
        Some("hybrid 50.5% + pool")
    );
    assert_eq!(a("org.snapshot_allowance").form(), AddressForm::OrgLine);
    assert_eq!(
        Address::machine(&Owner::Tenant("a"), 0)
            .duplicate("m2")
            .unwrap()
            .as_str(),
        "tenant.a.machine[0]#m2"
    );
    assert!(a("tenant.a.secret.K").duplicate("x").is_none());
}

#[test]
fn ip_and_certificate_addresses() {
    let v6 = a("tenant.alice.ip#v6");
    assert_eq!(v6.form(), AddressForm::Ip);
    assert_eq!(v6.kind(), Some(Kind::Ip));
    assert_eq!(v6.ip_kind(), Some(IpKind::V6));
    assert_eq!((v6.name(), v6.instance()), (Some("v6"), None));
    assert_eq!(v6, Address::ip(&Owner::Tenant("alice"), IpKind::V6));
    assert!(!v6.is_duplicate());

    let extra = a("app.router.ip#v4@198.51.100.7");
    assert_eq!(extra.ip_kind(), Some(IpKind::V4));
    assert_eq!(extra.instance(), Some("198.51.100.7"));
    assert!(extra.is_duplicate());
    assert_eq!(
        extra,
        Address::extra_ip(&Owner::SharedApp("router"), IpKind::V4, "198.51.100.7")
    );
    assert_eq!(
        a("tenant.a.ip#private_v6@fdaa:0:1::2").instance(),
        Some("fdaa:0:1::2")
    );

    let cert = a("app.router.cert#*.myjarvis.io");
    assert_eq!(cert.kind(), Some(Kind::Certificate));
    assert_eq!(cert.name(), Some("*.myjarvis.io"));
    assert_eq!(cert.owner(), Some(Owner::SharedApp("router")));
    assert_eq!(
        cert,
        Address::certificate(&Owner::SharedApp("router"), "*.myjarvis.io")
    );
    assert_eq!(cert.ip_kind(), None);
    assert!(cert.duplicate("x").is_none());
}

#[test]
fn malformed_addresses_are_refused() {
    for bad in [
        "",
        "tenant",
        "tenant.",
        "tenant.a",
        "tenant.a.machine",
        "tenant.a.machine[]",
        "tenant.a.machine[01]",
        "tenant.a.machine[x]",
        "tenant.a.machine[4294967296]",
        "tenant.a.machine[0]x",
        "tenant.a.volume.data",
        "tenant.a.volume.[0]",
        "tenant.a.secret.",
        "tenant.a.secret.A.B",
        "app.a.app",
        "app..machine[0]",
        "machine[0]",
        "volume",
        "volumes#x",
        "rollout.wave[1]x",
        "whatif.",
        "org.a.b",
        "tenant.a.ip#",
        "tenant.a.ip#v5",
        "tenant.a.ip#v6@",
        "app.a.ip.v6",
        "app.a.cert#",
    ] {
        assert!(bad.parse::<Address>().is_err(), "{bad:?} parsed");
    }
    let e = serde_json::from_str::<Address>("\"tenant.a.machine\"").unwrap_err();
    assert!(
        e.to_string()
            .contains("malformed address `tenant.a.machine`"),
        "{e}"
    );
}

#[test]
fn serde_is_the_text() {
    let m = a("tenant.a.machine[0]#m1");
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(json, "\"tenant.a.machine[0]#m1\"");
    assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), m);
    assert_eq!(format!("{m:?}"), "Address(\"tenant.a.machine[0]#m1\")");
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9_-]{1,10}",
        1 => "[^.#\\[\\]]{1,6}",
    ]
}

fn owner() -> impl Strategy<Value = (bool, String)> {
    (any::<bool>(), name())
}

fn own((tenant, n): &(bool, String)) -> Owner<'_> {
    if *tenant {
        Owner::Tenant(n)
    } else {
        Owner::SharedApp(n)
    }
}

/// Generated addresses of every form, built by the constructors.
fn address() -> impl Strategy<Value = Address> {
    let id = || prop_oneof![3 => "[a-z0-9_]{0,12}", 1 => ".{0,8}"];
    prop_oneof![
        owner().prop_map(|o| Address::app(&own(&o))),
        (owner(), any::<u32>()).prop_map(|(o, i)| Address::machine(&own(&o), i)),
        (owner(), 0u32..20, id())
            .prop_map(|(o, i, id)| Address::machine(&own(&o), i).duplicate(&id).unwrap()),
        (owner(), id()).prop_map(|(o, id)| Address::unindexed_machine(&own(&o), &id)),
        (owner(), name(), any::<u32>()).prop_map(|(o, g, i)| Address::group_machine(
            &own(&o),
            &g,
            i
        )),
        (owner(), name(), 0u32..20, id()).prop_map(|(o, g, i, id)| {
            Address::group_machine(&own(&o), &g, i)
                .duplicate(&id)
                .unwrap()
        }),
        (owner(), 0u32..20, any::<u32>())
            .prop_map(|(o, i, k)| Address::machine(&own(&o), i).standby(k).unwrap()),
        (owner(), name(), 0u32..20, 0u32..3, id()).prop_map(|(o, g, i, k, id)| {
            Address::group_machine(&own(&o), &g, i)
                .standby(k)
                .and_then(|s| s.duplicate(&id))
                .unwrap()
        }),
        (owner(), name(), 0u32..1000).prop_map(|(o, n, i)| Address::volume(&own(&o), &n, i)),
        (owner(), name(), 0u32..1000, id())
            .prop_map(|(o, n, i, id)| { Address::volume(&own(&o), &n, i).duplicate(&id).unwrap() }),
        (owner(), name(), 0u32..1000).prop_map(|(o, n, i)| Address::backup(&own(&o), &n, i)),
        (owner(), name()).prop_map(|(o, n)| Address::secret(&own(&o), &n)),
        owner().prop_map(|o| Address::secret_batch(&own(&o))),
        id().prop_map(|id| Address::foreign_volume(&id)),
        (0usize..100).prop_map(Address::rollout_gate),
        ".{1,12}".prop_map(|l| Address::whatif(&l)),
        name().prop_map(|n| Address::org_line(&n)),
        (owner(), 0usize..4).prop_map(|(o, k)| Address::ip(&own(&o), IpKind::ALL[k])),
        (owner(), 0usize..4, ".{1,8}").prop_map(|(o, k, ip)| Address::extra_ip(
            &own(&o),
            IpKind::ALL[k],
            &ip
        )),
        (owner(), ".{1,12}").prop_map(|(o, h)| Address::certificate(&own(&o), &h)),
    ]
}

proptest! {
    #[test]
    fn display_and_parse_round_trip(addr in address()) {
        let text = addr.to_string();
        let back: Address = text.parse().unwrap();
        prop_assert_eq!(&back, &addr);
        prop_assert_eq!(back.parts, addr.parts);
        let json = serde_json::to_string(&addr).unwrap();
        prop_assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), addr);
    }

    #[test]
    fn order_is_the_natural_order_of_the_text(x in address(), y in address()) {
        prop_assert_eq!(x.cmp(&y), natural_cmp(x.as_str(), y.as_str()));
        if let (Some(ox), Some(oy)) = (x.owner(), y.owner()) {
            prop_assert_eq!(
                ox.natural_cmp(&oy),
                natural_cmp(&ox.to_string(), &oy.to_string())
            );
        }
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(s in ".{0,40}") {
        if let Ok(addr) = s.parse::<Address>() {
            prop_assert_eq!(addr.as_str(), s.as_str());
        }
    }
}
