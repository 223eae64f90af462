//! Dataset-level metrics (definitions in the README and REFERENCE facts): segmentation from a
//! confusion matrix; depth from sums over valid pixels; the multi-task gain Δm.
//!
//! A task with no valid pixel in a split (every label the ignore value, every depth
//! unmeasured or beyond `max_depth`) has no metrics: `None` and its name in
//! [`EvalMetrics::no_valid_pixels`], never zeros that would read as a perfect score.

use hydra_model::Task;
use serde::{Deserialize, Serialize};

pub use crate::error_histogram::ErrorHistogram;

/// Confusion matrix, rows = ground truth, columns = prediction, accumulated over a split.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionMatrix {
    pub classes: usize,
    pub counts: Vec<u64>,
}

/// Segmentation metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentationMetrics {
    pub pixel_acc: f64,
    pub mean_acc: f64,
    pub miou: f64,
    /// IoU per class; `None` for classes absent from both ground truth and prediction.
    pub iou: Vec<Option<f64>>,
    pub pixels: u64,
}

impl ConfusionMatrix {
    /// An empty matrix.
    pub fn new(classes: usize) -> Self {
        Self { classes, counts: vec![0; classes * classes] }
    }

    /// Add pixels: `gt` labels (the `ignore` value and labels ≥ classes are skipped), `pred`.
    pub fn add(&mut self, gt: &[i64], pred: &[i64], ignore: i64) {
        for (&g, &p) in gt.iter().zip(pred) {
            if g == ignore || g < 0 || g as usize >= self.classes || p < 0 || p as usize >= self.classes {
                continue;
            }
            self.counts[g as usize * self.classes + p as usize] += 1;
        }
    }

    /// Merge another matrix.
    pub fn merge(&mut self, other: &ConfusionMatrix) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Pixel accuracy = trace / total; mean accuracy = mean over classes with ground truth of
    /// diag / row; IoU_c = diag / (row + col − diag); mIoU over classes present (row + col > 0).
    /// `None` when no pixel was labelled.
    pub fn metrics(&self) -> Option<SegmentationMetrics> {
        let c = self.classes;
        let at = |i: usize, j: usize| self.counts[i * c + j] as f64;
        let total: f64 = self.counts.iter().map(|&v| v as f64).sum();
        if total == 0.0 {
            return None;
        }
        let diag: f64 = (0..c).map(|i| at(i, i)).sum();
        let row = |i: usize| (0..c).map(|j| at(i, j)).sum::<f64>();
        let col = |j: usize| (0..c).map(|i| at(i, j)).sum::<f64>();
        let mut accs = Vec::new();
        let mut iou = Vec::with_capacity(c);
        for k in 0..c {
            let (r, cl, d) = (row(k), col(k), at(k, k));
            if r > 0.0 {
                accs.push(d / r);
            }
            iou.push((r + cl > 0.0).then(|| d / (r + cl - d)));
        }
        let present: Vec<f64> = iou.iter().flatten().copied().collect();
        let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
        Some(SegmentationMetrics { pixel_acc: diag / total, mean_acc: mean(&accs), miou: mean(&present), iou, pixels: total as u64 })
    }
}

/// How depth is evaluated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthEval {
    /// Ground truth above this is excluded and predictions are clamped to it (0 = no limit).
    pub max_depth: f64,
    /// Restrict to the Eigen crop (480×640 frames: rows 45..471, columns 41..601).
    pub eigen_crop: bool,
}

/// Sums over valid pixels for the depth metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DepthAccumulator {
    pub n: u64,
    abs_rel: f64,
    sq_rel: f64,
    sq: f64,
    sq_log: f64,
    log10: f64,
    delta: [u64; 3],
    /// The distribution of `|pred − gt|` over the same pixels (predictions not clamped).
    pub errors: ErrorHistogram,
}

/// Depth metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepthMetrics {
    pub abs_rel: f64,
    pub sq_rel: f64,
    pub rmse: f64,
    pub rmse_log: f64,
    pub log10: f64,
    pub delta1: f64,
    pub delta2: f64,
    pub delta3: f64,
    pub pixels: u64,
}

/// The Eigen crop of a 480×640 frame, as (row range, column range).
pub const EIGEN_CROP: ([usize; 2], [usize; 2]) = ([45, 471], [41, 601]);

