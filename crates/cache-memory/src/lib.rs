#![doc = include_str!("../README.md")]
// Feature badges on docs.rs, which builds with nightly and `--cfg docsrs`; `doc(cfg)` is not
// stable yet (Rust 1.95), so local and CI doc builds leave `docsrs` unset.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod entry;
mod eviction;
mod expiry;
mod ghost;
mod metrics;
mod policy;
mod shards;
mod store;
mod sweeper;
mod table;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

pub use builder::MemoryCacheBuilder;
#[cfg(feature = "lz4")]
#[cfg_attr(docsrs, doc(cfg(feature = "lz4")))]
pub use cache_core::Compressed;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use cache_core::Json;
#[cfg(feature = "msgpack")]
#[cfg_attr(docsrs, doc(cfg(feature = "msgpack")))]
pub use cache_core::MsgPack;
pub use cache_core::{
    AnyCache, BoxError, Bytes, Cache, CacheError, CacheExt, CacheStats, MIN_TTL, Result,
    SingleFlight, Stat, StatsCounters, Ttl, normalize_ttl, utf8,
};
pub use cache_core::{Codec, TypedCache};

use entry::{Entry, Incoming, LastAccess, NoIdle, Touched};
use expiry::ExpiryIndex;
pub(crate) use metrics::Metrics;
use policy::Policy;
use sweeper::SweepControl;

/// The expiry of an entry that never expires; also the mask of an expiry in `Entry::expires`.
pub(crate) const NEVER: u64 = u64::MAX >> 2;
/// The shift of the read count in `Entry::expires`' top two bits.
const READS_SHIFT: u32 = 62;
/// One read in `Entry::expires`.
const ONE_READ: u64 = 1 << READS_SHIFT;
/// The highest read count an entry keeps: three more turns in the protected queue.
const MAX_READS: u64 = 3;
/// Expiry index items one eviction may pop per shard while looking for an expired entry.
const EVICT_POP_BUDGET: usize = 1024;

/// How the map hashes keys: foldhash, seeded at random for each cache (a per-map seed mixed
/// with a per-process one, as hashbrown's default hasher does), so that the keys that collide
/// in one cache cannot be known in advance. Its "quality" variant, because the eviction
/// policy and the expiry index take their shard and the ghost its tag from separate bits of
/// the same hash. SipHash, std's default, costs several times as much for short keys, and
/// every miss of a bounded cache hashes its key more than once.
type KeyHasher = foldhash::quality::RandomState;

/// The store: every entry under its key.
type Map<A> = DashMap<Arc<str>, Entry<A>, KeyHasher>;

/// An in-process cache: DashMap sharded storage with per-entry TTL and optional capacity.
///
/// Clones are cheap and share one store. Expired entries are never returned: a read that
/// finds one removes it (without racing a concurrent `set` of the same key), and a background
/// sweep reclaims those nobody reads. With
/// [`keep_expired_for`](MemoryCacheBuilder::keep_expired_for), both wait that long after an
/// entry expired, and until then [`get_stale_bytes`](Cache::get_stale_bytes), and only it,
/// returns the entry. With [`max_capacity`](MemoryCacheBuilder::max_capacity)
/// the entry count never exceeds the bound: inserting a new key into a full cache evicts an
/// expired entry if there is one, otherwise the policy's choice: S3-FIFO queues, where a new
/// key stays on probation until it is read, so that a scan of keys read once cannot push out
/// the keys read often (see the crate docs for the policy and what it costs).
///
/// Expiry follows tokio's clock ([`tokio::time::Instant`]), which is the monotonic system
/// clock except in tests that pause tokio's time.
///
/// # The background sweep
/// The sweep is a tokio task, started by the constructor when it runs inside a tokio runtime
/// with timers enabled, otherwise by the first `set` that does. Every
/// [`sweep_interval`](MemoryCacheBuilder::sweep_interval) (default 1 s) it removes up to
/// 65,536 expired entries, found in expiry order without scanning live ones, yielding between
/// chunks of 1,024. It stops on
/// [`close`](Cache::close) and when the last clone is dropped.
///
/// The cache works on any executor and in blocking code, and never panics for want of a
/// runtime. Where no sweep can run (outside tokio, or on a tokio runtime built without
/// `enable_time()`), expired entries are reclaimed when read, by eviction when a capacity is
/// set, and by writes: each write removes up to four expired entries of its own shard, more
/// than the one it adds, so memory stays bounded without background work.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use cache_memory::{Cache, MemoryCache};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_memory::Result<()> {
/// let cache = MemoryCache::builder().max_capacity(10_000).build()?;
/// cache.set("session:42", "alice", Some(Duration::from_secs(30))).await?;
/// assert_eq!(cache.get("session:42").await?.as_deref(), Some("alice"));
/// cache.delete("session:42").await?;
/// assert_eq!(cache.get("session:42").await?, None);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryCache {
    inner: Shared,
}

