//! The bf16 1×1 convolution on every bf16 path this CPU has, against the scalar reference of
//! `cpu::bf16`: AVX512-BF16 bit for bit, AMX within the recursive-summation bound of the
//! exact product of the bf16 values, the two paths against each other, and the epilogues bit
//! for bit the f32 kernel's steps. On a CPU (or a `HYDRA_CPU_LEVEL`) without a bf16 path, the
//! refusal and its reason. Each test prints the paths it exercised.

#![cfg(target_arch = "x86_64")]

use hydra_model::kernels::cpu::affine::channel_affine_in_place;
use hydra_model::kernels::cpu::bf16::{exact_dot_and_bound, reference_dot, Bf16Weights};
use hydra_model::kernels::cpu::conv1x1_bf16::conv1x1_bf16;
use hydra_model::kernels::precision::{bf16_paths, Bf16Path};

/// Values in about [−2, 2] with some large and tiny ones, from a fixed seed.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = hydra_core::rng::SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let u = rng.range(-2.0, 2.0);
            (u * match rng.below(143) { 0..=12 => 300.0, 13..=23 => 1e-3, _ => 1.0 }) as f32
        })
        .collect()
}

/// The paths to exercise, printed; `None` (with the reason printed) where there is none.
fn paths(test: &str) -> Option<Vec<Bf16Path>> {
    match bf16_paths() {
        Ok(p) => {
            println!("{test}: bf16 paths exercised: {}", p.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "));
            Some(p)
        }
        Err(e) => {
            println!("{test}: no bf16 path exercised ({e})");
            None
        }
    }
}

/// Shapes `([B, Cin, HW], Cout)`: channel counts off and on multiples of 32, planes shorter
/// than a block and longer than a task's columns, several images, the encoder's widest layer.
const SHAPES: &[([usize; 3], usize)] = &[([1, 3, 5], 4), ([2, 16, 300], 96), ([1, 24, 1200], 144), ([1, 33, 67], 31), ([3, 64, 17], 65), ([1, 960, 300], 160), ([1, 320, 40], 1280), ([1, 1, 1], 1)];

/// Input `x [B, Cin, HW]`'s column `j` of image `i` as a vector over channels.
fn column(x: &[f32], [_, cin, hw]: [usize; 3], i: usize, j: usize) -> Vec<f32> {
    (0..cin).map(|c| x[(i * cin + c) * hw + j]).collect()
}

#[test]
fn avx512_bf16_equals_the_scalar_reference_bit_for_bit() {
    let Some(paths) = paths("avx512bf16 against the reference") else { return };
    if !paths.contains(&Bf16Path::Avx512Bf16) {
        println!("AVX512-BF16 absent: not exercised");
        return;
    }
    for weights in [Bf16Weights::Rounded, Bf16Weights::Split] {
        for (n, &(dims @ [b, cin, hw], cout)) in SHAPES.iter().enumerate() {
            let (x, w) = (values(b * cin * hw, n as u64), values(cout * cin, 100 + n as u64));
            let y = conv1x1_bf16(&x, &w, dims, cout, None, None, Bf16Path::Avx512Bf16, weights);
            for i in 0..b {
                for j in 0..hw {
                    let col = column(&x, dims, i, j);
                    for o in 0..cout {
                        let r = reference_dot(&w[o * cin..(o + 1) * cin], &col, weights);
                        let got = y[(i * cout + o) * hw + j];
                        assert_eq!(got.to_bits(), r.to_bits(), "{weights:?} {dims:?}→{cout} image {i} row {o} column {j}: {got} vs {r}");
                    }
                }
            }
        }
    }
}

#[test]
fn every_path_stays_within_the_summation_bound_and_the_paths_agree() {
    let Some(paths) = paths("bound and agreement") else { return };
    for weights in [Bf16Weights::Rounded, Bf16Weights::Split] {
        let mut worst = vec![0.0f64; paths.len()];
        for (n, &(dims @ [b, cin, hw], cout)) in SHAPES.iter().enumerate() {
            let (x, w) = (values(b * cin * hw, 7 + n as u64), values(cout * cin, 200 + n as u64));
            let ys: Vec<Vec<f32>> = paths.iter().map(|&p| conv1x1_bf16(&x, &w, dims, cout, None, None, p, weights)).collect();
            for i in 0..b {
                for j in 0..hw {
                    let col = column(&x, dims, i, j);
                    for o in 0..cout {
                        let (exact, bound) = exact_dot_and_bound(&w[o * cin..(o + 1) * cin], &col, weights);
                        for (p, y) in ys.iter().enumerate() {
                            let err = (y[(i * cout + o) * hw + j] as f64 - exact).abs();
                            assert!(err <= bound, "{} {weights:?}: {dims:?}→{cout} image {i} row {o} column {j}: error {err:e} over the bound {bound:e}", paths[p].name());
                            if bound > 0.0 {
                                worst[p] = worst[p].max(err / bound);
                            }
                        }
                        // Two outputs within the bound of the same value are within twice it
                        // of each other.
                        if let [a, c] = &ys[..] {
                            let d = (a[(i * cout + o) * hw + j] as f64 - c[(i * cout + o) * hw + j] as f64).abs();
                            assert!(d <= 2.0 * bound, "{weights:?}: amx against avx512bf16: {d:e} over {:e}", 2.0 * bound);
                        }
                    }
                }
            }
        }
        for (p, w) in paths.iter().zip(&worst) {
            println!("{} {weights:?}: worst error {w:.3} of the bound", p.name());
        }
    }
    // Against the product of the f32 weights and the bf16-rounded inputs, split weights are
    // closer than rounded ones by orders of magnitude (2⁻⁸ for the weights' own error); and the
    // inputs are rounded (else the f32 product would be the reference).
    let (x, w) = (values(64 * 32, 1), values(8 * 64, 2));
    let product = |round_x: bool| -> Vec<f64> {
        let r = |v: f32| if round_x { hydra_model::kernels::cpu::bf16::from_bf16(hydra_model::kernels::cpu::bf16::to_bf16(v)) } else { v };
        (0..8 * 32).map(|t| (0..64).map(|c| w[t / 32 * 64 + c] as f64 * r(x[c * 32 + t % 32]) as f64).sum()).collect()
    };
    let (rounded_x, exact) = (product(true), product(false));
    let err = |weights, reference: &[f64]| {
        let y = conv1x1_bf16(&x, &w, [1, 64, 32], 8, None, None, paths[0], weights);
        y.iter().zip(reference).map(|(&a, &e)| (a as f64 - e).abs()).fold(0.0, f64::max)
    };
    let (rounded, split) = (err(Bf16Weights::Rounded, &rounded_x), err(Bf16Weights::Split, &rounded_x));
    println!("largest error against the f32 weights times the rounded inputs: rounded weights {rounded:e}, split {split:e}");
    assert!(split * 50.0 < rounded, "rounded {rounded:e}, split {split:e}");
    assert!(err(Bf16Weights::Split, &exact) > 10.0 * split, "the inputs were not rounded to bf16");
}

#[test]
fn epilogues_are_the_f32_kernels_steps_bit_for_bit() {
    use hydra_model::kernels::cpu::relu6::relu6_in_place;
    let Some(paths) = paths("epilogues") else { return };
    let (dims @ [b, cin, hw], cout) = ([2, 40, 70], 24);
    let (x, w) = (values(b * cin * hw, 11), values(cout * cin, 12));
    let scale: Vec<f32> = values(cout, 13);
    let shift: Vec<f32> = values(cout, 14);
    let addend = values(b * cout * hw, 15);
    for &p in &paths {
        let bf = |e, a| conv1x1_bf16(&x, &w, dims, cout, e, a, p, Bf16Weights::Split);
        let plain = bf(None, None);
        for relu6 in [false, true] {
            let mut expect = plain.clone();
            channel_affine_in_place(&mut expect, &scale, &shift, [b, cout, hw], relu6);
            let got = bf(Some((&scale, &shift, relu6)), None);
            assert_eq!(got, expect, "{}: affine epilogue, relu6 {relu6}", p.name());
        }
        let mut expect: Vec<f32> = plain.iter().zip(&addend).map(|(y, a)| y + a).collect();
        relu6_in_place(&mut expect);
        assert_eq!(bf(None, Some(&addend)), expect, "{}: add-relu6 epilogue", p.name());
    }
}

#[test]
fn without_a_bf16_path_bf16_is_refused_with_the_reason() {
    use hydra_model::kernels::precision::{set_precision, Precision};
    match bf16_paths() {
        Ok(p) => println!("bf16 paths here: {:?}; the refusal is not exercised", p),
        Err(e) => {
            let msg = set_precision(Precision::Bf16).unwrap_err().to_string();
            println!("refused: {msg}");
            assert_eq!(msg, e.to_string());
            assert!(msg.contains("AMX-BF16 or AVX512-BF16") && (msg.contains("no ") || msg.contains("HYDRA_CPU_LEVEL")), "{msg}");
            assert_eq!(hydra_model::kernels::precision(), Precision::F32);
        }
    }
}

#[test]
fn weights_changed_in_place_are_packed_anew() {
    // Packed weights are kept by the address of the f32 weights; new values at the same
    // address (a freed model's storage reused, an optimiser step in place) must not reuse them.
    let Some(paths) = paths("weight cache") else { return };
    let (dims @ [b, cin, hw], cout) = ([1, 64, 40], 48);
    let x = values(b * cin * hw, 21);
    let mut w = values(cout * cin, 22);
    for &p in &paths {
        let first = conv1x1_bf16(&x, &w, dims, cout, None, None, p, Bf16Weights::Split);
        assert_eq!(conv1x1_bf16(&x, &w, dims, cout, None, None, p, Bf16Weights::Split), first, "{}: the same weights twice", p.name());
        w[5] += 1.0;
        let moved = conv1x1_bf16(&x, &w, dims, cout, None, None, p, Bf16Weights::Split);
        let fresh = w.clone();
        assert_eq!(moved, conv1x1_bf16(&x, &fresh, dims, cout, None, None, p, Bf16Weights::Split), "{}: stale packed weights", p.name());
        assert_ne!(moved, first, "{}", p.name());
        w[5] -= 1.0;
    }
}
