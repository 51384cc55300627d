//! Expiry, and the TTLs that must be refused.

use std::time::Duration;

use tokio::time::sleep;

use super::{in_time, key, ok};
use crate::{Cache, CacheError};

/// A TTL short enough to wait for, long enough to read the entry before it passes.
const SHORT_TTL: Duration = Duration::from_millis(400);
/// How long to wait for [`SHORT_TTL`] to pass: a generous margin for a loaded machine.
const AFTER_SHORT_TTL: Duration = Duration::from_millis(1000);

/// Asserts that `result` is `InvalidTtl` and that `k` still reads as `expected`.
async fn assert_rejected<C: Cache>(
    cache: &C,
    result: crate::Result<()>,
    ttl: Duration,
    k: &str,
    expected: Option<&str>,
) {
    assert!(
        matches!(result, Err(CacheError::InvalidTtl { .. })),
        "set with ttl {ttl:?} must be CacheError::InvalidTtl, got {result:?}"
    );
    assert_eq!(
        ok("get after a rejected set", cache.get(k))
            .await
            .as_deref(),
        expected,
        "a set rejected for its ttl ({ttl:?}) must change nothing"
    );
}

/// Rule: a zero TTL is `InvalidTtl`, and the rejected `set` changes nothing.
pub async fn zero_ttl_is_rejected_and_changes_nothing<C: Cache>(cache: &C) {
    let (kept, missing) = (key("zero_ttl", "kept"), key("zero_ttl", "missing"));
    ok("set", cache.set(&kept, "old", None)).await;
    let result = cache.set(&kept, "new", Some(Duration::ZERO)).await;
    assert_rejected(cache, result, Duration::ZERO, &kept, Some("old")).await;
    let result = cache.set(&missing, "new", Some(Duration::ZERO)).await;
    assert_rejected(cache, result, Duration::ZERO, &missing, None).await;
}

/// Rule: a TTL too large for the backend (`Duration::MAX`) is `InvalidTtl`, never a panic,
/// and the rejected `set` changes nothing, also for a key that had a TTL.
pub async fn overflowing_ttl_is_rejected_and_changes_nothing<C: Cache>(cache: &C) {
    let (kept, missing) = (key("max_ttl", "kept"), key("max_ttl", "missing"));
    ok(
        "set",
        cache.set(&kept, "old", Some(Duration::from_secs(300))),
    )
    .await;
    for ttl in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
        let result = cache.set(&kept, "new", Some(ttl)).await;
        assert_rejected(cache, result, ttl, &kept, Some("old")).await;
        let result = cache.set(&missing, "new", Some(ttl)).await;
        assert_rejected(cache, result, ttl, &missing, None).await;
    }
}

/// Rule: an entry is readable before its TTL passes and reads as `None` after, however often
/// it is read; the key can be set again afterwards. A cache that keeps no expired entries
/// (`stale_retention` zero) returns none from `get_stale_bytes` either.
pub async fn expired_entry_is_never_returned<C: Cache>(cache: &C) {
    let (n, before) = in_time("set, then get before expiry", SHORT_TTL, |n| async move {
        let k = key("expiry", n);
        ok(
            "set with ttl",
            cache.set(&k, "short-lived", Some(SHORT_TTL)),
        )
        .await;
        ok("get before expiry", cache.get(&k)).await
    })
    .await;
    let k = key("expiry", n);
    assert_eq!(
        before.as_deref(),
        Some("short-lived"),
        "an entry must be readable before its ttl of {SHORT_TTL:?} passes"
    );
    sleep(AFTER_SHORT_TTL).await;
    for _ in 0..3 {
        assert_eq!(
            ok("get after expiry", cache.get(&k)).await,
            None,
            "an expired entry was returned"
        );
    }
    if cache.stale_retention().is_zero() {
        assert_eq!(
            ok("get_stale_bytes after expiry", cache.get_stale_bytes(&k)).await,
            None,
            "get_stale_bytes returned an expired entry, yet stale_retention is zero"
        );
    }
    ok("set after expiry", cache.set(&k, "again", None)).await;
    assert_eq!(
        ok("get", cache.get(&k)).await.as_deref(),
        Some("again"),
        "an expired key must be settable again"
    );
}

/// Rule: non-zero TTLs below 1 ms (1 ns, 999 µs) are accepted, rounded up to 1 ms, and expire.
pub async fn sub_millisecond_ttl_rounds_up_and_expires<C: Cache>(cache: &C) {
    let ttls = [Duration::from_nanos(1), Duration::from_micros(999)];
    for (i, ttl) in ttls.into_iter().enumerate() {
        let k = key("sub_ms_ttl", i);
        let result = cache.set(&k, "blink", Some(ttl)).await;
        assert!(
            result.is_ok(),
            "a ttl of {ttl:?} must be accepted (rounded up to 1 ms), got {result:?}"
        );
    }
    sleep(Duration::from_millis(100)).await;
    for i in 0..ttls.len() {
        assert_eq!(
            ok("get", cache.get(&key("sub_ms_ttl", i))).await,
            None,
            "a sub-millisecond ttl did not expire"
        );
    }
}

/// Rule: `set` with `ttl: None` removes an earlier TTL of the key.
pub async fn plain_set_drops_an_earlier_ttl<C: Cache>(cache: &C) {
    let k = key("drop_ttl", "k");
    ok("set with ttl", cache.set(&k, "temporary", Some(SHORT_TTL))).await;
    ok("set without ttl", cache.set(&k, "permanent", None)).await;
    sleep(AFTER_SHORT_TTL).await;
    assert_eq!(
        ok("get", cache.get(&k)).await.as_deref(),
        Some("permanent"),
        "set with ttl None must remove the earlier ttl"
    );
}

/// Rule: `set` with a TTL on a key stored without one makes it expire.
pub async fn ttl_set_on_existing_key_applies<C: Cache>(cache: &C) {
    let (n, before) = in_time("set, set with ttl, get", SHORT_TTL, |n| async move {
        let k = key("add_ttl", n);
        ok("set without ttl", cache.set(&k, "permanent", None)).await;
        ok("set with ttl", cache.set(&k, "temporary", Some(SHORT_TTL))).await;
        ok("get", cache.get(&k)).await
    })
    .await;
    let k = key("add_ttl", n);
    assert_eq!(
        before.as_deref(),
        Some("temporary"),
        "set with a ttl must overwrite"
    );
    sleep(AFTER_SHORT_TTL).await;
    assert_eq!(
        ok("get", cache.get(&k)).await,
        None,
        "a ttl set on an existing key did not apply"
    );
}
