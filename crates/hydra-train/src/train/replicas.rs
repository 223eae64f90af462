//! Several devices of one machine (`training.devices`): one replica per device, each on its
//! own thread, exchanging through shared memory ([`ThreadGroup`]); the same data-parallel
//! run as N MPI ranks (replica 0 writes the run folder and reports).

use std::rc::Rc;

use crate::backend::Backend;
use crate::dist::{ThreadGroup, World};
use crate::train::{train_in, Reporter, Silent, TrainError, TrainOptions, TrainSummary};

/// Train as configured on `training.devices`. A replica that fails prints its error and ends
/// the process: the others wait in a collective that cannot complete.
pub fn train_replicated(opts: TrainOptions, report: &mut dyn Reporter) -> Result<TrainSummary, TrainError> {
    let names = opts.config.training.devices.clone();
    let n = names.len();
    crate::train::check_ranks(&opts.config, n).map_err(TrainError::Config)?;
    let devices = names.iter().map(|d| Backend::training_device_at(d)).collect::<Result<Vec<_>, _>>().map_err(TrainError::Config)?;
    let mut group = ThreadGroup::new(n).into_iter();
    let root = group.next().expect("replica 0");
    std::thread::scope(|s| {
        for ((rank, comm), device) in (1..n).zip(group).zip(devices[1..].iter().cloned()) {
            let opts = opts.clone();
            let name = names[rank].clone();
            std::thread::Builder::new()
                .name(format!("hydra-replica-{rank}"))
                .spawn_scoped(s, move || {
                    let world = World::new(Rc::new(comm)).on_device(device);
                    if let Err(e) = train_in(opts, &mut Silent, world) {
                        eprintln!("error: replica {rank} of {n} ({name}): {e}");
                        std::process::exit(1);
                    }
                })
                .expect("spawn a replica thread");
        }
        let world = World::new(Rc::new(root)).on_device(devices[0].clone());
        match train_in(opts.clone(), report, world) {
            Ok(summary) => Ok(summary),
            Err(e) => {
                eprintln!("error: replica 0 of {n} ({}): {e}", names[0]);
                std::process::exit(1);
            }
        }
    })
}
