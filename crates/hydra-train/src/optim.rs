//! Optimisers with PyTorch's update rules (SGD with momentum, dampening 0 and optional
//! Nesterov; Adam; AdamW), per-group learning rate and weight decay, gradient clipping by
//! global norm. State is keyed by each parameter's module path, so checkpoints are stable
//! across runs and exactly restorable.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// The update rule.
#[derive(Debug, Clone, PartialEq)]
pub enum OptimizerKind {
    /// `g ← g + λp; b ← μb + g (b ← g at the first step); g ← g + μb (Nesterov) or b; p ← p − η g`.
    Sgd { momentum: f64, nesterov: bool },
    /// Adam with L2 weight decay added to the gradient (PyTorch `Adam`).
    Adam { beta1: f64, beta2: f64, eps: f64 },
    /// Adam with decoupled weight decay `p ← p (1 − ηλ)` (PyTorch `AdamW`).
    AdamW { beta1: f64, beta2: f64, eps: f64 },
}

/// Learning rate and weight decay of a parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyper {
    pub lr: f64,
    pub weight_decay: f64,
}

/// The state of one parameter: step count and flattened slots (momentum, or m and v).
#[derive(Debug, Clone)]
pub struct ParamState {
    pub step: u64,
    pub slots: Vec<Tensor<1>>,
}

/// An optimiser.
#[derive(Debug, Clone)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub state: BTreeMap<String, ParamState>,
}

/// Sum of squared gradients over a module's parameters.
struct NormVisitor<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for NormVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.powf_scalar(2.0).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// The global L2 norm of the gradients of `module`'s parameters.
pub fn grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = NormVisitor { grads, total: None };
    module.visit(&mut v);
    v.total.map(|t| (t.into_scalar::<f32>() as f64).sqrt()).unwrap_or(0.0)
}

struct StepMapper<'a, F: Fn(&str) -> Hyper> {
    optim: &'a mut Optimizer,
    grads: &'a mut GradientsParams,
    hyper: F,
    grad_scale: f64,
    path: Vec<String>,
}

impl<F: Fn(&str) -> Hyper> ModuleMapper for StepMapper<'_, F> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let path = self.path.join(".");
        let h = (self.hyper)(&path);
        let require_grad = tensor.is_require_grad();
        let dims = tensor.dims();
        let n: usize = dims.iter().product();
        let p = tensor.inner().reshape([n]);
        let mut g = grad.reshape([n]);
        if self.grad_scale != 1.0 {
            g = g.mul_scalar(self.grad_scale);
        }
        let updated = self.optim.update(&path, p, g, h).reshape(dims);
        let t = Tensor::from_inner(updated);
        let t = if require_grad { t.require_grad() } else { t };
        Param::from_mapped_value(id, t, mapper)
    }
}

impl Optimizer {
    /// A fresh optimiser.
    pub fn new(kind: OptimizerKind) -> Self {
        Self { kind, state: BTreeMap::new() }
    }

    /// One update of parameter `path` (flattened `p` and `g`, on the inner device).
    fn update(&mut self, path: &str, p: Tensor<1>, g: Tensor<1>, h: Hyper) -> Tensor<1> {
        let st = self.state.entry(path.to_string()).or_insert(ParamState { step: 0, slots: Vec::new() });
        st.step += 1;
        match self.kind {
            OptimizerKind::Sgd { momentum, nesterov } => {
                let g = if h.weight_decay != 0.0 { g + p.clone().mul_scalar(h.weight_decay) } else { g };
                let d = if momentum != 0.0 {
                    let buf = match st.slots.pop() {
                        Some(b) => b.mul_scalar(momentum) + g.clone(),
                        None => g.clone(),
                    };
                    st.slots.push(buf.clone());
                    if nesterov { g + buf.mul_scalar(momentum) } else { buf }
                } else {
                    g
                };
                p - d.mul_scalar(h.lr)
            }
            OptimizerKind::Adam { beta1, beta2, eps } | OptimizerKind::AdamW { beta1, beta2, eps } => {
                let decoupled = matches!(self.kind, OptimizerKind::AdamW { .. });
                let (p, g) = if h.weight_decay == 0.0 {
                    (p, g)
                } else if decoupled {
                    (p.mul_scalar(1.0 - h.lr * h.weight_decay), g)
                } else {
                    let g = g + p.clone().mul_scalar(h.weight_decay);
                    (p, g)
                };
                let (m, v) = if st.slots.len() == 2 {
                    let v = st.slots.pop().unwrap();
                    let m = st.slots.pop().unwrap();
                    (m, v)
                } else {
                    (g.zeros_like(), g.zeros_like())
                };
                let m = m.mul_scalar(beta1) + g.clone().mul_scalar(1.0 - beta1);
                let v = v.mul_scalar(beta2) + g.powf_scalar(2.0).mul_scalar(1.0 - beta2);
                let t = st.step as i32;
                let bc1 = 1.0 - beta1.powi(t);
                let bc2 = 1.0 - beta2.powi(t);
                // PyTorch: denom = sqrt(v) / sqrt(bc2) + eps; p -= lr / bc1 · m / denom
                let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(eps);
                let out = p - m.clone().div(denom).mul_scalar(h.lr / bc1);
                st.slots.push(m);
                st.slots.push(v);
                out
            }
        }
    }

