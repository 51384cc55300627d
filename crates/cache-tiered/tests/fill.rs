//! What a read that misses L1 keeps there.

use std::time::Duration;

use cache_memory::MemoryCache;
use cache_tiered::{Cache, TieredCache};

#[tokio::test(start_paused = true)]
async fn an_l2_hit_is_kept_in_l1_no_longer_than_it_lives_in_l2() {
    let l2 = MemoryCache::new();
    let cache = TieredCache::builder(MemoryCache::new(), l2.clone())
        .l1_ttl(Duration::from_secs(60))
        .build()
        .unwrap();
    // Written by another instance: only L2 has it, with 2 s left.
    l2.set("k", "v", Some(Duration::from_secs(2)))
        .await
        .unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(cache.l1().get("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    let stats = cache.tiered_stats();
    assert_eq!((stats.l1_hits, stats.l2_hits), (1, 1));
    tokio::time::advance(Duration::from_millis(2_001)).await;
    assert_eq!(cache.l1().get("k").await.unwrap(), None);
    assert_eq!(cache.get("k").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn l1_keeps_a_value_at_most_l1_ttl() {
    let l2 = MemoryCache::new();
    let cache = TieredCache::builder(MemoryCache::new(), l2.clone())
        .l1_ttl(Duration::from_secs(5))
        .build()
        .unwrap();
    cache.set("k", "v", None).await.unwrap();
    tokio::time::advance(Duration::from_millis(5_001)).await;
    assert_eq!(cache.l1().get("k").await.unwrap(), None);
    // Still in L2, and back in L1 after the next read.
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(cache.l1().get("k").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test(start_paused = true)]
async fn ttl_jitter_spreads_expiries_below_the_ttl() {
    let l2 = MemoryCache::new();
    let cache = TieredCache::builder(MemoryCache::new(), l2.clone())
        .ttl_jitter(0.5)
        .build()
        .unwrap();
    let mut left = Vec::new();
    for i in 0..200 {
        let key = format!("k{i}");
        cache
            .set(&key, "v", Some(Duration::from_secs(100)))
            .await
            .unwrap();
        match l2.get_bytes_with_ttl(&key).await.unwrap().unwrap().1 {
            cache_tiered::Ttl::Remaining(d) => left.push(d),
            other => panic!("{other:?}"),
        }
    }
    left.sort();
    assert!(left[0] >= Duration::from_secs(50), "{:?}", left[0]);
    assert!(left[199] <= Duration::from_secs(100));
    // Spread, not clumped: the middle half spans a good part of the range.
    assert!(left[150] - left[50] > Duration::from_secs(10), "{left:?}");
    assert!(
        TieredCache::builder(MemoryCache::new(), MemoryCache::new())
            .ttl_jitter(1.0)
            .build()
            .is_err()
    );
}
