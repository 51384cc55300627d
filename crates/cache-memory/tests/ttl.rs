//! TTL edge cases, exact to the nanosecond on tokio's paused clock, plus a few on the real
//! clock to prove the wiring.

use std::time::Duration;

use cache_memory::{Cache, CacheError, MemoryCache};
use tokio::time::advance;

/// A cache whose sweep never runs during a test, so only the read path can expire entries.
fn without_sweep() -> MemoryCache {
    MemoryCache::builder()
        .sweep_interval(Duration::from_secs(24 * 3600))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn entry_expires_exactly_when_its_ttl_passes() {
    let cache = without_sweep();
    cache
        .set("k", "v", Some(Duration::from_millis(250)))
        .await
        .unwrap();
    advance(Duration::from_millis(250) - Duration::from_nanos(1)).await;
    assert_eq!(
        cache.get("k").await.unwrap().as_deref(),
        Some("v"),
        "expired 1 ns early"
    );
    advance(Duration::from_nanos(1)).await;
    assert_eq!(
        cache.get("k").await.unwrap(),
        None,
        "returned when its ttl had passed"
    );
}

#[tokio::test(start_paused = true)]
async fn one_nanosecond_and_999_microsecond_ttls_last_one_millisecond() {
    let cache = without_sweep();
    for ttl in [Duration::from_nanos(1), Duration::from_micros(999)] {
        cache.set("k", "v", Some(ttl)).await.unwrap();
        advance(Duration::from_micros(999)).await;
        assert_eq!(
            cache.get("k").await.unwrap().as_deref(),
            Some("v"),
            "ttl {ttl:?} was not rounded up to 1 ms"
        );
        advance(Duration::from_micros(1)).await;
        assert_eq!(
            cache.get("k").await.unwrap(),
            None,
            "ttl {ttl:?} lasted longer than 1 ms"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn zero_and_overflowing_ttls_are_errors_that_change_nothing() {
    let cache = without_sweep();
    cache
        .set("k", "old", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    for ttl in [
        Duration::ZERO,
        Duration::MAX,
        Duration::from_secs(600 * 365 * 24 * 3600),
    ] {
        let err = cache.set("k", "new", Some(ttl)).await.unwrap_err();
        assert!(
            matches!(err, CacheError::InvalidTtl { ttl: t, .. } if t == ttl),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("invalid ttl"), "{err}");
    }
    advance(Duration::from_secs(10) - Duration::from_nanos(1)).await;
    assert_eq!(
        cache.get("k").await.unwrap().as_deref(),
        Some("old"),
        "a rejected set changed the value or its ttl"
    );
    advance(Duration::from_nanos(1)).await;
    assert_eq!(
        cache.get("k").await.unwrap(),
        None,
        "a rejected set changed the ttl"
    );
}

#[tokio::test(start_paused = true)]
async fn a_century_long_ttl_is_accepted() {
    let cache = without_sweep();
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    cache.set("k", "v", Some(century)).await.unwrap();
    advance(Duration::from_secs(365 * 24 * 3600)).await;
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test(start_paused = true)]
async fn reading_an_expired_entry_reclaims_it() {
    let cache = without_sweep();
    for i in 0..100 {
        cache
            .set(&format!("k{i}"), "v", Some(Duration::from_secs(1)))
            .await
            .unwrap();
    }
    cache.set("forever", "v", None).await.unwrap();
    advance(Duration::from_secs(1)).await;
    assert_eq!(
        cache.entry_count(),
        101,
        "nothing should have been reclaimed without a read or a sweep"
    );
    for i in 0..100 {
        assert_eq!(cache.get(&format!("k{i}")).await.unwrap(), None);
    }
    assert_eq!(
        cache.entry_count(),
        1,
        "reads of expired entries must remove them"
    );
}

#[tokio::test(start_paused = true)]
async fn overwrite_replaces_the_ttl() {
    let cache = without_sweep();
    cache
        .set("k", "short", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    cache
        .set("k", "long", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    advance(Duration::from_secs(30)).await;
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("long"));
    cache
        .set("k", "short again", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    advance(Duration::from_secs(1)).await;
    assert_eq!(
        cache.get("k").await.unwrap(),
        None,
        "a shorter ttl on overwrite must apply"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clock_expiry_is_wired() {
    const TTL: Duration = Duration::from_millis(50);
    let cache = without_sweep();
    // A loaded machine may pause this task past the TTL between the set and the get: such
    // an attempt tells nothing, so it starts over with another key.
    let mut attempt = 0;
    let k = loop {
        let k = format!("k{attempt}");
        let written = std::time::Instant::now();
        cache.set(&k, "v", Some(TTL)).await.unwrap();
        let got = cache.get(&k).await.unwrap();
        if written.elapsed() < TTL {
            assert_eq!(
                got.as_deref(),
                Some("v"),
                "an entry vanished before its ttl"
            );
            break k;
        }
        attempt += 1;
        assert!(
            attempt < 20,
            "20 attempts in a row took longer than {TTL:?}"
        );
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(cache.get(&k).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn an_entry_not_read_for_time_to_idle_expires_and_each_read_renews_it() {
    const IDLE: Duration = Duration::from_secs(10);
    let cache = MemoryCache::builder()
        .time_to_idle(IDLE)
        .sweep_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    cache.set("k", "v", None).await.unwrap();
    for _ in 0..5 {
        advance(IDLE - Duration::from_millis(1)).await;
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    }
    advance(IDLE).await;
    assert_eq!(
        cache.get("k").await.unwrap(),
        None,
        "an idle entry was returned"
    );
    assert_eq!(cache.entry_count(), 0);
    // A write renews it too.
    cache.set("k", "v1", None).await.unwrap();
    advance(IDLE - Duration::from_millis(1)).await;
    cache.set("k", "v2", None).await.unwrap();
    advance(IDLE - Duration::from_millis(1)).await;
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v2"));
}

#[tokio::test(start_paused = true)]
async fn ttl_and_time_to_idle_expire_an_entry_at_whichever_comes_first() {
    let cache = MemoryCache::builder()
        .time_to_idle(Duration::from_secs(10))
        .sweep_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    cache
        .set("short-ttl", "v", Some(Duration::from_secs(3)))
        .await
        .unwrap();
    cache
        .set("long-ttl", "v", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    advance(Duration::from_secs(3)).await;
    assert_eq!(cache.get("short-ttl").await.unwrap(), None);
    advance(Duration::from_secs(7)).await;
    assert_eq!(cache.get("long-ttl").await.unwrap(), None, "idle for 10 s");
}

#[tokio::test(start_paused = true)]
async fn the_sweep_reclaims_idle_entries_nobody_reads() {
    let cache = MemoryCache::builder()
        .time_to_idle(Duration::from_secs(2))
        .sweep_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    for i in 0..100 {
        cache.set(&format!("k{i}"), "v", None).await.unwrap();
    }
    // Kept alive by reads every second, beyond its idle time.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(cache.get("k0").await.unwrap().is_some());
    }
    assert_eq!(cache.entry_count(), 1, "idle entries were not swept");
    assert_eq!(cache.stats().expirations, 99);
}

#[test]
fn a_zero_time_to_idle_is_a_configuration_error() {
    let err = MemoryCache::builder()
        .time_to_idle(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("time_to_idle"), "{err}");
}
