//! [`RedisCluster`]: a private Redis Cluster of [`RedisServer`] nodes, with helpers to kill
//! primaries, wait for failovers and move slots.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::RedisServer;
use crate::builder::redact;
use crate::cli::{self, CliError};
use crate::resp::{Reply, call, info_field};
use crate::tls::SharedCertificates;
use crate::util::{encode_userinfo, log_tails, poll_until};

mod builder;
mod faults;
mod topology;

pub use builder::RedisClusterBuilder;
pub use topology::{hash_tag_for_slot, key_slot};

use topology::{SLOTS, Topology, View};

/// How long the cluster may take to be ready after its nodes started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `redis-cli --cluster create` may run.
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the nodes are asked meanwhile.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How many lines of each node's log a panic message shows.
const LOG_LINES: usize = 20;

/// A private Redis Cluster on free loopback ports: by default 3 primaries and 3 replicas,
/// each a [`RedisServer`] in its own temporary directory. Dropping it kills every node and
/// removes the directories.
///
/// Roles and slot owners are asked from the nodes each time, since failovers and
/// resharding change them.
///
/// ```no_run
/// use std::time::Duration;
/// use redis_test_server::{RedisCluster, key_slot};
///
/// let mut cluster = RedisCluster::start();
/// let url = cluster.url(); // "redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
/// # let _ = url;
/// let killed = cluster.kill_primary_for_slot(key_slot("user:1"));
/// let took = cluster.wait_for_failover(killed, Duration::from_secs(15));
/// assert_ne!(cluster.primary_for_slot(key_slot("user:1")), killed);
/// # let _ = took;
/// ```
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// Each node's cluster id, in the order of `nodes` (kept across restarts, in
    /// `nodes.conf`).
    ids: Vec<String>,
    password: Option<String>,
    secrets: Vec<String>,
    /// The CA and certificate every node copied, if the cluster serves TLS.
    certificates: Option<SharedCertificates>,
}

impl RedisCluster {
    /// Starts 3 primaries with a replica each, creates the cluster, and waits until every
    /// node serves all slots, knows every other node, and every replica is in sync; a few
    /// seconds.
    ///
    /// # Panics
    ///
    /// If `redis-server` or `redis-cli` is not installed, or the cluster is not ready
    /// within 30 seconds; the message includes the end of each node's log.
    pub fn start() -> RedisCluster {
        Self::builder().start()
    }

    /// A builder, to choose the shape, timeouts, a password or other options.
    pub fn builder() -> RedisClusterBuilder {
        RedisClusterBuilder::default()
    }

    /// Starts the nodes, creates the cluster, and waits until it is ready.
    fn launch(options: RedisClusterBuilder) -> RedisCluster {
        assert!(
            options.primaries >= 3,
            "a Redis Cluster made by `redis-cli --cluster create` needs at least 3 \
             primaries, not {}",
            options.primaries
        );
        let count = options.primaries * (1 + options.replicas_per_primary);
        let mut cluster = RedisCluster {
            nodes: Vec::with_capacity(count),
            ids: Vec::new(),
            password: options.password.clone(),
            secrets: options.secrets(),
            certificates: options.tls.then(SharedCertificates::generate),
        };
        // From here on, a panic drops `cluster`, which kills the nodes started so far.
        for _ in 0..count {
            let node = options.start_node(cluster.certificates.as_ref());
            cluster.nodes.push(node);
        }
        let mut args = vec!["--cluster".to_owned(), "create".to_owned()];
        args.extend(
            cluster
                .nodes
                .iter()
                .map(|n| format!("127.0.0.1:{}", n.port())),
        );
        args.extend([
            "--cluster-replicas".to_owned(),
            options.replicas_per_primary.to_string(),
            "--cluster-yes".to_owned(),
        ]);
        if let Err(e) = cluster.run_cli(&args, CREATE_TIMEOUT) {
            cluster.fail("cannot create the cluster", &e.to_string());
        }
        cluster.ids = (0..count)
            .map(|i| {
                let port = cluster.nodes[i].port();
                cluster
                    .call_text(port, &["CLUSTER", "MYID"])
                    .unwrap_or_else(|e| cluster.fail("cannot read a node's id", &e))
            })
            .collect();
        if let Err(reason) = poll_until(READY_TIMEOUT, POLL_INTERVAL, || cluster.health()) {
            cluster.fail(
                &format!("the cluster was not ready within {READY_TIMEOUT:?}"),
                &reason,
            );
        }
        cluster
    }

