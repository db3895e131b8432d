//! TensorBoard event files (`events.out.tfevents.<time>.<host>` in the run directory) with
//! scalar summaries, written by hand: the format is small and stable, and the crate that
//! writes it (tensorboard-rs) is unmaintained, on a protobuf release with a CVE.
//!
//! An event file is a sequence of TFRecords: the payload's length as a little-endian u64,
//! the masked CRC-32C of those 8 bytes, the payload, the masked CRC-32C of the payload. Each
//! payload is an `Event` protocol buffer (tensorflow/core/util/event.proto): `wall_time`
//! (field 1, double), `step` (2, int64), then `file_version` (3, string: the first event,
//! "brain.Event:2") or `summary` (5, a `Summary` of `Value`s: `tag` (1, string) and
//! `simple_value` (2, float)).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::TrainError;

/// The CRC TFRecord frames carry: CRC-32C rotated right by 15 bits plus a constant, so that
/// a CRC of data that holds CRCs stays well distributed.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `payload` framed as one TFRecord.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let length = (payload.len() as u64).to_le_bytes();
    let mut record = Vec::with_capacity(payload.len() + 16);
    record.extend_from_slice(&length);
    record.extend_from_slice(&masked_crc(&length).to_le_bytes());
    record.extend_from_slice(payload);
    record.extend_from_slice(&masked_crc(payload).to_le_bytes());
    record
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A length-delimited field (wire type 2): a string or an embedded message.
fn delimited(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 2), out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// An `Event` with its time and step, and `field` (length-delimited) holding `bytes`.
fn event(wall_time: f64, step: i64, field: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(1 << 3 | 1); // wall_time, 64-bit
    out.extend_from_slice(&wall_time.to_le_bytes());
    out.push(2 << 3); // step, varint (two's complement for a negative one)
    varint(step as u64, &mut out);
    delimited(field, bytes, &mut out);
    out
}

/// A `Summary` of scalars.
fn summary(scalars: &[(String, f32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, value) in scalars {
        let mut entry = Vec::new();
        delimited(1, tag.as_bytes(), &mut entry);
        entry.push(2 << 3 | 5); // simple_value, 32-bit
        entry.extend_from_slice(&value.to_le_bytes());
        delimited(1, &entry, &mut out);
    }
    out
}

/// How every event file's name starts.
pub const PREFIX: &str = "events.out.tfevents.";

/// An open event file of a run directory.
pub struct EventFile {
    path: PathBuf,
    file: std::fs::File,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl EventFile {
    /// A new event file in `dir`, named as TensorBoard names them (`prefix` tells the
    /// files of one directory apart, e.g. a session's process id), its version event
    /// written.
    pub fn create(dir: &Path, prefix: &str) -> Result<Self, TrainError> {
        let wall_time = now();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let path = dir.join(format!("{PREFIX}{}.{host}.{prefix}", wall_time as u64));
        let file = std::fs::File::create(&path).map_err(TrainError::io(&path))?;
        let mut events = EventFile { path, file };
        events.write(&event(wall_time, 0, 3, b"brain.Event:2"))?;
        Ok(events)
    }

    /// Writes `scalars` (tag, value) at `step`; non-finite values are written as they are.
    pub fn scalars(&mut self, step: usize, scalars: &[(String, f32)]) -> Result<(), TrainError> {
        self.write(&event(now(), step as i64, 5, &summary(scalars)))
    }

    fn write(&mut self, payload: &[u8]) -> Result<(), TrainError> {
        self.file
            .write_all(&frame(payload))
            .and_then(|()| self.file.flush())
            .map_err(TrainError::io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masked_crc_and_varints_match_the_formats_examples() {
        // CRC-32C of "123456789" is 0xe3069283 (RFC 3720's check value); masked:
        // rotate right 15 -> 0x2507c60d, plus 0xa282ead8.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(
            masked_crc(b"123456789"),
            0x2507_c60d_u32.wrapping_add(0xa282_ead8)
        );
        // Protocol buffers' documentation: 150 is 0x96 0x01, 300 is 0xac 0x02.
        let mut out = Vec::new();
        varint(150, &mut out);
        varint(300, &mut out);
        assert_eq!(out, [0x96, 0x01, 0xac, 0x02]);
    }

    #[test]
    fn a_scalar_summary_is_the_bytes_of_its_protocol_buffer() {
        // Value { tag: "a", simple_value: 1.0 } inside Summary.value (field 1).
        let bytes = summary(&[("a".into(), 1.0)]);
        assert_eq!(
            bytes,
            [0x0a, 0x08, 0x0a, 0x01, b'a', 0x15, 0x00, 0x00, 0x80, 0x3f]
        );
    }
}
