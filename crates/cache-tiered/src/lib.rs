#![doc = include_str!("../README.md")]

mod breaker;
mod coalesce;
mod in_process;
mod metrics;
mod outbox;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use cache_core::backplane::{Backplane, Event, Invalidation, Message};
pub use cache_core::{
    AnyCache, BoxError, Bytes, Cache, CacheError, CacheExt, CacheStats, Result, Ttl,
};
use cache_core::{SingleFlight, Stat, StatsCounters, normalize_ttl};

use tracing::Instrument;

use crate::breaker::{Breaker, Pass};
use crate::coalesce::Reads;
use crate::metrics::Metrics;
use crate::outbox::Outbox;

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
    settings: Settings,
    /// Present with [`TieredCacheBuilder::circuit_breaker`].
    breaker: Option<Breaker>,
    /// Invalidations not published yet.
    outbox: Outbox,
    /// L2 reads running and queued: concurrent reads that miss L1 share round trips.
    reads: Reads,
    /// Keys whose eager refresh is running.
    refreshing: Mutex<HashSet<Box<str>>>,
    /// Turns for the jitter's random numbers.
    jitter_turn: AtomicU64,
    /// Hashes keys to their stripe, seeded per instance: foldhash, as cache-memory's map,
    /// since every read that misses L1 and every write hashes its key here (std's SipHash
    /// showed in a profile of the tiered benchmark).
    hasher: foldhash::quality::RandomState,
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
    /// The cache's name and, with the `metrics` feature, what publishes its counts.
    metrics: Metrics,
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
    /// Reads answered from L1 (possibly past their TTL) because L2 failed, timed out or was
    /// skipped by the circuit breaker; see [`TieredCacheBuilder::fail_safe`].
    pub stale_served: u64,
    /// Reads of L2 given up after [`TieredCacheBuilder::l2_timeout`].
    pub l2_soft_timeouts: u64,
    /// Batches of reads that missed L1 and queued for L2; see
    /// [`TieredCacheBuilder::l2_reads_in_flight`].
    pub l2_batches: u64,
    /// Reads that those batches carried (reads that stopped waiting before their batch was
    /// sent are not counted).
    pub l2_batched_reads: u64,
    /// Times the circuit breaker opened.
    pub breaker_openings: u64,
    /// Eager refreshes started; see [`TieredCache::get_or_refresh_with`].
    pub refreshes: u64,
    /// Eager refreshes whose loader or write failed (the old value stayed).
    pub refresh_errors: u64,
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
    stale_served: AtomicU64,
    l2_soft_timeouts: AtomicU64,
    l2_batches: AtomicU64,
    l2_batched_reads: AtomicU64,
    refreshes: AtomicU64,
    refresh_errors: AtomicU64,
}

/// What the builder sets, besides the tiers and the backplane.
#[derive(Debug, Clone)]
struct Settings {
    l1_ttl: Duration,
    /// The largest fraction taken off a TTL at random.
    jitter: f64,
    /// How far past its TTL an L1 value may be served when L2 fails.
    fail_safe: Option<Duration>,
    /// The soft timeout of L2 reads when a fail-safe value is at hand.
    l2_timeout: Option<Duration>,
    /// Consecutive failures, and how long L2 is then skipped.
    breaker: Option<(u32, Duration)>,
    /// The fraction of a TTL after which `get_or_refresh_with` refreshes.
    eager_refresh: Option<f64>,
    /// The most L2 reads running at once; later ones queue and go together.
    reads_in_flight: usize,
    /// The `cache` label of its metrics.
    name: String,
}

