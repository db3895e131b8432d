use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// A CUDA setting that changes no result, only speed. [`CudaTuning::DEFAULT`] are on in
/// runs; `daa bench step --cuda-tunings` chooses, to measure what each one is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CudaTuning {
    /// No pair of CUDA events per allocation: with the one stream daa uses they order
    /// nothing.
    Events,
    /// The memory pool keeps freed memory (release threshold at its maximum) instead of
    /// returning it to the driver at every synchronisation.
    Pool,
    /// Shapes and strides, which candle uploads for every strided operation, uploaded once
    /// and copied on the device from then on (candle's upload cache, held during training
    /// steps: [`cached_uploads`]). Not a default until measured: a cached upload is a
    /// device-side copy of a copy, which may cost more than the upload it saves.
    Uploads,
}

impl CudaTuning {
    pub const ALL: [CudaTuning; 3] = [CudaTuning::Events, CudaTuning::Pool, CudaTuning::Uploads];
    /// What runs use.
    pub const DEFAULT: [CudaTuning; 2] = [CudaTuning::Events, CudaTuning::Pool];

    pub fn name(self) -> &'static str {
        match self {
            CudaTuning::Events => "events",
            CudaTuning::Pool => "pool",
            CudaTuning::Uploads => "uploads",
        }
    }
}

impl FromStr for CudaTuning {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CudaTuning::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown CUDA tuning `{s}`; expected events, pool or uploads"))
    }
}

/// Whether training steps hold candle's upload cache ([`CudaTuning::Uploads`]).
static UPLOAD_CACHE: AtomicBool = AtomicBool::new(false);

impl DeviceError {
    /// A build without CUDA asked for it is the user's to fix (exit 2); a CUDA device that
    /// does not answer is the machine's (exit 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, DeviceError::NoCuda(_))
    }
}

impl Device {
    /// The candle device this names, with the default [`CudaTuning`]s: `auto` is CUDA
    /// device 0 when compiled in and present, else the CPU.
    pub fn open(self) -> Result<candle_core::Device, DeviceError> {
        self.open_with(&CudaTuning::DEFAULT)
    }

    /// [`Device::open`] with the tunings `tunings` (and no other).
    pub fn open_with(self, tunings: &[CudaTuning]) -> Result<candle_core::Device, DeviceError> {
        let device = match self {
            Device::Cpu => return Ok(candle_core::Device::Cpu),
            Device::Auto if candle_core::utils::cuda_is_available() => {
                match candle_core::Device::new_cuda(0) {
                    Ok(device) => device,
                    Err(_) => return Ok(candle_core::Device::Cpu),
                }
            }
            Device::Auto => return Ok(candle_core::Device::Cpu),
            Device::Cuda(_) if !candle_core::utils::cuda_is_available() => {
                return Err(DeviceError::NoCuda(self));
            }
            Device::Cuda(n) => {
                candle_core::Device::new_cuda(n).map_err(|e| DeviceError::Unavailable {
                    device: self,
                    message: e.to_string(),
                })?
            }
        };
        UPLOAD_CACHE.store(tunings.contains(&CudaTuning::Uploads), Ordering::Relaxed);
        tune(&device, tunings).map_err(|message| DeviceError::Unavailable {
            device: self,
            message,
        })?;
        Ok(device)
    }
}

#[cfg(feature = "cuda")]
fn tune(device: &candle_core::Device, tunings: &[CudaTuning]) -> Result<(), String> {
    use candle_core::cuda_backend::cudarc::driver::{result, sys};
    let cuda = device.as_cuda_device().map_err(|e| e.to_string())?;
    if tunings.contains(&CudaTuning::Events) {
        // SAFETY: daa runs every kernel and copy of a device on its one stream (candle's
        // per-thread stream, and training runs on one thread), so stream order alone orders
        // each allocation's uses and its release.
        unsafe { cuda.disable_event_tracking() };
    }
    if tunings.contains(&CudaTuning::Pool) {
        let context = cuda.cuda_stream().context().clone();
        context.bind_to_thread().map_err(|e| e.to_string())?;
        let mut threshold = u64::MAX;
        // SAFETY: the device handle comes from a live context; the attribute takes a u64
        // (cuMemPoolSetAttribute: CU_MEMPOOL_ATTR_RELEASE_THRESHOLD is a cuuint64_t).
        unsafe {
            let pool = result::device::get_default_mem_pool(context.cu_device())
                .map_err(|e| e.to_string())?;
            result::mem_pool::set_attribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                (&raw mut threshold).cast(),
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[cfg(not(feature = "cuda"))]
fn tune(_device: &candle_core::Device, _tunings: &[CudaTuning]) -> Result<(), String> {
    Ok(())
}

/// Holds candle's upload cache for shapes and strides while the value lives, on a CUDA
/// device (nothing elsewhere). Hold it around training steps, on their thread.
pub fn cached_uploads(device: &candle_core::Device) -> Option<impl Sized> {
    #[cfg(feature = "cuda")]
    {
        let cuda = device.as_cuda_device().ok()?;
        UPLOAD_CACHE
            .load(Ordering::Relaxed)
            .then(|| cuda.enable_cuda_graph_htod_cache())
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = device;
        None::<()>
    }
}

/// The GPU a run computed on, as result.json records it: reruns are bit-identical on the
/// same GPU model, driver and cuBLAS, not across them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    pub name: String,
    pub compute_capability: String,
    pub multiprocessors: i32,
    /// The CUDA driver API version (`cuDriverGetVersion`, e.g. 13000).
    pub driver: i32,
    /// `cublasGetVersion` (e.g. 130100).
    pub cublas: i32,
    /// Whether f32 products may use TF32 (candle's default: no).
    pub tf32: bool,
}

/// The GPU behind `device`, `None` on the CPU.
pub fn gpu(device: &candle_core::Device) -> Option<Gpu> {
    #[cfg(feature = "cuda")]
    {
        use candle_core::cuda_backend::cudarc::{cublas, driver::sys};
        let cuda = device.as_cuda_device().ok()?;
        let stream = cuda.cuda_stream();
        let context = stream.context();
        let attribute = |a| context.attribute(a).unwrap_or(-1);
        let (mut driver, mut blas) = (-1, -1);
        // SAFETY: both write one int through a valid pointer; the cuBLAS handle is the
        // device's live one.
        unsafe {
            sys::cuDriverGetVersion(&raw mut driver);
            cublas::sys::cublasGetVersion_v2(*cuda.cublas_handle().handle(), &raw mut blas);
        }
        Some(Gpu {
            name: context.name().unwrap_or_default(),
            compute_capability: format!(
                "{}.{}",
                attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
            ),
            multiprocessors: attribute(
                sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
            ),
            driver,
            cublas: blas,
            tf32: candle_core::cuda_backend::gemm_reduced_precision_f32(),
        })
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = device;
        None
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
