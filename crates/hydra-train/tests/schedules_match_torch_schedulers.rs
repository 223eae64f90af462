//! The learning-rate schedules give, at every iteration, the factor PyTorch's schedulers give
//! (fixtures/optim/torch_schedules.json, made by scripts/make_schedule_fixture.py):
//! ConstantLR, MultiStepLR, CosineAnnealingLR, PolynomialLR, each alone and chained with a
//! LinearLR warm-up; built from a configuration as training builds them (milestones in
//! epochs, the run's length from epochs × iterations per epoch). Both sides compute in f64;
//! PyTorch's cosine is recursive, so agreement is to 1e-12 rather than exact.

use hydra_train::components::schedule;
use hydra_train::config::Config;

#[test]
fn every_schedule_gives_torchs_factor_at_every_iteration() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("fixtures/optim/torch_schedules.json")).unwrap()).unwrap();
    let quickstart = std::fs::read_to_string(root.join("configs/quickstart.toml")).unwrap();
    let total = fx["total"].as_u64().unwrap();
    // 12 epochs × 5 iterations = the fixture's 60; milestones at epochs 4 and 9 = iterations 20 and 45.
    let (epochs, per_epoch) = (12, 5);
    assert_eq!(epochs * per_epoch, total);
    let mut checked = 0;
    for case in fx["cases"].as_array().unwrap() {
        let kind = case["kind"].as_str().unwrap();
        let mut sets = vec![
            format!("schedule.kind=\"{kind}\""),
            format!("training.epochs={epochs}"),
            format!("schedule.warmup_iters={}", case["warmup"]),
            format!("schedule.warmup_factor={}", case["warmup_factor"]),
        ];
        match kind {
            "multistep" => {
                assert_eq!(case["milestones"], serde_json::json!([20, 45]));
                sets.push("schedule.milestones=[4, 9]".into());
                sets.push(format!("schedule.gamma={}", case["gamma"]));
            }
            "cosine" => sets.push(format!("schedule.min_lr_factor={}", case["min_factor"])),
            "poly" => {
                sets.push(format!("schedule.power={}", case["power"]));
                sets.push(format!("schedule.min_lr_factor={}", case["min_factor"]));
            }
            _ => {}
        }
        let config = Config::from_toml(&quickstart, &sets).unwrap_or_else(|e| panic!("{sets:?}: {}", e.0));
        let s = schedule(&config, per_epoch);
        for (it, want) in case["factors"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            let got = s.factor(it as u64);
            assert!((got - want).abs() <= 1e-12 * want.abs().max(1e-3), "{kind} (warm-up {}): iteration {it}: {got} vs torch {want}", case["warmup"]);
            checked += 1;
        }
    }
    assert_eq!(checked, 9 * (total as usize + 1));
}
