//! Operations called where the cache cannot run: outside a tokio runtime, or on one built
//! without the time or I/O driver. Each gets a clear, non-retryable `InvalidConfig` naming
//! the fix, and nothing panics; the same cache then serves on a complete runtime.
//!
//! In a binary of its own: a panic hook counts every panic of the process, so a panic caught
//! by tokio (in a spawned task) fails the test too.

use std::future::Future;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_redis::backplane::{Backplane, Invalidation, Message};
use cache_redis::{Cache, CacheError, CacheExt, RedisBackplane, RedisCache};
use redis_test_server::RedisServer;

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// Runs every operation of `cache` through `block_on`; each must fail with an
/// `InvalidConfig` whose message contains `says`.
fn every_operation_refuses(
    cache: &RedisCache,
    says: &str,
    block_on: impl Fn(std::pin::Pin<Box<dyn Future<Output = ()> + '_>>),
) {
    let check = |op: &str, result: cache_redis::Result<()>| {
        let err = result.expect_err(op);
        assert!(
            matches!(err, CacheError::InvalidConfig { .. }),
            "{op}: {err:?}"
        );
        assert!(!err.is_retryable(), "{op}: retrying cannot help: {err}");
        let text = err.to_string();
        assert!(text.contains(says), "{op}: {text}");
        assert!(text.contains("enable_all()"), "{op} names the fix: {text}");
    };
    block_on(Box::pin(async {
        check("ping", cache.ping().await);
        check("get", cache.get("k").await.map(drop));
        check("set", cache.set("k", "v", None).await);
        check("delete", cache.delete("k").await);
        check("clear", cache.clear().await);
        check("get_many", cache.get_many(&["a", "b"]).await.map(drop));
        check("set_many", cache.set_many(&[("a", "1")], None).await);
        check("delete_many", cache.delete_many(&["a"]).await);
        let loaded = cache
            .get_or_set_with("k", None, || async { Ok::<_, std::io::Error>("v".into()) })
            .await;
        check("get_or_set_with", loaded.map(drop));
        check(
            "get_bytes_with_ttl",
            cache.get_bytes_with_ttl("k").await.map(drop),
        );
        let backplane = RedisBackplane::for_cache(cache);
        let message = Message {
            sender: 1,
            invalidation: Invalidation::Clear,
        };
        check("publish", backplane.publish(&message).await);
        // No task can start here: the subscription waits, and nothing panics.
        drop(backplane.subscribe());
    }));
}

fn cache(server: &RedisServer) -> RedisCache {
    RedisCache::builder()
        .url(server.url())
        .namespace("executors:")
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// The same cache still serves on a runtime with every driver.
fn serves_afterwards(cache: &RedisCache) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        cache.set("k", "v", None).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    });
}

#[test]
fn outside_any_runtime_every_operation_says_to_run_in_tokio() {
    count_panics();
    let server = RedisServer::start();
    let cache = cache(&server);
    every_operation_refuses(&cache, "outside a tokio runtime", |fut| {
        futures_executor::block_on(fut);
    });
    serves_afterwards(&cache);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic happened");
}

#[test]
fn a_runtime_without_timers_gets_an_error_naming_the_time_driver() {
    count_panics();
    let server = RedisServer::start();
    let cache = cache(&server);
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    every_operation_refuses(&cache, "time driver", |fut| current.block_on(fut));
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .unwrap();
    every_operation_refuses(&cache, "time driver", |fut| multi.block_on(fut));
    // Also from tasks spawned on the runtime's workers, not only from `block_on`.
    multi.block_on(async {
        let task = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get("k").await }
        });
        let err = task.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("time driver"), "{err}");
    });
    serves_afterwards(&cache);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic happened");
}

#[test]
fn a_runtime_without_io_gets_an_error_naming_the_io_driver() {
    count_panics();
    let server = RedisServer::start();
    let cache = cache(&server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    every_operation_refuses(&cache, "io driver", |fut| runtime.block_on(fut));
    serves_afterwards(&cache);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic happened");
}

#[test]
fn a_runtime_with_no_driver_at_all_gets_an_error_too() {
    count_panics();
    let server = RedisServer::start();
    let cache = cache(&server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    every_operation_refuses(&cache, "driver", |fut| runtime.block_on(fut));
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic happened");
}
