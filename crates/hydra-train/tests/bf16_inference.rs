//! `--precision bf16` as a user runs it: the trained network of `fixtures/trained` on the real
//! NYUv2 and KITTI frames against f32 (labels ≥ 99.5 % the same, depth within 1 % relative at
//! the median), `hydra eval` on its validation split (mIoU within 0.5 points), both bf16 paths
//! against each other where the CPU has both; and the refusals: a CPU (or `HYDRA_CPU_LEVEL`)
//! without a bf16 path, another backend, a precision hydra does not know, training.

mod common;

use std::path::Path;

use common::{fixtures, hydra_env, scratch};
use hydra_data::npy;
use hydra_model::kernels::precision::{bf16_paths, Bf16Path};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One line on stderr starting with `error:` that contains `needle`, and a failure status.
fn assert_refused(o: &std::process::Output, needle: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected a refusal: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "`{needle}` in: {err}");
}

const FRAMES: [&str; 3] = ["samples/nyud/000464.png", "samples/nyud/000433.png", "samples/kitti/000099.png"];

/// `hydra predict --raw` of the trained network on the frames: per frame, (logits, depth).
fn predict(dir: &Path, env: &[(&str, &str)], precision: &str) -> Vec<(Vec<f32>, Vec<f32>, usize)> {
    let weights = fixtures().join("trained/synthetic6.bpk");
    let frames: Vec<String> = FRAMES.iter().map(|f| fixtures().join(f).to_string_lossy().into_owned()).collect();
    let mut args = vec!["predict", "--weights", s(&weights), "--raw", "--precision", precision, "--out", s(dir)];
    args.extend(frames.iter().map(String::as_str));
    let out = hydra_env(&args, env);
    assert!(out.status.success(), "{}", stderr(&out));
    FRAMES
        .iter()
        .map(|f| {
            let stem = Path::new(f).file_stem().unwrap().to_str().unwrap();
            let segm = npy::read(&dir.join(format!("{stem}_segm.npy"))).unwrap();
            let depth = npy::read(&dir.join(format!("{stem}_depth.npy"))).unwrap();
            (segm.to_f32(), depth.to_f32(), segm.shape[0])
        })
        .collect()
}

/// `hydra eval --json` of `weights` under `config` in `precision`, written into `dir`: the JSON.
fn eval_json(dir: &Path, config: &Path, weights: &Path, precision: &str) -> serde_json::Value {
    let json = dir.join(format!("{precision}.json"));
    let out = hydra_env(&["eval", "--config", s(config), "--weights", s(weights), "--precision", precision, "--json", s(&json)], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("({precision}")), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["precision"], precision, "the JSON names the precision");
    v
}

/// (share of pixels with the same argmax, median and largest relative depth difference).
fn compare(a: &(Vec<f32>, Vec<f32>, usize), b: &(Vec<f32>, Vec<f32>, usize)) -> (f64, f64, f64) {
    let classes = a.2;
    let pixels = a.1.len();
    let argmax = |l: &[f32], p: usize| (0..classes).max_by(|&i, &j| l[i * pixels + p].total_cmp(&l[j * pixels + p])).unwrap();
    let same = (0..pixels).filter(|&p| argmax(&a.0, p) == argmax(&b.0, p)).count() as f64 / pixels as f64;
    let mut rel: Vec<f64> = a.1.iter().zip(&b.1).map(|(&x, &y)| ((x - y).abs() / x.abs().max(1e-6)) as f64).collect();
    rel.sort_by(f64::total_cmp);
    (same, rel[rel.len() / 2], rel[rel.len() - 1])
}

