//! Redis Cluster: each command goes to the node that serves its key's slot, over that node's
//! own lanes ([`Connections`]), and follows the cluster's redirections within its deadline.
//!
//! The routing is ours rather than redis-rs's cluster connection, which (as of 1.8.1, measured
//! on a local 3+3 cluster) has no deadline of its own, can stall for good on a slot-map
//! refresh with many requests in flight (redis-rs issue 2092), and sends `ASKING` apart from
//! the command it is meant for. Here:
//! - the slot map comes from `CLUSTER SLOTS`, asked of any node that answers, in a task of its
//!   own (never more than one at a time, nor more often than every [`REFRESH_INTERVAL`]);
//! - `MOVED` updates the slot's owner at once and refreshes the whole map in the background;
//! - `ASK` sends `ASKING` and the command together, in one write, to the importing node;
//! - `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `LOADING`, `READONLY` and a node that cannot be
//!   reached (the command was not executed) are retried after a short pause, while the
//!   deadline allows; a write whose connection broke after it was sent is not retried (its
//!   outcome is unknown), a read is;
//! - a node's broken connection sends only that node's lanes to a health check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use cache_core::CacheError;
use redis::{
    ConnectionAddr, ConnectionInfo, ErrorKind, FromRedisValue, RedisError, ServerErrorKind, Value,
};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::connections::{Connections, LeaseId, RefillError, Request, Retire, SendError};
use crate::errors;
use crate::manager::{NodeManager, Target};

pub(crate) mod slots;

use self::slots::{Range, SLOTS, join_host_port, parse_cluster_slots, split_host_port};

/// The least time between two refreshes of the slot map.
const REFRESH_INTERVAL: Duration = Duration::from_millis(100);
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
    closed: AtomicBool,
}

/// One node, and the lanes of its connections.
pub(crate) struct Node {
    pub(crate) addr: String,
    pub(crate) connections: Connections,
}

#[derive(Clone)]
struct SlotMap {
    /// The shard serving each slot, or [`UNSERVED`].
    owner: Box<[u16]>,
    shards: Vec<Shard>,
}

#[derive(Clone)]
struct Shard {
    primary: Arc<Node>,
    replicas: Vec<Arc<Node>>,
}

#[derive(Default)]
struct Refresh {
    running: bool,
    started: Option<Instant>,
    /// The error of the last refresh, cleared by a success.
    failed: Option<RedisError>,
}

