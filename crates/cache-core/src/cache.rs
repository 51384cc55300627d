//! The `Cache` trait and the TTL rules every backend shares.

use std::future::Future;
use std::time::Duration;

use crate::{CacheError, CacheStats, Result, SingleFlight};

/// The smallest TTL a backend stores; shorter non-zero TTLs are rounded up to it.
pub const MIN_TTL: Duration = Duration::from_millis(1);

/// An async key-value cache of UTF-8 strings with optional per-entry expiry.
///
/// Every backend (in-process, Redis) implements this trait with the same semantics, which
/// [`testkit`](crate#conformance-suite) checks. Generic code calls it with static dispatch
/// and pays no allocation for the call itself; use [`AnyCache`](crate::AnyCache) to choose a
/// backend at run time.
///
/// The methods are declared as `fn ... -> impl Future + Send` so that generic callers can
/// spawn the futures; implementors write them as `async fn`.
///
/// # Semantics
/// - [`get`](Self::get) returns `Ok(None)` for a missing or expired key; an expired entry is
///   never returned.
/// - [`set`](Self::set) stores or overwrites. `ttl: None` means no expiry and removes any
///   earlier TTL of the key; `Some(Duration::ZERO)` and TTLs too large for the backend are
///   [`CacheError::InvalidTtl`]; non-zero TTLs below 1 ms are rounded up to 1 ms. A rejected
///   `set` changes nothing.
/// - [`delete`](Self::delete) succeeds whether or not the key existed.
/// - [`clear`](Self::clear) removes every entry this cache owns and nothing else.
/// - [`close`](Self::close) is idempotent; afterwards every operation on the cache and its
///   clones returns [`CacheError::Closed`].
/// - Keys and values are any UTF-8 strings: empty, with NUL bytes, glob characters, or
///   several megabytes long.
/// - Dropping an operation's future at any point never corrupts the cache.
///
/// # Example
/// Also `cache_memory::Cache` and `cache_redis::Cache`: a crate that depends on one backend
/// imports it from there.
///
/// ```
/// use std::time::Duration;
/// use cache_core::{Cache, Result};
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
/// # Ok(())
/// # }
/// ```
pub trait Cache: Send + Sync {
    /// Returns the value stored under `key`, or `None` when it is missing or expired.
    ///
    /// # Errors
    /// [`CacheError::Closed`] after [`close`](Self::close); [`CacheError::InvalidValue`] when
    /// the store holds bytes that are not UTF-8; the backend's I/O errors.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Stores `value` under `key`, replacing any earlier value and TTL.
    ///
    /// With `ttl: Some(d)` the entry expires `d` from now (non-zero TTLs below 1 ms count as
    /// 1 ms); with `None` it never expires.
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for a zero TTL or one too large for the backend, in which
    /// case nothing changes; [`CacheError::TooLarge`] for a key or value over the backend's
    /// limit; [`CacheError::Closed`] after [`close`](Self::close); the backend's I/O errors.
    fn set(
        &self,
        key: &str,
        value: &str,
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

    /// Returns the values of `keys`, in the order of `keys`: `None` for each missing or
    /// expired one.
    ///
    /// The default calls [`get`](Self::get) once per key; a backend that can fetch many keys
    /// in one request (Redis: `MGET`) overrides it.
    ///
    /// # Errors
    /// The first error of a [`get`](Self::get); no partial result is returned. A value that
    /// is not UTF-8 fails the whole call with [`CacheError::InvalidValue`], whose message
    /// gives the position of its key in `keys` (never the key itself, which may be
    /// sensitive): reading it as a miss would hide data another client wrote.
    fn get_many<K>(&self, keys: &[K]) -> impl Future<Output = Result<Vec<Option<String>>>> + Send
    where
        K: AsRef<str> + Sync,
    {
        async move {
            let mut values = Vec::with_capacity(keys.len());
            for (position, key) in keys.iter().enumerate() {
                let value = self
                    .get(key.as_ref())
                    .await
                    .map_err(|err| err.at_batch_position(position, keys.len()))?;
                values.push(value);
            }
            Ok(values)
        }
    }

    /// Stores every `(key, value)` of `entries`, all with the same `ttl`.
    ///
    /// When a key appears twice, the later entry wins. The default calls [`set`](Self::set)
    /// once per entry; a backend that can send many writes at once (Redis: one pipeline)
    /// overrides it.
    ///
    /// # Errors
    /// As [`set`](Self::set). An invalid TTL, or (on backends that check before sending) an
    /// entry over the size limit, fails the whole batch before anything is stored. Another
    /// error can leave part of the batch stored.
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
            for (key, value) in entries {
                self.set(key.as_ref(), value.as_ref(), ttl).await?;
            }
            Ok(())
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
    /// provided `get_many` on a backend that does not override it.
    struct OneBadValue;

    impl Cache for OneBadValue {
        async fn get(&self, key: &str) -> Result<Option<String>> {
            match key {
                "bad" => Err(CacheError::InvalidValue {
                    reason: "the stored bytes are not utf-8".into(),
                    source: None,
                }),
                "missing" => Ok(None),
                _ => Ok(Some("v".into())),
            }
        }
        async fn set(&self, _: &str, _: &str, _: Option<Duration>) -> Result<()> {
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
