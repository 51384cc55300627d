//! How redis and pool errors become [`CacheError`]s, and which of them retire a connection.

use std::time::Duration;

use cache_core::CacheError;
use deadpool_redis::PoolError;
use deadpool_redis::redis::{ErrorKind, RedisError};

use crate::connections::Retire;

/// Maps an error from a command (or from connecting) to the caller's error.
///
/// The redis error is kept as the `source`; the message says what happened and what to check,
/// without the connection URL (redis errors do not carry passwords).
pub(crate) fn from_redis(err: RedisError, timeout: Duration) -> CacheError {
    if err.is_timeout() {
        return CacheError::Timeout { after: timeout };
    }
    match err.kind() {
        ErrorKind::AuthenticationFailed => CacheError::Backend {
            code: err.code().map(str::to_owned).or(Some("WRONGPASS".into())),
            message: "redis refused the credentials; check the username and password".into(),
            source: Some(Box::new(err)),
        },
        ErrorKind::InvalidClientConfig | ErrorKind::RESP3NotSupported => {
            CacheError::InvalidConfig {
                reason: format!("redis refused the connection settings ({})", err.category()),
                source: Some(Box::new(err)),
            }
        }
        ErrorKind::Server(_) | ErrorKind::Extension => CacheError::Backend {
            code: err.code().map(str::to_owned),
            message: err
                .detail()
                .map(str::to_owned)
                .unwrap_or_else(|| err.category().to_owned()),
            source: Some(Box::new(err)),
        },
        ErrorKind::Io => CacheError::Unavailable {
            reason: if err.is_connection_refusal() {
                "connection refused; check the address and that redis is running".into()
            } else {
                "the connection to redis failed".into()
            },
            source: Some(Box::new(err)),
        },
        _ => CacheError::Backend {
            code: None,
            message: format!("unexpected reply from redis ({})", err.category()),
            source: Some(Box::new(err)),
        },
    }
}

/// Maps an error from checking a connection out of the pool.
pub(crate) fn from_pool(err: PoolError, timeout: Duration) -> CacheError {
    match err {
        PoolError::Backend(err) => from_redis(err, timeout),
        PoolError::Timeout(_) => CacheError::Timeout { after: timeout },
        PoolError::Closed => CacheError::Closed,
        other => CacheError::Unavailable {
            reason: "the connection pool failed".into(),
            source: Some(Box::new(other)),
        },
    }
}

/// Whether a command's error means its connection should stop being shared.
pub(crate) fn retires(err: &RedisError) -> Option<Retire> {
    if err.is_timeout() {
        Some(Retire::Suspect)
    } else if err.is_io_error()
        || err.is_unrecoverable_error()
        || err.kind() == ErrorKind::Parse
        // Redis closes the connection after a protocol error (such as an argument over its
        // `proto-max-bulk-len`); give it up now rather than fail the lane's next command.
        || err.detail().is_some_and(|d| d.starts_with("Protocol error"))
    {
        Some(Retire::Broken)
    } else {
        None
    }
}