/// The state clones share, in the entry layout chosen when the cache was built.
#[derive(Clone)]
enum Shared {
    /// Without `time_to_idle`: entries keep no access time.
    Plain(Arc<Inner<NoIdle>>),
    /// With `time_to_idle`: each entry keeps the time of its last read or write.
    Idle(Arc<Inner<Touched>>),
}

/// Evaluates `$body` with `$inner` bound to the cache's [`Inner`], whichever its layout.
macro_rules! with_inner {
    ($cache:expr, $inner:ident => $body:expr) => {
        match &$cache.inner {
            Shared::Plain($inner) => $body,
            Shared::Idle($inner) => $body,
        }
    };
}

/// The state clones share; `A` is where entries keep their last access (see
/// [`LastAccess`]).
pub(crate) struct Inner<A> {
    map: Map<A>,
    /// When entries with a TTL expire: for the sweep, and to evict expired entries first.
    expiry: ExpiryIndex,
    /// Every key of `map` when a capacity is set, for eviction; unused otherwise.
    policy: Policy,
    /// Entries in `map` plus slots reserved by inserts in flight; never above `max_capacity`.
    count: AtomicUsize,
    max_capacity: Option<usize>,
    /// The bound on the weight of the entries ([`MemoryCache::ENTRY_OVERHEAD`] plus key and
    /// value bytes each), if any.
    max_bytes: Option<usize>,
    /// The weight of the entries in `map` plus that reserved by inserts in flight; kept only
    /// with `max_bytes`, never above it.
    bytes: AtomicUsize,
    /// `time_to_idle` in nanoseconds, if set.
    idle: Option<u64>,
    /// `keep_expired_for` in nanoseconds (saturated; 0 by default): how long after its
    /// deadline an expired entry stays, for `get_stale_bytes`.
    keep: u64,
    /// Rotates eviction over the policy's shards when the key's own shard has nothing to evict.
    evict_next: AtomicUsize,
    closed: AtomicBool,
    epoch: Instant,
    sweep: Arc<SweepControl>,
    stats: StatsCounters,
    flights: SingleFlight,
    /// The cache's name and, with the `metrics` feature, what publishes its counts.
    metrics: Metrics,
}

impl MemoryCache {
    /// An unbounded cache with the default sweep interval (1 s); works with no configuration.
    pub fn new() -> Self {
        Self::from_parts(
            None,
            None,
            None,
            0,
            builder::DEFAULT_SWEEP_INTERVAL,
            Metrics::new(cache_core::DEFAULT_NAME.to_owned(), true),
        )
    }

    /// A builder to set a capacity or the sweep interval.
    pub fn builder() -> MemoryCacheBuilder {
        MemoryCacheBuilder::default()
    }

