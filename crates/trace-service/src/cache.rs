//! The cache in front of the database, chosen by `CACHE_URL`.

use std::time::Duration;

use cache_core::{AnyCache, CacheError, Result};
use cache_memory::MemoryCache;
use cache_redis::{RedisBackplane, RedisCache};
use cache_tiered::TieredCache;

/// The prefix of the service's keys in a shared Redis, and the name of its invalidation
/// channel's namespace.
pub const REDIS_NAMESPACE: &str = "trace-service:";
/// How many traces an in-process cache holds at most.
pub const MEMORY_CAPACITY: usize = 100_000;
/// The longest a tiered cache keeps a trace in its in-process tier: the bound on how stale
/// another instance's copy can be if an invalidation message is lost.
pub const L1_TTL: Duration = Duration::from_secs(60);

/// The cache that `url` names, or `None` for `none` (no caching: every read goes to the
/// database).
///
/// - `memory://` (the default): a bounded in-process `MemoryCache`; one instance only.
/// - `redis://host:port/db` (also `tiered+redis://`, `redis+unix://`): a `TieredCache`, a
///   bounded `MemoryCache` in front of a `RedisCache` under the namespace
///   [`REDIS_NAMESPACE`], kept coherent with the other instances on that Redis by a
///   `RedisBackplane`; an instance sees another's write as soon as its invalidation arrives,
///   and after at most [`L1_TTL`] if the message is lost.
///
/// Builds without I/O: an unreachable Redis shows up on the first request (and is served
/// from the database then, see the `api` module).
///
/// # Errors
/// [`CacheError::InvalidConfig`] for a scheme it does not know or a malformed Redis URL.
pub fn cache_from_url(url: &str) -> Result<Option<AnyCache>> {
    let (scheme, _) = url.split_once("://").unwrap_or((url, ""));
    match scheme {
        "none" => Ok(None),
        "memory" => Ok(Some(AnyCache::new(memory()?))),
        "redis" | "redis+unix" | "unix" | "tiered+redis" => {
            let redis_url = url.strip_prefix("tiered+").unwrap_or(url);
            let redis = RedisCache::builder()
                .url(redis_url)
                .namespace(REDIS_NAMESPACE)
                .build()?;
            let backplane = RedisBackplane::for_cache(&redis);
            let tiered = TieredCache::builder(memory()?, redis)
                .backplane(backplane)
                .l1_ttl(L1_TTL)
                .build()?;
            Ok(Some(AnyCache::new(tiered)))
        }
        _ => Err(CacheError::InvalidConfig {
            reason: format!(
                "CACHE_URL has the scheme {scheme:?}; use none, memory:// or redis://host:port/db"
            ),
            source: None,
        }),
    }
}

/// What `CACHE_URL` names, for the startup line: the kind of cache, never the URL.
pub(crate) fn describe(url: &str) -> &'static str {
    match url.split_once("://").map_or(url, |(scheme, _)| scheme) {
        "none" => "none",
        "memory" => "memory",
        _ => "tiered (memory over redis)",
    }
}

fn memory() -> Result<MemoryCache> {
    MemoryCache::builder().max_capacity(MEMORY_CAPACITY).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn none_memory_and_redis_urls_build_without_io() {
        assert!(cache_from_url("none").unwrap().is_none());
        assert!(cache_from_url("memory://").unwrap().is_some());
        // Port 1: nothing listens there, and building does not try.
        assert!(cache_from_url("redis://127.0.0.1:1/0").unwrap().is_some());
        assert!(
            cache_from_url("tiered+redis://127.0.0.1:1/0")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn an_unknown_scheme_is_a_config_error() {
        let err = cache_from_url("memcached://127.0.0.1:11211").unwrap_err();
        assert!(matches!(err, CacheError::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains("memcached"), "{err}");
    }
}
