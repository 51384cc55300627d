//! One cache, several tokio runtimes: a runtime that shuts down or stops being driven while
//! it opens a connection must not leave the cache stuck for the others.

use std::time::{Duration, Instant};

use cache_redis::{Cache, CacheError, RedisCache};
use redis_test_server::{LatencyProxy, RedisServer};

fn multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Retries `ping` until it succeeds, within `within`; then checks five more in a row.
async fn serves_within(cache: &RedisCache, within: Duration) {
    let deadline = Instant::now() + within;
    while let Err(err) = cache.ping().await {
        assert!(
            Instant::now() < deadline,
            "the cache does not serve within {within:?}: {err:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..5 {
        cache.ping().await.unwrap();
    }
}

#[test]
fn a_runtime_shutting_down_during_refills_does_not_wedge_the_cache() {
    let mut server = RedisServer::start();
    let cache = RedisCache::builder()
        .url(server.url())
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    for round in 0..5 {
        server.kill();
        let busy = multi_thread(2);
        busy.block_on(async {
            for _ in 0..16 {
                let cache = cache.clone();
                tokio::spawn(async move {
                    loop {
                        let _ = cache.get("k").await;
                        tokio::task::yield_now().await;
                    }
                });
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        });
        // Shut down while its tasks keep starting refills.
        drop(busy);
        server.restart();
        current_thread().block_on(async {
            // Up to the longest back-off (2 s) after the failures, plus margin.
            tokio::time::timeout(
                Duration::from_secs(10),
                serves_within(&cache, Duration::from_secs(4)),
            )
            .await
            .unwrap_or_else(|_| panic!("round {round}: stuck"));
        });
    }
}

#[test]
fn a_refill_left_on_a_runtime_that_is_no_longer_driven_is_taken_over() {
    let server = RedisServer::start();
    let proxy = LatencyProxy::start(server.port());
    let cache = RedisCache::builder()
        .url(proxy.url())
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();

    // Runtime A starts the lane's first connection through a slow network, gives up after
    // its 1 s deadline, and is never driven again; the connection attempt is parked on it.
    proxy.set_delay(Duration::from_millis(1_500));
    let parked = current_thread();
    let first = parked.block_on(cache.get("k"));
    assert!(
        matches!(first, Err(CacheError::Timeout { .. })),
        "{first:?}"
    );

    // Runtime B, on a fast network again, takes over once the parked attempt outlives its
    // bound (2 s) by a second.
    proxy.set_delay(Duration::ZERO);
    multi_thread(1).block_on(serves_within(&cache, Duration::from_secs(6)));
    drop(parked);
}
