//! Between Burn's gradients and the methods' f64 vectors: the gradient of a module's
//! parameters flattened to one vector (in the module's visiting order), written back, or moved
//! from one set of gradients to another.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// The gradients `grads` holds for `module`'s parameters, flattened in visiting order
/// (parameters without a gradient are skipped; so are buffers, which never have one).
pub fn flatten<M: Module>(module: &M, grads: &GradientsParams) -> Vec<f64> {
    let mut v = Flatten { grads, out: Vec::new() };
    module.visit(&mut v);
    v.out
}

/// A float tensor's values as f64.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 tensor").into_iter().map(f64::from).collect()
}

/// Register the leading `values` (as [`flatten`] lays them out over `template`'s gradients of
/// `module`) into `into`, each parameter's slice in the shape and on the device of its
/// template. Returns how many values were used.
pub fn unflatten<M: Module>(module: &M, template: &GradientsParams, values: &[f64], into: &mut GradientsParams) -> usize {
    let mut v = Unflatten { template, values, offset: 0, into };
    module.visit(&mut v);
    v.offset
}

/// Move the gradients of `module`'s parameters from `from` to `to`.
pub fn transfer<M: Module>(module: &M, from: &mut GradientsParams, to: &mut GradientsParams) {
    module.visit(&mut Transfer { from, to });
}

/// The parameters `grads` holds for `module`, in [`flatten`]'s order: each one's size and
/// the path of the module that holds it (its leaf module).
pub fn layout<M: Module>(module: &M, grads: &GradientsParams) -> Vec<(String, usize)> {
    let mut v = Layout { grads, path: Vec::new(), out: Vec::new() };
    module.visit(&mut v);
    v.out
}

/// Multiply the gradients `grads` holds for `module`'s parameters by `factor`.
pub fn scale<M: Module>(module: &M, grads: &mut GradientsParams, factor: f64) {
    module.visit(&mut Scale { grads, factor });
}

struct Layout<'a> {
    grads: &'a GradientsParams,
    path: Vec<String>,
    out: Vec<(String, usize)>,
}

impl ModuleVisitor for Layout<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // Burn enters the parameter's own field too: its holder is the path without it.
        if let Some(g) = self.grads.get::<D>(param.id) {
            let holder = &self.path[..self.path.len().saturating_sub(1)];
            self.out.push((holder.join("."), g.shape().num_elements()));
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register::<D>(param.id, g.mul_scalar(self.factor as f32));
        }
    }
}

struct Flatten<'a> {
    grads: &'a GradientsParams,
    out: Vec<f64>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.out.extend(values(g));
        }
    }
}

struct Unflatten<'a> {
    template: &'a GradientsParams,
    values: &'a [f64],
    offset: usize,
    into: &'a mut GradientsParams,
}

impl ModuleVisitor for Unflatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.template.get::<D>(param.id) {
            let shape = g.shape();
            let n = shape.num_elements();
            let slice: Vec<f32> = self.values[self.offset..self.offset + n].iter().map(|&v| v as f32).collect();
            self.offset += n;
            self.into.register::<D>(param.id, Tensor::from_data(TensorData::new(slice, shape), &g.device()));
        }
    }
}

struct Transfer<'a> {
    from: &'a mut GradientsParams,
    to: &'a mut GradientsParams,
}

impl ModuleVisitor for Transfer<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.from.remove::<D>(param.id) {
            self.to.register::<D>(param.id, g);
        }
    }
}

/// How much the tasks' shared gradients conflict: each task's gradient norm and the cosine
/// similarity of every pair, `(0, 1), (0, 2), …, (1, 2), …` (0 where a norm is 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub norms: Vec<f64>,
    pub cosines: Vec<f64>,
}

impl Conflict {
    /// From the task gradients `grads` (`T` rows of `P`).
    pub fn of(grads: &[Vec<f64>]) -> Self {
        use super::linalg::{dot, norm};
        let norms: Vec<f64> = grads.iter().map(|g| norm(g)).collect();
        let cosine = |(i, j): (usize, usize)| {
            let d = norms[i] * norms[j];
            if d > 0.0 { dot(&grads[i], &grads[j]) / d } else { 0.0 }
        };
        let cosines = Self::pairs(grads.len()).into_iter().map(cosine).collect();
        Self { norms, cosines }
    }

    /// The pairs `(i, j)` of [`Conflict::cosines`], in order, for `tasks` tasks.
    pub fn pairs(tasks: usize) -> Vec<(usize, usize)> {
        (0..tasks).flat_map(|i| (i + 1..tasks).map(move |j| (i, j))).collect()
    }
}
