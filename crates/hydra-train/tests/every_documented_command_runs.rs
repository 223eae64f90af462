//! Every documented command runs: each `hydra …` / `cargo run --release -- …` line of the
//! README's and datasets/README.md's code blocks, and each complete command quoted inline
//! (`hydra data check --config …`), runs here and succeeds, so that a documented command can
//! no longer break unnoticed.
//!
//! "On small data": each code block runs in order in a fresh folder that holds a copy of
//! `configs/` with `quickstart.toml` shrunk (tiny scenes, one iteration per epoch, its
//! epochs, intervals and paths unchanged), and stand-ins for the files a user brings: the
//! official checkpoints (the PyTorch fixture for `ExpNYUD_joint.ckpt`; networks of the same
//! shape for the KITTI and three-task ones), the frames `rgb/000464.png`, `kitti/000099.png`,
//! and `datasets/nyud` with one real frame; `fixtures/` links to the repository's. `--count N` above 8 runs with 8. Skipped, with the
//! reason: lines that are not hydra commands (`cargo test`, scripts), commands with
//! placeholders (`--config C`), GPU backends in a build without them, bf16 on a CPU without a bf16 path, and `selftest --portable`
//! (cli_selftest.rs runs it and checks its output).

mod common;

use std::path::{Path, PathBuf};

use common::{fixtures, scratch, text};
use hydra_model::{HydraNetConfig, Task};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The commands of `markdown`: the hydra lines of every fenced block (one `Vec` per block,
/// run in order), then each complete inline command as a block of its own.
fn documented(markdown: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            match current.take() {
                Some(b) => blocks.push(b),
                None => current = Some(Vec::new()),
            }
            continue;
        }
        match current.as_mut() {
            Some(b) => {
                let l = line.trim();
                if l.starts_with("hydra ") || l.starts_with("cargo run --release -- ") {
                    let code = l.split(" #").next().unwrap().trim();
                    b.push(code.trim_start_matches("cargo run --release -- ").trim_start_matches("hydra ").to_string());
                }
            }
            None => {
                for (i, span) in line.split('`').enumerate() {
                    if i % 2 == 1 && span.starts_with("hydra ") && span.contains(" --") {
                        blocks.push(vec![span.trim_start_matches("hydra ").to_string()]);
                    }
                }
            }
        }
    }
    blocks.into_iter().filter(|b| !b.is_empty()).collect()
}

/// Why a documented command is not run here, if it is not.
fn skip_reason(cmd: &str) -> Option<&'static str> {
    let args: Vec<&str> = cmd.split_whitespace().collect();
    if args.iter().any(|a| a.len() == 1 && a.chars().all(|c| c.is_ascii_uppercase())) {
        return Some("placeholder argument");
    }
    if args.windows(2).any(|w| w[0] == "--backend" && w[1] != "flex") {
        return Some("GPU backend (not in this build)");
    }
    if args.windows(2).any(|w| w[0] == "--precision" && w[1] == "bf16") && hydra_model::kernels::precision::bf16_paths().is_err() {
        return Some("bf16 (no AMX-BF16 or AVX512-BF16 here; tests/bf16_inference.rs checks the refusal)");
    }
    if args.starts_with(&["selftest", "--portable"]) {
        return Some("run by cli_selftest.rs, which checks its output (45 s: not twice)");
    }
    None
}

/// A fresh folder as a user's working directory, with the stand-ins.
fn workdir(name: &str) -> hydra_testkit::Scratch {
    let dir = scratch(name);
    let configs = dir.join("configs");
    std::fs::create_dir(&configs).unwrap();
    for e in std::fs::read_dir(repo().join("configs")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, configs.join(p.file_name().unwrap())).unwrap();
    }
    let mut q: toml::Table = std::fs::read_to_string(configs.join("quickstart.toml")).unwrap().parse().unwrap();
    let set = |t: &mut toml::Table, section: &str, key: &str, v: toml::Value| {
        let mut table = &mut *t;
        for s in section.split('.') {
            table = table.get_mut(s).and_then(|x| x.as_table_mut()).unwrap();
        }
        table.insert(key.into(), v);
    };
    let arr = |a: &[i64]| toml::Value::Array(a.iter().map(|&v| toml::Value::Integer(v)).collect());
    set(&mut q, "data.train", "count", toml::Value::Integer(8));
    set(&mut q, "data.train", "size", arr(&[48, 64]));
    set(&mut q, "data.val", "count", toml::Value::Integer(2));
    set(&mut q, "data.val", "size", arr(&[48, 64]));
    set(&mut q, "augment", "crop", arr(&[40, 56]));
    set(&mut q, "training", "iters_per_epoch", toml::Value::Integer(1));
    std::fs::write(configs.join("quickstart.toml"), toml::to_string(&q).unwrap()).unwrap();

    // The repository's fixtures, where `hydra selftest` looks for them (run from a checkout).
    std::os::unix::fs::symlink(fixtures(), dir.join("fixtures")).unwrap();
    let nyud = fixtures().join("samples/nyud");
    for (from, to) in [("000464.png", "rgb/000464.png"), ("000464.png", "datasets/nyud/rgb/000464.png"), ("segm_gt_000464.png", "datasets/nyud/masks/000464.png"), ("depth_gt_000464.png", "datasets/nyud/depth/000464.png")] {
        std::fs::create_dir_all(dir.join(to).parent().unwrap()).unwrap();
        std::fs::copy(nyud.join(from), dir.join(to)).unwrap();
    }
    for list in ["train_list.txt", "val_list.txt"] {
        std::fs::write(dir.join("datasets/nyud").join(list), "rgb/000464.png\tmasks/000464.png\tdepth/000464.png\n").unwrap();
    }
    std::fs::create_dir_all(dir.join("kitti")).unwrap();
    std::fs::copy(fixtures().join("samples/kitti/000099.png"), dir.join("kitti/000099.png")).unwrap();
    std::fs::copy(fixtures().join("pytorch/hydranet40_s0.ckpt"), dir.join("ExpNYUD_joint.ckpt")).unwrap();
    let device = burn::tensor::Device::flex();
    for (file, net) in [
        ("ExpKITTI_joint.ckpt", HydraNetConfig::new(6)),
        ("ExpNYUD_three.ckpt", HydraNetConfig::new(40).with_tasks(vec![Task::Segmentation, Task::Depth, Task::Normals])),
    ] {
        let tmp = dir.join("standin.safetensors");
        hydra_model::weights::save(&net.init(&device), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join(file)).unwrap();
    }
    dir
}

