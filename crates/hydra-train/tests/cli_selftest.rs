//! `hydra selftest`: checks a device against the PyTorch references in fixtures/, says PASS or
//! FAIL per check with the measured figures, fails the command when a check fails.

mod common;

use common::{fixtures, hydra_env, scratch, text};
use hydra_data::npy;

#[test]
fn selftest_passes_on_flex_and_reports_its_measurements() {
    let dir = scratch("selftest-pass");
    let json = dir.join("selftest.json");
    let f = fixtures();
    let o = hydra_env(&["selftest", "--fixtures", f.to_str().unwrap(), "--json", json.to_str().unwrap()], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("PASS inference on frame 000464 against PyTorch") && out.contains("PASS SGD step at 2 × 480×640 against PyTorch"), "{out}");
    assert!(out.contains("all 2 checks passed on flex"), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["backend"], "flex");
    assert_eq!(doc["failed"], 0);
    let segm = doc["checks"][0]["details"]["segm"].as_f64().unwrap();
    assert!(segm > 0.0 && segm <= 1e-4, "{segm}");
    let step = &doc["checks"][1]["details"];
    assert!(step["report"]["median"].as_f64().unwrap() <= 2.0 * step["spread"]["median"].as_f64().unwrap());
}

/// `--portable`: the same checks through Burn's portable operations (what a GPU runs), plus
/// the long-reduction check; each within its stated bound (twice the path's own one-ulp
/// spread), the measurements in the JSON report.
#[test]
fn selftest_portable_passes_with_its_bounds_and_the_reduction_check() {
    let dir = scratch("selftest-portable");
    let json = dir.join("selftest.json");
    let f = fixtures();
    let o = hydra_env(&["selftest", "--portable", "--fixtures", f.to_str().unwrap(), "--json", json.to_str().unwrap()], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("all 3 checks passed on flex"), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["failed"], 0);
    let checks = doc["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["check"].as_str().unwrap()).collect();
    assert_eq!(names, ["inference on frame 000464 against PyTorch", "long reductions (reduction_check)", "SGD step at 2 × 480×640 against PyTorch"]);
    assert!(checks.iter().all(|c| c["passed"] == true));
    let d = &checks[0]["details"];
    for (k, task) in ["segm", "depth"].iter().enumerate() {
        let (got, bound) = (d[task].as_f64().unwrap(), d["bounds"][k].as_f64().unwrap());
        assert!(got > 0.0 && got <= bound && bound < 5e-3, "{task}: {got} vs bound {bound}");
    }
    let step = &checks[2]["details"];
    assert!(step["report"]["median"].as_f64().unwrap() <= 2.0 * step["spread"]["median"].as_f64().unwrap());
    assert!(step["report"]["worst"][0].as_f64().unwrap() <= 2.0 * step["spread"]["worst"][0].as_f64().unwrap());
}

/// A fixtures folder whose PyTorch segmentation outputs are 2 % off: the inference check
/// fails, the step check still passes, and the command fails saying how many did.
#[test]
fn selftest_fails_when_the_device_disagrees_with_the_reference() {
    let dir = scratch("selftest-fail");
    let f = fixtures();
    for sub in ["pytorch", "samples/nyud"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for entry in std::fs::read_dir(f.join(sub)).unwrap() {
            let p = entry.unwrap().path();
            std::os::unix::fs::symlink(&p, dir.join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    let segm = dir.join("pytorch/hydranet40_s0_000464_segm.npy");
    let reference = npy::read(&segm).unwrap();
    let off: Vec<f32> = reference.to_f32().iter().map(|v| v * 1.02).collect();
    std::fs::remove_file(&segm).unwrap();
    std::fs::write(&segm, npy::to_bytes_f32(&reference.shape, &off)).unwrap();
    let json = dir.join("selftest.json");
    let o = hydra_env(&["selftest", "--fixtures", dir.to_str().unwrap(), "--json", json.to_str().unwrap()], &[]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}\n{err}");
    assert!(out.contains("FAIL inference on frame 000464") && out.contains("PASS SGD step"), "{out}");
    assert!(err.contains("1 of 2 checks failed on flex"), "{err}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["failed"], 1);
    let measured = doc["checks"][0]["details"]["segm"].as_f64().unwrap();
    assert!((measured - 0.02 / 1.02).abs() < 1e-3, "{measured}");
}

#[test]
fn selftest_without_fixtures_says_where_it_looked() {
    let dir = scratch("selftest-missing");
    let o = hydra_env(&["selftest", "--fixtures", dir.join("nowhere").to_str().unwrap()], &[]);
    let (out, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("nowhere/pytorch/hydranet40_s0.ckpt: not found") && err.contains("--fixtures"), "{out}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
}
