//! How redis and pool errors become [`CacheError`]s, and which of them retire a connection.

use std::time::Duration;

use cache_core::CacheError;
use deadpool_redis::redis::{ErrorKind, RedisError, ServerErrorKind};

use crate::connections::{RefillError, Retire};

/// Maps an error from a command (or from connecting) to the caller's error.
///
/// The redis error is kept as the `source`; the message says what happened and what to check,
/// without the connection URL (redis errors do not carry passwords).
pub(crate) fn from_redis(err: RedisError, timeout: Duration) -> CacheError {
    if err.is_timeout() {
        return CacheError::Timeout { after: timeout };
    }
    let unavailable = |reason: String, err: RedisError| CacheError::Unavailable {
        reason,
        source: Some(Box::new(err)),
    };
    match err.kind() {
        ErrorKind::AuthenticationFailed => CacheError::Backend {
            code: err.code().map(str::to_owned).or(Some("WRONGPASS".into())),
            message: "redis refused the credentials; check the username and password".into(),
            source: Some(Box::new(err)),
        },
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::ClusterDown,
        ) => unavailable(
            format!(
                "redis is not ready to serve this command ({}); retry shortly",
                err.code().unwrap_or("not ready")
            ),
            err,
        ),
        ErrorKind::Server(_) | ErrorKind::Extension if is_max_clients(&err) => unavailable(
            "redis has reached its maximum number of clients; retry shortly".into(),
            err,
        ),
        ErrorKind::Server(_) | ErrorKind::Extension => {
            let (code, detail) = code_and_detail(&err);
            CacheError::Backend {
                code,
                message: detail.unwrap_or_else(|| err.category().to_owned()),
                source: Some(Box::new(err)),
            }
        }
        ErrorKind::Io => unavailable(
            if err.is_connection_refusal() {
                "connection refused; check the address and that redis is running".into()
            } else {
                "the connection to redis failed".into()
            },
            err,
        ),
        // A host name that resolves to no address is reported as a configuration error, but it
        // happens when connecting, and DNS may answer differently later.
        ErrorKind::InvalidClientConfig if err.to_string().contains("No address found") => {
            unavailable(
                "the redis host name resolves to no address; check it and DNS".into(),
                err,
            )
        }
        ErrorKind::InvalidClientConfig | ErrorKind::RESP3NotSupported => {
            CacheError::InvalidConfig {
                reason: format!("redis refused the connection settings ({})", err.category()),
                source: Some(Box::new(err)),
            }
        }
        // TLS handshake failures, among others.
        ErrorKind::Client => unavailable(
            "the connection to redis failed on the client side (a TLS handshake, for one); check the tls settings".into(),
            err,
        ),
        _ => CacheError::Backend {
            code: None,
            message: format!("unexpected reply from redis ({})", err.category()),
            source: Some(Box::new(err)),
        },
    }
}

/// The server's error code and message; for a pipeline (`set_many`), those of the first
/// command Redis refused, which redis-rs does not surface through `code()` and `detail()`.
fn code_and_detail(err: &RedisError) -> (Option<String>, Option<String>) {
    let own = (
        err.code().map(str::to_owned),
        err.detail().map(str::to_owned),
    );
    if own.0.is_some() {
        return own;
    }
    match err.clone().into_server_errors() {
        Some(errors) => match errors.first() {
            Some((_, first)) => (
                Some(first.code().to_owned()),
                first.details().map(str::to_owned),
            ),
            None => own,
        },
        None => own,
    }
}

fn is_max_clients(err: &RedisError) -> bool {
    err.detail()
        .is_some_and(|d| d.starts_with("max number of clients reached"))
}

/// Maps the error of a lane refill: the pool could not hand out a connection.
pub(crate) fn from_refill(err: RefillError, timeout: Duration) -> CacheError {
    match err {
        RefillError::Redis(err) => from_redis(err, timeout),
        RefillError::Timeout => CacheError::Timeout { after: timeout },
        RefillError::Closed => CacheError::Closed,
        RefillError::Other(reason) => CacheError::Unavailable {
            reason: reason.into(),
            source: None,
        },
    }
}

/// Whether a command's error means its connection should stop being shared.
pub(crate) fn retires(err: &RedisError) -> Option<Retire> {
    if err.is_timeout() {
        Some(Retire::Suspect)
    } else if err.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly) {
        // A primary demoted behind the same address (a failover behind DNS or a proxy): a new
        // connection may reach the new primary.
        Some(Retire::ReadOnly)
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

/// Whether `err` means the command never got an answer because its connection is gone, so an
/// idempotent read may be sent again on another connection.
pub(crate) fn lost_connection(err: &RedisError) -> bool {
    err.is_io_error() || err.is_connection_dropped()
}
