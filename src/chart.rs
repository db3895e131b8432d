//! Charts as SVG text, drawn with plotters' SVG backend (text is left to the viewer's
//! fonts, so nothing is needed from the system): panels of lines with optional bands,
//! and grouped bars with error bars.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Why a chart could not be drawn (plotters' drawing errors; none are expected on an SVG
/// string).
#[derive(Debug, thiserror::Error)]
#[error("drawing the chart: {0}")]
pub struct ChartError(String);

fn failed<E: std::fmt::Debug>(error: E) -> ChartError {
    ChartError(format!("{error:?}"))
}

/// Tableau 10: distinct hues that stay apart in print.
const COLORS: [RGBColor; 8] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0x9c, 0x75, 0x5f),
];

pub fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

const FONT: &str = "sans-serif";

/// One line of a panel: its points and, where it has one, a band (x, low, high) drawn
/// beneath it.
#[derive(Debug, Clone, Default)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub band: Vec<(f64, f64, f64)>,
}

/// One chart of lines.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
    /// Names of the integer x positions 0, 1, ... (a categorical x axis); empty for a
    /// numeric one.
    pub x_names: Vec<String>,
    /// A vertical dashed marker at x, with its label (the selected epoch).
    pub marker: Option<(f64, String)>,
    /// A horizontal dashed reference at y, with its label (the oracle AUC).
    pub reference: Option<(f64, String)>,
}

/// `panels` in a grid of `columns`, under `title`.
pub fn panels(title: &str, panels: &[Panel], columns: usize) -> Result<String, ChartError> {
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    let size = (520 * columns as u32, 340 * rows as u32 + 40);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let root = root.titled(title, (FONT, 18)).map_err(failed)?;
        for (panel, area) in panels.iter().zip(root.split_evenly((rows, columns))) {
            draw_panel(panel, &area)?;
        }
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// The range that holds `values`, padded by 5% (widened where they are all equal).
fn padded(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 0.5 };
    lo - pad..hi + pad
}

fn draw_panel(panel: &Panel, area: &DrawingArea<SVGBackend, Shift>) -> Result<(), ChartError> {
    let xs = panel
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .chain(panel.marker.iter().map(|m| m.0));
    let x_range = if panel.x_names.is_empty() {
        padded(xs)
    } else {
        -0.5..panel.x_names.len() as f64 - 0.5
    };
    let y_range = padded(
        panel
            .lines
            .iter()
            .flat_map(|l| {
                l.points
                    .iter()
                    .map(|p| p.1)
                    .chain(l.band.iter().flat_map(|b| [b.1, b.2]))
            })
            .chain(panel.reference.iter().map(|r| r.0)),
    );
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 15))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range.clone(), y_range.clone())
        .map_err(failed)?;
    let names = &panel.x_names;
    let name_of = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .light_line_style(RGBColor(0xee, 0xee, 0xee));
    // Whole-number x (epochs) gets whole-number ticks.
    let whole = |x: &f64| {
        if (x - x.round()).abs() < 1e-9 {
            format!("{x:.0}")
        } else {
            String::new()
        }
    };
    if !names.is_empty() {
        mesh.x_labels(names.len()).x_label_formatter(&name_of);
    } else if panel
        .lines
        .iter()
        .flat_map(|l| &l.points)
        .all(|p| p.0.fract() == 0.0)
    {
        mesh.x_label_formatter(&whole);
    }
    mesh.draw().map_err(failed)?;
    for (i, line) in panel.lines.iter().enumerate() {
        let c = color(i);
        if !line.band.is_empty() {
            let outline: Vec<(f64, f64)> = line
                .band
                .iter()
                .map(|b| (b.0, b.2))
                .chain(line.band.iter().rev().map(|b| (b.0, b.1)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(outline, c.mix(0.18).filled())))
                .map_err(failed)?;
        }
        chart
            .draw_series(LineSeries::new(line.points.clone(), c.stroke_width(2)))
            .map_err(failed)?
            .label(&line.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .draw_series(line.points.iter().map(|&p| Circle::new(p, 2, c.filled())))
            .map_err(failed)?;
    }
    if let Some((y, label)) = &panel.reference {
        let ends = [(x_range.start, *y), (x_range.end, *y)];
        chart
            .draw_series(DashedLineSeries::new(ends, 6, 4, BLACK.stroke_width(1)))
            .map_err(failed)?
            .label(label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    }
    if let Some((x, label)) = &panel.marker {
        let ends = [(*x, y_range.start), (*x, y_range.end)];
        chart
            .draw_series(DashedLineSeries::new(ends, 4, 4, RED.stroke_width(1)))
            .map_err(failed)?;
        let style = TextStyle::from((FONT, 12).into_font())
            .color(&RED)
            .pos(Pos::new(HPos::Left, VPos::Top));
        chart
            .draw_series(std::iter::once(Text::new(
                format!(" {label}"),
                (*x, y_range.end),
                style,
            )))
            .map_err(failed)?;
    }
    if !panel.lines.is_empty() {
        chart
            .configure_series_labels()
            .position(emptiest_corner(panel, &x_range, &y_range))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xbb, 0xbb, 0xbb))
            .label_font((FONT, 12))
            .draw()
            .map_err(failed)?;
    }
    Ok(())
}

