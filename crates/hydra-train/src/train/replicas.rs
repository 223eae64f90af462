//! Several devices of one machine (`training.devices`): one replica per device, each on its
//! own thread, exchanging through shared memory ([`ThreadGroup`]); the same data-parallel
//! run as N MPI ranks (replica 0 writes the run folder and reports).

use std::rc::Rc;

use crate::backend::Backend;
use crate::dist::{ThreadGroup, World};
use crate::train::{train_in, Reporter, Silent, TrainError, TrainOptions, TrainSummary};

/// Train as configured on `training.devices` (on CUDA the gradient goes through Burn's own
/// collectives, [`crate::dist::native`]; elsewhere through host memory). A replica that fails prints its error and ends
/// the process: the others wait in a collective that cannot complete.
pub fn train_replicated(opts: TrainOptions, report: &mut dyn Reporter) -> Result<TrainSummary, TrainError> {
    let names = opts.config.training.devices.clone();
    let n = names.len();
    crate::train::check_ranks(&opts.config, n).map_err(TrainError::Config)?;
    let devices = names.iter().map(|d| Backend::training_device_at(d)).collect::<Result<Vec<_>, _>>().map_err(TrainError::Config)?;
    // CUDA: the gradient through Burn's own collectives (NCCL), started here for every device.
    #[cfg(feature = "cuda")]
    let native = (Backend::parse(&opts.config.training.backend).ok() == Some(Backend::Cuda)).then(|| (crate::dist::native::context(&devices), devices.clone()));
    #[cfg(not(feature = "cuda"))]
    let native: Option<((), Vec<burn::tensor::Device>)> = None;
    let native_devices = native.as_ref().map(|(_, d)| d.clone());
    let world_of = |comm: ThreadGroup, device: burn::tensor::Device| {
        let w = World::new(Rc::new(comm)).on_device(device);
        match &native_devices {
            Some(d) => w.with_native_collectives(d.clone()),
            None => w,
        }
    };
    let mut group = ThreadGroup::new(n).into_iter();
    let root = group.next().expect("replica 0");
    std::thread::scope(|s| {
        for ((rank, comm), device) in (1..n).zip(group).zip(devices[1..].iter().cloned()) {
            let opts = opts.clone();
            let name = names[rank].clone();
            std::thread::Builder::new()
                .name(format!("hydra-replica-{rank}"))
                .spawn_scoped(s, move || {
                    let world = world_of(comm, device);
                    if let Err(e) = train_in(opts, &mut Silent, world) {
                        eprintln!("error: replica {rank} of {n} ({name}): {e}");
                        std::process::exit(1);
                    }
                })
                .expect("spawn a replica thread");
        }
        let world = world_of(root, devices[0].clone());
        match train_in(opts.clone(), report, world) {
            Ok(summary) => Ok(summary),
            Err(e) => {
                eprintln!("error: replica 0 of {n} ({}): {e}", names[0]);
                std::process::exit(1);
            }
        }
    })
}
