//! The six access traces of the hit-ratio group (issue 13): key numbers, made once per shape
//! and size, replayed against every cache.

use crate::rng::Rng;
use crate::zipf::Zipf;

/// Accesses a full-size trace has.
pub(crate) const ACCESSES: usize = 3_000_000;
/// The share of a trace played before counting starts, in percent.
pub(crate) const WARM_UP_PERCENT: usize = 20;
/// Accesses between the starts of two scans, per key of the trace: every 100,000 accesses
/// over 1,000,000 keys.
const SCAN_EVERY_PER_KEY: f64 = 0.1;
/// The share of the accesses that scans read: a fifth.
const SCAN_SHARE: f64 = 0.2;
/// Phases of the shifting trace: its popular keys move twice.
const SHIFT_PHASES: usize = 3;

/// What a trace draws its keys from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Shape {
    /// Zipf-distributed ranks, rank `r` is key `r`.
    Zipf(f64),
    /// Keys `0, 1, ..., keys - 1` over and over.
    Loop,
    /// Zipf(0.99), a fifth of the accesses in one-time scans of keys never seen again.
    Scans,
    /// Zipf(0.99) whose ranks map to other keys after each third of the accesses.
    Shifting,
}

/// One of the traces: its shape, its key space and the capacity of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceSpec {
    /// The row's name.
    pub(crate) name: &'static str,
    /// The shape's name, for the chart.
    pub(crate) shape_name: &'static str,
    /// The shape.
    pub(crate) shape: Shape,
    /// Distinct keys the shape draws from (scans add keys beyond them).
    pub(crate) keys: usize,
    /// The capacity of the table's row.
    pub(crate) capacity: usize,
}

/// The six traces of the table, at full size.
pub(crate) const SPECS: [TraceSpec; 6] = [
    TraceSpec {
        name: "Zipf 0.99, 1M keys, capacity 100k",
        shape_name: "Zipf 0.99",
        shape: Shape::Zipf(0.99),
        keys: 1_000_000,
        capacity: 100_000,
    },
    TraceSpec {
        name: "Zipf 0.99, 1M keys, capacity 10k",
        shape_name: "Zipf 0.99",
        shape: Shape::Zipf(0.99),
        keys: 1_000_000,
        capacity: 10_000,
    },
    TraceSpec {
        name: "Zipf 0.7, 1M keys, capacity 100k",
        shape_name: "Zipf 0.7",
        shape: Shape::Zipf(0.7),
        keys: 1_000_000,
        capacity: 100_000,
    },
    TraceSpec {
        name: "loop over 60k keys, capacity 50k",
        shape_name: "loop",
        shape: Shape::Loop,
        keys: 60_000,
        capacity: 50_000,
    },
    TraceSpec {
        name: "Zipf 0.99 + one-time scans (20%), capacity 100k",
        shape_name: "Zipf 0.99 + one-time scans",
        shape: Shape::Scans,
        keys: 1_000_000,
        capacity: 100_000,
    },
    TraceSpec {
        name: "Zipf 0.99 shifting every third (1M accesses), capacity 100k",
        shape_name: "Zipf 0.99, popular keys shifting",
        shape: Shape::Shifting,
        keys: 1_000_000,
        capacity: 100_000,
    },
];

/// A trace made: key numbers in access order.
#[derive(Debug)]
pub(crate) struct Trace {
    /// Key numbers; every key number is below `distinct`.
    pub(crate) accesses: Vec<u32>,
    /// One more than the highest key number.
    pub(crate) distinct: usize,
}

impl Trace {
    /// `accesses` accesses of `shape` over `keys` keys, from a fixed seed.
    pub(crate) fn new(shape: Shape, keys: usize, accesses: usize) -> Self {
        let mut rng = Rng::new(0x5eed_0013);
        let zipf = match shape {
            Shape::Zipf(s) => Some(Zipf::new(keys, s)),
            Shape::Scans | Shape::Shifting => Some(Zipf::new(keys, 0.99)),
            Shape::Loop => None,
        };
        let scan_every = ((keys as f64 * SCAN_EVERY_PER_KEY) as usize).max(1);
        let scan_run = (scan_every as f64 * SCAN_SHARE) as usize;
        let shift_every = (accesses / SHIFT_PHASES).max(1);
        let mut next_scan_key = keys;
        let mut shift = 0;
        let list: Vec<u32> = (0..accesses)
            .map(|i| {
                let key = match (shape, &zipf) {
                    (Shape::Loop, _) => i % keys,
                    (Shape::Scans, _) if i % scan_every < scan_run => {
                        next_scan_key += 1;
                        next_scan_key - 1
                    }
                    (Shape::Shifting, Some(zipf)) => {
                        if i % shift_every == 0 {
                            // A new random offset: the popular keys of the next phase are
                            // other keys.
                            shift = rng.next_u64() as usize % keys;
                        }
                        (zipf.sample(&mut rng) + shift) % keys
                    }
                    (_, Some(zipf)) => zipf.sample(&mut rng),
                    (_, None) => i % keys,
                };
                u32::try_from(key).unwrap_or(u32::MAX)
            })
            .collect();
        Self {
            accesses: list,
            distinct: next_scan_key,
        }
    }

    /// The accesses before counting starts.
    pub(crate) fn warm_up(&self) -> usize {
        self.accesses.len() * WARM_UP_PERCENT / 100
    }
}

/// The key name of key number `n`.
pub(crate) fn key_name(n: usize) -> String {
    format!("key:{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_repeats_its_keys_in_order() {
        let trace = Trace::new(Shape::Loop, 5, 12);
        assert_eq!(trace.accesses, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]);
    }

    #[test]
    fn scans_read_each_of_their_keys_once_and_make_a_fifth_of_the_accesses() {
        // Scans of 20 keys every 100 accesses.
        let trace = Trace::new(Shape::Scans, 1000, 200);
        let scanned: Vec<_> = trace.accesses.iter().filter(|&&k| k >= 1000).collect();
        assert_eq!(scanned.len(), 40);
        let mut unique = scanned.clone();
        unique.dedup();
        assert_eq!(unique.len(), scanned.len());
        assert_eq!(trace.distinct, 1000 + 40);
    }

    #[test]
    fn shifting_moves_the_most_frequent_key() {
        let trace = Trace::new(Shape::Shifting, 100_000, 3_000_000);
        let top = |part: &[u32]| {
            let mut counts = std::collections::HashMap::new();
            for &k in part {
                *counts.entry(k).or_insert(0) += 1;
            }
            counts.into_iter().max_by_key(|&(_, c)| c).map(|(k, _)| k)
        };
        let (first, second) = trace.accesses.split_at(1_000_000);
        assert_ne!(top(first), top(second));
    }
}
