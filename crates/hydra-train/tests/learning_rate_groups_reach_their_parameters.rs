//! In a real training step, the encoder's parameters move at `optimizer.encoder_lr` and the
//! decoder's and heads' at `optimizer.decoder_lr`: from the same start and batch, doubling one
//! group's rate doubles exactly that group's step (plain SGD, no momentum or weight decay, no
//! clipping, constant schedule), and leaves the other group's step as it was.

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
