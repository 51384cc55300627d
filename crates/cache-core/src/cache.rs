//! The `Cache` trait and the TTL rules every backend shares.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use crate::{CacheError, CacheStats, Result, SingleFlight};

/// The smallest TTL a backend stores; shorter non-zero TTLs are rounded up to it.
pub const MIN_TTL: Duration = Duration::from_millis(1);

/// How long an entry has left, as [`Cache::get_bytes_with_ttl`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The entry does not expire.
    Never,
    /// The entry expires after this long.
    Remaining(Duration),
    /// The backend cannot tell.
    Unknown,
}

/// An async key-value cache with optional per-entry expiry: values are bytes underneath,
/// read and written as UTF-8 strings or as [`Bytes`].
///
/// Every backend (in-process, Redis) implements this trait with the same semantics, which
/// [`testkit`](crate#conformance-suite) checks. Generic code calls it with static dispatch
/// and pays no allocation for the call itself; use [`AnyCache`](crate::AnyCache) to choose a
/// backend at run time.
///
/// The methods are declared as `fn ... -> impl Future + Send` so that generic callers can
/// spawn the futures; implementors write them as `async fn`.
///
/// # Implementing it
/// A backend writes each operation once, on bytes: [`get_bytes`](Self::get_bytes),
/// [`set_bytes`](Self::set_bytes), [`delete`](Self::delete), [`clear`](Self::clear) and
/// [`close`](Self::close). Everything else is provided on top of them: the string forms
/// [`get`](Self::get) and [`set`](Self::set), and the batches, which call the single-key
/// operations once per key. A backend overrides a provided method only where it can do
/// better (Redis sends one `MGET` for a batch; the memory backend's `get` copies out of its
/// store without touching the value's reference count).
///
/// # Semantics
/// - [`get`](Self::get) and [`get_bytes`](Self::get_bytes) return `Ok(None)` for a missing or
///   expired key; an expired entry is never returned.
/// - [`set`](Self::set) and [`set_bytes`](Self::set_bytes) store or overwrite. `ttl: None`
///   means no expiry and removes any earlier TTL of the key; `Some(Duration::ZERO)` and TTLs
///   too large for the backend are [`CacheError::InvalidTtl`]; non-zero TTLs below 1 ms are
///   rounded up to 1 ms. A rejected `set` changes nothing.
/// - The string and byte forms read and write the same entries: `get_bytes` of a value
///   written by `set` returns its UTF-8 bytes, and `get` of bytes that are not UTF-8 is
///   [`CacheError::InvalidValue`], never a lossy conversion.
/// - [`delete`](Self::delete) succeeds whether or not the key existed.
/// - [`clear`](Self::clear) removes every entry this cache owns and nothing else.
/// - [`close`](Self::close) is idempotent; afterwards every operation on the cache and its
///   clones returns [`CacheError::Closed`].
/// - Keys are any UTF-8 strings and values any bytes: empty, with NUL bytes, glob
///   characters, or several megabytes long.
/// - Dropping an operation's future at any point never corrupts the cache.
///
/// # Example
/// Also `cache_memory::Cache` and `cache_redis::Cache`: a crate that depends on one backend
/// imports it from there.
///
/// ```
/// use std::time::Duration;
/// use cache_core::{Bytes, Cache, Result};
/// use cache_memory::MemoryCache;
///
/// /// Works with any backend, with static dispatch.
/// async fn remember_user<C: Cache>(cache: &C, id: u64, name: &str) -> Result<()> {
///     cache.set(&format!("user:{id}"), name, Some(Duration::from_secs(300))).await
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// let cache = MemoryCache::new();
/// remember_user(&cache, 1, "Ada").await?;
/// assert_eq!(cache.get("user:1").await?.as_deref(), Some("Ada"));
///
/// // Any bytes, shared rather than copied where the backend can.
/// cache.set_bytes("thumbnail:1", Bytes::from_static(&[0x89, b'P', b'N', b'G', 0]), None).await?;
/// assert_eq!(cache.get_bytes("thumbnail:1").await?.as_deref(), Some(&[0x89, b'P', b'N', b'G', 0][..]));
/// assert_eq!(cache.get_bytes("user:1").await?.as_deref(), Some(&b"Ada"[..]));
/// # Ok(())
/// # }
/// ```
pub trait Cache: Send + Sync {
    /// Returns the bytes stored under `key`, or `None` when it is missing or expired.
    ///
    /// # Errors
    /// [`CacheError::Closed`] after [`close`](Self::close); the backend's I/O errors.
    fn get_bytes(&self, key: &str) -> impl Future<Output = Result<Option<Bytes>>> + Send;

