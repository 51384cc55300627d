//! The one error type every backend returns.

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

    /// The store holds bytes that are not a valid value (for example, not UTF-8).
    #[error("the stored value is not valid: {reason}")]
    InvalidValue {
        /// What is wrong with the value.
        reason: String,
        /// The decoding error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// A key or value over the configured limit, refused before any I/O.
    #[error("{what} of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// `"key"` or `"value"`.
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

    /// The cache's configuration is invalid; returned by builders, before any I/O.
    #[error("invalid cache configuration: {reason}")]
    InvalidConfig {
        /// What is wrong and what to change.
        reason: String,
        /// The underlying parse error, when there is one.
        #[source]
        source: Option<BoxError>,
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

    /// The store's error code, for [`Backend`](Self::Backend) errors that carry one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Backend { code, .. } => code.as_deref(),
            _ => None,
        }
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
                reason: "not utf-8".into(),
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
