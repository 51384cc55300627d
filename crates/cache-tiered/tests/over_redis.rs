//! `TieredCache` over a private Redis with `RedisBackplane`: the conformance suite,
//! coherence of three instances, and lost messages when Redis restarts.

mod coherence;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cache_core::testkit;
use cache_memory::MemoryCache;
use cache_redis::{RedisBackplane, RedisCache};
use cache_tiered::{AnyCache, Cache, TieredCache};
use redis_test_server::RedisServer;

fn redis(server: &RedisServer, namespace: &str) -> RedisCache {
    RedisCache::builder()
        .url(server.url())
        .namespace(namespace)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn tiered(
    server: &RedisServer,
    namespace: &str,
    l1_ttl: Duration,
) -> TieredCache<MemoryCache, RedisCache, RedisBackplane> {
    let l2 = redis(server, namespace);
    let backplane = RedisBackplane::for_cache(&l2);
    TieredCache::builder(
        MemoryCache::builder().max_capacity(10_000).build().unwrap(),
        l2,
    )
    .backplane(backplane)
    .l1_ttl(l1_ttl)
    .build()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_over_redis_passes_the_conformance_suite() {
    let server = RedisServer::start();
    testkit::run_all(tiered(&server, "conformance:", Duration::from_secs(60))).await;
    testkit::run_all(AnyCache::new(tiered(
        &server,
        "any:",
        Duration::from_secs(60),
    )))
    .await;
}

/// Waits until `cache`'s subscription is up: its first one counts as a loss (L1 is cleared
/// then), so a value put in L1 before it may be dropped.
async fn subscribed<B: cache_core::backplane::Backplane>(
    cache: &TieredCache<MemoryCache, RedisCache, B>,
) {
    cache.get("subscribe").await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || {
            cache.tiered_stats().lost_clears > 0
        })
        .await,
        "the subscription never came up"
    );
}

/// Has every instance read `key` (so that those holding it keep it in L1), writes `value`
/// through the first one, and waits until every instance returns it: each one's
/// subscription has then delivered what was published before the write.
async fn seen_by_all(instances: &[impl Cache], key: &str, value: &str) {
    for instance in instances {
        instance.get(key).await.unwrap();
    }
    instances[0].set(key, value, None).await.unwrap();
    for instance in instances {
        assert!(
            eventually(Duration::from_secs(10), async || {
                instance.get(key).await.unwrap().as_deref() == Some(value)
            })
            .await,
            "an instance never saw {key} = {value}"
        );
    }
}