impl Refresh {
    /// Whether no refresh runs and the last one started less than [`REFRESH_INTERVAL`] ago,
    /// so [`Shared::refresh_soon`] starts none now.
    fn throttled(&self) -> bool {
        !self.running
            && self
                .started
                .is_some_and(|started| started.elapsed() < REFRESH_INTERVAL)
    }
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
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Sends `request` along `route`, following redirections and retrying what was not
    /// executed, until it succeeds, fails for good or `timeout` passes. `read` allows a
    /// replica (with `read_from_replicas`) and a resend after a lost connection.
    pub(crate) async fn attempt<T: FromRedisValue + Send>(
        &self,
        timeout: Duration,
        read: bool,
        route: &Route,
        request: Request<'_>,
    ) -> Result<T, CacheError> {
        let shared = &self.shared;
        let deadline = Instant::now() + timeout;
        let mut leased: Option<(Arc<Node>, LeaseId, u64)> = None;
        let outcome = tokio::time::timeout_at(deadline, async {
            let mut asking: Option<Arc<Node>> = None;
            let mut primary_only = !(read && shared.read_from_replicas);
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
                let mut id = None;
                let sent = connections.send(started, None, request, ask, &mut id).await;
                if let Some(id) = id {
                    leased = Some((Arc::clone(&node), id, started));
                }
                let err = match sent {
                    Ok(value) => return Ok(value),
                    Err(SendError::NotSent(RefillError::Closed)) => return Err(CacheError::Closed),
                    Err(SendError::NotSent(err)) => {
                        // This node cannot be reached: it may have failed over.
                        shared.refresh_soon();
                        if !primary_only {
                            primary_only = true;
                            continue;
                        }
                        errors::from_refill(err, timeout)
                    }
                    Err(SendError::Failed(err, _)) => match next(&err, read) {
                        Next::Moved(slot, addr) => {
                            shared.moved(slot, &addr)?;
                            redirects += 1;
                            if redirects > FREE_REDIRECTS {
                                pause_or_fail(&mut pause, deadline, errors::from_redis(err, timeout))
                                    .await?;
                            }
                            continue;
                        }
                        Next::Ask(addr) => {
                            asking = Some(shared.node(&addr)?);
                            redirects += 1;
                            if redirects > FREE_REDIRECTS {
                                pause_or_fail(&mut pause, deadline, errors::from_redis(err, timeout))
                                    .await?;
                            }
                            continue;
                        }
                        Next::Retry => {
                            shared.refresh_soon();
                            if !primary_only {
                                primary_only = true;
                                continue;
                            }
                            errors::from_redis(err, timeout)
                        }
                        Next::Fail => return Err(errors::from_redis(err, timeout)),
                    },
                };
                pause_or_fail(&mut pause, deadline, err).await?;
            }
        })
        .await;
        match outcome {
            Ok(result) => result,
            Err(_elapsed) => {
                if let Some((node, id, started)) = leased
                    && !node.connections.replied_since(&id, started)
                {
                    node.connections.retire(&id, Retire::Suspect);
                }
                Err(CacheError::Timeout { after: timeout })
            }
        }
    }

    /// The primaries of the current slot map, after waiting for a first map if need be.
    pub(crate) async fn primaries(&self, timeout: Duration) -> Result<Vec<Arc<Node>>, CacheError> {
        let map = tokio::time::timeout(timeout, self.shared.current_map())
            .await
            .map_err(|_| CacheError::Timeout { after: timeout })??;
        let mut primaries: Vec<Arc<Node>> = Vec::with_capacity(map.shards.len());
        for shard in &map.shards {
            if map.owner.iter().any(|&owner| {
                usize::from(owner) < map.shards.len()
                    && Arc::ptr_eq(&map.shards[usize::from(owner)].primary, &shard.primary)
            }) && !primaries.iter().any(|p| Arc::ptr_eq(p, &shard.primary))
            {
                primaries.push(Arc::clone(&shard.primary));
            }
        }
        Ok(primaries)
    }

    /// Closes every node's pool; later commands fail with [`CacheError::Closed`].
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let nodes: Vec<Arc<Node>> = self
            .shared
            .lock_nodes()
            .drain()
            .map(|(_, node)| node)
            .collect();
        for node in nodes {
            node.connections.close();
        }
        *self
            .shared
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.shared.refreshed.notify_waiters();
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

/// What a command's error means in a cluster.
fn next(err: &RedisError, read: bool) -> Next {
    match err.kind() {
        ErrorKind::Server(ServerErrorKind::Moved) => match err.redirect_node() {
            Some((addr, slot)) => Next::Moved(slot, addr.to_owned()),
            None => Next::Fail,
        },
        ErrorKind::Server(ServerErrorKind::Ask) => match err.redirect_node() {
            Some((addr, _)) => Next::Ask(addr.to_owned()),
            None => Next::Fail,
        },
        ErrorKind::Server(
            ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::BusyLoading
            | ServerErrorKind::ReadOnly,
        ) => Next::Retry,
        _ if err.is_connection_refusal() => Next::Retry,
        _ if read && errors::lost_connection(err) => Next::Retry,
        _ => Next::Fail,
    }
}

impl Shared {
    fn lock_nodes(&self) -> MutexGuard<'_, HashMap<String, Arc<Node>>> {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_refresh(&self) -> MutexGuard<'_, Refresh> {
        self.refresh.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn map(&self) -> Option<Arc<SlotMap>> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The node at `addr` (`host:port`), made (without I/O) on first use.
    fn node(&self, addr: &str) -> Result<Arc<Node>, CacheError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(CacheError::Closed);
        }
        let mut nodes = self.lock_nodes();
        if let Some(node) = nodes.get(addr) {
            return Ok(Arc::clone(node));
        }
        let (host, port) = split_host_port(addr).ok_or_else(|| CacheError::Backend {
            code: None,
            message: "the redis cluster named a node without a valid host:port".into(),
            source: None,
        })?;
        let addr_of = match self.template.addr() {
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
        let manager = NodeManager::new(
            Target::Fixed {
                info: Box::new(self.template.clone().set_addr(addr_of)),
                readonly: self.read_from_replicas,
            },
            self.connect_bound,
        );
        let connections = Connections::open(manager, self.lanes, self.connect_bound)?;
        let node = Arc::new(Node {
            addr: addr.to_owned(),
            connections,
        });
        nodes.insert(addr.to_owned(), Arc::clone(&node));
        Ok(node)
    }

