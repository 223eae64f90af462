//! Several devices of one machine in one process (`training.devices`): one replica per device
//! on its own thread, the gradient averaged through shared memory. Run here with two replicas
//! on burn-flex (`["cpu", "cpu"]`), against one device: the same run within the bounds of
//! `pytorch_sgd_step.rs` (`dp/mod.rs`), exact resume, validation bit-identical to one process.

mod common;
mod dp;

use common::{assert_refused, scratch};
use dp::{assert_same_bits, checkpoint, config, copy_dir, distance, hydra, initial, losses, no_checkpoint, nyud, ok, one_process, rewrite};

/// `cfg` with `training.devices = ["cpu", "cpu"]`.
fn on_two(cfg: &std::path::Path) -> std::path::PathBuf {
    rewrite(cfg, "log_interval = 1", "log_interval = 1\ndevices = [\"cpu\", \"cpu\"]")
}

#[test]
fn two_replicas_with_sync_bn_train_what_one_device_trains() {
    let dir = scratch("replicas-sync-bn");
    let data = nyud(dir.path(), 4);
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let c1 = config(dir.path(), &data, &one, 3, "");
    let c2 = on_two(&config(dir.path(), &data, &two, 3, ""));
    ok(&one_process(&c1, &[]));
    let out = ok(&one_process(&c2, &[]));
    assert!(out.contains("2 replicas on cpu, cpu in one process, global batch 4 = 2 per replica") && out.contains("SyncBatchNorm"), "{out}");
    let (l1, l2) = (losses(&one), losses(&two));
    assert_eq!(l2.len(), 6, "6 iterations logged once");
    let start = initial(&c1);
    for epoch in [1, 3] {
        let d = distance(&start, &checkpoint(&one, epoch).model, &checkpoint(&two, epoch).model, &l1[..2 * epoch], &l2[..2 * epoch]);
        d.check(&format!("2 replicas × 2 with SyncBatchNorm vs 1 device × 4, {} SGD steps", 2 * epoch), 2 * epoch);
    }
}

