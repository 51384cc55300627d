//! The fault helpers of [`RedisCluster`]: kill and restart nodes, wait for failovers, fail
//! over by hand, move slots, and run `redis-cli` against a node.

use std::time::{Duration, Instant};

use crate::cli::{self, CliError, CliJob};
use crate::resp::info_field;
use crate::util::poll_until;

use super::{POLL_INTERVAL, RedisCluster};

/// How long a `redis-cli --cluster reshard` may run.
const RESHARD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long [`RedisCluster::cli`] may run.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`RedisCluster::failover`] may take.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);

impl RedisCluster {
    /// Kills (SIGKILL) the node on `port`; see
    /// [`RedisServer::kill`](crate::RedisServer::kill).
    ///
    /// # Panics
    ///
    /// If no node of this cluster has that port.
    pub fn kill_node(&mut self, port: u16) {
        let index = self.index_of(port);
        self.nodes[index].kill();
    }

    /// Kills (SIGKILL) the primary that currently owns `slot`, and returns its port.
    pub fn kill_primary_for_slot(&mut self, slot: u16) -> u16 {
        let port = self.primary_for_slot(slot);
        self.kill_node(port);
        port
    }

    /// Restarts the node on `port` (killing it first if it runs): it comes back with the
    /// same id, from its `nodes.conf`, without data, and rejoins the cluster (a replaced
    /// primary as a replica of its successor). Returns once it answers a PING; see
    /// [`wait_until_healthy`](Self::wait_until_healthy) to wait until it rejoined.
    pub fn restart_node(&mut self, port: u16) {
        let index = self.index_of(port);
        self.nodes[index].restart();
    }

    /// Waits until the slots of the primary on `killed_port` (killed or paused) are served
    /// by another node, a promoted replica, in the view of every running node, and every
    /// running node reports `cluster_state:ok`. Returns how long that took from this call.
    ///
    /// # Panics
    ///
    /// If that does not happen within `timeout`; the message says what was still missing
    /// and shows the end of each node's log.
    pub fn wait_for_failover(&self, killed_port: u16, timeout: Duration) -> Duration {
        let started = Instant::now();
        let id = self.node_id(killed_port).to_owned();
        let done = || {
            for view in self.live_views()? {
                if !view.state_ok() {
                    return Err(format!(
                        "127.0.0.1:{} reports cluster_state:fail",
                        view.port
                    ));
                }
                if view
                    .line(&id)
                    .is_some_and(|n| n.is_primary() && !n.slots.is_empty())
                {
                    return Err(format!(
                        "127.0.0.1:{} still gives slots to 127.0.0.1:{killed_port}",
                        view.port
                    ));
                }
            }
            Ok(())
        };
        if let Err(reason) = poll_until(timeout, POLL_INTERVAL, done) {
            self.fail(
                &format!("no failover of 127.0.0.1:{killed_port} within {timeout:?}"),
                &reason,
            );
        }
        started.elapsed()
    }

    /// Runs `CLUSTER FAILOVER` on the replica on `replica_port`, then waits until it is a
    /// primary and the cluster is healthy again (its old primary now its replica, in
    /// sync); returns how long that took.
    ///
    /// # Panics
    ///
    /// If the node is not a running replica, or the cluster is not healthy within 30
    /// seconds.
    pub fn failover(&self, replica_port: u16) -> Duration {
        let started = Instant::now();
        if let Err(e) = self.call(replica_port, &["CLUSTER", "FAILOVER"]) {
            self.fail("CLUSTER FAILOVER was refused", &e);
        }
        let done = || {
            let info = self.call_text(replica_port, &["INFO", "replication"])?;
            if info_field(&info, "role") != Some("master") {
                return Err(format!("127.0.0.1:{replica_port} is not a primary yet"));
            }
            self.health()
        };
        if let Err(reason) = poll_until(FAILOVER_TIMEOUT, POLL_INTERVAL, done) {
            self.fail(
                &format!("no failover to 127.0.0.1:{replica_port} within {FAILOVER_TIMEOUT:?}"),
                &reason,
            );
        }
        started.elapsed()
    }

    /// Waits until every running node serves all slots and agrees with the others on
    /// every slot's owner and every running node's role, and every running replica is in
    /// sync with its primary (as after [`start`](Self::start)); returns how long that took.
    /// Killed and paused nodes are left out.
    ///
    /// # Panics
    ///
    /// If that does not happen within `timeout`; the message says what was still missing.
    pub fn wait_until_healthy(&self, timeout: Duration) -> Duration {
        let started = Instant::now();
        if let Err(reason) = poll_until(timeout, POLL_INTERVAL, || self.health()) {
            self.fail(
                &format!("the cluster was not healthy within {timeout:?}"),
                &reason,
            );
        }
        started.elapsed()
    }

    /// Moves `slots` slots (the lowest it owns) with their keys from the primary on
    /// `from_port` to the primary on `to_port`, with `redis-cli --cluster reshard`, and
    /// returns what it printed. Other nodes may need a moment to learn the new owners.
    ///
    /// # Errors
    ///
    /// A [`CliError`] with its output if `redis-cli` failed (for example when the nodes
    /// do not agree on the configuration yet, right after a failover: see
    /// [`wait_until_healthy`](Self::wait_until_healthy)), or ran for over 2 minutes.
    pub fn reshard(&self, from_port: u16, to_port: u16, slots: u32) -> Result<String, CliError> {
        self.start_reshard(from_port, to_port, slots).wait()
    }

    /// Starts [`reshard`](Self::reshard) in the background, so a test can run load while
    /// slots move; [`CliJob::wait`] returns its outcome.
    ///
    /// # Panics
    ///
    /// If `redis-cli` cannot be run, or a port is not one of this cluster's.
    pub fn start_reshard(&self, from_port: u16, to_port: u16, slots: u32) -> CliJob {
        let args: Vec<String> = [
            "--cluster",
            "reshard",
            &format!("127.0.0.1:{from_port}"),
            "--cluster-from",
            self.node_id(from_port),
            "--cluster-to",
            self.node_id(to_port),
            "--cluster-slots",
            &slots.to_string(),
            "--cluster-yes",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let args = self.cli_args(&args);
        cli::spawn(&args, self.password(), &self.secrets, RESHARD_TIMEOUT)
    }

    /// Runs one command with `redis-cli` against the node on `port` (authenticated if the
    /// cluster has a password) and returns what it printed, without the final newline.
    /// Error replies are returned as text (`MOVED 3999 127.0.0.1:...`); `args` may start
    /// with `redis-cli` options such as `-c` (follow redirects).
    ///
    /// # Panics
    ///
    /// If no node of this cluster has that port (so no other Redis is ever reached), or
    /// `redis-cli` fails (the node is down) or runs for over 30 seconds.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        self.index_of(port);
        let mut all = vec!["-h".to_owned(), "127.0.0.1".to_owned()];
        all.extend(["-p".to_owned(), port.to_string()]);
        all.extend(args.iter().map(|s| (*s).to_owned()));
        match self.run_cli(&all, CLI_TIMEOUT) {
            Ok(out) => out.strip_suffix('\n').unwrap_or(&out).to_owned(),
            Err(e) => panic!("{e}"),
        }
    }
}
