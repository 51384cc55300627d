//! [`RedisSentinels`]: a private master, its replica and three sentinels watching them,
//! with helpers to fail the master over.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use crate::RedisServer;
use crate::builder::redact;
use crate::resp::{Reply, call, info_field};
use crate::tls::SharedCertificates;
use crate::util::{encode_userinfo, log_tails, poll_until};

mod builder;
mod faults;

pub use builder::RedisSentinelsBuilder;

/// How long the set-up may take to be ready after its processes started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the processes are asked meanwhile.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How many lines of each process's log a panic message shows.
const LOG_LINES: usize = 20;

/// A private Redis master, one replica and three sentinels (quorum 2) on free loopback
/// ports, each a [`RedisServer`] in its own temporary directory. Dropping it kills every
/// process and removes the directories.
///
/// Which data node is the master changes with failovers; it is asked from the sentinels
/// each time.
///
/// ```no_run
/// use std::time::Duration;
/// use redis_test_server::RedisSentinels;
///
/// let sentinels = RedisSentinels::start();
/// let url = sentinels.url(); // "redis+sentinel://127.0.0.1:s1,...,127.0.0.1:s3/mymaster"
/// # let _ = url;
/// let old = sentinels.master_port();
/// let took = sentinels.failover();
/// assert_ne!(sentinels.master_port(), old);
/// # let _ = took;
/// ```
pub struct RedisSentinels {
    master_name: String,
    /// Dropped first, so they do not react to the data nodes going away.
    sentinels: Vec<RedisServer>,
    /// The first master, then its replica.
    data: Vec<RedisServer>,
    password: Option<String>,
    sentinel_password: Option<String>,
    secrets: Vec<String>,
    /// The CA and certificate every process copied, if the set-up serves TLS.
    certificates: Option<SharedCertificates>,
}

impl RedisSentinels {
    /// Starts a master, a replica of it and three sentinels, and waits until every
    /// sentinel knows the master, the replica and the two other sentinels, and the
    /// replica is in sync; a few seconds.
    ///
    /// # Panics
    ///
    /// If `redis-server` is not installed, or the set-up is not ready within 30 seconds;
    /// the message includes the end of each process's log.
    pub fn start() -> RedisSentinels {
        Self::builder().start()
    }

    /// A builder, to choose the master's name, passwords and timeouts.
    pub fn builder() -> RedisSentinelsBuilder {
        RedisSentinelsBuilder::default()
    }

    fn launch(options: RedisSentinelsBuilder) -> RedisSentinels {
        let name = &options.master_name;
        assert!(
            !name.is_empty() && !name.contains(char::is_whitespace),
            "the master name {name:?} must be one word"
        );
        let mut set_up = RedisSentinels {
            master_name: name.clone(),
            sentinels: Vec::new(),
            data: Vec::new(),
            password: options.password.clone(),
            sentinel_password: options.sentinel_password.clone(),
            secrets: options.secrets(),
            certificates: options.tls.then(SharedCertificates::generate),
        };
        // From here on, a panic drops `set_up`, which kills what was started.
        let certificates = set_up.certificates.as_ref();
        let master = options.start_data_node(None, certificates);
        let replica = options.start_data_node(Some(master.port()), certificates);
        set_up.data.extend([master, replica]);
        let master = set_up.data[0].port();
        // Started only once the replica is in sync, the sentinels find it at once.
        let replica = set_up.data[1].port();
        if let Err(reason) = poll_until(READY_TIMEOUT, POLL_INTERVAL, || {
            set_up.replica_in_sync(replica, master)
        }) {
            set_up.fail("the replica did not sync", &reason);
        }
        for _ in 0..3 {
            let sentinel = options.start_sentinel(master, set_up.certificates.as_ref());
            set_up.sentinels.push(sentinel);
        }
        if let Err(reason) = poll_until(READY_TIMEOUT, POLL_INTERVAL, || set_up.health()) {
            set_up.fail(
                &format!("the sentinels were not ready within {READY_TIMEOUT:?}"),
                &reason,
            );
        }
        set_up
    }

    /// The name the sentinels know the master by.
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// `redis://127.0.0.1:{port}` (`rediss://` with [TLS](RedisSentinelsBuilder::tls)) of
    /// each sentinel, with `:{sentinel_password}@` before the host if the sentinels have a
    /// password.
    pub fn sentinel_urls(&self) -> Vec<String> {
        let credentials = credentials(self.sentinel_password.as_deref());
        let scheme = self.scheme();
        self.sentinels
            .iter()
            .map(|s| format!("{scheme}://{credentials}127.0.0.1:{}", s.port()))
            .collect()
    }

