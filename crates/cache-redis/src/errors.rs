//! How redis and pool errors become [`CacheError`]s, and which of them retire a connection.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;
use std::{fmt, io};

use cache_core::{BoxError, CacheError};
use redis::{ErrorKind, RedisError, ServerErrorKind};

use crate::connections::{RefillError, Retire};

/// Maps an error from a command (or from connecting) to the caller's error.
///
/// The redis error is kept as the `source` (see [`RedisSource`]); the message says what
/// happened and what to check, without the connection URL (redis errors do not carry
/// passwords).
pub(crate) fn from_redis(err: RedisError, timeout: Duration) -> CacheError {
    if err.is_timeout() {
        return CacheError::Timeout { after: timeout };
    }
    let unavailable = |reason: String, err: RedisError| CacheError::Unavailable {
        reason,
        source: Some(RedisSource::boxed(err)),
    };
    match err.kind() {
        ErrorKind::AuthenticationFailed => CacheError::Backend {
            code: err.code().map(str::to_owned).or(Some("WRONGPASS".into())),
            message: "redis refused the credentials; check the username and password".into(),
            source: Some(RedisSource::boxed(err)),
        },
        ErrorKind::Server(kind) if not_executed(kind) => unavailable(
            format!(
                "redis is not ready to serve this command ({}); retry shortly",
                err.code().unwrap_or("not ready")
            ),
            err,
        ),
        // Redirections that went on until the deadline: a resharding or failover.
        ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask) => unavailable(
            "the redis cluster kept redirecting the command (a resharding or failover in \
             progress); retry shortly"
                .into(),
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
                source: Some(RedisSource::boxed(err)),
            }
        }
        ErrorKind::Io => unavailable(io_reason(&err).into(), err),
        ErrorKind::MasterNameNotFoundBySentinel => unavailable(
            "the sentinels name no master by this name, or the server they name is not the \
             master yet (a failover in progress); check the master name"
                .into(),
            err,
        ),
        ErrorKind::NoValidReplicasFoundBySentinel => unavailable(
            "the sentinels know no replica of the master that is up and in sync".into(),
            err,
        ),
        // A host name that resolves to no address is reported as a configuration error, but it
        // happens when connecting, and DNS may answer differently later.
        ErrorKind::InvalidClientConfig if is_no_address(&err) => unavailable(
            "the redis host name resolves to no address; check it and DNS".into(),
            err,
        ),
        ErrorKind::InvalidClientConfig | ErrorKind::RESP3NotSupported => {
            CacheError::InvalidConfig {
                reason: format!("redis refused the connection settings ({})", err.category()),
                source: Some(RedisSource::boxed(err)),
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
            source: Some(RedisSource::boxed(err)),
        },
    }
}

/// Whether Redis refused the command without executing it, because it is not ready to
/// serve it now (loading, a failover, a slot being migrated, a demoted primary): such a
/// command, even a write, may be sent again.
pub(crate) fn not_executed(kind: ServerErrorKind) -> bool {
    matches!(
        kind,
        ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::ClusterDown
    )
}

/// What an I/O error means for the caller, told by its [`io::ErrorKind`].
fn io_reason(err: &RedisError) -> &'static str {
    if untrusted_certificate(err) {
        return "redis's TLS certificate is not trusted; give its certificate authority with \
                `ca_certificate`, and check that the certificate is valid for the address \
                connected to";
    }
    match io_error(err).map(io::Error::kind) {
        Some(io::ErrorKind::ConnectionRefused) => {
            "connection refused; check the address and that redis is running"
        }
        // Only a unix socket can be missing: a TCP connection has no file to find.
        Some(io::ErrorKind::NotFound) => {
            "the unix socket file does not exist; check the path in the url and that redis is running with `unixsocket` set to it"
        }
        Some(io::ErrorKind::PermissionDenied) => {
            "permission denied; for a unix socket, check its owner and redis's `unixsocketperm`"
        }
        Some(
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof,
        ) => {
            "redis closed the connection; check its log, and that the url says rediss:// if the port expects tls"
        }
        _ => "the connection to redis failed; check the address and the network",
    }
}

/// Whether `err` is rustls refusing the server's certificate (unknown issuer, wrong name,
/// expired), which it reports inside an I/O error.
#[cfg(feature = "tls")]
fn untrusted_certificate(err: &RedisError) -> bool {
    io_error(err)
        .and_then(io::Error::get_ref)
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| matches!(tls, rustls::Error::InvalidCertificate(_)))
}

#[cfg(not(feature = "tls"))]
fn untrusted_certificate(_: &RedisError) -> bool {
    false
}

/// The I/O error that `err` wraps, if any.
fn io_error(err: &RedisError) -> Option<&io::Error> {
    wrapped(err)?.downcast_ref()
}

/// The error that `err` wraps: an I/O error, the server's reply, a parse failure.
///
/// redis-rs keeps an I/O error behind an `Arc<dyn Error + Send + Sync>` and returns that `Arc`
/// from `source()`, where `downcast_ref::<io::Error>()` does not see through it; this returns
/// the error inside.
fn wrapped(err: &RedisError) -> Option<&(dyn Error + 'static)> {
    let source = err.source()?;
    match source.downcast_ref::<Arc<dyn Error + Send + Sync>>() {
        Some(shared) => Some(&**shared),
        None => Some(source),
    }
}