#[test]
fn bf16_predictions_match_f32_on_real_frames() {
    let paths = match bf16_paths() {
        Ok(p) => p,
        Err(e) => {
            println!("no bf16 path on this CPU ({e}): checking the refusal instead");
            let dir = scratch("bf16-refused");
            let weights = fixtures().join("trained/synthetic6.bpk");
            let frame = fixtures().join(FRAMES[0]);
            let out = hydra_env(&["predict", "--weights", s(&weights), "--precision", "bf16", "--out", s(&dir), s(&frame)], &[]);
            assert_refused(&out, "AMX-BF16 or AVX512-BF16");
            return;
        }
    };
    let dir = scratch("bf16-predict");
    let f32_out = predict(&dir.join("f32"), &[], "f32");
    let mut runs = vec![("best path", predict(&dir.join("bf16"), &[], "bf16"))];
    if paths.contains(&Bf16Path::Amx) && paths.contains(&Bf16Path::Avx512Bf16) {
        runs.push(("avx512bf16", predict(&dir.join("bf16-dp"), &[("HYDRA_BF16_PATH", "avx512bf16")], "bf16")));
    }
    println!("bf16 paths: {}", paths.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "));
    for (name, run) in &runs {
        for (frame, (a, b)) in FRAMES.iter().zip(f32_out.iter().zip(run)) {
            let (same, median, largest) = compare(a, b);
            println!("{name} {frame}: labels {:.2} % the same, depth relative difference median {:.3} % largest {:.2} %", same * 100.0, median * 100.0, largest * 100.0);
            assert!(same >= 0.995, "{name} {frame}: {:.3} % of the labels", same * 100.0);
            assert!(median <= 0.01, "{name} {frame}: depth median {median}");
            // bf16 moves the outputs at all (else the precision was not applied).
            assert!(a.1 != b.1, "{name} {frame}: bf16 gave f32's depth bit for bit");
        }
    }
    if let [(_, amx), (_, dp)] = &runs[..] {
        for (frame, (a, b)) in FRAMES.iter().zip(amx.iter().zip(dp)) {
            let (same, median, _) = compare(a, b);
            println!("amx against avx512bf16 {frame}: labels {:.2} %, depth median {:.4} %", same * 100.0, median * 100.0);
            assert!(same >= 0.995 && median <= 0.01, "{frame}");
        }
    }
}

#[test]
fn bf16_evaluation_is_within_half_a_miou_point_of_f32() {
    if let Err(e) = bf16_paths() {
        println!("no bf16 path on this CPU ({e}): not exercised");
        return;
    }
    let dir = scratch("bf16-eval");
    let config = fixtures().join("trained/synthetic6.toml");
    let weights = fixtures().join("trained/synthetic6.bpk");
    let eval = |precision: &str| {
        let v = eval_json(&dir, &config, &weights, precision);
        (v["metrics"]["segmentation"]["miou"].as_f64().unwrap(), v["metrics"]["depth"]["rmse"].as_f64().unwrap())
    };
    let (m32, r32) = eval("f32");
    let (m16, r16) = eval("bf16");
    println!("mIoU f32 {m32:.4} bf16 {m16:.4}; RMSE f32 {r32:.4} bf16 {r16:.4}");
    assert!((m32 - m16).abs() <= 0.005, "mIoU {m32} against {m16}");
    assert!((r32 - r16).abs() <= 0.01 * r32, "RMSE {r32} against {r16}");
    // The config's eval.precision is the default of --precision.
    let cfg = dir.join("bf16.toml");
    std::fs::write(&cfg, std::fs::read_to_string(&config).unwrap() + "\n[eval]\nprecision = \"bf16\"\n").unwrap();
    let out = hydra_env(&["eval", "--config", s(&cfg), "--weights", s(&weights)], &[]);
    assert!(out.status.success() && stderr(&out).contains("(bf16"), "{}", stderr(&out));
}

#[test]
fn bf16_is_refused_with_the_reason_where_it_cannot_run() {
    let dir = scratch("bf16-refusals");
    let weights = fixtures().join("trained/synthetic6.bpk");
    let frame = fixtures().join(FRAMES[0]);
    let predict = |precision: &str, env: &[(&str, &str)]| hydra_env(&["predict", "--weights", s(&weights), "--precision", precision, "--out", s(&dir), s(&frame)], env);
    // Capped below AVX-512, every CPU is one without a bf16 path.
    assert_refused(&predict("bf16", &[("HYDRA_CPU_LEVEL", "avx2")]), "AMX-BF16 or AVX512-BF16: HYDRA_CPU_LEVEL");
    assert_refused(&predict("fp64", &[]), "precision fp64: expected f32 or bf16");
    let out = hydra_env(&["bench", "train", "--precision", "bf16", "--size", "64x64", "--repeats", "1"], &[]);
    assert_refused(&out, "--precision is for `hydra bench infer`");
    assert!(std::fs::read_dir(&dir).map_or(true, |d| d.count() == 0), "a refused command wrote files");
}

#[test]
fn eval_precision_bf16_makes_validation_bf16_and_training_f32() {
    if let Err(e) = bf16_paths() {
        println!("no bf16 path on this CPU ({e}): not exercised");
        return;
    }
    let dir = scratch("bf16-validation");
    let run = dir.join("run");
    let cfg = common::tiny_config(&dir, &run, "[eval]\nprecision = \"bf16\"\n");
    let out = hydra_env(&["train", "--config", s(&cfg), "--set", "training.epochs=1", "--plain"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("validation in bf16 (") , "{}", String::from_utf8_lossy(&out.stdout));
    let record: serde_json::Value = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "epoch")
        .last()
        .unwrap();
    let eval = |precision: &str| eval_json(&dir, &cfg, &run.join("final.bpk"), precision);
    let (bf16, f32) = (eval("bf16"), eval("f32"));
    // The validation of the run is `hydra eval --precision bf16` of its weights, to the bit,
    // and not the f32 evaluation.
    for (k, task) in [("miou", "segmentation"), ("rmse", "depth"), ("abs_rel", "depth")] {
        assert_eq!(record["val"][k], bf16["metrics"][task][k], "{k}");
    }
    assert_ne!(record["val"]["rmse"], f32["metrics"]["depth"]["rmse"], "validation computed in f32");
    // Training itself stays f32: the same run with f32 validation gives the same weights.
    let run32 = dir.join("run32");
    std::fs::create_dir(dir.join("f32")).unwrap();
    let cfg32 = common::tiny_config(&dir.join("f32"), &run32, "");
    let out = hydra_env(&["train", "--config", s(&cfg32), "--set", "training.epochs=1", "--plain"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(run.join("final.bpk")).unwrap(), std::fs::read(run32.join("final.bpk")).unwrap(), "bf16 validation changed the training");
}
