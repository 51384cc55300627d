//! The URL forms that name several servers: a Redis Cluster's seed nodes, or the sentinels
//! watching a master. `url` cannot parse a comma-separated list of hosts with ports, so these
//! URLs are split here, each part checked as the single-server form checks it, and an error
//! names the part (and which host of the list) without repeating the URL.

use cache_core::Result;
use redis::{
    ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, RedisConnectionInfo,
};
use url::form_urlencoded;

use super::{connection_info, invalid, protocol_reason, protocol_version, refused};
use parts::{Parts, address, credentials, percent_decoded};

mod parts;
#[cfg(test)]
mod tests;

/// The servers a URL names, and the settings for each.
///
/// `Debug` never prints a password (redis-rs's `RedisConnectionInfo` redacts it).
#[derive(Debug)]
pub(crate) enum Topology {
    /// One server: `redis://`, `rediss://`, `valkey://`, `valkeys://`, `redis+unix://`,
    /// `valkey+unix://`, `unix://`.
    Single(ConnectionInfo),
    /// A Redis Cluster's seed nodes, one `ConnectionInfo` per node, each with the URL's
    /// credentials, protocol and TLS, and db 0.
    Cluster(Vec<ConnectionInfo>),
    /// A master watched by sentinels.
    Sentinel {
        /// The name the sentinels know the master by.
        master_name: String,
        /// One `ConnectionInfo` per sentinel: TLS as the scheme says, no credentials (the URL's
        /// are for the master and its replicas), RESP2 and db 0.
        sentinels: Vec<ConnectionInfo>,
        /// The settings for the master and its replicas: db, username, password, protocol.
        node: RedisConnectionInfo,
        /// Whether the master and its replicas are reached over TLS (`rediss+sentinel://`).
        tls: bool,
    },
}

/// Parses `text` into the servers it names and the settings for each.
///
/// The forms:
/// - one server, read by [`connection_info`]: `redis://`, `rediss://`, `valkey://` or
///   `valkeys://` followed by `[user[:password]@]host[:port][/db][?protocol=P]`, or
///   `redis+unix://`, `valkey+unix://` or `unix://` followed by `/path/to/socket[?db=N]`;
/// - a Redis Cluster: `redis+cluster://[user[:password]@]host[:port][,host[:port]...][/0]`
///   `[?protocol=P]`, port 6379 by default;
/// - Redis Sentinel: `redis+sentinel://[user[:password]@]host[:port][,host[:port]...]`
///   `/master_name[/db][?protocol=P]`, port 26379 by default; the credentials and protocol are
///   for the master and its replicas, not the sentinels.
///
/// `rediss+cluster://` and `rediss+sentinel://` reach every server over TLS (feature `tls`).
/// An IPv6 address is written in brackets (`[::1]:7000`). The user info runs to the last `@`
/// before the first `/`, and is percent-decoded as `url` and redis-rs decode it. The only query
/// parameter of the multi-server forms is `protocol` (`2`, `3`, `resp2`, `resp3`); they take no
/// fragment.
///
/// # Errors
/// [`CacheError::InvalidConfig`](cache_core::CacheError::InvalidConfig) naming the part that is
/// wrong, and which host of a list; never the URL or its password.
pub(crate) fn topology(text: &str) -> Result<Topology> {
    // As `url` trims: leading and trailing C0 controls and spaces.
    let text = text.trim_matches(|c: char| c <= ' ');
    let Some(scheme) = Scheme::of(text) else {
        return connection_info(text).map(Topology::Single);
    };
    if scheme.tls && !cfg!(feature = "tls") {
        return Err(invalid(format!(
            "a {}:// url needs the `tls` feature of cache-redis",
            scheme.name
        )));
    }
    let Some(rest) = text
        .get(scheme.name.len()..)
        .and_then(|rest| rest.strip_prefix("://"))
    else {
        return Err(invalid(format!(
            "the {} url does not parse: the scheme must be followed by //; {}",
            scheme.name,
            scheme.form()
        )));
    };
    let parts = Parts::of(rest);
    let addresses = scheme.addresses(parts.hosts)?;
    if parts.fragment.is_some() {
        return Err(invalid(format!(
            "a {} url takes no fragment (#...)",
            scheme.name
        )));
    }
    let (username, password) = parts.userinfo.map_or(Ok((None, None)), |userinfo| {
        credentials(userinfo, scheme.name)
    })?;
    let mut redis = RedisConnectionInfo::default();
    if let Some(username) = username {
        redis = redis.set_username(username);
    }
    if let Some(password) = password {
        redis = redis.set_password(password);
    }
    match scheme.kind {
        Kind::Cluster => {
            check_cluster_path(parts.path, scheme.name)?;
            let redis = redis.set_protocol(protocol(parts.query, scheme.name)?);
            let nodes = addresses
                .into_iter()
                .map(|(host, port)| {
                    scheme
                        .connection_info(host, port)
                        .map(|info| info.set_redis_settings(redis.clone()))
                })
                .collect::<Result<_>>()?;
            Ok(Topology::Cluster(nodes))
        }
        Kind::Sentinel => {
            let (master_name, db) = sentinel_path(parts.path, scheme.name)?;
            let node = redis
                .set_db(db)
                .set_protocol(protocol(parts.query, scheme.name)?);
            let sentinels = addresses
                .into_iter()
                .map(|(host, port)| scheme.connection_info(host, port))
                .collect::<Result<_>>()?;
            Ok(Topology::Sentinel {
                master_name,
                sentinels,
                node,
                tls: scheme.tls,
            })
        }
    }
}

