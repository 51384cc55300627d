//! Cancellation and close.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use super::{key, ok};
use crate::{Cache, CacheError, CacheExt};

/// Polls `fut` once and drops it, as `tokio::select!` against a ready branch does.
async fn poll_once_then_drop<F: Future>(fut: F) {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| {
        let _ = fut.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
}

/// Rule: dropping operations' futures (unpolled, or after their first poll) never corrupts
/// the cache: each key afterwards reads as missing or as its own value, never another key's,
/// and the cache keeps working.
pub async fn dropped_operations_never_corrupt<C: Cache>(cache: &C) {
    const KEYS: usize = 200;
    let k = |i: usize| key("dropped", i);
    for i in 0..KEYS {
        drop(cache.set(&k(i), "never-polled", None));
        poll_once_then_drop(cache.set(
            &k(i),
            &format!("value-{i}"),
            Some(Duration::from_secs(300)),
        ))
        .await;
        poll_once_then_drop(cache.get(&k((i + 1) % KEYS))).await;
        if i % 3 == 0 {
            poll_once_then_drop(cache.delete(&k(i))).await;
        }
    }
    for i in 0..KEYS {
        let got = ok("get after dropped operations", cache.get(&k(i))).await;
        if let Some(value) = got {
            assert_eq!(
                value,
                format!("value-{i}"),
                "key {i} holds a value it was never given"
            );
        }
    }
    for i in 0..KEYS {
        ok(
            "set after dropped operations",
            cache.set(&k(i), &format!("fresh-{i}"), None),
        )
        .await;
    }
    for i in 0..KEYS {
        let got = ok("get after dropped operations", cache.get(&k(i))).await;
        assert_eq!(
            got,
            Some(format!("fresh-{i}")),
            "the cache stopped working after dropped operations"
        );
    }
}

/// Asserts that `result` is `CacheError::Closed`.
fn assert_closed<T: std::fmt::Debug>(what: &str, result: crate::Result<T>) {
    assert!(
        matches!(result, Err(CacheError::Closed)),
        "{what} after close must be CacheError::Closed, got {result:?}"
    );
}

/// Rule: `close` is idempotent and final: afterwards every operation on the cache and on its
/// clones (made before the close) returns `CacheError::Closed`.
pub async fn close_is_final_for_every_clone<C: Cache + Clone>(cache: C) {
    let clone = cache.clone();
    let k = key("close", "k");
    ok("set before close", cache.set(&k, "v", None)).await;
    ok("close", cache.close()).await;
    for (name, c) in [
        ("the closed cache", &cache),
        ("a clone of the closed cache", &clone),
    ] {
        assert_closed(&format!("get on {name}"), c.get(&k).await);
        assert_closed(&format!("set on {name}"), c.set(&k, "v", None).await);
        assert_closed(
            &format!("set with ttl on {name}"),
            c.set(&k, "v", Some(Duration::from_secs(1))).await,
        );
        assert_closed(&format!("delete on {name}"), c.delete(&k).await);
        assert_closed(&format!("clear on {name}"), c.clear().await);
        assert_closed(&format!("get_many on {name}"), c.get_many(&[&k]).await);
        assert_closed(
            &format!("set_many on {name}"),
            c.set_many(&[(&k, "v")], None).await,
        );
        assert_closed(
            &format!("delete_many on {name}"),
            c.delete_many(&[&k]).await,
        );
        assert_closed(
            &format!("get_or_set_with on {name}"),
            c.get_or_set_with(&k, None, || async { Ok::<_, CacheError>("v".to_owned()) })
                .await,
        );
    }
    ok("second close", cache.close()).await;
    ok("close through a clone", clone.close()).await;
    assert_closed(
        "get on a clone made after close",
        cache.clone().get(&k).await,
    );
}
