//! The URL given to the builder, checked part by part before redis-rs reads it, so that an
//! error names the part that is wrong (scheme, host, port, database, path) and never
//! repeats the URL, which may hold a password.
//!
//! The single-server forms are read by redis-rs; the forms naming several servers (a cluster's
//! seed nodes, a master's sentinels) are split here, in [`topology()`].

mod topology;

use std::net::IpAddr;

use cache_core::{CacheError, Result};
use redis::{ConnectionInfo, IntoConnectionInfo, ProtocolVersion, RedisError};
use url::{Host, ParseError, Url};

pub(crate) use topology::{Topology, topology};

/// Every URL form this crate accepts, for error messages.
const FORMS: &str = "expected redis://, rediss://, valkey:// or valkeys:// followed by \
    [user[:password]@]host[:port][/db], or redis+unix://, valkey+unix:// or unix:// followed \
    by /path/to/socket[?db=N], or redis+cluster:// or rediss+cluster:// followed by \
    [user[:password]@]host[:port][,host[:port]...], or redis+sentinel:// or rediss+sentinel:// \
    followed by [user[:password]@]host[:port][,host[:port]...]/master_name[/db]";

/// How a scheme connects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Tcp,
    Tls,
    Unix,
}

/// The transport of each scheme redis-rs 1.8.1 accepts (`IntoConnectionInfo for url::Url`).
fn transport(scheme: &str) -> Option<Transport> {
    match scheme {
        "redis" | "valkey" => Some(Transport::Tcp),
        "rediss" | "valkeys" => Some(Transport::Tls),
        "redis+unix" | "valkey+unix" | "unix" => Some(Transport::Unix),
        _ => None,
    }
}

/// Parses `text` into redis-rs's connection settings.
///
/// # Errors
/// [`CacheError::InvalidConfig`] naming the part that is wrong.
pub(crate) fn connection_info(text: &str) -> Result<ConnectionInfo> {
    let url = Url::parse(text).map_err(|err| unparsable(text, err))?;
    let transport = transport(url.scheme()).ok_or_else(unknown_scheme)?;
    match transport {
        Transport::Tls if !cfg!(feature = "tls") => {
            return Err(invalid(
                "a rediss:// or valkeys:// url needs the `tls` feature of cache-redis".into(),
            ));
        }
        Transport::Tcp | Transport::Tls => check_tcp(&url)?,
        Transport::Unix => check_unix(&url)?,
    }
    check_query(&url, transport)?;
    url.into_connection_info().map_err(refused)
}

/// The error for a URL that `Url::parse` refused, named by the parse error's kind.
fn unparsable(text: &str, err: ParseError) -> CacheError {
    // A scheme redis does not know is the likelier mistake, whatever else is wrong after it.
    let scheme = text
        .split_once(':')
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    if scheme.as_deref().and_then(transport).is_none() {
        return unknown_scheme();
    }
    let reason = match err {
        ParseError::InvalidPort => port_reason(),
        ParseError::EmptyHost => no_host_reason(),
        ParseError::IdnaError
        | ParseError::InvalidIpv4Address
        | ParseError::InvalidIpv6Address
        | ParseError::InvalidDomainCharacter => {
            "the host in the redis url is not a valid host name or ip address".into()
        }
        _ => format!("the redis url does not parse; {FORMS}"),
    };
    // `ParseError`'s text is fixed (such as "invalid IPv6 address"): it holds nothing of the URL.
    CacheError::InvalidConfig {
        reason,
        source: Some(Box::new(err)),
    }
}

fn unknown_scheme() -> CacheError {
    // The scheme is not repeated: a URL mangled enough may have its password there.
    invalid(format!(
        "the redis url's scheme is missing or not one redis accepts; {FORMS}"
    ))
}

fn port_reason() -> String {
    "the port in the redis url is not a number from 1 to 65535".into()
}

