//! `keep_expired_for`: expired entries kept for `get_stale_bytes` only, for as long as set,
//! on tokio's paused clock so that every age is exact.

use std::time::Duration;

use cache_memory::{AnyCache, Cache, MemoryCache, MemoryCacheBuilder};
use tokio::time::{advance, sleep};

const TTL: Duration = Duration::from_secs(10);
const KEEP: Duration = Duration::from_secs(60);

/// A builder whose sweep never runs during a test, so only reads and writes reclaim.
fn without_sweep() -> MemoryCacheBuilder {
    MemoryCache::builder().sweep_interval(Duration::from_secs(24 * 3600))
}

/// A cache keeping expired entries for [`KEEP`], without sweep.
fn keeping() -> MemoryCache {
    without_sweep().keep_expired_for(KEEP).build().unwrap()
}

/// `get_stale_bytes` of `key`, its value as a string.
async fn stale(cache: &impl Cache, key: &str) -> Option<(String, Duration)> {
    cache
        .get_stale_bytes(key)
        .await
        .unwrap()
        .map(|(value, ago)| (String::from_utf8(value.to_vec()).unwrap(), ago))
}

fn kept(value: &str, ago: Duration) -> Option<(String, Duration)> {
    Some((value.to_owned(), ago))
}

/// Every read other than `get_stale_bytes` finds `key` missing.
async fn assert_invisible(cache: &MemoryCache, key: &str) {
    assert_eq!(cache.get(key).await.unwrap(), None, "get of {key}");
    assert_eq!(cache.get_bytes(key).await.unwrap(), None, "get_bytes");
    assert_eq!(cache.get_bytes_with_ttl(key).await.unwrap(), None);
    assert_eq!(cache.get_many(&[key]).await.unwrap(), vec![None]);
    assert_eq!(cache.get_many_bytes(&[key]).await.unwrap(), vec![None]);
}

#[tokio::test(start_paused = true)]
async fn an_expired_entry_is_returned_by_get_stale_bytes_only_with_its_age() {
    let cache = keeping();
    assert_eq!(cache.stale_retention(), KEEP);
    cache.set("k", "v", Some(TTL)).await.unwrap();
    advance(TTL - Duration::from_nanos(1)).await;
    assert_eq!(stale(&cache, "k").await, kept("v", Duration::ZERO), "live");
    advance(Duration::from_nanos(1) + Duration::from_secs(3)).await;
    assert_invisible(&cache, "k").await;
    assert_eq!(stale(&cache, "k").await, kept("v", Duration::from_secs(3)));
    assert_eq!(cache.entry_count(), 1, "a read removed a kept entry");
    assert_eq!(cache.stats().expirations, 0);
}

#[tokio::test(start_paused = true)]
async fn a_read_removes_a_kept_entry_once_its_retention_passes() {
    let cache = keeping();
    cache.set("k", "v", Some(TTL)).await.unwrap();
    advance(TTL + KEEP - Duration::from_nanos(1)).await;
    assert_eq!(
        stale(&cache, "k").await,
        kept("v", KEEP - Duration::from_nanos(1)),
        "dropped before its retention passed"
    );
    advance(Duration::from_nanos(1)).await;
    assert_eq!(stale(&cache, "k").await, None, "kept past its retention");
    assert_eq!(cache.entry_count(), 0);
    assert_eq!(cache.stats().expirations, 1);

    // Found by another read, the same.
    cache.set("k", "v", Some(TTL)).await.unwrap();
    advance(TTL + KEEP).await;
    assert_eq!(cache.get("k").await.unwrap(), None);
    assert_eq!(
        cache.entry_count(),
        0,
        "get left an entry past its retention"
    );
    assert_eq!(cache.stats().expirations, 2);
}

#[tokio::test(start_paused = true)]
async fn the_sweep_reclaims_a_kept_entry_when_its_retention_passes_not_before() {
    let cache = MemoryCache::builder()
        .sweep_interval(Duration::from_secs(1))
        .keep_expired_for(Duration::from_secs(5))
        .build()
        .unwrap();
    cache
        .set("k", "v", Some(Duration::from_secs(2)))
        .await
        .unwrap();
    cache.set("forever", "v", None).await.unwrap();
    // The sweep has run at 1 s, 2 s, ... 6 s; the retention ends at 7 s.
    sleep(Duration::from_millis(6_500)).await;
    assert_eq!(cache.entry_count(), 2, "the sweep reclaimed a kept entry");
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        cache.entry_count(),
        1,
        "the sweep left an entry past retention"
    );
    assert_eq!(cache.stats().expirations, 1);
    assert_eq!(cache.get("forever").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test(start_paused = true)]
