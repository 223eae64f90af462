//! torchvision's MobileNetV2 keys → the reference encoder layout.
//!
//! torchvision drops the t = 1 block's 1×1 expansion; the reference keeps it. Its input is
//! already a ReLU6 output, so an identity expansion (weight I, BN γ = 1, β = 0, mean 0,
//! var = 1 − ε) followed by ReLU6 changes nothing: the import is exact.

use crate::encoder::{MOBILENET_V2_STAGES, STEM_CHANNELS};
use crate::state::{RawTensor, StateDict};

/// Whether `state` has torchvision MobileNetV2 keys.
pub fn is_torchvision(state: &StateDict) -> bool {
    state.get("features.0.0.weight").is_some() && state.get("layer1.0.weight").is_none()
}

const BN: [&str; 5] = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"];

/// Convert to reference keys (encoder only). Keys that do not belong to the encoder
/// (`features.18`, `classifier`) are dropped; a missing key is left missing so that the strict
/// load reports it by its reference name.
pub fn to_reference(tv: &StateDict, eps: f32) -> StateDict {
    let mut out = StateDict::new();
    let mut copy = |dst: String, src: String, out: &mut StateDict| {
        if let Some(t) = tv.get(&src) {
            out.insert(dst, t.clone());
        }
    };
    let bn = |dst: &str, src: &str, out: &mut StateDict, copy: &mut dyn FnMut(String, String, &mut StateDict)| {
        for k in BN {
            copy(format!("{dst}.{k}"), format!("{src}.{k}"), out);
        }
    };
    copy("layer1.0.weight".into(), "features.0.0.weight".into(), &mut out);
    bn("layer1.1", "features.0.1", &mut out, &mut copy);
    // The t = 1 block: identity expansion, then torchvision's depthwise and projection.
    let c = STEM_CHANNELS;
    let mut eye = vec![0.0f32; c * c];
    for i in 0..c {
        eye[i * c + i] = 1.0;
    }
    out.insert("layer2.0.output.0.0.weight", RawTensor::f32(vec![c, c, 1, 1], eye));
    out.insert("layer2.0.output.0.1.weight", RawTensor::f32(vec![c], vec![1.0; c]));
    out.insert("layer2.0.output.0.1.bias", RawTensor::f32(vec![c], vec![0.0; c]));
    out.insert("layer2.0.output.0.1.running_mean", RawTensor::f32(vec![c], vec![0.0; c]));
    out.insert("layer2.0.output.0.1.running_var", RawTensor::f32(vec![c], vec![1.0 - eps; c]));
    copy("layer2.0.output.1.0.weight".into(), "features.1.conv.0.0.weight".into(), &mut out);
    bn("layer2.0.output.1.1", "features.1.conv.0.1", &mut out, &mut copy);
    copy("layer2.0.output.2.0.weight".into(), "features.1.conv.1.weight".into(), &mut out);
    bn("layer2.0.output.2.1", "features.1.conv.2", &mut out, &mut copy);
    let mut f = 2;
    for (stage, &(_, _, n, _)) in MOBILENET_V2_STAGES.iter().enumerate().skip(1) {
        for b in 0..n {
            let p = format!("layer{}.{b}.output", stage + 2);
            let q = format!("features.{f}.conv");
            copy(format!("{p}.0.0.weight"), format!("{q}.0.0.weight"), &mut out);
            bn(&format!("{p}.0.1"), &format!("{q}.0.1"), &mut out, &mut copy);
            copy(format!("{p}.1.0.weight"), format!("{q}.1.0.weight"), &mut out);
            bn(&format!("{p}.1.1"), &format!("{q}.1.1"), &mut out, &mut copy);
            copy(format!("{p}.2.0.weight"), format!("{q}.2.weight"), &mut out);
            bn(&format!("{p}.2.1"), &format!("{q}.3"), &mut out, &mut copy);
            f += 1;
        }
    }
    out
}
