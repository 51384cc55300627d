//! Latency percentiles from a log-bucketed histogram: fixed memory, about 3% error.

use std::time::Duration;

/// Linear sub-buckets per power of two: 2^5 = 32, so a bucket is at most 1/32 of its value
/// wide (values below 32 ns are exact).
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for every `u64` nanosecond count.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// Counts of latencies in nanoseconds, in buckets whose width grows with the value (as in
/// HdrHistogram): a percentile is known to within one bucket, about 3% of its value.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }
}

/// The bucket of `nanos`.
fn index(nanos: u64) -> usize {
    if nanos < SUB {
        return nanos as usize;
    }
    let exp = 63 - nanos.leading_zeros(); // >= SUB_BITS
    let shift = exp - SUB_BITS;
    let sub = (nanos >> shift) & (SUB - 1);
    ((shift as u64 + 1) * SUB + sub) as usize
}

/// The smallest value that falls in bucket `i`.
fn lower_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    (SUB + i % SUB) << shift
}

impl Histogram {
    /// Records one latency.
    pub(crate) fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.counts[index(nanos)] += 1;
        self.total += 1;
    }

    /// Adds every count of `other` to this one.
    pub(crate) fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    /// How many latencies were recorded.
    pub(crate) fn len(&self) -> u64 {
        self.total
    }

    /// The latency below which the fraction `q` (0..=1) of the recorded ones fall: the middle
    /// of its bucket; zero when nothing was recorded.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        // The rank of the wanted sample, 1-based, as the nearest-rank method counts.
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let low = lower_bound(i);
                let high = lower_bound(i + 1).max(low + 1);
                return Duration::from_nanos(low + (high - low - 1) / 2);
            }
        }
        Duration::from_nanos(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        for i in 0..BUCKETS - 1 {
            assert_eq!(index(lower_bound(i)), i);
            assert!(lower_bound(i + 1) > lower_bound(i));
            assert_eq!(index(lower_bound(i + 1) - 1), i);
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for n in [3, 3, 3, 7] {
            h.record(Duration::from_nanos(n));
        }
        assert_eq!(h.quantile(0.5), Duration::from_nanos(3));
        assert_eq!(h.quantile(1.0), Duration::from_nanos(7));
    }

    #[test]
    fn percentiles_of_a_uniform_spread_are_within_three_percent() {
        let mut h = Histogram::default();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        for (q, want) in [(0.5, 5_000_000.0), (0.99, 9_900_000.0), (0.01, 100_000.0)] {
            let got = h.quantile(q).as_nanos() as f64;
            assert!((got - want).abs() / want < 0.035, "q {q}: {got} vs {want}");
        }
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(Duration::from_nanos(100));
        b.record(Duration::from_millis(1));
        b.record(Duration::from_millis(1));
        a.merge(&b);
        assert_eq!(a.len(), 3);
        let p50 = a.quantile(0.5).as_nanos() as f64;
        assert!((p50 - 1e6).abs() / 1e6 < 0.035);
    }

    #[test]
    fn empty_histogram_reports_zero() {
        assert_eq!(Histogram::default().quantile(0.99), Duration::ZERO);
    }
}
