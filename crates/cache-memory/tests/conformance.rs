//! The shared conformance suite on `MemoryCache`, directly and through `AnyCache`.

use std::time::Duration;

use cache_core::testkit;
use cache_memory::{AnyCache, MemoryCache};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_cache_passes_the_conformance_suite() {
    testkit::run_all(MemoryCache::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_memory_cache_passes_the_conformance_suite() {
    // The suite never holds more than about 5,000 keys at once: nothing may be evicted, and
    // every insert goes through the capacity bookkeeping.
    let cache = MemoryCache::builder().max_capacity(6_000).build().unwrap();
    testkit::run_all(cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_cache_over_memory_passes_the_conformance_suite() {
    testkit::run_all(AnyCache::new(MemoryCache::new())).await;
}

/// The whole suite again on tokio's paused clock: TTL waits take no real time, and the
/// cache's expiry must follow the same clock the test sleeps on.
#[tokio::test(start_paused = true)]
async fn memory_cache_passes_the_conformance_suite_on_a_paused_clock() {
    testkit::run_all(MemoryCache::new()).await;
}

/// With expired entries kept for `get_stale_bytes`, every other read must still miss them:
/// the suite's expiry checks run against entries the cache still holds.
#[tokio::test(start_paused = true)]
async fn memory_cache_keeping_expired_entries_passes_the_conformance_suite() {
    let cache = MemoryCache::builder()
        .keep_expired_for(Duration::from_secs(3600))
        .build()
        .unwrap();
    testkit::run_all(cache).await;
}
