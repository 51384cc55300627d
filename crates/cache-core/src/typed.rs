//! `TypedCache`: values of any type in any cache, through a [`Codec`].

use std::any::type_name;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

#[cfg(feature = "serde")]
use crate::Json;
use crate::{BoxError, Bytes, Cache, CacheError, CacheExt, Codec, Result};

/// A view of a cache that stores values of type `T`, encoded by a [`Codec`] (`Json` by
/// default, with the `serde` feature).
///
/// Cheap to build over a clone of any cache (`MemoryCache`, `RedisCache`, `AnyCache`); it
/// adds one encode per write and one decode per hit. A stored value that does not decode as
/// `T` (written by an older version of the program, or by another client) is
/// [`CacheError::InvalidValue`], never a panic.
///
/// Also `cache_memory::TypedCache` and `cache_redis::TypedCache`: a crate that depends on one
/// backend imports it from there, and the codecs with it (features `serde`, `msgpack`, `lz4`
/// of that crate).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use cache_core::{Cache, CacheError, TypedCache};
/// use cache_memory::MemoryCache;
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Span { trace: String, millis: u32 }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_core::Result<()> {
/// let cache = MemoryCache::new(); // any backend
/// let spans: TypedCache<_, Span> = TypedCache::new(cache.clone());
///
/// let span = Span { trace: "abc".into(), millis: 12 };
/// spans.set("span:1", &span, None).await?;
/// assert_eq!(spans.get("span:1").await?, Some(span));
///
/// cache.set("span:2", "not a span", None).await?;
/// assert!(matches!(spans.get("span:2").await, Err(CacheError::InvalidValue { .. })));
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "serde")]
pub struct TypedCache<C, T, K = Json> {
    cache: C,
    codec: K,
    value: PhantomData<fn() -> T>,
}

/// A view of a cache that stores values of type `T`, encoded by the [`Codec`] `K`.
///
/// With the `serde` feature, `K` defaults to `Json`.
#[cfg(not(feature = "serde"))]
pub struct TypedCache<C, T, K> {
    cache: C,
    codec: K,
    value: PhantomData<fn() -> T>,
}

#[cfg(feature = "serde")]
impl<C: Cache, T> TypedCache<C, T, Json>
where
    Json: Codec<T>,
{
    /// Stores `T` in `cache` as JSON.
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    pub fn new(cache: C) -> Self {
        Self::with_codec(cache, Json)
    }
}

impl<C: Cache, T, K: Codec<T>> TypedCache<C, T, K> {
    /// Stores `T` in `cache` through `codec`.
    pub fn with_codec(cache: C, codec: K) -> Self {
        Self {
            cache,
            codec,
            value: PhantomData,
        }
    }

    /// The cache underneath, for operations that do not depend on the type
    /// (`clear`, `close`, `stats`).
    pub fn cache(&self) -> &C {
        &self.cache
    }

    /// The value under `key`, decoded; `None` when missing or expired.
    ///
    /// # Errors
    /// [`CacheError::InvalidValue`] when the stored value does not decode as `T`; otherwise
    /// those of [`Cache::get_bytes`].
    pub async fn get(&self, key: &str) -> Result<Option<T>> {
        match self.cache.get_bytes(key).await? {
            Some(bytes) => self.decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Encodes `value` and stores it under `key`, as [`Cache::set_bytes`] does.
    ///
    /// # Errors
    /// [`CacheError::InvalidValue`] when `value` does not encode (nothing is stored);
    /// otherwise those of [`Cache::set_bytes`].
    pub fn set<'a>(
        &'a self,
        key: &'a str,
        value: &T,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        // Encoded before the future, so that `T` need not be `Sync`.
        let bytes = self.encode(value);
        async move { self.cache.set_bytes(key, Bytes::from(bytes?), ttl).await }
    }

    /// Removes `key`, as [`Cache::delete`] does.
    ///
    /// # Errors
    /// Those of [`Cache::delete`].
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.cache.delete(key).await
    }

    /// The value under `key`, or the loader's, stored with `ttl`; one load per missing key
    /// however many tasks ask at once, as [`CacheExt::get_or_set_bytes_with`] does.
    ///
    /// The loader's value is encoded once; every caller, the loading one included, decodes
    /// the stored bytes, so all of them get what a later [`get`](Self::get) returns.
    ///
    /// # Errors
    /// [`CacheError::Load`] when the loader fails, or when its value does not encode;
    /// [`CacheError::InvalidValue`] when the stored value does not decode as `T`; otherwise
    /// those of [`CacheExt::get_or_set_bytes_with`].
    pub async fn get_or_set_with<F, Fut, E>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<T>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = std::result::Result<T, E>> + Send,
        E: Into<BoxError>,
        T: Send,
    {
        let codec = &self.codec;
        let bytes = self
            .cache
            .get_or_set_bytes_with(key, ttl, || async move {
                let value = loader().await.map_err(Into::into)?;
                Ok::<_, BoxError>(Bytes::from(codec.encode(&value)?))
            })
            .await?;
        self.decode(&bytes)
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>> {
        self.codec
            .encode(value)
            .map_err(|err| CacheError::InvalidValue {
                reason: format!(
                    "a value of type {} could not be encoded with the {} codec; nothing was stored",
                    type_name::<T>(),
                    self.codec.name()
                ),
                source: Some(err),
            })
    }

    fn decode(&self, bytes: &[u8]) -> Result<T> {
        self.codec
            .decode(bytes)
            .map_err(|err| CacheError::InvalidValue {
                reason: format!(
                    "the stored value does not decode as {} with the {} codec; it was written by another type or program",
                    type_name::<T>(),
                    self.codec.name()
                ),
                source: Some(err),
            })
    }
}

impl<C: Clone, T, K: Clone> Clone for TypedCache<C, T, K> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            codec: self.codec.clone(),
            value: PhantomData,
        }
    }
}

