#![doc = include_str!("../README.md")]

mod in_process;

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use cache_core::backplane::{Backplane, Event, Invalidation, Message};
pub use cache_core::{AnyCache, Bytes, Cache, CacheError, CacheExt, CacheStats, Result, Ttl};
use cache_core::{SingleFlight, Stat, StatsCounters, normalize_ttl};

pub use crate::in_process::{InProcessBackplane, NoBackplane};

/// The default longest time a value stays in L1 without being read again from L2.
pub const DEFAULT_L1_TTL: Duration = Duration::from_secs(60);

/// Stripes of invalidation counters: a fill of L1 from L2 is dropped when its key's stripe
/// moved while L2 was read (a write or an invalidation raced it).
const STRIPES: usize = 1024;

/// A [`Cache`] made of an in-process L1 in front of a shared L2, kept coherent across
/// instances by a [`Backplane`].
///
/// Made by [`TieredCache::builder`]; clones share everything.
pub struct TieredCache<L1, L2, B = NoBackplane> {
    inner: Arc<Inner<L1, L2, B>>,
}

struct Inner<L1, L2, B> {
    l1: L1,
    l2: L2,
    backplane: B,
    /// This instance, in the messages it sends; it ignores its own.
    id: u64,
    l1_ttl: Duration,
    /// The largest fraction taken off a TTL at random.
    jitter: f64,
    /// Turns for the jitter's random numbers.
    jitter_turn: AtomicU64,
    /// Hashes keys to their stripe, seeded per instance.
    hasher: RandomState,
    stripes: Box<[AtomicU64]>,
    /// Moved by every clear (local, or announced by another instance, or after lost
    /// messages): a fill that raced it is dropped.
    epoch: AtomicU64,
    /// Whether a task applies the backplane's messages.
    listening: AtomicBool,
    closed: AtomicBool,
    stats: StatsCounters,
    tiers: TierCounters,
    flights: SingleFlight,
}

/// What a [`TieredCache`] did, by tier; see [`TieredCache::tiered_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TieredStats {
    /// Reads served by L1.
    pub l1_hits: u64,
    /// Reads that missed L1 and were served by L2.
    pub l2_hits: u64,
    /// Reads that missed both tiers.
    pub misses: u64,
    /// Invalidation messages sent to the other instances.
    pub invalidations_sent: u64,
    /// Invalidation messages of other instances applied to L1.
    pub invalidations_received: u64,
    /// Messages that could not be sent (the write itself succeeded).
    pub publish_errors: u64,
    /// Times L1 was cleared because messages may have been lost.
    pub lost_clears: u64,
}

#[derive(Default)]
struct TierCounters {
    l1_hits: AtomicU64,
    l2_hits: AtomicU64,
    misses: AtomicU64,
    invalidations_sent: AtomicU64,
    invalidations_received: AtomicU64,
    publish_errors: AtomicU64,
    lost_clears: AtomicU64,
}

/// Configures a [`TieredCache`]; made by [`TieredCache::builder`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct TieredCacheBuilder<L1, L2, B = NoBackplane> {
    l1: L1,
    l2: L2,
    backplane: B,
    l1_ttl: Duration,
    jitter: f64,
}

impl<L1: Cache, L2: Cache> TieredCache<L1, L2, NoBackplane> {
    /// A builder for a tiered cache over `l1` (in practice a bounded `MemoryCache`) and `l2`
    /// (in practice a `RedisCache`). Without a [`backplane`](TieredCacheBuilder::backplane),
    /// the cache tells no other instance about its writes: use it alone.
    pub fn builder(l1: L1, l2: L2) -> TieredCacheBuilder<L1, L2, NoBackplane> {
        TieredCacheBuilder {
            l1,
            l2,
            backplane: NoBackplane,
            l1_ttl: DEFAULT_L1_TTL,
            jitter: 0.0,
        }
    }
}

impl<L1, L2, B> TieredCacheBuilder<L1, L2, B> {
    /// The channel to the other instances over the same L2 (`RedisBackplane` of
    /// cache-redis, or an [`InProcessBackplane`]).
    pub fn backplane<B2: Backplane>(self, backplane: B2) -> TieredCacheBuilder<L1, L2, B2> {
        TieredCacheBuilder {
            l1: self.l1,
            l2: self.l2,
            backplane,
            l1_ttl: self.l1_ttl,
            jitter: self.jitter,
        }
    }

