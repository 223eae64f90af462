//! HydraNet's structure: parameter counts, state-dict keys, output shapes, gradients.

use burn::prelude::*;
use burn::tensor::Distribution;
use hydra_model::{HydraNetConfig, Task};

#[test]
fn parameter_counts_match_the_published_model() {
    let device = Device::flex();
    // Figures of the reference implementation (REFERENCE.md).
    assert_eq!(HydraNetConfig::new(40).init(&device).parameter_count(), 3_070_057);
    assert_eq!(HydraNetConfig::new(13).init(&device).parameter_count(), 3_007_822);
    assert_eq!(HydraNetConfig::new(6).init(&device).parameter_count(), 2_991_687);
}

#[test]
fn state_dict_has_the_reference_keys() {
    let sd = HydraNetConfig::new(40).init(&Device::flex()).state_dict();
    assert_eq!(sd.len(), 343);
    assert_eq!(sd.keys().filter(|k| !k.ends_with("num_batches_tracked")).count(), 291);
    for (key, shape) in [
        ("layer1.0.weight", vec![32, 3, 3, 3]),
        ("layer1.1.running_var", vec![32]),
        ("layer2.0.output.0.0.weight", vec![32, 32, 1, 1]), // the t = 1 expansion is kept
        ("layer2.0.output.1.0.weight", vec![32, 1, 3, 3]),
        ("layer8.0.output.2.0.weight", vec![320, 960, 1, 1]),
        ("conv8.weight", vec![256, 320, 1, 1]),
        ("crp4.0.4_outvar_dimred.weight", vec![256, 256, 1, 1]),
        ("crp1.0.1_outvar_dimred.weight", vec![256, 1, 1, 1]), // depthwise
        ("conv_adapt2.weight", vec![256, 256, 1, 1]),
        ("pre_segm.weight", vec![256, 1, 1, 1]),
        ("segm.weight", vec![40, 256, 3, 3]),
        ("segm.bias", vec![40]),
        ("depth.bias", vec![1]),
    ] {
        assert_eq!(sd.get(key).unwrap_or_else(|| panic!("missing {key}")).shape, shape, "{key}");
    }
    assert!(sd.get("layer1.1.num_batches_tracked").unwrap().shape.is_empty());
    assert!(sd.get("pre_normal.weight").is_none());
}

#[test]
fn third_task_adds_the_normal_head() {
    let net = HydraNetConfig::new(40).with_tasks(vec![Task::Segmentation, Task::Depth, Task::Normals]).init(&Device::flex());
    let sd = net.state_dict();
    assert_eq!(sd.get("normal.weight").unwrap().shape, vec![3, 256, 3, 3]);
    assert_eq!(net.parameter_count(), 3_070_057 + 256 + 256 * 9 * 3 + 3);
}

#[test]
fn output_stride_is_four_for_any_size() {
    let device = Device::flex();
    let net = HydraNetConfig::new(6).init(&device);
    for (h, w, oh, ow) in [(480, 640, 120, 160), (370, 1226, 93, 307), (65, 97, 17, 25)] {
        let out = net.forward(hydra_testkit::random([1, 3, h, w], Distribution::Normal(0.0, 1.0), line!() as u64, &device));
        let segm = out.segm.unwrap();
        let depth = out.depth.unwrap();
        assert_eq!(segm.dims(), [1, 6, oh, ow], "{h}x{w}");
        assert_eq!(depth.dims(), [1, 1, oh, ow], "{h}x{w}");
        let finite = |t: Tensor<4>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap().iter().all(|v| v.is_finite());
        assert!(finite(segm) && finite(depth));
    }
}

