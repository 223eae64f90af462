//! A task with no valid pixel in a split (every depth unmeasured or beyond `max_depth`, every
//! label the ignore value) has no metrics and says so, instead of reporting a perfect score
//! (RMSE 0, abs rel 0) and a zero loss that early stopping would mark best; `hydra data check`
//! warns "no valid pixels" for such a split and does not call the data ok.

mod common;

use std::sync::Arc;

use burn::prelude::*;
use common::{fixtures, hydra_env, scratch, text};
use hydra_data::image_io::{encode_gray16_png, encode_gray8_png, Plane, RgbImage};
use hydra_data::loader::{Loader, LoaderSpec};
use hydra_data::{DataError, Dataset, Sample};
use hydra_model::{HydraNetConfig, Task};
use hydra_train::components::monitor_value;
use hydra_train::eval::{evaluate, EvalSpec};
use hydra_train::loss::DepthLoss;
use hydra_train::metrics::{DepthEval, EvalMetrics};

struct Samples(Vec<Sample>);

impl Dataset for Samples {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        Ok(self.0[index].clone())
    }
    fn describe(&self) -> String {
        "test samples".into()
    }
}

const H: usize = 32;
const W: usize = 32;

fn sample(seed: u8, label: impl Fn(usize) -> u8, depth: impl Fn(usize) -> f32) -> Sample {
    Sample {
        name: format!("s{seed}"),
        rgb: RgbImage { width: W, height: H, data: (0..H * W * 3).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed)).collect() },
        label: Some(Plane { width: W, height: H, data: (0..H * W).map(&label).collect() }),
        depth: Some(Plane { width: W, height: H, data: (0..H * W).map(&depth).collect() }),
        normal: None,
    }
}

fn evaluate_split(samples: Vec<Sample>, max_depth: f64) -> EvalMetrics {
    let device = Device::flex();
    let net = HydraNetConfig::new(5).with_decoder_width(32).init(&device);
    let spec = LoaderSpec { batch_size: 2, seed: 0, shuffle: false, drop_last: false, augment: None, pad_to: 1, workers: 0, ignore: 255, max_batches: 0 };
    let loader = Loader::new(Arc::new(Samples(samples)), spec);
    let eval = EvalSpec { num_classes: 5, ignore: 255, depth: DepthEval { max_depth, eigen_crop: false }, depth_loss: DepthLoss::L1 };
    evaluate(&net, &device, &loader, &eval, |_, _| {}).unwrap()
}

fn labels(i: usize) -> u8 {
    (i / 7 % 5) as u8
}

fn metres(i: usize) -> f32 {
    1.0 + (i % 13) as f32 * 0.2
}

#[test]
fn a_split_with_valid_pixels_has_metrics() {
    // The control: the same network and samples with valid annotations give real metrics.
    let m = evaluate_split(vec![sample(1, labels, metres), sample(2, labels, metres)], 0.0);
    assert_eq!(m.segmentation.as_ref().map(|s| s.pixels), Some(2 * (H * W) as u64));
    let d = m.depth.as_ref().expect("depth metrics");
    assert_eq!(d.pixels, 2 * (H * W) as u64);
    assert!(d.rmse > 0.0 && d.abs_rel > 0.0, "an untrained network is not perfect: {d:?}");
    assert!(m.loss.is_some_and(|l| l > 0.0));
    assert!(m.no_valid_pixels.is_empty());
}

#[test]
fn depth_that_is_all_unmeasured_has_no_metrics_not_zeros() {
    let m = evaluate_split(vec![sample(1, labels, |_| 0.0), sample(2, labels, |_| 0.0)], 0.0);
    assert_eq!(m.depth, None, "RMSE 0 would read as a perfect depth");
    assert_eq!(m.no_valid_pixels, vec!["depth".to_string()]);
    assert!(m.has_no_valid_pixels(Task::Depth) && !m.has_no_valid_pixels(Task::Segmentation));
    assert!(m.segmentation.is_some(), "segmentation still has its metrics");
    // What `hydra eval --json` and `best.json` hold for it.
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["depth"], serde_json::Value::Null);
    assert_eq!(json["no_valid_pixels"], serde_json::json!(["depth"]));
}

