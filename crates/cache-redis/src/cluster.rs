//! Redis Cluster: each command goes to the node that serves its key's slot, over that node's
//! own lanes ([`Connections`]), and follows the cluster's redirections within its deadline.
//!
//! The routing is ours rather than redis-rs's cluster connection, which (as of 1.8.1, measured
//! on a local 3+3 cluster) has no deadline of its own, can stall for good on a slot-map
//! refresh with many requests in flight (redis-rs issue 2092), and sends `ASKING` apart from
//! the command it is meant for. Here:
//! - the slot map comes from `CLUSTER SLOTS`, asked of any node that answers, in a task of its
//!   own (never more than one at a time, nor more often than every [`REFRESH_INTERVAL_MS`]:
//!   see [`refresh`]);
//! - `MOVED` updates the slot's owner at once and refreshes the whole map in the background;
//! - `ASK` sends `ASKING` and the command together, in one write, to the importing node;
//! - `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `LOADING`, `READONLY` and a node that cannot be
//!   reached (the command was not executed: see [`errors::not_executed`]) are retried after
//!   a short pause, while the deadline allows; a write whose connection broke after it was
//!   sent is not retried (its outcome is unknown), a read is;
//! - a node's broken connection sends only that node's lanes to a health check.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cache_core::CacheError;
use redis::{
    ConnectionAddr, ConnectionInfo, ErrorKind, FromRedisValue, RedisError, ServerErrorKind,
};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::Kind;
use crate::connections::{Connections, Request, SendError};
use crate::errors;
use crate::manager::{Target, info_at, pool_of};
use crate::sync::{lock, read, write};

mod refresh;
pub(crate) mod slots;

use self::refresh::Refresh;

use self::slots::{SLOTS, join_host_port, split_host_port};

/// The least time between two refreshes of the slot map.
const REFRESH_INTERVAL_MS: u64 = 100;
/// The age at which a slot map is refreshed even though nothing redirected a command: nodes
/// added, replicas that came up.
const MAP_MAX_AGE: Duration = Duration::from_secs(10);
/// The same, for a map that lists no replica of a slot whose reads should go to one (Redis
/// lists a replica only once it has replicated something).
const MAP_MAX_AGE_WITHOUT_REPLICAS: Duration = Duration::from_secs(1);
/// The first pause before a command is retried; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause between two tries of one command.
const MAX_PAUSE: Duration = Duration::from_millis(100);
/// Redirections followed in a row before pausing between them.
const FREE_REDIRECTS: u32 = 5;
/// No slot owner known.
const UNSERVED: u16 = u16::MAX;

/// Where a command goes in a cluster.
#[derive(Clone)]
pub(crate) enum Route {
    /// The node serving this slot.
    Slot(u16),
    /// This node: commands sent to every primary (`PING`, `FLUSHDB`, `SCAN`).
    Node(Arc<Node>),
}

/// The routing of a cache to a Redis Cluster.
pub(crate) struct Cluster {
    shared: Arc<Shared>,
}

struct Shared {
    /// The nodes given, asked for the slot map when no known node answers.
    seeds: Vec<String>,
    /// Credentials, TLS and socket settings of every node; the address is replaced.
    template: ConnectionInfo,
    lanes: usize,
    connect_bound: Duration,
    /// The bound on asking one node for the slot map.
    ask_bound: Duration,
    read_from_replicas: bool,
    map: RwLock<Option<Arc<SlotMap>>>,
    nodes: Mutex<HashMap<String, Arc<Node>>>,
    refresh: Mutex<Refresh>,
    /// Woken when a refresh ends, well or badly.
    refreshed: Notify,
    /// Zero of the millisecond clock of `refresh`.
    epoch: Instant,
    closed: AtomicBool,
}

/// One node, and the lanes of its connections.
pub(crate) struct Node {
    /// `host:port`, the key of [`Shared::nodes`].
    pub(crate) addr: String,
    /// The host of `addr`, without brackets.
    host: String,
    pub(crate) connections: Connections,
}

#[derive(Clone)]
struct SlotMap {
    /// The shard serving each slot, or [`UNSERVED`].
    owner: Box<[u16]>,
    shards: Vec<Shard>,
    /// When `CLUSTER SLOTS` described it.
    fetched: Instant,
}

#[derive(Clone)]
struct Shard {
    primary: Arc<Node>,
    replicas: Vec<Arc<Node>>,
}

