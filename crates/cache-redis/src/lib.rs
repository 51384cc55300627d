#![doc = include_str!("../README.md")]
// Feature badges on docs.rs, which builds with nightly and `--cfg docsrs`; `doc(cfg)` is not
// stable yet (Rust 1.95), so local and CI doc builds leave `docsrs` unset.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backplane;
mod batch;
mod builder;
mod cluster;
mod connections;
mod direct;
mod errors;
mod job;
mod keys;
mod manager;
mod metrics;
mod redis_url;
mod sync;
#[cfg(feature = "tls")]
mod tls;
mod ttl;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use redis::FromRedisValue;
use tokio::sync::watch;
use tracing::Instrument;

pub use crate::backplane::RedisBackplane;
pub use crate::builder::{DEFAULT_MAX_SIZE, DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT, RedisCacheBuilder};
pub use crate::keys::MAX_TTL_MS;
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

use crate::builder::Described;
use crate::cluster::{Cluster, Route};
use crate::connections::Request;
pub(crate) use crate::direct::Direct;
use crate::keys::{Key, Keys, ttl_millis};
use crate::metrics::Metrics;

/// What a command does, and so where it may go and whether it may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A write: sent once, again only where Redis says it did not execute it.
    Write,
    /// A read: sent again after a lost connection; to a replica with `read_from_replicas`.
    Read,
    /// A read that must see the primary (`PING`, the `SCAN` of `clear`).
    Check,
}

/// How the cache reaches Redis.
pub(crate) enum Topology {
    /// One server, or the master that sentinels name: every command goes to it.
    Direct(Direct),
    /// A Redis Cluster.
    Cluster(Cluster),
}

impl Topology {
    fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// The connections shared per server.
    fn lanes(&self) -> usize {
        match self {
            Self::Direct(direct) => direct.master.lanes(),
            Self::Cluster(cluster) => cluster.lanes(),
        }
    }
}

/// How many keys one `SCAN` step asks for, and so the largest `UNLINK` batch of a namespaced
/// [`clear`](Cache::clear).
const SCAN_COUNT: usize = 1000;

/// A [`Cache`] stored in Redis, shared by every process pointed at the same server.
///
/// Made by [`RedisCache::from_url`] or [`RedisCache::builder`]; neither does I/O. Clones share
/// one pool of multiplexed connections: concurrent operations pipeline their commands on one
/// socket (`pool_size` sockets if you raise it). Each operation is one round trip (a
/// namespaced [`clear`](Cache::clear) is two per 1,000 keys scanned) and is bounded by the
/// configured timeout (1 s by default), waiting for a connection included: past it, it fails
/// with [`CacheError::Timeout`]. When Redis restarts, broken connections are dropped and
/// replaced in the background, without rebuilding the cache; the crate README says what each
/// failure costs.
///
/// `Debug` shows the address, database, user and namespace, never the password.
///
/// ```no_run
/// use std::time::Duration;
/// use cache_redis::{Cache, RedisCache};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_redis::Result<()> {
/// let cache = RedisCache::builder()
///     .url("redis://127.0.0.1:6379/0")
///     .namespace("traces:")
///     .build()?;
/// cache.ping().await?;
/// cache.set("abc", "span data", Some(Duration::from_secs(300))).await?;
/// assert_eq!(cache.get("abc").await?.as_deref(), Some("span data"));
/// cache.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

struct Inner {
    topology: Topology,
    keys: Keys,
    timeout: Duration,
    closed: AtomicBool,
    /// Turns `true` on [`close`](Cache::close), for background tasks that wait on it.
    closing: watch::Sender<bool>,
    described: Described,
    stats: StatsCounters,
    flights: SingleFlight,
    /// The cache's name and, with the `metrics` feature, what publishes its counts.
    metrics: Metrics,
}

impl RedisCache {
    /// A cache on the server at `url`, with the default settings; see
    /// [`RedisCacheBuilder::url`] for the URL forms. Does no I/O.
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`] when the URL does not parse, or is `rediss://` without
    /// the `tls` feature.
    pub fn from_url(url: impl Into<String>) -> Result<Self> {
        Self::builder().url(url).build()
    }

    /// A builder for every setting.
    pub fn builder() -> RedisCacheBuilder {
        RedisCacheBuilder::default()
    }

