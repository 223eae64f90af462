//! Bad configurations are refused before anything runs or is written: every key is checked
//! for type and range, unknown keys suggest the closest valid one, one line names the file,
//! the key, the value and what is allowed.

mod common;

use common::{hydra_env, scratch, text, tiny_config};

#[test]
fn config_mistakes_are_one_clear_line() {
    let dir = scratch("config-errors");
    let run = dir.join("run");
    for (extra, set, needle) in [
        ("[optimizer]\nmomentun = 0.9\n", None, "optimizer.momentun: unknown key (did you mean `optimizer.momentum`?)"),
        ("[optimizer]\nmomentum = \"high\"\n", None, "optimizer.momentum = \"high\": expected a number in [0, 0.999999], found a string"),
        ("", Some("training.batch_size=0"), "training.batch_size = 0: must be an integer in [1, 4096]"),
        ("", Some("loss.weighting=kendal"), "loss.weighting = \"kendal\": must be one of fixed, uncertainty, dwa"),
        ("[loss]\nweighting = \"pcgrad\"\nrep_grad = true\n", None, "loss.rep_grad = true: needs a gradient method that combines representation gradients (ew, mgda, imtl, aligned_mtl, gradnorm, graddrop), not loss.weighting = \"pcgrad\""),
        ("[loss]\nweighting = \"nash_mtl\"\nrep_grad = true\n", None, "not loss.weighting = \"nash_mtl\""),
        ("[loss]\nweighting = \"graddrop\"\n", None, "loss.weighting = \"graddrop\": works on representation gradients only; set loss.rep_grad = true"),
        ("[loss]\nweighting = \"gradvac\"\ngradvac_groups = \"layers\"\n", None, "loss.gradvac_groups = \"layers\": must be one of whole_model, all_layer, all_matrix"),
        ("[loss]\nweighting = \"nash_mtl\"\nnash_update_every = 0\n", None, "loss.nash_update_every = 0: must be an integer in [1,"),
        ("[loss]\nweighting = \"db_mtl\"\ndb_beta = 1.5\n", None, "loss.db_beta = 1.5: must be in [0, 1]"),
        ("[loss]\nweighting = \"cagrad\"\ncagrad_rescale = 3\n", None, "loss.cagrad_rescale = 3: must be an integer in [0, 2]"),
    ] {
        let cfg = tiny_config(&dir, &run, extra);
        let mut args = vec!["train", "--config", cfg.to_str().unwrap()];
        if let Some(s) = set {
            args.extend(["--set", s]);
        }
        let o = hydra_env(&args, &[]);
        let (_, err) = text(&o);
        assert!(!o.status.success());
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
        assert!(err.contains("config.toml"), "names the file: {err}");
    }
    assert!(!run.exists(), "nothing is written for a bad config");
}


#[test]
fn every_section_is_checked() {
    use hydra_train::config::Config;
    for (toml, needle) in [
        ("[model]\nnum_classes = 1\n", "model.num_classes = 1: must be an integer in [2, 255]"),
        ("[model]\ninit = \"xavier\"\n", "model.init = \"xavier\": must be one of reference, kaiming"),
        ("[data.train]\nkind = \"mtan\"\n", "data.train.root: missing"),
        ("[data.train]\nsize = [10, 20]\n", "data.train.size = [10, 20]: expected an array of 2 numbers in [32, 4096]"),
        ("[augment]\nscale = [2.0, 0.5]\n", "the minimum must not exceed the maximum"),
        ("[augment]\njitter = 2\n", "augment.jitter = 2: must be in [0, 1]"),
        ("[eval]\npad_to = 0\n", "eval.pad_to = 0: must be an integer in [1, 256]"),
        ("[loss]\ndepth = \"l2\"\n", "loss.depth = \"l2\": must be one of l1, berhu"),
        ("[optimizer]\nbetas = [0.9]\n", "optimizer.betas = [0.9]: expected an array of 2 numbers"),
        ("[optimizer]\nkind = \"adam\"\nnesterov = true\n", "optimizer.nesterov = true: needs kind = \"sgd\""),
        ("[schedule]\nmilestones = [5, 3]\n", "schedule.milestones = [5, 3]: must be strictly increasing"),
        ("[training]\nbackend = \"tpu\"\n", "training.backend = \"tpu\": must be one of flex, wgpu, cuda"),
        ("[training]\ndevices = [\"cpu\"]\n", "training.devices: one device is the default"),
        ("[training]\ndevices = [\"tpu:0\", \"tpu:1\"]\n", "training.devices: \"tpu:0\": expected cpu, wgpu:N or cuda:N"),
        ("[training]\ndevices = [\"cpu:1\", \"cpu\"]\n", "training.devices: \"cpu:1\": the CPU has no device numbers"),
        ("[training]\ndevices = [\"wgpu:x\", \"wgpu:1\"]\n", "must be a whole number"),
        ("[early_stopping]\nmonitor = \"acc\"\n", "early_stopping.monitor = \"acc\": must be one of miou, rmse, loss, combined"),
        ("[checkpoint]\nkeep_last = 0\n", "checkpoint.keep_last = 0: must be an integer in [1, 1000]"),
        ("[output]\ndirr = \"x\"\n", "output.dirr: unknown key (did you mean `output.dir`?)"),
        ("[model\n", "invalid TOML"),
    ] {
        let e = Config::from_toml(toml, &[]).unwrap_err().0;
        assert!(e.contains(needle), "{toml}: expected `{needle}`, got `{e}`");
        assert!(!e.contains('\n'), "{e}");
    }
}
