//! Stats on Redis: failures are counted, timeouts apart.

use std::time::Duration;

use cache_redis::{Cache, CacheError, RedisCache};
use redis_test_server::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_errors_and_timeouts() {
    let mut server = RedisServer::start();
    let cache = RedisCache::builder()
        .url(server.url())
        .namespace("stats:")
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    cache.set("k", "v", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));

    server.pause();
    let err = cache.get("k").await.unwrap_err();
    assert!(matches!(err, CacheError::Timeout { .. }), "{err:?}");
    server.resume();
    server.kill();
    let err = cache.set("k", "v", None).await.unwrap_err();
    assert!(!matches!(err, CacheError::Timeout { .. }), "{err:?}");

    // Refused before any I/O, or on a closed cache: not failures of the store.
    assert!(cache.set("k", "v", Some(Duration::ZERO)).await.is_err());
    cache.close().await.unwrap();
    assert!(cache.get("k").await.is_err());

    let stats = cache.clone().stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.sets),
        (1, 0, 1),
        "{stats:?}"
    );
    assert_eq!((stats.errors, stats.timeouts), (2, 1), "{stats:?}");
    assert_eq!((stats.evictions, stats.expirations), (0, 0), "{stats:?}");
}
