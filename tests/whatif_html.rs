//! The HTML what-if report: one well-formed, self-contained page (inline CSS and SVG, no
//! scripts, nothing fetched) with its charts; a headless Chromium screenshot of it that
//! is not blank; and, measured in Chromium, every table of the shipped reports fits a
//! 1,280 px screen and an A4 page with the print rules.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

const SVG_NS: &str = "http://www.w3.org/2000/svg";

fn html_report(dir: &Path, scenario: &str) -> PathBuf {
    let out = dir.join("report.html");
    let run = Command::cargo_bin("flotilla")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["whatif", scenario, "--format", "html", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

#[test]
fn html_is_well_formed_self_contained_and_has_the_charts() {
    let dir = tempfile::tempdir().unwrap();
    let path = html_report(dir.path(), "examples/whatif/hybrid.yaml");
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));

    // The whole page parses as XML (XHTML-compatible markup), so every tag is closed and
    // every attribute quoted; the SVG charts are part of the tree.
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&html, opts)
        .unwrap_or_else(|e| panic!("the report is not well-formed: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "html");
    let count = |name: &str| doc.descendants().filter(|n| n.has_tag_name(name)).count();
    assert_eq!(count("head"), 1);
    assert_eq!(count("title"), 1);
    assert_eq!(count("style"), 1);
    assert_eq!(count("script"), 0, "no scripts");
    assert!(count("table") >= 5, "the tables");

    // Four charts: total, per tenant, breakdown, sensitivity.
    let svgs: Vec<_> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "svg" && n.tag_name().namespace() == Some(SVG_NS))
        .collect();
    assert_eq!(svgs.len(), 4, "four inline SVG charts");
    for svg in &svgs {
        assert!(svg.attribute("viewBox").is_some());
        let shapes = svg
            .descendants()
            .filter(|n| {
                matches!(
                    n.tag_name().name(),
                    "polyline" | "path" | "rect" | "circle" | "polygon"
                )
            })
            .count();
        let texts = svg
            .descendants()
            .filter(|n| n.has_tag_name((SVG_NS, "text")))
            .count();
        assert!(
            shapes > 10 && texts > 5,
            "a drawn chart ({shapes} shapes, {texts} labels)"
        );
    }
    // The cost curves are lines, with one legend entry per architecture.
    let total = &svgs[0];
    assert!(
        total
            .descendants()
            .filter(|n| n.has_tag_name((SVG_NS, "polyline")))
            .count()
            >= 3
    );
    let labels: Vec<&str> = total
        .descendants()
        .filter(|n| n.has_tag_name((SVG_NS, "text")))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for arch in [
        "hybrid (target)",
        "container per user (suspend)",
        "today (always on)",
    ] {
        assert!(labels.contains(&arch), "legend entry {arch}: {labels:?}");
    }
    // The break-even points are marked: diamonds, labelled with the tenant count.
    assert!(
        total
            .descendants()
            .any(|n| n.has_tag_name((SVG_NS, "polygon")))
    );
    assert!(labels.contains(&"6"), "{labels:?}");

    // Nothing is fetched: no external references at all.
    for n in doc.descendants().filter(|n| n.is_element()) {
        for a in n.attributes() {
            if matches!(a.name(), "src" | "href") {
                panic!("external reference {}={}", a.name(), a.value());
            }
        }
    }
    for needle in ["http://", "https://"] {
        let outside: Vec<&str> = html
            .match_indices(needle)
            .map(|(i, _)| &html[i..(i + 40).min(html.len())])
            .filter(|s| !s.starts_with("http://www.w3.org/"))
            .collect();
        assert!(outside.is_empty(), "{outside:?}");
    }
    // Today (always on) at 1,000 tenants: 10,698.48 + 450 + 131.20 + 20 (whatif_cli).
    assert!(html.contains("Break-even points") && html.contains("$11,299.68"));
}

/// Chromium: `/usr/bin/chromium`, or `chromium` on PATH.
fn chromium() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/chromium");
    if fixed.exists() {
        return Some(fixed);
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("chromium"))
            .find(|c| c.exists())
    })
}