fn no_host_reason() -> String {
    "the redis url has no host; give one, as in redis://127.0.0.1:6379".into()
}

fn db_reason(transport: Transport) -> String {
    let form = match transport {
        Transport::Unix => "?db=N",
        Transport::Tcp | Transport::Tls => "/N",
    };
    format!("the database in the redis url ({form}) is not a non-negative integer")
}

/// Host, port and database of a `redis://`-like URL.
fn check_tcp(url: &Url) -> Result<()> {
    let wildcard = match url.host() {
        None | Some(Host::Domain("")) => return Err(invalid(no_host_reason())),
        Some(Host::Domain(name)) => name.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()),
        Some(Host::Ipv4(ip)) => ip.is_unspecified(),
        Some(Host::Ipv6(ip)) => ip.is_unspecified(),
    };
    if wildcard {
        return Err(invalid(
            "the host in the redis url is a wildcard address (0.0.0.0 or ::), which cannot be \
             connected to; give the server's address"
                .into(),
        ));
    }
    if url.port() == Some(0) {
        return Err(invalid(port_reason()));
    }
    let db = url.path().trim_matches('/');
    if !db.is_empty() && !is_db(db) {
        return Err(invalid(db_reason(Transport::Tcp)));
    }
    Ok(())
}

/// The socket path of a `redis+unix://`-like URL.
fn check_unix(url: &Url) -> Result<()> {
    if url.to_file_path().is_err() {
        return Err(invalid(
            "a unix socket url needs the socket's absolute path after three slashes, as in \
             redis+unix:///run/redis.sock"
                .into(),
        ));
    }
    Ok(())
}

