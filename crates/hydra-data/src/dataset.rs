//! Datasets: the common interface, opening with up-front validation, and statistics.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::DataError;
use crate::palette::Palette;
use crate::sample::Sample;

/// A random-access collection of samples. Implementations are cheap to share across threads.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Decode sample `index` (validated when the dataset was opened).
    fn get(&self, index: usize) -> Result<Sample, DataError>;
    /// A short description (for logs).
    fn describe(&self) -> String;
}

/// Where samples come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// The authors' layout: a root folder and a list file of `rgb mask depth` lines.
    List {
        /// Dataset root; list paths are relative to it.
        root: PathBuf,
        /// The list file (relative to `root` unless absolute).
        list: PathBuf,
        /// Depth PNG value per metre (5000 NYUv2, 800 KITTI).
        depth_scale: f64,
        /// Colour-coded label PNGs: the palette mapping colours to classes.
        label_palette: Option<Palette>,
    },
    /// MTAN / LibMTL 13-class NYUv2: `image/ label/ depth/ [normal/]` folders of `.npy` files.
    Mtan {
        /// The split folder holding `image/`, `label/`, `depth/`.
        root: PathBuf,
    },
    /// Ray-cast indoor scenes generated on the fly.
    Synthetic {
        /// Number of scenes.
        count: usize,
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
        /// Scene family seed.
        seed: u64,
    },
}

/// How a dataset is opened and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenOptions {
    /// Labels must be below this or equal to `ignore_index` (None: not checked).
    pub num_classes: Option<usize>,
    /// The label value meaning "no label".
    pub ignore_index: u8,
    /// Skip samples that fail validation (reported) instead of failing.
    pub skip_bad: bool,
    /// Threads used for validation.
    pub workers: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { num_classes: None, ignore_index: 255, skip_bad: false, workers: 2 }
    }
}

/// Statistics of one validated sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleStats {
    /// (height, width).
    pub size: [usize; 2],
    /// Pixels per class (index = class); ignored pixels are counted in `ignored`.
    pub class_pixels: Vec<u64>,
    /// Pixels with the ignore label.
    pub ignored: u64,
    /// Smallest and largest valid depth, metres.
    pub depth_range: Option<(f32, f32)>,
    /// Pixels with a depth measurement.
    pub depth_valid: u64,
    /// Sum and sum of squares of the measured depths (for trivial baselines).
    pub depth_sum: f64,
    pub depth_sum_sq: f64,
    /// Whether the sample has each annotation.
    pub has_label: bool,
    pub has_depth: bool,
    pub has_normal: bool,
}

impl SampleStats {
    /// Statistics of a decoded sample.
    pub fn of(s: &Sample, ignore: u8) -> Self {
        let mut st = SampleStats { size: s.size(), has_label: s.label.is_some(), has_depth: s.depth.is_some(), has_normal: s.normal.is_some(), ..Default::default() };
        if let Some(l) = &s.label {
            for &v in &l.data {
                if v == ignore {
                    st.ignored += 1;
                } else {
                    let v = v as usize;
                    if st.class_pixels.len() <= v {
                        st.class_pixels.resize(v + 1, 0);
                    }
                    st.class_pixels[v] += 1;
                }
            }
        }
        if let Some(d) = &s.depth {
            let mut lo = f32::INFINITY;
            let mut hi = 0f32;
            for &v in &d.data {
                if v > 0.0 {
                    st.depth_valid += 1;
                    st.depth_sum += v as f64;
                    st.depth_sum_sq += (v as f64) * (v as f64);
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            if st.depth_valid > 0 {
                st.depth_range = Some((lo, hi));
            }
        }
        st
    }
}

/// A sample that failed validation and was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// Where it came from (list line or file).
    pub what: String,
    /// Why.
    pub reason: String,
}

/// What opening a dataset found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenReport {
    /// Statistics per kept sample.
    pub samples: Vec<SampleStats>,
    /// Samples skipped under the opt-in skip policy.
    pub skipped: Vec<Skipped>,
}

impl OpenReport {
    /// Pixels per class over all samples.
    pub fn class_histogram(&self) -> Vec<u64> {
        let n = self.samples.iter().map(|s| s.class_pixels.len()).max().unwrap_or(0);
        let mut h = vec![0u64; n];
        for s in &self.samples {
            for (i, &c) in s.class_pixels.iter().enumerate() {
                h[i] += c;
            }
        }
        h
    }

