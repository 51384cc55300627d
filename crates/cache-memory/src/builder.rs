//! Configuration of a `MemoryCache`.

use std::time::Duration;

use crate::{CacheError, MemoryCache, Result};

/// How often the background sweep runs unless configured.
pub(crate) const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Builds a [`MemoryCache`] with a capacity or a sweep interval of its own.
///
/// ```
/// use std::time::Duration;
/// use cache_memory::MemoryCache;
///
/// let cache = MemoryCache::builder()
///     .max_capacity(100_000)
///     .sweep_interval(Duration::from_millis(250))
///     .build()?;
/// assert_eq!(cache.max_capacity(), Some(100_000));
/// # Ok::<(), cache_memory::CacheError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct MemoryCacheBuilder {
    max_capacity: Option<usize>,
    sweep_interval: Duration,
}

impl Default for MemoryCacheBuilder {
    fn default() -> Self {
        Self {
            max_capacity: None,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
        }
    }
}

impl MemoryCacheBuilder {
    /// Bounds the number of entries; the default is unbounded.
    ///
    /// A `set` of a new key into a full cache first evicts one entry: an expired one if there
    /// is one, otherwise one not read recently.
    pub fn max_capacity(mut self, entries: usize) -> Self {
        self.max_capacity = Some(entries);
        self
    }

    /// How often the background sweep reclaims expired entries; the default is 1 s.
    ///
    /// Each run removes up to 65,536 expired entries, found in expiry order: its cost is
    /// proportional to what expired, not to the size of the cache.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// Builds the cache, starting its sweep if called inside a tokio runtime.
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`] for a capacity of 0 or a zero sweep interval.
    pub fn build(self) -> Result<MemoryCache> {
        if self.max_capacity == Some(0) {
            return Err(CacheError::InvalidConfig {
                reason: "max_capacity must be at least 1; leave it unset for an unbounded cache"
                    .into(),
                source: None,
            });
        }
        if self.sweep_interval.is_zero() {
            return Err(CacheError::InvalidConfig {
                reason: "sweep_interval must be greater than zero".into(),
                source: None,
            });
        }
        Ok(MemoryCache::from_parts(
            self.max_capacity,
            self.sweep_interval,
        ))
    }
}
