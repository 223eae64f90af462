//! Burn's own collectives as the gradient average of the replicas of
//! `training.devices = ["cuda:0", "cuda:1", ...]` (NCCL through cudarc, inside one process):
//! each replica's gradient, laid end to end on its device in buckets, is all-reduced (mean)
//! by `burn::tensor::distributed::all_reduce` across the devices, without a trip through host
//! memory. Compile-checked (`just check-gpu`); never run here: the `cuda` feature cannot be
//! built on these machines and no GPU has run it (README, "Several processes and machines").

use std::collections::VecDeque;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::distributed::{all_reduce, DistributedConfig, DistributedContext, ReduceOperation};

use crate::grad_sync::GradientSync;
use crate::train::TrainModule;

/// Start Burn's communication server for `devices` (kept while the returned handle lives).
pub fn context(devices: &[Device]) -> DistributedContext {
    DistributedContext::init(devices.to_vec(), DistributedConfig { all_reduce_op: ReduceOperation::Mean })
}

/// The gradient average of one replica through Burn's collectives.
#[derive(Debug)]
pub struct NativeDataParallel {
    devices: Vec<Device>,
    bucket_bytes: usize,
}

impl NativeDataParallel {
    /// The replica on one of `devices` (every replica passes the same list, in order).
    pub fn new(devices: Vec<Device>, bucket_bytes: usize) -> Self {
        Self { devices, bucket_bytes: bucket_bytes.max(4) }
    }
}

impl GradientSync for NativeDataParallel {
    fn sync(&mut self, module: &TrainModule, grads: GradientsParams) -> GradientsParams {
        let mut gather = Pieces { grads: &grads, out: Vec::new() };
        module.visit(&mut gather);
        let pieces = gather.out;
        let per_bucket = self.bucket_bytes / 4;
        let mut reduced = VecDeque::with_capacity(pieces.len());
        let mut i = 0;
        while i < pieces.len() {
            let (mut j, mut n) = (i, 0);
            while j < pieces.len() && (n == 0 || n + pieces[j].dims()[0] <= per_bucket) {
                n += pieces[j].dims()[0];
                j += 1;
            }
            let bucket = Tensor::cat(pieces[i..j].to_vec(), 0);
            let mean = all_reduce(bucket, ReduceOperation::Mean, self.devices.clone()).resolve();
            let mut offset = 0;
            for p in &pieces[i..j] {
                let len = p.dims()[0];
                reduced.push_back(mean.clone().slice([offset..offset + len]));
                offset += len;
            }
            i = j;
        }
        let mut out = GradientsParams::new();
        module.visit(&mut Scatter { template: &grads, reduced, into: &mut out });
        out
    }
}

struct Pieces<'a> {
    grads: &'a GradientsParams,
    out: Vec<Tensor<1>>,
}

impl ModuleVisitor for Pieces<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let n = g.shape().num_elements();
            self.out.push(g.reshape([n]));
        }
    }
}

struct Scatter<'a> {
    template: &'a GradientsParams,
    reduced: VecDeque<Tensor<1>>,
    into: &'a mut GradientsParams,
}

impl ModuleVisitor for Scatter<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.template.get::<D>(param.id) {
            let piece = self.reduced.pop_front().expect("a reduced piece per gradient");
            self.into.register::<D>(param.id, piece.reshape(g.shape()));
        }
    }
}