    /// The node to send a command on `slot` to: its primary, or one of its replicas unless
    /// `primary_only`; `None` when no node serves the slot. Waits for a first slot map.
    async fn node_for(
        self: &Arc<Self>,
        slot: u16,
        primary_only: bool,
    ) -> Result<Option<Arc<Node>>, CacheError> {
        let map = self.current_map().await?;
        let Some(shard) = map.shards.get(usize::from(map.owner[usize::from(slot)])) else {
            return Ok(None);
        };
        if !primary_only && !shard.replicas.is_empty() {
            let pick = usize::from(slot) % (shard.replicas.len() + 1);
            if let Some(replica) = shard.replicas.get(pick) {
                return Ok(Some(Arc::clone(replica)));
            }
        }
        Ok(Some(Arc::clone(&shard.primary)))
    }

    /// The slot map, after a first refresh if there is none yet. Fails with the error of that
    /// refresh when it failed.
    async fn current_map(self: &Arc<Self>) -> Result<Arc<SlotMap>, CacheError> {
        let mut waited = false;
        loop {
            if let Some(map) = self.map() {
                return Ok(map);
            }
            if self.closed.load(Ordering::SeqCst) {
                return Err(CacheError::Closed);
            }
            let refreshed = self.refreshed.notified();
            tokio::pin!(refreshed);
            refreshed.as_mut().enable();
            if let Some(map) = self.map() {
                return Ok(map);
            }
            {
                // After a refresh failed: its error, once this call waited for a refresh, or
                // at once if the failure is too recent for another (none would wake it).
                let refresh = self.lock_refresh();
                if (waited || refresh.throttled())
                    && !refresh.running
                    && let Some(err) = &refresh.failed
                {
                    return Err(errors::from_redis(err.clone(), self.ask_bound));
                }
            }
            self.refresh_soon();
            waited = true;
            refreshed.await;
        }
    }

