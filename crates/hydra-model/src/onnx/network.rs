//! HydraNet as ONNX nodes: the encoder, the decoder with its CRP blocks, the task heads and
//! the optional post-processing, each the same arithmetic as the Burn modules' `forward`.
//! Initializers carry the reference (PyTorch) key of the tensor they hold; a folded layer's
//! convolution is `{prefix}.folded.weight` / `.bias` (values that are in no checkpoint).

use burn::nn::conv::Conv2d;
use burn::prelude::*;

use super::graph::{Attr, GraphBuilder};
use crate::conv_bn::ConvBn;
use crate::crp::Crp;
use crate::head::TaskHead;
use crate::state::RawTensor;
use crate::{HydraNet, Task};

/// A value of the graph and, for a static graph, its `[N, C, H, W]` (a Resize's sizes are then
/// constants; otherwise `Shape`/`Slice`/`Concat` compute them at run time).
#[derive(Debug, Clone)]
pub struct Value {
    pub name: String,
    pub shape: Option<[usize; 4]>,
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    RawTensor::from_tensor(t).to_f32()
}

/// The lowering state: the graph, the ReLU6 bounds, the Slice bounds once needed.
pub struct Lowering {
    pub g: GraphBuilder,
    relu6_bounds: (String, String),
    slice_bounds: Option<[String; 4]>,
}

impl Default for Lowering {
    fn default() -> Self {
        Self::new()
    }
}

impl Lowering {
    /// An empty graph with the ReLU6 bounds as initializers.
    pub fn new() -> Self {
        let mut g = GraphBuilder::default();
        let lo = g.f32("relu6.min", &[], &[0.0]);
        let hi = g.f32("relu6.max", &[], &[6.0]);
        Self { g, relu6_bounds: (lo, hi), slice_bounds: None }
    }

    /// `Clip(x, 0, 6)`.
    fn relu6(&mut self, x: &Value) -> Value {
        let (lo, hi) = self.relu6_bounds.clone();
        Value { name: self.g.node("Clip", "relu6", &[&x.name, &lo, &hi], &[]), shape: x.shape }
    }

    fn add(&mut self, a: &Value, b: &Value) -> Value {
        Value { name: self.g.node("Add", "add", &[&a.name, &b.name], &[]), shape: a.shape }
    }

    /// A convolution with `weight [O, I/g, k, k]` (and `bias [O]`), padding `k / 2`.
    fn conv_raw(&mut self, x: &Value, name: &str, weight: (&str, Vec<usize>, Vec<f32>), bias: Option<(&str, Vec<f32>)>, stride: usize, groups: usize) -> Value {
        let (wkey, wshape, wv) = weight;
        let k = wshape[2];
        let w = self.g.f32(wkey, &wshape, &wv);
        let mut inputs = vec![x.name.clone(), w];
        if let Some((bkey, bv)) = bias {
            inputs.push(self.g.f32(bkey, &[bv.len()], &bv));
        }
        let p = (k / 2) as i64;
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let out = self.g.node(
            "Conv",
            name,
            &inputs,
            &[
                ("kernel_shape", Attr::Ints(vec![k as i64, k as i64])),
                ("strides", Attr::Ints(vec![stride as i64, stride as i64])),
                ("pads", Attr::Ints(vec![p, p, p, p])),
                ("dilations", Attr::Ints(vec![1, 1])),
                ("group", Attr::Int(groups as i64)),
            ],
        );
        let shape = x.shape.map(|[n, _, h, w]| [n, wshape[0], h.div_ceil(stride), w.div_ceil(stride)]);
        Value { name: out, shape }
    }

    /// A Burn `Conv2d` whose reference keys are `{key}.weight` (and `{key}.bias`).
    fn conv(&mut self, x: &Value, key: &str, conv: &Conv2d) -> Value {
        debug_assert_eq!(conv.dilation, [1, 1]);
        let w = conv.weight.val();
        let shape = w.dims().to_vec();
        let bias = conv.bias.as_ref().map(|b| host(b.val()));
        let (wk, bk) = (format!("{key}.weight"), format!("{key}.bias"));
        self.conv_raw(x, key, (&wk, shape, host(w)), bias.map(|b| (bk.as_str(), b)), conv.stride[0], conv.groups)
    }

