//! Data-parallel training over MPI (`--features mpi`; Open MPI's `mpirun` on localhost, as
//! `.ci/run` installs it): 2 ranks × B/2 against 1 process × B on real NYUv2 frames, against
//! PyTorch DDP, resume across rank counts, a rank killed mid-run, sharded validation. The
//! bounds: `dp/mod.rs`.
#![cfg(feature = "mpi")]

mod common;
mod dp;

use std::path::Path;
use std::process::{Command, Output};

use common::{fixtures, scratch, text};
use dp::{assert_same_bits, checkpoint, config, copy_dir, distance, hydra, initial, losses, no_checkpoint, nyud, ok, one_process, rewrite, safetensors};
use hydra_train::checkpoint::Checkpoint;

/// The `mpirun` command for `n` ranks of `hydra train --config C ARGS` on this machine.
fn mpirun(n: usize, cfg: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-n", &n.to_string(), "-x", "RAYON_NUM_THREADS=1", hydra(), "train", "--plain", "--config", cfg.to_str().unwrap()]);
    c.args(args);
    c
}

fn ranks(n: usize, cfg: &Path, args: &[&str]) -> Output {
    mpirun(n, cfg, args).output().expect("mpirun (Open MPI: apt-get install openmpi-bin libopenmpi-dev)")
}

#[test]
fn two_ranks_with_sync_bn_train_what_one_process_trains() {
    let dir = scratch("mpi-sync-bn");
    let data = nyud(dir.path(), 4); // 8 entries: 2 batches of 4 per epoch
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let c1 = config(dir.path(), &data, &one, 3, "");
    let c2 = config(dir.path(), &data, &two, 3, "");
    ok(&one_process(&c1, &[]));
    let out = ok(&ranks(2, &c2, &[]));
    assert!(out.contains("2 ranks (MPI), global batch 4 = 2 per rank") && out.contains("SyncBatchNorm"), "{out}");
    // Rank 0 alone wrote: one metrics line per iteration, not two.
    let (l1, l2) = (losses(&one), losses(&two));
    assert_eq!(l2.len(), 6, "6 iterations logged once");
    let start = initial(&c1);
    for epoch in [1, 3] {
        let d = distance(&start, &checkpoint(&one, epoch).model, &checkpoint(&two, epoch).model, &l1[..2 * epoch], &l2[..2 * epoch]);
        d.check(&format!("2 ranks × 2 with SyncBatchNorm vs 1 process × 4, {} SGD steps", 2 * epoch), 2 * epoch);
    }
    // Without SyncBatchNorm each rank normalises with its own half of the batch: another run,
    // far outside those bounds.
    let own = dir.path().join("own");
    let c3 = config(dir.path(), &data, &own, 3, "").with_extension("");
    let c3 = rewrite(&c3.with_extension("toml"), "log_interval = 1", "log_interval = 1\nsync_bn = false");
    let out = ok(&ranks(2, &c3, &[]));
    assert!(out.contains("BatchNorm per rank"), "{out}");
    let d = distance(&start, &checkpoint(&one, 3).model, &checkpoint(&own, 3).model, &l1, &losses(&own));
    eprintln!("without SyncBatchNorm: losses {:.2e}, updates median {:.2} % worst {:.2} %", d.loss, 100.0 * d.update_median, 100.0 * d.update_worst);
    assert!(d.update_worst > 0.10, "per-rank statistics take the run outside the bounds SyncBatchNorm keeps");
}

#[test]
fn a_two_rank_checkpoint_resumes_on_two_ranks_exactly_and_on_one_process() {
    let dir = scratch("mpi-resume");
    let data = nyud(dir.path(), 4);
    let (whole, cut, moved) = (dir.path().join("whole"), dir.path().join("cut"), dir.path().join("moved"));
    let cw = config(dir.path(), &data, &whole, 3, "");
    let cc = config(dir.path(), &data, &cut, 3, "");
    ok(&ranks(2, &cw, &[]));
    ok(&ranks(2, &cc, &["--stop-after-epochs", "1"]));
    // The same run folder continued by one process (a copy), and by two ranks.
    copy_dir(&cut, &moved);
    let cm = config(dir.path(), &data, &moved, 3, "");
    ok(&ranks(2, &cc, &["--resume"]));
    ok(&one_process(&cm, &["--resume"]));
    let (w, c) = (checkpoint(&whole, 3).model, checkpoint(&cut, 3).model);
    assert_same_bits(&w, &c, "resumed on 2 ranks, bit for bit");
    assert_eq!(losses(&whole), losses(&cut));
    let d = distance(&checkpoint(&whole, 1).model, &w, &checkpoint(&moved, 3).model, &losses(&whole)[2..], &losses(&moved)[2..]);
    d.check("epochs 2-3 on 1 process after epoch 1 on 2 ranks, vs all on 2 ranks", 4);
}