/// Configures a [`TieredCache`]; made by [`TieredCache::builder`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct TieredCacheBuilder<L1, L2, B = NoBackplane> {
    l1: L1,
    l2: L2,
    backplane: B,
    settings: Settings,
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
            settings: Settings {
                l1_ttl: DEFAULT_L1_TTL,
                jitter: 0.0,
                fail_safe: None,
                l2_timeout: None,
                breaker: None,
                eager_refresh: None,
                reads_in_flight: usize::MAX,
                name: cache_core::DEFAULT_NAME.to_owned(),
            },
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
            settings: self.settings,
        }
    }

    /// The longest time a value stays in L1 ([`DEFAULT_L1_TTL`]): it bounds how stale a
    /// value can be when an invalidation is lost.
    pub fn l1_ttl(mut self, l1_ttl: Duration) -> Self {
        self.settings.l1_ttl = l1_ttl;
        self
    }

    /// Serves an L1 value, even one past its TTL by less than `max_stale`, when L2 fails
    /// (times out, cannot be reached, or is skipped by the
    /// [`circuit_breaker`](Self::circuit_breaker)) instead of the error; off by default.
    ///
    /// L1 must keep expired entries at least that long: build it with
    /// `MemoryCache::builder().keep_expired_for(max_stale)` (checked by
    /// [`build`](Self::build), through [`Cache::stale_retention`]). A key that was written,
    /// deleted or invalidated is gone from L1 and is not served stale (an invalidation that
    /// never reached this instance, say while the backplane was down too, leaves the old
    /// value servable for at most `l1_ttl + max_stale`); a read of a key L1 does not hold
    /// gets the error. Writes are not affected: a failed L2 write is an error.
    pub fn fail_safe(mut self, max_stale: Duration) -> Self {
        self.settings.fail_safe = Some(max_stale);
        self
    }

    /// Gives up on an L2 read of one key after `timeout` when a fail-safe value is at hand,
    /// and serves that value (a soft timeout; the L2's own timeout still bounds reads with
    /// nothing to fall back on, batch reads, and every write). A soft timeout is no failure
    /// for the [`circuit_breaker`](Self::circuit_breaker): L2 may only be slower than the
    /// read could wait. Needs [`fail_safe`](Self::fail_safe). Applies on tokio runtimes
    /// with timers only.
    pub fn l2_timeout(mut self, timeout: Duration) -> Self {
        self.settings.l2_timeout = Some(timeout);
        self
    }

    /// After `failures` consecutive failures of L2 (timeouts, unreachable), skips L2 for
    /// `break_duration`: reads get a fail-safe value or [`CacheError::Unavailable`], writes
    /// get `Unavailable` without trying. Then one call goes through as a probe: if it
    /// succeeds the breaker closes, otherwise it stays open for another `break_duration`.
    /// Off by default.
    pub fn circuit_breaker(mut self, failures: u32, break_duration: Duration) -> Self {
        self.settings.breaker = Some((failures, break_duration));
        self
    }

    /// Makes [`TieredCache::get_or_refresh_with`] refresh an entry in the background once it
    /// is past this fraction of its TTL (0 to 1, such as 0.8), while callers keep getting
    /// the current value; off by default.
    pub fn eager_refresh(mut self, fraction: f64) -> Self {
        self.settings.eager_refresh = Some(fraction);
        self
    }

    /// Makes reads that miss L1 at the same time share L2 round trips: at most `reads` (at
    /// least 1; 2 did best in `cache-bench`) reads of L2 run at once. Off by default: every
    /// read asks L2 alone, bounded by L2's own timeout. A read that misses L1 while fewer
    /// run asks L2 at once, alone; one that misses while that many run queues, and when one
    /// of them ends, the queued reads (up to 256) go to L2 together in one
    /// [`get_many_bytes_with_ttl`](Cache::get_many_bytes_with_ttl) call (over Redis, one
    /// round trip). There is no timer: under little load every read goes alone; under much,
    /// many reads share each round trip. Each read keeps its own checks (the version check
    /// before filling L1, the [`l2_timeout`](Self::l2_timeout), the
    /// [`circuit_breaker`](Self::circuit_breaker)); a read that stops waiting leaves the
    /// others their answer.
    ///
    /// The cost: a queued read waits for a running one to end, so a read that L2 is slow to
    /// answer (up to L2's own timeout) holds back the reads queued behind it; an
    /// [`l2_timeout`](Self::l2_timeout) bounds that wait where a fail-safe value is at hand.
    /// What it buys: under many concurrent misses, Redis sees one `MGET` and its `PTTL`s
    /// where it saw a round trip per read (16x fewer in `cache-bench`'s tiered case, where
    /// throughput on two shared cores stayed the same: the client's cost per read, not the
    /// round trips, bounds it there). `usize::MAX`, the default, sends every read alone.
    pub fn l2_reads_in_flight(mut self, reads: usize) -> Self {
        self.settings.reads_in_flight = reads;
        self
    }

    /// Names the cache (`"default"` unless set): the `cache` label of its metrics (feature
    /// `metrics`), a field of its tracing spans and of its `Debug` output. The tiers keep
    /// their own names: name them too (`"traces-l1"`, `"traces"`) to tell their metrics
    /// apart.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.settings.name = name.into();
        self
    }

    /// Takes up to this fraction (0 to 1) off each write's TTL, at random, so that entries
    /// written together do not all expire together and reach the source at once. 0 (the
    /// default) keeps TTLs as given; 0.1 makes a 10-minute TTL last 9 to 10 minutes.
    pub fn ttl_jitter(mut self, fraction: f64) -> Self {
        self.settings.jitter = fraction;
        self
    }
}

