//! The shared conformance suite on `RedisCache`, with and without a namespace, and through
//! `AnyCache`, each on a private redis-server.

use cache_core::testkit;
use cache_redis::{AnyCache, RedisCache};
use redis_test_server::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_redis_cache_passes_the_conformance_suite() {
    let server = RedisServer::start();
    let cache = RedisCache::builder()
        .url(server.url())
        .namespace("conformance:")
        .build()
        .unwrap();
    testkit::run_all(cache).await;
}

/// Without a namespace `clear` is `FLUSHDB`: the suite's clear check covers that path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cache_without_namespace_passes_the_conformance_suite() {
    let server = RedisServer::start();
    testkit::run_all(RedisCache::from_url(server.url()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_cache_over_redis_passes_the_conformance_suite() {
    let server = RedisServer::start();
    let cache = RedisCache::builder()
        .url(server.url())
        .namespace("any:")
        .pool_size(1)
        .build()
        .unwrap();
    testkit::run_all(AnyCache::new(cache)).await;
}
