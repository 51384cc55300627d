//! The pool's [`deadpool::managed::Manager`]: how one connection is opened and health-checked,
//! for a server at a fixed address (one server, a cluster node) or for the master (or a
//! replica) that sentinels name.
//!
//! deadpool-redis ships managers for these, but its Sentinel manager resolves the master
//! without a bound per sentinel, and its health check is a bare `PING`, so a demoted master
//! keeps its pooled connections; ours asks `ROLE` instead. One manager of our own also keeps
//! the connection settings (timeouts, TLS certificates) in one place for every topology.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::CacheError;
use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use redis::aio::MultiplexedConnection;

use crate::connections::Connections;
use crate::sync::lock;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, Value,
};

mod sentinels;

pub(crate) use self::sentinels::Sentinels;

/// Opens and checks the connections of one pool.
pub(crate) struct NodeManager {
    target: Target,
    config: AsyncConnectionConfig,
    /// Connections opened before this time are not reused (see [`forget_older`](Self::forget_older)).
    reset_at: Mutex<Option<std::time::Instant>>,
}

/// Where a pool's connections go.
pub(crate) enum Target {
    /// A server at a fixed address; `readonly` sends `READONLY` first, so that a cluster
    /// replica serves reads.
    Fixed {
        info: Box<ConnectionInfo>,
        readonly: bool,
    },
    /// The server of `role` that sentinels name: the master, or a replica of it for reads.
    Sentinel {
        sentinels: Arc<Sentinels>,
        role: Role,
    },
}

/// The role a connection's server must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Master,
    Replica,
}

impl Role {
    /// The role's name in a `ROLE` reply.
    fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Replica => "slave",
        }
    }

    /// The error kind of a server that does not have the role.
    fn error_kind(self) -> ErrorKind {
        match self {
            Role::Master => ErrorKind::MasterNameNotFoundBySentinel,
            Role::Replica => ErrorKind::NoValidReplicasFoundBySentinel,
        }
    }
}

/// A pool for `target` of `lanes` lanes (see [`Connections::open`]); opening, checking and
/// waiting for one connection are each bounded by `connect_bound`. Does no I/O.
pub(crate) fn pool_of(
    target: Target,
    lanes: usize,
    connect_bound: Duration,
) -> Result<Connections, CacheError> {
    let manager = NodeManager {
        target,
        config: connection_config(connect_bound),
        reset_at: Mutex::new(None),
    };
    Connections::open(manager, lanes, connect_bound)
}

/// Opens connections within `connect_timeout`, with no response timeout: each command has
/// a deadline of its own (an operation's, pool checkout included, or a sentinel question's).
fn connection_config(connect_timeout: Duration) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(None)
}

/// Opens a connection to `info` with `config`.
async fn connect(
    info: ConnectionInfo,
    config: &AsyncConnectionConfig,
) -> Result<MultiplexedConnection, RedisError> {
    Client::open(info)?
        .get_multiplexed_async_connection_with_config(config)
        .await
}

impl NodeManager {
    /// From now on, the pool reuses no connection opened before: they may reach a server that
    /// no longer plays its part (the former master). Its recycle refuses them, whichever way
    /// they come back to the pool.
    pub(crate) fn forget_older(&self) {
        *lock(&self.reset_at) = Some(std::time::Instant::now());
    }

    /// The settings of a server at a fixed address; `None` behind sentinels.
    pub(crate) fn fixed_info(&self) -> Option<&ConnectionInfo> {
        match &self.target {
            Target::Fixed { info, .. } => Some(info),
            Target::Sentinel { .. } => None,
        }
    }
}

impl managed::Manager for NodeManager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        match &self.target {
            Target::Fixed { info, readonly } => {
                let mut conn = connect(ConnectionInfo::clone(info), &self.config).await?;
                if *readonly {
                    redis::cmd("READONLY").query_async::<()>(&mut conn).await?;
                }
                Ok(conn)
            }
            Target::Sentinel { sentinels, role } => {
                let (addr, info) = match role {
                    Role::Master => sentinels.master().await?,
                    Role::Replica => sentinels.replica().await?,
                };
                let mut conn = connect(info, &self.config).await?;
                if *role == Role::Master {
                    *lock(&sentinels.current) = Some(addr);
                }
                // A sentinel may name a server whose role has just changed (it has not noticed
                // yet), such as a demoted master that would answer `READONLY` to every write:
                // its connection is refused.
                check_role(&mut conn, *role).await?;
                Ok(conn)
            }
        }
    }

    async fn recycle(
        &self,
        conn: &mut MultiplexedConnection,
        metrics: &Metrics,
    ) -> RecycleResult<RedisError> {
        if lock(&self.reset_at).is_some_and(|reset_at| metrics.created < reset_at) {
            return Err(RecycleError::message("opened before the master moved"));
        }
        match &self.target {
            Target::Fixed { .. } => {
                redis::cmd("PING").query_async::<()>(conn).await?;
            }
            // One round trip too, and it also tells a master demoted behind the same address.
            Target::Sentinel { role, .. } => check_role(conn, *role)
                .await
                .map_err(RecycleError::Backend)?,
        }
        Ok(())
    }
}

/// The settings of `template` (credentials, socket settings, TCP or TLS with its settings),
/// for the server at `host:port`.
pub(crate) fn info_at(template: &ConnectionInfo, host: String, port: u16) -> ConnectionInfo {
    let addr = match template.addr() {
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
    };
    template.clone().set_addr(addr)
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
    let expected = role.name();
    if actual == expected {
        Ok(())
    } else {
        Err(RedisError::from((
            role.error_kind(),
            "the server the sentinels name does not have the role they say (a failover in progress)",
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
            Target::Sentinel { role, .. } => match role {
                Role::Master => "sentinel master",
                Role::Replica => "sentinel replica",
            },
        };
        f.debug_struct("NodeManager")
            .field("target", &target)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use deadpool::managed::Pool;
    use redis::IntoConnectionInfo;

    use super::{NodeManager, Target, connection_config};
    use crate::sync::lock;

    #[tokio::test]
    async fn a_connection_opened_before_forget_older_is_not_reused() {
        let server = redis_test_server::RedisServer::start();
        let manager = NodeManager {
            target: Target::Fixed {
                info: Box::new(server.url().into_connection_info().unwrap()),
                readonly: false,
            },
            config: connection_config(Duration::from_secs(5)),
            reset_at: std::sync::Mutex::new(None),
        };
        let pool = Pool::builder(manager).max_size(1).build().unwrap();
        let client_id = |mut conn: deadpool::managed::Object<NodeManager>| async move {
            redis::cmd("CLIENT")
                .arg("ID")
                .query_async::<i64>(&mut *conn)
                .await
                .unwrap()
        };
        let first = client_id(pool.get().await.unwrap()).await;
        assert_eq!(
            client_id(pool.get().await.unwrap()).await,
            first,
            "an idle connection is reused"
        );
        pool.manager().forget_older();
        assert!(lock(&pool.manager().reset_at).is_some());
        assert_ne!(
            client_id(pool.get().await.unwrap()).await,
            first,
            "the connection opened before is refused by the recycle and replaced"
        );
    }
}
