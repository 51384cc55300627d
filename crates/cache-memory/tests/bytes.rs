//! `max_bytes`: the weight of keys, values and the per-entry overhead stays under the bound.

use std::sync::Arc;
use std::time::Duration;

use cache_memory::{Bytes, Cache, CacheError, MemoryCache};
use tokio::sync::Barrier;
use tokio::time::timeout;

const OVERHEAD: usize = MemoryCache::ENTRY_OVERHEAD;

#[tokio::test]
async fn weighted_size_counts_keys_values_and_the_entry_overhead() {
    let cache = MemoryCache::builder().max_bytes(1 << 20).build().unwrap();
    assert_eq!(cache.weighted_size(), Some(0));
    cache.set("key", "12345", None).await.unwrap();
    assert_eq!(cache.weighted_size(), Some(3 + 5 + OVERHEAD));
    // An overwrite replaces the value's weight.
    cache.set("key", "1", None).await.unwrap();
    assert_eq!(cache.weighted_size(), Some(3 + 1 + OVERHEAD));
    cache
        .set_bytes("other", Bytes::from_static(&[0; 100]), None)
        .await
        .unwrap();
    assert_eq!(cache.weighted_size(), Some(4 + 2 * OVERHEAD + 5 + 100));
    cache.delete("key").await.unwrap();
    assert_eq!(cache.weighted_size(), Some(5 + 100 + OVERHEAD));
    cache.clear().await.unwrap();
    assert_eq!(cache.weighted_size(), Some(0));
    assert_eq!(MemoryCache::new().weighted_size(), None);
}

#[tokio::test]
async fn an_entry_heavier_than_max_bytes_is_too_large_and_changes_nothing() {
    let cache = MemoryCache::builder().max_bytes(200).build().unwrap();
    cache.set("k", "small", None).await.unwrap();
    let big = "x".repeat(200);
    let err = cache.set("k", &big, None).await.unwrap_err();
    assert!(
        matches!(err, CacheError::TooLarge { limit: 200, .. }),
        "{err:?}"
    );
    let err = cache
        .set_many(&[("a", "1"), ("b", big.as_str())], None)
        .await
        .unwrap_err();
    assert!(matches!(err, CacheError::TooLarge { .. }), "{err:?}");
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("small"));
    assert_eq!(
        cache.get("a").await.unwrap(),
        None,
        "a refused batch stored a"
    );
    assert_eq!(cache.weighted_size(), Some(1 + 5 + OVERHEAD));
}

#[test]
fn max_bytes_below_one_entry_is_a_configuration_error() {
    let err = MemoryCache::builder()
        .max_bytes(OVERHEAD - 1)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("max_bytes"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn writes_evict_until_the_new_entry_fits_and_it_is_readable() {
    const MAX: usize = 100 * (OVERHEAD + 20);
    let cache = MemoryCache::builder().max_bytes(MAX).build().unwrap();
    for i in 0..2_000 {
        let key = format!("k{i:04}");
        // Values of 0 to 400 bytes: some writes need several evictions.
        let value = "v".repeat((i * 37) % 400);
        cache.set(&key, &value, None).await.unwrap();
        assert_eq!(cache.get(&key).await.unwrap(), Some(value));
        let held = cache.weighted_size().unwrap();
        assert!(held <= MAX, "{held} bytes held under a bound of {MAX}");
    }
    assert!(cache.stats().evictions > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_bounds_hold_under_eight_concurrent_writers() {
    const WRITERS: usize = 8;
    const MAX_BYTES: usize = 64 * 1024;
    const CAPACITY: usize = 400;
    let cache = MemoryCache::builder()
        .max_capacity(CAPACITY)
        .max_bytes(MAX_BYTES)
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (cache, barrier) = (cache.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                for i in 0..5_000usize {
                    let key = format!("w{w}:{}", i % 700);
                    let value = "v".repeat((i * 31 + w) % 300);
                    let ttl = (i % 5 == 0).then_some(Duration::from_millis(2));
                    cache.set(&key, &value, ttl).await.unwrap();
                    let bytes = cache.weighted_size().unwrap();
                    assert!(bytes <= MAX_BYTES, "{bytes} bytes held");
                    assert!(cache.entry_count() <= CAPACITY);
                    if i % 11 == 0 {
                        cache
                            .delete(&format!("w{w}:{}", i / 2 % 700))
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    timeout(Duration::from_secs(120), async {
        for writer in writers {
            writer.await.unwrap();
        }
    })
    .await
    .expect("writers deadlocked");
    // Reads remove the expired entries; what is left must weigh what the counter says.
    let mut weight = 0;
    for w in 0..WRITERS {
        for k in 0..700 {
            let key = format!("w{w}:{k}");
            if let Some(value) = cache.get(&key).await.unwrap() {
                weight += key.len() + value.len() + OVERHEAD;
            }
        }
    }
    assert_eq!(cache.weighted_size(), Some(weight), "the weight drifted");
}
