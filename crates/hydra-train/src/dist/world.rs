//! The ranks of a run as the training loop sees them.

use std::fmt;
use std::rc::Rc;

use hydra_model::kernels::sync_bn::ChannelReduce;

use super::Collective;

/// The one-process run: rank 0 of 1; every collective is the identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_sum_f64(&self, _: &mut [f64]) {}
    fn all_reduce_sum_f32(&self, _: &mut [f32]) {}
    fn broadcast(&self, _: &mut Vec<u8>) {}
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// This process's place in the run, and the engine it exchanges through.
#[derive(Clone)]
pub struct World {
    comm: Rc<dyn Collective>,
    /// This replica's training device, when not the backend's default (`training.devices`).
    device: Option<burn::tensor::Device>,
    /// Every replica's device, when the gradient goes through Burn's own collectives (CUDA).
    native: Option<Vec<burn::tensor::Device>>,
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "World(rank {} of {})", self.rank(), self.size())
    }
}

impl Default for World {
    fn default() -> Self {
        Self::solo()
    }
}

impl World {
    /// One process.
    pub fn solo() -> Self {
        Self { comm: Rc::new(Solo), device: None, native: None }
    }

    /// The ranks of `comm`.
    pub fn new(comm: Rc<dyn Collective>) -> Self {
        Self { comm, device: None, native: None }
    }

    /// These ranks, this one training on `device`.
    pub fn on_device(mut self, device: burn::tensor::Device) -> Self {
        self.device = Some(device);
        self
    }

    /// The gradient of these replicas, on `devices` (every replica's, in order), averaged by
    /// Burn's own collectives instead of through host memory.
    pub fn with_native_collectives(mut self, devices: Vec<burn::tensor::Device>) -> Self {
        self.native = Some(devices);
        self
    }

    /// The devices of [`World::with_native_collectives`], if set.
    pub fn native_devices(&self) -> Option<&[burn::tensor::Device]> {
        self.native.as_deref()
    }

    /// This rank's training device, when given ([`World::on_device`]).
    pub fn device(&self) -> Option<&burn::tensor::Device> {
        self.device.as_ref()
    }

    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    pub fn size(&self) -> usize {
        self.comm.size()
    }

    /// Rank 0: the rank that writes the run folder and prints progress.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// The engine.
    pub fn comm(&self) -> &Rc<dyn Collective> {
        &self.comm
    }

    /// Element-wise mean over all ranks.
    pub fn mean_f64(&self, values: &mut [f64]) {
        if self.size() > 1 {
            self.comm.all_reduce_sum_f64(values);
            let n = self.size() as f64;
            values.iter_mut().for_each(|v| *v /= n);
        }
    }

    /// Element-wise sum over all ranks.
    pub fn sum_f64(&self, values: &mut [f64]) {
        if self.size() > 1 {
            self.comm.all_reduce_sum_f64(values);
        }
    }

    /// BatchNorm's reducer over these ranks (SyncBatchNorm).
    pub fn channel_reduce(&self) -> Rc<dyn ChannelReduce> {
        Rc::new(SyncBnReduce(self.comm.clone()))
    }
}

struct SyncBnReduce(Rc<dyn Collective>);

impl ChannelReduce for SyncBnReduce {
    fn all_reduce_sum(&self, values: &mut [f64]) {
        self.0.all_reduce_sum_f64(values);
    }
    fn replicas(&self) -> usize {
        self.0.size()
    }
}