impl DepthAccumulator {
    /// Add one image: `pred` and `gt` row-major `[h, w]`, metres; `gt ≤ 0` is unmeasured.
    pub fn add(&mut self, pred: &[f32], gt: &[f32], [h, w]: [usize; 2], eval: &DepthEval) {
        let (rows, cols) = if eval.eigen_crop {
            let ([r0, r1], [c0, c1]) = EIGEN_CROP;
            // Scale the crop to the image if it is not 480×640.
            ([r0 * h / 480, r1 * h / 480], [c0 * w / 640, c1 * w / 640])
        } else {
            ([0, h], [0, w])
        };
        let max = if eval.max_depth > 0.0 { eval.max_depth } else { f64::INFINITY };
        for y in rows[0]..rows[1] {
            for x in cols[0]..cols[1] {
                let g = gt[y * w + x] as f64;
                if !(g > 0.0 && g <= max) {
                    continue;
                }
                let d = pred[y * w + x] as f64;
                let dc = d.clamp(1e-3, max);
                self.n += 1;
                self.abs_rel += (d - g).abs() / g;
                self.sq_rel += (d - g).powi(2) / g;
                self.sq += (d - g).powi(2);
                self.sq_log += (dc.ln() - g.ln()).powi(2);
                self.log10 += (dc.log10() - g.log10()).abs();
                self.errors.add((d - g).abs());
                let ratio = (dc / g).max(g / dc);
                for k in 0..3 {
                    if ratio < 1.25f64.powi(k as i32 + 1) {
                        self.delta[k] += 1;
                    }
                }
            }
        }
    }

    /// Add another accumulator's sums and counts (`self` first, then `other`).
    pub fn merge(&mut self, other: &DepthAccumulator) {
        self.n += other.n;
        self.abs_rel += other.abs_rel;
        self.sq_rel += other.sq_rel;
        self.sq += other.sq;
        self.sq_log += other.sq_log;
        self.log10 += other.log10;
        for (a, b) in self.delta.iter_mut().zip(other.delta) {
            *a += b;
        }
        self.errors.merge(&other.errors);
    }

    /// The five f64 sums (|e|/g, e²/g, e², log², |log10|), whose value depends on the order
    /// of their additions.
    pub fn sums(&self) -> [f64; 5] {
        [self.abs_rel, self.sq_rel, self.sq, self.sq_log, self.log10]
    }

    /// The pixel count and the δ counts.
    pub fn counts(&self) -> [u64; 4] {
        [self.n, self.delta[0], self.delta[1], self.delta[2]]
    }

    /// An accumulator of these sums and counts (see [`DepthAccumulator::sums`] and
    /// [`DepthAccumulator::counts`]) and error histogram.
    pub fn from_parts(sums: [f64; 5], counts: [u64; 4], errors: ErrorHistogram) -> Self {
        let [abs_rel, sq_rel, sq, sq_log, log10] = sums;
        Self { n: counts[0], abs_rel, sq_rel, sq, sq_log, log10, delta: [counts[1], counts[2], counts[3]], errors }
    }

    /// The metrics; `None` when no pixel was valid.
    pub fn metrics(&self) -> Option<DepthMetrics> {
        if self.n == 0 {
            return None;
        }
        let n = self.n as f64;
        Some(DepthMetrics {
            abs_rel: self.abs_rel / n,
            sq_rel: self.sq_rel / n,
            rmse: (self.sq / n).sqrt(),
            rmse_log: (self.sq_log / n).sqrt(),
            log10: self.log10 / n,
            delta1: self.delta[0] as f64 / n,
            delta2: self.delta[1] as f64 / n,
            delta3: self.delta[2] as f64 / n,
            pixels: self.n,
        })
    }
}

/// The metrics of one evaluation. A task is `None` when the network lacks it or when the
/// split has no valid pixel for it; the latter are listed in `no_valid_pixels`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    pub segmentation: Option<SegmentationMetrics>,
    pub depth: Option<DepthMetrics>,
    /// Mean validation loss (weighted total); `None` when no pixel of any task counted.
    pub loss: Option<f64>,
    /// Keys (`segm`, `depth`) of the evaluated tasks that had no valid pixel: no metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_valid_pixels: Vec<String>,
    /// What plots show beyond the figures; not part of the metrics' JSON.
    #[serde(skip)]
    pub details: EvalDetails,
}