/// Which servers a multi-server URL lists.
#[derive(Clone, Copy)]
enum Kind {
    Cluster,
    Sentinel,
}

/// A multi-server scheme.
struct Scheme {
    name: &'static str,
    kind: Kind,
    tls: bool,
}

const SCHEMES: [Scheme; 4] = [
    Scheme {
        name: "redis+cluster",
        kind: Kind::Cluster,
        tls: false,
    },
    Scheme {
        name: "rediss+cluster",
        kind: Kind::Cluster,
        tls: true,
    },
    Scheme {
        name: "redis+sentinel",
        kind: Kind::Sentinel,
        tls: false,
    },
    Scheme {
        name: "rediss+sentinel",
        kind: Kind::Sentinel,
        tls: true,
    },
];

impl Scheme {
    /// The multi-server scheme `text` starts with (in any case, as `url` reads schemes).
    fn of(text: &str) -> Option<&'static Self> {
        let (scheme, _) = text.split_once(':')?;
        SCHEMES
            .iter()
            .find(|known| known.name.eq_ignore_ascii_case(scheme))
    }

    /// What each host of the list is, in error messages.
    fn member(&self) -> &'static str {
        match self.kind {
            Kind::Cluster => "node",
            Kind::Sentinel => "sentinel",
        }
    }

    fn default_port(&self) -> u16 {
        match self.kind {
            Kind::Cluster => 6379,
            Kind::Sentinel => 26379,
        }
    }

    /// The form of this scheme's URLs, for error messages.
    fn form(&self) -> String {
        let path = match self.kind {
            Kind::Cluster => "",
            Kind::Sentinel => "/master_name[/db]",
        };
        format!(
            "expected {}://[user[:password]@]host[:port][,host[:port]...]{path}",
            self.name
        )
    }

    /// The host and port of each entry of the comma-separated list.
    fn addresses(&self, hosts: &str) -> Result<Vec<(String, u16)>> {
        if hosts.is_empty() {
            return Err(invalid(format!(
                "the {} url names no {}; {}",
                self.name,
                self.member(),
                self.form()
            )));
        }
        hosts
            .split(',')
            .enumerate()
            .map(|(index, entry)| {
                address(entry, self.default_port()).map_err(|what| {
                    invalid(format!(
                        "the {} {} of the {} url {what}",
                        ordinal(index + 1),
                        self.member(),
                        self.name
                    ))
                })
            })
            .collect()
    }

    /// The settings for one server: its address, over TLS if the scheme says so.
    fn connection_info(&self, host: String, port: u16) -> Result<ConnectionInfo> {
        let addr = if self.tls {
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host, port)
        };
        // Infallible in redis-rs 1.8.1 (`Ok` with default settings), whatever the address.
        addr.into_connection_info().map_err(refused)
    }
}

/// "1st", "2nd", "3rd", "4th", ..., "11th", ..., "21st".
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// A cluster has only db 0: the path is empty, `/` or `/0`.
fn check_cluster_path(path: Option<&str>, scheme: &str) -> Result<()> {
    match path.map(|path| path.trim_matches('/')) {
        None | Some("" | "0") => Ok(()),
        Some(_) => Err(invalid(format!(
            "a redis cluster has only db 0; the path of a {scheme} url must be empty or /0"
        ))),
    }
}

/// The master name and db of `/master_name[/db]`.
fn sentinel_path(path: Option<&str>, scheme: &str) -> Result<(String, i64)> {
    let path = path.map_or("", |path| path.strip_prefix('/').unwrap_or(path));
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut segments = path.split('/');
    let name = segments.next().unwrap_or_default();
    if name.is_empty() {
        return Err(invalid(format!(
            "the {scheme} url has no master name; give the name the sentinels know the master \
             by as its path, as in {scheme}://10.0.0.1:26379/mymaster"
        )));
    }
    let name = percent_decoded(name).ok_or_else(|| {
        invalid(format!(
            "the master name in the {scheme} url is not valid UTF-8 once percent-decoded"
        ))
    })?;
    let db = match segments.next() {
        None => 0,
        Some(db) => db
            .parse::<i64>()
            .ok()
            .filter(|&db| db >= 0)
            .ok_or_else(|| {
                invalid(format!(
                    "the database in the {scheme} url (/master_name/N) is not a non-negative \
                     integer"
                ))
            })?,
    };
    if segments.next().is_some() {
        return Err(invalid(format!(
            "the path of the {scheme} url has more than /master_name/db"
        )));
    }
    Ok((name, db))
}

/// The `?protocol=` of the query, the only parameter the multi-server forms read.
fn protocol(query: Option<&str>, scheme: &str) -> Result<ProtocolVersion> {
    let mut version = ProtocolVersion::default();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name != "protocol" {
            // A name that could be a stray piece of the user info is not repeated.
            let named = (1..=32).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            let name = if named {
                format!(" `{name}`")
            } else {
                String::new()
            };
            return Err(invalid(format!(
                "the {scheme} url has an unknown query parameter{name}; it reads only ?protocol="
            )));
        }
        version = protocol_version(&value).ok_or_else(|| invalid(protocol_reason()))?;
    }
    Ok(version)
}