impl SlotMap {
    /// The addresses of the map's nodes: its primaries, then its replicas (an address may
    /// come more than once).
    fn addrs(&self) -> impl Iterator<Item = &str> {
        let primaries = self.shards.iter().map(|shard| &shard.primary);
        let replicas = self.shards.iter().flat_map(|shard| &shard.replicas);
        primaries.chain(replicas).map(|node| node.addr.as_str())
    }

    /// The index of the shard of `primary` (found by address), added without replicas if
    /// there is none; [`UNSERVED`] past `u16::MAX` shards.
    fn shard_index(&mut self, primary: &Arc<Node>) -> u16 {
        let index = match self
            .shards
            .iter()
            .position(|s| s.primary.addr == primary.addr)
        {
            Some(index) => index,
            None => {
                self.shards.push(Shard {
                    primary: Arc::clone(primary),
                    replicas: Vec::new(),
                });
                self.shards.len() - 1
            }
        };
        u16::try_from(index).unwrap_or(UNSERVED)
    }
}

/// `addrs` in order, each once.
fn distinct<'a>(addrs: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    addrs
        .into_iter()
        .filter(|addr| seen.insert(*addr))
        .map(str::to_owned)
        .collect()
}

/// What to do after a command failed.
enum Next {
    /// The slot has a new owner: update the map and send it there.
    Moved(u16, String),
    /// The slot is migrating: send the command, after `ASKING`, to this node.
    Ask(String),
    /// The command was not executed: try again after a pause.
    Retry,
    /// Give this error to the caller.
    Fail,
}

