//! [`RedisCacheBuilder`]: the connection settings, checked in [`build`](RedisCacheBuilder::build)
//! without any I/O.

use std::fmt;
use std::time::Duration;

use cache_core::{CacheError, Result};
use redis::io::tcp::TcpSettings;
use redis::io::tcp::socket2::TcpKeepalive;
use redis::{ConnectionAddr, ConnectionInfo, RedisConnectionInfo};

use std::sync::Arc;

use crate::cluster::{Cluster, seed_addr};
use crate::keys::Keys;
use crate::manager::{Role, Sentinels, Target, pool_of};
use crate::redis_url::Topology as UrlTopology;
use crate::{Direct, RedisCache, Topology};

/// The URL used when none is given.
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The default bound on each operation, pool checkout included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The default number of connections: one multiplexed connection, as redis-rs recommends,
/// carries many concurrent tasks. In the benchmark of `BENCHMARKS.md` (64 tasks, 2 cores) one
/// connection was level with one raw redis-rs connection (0.99-1.04x), two and four slightly
/// behind (0.93-0.99x): fewer sockets batch more commands per write.
pub const DEFAULT_POOL_SIZE: usize = 1;

/// The default largest key or value, in bytes: Redis's default `proto-max-bulk-len` (512 MiB).
pub const DEFAULT_MAX_SIZE: usize = 512 * 1024 * 1024;

/// Configures a [`RedisCache`]; made by [`RedisCache::builder`].
///
/// Settings given one by one (`host`, `port`, `db`, `username`, `password`) override the ones
/// in [`url`](Self::url). Nothing is checked or connected until [`build`](Self::build), which
/// does no I/O either: the first connection is opened by the first operation (or
/// [`RedisCache::ping`]).
///
/// `Debug` never prints the password or the URL, which may hold one.
///
/// ```
/// use std::time::Duration;
/// use cache_redis::RedisCache;
///
/// let cache = RedisCache::builder()
///     .host("cache.internal")
///     .port(6380)
///     .db(2)
///     .username("traces")
///     .password("s3cret")
///     .namespace("traces:")
///     .pool_size(2)
///     .timeout(Duration::from_millis(250))
///     .build()?;
/// assert!(!format!("{cache:?}").contains("s3cret"));
/// # Ok::<(), cache_redis::CacheError>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RedisCacheBuilder {
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    db: Option<i64>,
    username: Option<String>,
    password: Option<String>,
    namespace: String,
    pool_size: usize,
    timeout: Duration,
    max_size: usize,
    #[cfg(feature = "tls")]
    ca_certificate: Option<Vec<u8>>,
    cluster_nodes: Option<Vec<String>>,
    sentinel: Option<(String, Vec<String>)>,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
    read_from_replicas: bool,
    name: String,
}

impl Default for RedisCacheBuilder {
    fn default() -> Self {
        Self {
            url: None,
            host: None,
            port: None,
            db: None,
            username: None,
            password: None,
            namespace: String::new(),
            pool_size: DEFAULT_POOL_SIZE,
            timeout: DEFAULT_TIMEOUT,
            max_size: DEFAULT_MAX_SIZE,
            #[cfg(feature = "tls")]
            ca_certificate: None,
            cluster_nodes: None,
            sentinel: None,
            sentinel_username: None,
            sentinel_password: None,
            read_from_replicas: false,
            name: cache_core::DEFAULT_NAME.to_owned(),
        }
    }
}

impl RedisCacheBuilder {
    /// The server to use: `redis://[user[:password]@]host[:port][/db]`, `rediss://...` for TLS
    /// (feature `tls`), or `redis+unix:///path/to/socket?db=N&user=U&pass=P` (also `unix://`).
    /// Defaults to `redis://127.0.0.1:6379`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// A Redis Cluster, reached first through these nodes (`redis://host:port` or
    /// `rediss://host:port` URLs, credentials included); the others are discovered with
    /// `CLUSTER SLOTS`. The same as the URL `redis+cluster://host:port,host:port`; not
    /// together with [`url`](Self::url).
    ///
    /// Keys spread over the cluster's slots. A namespace with a hash tag (`"{traces}:"`)
    /// keeps every key of the cache in one slot, so on one node: batches become one command,
    /// but that node holds and serves the whole cache.
    pub fn cluster_nodes<I, S>(mut self, nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cluster_nodes = Some(nodes.into_iter().map(Into::into).collect());
        self
    }

