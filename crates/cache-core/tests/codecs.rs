//! Property tests of the codecs: every value comes back as it went in, and no input, however
//! crafted, makes a decoder panic or allocate beyond its limit.
#![cfg(all(feature = "msgpack", feature = "lz4"))]

use std::collections::BTreeMap;

use cache_core::{
    BoxError, Bytes, Cache, CacheError, Codec, Compressed, Json, MsgPack, TypedCache,
};
use cache_memory::MemoryCache;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// A trace as a trace server caches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Trace {
    trace_id: String,
    service: String,
    spans: Vec<Span>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Span {
    span_id: u64,
    parent_id: Option<u64>,
    name: String,
    start_unix_nanos: u64,
    duration_nanos: i64,
    status: Status,
    attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Status {
    Unset,
    Ok,
    Error { message: String },
}

/// Strings as traces hold them, and any unicode at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_./ ]{0,24}", any::<String>()]
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Unset),
        Just(Status::Ok),
        text().prop_map(|message| Status::Error { message }),
    ]
}

fn span() -> impl Strategy<Value = Span> {
    (
        any::<u64>(),
        any::<Option<u64>>(),
        text(),
        any::<u64>(),
        any::<i64>(),
        status(),
        btree_map(text(), text(), 0..6),
    )
        .prop_map(
            |(span_id, parent_id, name, start_unix_nanos, duration_nanos, status, attributes)| {
                Span {
                    span_id,
                    parent_id,
                    name,
                    start_unix_nanos,
                    duration_nanos,
                    status,
                    attributes,
                }
            },
        )
}

fn trace() -> impl Strategy<Value = Trace> {
    ("[0-9a-f]{32}", text(), vec(span(), 0..24)).prop_map(|(trace_id, service, spans)| Trace {
        trace_id,
        service,
        spans,
    })
}

/// Every codec under test, behind one type.
fn codecs(min_size: usize) -> Vec<Box<dyn Codec<Trace>>> {
    vec![
        Box::new(Json),
        Box::new(MsgPack),
        Box::new(Compressed::new(Json).min_size(min_size)),
        Box::new(Compressed::new(MsgPack).min_size(min_size)),
    ]
}

/// Decodes `bytes` as a `Trace` and as a value of any shape in `codec`'s format; either may
/// fail, neither may panic (a panic fails the property).
fn decode_anything<C>(codec: &C, bytes: &[u8])
where
    C: Codec<Trace> + Codec<serde_json::Value>,
{
    let _ = Codec::<Trace>::decode(codec, bytes);
    let _ = Codec::<serde_json::Value>::decode(codec, bytes);
}

fn decode_with_every_codec(bytes: &[u8]) {
    decode_anything(&Json, bytes);
    decode_anything(&MsgPack, bytes);
    decode_anything(&Compressed::new(Json), bytes);
    decode_anything(&Compressed::new(MsgPack), bytes);
    // A small limit, as a careful user would set it.
    decode_anything(&Compressed::new(MsgPack).max_size(4096), bytes);
}

/// Bytes shaped like a `Compressed` value (a header byte, a length, a block), so that the
/// decompressor sees far more than the 2 in 256 random inputs that start with a known header.
fn lz4_shaped() -> impl Strategy<Value = Vec<u8>> {
    (0u8..3, any::<u32>(), vec(any::<u8>(), 0..256)).prop_map(|(header, len, block)| {
        let mut bytes = vec![header];
        bytes.extend_from_slice(&(len % 4096).to_le_bytes());
        bytes.extend_from_slice(&block);
        bytes
    })
}

