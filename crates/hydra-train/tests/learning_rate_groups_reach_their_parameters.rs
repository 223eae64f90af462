//! In a real training step, the encoder's parameters move at `optimizer.encoder_lr` and the
//! decoder's and heads' at `optimizer.decoder_lr`: from the same start and batch, doubling one
//! group's rate doubles exactly that group's step (plain SGD, no momentum or weight decay, no
//! clipping, constant schedule), and leaves the other group's step as it was. The task
//! weights of uncertainty weighting (`s_t`) move at `decoder_lr` with no weight decay: their
//! step is −decoder_lr · ∂L/∂s_t = −decoder_lr · (½ − ½ exp(−s_t) L_t), computed by hand from
//! the step's task losses.

mod common;

use common::{parameters, scratch, tiny_config};
use hydra_model::weights::is_encoder_key;
use hydra_train::config::Config;
use hydra_train::train::{Resume, Silent, TrainOptions, Trainer};

/// Parameters before and after one step with these rates: `(key, before, after)`.
fn one_step(encoder_lr: f64, decoder_lr: f64) -> Vec<(String, Vec<f32>, Vec<f32>)> {
    let dir = scratch("lr-groups");
    let extra = format!(
        "[optimizer]\nkind = \"sgd\"\nmomentum = 0.0\nencoder_lr = {encoder_lr}\ndecoder_lr = {decoder_lr}\nencoder_weight_decay = 0.0\ndecoder_weight_decay = 0.0\ngrad_clip_norm = 0.0\n[schedule]\nkind = \"constant\"\n"
    );
    let cfg = tiny_config(&dir, &dir.join("run"), &extra);
    let config = Config::from_file(&cfg, &[]).unwrap();
    let (mut trainer, data) = Trainer::start(&TrainOptions { config, resume: Resume::No, stop_after_epochs: None, allow_config_change: false }, &mut Silent).unwrap();
    let before = parameters(&trainer.module().net.state_dict());
    let epoch = trainer.begin_epoch();
    let batch = data.train.epoch(epoch as u64, 0).next().unwrap().unwrap();
    trainer.step(batch, epoch).unwrap();
    parameters(&trainer.module().net.state_dict()).into_iter().zip(before).map(|((k, after), (_, before))| (k, before, after)).collect()
}

/// `Σ Δ'·Δ / Σ Δ²` over the keys `pick` selects: how many times `base`'s step `other` took.
fn ratio(base: &[(String, Vec<f32>, Vec<f32>)], other: &[(String, Vec<f32>, Vec<f32>)], pick: impl Fn(&str) -> bool) -> f64 {
    let (mut dot, mut sq) = (0.0, 0.0);
    for ((k, b0, b1), (k2, o0, o1)) in base.iter().zip(other) {
        assert_eq!(k, k2);
        assert_eq!(b0, o0, "{k}: the runs start from the same weights");
        if !pick(k) {
            continue;
        }
        for i in 0..b0.len() {
            let (d, e) = ((b1[i] - b0[i]) as f64, (o1[i] - o0[i]) as f64);
            dot += d * e;
            sq += d * d;
        }
    }
    assert!(sq > 0.0, "the step moved nothing");
    dot / sq
}

#[test]
fn each_group_moves_at_its_own_rate() {
    let base = one_step(0.01, 0.02);
    let encoder_doubled = one_step(0.02, 0.02);
    let decoder_doubled = one_step(0.01, 0.04);
    let (enc, dec) = (|k: &str| is_encoder_key(k), |k: &str| !is_encoder_key(k));
    let r = [ratio(&base, &encoder_doubled, enc), ratio(&base, &encoder_doubled, dec), ratio(&base, &decoder_doubled, enc), ratio(&base, &decoder_doubled, dec)];
    eprintln!("step ratios (encoder, decoder) with the encoder's rate doubled: {:.5} {:.5}; the decoder's: {:.5} {:.5}", r[0], r[1], r[2], r[3]);
    // Rounding of θ − η·g in f32 against steps ~1e-4 of θ: ratios hold to well under 1e-3.
    for (got, want) in r.iter().zip([2.0, 1.0, 1.0, 2.0]) {
        assert!((got - want).abs() < 1e-3, "{r:?}");
    }
}

/// The log-variances `s_t` of uncertainty weighting, now.
fn log_vars(trainer: &Trainer) -> Vec<f64> {
    let w = trainer.module().task_weights.as_ref().expect("uncertainty weighting has task weights");
    w.log_vars.val().into_data().try_to_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
}

#[test]
fn task_weights_move_at_the_decoder_rate_without_weight_decay() {
    let dir = scratch("lr-task-weights");
    // Rates and weight decays all different, so a task weight in the wrong group, or decayed,
    // moves by a different amount: weight decay would add decoder_lr · 0.5 · s_t ≈ 1e-4 at the
    // second step, 100× the tolerance.
    let (encoder_lr, decoder_lr) = (0.01, 0.03);
    let extra = format!(
        "[loss]\nweighting = \"uncertainty\"\n[optimizer]\nkind = \"sgd\"\nmomentum = 0.0\nencoder_lr = {encoder_lr}\ndecoder_lr = {decoder_lr}\nencoder_weight_decay = 0.5\ndecoder_weight_decay = 0.5\ngrad_clip_norm = 0.0\n[schedule]\nkind = \"constant\"\n"
    );
    let cfg = tiny_config(&dir, &dir.join("run"), &extra);
    let config = Config::from_file(&cfg, &[]).unwrap();
    let (mut trainer, data) = Trainer::start(&TrainOptions { config, resume: Resume::No, stop_after_epochs: None, allow_config_change: false }, &mut Silent).unwrap();
    let epoch = trainer.begin_epoch();
    let batches: Vec<_> = data.train.epoch(epoch as u64, 0).take(2).map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 2, "the tiny split gives two batches");
    for (i, batch) in batches.into_iter().enumerate() {
        let s = log_vars(&trainer);
        if i == 0 {
            assert!(s.iter().all(|&v| v == 0.0), "log-variances start at 0: {s:?}");
        }
        let out = trainer.step(batch, epoch).unwrap();
        let after = log_vars(&trainer);
        assert_eq!(out.losses.len(), s.len());
        for t in 0..s.len() {
            let want = s[t] - decoder_lr * (0.5 - 0.5 * (-s[t]).exp() * out.losses[t]);
            eprintln!("step {} task {t}: s {:.7} -> {:.7} (by hand {want:.7}), loss {:.5}", i + 1, s[t], after[t], out.losses[t]);
            assert!((after[t] - want).abs() < 1e-6, "step {}, task {t}: s_t {} -> {}, by hand {want}", i + 1, s[t], after[t]);
        }
    }
}
