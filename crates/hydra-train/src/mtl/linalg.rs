//! The small dense linear algebra the gradient methods need, in f64: dot products, Gram
//! matrices, linear combinations, a solve with partial pivoting, a symmetric eigensolver.

/// `a · b`.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `‖a‖₂`.
pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// `M[i][j] = g_i · g_j`.
pub fn gram(g: &[Vec<f64>]) -> Vec<Vec<f64>> {
    g.iter().map(|a| g.iter().map(|b| dot(a, b)).collect()).collect()
}

/// `softmax(z)`, shifted by its maximum.
pub fn softmax(z: &[f64]) -> Vec<f64> {
    let top = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - top).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// torch's `sign`: −1, 0 or 1.
pub fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// `Σ_i w_i g_i`.
pub fn combination(w: &[f64], g: &[Vec<f64>]) -> Vec<f64> {
    let mut out = vec![0.0; g[0].len()];
    for (wi, gi) in w.iter().zip(g) {
        for (o, v) in out.iter_mut().zip(gi) {
            *o += wi * v;
        }
    }
    out
}

/// `x` with `x A = b` for a square `A` (row vector times matrix, as LibMTL's
/// `g U^T (D U^T)^{-1}`), by Gaussian elimination with partial pivoting on `Aᵀ x = b`.
/// `None` when `A` is singular.
pub fn solve_left(a: &[Vec<f64>], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    // Aᵀ x = b, augmented.
    let mut m: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| a[j][i]).chain([b[i]]).collect()).collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        if m[pivot][col] == 0.0 || !m[pivot][col].is_finite() {
            return None;
        }
        m.swap(col, pivot);
        for row in col + 1..n {
            let f = m[row][col] / m[col][col];
            for k in col..=n {
                m[row][k] -= f * m[col][k];
            }
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| m[i][k] * x[k]).sum();
        x[i] = (m[i][n] - s) / m[i][i];
    }
    Some(x)
}

/// Eigenvalues and unit eigenvectors of a symmetric matrix (cyclic Jacobi rotations, to
/// machine precision): `(λ, V)` with `V[k]` the eigenvector of `λ[k]`, in ascending order
/// of `λ`.
pub fn symmetric_eigen(a: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    let mut m = a.to_vec();
    let mut v: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect()).collect();
    for _sweep in 0..100 {
        let off: f64 = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| m[i][j] * m[i][j]).sum();
        let scale: f64 = (0..n).map(|i| m[i][i] * m[i][i]).sum::<f64>().max(f64::MIN_POSITIVE);
        if off <= scale * 1e-32 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if m[p][q] == 0.0 {
                    continue;
                }
                let theta = (m[q][q] - m[p][p]) / (2.0 * m[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k][p], m[k][q]);
                    m[k][p] = c * mkp - s * mkq;
                    m[k][q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p][k], m[q][k]);
                    m[p][k] = c * mpk - s * mqk;
                    m[q][k] = s * mpk + c * mqk;
                }
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[i][i].total_cmp(&m[j][j]));
    let values = order.iter().map(|&k| m[k][k]).collect();
    let vectors = order.iter().map(|&k| (0..n).map(|i| v[i][k]).collect()).collect();
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solve_left_inverts_a_row_vector_product() {
        let a = vec![vec![2.0, 1.0, 0.0], vec![1.0, 3.0, 1.0], vec![0.5, 0.0, 4.0]];
        let x = [1.0, -2.0, 0.5];
        let b: Vec<f64> = (0..3).map(|j| (0..3).map(|i| x[i] * a[i][j]).sum()).collect();
        let got = solve_left(&a, &b).unwrap();
        for (g, w) in got.iter().zip(x) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        assert_eq!(solve_left(&[vec![1.0, 2.0], vec![2.0, 4.0]], &[1.0, 1.0]), None);
    }

    #[test]
    fn symmetric_eigen_reconstructs_the_matrix() {
        let a = vec![vec![4.0, 1.0, -2.0], vec![1.0, 2.0, 0.5], vec![-2.0, 0.5, 3.0]];
        let (l, v) = symmetric_eigen(&a);
        assert!(l.windows(2).all(|w| w[0] <= w[1]));
        for i in 0..3 {
            for j in 0..3 {
                let r: f64 = (0..3).map(|k| l[k] * v[k][i] * v[k][j]).sum();
                assert!((r - a[i][j]).abs() < 1e-12, "({i}, {j}): {r} vs {}", a[i][j]);
            }
            assert!((norm(&v[i]) - 1.0).abs() < 1e-12);
        }
        // Trace and determinant by hand: 9 and 4·(6 − 0.25) − 1·(3 + 1) − 2·(0.5 + 4) = 10.
        assert!((l.iter().sum::<f64>() - 9.0).abs() < 1e-12);
        assert!((l.iter().product::<f64>() - 10.0).abs() < 1e-10);
    }
}