proptest! {
    #[test]
    fn json_decodes_what_it_encodes(trace in trace()) {
        let bytes = Json.encode(&trace).unwrap();
        prop_assert_eq!(Codec::<Trace>::decode(&Json, &bytes).unwrap(), trace);
    }

    #[test]
    fn msgpack_decodes_what_it_encodes(trace in trace()) {
        let bytes = MsgPack.encode(&trace).unwrap();
        prop_assert_eq!(Codec::<Trace>::decode(&MsgPack, &bytes).unwrap(), trace);
    }

    #[test]
    fn compressed_json_decodes_what_it_encodes(trace in trace(), min_size in 0usize..4096) {
        let codec = Compressed::new(Json).min_size(min_size);
        let bytes = codec.encode(&trace).unwrap();
        prop_assert_eq!(Codec::<Trace>::decode(&codec, &bytes).unwrap(), trace);
    }

    #[test]
    fn compressed_msgpack_decodes_what_it_encodes(trace in trace(), min_size in 0usize..4096) {
        let codec = Compressed::new(MsgPack).min_size(min_size);
        let bytes = codec.encode(&trace).unwrap();
        prop_assert_eq!(Codec::<Trace>::decode(&codec, &bytes).unwrap(), trace);
    }

    #[test]
    fn compressed_values_are_read_whatever_min_size_wrote_them(
        trace in trace(),
        written_with in 0usize..4096,
        read_with in 0usize..4096,
    ) {
        let bytes = Compressed::new(MsgPack).min_size(written_with).encode(&trace).unwrap();
        let reader = Compressed::new(MsgPack).min_size(read_with);
        prop_assert_eq!(Codec::<Trace>::decode(&reader, &bytes).unwrap(), trace);
    }

    #[test]
    fn decoding_arbitrary_bytes_is_a_value_or_an_error_never_a_panic(
        bytes in prop_oneof![vec(any::<u8>(), 0..512), lz4_shaped()],
    ) {
        decode_with_every_codec(&bytes);
    }

    #[test]
    fn decoding_a_corrupted_encoding_is_a_value_or_an_error_never_a_panic(
        trace in trace(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        for codec in codecs(0) {
            let mut bytes = codec.encode(&trace).unwrap();
            for (at, byte) in &flips {
                let at = at.index(bytes.len());
                bytes[at] ^= byte;
            }
            let _ = codec.decode(&bytes);
            let _ = codec.decode(&bytes[..cut.index(bytes.len() + 1)]);
        }
    }
}

/// A value with the header of an LZ4 block whose length field claims `len` bytes.
fn lz4_claiming(len: u32) -> Vec<u8> {
    let mut bytes = vec![1];
    bytes.extend_from_slice(&len.to_le_bytes());
    // A block of 8 literals: a plausible start, too short for what the header claims.
    bytes.push(0x80);
    bytes.extend_from_slice(b"{\"a\":1}\n");
    bytes
}

#[test]
fn a_header_claiming_4_gib_is_an_error_before_any_allocation() {
    let bytes = lz4_claiming(u32::MAX);
    for max_size in [64 * 1024, 64 * 1024 * 1024, usize::MAX] {
        let codec = Compressed::new(Json).max_size(max_size);
        let mut result = None;
        let info = allocation_counter::measure(|| {
            result = Some(Codec::<Trace>::decode(&codec, &bytes).map(|_| ()));
        });
        let err = result.unwrap().unwrap_err();
        allocation_counter::opt_out(|| {
            // The error itself, boxed, and nothing of the size claimed.
            assert!(
                info.bytes_max < 1024,
                "{info:?} for max_size {max_size}: {err}"
            );
        });
    }
}

#[test]
fn a_claimed_length_is_allocated_only_up_to_what_the_block_can_expand_to() {
    // 9 bytes of block can stand for 2295 bytes at most: claiming 1 MiB is refused.
    let info = allocation_counter::measure(|| {
        assert!(Codec::<Trace>::decode(&Compressed::new(Json), &lz4_claiming(1 << 20)).is_err());
    });
    assert!(info.bytes_max < 1024, "{info:?}");
}

proptest! {
    #[test]
    fn any_stored_bytes_read_through_typed_cache_are_a_value_or_invalid_value(
        bytes in prop_oneof![vec(any::<u8>(), 0..512), lz4_shaped()],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let cache = MemoryCache::new();
            cache.set_bytes("k", Bytes::from(bytes), None).await.unwrap();
            for codec in codecs(0) {
                let traces = TypedCache::with_codec(cache.clone(), codec);
                match traces.get("k").await {
                    Ok(_) | Err(CacheError::InvalidValue { .. }) => {}
                    Err(other) => panic!("{other:?}"),
                }
            }
        });
    }
}

