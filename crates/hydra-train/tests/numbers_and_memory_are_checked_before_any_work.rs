//! Numbers on the command line meet the same limits as the configuration's, and settings
//! that cannot fit in memory are refused with the estimate before anything is allocated:
//! one line each, an error exit, never an allocation failure or an abort.

mod common;

use common::{hydra_env, scratch, tiny_config};

fn refused(args: &[&str], needles: &[&str]) {
    common::assert_refused(&hydra_env(args, &[]), needles);
}

#[test]
fn command_line_numbers_meet_the_config_limits() {
    let dir = scratch("cli-limits");
    let out = dir.join("scenes");
    let o = out.to_str().unwrap();
    refused(&["synth", "--out", o, "--count", "100000000000"], &["--count = 100000000000: must be an integer in [1, 10000000]"]);
    refused(&["synth", "--out", o, "--count", "0"], &["--count = 0"]);
    refused(&["synth", "--out", o, "--size", "100000x64"], &["--size 100000x64", "[32, 4096]"]);
    refused(&["synth", "--out", o, "--size", "12.5x64"], &["not a whole number"]);
    assert!(!out.exists(), "nothing written");
    refused(&["bench", "train", "--batch", "100000"], &["--batch = 100000: must be an integer in [1, 4096]"]);
    refused(&["bench", "infer", "--classes", "100000"], &["--classes = 100000: must be an integer in [2, 255]"]);
    refused(&["bench", "infer", "--repeats", "0"], &["--repeats = 0"]);
    let ckpt = common::fixtures().join("pytorch/hydranet40_s0.ckpt");
    let w = dir.join("w.bpk");
    refused(&["export", "--weights", ckpt.to_str().unwrap(), "--num-classes", "100000", "--out", w.to_str().unwrap()], &["--num-classes = 100000: must be an integer in [2, 255]"]);
    assert!(!w.exists());
}

#[test]
fn hopeless_memory_is_refused_with_the_estimate() {
    refused(&["bench", "train", "--batch", "4096", "--size", "4096x4096"], &["a training step on 4096 images of 4096x4096 needs about", "GB of memory, more than the", "lower --batch or --size"]);
    let dir = scratch("hopeless");
    let run = dir.join("run");
    let cfg = tiny_config(&dir, &run, "");
    let c = cfg.to_str().unwrap();
    let args = ["train", "--config", c, "--set", "augment.scale=[20.0, 20.0]", "--set", "augment.crop=[0, 0]", "--set", "training.batch_size=16", "--set", "data.train.size=[1024, 1024]"];
    refused(&args, &["training.batch_size = 16 of 20480×20480 images (augment.scale up to 20) needs about", "lower training.batch_size or augment.scale"]);
    assert!(!run.join("config.toml").exists(), "refused before the run was written");
}