impl<C: fmt::Debug, T, K: fmt::Debug> fmt::Debug for TypedCache<C, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedCache")
            .field("cache", &self.cache)
            .field("type", &type_name::<T>())
            .field("codec", &self.codec)
            .finish()
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use std::collections::HashMap;
    use std::error::Error as _;
    use std::sync::{Arc, Mutex};

    use serde::{Deserialize, Serialize, Serializer};

    use super::*;

    /// A string cache in a map, enough to drive a `TypedCache`.
    #[derive(Debug, Clone, Default)]
    struct Map(Arc<Mutex<HashMap<String, Bytes>>>);

    impl Cache for Map {
        async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>> {
            Ok(self.0.lock().unwrap().get(key).cloned())
        }
        async fn set_bytes(&self, key: &str, value: Bytes, _: Option<Duration>) -> Result<()> {
            self.0.lock().unwrap().insert(key.into(), value);
            Ok(())
        }
        async fn delete(&self, key: &str) -> Result<()> {
            self.0.lock().unwrap().remove(key);
            Ok(())
        }
        async fn clear(&self) -> Result<()> {
            self.0.lock().unwrap().clear();
            Ok(())
        }
        async fn close(&self) -> Result<()> {
            Ok(())
        }
    }

    /// A value whose serialization always fails.
    #[derive(Debug, Deserialize)]
    struct Unencodable;

    impl Serialize for Unencodable {
        fn serialize<S: Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refused on purpose"))
        }
    }

    /// The rules every message follows, and the article: no "a" before a vowel or before
    /// the type's name (`a app::User`).
    fn assert_reads_well(message: &str, type_name: &str) {
        assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
        assert!(!message.ends_with('.'), "{message}");
        let text = format!(" {message}");
        assert!(!text.contains(&format!(" a {type_name}")), "{message}");
        for vowel in ['a', 'e', 'i', 'o', 'u'] {
            assert!(!text.contains(&format!(" a {vowel}")), "{message}");
        }
    }

    #[tokio::test]
    async fn a_value_that_does_not_encode_says_encode_and_names_its_type() {
        let cache = Map::default();
        let typed: TypedCache<_, Unencodable> = TypedCache::new(cache.clone());
        let err = typed.set("k", &Unencodable, None).await.unwrap_err();
        assert!(matches!(err, CacheError::InvalidValue { .. }), "{err:?}");
        let message = err.to_string();
        let type_name = type_name::<Unencodable>();
        assert!(message.contains("could not be encoded"), "{message}");
        assert!(message.contains(type_name), "{message}");
        assert!(message.contains("json"), "{message}");
        assert!(!message.contains("decode"), "{message}");
        assert!(!message.contains("stored value"), "{message}");
        assert_reads_well(&message, type_name);
        assert_eq!(err.source().unwrap().to_string(), "refused on purpose");
        assert_eq!(cache.get("k").await.unwrap(), None, "nothing is stored");
    }

    #[tokio::test]
    async fn a_stored_value_that_does_not_decode_says_decode_and_names_the_type() {
        let cache = Map::default();
        cache.set("k", "not json", None).await.unwrap();
        let typed: TypedCache<_, u32> = TypedCache::new(cache);
        let err = typed.get("k").await.unwrap_err();
        assert!(matches!(err, CacheError::InvalidValue { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("does not decode as u32"), "{message}");
        assert!(message.contains("json"), "{message}");
        assert!(!message.contains("encode"), "{message}");
        assert_reads_well(&message, "u32");
        assert!(err.source().is_some());
    }

    #[tokio::test]
    async fn stored_bytes_reach_the_codec_as_they_are() {
        let cache = Map::default();
        cache
            .set_bytes("k", Bytes::from_static(b"\xff"), None)
            .await
            .unwrap();
        let typed: TypedCache<_, u32> = TypedCache::new(cache.clone());
        let err = typed.get("k").await.unwrap_err();
        assert!(matches!(err, CacheError::InvalidValue { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("does not decode as u32"), "{message}");

        typed.set("k", &7, None).await.unwrap();
        assert_eq!(cache.get_bytes("k").await.unwrap().unwrap(), &b"7"[..]);
    }
}
