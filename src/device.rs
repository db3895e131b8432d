use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a run computes: `auto` (CUDA when compiled in and a device answers, else CPU),
/// `cpu`, `cuda` (device 0) or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Auto,
    Cpu,
    Cuda(usize),
}

/// A device that cannot be used in this build or on this machine.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "device `{0}`: this build has no CUDA support; rebuild with `--features cuda` (scripts/build-cuda.sh) or use cpu"
    )]
    NoCuda(Device),
    #[error("device `{device}`: {message}")]
    Unavailable { device: Device, message: String },
}

impl Device {
    /// The candle device this names: `auto` is CUDA device 0 when compiled in and present,
    /// else the CPU.
    pub fn open(self) -> Result<candle_core::Device, DeviceError> {
        match self {
            Device::Cpu => Ok(candle_core::Device::Cpu),
            Device::Auto if candle_core::utils::cuda_is_available() => {
                Ok(candle_core::Device::new_cuda(0).unwrap_or(candle_core::Device::Cpu))
            }
            Device::Auto => Ok(candle_core::Device::Cpu),
            Device::Cuda(_) if !candle_core::utils::cuda_is_available() => {
                Err(DeviceError::NoCuda(self))
            }
            Device::Cuda(n) => {
                candle_core::Device::new_cuda(n).map_err(|e| DeviceError::Unavailable {
                    device: self,
                    message: e.to_string(),
                })
            }
        }
    }
}

/// How a candle device is recorded in results: `cpu` or `cuda:N`.
pub fn describe(device: &candle_core::Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || format!("unknown device `{s}`; expected auto, cpu, cuda or cuda:N");
        match s {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(unknown),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Auto => f.write_str("auto"),
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl Serialize for Device {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Device {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_in_a_cpu_build_is_a_clear_error() {
        if !candle_core::utils::cuda_is_available() {
            let err = Device::Cuda(1).open().unwrap_err().to_string();
            assert!(
                err.contains("cuda:1") && err.contains("--features cuda"),
                "{err}"
            );
            assert_eq!(describe(&Device::Auto.open().unwrap()), "cpu");
        }
        assert_eq!(describe(&Device::Cpu.open().unwrap()), "cpu");
    }

    #[test]
    fn device_names_round_trip() {
        for name in ["auto", "cpu", "cuda:0", "cuda:3"] {
            assert_eq!(name.parse::<Device>().unwrap().to_string(), name);
        }
        assert_eq!("cuda".parse::<Device>(), Ok(Device::Cuda(0)));
        assert!("gpu".parse::<Device>().is_err());
        assert!("cuda:x".parse::<Device>().is_err());
    }
}
