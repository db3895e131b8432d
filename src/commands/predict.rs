//! `daa predict`: eval-mode probabilities of a checkpoint, one row per input row.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use daa::atomic::FileError;
use daa::config::Resolved;
use daa::data::batch::{Batches, LastBatch};
use daa::data::cache::load_csv;
use daa::models::model::Model;
use daa::nn::Mode;

pub fn predict(resolved: &Resolved, checkpoint: &Path, data: &Path, out: &Path) -> Result<()> {
    let experiment = &resolved.experiment;
    let schema = daa::data::dataset::schema(&experiment.data.target.params)?;
    let device = experiment.train.device.open()?;
    let model = Model::new(experiment, &schema, &device, experiment.train.seed)?;
    model.load(checkpoint)?;
    let table = load_csv(data, &schema)?.table;
    let order: Vec<u32> = (0..table.rows() as u32).collect();
    let batches = Batches::new(
        &table,
        order,
        experiment.train.batch_size,
        LastBatch::Keep,
        Some(model.offsets.clone()),
    );
    let rows = daa::atomic::write_with(out, |file| -> Result<usize> {
        let header: Vec<String> = schema.labels.iter().map(|l| format!("{l}_prob")).collect();
        writeln!(file, "{}", header.join(",")).map_err(FileError::at(out))?;
        let mut rows = 0;
        for batch in batches {
            let t = batch.to_tensors(table.header.fields, table.header.numerical, &device)?;
            let output = model.forward(&t.categorical, &t.numerical, &mut Mode::eval())?;
            for row in output.probabilities.to_vec2::<f32>()? {
                let text: Vec<String> = row.iter().map(|p| p.to_string()).collect();
                writeln!(file, "{}", text.join(",")).map_err(FileError::at(out))?;
                rows += 1;
            }
        }
        Ok(rows)
    })?;
    tracing::info!(rows, out = %out.display(), "predictions written");
    Ok(())
}
