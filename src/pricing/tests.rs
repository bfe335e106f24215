use std::path::Path;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::*;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[test]
fn embedded_versions_load_in_date_order() {
    let c = Catalog::embedded().unwrap();
    let dates: Vec<String> = c
        .versions()
        .iter()
        .map(|v| v.version().to_string())
        .collect();
    assert_eq!(
        dates,
        [
            "2024-04-25",
            "2024-06-17",
            "2024-07-18",
            "2024-07-22",
            "2024-08-01",
            "2024-09-01",
            "2024-09-24",
            "2024-10-01",
            "2024-10-07",
            "2024-11-01",
            "2025-10-16",
            "2026-01-01"
        ]
    );
    for v in c.versions() {
        assert_eq!(v.manifest.currency, "USD");
        assert_eq!(v.manifest.hours_per_month, 720);
        assert!(!v.manifest.sources.is_empty());
        // Every row names a source listed in the manifest, with a URL.
        for t in TableName::ALL {
            for row in v.rows(t) {
                let c = v.cite(row.source_ref()).unwrap();
                assert!(c.url.starts_with("https://"), "{t} {}", row.key());
            }
        }
    }
}

#[test]
fn version_in_force_at_a_date() {
    let c = Catalog::embedded().unwrap();
    let at = |s: &str| c.at(date(s)).map(|v| v.version().to_string());
    assert_eq!(at("2024-04-25").unwrap(), "2024-04-25");
    assert_eq!(at("2024-06-16").unwrap(), "2024-04-25");
    assert_eq!(at("2024-07-17").unwrap(), "2024-06-17");
    assert_eq!(at("2024-07-21").unwrap(), "2024-07-18");
    assert_eq!(at("2024-07-22").unwrap(), "2024-07-22");
    assert_eq!(at("2024-09-23").unwrap(), "2024-09-01");
    assert_eq!(at("2024-10-06").unwrap(), "2024-10-01");
    assert_eq!(at("2024-10-31").unwrap(), "2024-10-07");
    assert_eq!(at("2025-06-01").unwrap(), "2024-11-01");
    assert_eq!(at("2025-10-15").unwrap(), "2024-11-01");
    assert_eq!(at("2025-12-31").unwrap(), "2025-10-16");
    assert_eq!(at("2026-02-01").unwrap(), "2026-01-01");
    let err = c.at(date("2024-01-01")).unwrap_err().to_string();
    assert!(
        err.contains("no pricing version is in force on 2024-01-01"),
        "{err}"
    );
    assert!(err.contains("earliest version is 2024-04-25"), "{err}");
}