#[tokio::test]
async fn every_codec_stores_and_reads_through_typed_cache() {
    let trace = Trace {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        service: "checkout".into(),
        spans: vec![
            Span {
                span_id: 1,
                parent_id: None,
                name: "GET /cart".into(),
                start_unix_nanos: 1_700_000_000_000_000_000,
                duration_nanos: 1_500_000,
                status: Status::Ok,
                attributes: BTreeMap::from([("http.status_code".into(), "200".into())]),
            };
            64
        ],
    };
    let cache = MemoryCache::new();
    for codec in codecs(1024) {
        let name = codec.name();
        let traces = TypedCache::with_codec(cache.clone(), codec);
        traces.set(name, &trace, None).await.unwrap();
        assert_eq!(
            traces.get(name).await.unwrap().as_ref(),
            Some(&trace),
            "{name}"
        );
    }
}

#[tokio::test]
async fn get_or_set_with_loads_once_and_stores_with_every_codec() {
    let cache = MemoryCache::new();
    for (n, codec) in codecs(0).into_iter().enumerate() {
        let name = codec.name();
        let traces = TypedCache::with_codec(cache.clone(), codec);
        let key = format!("loaded:{n}");
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let trace = Trace {
            trace_id: "00f067aa0ba902b7".into(),
            service: "checkout".into(),
            spans: Vec::new(),
        };
        for _ in 0..2 {
            let got = traces
                .get_or_set_with(&key, None, || async {
                    loads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok::<_, BoxError>(trace.clone())
                })
                .await
                .unwrap();
            assert_eq!(got, trace, "{name}");
        }
        assert_eq!(loads.into_inner(), 1, "{name}");
        assert_eq!(traces.get(&key).await.unwrap(), Some(trace), "{name}");
    }
}

#[tokio::test]
async fn a_stored_value_that_does_not_decode_is_invalid_value_with_every_codec() {
    let cache = MemoryCache::new();
    cache.set("garbage", "not a trace", None).await.unwrap();
    cache.set("empty", "", None).await.unwrap();
    cache
        .set("other type", "{\"trace_id\":7}", None)
        .await
        .unwrap();
    cache
        .set_bytes("not utf-8", Bytes::from_static(b"\x01\xff\xfe"), None)
        .await
        .unwrap();
    for codec in codecs(0) {
        let name = codec.name();
        let traces = TypedCache::with_codec(cache.clone(), codec);
        for key in ["garbage", "empty", "other type", "not utf-8"] {
            let err = traces.get(key).await.unwrap_err();
            assert!(
                matches!(err, CacheError::InvalidValue { .. }),
                "{name} {key}: {err:?}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}

/// A trace of `spans` spans, alike enough to compress.
fn many_spans(spans: u64) -> Trace {
    Trace {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        service: "checkout".into(),
        spans: (0..spans)
            .map(|i| Span {
                span_id: i,
                parent_id: i.checked_sub(1),
                name: "GET /cart".into(),
                start_unix_nanos: 1_700_000_000_000_000_000 + i,
                duration_nanos: 1_000,
                status: Status::Ok,
                attributes: BTreeMap::from([("http.method".into(), "GET".into())]),
            })
            .collect(),
    }
}

/// Values written before `Compressed` was put around the codec (no header byte) are still
/// read, beside new ones.
#[test]
fn values_written_without_compressed_are_read_through_it() {
    let trace = many_spans(50);
    for (name, old, codec) in [
        (
            "json",
            Codec::<Trace>::encode(&Json, &trace).unwrap(),
            Box::new(Compressed::new(Json)) as Box<dyn Codec<Trace>>,
        ),
        (
            "msgpack",
            Codec::<Trace>::encode(&MsgPack, &trace).unwrap(),
            Box::new(Compressed::new(MsgPack)),
        ),
    ] {
        assert_eq!(codec.decode(&old).unwrap(), trace, "{name}: an old value");
        let new = codec.encode(&trace).unwrap();
        assert!(new.len() < old.len(), "{name}: the new value is compressed");
        assert_eq!(codec.decode(&new).unwrap(), trace, "{name}: a new value");
    }
}
