//! Batch operations: `get_many`, `set_many`, `delete_many`.

use std::time::Duration;

use tokio::time::sleep;

use super::{in_time, key, ok};
use crate::{Bytes, Cache, CacheError, Ttl};

/// Large enough to cross the chunking of a backend that splits big batches (Redis: 1,000).
const LARGE_BATCH: usize = 2_500;

/// Rule: `get_many` returns one value per key, in the order of the keys (duplicates
/// included), with `None` for each missing one.
pub async fn get_many_keeps_key_order_and_reports_missing_keys<C: Cache>(cache: &C) {
    let keys: Vec<String> = (0..10).map(|i| key("get_many", i)).collect();
    for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        ok("set", cache.set(k, &format!("value {i}"), None)).await;
    }
    let asked: Vec<&str> = [9, 0, 4, 3, 4, 8, 1]
        .iter()
        .map(|&i| keys[i].as_str())
        .collect();
    let values = ok("get_many", cache.get_many(&asked)).await;
    let expected = [
        None,
        Some("value 0"),
        Some("value 4"),
        None,
        Some("value 4"),
        Some("value 8"),
        None,
    ];
    assert_eq!(
        values.iter().map(Option::as_deref).collect::<Vec<_>>(),
        expected,
        "get_many must answer each key in order, None for missing ones"
    );
}

/// Rule: `set_many` stores every entry, with the one TTL given for the batch; a later entry
/// for the same key wins.
pub async fn set_many_stores_every_entry_with_one_ttl<C: Cache>(cache: &C) {
    let keys = |n: usize| {
        (
            key("set_many", format!("{n}:a")),
            key("set_many", format!("{n}:b")),
            key("set_many", format!("{n}:c")),
        )
    };
    let ttl = Duration::from_millis(400);
    let (n, before) = in_time("set_many, then get before expiry", ttl, |n| async move {
        let (a, b, c) = keys(n);
        let entries = [
            (a.as_str(), "first"),
            (b.as_str(), ""),
            (a.as_str(), "second"),
        ];
        ok("set_many without ttl", cache.set_many(&entries, None)).await;
        let values = ok("get_many", cache.get_many(&[&a, &b])).await;
        assert_eq!(values, [Some("second".to_owned()), Some(String::new())]);

        let owned = vec![(b, "short".to_owned()), (c.clone(), "short".to_owned())];
        ok("set_many with ttl", cache.set_many(&owned, Some(ttl))).await;
        ok("get", cache.get(&c)).await
    })
    .await;
    assert_eq!(
        before.as_deref(),
        Some("short"),
        "set_many with a ttl must store before it expires"
    );
    sleep(Duration::from_millis(1000)).await;
    let (a, b, c) = keys(n);
    let values = ok("get_many after the ttl", cache.get_many(&[&a, &b, &c])).await;
    assert_eq!(
        values,
        [Some("second".to_owned()), None, None],
        "set_many's ttl must apply to each of its entries, and only to them"
    );
}

/// Rule: a `set_many` with a zero or overflowing TTL is `InvalidTtl` and stores nothing.
pub async fn set_many_with_invalid_ttl_changes_nothing<C: Cache>(cache: &C) {
    let (kept, missing) = (key("set_many_ttl", "kept"), key("set_many_ttl", "missing"));
    ok("set", cache.set(&kept, "old", None)).await;
    for ttl in [Duration::ZERO, Duration::MAX] {
        let result = cache
            .set_many(&[(&kept, "new"), (&missing, "new")], Some(ttl))
            .await;
        assert!(
            matches!(result, Err(CacheError::InvalidTtl { .. })),
            "set_many with ttl {ttl:?} must be InvalidTtl, got {result:?}"
        );
        let values = ok("get_many", cache.get_many(&[&kept, &missing])).await;
        assert_eq!(
            values,
            [Some("old".to_owned()), None],
            "a set_many rejected for its ttl ({ttl:?}) must change nothing"
        );
    }
}

/// Rule: `delete_many` removes the given keys, missing ones included without error, and
/// nothing else.
pub async fn delete_many_removes_only_the_given_keys<C: Cache>(cache: &C) {
    let keys: Vec<String> = (0..4).map(|i| key("delete_many", i)).collect();
    let entries: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    ok("set_many", cache.set_many(&entries, None)).await;
    let missing = key("delete_many", "missing");
    ok(
        "delete_many",
        cache.delete_many(&[&keys[0], &missing, &keys[2]]),
    )
    .await;
    let values = ok("get_many", cache.get_many(&keys)).await;
    assert_eq!(
        values.iter().map(Option::as_deref).collect::<Vec<_>>(),
        [None, Some("v"), None, Some("v")],
        "delete_many must remove exactly the keys it is given"
    );
}