/// `*` in the last path component, expanded in `cwd` as a shell would (sorted).
fn expand(arg: &str, cwd: &Path) -> Vec<String> {
    if !arg.contains('*') {
        return vec![arg.to_string()];
    }
    let (parent, pattern) = arg.rsplit_once('/').unwrap_or((".", arg));
    let (pre, post) = pattern.split_once('*').unwrap();
    let mut out: Vec<String> = std::fs::read_dir(cwd.join(parent))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(pre) && n.ends_with(post))
        .map(|n| format!("{parent}/{n}"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{arg} matches nothing");
    out
}

fn small(args: Vec<String>) -> Vec<String> {
    let mut out = args;
    for i in 1..out.len() {
        if out[i - 1] == "--count" && out[i].parse::<usize>().is_ok_and(|n| n > 8) {
            out[i] = "8".into();
        }
    }
    out
}

fn run_blocks(doc: &str, name: &str) -> (usize, Vec<String>) {
    let markdown = std::fs::read_to_string(repo().join(doc)).unwrap();
    let blocks = documented(&markdown);
    let (mut ran, mut skipped) = (0, Vec::new());
    for (b, block) in blocks.iter().enumerate() {
        let dir = workdir(&format!("{name}-{b}"));
        for cmd in block {
            if let Some(why) = skip_reason(cmd) {
                skipped.push(format!("{cmd} ({why})"));
                continue;
            }
            let args = small(cmd.split_whitespace().flat_map(|a| expand(a, &dir)).collect());
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_hydra")).args(&args).current_dir(&dir).output().unwrap();
            let (out, err) = text(&o);
            assert!(o.status.success(), "{doc}: `hydra {cmd}` failed in {}:\n{out}\n{err}", dir.display());
            ran += 1;
        }
    }
    (ran, skipped)
}

#[test]
fn the_readme_commands_run() {
    let (ran, skipped) = run_blocks("README.md", "readme");
    eprintln!("ran {ran} documented commands; skipped: {skipped:?}");
    assert!(ran >= 22, "only {ran} commands found: has the README's layout changed?");
    // The placeholder, the GPU selftest, the portable selftest; and, only where the CPU has no
    // bf16 path, each bf16 example.
    let bf16_reason = skip_reason("predict --precision bf16");
    let (bf16, other): (Vec<&String>, Vec<&String>) = skipped.iter().partition(|s| bf16_reason.is_some_and(|r| s.ends_with(&format!("({r})"))));
    assert!(other.len() <= 3, "{other:?}");
    assert_eq!(bf16.is_empty(), hydra_model::kernels::precision::bf16_paths().is_ok(), "{bf16:?}");
}

#[test]
fn the_dataset_guide_commands_run() {
    let (ran, _) = run_blocks("datasets/README.md", "datasets-readme");
    assert!(ran >= 1);
}

#[test]
fn documented_commands_are_found_in_blocks_and_inline() {
    let md = "text `hydra data check --config x.toml` and `hydra synth`\n```sh\ncargo run --release -- train --config a.toml   # comment\ncargo test --release\nhydra info --weights w.bpk\n```\n";
    assert_eq!(documented(md), vec![vec!["data check --config x.toml".to_string()], vec!["train --config a.toml".to_string(), "info --weights w.bpk".to_string()]]);
    assert_eq!(skip_reason("data check --config C"), Some("placeholder argument"));
    assert_eq!(skip_reason("selftest --backend wgpu"), Some("GPU backend (not in this build)"));
}
