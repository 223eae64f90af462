//! Learning-rate schedules, stepped every iteration: constant, multi-step, cosine,
//! polynomial, each with an optional linear warm-up. A pure function of the iteration, so a
//! resumed run continues on the same curve.

/// A schedule's shape.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleKind {
    Constant,
    /// Multiply by `gamma` at each milestone (in iterations).
    MultiStep { milestones: Vec<u64>, gamma: f64 },
    /// Cosine from 1 to `min_factor` over the run.
    Cosine { min_factor: f64 },
    /// `(1 − t/T)^power`, from 1 to `min_factor`.
    Poly { power: f64, min_factor: f64 },
}

/// A schedule over `total` iterations.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub total: u64,
    /// Linear warm-up over this many iterations, from `warmup_factor` to 1.
    pub warmup: u64,
    pub warmup_factor: f64,
}

impl Schedule {
    /// The factor applied to the base learning rates at iteration `it` (0-based).
    pub fn factor(&self, it: u64) -> f64 {
        let t = it.min(self.total) as f64;
        let total = self.total.max(1) as f64;
        let base = match &self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::MultiStep { milestones, gamma } => gamma.powi(milestones.iter().filter(|&&m| it >= m).count() as i32),
            ScheduleKind::Cosine { min_factor } => min_factor + (1.0 - min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * t / total).cos()),
            ScheduleKind::Poly { power, min_factor } => min_factor + (1.0 - min_factor) * (1.0 - t / total).max(0.0).powf(*power),
        };
        if it < self.warmup {
            let a = it as f64 / self.warmup as f64;
            base * (self.warmup_factor + (1.0 - self.warmup_factor) * a)
        } else {
            base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kind: ScheduleKind) -> Schedule {
        Schedule { kind, total: 100, warmup: 0, warmup_factor: 1.0 }
    }

    #[test]
    fn shapes() {
        assert_eq!(s(ScheduleKind::Constant).factor(57), 1.0);
        let m = s(ScheduleKind::MultiStep { milestones: vec![10, 20], gamma: 0.1 });
        assert_eq!(m.factor(9), 1.0);
        assert!((m.factor(10) - 0.1).abs() < 1e-15);
        assert!((m.factor(25) - 0.01).abs() < 1e-15);
        let c = s(ScheduleKind::Cosine { min_factor: 0.0 });
        assert_eq!(c.factor(0), 1.0);
        assert!((c.factor(50) - 0.5).abs() < 1e-12);
        assert!(c.factor(100).abs() < 1e-12);
        let p = s(ScheduleKind::Poly { power: 0.9, min_factor: 0.0 });
        assert!((p.factor(50) - 0.5f64.powf(0.9)).abs() < 1e-12);
        // With a floor (PyTorch's PolynomialLR has none): min + (1 − min)(1 − t/T)^p.
        let p = s(ScheduleKind::Poly { power: 2.0, min_factor: 0.1 });
        assert!((p.factor(50) - (0.1 + 0.9 * 0.25)).abs() < 1e-12);
        assert!((p.factor(100) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn warmup_is_linear_then_hands_over() {
        let w = Schedule { kind: ScheduleKind::Constant, total: 100, warmup: 10, warmup_factor: 0.1 };
        assert!((w.factor(0) - 0.1).abs() < 1e-12);
        assert!((w.factor(5) - 0.55).abs() < 1e-12);
        assert_eq!(w.factor(10), 1.0);
    }
}
