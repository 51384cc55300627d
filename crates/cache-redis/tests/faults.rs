//! What Redis does wrong and how the cache answers: a killed, restarted and paused server,
//! out of memory, oversized arguments, foreign bytes and types.

use std::time::{Duration, Instant};

use cache_redis::{Cache, CacheError, RedisCache};
use redis_test_server::RedisServer;

const POOL_SIZE: usize = 4;

fn cache(server: &RedisServer, timeout: Duration) -> RedisCache {
    RedisCache::builder()
        .url(server.url())
        .namespace("faults:")
        .pool_size(POOL_SIZE)
        .timeout(timeout)
        .build()
        .unwrap()
}

/// Runs `n` concurrent `get`s of a known key and returns how many gave the right value.
async fn healthy_reads(cache: &RedisCache, n: usize) -> usize {
    let reads: Vec<_> = (0..n)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("known").await })
        })
        .collect();
    let mut ok = 0;
    for read in reads {
        if let Ok(Some(v)) = read.await.unwrap() {
            assert_eq!(v, "value");
            ok += 1;
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_cache_serves_through_a_kill_a_restart_and_a_pause() {
    let mut server = RedisServer::start();
    let cache = cache(&server, Duration::from_secs(2));
    cache.set("known", "value", None).await.unwrap();
    // Every lane holds a connection.
    assert_eq!(healthy_reads(&cache, 64).await, 64);

    server.kill();
    for _ in 0..2 * POOL_SIZE {
        let started = Instant::now();
        let err = cache.get("known").await.unwrap_err();
        assert!(
            matches!(err, CacheError::Unavailable { .. }),
            "a dead server is Unavailable: {err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a dead server must fail fast, not wait for the 2 s timeout: {:?}",
            started.elapsed()
        );
    }

    server.restart();
    // The failures put each lane in a back-off (at most 2 s) before it connects again.
    cache_serves_within(&cache, Duration::from_secs(4)).await;
    // The data is gone (the server keeps nothing on disk); the connections must all work.
    cache.set("known", "value", None).await.unwrap();
    assert_eq!(
        healthy_reads(&cache, 256).await,
        256,
        "every lane must have replaced its broken connection"
    );

    // Then stopped: the same cache's calls end in Timeout within the bound...
    server.pause();
    for _ in 0..POOL_SIZE {
        let started = Instant::now();
        let result = cache.get("known").await;
        assert!(
            matches!(result, Err(CacheError::Timeout { .. })),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    // ...and it serves again once the server resumes.
    server.resume();
    cache_serves_within(&cache, Duration::from_secs(5)).await;
    assert_eq!(healthy_reads(&cache, 256).await, 256);
}

/// Waits until every one of 64 concurrent pings succeeds, which takes every lane.
async fn cache_serves_within(cache: &RedisCache, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let pings: Vec<_> = (0..64)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.ping().await })
            })
            .collect();
        let mut failed = None;
        for ping in pings {
            if let Err(err) = ping.await.unwrap() {
                failed = Some(err);
            }
        }
        let Some(err) = failed else { return };
        assert!(
            Instant::now() < deadline,
            "not every lane serves within {within:?}: {err:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_server_gives_timeouts_within_the_bound_then_recovers() {
    let server = RedisServer::start();
    let timeout = Duration::from_millis(300);
    let cache = cache(&server, timeout);
    cache.set("known", "value", None).await.unwrap();
    assert_eq!(healthy_reads(&cache, 16).await, 16);

    server.pause();
    // Twice over: first on the connections the lanes hold, then on the pool's recycling and
    // fresh connects, which a stopped server also leaves unanswered.
    for round in 0..2 {
        let calls: Vec<_> = (0..16)
            .map(|i| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let result = if i % 2 == 0 {
                        cache.get("known").await.map(drop)
                    } else {
                        cache.set("other", "x", None).await
                    };
                    (result, started.elapsed())
                })
            })
            .collect();
        for call in calls {
            let (result, took) = call.await.unwrap();
            assert!(
                matches!(result, Err(CacheError::Timeout { after }) if after == timeout),
                "round {round}: {result:?}"
            );
            assert!(
                took < timeout + Duration::from_millis(700),
                "round {round}: a call took {took:?} against a {timeout:?} bound"
            );
        }
    }

    server.resume();
    cache_serves_within(&cache, Duration::from_secs(5)).await;
    assert_eq!(healthy_reads(&cache, 64).await, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_memory_is_a_backend_error_with_the_oom_code() {
    let server = RedisServer::builder()
        .config("maxmemory", "2mb")
        .config("maxmemory-policy", "noeviction")
        .start();
    let cache = cache(&server, Duration::from_secs(2));
    let value = "x".repeat(64 * 1024);
    let mut written = 0;
    let err = loop {
        match cache.set(&format!("big{written}"), &value, None).await {
            Ok(()) => written += 1,
            Err(err) => break err,
        }
        assert!(written < 1_000, "2 MB of maxmemory never filled");
    };
    assert!(
        matches!(&err, CacheError::Backend { code: Some(code), .. } if code == "OOM"),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("OOM"));
    assert!(!err.is_retryable());
    // Reads and deletes still work, and freeing memory makes writes work again.
    assert_eq!(cache.get("big0").await.unwrap().as_deref(), Some(&*value));
    for i in 0..written {
        cache.delete(&format!("big{i}")).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache.set("after", "ok", None).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "writes did not resume after freeing memory"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cache.get("after").await.unwrap().as_deref(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_keys_and_values_are_refused_before_sending() {
    let limit = 1024 * 1024;
    let server = RedisServer::builder()
        .config("proto-max-bulk-len", limit.to_string())
        .start();
    let cache = RedisCache::builder()
        .url(server.url())
        .namespace("big:")
        .pool_size(1)
        .max_size(limit)
        .build()
        .unwrap();
    cache.set("known", "value", None).await.unwrap();

    // Exactly the limit is accepted by both.
    let at_limit = "v".repeat(limit);
    cache.set("at-limit", &at_limit, None).await.unwrap();
    assert_eq!(
        cache.get("at-limit").await.unwrap().map(|v| v.len()),
        Some(limit)
    );

    // One byte over: refused here, with the sizes, and nothing is sent.
    let over = "v".repeat(limit + 1);
    match cache.set("over", &over, None).await {
        Err(CacheError::TooLarge {
            what,
            size,
            limit: l,
        }) => {
            assert_eq!((what, size, l), ("value", limit + 1, limit));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The same for bytes, counted in bytes, one at a time and in a batch.
    let over_bytes = cache_redis::Bytes::from(vec![0xff_u8; limit + 1]);
    for result in [
        cache.set_bytes("over", over_bytes.clone(), None).await,
        cache
            .set_many_bytes(
                &[("fine", cache_redis::Bytes::new()), ("over", over_bytes)],
                None,
            )
            .await,
    ] {
        assert!(
            matches!(result, Err(CacheError::TooLarge { what: "value", size, .. }) if size == limit + 1),
            "{result:?}"
        );
    }
    assert_eq!(
        cache.get_bytes("fine").await.unwrap(),
        None,
        "a refused batch sends nothing"
    );
    // Had it been sent, Redis would have closed the one connection.
    assert_eq!(cache.get("known").await.unwrap().as_deref(), Some("value"));
    let long_key = "k".repeat(limit - "big:".len() + 1);
    assert!(matches!(
        cache.get(&long_key).await,
        Err(CacheError::TooLarge { what: "key", .. })
    ));
    assert!(matches!(
        cache.delete(&long_key).await,
        Err(CacheError::TooLarge { what: "key", .. })
    ));
    assert_eq!(cache.get("over").await.unwrap(), None, "nothing was stored");
}

/// Why the check exists: without it Redis drops the connection, failing what shares it. The
/// cache reports an error (not a hang) and replaces the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_limit_below_max_size_fails_cleanly_and_the_cache_recovers() {
    let server = RedisServer::builder()
        .config("proto-max-bulk-len", "1mb")
        .start();
    let cache = cache(&server, Duration::from_secs(2));
    cache.set("known", "value", None).await.unwrap();
    let err = cache
        .set("over", &"v".repeat(2 * 1024 * 1024), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::Unavailable { .. } | CacheError::Backend { .. }
        ),
        "{err:?}"
    );
    assert_eq!(healthy_reads(&cache, 32).await, 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_bytes_and_types_are_errors_not_panics() {
    let server = RedisServer::start();
    let cache = cache(&server, Duration::from_secs(2));
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("faults:latin1")
        .arg(&b"caf\xe9"[..])
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg("faults:list")
        .arg("item")
        .query_async(&mut raw)
        .await
        .unwrap();

    let err = cache.get("latin1").await.unwrap_err();
    assert!(matches!(err, CacheError::InvalidValue { .. }), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());

    let err = cache.get("list").await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"), "{err:?}");

    // Overwriting fixes both, and the connection was never affected.
    cache.set("latin1", "café", None).await.unwrap();
    assert_eq!(cache.get("latin1").await.unwrap().as_deref(), Some("café"));
    cache.set("list", "now a string", None).await.unwrap();
    assert_eq!(
        cache.get("list").await.unwrap().as_deref(),
        Some("now a string")
    );
}
