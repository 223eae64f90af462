//! One set of limits for every number a user gives, in a config or on the command line, and
//! an estimate of the memory a training batch needs, checked before anything is allocated.

use std::ops::RangeInclusive;

/// Segmentation classes (labels are 8-bit, one value is the ignore label).
pub const NUM_CLASSES: RangeInclusive<usize> = 2..=255;
/// Images per batch.
pub const BATCH: RangeInclusive<usize> = 1..=4096;
/// Side of a generated or benchmarked image, in pixels.
pub const IMAGE_SIDE: RangeInclusive<usize> = 32..=4096;
/// Synthetic scenes in a dataset.
pub const SCENES: RangeInclusive<usize> = 1..=10_000_000;
/// Threads of the input pipeline.
pub const WORKERS: RangeInclusive<usize> = 0..=64;
/// Timed or untimed repetitions of a benchmark.
pub const REPEATS: RangeInclusive<usize> = 0..=100_000;

/// `value` within `range`, or the message "`what` = value: must be an integer in [lo, hi]".
pub fn check(what: &str, value: usize, range: RangeInclusive<usize>) -> Result<usize, String> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!("{what} = {value}: must be an integer in [{}, {}]", range.start(), range.end()))
    }
}

/// `HEIGHTxWIDTH`, each side within [`IMAGE_SIDE`].
pub fn parse_size(what: &str, s: &str) -> Result<(usize, usize), String> {
    let (h, w) = s.split_once(['x', 'X']).ok_or_else(|| format!("{what} {s}: expected HEIGHTxWIDTH, e.g. 240x320"))?;
    let side = |v: &str, name: &str| -> Result<usize, String> {
        let n: usize = v.trim().parse().map_err(|_| format!("{what} {s}: the {name} `{v}` is not a whole number of pixels"))?;
        if IMAGE_SIDE.contains(&n) {
            Ok(n)
        } else {
            Err(format!("{what} {s}: the {name} must be in [{}, {}] pixels", IMAGE_SIDE.start(), IMAGE_SIDE.end()))
        }
    };
    Ok((side(h, "height")?, side(w, "width")?))
}

/// Bytes per input pixel of one training step on the CPU (activations kept for the backward
/// pass, their gradients, the loss), measured with `hydra bench train` (256×256, batch 4,
/// 40 classes: 608 MB peak, of which ~60 MB are the binary, network and optimiser), rounded up.
const TRAIN_BYTES_PER_PIXEL: u64 = 2_300;
/// The network, its gradients and optimiser state, the binary.
const TRAIN_BASE_BYTES: u64 = 100 << 20;
/// Host bytes per pixel of a loaded sample (RGB and depth as f32, label) and of an augmented
/// image before it is cropped.
const SAMPLE_BYTES_PER_PIXEL: u64 = 24;

/// Memory a training run needs, estimated: one step on batches of `batch` images of
/// `pixels` each (after scaling and cropping), with `workers` loader threads each holding up
/// to three batches, and `scaled_pixels` per image before the crop.
pub fn training_bytes(batch: usize, pixels: u64, scaled_pixels: u64, workers: usize) -> u64 {
    let step = TRAIN_BASE_BYTES + batch as u64 * pixels * TRAIN_BYTES_PER_PIXEL;
    let queued = (3 * workers.max(1) as u64 + 1) * batch as u64 * pixels * SAMPLE_BYTES_PER_PIXEL;
    let scaling = workers.max(1) as u64 * scaled_pixels * SAMPLE_BYTES_PER_PIXEL;
    step + queued + scaling
}

/// Memory an inference on batches of `batch` images of `pixels` each needs, estimated from
/// `hydra bench infer` (480×640, batch 1: 85 MB peak), rounded up.
pub fn inference_bytes(batch: usize, pixels: u64) -> u64 {
    (60 << 20) + batch as u64 * pixels * 400
}

/// Refuse `need` bytes when this machine cannot give them; the message says what needs them.
/// Returns the memory available (`None` where it cannot be read).
pub fn check_memory(need: u64, what: &str, lower: &str) -> Result<Option<u64>, String> {
    match available_bytes() {
        Some(avail) if need > avail => Err(format!("{what} needs about {} of memory, more than the {} available here; {lower}", gb(need), gb(avail))),
        avail => Ok(avail),
    }
}

/// Memory this process may still use: the smaller of the system's available memory and what
/// its cgroup allows. `None` where neither can be read.
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines().find(|l| l.starts_with("MemAvailable:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()).map(|kb| kb * 1024)
    });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|t| t.trim().parse::<u64>().ok());
    let current = std::fs::read_to_string("/sys/fs/cgroup/memory.current").ok().and_then(|t| t.trim().parse::<u64>().ok()).unwrap_or(0);
    match (meminfo, cgroup.map(|m| m.saturating_sub(current))) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Gigabytes, for messages.
pub fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_the_value_and_the_range() {
        assert_eq!(check("--count", 0, SCENES).unwrap_err(), "--count = 0: must be an integer in [1, 10000000]");
        assert_eq!(check("--batch", 8, BATCH), Ok(8));
        assert_eq!(parse_size("--size", "240x320"), Ok((240, 320)));
        assert!(parse_size("--size", "240.5x320").unwrap_err().contains("not a whole number"));
        assert!(parse_size("--size", "99999x320").unwrap_err().contains("[32, 4096]"));
    }

    #[test]
    fn the_estimate_grows_with_batch_and_pixels_and_matches_the_measured_step() {
        // The measured step (256×256, batch 4, 608 MB peak) lies within the estimate, by < 30 %.
        let e = training_bytes(4, 256 * 256, 256 * 256, 0);
        assert!(e >= 608_000_000 && e < 800_000_000, "{e}");
        assert!(training_bytes(8, 1000, 1000, 2) > training_bytes(4, 1000, 1000, 2));
        assert!(training_bytes(4, 2000, 2000, 2) > training_bytes(4, 1000, 1000, 2));
    }
}