    /// Stores `value` under `key`, replacing any earlier value and TTL.
    ///
    /// With `ttl: Some(d)` the entry expires `d` from now (non-zero TTLs below 1 ms count as
    /// 1 ms); with `None` it never expires.
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for a zero TTL or one too large for the backend, in which
    /// case nothing changes; [`CacheError::TooLarge`] for a key or value over the backend's
    /// limit; [`CacheError::Closed`] after [`close`](Self::close); the backend's I/O errors.
    fn set_bytes(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes `key`; succeeds whether or not it existed.
    ///
    /// # Errors
    /// [`CacheError::Closed`] after [`close`](Self::close); the backend's I/O errors.
    fn delete(&self, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Removes every entry this cache owns, and nothing else.
    ///
    /// # Errors
    /// [`CacheError::Closed`] after [`close`](Self::close); the backend's I/O errors.
    fn clear(&self) -> impl Future<Output = Result<()>> + Send;

    /// Frees what the cache holds (entries, pools, background tasks).
    ///
    /// Idempotent. Afterwards every operation on this cache and on all of its clones returns
    /// [`CacheError::Closed`].
    ///
    /// # Errors
    /// Only the backend's errors while releasing resources; closing twice is `Ok(())`.
    fn close(&self) -> impl Future<Output = Result<()>> + Send;

    /// Returns the value stored under `key` as a string, or `None` when it is missing or
    /// expired.
    ///
    /// The default reads [`get_bytes`](Self::get_bytes) and checks that the bytes are UTF-8.
    ///
    /// # Errors
    /// [`CacheError::InvalidValue`] when the stored bytes are not UTF-8 (another client, or
    /// [`set_bytes`](Self::set_bytes), wrote them); otherwise those of
    /// [`get_bytes`](Self::get_bytes).
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>>> + Send {
        async move { self.get_bytes(key).await?.map(utf8).transpose() }
    }

    /// Stores the UTF-8 bytes of `value` under `key`, as [`set_bytes`](Self::set_bytes)
    /// does.
    ///
    /// The default copies `value` into a [`Bytes`] and calls [`set_bytes`](Self::set_bytes).
    ///
    /// # Errors
    /// Those of [`set_bytes`](Self::set_bytes).
    fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send {
        self.set_bytes(key, Bytes::copy_from_slice(value.as_bytes()), ttl)
    }

    /// Returns the bytes of `keys`, in the order of `keys`: `None` for each missing or
    /// expired one.
    ///
    /// The default calls [`get_bytes`](Self::get_bytes) once per key; a backend that can
    /// fetch many keys in one request (Redis: `MGET`) overrides it.
    ///
    /// # Errors
    /// The first error of a [`get_bytes`](Self::get_bytes); no partial result is returned.
    fn get_many_bytes<K>(
        &self,
        keys: &[K],
    ) -> impl Future<Output = Result<Vec<Option<Bytes>>>> + Send
    where
        K: AsRef<str> + Sync,
    {
        async move {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                values.push(self.get_bytes(key.as_ref()).await?);
            }
            Ok(values)
        }
    }

    /// Stores every `(key, value)` of `entries`, all with the same `ttl`.
    ///
    /// When a key appears twice, the later entry wins. The default calls
    /// [`set_bytes`](Self::set_bytes) once per entry (the values are shared, not copied); a
    /// backend that can send many writes at once (Redis: one pipeline) overrides it.
    ///
    /// # Errors
    /// As [`set_bytes`](Self::set_bytes). An invalid TTL, or (on backends that check before
    /// sending) an entry over the size limit, fails the whole batch before anything is
    /// stored. Another error can leave part of the batch stored.
    fn set_many_bytes<K>(
        &self,
        entries: &[(K, Bytes)],
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send
    where
        K: AsRef<str> + Sync,
    {
        async move {
            normalize_ttl(ttl)?;
            for (key, value) in entries {
                self.set_bytes(key.as_ref(), value.clone(), ttl).await?;
            }
            Ok(())
        }
    }

    /// Returns the values of `keys` as strings, in the order of `keys`: `None` for each
    /// missing or expired one.
    ///
    /// The default reads [`get_many_bytes`](Self::get_many_bytes) and checks each value.
    ///
    /// # Errors
    /// Those of [`get_many_bytes`](Self::get_many_bytes); no partial result is returned. A
    /// value that is not UTF-8 fails the whole call with [`CacheError::InvalidValue`], whose
    /// message gives the position of its key in `keys` (never the key itself, which may be
    /// sensitive): reading it as a miss would hide data another client wrote. Read such
    /// batches with [`get_many_bytes`](Self::get_many_bytes), which cannot fail that way.
    fn get_many<K>(&self, keys: &[K]) -> impl Future<Output = Result<Vec<Option<String>>>> + Send
    where
        K: AsRef<str> + Sync,
    {
        async move {
            let values = self.get_many_bytes(keys).await?;
            let len = values.len();
            values
                .into_iter()
                .enumerate()
                .map(|(position, value)| {
                    value
                        .map(utf8)
                        .transpose()
                        .map_err(|err| err.at_batch_position(position, len))
                })
                .collect()
        }
    }

    /// Stores every `(key, value)` of `entries` as UTF-8 bytes, all with the same `ttl`.
    ///
    /// The default copies each value into a [`Bytes`] and calls
    /// [`set_many_bytes`](Self::set_many_bytes).
    ///
    /// # Errors
    /// Those of [`set_many_bytes`](Self::set_many_bytes).
    fn set_many<K, V>(
        &self,
        entries: &[(K, V)],
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send
    where
        K: AsRef<str> + Sync,
        V: AsRef<str> + Sync,
    {
        async move {
            normalize_ttl(ttl)?;
            let entries: Vec<(&str, Bytes)> = entries
                .iter()
                .map(|(key, value)| {
                    (
                        key.as_ref(),
                        Bytes::copy_from_slice(value.as_ref().as_bytes()),
                    )
                })
                .collect();
            self.set_many_bytes(&entries, ttl).await
        }
    }

    /// Removes every key of `keys`; succeeds whether or not they existed.
    ///
    /// The default calls [`delete`](Self::delete) once per key; Redis overrides it with
    /// multi-key `UNLINK`s.
    ///
    /// # Errors
    /// As [`delete`](Self::delete); an error can leave part of the batch removed.
    fn delete_many<K>(&self, keys: &[K]) -> impl Future<Output = Result<()>> + Send
    where
        K: AsRef<str> + Sync,
    {
        async move {
            for key in keys {
                self.delete(key.as_ref()).await?;
            }
            Ok(())
        }
    }

    /// Returns the bytes stored under `key` with the time the entry has left, like
    /// [`get_bytes`](Self::get_bytes); a tiered cache uses it to keep a copy no longer than
    /// the original. Backends that can tell in the same round trip override it; the default
    /// calls `get_bytes` and says [`Ttl::Unknown`].
    fn get_bytes_with_ttl(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Bytes, Ttl)>>> + Send {
        async move {
            Ok(self
                .get_bytes(key)
                .await?
                .map(|value| (value, Ttl::Unknown)))
        }
    }

    /// Returns the bytes of `keys` with the time each entry has left, in the order of
    /// `keys`: [`get_bytes_with_ttl`](Self::get_bytes_with_ttl) for a batch. A tiered cache
    /// uses it to read many keys it missed at once. Counted as hits and misses like
    /// [`get_many_bytes`](Self::get_many_bytes).
    ///
    /// The default calls [`get_bytes_with_ttl`](Self::get_bytes_with_ttl) once per key, so
    /// that a backend which tells TTLs one key at a time keeps telling them, for all the
    /// keys at once (concurrently, in the caller's task): the batch takes as long as its
    /// slowest key, not as long as all of them. A backend that can fetch many keys and their
    /// TTLs in one request (Redis: `MGET` and `PTTL`s in one pipeline) overrides it.
    ///
    /// # Errors
    /// The first error of a [`get_bytes_with_ttl`](Self::get_bytes_with_ttl); no partial
    /// result is returned.
    fn get_many_bytes_with_ttl<K>(
        &self,
        keys: &[K],
    ) -> impl Future<Output = Result<Vec<Option<(Bytes, Ttl)>>>> + Send
    where
        K: AsRef<str> + Sync,
    {
        async move {
            futures_util::future::join_all(
                keys.iter().map(|key| self.get_bytes_with_ttl(key.as_ref())),
            )
            .await
            .into_iter()
            .collect()
        }
    }

    /// How long this cache keeps an entry after it expires, so that
    /// [`get_stale_bytes`](Self::get_stale_bytes) can still return it; a tiered cache's
    /// fail-safe serves such values while its shared tier is down. The default, for a backend
    /// that drops expired entries, is zero (`cache_memory`'s `keep_expired_for` sets it).
    fn stale_retention(&self) -> Duration {
        Duration::ZERO
    }

    /// Returns the bytes stored under `key` even when the entry has expired, as long as the
    /// cache still keeps it (see [`stale_retention`](Self::stale_retention)), with how long
    /// ago it expired: [`Duration::ZERO`] for a live entry. Reads of any other kind never
    /// return an expired entry. The default calls `get_bytes`: live entries only.
    fn get_stale_bytes(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Bytes, Duration)>>> + Send {
        async move {
            Ok(self
                .get_bytes(key)
                .await?
                .map(|value| (value, Duration::ZERO)))
        }
    }

    /// What this cache (and its clones) has done so far: hits, misses, writes, evictions,
    /// errors.
    ///
    /// Cheap: a few atomic loads. The default, for a backend that keeps no counts, is all
    /// zeros; both backends of this workspace count.
    fn stats(&self) -> CacheStats {
        CacheStats::default()
    }

    /// The registry that lets concurrent
    /// [`get_or_set_with`](crate::CacheExt::get_or_set_with) calls for one missing key share
    /// one load.
    ///
    /// A backend keeps one [`SingleFlight`] shared by its clones and returns it here. The
    /// default, `None`, makes every caller run its own loader.
    fn single_flight(&self) -> Option<&SingleFlight> {
        None
    }
}

/// A stored value as a `String`, without copying when the bytes are not shared, or
/// [`CacheError::InvalidValue`] when they are not UTF-8.
///
/// # Errors
/// [`CacheError::InvalidValue`], with the UTF-8 error as its source.
///
/// ```
/// use cache_core::{Bytes, utf8};
///
/// assert_eq!(utf8(Bytes::from_static(b"caf\xc3\xa9")).unwrap(), "café");
/// assert!(utf8(Bytes::from_static(b"\xff")).is_err());
/// ```
pub fn utf8(bytes: Bytes) -> Result<String> {
    String::from_utf8(Vec::from(bytes)).map_err(|err| CacheError::InvalidValue {
        reason: "the stored value is not valid utf-8; another client, or set_bytes, wrote it"
            .into(),
        source: Some(Box::new(err.utf8_error())),
    })
}

/// Applies the TTL rules every backend shares, before any backend-specific limit.
///
/// Returns `Ok(None)` for no expiry, `Ok(Some(d))` with `d >= 1 ms` otherwise; non-zero TTLs
/// below [`MIN_TTL`] are rounded up to it. A backend then checks `d` against what it can
/// represent and returns [`CacheError::InvalidTtl`] when it cannot.
///
/// # Errors
/// [`CacheError::InvalidTtl`] for `Some(Duration::ZERO)`.
///
/// ```
/// use std::time::Duration;
/// use cache_core::normalize_ttl;
///
/// assert_eq!(normalize_ttl(None).unwrap(), None);
/// assert_eq!(normalize_ttl(Some(Duration::from_nanos(1))).unwrap(), Some(Duration::from_millis(1)));
/// assert!(normalize_ttl(Some(Duration::ZERO)).is_err());
/// ```
pub fn normalize_ttl(ttl: Option<Duration>) -> Result<Option<Duration>> {
    match ttl {
        None => Ok(None),
        Some(Duration::ZERO) => Err(CacheError::InvalidTtl {
            ttl: Duration::ZERO,
            reason: "a ttl must be greater than zero; pass None for no expiry",
        }),
        Some(d) => Ok(Some(d.max(MIN_TTL))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend whose store holds one value that is not UTF-8, under `"bad"`, to check the
    /// provided string methods on a backend that implements only the required ones.
    struct OneBadValue;

    impl Cache for OneBadValue {
        async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>> {
            Ok(match key {
                "bad" => Some(Bytes::from_static(b"\xff\xfe")),
                "missing" => None,
                _ => Some(Bytes::from_static(b"v")),
            })
        }
        async fn set_bytes(&self, _: &str, _: Bytes, _: Option<Duration>) -> Result<()> {
            Ok(())
        }
        async fn delete(&self, _: &str) -> Result<()> {
            Ok(())
        }
        async fn clear(&self) -> Result<()> {
            Ok(())
        }
        async fn close(&self) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_provided_get_many_names_the_position_of_a_value_that_is_not_utf8() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = runtime
            .block_on(OneBadValue.get_many(&["ok", "missing", "ok", "bad", "ok"]))
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, CacheError::InvalidValue { .. }), "{err:?}");
        assert!(text.contains("position 3 of a batch of 5"), "{text}");
        assert!(!text.contains("bad"), "the key is not named: {text}");
        let values = runtime
            .block_on(OneBadValue.get_many(&["ok", "missing"]))
            .unwrap();
        assert_eq!(values, [Some("v".to_owned()), None]);
        let err = runtime.block_on(OneBadValue.get("bad")).unwrap_err();
        assert!(matches!(err, CacheError::InvalidValue { .. }), "{err:?}");
        let bytes = runtime
            .block_on(OneBadValue.get_many_bytes(&["bad", "missing"]))
            .unwrap();
        assert_eq!(bytes, [Some(Bytes::from_static(b"\xff\xfe")), None]);
    }

    #[test]
    fn ttl_rules() {
        assert_eq!(normalize_ttl(None).unwrap(), None);
        assert!(matches!(
            normalize_ttl(Some(Duration::ZERO)),
            Err(CacheError::InvalidTtl { .. })
        ));
        assert_eq!(
            normalize_ttl(Some(Duration::from_nanos(1))).unwrap(),
            Some(MIN_TTL)
        );
        assert_eq!(
            normalize_ttl(Some(Duration::from_micros(999))).unwrap(),
            Some(MIN_TTL)
        );
        assert_eq!(
            normalize_ttl(Some(Duration::from_micros(1001))).unwrap(),
            Some(Duration::from_micros(1001))
        );
        assert_eq!(
            normalize_ttl(Some(Duration::MAX)).unwrap(),
            Some(Duration::MAX)
        );
    }
}