impl<L1: Cache, L2: Cache, B: Backplane> TieredCacheBuilder<L1, L2, B> {
    /// Makes the cache. Does no I/O; the backplane's messages are applied from the first
    /// operation on (inside a tokio runtime).
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`] for a zero `l1_ttl`, `max_stale`, `l2_timeout`,
    /// breaker threshold or break duration; a jitter or eager-refresh fraction outside its
    /// range; an `l2_timeout` without `fail_safe`; and a `fail_safe` longer than L1 keeps
    /// expired entries.
    pub fn build(self) -> Result<TieredCache<L1, L2, B>> {
        self.check()?;
        let settings = self.settings;
        let settings_name = settings.name.clone();
        let hasher = foldhash::quality::RandomState::default();
        // A random instance id: the hasher's seed is random per instance.
        let id = hasher.hash_one(std::process::id()) ^ hasher.hash_one(settings.l1_ttl);
        Ok(TieredCache {
            inner: Arc::new(Inner {
                l1: self.l1,
                l2: self.l2,
                backplane: self.backplane,
                id,
                breaker: settings
                    .breaker
                    .map(|(failures, duration)| Breaker::new(failures, duration)),
                settings,
                refreshing: Mutex::new(HashSet::new()),
                outbox: Outbox::default(),
                reads: Reads::default(),
                jitter_turn: AtomicU64::new(0),
                hasher,
                stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
                epoch: AtomicU64::new(0),
                listening: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                stats: StatsCounters::new(),
                tiers: TierCounters::default(),
                flights: SingleFlight::new(),
                metrics: Metrics::new(&settings_name),
            }),
        })
    }

    fn check(&self) -> Result<()> {
        let s = &self.settings;
        let invalid = |reason: String| {
            Err(CacheError::InvalidConfig {
                reason,
                source: None,
            })
        };
        if s.name.is_empty() {
            return invalid("name must not be empty; leave it unset for \"default\"".into());
        }
        if s.l1_ttl.is_zero() {
            return invalid("l1_ttl must be greater than zero".into());
        }
        if s.reads_in_flight == 0 {
            return invalid("l2_reads_in_flight must be at least 1".into());
        }
        if !(0.0..1.0).contains(&s.jitter) {
            return invalid("ttl_jitter must be at least 0 and less than 1".into());
        }
        if let Some(fraction) = s.eager_refresh
            && !(fraction > 0.0 && fraction < 1.0)
        {
            return invalid("eager_refresh must be greater than 0 and less than 1".into());
        }
        if let Some((failures, duration)) = s.breaker
            && (failures == 0 || duration.is_zero())
        {
            return invalid(
                "circuit_breaker needs at least 1 failure and a break duration above zero".into(),
            );
        }
        match (s.fail_safe, s.l2_timeout) {
            (None, Some(_)) => invalid(
                "l2_timeout gives up on L2 to serve a fail-safe value: it needs fail_safe".into(),
            ),
            (_, Some(timeout)) if timeout.is_zero() => {
                invalid("l2_timeout must be greater than zero".into())
            }
            (Some(max_stale), _) if max_stale.is_zero() => {
                invalid("fail_safe's max_stale must be greater than zero".into())
            }
            (Some(max_stale), _) if self.l1.stale_retention() < max_stale => invalid(format!(
                "fail_safe({max_stale:?}) needs an L1 that keeps expired entries at least that \
                 long, and this one keeps them {:?}: build it with \
                 MemoryCache::builder().keep_expired_for({max_stale:?})",
                self.l1.stale_retention()
            )),
            _ => Ok(()),
        }
    }
}

impl<L1, L2, B> Clone for TieredCache<L1, L2, B> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<L1, L2, B> Inner<L1, L2, B> {
    /// What the cache did, by tier: [`TieredCache::tiered_stats`].
    fn tiered_stats(&self) -> TieredStats {
        let t = &self.tiers;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        TieredStats {
            l1_hits: load(&t.l1_hits),
            l2_hits: load(&t.l2_hits),
            misses: load(&t.misses),
            invalidations_sent: load(&t.invalidations_sent),
            invalidations_received: load(&t.invalidations_received),
            publish_errors: load(&t.publish_errors),
            lost_clears: load(&t.lost_clears),
            stale_served: load(&t.stale_served),
            l2_soft_timeouts: load(&t.l2_soft_timeouts),
            l2_batches: load(&t.l2_batches),
            l2_batched_reads: load(&t.l2_batched_reads),
            breaker_openings: self.breaker.as_ref().map_or(0, Breaker::openings),
            refreshes: load(&t.refreshes),
            refresh_errors: load(&t.refresh_errors),
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
        self.inner.tiered_stats()
    }

    /// The name given to [`TieredCacheBuilder::name`] (`"default"` unless set).
    pub fn name(&self) -> &str {
        self.inner.metrics.name()
    }

    /// Publishes the counts to the `metrics` recorder now, rather than at the next
    /// publication (at most a second away while the cache is used on a tokio runtime with
    /// timers): before a scrape or at shutdown, and in tests. The tiers publish their own.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn publish_metrics(&self) {
        self.inner.metrics.publish(&self.inner);
    }

    /// [`get_or_set_with`](CacheExt::get_or_set_with) with eager refresh: once the entry
    /// is past the builder's [`eager_refresh`](TieredCacheBuilder::eager_refresh) fraction
    /// of `ttl`, this returns the current value and reloads it in the background, once per
    /// key in this process however many callers arrive. A refresh that fails (its loader,
    /// or the write) keeps the current value, is counted in
    /// [`TieredStats::refresh_errors`], and is tried again once L1's copy expires (after at
    /// most `l1_ttl`). The loader must be `'static`, since a refresh
    /// outlives the call.
    ///
    /// Without `eager_refresh`, without a `ttl`, or for a missing key, it is
    /// `get_or_set_with`. Only this method refreshes: `get_or_set_with` (and so `AnyCache`
    /// and `TypedCache`) never does.
    ///
    /// The entry's age comes from L2's remaining TTL, read when L1 does not hold the key:
    /// with eager refresh on, L1 keeps the values written or read through this method no
    /// longer than until they are due (a value a plain `get` put in L1 may delay the refresh
    /// by up to `l1_ttl`). A refresh that finds the key written since it began drops what
    /// it loaded.
    ///
    /// # Errors
    /// Those of `get_or_set_with`.
    pub async fn get_or_refresh_with<F, Fut, E>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<String>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<String, E>> + Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        let bytes =
            self.get_or_refresh_bytes_with(key, ttl, move || async move {
                loader().await.map(Bytes::from)
            })
            .await?;
        cache_core::utf8(bytes)
    }

    /// [`get_or_refresh_with`](Self::get_or_refresh_with) for bytes.
    ///
    /// # Errors
    /// Those of [`get_or_set_bytes_with`](CacheExt::get_or_set_bytes_with).
    pub async fn get_or_refresh_bytes_with<F, Fut, E>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<Bytes>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        let (Some(fraction), Some(full)) = (self.inner.settings.eager_refresh, normalize_ttl(ttl)?)
        else {
            return self.get_or_set_bytes_with(key, ttl, loader).await;
        };
        self.ready()?;
        let due = scaled(full, 1.0 - fraction);
        let before = self.version(key);
        let found = self.read(key, Some(due)).await;
        match self.failed(found)? {
            None => self.get_or_set_bytes_with(key, ttl, loader).await,
            Some((value, Some(Ttl::Remaining(left)))) => {
                // A write since the read (a refresh that just finished, say) makes it fresh.
                if left <= due && self.version(key) == before {
                    self.refresh(key, full, loader);
                }
                Ok(value)
            }
            Some((value, _)) => Ok(value),
        }
    }

    /// Reloads `key` in the background, unless a refresh of it runs.
    fn refresh<F, Fut, E>(&self, key: &str, ttl: Duration, loader: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        if cache_core::runtime::tokio_drivers().is_none() {
            return;
        }
        let refreshing = || {
            self.inner
                .refreshing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if !refreshing().insert(key.into()) {
            return;
        }
        self.inner.tiers.refreshes.fetch_add(1, Ordering::Relaxed);
        let at = self.version(key);
        let running = Refreshing {
            cache: self.clone(),
            key: key.into(),
        };
        tokio::spawn(async move {
            let cache = &running.cache;
            let written = match loader().await {
                // A write since the refresh began is newer than what the loader read.
                Ok(_) if cache.version(&running.key) != at => Ok(()),
                Ok(value) => cache.write(&running.key, value, Some(ttl)).await,
                Err(err) => Err(CacheError::Load {
                    source: Arc::from(err.into()),
                }),
            };
            if let Err(err) = written {
                cache
                    .inner
                    .tiers
                    .refresh_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(key = %running.key, error = %err, "the eager refresh failed: the current value stays until it expires");
            }
        });
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
        &self.inner.stripes[self.stripe_index(key)]
    }

    /// Which stripe `key` is in.
    fn stripe_index(&self, key: &str) -> usize {
        // The low bits of foldhash's quality variant are uniform.
        #[allow(clippy::cast_possible_truncation)]
        let index = self.inner.hasher.hash_one(key) as usize % STRIPES;
        index
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

    /// [`bump`](Self::bump) by a write that read `before` ahead of its L2 call: true if no
    /// other change of `key`'s stripe (a write of this instance, an invalidation from
    /// another) came in between. Otherwise the writes' order in L2 is unknown, and L1 must
    /// not keep this one's value: the write that bumps second sees the first and drops the
    /// copy, whichever landed last in L2.
    fn bump_alone(&self, key: &str, before: (u64, u64)) -> bool {
        self.stripe(key).fetch_add(1, Ordering::AcqRel) == before.0
            && self.inner.epoch.load(Ordering::Acquire) == before.1
    }

    /// After a write's L1 update: whether nothing changed `key`'s stripe or cleared L1 since
    /// the write's own bump (which moved the stripe from `before` by one).
    fn unchanged_since_bump(&self, key: &str, before: (u64, u64)) -> bool {
        self.version(key) == (before.0.wrapping_add(1), before.1)
    }

    /// `ttl` with the jitter taken off (never below 1 ms).
    fn jittered(&self, ttl: Option<Duration>) -> Option<Duration> {
        let inner = &*self.inner;
        let jitter = inner.settings.jitter;
        match ttl {
            Some(ttl) if jitter > 0.0 => {
                let turn = inner.jitter_turn.fetch_add(1, Ordering::Relaxed);
                // 53 random bits as a fraction in [0, 1).
                #[allow(clippy::cast_precision_loss)]
                let unit = (inner.hasher.hash_one(turn) >> 11) as f64 / (1u64 << 53) as f64;
                Some(scaled(ttl, 1.0 - jitter * unit).max(cache_core::MIN_TTL))
            }
            other => other,
        }
    }

    /// The TTL of a value kept in L1: at most `l1_ttl`, and at most what the write (or L2)
    /// gives it.
    fn l1_ttl(&self, ttl: Option<Duration>) -> Duration {
        let l1_ttl = self.inner.settings.l1_ttl;
        ttl.map_or(l1_ttl, |ttl| ttl.min(l1_ttl))
    }

    /// The TTL in L1 of a value written with `ttl`: as [`l1_ttl`](Self::l1_ttl), and with
    /// eager refresh on, no longer than until the value is due for a refresh.
    fn l1_write_ttl(&self, ttl: Option<Duration>) -> Duration {
        let due = match (ttl, self.inner.settings.eager_refresh) {
            (Some(ttl), Some(fraction)) => Some(scaled(ttl, fraction).max(cache_core::MIN_TTL)),
            (ttl, _) => ttl,
        };
        self.l1_ttl(due)
    }

    /// Tells the other instances: queues `invalidation` for the task that publishes, and
    /// starts that task unless it runs. Outside a tokio runtime, publishes before returning.
    async fn publish(&self, invalidation: Invalidation) {
        if !self.inner.outbox.push(invalidation) {
            return;
        }
        let mut draining = Draining {
            inner: Arc::downgrade(&self.inner),
            budget: usize::MAX,
            done: false,
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(draining.run());
        } else {
            draining.budget = INLINE_MESSAGES;
            draining.run().await;
        }
    }

    /// Publishes one message; gives it back if it could not be sent (the write succeeded,
    /// so that is counted, not returned to the writer).
    async fn send(&self, invalidation: Invalidation) -> std::result::Result<(), Invalidation> {
        let message = Message {
            sender: self.inner.id,
            invalidation,
        };
        let tiers = &self.inner.tiers;
        match self.inner.backplane.publish(&message).await {
            Ok(()) => {
                tiers.invalidations_sent.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(err) => {
                tiers.publish_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "an invalidation could not be sent: it is sent again shortly, and other instances keep an old value at most l1_ttl if it never is");
                Err(message.invalidation)
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

    /// Runs an operation in a `tiered` span once the cache is found open, counts its error
    /// and logs its outcome at debug level, like cache-redis's spans.
    ///
    /// A function returning a future rather than an `async fn`: an `async fn` would keep
    /// `call` in its state twice (as its argument and as the awaited future), and the
    /// futures of a tiered cache over Redis are large already.
    fn traced<'a, T: 'a>(
        &'a self,
        op: &'static str,
        keys: usize,
        call: impl Future<Output = Result<T>> + 'a,
    ) -> impl Future<Output = Result<T>> + 'a {
        let span = tracing::debug_span!("tiered", op, cache = self.name(), keys);
        async move {
            let started = self.inner.metrics.start();
            self.ready()?;
            let result = call.await;
            match &result {
                Ok(_) => tracing::debug!("done"),
                Err(err) => tracing::debug!(error = %err, code = err.code(), "failed"),
            }
            let result = self.failed(result);
            self.inner.metrics.finish(&self.inner, op, started);
            result
        }
        .instrument(span)
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
            self.inner.metrics.count_error(err);
        }
        result
    }

    /// Leave to call L2 from the circuit breaker, if there is one.
    fn gate(&self) -> Result<Pass<'_>> {
        self.inner
            .breaker
            .as_ref()
            .map_or_else(|| Ok(Pass::free()), Breaker::pass)
    }

    /// Awaits `call` to L2 under `pass`, giving up after the soft timeout when `soft` (a
    /// fail-safe value is at hand), and tells the breaker how it went.
    async fn call_l2<T>(
        &self,
        pass: Pass<'_>,
        soft: bool,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = match self.inner.settings.l2_timeout {
            Some(after) if soft && cache_core::runtime::tokio_drivers().is_some_and(|d| d.time) => {
                if let Ok(result) = tokio::time::timeout(after, call).await {
                    result
                } else {
                    self.inner
                        .tiers
                        .l2_soft_timeouts
                        .fetch_add(1, Ordering::Relaxed);
                    // L2 may only be slower than this read could wait: neither a failure
                    // nor a success for the breaker (a probe lets the next call probe).
                    drop(pass);
                    return Err(CacheError::Timeout { after });
                }
            }
            _ => call.await,
        };
        pass.finish(result.as_ref().is_err_and(CacheError::is_retryable));
        result
    }

    /// The value L1 may serve if L2 fails: with fail-safe on, one expired less than
    /// `max_stale` ago.
    async fn fallback(&self, key: &str) -> Option<Bytes> {
        let max_stale = self.inner.settings.fail_safe?;
        match self.inner.l1.get_stale_bytes(key).await {
            Ok(Some((value, age))) if age < max_stale => Some(value),
            _ => None,
        }
    }

    /// `err` from L2, or the fail-safe value instead when there is one and L2 failed rather
    /// than refused the call.
    fn fall_back(&self, fallback: Option<Bytes>, err: CacheError) -> Result<Option<Bytes>> {
        match fallback {
            Some(value) if err.is_retryable() => {
                let inner = &*self.inner;
                inner.tiers.stale_served.fetch_add(1, Ordering::Relaxed);
                inner.stats.add(Stat::Hit, 1);
                tracing::debug!(error = %err, "L2 failed: served the value L1 kept (fail-safe)");
                Ok(Some(value))
            }
            _ => Err(err),
        }
    }

    /// L1, then L2: the value, and what L2 said of its TTL when L2 answered.
    ///
    /// `refresh_at`: for an eager refresh, the time left at which the entry is due for one;
    /// L1 keeps an earlier fill no longer than until then, so the read that finds the entry
    /// due is one that reaches L2.
    async fn read(
        &self,
        key: &str,
        refresh_at: Option<Duration>,
    ) -> Result<Option<(Bytes, Option<Ttl>)>> {
        let inner = &*self.inner;
        if let Some(value) = inner.l1.get_bytes(key).await? {
            inner.tiers.l1_hits.fetch_add(1, Ordering::Relaxed);
            inner.stats.add(Stat::Hit, 1);
            return Ok(Some((value, None)));
        }
        // The soft timeout needs to know beforehand whether there is a value to fall back
        // on; without one, L1 is asked only once L2 has failed.
        let early = if inner.settings.l2_timeout.is_some() {
            self.fallback(key).await
        } else {
            None
        };
        let before = self.version(key);
        let asked = match self.gate() {
            Ok(pass) => self.call_l2(pass, early.is_some(), self.read_l2(key)).await,
            Err(err) => Err(err),
        };
        let found = match asked {
            Ok(found) => found,
            Err(err) => {
                let fallback = match early {
                    Some(value) => Some(value),
                    None if err.is_retryable() => self.fallback(key).await,
                    None => None,
                };
                return Ok(self.fall_back(fallback, err)?.map(|v| (v, None)));
            }
        };
        let Some((value, ttl)) = found else {
            inner.tiers.misses.fetch_add(1, Ordering::Relaxed);
            inner.stats.add(Stat::Miss, 1);
            return Ok(None);
        };
        inner.tiers.l2_hits.fetch_add(1, Ordering::Relaxed);
        inner.stats.add(Stat::Hit, 1);
        let keep = match ttl {
            Ttl::Remaining(left) => match refresh_at {
                Some(due) if left > due => self.l1_ttl(Some(left - due)),
                _ => self.l1_ttl(Some(left)),
            },
            Ttl::Never | Ttl::Unknown => inner.settings.l1_ttl,
        };
        self.fill(key, &value, keep, before).await;
        Ok(Some((value, Some(ttl))))
    }

    /// One L2 batch for `keys`, the values and how many of them are fail-safe ones: when L2
    /// fails, L1's values if it keeps one for every key, otherwise the error.
    async fn read_many(&self, keys: &[&str]) -> Result<(Vec<Option<Bytes>>, u64)> {
        let asked = match self.gate() {
            Ok(pass) => {
                self.call_l2(pass, false, self.inner.l2.get_many_bytes(keys))
                    .await
            }
            Err(err) => Err(err),
        };
        let err = match asked {
            Ok(values) => return Ok((values, 0)),
            Err(err) if self.inner.settings.fail_safe.is_some() && err.is_retryable() => err,
            Err(err) => return Err(err),
        };
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(value) = self.fallback(key).await else {
                return Err(err);
            };
            values.push(Some(value));
        }
        let served = keys.len() as u64;
        self.inner
            .tiers
            .stale_served
            .fetch_add(served, Ordering::Relaxed);
        tracing::debug!(error = %err, keys = keys.len(), "L2 failed: served the values L1 kept (fail-safe)");
        Ok((values, served))
    }

    /// Keeps `value`, read from L2 at version `before`, in L1 for `keep`, unless a write
    /// or an invalidation of `key` raced the read.
    async fn fill(&self, key: &str, value: &Bytes, keep: Duration, before: (u64, u64)) {
        let l1 = &self.inner.l1;
        if keep.is_zero() || self.version(key) != before {
            return;
        }
        // A failed fill leaves L1 without the value: a later read asks L2 again.
        if l1.set_bytes(key, value.clone(), Some(keep)).await.is_ok() && self.version(key) != before
        {
            // A write or an invalidation came in between: its delete may have run before
            // this fill, so the fill goes.
            let _ = l1.delete(key).await;
        }
    }

    async fn write(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let inner = &*self.inner;
        let ttl = self.jittered(normalize_ttl(ttl)?);
        let pass = self.gate()?;
        let before = self.version(key);
        let written = self.call_l2(pass, false, inner.l2.set_bytes(key, value.clone(), ttl));
        if let Err(err) = written.await {
            self.after_failed_write(&err, vec![key.to_owned()]).await;
            return Err(err);
        }
        let alone = self.bump_alone(key, before);
        let kept = alone
            && inner
                .l1
                .set_bytes(key, value, Some(self.l1_write_ttl(ttl)))
                .await
                .is_ok();
        if !kept || !self.unchanged_since_bump(key, before) {
            let _ = inner.l1.delete(key).await;
        }
        inner.stats.add(Stat::Set, 1);
        self.publish(Invalidation::Keys(vec![key.to_owned()])).await;
        Ok(())
    }
}