    pub(crate) fn from_parts(
        topology: Topology,
        keys: Keys,
        timeout: Duration,
        described: Described,
        name: String,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                topology,
                keys,
                timeout,
                closed: AtomicBool::new(false),
                closing: watch::Sender::new(false),
                described,
                stats: StatsCounters::new(),
                flights: SingleFlight::new(),
                metrics: Metrics::new(name),
            }),
        }
    }

    /// Checks that Redis answers, with one `PING` round trip.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when Redis cannot be reached, [`CacheError::Timeout`] when
    /// it does not answer within the timeout, [`CacheError::Backend`] when it refuses the
    /// credentials, and [`CacheError::Closed`] after [`close`](Cache::close).
    pub async fn ping(&self) -> Result<()> {
        // Before the deadline's timer, which tokio cannot make without its time driver.
        self.ready()?;
        let timeout = self.inner.timeout;
        // One deadline for the whole check, every primary of a cluster asked at once.
        tokio::time::timeout(timeout, async {
            let cmd = redis::cmd("PING");
            let replies = join_all(
                self.every_primary()
                    .await?
                    .into_iter()
                    .map(|route| self.run::<String>("ping", 0, Kind::Check, route, &cmd)),
            )
            .await;
            for reply in replies {
                let reply = reply?;
                if reply != "PONG" {
                    return Err(CacheError::Backend {
                        code: None,
                        message: format!("redis answered PING with {reply:?}"),
                        source: None,
                    });
                }
            }
            Ok(())
        })
        .await
        .unwrap_or(Err(CacheError::Timeout { after: timeout }))
    }

    /// A route to each primary: the one server, or every primary of the cluster's slot map.
    async fn every_primary(&self) -> Result<Vec<Route>> {
        self.ensure_open()?;
        match &self.inner.topology {
            Topology::Direct(_) => Ok(vec![Route::Slot(0)]),
            Topology::Cluster(cluster) => {
                cache_core::runtime::require_tokio("cache-redis", true)?;
                let timeout = self.inner.timeout;
                let primaries = tokio::time::timeout(timeout, cluster.primaries())
                    .await
                    .map_err(|_| CacheError::Timeout { after: timeout })??;
                Ok(primaries.into_iter().map(Route::Node).collect())
            }
        }
    }

    /// The namespace prefixed to every key (`""` for none).
    pub fn namespace(&self) -> &str {
        self.inner.keys.namespace()
    }

    /// The bound on each operation.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The name given to [`RedisCacheBuilder::name`] (`"default"` unless set): the `cache`
    /// label of its metrics and a field of its tracing spans.
    pub fn name(&self) -> &str {
        self.inner.metrics.name()
    }

    /// Publishes the counts to the `metrics` recorder now, rather than at the next
    /// publication (at most a second after an operation): before a scrape or at shutdown,
    /// and in tests.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn publish_metrics(&self) {
        self.inner.metrics.publish(&self.inner);
    }

    fn count(&self, stat: Stat, n: usize) {
        self.inner.stats.add(stat, n as u64);
    }

    /// Counts each entry of a batch read as a hit or a miss.
    fn count_found<T>(&self, entries: &[Option<T>]) {
        let hits = entries.iter().filter(|entry| entry.is_some()).count();
        self.count(Stat::Hit, hits);
        self.count(Stat::Miss, entries.len() - hits);
    }

    /// Whether [`close`](Cache::close) was called.
    fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Turns `true` when the cache is closed.
    fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    fn ensure_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(CacheError::Closed)
        } else {
            Ok(())
        }
    }

    /// Where the command on `key` goes: its slot's node in a cluster, the server otherwise.
    fn route(&self, key: &Key<'_>) -> Route {
        if self.inner.topology.is_cluster() {
            Route::Slot(key.slot())
        } else {
            Route::Slot(0)
        }
    }

    /// Sends one write command within the timeout, once (in a cluster, again only where
    /// Redis says it did not execute it: a redirection, `TRYAGAIN`, a node down).
    async fn query<T: FromRedisValue + Send>(
        &self,
        op: &'static str,
        keys: usize,
        route: Route,
        cmd: &redis::Cmd,
    ) -> Result<T> {
        self.run(op, keys, Kind::Write, route, cmd).await
    }

    /// Sends one read-only command, again on a new connection if the first one turned out
    /// to be gone (Redis restarted, failed over, or closed an idle connection) before it
    /// answered; to a replica with `read_from_replicas`.
    async fn read<T: FromRedisValue + Send>(
        &self,
        op: &'static str,
        keys: usize,
        route: Route,
        cmd: &redis::Cmd,
    ) -> Result<T> {
        self.run(op, keys, Kind::Read, route, cmd).await
    }

    /// Sends one command within the timeout, counted and traced (see [`traced`](Self::traced)).
    async fn run<T: FromRedisValue + Send>(
        &self,
        op: &'static str,
        keys: usize,
        kind: Kind,
        route: Route,
        cmd: &redis::Cmd,
    ) -> Result<T> {
        self.traced(op, keys, || async {
            self.ready()?;
            match &self.inner.topology {
                Topology::Cluster(cluster) => {
                    Box::pin(cluster.attempt(self.inner.timeout, kind, &route, cmd)).await
                }
                Topology::Direct(direct) => {
                    direct
                        .send(self.inner.timeout, kind, Request::Cmd(cmd))
                        .await
                }
            }
        })
        .await
    }

    /// Sends a pipeline to the one server, or to the master behind the sentinels (a
    /// [`Kind::Read`] pipeline to a replica with `read_from_replicas`), within the timeout;
    /// counted and traced. Writes are sent once, reads again after a lost connection, as with
    /// [`run`](Self::run). A cluster has none: each command there must be routed.
    async fn run_pipeline<T: FromRedisValue + Send>(
        &self,
        direct: &Direct,
        op: &'static str,
        keys: usize,
        kind: Kind,
        pipe: &redis::Pipeline,
    ) -> Result<T> {
        self.traced(op, keys, || async {
            self.ready()?;
            direct
                .send(self.inner.timeout, kind, Request::Pipe(pipe))
                .await
        })
        .await
    }

    /// Checks that the cache is open and that tokio can run it.
    fn ready(&self) -> Result<()> {
        self.ensure_open()?;
        // Timers bound every call and sockets reach Redis: without either driver tokio would
        // panic, so say what to change instead (remembered per thread and runtime).
        cache_core::runtime::require_tokio("cache-redis", true)
    }

    /// Runs the future that `call` makes, counted in the stats and traced: a `debug` span
    /// named `redis` with the operation, the namespace and the number of keys (never a key, a
    /// value or a password), and a `debug` event with the outcome.
    ///
    /// Takes a closure that makes the operation's future, not the future itself: an `async fn`
    /// keeps a future given as an argument twice in its state (as the argument and as the
    /// awaited value), and combinators wrapped around a future already made move it by value,
    /// a copy of the whole operation's future on every call. The future made here is built in
    /// the place where it is awaited.
    async fn traced<T, F, Fut>(&self, op: &'static str, keys: usize, call: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let span = tracing::debug_span!(
            "redis",
            op,
            cache = self.name(),
            namespace = self.namespace(),
            keys
        );
        let started = self.inner.metrics.start();
        async {
            let result = call().await;
            match &result {
                Ok(_) => {
                    self.inner.metrics.finish(&self.inner, op, started, None);
                    tracing::debug!("done");
                }
                Err(err) => {
                    // A closed cache is the caller's doing, not a failure of the store.
                    let failed = !matches!(err, CacheError::Closed);
                    if failed {
                        self.count(Stat::Error, 1);
                    }
                    if matches!(err, CacheError::Timeout { .. }) {
                        self.count(Stat::Timeout, 1);
                    }
                    let counted = failed.then_some(err);
                    self.inner.metrics.finish(&self.inner, op, started, counted);
                    tracing::debug!(error = %err, code = err.code(), "failed");
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    /// `GET key`, counted as a hit or a miss: the reply's bytes as redis-rs read them.
    async fn get_reply(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = self.inner.keys.key(key)?;
        let route = self.route(&key);
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let value: Option<Vec<u8>> = self.read("get", 1, route, &cmd).await?;
        self.count(
            if value.is_some() {
                Stat::Hit
            } else {
                Stat::Miss
            },
            1,
        );
        Ok(value)
    }

    /// `SET key value [PX ms]` of a value's bytes, checked before any I/O.
    async fn set_slice(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        let ttl = ttl_millis(ttl)?;
        let key = self.inner.keys.key(key)?;
        let value = self.inner.keys.value(value)?;
        let route = self.route(&key);
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        if let Some(ms) = ttl {
            cmd.arg("PX").arg(ms);
        }
        self.query::<()>("set", 1, route, &cmd).await?;
        self.count(Stat::Set, 1);
        Ok(())
    }

    /// One `SCAN` step over the namespace on the node of `route`: the next cursor and the
    /// keys found.
    async fn scan_step(
        &self,
        route: &Route,
        cursor: u64,
        pattern: &str,
    ) -> Result<(u64, Vec<Vec<u8>>)> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        // On the primary: a replica may lag behind the keys to remove.
        self.run("scan", 0, Kind::Check, route.clone(), &cmd).await
    }
}

impl Cache for RedisCache {
    /// `GET`, one round trip.
    ///
    /// # Errors
    /// [`CacheError::Backend`] when the key holds another type (`WRONGTYPE`), and the
    /// connection errors of [`RedisCache::ping`].
    async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.get_reply(key).await?.map(Bytes::from))
    }

    /// `GET`, one round trip, as [`get_bytes`](Cache::get_bytes); the reply's bytes become the
    /// string without a copy.
    ///
    /// # Errors
    /// [`CacheError::InvalidValue`] when the stored bytes are not UTF-8 (another client, or
    /// [`set_bytes`](Cache::set_bytes), wrote them); otherwise those of
    /// [`get_bytes`](Cache::get_bytes).
    async fn get(&self, key: &str) -> Result<Option<String>> {
        self.get_reply(key)
            .await?
            .map(|value| {
                // The error of every backend's `get`, made by the same function.
                String::from_utf8(value).or_else(|err| utf8(Bytes::from(err.into_bytes())))
            })
            .transpose()
    }

    /// `GET` and `PTTL`, one round trip: pipelined on one server and behind sentinels; in a
    /// cluster, two commands sent at once to the key's node. [`Ttl::Never`] for a key without
    /// expiry, else [`Ttl::Remaining`] in whole milliseconds; a key that expires or is deleted
    /// between the two commands is a miss. Counted as a hit or a miss, like `get`.
    ///
    /// The two commands are not atomic: a write landing between them can pair a value with
    /// the TTL of the value that replaced it.
    ///
    /// # Errors
    /// Those of [`get_bytes`](Cache::get_bytes).
    async fn get_bytes_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Ttl)>> {
        self.get_with_ttl(key).await
    }

    /// `MGET` and a `PTTL` per key, pipelined: one round trip per 1,000 keys, each bounded
    /// by the timeout; in a cluster, `get_bytes_with_ttl` per key, 1,000 at a time
    /// concurrently. The TTLs read as in `get_bytes_with_ttl`; counted as hits and misses,
    /// like `get_many`. A read, so each round trip is sent again once if its connection turns
    /// out to be gone.
    ///
    /// # Errors
    /// Those of [`get_many_bytes`](Cache::get_many_bytes), for the whole batch.
    async fn get_many_bytes_with_ttl<K>(&self, keys: &[K]) -> Result<Vec<Option<(Bytes, Ttl)>>>
    where
        K: AsRef<str> + Sync,
    {
        self.get_many_with_ttl(keys).await
    }

    /// `SET key value [PX ms]`, one round trip; the TTL is rounded up to whole milliseconds.
    ///
    /// A `set` that fails with [`CacheError::Timeout`] or [`CacheError::Unavailable`] may or
    /// may not have been applied: the command may have reached Redis before the deadline
    /// passed or the connection broke. It is never retried behind the caller's back.
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] and [`CacheError::TooLarge`] (over `max_size` bytes) before
    /// any I/O; [`CacheError::Backend`] with code `OOM` when Redis is out of memory under
    /// `noeviction`; the connection errors of [`RedisCache::ping`].
    async fn set_bytes(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.set_slice(key, &value, ttl).await
    }

    /// As [`set_bytes`](Cache::set_bytes), sending the string's bytes as they are.
    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<()> {
        self.set_slice(key, value.as_bytes(), ttl).await
    }

    /// `UNLINK`, one round trip; the value's memory is freed in the background.
    async fn delete(&self, key: &str) -> Result<()> {
        let key = self.inner.keys.key(key)?;
        let route = self.route(&key);
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(key);
        self.query::<()>("delete", 1, route, &cmd).await?;
        self.count(Stat::Delete, 1);
        Ok(())
    }

    /// With a namespace, removes every key under it: `SCAN MATCH` over the whole database,
    /// 1,000 keys a step, with an `UNLINK` of each step's matches. That is O(keys in the
    /// database) round trips / 1,000, each bounded by the timeout, and keys written while it
    /// runs may survive.
    ///
    /// **Without a namespace this is `FLUSHDB ASYNC`: it empties the whole selected database,
    /// keys of other programs included.** Give the cache a namespace if it shares the
    /// database.
    async fn clear(&self) -> Result<()> {
        let primaries = self.every_primary().await?;
        if self.inner.keys.namespace().is_empty() {
            let mut cmd = redis::cmd("FLUSHDB");
            cmd.arg("ASYNC");
            for route in primaries {
                self.query::<()>("flushdb", 0, route, &cmd).await?;
            }
            return Ok(());
        }
        let pattern = self.inner.keys.scan_pattern();
        for route in primaries {
            let mut cursor = 0;
            loop {
                let (next, keys) = self.scan_step(&route, cursor, &pattern).await?;
                if !keys.is_empty() {
                    self.unlink_found(keys).await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }

    /// Closes the pool and its connections. Idempotent; afterwards every operation on this
    /// cache and its clones returns [`CacheError::Closed`]. Operations already in flight finish.
    async fn close(&self) -> Result<()> {
        if !self.inner.closed.swap(true, Ordering::AcqRel) {
            self.inner.closing.send_replace(true);
            match &self.inner.topology {
                Topology::Direct(direct) => direct.close(),
                Topology::Cluster(cluster) => cluster.close(),
            }
        }
        Ok(())
    }

    /// `MGET`: one round trip per 1,000 keys, each bounded by the timeout. A read, so it is
    /// sent again once if its connection turns out to be gone.
    ///
    /// # Errors
    /// [`CacheError::TooLarge`] for a key over the limit, before any I/O; otherwise those of
    /// [`get_bytes`](Cache::get_bytes), for the whole batch.
    async fn get_many_bytes<K>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>>
    where
        K: AsRef<str> + Sync,
    {
        self.mget(keys).await
    }

    /// Pipelined `SET key value [PX ms]`: one round trip per 1,000 entries or 1 MiB of
    /// values, each bounded by the timeout.
    ///
    /// Every key, value and the TTL are checked before anything is sent, so
    /// [`CacheError::InvalidTtl`] and [`CacheError::TooLarge`] store nothing. An error from
    /// Redis (such as `OOM`) or a timeout can leave part of the batch stored; like `set`, a
    /// batch is never resent behind the caller's back.
    ///
    /// # Errors
    /// Those of [`set_bytes`](Cache::set_bytes); a [`CacheError::Backend`] carries the code
    /// of the first entry Redis refused.
    async fn set_many_bytes<K>(&self, entries: &[(K, Bytes)], ttl: Option<Duration>) -> Result<()>
    where
        K: AsRef<str> + Sync,
    {
        self.pipelined_set(
            entries
                .iter()
                .map(|(key, value)| (key.as_ref(), &value[..])),
            ttl,
        )
        .await
    }

    /// As [`set_many_bytes`](Cache::set_many_bytes), sending the strings' bytes as they are.
    async fn set_many<K, V>(&self, entries: &[(K, V)], ttl: Option<Duration>) -> Result<()>
    where
        K: AsRef<str> + Sync,
        V: AsRef<str> + Sync,
    {
        self.pipelined_set(
            entries
                .iter()
                .map(|(key, value)| (key.as_ref(), value.as_ref().as_bytes())),
            ttl,
        )
        .await
    }

    /// Multi-key `UNLINK`: one round trip per 1,000 keys, each bounded by the timeout.
    async fn delete_many<K>(&self, keys: &[K]) -> Result<()>
    where
        K: AsRef<str> + Sync,
    {
        self.unlink_many(keys).await
    }

    /// Hits, misses, sets and deletes per key, and operations the store failed (`errors`, of
    /// which `timeouts`; input refused before any I/O and calls on a closed cache are not
    /// counted), counted by this process for this cache and its clones. Redis evicts and
    /// expires on the server, so `evictions` and `expirations` stay 0: see `INFO stats` for
    /// those.
    fn stats(&self) -> CacheStats {
        self.inner.stats.snapshot()
    }

    fn single_flight(&self) -> Option<&SingleFlight> {
        Some(&self.inner.flights)
    }
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let Described {
            addr,
            db,
            username,
            password,
        } = &inner.described;
        f.debug_struct("RedisCache")
            .field("name", &inner.metrics.name())
            .field("addr", addr)
            .field("db", db)
            .field("username", username)
            .field("password", password)
            .field("namespace", &inner.keys.namespace())
            .field("pool_size", &inner.topology.lanes())
            .field("timeout", &inner.timeout)
            .field("max_size", &inner.keys.max_size())
            .field("closed", &inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}
