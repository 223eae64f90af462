//! An objective's large buffers (DB-MTL's `T × P` gradient buffer) travel in the checkpoint
//! as tensors of f64 bit patterns: every value comes back bit for bit (NaN payloads, -0,
//! subnormals included), and a buffer tensor of the wrong kind or shape is refused in words
//! (a tensor whose bytes do not fit its shape is refused by the file reader before that).

use std::path::Path;

use hydra_model::state::{RawTensor, StateDict};
use hydra_model::weights::native;
use hydra_train::checkpoint::{Checkpoint, CheckpointMeta, CHECKPOINT_VERSION};
use hydra_train::objective::ObjectiveState;

fn checkpoint(buffer: Vec<Vec<f64>>) -> Checkpoint {
    let mut objective = ObjectiveState { rng: Some(7), ..Default::default() };
    objective.set("weights", &[1.0, 2.0]);
    objective.buffers.insert("db_mtl_buffer".into(), buffer);
    Checkpoint {
        meta: CheckpointMeta {
            version: CHECKPOINT_VERSION,
            epochs_done: 1,
            iteration: 3,
            seed: 0,
            optimizer_steps: Default::default(),
            early_stopping: Default::default(),
            loss_history: Default::default(),
            objective,
            config: String::new(),
        },
        model: StateDict::new(),
        log_vars: None,
        optimizer: Default::default(),
    }
}

#[test]
fn buffers_come_back_bit_for_bit() {
    let odd = [f64::from_bits(0x7ff8_0000_dead_beef), -0.0, 5e-324, 1.0 / 3.0, -1e300, 0.1];
    let rows = vec![odd.to_vec(), odd.iter().rev().cloned().collect()];
    let ck = checkpoint(rows.clone());
    let back = Checkpoint::from_bytes(&ck.to_bytes(), Path::new("x.bpk")).unwrap();
    let got = &back.meta.objective.buffers["db_mtl_buffer"];
    let bits = |r: &Vec<Vec<f64>>| r.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(got), bits(&rows));
    assert_eq!(back.meta.objective.get("weights"), Some(vec![1.0, 2.0]));
    assert_eq!(back.meta.objective.rng, Some(7));
}

#[test]
fn a_bad_buffer_tensor_is_refused_in_words() {
    let meta = native::read(&checkpoint(vec![vec![1.0]]).to_bytes()).unwrap().1;
    for bad in [RawTensor::f32(vec![1, 2], vec![1.0, 2.0]), RawTensor::i64(vec![3], vec![1, 2, 3]), RawTensor::i64(vec![2, 0], vec![])] {
        let mut sd = StateDict::new();
        sd.insert("objective/db_mtl_buffer", bad);
        let bytes = native::write(&sd, &meta).unwrap();
        let err = Checkpoint::from_bytes(&bytes, Path::new("c.bpk")).unwrap_err().to_string();
        assert_eq!(err, "c.bpk: bad objective buffer `objective/db_mtl_buffer`");
    }
}
