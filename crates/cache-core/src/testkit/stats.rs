//! `stats()`: the counts every backend keeps.

use super::{key, ok};
use crate::{Cache, CacheStats};

/// Rule: `stats()` counts hits, misses, sets and deletes per key, through single and batch
/// operations, and clones share the counts.
///
/// Compares counts before and after a scripted sequence, so the cache may have been used
/// before; nothing else may use it meanwhile.
pub async fn stats_count_a_scripted_sequence<C: Cache + Clone>(cache: &C) {
    let (a, b, missing) = (
        key("stats", "a"),
        key("stats", "b"),
        key("stats", "missing"),
    );
    let before = cache.stats();

    ok("set", cache.set(&a, "1", None)).await;
    ok("set", cache.set(&b, "2", None)).await;
    ok("get of a present key", cache.get(&a)).await;
    ok("get of a missing key", cache.get(&missing)).await;
    ok("get_many", cache.get_many(&[&a, &missing, &b])).await;
    ok("delete", cache.delete(&a)).await;
    ok("get of a deleted key", cache.get(&a)).await;
    ok("delete_many", cache.delete_many(&[&b, &missing])).await;
    ok(
        "set_many",
        cache.set_many(&[(&a, "x"), (&b, "y"), (&missing, "z")], None),
    )
    .await;
    let clone = cache.clone();
    ok("get through a clone", clone.get(&missing)).await;

    let after = clone.stats();
    let counted = CacheStats {
        hits: after.hits - before.hits,
        misses: after.misses - before.misses,
        sets: after.sets - before.sets,
        deletes: after.deletes - before.deletes,
        errors: after.errors - before.errors,
        ..CacheStats::default()
    };
    let expected = CacheStats {
        hits: 4,
        misses: 3,
        sets: 5,
        deletes: 3,
        errors: 0,
        ..CacheStats::default()
    };
    assert_eq!(
        counted, expected,
        "stats() must count each key of the scripted sequence (before {before:?}, after {after:?})"
    );
}
