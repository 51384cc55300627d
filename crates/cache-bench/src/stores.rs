//! The cases of the throughput groups, each behind [`Store`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_memory::{Bytes, Cache, MemoryCache, MemoryCacheBuilder};
use dashmap::DashMap;
use moka::Expiry;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;

use crate::workload::{Result, Store, TTL};

/// A `MemoryCache` builder without metrics: every case but "with metrics" measures the cache
/// as a build without the `metrics` feature makes it (the harness turns the feature on).
pub(crate) fn memory_cache() -> MemoryCacheBuilder {
    MemoryCache::builder().metrics(false)
}

/// A plain `MemoryCache`: unbounded, without metrics.
pub(crate) fn plain_memory_cache() -> MemoryCache {
    memory_cache()
        .build()
        .expect("the default settings are valid")
}

/// Installs a Prometheus recorder as the process's `metrics` recorder, once, with a thread
/// that runs its upkeep (draining histogram samples) every 5 s, as its exporter would.
pub(crate) fn install_prometheus() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let Ok(handle) = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()
        else {
            eprintln!("cache-bench: a metrics recorder was installed already");
            return;
        };
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                handle.run_upkeep();
            }
        });
    });
}

/// Any `Cache`, through the trait with static dispatch (`AnyCache` is one too).
#[derive(Debug, Clone)]
pub(crate) struct CacheStore<C>(pub(crate) C);

impl<C: Cache + Clone + Send + Sync + 'static> Store for CacheStore<C> {
    type Value = String;

    async fn get(&mut self, key: &str) -> Result<Option<String>> {
        Ok(self.0.get(key).await?)
    }

    async fn set(&mut self, key: &str, value: &str) -> Result<()> {
        Ok(self.0.set(key, value, Some(TTL)).await?)
    }
}

/// Any `Cache` through its byte methods: `get_bytes` shares the stored value, `set_bytes`
/// stores a copy of the workload's value.
#[derive(Debug, Clone)]
pub(crate) struct BytesStore<C>(pub(crate) C);

impl<C: Cache + Clone + Send + Sync + 'static> Store for BytesStore<C> {
    type Value = Bytes;

    async fn get(&mut self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.0.get_bytes(key).await?)
    }

    async fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let value = Bytes::copy_from_slice(value.as_bytes());
        Ok(self.0.set_bytes(key, value, Some(TTL)).await?)
    }
}

/// A moka value with the TTL it was written with, for [`PerEntryTtl`].
#[derive(Debug, Clone)]
pub(crate) struct Timed {
    value: String,
    ttl: Option<Duration>,
}

impl Timed {
    /// `value`, to expire after `ttl`.
    pub(crate) fn new(value: &str, ttl: Option<Duration>) -> Self {
        Self {
            value: value.to_owned(),
            ttl,
        }
    }
}

/// moka's per-entry expiry: each entry lives for the TTL of its latest write, as in
/// `Cache::set` (an overwrite restarts the TTL; a read does not extend it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PerEntryTtl;

impl Expiry<String, Timed> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, value: &Timed, _: Instant) -> Option<Duration> {
        value.ttl
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Timed,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        value.ttl
    }
}

/// A moka `future::Cache` with per-entry expiry and, when given, a capacity.
pub(crate) fn moka_cache(capacity: Option<u64>) -> moka::future::Cache<String, Timed> {
    let builder = moka::future::Cache::builder().expire_after(PerEntryTtl);
    match capacity {
        Some(capacity) => builder.max_capacity(capacity).build(),
        None => builder.build(),
    }
}

/// moka `future::Cache` with per-entry expiry.
#[derive(Debug, Clone)]
pub(crate) struct MokaStore(pub(crate) moka::future::Cache<String, Timed>);

impl Store for MokaStore {
    type Value = String;

    async fn get(&mut self, key: &str) -> Result<Option<String>> {
        Ok(self.0.get(key).await.map(|timed| timed.value))
    }

    async fn set(&mut self, key: &str, value: &str) -> Result<()> {
        self.0
            .insert(key.to_owned(), Timed::new(value, Some(TTL)))
            .await;
        Ok(())
    }
}

/// A value and when it expires, as the raw maps keep it.
pub(crate) type RawEntry = (String, Option<Instant>);