    fn from_parts(
        max_capacity: Option<usize>,
        max_bytes: Option<usize>,
        idle: Option<u64>,
        keep: u64,
        sweep_interval: Duration,
        metrics: Metrics,
    ) -> Self {
        let inner = match idle {
            None => Shared::Plain(Inner::new(
                max_capacity,
                max_bytes,
                None,
                keep,
                sweep_interval,
                metrics,
            )),
            Some(_) => Shared::Idle(Inner::new(
                max_capacity,
                max_bytes,
                idle,
                keep,
                sweep_interval,
                metrics,
            )),
        };
        Self { inner }
    }

    /// The number of entries held, including expired ones not reclaimed yet: those kept by
    /// [`keep_expired_for`](MemoryCacheBuilder::keep_expired_for), and those nothing has
    /// reclaimed since they expired (or their retention ended).
    ///
    /// While inserts are in flight it may count, for a moment, a slot reserved for an entry
    /// not stored yet; it never exceeds the capacity.
    pub fn entry_count(&self) -> usize {
        with_inner!(self, inner => inner.entry_count())
    }

    /// The capacity set with [`MemoryCacheBuilder::max_capacity`], if any.
    pub fn max_capacity(&self) -> Option<usize> {
        with_inner!(self, inner => inner.max_capacity)
    }

    /// The bound set with [`MemoryCacheBuilder::max_bytes`], if any.
    pub fn max_bytes(&self) -> Option<usize> {
        with_inner!(self, inner => inner.max_bytes)
    }

    /// The weight of the entries held, in bytes, when [`max_bytes`](Self::max_bytes) is set
    /// (`None` otherwise): each entry's key and value bytes plus
    /// [`ENTRY_OVERHEAD`](Self::ENTRY_OVERHEAD). Like [`entry_count`](Self::entry_count), it
    /// includes expired entries not reclaimed yet (kept ones too) and, for a moment, inserts
    /// in flight; it never exceeds the bound.
    pub fn weighted_size(&self) -> Option<usize> {
        with_inner!(self, inner => inner.max_bytes.map(|_| inner.bytes.load(Ordering::Acquire)))
    }

    /// What [`max_bytes`](MemoryCacheBuilder::max_bytes) counts for an entry beside its key
    /// and value bytes: its 64-byte slot in the map and 24 bytes in the eviction policy's
    /// queues (the key's `Arc` and its hash), plus 8 for the time of its last access, which a
    /// cache with [`time_to_idle`](MemoryCacheBuilder::time_to_idle) keeps. The same for every
    /// cache, so that a bound means the same entries whatever else is configured. Allocator
    /// rounding and the expiry index (24 bytes for an entry with a TTL) are not counted.
    pub const ENTRY_OVERHEAD: usize = 96;

    /// The name given to [`MemoryCacheBuilder::name`] (`"default"` unless set): the `cache`
    /// label of its metrics.
    pub fn name(&self) -> &str {
        with_inner!(self, inner => inner.metrics.name())
    }

    /// Publishes the counts and gauges to the `metrics` recorder now, rather than at the
    /// next publication (at most a second away while the cache is used, or while it lives
    /// on a tokio runtime with timers): before a scrape or at shutdown, and in tests.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn publish_metrics(&self) {
        with_inner!(self, inner => inner.metrics.publish(inner));
    }
}

impl<A: LastAccess> Inner<A> {
    fn new(
        max_capacity: Option<usize>,
        max_bytes: Option<usize>,
        idle: Option<u64>,
        keep: u64,
        sweep_interval: Duration,
        metrics: Metrics,
    ) -> Arc<Self> {
        let bounded = max_capacity.is_some() || max_bytes.is_some();
        let shards =
            (std::thread::available_parallelism().map_or(1, usize::from) * 4).next_power_of_two();
        let inner = Arc::new(Inner {
            map: DashMap::with_hasher_and_shard_amount(KeyHasher::default(), shards),
            expiry: ExpiryIndex::new(shards),
            policy: Policy::new(
                if bounded { shards } else { 0 },
                // Without a count bound, the ghost remembers as many keys as entries of the
                // smallest size fit.
                max_capacity
                    .or(max_bytes.map(|bytes| bytes / MemoryCache::ENTRY_OVERHEAD))
                    .unwrap_or(0),
            ),
            count: AtomicUsize::new(0),
            max_capacity,
            max_bytes,
            bytes: AtomicUsize::new(0),
            idle,
            keep,
            evict_next: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            epoch: Instant::now(),
            sweep: SweepControl::new(sweep_interval),
            stats: StatsCounters::new(),
            flights: SingleFlight::new(),
            metrics,
        });
        inner.sweep.ensure_running(&inner);
        inner
    }