    /// Apply one step to `module` with `grads`; `hyper` gives each parameter path its
    /// learning rate and weight decay; gradients are scaled by `grad_scale` (clipping).
    pub fn step<M: Module>(&mut self, module: M, mut grads: GradientsParams, hyper: impl Fn(&str) -> Hyper, grad_scale: f64) -> M {
        let mut mapper = StepMapper { optim: self, grads: &mut grads, hyper, grad_scale, path: Vec::new() };
        module.map(&mut mapper)
    }

    /// The clipping factor for a global norm `norm` and limit `max_norm` (PyTorch's
    /// `clip_grad_norm_`: `min(1, max_norm / (norm + 1e-6))`; 0 disables).
    pub fn clip_scale(norm: f64, max_norm: f64) -> f64 {
        if max_norm <= 0.0 { 1.0 } else { (max_norm / (norm + 1e-6)).min(1.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor<1> {
        Tensor::from_floats(v, &Device::flex())
    }

    fn host(x: Tensor<1>) -> Vec<f32> {
        x.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
    }

    #[test]
    fn sgd_momentum_weight_decay_by_hand() {
        let mut o = Optimizer::new(OptimizerKind::Sgd { momentum: 0.9, nesterov: false });
        let h = Hyper { lr: 0.1, weight_decay: 0.01 };
        // step 1: g = 1 + 0.01·2 = 1.02; buf = 1.02; p = 2 − 0.102 = 1.898
        let p = o.update("w", t(&[2.0]), t(&[1.0]), h);
        assert!((host(p.clone())[0] - 1.898).abs() < 1e-6);
        // step 2: g = 1 + 0.01·1.898 = 1.01898; buf = 0.9·1.02 + 1.01898 = 1.93698; p = 1.898 − 0.193698
        let p = o.update("w", p, t(&[1.0]), h);
        assert!((host(p)[0] - (1.898 - 0.193698)).abs() < 1e-6);
    }

    #[test]
    fn nesterov_by_hand() {
        let mut o = Optimizer::new(OptimizerKind::Sgd { momentum: 0.5, nesterov: true });
        let h = Hyper { lr: 1.0, weight_decay: 0.0 };
        // step 1: buf = 1; d = 1 + 0.5 = 1.5 → p = −1.5
        let p = o.update("w", t(&[0.0]), t(&[1.0]), h);
        assert_eq!(host(p.clone()), vec![-1.5]);
        // step 2: buf = 0.5 + 2 = 2.5; d = 2 + 1.25 = 3.25
        assert_eq!(host(o.update("w", p, t(&[2.0]), h)), vec![-4.75]);
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        // With bias correction the first Adam step is lr · g / (|g| + eps') ≈ lr · sign(g).
        let mut o = Optimizer::new(OptimizerKind::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 });
        let p = o.update("w", t(&[1.0, 1.0]), t(&[0.5, -3.0]), Hyper { lr: 0.01, weight_decay: 0.0 });
        let v = host(p);
        assert!((v[0] - 0.99).abs() < 1e-6 && (v[1] - 1.01).abs() < 1e-6, "{v:?}");
    }

    #[test]
    fn adamw_decays_decoupled() {
        let mut o = Optimizer::new(OptimizerKind::AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-8 });
        // zero gradient: m = v = 0 → only the decay acts: p (1 − lr λ)
        let p = o.update("w", t(&[2.0]), t(&[0.0]), Hyper { lr: 0.1, weight_decay: 0.5 });
        assert!((host(p)[0] - 2.0 * 0.95).abs() < 1e-6);
    }

    #[test]
    fn clip_scale_matches_pytorch() {
        assert_eq!(Optimizer::clip_scale(5.0, 0.0), 1.0);
        assert_eq!(Optimizer::clip_scale(0.5, 1.0), 1.0);
        assert!((Optimizer::clip_scale(4.0, 1.0) - 1.0 / (4.0 + 1e-6)).abs() < 1e-15);
    }
}
