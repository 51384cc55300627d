//! [`RedisClusterBuilder`]: the shape and options of a [`RedisCluster`].

use std::fmt;
use std::time::Duration;

use crate::RedisServer;
use crate::builder::redact_value;
use crate::tls::SharedCertificates;

use super::RedisCluster;

/// Configures a [`RedisCluster`] before it starts; get one from [`RedisCluster::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use redis_test_server::RedisCluster;
///
/// let cluster = RedisCluster::builder()
///     .primaries(3)
///     .replicas_per_primary(1)
///     .node_timeout(Duration::from_secs(1))
///     .require_full_coverage(false)
///     .password("s3cret")
///     .config("maxmemory", "10mb")
///     .tls()
///     .start();
/// assert_eq!(cluster.primary_ports().len(), 3);
/// assert!(cluster.url().starts_with("rediss+cluster://127.0.0.1:"));
/// ```
#[derive(Clone)]
pub struct RedisClusterBuilder {
    pub(super) primaries: usize,
    pub(super) replicas_per_primary: usize,
    require_full_coverage: bool,
    pub(super) node_timeout: Duration,
    pub(super) password: Option<String>,
    pub(super) tls: bool,
    extra: Vec<(String, String)>,
}

impl Default for RedisClusterBuilder {
    fn default() -> Self {
        RedisClusterBuilder {
            primaries: 3,
            replicas_per_primary: 1,
            require_full_coverage: true,
            node_timeout: Duration::from_secs(2),
            password: None,
            tls: false,
            extra: Vec::new(),
        }
    }
}

impl RedisClusterBuilder {
    /// How many primaries share the 16384 slots (default 3; `redis-cli --cluster create`
    /// needs at least 3).
    pub fn primaries(mut self, n: usize) -> Self {
        self.primaries = n;
        self
    }

    /// How many replicas each primary has (default 1; 0 for none).
    pub fn replicas_per_primary(mut self, n: usize) -> Self {
        self.replicas_per_primary = n;
        self
    }

    /// `cluster-require-full-coverage`: whether the whole cluster refuses queries while a
    /// slot is not served (default `true`, as in Redis); with `false`, only the keys of
    /// the unserved slots fail.
    pub fn require_full_coverage(mut self, required: bool) -> Self {
        self.require_full_coverage = required;
        self
    }

    /// `cluster-node-timeout`: how long a node may not answer before it is considered
    /// failing (default 2 s; Redis's own default is 15 s). A failover takes about this
    /// plus a second.
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// Requires this password on every node (`requirepass`), which replicas use to sync
    /// (`masterauth`).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Serves TLS only: each node's only TCP port is a TLS port (`tls-port`, `port 0`), the
    /// nodes talk TLS to each other (`tls-cluster`, `tls-replication`), so `CLUSTER SLOTS`
    /// and redirections name TLS ports. All nodes share one certificate, valid for
    /// `localhost` and `127.0.0.1`, signed by one freshly generated CA (needs the `openssl`
    /// command); see [`RedisCluster::url`] and [`RedisCluster::ca_cert_pem`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Passes any other option to every node, as [`RedisServerBuilder::config`] does.
    ///
    /// [`RedisServerBuilder::config`]: crate::RedisServerBuilder::config
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// Starts the nodes, creates the cluster and waits until it is ready; see
    /// [`RedisCluster::start`].
    pub fn start(self) -> RedisCluster {
        RedisCluster::launch(self)
    }

    /// Starts one node: a [`RedisServer`] with cluster mode on and replicas that sync at
    /// once, so that a primary killed right after the start already has a synced replica
    /// to take over; with the TLS files of `certificates` if the cluster serves TLS.
    pub(super) fn start_node(&self, certificates: Option<&SharedCertificates>) -> RedisServer {
        let timeout_ms = self.node_timeout.as_millis().max(1).to_string();
        let yes_no = |yes: bool| if yes { "yes" } else { "no" };
        let mut builder = RedisServer::builder()
            .cluster_bus()
            .config("cluster-enabled", "yes")
            // Relative to the node's own directory (`--dir`).
            .config("cluster-config-file", "nodes.conf")
            .config("cluster-node-timeout", timeout_ms)
            .config(
                "cluster-require-full-coverage",
                yes_no(self.require_full_coverage),
            )
            .config("repl-diskless-sync", "yes")
            .config("repl-diskless-sync-delay", "0");
        if let Some(password) = &self.password {
            builder = builder
                .password(password.clone())
                .masterauth(password.clone());
        }
        if let Some(certificates) = certificates {
            builder = builder
                .tls_only(certificates)
                .config("tls-cluster", "yes")
                .config("tls-replication", "yes");
        }
        for (name, value) in &self.extra {
            builder = builder.config(name.clone(), value.clone());
        }
        builder.start()
    }

    /// The secrets to scrub from anything printed.
    pub(super) fn secrets(&self) -> Vec<String> {
        self.password.iter().cloned().collect()
    }
}

impl fmt::Debug for RedisClusterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra: Vec<String> = self
            .extra
            .iter()
            .map(|(name, value)| format!("--{name} {}", redact_value(name, value)))
            .collect();
        f.debug_struct("RedisClusterBuilder")
            .field("primaries", &self.primaries)
            .field("replicas_per_primary", &self.replicas_per_primary)
            .field("require_full_coverage", &self.require_full_coverage)
            .field("node_timeout", &self.node_timeout)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .field("config", &extra)
            .finish()
    }
}
