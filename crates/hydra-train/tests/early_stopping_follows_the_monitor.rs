//! Early stopping and the best weights follow the monitored metric in its own direction
//! (mIoU and δ1 up; RMSE and loss down), with `min_delta` and `patience` as PyTorch
//! Lightning's `EarlyStopping` counts them: scripted validation sequences, hand-derived
//! outcomes.

use hydra_train::checkpoint::EarlyStopState;
use hydra_train::components::monitor_value;
use hydra_train::metrics::{DepthMetrics, EvalMetrics, SegmentationMetrics};

fn seg(miou: f64) -> Option<SegmentationMetrics> {
    Some(SegmentationMetrics { pixel_acc: 0.5, mean_acc: 0.5, miou, iou: vec![Some(miou)], pixels: 100 })
}

fn dep(rmse: f64, delta1: f64) -> Option<DepthMetrics> {
    Some(DepthMetrics { abs_rel: 0.2, sq_rel: 0.1, rmse, rmse_log: 0.3, log10: 0.1, delta1, delta2: 0.9, delta3: 0.95, pixels: 100 })
}

/// Feed `metrics` one validation per epoch; the improvement flags, the best epoch, and the
/// epoch at which early stopping ends the run (if it does).
fn follow(monitor: &str, metrics: &[EvalMetrics], min_delta: f64, patience: usize) -> (Vec<bool>, Option<usize>, Option<usize>) {
    let mut es = EarlyStopState::default();
    let mut flags = Vec::new();
    for (k, m) in metrics.iter().enumerate() {
        let v = monitor_value(monitor, m).expect("a value");
        flags.push(es.observe(v, min_delta, k + 1));
        if es.exhausted(patience) {
            return (flags, es.best_epoch, Some(k + 1));
        }
    }
    (flags, es.best_epoch, None)
}

#[test]
fn miou_improves_upwards_by_more_than_min_delta() {
    let m: Vec<EvalMetrics> = [0.30, 0.35, 0.34, 0.36, 0.355, 0.35, 0.40].iter().map(|&v| EvalMetrics { segmentation: seg(v), ..Default::default() }).collect();
    // 0.30 first; 0.35 > 0.305; 0.34 no; 0.36 > 0.355; 0.355 and 0.35 no: two bad, stop at 6.
    assert_eq!(follow("miou", &m, 0.005, 2), (vec![true, true, false, true, false, false], Some(4), Some(6)));
    // 0.36 does not beat 0.35 by 0.02: best stays at epoch 2; with patience 10 nothing stops,
    // and 0.40 at epoch 7 is the new best.
    assert_eq!(follow("miou", &m, 0.02, 10), (vec![true, true, false, false, false, false, true], Some(7), None));
}

#[test]
fn rmse_and_loss_improve_downwards() {
    let m: Vec<EvalMetrics> = [1.0, 0.9, 0.95, 0.85, 0.86].iter().map(|&r| EvalMetrics { depth: dep(r, 0.5), ..Default::default() }).collect();
    assert_eq!(follow("rmse", &m, 0.0, 3), (vec![true, true, false, true, false], Some(4), None));
    let l: Vec<EvalMetrics> = [2.0, 2.5, 1.9, 1.7].iter().map(|&x| EvalMetrics { loss: Some(x), ..Default::default() }).collect();
    // 2.5 is worse; 1.9 is better but not by 0.2; 1.7 is better than 2.0 by 0.3.
    assert_eq!(follow("loss", &l, 0.2, 5), (vec![true, false, false, true], Some(4), None));
    assert_eq!(follow("loss", &l, 0.2, 2), (vec![true, false, false], Some(1), Some(3)));
}

#[test]
fn combined_is_the_mean_of_miou_and_delta1_with_fallbacks() {
    let both = EvalMetrics { segmentation: seg(0.4), depth: dep(1.0, 0.6), loss: Some(3.0), ..Default::default() };
    assert_eq!(monitor_value("combined", &both), Some(0.5));
    // Each named monitor reads its own metric, whatever else was evaluated.
    assert_eq!(monitor_value("miou", &both), Some(0.4));
    assert_eq!(monitor_value("rmse", &both), Some(-1.0));
    assert_eq!(monitor_value("loss", &both), Some(-3.0));
    let seg_only = EvalMetrics { segmentation: seg(0.4), loss: Some(3.0), ..Default::default() };
    assert_eq!(monitor_value("combined", &seg_only), Some(0.4));
    let depth_only = EvalMetrics { depth: dep(1.0, 0.6), loss: Some(3.0), ..Default::default() };
    assert_eq!(monitor_value("combined", &depth_only), Some(0.6));
    assert_eq!(monitor_value("combined", &EvalMetrics { loss: Some(3.0), ..Default::default() }), Some(-3.0));
    assert_eq!(monitor_value("rmse", &seg_only), None, "no depth, no RMSE");
    // A rising mIoU with a falling δ1 of the same size is no improvement.
    let m = vec![both.clone(), EvalMetrics { segmentation: seg(0.5), depth: dep(1.0, 0.5), ..Default::default() }];
    assert_eq!(follow("combined", &m, 0.0, 5).0, vec![true, false]);
}
