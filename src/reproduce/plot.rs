//! The SVG plot of a reproduction, for its first task: grouped bars per row (tables), or
//! lines over each swept parameter (sensitivity figures, columns named `parameter=value`),
//! both with ±std whiskers and the oracle AUC dashed where the data is synthetic.

use std::fmt::Write as _;

use super::report::{Aggregate, distinct, ordered_columns, swept};
use super::spec::{Plot, Spec};

const COLORS: [&str; 7] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
];
const LEFT: f64 = 60.0;
const TOP: f64 = 40.0;
const HEIGHT: f64 = 260.0;
const LEGEND: f64 = 160.0;

/// The values of one task, the y range they need, and the SVG drawn so far.
struct Canvas<'a> {
    values: Vec<&'a Aggregate>,
    lo: f64,
    hi: f64,
    svg: String,
}

impl<'a> Canvas<'a> {
    fn new(aggregates: &'a [Aggregate]) -> Self {
        let task = aggregates.first().map(|a| a.task.as_str()).unwrap_or("");
        let values: Vec<&Aggregate> = aggregates.iter().filter(|a| a.task == task).collect();
        let lo = values
            .iter()
            .map(|a| a.mean_auc - a.std_auc)
            .fold(0.5, f64::min)
            .max(0.0);
        let hi = values
            .iter()
            .map(|a| (a.mean_auc + a.std_auc).max(a.oracle_auc.unwrap_or(0.0)))
            .fold(0.0, f64::max)
            .min(1.0);
        Canvas {
            values,
            lo,
            hi,
            svg: String::new(),
        }
    }

    fn y(&self, v: f64) -> f64 {
        TOP + HEIGHT * (1.0 - (v - self.lo) / (self.hi - self.lo).max(1e-9))
    }

    fn find(&self, row: &str, column: &str) -> Option<&'a Aggregate> {
        self.values
            .iter()
            .find(|a| a.row == row && a.column == column)
            .copied()
    }

    /// Title, horizontal grid lines with their AUC labels, across `plot_width`.
    fn frame(&mut self, spec: &Spec, width: f64, plot_width: f64) {
        let task = self
            .values
            .first()
            .map(|a| a.task.clone())
            .unwrap_or_default();
        self.svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{:.0}" font-family="sans-serif" font-size="11">"#,
            TOP + HEIGHT + 90.0
        );
        let _ = write!(
            self.svg,
            r#"<text x="{LEFT}" y="20" font-size="13">{} — {task} AUC (mean ± std)</text>"#,
            spec.title
        );
        for k in 0..=4 {
            let v = self.lo + (self.hi - self.lo) * k as f64 / 4.0;
            let y = self.y(v);
            let _ = write!(
                self.svg,
                r##"<line x1="{LEFT}" x2="{:.0}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.0}" y="{:.1}" text-anchor="end">{v:.3}</text>"##,
                LEFT + plot_width,
                LEFT - 4.0,
                y + 4.0
            );
        }
    }

    fn whisker(&mut self, x: f64, a: &Aggregate) {
        let (top, bottom) = (
            self.y(a.mean_auc + a.std_auc),
            self.y(a.mean_auc - a.std_auc),
        );
        let _ = write!(
            self.svg,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{top:.1}" y2="{bottom:.1}" stroke="black"/>"#
        );
    }

    fn oracle(&mut self, x0: f64, x1: f64, row: &str) {
        if let Some(oracle) = self
            .values
            .iter()
            .find(|a| a.row == row)
            .and_then(|a| a.oracle_auc)
        {
            let y = self.y(oracle);
            let _ = write!(
                self.svg,
                r#"<line x1="{x0:.1}" x2="{x1:.1}" y1="{y:.1}" y2="{y:.1}" stroke="black" stroke-dasharray="3,2"/>"#
            );
        }
    }

    fn label(&mut self, x: f64, text: &str) {
        let _ = write!(
            self.svg,
            r#"<text transform="translate({x:.1},{:.1}) rotate(45)">{text}</text>"#,
            TOP + HEIGHT + 12.0
        );
    }

    /// One colour swatch per entry, then the oracle's key; closes the SVG.
    fn legend(mut self, width: f64, entries: &[String]) -> String {
        for (i, entry) in entries.iter().enumerate() {
            let y = TOP + 14.0 * i as f64;
            let _ = write!(
                self.svg,
                r#"<rect x="{:.0}" y="{y:.0}" width="10" height="10" fill="{}"/><text x="{:.0}" y="{:.0}">{entry}</text>"#,
                width - LEGEND + 10.0,
                COLORS[i % COLORS.len()],
                width - LEGEND + 25.0,
                y + 9.0
            );
        }
        let _ = write!(
            self.svg,
            r#"<text x="{:.0}" y="{:.0}">- - oracle (synthetic)</text></svg>"#,
            width - LEGEND + 10.0,
            TOP + 14.0 * entries.len() as f64 + 12.0
        );
        self.svg
    }
}

