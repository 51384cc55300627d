//! The pool's [`deadpool::managed::Manager`]: how one connection is opened and health-checked,
//! for a server at a fixed address (one server, a cluster node) or for the master (or a
//! replica) that sentinels name.
//!
//! deadpool-redis ships managers for these, but its Sentinel manager resolves the master
//! without a bound per sentinel, and its health check is a bare `PING`, so a demoted master
//! keeps its pooled connections; ours asks `ROLE` instead. One manager of our own also keeps
//! the connection settings (timeouts, TLS certificates) in one place for every topology.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, Value,
};

/// Opens and checks the connections of one pool.
pub(crate) struct NodeManager {
    target: Target,
    config: AsyncConnectionConfig,
    /// The bound on opening one connection, and on each question to a sentinel.
    connect_timeout: Duration,
}

/// Where a pool's connections go.
pub(crate) enum Target {
    /// A server at a fixed address; `readonly` sends `READONLY` first, so that a cluster
    /// replica serves reads.
    Fixed {
        info: Box<ConnectionInfo>,
        readonly: bool,
    },
    /// The server that sentinels name for a master name.
    Sentinel(Arc<Sentinels>),
}

/// The sentinels of one master name, and how to reach the servers they name.
pub(crate) struct Sentinels {
    pub(crate) master_name: String,
    /// How to reach each sentinel (its own credentials and TLS).
    pub(crate) sentinels: Vec<ConnectionInfo>,
    /// The settings of the data nodes; its address is replaced by the one a sentinel names.
    pub(crate) node: ConnectionInfo,
    /// The sentinel asked first: the last one that answered.
    pub(crate) preferred: AtomicUsize,
}

/// The role a connection's server must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Master,
}

impl NodeManager {
    pub(crate) fn new(target: Target, connect_timeout: Duration) -> Self {
        Self {
            target,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                // Every operation has its own deadline, pool checkout included.
                .set_response_timeout(None),
            connect_timeout,
        }
    }

    async fn connect(&self, info: ConnectionInfo) -> Result<MultiplexedConnection, RedisError> {
        let client = Client::open(info)?;
        client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
    }
}

impl managed::Manager for NodeManager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        match &self.target {
            Target::Fixed { info, readonly } => {
                let mut conn = self.connect(ConnectionInfo::clone(info)).await?;
                if *readonly {
                    redis::cmd("READONLY").query_async::<()>(&mut conn).await?;
                }
                Ok(conn)
            }
            Target::Sentinel(sentinels) => {
                let addr = sentinels.master_addr(self).await?;
                let mut conn = self.connect(sentinels.node.clone().set_addr(addr)).await?;
                // A sentinel may name a master that has just been demoted (it has not noticed
                // yet): a connection that would answer `READONLY` to every write is refused.
                check_role(&mut conn, Role::Master).await?;
                Ok(conn)
            }
        }
    }

    async fn recycle(
        &self,
        conn: &mut MultiplexedConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        match &self.target {
            Target::Fixed { .. } => {
                redis::cmd("PING").query_async::<()>(conn).await?;
            }
            // One round trip too, and it also tells a master demoted behind the same address.
            Target::Sentinel(_) => check_role(conn, Role::Master)
                .await
                .map_err(RecycleError::Backend)?,
        }
        Ok(())
    }
}

impl Sentinels {
    /// Asks the sentinels, in turn from the last one that answered, where the master is.
    async fn master_addr(&self, manager: &NodeManager) -> Result<ConnectionAddr, RedisError> {
        let count = self.sentinels.len();
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last_err = None;
        for i in 0..count {
            let index = (first + i) % count;
            let asked = tokio::time::timeout(manager.connect_timeout, async {
                let mut conn = manager.connect(self.sentinels[index].clone()).await?;
                redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(&self.master_name)
                    .query_async::<Option<(String, u16)>>(&mut conn)
                    .await
            })
            .await;
            match asked {
                Ok(Ok(Some((host, port)))) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(self.node_addr(host, port));
                }
                Ok(Ok(None)) => {
                    last_err = Some(RedisError::from((
                        ErrorKind::MasterNameNotFoundBySentinel,
                        "the sentinels know no master by this name",
                        format!("{:?}", self.master_name),
                    )));
                }
                Ok(Err(err)) => last_err = Some(err),
                Err(_elapsed) => {
                    last_err = Some(RedisError::from(std::io::Error::from(
                        std::io::ErrorKind::TimedOut,
                    )));
                }
            }
        }
        Err(last_err.unwrap_or_else(|| {
            RedisError::from((ErrorKind::InvalidClientConfig, "no sentinel was given"))
        }))
    }

    /// The address of a data node named by a sentinel, with the transport of `node`.
    fn node_addr(&self, host: String, port: u16) -> ConnectionAddr {
        match self.node.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host,
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(host, port),
        }
    }
}

/// Fails unless the server of `conn` has `role` (`ROLE`'s first element).
async fn check_role(conn: &mut MultiplexedConnection, role: Role) -> Result<(), RedisError> {
    let reply: Value = redis::cmd("ROLE").query_async(conn).await?;
    let actual = match &reply {
        Value::Array(items) => match items.first() {
            Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            Some(Value::SimpleString(text)) => text.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let expected = match role {
        Role::Master => "master",
    };
    if actual == expected {
        Ok(())
    } else {
        Err(RedisError::from((
            ErrorKind::MasterNameNotFoundBySentinel,
            "the server the sentinels name is not the master (yet)",
            format!("expected {expected}, found {actual:?}"),
        )))
    }
}

impl fmt::Debug for NodeManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.target {
            Target::Fixed { readonly, .. } => {
                if *readonly {
                    "fixed address, replica reads"
                } else {
                    "fixed address"
                }
            }
            Target::Sentinel(_) => "sentinel master",
        };
        f.debug_struct("NodeManager")
            .field("target", &target)
            .finish()
    }
}
