//! The data-parallel gradient: each rank's gradient averaged across ranks with all-reduce, in
//! buckets, so that every rank applies the same step.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

use super::World;
use crate::grad_sync::GradientSync;
use crate::train::TrainModule;

/// PyTorch DDP's default bucket: 25 MB.
pub const DEFAULT_BUCKET_BYTES: usize = 25 * 1024 * 1024;

/// Averages the gradient across the ranks of `world`: the gradients of every parameter, in
/// the module's visiting order (the same on every rank), laid end to end in f32 and summed
/// with one all-reduce per bucket of at most `bucket_bytes`, then divided by the number of
/// ranks.
#[derive(Debug)]
pub struct DataParallel {
    world: World,
    bucket_bytes: usize,
    /// Bytes each rank contributed to the all-reduces of the last step, and how many calls.
    pub last_bytes: usize,
    pub last_calls: usize,
}

impl DataParallel {
    pub fn new(world: World, bucket_bytes: usize) -> Self {
        Self { world, bucket_bytes: bucket_bytes.max(4), last_bytes: 0, last_calls: 0 }
    }
}

impl GradientSync for DataParallel {
    fn sync(&mut self, module: &TrainModule, grads: GradientsParams) -> GradientsParams {
        let mut gather = Gather { grads: &grads, out: Vec::new() };
        module.visit(&mut gather);
        let mut flat = gather.out;
        let per_bucket = self.bucket_bytes / 4;
        self.last_calls = 0;
        for bucket in flat.chunks_mut(per_bucket) {
            self.world.comm().all_reduce_sum_f32(bucket);
            self.last_calls += 1;
        }
        self.last_bytes = flat.len() * 4;
        let n = self.world.size() as f32;
        flat.iter_mut().for_each(|v| *v /= n);
        let mut out = GradientsParams::new();
        module.visit(&mut Scatter { template: &grads, values: &flat, offset: 0, into: &mut out });
        out
    }
}

struct Gather<'a> {
    grads: &'a GradientsParams,
    out: Vec<f32>,
}

impl ModuleVisitor for Gather<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.out.extend(g.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 gradient"));
        }
    }
}

struct Scatter<'a> {
    template: &'a GradientsParams,
    values: &'a [f32],
    offset: usize,
    into: &'a mut GradientsParams,
}

impl ModuleVisitor for Scatter<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.template.get::<D>(param.id) {
            let shape = g.shape();
            let n = shape.num_elements();
            let slice = self.values[self.offset..self.offset + n].to_vec();
            self.offset += n;
            self.into.register::<D>(param.id, Tensor::from_data(TensorData::new(slice, shape), &g.device()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use burn::module::{Module, ModuleVisitor, Param};
    use hydra_model::HydraNetConfig;

    use super::*;
    use crate::dist::{Collective, ThreadGroup};

    /// Every parameter's gradient filled with `value`.
    struct Fill<'a> {
        value: f32,
        out: &'a mut GradientsParams,
        elements: usize,
    }

    impl ModuleVisitor for Fill<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let shape = param.shape();
            self.elements += shape.num_elements();
            self.out.register::<D>(param.id, Tensor::full(shape, self.value, &param.device()));
        }
    }

    #[test]
    fn the_ranks_gradients_are_averaged_in_buckets() {
        let results: Vec<(Vec<f32>, usize, usize, usize)> = std::thread::scope(|s| {
            let handles: Vec<_> = ThreadGroup::new(3)
                .into_iter()
                .map(|comm| {
                    s.spawn(move || {
                        let rank = comm.rank();
                        let device = burn::tensor::Device::flex().autodiff();
                        let module = TrainModule { net: HydraNetConfig::new(4).init(&device), task_weights: None };
                        let mut grads = GradientsParams::new();
                        let mut fill = Fill { value: (rank + 1) as f32, out: &mut grads, elements: 0 };
                        module.visit(&mut fill);
                        let elements = fill.elements;
                        let mut dp = DataParallel::new(World::new(Rc::new(comm)), 1 << 20);
                        let out = dp.sync(&module, grads);
                        let mut gather = Gather { grads: &out, out: Vec::new() };
                        module.visit(&mut gather);
                        (gather.out, elements, dp.last_bytes, dp.last_calls)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (values, elements, bytes, calls) in &results {
            assert_eq!(values.len(), *elements);
            assert!(values.iter().all(|&v| v == 2.0), "(1 + 2 + 3) / 3 everywhere");
            assert_eq!(*bytes, elements * 4);
            assert_eq!(*calls, (elements * 4).div_ceil(1 << 20), "one all-reduce per MiB bucket, not one per tensor");
            assert!(*calls > 1 && *calls < 100, "{calls}");
        }
    }
}
