//! The shared conformance suite on `TieredCache`: memory over memory with the in-process
//! backplane, directly and through `AnyCache`.

use cache_core::testkit;
use cache_memory::MemoryCache;
use cache_tiered::{AnyCache, InProcessBackplane, TieredCache};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_over_memory_passes_the_conformance_suite() {
    let cache = TieredCache::builder(MemoryCache::new(), MemoryCache::new())
        .backplane(InProcessBackplane::new())
        .build()
        .unwrap();
    testkit::run_all(cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_l1_over_memory_passes_through_any_cache() {
    let l1 = MemoryCache::builder().max_capacity(1_000).build().unwrap();
    let cache = TieredCache::builder(l1, MemoryCache::new())
        .backplane(InProcessBackplane::new())
        .build()
        .unwrap();
    testkit::run_all(AnyCache::new(cache)).await;
}
