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
    max_bytes: Option<usize>,
    sweep_interval: Duration,
}

impl Default for MemoryCacheBuilder {
    fn default() -> Self {
        Self {
            max_capacity: None,
            max_bytes: None,
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

    /// Bounds the weight of the entries: the bytes of their keys and values plus
    /// [`MemoryCache::ENTRY_OVERHEAD`] each; the default is unbounded. With
    /// [`max_capacity`](Self::max_capacity) too, both bounds hold.
    ///
    /// A write first evicts entries, by the same policy as the capacity, until the new entry
    /// fits; an entry heavier than the whole bound is refused with
    /// [`CacheError::TooLarge`], changing nothing. [`MemoryCache::weighted_size`] tells the
    /// weight held.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = Some(bytes);
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
    /// [`CacheError::InvalidConfig`] for a capacity of 0, a `max_bytes` below
    /// [`MemoryCache::ENTRY_OVERHEAD`], or a zero sweep interval.
    pub fn build(self) -> Result<MemoryCache> {
        if self.max_capacity == Some(0) {
            return Err(CacheError::InvalidConfig {
                reason: "max_capacity must be at least 1; leave it unset for an unbounded cache"
                    .into(),
                source: None,
            });
        }
        if self
            .max_bytes
            .is_some_and(|bytes| bytes < MemoryCache::ENTRY_OVERHEAD)
        {
            return Err(CacheError::InvalidConfig {
                reason: format!(
                    "max_bytes must be at least {} (the overhead of one entry); leave it unset \
                     for no byte bound",
                    MemoryCache::ENTRY_OVERHEAD
                ),
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
            self.max_bytes,
            self.sweep_interval,
        ))
    }
}