#[test]
fn dated_changes_are_in_the_right_versions() {
    let c = Catalog::embedded().unwrap();
    let v = |s: &str| c.exact(date(s)).unwrap();
    // Rootfs charged from the first version on.
    assert_eq!(v("2024-04-25").storage.rootfs.price, d("0.15"));
    // Snapshots free until 2026-01-01, then $0.08 with 10 GB free per org.
    assert_eq!(v("2024-11-01").storage.snapshot.price, Decimal::ZERO);
    assert_eq!(v("2026-01-01").storage.snapshot.price, d("0.08"));
    assert_eq!(v("2026-01-01").storage.snapshot.free_per_org, d("10"));
    // Phase-in rule: multiplier = 1 + k x (markup - 1), k = 0, 1/4, 1/2, 3/4, 1 for
    // July..November 2024 (and 0 before July). lax markup 1.199519231, so markup - 1 =
    // 0.199519231 and the multipliers are 1, 1, 1.04987980775, 1.0997596155,
    // 1.14963942325, 1.199519231.
    let lax: Vec<Decimal> = [
        "2024-04-25",
        "2024-07-18",
        "2024-08-01",
        "2024-09-01",
        "2024-10-01",
        "2024-11-01",
    ]
    .iter()
    .map(|s| v(s).region("lax").unwrap().compute_multiplier)
    .collect();
    assert_eq!(
        lax,
        [
            d("1"),
            d("1"),
            d("1.04987980775"),
            d("1.0997596155"),
            d("1.14963942325"),
            d("1.199519231")
        ]
    );
    // Fly's worked example for shared-cpu-1x 256 MB in lax: $1.94, $2.04, $2.14, $2.23,
    // $2.33. Base 0.00000075 x 2,592,000 = 1.944; 1.944 x 1.04987980775 = 2.0409663...
    // -> 2.04; x 1.0997596155 = 2.1379326... -> 2.14; x 1.14963942325 = 2.2348990...
    // -> 2.23; x 1.199519231 = 2.3318653... -> 2.33.
    let base = v("2024-11-01")
        .preset("shared-cpu-1x")
        .unwrap()
        .price_per_30d;
    assert_eq!(base, d("1.944"));
    let cents: Vec<Decimal> = lax
        .iter()
        .map(|m| crate::money::to_cents(base * m))
        .collect();
    assert_eq!(
        cents,
        [
            d("1.94"),
            d("1.94"),
            d("2.04"),
            d("2.14"),
            d("2.23"),
            d("2.33")
        ]
    );
    // Every region's markup is published; none is assumed.
    for date in ["2024-04-25", "2024-11-01", "2026-01-01"] {
        assert!(
            v(date)
                .regions
                .iter()
                .all(|r| r.prov.status != Status::Assumed && r.markup.is_some()),
            "{date}"
        );
    }
    // 35 regions in 2024; 18 from 2025-10-16, when Fly deprecated 17.
    assert_eq!(v("2024-11-01").regions.len(), 35);
    assert_eq!(v("2025-10-16").regions.len(), 18);
    assert_eq!(
        v("2024-11-01").region("sea").unwrap().compute_multiplier,
        d("1.25")
    );
    // Reservation blocks from 2024-07-22, static egress IPs from 2024-09-24.
    assert!(v("2024-07-18").reservations.is_empty());
    assert_eq!(v("2024-07-22").reservations.len(), 6);
    assert!(v("2024-09-01").network.static_egress_ip.is_none());
    assert!(v("2024-09-24").network.static_egress_ip.is_some());
    // Private cross-region traffic: internet rate before granular pricing.
    let na = |s: &str| {
        v(s).bandwidth(crate::platform::RegionGroup::NorthAmerica)
            .unwrap()
            .private_per_gb
    };
    assert_eq!(na("2024-04-25"), d("0.02"));
    assert_eq!(na("2024-07-18"), d("0.006"));
}

#[test]
fn thirty_day_prices_are_the_per_second_rates_times_2592000_seconds() {
    let c = Catalog::embedded().unwrap();
    let v = c.latest().unwrap();
    let p = |name: &str| v.preset(name).unwrap().price_per_30d;
    // 0.00000075 x 2,592,000 = 1.944
    assert_eq!(p("shared-cpu-1x"), d("1.944"));
    // 6 x 0.00000075 x 2,592,000 = 11.664
    assert_eq!(p("shared-cpu-6x"), d("11.664"));
    // 0.00001196 x 2,592,000 = 31.00032
    assert_eq!(p("performance-1x"), d("31.00032"));
    // 16 x 31.00032 = 496.00512 -> $496.01
    assert_eq!(p("performance-16x"), d("496.00512"));
    assert_eq!(crate::money::to_cents(p("performance-16x")), d("496.01"));
    // RAM: 0.00000193 x 2,592,000 = 5.00256
    let ram = v
        .memory(crate::platform::CpuKind::Shared)
        .unwrap()
        .price_per_gb_30d;
    assert_eq!(ram, d("5.00256"));
    // shared-cpu-1x with 1 GB: 1.944 + 0.75 x 5.00256 = 5.69592 -> $5.70;
    // with 2 GB: 1.944 + 1.75 x 5.00256 = 10.69848 -> $10.70.
    assert_eq!(
        crate::money::to_cents(p("shared-cpu-1x") + d("0.75") * ram),
        d("5.70")
    );
    assert_eq!(
        crate::money::to_cents(p("shared-cpu-1x") + d("1.75") * ram),
        d("10.70")
    );
    // performance-1x with 4 GB: 31.00032 + 2 x 5.00256 = 41.00544 -> $41.01.
    assert_eq!(
        crate::money::to_cents(p("performance-1x") + d("2") * ram),
        d("41.01")
    );
}