/// The query parameters redis-rs reads: `protocol`, and `db` for a unix socket.
fn check_query(url: &Url, transport: Transport) -> Result<()> {
    for (name, value) in url.query_pairs() {
        match &*name {
            "db" if transport == Transport::Unix && !is_db(&value) => {
                return Err(invalid(db_reason(transport)));
            }
            "protocol" if protocol_version(&value).is_none() => {
                return Err(invalid(protocol_reason()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The RESP version a `?protocol=` value names, read as redis-rs reads it.
fn protocol_version(value: &str) -> Option<ProtocolVersion> {
    match value {
        "2" | "resp2" => Some(ProtocolVersion::RESP2),
        "3" | "resp3" => Some(ProtocolVersion::RESP3),
        _ => None,
    }
}

fn protocol_reason() -> String {
    "the protocol in the redis url (?protocol=) is not 2, 3, resp2 or resp3".into()
}

fn is_db(text: &str) -> bool {
    text.parse::<i64>().is_ok_and(|db| db >= 0)
}

/// The error for a URL that redis-rs refused after the checks above passed (a user name or
/// password that is not UTF-8 once decoded, a fragment other than `#insecure`).
fn refused(err: RedisError) -> CacheError {
    // redis-rs's text names the part; its detail, when there is one, may quote the URL.
    let what = match err.detail() {
        None => err.to_string(),
        Some(_) => err.category().to_owned(),
    };
    invalid(format!("the redis url is not valid ({what}); {FORMS}"))
}

fn invalid(reason: String) -> CacheError {
    CacheError::InvalidConfig {
        reason,
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use redis::ConnectionAddr;

    use super::*;

    fn reason(url: &str) -> String {
        match connection_info(url) {
            Err(CacheError::InvalidConfig { reason, .. }) => reason,
            other => panic!("{url}: expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn every_accepted_form_parses() {
        let tcp = [
            ("redis://127.0.0.1", "127.0.0.1", 6379, 0),
            ("redis://cache.internal:6380/2", "cache.internal", 6380, 2),
            ("REDIS://[::1]:7000/", "::1", 7000, 0),
            ("valkey://user:pw@localhost/3", "localhost", 6379, 3),
        ];
        for (url, host, port, db) in tcp {
            let info = connection_info(url).unwrap();
            assert!(
                matches!(info.addr(), ConnectionAddr::Tcp(h, p) if h == host && *p == port),
                "{url}: {:?}",
                info.addr()
            );
            assert_eq!(info.redis_settings().db(), db, "{url}");
        }
        for url in [
            "redis+unix:///run/redis.sock",
            "valkey+unix:///run/valkey.sock?db=1",
            "unix:///run/redis.sock?db=2&protocol=resp3",
        ] {
            let info = connection_info(url).unwrap();
            assert!(
                matches!(info.addr(), ConnectionAddr::Unix(_)),
                "{url}: {:?}",
                info.addr()
            );
        }
        let user = connection_info("redis://app:s%3Acret@h").unwrap();
        assert_eq!(user.redis_settings().username(), Some("app"));
        assert_eq!(user.redis_settings().password(), Some("s:cret"));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_forms_parse_with_the_tls_feature() {
        for url in ["rediss://localhost:6380", "valkeys://localhost/1#insecure"] {
            let info = connection_info(url).unwrap();
            assert!(
                matches!(info.addr(), ConnectionAddr::TcpTls { .. }),
                "{url}"
            );
        }
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_forms_name_the_missing_feature() {
        for url in ["rediss://localhost:6380", "valkeys://localhost"] {
            assert!(reason(url).contains("`tls` feature"), "{url}");
        }
    }

    #[test]
    fn a_bad_port_names_the_port_and_keeps_the_parse_error() {
        for url in [
            "redis://127.0.0.1:99999",
            "redis://127.0.0.1:notaport",
            "redis://127.0.0.1:-1",
            "redis://127.0.0.1:0",
        ] {
            assert!(reason(url).contains("port"), "{url}: {}", reason(url));
        }
        let Err(CacheError::InvalidConfig { source, .. }) = connection_info("redis://h:99999")
        else {
            panic!("a bad port is InvalidConfig")
        };
        assert_eq!(
            source.unwrap().downcast_ref::<ParseError>(),
            Some(&ParseError::InvalidPort)
        );
    }

    #[test]
    fn a_missing_invalid_or_wildcard_host_names_the_host() {
        for url in [
            "redis://",
            "redis:///0",
            "redis://:6379",
            "redis://user:pw@:6379",
            "redis://bad host",
            "redis://[::1",
            "redis://0.0.0.0:6379",
            "redis://[::]:6379",
        ] {
            assert!(reason(url).contains("host"), "{url}: {}", reason(url));
        }
    }

    #[test]
    fn a_bad_database_names_the_database() {
        for url in [
            "redis://h/notanumber",
            "redis://h/-1",
            "redis://h/1.5",
            "redis://h/0/1",
            "unix:///run/redis.sock?db=x",
            "redis+unix:///run/redis.sock?db=-2",
        ] {
            assert!(reason(url).contains("database"), "{url}: {}", reason(url));
        }
    }

    #[test]
    fn a_unix_url_without_an_absolute_path_says_so() {
        for url in [
            "redis+unix://",
            "unix://run/redis.sock",
            "unix:relative.sock",
        ] {
            assert!(reason(url).contains("path"), "{url}: {}", reason(url));
        }
    }

    #[test]
    fn an_unknown_or_missing_scheme_lists_the_accepted_forms() {
        for url in [
            "http://h:6379",
            "not a url",
            "localhost:6379",
            "redis-unix:///x",
            "",
        ] {
            let reason = reason(url);
            assert!(reason.contains("scheme"), "{url}: {reason}");
            assert!(reason.contains("valkey+unix://"), "{url}: {reason}");
        }
    }

    #[test]
    fn what_redis_refuses_after_the_checks_is_named_by_redis_text() {
        // A password that is not UTF-8 once percent-decoded.
        let reason = reason("redis://user:%ff@h");
        assert!(reason.contains("Password"), "{reason}");
    }
}
