//! `max_capacity`: the bound holds under concurrency, expired entries go first, and entries
//! read recently survive.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use cache_memory::{Cache, MemoryCache};
use tokio::sync::Barrier;
use tokio::time::{advance, timeout};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn entry_count_never_exceeds_capacity_under_eight_concurrent_writers() {
    const CAPACITY: usize = 1_000;
    const WRITERS: usize = 8;
    const KEYS_PER_WRITER: usize = 20_000;
    let cache = MemoryCache::builder()
        .max_capacity(CAPACITY)
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(WRITERS + 1));
    let writing = Arc::new(AtomicBool::new(true));
    let highest = Arc::new(AtomicUsize::new(0));

    let monitor = {
        let (cache, barrier, writing, highest) = (
            cache.clone(),
            Arc::clone(&barrier),
            Arc::clone(&writing),
            Arc::clone(&highest),
        );
        tokio::spawn(async move {
            barrier.wait().await;
            while writing.load(Ordering::Acquire) {
                highest.fetch_max(cache.entry_count(), Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (cache, barrier) = (cache.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                for i in 0..KEYS_PER_WRITER {
                    let key = format!("w{w}:{i}");
                    let ttl = (i % 3 == 0).then_some(Duration::from_secs(60));
                    cache.set(&key, "value", ttl).await.unwrap();
                    if i % 7 == 0 {
                        cache.delete(&format!("w{w}:{}", i / 2)).await.unwrap();
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
    writing.store(false, Ordering::Release);
    monitor.await.unwrap();

    assert!(
        highest.load(Ordering::Relaxed) <= CAPACITY,
        "entry count reached {}",
        highest.load(Ordering::Relaxed)
    );
    let mut readable = 0;
    for w in 0..WRITERS {
        for i in 0..KEYS_PER_WRITER {
            if let Some(value) = cache.get(&format!("w{w}:{i}")).await.unwrap() {
                assert_eq!(value, "value");
                readable += 1;
            }
        }
    }
    assert!(
        readable <= CAPACITY,
        "{readable} entries readable in a cache of capacity {CAPACITY}"
    );
    assert_eq!(
        readable,
        cache.entry_count(),
        "the entry count drifted from the entries held"
    );
    assert!(
        readable > CAPACITY / 2,
        "eviction removed far more than needed: {readable} left"
    );
}

#[tokio::test(start_paused = true)]
async fn expired_entries_are_evicted_before_live_ones() {
    let cache = MemoryCache::builder()
        .max_capacity(100)
        .sweep_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for i in 0..50 {
        cache
            .set(&format!("expiring:{i}"), "v", Some(Duration::from_secs(1)))
            .await
            .unwrap();
        cache.set(&format!("live:{i}"), "v", None).await.unwrap();
    }
    advance(Duration::from_secs(2)).await;
    for i in 0..50 {
        cache.set(&format!("new:{i}"), "v", None).await.unwrap();
    }
    assert_eq!(cache.entry_count(), 100);
    for i in 0..50 {
        assert!(
            cache.get(&format!("live:{i}")).await.unwrap().is_some(),
            "live:{i} was evicted while expired entries remained"
        );
        assert!(
            cache.get(&format!("new:{i}")).await.unwrap().is_some(),
            "new:{i} was evicted"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn recently_read_entries_survive_eviction() {
    const CAPACITY: usize = 1_000;
    let cache = MemoryCache::builder()
        .max_capacity(CAPACITY)
        .build()
        .unwrap();
    for i in 0..CAPACITY {
        cache.set(&format!("k{i}"), "v", None).await.unwrap();
    }
    let hot: Vec<String> = (0..50).map(|i| format!("k{}", i * 20)).collect();
    for batch in 0..200 {
        for k in &hot {
            assert!(
                cache.get(k).await.unwrap().is_some(),
                "hot key {k} was evicted before batch {batch}"
            );
        }
        for i in 0..10 {
            cache
                .set(&format!("cold:{batch}:{i}"), "v", None)
                .await
                .unwrap();
        }
    }
    assert_eq!(cache.entry_count(), CAPACITY);
}

#[tokio::test]
async fn capacity_of_one_keeps_the_latest_entry() {
    let cache = MemoryCache::builder().max_capacity(1).build().unwrap();
    for i in 0..100 {
        cache
            .set(&format!("k{i}"), &i.to_string(), None)
            .await
            .unwrap();
        assert_eq!(
            cache.get(&format!("k{i}")).await.unwrap(),
            Some(i.to_string())
        );
        assert_eq!(cache.entry_count(), 1);
    }
}

#[test]
fn zero_capacity_and_zero_sweep_interval_are_configuration_errors() {
    let err = MemoryCache::builder().max_capacity(0).build().unwrap_err();
    assert!(err.to_string().contains("max_capacity"), "{err}");
    let err = MemoryCache::builder()
        .sweep_interval(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("sweep_interval"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn stats_count_evictions_and_expirations_apart() {
    let cache = MemoryCache::builder()
        .max_capacity(10)
        .sweep_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for i in 0..4 {
        cache
            .set(&format!("expiring:{i}"), "v", Some(Duration::from_secs(1)))
            .await
            .unwrap();
    }
    for i in 0..6 {
        cache.set(&format!("live:{i}"), "v", None).await.unwrap();
    }
    advance(Duration::from_secs(2)).await;
    // A read of an expired entry: a miss, and one expiration.
    assert_eq!(cache.get("expiring:0").await.unwrap(), None);
    // Nine new keys into a full cache: the three expired entries go first, then six evictions.
    for i in 0..9 {
        cache.set(&format!("new:{i}"), "v", None).await.unwrap();
    }
    let stats = cache.stats();
    assert_eq!(stats.expirations, 4, "{stats:?}");
    assert_eq!(stats.evictions, 5, "{stats:?}");
    assert_eq!(stats.misses, 1, "{stats:?}");
    assert_eq!(stats.sets, 19, "{stats:?}");
    assert_eq!((stats.errors, stats.timeouts), (0, 0), "{stats:?}");
    assert_eq!(cache.entry_count(), 10);
}

#[tokio::test]
async fn batches_on_a_closed_cache_are_closed_even_when_empty() {
    let cache = MemoryCache::new();
    cache.close().await.unwrap();
    let none: [&str; 0] = [];
    let no_entries: [(&str, &str); 0] = [];
    assert!(matches!(
        cache.get_many(&none).await,
        Err(cache_memory::CacheError::Closed)
    ));
    assert!(matches!(
        cache.set_many(&no_entries, None).await,
        Err(cache_memory::CacheError::Closed)
    ));
    assert!(matches!(
        cache.set_many(&[("k", "v")], Some(Duration::ZERO)).await,
        Err(cache_memory::CacheError::Closed)
    ));
    assert!(matches!(
        cache.delete_many(&none).await,
        Err(cache_memory::CacheError::Closed)
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn a_hot_set_survives_a_one_time_scan_of_ten_times_the_capacity() {
    const CAPACITY: usize = 1_000;
    let cache = MemoryCache::builder()
        .max_capacity(CAPACITY)
        .build()
        .unwrap();
    let hot: Vec<String> = (0..CAPACITY / 2).map(|i| format!("hot:{i}")).collect();
    for key in &hot {
        cache.set(key, "v", None).await.unwrap();
    }
    // Read twice: the hot set has proved useful before the scan starts.
    for _ in 0..2 {
        for key in &hot {
            assert!(cache.get(key).await.unwrap().is_some(), "{key}");
        }
    }
    for i in 0..10 * CAPACITY {
        let key = format!("scan:{i}");
        if cache.get(&key).await.unwrap().is_none() {
            cache.set(&key, "v", None).await.unwrap();
        }
    }
    let mut survivors = 0;
    for key in &hot {
        if cache.get(key).await.unwrap().is_some() {
            survivors += 1;
        }
    }
    assert_eq!(
        survivors,
        hot.len(),
        "a scan of keys read once pushed out keys read often: {survivors} of {} left",
        hot.len()
    );
    assert_eq!(cache.entry_count(), CAPACITY);
    let stats = cache.stats();
    assert!(
        stats.rejections > 0 && stats.rejections <= stats.evictions,
        "{stats:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_new_key_is_readable_right_after_its_set_even_in_a_full_cache() {
    const CAPACITY: usize = 100;
    let cache = MemoryCache::builder()
        .max_capacity(CAPACITY)
        .build()
        .unwrap();
    for i in 0..CAPACITY {
        let key = format!("k{i}");
        cache.set(&key, "v", None).await.unwrap();
        for _ in 0..3 {
            assert!(cache.get(&key).await.unwrap().is_some());
        }
    }
    // Every resident key was read: each new key is the least useful entry, and still stored.
    for i in 0..1_000 {
        let key = format!("new:{i}");
        cache.set(&key, &i.to_string(), None).await.unwrap();
        assert_eq!(cache.get(&key).await.unwrap(), Some(i.to_string()));
        assert!(cache.entry_count() <= CAPACITY);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_key_evicted_unread_and_written_again_is_kept_over_new_keys() {
    const CAPACITY: usize = 1_000;
    let cache = MemoryCache::builder()
        .max_capacity(CAPACITY)
        .build()
        .unwrap();
    // A loop over 1.2x the capacity, written on each miss: a FIFO or LRU cache misses every
    // access; the ghost of keys evicted unread admits the second pass to the protected queue.
    let keys: Vec<String> = (0..CAPACITY * 6 / 5).map(|i| format!("loop:{i}")).collect();
    let mut hits = 0;
    for pass in 0..10 {
        for key in &keys {
            if cache.get(key).await.unwrap().is_some() {
                if pass > 2 {
                    hits += 1;
                }
            } else {
                cache.set(key, "v", None).await.unwrap();
            }
        }
    }
    let accesses = 7 * keys.len();
    assert!(
        hits * 2 > accesses,
        "{hits} hits of {accesses} accesses on a loop a little larger than the cache"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_loop_a_little_longer_than_the_cache_keeps_a_fixed_part_resident() {
    const CAPACITY: usize = 5_000;
    let cache = MemoryCache::builder()
        .max_capacity(CAPACITY)
        .build()
        .unwrap();
    // Every key of the loop is read as often as every other: keys back from the ghost must
    // not displace the protected ones, or the resident part churns in the loop's order. The
    // best any policy does is keep the capacity's share: 5 hits in 6.
    let keys: Vec<String> = (0..CAPACITY * 6 / 5).map(|i| format!("loop:{i}")).collect();
    let mut hits = 0;
    for pass in 0..20 {
        for key in &keys {
            if cache.get(key).await.unwrap().is_some() {
                if pass >= 10 {
                    hits += 1;
                }
            } else {
                cache.set(key, "v", None).await.unwrap();
            }
        }
    }
    let accesses = 10 * keys.len();
    assert!(
        hits * 4 > accesses * 3,
        "{hits} hits of {accesses} accesses on a loop of 1.2x the capacity"
    );
}
