//! Metrics (feature `metrics`): what a `MemoryCache` publishes, with which labels, and when.
//!
//! Each test records into a recorder of its own, set for its thread
//! (`metrics::set_default_local_recorder`): on a current-thread runtime the operations, the
//! background publisher and `publish_metrics` all run on that thread.
#![cfg(feature = "metrics")]

use std::time::Duration;

use cache_core::metrics::SAMPLE_EVERY;
use cache_memory::{Cache, MemoryCache};
use metrics_util::debugging::DebuggingRecorder;

/// Shared by the metrics tests of every backend.
#[allow(dead_code, unreachable_pub)] // each test binary uses part of it
#[path = "../../cache-core/tests/support/recorded.rs"]
mod recorded;

use recorded::Recorded;

#[tokio::test]
async fn counts_and_gauges_are_published_with_the_backend_and_the_name() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let cache = MemoryCache::builder()
        .name("traces")
        .max_capacity(2)
        .max_bytes(10_000)
        .build()
        .unwrap();
    cache.set("a", "1", None).await.unwrap();
    cache.set("b", "2", None).await.unwrap();
    assert_eq!(cache.get("a").await.unwrap().as_deref(), Some("1"));
    cache.set("c", "3", None).await.unwrap(); // evicts b, not read since written
    assert_eq!(cache.get("missing").await.unwrap(), None);
    cache.delete("a").await.unwrap();
    cache
        .set("short", "v", Some(Duration::from_millis(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(cache.get("short").await.unwrap(), None); // expired: a miss and an expiration
    cache.publish_metrics();

    let m = Recorded::take(&snapshotter);
    let ours = [("backend", "memory"), ("cache", "traces")];
    let with = |extra: (&'static str, &'static str)| [ours[0], ours[1], extra];
    assert_eq!(
        m.counter("cache_requests_total", &with(("result", "hit"))),
        1
    );
    assert_eq!(
        m.counter("cache_requests_total", &with(("result", "miss"))),
        2
    );
    assert_eq!(m.counter("cache_sets_total", &ours), 4);
    assert_eq!(m.counter("cache_deletes_total", &ours), 1);
    assert!(m.counter("cache_evictions_total", &ours) >= 1);
    assert_eq!(m.counter("cache_expirations_total", &ours), 1);
    assert_eq!(m.counter("cache_timeouts_total", &ours), 0);
    assert_eq!(m.gauge("cache_entries", &ours), cache.entry_count() as f64);
    assert_eq!(
        m.gauge("cache_weighted_size_bytes", &ours),
        cache.weighted_size().unwrap() as f64
    );
    assert!(
        m.value("cache_errors_total", &ours).is_none(),
        "no error happened"
    );
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.sets), (1, 2, 4));
}

#[tokio::test]
async fn one_operation_in_sample_every_is_timed_by_operation() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let cache = MemoryCache::builder().name("sampled").build().unwrap();
    let ops = 64 * SAMPLE_EVERY as usize;
    for n in 0..ops {
        cache.set(&format!("k{n}"), "v", None).await.unwrap();
        cache.get(&format!("k{n}")).await.unwrap();
    }
    let m = Recorded::take(&snapshotter);
    let times = |op| {
        m.histogram(
            "cache_operation_duration_seconds",
            &[("backend", "memory"), ("cache", "sampled"), ("op", op)],
        )
    };
    let (sets, gets) = (times("set"), times("get"));
    // One in SAMPLE_EVERY of this thread's operations, sets and gets alike.
    let timed = sets.len() + gets.len();
    assert!(
        timed.abs_diff(2 * ops / SAMPLE_EVERY as usize) <= 4,
        "{timed}"
    );
    assert!(
        sets.len() >= 48 && gets.len() >= 48,
        "{} {}",
        sets.len(),
        gets.len()
    );
    assert!(gets.iter().all(|t| (0.0..1.0).contains(t)), "{gets:?}");
}

#[tokio::test]
async fn the_sweep_task_publishes_every_second() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let cache = MemoryCache::builder().name("ticking").build().unwrap();
    cache.set("a", "1", None).await.unwrap();
    cache.get("a").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await; // the sweep runs every second
    let m = Recorded::take(&snapshotter);
    let ours = [("backend", "memory"), ("cache", "ticking")];
    assert_eq!(m.counter("cache_sets_total", &ours), 1);
    assert_eq!(m.gauge("cache_entries", &ours), 1.0);

    // Closing publishes the last counts (the snapshot above took the counters to 0).
    cache.close().await.unwrap();
    let m = Recorded::take(&snapshotter);
    assert_eq!(m.counter("cache_sets_total", &ours), 1);
    assert_eq!(m.gauge("cache_entries", &ours), 0.0);
}

#[test]
fn without_a_runtime_operations_publish_now_and_then() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let cache = MemoryCache::builder().name("no-runtime").build().unwrap();
        futures_executor::block_on(cache.set("a", "1", None)).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        // One in 4,096 operations of a thread looks at the clock.
        for _ in 0..4096 {
            futures_executor::block_on(cache.get("a")).unwrap();
        }
    });
    let m = Recorded::take(&snapshotter);
    let ours = [("backend", "memory"), ("cache", "no-runtime")];
    assert_eq!(m.counter("cache_sets_total", &ours), 1);
    assert!(
        m.counter(
            "cache_requests_total",
            &[ours[0], ours[1], ("result", "hit")]
        ) > 0
    );
}

#[tokio::test]
async fn a_recorder_installed_after_the_cache_gets_every_count() {
    let cache = MemoryCache::builder().name("late").build().unwrap();
    for _ in 0..10 {
        cache.set("a", "1", None).await.unwrap();
    }
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || cache.publish_metrics());
    let m = Recorded::take(&snapshotter);
    assert_eq!(
        m.counter(
            "cache_sets_total",
            &[("backend", "memory"), ("cache", "late")]
        ),
        10
    );
}

#[test]
fn the_name_is_in_debug_and_cannot_be_empty() {
    let cache = MemoryCache::builder().name("traces").build().unwrap();
    assert!(format!("{cache:?}").contains("\"traces\""));
    assert_eq!(MemoryCache::new().name(), "default");
    assert!(MemoryCache::builder().name("").build().is_err());
}

#[tokio::test]
async fn a_cache_built_with_metrics_off_publishes_nothing() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let cache = MemoryCache::builder()
        .name("off")
        .metrics(false)
        .build()
        .unwrap();
    for _ in 0..1000 {
        cache.set("a", "1", None).await.unwrap();
    }
    cache.publish_metrics();
    let m = Recorded::take(&snapshotter);
    assert!(
        m.0.iter()
            .all(|(_, labels, _)| !labels.contains(&("cache".into(), "off".into())))
    );
    assert_eq!(cache.stats().sets, 1000, "stats() counts as ever");
}