#[test]
fn html_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var("FLOTILLA_SKIP_BROWSER_TESTS").as_deref() == Ok("1") {
            eprintln!("skipped: chromium is not installed and FLOTILLA_SKIP_BROWSER_TESTS=1");
            return;
        }
        panic!(
            "chromium is not installed: this test renders the HTML what-if report in headless Chromium. \
             Install it (Debian: `apt-get install -y chromium`; .ci/run does), or set \
             FLOTILLA_SKIP_BROWSER_TESTS=1 to skip it knowingly."
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let report = html_report(dir.path(), "examples/whatif/hybrid.yaml");
    let png = dir.path().join("shot.png");
    let profile = dir.path().join("profile");
    let mut child = Process::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,2000")
        .arg(format!("file://{}", report.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A hung browser fails the test instead of hanging it.
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        status.success() && png.exists(),
        "chromium failed: {stderr}"
    );

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 2000));
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels = &buf[..info.buffer_size()];
    let luma: Vec<f64> = pixels
        .chunks_exact(channels)
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .collect();
    let n = luma.len() as f64;
    let mean = luma.iter().sum::<f64>() / n;
    let variance = luma.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n;
    // A blank page is one colour (variance 0). The report has a dark header, white cards
    // and charts on a light background.
    assert!(
        variance > 200.0,
        "the screenshot looks blank (luma variance {variance:.1})"
    );
    let dark = luma.iter().filter(|l| **l < 100.0).count() as f64 / n;
    let colourful = pixels
        .chunks_exact(channels)
        .filter(|p| {
            let (mx, mn) = (p[0].max(p[1]).max(p[2]), p[0].min(p[1]).min(p[2]));
            mx - mn > 60
        })
        .count() as f64
        / n;
    assert!(dark > 0.01, "text and header: {dark:.3} of pixels dark");
    assert!(
        colourful > 0.02,
        "header and chart colours: {colourful:.3} of pixels coloured"
    );
}

/// The script the layout test adds to a copy of a report: it measures every table
/// against the content width of its section and writes what it found into the page.
const MEASURE: &str = r#"<script>
(function () {
  var out = [];
  var tables = document.querySelectorAll("table");
  tables.forEach(function (t) {
    var sec = t.closest("section");
    var cs = getComputedStyle(sec);
    var avail = sec.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    var w = Math.max(t.getBoundingClientRect().width, t.scrollWidth);
    if (w > avail + 1) {
      out.push(sec.querySelector("h2").textContent + ": " + Math.round(w) + " px in " + Math.round(avail));
    }
  });
  var p = document.createElement("pre");
  p.id = "measured";
  p.textContent = "tables=" + tables.length + ";overflow=" + out.join(" | ") + ";end";
  document.body.appendChild(p);
})();
</script>"#;

/// Loads a copy of `report` with [`MEASURE`] in headless Chromium at `width` px (with the
/// print rules applied to the screen when `print`), and returns (tables, overflowing).
fn measure_tables(browser: &Path, report: &Path, width: u32, print: bool) -> (usize, String) {
    let dir = report.parent().unwrap();
    let html = std::fs::read_to_string(report).unwrap();
    let html = if print {
        assert!(
            html.contains("@media print {"),
            "the report has print rules"
        );
        html.replace("@media print {", "@media all {")
    } else {
        html
    };
    let copy = dir.join(format!("measure-{width}-{print}.html"));
    std::fs::write(&copy, html.replace("</body>", &format!("{MEASURE}</body>"))).unwrap();
    let profile = dir.join(format!("profile-{width}-{print}"));
    let mut child = Process::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={width},1000"))
        .arg(format!("file://{}", copy.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        use std::io::Read;
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let dom = reader.join().unwrap();
    let found = dom
        .split_once("<pre id=\"measured\">tables=")
        .and_then(|(_, rest)| rest.split_once(";end"))
        .map(|(m, _)| m.to_string())
        .unwrap_or_else(|| panic!("no measurement in the page: {}", &dom[..dom.len().min(400)]));
    let (tables, overflow) = found.split_once(";overflow=").unwrap();
    (tables.parse().unwrap(), overflow.to_string())
}

#[test]
fn every_table_fits_the_screen_and_the_printed_page() {
    let Some(browser) = chromium() else {
        if std::env::var("FLOTILLA_SKIP_BROWSER_TESTS").as_deref() == Ok("1") {
            eprintln!("skipped: chromium is not installed and FLOTILLA_SKIP_BROWSER_TESTS=1");
            return;
        }
        panic!("chromium is not installed (Debian: `apt-get install -y chromium`; .ci/run does)");
    };
    for name in ["today", "containers", "hybrid", "shared-server"] {
        let dir = tempfile::tempdir().unwrap();
        let report = html_report(dir.path(), &format!("examples/whatif/{name}.yaml"));
        // A laptop screen, and an A4 page's printable width (210 mm − 2 × 12 mm at 96 dpi).
        for (width, print) in [(1280, false), (703, true)] {
            let (tables, overflow) = measure_tables(&browser, &report, width, print);
            assert!(tables >= 5, "{name}: {tables} tables measured");
            assert!(
                overflow.is_empty(),
                "{name} at {width} px (print rules: {print}): tables wider than their section: {overflow}"
            );
        }
    }
}