    /// Starts a refresh of the slot map in the background, unless one runs or one started
    /// less than [`REFRESH_INTERVAL`] ago.
    fn refresh_soon(self: &Arc<Self>) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut refresh = self.lock_refresh();
            // A refresh past its bound belongs to a runtime that is no longer driven.
            let stalled = refresh
                .started
                .is_some_and(|started| started.elapsed() > self.refresh_bound() * 2);
            if refresh.running && !stalled {
                return;
            }
            if refresh.throttled() {
                return;
            }
            refresh.running = true;
            refresh.started = Some(Instant::now());
        }
        let task = RefreshTask {
            shared: Arc::clone(self),
            done: false,
        };
        tokio::spawn(task.run());
    }

    /// The bound on one whole refresh: every candidate asked in turn.
    fn refresh_bound(&self) -> Duration {
        self.ask_bound.saturating_mul(4)
    }

    /// Asks the known nodes (primaries first), then the seeds, for `CLUSTER SLOTS`.
    async fn fetch_ranges(&self) -> Result<(Vec<Range>, String), RedisError> {
        let mut candidates: Vec<String> = Vec::new();
        if let Some(map) = self.map() {
            for shard in &map.shards {
                candidates.push(shard.primary.addr.clone());
            }
            for shard in &map.shards {
                candidates.extend(shard.replicas.iter().map(|node| node.addr.clone()));
            }
        }
        candidates.extend(self.seeds.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|addr| seen.insert(addr.clone()));
        let mut last_err = None;
        let cmd = redis::cmd("CLUSTER").arg("SLOTS").clone();
        for addr in candidates {
            let Ok(node) = self.node(&addr) else {
                continue;
            };
            let connections = &node.connections;
            let started = connections.now_ms();
            let mut leased = None;
            let asked = tokio::time::timeout(
                self.ask_bound,
                connections.send::<Value>(started, None, Request::Cmd(&cmd), false, &mut leased),
            )
            .await;
            let host = split_host_port(&addr)
                .map(|(host, _)| host)
                .unwrap_or_default();
            match asked {
                Ok(Ok(reply)) => match parse_cluster_slots(&reply, &host) {
                    Some(ranges) if !ranges.is_empty() => return Ok((ranges, addr)),
                    _ => {
                        last_err = Some(RedisError::from((
                            ErrorKind::Parse,
                            "the redis cluster answered CLUSTER SLOTS with an unexpected reply",
                        )));
                    }
                },
                Ok(Err(
                    SendError::NotSent(RefillError::Redis(err)) | SendError::Failed(err, _),
                )) => {
                    last_err = Some(err);
                }
                Ok(Err(SendError::NotSent(_))) => {}
                Err(_elapsed) => {
                    if let Some(id) = leased
                        && !connections.replied_since(&id, started)
                    {
                        connections.retire(&id, Retire::Suspect);
                    }
                    last_err = Some(RedisError::from(std::io::Error::from(
                        std::io::ErrorKind::TimedOut,
                    )));
                }
            }
        }
        Err(last_err.unwrap_or_else(|| {
            RedisError::from((
                ErrorKind::Io,
                "no node of the redis cluster could be asked for its slots",
            ))
        }))
    }

    /// Installs a map built from `ranges`, and forgets the nodes no longer in it.
    fn install(&self, ranges: &[Range]) -> Result<(), CacheError> {
        let mut owner = vec![UNSERVED; SLOTS].into_boxed_slice();
        let mut shards: Vec<Shard> = Vec::new();
        for range in ranges {
            let index = match shards.iter().position(|s| s.primary.addr == range.primary) {
                Some(index) => index,
                None => {
                    let replicas = range
                        .replicas
                        .iter()
                        .map(|addr| self.node(addr))
                        .collect::<Result<Vec<_>, _>>()?;
                    shards.push(Shard {
                        primary: self.node(&range.primary)?,
                        replicas,
                    });
                    shards.len() - 1
                }
            };
            let index = u16::try_from(index).unwrap_or(UNSERVED);
            for slot in range.first..=range.last {
                owner[usize::from(slot)] = index;
            }
        }
        let map = SlotMap { owner, shards };
        let mut kept: std::collections::HashSet<&str> =
            self.seeds.iter().map(String::as_str).collect();
        for shard in &map.shards {
            kept.insert(&shard.primary.addr);
            kept.extend(shard.replicas.iter().map(|node| node.addr.as_str()));
        }
        self.lock_nodes()
            .retain(|addr, _| kept.contains(addr.as_str()));
        *self.map.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(map));
        Ok(())
    }

    /// Notes a `MOVED`: `slot` is now served by the primary at `addr`. Refreshes the whole
    /// map in the background, since a moved slot often means more changed.
    fn moved(self: &Arc<Self>, slot: u16, addr: &str) -> Result<(), CacheError> {
        let node = self.node(addr)?;
        {
            let mut guard = self.map.write().unwrap_or_else(PoisonError::into_inner);
            if let Some(map) = guard.as_mut() {
                let current = map.shards.get(usize::from(map.owner[usize::from(slot)]));
                if current.is_none_or(|shard| shard.primary.addr != addr) {
                    let map = Arc::make_mut(map);
                    let index = match map.shards.iter().position(|s| s.primary.addr == addr) {
                        Some(index) => index,
                        None => {
                            map.shards.push(Shard {
                                primary: node,
                                replicas: Vec::new(),
                            });
                            map.shards.len() - 1
                        }
                    };
                    map.owner[usize::from(slot)] = u16::try_from(index).unwrap_or(UNSERVED);
                }
            }
        }
        self.refresh_soon();
        Ok(())
    }
}

/// One refresh of the slot map, ended in `Drop` if its runtime drops it unfinished.
struct RefreshTask {
    shared: Arc<Shared>,
    done: bool,
}

impl RefreshTask {
    async fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        let outcome = tokio::time::timeout(shared.refresh_bound(), shared.fetch_ranges()).await;
        let failed = match outcome {
            Ok(Ok((ranges, _asked))) => match shared.install(&ranges) {
                Ok(()) => None,
                Err(_closed) => Some(RedisError::from((ErrorKind::Io, "the cache was closed"))),
            },
            Ok(Err(err)) => Some(err),
            Err(_elapsed) => Some(RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            ))),
        };
        self.done = true;
        {
            let mut refresh = shared.lock_refresh();
            refresh.running = false;
            refresh.failed = failed;
        }
        shared.refreshed.notify_waiters();
    }
}

impl Drop for RefreshTask {
    fn drop(&mut self) {
        if !self.done {
            let mut refresh = self.shared.lock_refresh();
            refresh.running = false;
            refresh.failed = Some(RedisError::from((
                ErrorKind::Io,
                "the slot map refresh was dropped; its runtime shut down",
            )));
            drop(refresh);
            self.shared.refreshed.notify_waiters();
        }
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
