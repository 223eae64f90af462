//! Every configuration in `configs/` loads, and says what it means: each key the file sets has
//! that value in the resolved configuration (nothing ignored, nothing renamed on the way), the
//! built-in palettes they name exist, and the quickstart trains a few iterations as shipped
//! (only its data shrunk).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::scratch;
use hydra_train::config::Config;
use hydra_train::train::{train, Resume, Silent, TrainOptions};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

fn same(a: &toml::Value, b: &toml::Value) -> bool {
    match (a, b) {
        (toml::Value::Integer(x), toml::Value::Float(y)) | (toml::Value::Float(y), toml::Value::Integer(x)) => *x as f64 == *y,
        (toml::Value::Array(x), toml::Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        _ => a == b,
    }
}

#[test]
fn every_shipped_config_loads_with_the_values_it_sets() {
    let mut names = Vec::new();
    for e in std::fs::read_dir(repo().join("configs")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let config = Config::from_toml(&text, &[]).unwrap_or_else(|e| panic!("{}: {}", path.display(), e.0));
        config.check_palette().unwrap_or_else(|e| panic!("{}: {}", path.display(), e.0));
        let (mut set, mut resolved) = (BTreeMap::new(), BTreeMap::new());
        flatten("", &toml::Value::Table(text.parse().unwrap()), &mut set);
        flatten("", &toml::Value::Table(config.to_toml().parse().unwrap()), &mut resolved);
        for (k, v) in &set {
            let got = resolved.get(k).unwrap_or_else(|| panic!("{}: `{k}` is set but not in the resolved config", path.display()));
            assert!(same(v, got), "{}: `{k}` = {v} resolves to {got}", path.display());
        }
        // Loading the resolved config again gives the same config.
        assert_eq!(Config::from_toml(&config.to_toml(), &[]).unwrap(), config, "{}", path.display());
        names.push(path.file_name().unwrap().to_string_lossy().to_string());
    }
    names.sort();
    assert_eq!(names, ["kitti.toml", "nyuv2.toml", "quickstart.toml"]);
}

#[test]
fn the_quickstart_trains_as_shipped() {
    let dir = scratch("quickstart-as-shipped");
    let run = dir.join("run");
    let overrides: Vec<String> = [
        "data.train.count=24".to_string(),
        "data.val.count=4".to_string(),
        "training.epochs=1".to_string(),
        "training.iters_per_epoch=3".to_string(),
        format!("output.dir=\"{}\"", run.display()),
    ]
    .to_vec();
    let config = Config::from_file(&repo().join("configs/quickstart.toml"), &overrides).unwrap();
    let s = train(TrainOptions { config, resume: Resume::No, stop_after_epochs: None, allow_config_change: false }, &mut Silent).unwrap();
    assert_eq!((s.epochs_done, s.iterations), (1, 3));
    let m = s.last_metrics.expect("the last epoch is validated");
    assert!(m.segmentation.unwrap().miou.is_finite() && m.depth.unwrap().rmse.is_finite());
}