    /// The master that these sentinels (`redis://host:port` URLs, 26379 by default) know as
    /// `master_name`; the cache follows it through failovers. The same as the URL
    /// `redis+sentinel://host:port,host:port/master_name`; not together with
    /// [`url`](Self::url). The master's credentials and database are set with
    /// [`username`](Self::username), [`password`](Self::password) and [`db`](Self::db);
    /// the sentinels' own with [`sentinel_credentials`](Self::sentinel_credentials).
    pub fn sentinel<I, S>(mut self, master_name: impl Into<String>, sentinels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.sentinel = Some((
            master_name.into(),
            sentinels.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// The user and password of the sentinels themselves (`requirepass` on the sentinels),
    /// when they differ from those in the sentinels' URLs. Never printed.
    pub fn sentinel_credentials(
        mut self,
        username: Option<String>,
        password: impl Into<String>,
    ) -> Self {
        self.sentinel_username = username;
        self.sentinel_password = Some(password.into());
        self
    }

    /// Sends reads (`get`, `get_many`) to replicas (Cluster and Sentinel), falling back to the
    /// primary when no replica answers. A replica lags its primary: a read may miss a write
    /// that just returned, or return a value just overwritten. Off by default.
    pub fn read_from_replicas(mut self, on: bool) -> Self {
        self.read_from_replicas = on;
        self
    }

    /// The host name or IP address, overriding the URL's. Not allowed with a unix socket URL.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The TCP port, overriding the URL's. Not allowed with a unix socket URL.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The database number (`SELECT`), overriding the URL's; 0 by default.
    pub fn db(mut self, db: i64) -> Self {
        self.db = Some(db);
        self
    }

    /// The ACL user name, overriding the URL's.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password (`AUTH`), overriding the URL's. Never printed.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Names the cache (`"default"` unless set): the `cache` label of its metrics (feature
    /// `metrics`), which tells apart the caches of one process, and a field of its tracing
    /// spans and its `Debug` output.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// A literal prefix of every stored key: `"traces:"` stores `"abc"` as `traces:abc`.
    ///
    /// Pick the separator yourself. A namespace that is a prefix of another one (`"a"` and
    /// `"ab"`) overlaps it: clearing `"a"` also removes the keys of `"ab"`. With a namespace,
    /// [`clear`](cache_core::Cache::clear) removes only the namespace's keys; without one
    /// (or with `""`), it flushes the whole database.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How many connections the cache shares its operations over ([`DEFAULT_POOL_SIZE`] by
    /// default). The pool allows one more, so that a replacement can be opened while a
    /// stalled attempt still holds its slot.
    ///
    /// Each connection is multiplexed: concurrent operations share it, pipelining their
    /// commands on one socket, so a few connections serve many tasks. More connections
    /// spread the work of encoding and decoding over more threads but batch fewer commands
    /// per write; raise it on machines with many cores, after measuring.
    pub fn pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size;
        self
    }

    /// The bound on each operation, waiting for and opening a connection included
    /// ([`DEFAULT_TIMEOUT`] by default). Past it the operation fails with
    /// [`CacheError::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest key (namespace included) or value sent, in bytes ([`DEFAULT_MAX_SIZE`], Redis's
    /// default `proto-max-bulk-len`). Larger ones fail with [`CacheError::TooLarge`] before any
    /// I/O. Lower it to your server's `proto-max-bulk-len` if you changed that: Redis answers an
    /// oversized argument by closing the connection, which fails every other command sharing it.
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// Trusts the certificate authority in `pem` (PEM, one or more certificates) instead of
    /// the system's roots, for `rediss://` URLs.
    ///
    /// With `rediss+cluster://` it is trusted for every node, the seeds and those the
    /// cluster names (`CLUSTER SLOTS`, redirections); with `rediss+sentinel://`, for the
    /// sentinels and the master they name. Each node's certificate must be valid for the
    /// address it is reached by as the cluster or the sentinels announce it: an IP address,
    /// unless they are set to announce host names.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate = Some(pem.into());
        self
    }

    /// Checks the settings and makes the cache. Does no I/O and needs no runtime.
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`] for a URL that does not parse, a `rediss://` URL without
    /// the `tls` feature, `host` or `port` with a unix socket, a negative `db`, and a zero
    /// `pool_size`, `timeout` or `max_size`, and an empty name.
    pub fn build(self) -> Result<RedisCache> {
        if self.name.is_empty() {
            return Err(invalid(
                "name must not be empty; leave it unset for \"default\"",
            ));
        }
        if self.pool_size == 0 {
            return Err(invalid("pool_size must be at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout must be greater than zero"));
        }
        if self.max_size == 0 {
            return Err(invalid("max_size must be at least 1 byte"));
        }
        // Opening a connection runs in the background, not cut short by the operations
        // waiting for it, so it gets a longer bound than one operation.
        let connect_bound = refill_timeout(self.timeout);
        let (topology, described) = match self.topology()? {
            UrlTopology::Single(info) => {
                let info = self.single(info)?;
                let described = describe(&info);
                let target = Target::Fixed {
                    info: Box::new(info),
                    readonly: false,
                };
                let connections = pool_of(target, self.pool_size, connect_bound)?;
                (
                    Topology::Direct(Direct {
                        master: connections,
                        replicas: None,
                        sentinels: None,
                    }),
                    described,
                )
            }
            UrlTopology::Cluster(nodes) => self.cluster(nodes, connect_bound)?,
            UrlTopology::Sentinel {
                master_name,
                sentinels,
                node,
                tls,
            } => self.sentinels(master_name, sentinels, node, tls, connect_bound)?,
        };
        Ok(RedisCache::from_parts(
            topology,
            Keys::new(self.namespace, self.max_size),
            self.timeout,
            described,
            self.name,
        ))
    }

    /// The topology the settings describe: `cluster_nodes`, `sentinel`, or the URL.
    fn topology(&self) -> Result<UrlTopology> {
        let url = self.url.as_deref();
        match (&self.cluster_nodes, &self.sentinel) {
            (Some(_), Some(_)) => Err(invalid("give cluster_nodes or sentinel, not both")),
            (Some(_), None) | (None, Some(_)) if url.is_some() => Err(invalid(
                "give either a url or cluster_nodes / sentinel, not both",
            )),
            (Some(nodes), None) => {
                if nodes.is_empty() {
                    return Err(invalid("cluster_nodes needs at least one node"));
                }
                let infos = nodes
                    .iter()
                    .map(|node| single_url(node, "cluster_nodes"))
                    .collect::<Result<Vec<_>>>()?;
                Ok(UrlTopology::Cluster(infos))
            }
            (None, Some((master_name, sentinels))) => {
                if sentinels.is_empty() {
                    return Err(invalid("sentinel needs at least one sentinel"));
                }
                if master_name.is_empty() {
                    return Err(invalid("the sentinel master name is empty"));
                }
                let infos = sentinels
                    .iter()
                    .map(|sentinel| single_url(&with_default_port(sentinel, 26379), "sentinel"))
                    .collect::<Result<Vec<_>>>()?;
                let tls = infos
                    .iter()
                    .any(|info| matches!(info.addr(), ConnectionAddr::TcpTls { .. }));
                // The sentinels' URLs may hold their own credentials; the master's are set
                // one by one.
                Ok(UrlTopology::Sentinel {
                    master_name: master_name.clone(),
                    sentinels: infos,
                    node: RedisConnectionInfo::default(),
                    tls,
                })
            }
            (None, None) => crate::redis_url::topology(url.unwrap_or(DEFAULT_URL)),
        }
    }

    /// A cluster over `nodes`, the seeds.
    fn cluster(
        &self,
        nodes: Vec<ConnectionInfo>,
        connect_bound: Duration,
    ) -> Result<(Topology, Described)> {
        if self.host.is_some() || self.port.is_some() {
            return Err(invalid(
                "host and port do not apply to a cluster; give its nodes",
            ));
        }
        let mut seeds = Vec::with_capacity(nodes.len());
        let mut template = None;
        for info in nodes {
            let info = self.node_settings(info)?;
            if info.redis_settings().db() != 0 {
                return Err(invalid("a redis cluster has only db 0"));
            }
            let addr = seed_addr(&info)
                .ok_or_else(|| invalid("a cluster node must be a redis:// or rediss:// url"))?;
            seeds.push(addr);
            // Every node is reached with one set of credentials and one transport.
            if let Some(first) = &template
                && !same_access(first, &info)
            {
                return Err(invalid(
                    "every cluster node must use the same scheme (redis:// or rediss://) and \
                     the same credentials",
                ));
            }
            template.get_or_insert(info);
        }
        let template = template.ok_or_else(|| invalid("a cluster needs at least one node"))?;
        let mut described = describe(&template);
        described.addr = format!(
            "{}+cluster://{}",
            if matches!(template.addr(), ConnectionAddr::TcpTls { .. }) {
                "rediss"
            } else {
                "redis"
            },
            seeds.join(",")
        );
        let cluster = Cluster::new(
            seeds,
            template,
            self.pool_size,
            self.timeout,
            connect_bound,
            self.read_from_replicas,
        );
        Ok((Topology::Cluster(cluster), described))
    }

    /// The master that `sentinels` name `master_name`.
    fn sentinels(
        &self,
        master_name: String,
        sentinels: Vec<ConnectionInfo>,
        node: RedisConnectionInfo,
        tls: bool,
        connect_bound: Duration,
    ) -> Result<(Topology, Described)> {
        if self.host.is_some() || self.port.is_some() {
            return Err(invalid(
                "host and port do not apply to sentinels; give the sentinels' addresses",
            ));
        }
        let mut addrs = Vec::with_capacity(sentinels.len());
        let mut infos = Vec::with_capacity(sentinels.len());
        for info in sentinels {
            addrs.push(
                seed_addr(&info)
                    .ok_or_else(|| invalid("a sentinel must be a redis:// or rediss:// url"))?,
            );
            let mut redis = info.redis_settings().clone();
            if let Some(username) = &self.sentinel_username {
                redis = redis.set_username(username);
            }
            if let Some(password) = &self.sentinel_password {
                redis = redis.set_password(password);
            }
            let info = info
                .set_redis_settings(redis.set_db(0))
                .set_tcp_settings(tcp_settings(self.timeout));
            infos.push(self.tls(info)?);
        }
        // The data nodes' address comes from the sentinels; the first sentinel's (a TCP or TLS
        // address, as `seed_addr` checked) stands in, with its transport.
        let first = infos
            .first()
            .ok_or_else(|| invalid("sentinel needs at least one sentinel"))?;
        let node = self.node_settings(first.clone().set_redis_settings(node))?;
        let mut described = describe(&node);
        described.addr = format!(
            "{}+sentinel://{}/{master_name}",
            if tls { "rediss" } else { "redis" },
            addrs.join(",")
        );
        let sentinels = Arc::new(Sentinels::new(master_name, infos, node, self.timeout));
        let pool = |role| {
            let sentinels = Arc::clone(&sentinels);
            pool_of(
                Target::Sentinel { sentinels, role },
                self.pool_size,
                connect_bound,
            )
        };
        let master = pool(Role::Master)?;
        let replicas = self
            .read_from_replicas
            .then(|| pool(Role::Replica))
            .transpose()?;
        let topology = Topology::Direct(Direct {
            master,
            replicas,
            sentinels: Some(sentinels),
        });
        Ok((topology, described))
    }

    /// `info` with the one-by-one settings (db, username, password), the socket settings
    /// and the certificate applied.
    fn node_settings(&self, info: ConnectionInfo) -> Result<ConnectionInfo> {
        let mut redis = info.redis_settings().clone();
        if let Some(db) = self.db {
            redis = redis.set_db(db);
        }
        if redis.db() < 0 {
            return Err(invalid("db must not be negative"));
        }
        if let Some(username) = &self.username {
            redis = redis.set_username(username);
        }
        if let Some(password) = &self.password {
            redis = redis.set_password(password);
        }
        let info = info
            .set_redis_settings(redis)
            .set_tcp_settings(tcp_settings(self.timeout));
        self.tls(info)
    }

    /// One server's settings: the URL's with `host` and `port` and the one-by-one settings
    /// applied.
    fn single(&self, info: ConnectionInfo) -> Result<ConnectionInfo> {
        let addr = match info.addr().clone() {
            ConnectionAddr::Tcp(host, port) => {
                ConnectionAddr::Tcp(self.host.clone().unwrap_or(host), self.port.unwrap_or(port))
            }
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                tls_params,
            } => ConnectionAddr::TcpTls {
                host: self.host.clone().unwrap_or(host),
                port: self.port.unwrap_or(port),
                insecure,
                tls_params,
            },
            ConnectionAddr::Unix(_) if self.host.is_some() || self.port.is_some() => {
                return Err(invalid(
                    "host and port do not apply to a unix socket url; give a redis:// url",
                ));
            }
            other => other,
        };
        self.node_settings(info.set_addr(addr))
    }