#[test]
fn a_removed_region_is_priced_at_its_dates_and_explained_after() {
    let c = Catalog::embedded().unwrap();
    // 2024-11-15: sea at its full markup 1.25.
    let old = c.at(date("2024-11-15")).unwrap();
    assert_eq!(old.region("sea").unwrap().compute_multiplier, d("1.25"));
    // Today: no price, and the error says when and how to price it.
    let e = c.latest().unwrap().region("sea").unwrap_err();
    let r = e.retired.clone().unwrap();
    assert_eq!(
        (r.last_priced_in, r.removed_in),
        (date("2024-11-01"), date("2025-10-16"))
    );
    let msg = e.to_string();
    assert!(
        msg.contains("removed it from its price list on 2025-10-16"),
        "{msg}"
    );
    assert!(msg.contains("--pricing-date 2025-10-15"), "{msg}");
    // A region no version ever priced gets no such note.
    assert!(
        c.latest()
            .unwrap()
            .region("xyz")
            .unwrap_err()
            .retired
            .is_none()
    );
}

#[test]
fn lookups_suggest_close_matches() {
    let c = Catalog::embedded().unwrap();
    let v = c.latest().unwrap();
    let e = v.region("sjx").unwrap_err();
    assert!(e.suggestions.contains(&"sjc".to_string()), "{e}");
    assert!(e.to_string().contains("did you mean"), "{e}");
    let e = v.preset("shared-cpu-1").unwrap_err();
    assert_eq!(e.suggestions[0], "shared-cpu-1x");
    let e = v.preset("performance-3x").unwrap_err();
    assert!(e.to_string().contains("performance-"), "{e}");
    let e = v.region("zzzzzz").unwrap_err();
    assert!(
        e.suggestions.is_empty() && !e.to_string().contains("did you mean"),
        "{e}"
    );
}

#[test]
fn citation_names_file_line_and_source() {
    let c = Catalog::embedded().unwrap();
    let v = c.exact(date("2026-01-01")).unwrap();
    let row = v.preset("shared-cpu-1x").unwrap();
    let cit = v.cite(row.source_ref()).unwrap();
    assert_eq!(cit.file, "pricing/fly/2026-01-01/compute.csv");
    assert_eq!(cit.line, 2);
    assert_eq!(cit.key, "shared-cpu-1x");
    assert_eq!(
        cit.value,
        "price_per_second = 0.00000075 (= 1.944 per 30 days)"
    );
    assert!(cit.url.contains("superfly/docs"), "{}", cit.url);
}

#[test]
fn diff_between_2024_11_and_2026_01_is_the_snapshot_charge() {
    let c = Catalog::embedded().unwrap();
    let a = c.at(date("2025-12-01")).unwrap();
    let b = c.at(date("2026-02-01")).unwrap();
    let dfx = diff(a, b);
    assert_eq!(dfx.changes.len(), 1, "{:#?}", dfx.changes);
    let ch = &dfx.changes[0];
    assert_eq!(
        (ch.table, ch.key.as_str()),
        (TableName::Storage, "snapshot")
    );
    assert_eq!(ch.fields.len(), 1);
    assert_eq!(ch.fields[0].field, "price");
    assert_eq!(
        (ch.fields[0].before.as_str(), ch.fields[0].after.as_str()),
        ("0", "0.08")
    );
    assert!(diff(a, a).is_empty());
}

