//! Codecs: how a [`TypedCache`](crate::TypedCache) turns values into the bytes a cache stores.

use std::sync::Arc;

use crate::BoxError;

#[cfg(feature = "lz4")]
mod lz4;
#[cfg(feature = "msgpack")]
mod msgpack;

#[cfg(feature = "lz4")]
pub use lz4::Compressed;
#[cfg(feature = "msgpack")]
pub use msgpack::MsgPack;

/// Turns values of type `T` into the bytes a [`Cache`](crate::Cache) stores, and back.
///
/// `Json` (feature `serde`) is the default; `MsgPack` (feature `msgpack`) is more compact,
/// and `Compressed` (feature `lz4`) wraps any codec in LZ4 compression. A codec of your own
/// implements these three methods:
///
/// ```
/// use cache_core::{BoxError, Codec};
///
/// /// A `u64` as 8 little-endian bytes.
/// struct Le;
///
/// impl Codec<u64> for Le {
///     fn name(&self) -> &'static str {
///         "le-u64"
///     }
///
///     fn encode(&self, value: &u64) -> Result<Vec<u8>, BoxError> {
///         Ok(value.to_le_bytes().to_vec())
///     }
///
///     fn decode(&self, bytes: &[u8]) -> Result<u64, BoxError> {
///         Ok(u64::from_le_bytes(bytes.try_into()?))
///     }
/// }
///
/// assert_eq!(Le.decode(&Le.encode(&7)?)?, 7);
/// assert!(Le.decode(b"short").is_err());
/// # Ok::<(), BoxError>(())
/// ```
///
/// `decode` is given whatever the store holds, including bytes another program wrote: it
/// returns an error for bytes that are not an encoding of a `T`, and never panics.
///
/// `&C`, `Box<C>` and `Arc<C>` are codecs when `C` is, so one codec can be chosen at run
/// time as a `Box<dyn Codec<T>>`.
pub trait Codec<T>: Send + Sync {
    /// A short name for messages, such as `"json"`.
    fn name(&self) -> &'static str;

    /// The bytes to store for `value`.
    ///
    /// # Errors
    /// When `value` cannot be encoded; [`TypedCache`](crate::TypedCache) reports it as
    /// [`CacheError::InvalidValue`](crate::CacheError::InvalidValue) and stores nothing.
    fn encode(&self, value: &T) -> Result<Vec<u8>, BoxError>;

    /// The value that `bytes` encodes.
    ///
    /// # Errors
    /// When `bytes` is not an encoding of a `T`; [`TypedCache`](crate::TypedCache) reports it
    /// as [`CacheError::InvalidValue`](crate::CacheError::InvalidValue).
    fn decode(&self, bytes: &[u8]) -> Result<T, BoxError>;
}

impl<T, C: Codec<T> + ?Sized> Codec<T> for &C {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        (**self).encode(value)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, BoxError> {
        (**self).decode(bytes)
    }
}

impl<T, C: Codec<T> + ?Sized> Codec<T> for Box<C> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        (**self).encode(value)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, BoxError> {
        (**self).decode(bytes)
    }
}

impl<T, C: Codec<T> + ?Sized> Codec<T> for Arc<C> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        (**self).encode(value)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, BoxError> {
        (**self).decode(bytes)
    }
}

/// The default codec: JSON text through `serde_json`.
///
/// Readable by any client of the store, and what [`TypedCache::new`](crate::TypedCache::new)
/// uses. Field names are stored with each value, so adding a field with
/// `#[serde(default)]` keeps older entries readable. Decoding allocates in proportion to the
/// input's size (JSON has no length prefixes to trust) and stops at a nesting depth of 128.
///
/// ```
/// use cache_core::{Codec, Json};
///
/// let bytes = Json.encode(&vec![1, 2, 3])?;
/// assert_eq!(bytes, b"[1,2,3]");
/// let back: Vec<u32> = Json.decode(&bytes)?;
/// assert_eq!(back, [1, 2, 3]);
/// # Ok::<(), cache_core::BoxError>(())
/// ```
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> Codec<T> for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(value)?)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, BoxError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    #[test]
    fn json_refuses_trailing_bytes_and_bytes_that_are_not_utf8() {
        assert_eq!(Codec::<u32>::decode(&Json, b"12").unwrap(), 12);
        assert!(Codec::<u32>::decode(&Json, b"12 x").is_err());
        assert!(Codec::<String>::decode(&Json, b"\"\xff\"").is_err());
    }
}