/// `duration` times `factor` (0 to 1), never more than `duration`, and without the panic of
/// `Duration::mul_f64` where the float product rounds past `Duration::MAX`.
fn scaled(duration: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor)
        .map_or(duration, |product| product.min(duration))
}

/// A running eager refresh: takes its key off the list when done, panicked or dropped with
/// its runtime.
struct Refreshing<L1, L2, B> {
    cache: TieredCache<L1, L2, B>,
    key: Box<str>,
}

impl<L1, L2, B> Drop for Refreshing<L1, L2, B> {
    fn drop(&mut self) {
        self.cache
            .inner
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// The first wait before a message that could not be sent is sent again; it doubles with
/// each failure in a row, up to [`RESEND_LONGEST`].
const RESEND_FIRST: Duration = Duration::from_millis(50);
const RESEND_LONGEST: Duration = Duration::from_secs(1);
/// The most messages a write sends itself, outside a tokio runtime.
const INLINE_MESSAGES: usize = 4;

/// The task that publishes the queued invalidations. A message that cannot be sent (the
/// backplane reconnects, say) is sent again after a pause, with whatever was queued
/// meanwhile, for as long as an instance may hold a value it invalidates (`l1_ttl`), unless
/// the cache is closed or the runtime has no timers. Dropped before it sent everything (its
/// runtime shut down), it lets the next write start another.
struct Draining<L1, L2, B> {
    /// Weak, so that a cache dropped without `close` is not kept alive by a task resending
    /// into a backplane that is down.
    inner: Weak<Inner<L1, L2, B>>,
    /// The most messages to send: a writer that publishes outside a runtime sends what is
    /// queued, not the other threads' writes for ever after.
    budget: usize,
    done: bool,
}

impl<L1: Cache + 'static, L2: Cache + 'static, B: Backplane> Draining<L1, L2, B> {
    async fn run(mut self) {
        let mut failing_since = None;
        let mut pause = RESEND_FIRST;
        let mut sent = 0;
        loop {
            let Some(inner) = self.inner.upgrade() else {
                self.done = true;
                return;
            };
            if sent == self.budget {
                // The next write picks up what is left.
                inner.outbox.abandon();
                self.done = true;
                return;
            }
            let Some(invalidation) = inner.outbox.next() else {
                self.done = true;
                return;
            };
            sent += 1;
            let cache = TieredCache { inner };
            let Err(unsent) = cache.send(invalidation).await else {
                failing_since = None;
                pause = RESEND_FIRST;
                continue;
            };
            let inner = &cache.inner;
            let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
            // As long as an instance may serve what the message invalidates.
            let useful = (inner.settings.l1_ttl)
                .saturating_add(inner.settings.fail_safe.unwrap_or_default());
            let resend = since.elapsed() < useful
                && !inner.closed.load(Ordering::Acquire)
                && cache_core::runtime::tokio_drivers().is_some_and(|d| d.time);
            if resend {
                inner.outbox.requeue(unsent);
                drop(cache);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RESEND_LONGEST);
            }
        }
    }
}

impl<L1, L2, B> Drop for Draining<L1, L2, B> {
    fn drop(&mut self) {
        if !self.done
            && let Some(inner) = self.inner.upgrade()
        {
            inner.outbox.abandon();
        }
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
        let read = self.traced("get", 1, self.read(key, None)).await?;
        Ok(read.map(|(value, _)| value))
    }