    /// Depth range over all samples.
    pub fn depth_range(&self) -> Option<(f32, f32)> {
        self.samples.iter().filter_map(|s| s.depth_range).reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// Pixels with a label other than the ignore value, over all samples.
    pub fn labelled_pixels(&self) -> u64 {
        self.samples.iter().flat_map(|s| &s.class_pixels).sum()
    }

    /// Whether any depth measurement lies within (0, `max_depth`] metres (`max_depth` ≤ 0: no
    /// limit): without one, depth has no valid pixel to be evaluated or trained on.
    pub fn has_depth_within(&self, max_depth: f64) -> bool {
        self.depth_range().is_some_and(|(lo, _)| max_depth <= 0.0 || lo as f64 <= max_depth)
    }

    /// Mean measured depth over all samples, metres.
    pub fn depth_mean(&self) -> Option<f64> {
        let n: u64 = self.samples.iter().map(|s| s.depth_valid).sum();
        (n > 0).then(|| self.samples.iter().map(|s| s.depth_sum).sum::<f64>() / n as f64)
    }

    /// RMSE of predicting the constant depth `c` everywhere.
    pub fn constant_depth_rmse(&self, c: f64) -> Option<f64> {
        let n: u64 = self.samples.iter().map(|s| s.depth_valid).sum();
        let sum: f64 = self.samples.iter().map(|s| s.depth_sum).sum();
        let sq: f64 = self.samples.iter().map(|s| s.depth_sum_sq).sum();
        (n > 0).then(|| ((sq - 2.0 * c * sum + c * c * n as f64) / n as f64).max(0.0).sqrt())
    }

    /// Pixel accuracy and mIoU of predicting class `c` everywhere (mIoU over the classes
    /// present in the ground truth, as the metric does).
    pub fn constant_class_scores(&self, c: usize) -> Option<(f64, f64)> {
        let h = self.class_histogram();
        let total: u64 = h.iter().sum();
        if total == 0 {
            return None;
        }
        let present = h.iter().filter(|&&n| n > 0).count().max(1);
        let acc = h.get(c).copied().unwrap_or(0) as f64 / total as f64;
        Some((acc, acc / present as f64))
    }

    /// Distinct sizes and how many samples have each.
    pub fn sizes(&self) -> Vec<([usize; 2], usize)> {
        let mut m: std::collections::BTreeMap<[usize; 2], usize> = Default::default();
        for s in &self.samples {
            *m.entry(s.size).or_default() += 1;
        }
        m.into_iter().collect()
    }
}

/// Validate `label` values against the class count.
pub fn check_labels(label: &[u8], num_classes: Option<usize>, ignore: u8) -> Result<(), String> {
    let Some(n) = num_classes else { return Ok(()) };
    let mut bad: Option<(u8, usize)> = None;
    for &v in label {
        if v != ignore && v as usize >= n {
            bad = Some(match bad {
                Some((m, c)) => (m.max(v), c + 1),
                None => (v, 1),
            });
        }
    }
    match bad {
        None => Ok(()),
        Some((m, c)) => Err(format!(
            "{c} pixels have labels ≥ num_classes {n} (largest {m}); labels must be 0..{} or the ignore value {ignore}",
            n - 1
        )),
    }
}

/// Run `f` over `0..n` on `workers` threads, results in index order.
pub fn parallel_map<T: Send>(n: usize, workers: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let workers = workers.clamp(1, n.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let r = f(i);
                slots.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results.into_iter().map(|r| r.expect("every index computed")).collect()
}

/// Validate every item with `load` (in parallel) and keep the valid ones: the first invalid
/// item is the error, unless `options.skip_bad`, where invalid items are reported (named by
/// `name`) and dropped. An error too if nothing is left.
pub fn validate_items<T: Clone + Sync>(
    items: &[T],
    options: &OpenOptions,
    load: impl Fn(usize) -> Result<Sample, DataError> + Sync,
    name: impl Fn(&T) -> String,
    source: &str,
) -> Result<(Vec<T>, OpenReport), DataError> {
    let checks = parallel_map(items.len(), options.workers, |i| load(i).map(|s| SampleStats::of(&s, options.ignore_index)));
    let mut report = OpenReport::default();
    let mut kept = Vec::new();
    for (item, check) in items.iter().zip(checks) {
        match check {
            Ok(stats) => {
                report.samples.push(stats);
                kept.push(item.clone());
            }
            Err(e) if options.skip_bad => report.skipped.push(Skipped { what: name(item), reason: e.to_string() }),
            Err(e) => return Err(e),
        }
    }
    if kept.is_empty() {
        return Err(DataError::Invalid(format!("{source}: no usable samples ({} skipped)", report.skipped.len())));
    }
    Ok((kept, report))
}

/// Open a dataset, validating every sample up front.
pub fn open(spec: &SourceSpec, options: &OpenOptions) -> Result<(Arc<dyn Dataset>, OpenReport), DataError> {
    match spec {
        SourceSpec::List { root, list, depth_scale, label_palette } => {
            let (d, r) = crate::nyud::ListDataset::open(root, list, *depth_scale, label_palette.clone(), options)?;
            Ok((Arc::new(d), r))
        }
        SourceSpec::Mtan { root } => {
            let (d, r) = crate::mtan::MtanDataset::open(root, options)?;
            Ok((Arc::new(d), r))
        }
        SourceSpec::Synthetic { count, height, width, seed } => {
            let d = crate::synthetic_source::SyntheticDataset::new(*count, *height, *width, *seed);
            let r = d.report(options.workers);
            Ok((Arc::new(d), r))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_io::{Plane, RgbImage};

    fn sample(label: Vec<u8>, depth: Vec<f32>) -> Sample {
        let n = label.len();
        Sample {
            name: "s".into(),
            rgb: RgbImage { width: n, height: 1, data: vec![0; 3 * n] },
            label: Some(Plane { width: n, height: 1, data: label }),
            depth: Some(Plane { width: n, height: 1, data: depth }),
            normal: None,
        }
    }

    #[test]
    fn a_split_without_valid_pixels_says_so() {
        let empty = OpenReport { samples: vec![SampleStats::of(&sample(vec![255, 255], vec![0.0, 0.0]), 255)], skipped: vec![] };
        assert_eq!(empty.labelled_pixels(), 0);
        assert!(!empty.has_depth_within(0.0));
        let far = OpenReport { samples: vec![SampleStats::of(&sample(vec![1, 255], vec![12.0, 0.0]), 255)], skipped: vec![] };
        assert_eq!(far.labelled_pixels(), 1);
        assert!(far.has_depth_within(0.0));
        assert!(far.has_depth_within(12.0));
        assert!(!far.has_depth_within(10.0));
    }
}
