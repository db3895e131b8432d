//! TensorBoard event files (`output.tensorboard = true`), read back by a reader written
//! here from the formats' specifications (TFRecord framing with masked CRC-32C; the Event,
//! Summary and Summary.Value protocol buffers of tensorflow/core/util/event.proto and
//! tensorflow/core/framework/summary.proto): every epoch of both phases is there, with the
//! values of metrics.jsonl.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{daa, named_run_dir, repo, smoke_run_args};

/// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), bit by bit.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// TFRecord's mask: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
fn masked(bytes: &[u8]) -> u32 {
    crc32c(bytes).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The records of a TFRecord file, each checked against its two CRCs.
fn records(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let length = &bytes[at..at + 8];
        let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        assert_eq!(crc, masked(length), "length CRC of the record at byte {at}");
        let n = u64::from_le_bytes(length.try_into().unwrap()) as usize;
        let data = &bytes[at + 12..at + 12 + n];
        let crc = u32::from_le_bytes(bytes[at + 12 + n..at + 16 + n].try_into().unwrap());
        assert_eq!(crc, masked(data), "data CRC of the record at byte {at}");
        out.push(data.to_vec());
        at += 16 + n;
    }
    out
}

/// A protocol buffer field's value by wire type.
#[derive(Debug, Clone)]
enum Field {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(Vec<u8>),
    Fixed32([u8; 4]),
}

fn varint(bytes: &[u8], at: &mut usize) -> u64 {
    let (mut value, mut shift) = (0u64, 0);
    loop {
        let byte = bytes[*at];
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

/// The fields of a message, by number, in order.
fn fields(bytes: &[u8]) -> Vec<(u64, Field)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let key = varint(bytes, &mut at);
        let field = match key & 7 {
            0 => Field::Varint(varint(bytes, &mut at)),
            1 => {
                at += 8;
                Field::Fixed64(bytes[at - 8..at].try_into().unwrap())
            }
            2 => {
                let n = varint(bytes, &mut at) as usize;
                at += n;
                Field::Bytes(bytes[at - n..at].to_vec())
            }
            5 => {
                at += 4;
                Field::Fixed32(bytes[at - 4..at].try_into().unwrap())
            }
            other => panic!("wire type {other}"),
        };
        out.push((key >> 3, field));
    }
    out
}

/// The scalars of an event file: tag -> step -> value; and its version string.
fn read(path: &Path) -> (String, BTreeMap<String, BTreeMap<i64, f32>>) {
    let mut version = String::new();
    let mut scalars: BTreeMap<String, BTreeMap<i64, f32>> = BTreeMap::new();
    for record in records(&std::fs::read(path).unwrap()) {
        let event = fields(&record);
        let step = event
            .iter()
            .find_map(|(n, f)| match (n, f) {
                (2, Field::Varint(v)) => Some(*v as i64),
                _ => None,
            })
            .unwrap_or(0);
        let wall_time = event.iter().find_map(|(n, f)| match (n, f) {
            (1, Field::Fixed64(v)) => Some(f64::from_le_bytes(*v)),
            _ => None,
        });
        assert!(
            wall_time.is_some_and(|t| t > 1.6e9),
            "every event has its wall time: {wall_time:?}"
        );
        for (number, field) in event {
            match (number, field) {
                (3, Field::Bytes(v)) => version = String::from_utf8(v).unwrap(),
                (5, Field::Bytes(summary)) => {
                    for (_, value) in fields(&summary) {
                        let Field::Bytes(value) = value else { panic!() };
                        let (mut tag, mut simple) = (String::new(), None);
                        for (n, f) in fields(&value) {
                            match (n, f) {
                                (1, Field::Bytes(t)) => tag = String::from_utf8(t).unwrap(),
                                (2, Field::Fixed32(v)) => simple = Some(f32::from_le_bytes(v)),
                                _ => {}
                            }
                        }
                        scalars
                            .entry(tag)
                            .or_default()
                            .insert(step, simple.expect("a simple value"));
                    }
                }
                _ => {}
            }
        }
    }
    (version, scalars)
}

fn event_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    assert_eq!(files.len(), 1, "one event file in {}", dir.display());
    files[0].clone()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn event_files_hold_every_epoch_of_both_phases_with_the_values_of_metrics_jsonl() {
    assert_eq!(crc32c(b"123456789"), 0xe306_9283, "RFC 3720's check value");
    let dir = tempfile::tempdir().unwrap();
    let config = repo().join("configs/mmoe_nl.toml");
    let args = smoke_run_args(dir.path(), &config, &["output.tensorboard=true"], &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = named_run_dir(dir.path(), &daa(dir.path(), &args, &[]));

    let (version, target) = read(&event_file(&run));
    assert_eq!(version, "brain.Event:2");
    let metrics = lines(&run.join("metrics.jsonl"));
    assert!(metrics.len() >= 2, "the start model and an epoch");
    for line in &metrics {
        let epoch = line["epoch"].as_i64().unwrap();
        let auc = line["valid"]["tasks"][0]["auc"].as_f64().unwrap() as f32;
        assert_eq!(
            target["target/valid/click/auc"][&epoch], auc,
            "epoch {epoch}"
        );
        assert_eq!(
            target["target/valid/valid_mean_auc"][&epoch],
            line["valid_mean_auc"].as_f64().unwrap() as f32
        );
        let probe = line["alignment"]["probe_accuracy"].as_f64().unwrap() as f32;
        assert_eq!(target["target/alignment/probe_accuracy"][&epoch], probe);
        if epoch > 0 {
            let loss = line["train"]["task_loss"].as_f64().unwrap() as f32;
            assert_eq!(target["target/train/task_loss"][&epoch], loss);
        }
        assert!(target["target/time/epoch_seconds"][&epoch] >= 0.0);
    }
    assert_eq!(
        target["target/valid/click/auc"].len(),
        metrics.len(),
        "one value per epoch"
    );

    // Source pretraining's epochs: in the source model's directory, beside its own
    // metrics.jsonl.
    let sources: Vec<PathBuf> = std::fs::read_dir(dir.path().join("runs/_source"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(sources.len(), 1);
    let source_lines = lines(&sources[0].join("metrics.jsonl"));
    assert!(!source_lines.is_empty());
    let (_, source) = read(&event_file(&sources[0]));
    for line in &source_lines {
        let epoch = line["epoch"].as_i64().unwrap();
        assert!(epoch >= 1);
        assert_eq!(
            source["source/train/task_loss"][&epoch],
            line["train"]["task_loss"].as_f64().unwrap() as f32
        );
    }

    // A rerun starts its directory afresh: no event file of the earlier attempt stays.
    let mut again = args.clone();
    again.push("--rerun");
    let rerun = named_run_dir(dir.path(), &daa(dir.path(), &again, &[]));
    assert_eq!(rerun, run);
    event_file(&run);
}
