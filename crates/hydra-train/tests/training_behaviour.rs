//! `hydra train` and `hydra eval` as a user meets them: learning, early stopping, NaN
//! handling, run folders, asymmetric annotations.

mod common;

use burn::prelude::*;
use common::{fixtures, hydra_env, scratch, text, tiny_config};
use hydra_data::batch::collate;
use hydra_data::image_io::{Plane, RgbImage};
use hydra_data::Sample;
use hydra_model::{HydraNetConfig, Task};
use hydra_train::config::Config;
use hydra_train::loss::DepthLoss;
use hydra_train::loss::task_losses;
use hydra_train::train::{train, Resume, Silent, TrainOptions};

#[test]
fn training_visibly_learns_on_a_small_set() {
    let dir = scratch("learns");
    let cfg = tiny_config(
        &dir,
        &dir.join("run"),
        "[optimizer]\nkind = \"sgd\"\nencoder_lr = 1e-2\ndecoder_lr = 1e-2\ngrad_clip_norm = 5.0\n[augment]\nscale = [1.0, 1.0]\ncrop = [0, 0]\nflip = false\njitter = 0.0\n",
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("count = 16", "count = 8")
        .replace("epochs = 3", "epochs = 12")
        .replace("[augment]\nscale = [0.8, 1.25]\ncrop = [48, 48]\njitter = 0.2\n", "")
        .replace("num_classes = 6\n", "num_classes = 6\ninit = \"scratch\"\n");
    let config = Config::from_toml(&text, &[]).unwrap();
    let s = train(TrainOptions { config, resume: Resume::No, stop_after_epochs: None, allow_config_change: false }, &mut Silent).unwrap();
    assert_eq!(s.epochs_done, 12);
    let csv = std::fs::read_to_string(dir.join("run/metrics.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "train.loss").unwrap();
    let losses: Vec<f64> = lines.map(|l| l.split(',').nth(col).unwrap().parse().unwrap()).collect();
    eprintln!("train loss by epoch: {losses:?}");
    assert!(losses[11] < 0.6 * losses[0], "{losses:?}");
    for f in ["config.toml", "metrics.jsonl", "metrics.csv", "best.bpk", "best.json", "final.bpk", "plots/loss.png", "plots/val_segmentation.svg", "plots/confusion.png", "panels/epoch_0012.png", "report.html", "run.json"] {
        assert!(dir.join("run").join(f).exists(), "{f} missing");
    }
}

#[test]
fn non_finite_loss_stops_naming_epoch_and_iteration_and_keeps_the_last_checkpoint() {
    let dir = scratch("nan");
    let run = dir.join("run");
    let cfg = tiny_config(&dir, &run, "");
    let o = hydra_env(&["train", "--config", cfg.to_str().unwrap()], &[("HYDRA_FAULT_NAN_AT", "6")]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("non-finite loss at epoch 2, iteration 6"), "{err}");
    assert!(err.contains("epoch-00001.bpk"), "{err}");
    let mut names: Vec<String> = std::fs::read_dir(run.join("checkpoints")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["epoch-00001.bpk", "epoch-00001.ok"]);
    assert!(!run.join("final.bpk").exists());
    // The last good checkpoint resumes and finishes.
    let o = hydra_env(&["train", "--config", cfg.to_str().unwrap(), "--resume"], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
}

#[test]
fn early_stopping_follows_the_monitor_and_keeps_the_best() {
    let dir = scratch("early");
    let run = dir.join("run");
    // Learning rate 0: validation metrics never change, so patience runs out.
    let cfg = tiny_config(
        &dir,
        &run,
        "[optimizer]\nencoder_lr = 0.0\ndecoder_lr = 0.0\n[early_stopping]\nenabled = true\nmonitor = \"rmse\"\npatience = 2\n[checkpoint]\nkeep_last = 1\n",
    );
    let t = std::fs::read_to_string(&cfg).unwrap().replace("epochs = 3", "epochs = 10");
    std::fs::write(&cfg, t).unwrap();
    let o = hydra_env(&["train", "--config", cfg.to_str().unwrap()], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("early stopping: no improvement of val rmse for 2 validations (best at epoch 1)"), "{out}");
    assert!(out.contains("done: 3 epochs"), "{out}");
    let best: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("best.json")).unwrap()).unwrap();
    assert_eq!(best["epoch"], 1);
    let mut names: Vec<String> = std::fs::read_dir(run.join("checkpoints")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["epoch-00001.bpk", "epoch-00001.ok", "epoch-00003.bpk", "epoch-00003.ok"], "the best and the last one");
}

#[test]
fn an_existing_run_is_not_overwritten() {
    let dir = scratch("exists");
    let run = dir.join("run");
    let cfg = tiny_config(&dir, &run, "");
    let t = std::fs::read_to_string(&cfg).unwrap().replace("epochs = 3", "epochs = 1");
    std::fs::write(&cfg, t).unwrap();
    assert!(hydra_env(&["train", "--config", cfg.to_str().unwrap()], &[]).status.success());
    let before = std::fs::read(run.join("final.bpk")).unwrap();
    let o = hydra_env(&["train", "--config", cfg.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("already holds a run"), "{}", text(&o).1);
    assert_eq!(std::fs::read(run.join("final.bpk")).unwrap(), before);
}

fn sample(seed: u8, labelled: bool, with_depth: bool) -> Sample {
    let (h, w) = (32, 32);
    let rgb: Vec<u8> = (0..h * w * 3).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed)).collect();
    Sample {
        name: format!("s{seed}"),
        rgb: RgbImage { width: w, height: h, data: rgb },
        label: labelled.then(|| Plane { width: w, height: h, data: (0..h * w).map(|i| ((i / 7 + seed as usize) % 5) as u8).collect() }),
        depth: with_depth.then(|| Plane { width: w, height: h, data: (0..h * w).map(|i| 1.0 + (i % 13) as f32 * 0.2).collect() }),
        normal: None,
    }
}

#[test]
fn samples_without_an_annotation_contribute_nothing_to_that_task() {
    let device = Device::flex();
    let net = HydraNetConfig::new(5).init(&device);
    let tasks = [Task::Segmentation, Task::Depth];
    let losses = |samples: Vec<Sample>| -> Vec<f32> {
        let batch = collate(samples.into_iter().enumerate().map(|(i, s)| (i, s, [32, 32])).collect(), 255);
        task_losses(&net, batch.to_device(&device), &tasks, 255, DepthLoss::L1).into_iter().map(|l| l.into_scalar::<f32>()).collect()
    };
    // Sample 2 has depth but no labels; sample 3 has labels but no depth.
    let alone_a = losses(vec![sample(1, true, true)]);
    let mixed = losses(vec![sample(1, true, false), sample(2, false, true)]);
    let alone_b = losses(vec![sample(2, true, true)]);
    assert!((mixed[0] - alone_a[0]).abs() < 1e-5, "segm from the labelled sample only: {mixed:?} vs {alone_a:?}");
    assert!((mixed[1] - alone_b[1]).abs() < 1e-5, "depth from the sample with depth only: {mixed:?} vs {alone_b:?}");
    // A batch with no labels at all: zero, not NaN.
    let none = losses(vec![sample(3, false, false)]);
    assert_eq!(none, vec![0.0, 0.0]);
}

#[test]
fn eval_reports_metrics_by_class_name_for_an_official_checkpoint() {
    let dir = scratch("eval");
    std::fs::write(dir.join("val.txt"), "000464.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n").unwrap();
    let cfg = dir.join("nyud.toml");
    let root = fixtures().join("samples/nyud");
    std::fs::write(
        &cfg,
        format!(
            "[model]\nnum_classes = 40\n[data]\npalette = \"nyud\"\n[data.train]\nkind = \"nyud\"\nroot = \"{0}\"\nlist = \"{1}\"\n[data.val]\nkind = \"nyud\"\nroot = \"{0}\"\nlist = \"{1}\"\n",
            root.display(),
            dir.join("val.txt").display()
        ),
    )
    .unwrap();
    let json = dir.join("m.json");
    let ckpt = fixtures().join("pytorch/hydranet40_s0.ckpt");
    let o = hydra_env(&["eval", "--config", cfg.to_str().unwrap(), "--weights", ckpt.to_str().unwrap(), "--json", json.to_str().unwrap()], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("mIoU") && out.contains("RMSE") && out.contains("wall") && out.contains("otherprop"), "{out}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // Every labelled pixel of the frame is counted (31011 of 307200 are ignore).
    assert_eq!(m["metrics"]["segmentation"]["pixels"], 307_200 - 31_011);
    assert_eq!(m["metrics"]["depth"]["pixels"], 307_200 - 113_674);
    assert!(m["iou_by_class"]["wall"].is_number());

    // Cross-check with `hydra predict`: its label image is the same argmax, so the pixel
    // accuracy recomputed from it must equal eval's.
    let pred_dir = dir.join("pred");
    assert!(hydra_env(&["predict", "--weights", ckpt.to_str().unwrap(), "--out", pred_dir.to_str().unwrap(), root.join("000464.png").to_str().unwrap()], &[]).status.success());
    let colours = hydra_data::image_io::read_rgb(&pred_dir.join("000464_segm.png")).unwrap();
    let palette = hydra_data::palette::Palette::nyud40();
    let (pred, _) = palette.decode_colors(&colours.data, 255);
    let gt = hydra_data::image_io::read_label(&root.join("segm_gt_000464.png")).unwrap();
    let valid = gt.data.iter().filter(|&&g| g != 255).count();
    let right = gt.data.iter().zip(&pred).filter(|(g, p)| **g != 255 && g == p).count();
    let acc = right as f64 / valid as f64;
    assert!((m["metrics"]["segmentation"]["pixel_acc"].as_f64().unwrap() - acc).abs() < 1e-12, "{acc}");
}

#[test]
fn single_task_runs_feed_the_multi_task_gain() {
    let dir = scratch("delta-m");
    let one = |name: &str, tasks: &str| {
        let run = dir.join(name);
        let cfg = tiny_config(&dir, &run, "");
        let t = std::fs::read_to_string(&cfg).unwrap().replace("num_classes = 6\n", &format!("num_classes = 6\ntasks = {tasks}\n")).replace("epochs = 3", "epochs = 1");
        let p = dir.join(format!("{name}.toml"));
        std::fs::write(&p, t).unwrap();
        let o = hydra_env(&["train", "--config", p.to_str().unwrap()], &[]);
        assert!(o.status.success(), "{}", text(&o).1);
        (p, run)
    };
    let (_, segm) = one("segm", "[\"segm\"]");
    let (_, depth) = one("depth", "[\"depth\"]");
    let (multi_cfg, multi) = one("multi", "[\"segm\", \"depth\"]");
    // The single-task runs' best.json are the baselines of the multi-task evaluation.
    let cfg_text = std::fs::read_to_string(&multi_cfg).unwrap()
        + &format!("[eval]\nbaselines = [\"{}\", \"{}\"]\n", segm.join("best.json").display(), depth.join("best.json").display());
    std::fs::write(&multi_cfg, cfg_text).unwrap();
    let json = dir.join("m.json");
    let o = hydra_env(&["eval", "--config", multi_cfg.to_str().unwrap(), "--weights", multi.join("best.bpk").to_str().unwrap(), "--json", json.to_str().unwrap()], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("multi-task gain Δm"), "{out}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // Recompute Δm from the three metric sets: mean of the four relative differences.
    let b = |p: &std::path::Path| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(p.join("best.json")).unwrap()).unwrap() };
    let (s, d) = (b(&segm)["metrics"].clone(), b(&depth)["metrics"].clone());
    let mm = &m["metrics"];
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    let terms = [
        (f(&mm["segmentation"]["miou"]) - f(&s["segmentation"]["miou"])) / f(&s["segmentation"]["miou"]),
        (f(&mm["segmentation"]["pixel_acc"]) - f(&s["segmentation"]["pixel_acc"])) / f(&s["segmentation"]["pixel_acc"]),
        -(f(&mm["depth"]["abs_rel"]) - f(&d["depth"]["abs_rel"])) / f(&d["depth"]["abs_rel"]),
        -(f(&mm["depth"]["rmse"]) - f(&d["depth"]["rmse"])) / f(&d["depth"]["rmse"]),
    ];
    let expected = terms.iter().sum::<f64>() / 4.0;
    assert!((f(&m["delta_m"]) - expected).abs() < 1e-12, "{} vs {expected}", m["delta_m"]);
}
