//! The scarce target training subset and its validation rows, drawn once per
//! (data set, rate, validation size, seed) and stored as a row-index file beside the table,
//! ending in the CRC-32C of its bytes. A file that is damaged, names rows the table does
//! not have, or belongs to another table size is drawn again (the same draw: it is seeded).

use std::path::{Path, PathBuf};

use rand::Rng;

use super::{DataError, Table};
use crate::config::schema::Validation;
use crate::rng;

const MAGIC: &[u8; 8] = b"DAASPLT2";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Rows kept for training, ascending.
    pub train: Vec<u32>,
    /// Rows held out for model selection, ascending, disjoint from `train`.
    pub valid: Vec<u32>,
}

/// `k` of `items` chosen uniformly without replacement (partial Fisher-Yates).
pub fn choose(items: &mut [u32], k: usize, stream: &mut rng::Stream) -> Vec<u32> {
    let k = k.min(items.len());
    for i in 0..k {
        let j = stream.random_range(i..items.len());
        items.swap(i, j);
    }
    items[..k].to_vec()
}

/// Keeps a `rate` fraction of each class of `strata` (exactly round(rate * n), at least one
/// row of a class that has rows), then draws `valid_rows` of the remaining rows, also
/// stratified.
pub fn draw(strata: &[u8], rate: f64, valid_rows: usize, seed: u64) -> Split {
    let mut classes: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
    for (i, &s) in strata.iter().enumerate() {
        classes[usize::from(s.min(1))].push(i as u32);
    }
    let total = strata.len();
    let mut train = Vec::new();
    let mut valid = Vec::new();
    let remaining_total = total - classes.iter().map(|c| kept(c.len(), rate)).sum::<usize>();
    for (class, rows) in classes.iter_mut().enumerate() {
        let k = kept(rows.len(), rate);
        train.extend(choose(
            rows,
            k,
            &mut rng::stream(seed, "split/train", class as u64),
        ));
        let rest = &mut rows[k..];
        let share = if remaining_total == 0 {
            0
        } else {
            ((valid_rows.min(remaining_total) as f64) * rest.len() as f64 / remaining_total as f64)
                .round() as usize
        };
        valid.extend(choose(
            rest,
            share,
            &mut rng::stream(seed, "split/valid", class as u64),
        ));
    }
    train.sort_unstable();
    valid.sort_unstable();
    Split { train, valid }
}

/// The last `valid_rows` rows (the latest, for rows in time order) for validation, and a
/// training subset drawn from the rows before them as [`draw`] keeps one: a `rate`
/// fraction of each class of `strata`.
pub fn draw_latest(strata: &[u8], rate: f64, valid_rows: usize, seed: u64) -> Split {
    let first_valid = strata.len() - valid_rows.min(strata.len());
    let mut split = draw(&strata[..first_valid], rate, 0, seed);
    split.valid = (first_valid as u32..strata.len() as u32).collect();
    split
}

fn kept(n: usize, rate: f64) -> usize {
    if n == 0 {
        0
    } else {
        ((n as f64 * rate).round() as usize).clamp(1, n)
    }
}

pub fn split_path(
    table: &Path,
    rate: f64,
    valid_rows: usize,
    validation: Validation,
    seed: u64,
) -> PathBuf {
    let mut dir = table.as_os_str().to_os_string();
    dir.push(".splits");
    let rule = match validation {
        Validation::Random => "",
        Validation::Latest => "-latest",
    };
    PathBuf::from(dir).join(format!("rate{rate}-valid{valid_rows}{rule}-seed{seed}.idx"))
}

/// The split of `table` (stratified by its first label) under `validation`, from its file
/// if present, else drawn and written atomically.
pub fn load_or_draw(
    table: &Table,
    rate: f64,
    valid_rows: usize,
    validation: Validation,
    seed: u64,
) -> Result<Split, DataError> {
    let path = split_path(&table.path, rate, valid_rows, validation, seed);
    if let Some(split) = read(&path, table.rows()) {
        return Ok(split);
    }
    if path.exists() {
        tracing::warn!(path = %path.display(), "split file damaged or stale: drawing it again");
    }
    let draw = match validation {
        Validation::Random => draw,
        Validation::Latest => draw_latest,
    };
    let split = draw(&table.label_column(0), rate, valid_rows, seed);
    write(&path, &split, table.rows())?;
    Ok(split)
}

