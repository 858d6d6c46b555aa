//! The report's figures on any plotters backend: lines with their bands over seeds on linear
//! or log axes, and heat maps coloured by the log of their values.

use super::stats::Band;
use crate::plot::drawable;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// One line of a figure.
pub(crate) struct Line {
    pub(crate) label: String,
    pub(crate) colour: RGBColor,
    pub(crate) points: Band,
}

/// A figure's title, axis labels and scales, and where its legend goes.
pub(crate) struct Axes<'a> {
    pub(crate) title: &'a str,
    pub(crate) x: &'a str,
    pub(crate) y: &'a str,
    pub(crate) log_x: bool,
    pub(crate) log_y: bool,
    /// Where the legend goes (away from where the lines end up).
    pub(crate) legend: SeriesLabelPosition,
}

fn range(vals: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = vals
        .filter(|v| drawable(*v) && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return if log { (1e-3, 1.0) } else { (0.0, 1.0) };
    }
    if log {
        let (lo, hi) = if hi / lo < 1.01 {
            (lo / 1.1, hi * 1.1)
        } else {
            (lo, hi)
        };
        (lo / 1.05, hi * 1.05)
    } else {
        let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-3).max(1e-12);
        (lo - pad, hi + pad)
    }
}

/// An axis label: three significant digits, in the shorter of the plain and the exponent form
/// (`0.25`, `1e-5`).
fn tick_label(v: f64) -> String {
    let rounded: f64 = format!("{v:.2e}").parse().unwrap_or(v);
    let (plain, exp) = (format!("{rounded}"), format!("{rounded:e}"));
    if exp.len() < plain.len() {
        exp
    } else {
        plain
    }
}

/// Draws lines with shaded bands on `area`; log or linear axes.
pub(crate) fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    ax: &Axes,
    lines: &[Line],
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let xs = || lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let ys = || {
        lines
            .iter()
            .flat_map(|l| l.points.iter().flat_map(|p| [p.1, p.2, p.3]))
    };
    let (x0, x1) = range(xs(), ax.log_x);
    let (y0, y1) = range(ys(), ax.log_y);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(ax.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(84);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(ax.x)
                .y_desc(ax.y)
                .x_label_formatter(&|v| tick_label(*v))
                .y_label_formatter(&|v| tick_label(*v))
                .label_style(("sans-serif", 15))
                .draw()
                .map_err(e)?;
            for l in lines {
                let c = l.colour;
                let spread = l.points.iter().any(|p| p.3 > p.2);
                if spread {
                    let mut poly: Vec<(f64, f64)> = l.points.iter().map(|p| (p.0, p.3)).collect();
                    poly.extend(l.points.iter().rev().map(|p| (p.0, p.2)));
                    chart
                        .draw_series(std::iter::once(Polygon::new(poly, c.mix(0.18).filled())))
                        .map_err(e)?;
                }
                let pts: Vec<(f64, f64)> = l.points.iter().map(|p| (p.0, p.1)).collect();
                let single = pts.len() == 1;
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                    .map_err(e)?
                    .label(l.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2))
                    });
                if single || ax.log_x {
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                        .map_err(e)?;
                }
            }
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(ax.legend.clone())
                .draw()
                .map_err(e)?;
        }};
    }
    match (ax.log_x, ax.log_y) {
        (false, false) => finish!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(e)?),
        (true, false) => finish!(builder
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(e)?),
        (false, true) => finish!(builder
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(e)?),
        (true, true) => finish!(builder
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(e)?),
    }
    Ok(())
}

/// Viridis-like colour for `t` in [0, 1]: dark blue (low) through green to yellow (high).
fn ramp(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// One cell of a heat map: its shade (a number the colour ramp spans, e.g. a log10) and its
/// lines of text. A cell without a shade is grey.
pub(super) struct HeatCell {
    pub(super) shade: Option<f64>,
    pub(super) text: Vec<String>,
}

/// A heat map: `cells[(i, j)]` over `xs` × `ys` (labels; `ys[0]` at the bottom), coloured
/// along the viridis-like ramp by shade, from `range` (low, high) or else the cells' own.
pub(super) fn draw_heat<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x: (&str, &[String]),
    y: (&str, &[String]),
    cells: &BTreeMap<(usize, usize), HeatCell>,
    range: Option<(f64, f64)>,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (nx, ny) = (x.1.len(), y.1.len());
    let (lo, hi) = range.unwrap_or_else(|| {
        cells
            .values()
            .filter_map(|c| c.shade.filter(|s| s.is_finite()))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            })
    });
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(84)
        .build_cartesian_2d(0.0..nx as f64, 0.0..ny as f64)
        .map_err(e)?;
    let (xl, yl) = (x.1.to_vec(), y.1.to_vec());
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(x.0)
        .y_desc(y.0)
        .x_labels(nx * 2 + 1)
        .y_labels(ny * 2 + 1)
        .x_label_formatter(&|v| cell_label(&xl, *v))
        .y_label_formatter(&|v| cell_label(&yl, *v))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    for (&(i, j), cell) in cells {
        let (x0, y0) = (i as f64, j as f64);
        let shade = cell.shade.filter(|s| s.is_finite());
        let t = match shade {
            Some(s) if hi > lo => (s - lo) / (hi - lo),
            _ => 0.5,
        };
        // Low dark blue, high yellow; no shade grey.
        let fill = shade.map_or(RGBColor(200, 200, 200), |_| ramp(t));
        // White on the dark end of the ramp, black on the light end and on grey.
        let text_colour = if shade.is_none() || t > 0.6 {
            BLACK
        } else {
            WHITE
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, y0), (x0 + 1.0, y0 + 1.0)],
                fill.filled(),
            )))
            .map_err(e)?;
        let n = cell.text.len().max(1) as f64;
        for (k, line) in cell.text.iter().enumerate() {
            // Lines from the top of the cell down, centred in its height.
            let at = y0 + 0.5 + (n / 2.0 - k as f64 - 0.5) * 0.22 + 0.06;
            chart
                .draw_series(std::iter::once(Text::new(
                    line.clone(),
                    (x0 + 0.08, at),
                    ("sans-serif", 13).into_font().color(&text_colour),
                )))
                .map_err(e)?;
        }
    }
    Ok(())
}

/// A heat map axis's tick label: cell i spans [i, i + 1], so its label stands at i + 0.5 and
/// every other tick is blank.
fn cell_label(labels: &[String], v: f64) -> String {
    let i = (v - 0.5).round();
    if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
        labels.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}
