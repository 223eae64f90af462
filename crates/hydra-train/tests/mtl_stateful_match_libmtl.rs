//! hydra's stateful and special gradient methods against LibMTL's own classes
//! (fixtures/mtl/libmtl_stateful.json, made by scripts/make_mtl_fixture.py from LibMTL at
//! commit 4336804, in float64):
//! - GradVac (group types 0, 1, 2), DB-MTL and Nash-MTL over four steps of one instance each,
//!   so the state they carry (GradVac's targets, DB-MTL's buffer, Nash-MTL's last weights)
//!   is compared too: the applied gradient of every step within 1e-5 × max |LibMTL's|, the
//!   weights likewise (GradVac's ones, Nash-MTL's α; DB-MTL's see `db_mtl_weights`). In the
//!   T = 3 sequence the second step's first Nash-MTL problem is unbounded (ECOS says so and
//!   LibMTL keeps its weights): hydra must find that too.
//! - GradNorm in its second epoch: the weights, the shared gradient and the loss scales'
//!   gradient; GradDrop: the upstream gradient with LibMTL's own uniforms.
//! Invariants beside: Nash-MTL's weights solve its bargaining equations and each linearised
//! problem's solution beats every sampled feasible point; equal task gradients give EW's
//! direction; GradNorm's scale gradient is the finite difference of L_grad.

use hydra_core::rng::SplitMix64;
use hydra_train::mtl::linalg::{dot, gram, norm};
use hydra_train::mtl::{graddrop, gradnorm, nash, GradientMethod, Groups, MethodState};
use serde_json::Value;

fn fixture() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mtl/libmtl_stateful.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

fn close(ours: &[f64], theirs: &[f64], rel: f64, what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
    let scale = theirs.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    for (k, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!((a - b).abs() <= rel * scale, "{what}[{k}]: hydra {a} LibMTL {b} (scale {scale})");
    }
}

fn method(m: &Value) -> GradientMethod {
    let p = &m["params"];
    match m["method"].as_str().unwrap() {
        "GradVac" => GradientMethod::GradVac {
            beta: p["GradVac_beta"].as_f64().unwrap(),
            groups: [Groups::WholeModel, Groups::AllLayer, Groups::AllMatrix][p["GradVac_group_type"].as_u64().unwrap() as usize],
        },
        "DB_MTL" => GradientMethod::DbMtl { beta: p["DB_beta"].as_f64().unwrap(), beta_sigma: p["DB_beta_sigma"].as_f64().unwrap() },
        "Nash_MTL" => GradientMethod::NashMtl {
            update_every: p["update_weights_every"].as_u64().unwrap(),
            iterations: p["optim_niter"].as_u64().unwrap() as usize,
            max_norm: p["max_norm"].as_f64().unwrap(),
        },
        other => panic!("no method {other}"),
    }
}

/// GradVac's group sizes for leaves of parameter sizes `leaves`.
fn groups(m: &GradientMethod, leaves: &[Vec<usize>]) -> Vec<usize> {
    match m {
        GradientMethod::GradVac { groups: Groups::AllLayer, .. } => leaves.iter().map(|l| l.iter().sum()).collect(),
        GradientMethod::GradVac { groups: Groups::AllMatrix, .. } => leaves.iter().flatten().copied().collect(),
        _ => Vec::new(),
    }
}

