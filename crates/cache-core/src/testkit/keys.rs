//! Keys and values a careless backend gets wrong.

use super::{key, ok};
use crate::Cache;

/// Keys that break naive backends: empty, NUL bytes, glob and escape characters, unicode,
/// white space, and a long key.
fn awkward_keys() -> Vec<String> {
    let mut keys = vec![
        String::new(),
        "\0".to_owned(),
        key("keys", "nul\0inside"),
        key("keys", "nul"),
        key("keys", "*"),
        key("keys", "?"),
        key("keys", "[a-z]"),
        key("keys", "\\"),
        key("keys", "*?[]\\^-!"),
        key("keys", "ключ/鍵/🦀"),
        key("keys", " spaces and\ttabs\r\n"),
        key("keys", "%s%n{}"),
    ];
    keys.push(key("keys", "long-".repeat(2000)));
    keys
}

/// Rule: any UTF-8 string is a key, including empty, NUL bytes, glob characters and unicode;
/// keys that differ only after a NUL byte are distinct.
pub async fn awkward_keys_round_trip<C: Cache>(cache: &C) {
    let keys = awkward_keys();
    for (i, k) in keys.iter().enumerate() {
        ok(
            "set of an awkward key",
            cache.set(k, &format!("value-{i}"), None),
        )
        .await;
    }
    for (i, k) in keys.iter().enumerate() {
        let got = ok("get of an awkward key", cache.get(k)).await;
        assert_eq!(
            got,
            Some(format!("value-{i}")),
            "key {k:?} did not round-trip"
        );
    }
    for k in &keys {
        ok("delete of an awkward key", cache.delete(k)).await;
        assert_eq!(
            ok("get", cache.get(k)).await,
            None,
            "key {k:?} survived its delete"
        );
    }
}

/// Rule: any UTF-8 string is a value, including empty, NUL bytes, unicode and 4 MiB.
pub async fn awkward_values_round_trip<C: Cache>(cache: &C) {
    let big: String = "0123456789abcdef".repeat(4 * 1024 * 1024 / 16);
    let values = [
        String::new(),
        "\0".to_owned(),
        "before\0after".to_owned(),
        "значение 値 🦀".to_owned(),
        "*?[]\\".to_owned(),
        big,
    ];
    for (i, v) in values.iter().enumerate() {
        let k = key("values", i);
        ok("set of an awkward value", cache.set(&k, v, None)).await;
        let got = ok("get of an awkward value", cache.get(&k)).await;
        assert!(
            got.as_deref() == Some(v.as_str()),
            "value #{i} ({} bytes) did not round-trip: got {:?} bytes",
            v.len(),
            got.map(|g| g.len())
        );
    }
    let empty = key("values", 0);
    assert_eq!(
        ok("get", cache.get(&empty)).await,
        Some(String::new()),
        "an empty value must read as Some(\"\"), not as a miss"
    );
}

/// Rule: glob characters in keys are literal: deleting `p:*` removes that one key, not every
/// key under `p:`.
pub async fn glob_characters_are_literal<C: Cache>(cache: &C) {
    let plain = key("glob", "abc");
    let star = key("glob", "*");
    let class = key("glob", "[a]bc");
    ok("set", cache.set(&plain, "plain", None)).await;
    ok("set", cache.set(&star, "star", None)).await;
    ok("set", cache.set(&class, "class", None)).await;
    ok("delete of a glob key", cache.delete(&star)).await;
    ok("delete of a glob key", cache.delete(&class)).await;
    assert_eq!(
        ok("get", cache.get(&plain)).await.as_deref(),
        Some("plain"),
        "deleting {star:?} or {class:?} removed {plain:?}"
    );
    assert_eq!(
        ok("get", cache.get(&star)).await,
        None,
        "{star:?} survived its delete"
    );
    assert_eq!(
        ok("get", cache.get(&class)).await,
        None,
        "{class:?} survived its delete"
    );
}