/// Rule: empty batches succeed and `get_many` of no keys is empty.
pub async fn empty_batches_are_fine<C: Cache>(cache: &C) {
    let none: [&str; 0] = [];
    assert!(
        ok("get_many of nothing", cache.get_many(&none))
            .await
            .is_empty()
    );
    let no_entries: [(&str, &str); 0] = [];
    ok("set_many of nothing", cache.set_many(&no_entries, None)).await;
    ok("delete_many of nothing", cache.delete_many(&none)).await;
}

/// Rule: batches of thousands of keys (past any chunk size a backend splits them at) keep
/// every entry and the order of the keys.
pub async fn large_batches_round_trip<C: Cache>(cache: &C) {
    let entries: Vec<(String, String)> = (0..LARGE_BATCH)
        .map(|i| (key("large_batch", i), format!("value {i}")))
        .collect();
    ok(
        "set_many of a large batch",
        cache.set_many(&entries, Some(Duration::from_secs(300))),
    )
    .await;
    let keys: Vec<&str> = entries.iter().rev().map(|(k, _)| k.as_str()).collect();
    let values = ok("get_many of a large batch", cache.get_many(&keys)).await;
    assert_eq!(values.len(), LARGE_BATCH);
    for (i, value) in values.iter().enumerate() {
        let n = LARGE_BATCH - 1 - i;
        assert_eq!(
            value.as_deref(),
            Some(format!("value {n}").as_str()),
            "get_many of a large batch must keep the keys' order (position {i})"
        );
    }
    ok("delete_many of a large batch", cache.delete_many(&keys)).await;
    let values = ok("get_many after delete_many", cache.get_many(&keys)).await;
    assert!(
        values.iter().all(Option::is_none),
        "delete_many of a large batch must remove every key"
    );
}

/// Rule: `get_many_bytes_with_ttl` answers each key in order (duplicates included) as
/// `get_bytes_with_ttl` does: the value, and a TTL of the same kind (`Never` for an entry
/// without expiry, the time left for one with a TTL, `Unknown` where the backend cannot
/// tell); `None` for a missing key; an empty batch is an empty answer.
pub async fn get_many_bytes_with_ttl_answers_as_get_bytes_with_ttl<C: Cache>(cache: &C) {
    const TTL: Duration = Duration::from_secs(300);
    let forever = key("get_many_with_ttl", "forever");
    let expiring = key("get_many_with_ttl", "expiring");
    let missing = key("get_many_with_ttl", "missing");
    ok(
        "set",
        cache.set_bytes(&forever, Bytes::from_static(b"f\0"), None),
    )
    .await;
    ok("set", cache.set(&expiring, "e", Some(TTL))).await;
    let asked = [&expiring, &missing, &forever, &expiring];
    let batch = ok(
        "get_many_bytes_with_ttl",
        cache.get_many_bytes_with_ttl(&asked),
    )
    .await;
    assert_eq!(batch.len(), asked.len(), "one answer per key");
    for (k, entry) in asked.iter().zip(&batch) {
        let single = ok("get_bytes_with_ttl", cache.get_bytes_with_ttl(k)).await;
        match (entry, single) {
            (None, None) => {}
            (Some((value, ttl)), Some((single_value, single_ttl))) => {
                assert_eq!(
                    *value, single_value,
                    "the batch must return the stored value"
                );
                match (ttl, single_ttl) {
                    (Ttl::Never, Ttl::Never) | (Ttl::Unknown, Ttl::Unknown) => {}
                    (Ttl::Remaining(left), Ttl::Remaining(_)) => assert!(
                        *left <= TTL && *left > TTL / 2,
                        "the time left must be at most the ttl of {TTL:?} and not far below: \
                         {left:?}"
                    ),
                    (batch, single) => {
                        panic!("the batch said {batch:?} where get_bytes_with_ttl says {single:?}")
                    }
                }
            }
            (batch, single) => {
                panic!("the batch answered {batch:?} where get_bytes_with_ttl answers {single:?}")
            }
        }
    }
    assert!(batch[1].is_none(), "a missing key is None");
    assert!(batch[2].as_ref().is_some_and(|(v, _)| v[..] == b"f\0"[..]));
    let none: [&str; 0] = [];
    assert!(
        ok(
            "empty get_many_bytes_with_ttl",
            cache.get_many_bytes_with_ttl(&none)
        )
        .await
        .is_empty()
    );
    ok("delete_many", cache.delete_many(&[forever, expiring])).await;
}
