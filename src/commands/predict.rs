//! `daa predict`: eval-mode probabilities of a checkpoint, one row per input row, with the
//! row's id so that they join back; AUCs when the file has the label columns.

use std::io::Write;
use std::path::Path;

use anyhow::{Result, bail};
use daa::config::Resolved;
use daa::data::Schema;
use daa::data::cache::load_csv;
use daa::data::csv::first_column;
use daa::metrics;
use daa::models::model::Model;
use daa::train::evaluate::inference_outputs;
use daa::whole_file::FileError;

use super::UsageError;

pub fn predict(
    resolved: &Resolved,
    checkpoint: Option<&Path>,
    data: &Path,
    out: &Path,
) -> Result<()> {
    let experiment = &resolved.experiment;
    let checkpoint = match checkpoint {
        Some(path) => path.to_path_buf(),
        None => {
            let run = daa::train::run_dir(resolved);
            if !daa::train::finished::read(&run).is_done() {
                bail!(UsageError(format!(
                    "{} has no finished run at {}: run `daa run` with the same file and \
                     overrides first, or pass --checkpoint",
                    resolved.path.display(),
                    run.display()
                )));
            }
            run.join("best.safetensors")
        }
    };
    let checkpoint = checkpoint.as_path();
    let schema = daa::data::dataset::schema(&experiment.data.target.params)?;
    let device = experiment.train.device.open()?;
    let model = Model::new(experiment, &schema, &device, experiment.train.seed)?;
    model.load(checkpoint)?;
    // A file to predict on may lack the label columns; one with them gets AUCs too.
    let layout = if has_labels(data, &schema)? {
        schema.clone()
    } else {
        schema.without_labels()
    };
    let table = load_csv(data, &layout)?.table;
    let ids = match &schema.id {
        Some(_) => first_column(data)?,
        None => (0..table.rows()).map(|row| row.to_string()).collect(),
    };
    if ids.len() != table.rows() {
        bail!(UsageError(format!(
            "{}: {} rows parsed but {} id values found; the file changed while it was read",
            data.display(),
            table.rows(),
            ids.len()
        )));
    }
    let order: Vec<u32> = (0..table.rows() as u32).collect();
    let tasks = schema.labels.len();
    let mut scores = vec![Vec::with_capacity(table.rows()); tasks];
    daa::whole_file::write_with(out, |file| -> Result<()> {
        let id_column = schema.id.clone().unwrap_or_else(|| "row".into());
        let header: Vec<String> = std::iter::once(id_column)
            .chain(schema.labels.iter().map(|l| format!("{l}_prob")))
            .collect();
        writeln!(file, "{}", header.join(",")).map_err(FileError::at(out))?;
        let mut ids = ids.iter();
        let batch_size = experiment.train.batch_size;
        inference_outputs(&model, &table, &order, batch_size, &device, |output| {
            for row in output.probabilities.to_vec2::<f32>()? {
                let id = ids.next().expect("one id per row, checked above");
                let text: Vec<String> = row.iter().map(|p| p.to_string()).collect();
                writeln!(file, "{id},{}", text.join(",")).map_err(FileError::at(out))?;
                for (task, p) in row.into_iter().enumerate() {
                    scores[task].push(p);
                }
            }
            Ok::<(), anyhow::Error>(())
        })
    })?;
    println!("{} predictions written to {}", table.rows(), out.display());
    if table.header.labels == tasks {
        for (task, name) in schema.labels.iter().enumerate() {
            let labels = table.label_column(task);
            let auc = metrics::auc(&scores[task], &labels)
                .map_or_else(|e| format!("undefined ({e})"), |a| format!("{a:.6}"));
            let log_loss = metrics::log_loss(&scores[task], &labels);
            println!("{name}: AUC {auc}, log-loss {log_loss:.6}");
        }
    }
    Ok(())
}

/// Whether `data` has the label columns: whether its header is not exactly as long as the
/// columns without labels (a header wrong either way is reported against the whole schema).
fn has_labels(data: &Path, schema: &Schema) -> Result<bool> {
    use std::io::BufRead;
    // An unreadable file is reported by the loader, with what to do.
    let Ok(file) = std::fs::File::open(data) else {
        return Ok(true);
    };
    // Bytes, not text: a header that is not UTF-8 is the loader's to report, at file:1.
    let mut header = Vec::new();
    std::io::BufReader::new(file)
        .read_until(b'\n', &mut header)
        .map_err(FileError::at(data))?;
    let columns = header.iter().filter(|&&b| b == b',').count() + 1;
    Ok(columns != schema.without_labels().header().len())
}
