//! `RedisCache` over TLS (`rediss+cluster://`, `rediss+sentinel://`) to a Redis Cluster and
//! to a master found through Sentinel whose processes serve TLS only, all signed by one
//! private CA: the conformance suite with that CA, and a clear error without it.
//!
//! The tests run one at a time: each starts five or six servers on a 2-core machine.

#![cfg(feature = "tls")]

mod common;

use std::time::{Duration, Instant};

use cache_core::testkit;
use cache_redis::{AnyCache, Cache, CacheError, RedisCache};
use common::everything_printed;
use redis_test_server::{RedisCluster, RedisSentinels};
use tokio::sync::Mutex;

/// One cluster or set of sentinels at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The bound of every call in the failure tests.
const TIMEOUT: Duration = Duration::from_millis(500);

/// How late past [`TIMEOUT`] a failing call may return on a busy machine.
const MARGIN: Duration = Duration::from_secs(1);

/// How long a failing call may take before the test calls it a hang.
const WATCHDOG: Duration = Duration::from_secs(10);

async fn start_cluster() -> RedisCluster {
    tokio::task::spawn_blocking(|| RedisCluster::builder().tls().start())
        .await
        .unwrap()
}

async fn start_sentinels() -> RedisSentinels {
    tokio::task::spawn_blocking(|| RedisSentinels::builder().tls().start())
        .await
        .unwrap()
}

/// Runs `call`, which must fail: returns its error and how long it took.
async fn failure<T: std::fmt::Debug>(
    call: impl Future<Output = Result<T, CacheError>>,
) -> (CacheError, Duration) {
    let started = Instant::now();
    let result = tokio::time::timeout(WATCHDOG, call)
        .await
        .unwrap_or_else(|_| panic!("the call hung for {WATCHDOG:?}"));
    (result.unwrap_err(), started.elapsed())
}

/// Whether the error's source chain tells that the server's certificate was not trusted.
///
/// By the text of rustls's `InvalidCertificate(UnknownIssuer)` as `Display` and `Debug`
/// print it: the tests have no rustls of their own to downcast the source to.
fn names_the_untrusted_certificate(err: &CacheError) -> bool {
    let printed = everything_printed(err);
    printed.contains("UnknownIssuer") || printed.contains("invalid peer certificate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_on_a_tls_cluster() {
    let _serial = SERIAL.lock().await;
    let cluster = start_cluster().await;
    let ca = cluster.ca_cert_pem().unwrap();
    assert!(cluster.url().starts_with("rediss+cluster://"));
    let namespaced = RedisCache::builder()
        .url(cluster.url())
        .ca_certificate(ca.clone())
        .namespace("conformance:")
        .build()
        .unwrap();
    testkit::run_all(namespaced).await;
    // Seeds as single URLs, and without a namespace (`clear` is `FLUSHDB` on every primary).
    let any = RedisCache::builder()
        .cluster_nodes(cluster.seed_urls())
        .ca_certificate(ca)
        .build()
        .unwrap();
    testkit::run_all(AnyCache::new(any)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_without_its_ca_certificate_is_a_clear_error_within_the_timeout() {
    let _serial = SERIAL.lock().await;
    let cluster = start_cluster().await;
    // Longer than the other tests' timeout: the first call asks the seeds for the slot map
    // one after another, each handshake failing, and on a busy machine those can add up past
    // 500 ms, which would make the error a `Timeout` rather than the one this test is about.
    let timeout = Duration::from_secs(3);
    let untrusted = RedisCache::builder()
        .url(cluster.url())
        .timeout(timeout)
        .build()
        .unwrap();
    let (err, took) = failure(untrusted.get("k")).await;
    eprintln!(
        "without the CA, after {took:?}: {}",
        everything_printed(&err)
    );
    assert!(
        matches!(err, CacheError::Unavailable { .. }),
        "{}",
        everything_printed(&err)
    );
    assert!(
        names_the_untrusted_certificate(&err),
        "{}",
        everything_printed(&err)
    );
    assert!(took < timeout + MARGIN, "{took:?}");
    assert!(
        err.to_string().contains("certificate is not trusted"),
        "{err}"
    );
    // Right after, too soon for another look-up of the slot map: the same error, at once.
    let (err, took) = failure(untrusted.set("k", "v", None)).await;
    assert!(
        matches!(err, CacheError::Unavailable { .. }),
        "{}",
        everything_printed(&err)
    );
    assert!(took < timeout + MARGIN, "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_through_tls_sentinels() {
    let _serial = SERIAL.lock().await;
    let sentinels = start_sentinels().await;
    let ca = sentinels.ca_cert_pem().unwrap();
    assert!(sentinels.url().starts_with("rediss+sentinel://"));
    let cache = RedisCache::builder()
        .url(sentinels.url())
        .ca_certificate(ca.clone())
        .namespace("conformance:")
        .build()
        .unwrap();
    testkit::run_all(cache).await;
    let any = RedisCache::builder()
        .sentinel(sentinels.master_name(), sentinels.sentinel_urls())
        .ca_certificate(ca)
        .build()
        .unwrap();
    testkit::run_all(AnyCache::new(any)).await;

    // Without the CA, the sentinels are not trusted: a clear error, within the timeout.
    let untrusted = RedisCache::builder()
        .url(sentinels.url())
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    let (err, took) = failure(untrusted.get("k")).await;
    eprintln!(
        "without the CA, after {took:?}: {}",
        everything_printed(&err)
    );
    assert!(
        matches!(err, CacheError::Unavailable { .. }),
        "{}",
        everything_printed(&err)
    );
    assert!(
        names_the_untrusted_certificate(&err),
        "{}",
        everything_printed(&err)
    );
    assert!(took < TIMEOUT + MARGIN, "{took:?}");
}