    /// The longest time a value stays in L1 ([`DEFAULT_L1_TTL`]): it bounds how stale a
    /// value can be when an invalidation is lost.
    pub fn l1_ttl(mut self, l1_ttl: Duration) -> Self {
        self.l1_ttl = l1_ttl;
        self
    }

    /// Takes up to this fraction (0 to 1) off each write's TTL, at random, so that entries
    /// written together do not all expire together and reach the source at once. 0 (the
    /// default) keeps TTLs as given; 0.1 makes a 10-minute TTL last 9 to 10 minutes.
    pub fn ttl_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }
}

impl<L1: Cache, L2: Cache, B: Backplane> TieredCacheBuilder<L1, L2, B> {
    /// Makes the cache. Does no I/O; the backplane's messages are applied from the first
    /// operation on (inside a tokio runtime).
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`] for a zero `l1_ttl`.
    pub fn build(self) -> Result<TieredCache<L1, L2, B>> {
        if self.l1_ttl.is_zero() {
            return Err(CacheError::InvalidConfig {
                reason: "l1_ttl must be greater than zero".into(),
                source: None,
            });
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(CacheError::InvalidConfig {
                reason: "ttl_jitter must be at least 0 and less than 1".into(),
                source: None,
            });
        }
        let hasher = RandomState::new();
        // A random instance id: the hasher's seed is random per instance.
        let id = hasher.hash_one(std::process::id()) ^ hasher.hash_one(self.l1_ttl);
        Ok(TieredCache {
            inner: Arc::new(Inner {
                l1: self.l1,
                l2: self.l2,
                backplane: self.backplane,
                id,
                l1_ttl: self.l1_ttl,
                jitter: self.jitter,
                jitter_turn: AtomicU64::new(0),
                hasher,
                stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
                epoch: AtomicU64::new(0),
                listening: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                stats: StatsCounters::new(),
                tiers: TierCounters::default(),
                flights: SingleFlight::new(),
            }),
        })
    }
}

impl<L1, L2, B> Clone for TieredCache<L1, L2, B> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<L1: Cache + 'static, L2: Cache + 'static, B: Backplane> TieredCache<L1, L2, B> {
    /// The in-process tier.
    pub fn l1(&self) -> &L1 {
        &self.inner.l1
    }

    /// The shared tier.
    pub fn l2(&self) -> &L2 {
        &self.inner.l2
    }

    /// What this cache did, by tier.
    pub fn tiered_stats(&self) -> TieredStats {
        let t = &self.inner.tiers;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        TieredStats {
            l1_hits: load(&t.l1_hits),
            l2_hits: load(&t.l2_hits),
            misses: load(&t.misses),
            invalidations_sent: load(&t.invalidations_sent),
            invalidations_received: load(&t.invalidations_received),
            publish_errors: load(&t.publish_errors),
            lost_clears: load(&t.lost_clears),
        }
    }

    fn ensure_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(CacheError::Closed)
        } else {
            Ok(())
        }
    }

    /// Checks the cache is open and that the backplane's messages are being applied.
    fn ready(&self) -> Result<()> {
        self.ensure_open()?;
        self.listen();
        Ok(())
    }

    /// Starts the task that applies the other instances' invalidations to L1, unless it
    /// runs. Outside a tokio runtime there is none to start; the next operation inside one
    /// starts it.
    fn listen(&self) {
        let inner = &self.inner;
        if inner.listening.load(Ordering::Acquire) || inner.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(drivers) = cache_core::runtime::tokio_drivers() else {
            inner.listening.store(false, Ordering::Release);
            return;
        };
        let subscription = inner.backplane.subscribe();
        let listener = Listener {
            inner: Arc::downgrade(inner),
            timers: drivers.time,
        };
        tokio::spawn(listener.run(subscription));
    }

    /// The invalidation counter of `key`'s stripe.
    fn stripe(&self, key: &str) -> &AtomicU64 {
        // The low bits of a random-seeded SipHash are uniform.
        #[allow(clippy::cast_possible_truncation)]
        let index = self.inner.hasher.hash_one(key) as usize % STRIPES;
        &self.inner.stripes[index]
    }

    /// What a fill of `key` must find unchanged: its stripe and the clear epoch.
    fn version(&self, key: &str) -> (u64, u64) {
        (
            self.stripe(key).load(Ordering::Acquire),
            self.inner.epoch.load(Ordering::Acquire),
        )
    }

    /// Marks `key` as changed, so that a fill that raced the change is dropped.
    fn bump(&self, key: &str) {
        self.stripe(key).fetch_add(1, Ordering::AcqRel);
    }

    /// `ttl` with the jitter taken off (never below 1 ms).
    fn jittered(&self, ttl: Option<Duration>) -> Option<Duration> {
        let inner = &*self.inner;
        match ttl {
            Some(ttl) if inner.jitter > 0.0 => {
                let turn = inner.jitter_turn.fetch_add(1, Ordering::Relaxed);
                // 53 random bits as a fraction in [0, 1).
                #[allow(clippy::cast_precision_loss)]
                let unit = (inner.hasher.hash_one(turn) >> 11) as f64 / (1u64 << 53) as f64;
                Some(
                    ttl.mul_f64(1.0 - inner.jitter * unit)
                        .max(cache_core::MIN_TTL),
                )
            }
            other => other,
        }
    }

    /// The TTL of a value kept in L1: at most `l1_ttl`, and at most what the write (or L2)
    /// gives it.
    fn l1_ttl(&self, ttl: Option<Duration>) -> Duration {
        ttl.map_or(self.inner.l1_ttl, |ttl| ttl.min(self.inner.l1_ttl))
    }

    /// Tells the other instances, counting what could not be sent: the write succeeded.
    async fn publish(&self, invalidation: Invalidation) {
        let message = Message {
            sender: self.inner.id,
            invalidation,
        };
        let tiers = &self.inner.tiers;
        match self.inner.backplane.publish(&message).await {
            Ok(()) => {
                tiers.invalidations_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                tiers.publish_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "the invalidation could not be sent; other instances may keep an old value up to l1_ttl");
            }
        }
    }

    /// After a write to L2 failed with `err`: unless L2 refused the input before doing
    /// anything, the outcome is unknown, so this instance's copy goes and the others are
    /// told, as far as possible.
    async fn after_failed_write(&self, err: &CacheError, keys: Vec<String>) {
        if matches!(
            err,
            CacheError::InvalidTtl { .. } | CacheError::TooLarge { .. }
        ) {
            return;
        }
        for key in &keys {
            self.bump(key);
        }
        let _ = self.inner.l1.delete_many(&keys).await;
        self.publish(Invalidation::Keys(keys)).await;
    }

    /// Counts an error of either tier.
    fn failed<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(err) = &result
            && !matches!(err, CacheError::Closed)
        {
            self.inner.stats.add(Stat::Error, 1);
            if matches!(err, CacheError::Timeout { .. }) {
                self.inner.stats.add(Stat::Timeout, 1);
            }
        }
        result
    }

    async fn read(&self, key: &str) -> Result<Option<Bytes>> {
        let inner = &*self.inner;
        if let Some(value) = inner.l1.get_bytes(key).await? {
            inner.tiers.l1_hits.fetch_add(1, Ordering::Relaxed);
            inner.stats.add(Stat::Hit, 1);
            return Ok(Some(value));
        }
        let before = self.version(key);
        let Some((value, ttl)) = inner.l2.get_bytes_with_ttl(key).await? else {
            inner.tiers.misses.fetch_add(1, Ordering::Relaxed);
            inner.stats.add(Stat::Miss, 1);
            return Ok(None);
        };
        inner.tiers.l2_hits.fetch_add(1, Ordering::Relaxed);
        inner.stats.add(Stat::Hit, 1);
        let keep = match ttl {
            Ttl::Remaining(left) => self.l1_ttl(Some(left)),
            Ttl::Never | Ttl::Unknown => inner.l1_ttl,
        };
        if keep.is_zero() || self.version(key) != before {
            return Ok(Some(value));
        }
        // A failed fill leaves L1 without the value: a later read asks L2 again.
        if inner
            .l1
            .set_bytes(key, value.clone(), Some(keep))
            .await
            .is_ok()
            && self.version(key) != before
        {
            // A write or an invalidation came in between: its delete may have run before
            // this fill, so the fill goes.
            let _ = inner.l1.delete(key).await;
        }
        Ok(Some(value))
    }

    async fn write(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let inner = &*self.inner;
        let ttl = self.jittered(normalize_ttl(ttl)?);
        if let Err(err) = inner.l2.set_bytes(key, value.clone(), ttl).await {
            self.after_failed_write(&err, vec![key.to_owned()]).await;
            return Err(err);
        }
        self.bump(key);
        if inner
            .l1
            .set_bytes(key, value, Some(self.l1_ttl(ttl)))
            .await
            .is_err()
        {
            let _ = inner.l1.delete(key).await;
        }
        inner.stats.add(Stat::Set, 1);
        self.publish(Invalidation::Keys(vec![key.to_owned()])).await;
        Ok(())
    }
}

/// The task that applies the backplane's messages to L1.
struct Listener<L1, L2, B> {
    inner: Weak<Inner<L1, L2, B>>,
    /// Whether the runtime has timers: without them, the task wakes only for events.
    timers: bool,
}

impl<L1: Cache + 'static, L2: Cache + 'static, B: Backplane> Listener<L1, L2, B> {
    async fn run(self, mut subscription: cache_core::backplane::Subscription) {
        loop {
            // Woken now and then to notice that the cache is gone, where there are timers.
            let next = if self.timers {
                tokio::time::timeout(Duration::from_secs(1), subscription.next()).await
            } else {
                Ok(subscription.next().await)
            };
            let event = match next {
                Ok(Some(event)) => Some(event),
                Ok(None) => return,
                Err(_quiet) => None,
            };
            let Some(inner) = self.inner.upgrade() else {
                return;
            };
            if inner.closed.load(Ordering::Acquire) {
                return;
            }
            let cache = TieredCache { inner };
            match event {
                None => {}
                Some(Event::Message(message)) if message.sender == cache.inner.id => {}
                Some(Event::Message(message)) => {
                    cache
                        .inner
                        .tiers
                        .invalidations_received
                        .fetch_add(1, Ordering::Relaxed);
                    match message.invalidation {
                        Invalidation::Keys(keys) => {
                            for key in &keys {
                                cache.bump(key);
                            }
                            let _ = cache.inner.l1.delete_many(&keys).await;
                        }
                        Invalidation::Clear => {
                            cache.inner.epoch.fetch_add(1, Ordering::AcqRel);
                            let _ = cache.inner.l1.clear().await;
                        }
                    }
                }
                Some(Event::Lost) => {
                    cache
                        .inner
                        .tiers
                        .lost_clears
                        .fetch_add(1, Ordering::Relaxed);
                    cache.inner.epoch.fetch_add(1, Ordering::AcqRel);
                    let _ = cache.inner.l1.clear().await;
                }
            }
        }
    }
}

impl<L1: Cache + 'static, L2: Cache + 'static, B: Backplane> Cache for TieredCache<L1, L2, B> {
    /// L1, then L2; an L2 hit is kept in L1 for at most its remaining TTL in L2 and at most
    /// `l1_ttl`.
    async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>> {
        self.ready()?;
        let result = self.read(key).await;
        self.failed(result)
    }

    /// L2 first, then L1, then an invalidation to the other instances. When L2 fails, the
    /// error is returned and L1 keeps no copy of the key (the write may or may not have
    /// reached L2).
    async fn set_bytes(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.ready()?;
        let result = self.write(key, value, ttl).await;
        self.failed(result)
    }

    /// L2, then L1, then an invalidation.
    async fn delete(&self, key: &str) -> Result<()> {
        self.ready()?;
        let inner = &*self.inner;
        if let Err(err) = inner.l2.delete(key).await {
            self.after_failed_write(&err, vec![key.to_owned()]).await;
            return self.failed(Err(err));
        }
        self.bump(key);
        let _ = inner.l1.delete(key).await;
        inner.stats.add(Stat::Delete, 1);
        self.publish(Invalidation::Keys(vec![key.to_owned()])).await;
        Ok(())
    }

    /// L2, then L1, then a clear message to the other instances.
    async fn clear(&self) -> Result<()> {
        self.ready()?;
        let inner = &*self.inner;
        let cleared = inner.l2.clear().await;
        inner.epoch.fetch_add(1, Ordering::AcqRel);
        let _ = inner.l1.clear().await;
        if cleared.is_ok() {
            self.publish(Invalidation::Clear).await;
        }
        self.failed(cleared)
    }

    /// Closes both tiers; idempotent.
    async fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let l1 = self.inner.l1.close().await;
        let l2 = self.inner.l2.close().await;
        l1.and(l2)
    }

    /// L1 for every key, then one L2 batch for the keys it missed. Values read from L2 by a
    /// batch are not kept in L1: a batch read does not learn their TTLs.
    async fn get_many_bytes<K>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>>
    where
        K: AsRef<str> + Sync,
    {
        self.ready()?;
        let inner = &*self.inner;
        let mut values = self.failed(inner.l1.get_many_bytes(keys).await)?;
        let missed: Vec<usize> = (0..keys.len()).filter(|&i| values[i].is_none()).collect();
        let l1_hits = (keys.len() - missed.len()) as u64;
        inner.tiers.l1_hits.fetch_add(l1_hits, Ordering::Relaxed);
        if !missed.is_empty() {
            let missed_keys: Vec<&str> = missed.iter().map(|&i| keys[i].as_ref()).collect();
            let found = self.failed(inner.l2.get_many_bytes(&missed_keys).await)?;
            for (i, value) in missed.into_iter().zip(found) {
                values[i] = value;
            }
        }
        let hits = values.iter().filter(|v| v.is_some()).count() as u64;
        inner
            .tiers
            .l2_hits
            .fetch_add(hits - l1_hits, Ordering::Relaxed);
        inner
            .tiers
            .misses
            .fetch_add(keys.len() as u64 - hits, Ordering::Relaxed);
        inner.stats.add(Stat::Hit, hits);
        inner.stats.add(Stat::Miss, keys.len() as u64 - hits);
        Ok(values)
    }

    /// One L2 batch, then L1, then one invalidation for every key.
    async fn set_many_bytes<K>(&self, entries: &[(K, Bytes)], ttl: Option<Duration>) -> Result<()>
    where
        K: AsRef<str> + Sync,
    {
        self.ready()?;
        let inner = &*self.inner;
        let ttl = self.jittered(normalize_ttl(ttl)?);
        let keys: Vec<String> = entries.iter().map(|(k, _)| k.as_ref().to_owned()).collect();
        if let Err(err) = inner.l2.set_many_bytes(entries, ttl).await {
            self.after_failed_write(&err, keys).await;
            return self.failed(Err(err));
        }
        for key in &keys {
            self.bump(key);
        }
        if inner
            .l1
            .set_many_bytes(entries, Some(self.l1_ttl(ttl)))
            .await
            .is_err()
        {
            let _ = inner.l1.delete_many(&keys).await;
        }
        inner.stats.add(Stat::Set, keys.len() as u64);
        if !keys.is_empty() {
            self.publish(Invalidation::Keys(keys)).await;
        }
        Ok(())
    }

    /// One L2 batch, then L1, then one invalidation for every key.
    async fn delete_many<K>(&self, keys: &[K]) -> Result<()>
    where
        K: AsRef<str> + Sync,
    {
        self.ready()?;
        let inner = &*self.inner;
        let owned: Vec<String> = keys.iter().map(|k| k.as_ref().to_owned()).collect();
        if let Err(err) = inner.l2.delete_many(keys).await {
            self.after_failed_write(&err, owned).await;
            return self.failed(Err(err));
        }
        for key in &owned {
            self.bump(key);
        }
        let _ = inner.l1.delete_many(keys).await;
        inner.stats.add(Stat::Delete, owned.len() as u64);
        if !owned.is_empty() {
            self.publish(Invalidation::Keys(owned)).await;
        }
        Ok(())
    }

    /// Reads and writes of this cache, whichever tier served them; see
    /// [`tiered_stats`](TieredCache::tiered_stats) for each tier's part.
    fn stats(&self) -> CacheStats {
        self.inner.stats.snapshot()
    }

    /// One load per key in this process; processes sharing L2 each load at most once.
    fn single_flight(&self) -> Option<&SingleFlight> {
        Some(&self.inner.flights)
    }
}

impl<L1: fmt::Debug, L2: fmt::Debug, B: fmt::Debug> fmt::Debug for TieredCache<L1, L2, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("TieredCache")
            .field("l1", &inner.l1)
            .field("l2", &inner.l2)
            .field("backplane", &inner.backplane)
            .field("l1_ttl", &inner.l1_ttl)
            .field("ttl_jitter", &inner.jitter)
            .field("closed", &inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl<L1: fmt::Debug, L2: fmt::Debug, B: fmt::Debug> fmt::Debug for TieredCacheBuilder<L1, L2, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredCacheBuilder")
            .field("l1", &self.l1)
            .field("l2", &self.l2)
            .field("backplane", &self.backplane)
            .field("l1_ttl", &self.l1_ttl)
            .field("ttl_jitter", &self.jitter)
            .finish()
    }
}