    /// `redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/{master_name}`
    /// (`rediss+sentinel://` with [TLS](RedisSentinelsBuilder::tls)), with `:{password}@`
    /// (the data nodes' password) before the host list if there is one.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        format!(
            "{}+sentinel://{}{}/{}",
            self.scheme(),
            credentials(self.password.as_deref()),
            hosts.join(","),
            self.master_name
        )
    }

    /// The PEM of the CA that signed the certificate of the data nodes and the sentinels,
    /// if built with [`RedisSentinelsBuilder::tls`]: clients must trust it.
    pub fn ca_cert_pem(&self) -> Option<Vec<u8>> {
        self.certificates
            .as_ref()
            .map(|certificates| certificates.ca_cert_pem().to_vec())
    }

    /// The port of the current master, as the first sentinel that answers says
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`): one round trip.
    ///
    /// # Panics
    ///
    /// If no sentinel answers.
    pub fn master_port(&self) -> u16 {
        self.live_sentinels()
            .find_map(|s| self.master_seen_by(s.port()).ok())
            .unwrap_or_else(|| self.fail("cannot ask for the master", "no sentinel answers"))
    }

    /// The port of the data node that is not the current [master](Self::master_port).
    pub fn replica_port(&self) -> u16 {
        let master = self.master_port();
        self.other_data_node(master).port()
    }

    /// The master and the replica, in the order they were first started (their roles
    /// change; see [`master_port`](Self::master_port)).
    pub fn data_nodes(&self) -> &[RedisServer] {
        &self.data
    }

    /// The data node on `port`.
    ///
    /// # Panics
    ///
    /// If neither data node has that port.
    pub fn data_node(&self, port: u16) -> &RedisServer {
        &self.data[self.data_index(port)]
    }

    /// The data node on `port`, to [kill](RedisServer::kill) or
    /// [restart](RedisServer::restart) it (a restarted node comes back without data, as a
    /// master, until the sentinels turn it into a replica).
    ///
    /// # Panics
    ///
    /// If neither data node has that port.
    pub fn data_node_mut(&mut self, port: u16) -> &mut RedisServer {
        let index = self.data_index(port);
        &mut self.data[index]
    }

    /// The three sentinels.
    pub fn sentinels(&self) -> &[RedisServer] {
        &self.sentinels
    }

    /// The sentinel at `index` in [`sentinels`](Self::sentinels), to kill or restart it.
    ///
    /// # Panics
    ///
    /// If there is no such sentinel.
    pub fn sentinel_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.sentinels[index]
    }

    /// The last lines of every process's log, each under a header with its kind, port,
    /// process id and state, with passwords replaced by `***`: for the messages of failed
    /// assertions.
    pub fn log_tails(&self) -> String {
        let data = self.data.iter().map(|node| ("data node", node));
        let sentinels = self.sentinels.iter().map(|node| ("sentinel", node));
        log_tails(data.chain(sentinels), LOG_LINES)
    }

    fn data_index(&self, port: u16) -> usize {
        self.data
            .iter()
            .position(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no data node of this set-up has the port {port}"))
    }

    fn other_data_node(&self, port: u16) -> &RedisServer {
        &self.data[1 - self.data_index(port)]
    }

    /// `redis` or `rediss`.
    fn scheme(&self) -> &'static str {
        if self.certificates.is_some() {
            "rediss"
        } else {
            "redis"
        }
    }

    /// `redis-cli`'s options to reach the processes: `--tls --cacert <file>` if the
    /// set-up serves TLS.
    fn cli_tls_args(&self) -> Vec<String> {
        match &self.certificates {
            Some(certificates) => vec![
                "--tls".to_owned(),
                "--cacert".to_owned(),
                certificates.ca_cert_file().to_string_lossy().into_owned(),
            ],
            None => Vec::new(),
        }
    }

    /// Sends `args` to the data node or sentinel on `port` (over its unix socket if it
    /// serves TLS only), with its password.
    fn call(&self, port: u16, args: &[&str]) -> Result<Reply, String> {
        let (node, password) = if let Some(node) = self.data.iter().find(|n| n.port() == port) {
            (node, self.password.as_deref())
        } else if let Some(node) = self.sentinels.iter().find(|n| n.port() == port) {
            (node, self.sentinel_password.as_deref())
        } else {
            return Err(format!("no process of this set-up has the port {port}"));
        };
        call(&node.target(), password, args)
    }

    /// Like [`call`](Self::call), for a command whose reply is a string.
    fn call_text(&self, port: u16, args: &[&str]) -> Result<String, String> {
        self.call(port, args)?
            .into_text()
            .map_err(|e| format!("127.0.0.1:{port} {}: {e}", args.join(" ")))
    }

    fn live_sentinels(&self) -> impl Iterator<Item = &RedisServer> {
        self.sentinels
            .iter()
            .filter(|s| s.is_running() && !s.is_paused())
    }

    /// The master's port according to the sentinel on `port`.
    fn master_seen_by(&self, port: u16) -> Result<u16, String> {
        let args = [
            "SENTINEL",
            "GET-MASTER-ADDR-BY-NAME",
            self.master_name.as_str(),
        ];
        let reply = self.call(port, &args)?;
        if let Reply::Array(Some(items)) = reply
            && let [_, Reply::Bulk(Some(master_port))] = items.as_slice()
            && let Ok(master_port) = master_port.parse()
        {
            return Ok(master_port);
        }
        Err(format!("the sentinel 127.0.0.1:{port} names no master"))
    }

    fn is_master(&self, port: u16) -> Result<(), String> {
        let info = self.call_text(port, &["INFO", "replication"])?;
        match info_field(&info, "role") {
            Some("master") => Ok(()),
            role => Err(format!(
                "127.0.0.1:{port} says role:{}",
                role.unwrap_or("?")
            )),
        }
    }

    /// Whether the node on `port` is a replica of 127.0.0.1:`master`, in sync.
    fn replica_in_sync(&self, port: u16, master: u16) -> Result<(), String> {
        let info = self.call_text(port, &["INFO", "replication"])?;
        let master = master.to_string();
        match (
            info_field(&info, "master_port"),
            info_field(&info, "master_link_status"),
        ) {
            (Some(of), Some("up")) if of == master => Ok(()),
            _ => Err(format!(
                "127.0.0.1:{port} is not a replica of 127.0.0.1:{master} in sync"
            )),
        }
    }

    /// `Ok` if the set-up is ready (see [`wait_until_healthy`]), else what is not.
    ///
    /// [`wait_until_healthy`]: Self::wait_until_healthy
    fn health(&self) -> Result<(), String> {
        let name = self.master_name.as_str();
        let mut master = None;
        for sentinel in self.live_sentinels() {
            let port = sentinel.port();
            let seen = self.master_seen_by(port)?;
            if *master.get_or_insert(seen) != seen {
                return Err("the sentinels name different masters".to_owned());
            }
            let fields = fields(self.call(port, &["SENTINEL", "MASTER", name])?);
            let field = |name: &str| fields.get(name).map_or("?", String::as_str);
            if field("flags") != "master"
                || field("num-other-sentinels") != "2"
                || field("num-slaves") == "0"
            {
                return Err(format!(
                    "the sentinel 127.0.0.1:{port} sees the master as {}, with {} replicas \
                     and {} other sentinels",
                    field("flags"),
                    field("num-slaves"),
                    field("num-other-sentinels"),
                ));
            }
        }
        let master = master.ok_or("no sentinel runs")?;
        self.is_master(master)?;
        let replica = self.other_data_node(master);
        if replica.is_running() && !replica.is_paused() {
            self.replica_in_sync(replica.port(), master)?;
        }
        Ok(())
    }

    /// Panics with `what`, `reason` and the end of each process's log.
    fn fail(&self, what: &str, reason: &str) -> ! {
        let reason = redact(reason, &self.secrets);
        panic!("{what}: {reason}\nthe logs:\n{}", self.log_tails());
    }
}

/// `:{password}@` if there is a password, else "".
fn credentials(password: Option<&str>) -> String {
    password.map_or(String::new(), |pw| format!(":{}@", encode_userinfo(pw)))
}

/// The field/value pairs of a `SENTINEL MASTER` reply.
fn fields(reply: Reply) -> HashMap<String, String> {
    let Reply::Array(Some(items)) = reply else {
        return HashMap::new();
    };
    let texts: Vec<String> = items
        .into_iter()
        .filter_map(|i| i.into_text().ok())
        .collect();
    texts
        .chunks_exact(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

impl fmt::Debug for RedisSentinels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinels")
            .field("master_name", &self.master_name)
            .field("data", &self.data)
            .field("sentinels", &self.sentinels)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "***"),
            )
            .field("tls", &self.certificates.is_some())
            .finish_non_exhaustive()
    }
}