#[test]
fn stateful_methods_match_libmtl_step_by_step() {
    let f = fixture();
    let mut checked = 0;
    for seq in f["sequences"].as_array().unwrap() {
        let leaves: Vec<Vec<usize>> = seq["leaves"].as_array().unwrap().iter().map(|l| l.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect()).collect();
        let steps = seq["steps"].as_array().unwrap();
        for m in seq["methods"].as_array().unwrap() {
            let gm = method(m);
            let mut state = MethodState { groups: groups(&gm, &leaves), ..Default::default() };
            // LibMTL's GradVac orders: one shuffle of the other tasks per task per step, as
            // task indices; hydra's order is the others' ranks.
            let mut orders = m.get("orders").map(|o| o.as_array().unwrap().iter().map(|v| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect::<Vec<_>>()).collect::<Vec<_>>()).unwrap_or_default().into_iter();
            for (k, (step, want)) in steps.iter().zip(m["steps"].as_array().unwrap()).enumerate() {
                let (grads, losses) = (rows(&step["grads"]), floats(&step["losses"]));
                let mut shuffle = |i: usize| orders.next().expect("a recorded order").into_iter().map(|j| if j < i { j } else { j - 1 }).collect();
                let got = gm.combine_step(&grads, &losses, &mut state, &mut shuffle);
                let what = format!("{} {} step {k}", m["method"], m["params"]);
                close(&got.gradient, &floats(&want["gradient"]), 1e-5, &format!("{what} gradient"));
                if !matches!(gm, GradientMethod::DbMtl { .. }) {
                    close(&got.weights, &floats(&want["weights"]), 1e-5, &format!("{what} weights"));
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * 7 * 4);
}

#[test]
fn db_mtl_weights_scale_every_buffer_to_the_largest_norm() {
    // LibMTL returns ones; hydra reports α, which makes every α_t buf_t as long as the longest.
    let f = fixture();
    let seq = &f["sequences"][1];
    let gm = GradientMethod::DbMtl { beta: 0.9, beta_sigma: 0.0 };
    let mut state = MethodState::default();
    for step in seq["steps"].as_array().unwrap() {
        let (grads, losses) = (rows(&step["grads"]), floats(&step["losses"]));
        let got = gm.combine_step(&grads, &losses, &mut state, &mut |_| unreachable!());
        let lengths: Vec<f64> = state.buffer.iter().zip(&got.weights).map(|(b, a)| a * norm(b)).collect();
        let top = lengths.iter().cloned().fold(0.0, f64::max);
        assert!(lengths.iter().all(|l| (l - top).abs() < 1e-6 * top), "{lengths:?}");
        assert!(got.weights.iter().any(|&a| (a - 1.0).abs() < 1e-6), "the longest buffer keeps weight 1 (up to LibMTL's 1e-8)");
    }
}

#[test]
fn gradnorm_matches_libmtl_and_its_scale_gradient_is_the_derivative_of_l_grad() {
    let f = fixture();
    for case in f["gradnorm"].as_array().unwrap() {
        let (grads, losses, initial, scales) = (rows(&case["grads"]), floats(&case["losses"]), floats(&case["initial"]), floats(&case["scales"]));
        let alpha = case["alpha"].as_f64().unwrap();
        let (got, scale_grad) = gradnorm::combine(&grads, &losses, &initial, &scales, alpha);
        close(&got.weights, &floats(&case["weights"]), 1e-5, "GradNorm weights");
        close(&got.gradient, &floats(&case["gradient"]), 1e-5, "GradNorm gradient");
        close(&scale_grad, &floats(&case["scale_grad"]), 1e-5, "GradNorm scale gradient");
        // L_grad with the target held fixed, by central differences.
        let target = {
            let w = gradnorm::weights(&scales);
            let g: Vec<f64> = grads.iter().zip(&w).map(|(g, w)| w * norm(g)).collect();
            let mean = g.iter().sum::<f64>() / g.len() as f64;
            let r: Vec<f64> = losses.iter().zip(&initial).map(|(l, i)| l / i).collect();
            let mr = r.iter().sum::<f64>() / r.len() as f64;
            r.iter().map(|v| mean * (v / mr).powf(alpha)).collect::<Vec<f64>>()
        };
        let l_grad = |s: &[f64]| -> f64 { gradnorm::weights(s).iter().zip(&grads).zip(&target).map(|((w, g), c)| (w * norm(g) - c).abs()).sum() };
        for k in 0..scales.len() {
            let h = 1e-6;
            let (mut up, mut down) = (scales.clone(), scales.clone());
            up[k] += h;
            down[k] -= h;
            let fd = (l_grad(&up) - l_grad(&down)) / (2.0 * h);
            assert!((fd - scale_grad[k]).abs() < 1e-5 * (1.0 + fd.abs()), "scale {k}: {fd} vs {}", scale_grad[k]);
        }
    }
}

#[test]
fn graddrop_matches_libmtl_with_its_uniforms() {
    let f = fixture();
    for case in f["graddrop"].as_array().unwrap() {
        let (rep, grads, u) = (floats(&case["rep"]), rows(&case["grads"]), floats(&case["uniform"]));
        assert_eq!(u.len(), case["features"].as_u64().unwrap() as usize);
        let got = graddrop::upstream(&rep, &grads, &u, case["leak"].as_f64().unwrap());
        close(&got, &floats(&case["upstream"]), 1e-12, "GradDrop upstream");
    }
}

#[test]
fn graddrop_keeps_everything_at_leak_one_and_one_sign_per_feature_at_leak_zero() {
    let mut rng = SplitMix64::new(5);
    let (t, b, f) = (3, 4, 16);
    let rep: Vec<f64> = (0..b * f).map(|_| rng.normal()).collect();
    let grads: Vec<Vec<f64>> = (0..t).map(|_| (0..b * f).map(|_| rng.normal()).collect()).collect();
    let u: Vec<f64> = (0..f).map(|_| rng.uniform()).collect();
    let all = graddrop::upstream(&rep, &grads, &u, 1.0);
    let sum: Vec<f64> = (0..b * f).map(|k| grads.iter().map(|g| g[k]).sum()).collect();
    close(&all, &sum, 1e-15, "leak 1");
    // At leak 0 each feature keeps the tasks whose signed sum s_t has one sign only: the
    // upstream is a sum over a subset of tasks that is the same for every sample.
    let kept = graddrop::upstream(&rep, &grads, &u, 0.0);
    for k in 0..f {
        let subsets: Vec<Vec<bool>> = (0..1 << t).map(|m| (0..t).map(|i| m >> i & 1 == 1).collect()).collect();
        let fits = subsets.iter().any(|keep| (0..b).all(|s| {
            let want: f64 = (0..t).filter(|&i| keep[i]).map(|i| grads[i][s * f + k]).sum();
            (want - kept[s * f + k]).abs() < 1e-12
        }));
        assert!(fits, "feature {k}: not one subset of tasks for all samples");
    }
}

/// `Ĝ`, `nf` for task gradients.
fn normalised(grads: &[Vec<f64>]) -> (Vec<Vec<f64>>, f64) {
    let g = gram(grads);
    let nf = g.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    (g.iter().map(|r| r.iter().map(|v| v / nf).collect()).collect(), nf)
}

#[test]
fn nash_mtl_weights_solve_the_bargaining_equations() {
    let mut rng = SplitMix64::new(17);
    for (t, p) in [(2, 6), (3, 9), (4, 12)] {
        let grads: Vec<Vec<f64>> = (0..t).map(|_| (0..p).map(|_| rng.normal()).collect()).collect();
        let (g, nf) = normalised(&grads);
        let alpha = nash::weights(&g, nf, &vec![1.0; t], 200);
        // The sequence stops where the next solution no longer moves: there every constraint
        // α_i (Ĝα)_i nf ≥ 1 is active, which is the paper's bargaining solution GGᵀα = 1/α
        // (LibMTL's other test, on ‖Ĝα − 1/α‖ with the normalised Ĝ, does not hold there).
        let gtg = gram(&grads);
        let products: Vec<f64> = gtg.iter().zip(&alpha).map(|(r, a)| a * dot(r, &alpha)).collect();
        assert!(products.iter().all(|p| (p - 1.0).abs() < 1e-5), "T={t}: α_i (GGᵀα)_i = {products:?}, α {alpha:?}");
        assert!(alpha.iter().all(|&a| a > 0.0));
    }
}

#[test]
fn nash_mtl_each_linearised_problem_is_solved_to_optimality() {
    let mut rng = SplitMix64::new(23);
    for (t, p) in [(2, 5), (3, 8)] {
        let grads: Vec<Vec<f64>> = (0..t).map(|_| (0..p).map(|_| rng.normal()).collect()).collect();
        let (g, nf) = normalised(&grads);
        let ap: Vec<f64> = (0..t).map(|_| rng.range(0.5, 2.0)).collect();
        let x = nash::solve(&g, nf, &ap).expect("a solution");
        let gap: Vec<f64> = g.iter().map(|r| dot(r, &ap)).collect();
        let inv: Vec<f64> = gap.iter().map(|v| 1.0 / v).collect();
        let ginv: Vec<f64> = g.iter().map(|r| dot(r, &inv)).collect();
        let c: Vec<f64> = (0..t).map(|i| g.iter().map(|r| r[i]).sum::<f64>() + (1.0 / ap[i] + ginv[i]) / nf).collect();
        let feasible = |y: &[f64]| y.iter().all(|&v| v > 0.0) && g.iter().zip(y).all(|(r, yi)| {
            let gy = dot(r, y);
            gy > 0.0 && (yi * nf).ln() + gy.ln() >= 0.0
        });
        let slack: f64 = g.iter().zip(&x).map(|(r, xi)| (xi * nf).ln() + dot(r, &x).ln()).fold(f64::INFINITY, f64::min);
        assert!(slack > -1e-9, "the solution is feasible: {slack}");
        let best = dot(&c, &x);
        for _ in 0..100_000 {
            let y: Vec<f64> = x.iter().map(|v| v * rng.range(0.5, 2.0)).collect();
            if feasible(&y) {
                assert!(dot(&c, &y) >= best - 1e-9 * best.abs(), "a sampled feasible point is better: {} < {best}", dot(&c, &y));
            }
        }
    }
}

#[test]
fn equal_task_gradients_give_the_direction_of_ew() {
    let mut rng = SplitMix64::new(3);
    let g: Vec<f64> = (0..10).map(|_| rng.normal()).collect();
    for t in [2, 3] {
        let grads = vec![g.clone(); t];
        let losses = vec![1.3; t];
        for m in [
            GradientMethod::GradVac { beta: 0.5, groups: Groups::WholeModel },
            GradientMethod::DbMtl { beta: 0.9, beta_sigma: 0.0 },
            GradientMethod::NashMtl { update_every: 1, iterations: 20, max_norm: 0.0 },
        ] {
            let mut state = MethodState::default();
            for _ in 0..3 {
                let got = m.combine_step(&grads, &losses, &mut state, &mut |_| (0..t - 1).collect());
                let cos = dot(&got.gradient, &g) / (norm(&got.gradient) * norm(&g));
                assert!((cos - 1.0).abs() < 1e-9, "{m:?}: cos {cos}");
                if matches!(m, GradientMethod::GradVac { .. }) {
                    close(&got.gradient, &g.iter().map(|v| v * t as f64).collect::<Vec<_>>(), 1e-12, "GradVac = EW");
                }
            }
        }
    }
}
