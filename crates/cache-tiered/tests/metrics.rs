//! Metrics (feature `metrics`) of a tiered cache: the counts every backend publishes, and
//! those of each tier.
//!
//! The recorder is set for the test's thread (`metrics::set_default_local_recorder`): on a
//! current-thread runtime the operations and `publish_metrics` run on it.
#![cfg(feature = "metrics")]

use std::time::Duration;

use cache_core::metrics::SAMPLE_EVERY;
use cache_memory::MemoryCache;
use cache_tiered::{Cache, InProcessBackplane, TieredCache};
use metrics_util::debugging::DebuggingRecorder;

/// Shared by the metrics tests of every backend.
#[allow(dead_code, unreachable_pub)] // each test binary uses part of it
#[path = "../../cache-core/tests/support/recorded.rs"]
mod recorded;

use recorded::Recorded;

#[tokio::test]
async fn counts_by_tier_and_errors_by_kind_are_published() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let l2 = MemoryCache::new();
    let backplane = InProcessBackplane::new();
    let a = TieredCache::builder(MemoryCache::new(), l2.clone())
        .backplane(backplane.clone())
        .name("writer")
        .build()
        .unwrap();
    let b = TieredCache::builder(MemoryCache::new(), l2)
        .backplane(backplane)
        .name("reader")
        .build()
        .unwrap();
    assert_eq!(b.name(), "reader");
    b.get("warm-up").await.unwrap(); // b starts listening
    a.set("k", "v", None).await.unwrap();
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some("v")); // from L2
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some("v")); // from L1
    assert!(a.set("k", "v", Some(Duration::ZERO)).await.is_err());
    tokio::time::sleep(Duration::from_millis(50)).await; // the message reaches b
    for _ in 0..4 * SAMPLE_EVERY {
        a.get("timed").await.unwrap(); // one in SAMPLE_EVERY is timed
    }
    a.publish_metrics();
    b.publish_metrics();

    let m = Recorded::take(&snapshotter);
    let writer =
        |extra: (&'static str, &'static str)| [("backend", "tiered"), ("cache", "writer"), extra];
    let reader =
        |extra: (&'static str, &'static str)| [("backend", "tiered"), ("cache", "reader"), extra];
    assert_eq!(
        m.counter("cache_requests_total", &reader(("result", "hit"))),
        2
    );
    assert_eq!(
        m.counter("cache_requests_total", &reader(("result", "miss"))),
        1
    );
    assert_eq!(
        m.counter("cache_tiered_hits_total", &reader(("tier", "l1"))),
        1
    );
    assert_eq!(
        m.counter("cache_tiered_hits_total", &reader(("tier", "l2"))),
        1
    );
    assert_eq!(
        m.counter("cache_sets_total", &writer(("backend", "tiered"))),
        1
    );
    assert_eq!(
        m.counter("cache_errors_total", &writer(("kind", "invalid_ttl"))),
        1
    );
    assert_eq!(
        m.counter(
            "cache_tiered_invalidations_total",
            &writer(("direction", "sent"))
        ),
        1
    );
    assert_eq!(
        m.counter(
            "cache_tiered_invalidations_total",
            &reader(("direction", "received"))
        ),
        1
    );
    assert_eq!(
        m.counter(
            "cache_tiered_stale_served_total",
            &reader(("backend", "tiered"))
        ),
        0
    );
    let times = m.histogram("cache_operation_duration_seconds", &writer(("op", "get")));
    assert!((2..=6).contains(&times.len()), "{}", times.len());
    let tiers = b.tiered_stats();
    assert_eq!((tiers.l1_hits, tiers.l2_hits), (1, 1));
}

#[test]
fn the_name_cannot_be_empty() {
    let built = TieredCache::builder(MemoryCache::new(), MemoryCache::new())
        .name("")
        .build();
    assert!(built.is_err());
    let cache = TieredCache::builder(MemoryCache::new(), MemoryCache::new())
        .build()
        .unwrap();
    assert_eq!(cache.name(), "default");
    assert!(format!("{cache:?}").contains("\"default\""));
}
