//! `TypedCache` over a backend: round trips and values that no longer decode.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{key, ok};
use crate::{Cache, CacheError, TypedCache};

/// A value with the shapes JSON has to get right: nesting, unicode, large numbers, floats,
/// options and maps (std types, so the suite needs no serde derive).
type Span = (
    String,
    u64,
    f64,
    Option<Vec<i32>>,
    BTreeMap<String, Vec<i32>>,
);

fn span() -> Span {
    (
        "ab\u{0}c \u{1F600} \"quoted\"".into(),
        u64::MAX,
        0.25,
        Some(vec![1, -2, 3]),
        BTreeMap::from([
            ("k".to_owned(), vec![]),
            ("\u{e9}".to_owned(), vec![i32::MIN]),
        ]),
    )
}

/// Rule: a typed value set through `TypedCache` reads back equal, through `get` and
/// `get_or_set_with`.
pub async fn typed_values_round_trip<C: Cache + Clone>(cache: &C) {
    let spans: TypedCache<C, Span> = TypedCache::new(cache.clone());
    let k = key("typed", "span");
    ok(
        "typed set",
        spans.set(&k, &span(), Some(Duration::from_secs(300))),
    )
    .await;
    assert_eq!(ok("typed get", spans.get(&k)).await, Some(span()));
    assert_eq!(
        ok(
            "typed get of a missing key",
            spans.get(&key("typed", "missing"))
        )
        .await,
        None
    );
    let loaded = key("typed", "loaded");
    let value = ok(
        "typed get_or_set_with",
        spans.get_or_set_with(&loaded, None, || async { Ok::<_, CacheError>(span()) }),
    )
    .await;
    assert_eq!(value, span());
    assert_eq!(ok("typed get", spans.get(&loaded)).await, Some(span()));
    ok("typed delete", spans.delete(&k)).await;
    assert_eq!(ok("typed get after delete", spans.get(&k)).await, None);
}

/// Rule: a stored value that does not decode as the type (not JSON, or JSON of another
/// shape) is `CacheError::InvalidValue` naming the type, never a panic.
pub async fn typed_value_that_does_not_decode_is_invalid_value<C: Cache + Clone>(cache: &C) {
    let spans: TypedCache<C, Span> = TypedCache::new(cache.clone());
    for (name, stored) in [
        ("not_json", "not json at all"),
        ("other_shape", r#"{"trace": 5}"#),
        ("truncated", r#"["abc", 1, 0.5, null, {"#),
    ] {
        let k = key("typed_decode", name);
        ok("set", cache.set(&k, stored, None)).await;
        match spans.get(&k).await {
            Err(CacheError::InvalidValue { reason, source }) => {
                assert!(
                    reason.contains("BTreeMap"),
                    "the error must name the type: {reason}"
                );
                assert!(source.is_some(), "the decode error must be the source");
            }
            other => panic!("{stored:?} read as a Span must be InvalidValue, got {other:?}"),
        }
    }
}
