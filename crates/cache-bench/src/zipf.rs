//! Zipf-distributed ranks for the hit-ratio workload.

use crate::rng::Rng;

/// Draws ranks `0..n` with probability proportional to `1 / (rank + 1)^s`, by binary search
/// in a precomputed cumulative distribution (8 bytes per rank).
#[derive(Debug)]
pub(crate) struct Zipf {
    /// `cdf[k]` is the probability of a rank `<= k`; the last one is 1.
    cdf: Vec<f64>,
}

impl Zipf {
    /// The distribution over `n` ranks (at least one) with exponent `s`.
    pub(crate) fn new(n: usize, s: f64) -> Self {
        let n = n.max(1);
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += 1.0 / (k as f64).powf(s);
            cdf.push(sum);
        }
        for p in &mut cdf {
            *p /= sum;
        }
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        Self { cdf }
    }

    /// The probability of rank `k`.
    #[cfg(test)]
    fn probability(&self, k: usize) -> f64 {
        self.cdf[k] - if k == 0 { 0.0 } else { self.cdf[k - 1] }
    }

    /// The next rank, `0..n`, drawn with `rng`.
    pub(crate) fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.next_f64();
        // The first rank whose cumulative probability exceeds u; u < 1 = the last entry.
        self.cdf
            .partition_point(|&p| p <= u)
            .min(self.cdf.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_is_increasing_and_ends_at_one() {
        let z = Zipf::new(1000, 0.99);
        assert!(z.cdf.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(z.cdf.last().copied(), Some(1.0));
    }

    #[test]
    fn probabilities_follow_the_power_law() {
        let z = Zipf::new(1000, 1.0);
        // p(rank 0) / p(rank 9) = 10^1.
        let ratio = z.probability(0) / z.probability(9);
        assert!((ratio - 10.0).abs() < 1e-9, "{ratio}");
    }

    #[test]
    fn samples_match_the_distribution() {
        let z = Zipf::new(1000, 0.99);
        let mut rng = Rng::new(1);
        let draws = 200_000;
        let mut first = 0;
        for _ in 0..draws {
            let k = z.sample(&mut rng);
            assert!(k < 1000);
            if k == 0 {
                first += 1;
            }
        }
        let want = z.probability(0);
        let got = f64::from(first) / f64::from(draws);
        assert!((got - want).abs() < 0.01, "{got} vs {want}");
    }

    #[test]
    fn same_seed_same_stream() {
        let z = Zipf::new(100, 0.99);
        let (mut a, mut b) = (Rng::new(9), Rng::new(9));
        assert!((0..100).all(|_| z.sample(&mut a) == z.sample(&mut b)));
    }
}