    /// L2 first, then L1, then an invalidation to the other instances. When L2 fails, the
    /// error is returned and L1 keeps no copy of the key (the write may or may not have
    /// reached L2); when L2 was not tried (the circuit breaker is open, or the TTL or the
    /// value was refused up front), L1 is left as it was. Two writes of one key that overlap
    /// leave L1 without a copy, since their order in L2 is unknown.
    async fn set_bytes(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.traced("set", 1, self.write(key, value, ttl)).await
    }

    /// L2, then L1, then an invalidation.
    async fn delete(&self, key: &str) -> Result<()> {
        self.traced("delete", 1, async {
            let inner = &*self.inner;
            let pass = self.gate()?;
            if let Err(err) = self.call_l2(pass, false, inner.l2.delete(key)).await {
                self.after_failed_write(&err, vec![key.to_owned()]).await;
                return Err(err);
            }
            self.bump(key);
            let _ = inner.l1.delete(key).await;
            inner.stats.add(Stat::Delete, 1);
            self.publish(Invalidation::Keys(vec![key.to_owned()])).await;
            Ok(())
        })
        .await
    }

    /// L2, then L1, then a clear message to the other instances.
    async fn clear(&self) -> Result<()> {
        self.traced("clear", 0, async {
            let inner = &*self.inner;
            let pass = self.gate()?;
            let cleared = self.call_l2(pass, false, inner.l2.clear()).await;
            inner.epoch.fetch_add(1, Ordering::AcqRel);
            let _ = inner.l1.clear().await;
            if cleared.is_ok() {
                self.publish(Invalidation::Clear).await;
            }
            cleared
        })
        .await
    }

