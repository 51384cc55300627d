//! Batches on Redis: one command per chunk (counted by the server), checks before any I/O,
//! TTLs in milliseconds, and errors from a pipeline.

use std::collections::HashMap;
use std::time::Duration;

use cache_redis::{Cache, CacheError, RedisCache};
use redis_test_server::RedisServer;

fn cache(server: &RedisServer) -> RedisCache {
    RedisCache::builder()
        .url(server.url())
        .namespace("batch:")
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Calls per command since the last `CONFIG RESETSTAT`, from `INFO commandstats`.
async fn command_calls(raw: &mut redis::aio::MultiplexedConnection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

async fn reset_stats(raw: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(raw)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_batch_is_one_command_per_thousand_keys() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let mut raw = raw(&server).await;
    cache.ping().await.unwrap();

    let entries: Vec<(String, String)> = (0..100)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    reset_stats(&mut raw).await;
    cache
        .set_many(&entries, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let values = cache.get_many(&keys).await.unwrap();
    cache.delete_many(&keys).await.unwrap();
    let calls = command_calls(&mut raw).await;
    assert_eq!(values.len(), 100);
    assert!(
        values
            .iter()
            .enumerate()
            .all(|(i, v)| v.as_deref() == Some(format!("v{i}").as_str()))
    );
    assert_eq!(calls.get("set"), Some(&100), "{calls:?}");
    assert_eq!(
        calls.get("mget"),
        Some(&1),
        "100 keys are one MGET: {calls:?}"
    );
    assert_eq!(
        calls.get("unlink"),
        Some(&1),
        "100 keys are one UNLINK: {calls:?}"
    );
    assert_eq!(calls.get("get"), None, "{calls:?}");

    let many: Vec<String> = (0..2_500).map(|i| format!("many{i}")).collect();
    reset_stats(&mut raw).await;
    cache.get_many(&many).await.unwrap();
    cache.delete_many(&many).await.unwrap();
    let calls = command_calls(&mut raw).await;
    assert_eq!(
        calls.get("mget"),
        Some(&3),
        "2,500 keys are three MGETs: {calls:?}"
    );
    assert_eq!(calls.get("unlink"), Some(&3), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_many_checks_every_entry_before_sending_anything() {
    let server = RedisServer::start();
    let cache = RedisCache::builder()
        .url(server.url())
        .namespace("batch:")
        .max_size(1024)
        .build()
        .unwrap();
    let big = "x".repeat(2_000);
    let entries = [("a", "small"), ("b", big.as_str()), ("c", "small")];
    let err = cache.set_many(&entries, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::TooLarge {
                what: "value",
                size: 2_000,
                limit: 1024
            }
        ),
        "{err:?}"
    );
    let long_key = "k".repeat(2_000);
    let err = cache
        .set_many(&[("a", "small"), (long_key.as_str(), "v")], None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CacheError::TooLarge { what: "key", .. }),
        "{err:?}"
    );
    let err = cache.get_many(&["a", long_key.as_str()]).await.unwrap_err();
    assert!(
        matches!(err, CacheError::TooLarge { what: "key", .. }),
        "{err:?}"
    );
    assert_eq!(
        cache.get_many(&["a", "b", "c"]).await.unwrap(),
        [None, None, None],
        "a refused batch stores nothing"
    );
    assert_eq!(cache.stats().sets, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_many_sends_the_ttl_in_milliseconds_with_each_value() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let mut raw = raw(&server).await;
    cache
        .set_many(
            &[("a", "1"), ("b", "2")],
            Some(Duration::from_micros(1_500_100)),
        )
        .await
        .unwrap();
    for key in ["batch:a", "batch:b"] {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!((1_000..=1_501).contains(&pttl), "{key}: PTTL {pttl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_many_out_of_memory_is_a_backend_error_with_the_oom_code() {
    let server = RedisServer::builder()
        .config("maxmemory", "2mb")
        .config("maxmemory-policy", "noeviction")
        .start();
    let cache = cache(&server);
    let value = "x".repeat(64 * 1024);
    let entries: Vec<(String, &str)> = (0..64)
        .map(|i| (format!("big{i}"), value.as_str()))
        .collect();
    let err = cache.set_many(&entries, None).await.unwrap_err();
    assert_eq!(err.code(), Some("OOM"), "{err:?}");
    assert!(matches!(err, CacheError::Backend { .. }), "{err:?}");
    // Part of the batch was stored before memory ran out, as the docs say.
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    let stored = cache.get_many(&keys).await.unwrap();
    let count = stored.iter().filter(|v| v.is_some()).count();
    assert!(count > 0 && count < 64, "{count} of 64 stored");
    assert_eq!(cache.stats().errors, 1);
}

/// One value another client wrote as bytes that are not UTF-8 fails the whole `get_many`
/// (reading it as a miss would hide foreign data) with an error that gives the key's position
/// in the batch, never the key itself. `get` of that key fails the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_names_the_position_of_a_value_that_is_not_utf8() {
    let server = RedisServer::start();
    let cache = cache(&server);
    cache
        .set_many(&[("secret-a", "1"), ("secret-c", "3")], None)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("batch:secret-b")
        .arg(&[0xff_u8, 0xfe, 0x00][..])
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();

    let err = cache
        .get_many(&["secret-a", "missing", "secret-b", "secret-c"])
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, CacheError::InvalidValue { .. }), "{err:?}");
    assert!(
        text.contains("position 2 of a batch of 4"),
        "the position is named: {text}"
    );
    assert!(text.contains("utf-8"), "{text}");
    assert!(
        !text.contains("secret"),
        "a key reached the message: {text}"
    );
    assert!(!err.is_retryable());

    let err = cache.get("secret-b").await.unwrap_err();
    assert!(matches!(err, CacheError::InvalidValue { .. }), "{err:?}");
    // The other keys still read one by one.
    assert_eq!(cache.get("secret-c").await.unwrap().as_deref(), Some("3"));
}
