//! The contract's cost promise: on the static path, `get` allocates nothing beyond the
//! returned `String`, and `get_bytes` allocates nothing at all. Counted per thread by `allocation-counter`'s global allocator.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use cache_memory::{AnyCache, Bytes, Cache, MemoryCache, Result};

/// Polls `fut` once, inline; the memory backend's operations finish on their first poll.
fn poll_ready<F: Future>(fut: F) -> F::Output {
    match pin!(fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an in-memory operation did not finish on its first poll"),
    }
}

/// Generic code, as a user writes it: static dispatch.
fn generic_get<C: Cache>(cache: &C, key: &str) -> Result<Option<String>> {
    poll_ready(cache.get(key))
}

/// With the `metrics` feature, the first timed read of a thread looks its histogram handle
/// up in the recorder (a key with its labels, allocated), and so again once after each
/// publication (at most once a second): reads of a key never written, enough of them for
/// some to be timed, do that before the reads that are counted. Without the feature it
/// does nothing.
fn warm_up<C: Cache>(cache: &C) {
    #[cfg(feature = "metrics")]
    for _ in 0..4 * cache_core::metrics::SAMPLE_EVERY {
        let _ = poll_ready(cache.get_bytes("never written"));
    }
    #[cfg(not(feature = "metrics"))]
    let _ = cache;
}

/// Allocations made by one `get` of `key`, and what it returned.
fn count_get<C: Cache>(cache: &C, key: &str) -> (u64, u64, Option<String>) {
    warm_up(cache);
    let mut got = None;
    let info = allocation_counter::measure(|| got = generic_get(cache, key).unwrap());
    (info.count_total, info.bytes_total, got)
}

fn filled(cache: MemoryCache) -> MemoryCache {
    poll_ready(cache.set("plain", "a value of 24 bytes.....", None)).unwrap();
    poll_ready(cache.set(
        "with-ttl",
        "a value of 24 bytes.....",
        Some(Duration::from_secs(60)),
    ))
    .unwrap();
    poll_ready(cache.set("empty", "", None)).unwrap();
    cache
}

#[test]
fn static_get_allocates_only_the_returned_string() {
    let unbounded = filled(MemoryCache::new());
    let bounded = filled(MemoryCache::builder().max_capacity(100).build().unwrap());
    for (name, cache) in [("unbounded", &unbounded), ("bounded", &bounded)] {
        for key in ["plain", "with-ttl"] {
            let (count, bytes, got) = count_get(cache, key);
            assert_eq!(got.as_deref(), Some("a value of 24 bytes....."));
            assert_eq!(
                (count, bytes),
                (1, 24),
                "{name} cache, get of {key:?}: {count} allocations, {bytes} bytes"
            );
        }
        assert_eq!(
            count_get(cache, "empty"),
            (0, 0, Some(String::new())),
            "{name}: an empty value needs no allocation"
        );
        assert_eq!(
            count_get(cache, "missing"),
            (0, 0, None),
            "{name}: a miss must not allocate"
        );
    }
}

#[test]
fn any_cache_get_adds_one_boxed_future() {
    let cache = AnyCache::new(filled(MemoryCache::new()));
    let (count, _, got) = count_get(&cache, "plain");
    assert_eq!(got.as_deref(), Some("a value of 24 bytes....."));
    assert_eq!(
        count, 2,
        "AnyCache's get: the boxed future and the returned String"
    );
}

/// Allocations made by one `get_bytes` of `key`, and what it returned.
fn count_get_bytes<C: Cache>(cache: &C, key: &str) -> (u64, Option<Bytes>) {
    warm_up(cache);
    let mut got = None;
    let info = allocation_counter::measure(|| got = poll_ready(cache.get_bytes(key)).unwrap());
    (info.count_total, got)
}

#[test]
fn static_get_bytes_allocates_nothing() {
    for cache in [
        MemoryCache::new(),
        MemoryCache::builder().max_capacity(100).build().unwrap(),
    ] {
        let name = format!("{:?}", cache.max_capacity());
        // Written as bytes: from a `Vec` (not shared yet when stored), static, empty.
        poll_ready(cache.set_bytes("vec", Bytes::from(vec![7_u8; 24]), None)).unwrap();
        poll_ready(cache.set_bytes(
            "ttl",
            Bytes::from(vec![8_u8; 24]),
            Some(Duration::from_secs(60)),
        ))
        .unwrap();
        poll_ready(cache.set_bytes("static", Bytes::from_static(b"\xff\x00"), None)).unwrap();
        poll_ready(cache.set_bytes("empty", Bytes::new(), None)).unwrap();
        for key in ["vec", "ttl", "static", "empty", "missing"] {
            // Every read, the first included.
            for read in 0..3 {
                let (count, got) = count_get_bytes(&cache, key);
                assert_eq!(
                    count, 0,
                    "capacity {name}, get_bytes of {key:?} (read {read}): {count} allocations"
                );
                assert_eq!(got.is_some(), key != "missing", "{name}: {key:?}");
            }
        }
        assert_eq!(
            count_get_bytes(&cache, "vec").1.as_deref(),
            Some(&[7_u8; 24][..])
        );
    }
}

/// A value written with `set` is stored as a plain buffer (strings read back by copying need
/// no reference count): the first `get_bytes` of it allocates its reference count, once.
#[test]
fn get_bytes_of_a_string_value_allocates_its_reference_count_once() {
    let cache = filled(MemoryCache::new());
    let (first, got) = count_get_bytes(&cache, "plain");
    assert_eq!(got.as_deref(), Some(&b"a value of 24 bytes....."[..]));
    assert!(first <= 1, "the first get_bytes: {first} allocations");
    for read in 1..4 {
        let (count, _) = count_get_bytes(&cache, "plain");
        assert_eq!(
            count, 0,
            "get_bytes {read} after the first: {count} allocations"
        );
    }
}