    /// Convolution → BatchNormalization (or the folded convolution with its bias) → ReLU6.
    fn conv_bn(&mut self, x: &Value, prefix: &str, l: &ConvBn) -> Value {
        let y = if l.folded {
            self.conv(x, &format!("{prefix}.folded"), &l.conv)
        } else {
            let c = self.conv(x, &format!("{prefix}.0"), &l.conv);
            let bn = &l.bn;
            let k = |n: &str| format!("{prefix}.1.{n}");
            let ch = bn.num_features();
            let gamma = self.g.f32(&k("weight"), &[ch], &host(bn.gamma.val()));
            let beta = self.g.f32(&k("bias"), &[ch], &host(bn.beta.val()));
            let mean = self.g.f32(&k("running_mean"), &[ch], &host(bn.running_mean.value()));
            let var = self.g.f32(&k("running_var"), &[ch], &host(bn.running_var.value()));
            let name = self.g.node(
                "BatchNormalization",
                &format!("{prefix}.bn"),
                &[&c.name, &gamma, &beta, &mean, &var],
                &[("epsilon", Attr::Float(bn.epsilon as f32))],
            );
            Value { name, shape: c.shape }
        };
        if l.relu6 { self.relu6(&y) } else { y }
    }

    /// MobileNetV2: `[N, 3, H, W]` → the features of `layer3`..`layer8`.
    fn encoder(&mut self, net: &HydraNet, image: &Value) -> Vec<Value> {
        let e = &net.encoder;
        let mut x = self.conv_bn(image, "layer1", &e.stem);
        let mut features = Vec::new();
        for (i, stage) in e.stages.iter().enumerate() {
            for (j, b) in stage.iter().enumerate() {
                let p = format!("layer{}.{j}.output", i + 2);
                let y = self.conv_bn(&x, &format!("{p}.0"), &b.expand);
                let y = self.conv_bn(&y, &format!("{p}.1"), &b.depthwise);
                let y = self.conv_bn(&y, &format!("{p}.2"), &b.project);
                x = if b.residual { self.add(&x, &y) } else { y };
            }
            if i >= 1 {
                features.push(x.clone());
            }
        }
        features
    }

    /// `Shape(x)[from..to]` (int64), as a graph value; `shape` is `Shape(x)` if already made.
    fn shape_part(&mut self, shape: &str, from: i64, to: i64) -> String {
        let bounds = self.slice_bounds.get_or_insert_with(|| {
            let mut b = |n: &str, v: i64| self.g.i64(n, &[1], &[v]);
            [b("shape.0", 0), b("shape.1", 1), b("shape.2", 2), b("shape.4", 4)]
        });
        let [b0, b1, b2, b4] = bounds.clone();
        let pick = |v: i64| match v {
            0 => b0.clone(),
            1 => b1.clone(),
            2 => b2.clone(),
            _ => b4.clone(),
        };
        let (start, end, axis) = (pick(from), pick(to), b0.clone());
        self.g.node("Slice", "shape_slice", &[shape, &start, &end, &axis], &[])
    }

    /// Bilinear resize of `x` to the height and width of `like` (PyTorch's
    /// `interpolate(mode="bilinear", align_corners=False)`: ONNX `linear` + `half_pixel`).
    fn resize_like(&mut self, x: &Value, like: &Value, channels: usize, name: &str) -> Value {
        let (sizes, shape) = match (x.shape, like.shape) {
            (Some([n, c, _, _]), Some([_, _, h, w])) => {
                let key = self.g.fresh(&format!("{name}.sizes"));
                (self.g.i64(&key, &[4], &[n as i64, c as i64, h as i64, w as i64]), Some([n, c, h, w]))
            }
            _ => {
                // [N, C, H, W] = [Shape(like)[0], C of x (a constant), Shape(like)[2:4]]: one
                // Shape per Resize (N is the same for both tensors).
                let shape = self.g.node("Shape", &format!("{name}.shape"), &[&like.name], &[]);
                let n = self.shape_part(&shape, 0, 1);
                let hw = self.shape_part(&shape, 2, 4);
                let key = self.g.fresh(&format!("{name}.channels"));
                let c = self.g.i64(&key, &[1], &[channels as i64]);
                (self.g.node("Concat", &format!("{name}.sizes"), &[&n, &c, &hw], &[("axis", Attr::Int(0))]), None)
            }
        };
        let out = self.g.node(
            "Resize",
            name,
            &[&x.name, "", "", &sizes],
            &[("mode", Attr::Str("linear")), ("coordinate_transformation_mode", Attr::Str("half_pixel"))],
        );
        Value { name: out, shape }
    }

