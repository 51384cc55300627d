//! Metrics (feature `metrics`) on Redis: counts, errors by kind, and the time of every
//! operation, labelled with the backend and the cache's name.
//!
//! The recorder is set for the test's thread (`metrics::set_default_local_recorder`): on a
//! current-thread runtime the operations and `publish_metrics` run on it.
#![cfg(feature = "metrics")]

use std::time::Duration;

use cache_redis::{Cache, CacheError, RedisCache};
use metrics_util::debugging::DebuggingRecorder;
use redis_test_server::RedisServer;

/// Shared by the metrics tests of every backend.
#[allow(dead_code, unreachable_pub)] // each test binary uses part of it
#[path = "../../cache-core/tests/support/recorded.rs"]
mod recorded;

use recorded::Recorded;

#[tokio::test]
async fn counts_errors_by_kind_and_operation_times_are_published() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let mut server = RedisServer::start();
    let cache = RedisCache::builder()
        .url(server.url())
        .name("sessions")
        .namespace("metrics:")
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    assert_eq!(cache.name(), "sessions");
    cache.set("k", "v", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(cache.get("missing").await.unwrap(), None);
    cache.delete("k").await.unwrap();

    server.pause();
    let err = cache.get("k").await.unwrap_err();
    assert!(matches!(err, CacheError::Timeout { .. }), "{err:?}");
    server.resume();
    server.kill();
    let err = cache.set("k", "v", None).await.unwrap_err();
    assert!(matches!(err, CacheError::Unavailable { .. }), "{err:?}");
    cache.publish_metrics();

    let m = Recorded::take(&snapshotter);
    let ours = [("backend", "redis"), ("cache", "sessions")];
    let with = |extra: (&'static str, &'static str)| [ours[0], ours[1], extra];
    assert_eq!(
        m.counter("cache_requests_total", &with(("result", "hit"))),
        1
    );
    assert_eq!(
        m.counter("cache_requests_total", &with(("result", "miss"))),
        1
    );
    assert_eq!(m.counter("cache_sets_total", &ours), 1);
    assert_eq!(m.counter("cache_deletes_total", &ours), 1);
    assert_eq!(m.counter("cache_timeouts_total", &ours), 1);
    assert_eq!(
        m.counter("cache_errors_total", &with(("kind", "timeout"))),
        1
    );
    assert_eq!(
        m.counter("cache_errors_total", &with(("kind", "unavailable"))),
        1
    );
    assert!(
        m.value("cache_entries", &ours).is_none(),
        "Redis keeps no gauge"
    );
    // Every operation is timed, the failed ones too.
    let times = |op| m.histogram("cache_operation_duration_seconds", &with(("op", op)));
    assert_eq!(times("get").len(), 3);
    assert_eq!(times("set").len(), 2);
    assert_eq!(times("delete").len(), 1);
    assert!(times("get").iter().all(|&t| t > 0.0 && t < 5.0));
    let stats = cache.stats();
    assert_eq!((stats.errors, stats.timeouts), (2, 1), "{stats:?}");
}

#[test]
fn the_name_is_in_debug_and_cannot_be_empty() {
    let cache = RedisCache::builder()
        .url("redis://127.0.0.1:1")
        .name("sessions")
        .build()
        .unwrap();
    assert!(format!("{cache:?}").contains("\"sessions\""));
    assert_eq!(
        RedisCache::from_url("redis://127.0.0.1:1").unwrap().name(),
        "default"
    );
    assert!(RedisCache::builder().name("").build().is_err());
}
