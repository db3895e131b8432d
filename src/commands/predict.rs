//! `daa predict`: eval-mode probabilities of a checkpoint, one row per input row.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use daa::config::Resolved;
use daa::data::Schema;
use daa::data::batch::{Batches, LastBatch};
use daa::data::cache::load_csv;
use daa::models::model::Model;
use daa::nn::Mode;

pub fn predict(resolved: &Resolved, checkpoint: &Path, data: &Path, out: &Path) -> Result<()> {
    let experiment = &resolved.experiment;
    let schema: Schema = serde_json::from_value(experiment.data.target.params["schema"].clone())?;
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
    let tmp = out.with_extension(format!("csv.{}.tmp", std::process::id()));
    let written = (|| -> Result<usize> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let header: Vec<String> = schema.labels.iter().map(|l| format!("{l}_prob")).collect();
        writeln!(file, "{}", header.join(","))?;
        let mut rows = 0;
        for batch in batches {
            let t = batch.to_tensors(table.header.fields, table.header.numerical, &device)?;
            let output = model.forward(&t.categorical, &t.numerical, &mut Mode::eval())?;
            for row in output.probabilities.to_vec2::<f32>()? {
                let text: Vec<String> = row.iter().map(|p| p.to_string()).collect();
                writeln!(file, "{}", text.join(","))?;
                rows += 1;
            }
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(rows)
    })();
    match written {
        Ok(rows) => {
            std::fs::rename(&tmp, out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            tracing::info!(rows, out = %out.display(), "predictions written");
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
