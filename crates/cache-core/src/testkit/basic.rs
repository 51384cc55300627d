//! Reads, writes, overwrites, deletes and clear.

use super::{key, ok};
use crate::Cache;

/// Rule: `get` of a key that was never set is `Ok(None)`, not an error.
pub async fn missing_key_is_none<C: Cache>(cache: &C) {
    let got = ok(
        "get of a missing key",
        cache.get(&key("missing", "never-set")),
    )
    .await;
    assert_eq!(got, None, "a key that was never set must read as None");
}

/// Rule: a value that was `set` is returned by `get`, unchanged.
pub async fn set_then_get_returns_value<C: Cache>(cache: &C) {
    let k = key("set_get", "k");
    ok("set", cache.set(&k, "value-1", None)).await;
    let got = ok("get", cache.get(&k)).await;
    assert_eq!(
        got.as_deref(),
        Some("value-1"),
        "get must return what set stored"
    );
}

/// Rule: `set` on an existing key replaces its value, and other keys keep theirs.
pub async fn set_overwrites_value<C: Cache>(cache: &C) {
    let (a, b) = (key("overwrite", "a"), key("overwrite", "b"));
    ok("set a", cache.set(&a, "first", None)).await;
    ok("set b", cache.set(&b, "other", None)).await;
    ok("overwrite a", cache.set(&a, "second", None)).await;
    assert_eq!(
        ok("get a", cache.get(&a)).await.as_deref(),
        Some("second"),
        "set must overwrite"
    );
    assert_eq!(
        ok("get b", cache.get(&b)).await.as_deref(),
        Some("other"),
        "overwrite touched another key"
    );
    ok("overwrite a with a shorter value", cache.set(&a, "3", None)).await;
    assert_eq!(
        ok("get a", cache.get(&a)).await.as_deref(),
        Some("3"),
        "a shorter value must replace a longer one whole"
    );
}

/// Rule: `delete` of a key that does not exist is `Ok(())`, and deleting twice is fine.
pub async fn delete_missing_key_is_ok<C: Cache>(cache: &C) {
    let k = key("delete_missing", "never-set");
    ok("delete of a missing key", cache.delete(&k)).await;
    ok("second delete of a missing key", cache.delete(&k)).await;
    assert_eq!(
        ok("get", cache.get(&k)).await,
        None,
        "delete must not create a key"
    );
}

/// Rule: `delete` removes that key and no other.
pub async fn delete_removes_only_that_key<C: Cache>(cache: &C) {
    let (a, b) = (key("delete", "a"), key("delete", "ab"));
    ok("set a", cache.set(&a, "1", None)).await;
    ok("set ab", cache.set(&b, "2", None)).await;
    ok("delete a", cache.delete(&a)).await;
    assert_eq!(
        ok("get a", cache.get(&a)).await,
        None,
        "a deleted key must read as None"
    );
    assert_eq!(
        ok("get ab", cache.get(&b)).await.as_deref(),
        Some("2"),
        "delete removed a key sharing its prefix"
    );
    ok("set a again", cache.set(&a, "3", None)).await;
    assert_eq!(
        ok("get a", cache.get(&a)).await.as_deref(),
        Some("3"),
        "a deleted key must be settable again"
    );
}

/// Rule: `clear` removes every entry of the cache (with and without TTL), and the cache keeps
/// working afterwards.
///
/// Clears the whole cache: run it on a cache of its own.
pub async fn clear_removes_every_entry<C: Cache>(cache: &C) {
    let keys: Vec<String> = (0..100).map(|i| key("clear", i)).collect();
    for (i, k) in keys.iter().enumerate() {
        let ttl = (i % 2 == 0).then_some(std::time::Duration::from_secs(300));
        ok("set", cache.set(k, "v", ttl)).await;
    }
    ok("clear", cache.clear()).await;
    for k in &keys {
        assert_eq!(
            ok("get after clear", cache.get(k)).await,
            None,
            "clear left {k:?} behind"
        );
    }
    ok("clear of an empty cache", cache.clear()).await;
    ok("set after clear", cache.set(&keys[0], "again", None)).await;
    assert_eq!(
        ok("get after clear", cache.get(&keys[0])).await.as_deref(),
        Some("again"),
        "the cache must keep working after clear"
    );
}