    /// Waits for the invalidations still queued to be sent (a message that fails now is not
    /// sent again), then closes both tiers; idempotent.
    async fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.outbox.flushed().await;
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
        self.traced("get_many", keys.len(), async {
            let inner = &*self.inner;
            let mut values = inner.l1.get_many_bytes(keys).await?;
            let missed: Vec<usize> = (0..keys.len()).filter(|&i| values[i].is_none()).collect();
            let l1_hits = (keys.len() - missed.len()) as u64;
            let mut stale = 0;
            inner.tiers.l1_hits.fetch_add(l1_hits, Ordering::Relaxed);
            if !missed.is_empty() {
                let missed_keys: Vec<&str> = missed.iter().map(|&i| keys[i].as_ref()).collect();
                let (found, served) = self.read_many(&missed_keys).await?;
                stale = served;
                for (i, value) in missed.into_iter().zip(found) {
                    values[i] = value;
                }
            }
            let hits = values.iter().filter(|v| v.is_some()).count() as u64;
            inner
                .tiers
                .l2_hits
                .fetch_add(hits - l1_hits - stale, Ordering::Relaxed);
            inner
                .tiers
                .misses
                .fetch_add(keys.len() as u64 - hits, Ordering::Relaxed);
            inner.stats.add(Stat::Hit, hits);
            inner.stats.add(Stat::Miss, keys.len() as u64 - hits);
            Ok(values)
        })
        .await
    }