/// The pid of rank `rank` of a running job whose command line names `cfg`.
fn rank_pid(cfg: &Path, rank: usize) -> Option<u32> {
    let want = format!("OMPI_COMM_WORLD_RANK={rank}");
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let has = |hay: &[u8], needle: &[u8]| hay.split(|&b| b == 0).any(|part| part == needle || part.ends_with(needle));
        if has(&cmd, cfg.to_str().unwrap().as_bytes()) && has(&env, want.as_bytes()) && cmd.starts_with(hydra().as_bytes()) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_killed_rank_stops_the_run_which_then_resumes_exactly() {
    let dir = scratch("mpi-kill");
    let data = nyud(dir.path(), 4);
    let (whole, killed) = (dir.path().join("whole"), dir.path().join("killed"));
    let cw = config(dir.path(), &data, &whole, 4, "");
    let ck = config(dir.path(), &data, &killed, 4, "");
    let child = mpirun(2, &ck, &[]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // After the first checkpoint, rank 1 is killed (SIGKILL) in the middle of the next epochs.
    let t0 = std::time::Instant::now();
    while !killed.join("checkpoints/epoch-00001.ok").exists() {
        assert!(t0.elapsed().as_secs() < 120, "no checkpoint");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = rank_pid(&ck, 1).expect("rank 1 running");
    assert!(Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert!(!o.status.success(), "the job fails: {out}");
    assert!(!killed.join("final.bpk").exists(), "the run did not finish");
    assert!(format!("{out}{err}").contains("rank 1"), "the message names the rank: {out}\n{err}");
    // Every checkpoint there is complete; the run resumes and ends where an uninterrupted one does.
    for e in std::fs::read_dir(killed.join("checkpoints")).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "bpk") {
            assert!(p.with_extension("ok").exists(), "{} complete", p.display());
            Checkpoint::load(&p).unwrap();
        }
    }
    ok(&ranks(2, &ck, &["--resume"]));
    ok(&ranks(2, &cw, &[]));
    let (w, k) = (checkpoint(&whole, 4).model, checkpoint(&killed, 4).model);
    assert_same_bits(&w, &k, "bit for bit after the resume");
}

#[test]
fn a_rank_that_fails_stops_every_rank_naming_itself() {
    let dir = scratch("mpi-fail");
    let data = nyud(dir.path(), 4);
    let run = dir.path().join("run");
    let good = config(dir.path(), &data, &run, 2, "");
    // Rank 1 is given a list file that does not exist (its machine lacks the data).
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, std::fs::read_to_string(&good).unwrap().replace("list.txt", "missing.txt")).unwrap();
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]);
    for cfg in [&good, &bad] {
        c.args(["-n", "1", hydra(), "train", "--plain", "--config", cfg.to_str().unwrap()]);
        if cfg == &good {
            c.arg(":");
        }
    }
    let o = c.output().unwrap();
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(err.contains("error: rank 1 of 2:") && err.contains("missing.txt"), "{err}");
    assert!(!err.contains("internal error") && !err.contains("panicked"), "{err}");
    assert!(no_checkpoint(&run), "nothing trained");
}

#[test]
fn what_several_ranks_cannot_do_is_refused_in_one_line() {
    let dir = scratch("mpi-refused");
    let data = nyud(dir.path(), 4);
    for (extra, needle) in [
        ("[training]\nbatch_size = 3\n", "not divisible by the 2 ranks"),
        ("[loss]\nweighting = \"nash_mtl\"\n", "not data-parallel yet"),
        ("[loss]\nweighting = \"gls\"\n", "geometric mean"),
    ] {
        let run = dir.path().join(format!("r{}", needle.len()));
        let cfg = config(dir.path(), &data, &run, 1, "");
        let mut text_cfg = std::fs::read_to_string(&cfg).unwrap();
        if extra.starts_with("[training]") {
            text_cfg = text_cfg.replace("batch_size = 4", "batch_size = 3");
        } else {
            text_cfg.push_str(extra);
        }
        std::fs::write(&cfg, text_cfg).unwrap();
        let o = ranks(2, &cfg, &[]);
        let (out, err) = text(&o);
        assert!(!o.status.success(), "{out}");
        // Every rank refuses; whichever reaches MPI_Abort first may stop the others before
        // they print, so one whole line from any rank is what is owed.
        let line = |l: &str| l.starts_with("error: rank ") && l.contains(" of 2: ") && l.contains(needle);
        assert!(err.lines().any(line), "{needle}: {err}");
        assert!(!err.contains("internal error"), "{err}");
    }
}

