//! The background sweep: reclaims what nobody reads, and stops when it should.

use std::time::Duration;

use cache_memory::{Cache, MemoryCache};
use tokio::runtime::{Builder, Handle};

fn alive_tasks() -> usize {
    Handle::current().metrics().num_alive_tasks()
}

/// Waits, on tokio's clock, until `done()` holds; panics after `limit`.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// On tokio's paused clock, so that no entry expires while the million are written, however
/// slow the machine; the sweep runs as it would on the real clock.
#[tokio::test(start_paused = true)]
async fn a_million_expired_entries_are_reclaimed_without_any_read() {
    const ENTRIES: usize = 1_000_000;
    let cache = MemoryCache::builder()
        .sweep_interval(Duration::from_millis(10))
        .build()
        .unwrap();
    let ttl = Some(Duration::from_millis(200));
    for i in 0..ENTRIES {
        cache
            .set(&format!("expiring:{i}"), "a value nobody reads again", ttl)
            .await
            .unwrap();
    }
    cache.set("kept", "no ttl", None).await.unwrap();
    assert_eq!(
        cache.entry_count(),
        ENTRIES + 1,
        "entries vanished before their ttl"
    );
    wait_until(
        "reclaiming 1,000,000 expired entries",
        Duration::from_secs(60),
        || cache.entry_count() == 1,
    )
    .await;
    assert_eq!(
        cache.get("kept").await.unwrap().as_deref(),
        Some("no ttl"),
        "the sweep removed a live entry"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn sweep_stops_when_the_cache_is_closed() {
    let cache = MemoryCache::builder()
        .sweep_interval(Duration::from_millis(5))
        .build()
        .unwrap();
    let clone = cache.clone();
    assert_eq!(
        alive_tasks(),
        1,
        "building inside a runtime starts the sweep"
    );
    cache.close().await.unwrap();
    wait_until(
        "the sweep ending after close",
        Duration::from_secs(5),
        || alive_tasks() == 0,
    )
    .await;
    drop(clone);
}

#[tokio::test(flavor = "current_thread")]
async fn sweep_stops_when_the_last_clone_is_dropped() {
    let cache = MemoryCache::builder()
        .sweep_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let clone = cache.clone();
    drop(cache);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        alive_tasks(),
        1,
        "the sweep must run while a clone is alive"
    );
    drop(clone);
    // With an interval of an hour, only the drop itself can wake the task in time.
    wait_until(
        "the sweep ending after the last drop",
        Duration::from_secs(5),
        || alive_tasks() == 0,
    )
    .await;
}

/// In a new runtime with no task yet, the first `set` must start the sweep, which must then
/// reclaim an expired entry without any read.
fn assert_first_set_starts_the_sweep(cache: &MemoryCache) {
    let runtime = Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        assert_eq!(alive_tasks(), 0, "no sweep may run in this runtime yet");
        cache
            .set("k", "v", Some(Duration::from_millis(10)))
            .await
            .unwrap();
        assert_eq!(
            alive_tasks(),
            1,
            "the first set inside a runtime starts the sweep"
        );
        wait_until(
            "the sweep reclaiming an expired entry",
            Duration::from_secs(5),
            || cache.entry_count() == 0,
        )
        .await;
    });
}

#[test]
fn cache_built_outside_a_runtime_starts_its_sweep_on_the_first_set() {
    let cache = MemoryCache::builder()
        .sweep_interval(Duration::from_millis(5))
        .build()
        .unwrap();
    assert_first_set_starts_the_sweep(&cache);
}

#[test]
fn sweep_restarts_in_a_new_runtime_when_the_old_one_shuts_down() {
    let first = Builder::new_current_thread().enable_all().build().unwrap();
    let cache = first.block_on(async {
        let cache = MemoryCache::builder()
            .sweep_interval(Duration::from_millis(5))
            .build()
            .unwrap();
        assert_eq!(
            alive_tasks(),
            1,
            "building inside a runtime starts the sweep"
        );
        cache
    });
    drop(first);
    assert_first_set_starts_the_sweep(&cache);
}