    /// One L2 batch, then L1, then one invalidation for every key.
    async fn set_many_bytes<K>(&self, entries: &[(K, Bytes)], ttl: Option<Duration>) -> Result<()>
    where
        K: AsRef<str> + Sync,
    {
        self.traced("set_many", entries.len(), async {
            let inner = &*self.inner;
            let ttl = self.jittered(normalize_ttl(ttl)?);
            let keys: Vec<String> = entries.iter().map(|(k, _)| k.as_ref().to_owned()).collect();
            let pass = self.gate()?;
            let before: Vec<(u64, u64)> = keys.iter().map(|key| self.version(key)).collect();
            if let Err(err) = self
                .call_l2(pass, false, inner.l2.set_many_bytes(entries, ttl))
                .await
            {
                self.after_failed_write(&err, keys).await;
                return Err(err);
            }
            // As in `write`: a key whose stripe moved by more than this batch's own bumps
            // raced another change, and L1 keeps no copy of it.
            let stripes: Vec<usize> = keys.iter().map(|key| self.stripe_index(key)).collect();
            let mut bumps: HashMap<usize, u64> = HashMap::new();
            for &stripe in &stripes {
                *bumps.entry(stripe).or_default() += 1;
                inner.stripes[stripe].fetch_add(1, Ordering::AcqRel);
            }
            let unchanged = |i: usize| {
                let stripe = stripes[i];
                inner.stripes[stripe].load(Ordering::Acquire) == before[i].0 + bumps[&stripe]
                    && inner.epoch.load(Ordering::Acquire) == before[i].1
            };
            let alone: Vec<usize> = (0..keys.len()).filter(|&i| unchanged(i)).collect();
            let kept: Vec<(&str, Bytes)> = alone
                .iter()
                .map(|&i| (entries[i].0.as_ref(), entries[i].1.clone()))
                .collect();
            let stored = kept.is_empty()
                || inner
                    .l1
                    .set_many_bytes(&kept, Some(self.l1_write_ttl(ttl)))
                    .await
                    .is_ok();
            let dropped: Vec<&str> = (0..keys.len())
                .filter(|&i| !stored || !unchanged(i))
                .map(|i| keys[i].as_str())
                .collect();
            if !dropped.is_empty() {
                let _ = inner.l1.delete_many(&dropped).await;
            }
            inner.stats.add(Stat::Set, keys.len() as u64);
            if !keys.is_empty() {
                self.publish(Invalidation::Keys(keys)).await;
            }
            Ok(())
        })
        .await
    }

    /// One L2 batch, then L1, then one invalidation for every key.
    async fn delete_many<K>(&self, keys: &[K]) -> Result<()>
    where
        K: AsRef<str> + Sync,
    {
        self.traced("delete_many", keys.len(), async {
            let inner = &*self.inner;
            let owned: Vec<String> = keys.iter().map(|k| k.as_ref().to_owned()).collect();
            let pass = self.gate()?;
            if let Err(err) = self.call_l2(pass, false, inner.l2.delete_many(keys)).await {
                self.after_failed_write(&err, owned).await;
                return Err(err);
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
        })
        .await
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
            .field("settings", &inner.settings)
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
            .field("settings", &self.settings)
            .finish()
    }
}
