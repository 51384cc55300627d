//! Values as bytes: any bytes round-trip, and the string and byte forms read the same entries.

use std::time::Duration;

use tokio::time::sleep;

use super::{in_time, key, ok};
use crate::{Bytes, Cache, CacheError};

/// Bytes that are not UTF-8.
const NOT_UTF8: &[u8] = &[0xff, 0xfe, 0x00, 0x80, b'a'];

/// Values a careless backend gets wrong: not UTF-8, NUL bytes only, empty, every byte value,
/// and 4 MiB of bytes that are not text.
fn awkward_byte_values() -> Vec<Bytes> {
    let every_byte: Vec<u8> = (0..=255).collect();
    let big: Vec<u8> = (0..4 * 1024 * 1024_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    vec![
        Bytes::from_static(NOT_UTF8),
        Bytes::from_static(b"\0\0\0"),
        Bytes::new(),
        Bytes::from(every_byte),
        Bytes::from(big),
    ]
}

/// Rule: any bytes are a value (not UTF-8, NUL bytes, empty, 4 MiB) and read back as written;
/// an overwrite replaces them.
pub async fn byte_values_round_trip<C: Cache>(cache: &C) {
    let values = awkward_byte_values();
    for (i, value) in values.iter().enumerate() {
        let k = key("bytes", i);
        ok("set_bytes", cache.set_bytes(&k, value.clone(), None)).await;
        let got = ok("get_bytes", cache.get_bytes(&k)).await;
        assert!(
            got.as_ref() == Some(value),
            "value {i} ({} bytes) did not round-trip as bytes",
            value.len()
        );
    }
    let k = key("bytes", 0);
    ok(
        "set_bytes over bytes",
        cache.set_bytes(&k, Bytes::from_static(b"\x01"), None),
    )
    .await;
    assert_eq!(
        ok("get_bytes", cache.get_bytes(&k)).await.as_deref(),
        Some(&b"\x01"[..]),
        "set_bytes must overwrite"
    );
}

/// Rule: the string and byte forms read the same entries: `get_bytes` of a value written by
/// `set` is its UTF-8 bytes, `get` of UTF-8 bytes written by `set_bytes` is the string, and
/// `get` of bytes that are not UTF-8 is `InvalidValue` (never a lossy conversion), while
/// `get_bytes` still reads them.
pub async fn string_and_byte_forms_share_entries<C: Cache>(cache: &C) {
    let (text, utf8_bytes, binary) = (
        key("forms", "text"),
        key("forms", "utf8-bytes"),
        key("forms", "binary"),
    );
    ok("set", cache.set(&text, "café\0", None)).await;
    assert_eq!(
        ok("get_bytes of a string", cache.get_bytes(&text))
            .await
            .as_deref(),
        Some("café\0".as_bytes()),
        "get_bytes of a value written by set must return its utf-8 bytes"
    );
    ok(
        "set_bytes of utf-8",
        cache.set_bytes(&utf8_bytes, Bytes::from_static("ключ".as_bytes()), None),
    )
    .await;
    assert_eq!(
        ok("get of utf-8 bytes", cache.get(&utf8_bytes))
            .await
            .as_deref(),
        Some("ключ"),
        "get of utf-8 bytes must return the string"
    );
    ok(
        "set_bytes",
        cache.set_bytes(&binary, Bytes::from_static(NOT_UTF8), None),
    )
    .await;
    let result = cache.get(&binary).await;
    assert!(
        matches!(result, Err(CacheError::InvalidValue { .. })),
        "get of bytes that are not utf-8 must be InvalidValue, got {result:?}"
    );
    assert_eq!(
        ok("get_bytes after a failed get", cache.get_bytes(&binary))
            .await
            .as_deref(),
        Some(NOT_UTF8),
        "a failed get must leave the entry as it is"
    );
}

/// Rule: byte batches keep the order of their keys (duplicates included, `None` for missing
/// ones); a later entry for the same key wins.
pub async fn byte_batches_round_trip_in_key_order<C: Cache>(cache: &C) {
    let keys: Vec<String> = (0..4).map(|i| key("bytes_batch", i)).collect();
    let entries = [
        (keys[0].as_str(), Bytes::from_static(NOT_UTF8)),
        (keys[1].as_str(), Bytes::new()),
        (keys[2].as_str(), Bytes::from_static(b"first")),
        (keys[2].as_str(), Bytes::from_static(b"second")),
    ];
    ok("set_many_bytes", cache.set_many_bytes(&entries, None)).await;
    let asked = [&keys[2], &keys[3], &keys[0], &keys[1], &keys[0]];
    let values = ok("get_many_bytes", cache.get_many_bytes(&asked)).await;
    let expected: [Option<&[u8]>; 5] = [
        Some(b"second"),
        None,
        Some(NOT_UTF8),
        Some(b""),
        Some(NOT_UTF8),
    ];
    assert_eq!(
        values.iter().map(Option::as_deref).collect::<Vec<_>>(),
        expected,
        "get_many_bytes must answer each key in order, None for missing ones"
    );
}

/// Rule: a value that is not UTF-8 fails a string `get_many` as a whole with
/// `InvalidValue`, whose message gives the key's position in the batch and not the key;
/// `get_many_bytes` reads the same batch.
pub async fn get_many_of_bytes_that_are_not_utf8_names_the_position<C: Cache>(cache: &C) {
    let keys: Vec<String> = (0..3).map(|i| key("secret_batch", i)).collect();
    ok("set", cache.set(&keys[0], "text", None)).await;
    ok(
        "set_bytes",
        cache.set_bytes(&keys[2], Bytes::from_static(NOT_UTF8), None),
    )
    .await;
    let err = match cache.get_many(&keys).await {
        Err(err) => err,
        Ok(values) => panic!("get_many of bytes that are not utf-8 must fail, got {values:?}"),
    };
    let text = err.to_string();
    assert!(
        matches!(err, CacheError::InvalidValue { .. }),
        "get_many of bytes that are not utf-8 must be InvalidValue, got {err:?}"
    );
    assert!(
        text.contains("position 2 of a batch of 3"),
        "the error must give the value's position in the batch: {text}"
    );
    assert!(
        !text.contains("secret_batch"),
        "the error must not name the key: {text}"
    );
    let values = ok("get_many_bytes", cache.get_many_bytes(&keys)).await;
    assert_eq!(values[2].as_deref(), Some(NOT_UTF8));
}

/// Rule: `set_bytes` follows the TTL rules of `set`: a zero TTL is `InvalidTtl` and changes
/// nothing, a TTL expires the entry, and `None` removes an earlier TTL.
pub async fn set_bytes_follows_the_ttl_rules<C: Cache>(cache: &C) {
    const TTL: Duration = Duration::from_millis(400);
    let kept = key("bytes_ttl", "kept");
    ok(
        "set_bytes",
        cache.set_bytes(&kept, Bytes::from_static(b"old"), None),
    )
    .await;
    let result = cache
        .set_bytes(&kept, Bytes::from_static(b"new"), Some(Duration::ZERO))
        .await;
    assert!(
        matches!(result, Err(CacheError::InvalidTtl { .. })),
        "set_bytes with a zero ttl must be InvalidTtl, got {result:?}"
    );
    assert_eq!(
        ok("get_bytes", cache.get_bytes(&kept)).await.as_deref(),
        Some(&b"old"[..]),
        "a rejected set_bytes must change nothing"
    );

    let (n, before) = in_time(
        "set_bytes with a ttl, then get_bytes",
        TTL,
        |n| async move {
            let expiring = key("bytes_ttl", format!("expiring:{n}"));
            let permanent = key("bytes_ttl", format!("permanent:{n}"));
            let value = Bytes::from_static(NOT_UTF8);
            ok(
                "set_bytes with ttl",
                cache.set_bytes(&expiring, value.clone(), Some(TTL)),
            )
            .await;
            ok(
                "set_bytes with ttl",
                cache.set_bytes(&permanent, value.clone(), Some(TTL)),
            )
            .await;
            ok(
                "set_bytes without ttl",
                cache.set_bytes(&permanent, value, None),
            )
            .await;
            ok("get_bytes", cache.get_bytes(&expiring)).await
        },
    )
    .await;
    assert_eq!(
        before.as_deref(),
        Some(NOT_UTF8),
        "bytes must be readable before their ttl passes"
    );
    sleep(Duration::from_millis(1000)).await;
    let expiring = key("bytes_ttl", format!("expiring:{n}"));
    let permanent = key("bytes_ttl", format!("permanent:{n}"));
    assert_eq!(
        ok("get_bytes after the ttl", cache.get_bytes(&expiring)).await,
        None,
        "bytes were returned after their ttl"
    );
    assert_eq!(
        ok("get_bytes", cache.get_bytes(&permanent))
            .await
            .as_deref(),
        Some(NOT_UTF8),
        "set_bytes with ttl None must remove the earlier ttl"
    );
}