async fn an_idle_entry_is_kept_and_a_stale_read_does_not_renew_it() {
    const IDLE: Duration = Duration::from_secs(10);
    let cache = without_sweep()
        .time_to_idle(IDLE)
        .keep_expired_for(KEEP)
        .build()
        .unwrap();
    cache.set("k", "v", None).await.unwrap();
    advance(IDLE + Duration::from_secs(1)).await;
    assert_invisible(&cache, "k").await;
    assert_eq!(stale(&cache, "k").await, kept("v", Duration::from_secs(1)));
    advance(Duration::from_secs(5)).await;
    assert_eq!(
        stale(&cache, "k").await,
        kept("v", Duration::from_secs(6)),
        "a stale read renewed the idle time"
    );
    assert_eq!(
        cache.get("k").await.unwrap(),
        None,
        "a stale read revived it"
    );
    advance(KEEP - Duration::from_secs(6)).await;
    assert_eq!(stale(&cache, "k").await, None, "kept past its retention");
    assert_eq!(cache.entry_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_set_over_a_kept_entry_replaces_it() {
    let cache = keeping();
    cache.set("k", "old", Some(TTL)).await.unwrap();
    advance(TTL).await;
    cache.set("k", "new", Some(TTL)).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("new"));
    assert_eq!(stale(&cache, "k").await, kept("new", Duration::ZERO));
    assert_eq!(cache.entry_count(), 1);
    // The new entry expires at its own TTL, and is kept from then on.
    advance(TTL + Duration::from_secs(1)).await;
    assert_eq!(
        stale(&cache, "k").await,
        kept("new", Duration::from_secs(1))
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_cache_evicts_a_kept_expired_entry_before_a_live_one() {
    let overhead = MemoryCache::ENTRY_OVERHEAD;
    for (bound, builder) in [
        ("max_capacity", without_sweep().max_capacity(3)),
        // Keys and values of 5 bytes: room for three entries, not four.
        ("max_bytes", without_sweep().max_bytes(3 * (overhead + 5))),
    ] {
        let cache = builder.keep_expired_for(KEEP).build().unwrap();
        // The live entries come first: the policy alone would evict "live1".
        cache.set("live1", "", None).await.unwrap();
        cache.set("live2", "", None).await.unwrap();
        cache.set("stale", "", Some(TTL)).await.unwrap();
        advance(TTL).await;
        assert_eq!(cache.entry_count(), 3, "{bound}: the kept entry is held");
        if let Some(bytes) = cache.weighted_size() {
            assert_eq!(bytes, 3 * (overhead + 5), "{bound}: and weighed");
        }
        cache.set("live3", "", None).await.unwrap();
        assert_eq!(stale(&cache, "stale").await, None, "{bound}: stale kept");
        for key in ["live1", "live2", "live3"] {
            assert!(
                cache.get(key).await.unwrap().is_some(),
                "{bound}: {key} evicted while an expired entry remained"
            );
        }
        let stats = cache.stats();
        assert_eq!((stats.expirations, stats.evictions), (1, 0), "{bound}");
    }
}

#[tokio::test(start_paused = true)]
async fn delete_delete_many_and_clear_remove_kept_entries() {
    let cache = keeping();
    for key in ["a", "b", "c"] {
        cache.set(key, "v", Some(TTL)).await.unwrap();
    }
    advance(TTL).await;
    cache.delete("a").await.unwrap();
    assert_eq!(stale(&cache, "a").await, None, "delete left a kept entry");
    cache.delete_many(&["b"]).await.unwrap();
    assert_eq!(stale(&cache, "b").await, None, "delete_many left it");
    assert_eq!(cache.entry_count(), 1);
    cache.clear().await.unwrap();
    assert_eq!(stale(&cache, "c").await, None, "clear left it");
    assert_eq!(cache.entry_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn without_keep_expired_for_get_stale_bytes_returns_live_entries_only() {
    let cache = without_sweep().build().unwrap();
    assert_eq!(cache.stale_retention(), Duration::ZERO);
    cache.set("k", "v", Some(TTL)).await.unwrap();
    assert_eq!(stale(&cache, "k").await, kept("v", Duration::ZERO));
    advance(TTL).await;
    assert_eq!(
        stale(&cache, "k").await,
        None,
        "an expired entry was returned"
    );
    assert_eq!(cache.entry_count(), 0, "the read did not reclaim it");
    assert_eq!(cache.stats().expirations, 1);
}

#[tokio::test(start_paused = true)]
async fn any_cache_forwards_the_retention_and_stale_reads() {
    let any = AnyCache::new(keeping());
    assert_eq!(any.stale_retention(), KEEP);
    any.set("k", "v", Some(TTL)).await.unwrap();
    advance(TTL + Duration::from_secs(2)).await;
    assert_eq!(any.get("k").await.unwrap(), None);
    assert_eq!(stale(&any, "k").await, kept("v", Duration::from_secs(2)));
}

#[tokio::test(start_paused = true)]
async fn stats_count_a_stale_read_as_get_bytes_would() {
    let cache = keeping();
    cache.set("k", "v", Some(TTL)).await.unwrap();
    stale(&cache, "k").await.unwrap();
    stale(&cache, "missing").await;
    advance(TTL).await;
    stale(&cache, "k").await.unwrap();
    let stats = cache.stats();
    // A hit for the live value; misses for the missing key and the kept expired value.
    assert_eq!((stats.hits, stats.misses, stats.expirations), (1, 2, 0));
}

#[tokio::test(start_paused = true)]
async fn a_retention_too_long_for_the_clock_keeps_entries_without_panicking() {
    let beyond_the_clock = Duration::from_nanos(u64::MAX) + Duration::from_nanos(1);
    for keep in [Duration::MAX, beyond_the_clock] {
        let cache = without_sweep().keep_expired_for(keep).build().unwrap();
        assert_eq!(cache.stale_retention(), Duration::MAX, "{keep:?}");
        cache.set("k", "v", Some(TTL)).await.unwrap();
        let decade = Duration::from_secs(10 * 365 * 24 * 3600);
        advance(decade).await;
        assert_eq!(
            stale(&cache, "k").await,
            kept("v", decade - TTL),
            "{keep:?}"
        );
        assert_eq!(cache.get("k").await.unwrap(), None);
    }
    // Below the clock's range, the retention is what was set.
    let centuries = Duration::from_secs(400 * 365 * 24 * 3600);
    let cache = without_sweep().keep_expired_for(centuries).build().unwrap();
    assert_eq!(cache.stale_retention(), centuries);
}