    #[cfg(feature = "tls")]
    fn tls(&self, info: ConnectionInfo) -> Result<ConnectionInfo> {
        use redis::{Client, TlsCertificates};

        use crate::errors::RedisSource;

        if !matches!(info.addr(), ConnectionAddr::TcpTls { .. }) {
            return match self.ca_certificate {
                Some(_) => Err(invalid("ca_certificate needs a rediss:// url")),
                None => Ok(info),
            };
        }
        crate::tls::ensure_crypto_provider();
        let Some(pem) = &self.ca_certificate else {
            return Ok(info);
        };
        let certificates = TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        };
        let client = Client::build_with_tls(info, certificates).map_err(|err| {
            CacheError::InvalidConfig {
                reason: "the ca certificate is not valid PEM".into(),
                source: Some(RedisSource::boxed(err)),
            }
        })?;
        Ok(client.get_connection_info().clone())
    }

    #[cfg(not(feature = "tls"))]
    #[allow(clippy::unused_self, clippy::unnecessary_wraps)]
    fn tls(&self, info: ConnectionInfo) -> Result<ConnectionInfo> {
        Ok(info)
    }
}

impl fmt::Debug for RedisCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("RedisCacheBuilder");
        out.field("name", &self.name)
            .field("url", &self.url.as_ref().map(|_| Redacted))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .field("namespace", &self.namespace)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("max_size", &self.max_size);
        #[cfg(feature = "tls")]
        out.field(
            "ca_certificate",
            &self.ca_certificate.as_ref().map(|_| "<set>"),
        );
        out.finish()
    }
}

