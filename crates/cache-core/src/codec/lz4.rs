//! `Compressed`: LZ4 around any codec, through `lz4_flex`'s block format.

use super::Codec;
use crate::BoxError;

/// Header byte: the inner codec's bytes follow as they are.
const STORED: u8 = 0;
/// Header byte: a 4-byte little-endian length, then an LZ4 block that decompresses to exactly
/// that many bytes of the inner codec's output.
const LZ4_BLOCK: u8 = 1;
/// The most bytes of output one byte of an LZ4 block can stand for: a match's length grows by
/// at most 255 per extension byte, and a sequence of `k` extension bytes (plus its token and
/// 2-byte offset) gives at most `19 + 255 * k` bytes, under `255 * (3 + k)`.
const MAX_EXPANSION: usize = 255;

/// A codec that compresses another codec's output with LZ4 when it is at least
/// [`min_size`](Self::min_size) bytes, and leaves smaller values as they are.
///
/// Each value starts with one header byte saying which form follows, so values written with
/// different thresholds, compressed or not, are all read back: `0` then the inner codec's
/// bytes, or `1`, the uncompressed length as 4 little-endian bytes, and an LZ4 block
/// (`lz4_flex::block`, no frame). A value that LZ4 would not make smaller is stored as it is.
/// Values written by the inner codec alone, before `Compressed` was put around it, are read
/// too: a value whose first byte is neither `0` nor `1` goes to the inner codec whole. That
/// holds for every JSON value (JSON text never starts with those bytes) and every MessagePack
/// value but the bare integers 0 and 1, so a cache switches to `Compressed` without a
/// `clear`.
///
/// Decoding trusts nothing it is given: a length over [`max_size`](Self::max_size), or more
/// than an LZ4 block of that size can expand to, is an error before any allocation, so a
/// crafted header claiming 4 GiB costs nothing. Compression costs one more pass over the
/// encoded value on write, and decompression one more on read.
///
/// ```
/// # #[cfg(feature = "serde")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_core::Result<()> {
/// use serde::{Deserialize, Serialize};
/// use cache_core::{Cache, Codec, Compressed, Json, TypedCache};
/// use cache_memory::MemoryCache;
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Trace { id: String, spans: Vec<String> }
///
/// let codec = Compressed::new(Json).min_size(1024);
/// let traces = TypedCache::with_codec(MemoryCache::new(), codec);
///
/// let trace = Trace { id: "abc".into(), spans: vec!["GET /users".into(); 1000] };
/// traces.set("trace:abc", &trace, None).await?;
/// assert_eq!(traces.get("trace:abc").await?, Some(trace));
/// // 13 KiB of JSON, stored in well under 1 KiB.
/// assert!(traces.cache().get_bytes("trace:abc").await?.unwrap().len() < 1024);
///
/// // Under `min_size`, the JSON is kept as it is, after a 0 header byte.
/// let small = Trace { id: "def".into(), spans: vec![] };
/// assert_eq!(codec.encode(&small).unwrap(), b"\0{\"id\":\"def\",\"spans\":[]}");
/// # Ok(())
/// # }
/// # // `Json` needs the `serde` feature.
/// # #[cfg(not(feature = "serde"))]
/// # fn main() {}
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "lz4")))]
#[derive(Debug, Clone, Copy)]
pub struct Compressed<C> {
    inner: C,
    min_size: usize,
    max_size: usize,
}

impl<C> Compressed<C> {
    /// The default [`min_size`](Self::min_size): 1 KiB.
    const DEFAULT_MIN_SIZE: usize = 1024;
    /// The default [`max_size`](Self::max_size): 64 MiB.
    const DEFAULT_MAX_SIZE: usize = 64 * 1024 * 1024;

    /// Compresses the output of `inner` from 1 KiB on, and reads values up to 64 MiB.
    pub fn new(inner: C) -> Self {
        Self {
            inner,
            min_size: Self::DEFAULT_MIN_SIZE,
            max_size: Self::DEFAULT_MAX_SIZE,
        }
    }