#[test]
fn depth_that_is_all_beyond_max_depth_has_no_metrics() {
    let m = evaluate_split(vec![sample(1, labels, |_| 20.0)], 10.0);
    assert_eq!(m.depth, None);
    assert_eq!(m.no_valid_pixels, vec!["depth".to_string()]);
    // With the limit lifted the same split has depth metrics.
    assert!(evaluate_split(vec![sample(1, labels, |_| 20.0)], 0.0).depth.is_some());
}

#[test]
fn a_split_with_no_valid_pixel_at_all_has_no_loss_and_nothing_to_call_best() {
    let m = evaluate_split(vec![sample(1, |_| 255, |_| 0.0), sample(2, |_| 255, |_| 0.0)], 0.0);
    assert_eq!((m.segmentation.as_ref(), m.depth.as_ref()), (None, None));
    assert_eq!(m.no_valid_pixels, vec!["segm".to_string(), "depth".to_string()]);
    assert_eq!(m.loss, None, "a zero loss over no pixels must not count as the best loss");
    for monitor in ["miou", "rmse", "loss", "combined"] {
        assert_eq!(monitor_value(monitor, &m), None, "monitor {monitor}");
    }
}

#[test]
fn data_check_warns_per_task_and_does_not_call_such_data_ok() {
    let dir = scratch("no-valid-pixels");
    std::fs::copy(fixtures().join("samples/nyud/000464.png"), dir.join("rgb.png")).unwrap();
    let (w, h) = (640, 480);
    std::fs::write(dir.join("ignored.png"), encode_gray8_png(&Plane { width: w, height: h, data: vec![255u8; w * h] }, &[])).unwrap();
    std::fs::write(dir.join("unmeasured.png"), encode_gray16_png(&Plane { width: w, height: h, data: vec![0u16; w * h] }, &[])).unwrap();
    std::fs::write(dir.join("far.png"), encode_gray16_png(&Plane { width: w, height: h, data: vec![50_000u16; w * h] }, &[])).unwrap();
    std::fs::copy(fixtures().join("samples/nyud/segm_gt_000464.png"), dir.join("labels.png")).unwrap();
    std::fs::write(dir.join("train.txt"), "rgb.png\tignored.png\tunmeasured.png\n").unwrap();
    std::fs::write(dir.join("val.txt"), "rgb.png\tlabels.png\tfar.png\n").unwrap();
    let cfg = dir.join("config.toml");
    let root = dir.display();
    std::fs::write(
        &cfg,
        format!(
            "[model]\nnum_classes = 40\n[data.train]\nkind = \"nyud\"\nroot = \"{root}\"\nlist = \"train.txt\"\n[data.val]\nkind = \"nyud\"\nroot = \"{root}\"\nlist = \"val.txt\"\n[eval]\nmax_depth = 5.0\n"
        ),
    )
    .unwrap();
    let o = hydra_env(&["data", "check", "--config", cfg.to_str().unwrap()], &[]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(!out.contains("data ok"), "{out}");
    assert!(err.contains("the data has problems"), "{err}");
    let train = &out[..out.find("val:").expect("val is reported")];
    let val = &out[out.find("val:").unwrap()..];
    assert!(train.contains("segm: no valid pixels") && train.contains("depth: no valid pixels"), "{out}");
    // 10 m everywhere is measured, but beyond eval.max_depth = 5: nothing to evaluate on val.
    assert!(val.contains("depth: no valid pixels") && val.contains("beyond eval.max_depth"), "{out}");
    assert!(!val.contains("segm: no valid pixels"), "val has labels: {out}");
}