pub fn svg(spec: &Spec, aggregates: &[Aggregate]) -> String {
    match spec.plot {
        Plot::Bars => bars(spec, aggregates),
        Plot::Lines => lines(spec, aggregates),
    }
}

/// Grouped bars: one group per row, one bar per column.
fn bars(spec: &Spec, aggregates: &[Aggregate]) -> String {
    let rows = distinct(aggregates.iter().map(|a| a.row.clone()));
    let columns = ordered_columns(spec, aggregates);
    let (bar, gap) = (14.0, 18.0);
    let group = bar * columns.len() as f64 + gap;
    let plot_width = group * rows.len() as f64;
    let width = LEFT + plot_width + LEGEND;
    let mut canvas = Canvas::new(aggregates);
    canvas.frame(spec, width, plot_width);
    for (r, row) in rows.iter().enumerate() {
        let x0 = LEFT + gap / 2.0 + group * r as f64;
        for (c, column) in columns.iter().enumerate() {
            let Some(a) = canvas.find(row, column) else {
                continue;
            };
            let x = x0 + bar * c as f64;
            let y = canvas.y(a.mean_auc);
            let _ = write!(
                canvas.svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                bar - 2.0,
                (TOP + HEIGHT - y).max(0.0),
                COLORS[c % COLORS.len()]
            );
            canvas.whisker(x + (bar - 2.0) / 2.0, a);
        }
        canvas.oracle(x0, x0 + bar * columns.len() as f64, row);
        canvas.label(x0, row);
    }
    canvas.legend(width, &columns)
}

