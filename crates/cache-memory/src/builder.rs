//! Configuration of a `MemoryCache`.

use std::time::Duration;

use crate::{CacheError, MemoryCache, Metrics, Result};

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
    time_to_idle: Option<Duration>,
    keep_expired_for: Duration,
    sweep_interval: Duration,
    name: String,
    /// Whether the cache publishes metrics (with the `metrics` feature).
    metrics: bool,
}

impl Default for MemoryCacheBuilder {
    fn default() -> Self {
        Self {
            max_capacity: None,
            max_bytes: None,
            time_to_idle: None,
            keep_expired_for: Duration::ZERO,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            name: cache_core::DEFAULT_NAME.to_owned(),
            metrics: true,
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

    /// Expires an entry not read or written for `idle`; the default is never. An entry with
    /// a TTL expires at its TTL or when idle, whichever comes first. Below 1 ms rounds up to
    /// 1 ms.
    ///
    /// Idle entries are never returned, and are reclaimed like expired ones (on read, by the
    /// sweep, first when making room). Each read then reads the clock and records the time
    /// in the entry, each entry keeps that time (8 bytes, which a cache without
    /// `time_to_idle` does not spend), and every entry has an item in the expiry index (24
    /// bytes).
    pub fn time_to_idle(mut self, idle: Duration) -> Self {
        self.time_to_idle = Some(idle);
        self
    }

    /// Keeps each entry for `keep` after it expires (at its TTL or by
    /// [`time_to_idle`](Self::time_to_idle)), readable only through
    /// [`get_stale_bytes`](crate::Cache::get_stale_bytes); the default is zero: nothing kept.
    ///
    /// This is what `cache_tiered`'s fail-safe reads: while the shared tier is down, it serves
    /// a value of this cache up to its `max_stale` past its TTL, and refuses to build over a
    /// cache whose [`stale_retention`](crate::Cache::stale_retention), this duration, is
    /// shorter than `max_stale`.
    ///
    /// Every other read treats a kept entry as missing, and neither it nor `get_stale_bytes`
    /// makes it live again: only a write does. The entry is reclaimed `keep` after it
    /// expired: by the sweep, or by the read that finds it then. Until then it holds its
    /// memory: it counts in [`MemoryCache::entry_count`] and [`MemoryCache::weighted_size`]
    /// and towards [`max_capacity`](Self::max_capacity) and [`max_bytes`](Self::max_bytes),
    /// and a full cache evicts expired entries, kept ones included, before any live one. It
    /// costs no time and nothing per entry: a read of a live entry does what it does
    /// without it. A duration too long for the clock's nanoseconds (over about 584 years)
    /// keeps expired entries until they are evicted, deleted or overwritten.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_memory::{Cache, MemoryCache};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cache_memory::Result<()> {
    /// let cache = MemoryCache::builder()
    ///     .max_capacity(10_000)
    ///     .keep_expired_for(Duration::from_secs(300))
    ///     .build()?;
    /// assert_eq!(cache.stale_retention(), Duration::from_secs(300));
    /// cache.set("user:1", "Ada", Some(Duration::from_secs(30))).await?;
    /// // A live entry: expired zero seconds ago.
    /// let (value, expired_ago) = cache.get_stale_bytes("user:1").await?.unwrap();
    /// assert_eq!((&value[..], expired_ago), (&b"Ada"[..], Duration::ZERO));
    /// # Ok(())
    /// # }
    /// ```
    pub fn keep_expired_for(mut self, keep: Duration) -> Self {
        self.keep_expired_for = keep;
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

    /// Names the cache (`"default"` unless set): the `cache` label of its metrics (feature
    /// `metrics`), which tells apart the caches of one process, and its `Debug` output.
    ///
    /// ```
    /// use cache_memory::MemoryCache;
    ///
    /// let cache = MemoryCache::builder().name("traces").build()?;
    /// assert_eq!(cache.name(), "traces");
    /// # Ok::<(), cache_memory::CacheError>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether this cache publishes metrics; `true` by default. `false` keeps it out of them
    /// and off the cost of sampling: a cache of no interest to the dashboards, or the L1 of
    /// a tiered cache whose own metrics suffice.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled;
        self
    }

    /// Builds the cache, starting its sweep if called inside a tokio runtime.
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`] for a capacity of 0, a `max_bytes` below
    /// [`MemoryCache::ENTRY_OVERHEAD`], a zero or over-73-year `time_to_idle`, or a zero
    /// sweep interval, or an empty name.
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
        let idle = match self.time_to_idle {
            None => None,
            Some(idle) => Some(
                crate::normalize_ttl(Some(idle))
                    .ok()
                    .flatten()
                    .and_then(|idle| u64::try_from(idle.as_nanos()).ok())
                    .filter(|&nanos| nanos < crate::NEVER / 2)
                    .ok_or_else(|| CacheError::InvalidConfig {
                        reason: format!(
                            "time_to_idle must be greater than zero and at most about 73 years; \
                             got {idle:?}"
                        ),
                        source: None,
                    })?,
            ),
        };
        if self.name.is_empty() {
            return Err(CacheError::InvalidConfig {
                reason: "name must not be empty; leave it unset for \"default\"".into(),
                source: None,
            });
        }
        if self.sweep_interval.is_zero() {
            return Err(CacheError::InvalidConfig {
                reason: "sweep_interval must be greater than zero".into(),
                source: None,
            });
        }
        // Saturated: a retention past `u64::MAX` nanoseconds is never over, which is what a
        // user asking for that much means.
        let keep = u64::try_from(self.keep_expired_for.as_nanos()).unwrap_or(u64::MAX);
        Ok(MemoryCache::from_parts(
            self.max_capacity,
            self.max_bytes,
            idle,
            keep,
            self.sweep_interval,
            Metrics::new(self.name, self.metrics),
        ))
    }
}