    /// A write of one entry.
    #[inline]
    fn insert_one(
        self: &Arc<Self>,
        key: &str,
        value: Incoming,
        ttl: Option<Duration>,
    ) -> Result<()> {
        self.check_open()?;
        let expires_at = self.expires_at(ttl)?;
        self.check_weight(key.len(), value.len())?;
        self.sweep.ensure_running(self);
        self.insert(key, value, expires_at);
        if self.is_closed() {
            // `close` ran between the check above and the insert, and may have cleared the
            // map before this entry landed: clear again so a closed cache holds nothing.
            self.clear();
        }
        self.stats.add(Stat::Set, 1);
        Ok(())
    }

    /// The batch writes: every entry with one expiry time, checked before anything is stored.
    fn insert_many<'a>(
        self: &Arc<Self>,
        entries: impl ExactSizeIterator<Item = (&'a str, Incoming)>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        self.check_open()?;
        let expires_at = self.expires_at(ttl)?;
        self.sweep.ensure_running(self);
        let count = entries.len();
        for (key, value) in entries {
            self.insert(key, value, expires_at);
        }
        if self.is_closed() {
            // As in `insert_one`: `close` may have cleared the map before these entries landed.
            self.clear();
        }
        self.stats.add(Stat::Set, count as u64);
        Ok(())
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        with_inner!(self, inner => f
            .debug_struct("MemoryCache")
            .field("name", &inner.metrics.name())
            .field("entries", &inner.entry_count())
            .field("max_capacity", &inner.max_capacity)
            .field("max_bytes", &inner.max_bytes)
            .field("time_to_idle", &inner.idle.map(Duration::from_nanos))
            .field("keep_expired_for", &inner.stale_retention())
            .field("sweep_interval", &inner.sweep.interval())
            .field("closed", &inner.is_closed())
            .finish())
    }
}

/// `value` in `Bytes`' shared, reference-counted form. A `Bytes` made from a `Vec` or a
/// `Box<[u8]>` allocates its reference count on its first clone; cloning it here, on the
/// write, keeps that allocation off every read. A `Bytes` that is not unique (held elsewhere
/// too, or static) already has its count or needs none: it is stored as it is, without the
/// two atomic operations of a clone and a drop.
#[inline]
fn shared(value: Bytes) -> Bytes {
    if value.is_unique() {
        drop(value.clone());
    }
    value
}

impl<A> Drop for Inner<A> {
    fn drop(&mut self) {
        self.sweep.stop();
    }
}

impl Cache for MemoryCache {
    /// One hash lookup under a shard's read lock; allocates nothing: the value is shared
    /// with the store.
    async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>> {
        with_inner!(self, inner => {
            let started = inner.metrics.start();
            inner.check_open()?;
            let value = inner.get_bytes(key);
            inner.count_read(&value);
            inner.metrics.finish(inner, "get", started);
            Ok(value)
        })
    }