/// Stands for a URL or password in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The bound on opening (or health-checking) one connection in the background: twice an
/// operation's, so a server that answers within `timeout` can always be connected to, even
/// though connecting takes a few round trips.
fn refill_timeout(timeout: Duration) -> Duration {
    timeout.saturating_mul(2)
}

/// Socket settings: dead peers detected by the kernel even when no operation waits long
/// enough to notice (keepalive probes on idle connections, and
/// `TCP_USER_TIMEOUT` for data left unacknowledged, as after a network partition).
///
/// Nagle's algorithm stays on, as in redis-rs: under load it batches pipelined commands into
/// fewer packets (`TCP_NODELAY` cost a fifth of the throughput in the benchmark).
fn tcp_settings(timeout: Duration) -> TcpSettings {
    let settings = TcpSettings::default().set_keepalive(
        TcpKeepalive::new()
            .with_time(Duration::from_secs(15))
            .with_interval(Duration::from_secs(5)),
    );
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    let settings = settings.set_user_timeout(timeout.saturating_mul(4).max(Duration::from_secs(5)));
    #[cfg(not(any(target_os = "android", target_os = "fuchsia", target_os = "linux")))]
    let _ = timeout;
    settings
}

fn invalid(reason: &str) -> CacheError {
    CacheError::InvalidConfig {
        reason: reason.to_owned(),
        source: None,
    }
}

