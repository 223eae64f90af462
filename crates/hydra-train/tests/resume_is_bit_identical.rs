//! Stopping after epoch k and resuming ends with bit-identical weights and metrics to an
//! uninterrupted run (CPU), with every kind of training state in play.

mod common;

use std::path::Path;

use common::{hydra_env, scratch, text, tiny_config};

fn epoch_rows(run: &Path) -> Vec<String> {
    // Everything but wall-clock time must match.
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let t = header.iter().position(|h| *h == "time_s").unwrap();
    lines.map(|l| l.split(',').enumerate().filter(|(i, _)| *i != t).map(|(_, v)| v).collect::<Vec<_>>().join(",")).collect()
}

fn check(name: &str, extra: &str, epochs: usize, stop_after: &[usize]) {
    let dir = scratch(name);
    let whole = dir.join("whole");
    let split = dir.join("split");
    let cfg_whole = tiny_config(&dir, &whole, extra);
    let t = std::fs::read_to_string(&cfg_whole).unwrap().replace("epochs = 3", &format!("epochs = {epochs}"));
    std::fs::write(&cfg_whole, t).unwrap();
    let o = hydra_env(&["train", "--config", cfg_whole.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    let cfg_split = dir.join("split.toml");
    std::fs::write(&cfg_split, std::fs::read_to_string(&cfg_whole).unwrap().replace(whole.to_str().unwrap(), split.to_str().unwrap())).unwrap();
    let cfg = cfg_split.to_str().unwrap();
    let mut first = true;
    for k in stop_after {
        let n = k.to_string();
        let mut args = vec!["train", "--config", cfg, "--stop-after-epochs", &n];
        if !first {
            args.push("--resume");
        }
        first = false;
        let o = hydra_env(&args, &[]);
        assert!(o.status.success(), "{}", text(&o).1);
        assert!(text(&o).0.contains("stopping after"), "{}", text(&o).0);
    }
    let o = hydra_env(&["train", "--config", cfg, "--resume"], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(text(&o).0.contains("resumed from"), "{}", text(&o).0);
    let a = std::fs::read(whole.join("final.bpk")).unwrap();
    let b = std::fs::read(split.join("final.bpk")).unwrap();
    assert!(a == b, "{name}: final weights differ after resuming");
    assert_eq!(epoch_rows(&whole), epoch_rows(&split), "{name}: epoch metrics differ");
    assert_eq!(std::fs::read(whole.join("best.bpk")).unwrap(), std::fs::read(split.join("best.bpk")).unwrap(), "{name}: best weights differ");
}

#[test]
fn adam_uncertainty_cosine_warmup_clipping() {
    check(
        "resume-adam",
        "[optimizer]\nkind = \"adamw\"\nencoder_lr = 1e-3\ndecoder_lr = 1e-3\ngrad_clip_norm = 1.0\n[loss]\nweighting = \"uncertainty\"\ndepth = \"berhu\"\n[schedule]\nkind = \"cosine\"\nwarmup_iters = 3\n",
        3,
        &[1],
    );
}

#[test]
fn sgd_nesterov_dwa_multistep_early_stopping_state() {
    check(
        "resume-sgd",
        "[optimizer]\nkind = \"sgd\"\nnesterov = true\n[loss]\nweighting = \"dwa\"\n[schedule]\nkind = \"multistep\"\nmilestones = [2]\n[early_stopping]\nenabled = true\nmonitor = \"miou\"\npatience = 10\n",
        4,
        &[1, 2],
    );
}

#[test]
fn stateful_gradient_methods() {
    // GradVac's targets, DB-MTL's buffer (tensors in the checkpoint), Nash-MTL's weights
    // between updates, GradNorm's loss scales and first-epoch losses, GradDrop's generator.
    check("resume-gradvac", "[loss]\nweighting = \"gradvac\"\ngradvac_groups = \"all_matrix\"\n", 3, &[1]);
    check("resume-db-mtl", "[loss]\nweighting = \"db_mtl\"\ndb_beta_sigma = 0.5\n", 3, &[1]);
    check("resume-nash", "[loss]\nweighting = \"nash_mtl\"\nnash_update_every = 3\n", 3, &[1]);
    check("resume-gradnorm", "[loss]\nweighting = \"gradnorm\"\n", 3, &[2]);
    check("resume-graddrop", "[loss]\nweighting = \"graddrop\"\nrep_grad = true\ngraddrop_leak = 0.2\n", 2, &[1]);
}

#[test]
fn gradient_methods_pcgrad_and_mgda_ub() {
    check("resume-pcgrad", "[loss]\nweighting = \"pcgrad\"\n", 3, &[1]);
    check("resume-mgda-ub", "[loss]\nweighting = \"mgda\"\nrep_grad = true\nmgda_normalisation = \"loss+\"\n", 2, &[1]);
}
