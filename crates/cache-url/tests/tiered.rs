//! `tiered+<redis form>://` URLs: memory over Redis with a Redis backplane, every tiered
//! setting applied, the fail-safe wired to L1's retention, and the conformance suite.

#![cfg(feature = "tiered")]

mod common;

use std::time::Duration;

use cache_core::testkit;
use cache_url::{Cache, CacheUrl, from_url};
use common::{everything_printed, refused};
use redis_test_server::{RedisCluster, RedisSentinels, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiered_url_passes_the_conformance_suite() {
    let server = RedisServer::start();
    let url = format!(
        "tiered+{}?namespace=conformance:&l1_max_capacity=10000",
        server.url()
    );
    testkit::run_all(from_url(&url).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_caches_of_one_tiered_url_stay_coherent() {
    let server = RedisServer::start();
    let url = format!("tiered+{}?namespace=coherent:&l1_ttl=1m", server.url());
    let (a, b) = (from_url(&url).unwrap(), from_url(&url).unwrap());
    a.set("k", "old", None).await.unwrap();
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some("old")); // now in b's L1
    a.set("k", "new", None).await.unwrap();
    // The backplane's message reaches b well within a second; without it, b's L1 would
    // serve "old" for a minute.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while b.get("k").await.unwrap().as_deref() != Some("new") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "b never saw the write"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn every_tiered_parameter_reaches_the_builders() {
    let url = "tiered+redis://127.0.0.1:1/?namespace=t:&timeout=300ms&l1_max_capacity=500\
               &l1_max_bytes=1MiB&l1_ttl=30s&ttl_jitter=0.1&fail_safe=10m&l2_timeout=50ms\
               &circuit_breaker=5/10s&eager_refresh=0.8&name=traces";
    let cache = from_url(url).unwrap();
    let debug = format!("{cache:?}");
    // The tiered cache, its L1 and its L2 (shown twice: also in the backplane) take the name.
    assert_eq!(debug.matches("name: \"traces\"").count(), 4, "{debug}");
    for setting in [
        "max_capacity: Some(500)",
        "max_bytes: Some(1048576)",
        // The fail-safe's L1 keeps expired entries as long as it may serve them.
        "keep_expired_for: 600s",
        "namespace: \"t:\"",
        "timeout: 300ms",
        "l1_ttl: 30s",
        "jitter: 0.1",
        "fail_safe: Some(600s)",
        "l2_timeout: Some(50ms)",
        "breaker: Some((5, 10s))",
        "eager_refresh: Some(0.8)",
        "RedisBackplane",
    ] {
        assert!(debug.contains(setting), "{debug} lacks {setting}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fail_safe_serves_what_l1_kept_while_redis_is_down() {
    let mut server = RedisServer::start();
    let query = "?namespace=fs:&timeout=200ms&l1_ttl=100ms";
    let safe = from_url(&format!("tiered+{}{query}&fail_safe=1h", server.url())).unwrap();
    let plain = from_url(&format!("tiered+{}{query}", server.url())).unwrap();
    // A tiered cache clears its L1 once its subscription is confirmed (what was read before
    // may have been invalidated unheard): let both come up first. AnyCache cannot tell when;
    // they take milliseconds, so a second is plenty.
    safe.get("warm-up").await.unwrap();
    plain.get("warm-up").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    safe.set("k", "v", None).await.unwrap();
    plain.set("j", "w", None).await.unwrap();
    // Past l1_ttl: L1's copies have expired, and only the fail-safe's L1 keeps its own.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| server.kill());
    assert_eq!(safe.get("k").await.unwrap().as_deref(), Some("v"));
    let err = plain.get("j").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiered_cluster_url_works() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let url = format!(
        "tiered+{}?namespace={{tiered}}:&timeout=2s&l1_max_capacity=100",
        cluster.url()
    );
    let cache = from_url(&url).unwrap();
    cache.set("k", "v", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    let l2 = from_url(&format!("{}?namespace={{tiered}}:", cluster.url())).unwrap();
    assert_eq!(l2.get("k").await.unwrap().as_deref(), Some("v"));
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiered_sentinel_url_works() {
    let sentinels = tokio::task::spawn_blocking(RedisSentinels::start)
        .await
        .unwrap();
    let url = format!("tiered+{}?namespace=ts:&timeout=2s", sentinels.url());
    let cache = from_url(&url).unwrap();
    cache.set("k", "v", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    let l2 = from_url(&format!("{}?namespace=ts:", sentinels.url())).unwrap();
    assert_eq!(l2.get("k").await.unwrap().as_deref(), Some("v"));
    tokio::task::spawn_blocking(move || drop(sentinels))
        .await
        .unwrap();
}

#[test]
fn every_tiered_form_parses() {
    for url in [
        "tiered+redis://h",
        "tiered+valkey://u:p@h:1/2",
        "tiered+redis+unix:///run/redis.sock?db=1",
        "tiered+redis+cluster://h1:7000,h2:7001",
        "tiered+redis+sentinel://h1,h2/mymaster/1?read_from_replicas=true",
    ] {
        CacheUrl::parse(url).unwrap_or_else(|err| panic!("{url}: {err}"));
    }
}

#[test]
fn an_unknown_parameter_or_a_bad_value_is_named() {
    let cases: [(&str, &[&str]); 14] = [
        (
            "l1_tl=1s",
            &[
                "unknown parameter `l1_tl`",
                "a tiered+redis:// url reads l1_max_capacity",
            ],
        ),
        ("max_capacity=10", &["`max_capacity`", "l1_max_capacity"]),
        ("l1_time_to_idle=1s", &["`l1_time_to_idle`"]),
        ("l1_max_capacity=0", &["l1_max_capacity=\"0\""]),
        ("l1_max_bytes=10", &["l1_max_bytes=\"10\""]),
        ("l1_ttl=0s", &["l1_ttl=\"0s\""]),
        ("l1_ttl=60", &["l1_ttl=\"60\""]),
        ("ttl_jitter=1", &["ttl_jitter=\"1\""]),
        ("eager_refresh=0", &["eager_refresh=\"0\""]),
        ("fail_safe=0s", &["fail_safe=\"0s\""]),
        ("circuit_breaker=5", &["circuit_breaker=\"5\"", "5/10s"]),
        ("fail_safe=1m&l2_timeout=0ms", &["l2_timeout=\"0ms\""]),
        ("l2_timeout=50ms", &["l2_timeout", "needs fail_safe"]),
        ("timeout=fast", &["timeout=\"fast\""]),
    ];
    for (query, expected) in cases {
        refused(&format!("tiered+redis://u:s3cret@h/?{query}"), expected);
        let reason = common::reason(&format!("tiered+redis://u:s3cret@h/?{query}"));
        assert!(!reason.contains("s3cret"), "{reason}");
    }
}

#[test]
fn no_error_or_debug_output_of_a_tiered_url_holds_its_password() {
    let good = "tiered+redis+sentinel://app:s3cret@h1,h2/mymaster?sentinel_password=s3cret-too";
    let parsed = CacheUrl::parse(good).unwrap();
    assert!(!format!("{parsed:?}").contains("s3cret"), "{parsed:?}");
    let built = parsed.build().unwrap();
    assert!(!format!("{built:?}").contains("s3cret"), "{built:?}");
    for bad in [
        "tiered+redis://app:s3cret@h:0/",
        "tiered+redis://app:s3cret@h/?unknown=s3cret",
        "tiered+redis+cluster://app:s3cret@h1,h2/1",
        "tiered+redis+sentinel://app:s3cret@h1/m?sentinel_username=s3cret",
        "tiered+redis://app:s3cret?@h/",
    ] {
        let err = CacheUrl::parse(bad).unwrap_err();
        assert!(
            !everything_printed(&err).contains("s3cret"),
            "{bad}: {err:?}"
        );
    }
}
