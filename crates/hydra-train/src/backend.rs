//! Choosing the compute device: `--backend flex|wgpu|cuda`, for the features compiled in.

use burn::tensor::Device;

/// A backend the user can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn-flex on the CPU (default).
    Flex,
    /// burn-wgpu (Vulkan/Metal/DX12).
    Wgpu,
    /// burn-cuda.
    Cuda,
}

impl Backend {
    /// Parse a backend name.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "flex" | "cpu" => Ok(Self::Flex),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(format!("unknown backend `{other}`: expected one of {}", Self::compiled().join(", "))),
        }
    }

    /// Names of the backends compiled into this binary.
    pub fn compiled() -> Vec<&'static str> {
        let mut v = Vec::new();
        if cfg!(feature = "flex") {
            v.push("flex");
        }
        if cfg!(feature = "wgpu") {
            v.push("wgpu");
        }
        if cfg!(feature = "cuda") {
            v.push("cuda");
        }
        v
    }

    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }

    /// The inference device, or why this binary cannot provide it.
    pub fn device(self) -> Result<Device, String> {
        let missing = |f: &str| {
            Err(format!(
                "backend `{f}` is not compiled into this binary (compiled: {}); rebuild with `--features {f}`",
                Self::compiled().join(", ")
            ))
        };
        match self {
            #[cfg(feature = "flex")]
            Self::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(Device::wgpu(Default::default())),
            #[cfg(feature = "cuda")]
            Self::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            other => missing(other.name()),
        }
    }

    /// A device named in `training.devices`: `cpu` (or `flex`), `wgpu:N` (the N-th discrete
    /// GPU), `cuda:N`; its backend and ordinal (0 for the CPU).
    pub fn parse_device(s: &str) -> Result<(Self, usize), String> {
        let (name, ordinal) = match s.split_once(':') {
            Some((n, i)) => (n, i.parse::<usize>().map_err(|_| format!("\"{s}\": the device number after `:` must be a whole number"))?),
            None => (s, 0),
        };
        match (Self::parse(name), name) {
            (Ok(Self::Flex), _) if ordinal == 0 => Ok((Self::Flex, 0)),
            (Ok(Self::Flex), _) => Err(format!("\"{s}\": the CPU has no device numbers (write \"cpu\")")),
            (Ok(b), _) => Ok((b, ordinal)),
            (Err(_), _) => Err(format!("\"{s}\": expected cpu, wgpu:N or cuda:N")),
        }
    }

    /// The training device named `s` (see [`Backend::parse_device`]), or why this binary cannot
    /// provide it.
    pub fn training_device_at(s: &str) -> Result<Device, String> {
        let (backend, ordinal) = Self::parse_device(s)?;
        let _ = ordinal; // unused without a GPU feature
        let device = match backend {
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(ordinal)),
            #[cfg(feature = "cuda")]
            Self::Cuda => Device::cuda(ordinal),
            other => other.device()?,
        };
        Ok(device.autodiff())
    }

    /// The training device (autodiff on top of the backend).
    pub fn training_device(self) -> Result<Device, String> {
        Ok(self.device()?.autodiff())
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
