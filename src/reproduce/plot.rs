//! The SVG plot of a reproduction, for its first task: grouped bars per row with ±std
//! error bars (tables), or one panel per swept parameter with a line per row and a ±std
//! band (sensitivity figures, columns named `parameter=value`); the oracle AUC dashed
//! where the data is synthetic.

use super::report::{Aggregate, distinct, ordered_columns, swept};
use super::spec::{Plot, Spec};
use crate::chart::{Bars, ChartError, Line, Panel, bars, panels};

pub fn svg(spec: &Spec, aggregates: &[Aggregate]) -> Result<String, ChartError> {
    let task = aggregates
        .first()
        .map(|a| a.task.clone())
        .unwrap_or_default();
    let values: Vec<&Aggregate> = aggregates.iter().filter(|a| a.task == task).collect();
    let find = |row: &str, column: &str| {
        values
            .iter()
            .find(|a| a.row == row && a.column == column)
            .copied()
    };
    let rows = distinct(values.iter().map(|a| a.row.clone()));
    let columns = ordered_columns(spec, aggregates);
    let oracle = |row: &str| {
        values
            .iter()
            .find(|a| a.row == row)
            .and_then(|a| a.oracle_auc)
    };
    let title = format!("{}: {task} AUC, mean ± std over seeds", spec.title);
    match spec.plot {
        Plot::Bars => bars(&Bars {
            title,
            y_label: format!("{task} AUC"),
            error_label: "± std over seeds".into(),
            values: rows
                .iter()
                .map(|r| {
                    columns
                        .iter()
                        .map(|c| find(r, c).map(|a| (a.mean_auc, a.std_auc)))
                        .collect()
                })
                .collect(),
            references: rows.iter().map(|r| oracle(r)).collect(),
            reference_label: "oracle (synthetic)".into(),
            groups: rows,
            series: columns,
        }),
        Plot::Lines => {
            let parameters = distinct(columns.iter().map(|c| swept(c).0.to_string()));
            // The oracle of each swept value (a shift can move it), as one more line.
            let column_oracle = |c: &str| {
                values
                    .iter()
                    .find(|a| a.column == c)
                    .and_then(|a| a.oracle_auc)
            };
            let charts: Vec<Panel> = parameters
                .iter()
                .map(|p| {
                    let swept_values: Vec<&String> =
                        columns.iter().filter(|c| swept(c).0 == p).collect();
                    let oracle_line = Line {
                        name: "oracle (synthetic)".into(),
                        points: swept_values
                            .iter()
                            .enumerate()
                            .filter_map(|(i, c)| column_oracle(c).map(|o| (i as f64, o)))
                            .collect(),
                        band: Vec::new(),
                    };
                    let lines = rows
                        .iter()
                        .map(|r| {
                            let cells: Vec<(f64, &Aggregate)> = swept_values
                                .iter()
                                .enumerate()
                                .filter_map(|(i, c)| find(r, c).map(|a| (i as f64, a)))
                                .collect();
                            Line {
                                name: r.clone(),
                                points: cells.iter().map(|(x, a)| (*x, a.mean_auc)).collect(),
                                band: cells
                                    .iter()
                                    .map(|(x, a)| {
                                        (*x, a.mean_auc - a.std_auc, a.mean_auc + a.std_auc)
                                    })
                                    .collect(),
                            }
                        })
                        .chain((!oracle_line.points.is_empty()).then_some(oracle_line))
                        .collect();
                    Panel {
                        title: p.clone(),
                        x_label: p.clone(),
                        y_label: format!("{task} AUC"),
                        lines,
                        x_names: swept_values
                            .iter()
                            .map(|c| swept(c).1.unwrap_or(c).to_string())
                            .collect(),
                        ..Panel::default()
                    }
                })
                .collect();
            panels(&title, &charts, charts.len().min(3))
        }
    }
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
            constant: 0,
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

    /// The points of each `<polyline>` of `svg`.
    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split("<polyline")
            .skip(1)
            .map(|element| {
                let points = element.split("points=\"").nth(1).unwrap();
                points
                    .split('"')
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
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
        let svg = svg(&sweep, &cells).unwrap();
        // The two-value parameter: one falling line per row (SVG y grows downwards),
        // w_e=0.5 (0.70, 0.72) left of w_e=2 (0.60, 0.62); ple above mmoe.
        let sloped: Vec<Vec<(f64, f64)>> = polylines(&svg)
            .into_iter()
            .filter(|p| p.len() == 2 && p[0].0 != p[1].0 && p[0].1 != p[1].1)
            .collect();
        assert_eq!(sloped.len(), 2, "{sloped:?}");
        for line in &sloped {
            assert!(line[0].0 < line[1].0 && line[0].1 < line[1].1, "{line:?}");
        }
        assert!(
            sloped[1][0].1 < sloped[0][0].1,
            "ple (second row) above mmoe"
        );
        // Equal AUC steps are equal pixel steps: 0.70 -> 0.60 spans what 0.72 -> 0.62 does.
        let drop = |l: &Vec<(f64, f64)>| l[1].1 - l[0].1;
        assert!((drop(&sloped[0]) - drop(&sloped[1])).abs() <= 1.0);
        assert_eq!(
            svg.matches("<polygon").count(),
            4,
            "a band per row and parameter"
        );
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>'))
            .map(|(_, rest)| rest.split("</text>").next().unwrap().trim())
            .collect();
        for label in ["w_e", "rate", "0.5", "2", "0.01", "mmoe/nl", "ple/nl"] {
            assert!(texts.contains(&label), "`{label}` in {texts:?}");
        }
    }

    #[test]
    fn bars_rise_with_the_mean_and_carry_error_bars() {
        let table = spec("");
        let mut cells = vec![
            aggregate("mmoe/nl", "finetune", 0.60),
            aggregate("mmoe/nl", "daa", 0.70),
            aggregate("ple/nl", "finetune", 0.65),
        ];
        cells[1].std_auc = 0.02;
        let svg = svg(&table, &cells).unwrap();
        let fill =
            |c: plotters::style::RGBColor| format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
        let heights = |c| -> Vec<f64> {
            svg.split("<rect")
                .filter(|r| r.contains(&fill(c)))
                .filter_map(|r| r.split("height=\"").nth(1))
                .map(|h| h.split('"').next().unwrap().parse().unwrap())
                .collect()
        };
        // The bars of each column in its colour, in the columns' reading order.
        let columns = ordered_columns(&table, &cells);
        let finetune = columns.iter().position(|c| c == "finetune").unwrap();
        let daa = columns.iter().position(|c| c == "daa").unwrap();
        let f = heights(crate::chart::color(finetune));
        let d = heights(crate::chart::color(daa));
        // Two finetune bars and one daa bar, plus one legend swatch each.
        assert_eq!((f.len(), d.len()), (3, 2), "{f:?} {d:?}");
        assert!(
            d[0] > f[0] && f[1] > f[0],
            "0.70 > 0.60 and 0.65 > 0.60: {f:?} {d:?}"
        );
        assert!(svg.contains("oracle") && svg.contains("std"));
    }
}