// ---- bad pricing directories ----

/// Writes the embedded 2026-01-01 version into `dir/2026-01-01/`, after applying `edit`
/// to the file named `file`.
fn write_version(dir: &Path, file: &str, edit: impl Fn(&str) -> String) {
    let v = dir.join("2026-01-01");
    std::fs::create_dir_all(&v).unwrap();
    for (rel, text) in embedded_files() {
        if let Some(name) = rel.strip_prefix("fly/2026-01-01/") {
            let text = if name == file {
                edit(text)
            } else {
                text.to_string()
            };
            std::fs::write(v.join(name), text).unwrap();
        }
    }
}

fn load_err(file: &str, edit: impl Fn(&str) -> String) -> PricingError {
    let tmp = tempfile::tempdir().unwrap();
    write_version(tmp.path(), file, edit);
    Catalog::from_dir(tmp.path()).unwrap_err()
}

#[test]
fn a_copied_version_loads_from_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    write_version(tmp.path(), "", |t| t.to_string());
    let c = Catalog::from_dir(tmp.path()).unwrap();
    assert_eq!(c.versions().len(), 1);
    let v = c.at(date("2026-11-01")).unwrap();
    assert!(v.origin.ends_with("2026-01-01"));
    // A single version directory works too.
    let c = Catalog::from_dir(&tmp.path().join("2026-01-01")).unwrap();
    assert_eq!(c.versions().len(), 1);
    // Before its date, nothing is in force.
    let e = c.at(date("2025-12-31")).unwrap_err().to_string();
    assert!(
        e.contains("no pricing version is in force on 2025-12-31"),
        "{e}"
    );
}

#[test]
fn export_writes_a_loadable_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let files = export_embedded(tmp.path()).unwrap();
    assert!(files.len() >= 7 * 8);
    let c = Catalog::from_dir(tmp.path()).unwrap();
    assert_eq!(
        c.versions().len(),
        Catalog::embedded().unwrap().versions().len()
    );
}

#[test]
fn missing_column_is_named() {
    let e = load_err("compute.csv", |t| {
        t.replacen(",price_per_second,", ",price,", 1)
    });
    assert!(e.file.ends_with("compute.csv"), "{e}");
    assert_eq!(e.line, Some(1));
    assert_eq!(e.column.as_deref(), Some("price_per_second"));
    assert!(
        e.to_string()
            .contains("column `price_per_second` (or `price_per_30d`) is missing"),
        "{e}"
    );
    let e = load_err("regions.csv", |t| t.replacen(",phase_in,", ",", 1));
    assert_eq!((e.line, e.column.as_deref()), (Some(1), Some("markup")));
    assert!(e.message.contains("`phase_in` is missing"), "{e}");
}

