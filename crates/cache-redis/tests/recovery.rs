//! How the shared connections recover: a restart nobody noticed, a latency spike on a slow
//! network, an operation that is never polled again, a demoted primary.

use std::future::Future;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use cache_redis::{Cache, CacheError, RedisCache};
use redis_test_server::{LatencyProxy, RedisServer};

fn cache(server: &RedisServer, pool_size: usize, timeout: Duration) -> RedisCache {
    RedisCache::builder()
        .url(server.url())
        .namespace("recovery:")
        .pool_size(pool_size)
        .timeout(timeout)
        .build()
        .unwrap()
}

/// A plain redis-rs connection, without redis-rs's default 500 ms response timeout.
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await
        .unwrap()
}

/// Stores `known` = `value` in the cache's namespace through a connection of its own.
async fn write_known_behind_the_cache(server: &RedisServer) {
    let _: () = redis::cmd("SET")
        .arg("recovery:known")
        .arg("value")
        .query_async(&mut raw(server).await)
        .await
        .unwrap();
}

/// Opens every lane's connection.
async fn fill_lanes(cache: &RedisCache) {
    let reads: Vec<_> = (0..64)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("anything").await })
        })
        .collect();
    for read in reads {
        read.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_right_after_an_unnoticed_restart_all_succeed() {
    let mut server = RedisServer::start();
    let cache = cache(&server, 4, Duration::from_secs(2));
    fill_lanes(&cache).await;

    // No operation between the kill and the restart: every lane still holds a dead socket.
    server.kill();
    server.restart();
    write_known_behind_the_cache(&server).await;
    for i in 0..16 {
        assert_eq!(
            cache.get("known").await.unwrap().as_deref(),
            Some("value"),
            "read {i}: a read that finds its connection gone is sent again on a new one"
        );
    }
    // The first lost connection sent every lane's connection to the pool's health check, so
    // writes, which are never sent twice, find only live connections.
    for i in 0..16 {
        cache
            .set(&format!("w{i}"), "written", None)
            .await
            .unwrap_or_else(|err| panic!("write {i} after the restart was noticed: {err:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_a_quiet_spell_survive_an_unnoticed_restart() {
    let mut server = RedisServer::start();
    let cache = cache(&server, 4, Duration::from_secs(2));
    fill_lanes(&cache).await;
    server.kill();
    server.restart();
    // Quiet for longer than the idle check: each lane has its connection checked by the
    // pool before a write goes out on it.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    for i in 0..16 {
        cache
            .set(&format!("w{i}"), "written", None)
            .await
            .unwrap_or_else(|err| panic!("write {i} after a quiet spell: {err:?}"));
    }
    assert_eq!(cache.get("w15").await.unwrap().as_deref(), Some("written"));
}

/// A spike longer than the timeout retires the silent connections; afterwards every round
/// trip takes 0.6 s: within the 1 s timeout, but a replacement connection (the pool's health
/// check or a connect, then the command) does not fit in one operation's deadline.
/// Replacements run on their own, so the cache serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_serves_again_after_a_latency_spike_while_redis_stays_slow() {
    let server = RedisServer::start();
    let proxy = LatencyProxy::start(server.port());
    let cache = RedisCache::builder()
        .url(proxy.url())
        .namespace("recovery:")
        .pool_size(2)
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    cache.set("known", "value", None).await.unwrap();
    fill_lanes(&cache).await;

    proxy.set_delay(Duration::from_millis(1_500));
    let during: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("known").await })
        })
        .collect();
    for op in during {
        assert!(matches!(op.await.unwrap(), Err(CacheError::Timeout { .. })));
    }

    proxy.set_delay(Duration::from_millis(600));
    let recovering = Instant::now() + Duration::from_secs(10);
    let mut in_a_row = 0;
    while in_a_row < 6 {
        assert!(
            Instant::now() < recovering,
            "no recovery within 10 s while redis answers within the timeout"
        );
        match cache.get("known").await {
            Ok(value) => {
                assert_eq!(value.as_deref(), Some("value"));
                in_a_row += 1;
            }
            Err(CacheError::Timeout { .. }) => in_a_row = 0,
            Err(other) => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_that_is_never_polled_again_does_not_block_its_lane() {
    let server = RedisServer::start();
    write_known_behind_the_cache(&server).await;
    // A new cache: its one lane is empty, so the first operation starts the lane's refill.
    // On a loaded machine the other worker may open the connection and the whole round trip
    // may complete within that first poll; the operation then did not stall, so start over
    // with a new cache until one does (almost always the first).
    let mut context = Context::from_waker(Waker::noop());
    let mut attempts = 0;
    let (cache, _stalled) = loop {
        attempts += 1;
        assert!(
            attempts <= 50,
            "50 first polls in a row finished a round trip"
        );
        let cache = cache(&server, 1, Duration::from_secs(1));
        let owned = cache.clone();
        let mut stalled = Box::pin(async move { owned.get("known").await });
        if stalled.as_mut().poll(&mut context).is_pending() {
            break (cache, stalled);
        }
    };
    // `_stalled` is kept alive and never polled again.
    for _ in 0..3 {
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(3), cache.get("known"))
                .await
                .expect("an unpolled operation blocked the lane")
                .unwrap()
                .as_deref(),
            Some("value")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_primary_gives_retryable_errors() {
    let primary = RedisServer::start();
    let demoted = RedisServer::start();
    let cache = cache(&demoted, 2, Duration::from_secs(1));
    cache.set("k", "v", None).await.unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .query_async(&mut raw(&demoted).await)
        .await
        .unwrap();
    let err = cache.set("k", "v2", None).await.unwrap_err();
    assert!(
        matches!(&err, CacheError::Unavailable { reason, .. } if reason.contains("READONLY")),
        "{err:?}"
    );
    assert!(err.is_retryable());

    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut raw(&demoted).await)
        .await
        .unwrap();
    cache.set("k", "v3", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v3"));
}

/// Counts the connections accepted on a loopback port, closing each at once.
struct Slammer {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Slammer {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        });
        Self { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A server that accepts and drops every connection, under 64 busy tasks: the cache backs
/// off between attempts instead of opening a connection per operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_server_sees_one_connection_attempt_per_back_off() {
    let slammer = Slammer::start();
    let cache = RedisCache::builder()
        .url(format!("redis://127.0.0.1:{}", slammer.port))
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let until = Instant::now() + Duration::from_millis(1_500);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let mut failures = 0_u64;
                while Instant::now() < until {
                    assert!(cache.get("k").await.is_err());
                    failures += 1;
                    tokio::task::yield_now().await;
                }
                failures
            })
        })
        .collect();
    let mut failures = 0;
    for task in tasks {
        failures += task.await.unwrap();
    }
    let attempts = slammer.accepted();
    // Back-offs of 50, 100, 200, 400 and 800 ms fit about six attempts in 1.5 s.
    assert!(
        (1..=12).contains(&attempts),
        "{attempts} connection attempts for {failures} failed operations"
    );
    assert!(failures > 1_000, "operations fail fast: only {failures}");
}

/// A cache pointed at a replica: every write answers READONLY; the connection is replaced at
/// most once a second, not on every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_pointed_at_a_replica_does_not_reconnect_on_every_write() {
    let primary = RedisServer::start();
    let replica = RedisServer::start();
    let mut admin = raw(&replica).await;
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .query_async(&mut admin)
        .await
        .unwrap();
    let connections = |info: String| -> u64 {
        info.lines()
            .find_map(|line| line.strip_prefix("total_connections_received:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap()
    };
    let cache = cache(&replica, 1, Duration::from_secs(1));
    let before = connections(
        redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut admin)
            .await
            .unwrap(),
    );
    let until = Instant::now() + Duration::from_secs(2);
    let mut writes = 0;
    while Instant::now() < until {
        let err = cache.set("k", "v", None).await.unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        writes += 1;
    }
    let opened = connections(
        redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut admin)
            .await
            .unwrap(),
    ) - before;
    assert!(writes > 100, "only {writes} writes");
    assert!(
        opened <= 4,
        "{opened} connections opened for {writes} READONLY writes in 2 s"
    );
}
