//! The distribution of absolute depth errors over a split: counts in bins of 1 cm from 0 m,
//! the last bin holding every error from [`ErrorHistogram::RANGE_M`] up. Exact counts, so
//! that histograms of shards merge into the histogram of the whole split.

use serde::{Deserialize, Serialize};

/// Counts of `|pred − gt|` (metres) over valid pixels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorHistogram {
    /// `counts[k]` = errors in `[k, k + 1) × BIN_M`; the last bin is open-ended. Trailing
    /// empty bins are not stored.
    pub counts: Vec<u64>,
}

/// One bar of a re-binned histogram: `[lo, hi)` metres and its count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

impl ErrorHistogram {
    /// Width of a bin, metres.
    pub const BIN_M: f64 = 0.01;
    /// Errors from here up share the last bin, metres.
    pub const RANGE_M: f64 = 20.0;
    const BINS: usize = 2000;

    /// The number of bins a full histogram has.
    pub fn default_bins() -> usize {
        Self::BINS
    }

    /// Count one error (metres; a non-finite error goes to the last bin).
    pub fn add(&mut self, error: f64) {
        let k = if error.is_finite() { ((error.max(0.0) / Self::BIN_M) as usize).min(Self::BINS - 1) } else { Self::BINS - 1 };
        if self.counts.len() <= k {
            self.counts.resize(k + 1, 0);
        }
        self.counts[k] += 1;
    }

    /// Add another histogram's counts.
    pub fn merge(&mut self, other: &ErrorHistogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Number of errors counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The upper edge (metres) of the first bin at which at least a fraction `q` of the errors
    /// is counted; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let want = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (k, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Some((k + 1) as f64 * Self::BIN_M);
            }
        }
        Some(self.counts.len() as f64 * Self::BIN_M)
    }

    /// `bars` equal bars from 0 to the 99th percentile (rounded up to whole bins); errors
    /// beyond it are added to the last bar, so the bars hold every error.
    pub fn bars(&self, bars: usize) -> Vec<Bar> {
        let Some(top) = self.quantile(0.99) else { return Vec::new() };
        let top_bins = (top / Self::BIN_M).round() as usize;
        let per = top_bins.div_ceil(bars.max(1)).max(1);
        let n = top_bins.div_ceil(per);
        let mut out: Vec<Bar> = (0..n).map(|i| Bar { lo: (i * per) as f64 * Self::BIN_M, hi: ((i + 1) * per) as f64 * Self::BIN_M, count: 0 }).collect();
        for (k, &c) in self.counts.iter().enumerate() {
            out[(k / per).min(n - 1)].count += c;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_land_in_their_centimetre() {
        let mut h = ErrorHistogram::default();
        for e in [0.0, 0.004, 0.0099, 0.01, 0.257, 25.0, f64::NAN] {
            h.add(e);
        }
        assert_eq!(h.counts[0], 3);
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[25], 1);
        assert_eq!(h.counts[1999], 2);
        assert_eq!(h.counts.len(), 2000);
        assert_eq!(h.total(), 7);
    }

    #[test]
    fn quantiles_and_bars_keep_every_count() {
        let mut h = ErrorHistogram::default();
        // 100 errors: 0.005, 0.015, ..., 0.995 m (one per centimetre bin).
        for i in 0..100 {
            h.add(i as f64 * 0.01 + 0.005);
        }
        assert_eq!(h.quantile(0.5), Some(0.5));
        assert_eq!(h.quantile(0.99), Some(0.99));
        assert_eq!(h.quantile(1.0), Some(1.0));
        let bars = h.bars(33);
        // 99 bins to the 99th percentile, 3 per bar; the last bar also takes the 100th error.
        assert_eq!(bars.len(), 33);
        assert!((bars[0].hi - 0.03).abs() < 1e-12, "{:?}", bars[0]);
        assert_eq!(bars.iter().map(|b| b.count).sum::<u64>(), 100);
        assert_eq!(bars[0].count, 3);
        assert_eq!(bars[32].count, 4);
        assert!(ErrorHistogram::default().bars(10).is_empty());
    }

    #[test]
    fn merged_shards_equal_the_whole() {
        let errs: Vec<f64> = (0..500).map(|i| (i as f64 * 0.37).sin().abs() * 3.0).collect();
        let (mut a, mut b, mut whole) = (ErrorHistogram::default(), ErrorHistogram::default(), ErrorHistogram::default());
        for (i, &e) in errs.iter().enumerate() {
            whole.add(e);
            if i % 2 == 0 { a.add(e) } else { b.add(e) }
        }
        a.merge(&b);
        assert_eq!(a, whole);
    }
}
