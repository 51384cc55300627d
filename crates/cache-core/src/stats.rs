//! Operation counts: a snapshot type, and striped counters cheap enough to leave on.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of what a cache has done since it was built, from [`Cache::stats`](crate::Cache::stats).
///
/// Counts are per key: a [`get_many`](crate::Cache::get_many) of ten keys counts ten hits
/// or misses. Clones of a cache share its counts. A count a backend does not keep stays 0
/// (the memory backend never times out; Redis evicts and expires on the server, out of
/// sight).
///
/// Also `cache_memory::CacheStats` and `cache_redis::CacheStats`: a crate that depends on one
/// backend imports it from there.
///
/// ```
/// use cache_core::CacheStats;
///
/// let stats = CacheStats { hits: 3, misses: 1, ..CacheStats::default() };
/// assert_eq!(stats.hit_ratio(), Some(0.75));
/// assert_eq!(CacheStats::default().hit_ratio(), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads that found a live value.
    pub hits: u64,
    /// Reads that found nothing, or an expired entry.
    pub misses: u64,
    /// Values stored.
    pub sets: u64,
    /// Keys passed to `delete`, whether or not they existed.
    pub deletes: u64,
    /// Entries removed to make room under a capacity bound.
    pub evictions: u64,
    /// Evictions of entries the policy never admitted: new keys removed to make room before
    /// they proved useful (also counted in `evictions`).
    pub rejections: u64,
    /// Entries removed because their TTL had passed (on read, by a sweep, or to make room).
    pub expirations: u64,
    /// Operations that failed, timeouts included; a miss is not an error.
    pub errors: u64,
    /// Operations that failed because they ran out of time (also counted in `errors`).
    pub timeouts: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or `None` before the first read.
    pub fn hit_ratio(&self) -> Option<f64> {
        let reads = self.hits + self.misses;
        #[allow(clippy::cast_precision_loss)] // a ratio; 2^53 reads are far away
        (reads > 0).then(|| self.hits as f64 / reads as f64)
    }
}

/// What one counter of [`StatsCounters`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stat {
    /// [`CacheStats::hits`].
    Hit,
    /// [`CacheStats::misses`].
    Miss,
    /// [`CacheStats::sets`].
    Set,
    /// [`CacheStats::deletes`].
    Delete,
    /// [`CacheStats::evictions`].
    Eviction,
    /// [`CacheStats::rejections`].
    Rejection,
    /// [`CacheStats::expirations`].
    Expiration,
    /// [`CacheStats::errors`].
    Error,
    /// [`CacheStats::timeouts`].
    Timeout,
}

/// The number of [`Stat`]s, and so of counters in a stripe.
const STATS: usize = 9;

/// One thread's share of the counts, on a cache line of its own so that threads counting at
/// once do not bounce a line between cores.
#[repr(align(128))]
#[derive(Default)]
struct Stripe([AtomicU64; STATS]);

/// Counters a backend bumps on every operation, for [`Cache::stats`](crate::Cache::stats).
///
/// Each count is split over a few cache-line-sized stripes, one chosen per thread, so
/// counting costs one uncontended atomic add (a few nanoseconds) even when every core is
/// hitting the cache; [`snapshot`](Self::snapshot) sums the stripes.
///
/// ```
/// use cache_core::{Stat, StatsCounters};
///
/// let counters = StatsCounters::new();
/// counters.add(Stat::Hit, 2);
/// counters.add(Stat::Miss, 1);
/// assert_eq!(counters.snapshot().hits, 2);
/// assert_eq!(counters.snapshot().misses, 1);
/// ```
pub struct StatsCounters {
    stripes: Box<[Stripe]>,
}

impl StatsCounters {
    /// Zeroed counters, with a stripe for every two threads the machine can run at once.
    pub fn new() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let stripes = (2 * threads).next_power_of_two().min(64);
        Self {
            stripes: (0..stripes).map(|_| Stripe::default()).collect(),
        }
    }

    /// Adds `n` to the count of `stat`.
    #[inline]
    pub fn add(&self, stat: Stat, n: u64) {
        let stripe = &self.stripes[stripe_of_this_thread() & (self.stripes.len() - 1)];
        stripe.0[stat as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// The sums of every count so far.
    pub fn snapshot(&self) -> CacheStats {
        let sum = |stat: Stat| -> u64 {
            self.stripes
                .iter()
                .map(|stripe| stripe.0[stat as usize].load(Ordering::Relaxed))
                .fold(0, u64::wrapping_add)
        };
        CacheStats {
            hits: sum(Stat::Hit),
            misses: sum(Stat::Miss),
            sets: sum(Stat::Set),
            deletes: sum(Stat::Delete),
            evictions: sum(Stat::Eviction),
            rejections: sum(Stat::Rejection),
            expirations: sum(Stat::Expiration),
            errors: sum(Stat::Error),
            timeouts: sum(Stat::Timeout),
        }
    }
}

impl Default for StatsCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StatsCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StatsCounters")
            .field(&self.snapshot())
            .finish()
    }
}

/// A small number fixed per thread, handed out round-robin, to pick a stripe.
#[inline]
fn stripe_of_this_thread() -> usize {
    /// Marks a thread not given its number yet.
    const UNSET: usize = usize::MAX;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // A constant initializer: each read is a plain load from the thread's block, without the
    // check and registration of a lazily initialized thread local.
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(UNSET) };
    }
    STRIPE.with(|stripe| match stripe.get() {
        UNSET => {
            // The top bit cleared: never `UNSET`, whatever the number of threads.
            let n = NEXT.fetch_add(1, Ordering::Relaxed) & (UNSET >> 1);
            stripe.set(n);
            n
        }
        n => n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up() {
        let counters = StatsCounters::new();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        counters.add(Stat::Hit, 1);
                        counters.add(Stat::Timeout, 2);
                    }
                });
            }
        });
        let stats = counters.snapshot();
        assert_eq!(stats.hits, 80_000);
        assert_eq!(stats.timeouts, 160_000);
        assert_eq!(stats.misses + stats.sets + stats.errors, 0);
    }

    #[test]
    fn stripes_have_a_cache_line_each() {
        assert!(std::mem::align_of::<Stripe>() >= 128);
    }
}
