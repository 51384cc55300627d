//! `MsgPack`: MessagePack through `rmp-serde`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Codec;
use crate::BoxError;

/// The deepest nesting `decode` follows, as `serde_json` does; deeper input is an error
/// rather than a stack overflow.
const MAX_DEPTH: usize = 128;

/// A codec for MessagePack through `rmp-serde`: values of any serde type, smaller than JSON
/// and faster to decode, but not text.
///
/// Structs are stored as maps keyed by field name (`rmp_serde::to_vec_named`), as JSON stores
/// them: adding a field with `#[serde(default)]` keeps older entries readable, and other
/// MessagePack clients see field names. Decoding borrows from the input and checks each
/// length prefix against the bytes left before reading (it allocates in proportion to the
/// input's size), and stops at a nesting depth of 128. As with `rmp_serde::from_slice`,
/// bytes after the first value are not read.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use cache_core::{Cache, MsgPack, TypedCache};
/// use cache_memory::MemoryCache;
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Span { trace: String, millis: u32 }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_core::Result<()> {
/// let spans = TypedCache::with_codec(MemoryCache::new(), MsgPack);
///
/// let span = Span { trace: "abc".into(), millis: 12 };
/// spans.set("span:1", &span, None).await?;
/// assert_eq!(spans.get("span:1").await?, Some(span));
///
/// // 19 bytes, where `{"trace":"abc","millis":12}` is 27 bytes of JSON.
/// let stored = spans.cache().get_bytes("span:1").await?.unwrap();
/// assert_eq!(stored.len(), 19);
/// # Ok(())
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "msgpack")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPack;

impl<T: Serialize + DeserializeOwned> Codec<T> for MsgPack {
    fn name(&self) -> &'static str {
        "msgpack"
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(rmp_serde::to_vec_named(value)?)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, BoxError> {
        // `from_slice`'s deserializer, with a depth limit. It does not say where the value
        // ended, so bytes after it go unchecked: a reader over a `Cursor` would, but copies
        // every string into a buffer first, a quarter slower on a trace.
        let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
        de.set_max_depth(MAX_DEPTH);
        Ok(T::deserialize(&mut de)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A value of any shape, for input whose type is unknown.
    type Any = serde_json::Value;

    #[test]
    fn a_struct_is_stored_with_its_field_names() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Span {
            name: String,
        }
        let bytes = MsgPack.encode(&Span { name: "db".into() }).unwrap();
        // fixmap of 1, fixstr "name", fixstr "db"
        assert_eq!(bytes, b"\x81\xa4name\xa2db");
        let map: BTreeMap<String, String> = MsgPack.decode(&bytes).unwrap();
        assert_eq!(map["name"], "db");
    }

    #[test]
    fn a_length_prefix_larger_than_the_input_is_an_error_not_an_allocation() {
        // bin32 and str32 claiming 4 GiB, array32 claiming 4 billion elements.
        for bytes in [
            &b"\xc6\xff\xff\xff\xff"[..],
            b"\xdb\xff\xff\xff\xffabc",
            b"\xdd\xff\xff\xff\xff\x01",
        ] {
            assert!(Codec::<Any>::decode(&MsgPack, bytes).is_err());
        }
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_an_error_not_a_stack_overflow() {
        // 100 000 nested one-element arrays.
        let bytes = vec![0x91; 100_000];
        assert!(Codec::<Any>::decode(&MsgPack, &bytes).is_err());
    }
}
