//! SVG charts of a what-if report (plotters, SVG backend): total monthly cost and cost
//! per tenant against tenants (log x-axis) with the break-even points marked, the stacked
//! breakdown at one scale, and the cost against active hours per day. Money is converted
//! to `f64` here, for drawing only.

use plotters::coord::Shift;
use plotters::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::report::{Breakdown, Report};

/// One colour per architecture (in order), and per breakdown category.
pub const PALETTE: [(u8, u8, u8); 8] = [
    (37, 99, 235),
    (220, 38, 38),
    (5, 150, 105),
    (217, 119, 6),
    (124, 58, 237),
    (219, 39, 119),
    (8, 145, 178),
    (101, 163, 13),
];
const CATEGORY: [(u8, u8, u8); 8] = [
    (37, 99, 235),
    (147, 197, 253),
    (5, 150, 105),
    (110, 231, 183),
    (217, 119, 6),
    (124, 58, 237),
    (156, 163, 175),
    (219, 39, 119),
];
const FONT: &str = "sans-serif";

pub fn color(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// `#2563eb`, for the legend of the page.
pub fn hex(i: usize) -> String {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

pub fn category_hex(i: usize) -> String {
    let (r, g, b) = CATEGORY[i % CATEGORY.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn f(v: Decimal) -> f64 {
    v.to_f64().unwrap_or(0.0)
}

/// `$1.2k`, `$15`, `$0.84` for axis labels.
fn axis_usd(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("${:.1}M", v / 1_000_000.0)
    } else if v >= 10_000.0 {
        format!("${:.0}k", v / 1000.0)
    } else if v >= 1000.0 {
        format!("${:.1}k", v / 1000.0)
    } else if v >= 10.0 {
        format!("${v:.0}")
    } else {
        format!("${v:.2}")
    }
}

fn axis_count(v: f64) -> String {
    if v >= 1000.0 && (v / 1000.0).fract().abs() < 1e-9 {
        format!("{}k", (v / 1000.0) as u64)
    } else {
        format!("{}", v.round() as u64)
    }
}

type Drawn = Result<(), String>;

fn svg(
    width: u32,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Drawn,
) -> String {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        let ok = root
            .fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|_| draw(&root))
            .and_then(|_| root.present().map_err(|e| e.to_string()));
        if let Err(e) = ok {
            drop(root);
            return format!(
                "<p class=\"chart-error\">chart not drawn: {}</p>",
                e.replace('&', "&amp;").replace('<', "&lt;")
            );
        }
    }
    buf
}

/// Total monthly cost (or cost per tenant) against tenants, both axes logarithmic for the
/// total, with the sampled tenant counts as dots and the break-even points as diamonds.
pub fn cost_vs_tenants(r: &Report, per_tenant: bool) -> String {
    let (lo, hi) = (
        r.tenants.first().copied().unwrap_or(1) as f64,
        r.tenants.last().copied().unwrap_or(1) as f64,
    );
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo * 0.5, lo * 2.0)
    };
    let y = |n: u64, v: Decimal| -> f64 {
        if per_tenant {
            f(v) / (n.max(1) as f64)
        } else {
            f(v)
        }
    };
    let all: Vec<f64> = r
        .curves
        .iter()
        .flat_map(|c| c.points.iter().map(|(n, v)| y(*n, *v)))
        .filter(|v| *v > 0.0)
        .collect();
    let ymin = all.iter().copied().fold(f64::INFINITY, f64::min);
    let ymax = all.iter().copied().fold(0.0, f64::max);
    let (ymin, ymax) = if ymin.is_finite() && ymax > 0.0 {
        (ymin, ymax)
    } else {
        (0.01, 1.0)
    };
    let focus = r.focus;
    svg(900, 460, |root| {
        let area = root.margin(10, 10, 10, 20);
        let mut b = ChartBuilder::on(&area);
        b.x_label_area_size(44).y_label_area_size(72);
        // Per tenant, curves fall from the left: the legend goes top right, with room
        // above the curves.
        let (top, desc, position) = if per_tenant {
            (
                ymax * 3.0,
                "USD per tenant per month (log scale)",
                SeriesLabelPosition::UpperRight,
            )
        } else {
            (
                ymax * 1.25,
                "USD per month (log scale)",
                SeriesLabelPosition::UpperLeft,
            )
        };
        let mut chart = b
            .build_cartesian_2d((lo..hi).log_scale(), (ymin * 0.8..top).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("tenants (log scale)")
            .y_desc(desc)
            .y_labels(8)
            .x_label_formatter(&|v| axis_count(*v))
            .y_label_formatter(&|v| axis_usd(*v))
            .label_style((FONT, 13))
            .light_line_style(RGBColor(243, 244, 246))
            .draw()
            .map_err(|e| e.to_string())?;
        draw_curves(&mut chart, r, &y)?;
        draw_crossings(&mut chart, r, focus, &y)?;
        legend(&mut chart, position)
    })
}

