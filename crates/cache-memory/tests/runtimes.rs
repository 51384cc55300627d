//! The cache on every kind of executor: tokio runtimes built without timers, and no runtime
//! at all. It must work there, never panic, and still reclaim expired entries.
//!
//! In a binary of its own: a panic hook counts every panic of the process, so a panic caught
//! by tokio (in a spawned task) fails the test too.

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_memory::{Cache, CacheExt, MemoryCache};

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// Every operation, then expired entries reclaimed by writes alone (no read of them, and
/// no sweep can run here). Waits on the real clock: there are no tokio timers.
async fn works_without_timers(cache: &MemoryCache) {
    cache
        .set("k", "v", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    cache
        .set_many(&[("a", "1"), ("b", "2")], None)
        .await
        .unwrap();
    assert_eq!(
        cache.get_many(&["a", "b", "c"]).await.unwrap(),
        [Some("1".to_owned()), Some("2".to_owned()), None]
    );
    let loaded = cache
        .get_or_set_with("loaded", None, || async {
            Ok::<_, std::io::Error>("x".into())
        })
        .await
        .unwrap();
    assert_eq!(loaded, "x");
    cache.delete("k").await.unwrap();
    cache.clear().await.unwrap();
    assert_eq!(cache.entry_count(), 0);

    const EXPIRING: usize = 1_000;
    for i in 0..EXPIRING {
        cache
            .set(
                &format!("expiring:{i}"),
                "v",
                Some(Duration::from_millis(1)),
            )
            .await
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    // Writes of other keys, overwritten in a loop, until they alone remain; each write
    // reclaims a few expired entries of its shard, so this takes a few thousand writes.
    let mut writes = 0;
    while writes < 100 || cache.entry_count() > 100 {
        assert!(
            writes < 1_000_000,
            "writes left {} entries, {EXPIRING} of which expired",
            cache.entry_count()
        );
        cache
            .set(&format!("kept:{}", writes % 100), "v", None)
            .await
            .unwrap();
        writes += 1;
    }
    for i in 0..100 {
        assert!(cache.get(&format!("kept:{i}")).await.unwrap().is_some());
    }
    cache.close().await.unwrap();
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic happened");
}

#[test]
fn a_current_thread_runtime_without_timers_never_panics() {
    count_panics();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cache = MemoryCache::new();
        let bounded = MemoryCache::builder().max_capacity(500).build().unwrap();
        works_without_timers(&cache).await;
        works_without_timers(&bounded).await;
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            0,
            "a sweep task was started on a runtime without timers"
        );
    });
}

#[test]
fn a_multi_thread_runtime_without_timers_never_panics() {
    count_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                tokio::spawn(async {
                    let cache = MemoryCache::new();
                    works_without_timers(&cache).await;
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn another_executor_without_tokio_never_panics() {
    count_panics();
    futures_executor::block_on(async {
        let cache = MemoryCache::new();
        works_without_timers(&cache).await;
    });
}

/// A cache first written on a runtime without timers still starts its sweep on one that has
/// them.
#[test]
fn the_sweep_starts_once_a_runtime_with_timers_writes() {
    count_panics();
    let cache = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async {
            let cache = MemoryCache::builder()
                .sweep_interval(Duration::from_millis(5))
                .build()
                .unwrap();
            cache
                .set("k", "v", Some(Duration::from_millis(1)))
                .await
                .unwrap();
            cache
        });
    let timers = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    timers.block_on(async {
        cache
            .set("later", "v", Some(Duration::from_millis(1)))
            .await
            .unwrap();
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            1,
            "the write on a runtime with timers starts the sweep"
        );
        let start = std::time::Instant::now();
        while cache.entry_count() > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the sweep did not reclaim the expired entries"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic happened");
}
