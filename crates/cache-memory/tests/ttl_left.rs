//! `get_bytes_with_ttl`: the value with the time it has left.

use std::time::Duration;

use cache_memory::{Cache, MemoryCache, Ttl};

#[tokio::test(start_paused = true)]
async fn the_time_left_counts_down_and_no_ttl_is_never() {
    let cache = MemoryCache::new();
    cache
        .set("k", "v", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    cache.set("forever", "v", None).await.unwrap();
    tokio::time::advance(Duration::from_secs(4)).await;
    let (value, ttl) = cache.get_bytes_with_ttl("k").await.unwrap().unwrap();
    assert_eq!(&value[..], b"v");
    assert_eq!(ttl, Ttl::Remaining(Duration::from_secs(6)));
    let (_, ttl) = cache.get_bytes_with_ttl("forever").await.unwrap().unwrap();
    assert_eq!(ttl, Ttl::Never);
    assert_eq!(cache.get_bytes_with_ttl("missing").await.unwrap(), None);
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(cache.get_bytes_with_ttl("k").await.unwrap(), None);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (2, 2));
}

#[tokio::test(start_paused = true)]
async fn an_idle_timeout_shortens_the_time_left() {
    let cache = MemoryCache::builder()
        .time_to_idle(Duration::from_secs(3))
        .build()
        .unwrap();
    cache
        .set("k", "v", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    let (_, ttl) = cache.get_bytes_with_ttl("k").await.unwrap().unwrap();
    assert_eq!(ttl, Ttl::Remaining(Duration::from_secs(3)));
    cache.set("no-ttl", "v", None).await.unwrap();
    let (_, ttl) = cache.get_bytes_with_ttl("no-ttl").await.unwrap().unwrap();
    assert_eq!(ttl, Ttl::Remaining(Duration::from_secs(3)));
}