/// One panel per swept parameter (the part of a column before `=`), its values in order
/// along x, one line per row.
fn lines(spec: &Spec, aggregates: &[Aggregate]) -> String {
    let rows = distinct(aggregates.iter().map(|a| a.row.clone()));
    let columns = ordered_columns(spec, aggregates);
    let parameters = distinct(columns.iter().map(|c| swept(c).0.to_string()));
    let (step, gap) = (48.0, 40.0);
    let panels: Vec<(String, Vec<String>)> = parameters
        .into_iter()
        .map(|p| {
            let values = columns
                .iter()
                .filter(|c| swept(c).0 == p)
                .cloned()
                .collect();
            (p, values)
        })
        .collect();
    let plot_width: f64 = panels
        .iter()
        .map(|(_, values)| step * values.len() as f64 + gap)
        .sum();
    let width = LEFT + plot_width + LEGEND;
    let mut canvas = Canvas::new(aggregates);
    canvas.frame(spec, width, plot_width);
    let mut x0 = LEFT + gap / 2.0;
    for (p, values) in &panels {
        let x = |i: usize| x0 + step * (i as f64 + 0.5);
        for (r, row) in rows.iter().enumerate() {
            let points: Vec<(f64, &Aggregate)> = values
                .iter()
                .enumerate()
                .filter_map(|(i, c)| canvas.find(row, c).map(|a| (x(i), a)))
                .collect();
            let path: Vec<String> = points
                .iter()
                .map(|(px, a)| format!("{px:.1},{:.1}", canvas.y(a.mean_auc)))
                .collect();
            let color = COLORS[r % COLORS.len()];
            let _ = write!(
                canvas.svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                path.join(" ")
            );
            for (px, a) in points {
                canvas.whisker(px, a);
                let _ = write!(
                    canvas.svg,
                    r#"<circle cx="{px:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                    canvas.y(a.mean_auc)
                );
            }
            canvas.oracle(x0, x0 + step * values.len() as f64, row);
        }
        for (i, c) in values.iter().enumerate() {
            canvas.label(x(i) - 4.0, swept(c).1.unwrap_or(c));
        }
        let _ = write!(
            canvas.svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">{p}</text>"#,
            x0 + step * values.len() as f64 / 2.0,
            TOP - 6.0
        );
        x0 += step * values.len() as f64 + gap;
    }
    canvas.legend(width, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Spec {
        toml::from_str(&format!(
            "title = \"t\"\ndescription = \"d\"\norder = [\"row\", \"column\"]\nconfig = \"c\"\n\
             rows = [\"row\"]\ncolumn = \"column\"\n{extra}\n[axes]\nrow = [\"r\"]\n\
             [profiles]\nsmoke = {{ seeds = 1 }}\n"
        ))
        .unwrap()
    }

    fn aggregate(row: &str, column: &str, mean_auc: f64) -> Aggregate {
        Aggregate {
            row: row.into(),
            column: column.into(),
            task: "click".into(),
            seeds: 3,
            mean_auc,
            std_auc: 0.01,
            mean_log_loss: 0.1,
            oracle_auc: Some(0.8),
            kept_start: 0,
        }
    }

    #[test]
    fn columns_read_baselines_then_others_then_the_improved_method_and_sweeps_by_value() {
        let table = spec("improve = \"daa\"\nbaselines = [\"single_domain\", \"finetune\"]");
        let cells: Vec<_> = ["daa", "dann", "finetune", "single_domain"]
            .iter()
            .map(|c| aggregate("r", c, 0.7))
            .collect();
        assert_eq!(
            ordered_columns(&table, &cells),
            ["single_domain", "finetune", "dann", "daa"]
        );
        let sweep = spec("");
        let cells: Vec<_> = [
            "n_critic=1",
            "n_critic=10",
            "n_critic=5",
            "rate=0.05",
            "rate=0.001",
        ]
        .iter()
        .map(|c| aggregate("r", c, 0.7))
        .collect();
        assert_eq!(
            ordered_columns(&sweep, &cells),
            [
                "n_critic=1",
                "n_critic=5",
                "n_critic=10",
                "rate=0.001",
                "rate=0.05"
            ]
        );
    }

    #[test]
    fn lines_draw_one_line_per_row_and_parameter_through_values_in_order() {
        let sweep = spec("plot = \"lines\"");
        let cells = [
            aggregate("mmoe/nl", "w_e=2", 0.60),
            aggregate("mmoe/nl", "w_e=0.5", 0.70),
            aggregate("mmoe/nl", "rate=0.01", 0.65),
            aggregate("ple/nl", "w_e=2", 0.62),
            aggregate("ple/nl", "w_e=0.5", 0.72),
            aggregate("ple/nl", "rate=0.01", 0.66),
        ];
        let svg = svg(&sweep, &cells);
        assert_eq!(svg.matches("<polyline").count(), 4, "2 rows x 2 parameters");
        let canvas = Canvas::new(&cells);
        let first = svg.split("points=\"").nth(1).unwrap();
        let ys: Vec<f64> = first
            .split('"')
            .next()
            .unwrap()
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        let expected = [canvas.y(0.70), canvas.y(0.60)];
        assert_eq!(ys.len(), 2);
        for (y, e) in ys.iter().zip(expected) {
            assert!((y - e).abs() < 0.06, "w_e=0.5 before w_e=2: {ys:?}");
        }
        assert!(svg.contains(">w_e<") && svg.contains(">rate<") && svg.ends_with("</svg>"));
    }
}
