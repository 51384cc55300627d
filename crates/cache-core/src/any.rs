//! `AnyCache`: a type-erased cache handle for choosing a backend at run time.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::{Cache, CacheStats, Result, SingleFlight, Ttl};

/// A boxed, `Send` future, as the object-safe [`DynCache`] returns.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`Cache::get_many_bytes_with_ttl`] returns.
type EntriesWithTtl = Vec<Option<(Bytes, Ttl)>>;

/// The object-safe companion of [`Cache`]: the same operations with boxed futures.
///
/// Blanket-implemented for every `Cache + Debug`, so it never needs implementing by hand.
trait DynCache: Send + Sync + fmt::Debug {
    fn get_bytes<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>>>;
    fn set_bytes<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>>;
    fn get_many_bytes<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>>;
    fn set_many_bytes<'a>(
        &'a self,
        entries: &'a [(&'a str, Bytes)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>>;
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>>>;
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>>;
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>>;
    fn clear(&self) -> BoxFuture<'_, Result<()>>;
    fn close(&self) -> BoxFuture<'_, Result<()>>;
    fn get_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<Vec<Option<String>>>>;
    fn set_many<'a>(
        &'a self,
        entries: &'a [(&'a str, &'a str)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>>;
    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<()>>;
    fn get_bytes_with_ttl<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Bytes, Ttl)>>>;
    fn get_many_bytes_with_ttl<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> BoxFuture<'a, Result<EntriesWithTtl>>;
    fn stale_retention(&self) -> Duration;
    fn get_stale_bytes<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Bytes, Duration)>>>;
    fn stats(&self) -> CacheStats;
    fn single_flight(&self) -> Option<&SingleFlight>;
}

impl<C: Cache + fmt::Debug> DynCache for C {
    fn get_bytes<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>>> {
        Box::pin(Cache::get_bytes(self, key))
    }

    fn set_bytes<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(Cache::set_bytes(self, key, value, ttl))
    }

    fn get_many_bytes<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>> {
        Box::pin(Cache::get_many_bytes(self, keys))
    }

    fn set_many_bytes<'a>(
        &'a self,
        entries: &'a [(&'a str, Bytes)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(Cache::set_many_bytes(self, entries, ttl))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(Cache::get(self, key))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(Cache::set(self, key, value, ttl))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(Cache::delete(self, key))
    }

    fn clear(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(Cache::clear(self))
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(Cache::close(self))
    }

    fn get_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<Vec<Option<String>>>> {
        Box::pin(Cache::get_many(self, keys))
    }

    fn set_many<'a>(
        &'a self,
        entries: &'a [(&'a str, &'a str)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(Cache::set_many(self, entries, ttl))
    }

    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<()>> {
        Box::pin(Cache::delete_many(self, keys))
    }

    fn get_bytes_with_ttl<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Bytes, Ttl)>>> {
        Box::pin(Cache::get_bytes_with_ttl(self, key))
    }

    fn get_many_bytes_with_ttl<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> BoxFuture<'a, Result<EntriesWithTtl>> {
        Box::pin(Cache::get_many_bytes_with_ttl(self, keys))
    }

    fn stale_retention(&self) -> Duration {
        Cache::stale_retention(self)
    }

    fn get_stale_bytes<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Bytes, Duration)>>> {
        Box::pin(Cache::get_stale_bytes(self, key))
    }

    fn stats(&self) -> CacheStats {
        Cache::stats(self)
    }

    fn single_flight(&self) -> Option<&SingleFlight> {
        Cache::single_flight(self)
    }
}

/// A cheap-to-clone cache handle whose backend is chosen at run time.
///
/// `AnyCache` implements [`Cache`] by forwarding to the backend it wraps; each call costs one
/// boxed future more than calling the backend directly. Clones share the backend, so
/// [`close`](Cache::close) on one closes all of them.
///
/// Also `cache_memory::AnyCache` and `cache_redis::AnyCache`: a crate that depends on one
/// backend imports it from there.
///
/// ```
/// use cache_core::{AnyCache, Cache};
/// use cache_memory::MemoryCache;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_core::Result<()> {
/// // Any backend: cache_memory::MemoryCache, cache_redis::RedisCache, your own.
/// let cache = AnyCache::new(MemoryCache::new());
/// cache.set("user:1", "Ada", None).await?;
/// assert_eq!(cache.get("user:1").await?.as_deref(), Some("Ada"));
///
/// // Clones share the backend.
/// let clone = cache.clone();
/// assert_eq!(clone.get("user:1").await?.as_deref(), Some("Ada"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AnyCache(Arc<dyn DynCache>);