/// The corner of the panel that the fewest points (and band edges) fall in, for the key.
fn emptiest_corner(
    panel: &Panel,
    x: &std::ops::Range<f64>,
    y: &std::ops::Range<f64>,
) -> SeriesLabelPosition {
    let mut counts = [0usize; 4];
    let points = panel.lines.iter().flat_map(|l| {
        l.points
            .iter()
            .copied()
            .chain(l.band.iter().flat_map(|b| [(b.0, b.1), (b.0, b.2)]))
    });
    for (px, py) in points {
        let right = (px - x.start) / (x.end - x.start) > 0.5;
        let upper = (py - y.start) / (y.end - y.start) > 0.5;
        counts[usize::from(right) * 2 + usize::from(upper)] += 1;
    }
    // Ties go to the right (the key covers the latest epochs last), then to the bottom.
    let order = [
        (2, SeriesLabelPosition::LowerRight),
        (3, SeriesLabelPosition::UpperRight),
        (0, SeriesLabelPosition::LowerLeft),
        (1, SeriesLabelPosition::UpperLeft),
    ];
    order
        .into_iter()
        .min_by_key(|(i, _)| counts[*i])
        .map(|(_, p)| p)
        .expect("four corners")
}

/// Grouped bars: one group per row of a table, one bar per series, each with an error bar.
#[derive(Debug, Clone, Default)]
pub struct Bars {
    pub title: String,
    pub y_label: String,
    /// What the error bars show, for the legend (e.g. "± std over seeds").
    pub error_label: String,
    pub groups: Vec<String>,
    pub series: Vec<String>,
    /// [group][series]: (value, error half-width), `None` where there is no value.
    pub values: Vec<Vec<Option<(f64, f64)>>>,
    /// Per group, a dashed reference level across its bars (the oracle AUC).
    pub references: Vec<Option<f64>>,
    pub reference_label: String,
}

pub fn bars(chart_spec: &Bars) -> Result<String, ChartError> {
    const LEGEND: u32 = 200;
    let groups = chart_spec.groups.len().max(1);
    let plot_width = (100 + groups * (30 + 22 * chart_spec.series.len().max(1))) as u32;
    let width = (plot_width + LEGEND).max(8 * chart_spec.title.len() as u32 + 40);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let root = root.titled(&chart_spec.title, (FONT, 16)).map_err(failed)?;
        let (plot, legend) = root.split_horizontally(width - LEGEND);
        let cells = chart_spec.values.iter().flatten().flatten();
        let y_range = padded(
            cells
                .flat_map(|&(v, e)| [v - e, v + e])
                .chain(chart_spec.references.iter().flatten().copied()),
        );
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..groups as f64, y_range.clone())
            .map_err(failed)?;
        let names = &chart_spec.groups;
        let centre = |x: &f64| {
            let i = (x - 0.5).round();
            if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(groups * 2 + 1)
            .x_label_formatter(&centre)
            .y_desc(&chart_spec.y_label)
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()
            .map_err(failed)?;
        let slot = 0.8 / chart_spec.series.len().max(1) as f64;
        for s in 0..chart_spec.series.len() {
            let c = color(s);
            let placed: Vec<(f64, f64, f64)> = chart_spec
                .values
                .iter()
                .enumerate()
                .filter_map(|(g, row)| {
                    row.get(s)
                        .copied()
                        .flatten()
                        .map(|(v, e)| (g as f64 + 0.1 + slot * s as f64, v, e))
                })
                .collect();
            chart
                .draw_series(placed.iter().map(|&(x, v, _)| {
                    Rectangle::new(
                        [(x + slot * 0.05, y_range.start), (x + slot * 0.95, v)],
                        c.filled(),
                    )
                }))
                .map_err(failed)?;
            chart
                .draw_series(placed.iter().map(|&(x, v, e)| {
                    ErrorBar::new_vertical(
                        x + slot / 2.0,
                        v - e,
                        v,
                        v + e,
                        BLACK.stroke_width(1),
                        6,
                    )
                }))
                .map_err(failed)?;
        }
        for (g, reference) in chart_spec.references.iter().enumerate() {
            let Some(y) = *reference else { continue };
            let ends = [(g as f64 + 0.05, y), (g as f64 + 0.95, y)];
            chart
                .draw_series(DashedLineSeries::new(ends, 5, 3, BLACK.stroke_width(1)))
                .map_err(failed)?;
        }
        // The key, beside the chart: a swatch per series, then the oracle and the bars.
        let text = |t: &str, y: i32| Text::new(t.to_string(), (34, y), (FONT, 12).into_font());
        let mut y = 50;
        for (s, name) in chart_spec.series.iter().enumerate() {
            let swatch = Rectangle::new([(12, y - 6), (26, y + 6)], color(s).filled());
            legend.draw(&swatch).map_err(failed)?;
            legend.draw(&text(name, y - 6)).map_err(failed)?;
            y += 20;
        }
        if chart_spec.references.iter().any(Option::is_some) {
            let dash = DashedPathElement::new([(10, y), (28, y)], 5, 3, BLACK.stroke_width(1));
            legend.draw(&dash).map_err(failed)?;
            legend
                .draw(&text(&chart_spec.reference_label, y - 6))
                .map_err(failed)?;
            y += 20;
        }
        if !chart_spec.error_label.is_empty() {
            let whisker = PathElement::new(vec![(19, y - 7), (19, y + 7)], BLACK);
            legend.draw(&whisker).map_err(failed)?;
            legend
                .draw(&text(&chart_spec.error_label, y - 6))
                .map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    Ok(svg)
}
