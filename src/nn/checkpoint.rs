//! Safetensors files with a checksum: the CRC-32C of the tensor bytes is stored in the
//! header's metadata (`daa.crc32c`) and verified on every read, so a checkpoint or state
//! damaged on disk is an error naming the file instead of a silently different model.
//! Files without the entry (converted PyTorch checkpoints) are read as they are.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

const KEY: &str = "daa.crc32c";

/// Problems matching a checkpoint to a model; each list is complete.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Write(#[from] crate::atomic::FileError),
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} is damaged ({message}); delete it and run again to remake it")]
    Corrupt { path: String, message: String },
    #[error(
        "{path} does not match the model:{}{}{}",
        list("missing tensors", missing),
        list("unexpected tensors", unexpected),
        list("mis-shaped tensors", misshaped)
    )]
    Mismatch {
        path: String,
        missing: Vec<String>,
        unexpected: Vec<String>,
        misshaped: Vec<String>,
    },
}

impl CheckpointError {
    /// The user's input is at fault (a missing, damaged or mismatched checkpoint), not the
    /// environment (a failed write).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, CheckpointError::Write(_))
    }
}

fn list(title: &str, items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!("\n  {title} ({}): {}", items.len(), items.join(", "))
    }
}

fn read_error(path: &Path) -> impl Fn(String) -> CheckpointError + '_ {
    move |message| CheckpointError::Read {
        path: path.display().to_string(),
        message,
    }
}

/// The data section of a safetensors buffer and the checksum its header stores, if any.
fn split(bytes: &[u8]) -> Result<(&[u8], Option<String>), String> {
    let (n, metadata) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let stored = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(KEY))
        .cloned();
    Ok((&bytes[8 + n..], stored))
}

/// Writes `tensors` to `path` (atomically) with the checksum of their bytes.
pub fn save(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<(), CheckpointError> {
    let error = read_error(path);
    let bare = safetensors::serialize(tensors, None).map_err(|e| error(e.to_string()))?;
    let (data, _) = split(&bare).map_err(&error)?;
    let metadata = HashMap::from([(KEY.to_string(), format!("{:08x}", crc32c::crc32c(data)))]);
    let bytes =
        safetensors::serialize(tensors, Some(metadata)).map_err(|e| error(e.to_string()))?;
    crate::atomic::write(path, &bytes)?;
    Ok(())
}

/// Reads the tensors of `path` onto the CPU, verifying its checksum where it has one.
pub fn load(path: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let error = read_error(path);
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let (data, stored) =
        split(&bytes).map_err(|e| error(format!("not a safetensors file ({e})")))?;
    if let Some(stored) = stored {
        let actual = format!("{:08x}", crc32c::crc32c(data));
        if stored != actual {
            return Err(CheckpointError::Corrupt {
                path: path.display().to_string(),
                message: format!("checksum {actual}, written as {stored}"),
            });
        }
    }
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_byte_is_detected_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("best.safetensors");
        let t = Tensor::arange(0f32, 64f32, &Device::Cpu).unwrap();
        save(&HashMap::from([("w".to_string(), t.clone())]), &path).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(
            back["w"].to_vec1::<f32>().unwrap(),
            t.to_vec1::<f32>().unwrap()
        );
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 5;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(
            error.contains("best.safetensors") && error.contains("checksum"),
            "{error}"
        );
        std::fs::write(&path, b"not a checkpoint").unwrap();
        assert!(
            load(&path)
                .unwrap_err()
                .to_string()
                .contains("best.safetensors")
        );
    }
}