    /// The smallest output of the inner codec that is compressed, in bytes (default 1 KiB);
    /// smaller values are stored as they are, where compression would save little and cost
    /// a pass. `0` compresses every value.
    #[must_use]
    pub fn min_size(mut self, bytes: usize) -> Self {
        self.min_size = bytes;
        self
    }

    /// The largest output of the inner codec written or read, in bytes (default 64 MiB):
    /// what decoding may allocate at most. Encoding a larger value is an error (it could not
    /// be read back), and so is decoding one. Values are at most 4 GiB whatever this says.
    #[must_use]
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// The codec whose output is compressed.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C: Default> Default for Compressed<C> {
    fn default() -> Self {
        Self::new(C::default())
    }
}

impl<T, C: Codec<T>> Codec<T> for Compressed<C> {
    fn name(&self) -> &'static str {
        "lz4"
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        let plain = self.inner.encode(value)?;
        let len = plain.len();
        if len > self.max_size {
            return Err(Lz4Error::TooLarge {
                len,
                max: self.max_size,
            }
            .into());
        }
        if len >= self.min_size
            && let Ok(len32) = u32::try_from(len)
        {
            let mut out = vec![0; 5 + lz4_flex::block::get_maximum_output_size(len)];
            out[0] = LZ4_BLOCK;
            out[1..5].copy_from_slice(&len32.to_le_bytes());
            let written = lz4_flex::block::compress_into(&plain, &mut out[5..])?;
            if written < len {
                out.truncate(5 + written);
                return Ok(out);
            }
        }
        let mut out = Vec::with_capacity(1 + len);
        out.push(STORED);
        out.extend_from_slice(&plain);
        Ok(out)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, BoxError> {
        let inside = |err: BoxError| -> BoxError {
            Box::new(Lz4Error::Inner {
                codec: self.inner.name(),
                source: err,
            })
        };
        let Some((&header, body)) = bytes.split_first() else {
            return Err(Lz4Error::Empty.into());
        };
        match header {
            STORED => {
                if body.len() > self.max_size {
                    return Err(Lz4Error::TooLarge {
                        len: body.len(),
                        max: self.max_size,
                    }
                    .into());
                }
                self.inner.decode(body).map_err(inside)
            }
            LZ4_BLOCK => {
                let Some((len, block)) = body.split_first_chunk::<4>() else {
                    return Err(Lz4Error::Truncated.into());
                };
                let len = u32::from_le_bytes(*len);
                // A `u32` that does not fit `usize` (16-bit targets) is over any `max_size`.
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if len > self.max_size {
                    return Err(Lz4Error::TooLarge {
                        len,
                        max: self.max_size,
                    }
                    .into());
                }
                if len > block.len().saturating_mul(MAX_EXPANSION) {
                    return Err(Lz4Error::Implausible {
                        len,
                        block: block.len(),
                    }
                    .into());
                }
                let mut plain = vec![0; len];
                let written = lz4_flex::block::decompress_into(block, &mut plain)?;
                if written != len {
                    return Err(Lz4Error::WrongLength { len, written }.into());
                }
                self.inner.decode(&plain).map_err(inside)
            }
            // Written by the inner codec alone, before `Compressed` was put around it.
            _ => {
                if bytes.len() > self.max_size {
                    return Err(Lz4Error::TooLarge {
                        len: bytes.len(),
                        max: self.max_size,
                    }
                    .into());
                }
                self.inner.decode(bytes).map_err(inside)
            }
        }
    }
}

/// Why a value could not go through [`Compressed`], as the source of a `CacheError`.
#[derive(Debug, thiserror::Error)]
enum Lz4Error {
    #[error("the value is empty: no header byte")]
    Empty,
    #[error("the lz4 value ends before its 4-byte length")]
    Truncated,
    #[error("{len} bytes before compression is over max_size ({max} bytes)")]
    TooLarge { len: usize, max: usize },
    #[error("an lz4 block of {block} bytes cannot expand to the {len} bytes its header claims")]
    Implausible { len: usize, block: usize },
    #[error("the lz4 block expands to {written} bytes, not the {len} bytes its header claims")]
    WrongLength { len: usize, written: usize },
    #[error("the value inside does not decode with the {codec} codec")]
    Inner {
        codec: &'static str,
        #[source]
        source: BoxError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes as they are, to test the wrapper alone.
    #[derive(Debug, Clone, Copy)]
    struct Raw;

    impl Codec<Vec<u8>> for Raw {
        fn name(&self) -> &'static str {
            "raw"
        }
        fn encode(&self, value: &Vec<u8>) -> Result<Vec<u8>, BoxError> {
            Ok(value.clone())
        }
        fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, BoxError> {
            Ok(bytes.to_vec())
        }
    }

