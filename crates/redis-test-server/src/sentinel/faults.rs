//! The fault helpers of [`RedisSentinels`]: kill the master, fail over, wait for the
//! sentinels, and run `redis-cli` against a process.

use std::time::{Duration, Instant};

use crate::cli;
use crate::util::poll_until;

use super::{POLL_INTERVAL, RedisSentinels};

/// How long [`RedisSentinels::failover`] may take.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`RedisSentinels::cli`] may run.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

impl RedisSentinels {
    /// Kills (SIGKILL) the current master and returns its port; see
    /// [`wait_for_failover`](Self::wait_for_failover).
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        self.data_node_mut(port).kill();
        port
    }

    /// Runs `SENTINEL FAILOVER` on a sentinel, then waits until every running sentinel
    /// names the other data node as the master and that node says `role:master`; returns
    /// how long that took.
    ///
    /// The old master keeps `role:master` (and accepts writes, which will be lost) until
    /// the sentinels turn it into a replica, several seconds later; see
    /// [`wait_until_healthy`](Self::wait_until_healthy).
    ///
    /// # Panics
    ///
    /// If the sentinel refuses (for example while another failover runs), or the switch
    /// does not happen within 30 seconds.
    pub fn failover(&self) -> Duration {
        let started = Instant::now();
        let old = self.master_port();
        let sentinel = self
            .live_sentinels()
            .next()
            .unwrap_or_else(|| self.fail("cannot fail over", "no sentinel runs"));
        let name = self.master_name.as_str();
        let reply = self.call(sentinel.port(), &["SENTINEL", "FAILOVER", name]);
        if let Err(e) = reply {
            self.fail("SENTINEL FAILOVER was refused", &e);
        }
        self.wait_for_switch(old, FAILOVER_TIMEOUT, started)
    }

    /// Waits until every running sentinel names a master other than the one on
    /// `old_master_port` (killed or paused), and the new master says `role:master`;
    /// returns how long that took from this call.
    ///
    /// # Panics
    ///
    /// If that does not happen within `timeout`.
    pub fn wait_for_failover(&self, old_master_port: u16, timeout: Duration) -> Duration {
        self.wait_for_switch(old_master_port, timeout, Instant::now())
    }

    /// Waits until every running sentinel agrees on the master, knows the replica and
    /// the two other sentinels, the master says `role:master` and the running replica is
    /// in sync with it (as after [`start`](Self::start)); returns how long that took.
    ///
    /// # Panics
    ///
    /// If that does not happen within `timeout`.
    pub fn wait_until_healthy(&self, timeout: Duration) -> Duration {
        let started = Instant::now();
        if let Err(reason) = poll_until(timeout, POLL_INTERVAL, || self.health()) {
            self.fail(&format!("not healthy within {timeout:?}"), &reason);
        }
        started.elapsed()
    }

    /// Runs one command with `redis-cli` against a data node or a sentinel on `port`
    /// (authenticated with its password, if any) and returns what it printed, without the
    /// final newline. Error replies are returned as text.
    ///
    /// # Panics
    ///
    /// If no process of this set-up has that port (so no other Redis is ever reached), or
    /// `redis-cli` fails (the process is down) or runs for over 30 seconds.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let password = if self.data.iter().any(|n| n.port() == port) {
            self.password.as_deref()
        } else if self.sentinels.iter().any(|n| n.port() == port) {
            self.sentinel_password.as_deref()
        } else {
            panic!("no process of this set-up has the port {port}")
        };
        let mut all = self.cli_tls_args();
        all.extend(["-h".to_owned(), "127.0.0.1".to_owned()]);
        all.extend(["-p".to_owned(), port.to_string()]);
        all.extend(args.iter().map(|s| (*s).to_owned()));
        match cli::run(&all, password, &self.secrets, CLI_TIMEOUT) {
            Ok(out) => out.strip_suffix('\n').unwrap_or(&out).to_owned(),
            Err(e) => panic!("{e}"),
        }
    }

    /// Polls until the master is not `old` any more; see [`wait_for_failover`].
    ///
    /// [`wait_for_failover`]: Self::wait_for_failover
    fn wait_for_switch(&self, old: u16, timeout: Duration, started: Instant) -> Duration {
        let new = self.other_data_node(old).port();
        let switched = || {
            for sentinel in self.live_sentinels() {
                let seen = self.master_seen_by(sentinel.port())?;
                if seen != new {
                    return Err(format!(
                        "the sentinel 127.0.0.1:{} names 127.0.0.1:{seen} as the master",
                        sentinel.port()
                    ));
                }
            }
            self.is_master(new)
        };
        let remaining = timeout.saturating_sub(started.elapsed());
        if let Err(reason) = poll_until(remaining, POLL_INTERVAL, switched) {
            self.fail(
                &format!("no failover from 127.0.0.1:{old} to 127.0.0.1:{new} within {timeout:?}"),
                &reason,
            );
        }
        started.elapsed()
    }
}