/// What `Debug` shows of the connection: where, which db, who; never the password.
#[derive(Debug, Clone)]
pub(crate) struct Described {
    pub(crate) addr: String,
    pub(crate) db: i64,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<&'static str>,
}

fn describe(info: &ConnectionInfo) -> Described {
    let addr = match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}"),
        ConnectionAddr::Unix(path) => format!("redis+unix://{}", path.display()),
        other => other.to_string(),
    };
    let redis = info.redis_settings();
    Described {
        addr,
        db: redis.db(),
        username: redis.username().map(str::to_owned),
        password: redis.password().map(|_| "<redacted>"),
    }
}

/// Whether two nodes are reached the same way: transport and credentials.
fn same_access(a: &ConnectionInfo, b: &ConnectionInfo) -> bool {
    let tls = |info: &ConnectionInfo| matches!(info.addr(), ConnectionAddr::TcpTls { .. });
    let (ra, rb) = (a.redis_settings(), b.redis_settings());
    tls(a) == tls(b) && ra.username() == rb.username() && ra.password() == rb.password()
}

/// One server's URL given to `cluster_nodes` or `sentinel`.
fn single_url(text: &str, what: &str) -> Result<ConnectionInfo> {
    crate::redis_url::connection_info(text).map_err(|err| match err {
        CacheError::InvalidConfig { reason, source } => CacheError::InvalidConfig {
            reason: format!("{what}: {reason}"),
            source,
        },
        other => other,
    })
}

/// `text` with `port` when it names none (sentinels listen on 26379, not 6379).
fn with_default_port(text: &str, port: u16) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return text.to_owned();
    };
    if url.port().is_none() && url.set_port(Some(port)).is_ok() {
        url.into()
    } else {
        text.to_owned()
    }
}