    /// Chained residual pooling: `x + Σ_i top_i`, `top_i = conv_i(maxpool5(top_{i−1}))`.
    fn crp(&mut self, x: &Value, prefix: &str, crp: &Crp) -> Value {
        let mut x = x.clone();
        let mut top = x.clone();
        for (i, conv) in crp.convs.iter().enumerate() {
            let key = format!("{prefix}.0.{}_outvar_dimred", i + 1);
            let pooled = self.g.node(
                "MaxPool",
                &format!("{key}.pool"),
                &[&top.name],
                &[("kernel_shape", Attr::Ints(vec![5, 5])), ("strides", Attr::Ints(vec![1, 1])), ("pads", Attr::Ints(vec![2, 2, 2, 2]))],
            );
            top = self.conv(&Value { name: pooled, shape: top.shape }, &key, conv);
            x = self.add(&x, &top);
        }
        x
    }

    /// The Light-Weight RefineNet decoder (as `RefineNetDecoder::forward`): `[N, width, H/4, W/4]`.
    fn decoder(&mut self, net: &HydraNet, f: &[Value]) -> Value {
        let d = &net.decoder;
        let width = d.conv3.weight.dims()[0];
        let (l3, l4, l5, l6, l7, l8) = (&f[0], &f[1], &f[2], &f[3], &f[4], &f[5]);
        let a = self.conv(l7, "conv7", &d.conv7);
        let b = self.conv(l8, "conv8", &d.conv8);
        let s = self.add(&a, &b);
        let r = self.relu6(&s);
        let r = self.crp(&r, "crp4", &d.crp4);
        let r = self.conv(&r, "conv_adapt4", &d.conv_adapt4);
        let r = self.resize_like(&r, l6, width, "up4");
        let a = self.conv(l5, "conv5", &d.conv5);
        let b = self.conv(l6, "conv6", &d.conv6);
        let s = self.add(&a, &b);
        let s = self.add(&s, &r);
        let r = self.relu6(&s);
        let r = self.crp(&r, "crp3", &d.crp3);
        let r = self.conv(&r, "conv_adapt3", &d.conv_adapt3);
        let r = self.resize_like(&r, l4, width, "up3");
        let a = self.conv(l4, "conv4", &d.conv4);
        let s = self.add(&a, &r);
        let r = self.relu6(&s);
        let r = self.crp(&r, "crp2", &d.crp2);
        let r = self.conv(&r, "conv_adapt2", &d.conv_adapt2);
        let r = self.resize_like(&r, l3, width, "up2");
        let a = self.conv(l3, "conv3", &d.conv3);
        let s = self.add(&a, &r);
        let r = self.relu6(&s);
        self.crp(&r, "crp1", &d.crp1)
    }

    /// A task head, `out(relu6(pre(x)))`.
    fn head(&mut self, x: &Value, task: Task, head: &TaskHead) -> Value {
        let k = task.key();
        let y = self.conv(x, &format!("pre_{k}"), &head.pre);
        let y = self.relu6(&y);
        self.conv(&y, k, &head.out)
    }

    /// The whole network on `image`; per task (in key order) its output value.
    pub fn network(&mut self, net: &HydraNet, image: &Value) -> Vec<(Task, Value)> {
        let features = self.encoder(net, image);
        let x = self.decoder(net, &features);
        net.tasks().into_iter().map(|t| (t, self.head(&x, t, net.head(t).expect("task has a head")))).collect()
    }

    /// `x` bilinearly upsampled to the input's size, as `hydra predict` does.
    pub fn upsample_to_input(&mut self, x: &Value, channels: usize, image: &Value, name: &str) -> String {
        self.resize_like(x, image, channels, name).name
    }
}