impl Cluster {
    /// Routing over `seeds` (`host:port`), connecting to every node with the settings of
    /// `template`. Does no I/O.
    pub(crate) fn new(
        seeds: Vec<String>,
        template: ConnectionInfo,
        lanes: usize,
        timeout: Duration,
        connect_bound: Duration,
        read_from_replicas: bool,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                seeds,
                template,
                lanes,
                connect_bound,
                ask_bound: timeout,
                read_from_replicas,
                map: RwLock::new(None),
                nodes: Mutex::new(HashMap::new()),
                refresh: Mutex::new(Refresh::default()),
                refreshed: Notify::new(),
                epoch: Instant::now(),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Sends `cmd` along `route`, following redirections and retrying what was not
    /// executed, until it succeeds, fails for good or `timeout` passes.
    pub(crate) async fn attempt<T: FromRedisValue + Send>(
        &self,
        timeout: Duration,
        kind: Kind,
        route: &Route,
        cmd: &redis::Cmd,
    ) -> Result<T, CacheError> {
        let shared = &self.shared;
        let deadline = Instant::now() + timeout;
        // The node of the latest try, when it started, and its connection: kept outside the
        // deadline's future, so that a try cut short can retire a connection that stayed
        // silent.
        let mut tried: Option<(Arc<Node>, u64)> = None;
        let mut leased = None;
        let outcome = tokio::time::timeout_at(deadline, async {
            let mut asking: Option<Arc<Node>> = None;
            let mut primary_only = kind != Kind::Read || !shared.read_from_replicas;
            let mut pause = FIRST_PAUSE;
            let mut redirects = 0u32;
            loop {
                let (node, ask) = match asking.take() {
                    Some(node) => (node, true),
                    None => match route {
                        Route::Node(node) => (Arc::clone(node), false),
                        Route::Slot(slot) => match shared.node_for(*slot, primary_only).await? {
                            Some(node) => (node, false),
                            None => {
                                shared.refresh_soon();
                                let err = CacheError::Unavailable {
                                    reason: format!(
                                        "no node of the redis cluster serves slot {slot}; retry shortly"
                                    ),
                                    source: None,
                                };
                                pause_or_fail(&mut pause, deadline, err).await?;
                                continue;
                            }
                        },
                    },
                };
                let connections = &node.connections;
                let started = connections.now_ms();
                tried = Some((Arc::clone(&node), started));
                leased = None;
                let sent = connections
                    .send(started, None, Request::Cmd(cmd), ask, &mut leased)
                    .await;
                let err = match sent {
                    Ok(value) => return Ok(value),
                    Err(SendError::NotSent(err)) => {
                        let err = errors::from_refill(err, timeout);
                        // Credentials refused, or the cache closed: no use trying again.
                        if !matches!(
                            err,
                            CacheError::Unavailable { .. } | CacheError::Timeout { .. }
                        ) {
                            return Err(err);
                        }
                        // This node cannot be reached: it may have failed over.
                        shared.refresh_soon();
                        err
                    }
                    Err(SendError::Failed(err, _)) => {
                        let redirected = match next(&err, kind != Kind::Write) {
                            Next::Moved(slot, addr) => {
                                shared.moved(slot, &addr, &node)?;
                                true
                            }
                            Next::Ask(addr) => {
                                asking = Some(shared.redirected_to(&addr, &node)?);
                                true
                            }
                            Next::Retry => {
                                shared.refresh_soon();
                                false
                            }
                            Next::Fail => return Err(errors::from_redis(err, timeout)),
                        };
                        if redirected {
                            // Followed at once, the first few times in a row.
                            redirects += 1;
                            if redirects > FREE_REDIRECTS {
                                let err = errors::from_redis(err, timeout);
                                pause_or_fail(&mut pause, deadline, err).await?;
                            }
                            continue;
                        }
                        errors::from_redis(err, timeout)
                    }
                };
                if !primary_only {
                    // The replica failed: its primary may answer at once.
                    primary_only = true;
                    continue;
                }
                pause_or_fail(&mut pause, deadline, err).await?;
            }
        })
        .await;
        match outcome {
            Ok(result) => result,
            Err(_elapsed) => {
                if let Some((node, started)) = tried {
                    node.connections.retire_if_silent(leased, started);
                }
                Err(CacheError::Timeout { after: timeout })
            }
        }
    }

    /// The primaries of the current slot map, after waiting for a first map if need be.
    pub(crate) async fn primaries(&self) -> Result<Vec<Arc<Node>>, CacheError> {
        let map = self.shared.current_map().await?;
        // The shards that serve a slot: a `MOVED` may have added one that a refresh has not
        // yet removed, whose node serves nothing any more.
        let mut serving = vec![false; map.shards.len()];
        for &owner in &map.owner {
            if let Some(flag) = serving.get_mut(usize::from(owner)) {
                *flag = true;
            }
        }
        let mut primaries: Vec<Arc<Node>> = Vec::with_capacity(map.shards.len());
        for (shard, serving) in map.shards.iter().zip(serving) {
            if serving && !primaries.iter().any(|p| Arc::ptr_eq(p, &shard.primary)) {
                primaries.push(Arc::clone(&shard.primary));
            }
        }
        Ok(primaries)
    }

    /// Closes every node's pool; later commands fail with [`CacheError::Closed`].
    pub(crate) fn close(&self) {
        let shared = &self.shared;
        let nodes: Vec<Arc<Node>> = {
            let mut nodes = lock(&shared.nodes);
            // Under the nodes' lock, which `node()` checks the flag under too.
            shared.closed.store(true, Ordering::SeqCst);
            nodes.drain().map(|(_, node)| node).collect()
        };
        for node in nodes {
            node.connections.close();
        }
        *write(&shared.map) = None;
        shared.refreshed.notify_waiters();
    }

    /// Every node a connection of another kind could go to (the backplane's subscription),
    /// as `host:port` with its settings: the seeds, then the primaries and the replicas of the
    /// slot map, after waiting (up to the timeout) for a first map if there is none yet.
    pub(crate) async fn every_node(&self) -> Vec<(String, ConnectionInfo)> {
        let shared = &self.shared;
        if shared.map().is_none() {
            // Without a map the seeds are all there is; with one, the other nodes too.
            let _ = tokio::time::timeout(shared.ask_bound, shared.current_map()).await;
        }
        let map = shared.map();
        let seeds = shared.seeds.iter().map(String::as_str);
        distinct(seeds.chain(map.iter().flat_map(|map| map.addrs())))
            .into_iter()
            .filter_map(|addr| {
                let (host, port) = split_host_port(&addr)?;
                let info = info_at(&shared.template, host, port);
                Some((addr, info))
            })
            .collect()
    }

    /// The number of lanes per node.
    pub(crate) fn lanes(&self) -> usize {
        self.shared.lanes
    }
}

/// Sleeps before the next try, doubling `pause`; gives up with `err` when the pause would
/// pass the deadline.
async fn pause_or_fail(
    pause: &mut Duration,
    deadline: Instant,
    err: CacheError,
) -> Result<(), CacheError> {
    if Instant::now() + *pause >= deadline {
        return Err(err);
    }
    tokio::time::sleep(*pause).await;
    *pause = (*pause * 2).min(MAX_PAUSE);
    Ok(())
}

/// What a command's error means in a cluster; `resend_if_lost`: the command is a read, which
/// may be sent again after its connection was lost.
fn next(err: &RedisError, resend_if_lost: bool) -> Next {
    match err.kind() {
        ErrorKind::Server(ServerErrorKind::Moved) => match redirection(err) {
            Some((slot, addr)) if usize::from(slot) < SLOTS => Next::Moved(slot, addr),
            _ => Next::Fail,
        },
        ErrorKind::Server(ServerErrorKind::Ask) => match redirection(err) {
            Some((_, addr)) => Next::Ask(addr),
            None => Next::Fail,
        },
        ErrorKind::Server(kind) if errors::not_executed(kind) => Next::Retry,
        _ if err.is_connection_refusal() => Next::Retry,
        _ if resend_if_lost && errors::lost_connection(err) => Next::Retry,
        _ => Next::Fail,
    }
}

/// The slot and node (`host:port`) of a `MOVED` or `ASK`, also when it answered the command
/// sent after `ASKING`, whose error redis-rs reports as a pipeline's.
fn redirection(err: &RedisError) -> Option<(u16, String)> {
    if let Some((addr, slot)) = err.redirect_node() {
        return Some((slot, addr.to_owned()));
    }
    let errors = err.clone().into_server_errors()?;
    let (_, first) = errors.first()?;
    let mut words = first.details()?.split_ascii_whitespace();
    let slot = words.next()?.parse().ok()?;
    Some((slot, words.next()?.to_owned()))
}

impl Shared {
    fn map(&self) -> Option<Arc<SlotMap>> {
        read(&self.map).clone()
    }

