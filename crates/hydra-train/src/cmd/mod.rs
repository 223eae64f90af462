//! The subcommands of the `hydra` binary.

pub mod bench;
pub mod data;
pub mod eval;
pub mod export;
pub mod info;
pub mod predict;
pub mod report;
pub mod selftest;
pub mod synth;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use hydra_model::fsio::Inputs;
use hydra_model::weights::{self, LoadScope, WeightFile};
use hydra_model::{HydraNet, HydraNetConfig};
use hydra_train::backend::Backend;
use hydra_train::config::Config;

/// The arguments naming a weight file and the network it holds.
#[derive(clap::Args)]
pub struct WeightsArgs {
    /// Weight file (official PyTorch checkpoint, safetensors, or hydra .bpk).
    #[arg(long)]
    pub weights: PathBuf,
    /// Number of classes (default: from the file).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Training config whose [model] section describes the network.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl WeightsArgs {
    /// Read the file, build the network and load it strictly on `device`.
    pub fn load(&self, device: &Device) -> Result<(HydraNet, WeightFile, Option<Config>)> {
        load_network(&self.weights, self.num_classes, self.config.as_deref(), device)
    }

    /// The files these arguments read, which no output may replace.
    pub fn inputs(&self) -> Inputs {
        let mut i = Inputs::new();
        i.add(&self.weights);
        if let Some(c) = &self.config {
            i.add(c);
        }
        i
    }
}

/// Before any work: refuse an output path that is not a regular file (a device, a FIFO, a
/// folder) or that would replace one of `inputs`, naming it.
pub fn check_output(out: &Path, inputs: &Inputs) -> Result<()> {
    hydra_model::fsio::destination(out).and_then(|_| inputs.check(out)).map(|_| ()).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))
}

/// An error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if parts.last().is_none_or(|p| !p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

/// Writes one line to stderr in a single `write`, so that the lines of several processes
/// sharing one terminal or one `mpirun` stream never interleave mid-line (`eprintln!`
/// writes each formatted piece separately).
pub fn say_line(line: &str) {
    use std::io::Write;
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let _ = std::io::stderr().lock().write_all(buf.as_bytes());
}

/// The classes' colours and names: `--colormap` (`nyud`, `kitti`, a palette file or an
/// `.npy` colour map), else the config's `data.palette`, else the built-in palette of the
/// network's class count (40 NYUv2, 13 NYUv2-13, 6 KITTI, otherwise generic).
pub fn palette_for(net: &HydraNetConfig, colormap: Option<&str>, config: Option<&Config>) -> Result<hydra_data::palette::Palette> {
    use hydra_data::palette::Palette;
    let spec = colormap.map(str::to_string).or_else(|| config.map(|c| c.data.palette.clone()));
    Ok(match spec {
        Some(s) => {
            let p = hydra_train::setup::palette_named(&s).map_err(|e| anyhow::anyhow!("colour map `{s}`: {e}"))?;
            if net.tasks.contains(&hydra_model::Task::Segmentation) && p.len() < net.num_classes {
                anyhow::bail!("colour map `{s}`: {} colours for a network of {} classes; give one with a colour for every class", p.len(), net.num_classes);
            }
            p
        }
        None => match net.num_classes {
            40 => Palette::nyud40(),
            6 => Palette::kitti6(),
            13 => Palette::nyud13(),
            n => Palette::generic(n),
        },
    })
}

/// The device of `--backend`.
pub fn device(backend: &str) -> Result<Device> {
    let b = Backend::parse(backend).map_err(anyhow::Error::msg)?;
    b.device().map_err(anyhow::Error::msg)
}

/// Sets the precision of inference for this process (`--precision`, `eval.precision`): `f32`,
/// or `bf16` where every backend in use is the CPU's (flex) and the CPU has a bf16 path
/// (AMX-BF16 or AVX512-BF16). Returns how it computes, for the user: `f32`, `bf16 (amx)`; where
/// bf16 is slower than f32 on this CPU (AVX512-BF16 products at a lower rate than f32 FMAs),
/// says so on stderr.
pub fn set_precision(name: &str, backends: &[&str]) -> Result<String> {
    use hydra_model::kernels::precision::{bf16_path, set_precision, Precision};
    let p = Precision::parse(name).with_context(|| format!("precision {name}: expected f32 or bf16"))?;
    if p == Precision::Bf16 {
        if let Some(b) = backends.iter().find(|b| !matches!(Backend::parse_device(b), Ok((Backend::Flex, _)))) {
            bail!("precision bf16 runs on the CPU backend (flex) only, not on {b}");
        }
    }
    set_precision(p).map_err(anyhow::Error::msg)?;
    if p == Precision::Bf16 {
        if let Some(note) = hydra_model::kernels::precision::bf16_speed_note() {
            eprintln!("{note}");
        }
    }
    Ok(match p {
        Precision::F32 => "f32".into(),
        Precision::Bf16 => format!("bf16 ({})", bf16_path().map_err(anyhow::Error::msg)?.name()),
    })
}

/// The network asked for by `--config` or `--num-classes`, or described by the file.
pub fn network_for(file: &WeightFile, num_classes: Option<usize>, config: Option<&Path>) -> Result<(HydraNetConfig, Option<Config>)> {
    match (num_classes, config) {
        (Some(_), Some(_)) => bail!("give either --num-classes or --config, not both"),
        (None, Some(path)) => {
            let c = Config::from_file(path, &[])?;
            Ok((c.network(), Some(c)))
        }
        (Some(n), None) => {
            hydra_train::limits::check("--num-classes", n, hydra_train::limits::NUM_CLASSES).map_err(anyhow::Error::msg)?;
            let inferred = file.config().ok();
            let mut net = inferred.unwrap_or_else(|| HydraNetConfig::new(n));
            net.num_classes = n;
            net.validate().map_err(anyhow::Error::msg).context("--num-classes")?;
            Ok((net, None))
        }
        (None, None) => Ok((file.config()?, None)),
    }
}

/// Read `path`, build the network and load it strictly on `device`.
pub fn load_network(path: &Path, num_classes: Option<usize>, config: Option<&Path>, device: &Device) -> Result<(HydraNet, WeightFile, Option<Config>)> {
    let file = weights::read(path)?;
    let (net, cfg) = network_for(&file, num_classes, config)?;
    let (model, _) = file.apply(net.init(device), LoadScope::Full)?;
    Ok((model, file, cfg))
}
