//! TEMPORARY stand-in while the ray caster is written (replaced by synthetic.rs).
use hydra_model::init::SplitMix64;
pub const SYNTH_CLASSES: [&str; 6] = ["floor", "wall", "ceiling", "box", "sphere", "cylinder"];
pub const SYNTH_COLORS: [[u8; 3]; 6] = [[128, 64, 0], [200, 200, 160], [240, 240, 240], [120, 80, 40], [200, 40, 40], [40, 120, 200]];
#[derive(Debug, Clone, PartialEq)]
pub struct SceneImage { pub width: usize, pub height: usize, pub rgb: Vec<u8>, pub label: Vec<u8>, pub depth: Vec<f32> }
pub fn render_scene(seed: u64, index: u64, height: usize, width: usize) -> SceneImage {
    let mut r = SplitMix64::stream(seed, index);
    let n = height * width;
    let label: Vec<u8> = (0..n).map(|i| ((i / width) * 3 / height) as u8).collect();
    SceneImage { width, height, rgb: (0..n * 3).map(|_| r.below(256) as u8).collect(), depth: label.iter().map(|&l| 1.0 + l as f32).collect(), label }
}