    #[test]
    fn values_under_min_size_are_stored_and_larger_ones_compressed() {
        let codec = Compressed::new(Raw).min_size(64);
        let small = vec![b'a'; 63];
        let large = vec![b'a'; 64];
        let stored = codec.encode(&small).unwrap();
        assert_eq!(stored[0], STORED);
        assert_eq!(&stored[1..], &small[..]);
        let compressed = codec.encode(&large).unwrap();
        assert_eq!(compressed[0], LZ4_BLOCK);
        assert_eq!(compressed[1..5], 64u32.to_le_bytes());
        assert!(compressed.len() < large.len());
        assert_eq!(codec.decode(&stored).unwrap(), small);
        assert_eq!(codec.decode(&compressed).unwrap(), large);
    }

    #[test]
    fn values_written_with_another_min_size_are_read() {
        let eager = Compressed::new(Raw).min_size(0);
        let lazy = Compressed::new(Raw).min_size(usize::MAX);
        let value = b"abcabcabcabcabcabcabcabcabcabc".to_vec();
        assert_eq!(lazy.decode(&eager.encode(&value).unwrap()).unwrap(), value);
        assert_eq!(eager.decode(&lazy.encode(&value).unwrap()).unwrap(), value);
    }

    #[test]
    fn a_value_that_does_not_shrink_is_stored() {
        let codec = Compressed::new(Raw).min_size(0);
        let noise: Vec<u8> = (0..=255).collect();
        assert_eq!(codec.encode(&noise).unwrap()[0], STORED);
    }

    #[test]
    fn a_header_claiming_4_gib_is_refused_before_allocating() {
        let codec = Compressed::new(Raw);
        let err = codec
            .decode(b"\x01\xff\xff\xff\xff\x00\x00\x00")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "4294967295 bytes before compression is over max_size (67108864 bytes)"
        );
        // Under max_size but more than 3 bytes of LZ4 can stand for.
        let codec = Compressed::new(Raw).max_size(usize::MAX);
        let err = codec
            .decode(b"\x01\xff\xff\xff\xff\x00\x00\x00")
            .unwrap_err();
        assert!(err.to_string().contains("cannot expand"), "{err}");
    }

    #[test]
    fn max_size_bounds_both_writing_and_reading() {
        let codec = Compressed::new(Raw).min_size(0).max_size(100);
        assert!(codec.encode(&vec![0; 101]).is_err());
        let written = Compressed::new(Raw)
            .min_size(0)
            .encode(&vec![0; 101])
            .unwrap();
        assert!(codec.decode(&written).is_err());
        let written = Compressed::new(Raw)
            .min_size(1000)
            .encode(&vec![0; 101])
            .unwrap();
        assert!(codec.decode(&written).is_err());
        assert!(codec.encode(&vec![0; 100]).is_ok());
    }

    #[test]
    fn malformed_values_are_errors() {
        let codec = Compressed::new(Raw);
        for bytes in [
            &b""[..],
            b"\x01\x05\x00",
            b"\x01\x05\x00\x00\x00",
            b"\x01\x05\x00\x00\x00\xf0",
            // A valid block of 3 literals, under a header claiming 4 bytes.
            b"\x01\x04\x00\x00\x00\x30abc",
        ] {
            assert!(codec.decode(bytes).is_err(), "{bytes:?}");
        }
        assert_eq!(
            codec.decode(b"\x01\x03\x00\x00\x00\x30abc").unwrap(),
            b"abc"
        );
        // Any other first byte: a value written without `Compressed`, whole.
        assert_eq!(codec.decode(b"\x02abc").unwrap(), b"\x02abc");
    }
}