#[test]
fn a_table_of_30_day_prices_and_multipliers_still_loads() {
    // The older format: price_per_30d, price_per_gb_30d and compute_multiplier as written.
    let tmp = tempfile::tempdir().unwrap();
    write_version(tmp.path(), "", |t| t.to_string());
    let dir = tmp.path().join("2026-01-01");
    let edit = |file: &str, f: &dyn Fn(&str) -> String| {
        let p = dir.join(file);
        let t = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, f(&t)).unwrap();
    };
    edit("compute.csv", &|t| {
        t.replacen("price_per_second", "price_per_30d", 1)
            .replacen(",0.00000075,", ",1.94,", 1)
    });
    edit("memory.csv", &|t| {
        t.replacen("price_per_gb_second", "price_per_gb_30d", 1)
            .replace(",0.00000193,", ",5.00,")
    });
    edit("regions.csv", &|t| {
        t.replacen("markup,phase_in", "compute_multiplier", 1)
            .replacen(",1.038461538,1,", ",1.04,", 1)
            .lines()
            .filter(|l| !l.contains(",1,published") || l.starts_with("region,"))
            .chain(["iad,Ashburn,north_america,1.00,published,fly-markups,baseline"])
            .collect::<Vec<_>>()
            .join("\n")
    });
    // Keep only the rows that were rewritten, so every row matches the header.
    edit("compute.csv", &|t| {
        t.lines().take(2).collect::<Vec<_>>().join("\n")
    });
    edit("regions.csv", &|t| {
        t.lines()
            .filter(|l| l.starts_with("region,") || l.starts_with("ams,") || l.starts_with("iad,"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let c = Catalog::from_dir(tmp.path()).unwrap();
    let v = c.latest().unwrap();
    let p = v.preset("shared-cpu-1x").unwrap();
    assert_eq!((p.price_per_second, p.price_per_30d), (None, d("1.94")));
    assert_eq!(v.region("ams").unwrap().compute_multiplier, d("1.04"));
    assert_eq!(v.region("ams").unwrap().markup, None);
}

#[test]
fn bad_number_names_row_and_column() {
    let e = load_err("compute.csv", |t| {
        t.replacen(",0.00000075,", ",0.0000007x,", 1)
    });
    assert_eq!(e.line, Some(2));
    assert_eq!(e.column.as_deref(), Some("price_per_second"));
    assert!(
        e.to_string().contains("`0.0000007x` is not a number"),
        "{e}"
    );
    assert!(e.to_string().contains("hint:"), "{e}");
}

#[test]
fn exponent_notation_and_overflow_are_named() {
    let e = load_err("compute.csv", |t| t.replacen(",0.00000075,", ",7.5e-7,", 1));
    assert!(
        e.to_string().contains("`7.5e-7` is in exponent notation"),
        "{e}"
    );
    let big = "9".repeat(40);
    let e = load_err("compute.csv", |t| {
        t.replacen(",0.00000075,", &format!(",{big},"), 1)
    });
    assert!(
        e.to_string().contains(&format!("`{big}` is too large")),
        "{e}"
    );
}

#[test]
fn zero_compute_price_is_refused() {
    let e = load_err("compute.csv", |t| t.replacen(",0.00000075,", ",0,", 1));
    assert_eq!(
        (e.line, e.column.as_deref()),
        (Some(2), Some("price_per_second"))
    );
    assert!(e.message.contains("is 0"), "{e}");
}

#[test]
fn duplicate_row_is_refused() {
    let e = load_err("regions.csv", |t| {
        let dup = t
            .lines()
            .find(|l| l.starts_with("iad,"))
            .unwrap()
            .to_string();
        format!("{t}{dup}\n")
    });
    assert!(e.file.ends_with("regions.csv"), "{e}");
    assert_eq!(e.line, Some(20));
    assert!(
        e.message.contains("duplicate row `iad` (first on line 10)"),
        "{e}"
    );
}

#[test]
fn unknown_region_group_is_refused() {
    let e = load_err("regions.csv", |t| {
        t.replacen("ams,Amsterdam,europe", "ams,Amsterdam,eu", 1)
    });
    assert_eq!((e.line, e.column.as_deref()), (Some(2), Some("group")));
    assert!(e.message.contains("unknown region group `eu`"), "{e}");
    assert!(e.hint.contains("north_america"), "{e}");
}

#[test]
fn group_without_bandwidth_is_refused() {
    let e = load_err("bandwidth.csv", |t| {
        t.lines()
            .filter(|l| !l.starts_with("india,"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    assert!(e.file.ends_with("regions.csv"), "{e}");
    assert!(
        e.message.contains("`india` has no row in bandwidth.csv"),
        "{e}"
    );
}

#[test]
fn unknown_source_and_missing_note_are_refused() {
    let e = load_err("memory.csv", |t| t.replacen("fly-rates", "fly-nowhere", 1));
    assert_eq!((e.line, e.column.as_deref()), (Some(2), Some("source")));
    assert!(e.message.contains("not listed in manifest.yaml"), "{e}");
    let e = load_err("memory.csv", |t| {
        t.lines()
            .map(|l| {
                if l.starts_with("shared,") {
                    "shared,0.00000193,assumed,fly-rates,"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    assert_eq!(e.column.as_deref(), Some("note"), "{e}");
}

#[test]
fn malformed_row_and_missing_file_and_manifest_errors() {
    let e = load_err("storage.csv", |t| format!("{t}volume,GB-month\n"));
    assert!(e.file.ends_with("storage.csv") && e.line.is_some(), "{e}");
    let e = load_err("storage.csv", |t| t.replacen("rootfs,", "rootfz,", 1));
    assert!(e.message.contains("unknown item `rootfz`"), "{e}");

    let tmp = tempfile::tempdir().unwrap();
    write_version(tmp.path(), "", |t| t.to_string());
    std::fs::remove_file(tmp.path().join("2026-01-01/network.csv")).unwrap();
    let e = Catalog::from_dir(tmp.path()).unwrap_err();
    assert!(
        e.file.ends_with("network.csv") && e.message == "is missing",
        "{e}"
    );

    let e = load_err("manifest.yaml", |t| {
        t.replacen(
            "effective_date: 2026-01-01",
            "effective_date: 2026-02-01",
            1,
        )
    });
    assert!(e.message.contains("differs from the directory name"), "{e}");
    let e = load_err("manifest.yaml", |t| {
        t.replacen("hours_per_month: 720", "hours_per_month: 730", 1)
    });
    assert!(e.hint.contains("720"), "{e}");
    let e = load_err("manifest.yaml", |t| format!("{t}colour: blue\n"));
    assert!(e.message.contains("colour"), "{e}");

    // Manifest errors name the line and column of the value at fault.
    let line_of =
        |t: &str, needle: &str| t.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1;
    let manifest = embedded_files()
        .iter()
        .find(|(rel, _)| *rel == "fly/2026-01-01/manifest.yaml")
        .unwrap()
        .1;
    let e = load_err("manifest.yaml", |t| {
        t.replacen("currency: USD", "currency: EUR", 1)
    });
    assert!(e.message.contains("currency `EUR`"), "{e}");
    let at = (Some(line_of(manifest, "currency: USD")), Some(11));
    assert_eq!((e.line, e.col), at, "{e}");
    assert!(
        e.to_string().contains(&format!(":{}:11: ", at.0.unwrap())),
        "{e}"
    );
    let e = load_err("manifest.yaml", |t| {
        t.replacen("hours_per_month: 720", "hours_per_month: 730", 1)
    });
    assert_eq!(
        (e.line, e.col),
        (Some(line_of(manifest, "hours_per_month:")), Some(18)),
        "{e}"
    );
    // A source's field: the second source's retrieved date.
    let second = manifest
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("retrieved: 2026-12-01"))
        .nth(1)
        .unwrap()
        .0 as u32
        + 1;
    let e = load_err("manifest.yaml", |t| {
        let mut n = 0;
        t.lines()
            .map(|l| {
                if l.contains("retrieved: 2026-12-01") {
                    n += 1;
                    if n == 2 {
                        return l.replace("2026-12-01", "01/12/2026");
                    }
                }
                l.to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    assert!(e.message.contains("retrieved `01/12/2026`"), "{e}");
    assert_eq!((e.line, e.col), (Some(second), Some(16)), "{e}");
    // A YAML error keeps its column.
    let e = load_err("manifest.yaml", |t| {
        t.replacen("currency: USD", "currency: [USD", 1)
    });
    assert!(e.line.is_some() && e.col.is_some(), "{e}");

    let empty = tempfile::tempdir().unwrap();
    let e = Catalog::from_dir(empty.path()).unwrap_err();
    assert!(e.message.contains("holds no pricing version"), "{e}");
}
