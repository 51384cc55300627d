//! `memory://` URLs: every parameter reaches the `MemoryCache`, every mistake is named, and
//! the cache passes the conformance suite.

#![cfg(feature = "memory")]

mod common;

use std::time::Duration;

use cache_core::testkit;
use cache_url::{Cache, CacheError, CacheUrl, from_url};
use common::refused;

#[tokio::test]
async fn a_memory_url_builds_a_working_cache() {
    for url in [
        "memory://",
        "memory:///",
        "MEMORY://?",
        "  memory://?max_capacity=10  ",
    ] {
        let cache = from_url(url).unwrap();
        cache.set("k", "v", None).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"), "{url}");
        cache.close().await.unwrap();
    }
}

#[test]
fn every_parameter_reaches_the_builder() {
    let cache = from_url(
        "memory://?max_capacity=10000&max_bytes=64MiB&time_to_idle=5m&keep_expired_for=30s\
         &sweep_interval=250ms&name=traces",
    )
    .unwrap();
    let debug = format!("{cache:?}");
    for setting in [
        "name: \"traces\"",
        "max_capacity: Some(10000)",
        "max_bytes: Some(67108864)",
        "time_to_idle: Some(300s)",
        "keep_expired_for: 30s",
        "sweep_interval: 250ms",
    ] {
        assert!(debug.contains(setting), "{debug} lacks {setting}");
    }
}

#[tokio::test]
async fn the_bounds_and_the_stale_retention_apply() {
    // An entry heavier than the whole bound is refused.
    let cache = from_url("memory://?max_bytes=1KiB").unwrap();
    let big = "x".repeat(2_000);
    assert!(matches!(
        cache.set("big", &big, None).await,
        Err(CacheError::TooLarge { .. })
    ));

    // At most 10 entries.
    let cache = from_url("memory://?max_capacity=10").unwrap();
    for i in 0..100 {
        cache.set(&format!("k{i}"), "v", None).await.unwrap();
    }
    let mut held = 0;
    for i in 0..100 {
        held += usize::from(cache.get(&format!("k{i}")).await.unwrap().is_some());
    }
    assert!((1..=10).contains(&held), "{held} entries held");

    // An expired entry is kept for get_stale_bytes.
    let cache = from_url("memory://?keep_expired_for=1h").unwrap();
    assert_eq!(cache.stale_retention(), Duration::from_secs(3_600));
    cache
        .set("k", "v", Some(Duration::from_millis(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(cache.get("k").await.unwrap(), None);
    let (value, _) = cache.get_stale_bytes("k").await.unwrap().unwrap();
    assert_eq!(&value[..], b"v");

    // An entry not read for time_to_idle expires.
    let cache = from_url("memory://?time_to_idle=50ms").unwrap();
    cache.set("k", "v", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cache.get("k").await.unwrap(), None);
}

#[test]
fn an_unknown_parameter_is_named_without_its_value() {
    refused(
        "memory://?max_capacity=10&maxcapacity=s3cret",
        &[
            "unknown parameter `maxcapacity`",
            "max_capacity, max_bytes, time_to_idle",
        ],
    );
    assert!(!common::reason("memory://?maxcapacity=s3cret").contains("s3cret"));
    refused(
        "memory://?l1_ttl=1s",
        &["unknown parameter `l1_ttl`", "tiered+redis"],
    );
    refused("memory://?namespace=a", &["unknown parameter `namespace`"]);
    refused(
        "memory://?max_capacity=1&max_capacity=2",
        &["`max_capacity` twice"],
    );
}

#[test]
fn a_bad_value_is_named_with_its_value() {
    let cases = [
        ("max_capacity=0", "max_capacity=\"0\""),
        ("max_capacity=ten", "max_capacity=\"ten\""),
        ("max_capacity=-1", "max_capacity=\"-1\""),
        ("max_bytes=95", "max_bytes=\"95\""),
        ("max_bytes=1TB", "max_bytes=\"1TB\""),
        ("max_bytes=", "max_bytes=\"\""),
        ("time_to_idle=0s", "time_to_idle=\"0s\""),
        ("time_to_idle=30", "time_to_idle=\"30\""),
        ("time_to_idle=30000d", "time_to_idle=\"30000d\""),
        ("keep_expired_for=1 h", "keep_expired_for=\"1 h\""),
        ("sweep_interval=0ms", "sweep_interval=\"0ms\""),
        ("sweep_interval=1.5s", "sweep_interval=\"1.5s\""),
    ];
    for (query, named) in cases {
        refused(&format!("memory://?{query}"), &[named]);
    }
}

#[test]
fn a_memory_url_takes_no_host_path_or_fragment() {
    for url in [
        "memory://localhost",
        "memory://u:s3cret@",
        "memory://?max_capacity=1#x",
        "memory:///cache",
    ] {
        refused(url, &["no host, path or fragment"]);
        assert!(!common::reason(url).contains("s3cret"));
    }
}

#[test]
fn a_cache_url_is_clone_and_builds_caches_of_their_own() {
    let url: CacheUrl = "memory://?max_capacity=5".parse().unwrap();
    let copy = url.clone();
    assert!(format!("{copy:?}").contains("max_capacity: Some(5)"));
    let (a, b) = (url.build().unwrap(), copy.build().unwrap());
    block_on(async {
        a.set("k", "v", None).await.unwrap();
        assert_eq!(b.get("k").await.unwrap(), None);
    });
}

/// Runs `future` on a runtime of its own.
fn block_on(future: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_url_passes_the_conformance_suite() {
    testkit::run_all(from_url("memory://").unwrap()).await;
    testkit::run_all(from_url("memory://?max_capacity=100000&keep_expired_for=1m").unwrap()).await;
}
