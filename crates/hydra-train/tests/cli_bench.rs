//! `hydra bench` reports what it measured consistently: the asked repeats, min ≤ median ≤ max,
//! the rate = images per run / median, a peak RSS between the process's start and the
//! machine's memory, and runs that fit in the time the command took. (Figures, not speed:
//! nothing here depends on how fast the machine is.)

mod common;

use common::{hydra_env, scratch, text};

fn bench(args: &[&str], json: &std::path::Path) -> (serde_json::Value, f64) {
    let mut a = vec!["bench"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--json", json.to_str().unwrap()]);
    let start = std::time::Instant::now();
    let o = hydra_env(&a, &[]);
    let wall = start.elapsed().as_secs_f64();
    assert!(o.status.success(), "{args:?}: {}", text(&o).1);
    (serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap(), wall)
}

#[test]
fn bench_reports_consistent_figures() {
    let dir = scratch("bench");
    let mem_total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| m.lines().next()?.split_whitespace().nth(1)?.parse::<f64>().ok()).map(|kb| kb * 1024.0);
    for (args, batch, name) in [
        (vec!["infer", "--size", "64x96", "--batch", "2", "--warmup", "1", "--repeats", "4"], 2.0, "infer_64x96_b2"),
        (vec!["infer", "--size", "64x96", "--batch", "2", "--warmup", "1", "--repeats", "4", "--fold-bn"], 2.0, "infer_64x96_b2_foldbn"),
        (vec!["train", "--size", "64x64", "--batch", "2", "--warmup", "1", "--repeats", "3"], 2.0, "train_step_64x64_b2"),
    ] {
        let (v, wall) = bench(&args, &dir.join("b.json"));
        assert_eq!(v["name"], name);
        let t = &v["timing_s"];
        let repeats = args[args.iter().position(|a| *a == "--repeats").unwrap() + 1].parse::<u64>().unwrap();
        assert_eq!(t["repeats"].as_u64(), Some(repeats));
        let (min, med, max) = (t["min"].as_f64().unwrap(), t["median"].as_f64().unwrap(), t["max"].as_f64().unwrap());
        assert!(0.0 < min && min <= med && med <= max, "{t}");
        // Every run, in the order measured: as many as asked, spanning exactly min ..= max.
        let samples: Vec<f64> = t["samples"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap()).collect();
        assert_eq!(samples.len() as u64, repeats, "{t}");
        assert!(samples.contains(&min) && samples.contains(&max) && samples.iter().all(|&s| min <= s && s <= max), "{t}");
        assert!((v["rate"].as_f64().unwrap() - batch / med).abs() <= 1e-9 * batch / med, "rate = images / median: {v}");
        assert_eq!(v["rate_unit"], "images/s");
        assert!(min * repeats as f64 <= wall, "{repeats} runs of at least {min} s in {wall} s");
        let rss = v["peak_rss_bytes"].as_f64().unwrap();
        assert!(rss > 4e6, "peak RSS {rss}");
        if let Some(total) = mem_total {
            assert!(rss < total, "peak RSS {rss} over the machine's {total}");
        }
    }
}

#[test]
fn hydra_cpu_level_narrows_the_kernels_path() {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has = |f: &str| flags.lines().find(|l| l.starts_with("flags")).is_some_and(|l| l.split_whitespace().any(|x| x == f));
    let widest = if has("avx512f") && has("avx512bw") && has("avx512vl") { "avx512" } else if has("avx2") && has("fma") { "avx2" } else { "baseline" };
    let avx2 = if widest == "baseline" { "baseline" } else { "avx2" };
    // Empty: the default (so that a suite run with the variable set still checks it).
    for (level, want) in [("", widest), ("avx2", avx2), ("baseline", "baseline")] {
        let env = [("HYDRA_CPU_LEVEL", level)];
        let o = hydra_env(&["bench", "infer", "--size", "32x32", "--warmup", "0", "--repeats", "1"], &env);
        assert!(o.status.success(), "{}", text(&o).1);
        assert!(text(&o).0.contains(&format!("hydra CPU kernels {want}")), "{level:?}: {}", text(&o).0);
    }
}

/// `bench infer` says how many inverted residual blocks ran fused: some at 480×640 by default,
/// none with `--no-fuse` (named `_nofuse`); `--no-fuse` on a training step is refused.
#[test]
fn no_fuse_runs_every_block_as_its_layers() {
    let fused = |o: &std::process::Output| -> u64 {
        let out = text(o).0;
        let line = out.lines().find(|l| l.starts_with("inverted residual blocks fused: ")).unwrap_or_else(|| panic!("no fused count: {out}"));
        line.split_whitespace().nth(4).unwrap().parse().unwrap()
    };
    let args = ["bench", "infer", "--size", "480x640", "--warmup", "0", "--repeats", "1"];
    let o = hydra_env(&args, &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(fused(&o) > 0, "{}", text(&o).0);
    let o = hydra_env(&[&args[..], &["--no-fuse"]].concat(), &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(fused(&o), 0, "{}", text(&o).0);
    assert!(text(&o).0.contains("infer_480x640_b1_nofuse"), "{}", text(&o).0);
    let o = hydra_env(&["bench", "train", "--size", "64x64", "--repeats", "1", "--no-fuse"], &[]);
    assert!(!o.status.success() && text(&o).1.contains("--no-fuse is for `hydra bench infer`"), "{}", text(&o).1);
}