#[test]
fn sharded_validation_equals_one_process_bit_for_bit() {
    let dir = scratch("mpi-val");
    let data = nyud(dir.path(), 4);
    // 5 validation frames: blocks of 2 and 3 on the two ranks.
    let list: String = std::fs::read_to_string(data.join("list.txt")).unwrap().lines().take(5).map(|l| format!("{l}\n")).collect();
    std::fs::write(data.join("val.txt"), list).unwrap();
    let run = dir.path().join("run");
    let extra = format!("[data.val]\nkind = \"nyud\"\nroot = \"{}\"\nlist = \"val.txt\"\n", data.display());
    let cfg = config(dir.path(), &data, &run, 1, &extra);
    let cfg = rewrite(&cfg, "val_interval = 0", "val_interval = 1");
    ok(&ranks(2, &cfg, &[]));
    let record: serde_json::Value = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["kind"] == "epoch")
        .unwrap();
    let json = dir.path().join("eval.json");
    let o = Command::new(hydra())
        .args(["eval", "--config", cfg.to_str().unwrap(), "--weights", run.join("checkpoints/epoch-00001.bpk").to_str().unwrap(), "--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    ok(&o);
    let one: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // Every figure (per-class IoU, all depth metrics, pixel counts, loss) of the validation, as
    // best.json keeps them, equals one process's evaluation of the same weights exactly.
    let best: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("best.json")).unwrap()).unwrap();
    assert_eq!(best["epoch"], 1);
    assert!(one["metrics"]["depth"]["rmse"].as_f64().unwrap() > 0.0 && one["metrics"]["segmentation"]["pixels"].as_u64().unwrap() > 0);
    assert_eq!(best["metrics"], one["metrics"], "2 ranks' validation vs one process's evaluation");
    assert_eq!(record["val"]["rmse"], one["metrics"]["depth"]["rmse"]);
}

#[test]
fn without_sync_bn_two_ranks_train_what_pytorch_ddp_trains() {
    // fixtures/pytorch/ddp2_step1 (scripts/make_ddp_fixture.py): PyTorch DDP on gloo, 2
    // processes, rank 0 on frame 000464 and rank 1 on 000433, BatchNorm per rank, 3 SGD steps
    // of the authors' recipe from hydranet40_s0.ckpt.
    let dir = scratch("mpi-ddp");
    let fx = fixtures();
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fx.join("pytorch/ddp2_step1.json")).unwrap()).unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "000464.png\tsegm_gt_000464.png\tdepth_gt_000464.png\n000433.png\tsegm_gt_000433.png\tdepth_gt_000433.png\n").unwrap();
    // A seed whose order keeps 000464 first (on rank 0).
    let seed = (0..1000u64).find(|&s| (1..=1).all(|e| hydra_data::loader::epoch_order(2, s, e) == [0, 1])).unwrap();
    let run = dir.path().join("run");
    let cfg = dir.path().join("ddp.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[model]
num_classes = 40
init_weights = "{ckpt}"
[data]
workers = 1
[data.train]
kind = "nyud"
root = "{root}"
list = "{list}"
[augment]
scale = [1.0, 1.0]
crop = [0, 0]
flip = false
jitter = 0.0
[loss]
depth = "l1"
weighting = "fixed"
segm_weight = 0.5
depth_weight = 0.5
[optimizer]
kind = "sgd"
momentum = 0.9
encoder_lr = 1e-3
decoder_lr = 1e-2
encoder_weight_decay = 1e-5
decoder_weight_decay = 1e-5
[schedule]
kind = "constant"
[training]
epochs = 1
batch_size = 2
seed = {seed}
log_interval = 1
val_interval = 0
sync_bn = false
[checkpoint]
interval = 1
keep_last = 10
[output]
dir = "{run}"
"#,
            ckpt = fx.join("pytorch/hydranet40_s0.ckpt").display(),
            root = fx.join("samples/nyud").display(),
            list = list.display(),
            run = run.display()
        ),
    )
    .unwrap();
    ok(&ranks(2, &cfg, &[]));
    let want: Vec<Vec<f64>> = reference["losses"].as_array().unwrap().iter().map(|l| ["loss", "segm", "depth"].iter().map(|k| l[k].as_f64().unwrap()).collect()).collect();
    let start = safetensors(&fx.join("pytorch/hydranet40_s0.ckpt"));
    let d = distance(&start, &safetensors(&fx.join("pytorch/ddp2_step1.safetensors")), &checkpoint(&run, 1).model, &want, &losses(&run));
    d.check("2 ranks × 1 without SyncBatchNorm vs PyTorch DDP (gloo, 2 processes), one SGD step", 1);
    // With SyncBatchNorm the same step is another one: the fixture is of per-rank statistics.
    let synced = dir.path().join("synced");
    let c2 = dir.path().join("synced.toml");
    std::fs::write(&c2, std::fs::read_to_string(&cfg).unwrap().replace("sync_bn = false", "sync_bn = true").replace(&run.display().to_string(), &synced.display().to_string())).unwrap();
    ok(&ranks(2, &c2, &[]));
    let d = distance(&start, &safetensors(&fx.join("pytorch/ddp2_step1.safetensors")), &checkpoint(&synced, 1).model, &want, &losses(&synced));
    eprintln!("with SyncBatchNorm against the same fixture: updates median {:.2} % worst {:.2} %, BatchNorm {:.1e}", 100.0 * d.update_median, 100.0 * d.update_worst, d.bn.0);
    assert!(d.update_worst > 0.10 || d.bn.0 > 1.6e-6, "SyncBatchNorm gives another step");
}

