//! What is checked and built before a command is sent: namespaced keys, size limits, TTLs in
//! milliseconds and the `SCAN MATCH` pattern of a namespace.

use std::fmt;
use std::time::Duration;

use cache_core::{CacheError, Result, normalize_ttl};
use redis::{RedisWrite, ToRedisArgs, ToSingleRedisArg};

/// The largest TTL sent to Redis, in milliseconds (about 146 million years). Redis refuses an
/// expiry time that overflows a signed 64-bit count of milliseconds since the epoch; half of
/// that range leaves room for any clock.
pub const MAX_TTL_MS: u64 = (i64::MAX / 2) as u64;

/// The namespace prefix and the size limit, applied to every key and value.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    namespace: Box<str>,
    max_size: usize,
}

/// A key with its namespace, written to Redis as one argument without an intermediate copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<'a> {
    namespace: &'a str,
    key: &'a str,
}

impl Keys {
    pub(crate) fn new(namespace: String, max_size: usize) -> Self {
        Self {
            namespace: namespace.into_boxed_str(),
            max_size,
        }
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(crate) fn max_size(&self) -> usize {
        self.max_size
    }

    /// The stored key for `key`.
    ///
    /// # Errors
    /// [`CacheError::TooLarge`] when the namespace and key together are over the limit.
    pub(crate) fn key<'a>(&'a self, key: &'a str) -> Result<Key<'a>> {
        let size = self.namespace.len().saturating_add(key.len());
        if size > self.max_size {
            return Err(CacheError::TooLarge {
                what: "key",
                size,
                limit: self.max_size,
            });
        }
        Ok(Key {
            namespace: &self.namespace,
            key,
        })
    }

    /// Checks a value against the limit.
    ///
    /// # Errors
    /// [`CacheError::TooLarge`] when it is over the limit.
    pub(crate) fn value<'a>(&self, value: &'a [u8]) -> Result<&'a [u8]> {
        if value.len() > self.max_size {
            return Err(CacheError::TooLarge {
                what: "value",
                size: value.len(),
                limit: self.max_size,
            });
        }
        Ok(value)
    }

    /// The `SCAN MATCH` pattern of every key under the namespace: the namespace with its glob
    /// characters escaped, then `*`.
    pub(crate) fn scan_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.namespace.len() + 8);
        for c in self.namespace.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }
}

impl Key<'_> {
    /// The key's hash slot in a Redis Cluster (a hash tag may be in the namespace).
    pub(crate) fn slot(&self) -> u16 {
        crate::cluster::slots::slot(&[self.namespace.as_bytes(), self.key.as_bytes()])
    }
}

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.namespace)?;
        f.write_str(self.key)
    }
}

impl ToRedisArgs for Key<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        if self.namespace.is_empty() {
            out.write_arg(self.key.as_bytes());
        } else {
            // `Cmd` formats straight into its buffer.
            out.write_arg_fmt(self);
        }
    }
}

impl ToSingleRedisArg for Key<'_> {}

/// The TTL in whole milliseconds, rounded up, as `SET ... PX` takes it.
///
/// # Errors
/// [`CacheError::InvalidTtl`] for zero and for more than [`MAX_TTL_MS`].
pub(crate) fn ttl_millis(ttl: Option<Duration>) -> Result<Option<u64>> {
    let Some(ttl) = normalize_ttl(ttl)? else {
        return Ok(None);
    };
    let millis = ttl.as_nanos().div_ceil(1_000_000);
    match u64::try_from(millis) {
        Ok(ms) if ms <= MAX_TTL_MS => Ok(Some(ms)),
        _ => Err(CacheError::InvalidTtl {
            ttl,
            reason: "too large for redis, whose limit is about 146 million years",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_pattern_escapes_every_glob_character() {
        let keys = Keys::new(r"a*b?c[d]e\f:".into(), 100);
        assert_eq!(keys.scan_pattern(), r"a\*b\?c\[d\]e\\f:*");
        assert_eq!(Keys::new(String::new(), 1).scan_pattern(), "*");
    }

    #[test]
    fn key_size_counts_the_namespace() {
        let keys = Keys::new("ns:".into(), 5);
        assert_eq!(keys.key("ab").unwrap().to_string(), "ns:ab");
        assert!(matches!(
            keys.key("abc"),
            Err(CacheError::TooLarge {
                what: "key",
                size: 6,
                limit: 5
            })
        ));
        assert!(keys.value(b"12345").is_ok());
        assert!(matches!(
            keys.value(b"123456"),
            Err(CacheError::TooLarge { what: "value", .. })
        ));
    }

    #[test]
    fn ttl_is_rounded_up_to_whole_milliseconds() {
        assert_eq!(ttl_millis(None).unwrap(), None);
        assert_eq!(ttl_millis(Some(Duration::from_nanos(1))).unwrap(), Some(1));
        assert_eq!(
            ttl_millis(Some(Duration::from_micros(1500))).unwrap(),
            Some(2)
        );
        assert_eq!(
            ttl_millis(Some(Duration::from_secs(300))).unwrap(),
            Some(300_000)
        );
        assert!(ttl_millis(Some(Duration::ZERO)).is_err());
        assert!(ttl_millis(Some(Duration::MAX)).is_err());
        assert_eq!(
            ttl_millis(Some(Duration::from_millis(MAX_TTL_MS))).unwrap(),
            Some(MAX_TTL_MS)
        );
        assert!(ttl_millis(Some(Duration::from_millis(MAX_TTL_MS + 1))).is_err());
    }
}
