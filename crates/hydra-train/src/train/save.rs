//! What a run writes at the end of an epoch: the best weights (and best.json), a checkpoint
//! with the whole training state, and the final weights.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hydra_model::state::RawTensor;
use hydra_model::weights;
use serde_json::json;

use crate::checkpoint::{self, Checkpoint, CheckpointMeta};
use crate::metrics::EvalMetrics;
use crate::train::{TrainError, Trainer};

fn all_finite(sd: &hydra_model::StateDict) -> bool {
    sd.iter().all(|(_, t)| t.to_f32().iter().all(|v| v.is_finite()))
}

impl Trainer {
    /// After epoch `epoch`: refuse non-finite weights, write the best weights when `improved`,
    /// and a checkpoint when one is due (`checkpoint.interval`, the run's last epoch, or new
    /// best weights). Returns the checkpoint written, if any.
    pub fn save(&mut self, epoch: usize, improved: bool, metrics: Option<&EvalMetrics>, last_epoch: bool) -> Result<Option<PathBuf>, TrainError> {
        let model_state = self.module().net.state_dict();
        if !all_finite(&model_state) {
            return Err(TrainError::NonFinite { what: "weights".into(), epoch, iteration: self.iteration, last: self.last_checkpoint.clone() });
        }
        self.check_ranks_agree(&model_state, epoch)?;
        if !self.world.is_root() {
            return Ok(None); // rank 0 writes the run's files
        }
        if improved {
            self.save_best(metrics)?;
        }
        if !(self.epochs_done % self.config.checkpoint.interval == 0 || last_epoch || improved) {
            return Ok(None);
        }
        let path = self.checkpoint(model_state).save(&self.run_dir.join("checkpoints"))?;
        checkpoint::prune(&self.run_dir.join("checkpoints"), self.config.checkpoint.keep_last, self.early_stopping.best_epoch);
        self.last_checkpoint = Some(path.clone());
        Ok(Some(path))
    }

    fn save_best(&self, metrics: Option<&EvalMetrics>) -> Result<(), TrainError> {
        weights::save(&self.module().net, &self.run_dir.join("best.bpk"))?;
        let es = &self.early_stopping;
        let best = json!({"epoch": self.epochs_done, "iteration": self.iteration, "monitor": self.config.early_stopping.monitor, "value": es.best, "metrics": metrics});
        hydra_model::fsio::write_atomic(&self.run_dir.join("best.json"), serde_json::to_string_pretty(&best).unwrap().as_bytes()).map_err(|(p, e)| TrainError::Io { path: p, source: e })
    }

    /// The whole training state as a checkpoint.
    pub(super) fn checkpoint(&self, model: hydra_model::StateDict) -> Checkpoint {
        let mut optimizer = BTreeMap::new();
        let mut steps = BTreeMap::new();
        for (path, st) in &self.optim.state {
            steps.insert(path.clone(), st.step);
            for (i, s) in st.slots.iter().enumerate() {
                optimizer.insert((path.clone(), i), RawTensor::from_tensor(s.clone()));
            }
        }
        Checkpoint {
            meta: CheckpointMeta {
                version: checkpoint::CHECKPOINT_VERSION,
                epochs_done: self.epochs_done,
                iteration: self.iteration,
                seed: self.config.training.seed,
                optimizer_steps: steps,
                early_stopping: self.early_stopping.clone(),
                loss_history: self.history.clone(),
                objective: self.objective.state(),
                config: self.config.to_toml(),
            },
            model,
            log_vars: self.module().task_weights.as_ref().map(|w| RawTensor::from_tensor(w.log_vars.val())),
            optimizer,
        }
    }

    /// The run is over: the final weights when every epoch ran.
    pub fn finish(&self) -> Result<(), TrainError> {
        if self.epochs_done == self.config.training.epochs && self.world.is_root() {
            weights::save(&self.module().net, &self.run_dir.join("final.bpk"))?;
        }
        Ok(())
    }
}