/// Whether `err` is redis-rs's "No address found for host": the host name resolved, to no
/// address at all.
///
/// redis-rs (`aio::get_socket_addrs`, as of 1.8.1) gives this error the kind
/// `InvalidClientConfig`, the kind of real configuration errors, and no detail or code: only
/// its text tells it apart, so this matches the text. The test
/// `tests::no_address_for_a_host_is_unavailable` pins it.
fn is_no_address(err: &RedisError) -> bool {
    err.kind() == ErrorKind::InvalidClientConfig && err.to_string().starts_with("No address found")
}

/// A redis error kept as the source of a [`CacheError`], printed without repeating itself.
///
/// redis-rs prints an I/O error, a server's error reply or a parse failure as exactly the
/// text of the error it wraps, and also returns that error from `source()`, so a reporter
/// printing the chain shows the same line twice. In that case this prints what redis-rs
/// adds (the kind of failure) and returns the wrapped error itself from `source()`, where
/// `downcast_ref::<std::io::Error>()` finds it. Other redis errors it prints as they are.
pub(crate) struct RedisSource(RedisError);

impl RedisSource {
    /// `err`, boxed as the source of a [`CacheError`].
    pub(crate) fn boxed(err: RedisError) -> BoxError {
        Box::new(Self(err))
    }
}

impl fmt::Display for RedisSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let own = self.0.to_string();
        let repeats_its_source = wrapped(&self.0).is_some_and(|inner| inner.to_string() == own);
        if !repeats_its_source {
            return f.write_str(&own);
        }
        match self.0.kind() {
            ErrorKind::Io => f.write_str("redis-rs reported an i/o error"),
            ErrorKind::Server(_) | ErrorKind::Extension => {
                f.write_str("redis-rs reported an error reply from the server")
            }
            ErrorKind::Parse => f.write_str("redis-rs could not read a reply"),
            _ => write!(f, "redis-rs reported an error ({})", self.0.category()),
        }
    }
}

impl fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisSource")
            .field(&format_args!("{}", self.0))
            .finish()
    }
}

impl Error for RedisSource {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        wrapped(&self.0)
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

/// The error of a bound on a redis exchange (asking a sentinel or a cluster node, opening a
/// subscription) that passed: an I/O error of kind [`io::ErrorKind::TimedOut`], which
/// [`from_redis`] maps to [`CacheError::Timeout`].
pub(crate) fn timed_out() -> RedisError {
    RedisError::from(io::Error::from(io::ErrorKind::TimedOut))
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

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    /// The text of `err` and of every error in its source chain, top first.
    fn levels(err: &CacheError) -> Vec<String> {
        let mut levels = vec![err.to_string()];
        let mut source = err.source();
        while let Some(inner) = source {
            levels.push(inner.to_string());
            source = inner.source();
        }
        levels
    }

    #[test]
    fn an_io_error_is_printed_once_and_reachable_by_downcast() {
        let err = from_redis(
            io::Error::from(io::ErrorKind::ConnectionRefused).into(),
            TIMEOUT,
        );
        let levels = levels(&err);
        assert_eq!(levels.len(), 3, "{levels:?}");
        assert!(levels[1].contains("i/o error"), "{levels:?}");
        assert_eq!(
            levels[2],
            io::Error::from(io::ErrorKind::ConnectionRefused).to_string()
        );
        let io = err.source().and_then(Error::source).unwrap();
        assert_eq!(
            io.downcast_ref::<io::Error>().map(io::Error::kind),
            Some(io::ErrorKind::ConnectionRefused)
        );
    }

    #[test]
    fn an_io_error_is_told_by_its_kind() {
        let reason = |kind| from_redis(io::Error::from(kind).into(), TIMEOUT).to_string();
        assert!(reason(io::ErrorKind::ConnectionRefused).contains("refused"));
        let missing = reason(io::ErrorKind::NotFound);
        assert!(missing.contains("socket file does not exist"), "{missing}");
        assert!(!missing.contains("refused"), "{missing}");
        assert!(reason(io::ErrorKind::PermissionDenied).contains("permission"));
        assert!(reason(io::ErrorKind::ConnectionReset).contains("closed the connection"));
        // The kind tells, not the text.
        let other = from_redis(io::Error::other("Connection refused").into(), TIMEOUT);
        assert!(
            other.to_string().contains("the connection to redis failed"),
            "{other}"
        );
    }

    #[test]
    fn a_redis_error_without_a_source_is_printed_as_it_is() {
        let redis = RedisError::from((
            ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        ));
        let text = redis.to_string();
        let err = from_redis(redis, TIMEOUT);
        assert_eq!(levels(&err)[1..], [text]);
    }

    #[test]
    fn no_address_for_a_host_is_unavailable() {
        // The error redis-rs 1.8.1 returns when a host name resolves to an empty list
        // (`aio::get_socket_addrs`); `is_no_address` matches its text.
        let redis = RedisError::from((ErrorKind::InvalidClientConfig, "No address found for host"));
        let err = from_redis(redis, TIMEOUT);
        assert!(matches!(err, CacheError::Unavailable { .. }), "{err:?}");
        assert!(err.to_string().contains("resolves to no address"), "{err}");

        let other = RedisError::from((ErrorKind::InvalidClientConfig, "Missing hostname"));
        assert!(matches!(
            from_redis(other, TIMEOUT),
            CacheError::InvalidConfig { .. }
        ));
    }
}
