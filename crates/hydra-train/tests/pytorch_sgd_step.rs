//! One SGD step from the same weights and batch as PyTorch: same loss, same updated weights
//! and BatchNorm statistics (fixture made by scripts/make_step_fixture.py: the authors'
//! recipe, momentum 0.9, weight decay 1e-5, lr 1e-3 encoder / 1e-2 decoder, 0.5 CE + 0.5 L1).
//!
//! Tolerances are PyTorch's own float32 spread on this step, measured by running the same
//! step with its native CPU kernels instead of oneDNN (scripts/parity_budget.py --step):
//! loss 1.3e-6 relative; per-tensor ‖Δ‖ / ‖update‖ median 0.91 %, worst 3.1 %; BatchNorm
//! statistics 8e-7. The
//! updates differ at all because ReLU6 saturation and max-pool argmax in the decoder (whose
//! CRP sums reach ~100) turn float rounding into discrete routing changes of the gradient.
//! hydra measures 1.4e-6 (worst of the three losses 3.3e-6), median 0.45 %, worst 2.0 % and
//! 2.7e-7: closer to PyTorch's default than PyTorch's other kernels are. The bounds below are
//! PyTorch's own spread (loss: 1e-5).

mod common;

use burn::optim::GradientsParams;
use burn::prelude::*;
use common::{fixtures, scratch};
use hydra_data::batch::collate;
use hydra_data::dataset::{open, OpenOptions, SourceSpec};
use hydra_model::weights::{self, LoadScope};
use hydra_model::{HydraNetConfig, Task};
use hydra_train::loss::DepthLoss;
use hydra_train::optim::{Hyper, Optimizer, OptimizerKind};
use hydra_train::loss::task_losses;
use hydra_train::train::TrainModule;
use hydra_train::weighting::Weighting;

#[test]
fn one_sgd_step_matches_pytorch() {
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("pytorch/sgd_step1.json")).unwrap()).unwrap();
    let device = Device::flex().autodiff();
    let file = weights::read(&fixtures().join("pytorch/hydranet40_s0.ckpt")).unwrap();
    let (net, _) = file.apply(HydraNetConfig::new(40).init(&device), LoadScope::Full).unwrap();

    let dir = scratch("sgd-step");
    std::fs::write(dir.join("list.txt"), "000464.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n000433.png\tsegm_gt_000433.png\tdepth_gt_000433.png\n").unwrap();
    let spec = SourceSpec::List { root: fixtures().join("samples/nyud"), list: dir.join("list.txt"), depth_scale: 5000.0, label_palette: None };
    let (ds, _) = open(&spec, &OpenOptions::default()).unwrap();
    let host = collate((0..2).map(|i| (i, ds.get(i).unwrap(), [480, 640])).collect(), 255);

    let tasks = [Task::Segmentation, Task::Depth];
    let module = TrainModule { net, task_weights: None };
    let mut optim = Optimizer::new(OptimizerKind::Sgd { momentum: 0.9, nesterov: false });
    let losses = task_losses(&module.net, host.to_device(&device), &tasks, 255, DepthLoss::L1);
    let total = Weighting::Fixed(vec![0.5, 0.5]).combine(&losses, &[0.5, 0.5], None);
    let got = [total.clone().into_scalar::<f32>() as f64, losses[0].clone().into_scalar::<f32>() as f64, losses[1].clone().into_scalar::<f32>() as f64];
    let r = &reference["losses"][0];
    let want = [r["loss"].as_f64().unwrap(), r["segm"].as_f64().unwrap(), r["depth"].as_f64().unwrap()];
    eprintln!("loss, segm, depth: hydra {got:?} pytorch {want:?}");
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-5 * w.abs(), "loss {g} vs {w}");
    }
    let grads = GradientsParams::from_grads(total.backward(), &module);
    let hyper = |path: &str| Hyper { lr: if path.starts_with("net.encoder") { 1e-3 } else { 1e-2 }, weight_decay: 1e-5 };
    let module = optim.step(module, grads, hyper, 1.0);

    let expected = weights::read(&fixtures().join("pytorch/sgd_step1.safetensors")).unwrap().state;
    let start = file.state;
    let ours = module.net.state_dict();
    assert_eq!(ours.len(), expected.len());
    let mut update_errors = Vec::new();
    let mut worst_bn = (0.0f64, String::new());
    for (key, want) in expected.iter() {
        let got = ours.get(key).unwrap_or_else(|| panic!("{key}"));
        let (g, w) = (got.to_f32(), want.to_f32());
        if key.ends_with("num_batches_tracked") {
            let before = start.get(key).unwrap().to_f32()[0];
            assert_eq!(w, vec![before + 1.0], "{key}");
            assert_eq!(g, w, "{key}");
            continue;
        }
        if key.contains("running_") {
            let err = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) as f64;
            let scale = w.iter().map(|a| a.abs()).fold(0f32, f32::max) as f64;
            if err / scale > worst_bn.0 {
                worst_bn = (err / scale, key.to_string());
            }
            continue;
        }
        let s0 = start.get(key).unwrap().to_f32();
        let l2 = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        let diff = l2(&mut g.iter().zip(&w).map(|(a, b)| (*a - *b) as f64));
        let update = l2(&mut w.iter().zip(&s0).map(|(a, b)| (*a - *b) as f64));
        let norm = l2(&mut w.iter().map(|a| *a as f64));
        update_errors.push((diff / (update + 1e-3 * norm), key.to_string()));
    }
    update_errors.sort_by(|a, b| a.0.total_cmp(&b.0));
    let median = update_errors[update_errors.len() / 2].0;
    let worst = update_errors.last().unwrap();
    eprintln!("updated weights: median tensor {median:.2e}, worst {} {:.2e} of the update; BatchNorm statistics worst {} {:.2e}", worst.1, worst.0, worst_bn.1, worst_bn.0);
    assert!(worst.0 < 0.0313, "{} differs by {:.3} of its update", worst.1, worst.0);
    assert!(median < 0.0091, "median tensor differs by {median:.3} of its update");
    assert!(worst_bn.0 < 8e-7, "{} differs by {:.2e}", worst_bn.1, worst_bn.0);
}
