//! Helpers shared by hydra-model's integration tests (`mod common;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The PyTorch-made fixtures: `fixtures/pytorch/` of the repository.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pytorch")
}

/// A fresh empty directory for one test, removed when the test passes.
pub fn scratch(name: &str) -> hydra_testkit::Scratch {
    hydra_testkit::scratch("hydra-model", name)
}

/// A tensor's values as f32, in row-major order.
pub fn vec4(t: burn::tensor::Tensor<4>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// A tensor's values as f32.
pub fn vec1(t: burn::tensor::Tensor<1>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// `|x − y| ≤ tol` everywhere.
pub fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "index {i}: {x} vs {y}");
    }
}

/// `|x − y| ≤ tol · max|b|` everywhere.
pub fn close_rel(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}, index {i}: {x} vs {y} (scale {scale})");
    }
}