#[test]
fn two_mpi_ranks_and_two_replicas_on_threads_train_the_same_bits() {
    let dir = scratch("mpi-vs-threads");
    let data = nyud(dir.path(), 4);
    let (mpi, threads) = (dir.path().join("mpi"), dir.path().join("threads"));
    let cm = config(dir.path(), &data, &mpi, 2, "");
    let ct = rewrite(&config(dir.path(), &data, &threads, 2, ""), "log_interval = 1", "log_interval = 1\ndevices = [\"cpu\", \"cpu\"]");
    ok(&ranks(2, &cm, &[]));
    ok(&one_process(&ct, &[]));
    let (a, b) = (checkpoint(&mpi, 2).model, checkpoint(&threads, 2).model);
    assert_same_bits(&a, &b, "bit for bit");
    assert_eq!(losses(&mpi), losses(&threads));
}

#[test]
fn ranks_with_another_configuration_are_refused_and_a_hostfile_launches() {
    let dir = scratch("mpi-configs");
    let data = nyud(dir.path(), 4);
    let run = dir.path().join("run");
    let good = config(dir.path(), &data, &run, 1, "");
    // Rank 1 with another seed would shuffle other batches: refused before any step.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, std::fs::read_to_string(&good).unwrap().replace("[training]\n", "[training]\nseed = 7\n")).unwrap();
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-n", "1", hydra(), "train", "--plain", "--config", good.to_str().unwrap(), ":", "-n", "1", hydra(), "train", "--plain", "--config", other.to_str().unwrap()]);
    let o = c.output().unwrap();
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(err.contains("error: rank 1 of 2: rank 1's configuration differs from rank 0's: training.seed"), "{err}");
    assert!(no_checkpoint(&run));
    // Another dataset path (each machine's own copy) is the same run; a hostfile of this machine.
    std::fs::remove_dir_all(&run).ok();
    let copy = dir.path().join("copy");
    copy_dir(&data, &copy);
    std::fs::write(&other, std::fs::read_to_string(&good).unwrap().replace(&format!("root = \"{}\"", data.display()), &format!("root = \"{}\"", copy.display()))).unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "localhost slots=2\n").unwrap();
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--hostfile", hosts.to_str().unwrap(), "--bind-to", "none", "-x", "RAYON_NUM_THREADS=1", "-n", "1", hydra(), "train", "--plain", "--config", good.to_str().unwrap(), ":", "-n", "1", hydra(), "train", "--plain", "--config", other.to_str().unwrap()]);
    let out = ok(&c.output().unwrap());
    assert!(out.contains("2 ranks (MPI)"), "{out}");
    assert!(run.join("final.bpk").exists());
}