/// Waits until `check` holds, up to `within`.
async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_over_redis_never_return_a_value_older_than_an_acknowledged_write() {
    let server = RedisServer::start();
    let instances: Vec<_> = (0..3)
        .map(|_| tiered(&server, "coherence:", Duration::from_secs(60)))
        .collect();
    // Every subscription is up: a write through one instance reaches the others' L1.
    seen_by_all(&instances, "warm", "1").await;
    let bound = Duration::from_secs(1);
    let report = coherence::run(instances.clone(), 64, 200, Duration::from_secs(4), bound).await;
    eprintln!(
        "over redis: {} reads, {} writes, {} stale; invalidation delay p50 {:?} p99 {:?} max \
         {:?} ({} probes, under the 64-task load)",
        report.reads,
        report.writes,
        report.stale,
        coherence::quantile(&report.delays, 0.5),
        coherence::quantile(&report.delays, 0.99),
        report.delays.last(),
        report.delays.len()
    );
    assert!(report.reads > 1_000 && report.writes > 100, "{report:?}");
    assert_eq!(report.stale, 0, "{:?}", report.examples);
    // The same probes without the load: the delay itself, once the invalidations the load
    // queued have drained. A subscription delivers in order, so an instance that stops
    // returning the value it holds in L1 after a later write has received what came before.
    seen_by_all(&instances, "settle", "0").await;
    seen_by_all(&instances, "settle", "1").await;
    let quiet = coherence::run(instances.clone(), 0, 1, Duration::from_secs(2), bound).await;
    eprintln!(
        "over redis, quiet: invalidation delay p50 {:?} p99 {:?} max {:?} ({} probes)",
        coherence::quantile(&quiet.delays, 0.5),
        coherence::quantile(&quiet.delays, 0.99),
        quiet.delays.last(),
        quiet.delays.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_restarts_every_instance_clears_its_l1() {
    let mut server = RedisServer::start();
    let a = tiered(&server, "lost:", Duration::from_secs(60));
    let b = tiered(&server, "lost:", Duration::from_secs(60));
    subscribed(&a).await;
    subscribed(&b).await;
    a.set("k", "old", None).await.unwrap();
    // Until a's message has come and gone, b's copy may be dropped again.
    assert!(
        eventually(Duration::from_secs(10), async || {
            b.get("k").await.unwrap().as_deref() == Some("old")
                && b.l1().get("k").await.unwrap().is_some()
        })
        .await
    );
    let lost_before = [a.tiered_stats().lost_clears, b.tiered_stats().lost_clears];
    // A load of reads and writes through both instances runs across the restart.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..16u64)
        .map(|task| {
            let (cache, stop) = (
                if task % 2 == 0 { &a } else { &b }.clone(),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                let mut n = task;
                while !stop.load(Ordering::Relaxed) {
                    n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let key = format!("load:{}", (n >> 33) % 200);
                    // Errors are expected while Redis is down.
                    let _ = if (n >> 20) % 5 == 0 {
                        cache.set(&key, &n.to_string(), None).await
                    } else {
                        cache.get(&key).await.map(drop)
                    };
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Redis restarts empty (no persistence): b's L1 still holds "old", and both miss every
    // message meanwhile.
    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    for (name, cache, before) in [("a", &a, lost_before[0]), ("b", &b, lost_before[1])] {
        assert!(
            eventually(Duration::from_secs(10), async || {
                cache.tiered_stats().lost_clears > before
            })
            .await,
            "{name} never cleared its L1 after its subscription came back"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(
        b.get("k").await.unwrap(),
        None,
        "the value from before the restart"
    );
    // No value from before the clear survives, and every write since reached both: each
    // instance agrees with Redis on every key, long before l1_ttl (60 s) could hide a miss.
    let redis = redis(&server, "lost:");
    let mut differ = String::new();
    let agree = eventually(Duration::from_secs(5), async || {
        differ.clear();
        for i in 0..200 {
            let key = format!("load:{i}");
            let truth = redis.get(&key).await.unwrap();
            let (in_a, in_b) = (a.get(&key).await.unwrap(), b.get(&key).await.unwrap());
            if in_a != truth || in_b != truth {
                differ = format!("{key}: redis {truth:?}, a {in_a:?}, b {in_b:?}");
                return false;
            }
        }
        true
    })
    .await;
    assert!(
        agree,
        "an instance kept a value that Redis no longer has: {differ}; a {:?}; b {:?}",
        a.tiered_stats(),
        b.tiered_stats()
    );
    drop(server);
}

/// A cache that serves what L1 kept while Redis fails, gives up on Redis after 100 ms when
/// it can, and skips Redis for 1 s after 3 failures in a row.
fn resilient(
    server: &RedisServer,
    namespace: &str,
) -> TieredCache<MemoryCache, RedisCache, RedisBackplane> {
    let l2 = RedisCache::builder()
        .url(server.url())
        .namespace(namespace)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let backplane = RedisBackplane::for_cache(&l2);
    let l1 = MemoryCache::builder()
        .max_capacity(10_000)
        .keep_expired_for(Duration::from_secs(60))
        .build()
        .unwrap();
    TieredCache::builder(l1, l2)
        .backplane(backplane)
        .l1_ttl(Duration::from_millis(300))
        .fail_safe(Duration::from_secs(60))
        .l2_timeout(Duration::from_millis(100))
        .circuit_breaker(3, Duration::from_secs(1))
        .build()
        .unwrap()
}

/// How long a read served by the fail-safe may take: `l2_timeout` plus slack for a busy
/// machine, well under the 2 s Redis timeout it stands in for.
const SOFT_BOUND: Duration = Duration::from_millis(100 + 700);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_paused_then_killed_kept_values_are_served_and_the_breaker_closes_again() {
    let mut server = RedisServer::start();
    let cache = resilient(&server, "fail-safe:");
    let other = redis(&server, "fail-safe:");
    subscribed(&cache).await;
    cache.set("kept", "v", None).await.unwrap();
    other.set("elsewhere", "x", None).await.unwrap();
    // Past l1_ttl: L1's copy has expired and is kept for the fail-safe.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cache.l1().get("kept").await.unwrap(), None);

    server.pause();
    let start = Instant::now();
    assert_eq!(cache.get("kept").await.unwrap().as_deref(), Some("v"));
    let served_in = start.elapsed();
    assert!(served_in < SOFT_BOUND, "served after {served_in:?}");
    // The soft timeout is no failure for the breaker; these three are.
    for _ in 0..3 {
        let err = cache.get("elsewhere").await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
    let stats = cache.tiered_stats();
    assert_eq!(
        (stats.stale_served, stats.breaker_openings),
        (1, 1),
        "{stats:?}"
    );
    // Open: Redis is not asked, and a kept value is still served.
    let start = Instant::now();
    let err = cache.get("elsewhere").await.unwrap_err();
    assert!(err.to_string().contains("circuit breaker"), "{err}");
    assert_eq!(cache.get("kept").await.unwrap().as_deref(), Some("v"));
    assert!(start.elapsed() < SOFT_BOUND, "{:?}", start.elapsed());
    eprintln!("paused: kept value served in {served_in:?}");

    server.resume();
    assert!(
        eventually(Duration::from_secs(10), async || {
            cache.get("elsewhere").await.ok().flatten().as_deref() == Some("x")
        })
        .await,
        "the breaker never closed after Redis came back"
    );
    cache.set("kept", "v2", None).await.unwrap();
    other.set("never-read", "z", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;

    let server = tokio::task::spawn_blocking(move || {
        server.kill();
        server
    })
    .await
    .unwrap();
    let start = Instant::now();
    assert_eq!(cache.get("kept").await.unwrap().as_deref(), Some("v2"));
    let served_in = start.elapsed();
    assert!(served_in < SOFT_BOUND, "served after {served_in:?}");
    // "elsewhere" was read since the pause, so L1 keeps it too; this one it never held.
    assert_eq!(cache.get("elsewhere").await.unwrap().as_deref(), Some("x"));
    assert!(cache.get("never-read").await.unwrap_err().is_retryable());
    eprintln!("killed: kept value served in {served_in:?}");

    let mut server = server;
    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    // Redis restarted empty: once the breaker lets calls through, writes land again.
    assert!(
        eventually(Duration::from_secs(10), async || {
            cache.set("after", "y", None).await.is_ok()
        })
        .await,
        "writes never reached Redis again"
    );
    assert_eq!(other.get("after").await.unwrap().as_deref(), Some("y"));
    drop(server);
}