    /// [`get_bytes`](Cache::get_bytes) with the time the entry has left: until its TTL, or
    /// until its idle timeout counted from this read, whichever comes first.
    async fn get_bytes_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Ttl)>> {
        with_inner!(self, inner => {
            let started = inner.metrics.start();
            inner.check_open()?;
            let value = inner.get_bytes_with_ttl(key);
            inner.count_read(&value);
            inner.metrics.finish(inner, "get", started);
            Ok(value)
        })
    }

    /// Stores `value` itself, without copying it; a `Bytes` that is not shared yet (made from
    /// a `Vec`) gets its reference count here, so that every `get_bytes` hit allocates
    /// nothing.
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for a zero TTL or one of more than about 146 years.
    async fn set_bytes(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        with_inner!(self, inner => {
            let started = inner.metrics.start();
            let done = inner.insert_one(key, Incoming::bytes(shared(value)), ttl);
            inner.metrics.finish(inner, "set", started);
            done
        })
    }

    /// One hash lookup under a shard's read lock; allocates only the returned `String`
    /// (the stored bytes are copied out, without touching their reference count).
    ///
    /// # Errors
    /// [`CacheError::InvalidValue`] when the value was stored with
    /// [`set_bytes`](Cache::set_bytes) and is not UTF-8.
    async fn get(&self, key: &str) -> Result<Option<String>> {
        with_inner!(self, inner => {
            let started = inner.metrics.start();
            inner.check_open()?;
            let value = inner.get(key)?;
            inner.count_read(&value);
            inner.metrics.finish(inner, "get", started);
            Ok(value)
        })
    }

    /// Stores a copy of `value` as a plain buffer: a string read back with `get` never needs
    /// a reference count, so it gets one (24 bytes, allocated once) only if a `get_bytes`
    /// reads it.
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for a zero TTL or one of more than about 146 years.
    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<()> {
        with_inner!(self, inner => {
            let started = inner.metrics.start();
            let done = inner.insert_one(key, Incoming::text(value), ttl);
            inner.metrics.finish(inner, "set", started);
            done
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        with_inner!(self, inner => {
            let started = inner.metrics.start();
            inner.check_open()?;
            inner.delete(key);
            inner.stats.add(Stat::Delete, 1);
            inner.metrics.finish(inner, "delete", started);
            Ok(())
        })
    }

    /// O(n): locks each shard of the map in turn.
    async fn clear(&self) -> Result<()> {
        with_inner!(self, inner => {
            inner.check_open()?;
            inner.clear();
            Ok(())
        })
    }

    /// Stops the sweep and drops every entry; clones see [`CacheError::Closed`] too.
    async fn close(&self) -> Result<()> {
        with_inner!(self, inner => {
            if !inner.closed.swap(true, Ordering::AcqRel) {
                inner.sweep.stop();
                inner.clear();
                #[cfg(feature = "metrics")]
                inner.metrics.publish(inner);
            }
            Ok(())
        })
    }

    /// One lookup per key; the values are shared with the store.
    async fn get_many_bytes<K>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>>
    where
        K: AsRef<str> + Sync,
    {
        with_inner!(self, inner => {
            let started = inner.metrics.start();
            inner.check_open()?;
            let values = keys
                .iter()
                .map(|key| {
                    let value = inner.get_bytes(key.as_ref());
                    inner.count_read(&value);
                    value
                })
                .collect();
            inner.metrics.finish(inner, "get_many", started);
            Ok(values)
        })
    }

    /// One insert per entry, all with the same expiry time; the values are shared, not
    /// copied.
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] as for [`set`](Cache::set), before anything is stored.
    async fn set_many_bytes<K>(&self, entries: &[(K, Bytes)], ttl: Option<Duration>) -> Result<()>
    where
        K: AsRef<str> + Sync,
    {
        with_inner!(self, inner => {
            let started = inner.metrics.start();
            inner.check_open()?;
            for (key, value) in entries {
                inner.check_weight(key.as_ref().len(), value.len())?;
            }
            let done = inner.insert_many(
                entries
                    .iter()
                    .map(|(key, value)| (key.as_ref(), Incoming::bytes(shared(value.clone())))),
                ttl,
            );
            inner.metrics.finish(inner, "set_many", started);
            done
        })
    }

    /// One lookup per key, each copied out as a `String`.
    ///
    /// # Errors
    /// [`CacheError::InvalidValue`] for a value stored with [`set_bytes`](Cache::set_bytes)
    /// that is not UTF-8, naming its position in `keys`.
    async fn get_many<K>(&self, keys: &[K]) -> Result<Vec<Option<String>>>
    where
        K: AsRef<str> + Sync,
    {
        with_inner!(self, inner => {
            let started = inner.metrics.start();
            inner.check_open()?;
            let values = keys
                .iter()
                .enumerate()
                .map(|(position, key)| {
                    let value = inner
                        .get(key.as_ref())
                        .map_err(|err| err.at_batch_position(position, keys.len()))?;
                    inner.count_read(&value);
                    Ok(value)
                })
                .collect();
            inner.metrics.finish(inner, "get_many", started);
            values
        })
    }

    /// One insert per entry, all with the same expiry time.
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] as for [`set`](Cache::set), before anything is stored.
    async fn set_many<K, V>(&self, entries: &[(K, V)], ttl: Option<Duration>) -> Result<()>
    where
        K: AsRef<str> + Sync,
        V: AsRef<str> + Sync,
    {
        with_inner!(self, inner => {
            let started = inner.metrics.start();
            inner.check_open()?;
            for (key, value) in entries {
                inner.check_weight(key.as_ref().len(), value.as_ref().len())?;
            }
            let done = inner.insert_many(
                entries
                    .iter()
                    .map(|(key, value)| (key.as_ref(), Incoming::text(value.as_ref()))),
                ttl,
            );
            inner.metrics.finish(inner, "set_many", started);
            done
        })
    }

    /// One removal per key.
    async fn delete_many<K>(&self, keys: &[K]) -> Result<()>
    where
        K: AsRef<str> + Sync,
    {
        with_inner!(self, inner => {
            let started = inner.metrics.start();
            inner.check_open()?;
            for key in keys {
                inner.delete(key.as_ref());
            }
            inner.stats.add(Stat::Delete, keys.len() as u64);
            inner.metrics.finish(inner, "delete_many", started);
            Ok(())
        })
    }

    /// [`keep_expired_for`](MemoryCacheBuilder::keep_expired_for): zero unless set;
    /// [`Duration::MAX`] when set past what the clock counts (kept until evicted).
    fn stale_retention(&self) -> Duration {
        with_inner!(self, inner => inner.stale_retention())
    }

    /// One hash lookup under a shard's read lock, like [`get_bytes`](Cache::get_bytes),
    /// which it also is for a live entry (a read that renews its idle time and counts for
    /// eviction). An expired entry within its
    /// [`keep_expired_for`](MemoryCacheBuilder::keep_expired_for) is returned as it is, with
    /// how long ago it expired, and stays expired: the read neither renews it nor counts
    /// for eviction. One past its retention is removed, as a read of any kind removes it.
    ///
    /// `stats()` counts it as `get_bytes` of the key would be counted: a hit for a live
    /// value, a miss otherwise, a kept expired value included (the cache had no live one).
    async fn get_stale_bytes(&self, key: &str) -> Result<Option<(Bytes, Duration)>> {
        with_inner!(self, inner => {
            inner.check_open()?;
            Ok(inner.get_stale_bytes(key))
        })
    }

    /// Hits, misses, sets, deletes, evictions (capacity) and expirations (on read, by the
    /// sweep, or to make room); `errors` and `timeouts` stay 0. Counting costs one
    /// uncontended atomic add per operation.
    fn stats(&self) -> CacheStats {
        with_inner!(self, inner => inner.stats.snapshot())
    }

    fn single_flight(&self) -> Option<&SingleFlight> {
        with_inner!(self, inner => Some(&inner.flights))
    }
}

#[cfg(test)]
mod tests;