#[test]
fn a_two_replica_checkpoint_resumes_exactly_and_validation_equals_one_process() {
    let dir = scratch("replicas-resume");
    let data = nyud(dir.path(), 4);
    let list: String = std::fs::read_to_string(data.join("list.txt")).unwrap().lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(data.join("val.txt"), list).unwrap();
    let val = format!("[data.val]\nkind = \"nyud\"\nroot = \"{}\"\nlist = \"val.txt\"\n", data.display());
    let (whole, cut, moved) = (dir.path().join("whole"), dir.path().join("cut"), dir.path().join("moved"));
    let prepare = |run: &std::path::Path| on_two(&rewrite(&config(dir.path(), &data, run, 2, &val), "val_interval = 0", "val_interval = 1"));
    let (cw, cc) = (prepare(&whole), prepare(&cut));
    ok(&one_process(&cw, &[]));
    ok(&one_process(&cc, &["--stop-after-epochs", "1"]));
    copy_dir(&cut, &moved);
    ok(&one_process(&cc, &["--resume"]));
    let (w, c) = (checkpoint(&whole, 2).model, checkpoint(&cut, 2).model);
    assert_same_bits(&w, &c, "resumed on 2 replicas, bit for bit");
    // The same checkpoint continued on one device (no `devices`): the same run within bounds.
    let cm = config(dir.path(), &data, &moved, 2, &val);
    let cm = rewrite(&cm, "val_interval = 0", "val_interval = 1");
    ok(&one_process(&cm, &["--resume"]));
    let d = distance(&checkpoint(&whole, 1).model, &w, &checkpoint(&moved, 2).model, &losses(&whole)[2..], &losses(&moved)[2..]);
    d.check("epoch 2 on 1 device after epoch 1 on 2 replicas, vs both on 2 replicas", 2);
    // Validation over 2 replicas (blocks of 1 and 2 frames) equals `hydra eval` of the weights.
    let json = dir.path().join("eval.json");
    let o = std::process::Command::new(hydra())
        .args(["eval", "--config", cw.to_str().unwrap(), "--weights", whole.join("checkpoints/epoch-00002.bpk").to_str().unwrap(), "--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    ok(&o);
    let one: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let record: serde_json::Value = std::fs::read_to_string(whole.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "epoch")
        .nth(1)
        .unwrap();
    assert!(one["metrics"]["depth"]["rmse"].as_f64().unwrap() > 0.0);
    for (k, task) in [("miou", "segmentation"), ("pixel_acc", "segmentation"), ("rmse", "depth"), ("abs_rel", "depth")] {
        assert_eq!(record["val"][k], one["metrics"][task][k], "{k}");
    }
    assert_eq!(record["val"]["loss"], one["metrics"]["loss"]);
}

#[test]
fn what_replicas_cannot_do_is_refused_in_one_line() {
    let dir = scratch("replicas-refused");
    let data = nyud(dir.path(), 4);
    for (extra, needle) in [
        ("[loss]\nweighting = \"graddrop\"\nrep_grad = true\n", "loss.weighting = \"graddrop\" with 2 ranks: not data-parallel yet"),
        ("", "training.devices: \"wgpu:0\" is not a device of training.backend = \"flex\""),
    ] {
        let run = dir.path().join(format!("r{}", needle.len()));
        let cfg = config(dir.path(), &data, &run, 1, extra);
        let cfg = if extra.is_empty() { rewrite(&cfg, "log_interval = 1", "log_interval = 1\ndevices = [\"wgpu:0\", \"wgpu:1\"]") } else { on_two(&cfg) };
        assert_refused(&one_process(&cfg, &[]), &[needle]);
        assert!(!run.exists(), "nothing written");
    }
}

/// Started by `mpirun` (its environment) without the `mpi` feature: refused, not N runs into
/// one folder.
#[cfg(not(feature = "mpi"))]
#[test]
fn an_mpi_launch_of_a_build_without_mpi_is_refused() {
    let dir = scratch("replicas-no-mpi");
    let run = dir.path().join("run");
    let cfg = common::tiny_config(dir.path(), &run, "");
    let o = common::hydra_env(&["train", "--config", cfg.to_str().unwrap()], &[("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_RANK", "1")]);
    assert_refused(&o, &["started by an MPI launcher, but this hydra was built without the `mpi` feature"]);
    assert!(!run.exists());
}

#[test]
fn replicas_whose_networks_differ_stop_before_anything_is_written() {
    let dir = scratch("replicas-diverged");
    let data = nyud(dir.path(), 4);
    let run = dir.path().join("run");
    let cfg = on_two(&config(dir.path(), &data, &run, 2, ""));
    // Without the fault the same run passes the check at every epoch's end.
    let o = common::hydra_env(&["train", "--plain", "--config", cfg.to_str().unwrap(), "--set", "training.epochs=1"], &[("RAYON_NUM_THREADS", "1")]);
    ok(&o);
    std::fs::remove_dir_all(&run).unwrap();
    let o = common::hydra_env(&["train", "--plain", "--config", cfg.to_str().unwrap()], &[("HYDRA_FAULT_DIVERGE_RANK", "1")]);
    let (out, err) = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("after epoch 1, 1 of the 2 ranks hold a network that differs from rank 0's"), "{err}");
    assert!(no_checkpoint(&run), "no checkpoint of the diverged epoch");
}

#[test]
fn the_gradient_methods_combine_the_whole_batch_over_two_replicas() {
    // Each method combines the tasks' gradients of the whole batch: the ranks average them
    // first, so 2 replicas × 2 take the step 1 device × 4 takes (2 steps, the same bounds).
    let dir = scratch("replicas-methods");
    let data = nyud(dir.path(), 4);
    for (name, extra) in [
        ("pcgrad", "[loss]\nweighting = \"pcgrad\"\n"),
        ("mgda_ub", "[loss]\nweighting = \"mgda\"\nrep_grad = true\n"),
        ("cagrad", "[loss]\nweighting = \"cagrad\"\n"),
        ("db_mtl", "[loss]\nweighting = \"db_mtl\"\n"),
    ] {
        let (one, two) = (dir.path().join(format!("{name}-one")), dir.path().join(format!("{name}-two")));
        let c1 = config(dir.path(), &data, &one, 1, extra);
        let c2 = on_two(&config(dir.path(), &data, &two, 1, extra));
        ok(&one_process(&c1, &[]));
        ok(&one_process(&c2, &[]));
        let d = distance(&initial(&c1), &checkpoint(&one, 1).model, &checkpoint(&two, 1).model, &losses(&one), &losses(&two));
        d.check(&format!("{name}: 2 replicas × 2 vs 1 device × 4, 2 steps"), 2);
    }
}