    /// `redis://127.0.0.1:{port}` (`rediss://` with [TLS](RedisClusterBuilder::tls)) of
    /// each current primary, with `:{password}@` before the host if the cluster has a
    /// password: seeds for a cluster client.
    pub fn seed_urls(&self) -> Vec<String> {
        let credentials = self.credentials();
        let scheme = self.scheme();
        self.primary_ports()
            .into_iter()
            .map(|port| format!("{scheme}://{credentials}127.0.0.1:{port}"))
            .collect()
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...` (`rediss+cluster://` with
    /// [TLS](RedisClusterBuilder::tls)) with the current primaries, and `:{password}@`
    /// before the host list if the cluster has a password.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .primary_ports()
            .into_iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!(
            "{}+cluster://{}{}",
            self.scheme(),
            self.credentials(),
            hosts.join(",")
        )
    }

    /// The PEM of the CA that signed the nodes' certificate, if built with
    /// [`RedisClusterBuilder::tls`]: clients must trust it.
    pub fn ca_cert_pem(&self) -> Option<Vec<u8>> {
        self.certificates
            .as_ref()
            .map(|certificates| certificates.ca_cert_pem().to_vec())
    }

    /// Every node, primaries and replicas, in the order they were started (their roles
    /// change; see [`primary_ports`](Self::primary_ports)).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The node at `index` in [`nodes`](Self::nodes).
    ///
    /// # Panics
    ///
    /// If there is no such node.
    pub fn node(&self, index: usize) -> &RedisServer {
        &self.nodes[index]
    }