#[test]
fn every_parameter_receives_a_gradient_from_the_summed_loss() {
    let device = Device::flex().autodiff();
    let net = HydraNetConfig::new(5).with_tasks(vec![Task::Segmentation, Task::Depth, Task::Normals]).init(&device);
    let x = hydra_testkit::random::<4>([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), line!() as u64, &device);
    let out = net.forward(x);
    let loss = out.segm.unwrap().powf_scalar(2.0).mean() + out.depth.unwrap().abs().mean() + out.normal.unwrap().mean();
    let grads = loss.backward();
    struct Check<'a> {
        grads: &'a burn::tensor::Gradients,
        with: usize,
        without: Vec<String>,
        path: Vec<String>,
    }
    impl burn::module::ModuleVisitor for Check<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            if !p.is_require_grad() {
                return; // running statistics
            }
            match p.val().grad(self.grads) {
                Some(g) if g.clone().abs().sum().into_scalar::<f32>() > 0.0 => self.with += 1,
                _ => self.without.push(self.path.join(".")),
            }
        }
    }
    let mut check = Check { grads: &grads, with: 0, without: vec![], path: vec![] };
    burn::module::Module::visit(&net, &mut check);
    assert!(check.without.is_empty(), "no gradient for: {:?}", check.without);
    // 52 convs and 52 BatchNorms (γ, β) in the encoder, 6 + 16 + 3 in the decoder, 3 heads × 3.
    assert_eq!(check.with, 52 + 52 * 2 + 6 + 16 + 3 + 3 * 3);
}

#[test]
fn scratch_init_starts_crp_as_identity_and_heads_alive() {
    use hydra_model::InitScheme;
    let device = Device::flex();
    let sd = HydraNetConfig::new(6).with_init(InitScheme::Scratch).init(&device).state_dict();
    assert!(sd.get("crp2.0.3_outvar_dimred.weight").unwrap().to_f32().iter().all(|&v| v == 0.0));
    assert!(sd.get("pre_segm.weight").unwrap().to_f32().iter().all(|&v| v == 1.0));
    let enc = sd.get("layer4.1.output.0.0.weight").unwrap();
    let std = (enc.to_f32().iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / enc.numel() as f64).sqrt();
    let expected = (2.0 / (enc.shape[0] as f64)).sqrt(); // Kaiming fan-out of a 1×1 convolution
    assert!((std / expected - 1.0).abs() < 0.05, "{std} vs {expected}");
    // Same seed, same network; another scheme, another network.
    let again = HydraNetConfig::new(6).with_init(InitScheme::Scratch).init(&device).state_dict();
    assert!(sd == again);
    assert!(sd != HydraNetConfig::new(6).init(&device).state_dict());
}

#[test]
fn batch_norm_input_shapes_follow_the_encoder_resolutions() {
    let net = HydraNetConfig::new(40).init(&Device::flex());
    let shapes = net.encoder.batch_norm_input_shapes([2, 481, 641]);
    // One per encoder BatchNorm, in forward order: the stem, then expand / depthwise / project.
    let sd = net.state_dict();
    let mut keys = vec!["layer1.1.running_var".to_string()];
    for (stage, blocks) in [1usize, 2, 3, 4, 3, 3, 1].iter().enumerate() {
        for j in 0..*blocks {
            for part in 0..3 {
                keys.push(format!("layer{}.{j}.output.{part}.1.running_var", stage + 2));
            }
        }
    }
    assert_eq!(shapes.len(), keys.len());
    for (shape, key) in shapes.iter().zip(&keys) {
        assert_eq!(vec![shape[1]], sd.get(key).unwrap().shape, "{key}");
    }
    // Sizes ⌈H/s⌉ × ⌈W/s⌉ (481 → 241 → 121 → 61 → 31 → 16).
    let at = |key: &str| shapes[keys.iter().position(|k| k == key).unwrap()];
    assert_eq!(at("layer1.1.running_var"), [2, 32, 241, 321]);
    assert_eq!(at("layer3.0.output.0.1.running_var"), [2, 96, 241, 321]); // expansion before the stride
    assert_eq!(at("layer3.0.output.1.1.running_var"), [2, 96, 121, 161]);
    assert_eq!(at("layer6.2.output.2.1.running_var"), [2, 96, 31, 41]);
    assert_eq!(at("layer8.0.output.2.1.running_var"), [2, 320, 16, 21]);
    // The layers themselves, named as in the reference, each input the previous output.
    let layers = net.encoder.layers([2, 481, 641]);
    assert_eq!(layers.iter().map(|l| format!("{}.1.running_var", l.name)).collect::<Vec<_>>(), keys);
    assert_eq!(layers[0].input, [2, 3, 481, 641]);
    for pair in layers.windows(2) {
        assert_eq!(pair[1].input, pair[0].output, "{}", pair[1].name);
    }
}
