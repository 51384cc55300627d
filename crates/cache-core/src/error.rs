//! The one error type every backend returns.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A boxed error kept as the [`source`](std::error::Error::source) of a [`CacheError`].
///
/// Boxing keeps the store clients' error types (redis, I/O) out of this crate's API.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `std::result::Result` with [`CacheError`] as the error.
pub type Result<T, E = CacheError> = std::result::Result<T, E>;

/// What went wrong in a cache operation.
///
/// Variants are named for what the caller can do about them. A missing key is never an
/// error: [`Cache::get`](crate::Cache::get) returns `Ok(None)`. Messages never contain a
/// password or a connection URL with credentials, and do not repeat their
/// [`source`](std::error::Error::source): print the chain to see it.
///
/// Also `cache_memory::CacheError` and `cache_redis::CacheError`: a crate that depends on one
/// backend imports it from there.
///
/// ```
/// use std::time::Duration;
/// use cache_core::CacheError;
///
/// let err = CacheError::Timeout { after: Duration::from_secs(1) };
/// assert!(err.is_retryable());
/// assert_eq!(err.to_string(), "the cache did not answer within 1s; check that the store is up and not overloaded");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A TTL of zero, or one too large for the backend to represent. Nothing was stored.
    #[error("invalid ttl {ttl:?}: {reason}")]
    InvalidTtl {
        /// The TTL the caller passed.
        ttl: Duration,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A value that cannot be stored or read back as it is: bytes in the store that are not
    /// UTF-8, or, through `TypedCache`, a value that does not encode
    /// (nothing is stored) or stored text that does not decode as the expected type.
    #[error("{reason}")]
    InvalidValue {
        /// What is wrong with the value, and whether it was being written or read: the whole
        /// message, so a lowercase sentence without a trailing period.
        reason: String,
        /// The encoding or decoding error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// A key or value over the configured limit, refused before any I/O.
    #[error("{what} of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// `"key"` or `"value"`; `"entry"` for the memory backend's `max_bytes`, which
        /// counts the key, the value and a fixed overhead together.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The configured maximum in bytes.
        limit: usize,
    },

    /// The cache was closed with [`Cache::close`](crate::Cache::close), through this handle or a clone.
    #[error("the cache is closed")]
    Closed,

    /// The operation did not finish within its deadline.
    ///
    /// For a write, the outcome is unknown: the store may or may not have applied it.
    #[error(
        "the cache did not answer within {after:?}; check that the store is up and not overloaded"
    )]
    Timeout {
        /// The deadline that passed.
        after: Duration,
    },

    /// The store cannot be reached (connection refused, reset, DNS failure, pool exhausted).
    #[error("the cache store is unavailable: {reason}")]
    Unavailable {
        /// What failed, without credentials.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The store answered with an error.
    #[error("the cache store answered with an error{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Backend {
        /// The store's error code when it gives one, such as `OOM`, `WRONGTYPE` or `NOPERM`.
        code: Option<String>,
        /// The store's message, without credentials.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The cache's configuration is invalid: returned by builders, before any I/O, and by
    /// operations called where the backend cannot run (outside a tokio runtime, or on one
    /// built without a driver the backend needs; see [`runtime`](crate::runtime)).
    #[error("invalid cache configuration: {reason}")]
    InvalidConfig {
        /// What is wrong and what to change.
        reason: String,
        /// The underlying parse error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The loader given to [`get_or_set_with`](crate::CacheExt::get_or_set_with) failed, for
    /// this caller or for the one whose load it waited on. Nothing was cached: the next call
    /// loads again.
    ///
    /// `source` is the loader's own error, shared by every caller that waited on the same
    /// load; downcast it to get your error type back:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cache_core::CacheError;
    ///
    /// let err = CacheError::Load { source: Arc::new(std::io::Error::other("db down")) };
    /// if let CacheError::Load { source } = &err {
    ///     assert!(source.downcast_ref::<std::io::Error>().is_some());
    /// }
    /// ```
    #[error("the value loader failed, so nothing was cached; see the source for why")]
    Load {
        /// The loader's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl CacheError {
    /// Whether the same call may succeed if tried again later.
    ///
    /// True for [`Timeout`](Self::Timeout) and [`Unavailable`](Self::Unavailable). A write
    /// that timed out may already have been applied: retry it only if writing the same value
    /// twice is harmless (it is for `set`).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::Unavailable { .. })
    }

    /// A copy of this error for another caller waiting on the same operation (a shared load,
    /// a batch of reads made for several callers).
    ///
    /// The source moves behind an `Arc` that both copies share, so it is still reachable
    /// through [`source`](std::error::Error::source) from each.
    ///
    /// ```
    /// use std::error::Error;
    /// use cache_core::CacheError;
    ///
    /// let mut err = CacheError::Unavailable {
    ///     reason: "connection refused".into(),
    ///     source: Some(Box::new(std::io::Error::other("refused"))),
    /// };
    /// let copy = err.share();
    /// assert_eq!(copy.to_string(), err.to_string());
    /// assert!(copy.source().is_some() && err.source().is_some());
    /// ```
    pub fn share(&mut self) -> Self {
        match self {
            Self::InvalidTtl { ttl, reason } => Self::InvalidTtl { ttl: *ttl, reason },
            Self::InvalidValue { reason, source } => Self::InvalidValue {
                reason: reason.clone(),
                source: share_source(source),
            },
            Self::TooLarge { what, size, limit } => Self::TooLarge {
                what,
                size: *size,
                limit: *limit,
            },
            Self::Closed => Self::Closed,
            Self::Timeout { after } => Self::Timeout { after: *after },
            Self::Unavailable { reason, source } => Self::Unavailable {
                reason: reason.clone(),
                source: share_source(source),
            },
            Self::Backend {
                code,
                message,
                source,
            } => Self::Backend {
                code: code.clone(),
                message: message.clone(),
                source: share_source(source),
            },
            Self::InvalidConfig { reason, source } => Self::InvalidConfig {
                reason: reason.clone(),
                source: share_source(source),
            },
            Self::Load { source } => Self::Load {
                source: Arc::clone(source),
            },
        }
    }

    /// For a batch read: an [`InvalidValue`](Self::InvalidValue) error about the value at
    /// `position` (counting from 0) of a batch of `len` keys says so in its message; other
    /// errors are returned as they are. The key itself is never named: keys may be
    /// sensitive.
    ///
    /// ```
    /// use cache_core::CacheError;
    ///
    /// let err = CacheError::InvalidValue { reason: "not utf-8".into(), source: None };
    /// assert!(err.at_batch_position(3, 10).to_string().contains("position 3 of a batch of 10"));
    /// ```
    #[must_use]
    pub fn at_batch_position(self, position: usize, len: usize) -> Self {
        match self {
            Self::InvalidValue { reason, source } => Self::InvalidValue {
                reason: format!(
                    "{reason} (the value at position {position} of a batch of {len} keys, \
                     counting from 0)"
                ),
                source,
            },
            other => other,
        }
    }

    /// The store's error code, for [`Backend`](Self::Backend) errors that carry one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Backend { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// Moves `source` behind an `Arc` (once) and returns a second handle to it.
fn share_source(source: &mut Option<BoxError>) -> Option<BoxError> {
    let own = source.take()?;
    let shared = match own.downcast::<SharedSource>() {
        Ok(shared) => *shared,
        Err(own) => SharedSource(Arc::from(own)),
    };
    let copy = SharedSource(Arc::clone(&shared.0));
    *source = Some(Box::new(shared));
    Some(Box::new(copy))
}

/// An error source that several [`CacheError`]s hold at once.
struct SharedSource(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl fmt::Debug for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for SharedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn backend_error_shows_its_code_once_and_keeps_the_source() {
        let source: BoxError = "OOM command not allowed".into();
        let err = CacheError::Backend {
            code: Some("OOM".into()),
            message: "command not allowed when used memory > 'maxmemory'".into(),
            source: Some(source),
        };
        assert_eq!(
            err.to_string(),
            "the cache store answered with an error (OOM): command not allowed when used memory > 'maxmemory'"
        );
        assert_eq!(err.code(), Some("OOM"));
        assert!(err.source().is_some());
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_shared_error_keeps_its_variant_message_and_source_in_both_copies() {
        let mut err = CacheError::Unavailable {
            reason: "connection refused".into(),
            source: Some("refused by 127.0.0.1".into()),
        };
        let copy = err.share();
        let again = err.share();
        for e in [&err, &copy, &again] {
            assert!(e.is_retryable());
            assert_eq!(
                e.to_string(),
                "the cache store is unavailable: connection refused"
            );
            assert_eq!(e.source().unwrap().to_string(), "refused by 127.0.0.1");
        }

        let mut load = CacheError::Load {
            source: Arc::new(std::io::Error::other("database down")),
        };
        let copy = load.share();
        assert_eq!(load.source().unwrap().to_string(), "database down");
        assert_eq!(copy.source().unwrap().to_string(), "database down");
        assert!(!copy.is_retryable());
        let CacheError::Load { source } = copy else {
            unreachable!()
        };
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn backend_error_without_code_has_no_parentheses() {
        let err = CacheError::Backend {
            code: None,
            message: "boom".into(),
            source: None,
        };
        assert_eq!(
            err.to_string(),
            "the cache store answered with an error: boom"
        );
        assert_eq!(err.code(), None);
    }

    #[test]
    fn messages_are_lowercase_without_trailing_period() {
        let errors = [
            CacheError::InvalidTtl {
                ttl: Duration::ZERO,
                reason: "a ttl must be greater than zero",
            },
            CacheError::InvalidValue {
                reason: "the stored value is not valid utf-8; another client wrote it".into(),
                source: None,
            },
            CacheError::TooLarge {
                what: "value",
                size: 10,
                limit: 5,
            },
            CacheError::Closed,
            CacheError::Timeout {
                after: Duration::from_millis(5),
            },
            CacheError::Unavailable {
                reason: "connection refused".into(),
                source: None,
            },
            CacheError::InvalidConfig {
                reason: "max_capacity must be at least 1".into(),
                source: None,
            },
        ];
        for err in errors {
            let text = err.to_string();
            assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
    }
}
