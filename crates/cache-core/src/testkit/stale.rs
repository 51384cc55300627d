//! `get_stale_bytes`: what a tiered cache's fail-safe reads when its shared tier is down.

use std::time::Duration;

use super::{key, ok};
use crate::{Bytes, Cache};

/// Rule: `get_stale_bytes` of a live entry (with or without a TTL) returns its value with an
/// age of zero, whatever the cache's `stale_retention`; of a key never set, or deleted,
/// `None`: a deleted entry is not kept, only an expired one may be.
pub async fn get_stale_bytes_returns_a_live_value_with_zero_age<C: Cache>(cache: &C) {
    let missing = key("stale", "never-set");
    assert_eq!(
        ok(
            "get_stale_bytes of a missing key",
            cache.get_stale_bytes(&missing)
        )
        .await,
        None,
        "get_stale_bytes of a key that was never set must be None"
    );
    for (name, ttl) in [("no-ttl", None), ("ttl", Some(Duration::from_secs(300)))] {
        let k = key("stale", name);
        ok("set", cache.set(&k, "value", ttl)).await;
        assert_eq!(
            ok("get_stale_bytes of a live entry", cache.get_stale_bytes(&k)).await,
            Some((Bytes::from_static(b"value"), Duration::ZERO)),
            "get_stale_bytes of a live entry (ttl {ttl:?}) must return its value, expired \
             zero ago"
        );
        ok("delete", cache.delete(&k)).await;
        assert_eq!(
            ok(
                "get_stale_bytes of a deleted key",
                cache.get_stale_bytes(&k)
            )
            .await,
            None,
            "get_stale_bytes returned a deleted entry (ttl {ttl:?})"
        );
    }
}
