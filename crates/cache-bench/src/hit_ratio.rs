//! Hit ratio of a bounded cache on a skewed key stream: get, and set on a miss.

use crate::rng::Rng;
use crate::workload::{Result, Store, VALUE_LEN};
use crate::zipf::Zipf;

/// Distinct keys in the stream.
pub(crate) const UNIVERSE: usize = 1_000_000;
/// The capacity of each cache measured.
pub(crate) const CAPACITY: usize = 100_000;
/// The Zipf exponent.
pub(crate) const EXPONENT: f64 = 0.99;
/// Accesses before counting starts, so the cache is full and settled.
pub(crate) const WARM_UP: u64 = 1_000_000;
/// Accesses counted.
pub(crate) const MEASURED: u64 = 2_000_000;
/// The stream's seed: every cache sees the same keys in the same order.
const SEED: u64 = 0x5eed;

/// Hits among the measured accesses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HitRatio {
    /// Measured accesses that found their key.
    pub(crate) hits: u64,
    /// Measured accesses.
    pub(crate) accesses: u64,
}

impl HitRatio {
    /// Hits as a percentage of accesses.
    pub(crate) fn percent(&self) -> f64 {
        100.0 * self.hits as f64 / self.accesses as f64
    }
}

/// Plays the stream against `store`, one task: `get`, and on a miss `set`. `settle` runs
/// after the warm-up (for caches that defer their bookkeeping).
pub(crate) async fn measure<S: Store>(
    store: &S,
    zipf: &Zipf,
    settle: impl AsyncFnOnce(),
) -> Result<HitRatio> {
    let mut store = store.clone();
    let value = "v".repeat(VALUE_LEN);
    let mut rng = Rng::new(SEED);
    let mut access = async |rng: &mut Rng| -> Result<bool> {
        let key = format!("key:{}", zipf.sample(rng));
        if store.get(&key).await?.is_some() {
            return Ok(true);
        }
        store.set(&key, &value).await?;
        Ok(false)
    };
    for _ in 0..WARM_UP {
        access(&mut rng).await?;
    }
    settle().await;
    let mut hits = 0;
    for _ in 0..MEASURED {
        hits += u64::from(access(&mut rng).await?);
    }
    Ok(HitRatio {
        hits,
        accesses: MEASURED,
    })
}