/// A bare `DashMap` with an expiry time per entry, checked on read: the least any
/// DashMap-based cache can do, so the limit for `MemoryCache`.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawDashMap(pub(crate) Arc<DashMap<String, RawEntry>>);

impl Store for RawDashMap {
    type Value = String;

    async fn get(&mut self, key: &str) -> Result<Option<String>> {
        match self.0.get(key) {
            None => return Ok(None),
            Some(entry) if entry.1.is_none_or(|at| at > Instant::now()) => {
                return Ok(Some(entry.0.clone()));
            }
            Some(_) => {}
        }
        let now = Instant::now();
        self.0
            .remove_if(key, |_, (_, at)| at.is_some_and(|at| at <= now));
        Ok(None)
    }

    async fn set(&mut self, key: &str, value: &str) -> Result<()> {
        self.0.insert(
            key.to_owned(),
            (value.to_owned(), Some(Instant::now() + TTL)),
        );
        Ok(())
    }
}

/// One `tokio::sync::Mutex` around a `HashMap`: the original Python design (a dict under one
/// asyncio lock), rendered in Rust.
#[derive(Debug, Clone, Default)]
pub(crate) struct MutexMap(pub(crate) Arc<tokio::sync::Mutex<HashMap<String, RawEntry>>>);

impl Store for MutexMap {
    type Value = String;

    async fn get(&mut self, key: &str) -> Result<Option<String>> {
        let mut map = self.0.lock().await;
        match map.get(key) {
            None => Ok(None),
            Some((value, at)) if at.is_none_or(|at| at > Instant::now()) => Ok(Some(value.clone())),
            Some(_) => {
                map.remove(key);
                Ok(None)
            }
        }
    }

    async fn set(&mut self, key: &str, value: &str) -> Result<()> {
        self.0.lock().await.insert(
            key.to_owned(),
            (value.to_owned(), Some(Instant::now() + TTL)),
        );
        Ok(())
    }
}

/// `SET key value PX <TTL in ms>`, as `RedisCache` sends it.
pub(crate) fn set_px(key: &str, value: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key)
        .arg(value)
        .arg("PX")
        .arg(TTL.as_millis() as u64);
    cmd
}

/// One redis-rs `MultiplexedConnection`, cloned once per task, with redis-rs's defaults.
#[derive(Clone)]
pub(crate) struct RawRedis(pub(crate) MultiplexedConnection);

impl std::fmt::Debug for RawRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawRedis")
    }
}

impl Store for RawRedis {
    type Value = String;

    async fn get(&mut self, key: &str) -> Result<Option<String>> {
        Ok(redis::cmd("GET").arg(key).query_async(&mut self.0).await?)
    }

    async fn set(&mut self, key: &str, value: &str) -> Result<()> {
        Ok(set_px(key, value).query_async(&mut self.0).await?)
    }
}

/// One redis-rs cluster `ClusterConnection`, cloned once per task, with redis-rs's defaults:
/// it routes each command to its slot's primary.
#[derive(Clone)]
pub(crate) struct RawCluster(pub(crate) ClusterConnection);

impl std::fmt::Debug for RawCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawCluster")
    }
}

impl Store for RawCluster {
    type Value = String;

    async fn get(&mut self, key: &str) -> Result<Option<String>> {
        Ok(redis::cmd("GET").arg(key).query_async(&mut self.0).await?)
    }

    async fn set(&mut self, key: &str, value: &str) -> Result<()> {
        Ok(set_px(key, value).query_async(&mut self.0).await?)
    }
}

/// deadpool-redis as its docs show it: a connection checked out of the pool per operation.
#[derive(Clone)]
pub(crate) struct CheckoutPerOp(pub(crate) deadpool_redis::Pool);

impl std::fmt::Debug for CheckoutPerOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckoutPerOp")
    }
}

impl Store for CheckoutPerOp {
    type Value = String;

    async fn get(&mut self, key: &str) -> Result<Option<String>> {
        let mut conn = self.0.get().await?;
        Ok(redis::cmd("GET").arg(key).query_async(&mut conn).await?)
    }

    async fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let mut conn = self.0.get().await?;
        Ok(set_px(key, value).query_async(&mut conn).await?)
    }
}