/// The accumulators behind an evaluation's figures, for plots and the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalDetails {
    /// Rows = ground truth, columns = prediction (when segmentation was evaluated).
    pub confusion: Option<ConfusionMatrix>,
    /// Absolute depth errors (when depth was evaluated).
    pub depth_errors: Option<ErrorHistogram>,
}

impl EvalMetrics {
    /// Whether `task` was evaluated but had no valid pixel (so has no metrics).
    pub fn has_no_valid_pixels(&self, task: Task) -> bool {
        self.no_valid_pixels.iter().any(|k| k == task.key())
    }
}

/// What to print for a task without valid pixels, e.g. `depth: no valid pixels`.
pub fn no_valid_pixels_note(task: Task) -> String {
    format!("{}: no valid pixels", task.key())
}

/// Multi-task gain Δm (Maninis et al. 2019): mean over the metrics of
/// `(−1)^l (M_mt − M_st) / M_st`, l = 1 where lower is better. Segmentation uses mIoU and
/// pixel accuracy, depth uses abs rel and RMSE; only metrics present in both are used.
pub fn delta_m(multi: &EvalMetrics, baselines: &[EvalMetrics]) -> Option<f64> {
    let mut terms = Vec::new();
    for b in baselines {
        if let (Some(m), Some(s)) = (&multi.segmentation, &b.segmentation) {
            for (mt, st) in [(m.miou, s.miou), (m.pixel_acc, s.pixel_acc)] {
                if st > 0.0 {
                    terms.push((mt - st) / st);
                }
            }
        }
        if let (Some(m), Some(s)) = (&multi.depth, &b.depth) {
            for (mt, st) in [(m.abs_rel, s.abs_rel), (m.rmse, s.rmse)] {
                if st > 0.0 {
                    terms.push(-(mt - st) / st);
                }
            }
        }
    }
    (!terms.is_empty()).then(|| terms.iter().sum::<f64>() / terms.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmentation_metrics_by_hand() {
        // gt:   0 0 1 1 2 255
        // pred: 0 1 1 1 0 2
        let mut cm = ConfusionMatrix::new(4);
        cm.add(&[0, 0, 1, 1, 2, 255], &[0, 1, 1, 1, 0, 2], 255);
        let m = cm.metrics().expect("labelled pixels");
        assert_eq!(m.pixels, 5);
        assert!((m.pixel_acc - 3.0 / 5.0).abs() < 1e-12);
        // per-class acc: c0 1/2, c1 2/2, c2 0/1 → mean 0.5 (class 3 has no ground truth)
        assert!((m.mean_acc - 0.5).abs() < 1e-12);
        // IoU: c0 = 1 / (2 + 2 − 1) = 1/3; c1 = 2 / (2 + 3 − 2) = 2/3; c2 = 0 / (1 + 0) = 0; c3 absent
        assert_eq!(m.iou[3], None);
        assert!((m.iou[0].unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.iou[1].unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.iou[2], Some(0.0));
        assert!((m.miou - (1.0 / 3.0 + 2.0 / 3.0 + 0.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn depth_metrics_by_hand() {
        let mut acc = DepthAccumulator::default();
        // gt 2, 4, 0 (invalid); pred 2.5, 3
        let eval = DepthEval { max_depth: 0.0, eigen_crop: false };
        acc.add(&[2.5, 3.0, 7.0], &[2.0, 4.0, 0.0], [1, 3], &eval);
        let m = acc.metrics().expect("valid pixels");
        assert_eq!(m.pixels, 2);
        assert!((m.abs_rel - (0.5 / 2.0 + 1.0 / 4.0) / 2.0).abs() < 1e-12);
        assert!((m.sq_rel - (0.25 / 2.0 + 1.0 / 4.0) / 2.0).abs() < 1e-12);
        assert!((m.rmse - ((0.25 + 1.0) / 2.0f64).sqrt()).abs() < 1e-12);
        let l = |a: f64, b: f64| (a.ln() - b.ln()).powi(2);
        assert!((m.rmse_log - ((l(2.5, 2.0) + l(3.0, 4.0)) / 2.0).sqrt()).abs() < 1e-12);
        assert!((m.log10 - ((2.5f64.log10() - 2.0f64.log10()).abs() + (3.0f64.log10() - 4.0f64.log10()).abs()) / 2.0).abs() < 1e-12);
        // ratios 1.25 (not < 1.25) and 4/3: δ1 = 0, δ2 = 2/2 (both < 1.5625), δ3 = 1.
        assert_eq!((m.delta1, m.delta2, m.delta3), (0.0, 1.0, 1.0));
    }

    #[test]
    fn max_depth_and_eigen_crop_restrict_pixels() {
        let mut acc = DepthAccumulator::default();
        acc.add(&[1.0, 1.0], &[1.0, 20.0], [1, 2], &DepthEval { max_depth: 10.0, eigen_crop: false });
        assert_eq!(acc.n, 1);
        let mut acc = DepthAccumulator::default();
        let gt = vec![1.0f32; 480 * 640];
        acc.add(&gt, &gt, [480, 640], &DepthEval { max_depth: 0.0, eigen_crop: true });
        assert_eq!(acc.n, (471 - 45) * (601 - 41));
    }

    #[test]
    fn no_valid_pixels_gives_no_metrics_not_zeros() {
        let mut cm = ConfusionMatrix::new(3);
        cm.add(&[255, 255, 7], &[0, 1, 2], 255);
        assert_eq!(cm.metrics(), None);
        let mut acc = DepthAccumulator::default();
        acc.add(&[1.0, 2.0], &[0.0, 20.0], [1, 2], &DepthEval { max_depth: 10.0, eigen_crop: false });
        assert_eq!(acc.metrics(), None);
    }

    #[test]
    fn a_baseline_file_without_the_field_still_reads() {
        let m: EvalMetrics = serde_json::from_str(r#"{"segmentation": null, "depth": null, "loss": 0.5}"#).unwrap();
        assert!(m.no_valid_pixels.is_empty());
        let back = serde_json::to_value(EvalMetrics { no_valid_pixels: vec!["depth".into()], ..Default::default() }).unwrap();
        assert_eq!(back["no_valid_pixels"], serde_json::json!(["depth"]));
    }

    #[test]
    fn delta_m_signs() {
        let seg = |miou, acc| Some(SegmentationMetrics { pixel_acc: acc, mean_acc: 0.0, miou, iou: vec![], pixels: 1 });
        let dep = |abs_rel, rmse| Some(DepthMetrics { abs_rel, sq_rel: 0.0, rmse, rmse_log: 0.0, log10: 0.0, delta1: 0.0, delta2: 0.0, delta3: 0.0, pixels: 1 });
        let multi = EvalMetrics { segmentation: seg(0.44, 0.8), depth: dep(0.18, 0.5), ..Default::default() };
        let st_seg = EvalMetrics { segmentation: seg(0.40, 0.8), ..Default::default() };
        let st_dep = EvalMetrics { depth: dep(0.20, 0.5), ..Default::default() };
        // (+0.1 + 0 + 0.1 + 0) / 4
        assert!((delta_m(&multi, &[st_seg, st_dep]).unwrap() - 0.05).abs() < 1e-12);
    }

    /// The seeded generator of the tests below, with an inclusive integer range.
    struct Stream(hydra_core::rng::SplitMix64);
    impl Stream {
        fn new(seed: u64) -> Self {
            Self(hydra_core::rng::SplitMix64::new(seed))
        }
        fn int(&mut self, lo: i64, hi: i64) -> i64 {
            lo + self.0.below((hi - lo + 1) as u64) as i64
        }
        fn unit(&mut self) -> f64 {
            self.0.uniform()
        }
    }

    #[test]
    fn segmentation_metrics_follow_their_definitions_on_seeded_pixels() {
        // Labels outside [0, C) other than the ignore value, and predictions outside [0, C),
        // count nowhere; every metric recomputed from the pixel list by its definition.
        let (c, ignore) = (5usize, 255i64);
        let mut s = Stream::new(7);
        let gt: Vec<i64> = (0..4000).map(|_| if s.int(0, 9) == 0 { ignore } else { s.int(-2, c as i64 + 1) }).collect();
        let pred: Vec<i64> = (0..4000).map(|_| s.int(-1, c as i64)).collect();
        let valid: Vec<(usize, usize)> = gt
            .iter()
            .zip(&pred)
            .filter(|&(&g, &p)| g != ignore && (0..c as i64).contains(&g) && (0..c as i64).contains(&p))
            .map(|(&g, &p)| (g as usize, p as usize))
            .collect();
        assert!(valid.len() > 1000 && valid.len() < 3000, "the stream mixes valid and skipped pixels: {}", valid.len());
        let count = |f: &dyn Fn(usize, usize) -> bool| valid.iter().filter(|&&(g, p)| f(g, p)).count() as f64;
        let pixel_acc = count(&|g, p| g == p) / valid.len() as f64;
        let accs: Vec<f64> = (0..c).filter(|&k| count(&|g, _| g == k) > 0.0).map(|k| count(&|g, p| g == k && p == k) / count(&|g, _| g == k)).collect();
        let iou: Vec<Option<f64>> = (0..c)
            .map(|k| {
                let union = count(&|g, p| g == k || p == k);
                (union > 0.0).then(|| count(&|g, p| g == k && p == k) / union)
            })
            .collect();
        let present: Vec<f64> = iou.iter().flatten().copied().collect();

        // Whole, and as two halves merged (sharded validation), give the same matrix.
        let mut whole = ConfusionMatrix::new(c);
        whole.add(&gt, &pred, ignore);
        let (mut a, mut b) = (ConfusionMatrix::new(c), ConfusionMatrix::new(c));
        a.add(&gt[..1500], &pred[..1500], ignore);
        b.add(&gt[1500..], &pred[1500..], ignore);
        assert_ne!(a, whole);
        a.merge(&b);
        assert_eq!(a, whole, "merging two shards equals one pass");
        for k in 0..c {
            for j in 0..c {
                assert_eq!(whole.counts[k * c + j] as f64, count(&|g, p| g == k && p == j), "cell ({k}, {j})");
            }
        }
        let m = whole.metrics().unwrap();
        assert_eq!(m.pixels, valid.len() as u64);
        assert!((m.pixel_acc - pixel_acc).abs() < 1e-12);
        assert!((m.mean_acc - accs.iter().sum::<f64>() / accs.len() as f64).abs() < 1e-12);
        for (got, want) in m.iou.iter().zip(&iou) {
            assert!((got.unwrap() - want.unwrap()).abs() < 1e-12);
        }
        assert!((m.miou - present.iter().sum::<f64>() / present.len() as f64).abs() < 1e-12);
    }

    #[test]
    fn an_ignore_value_inside_the_class_range_is_skipped() {
        // Some datasets mark unlabelled pixels with a class index (e.g. 0): those pixels count
        // nowhere, whatever is predicted there.
        let mut cm = ConfusionMatrix::new(3);
        cm.add(&[0, 0, 1, 2, 1], &[1, 2, 1, 2, 0], 0);
        assert_eq!(cm.counts, vec![0, 0, 0, 1, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn a_class_seen_only_in_predictions_counts_with_iou_zero() {
        // gt never 2, pred once 2: IoU_2 = 0 / 1 is in the mean; mean accuracy skips class 2
        // (no ground truth); class 3 absent from both is in neither.
        let mut cm = ConfusionMatrix::new(4);
        cm.add(&[0, 1, 1], &[0, 1, 2], 255);
        let m = cm.metrics().unwrap();
        assert_eq!(m.iou, vec![Some(1.0), Some(0.5), Some(0.0), None]);
        assert!((m.miou - 0.5).abs() < 1e-12);
        assert!((m.mean_acc - 0.75).abs() < 1e-12, "(1 + 1/2) / 2");
        assert!((m.pixel_acc - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn depth_metrics_follow_their_definitions_on_seeded_pixels() {
        // 240×320 with the Eigen crop: rows ⌊45/2⌋..⌊471/2⌋ = 22..235, columns 20..300; ground
        // truth 0 (unmeasured) or up to 12 m with max_depth 10 (beyond: excluded); predictions
        // from −0.5 to 14 m: raw in abs rel, sq rel and RMSE, clamped to [1e-3, 10] in the
        // log metrics and the δ ratios.
        let (h, w, max) = (240usize, 320usize, 10.0f64);
        let mut s = Stream::new(11);
        let gt: Vec<f32> = (0..h * w).map(|_| if s.int(0, 7) == 0 { 0.0 } else { (0.2 + 11.8 * s.unit()) as f32 }).collect();
        let pred: Vec<f32> = gt.iter().map(|&g| if s.int(0, 20) == 0 { (-0.5 + 14.5 * s.unit()) as f32 } else { (g as f64 * (0.6 + 0.8 * s.unit())) as f32 }).collect();
        let mut acc = DepthAccumulator::default();
        acc.add(&pred, &gt, [h, w], &DepthEval { max_depth: max, eigen_crop: true });
        let m = acc.metrics().unwrap();
        let (mut n, mut abs_rel, mut sq_rel, mut sq, mut sq_log, mut log10, mut delta) = (0u64, 0.0, 0.0, 0.0, 0.0, 0.0, [0u64; 3]);
        let mut errors = ErrorHistogram::default();
        for y in 22..235 {
            for x in 20..300 {
                let (g, d) = (gt[y * w + x] as f64, pred[y * w + x] as f64);
                if g <= 0.0 || g > max {
                    continue;
                }
                let dc = d.max(1e-3).min(max);
                n += 1;
                abs_rel += (d - g).abs() / g;
                sq_rel += (d - g) * (d - g) / g;
                sq += (d - g) * (d - g);
                sq_log += (dc.ln() - g.ln()) * (dc.ln() - g.ln());
                log10 += (dc.log10() - g.log10()).abs();
                errors.add(if d > g { d - g } else { g - d });
                let r = if dc > g { dc / g } else { g / dc };
                for (k, t) in [1.25, 1.5625, 1.953125].into_iter().enumerate() {
                    delta[k] += (r < t) as u64;
                }
            }
        }
        let nf = n as f64;
        assert_eq!(m.pixels, n);
        assert!(n > 30_000 && delta[0] < n && delta[0] > 0, "a mix of pixels: {n}, δ1 count {}", delta[0]);
        for (got, want) in [(m.abs_rel, abs_rel / nf), (m.sq_rel, sq_rel / nf), (m.rmse, (sq / nf).sqrt()), (m.rmse_log, (sq_log / nf).sqrt()), (m.log10, log10 / nf)] {
            assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "{got} vs {want}");
        }
        assert_eq!([m.delta1, m.delta2, m.delta3], delta.map(|d| d as f64 / nf));
        assert_eq!(acc.errors, errors, "the error histogram holds |pred − gt| of the same pixels");
    }

    #[test]
    fn delta_m_averages_every_term_of_every_baseline() {
        let seg = |miou, acc| Some(SegmentationMetrics { pixel_acc: acc, mean_acc: 0.0, miou, iou: vec![], pixels: 1 });
        let dep = |abs_rel, rmse| Some(DepthMetrics { abs_rel, sq_rel: 0.0, rmse, rmse_log: 0.0, log10: 0.0, delta1: 0.0, delta2: 0.0, delta3: 0.0, pixels: 1 });
        let multi = EvalMetrics { segmentation: seg(0.5, 0.6), depth: dep(0.3, 0.9), ..Default::default() };
        // Terms: mIoU (0.5 − 0.4) / 0.4 = 0.25, accuracy (0.6 − 0.8) / 0.8 = −0.25;
        // abs rel −(0.3 − 0.2) / 0.2 = −0.5, RMSE −(0.9 − 1.0) / 1.0 = 0.1; a baseline metric
        // of 0 gives no term (its RMSE here), a task the network lacks neither.
        let st = [
            EvalMetrics { segmentation: seg(0.4, 0.8), ..Default::default() },
            EvalMetrics { depth: dep(0.2, 1.0), ..Default::default() },
            EvalMetrics { depth: dep(0.25, 0.0), ..Default::default() },
            // A segmentation baseline with mIoU 0 (and accuracy 0): no terms either.
            EvalMetrics { segmentation: seg(0.0, 0.0), ..Default::default() },
        ];
        let want = (0.25 - 0.25 - 0.5 + 0.1 - (0.3 - 0.25) / 0.25) / 5.0;
        assert!((delta_m(&multi, &st).unwrap() - want).abs() < 1e-12);
        let seg_only = EvalMetrics { segmentation: seg(0.5, 0.6), ..Default::default() };
        assert!((delta_m(&seg_only, &st).unwrap() - 0.0).abs() < 1e-12, "(0.25 − 0.25) / 2");
        assert_eq!(delta_m(&EvalMetrics::default(), &st), None);
    }
}
