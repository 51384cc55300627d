//! Cross-backend tests: backends chosen at run time behind `AnyCache`.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use cache_core::{AnyCache, Cache, testkit};
use cache_memory::MemoryCache;
use cache_redis::RedisCache;
use redis_test_server::RedisServer;
use tokio::sync::Barrier;

/// The run-time factory of the original module, `get_cache(use_redis)`: Redis on the given
/// (private) server, else memory.
fn get_cache(redis: Option<&RedisServer>) -> AnyCache {
    match redis {
        Some(server) => AnyCache::new(
            RedisCache::builder()
                .url(server.url())
                .namespace("cross:")
                .build()
                .unwrap(),
        ),
        None => AnyCache::new(MemoryCache::new()),
    }
}

fn assert_handle<T: Send + Sync + Clone + Debug + 'static>() {}

#[test]
fn any_cache_is_a_send_sync_clone_debug_handle() {
    assert_handle::<AnyCache>();
    assert_handle::<MemoryCache>();
    assert_handle::<RedisCache>();
    let cache = AnyCache::new(MemoryCache::new());
    assert!(format!("{cache:?}").contains("MemoryCache"), "{cache:?}");
    let cache = AnyCache::new(RedisCache::from_url("redis://127.0.0.1:1").unwrap());
    assert!(format!("{cache:?}").contains("RedisCache"), "{cache:?}");
}

/// Generic code must be able to spawn the futures of any `Cache`, `AnyCache` included.
fn spawn_write<C: Cache + Clone + 'static>(
    cache: &C,
    key: String,
) -> tokio::task::JoinHandle<cache_core::Result<()>> {
    let cache = cache.clone();
    tokio::spawn(async move { cache.set(&key, "spawned", None).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_code_spawns_operations_of_any_backend() {
    let memory = MemoryCache::new();
    let any = AnyCache::new(memory.clone());
    spawn_write(&memory, "static".into())
        .await
        .unwrap()
        .unwrap();
    spawn_write(&any, "dynamic".into()).await.unwrap().unwrap();
    assert_eq!(
        memory.get("dynamic").await.unwrap().as_deref(),
        Some("spawned"),
        "AnyCache must write through to its backend"
    );
    assert_eq!(any.get("static").await.unwrap().as_deref(), Some("spawned"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_code_spawns_operations_of_redis_too() {
    let server = RedisServer::start();
    let redis = RedisCache::from_url(server.url()).unwrap();
    let any = AnyCache::new(redis.clone());
    spawn_write(&redis, "static".into()).await.unwrap().unwrap();
    spawn_write(&any, "dynamic".into()).await.unwrap().unwrap();
    assert_eq!(
        redis.get("dynamic").await.unwrap().as_deref(),
        Some("spawned")
    );
    assert_eq!(any.get("static").await.unwrap().as_deref(), Some("spawned"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_backend_passes_the_conformance_suite() {
    testkit::run_all(get_cache(None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_backend_passes_the_conformance_suite() {
    let server = RedisServer::start();
    testkit::run_all(get_cache(Some(&server))).await;
}

/// The original module's test: 300 concurrent writers, nothing lost.
async fn three_hundred_concurrent_writers_lose_nothing(cache: AnyCache) {
    let barrier = Arc::new(Barrier::new(300));
    let writers: Vec<_> = (0..300)
        .map(|i| {
            let (cache, barrier) = (cache.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                cache
                    .set(
                        &format!("writer:{i}"),
                        &format!("value {i}"),
                        Some(Duration::from_secs(60)),
                    )
                    .await
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(60), async {
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
    })
    .await
    .expect("300 writers did not finish within a minute");
    for i in 0..300 {
        assert_eq!(
            cache.get(&format!("writer:{i}")).await.unwrap(),
            Some(format!("value {i}")),
            "{cache:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_concurrent_writers_lose_nothing_in_memory() {
    three_hundred_concurrent_writers_lose_nothing(get_cache(None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_concurrent_writers_lose_nothing_on_redis() {
    let server = RedisServer::start();
    three_hundred_concurrent_writers_lose_nothing(get_cache(Some(&server))).await;
}

#[tokio::test]
async fn closing_any_cache_closes_the_backend_it_wraps() {
    let memory = MemoryCache::new();
    let any = AnyCache::new(memory.clone());
    any.close().await.unwrap();
    assert!(matches!(
        memory.get("k").await,
        Err(cache_core::CacheError::Closed)
    ));

    let server = RedisServer::start();
    let redis = RedisCache::from_url(server.url()).unwrap();
    redis.ping().await.unwrap();
    let any = AnyCache::new(redis.clone());
    any.close().await.unwrap();
    assert!(matches!(
        redis.get("k").await,
        Err(cache_core::CacheError::Closed)
    ));
}