    /// The node at `index`, to [kill](RedisServer::kill) or
    /// [restart](RedisServer::restart) it.
    ///
    /// # Panics
    ///
    /// If there is no such node.
    pub fn node_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.nodes[index]
    }

    /// The node on `port`.
    ///
    /// # Panics
    ///
    /// If no node of this cluster has that port.
    pub fn node_on(&self, port: u16) -> &RedisServer {
        &self.nodes[self.index_of(port)]
    }

    /// The cluster id of the node on `port` (as in `CLUSTER NODES`).
    ///
    /// # Panics
    ///
    /// If no node of this cluster has that port.
    pub fn node_id(&self, port: u16) -> &str {
        &self.ids[self.index_of(port)]
    }

    /// The ports of the current primaries, each owning some slots, in slot order: one
    /// round trip to each running node. A killed primary stays in the list until a replica
    /// has taken over its slots.
    pub fn primary_ports(&self) -> Vec<u16> {
        let mut ports = Vec::new();
        for port in self.topology().slot_owners().into_iter().flatten() {
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        ports
    }

    /// The ports of the current replicas, in node order: each running node's own word, and
    /// for a killed or paused node what the others say.
    pub fn replica_ports(&self) -> Vec<u16> {
        let topology = self.topology();
        self.ids
            .iter()
            .filter_map(|id| topology.node(id))
            .filter(|node| node.is_replica())
            .map(|node| node.port)
            .collect()
    }

    /// The port of the primary that currently owns `slot` (the newest claim any node
    /// knows of).
    ///
    /// # Panics
    ///
    /// If `slot` is not below 16384, or no node knows an owner.
    pub fn primary_for_slot(&self, slot: u16) -> u16 {
        assert!(
            usize::from(slot) < SLOTS,
            "slot {slot} is not below {SLOTS}"
        );
        self.topology().slot_owners()[usize::from(slot)]
            .unwrap_or_else(|| panic!("no node of the cluster knows an owner of slot {slot}"))
    }

    /// Each range of slots with the port of the primary that owns it, in slot order.
    pub fn slot_ranges(&self) -> Vec<(RangeInclusive<u16>, u16)> {
        let mut ranges: Vec<(RangeInclusive<u16>, u16)> = Vec::new();
        for (slot, owner) in (0u16..).zip(self.topology().slot_owners()) {
            let Some(owner) = owner else { continue };
            match ranges.last_mut() {
                Some((range, port)) if *port == owner && *range.end() + 1 == slot => {
                    *range = *range.start()..=slot;
                }
                _ => ranges.push((slot..=slot, owner)),
            }
        }
        ranges
    }

    /// The port of a current replica of the primary on `primary_port`, if it has one.
    pub fn replica_of(&self, primary_port: u16) -> Option<u16> {
        self.replicas_of(primary_port).into_iter().next()
    }

    /// The ports of the current replicas of the primary on `primary_port`.
    pub fn replicas_of(&self, primary_port: u16) -> Vec<u16> {
        let primary_id = self.node_id(primary_port);
        let topology = self.topology();
        self.ids
            .iter()
            .filter_map(|id| topology.node(id))
            .filter(|node| node.is_replica() && node.primary_id.as_deref() == Some(primary_id))
            .map(|node| node.port)
            .collect()
    }

    /// The last lines of every node's log, each under a header with its port, process id
    /// and state, with passwords replaced by `***`: for the messages of failed assertions.
    pub fn log_tails(&self) -> String {
        let nodes = self.nodes.iter().map(|node| ("node", node));
        log_tails(nodes, LOG_LINES)
    }

    fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// `:{password}@` if there is a password, else "".
    fn credentials(&self) -> String {
        self.password
            .as_deref()
            .map_or(String::new(), |pw| format!(":{}@", encode_userinfo(pw)))
    }

    /// `redis` or `rediss`.
    fn scheme(&self) -> &'static str {
        if self.certificates.is_some() {
            "rediss"
        } else {
            "redis"
        }
    }

    /// `redis-cli`'s options to reach the nodes: `--tls --cacert <file>` if the cluster
    /// serves TLS, before `args`.
    fn cli_args(&self, args: &[String]) -> Vec<String> {
        let mut all = Vec::with_capacity(args.len() + 3);
        if let Some(certificates) = &self.certificates {
            let ca_file = certificates.ca_cert_file();
            all.extend(["--tls".to_owned(), "--cacert".to_owned()]);
            all.push(ca_file.to_string_lossy().into_owned());
        }
        all.extend_from_slice(args);
        all
    }

    fn run_cli(&self, args: &[String], timeout: Duration) -> Result<String, CliError> {
        cli::run(
            &self.cli_args(args),
            self.password(),
            &self.secrets,
            timeout,
        )
    }

    /// Sends `args` to the node on `port` (over its unix socket if it serves TLS only).
    fn call(&self, port: u16, args: &[&str]) -> Result<Reply, String> {
        let node = self
            .nodes
            .iter()
            .find(|n| n.port() == port)
            .ok_or_else(|| format!("no node of this cluster has the port {port}"))?;
        call(&node.target(), self.password(), args)
    }

    /// Like [`call`](Self::call), for a command whose reply is a string.
    fn call_text(&self, port: u16, args: &[&str]) -> Result<String, String> {
        self.call(port, args)?
            .into_text()
            .map_err(|e| format!("127.0.0.1:{port} {}: {e}", args.join(" ")))
    }

    fn index_of(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no node of this cluster has the port {port}"))
    }

    /// The nodes that run and are not paused.
    fn live_nodes(&self) -> impl Iterator<Item = &RedisServer> {
        self.nodes
            .iter()
            .filter(|n| n.is_running() && !n.is_paused())
    }

    /// The view of every running node; `Err` if one does not answer.
    fn live_views(&self) -> Result<Vec<View>, String> {
        self.live_nodes()
            .map(|n| View::ask(&n.target(), self.password()))
            .collect()
    }

    /// The views of the running nodes that answer.
    fn topology(&self) -> Topology {
        let views: Vec<View> = self
            .live_nodes()
            .filter_map(|n| View::ask(&n.target(), self.password()).ok())
            .collect();
        if views.is_empty() {
            self.fail("cannot read the cluster's state", "no node answers");
        }
        Topology { views }
    }

    /// `Ok` if every running node is ready (see [`wait_until_healthy`]), else what is not.
    ///
    /// [`wait_until_healthy`]: Self::wait_until_healthy
    fn health(&self) -> Result<(), String> {
        let views = self.live_views()?;
        let own: Vec<_> = views.iter().filter_map(View::myself).collect();
        if let Some(reason) = views.iter().find_map(|v| v.unhealthy(&self.ids, &own)) {
            return Err(reason);
        }
        let owners = |view: &View| -> Vec<Option<u16>> {
            (0..SLOTS as u16).map(|slot| view.owner(slot)).collect()
        };
        if let Some((first, rest)) = views.split_first() {
            let expected = owners(first);
            for view in rest {
                let seen = owners(view);
                if let Some(slot) = (0..SLOTS).find(|&s| seen[s] != expected[s]) {
                    return Err(format!(
                        "127.0.0.1:{} and 127.0.0.1:{} disagree on the owner of slot {slot}",
                        first.port, view.port
                    ));
                }
            }
        }
        for node in own.iter().filter(|n| n.is_replica()) {
            let info = self.call_text(node.port, &["INFO", "replication"])?;
            if info_field(&info, "master_link_status") != Some("up") {
                return Err(format!(
                    "the replica 127.0.0.1:{} is not in sync with its primary yet",
                    node.port
                ));
            }
        }
        Ok(())
    }

    /// Panics with `what`, `reason` and the end of each node's log.
    fn fail(&self, what: &str, reason: &str) -> ! {
        let reason = redact(reason, &self.secrets);
        panic!("{what}: {reason}\nthe nodes' logs:\n{}", self.log_tails());
    }
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field("nodes", &self.nodes)
            .field("ids", &self.ids)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.certificates.is_some())
            .finish_non_exhaustive()
    }
}
