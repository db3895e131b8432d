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
    Write(#[from] crate::whole_file::FileError),
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} is damaged ({message}); delete it and run again to remake it")]
    Corrupt { path: String, message: String },
    #[error(
        "{path}: tensor `{tensor}` holds non-finite values (NaN or infinity), so no model can be \
         loaded from it; use a checkpoint of a run that did not diverge"
    )]
    NonFinite { path: String, tensor: String },
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
    crate::whole_file::write(path, &bytes)?;
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
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| error(e.to_string()))?;
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        if !all_finite(&tensors[name]).map_err(|e| error(e.to_string()))? {
            return Err(CheckpointError::NonFinite {
                path: path.display().to_string(),
                tensor: name.clone(),
            });
        }
    }
    Ok(tensors)
}

/// Whether every value of a floating-point tensor is finite (integer tensors always are).
fn all_finite(t: &Tensor) -> candle_core::Result<bool> {
    use candle_core::DType;
    let values = match t.dtype() {
        DType::F64 => {
            return Ok(t
                .flatten_all()?
                .to_vec1::<f64>()?
                .iter()
                .all(|v| v.is_finite()));
        }
        DType::F32 => t.flatten_all()?.to_vec1::<f32>()?,
        DType::F16 | DType::BF16 => t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
        _ => return Ok(true),
    };
    Ok(values.iter().all(|v| v.is_finite()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_tensors_are_refused_with_the_file_and_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nan.safetensors");
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let w = Tensor::new(&[1.0f32, bad, 3.0], &Device::Cpu).unwrap();
            let fine = Tensor::new(&[1.0f64], &Device::Cpu).unwrap();
            let step = Tensor::new(7i64, &Device::Cpu).unwrap();
            let tensors = HashMap::from([
                ("a.fine".to_string(), fine),
                ("b.weight".to_string(), w),
                ("step".to_string(), step),
            ]);
            // With a correct checksum, and without one (a converted PyTorch checkpoint).
            save(&tensors, &path).unwrap();
            let error = load(&path).unwrap_err();
            assert!(error.is_bad_input());
            let error = error.to_string();
            assert!(
                error.contains("nan.safetensors") && error.contains("`b.weight`"),
                "{error}"
            );
            let bare = safetensors::serialize(&tensors, None).unwrap();
            std::fs::write(&path, bare).unwrap();
            assert!(load(&path).unwrap_err().to_string().contains("`b.weight`"));
        }
    }

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