fn legend<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Drawn
where
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(209, 213, 219))
        .label_font((FONT, 14))
        .draw()
        .map_err(|e| e.to_string())
}

fn draw_curves<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    r: &Report,
    y: &dyn Fn(u64, Decimal) -> f64,
) -> Drawn
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for c in &r.curves {
        let col = color(c.arch);
        let name = r
            .architectures
            .get(c.arch)
            .map(|a| a.name.clone())
            .unwrap_or_default();
        let pts: Vec<(f64, f64)> = c
            .points
            .iter()
            .map(|(n, v)| (*n as f64, y(*n, *v)))
            .filter(|p| p.1 > 0.0)
            .collect();
        chart
            .draw_series(LineSeries::new(pts, col.stroke_width(3)))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, yy)| {
                PathElement::new(vec![(x, yy), (x + 22, yy)], col.stroke_width(3))
            });
        let dots: Vec<(f64, f64)> = r
            .series(r.focus, c.arch)
            .map(|row| (row.tenants as f64, y(row.tenants, row.monthly)))
            .filter(|p| p.1 > 0.0)
            .collect();
        chart
            .draw_series(dots.into_iter().map(|p| Circle::new(p, 5, col.filled())))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn draw_crossings<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    r: &Report,
    focus: usize,
    y: &dyn Fn(u64, Decimal) -> f64,
) -> Drawn
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let ink = RGBColor(17, 24, 39);
    // Runs of more than three crossings of one pair (steps alternating around a line)
    // are marked at their first and last crossing only.
    let focus_be: Vec<_> = r.break_even.iter().filter(|b| b.point == focus).collect();
    let mut kept = Vec::new();
    let mut i = 0;
    while i < focus_be.len() {
        let (a, b) = (focus_be[i].a, focus_be[i].b);
        let run = focus_be[i..]
            .iter()
            .take_while(|x| x.a == a && x.b == b)
            .count();
        if run > 3 {
            kept.push(focus_be[i]);
            kept.push(focus_be[i + run - 1]);
        } else {
            kept.extend(&focus_be[i..i + run]);
        }
        i += run;
    }
    let mut marks: Vec<(u64, f64)> = kept
        .iter()
        .map(|b| (b.tenants, y(b.tenants, b.cost_a.max(b.cost_b))))
        .filter(|m| m.1 > 0.0)
        .collect();
    marks.sort_by_key(|m| m.0);
    // Crossings within 25% of each other share one label (`47–53`).
    let mut groups: Vec<Vec<(u64, f64)>> = Vec::new();
    for m in marks {
        match groups.last_mut() {
            Some(g) if g.last().is_some_and(|l| (m.0 as f64) <= l.0 as f64 * 1.25) => g.push(m),
            _ => groups.push(vec![m]),
        }
    }
    for g in groups {
        let (first, last) = (g[0], g[g.len() - 1]);
        let label = if first.0 == last.0 {
            first.0.to_string()
        } else {
            format!("{}–{}", first.0, last.0)
        };
        chart
            .draw_series(g.iter().map(|m| {
                EmptyElement::at((m.0 as f64, m.1))
                    + Polygon::new(vec![(0, -8), (7, 0), (0, 8), (-7, 0)], ink.filled())
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((first.0 as f64, first.1))
                    + Text::new(label, (6, -26), (FONT, 14).into_font().color(&ink)),
            ))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Stacked horizontal bars: what each architecture pays for at one scale.
pub fn breakdown(r: &Report) -> String {
    let rows: Vec<(usize, &Breakdown)> = r.breakdown.iter().map(|(a, b, _)| (*a, b)).collect();
    let n = rows.len().max(1);
    let xmax = rows
        .iter()
        .map(|(_, b)| b.values().iter().map(|v| f(*v).max(0.0)).sum::<f64>())
        .fold(0.0, f64::max)
        .max(1.0)
        // Room on the right for the legend: the longest bar ends at about three
        // quarters of the width, so the legend never covers a bar.
        * 1.32;
    let names: Vec<String> = rows
        .iter()
        .map(|(a, _)| {
            r.architectures
                .get(*a)
                .map(|x| x.name.clone())
                .unwrap_or_default()
        })
        .collect();
    let height = 120 + 56 * n as u32;
    svg(900, height, |root| {
        let area = root.margin(10, 10, 10, 20);
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(40)
            .y_label_area_size(240)
            // n rows: segments 0 ..= n-1 (a segmented 0..n would add an empty row).
            .build_cartesian_2d(0f64..xmax, (0..n - 1).into_segmented())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                // The first architecture on top.
                SegmentValue::CenterOf(i) if *i < n => {
                    names.get(n - 1 - i).cloned().unwrap_or_default()
                }
                _ => String::new(),
            })
            .x_label_formatter(&|v| axis_usd(*v))
            .x_desc("USD per month")
            .label_style((FONT, 13))
            .light_line_style(RGBColor(243, 244, 246))
            .draw()
            .map_err(|e| e.to_string())?;
        for (ci, cat) in Breakdown::NAMES.iter().enumerate() {
            let (rr, gg, bb) = CATEGORY[ci];
            let col = RGBColor(rr, gg, bb);
            let mut bars = Vec::new();
            for (row, (_, b)) in rows.iter().enumerate() {
                let vals = b.values();
                let start: f64 = vals[..ci].iter().map(|v| f(*v).max(0.0)).sum();
                let w = f(vals[ci]).max(0.0);
                if w <= 0.0 {
                    continue;
                }
                let mut rect = Rectangle::new(
                    [
                        (start, SegmentValue::Exact(n - 1 - row)),
                        (start + w, SegmentValue::Exact(n - row)),
                    ],
                    col.filled(),
                );
                rect.set_margin(10, 10, 0, 0);
                bars.push(rect);
            }
            if bars.is_empty() {
                continue;
            }
            chart
                .draw_series(bars)
                .map_err(|e| e.to_string())?
                .label(*cat)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], col.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// Monthly cost against active hours per day at one scale, one line per architecture.
pub fn sensitivity(r: &Report) -> String {
    let s = &r.sensitivity;
    let xs: Vec<f64> = s.hours.iter().map(|h| f(*h)).collect();
    let (xlo, xhi) = (
        xs.first().copied().unwrap_or(0.0),
        xs.last().copied().unwrap_or(24.0),
    );
    let (xlo, xhi) = if xhi > xlo { (xlo, xhi) } else { (0.0, 24.0) };
    // A logarithmic cost axis: architectures differ by orders of magnitude, and a linear
    // one would press the cheaper lines together at the bottom.
    let positive = || {
        s.costs
            .iter()
            .flat_map(|c| c.iter().map(|v| f(*v)))
            .filter(|v| *v > 0.0)
    };
    // Headroom above the highest line for the legend (a third of the height).
    let ymax = positive().fold(1.0, f64::max) * 8.0;
    let ymin = positive().fold(ymax, f64::min).min(ymax / 2.0) * 0.7;
    svg(900, 380, |root| {
        let area = root.margin(10, 10, 10, 20);
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(xlo..xhi, (ymin..ymax).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("active hours per day")
            .y_desc("USD per month (log scale)")
            .y_labels(10)
            .y_label_formatter(&|v| axis_usd(*v))
            .label_style((FONT, 13))
            .light_line_style(RGBColor(243, 244, 246))
            .draw()
            .map_err(|e| e.to_string())?;
        for (ai, a) in r.architectures.iter().enumerate() {
            let col = color(ai);
            let pts: Vec<(f64, f64)> = xs
                .iter()
                .zip(&s.costs)
                .map(|(x, c)| {
                    let y = c.get(ai).map(|v| f(*v)).unwrap_or(0.0);
                    (*x, y.max(ymin))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), col.stroke_width(3)))
                .map_err(|e| e.to_string())?
                .label(a.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], col.stroke_width(3))
                });
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, col.filled())))
                .map_err(|e| e.to_string())?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}