    /// The node at `addr` (`host:port`, `[v6]:port` or `v6:port`), made (without I/O) on
    /// first use.
    fn node(&self, addr: &str) -> Result<Arc<Node>, CacheError> {
        let (host, port) = split_host_port(addr)
            .filter(|(host, _)| !host.is_empty())
            .ok_or_else(|| CacheError::Backend {
                code: None,
                message: "the redis cluster named a node without a valid host:port".into(),
                source: None,
            })?;
        let addr = join_host_port(&host, port);
        let mut nodes = lock(&self.nodes);
        if self.closed.load(Ordering::SeqCst) {
            return Err(CacheError::Closed);
        }
        if let Some(node) = nodes.get(&addr) {
            return Ok(Arc::clone(node));
        }
        let target = Target::Fixed {
            info: Box::new(info_at(&self.template, host.clone(), port)),
            readonly: self.read_from_replicas,
        };
        let connections = pool_of(target, self.lanes, self.connect_bound)?;
        let node = Arc::new(Node {
            addr: addr.clone(),
            host,
            connections,
        });
        nodes.insert(addr, Arc::clone(&node));
        Ok(node)
    }

    /// The node a redirection from `from` names; an empty host (a node that does not know
    /// its own address) is `from`'s host.
    fn redirected_to(&self, addr: &str, from: &Node) -> Result<Arc<Node>, CacheError> {
        match addr.strip_prefix(':').map(str::parse) {
            Some(Ok(port)) => self.node(&join_host_port(&from.host, port)),
            _ => self.node(addr),
        }
    }

    /// The node to send a command on `slot` to: its primary, or one of its replicas unless
    /// `primary_only`; `None` when no node serves the slot. Waits for a first slot map, and
    /// refreshes an old one in the background.
    async fn node_for(
        self: &Arc<Self>,
        slot: u16,
        primary_only: bool,
    ) -> Result<Option<Arc<Node>>, CacheError> {
        let map = self.current_map().await?;
        let Some(shard) = map.shards.get(usize::from(map.owner[usize::from(slot)])) else {
            return Ok(None);
        };
        let max_age = if !primary_only && shard.replicas.is_empty() {
            MAP_MAX_AGE_WITHOUT_REPLICAS
        } else {
            MAP_MAX_AGE
        };
        if map.fetched.elapsed() > max_age {
            self.refresh_soon();
        }
        if !primary_only && !shard.replicas.is_empty() {
            let replica = &shard.replicas[usize::from(slot) % shard.replicas.len()];
            return Ok(Some(Arc::clone(replica)));
        }
        Ok(Some(Arc::clone(&shard.primary)))
    }
}

/// `host:port` of a seed node.
pub(crate) fn seed_addr(info: &ConnectionInfo) -> Option<String> {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            Some(join_host_port(host, *port))
        }
        _ => None,
    }
}