fn read(path: &Path, rows: usize) -> Option<Split> {
    let bytes = std::fs::read(path).ok()?;
    let (bytes, stored) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32c::crc32c(bytes).to_le_bytes() != stored {
        return None;
    }
    let word = |i: usize| {
        bytes
            .get(8 + 8 * i..16 + 8 * i)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    };
    if bytes.get(..8)? != MAGIC || word(0)? != rows {
        return None;
    }
    let (n_train, n_valid) = (word(1)?, word(2)?);
    let body = bytes.get(32..)?;
    if body.len() != 4 * n_train.checked_add(n_valid)? {
        return None;
    }
    let indices: Vec<u32> = body
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    if indices.iter().any(|&i| i as usize >= rows) {
        return None;
    }
    Some(Split {
        train: indices[..n_train].to_vec(),
        valid: indices[n_train..].to_vec(),
    })
}

fn write(path: &Path, split: &Split, rows: usize) -> Result<(), DataError> {
    let dir = path.parent().expect("split paths have a directory");
    std::fs::create_dir_all(dir).map_err(DataError::io(dir))?;
    let mut bytes = MAGIC.to_vec();
    for n in [rows, split.train.len(), split.valid.len()] {
        bytes.extend((n as u64).to_le_bytes());
    }
    for i in split.train.iter().chain(&split.valid) {
        bytes.extend(i.to_le_bytes());
    }
    bytes.extend(crc32c::crc32c(&bytes).to_le_bytes());
    Ok(crate::whole_file::write(path, &bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_counts_and_disjointness() {
        let strata: Vec<u8> = (0..10_000).map(|i| u8::from(i % 25 == 0)).collect();
        let split = draw(&strata, 0.01, 1000, 7);
        let positives = split
            .train
            .iter()
            .filter(|&&i| strata[i as usize] == 1)
            .count();
        assert_eq!(split.train.len(), 100);
        assert_eq!(positives, 4, "1% of the 400 positives");
        assert_eq!(split.valid.len(), 1000);
        let valid_pos = split
            .valid
            .iter()
            .filter(|&&i| strata[i as usize] == 1)
            .count();
        assert_eq!(
            valid_pos, 40,
            "validation keeps the class ratio of the remaining rows"
        );
        assert!(
            split
                .train
                .iter()
                .all(|i| split.valid.binary_search(i).is_err())
        );
        assert_eq!(draw(&strata, 0.01, 1000, 7), split);
        assert_ne!(draw(&strata, 0.01, 1000, 8), split);
    }

    #[test]
    fn latest_validation_is_the_last_rows_and_training_is_drawn_before_them() {
        // 20 rows in time order; positives at 0, 5, 10, 15.
        let strata: Vec<u8> = (0..20).map(|i| u8::from(i % 5 == 0)).collect();
        let split = draw_latest(&strata, 0.25, 6, 3);
        assert_eq!(split.valid, vec![14, 15, 16, 17, 18, 19]);
        // Rows 0..14: positives 0, 5, 10 (3 -> round(0.75) = 1 kept), negatives 11 (-> 3).
        assert_eq!(split.train.len(), 4);
        assert!(split.train.iter().all(|&i| i < 14), "{:?}", split.train);
        let positives = split.train.iter().filter(|&&i| i % 5 == 0).count();
        assert_eq!(positives, 1);
        assert_eq!(draw_latest(&strata, 0.25, 6, 3), split, "seeded");
        // More validation rows than rows: all validate, none trains but a class's one.
        let all = draw_latest(&strata, 0.25, 50, 3);
        assert_eq!(all.valid.len(), 20);
        assert!(all.train.is_empty());
    }

    #[test]
    fn a_rare_class_keeps_at_least_one_row() {
        let mut strata = vec![0u8; 5000];
        strata[17] = 1;
        let split = draw(&strata, 0.001, 10, 1);
        assert!(split.train.contains(&17));
        assert_eq!(split.train.len(), 6);
    }
}