impl AnyCache {
    /// Wraps `cache` so it can be used where the backend is chosen at run time.
    pub fn new<C: Cache + fmt::Debug + 'static>(cache: C) -> Self {
        Self(Arc::new(cache))
    }
}

impl fmt::Debug for AnyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnyCache").field(&self.0).finish()
    }
}

#[deny(clippy::missing_trait_methods)]
impl Cache for AnyCache {
    async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>> {
        self.0.get_bytes(key).await
    }

    async fn set_bytes(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.0.set_bytes(key, value, ttl).await
    }

    /// Forwards to the backend's `get_many_bytes` (one extra allocation, for the list of
    /// keys).
    async fn get_many_bytes<K>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>>
    where
        K: AsRef<str> + Sync,
    {
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        self.0.get_many_bytes(&keys).await
    }

    /// Forwards to the backend's `set_many_bytes` (one extra allocation, for the list of
    /// entries; the values are shared, not copied).
    async fn set_many_bytes<K>(&self, entries: &[(K, Bytes)], ttl: Option<Duration>) -> Result<()>
    where
        K: AsRef<str> + Sync,
    {
        let entries: Vec<(&str, Bytes)> = entries
            .iter()
            .map(|(key, value)| (key.as_ref(), value.clone()))
            .collect();
        self.0.set_many_bytes(&entries, ttl).await
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        self.0.get(key).await
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<()> {
        self.0.set(key, value, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.0.delete(key).await
    }

    async fn clear(&self) -> Result<()> {
        self.0.clear().await
    }

    async fn close(&self) -> Result<()> {
        self.0.close().await
    }

    /// Forwards to the backend's `get_many` (one extra allocation, for the list of keys).
    async fn get_many<K>(&self, keys: &[K]) -> Result<Vec<Option<String>>>
    where
        K: AsRef<str> + Sync,
    {
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        self.0.get_many(&keys).await
    }

    /// Forwards to the backend's `set_many` (one extra allocation, for the list of entries).
    async fn set_many<K, V>(&self, entries: &[(K, V)], ttl: Option<Duration>) -> Result<()>
    where
        K: AsRef<str> + Sync,
        V: AsRef<str> + Sync,
    {
        let entries: Vec<(&str, &str)> = entries
            .iter()
            .map(|(key, value)| (key.as_ref(), value.as_ref()))
            .collect();
        self.0.set_many(&entries, ttl).await
    }

    /// Forwards to the backend's `delete_many` (one extra allocation, for the list of keys).
    async fn delete_many<K>(&self, keys: &[K]) -> Result<()>
    where
        K: AsRef<str> + Sync,
    {
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        self.0.delete_many(&keys).await
    }

    async fn get_bytes_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Ttl)>> {
        self.0.get_bytes_with_ttl(key).await
    }

    /// Forwards to the backend's `get_many_bytes_with_ttl` (one extra allocation, for the
    /// list of keys).
    async fn get_many_bytes_with_ttl<K>(&self, keys: &[K]) -> Result<Vec<Option<(Bytes, Ttl)>>>
    where
        K: AsRef<str> + Sync,
    {
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        self.0.get_many_bytes_with_ttl(&keys).await
    }

    fn stale_retention(&self) -> Duration {
        self.0.stale_retention()
    }

    async fn get_stale_bytes(&self, key: &str) -> Result<Option<(Bytes, Duration)>> {
        self.0.get_stale_bytes(key).await
    }

    fn stats(&self) -> CacheStats {
        self.0.stats()
    }

    /// The backend's registry: loads through an `AnyCache` and through the backend itself
    /// are shared.
    fn single_flight(&self) -> Option<&SingleFlight> {
        self.0.single_flight()
    }
}
