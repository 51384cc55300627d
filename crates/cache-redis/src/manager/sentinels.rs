//! The sentinels of one master name: which server is the master (or a replica) now, asked
//! with a bound per sentinel, and a watcher that follows `+switch-master` and renews the
//! pools when the master moves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionInfo, ErrorKind, FromRedisValue, RedisError, Value,
};
use tokio::sync::watch;

use super::{connect, connection_config, info_at};
use crate::connections::{Connections, WeakConnections};
use crate::errors;
use crate::sync::lock;

/// How often the sentinels are asked whether the master changed, while no subscription to
/// their announcements is up.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// The same while a subscription is up.
const POLL_WHILE_SUBSCRIBED: Duration = Duration::from_secs(5);

/// The sentinels of one master name, and how to reach the servers they name.
pub(crate) struct Sentinels {
    master_name: String,
    /// How to reach each sentinel (its own credentials and TLS).
    sentinels: Vec<ConnectionInfo>,
    /// The settings of the data nodes; its address is replaced by the one a sentinel names.
    node: ConnectionInfo,
    /// The bound on each question to a sentinel.
    ask_timeout: Duration,
    /// How a connection to a sentinel is opened: within `ask_timeout`.
    config: AsyncConnectionConfig,
    /// The sentinel asked first: the last one that answered.
    preferred: AtomicUsize,
    /// The master (host, port) that the latest connection was opened to.
    pub(super) current: Mutex<Option<(String, u16)>>,
    /// Whether a task watches for a new master.
    watching: AtomicBool,
    /// Turns over the replicas a new replica connection goes to.
    next_replica: AtomicUsize,
    /// The master the sentinels named when the watcher last asked or heard, for connections
    /// of other kinds that must follow it too (the backplane's subscription).
    named: watch::Sender<Option<(String, u16)>>,
}

impl Sentinels {
    pub(crate) fn new(
        master_name: String,
        sentinels: Vec<ConnectionInfo>,
        node: ConnectionInfo,
        ask_timeout: Duration,
    ) -> Self {
        Self {
            master_name,
            sentinels,
            node,
            ask_timeout,
            config: connection_config(ask_timeout),
            preferred: AtomicUsize::new(0),
            current: Mutex::new(None),
            watching: AtomicBool::new(false),
            next_replica: AtomicUsize::new(0),
            named: watch::Sender::new(None),
        }
    }

    /// Where the sentinels say the master is, `(host, port)`, and the settings to connect to
    /// it with.
    pub(crate) async fn master(&self) -> Result<((String, u16), ConnectionInfo), RedisError> {
        let (host, port) = self.master_addr_on(&mut None).await?;
        let info = info_at(&self.node, host.clone(), port);
        Ok(((host, port), info))
    }

    /// Each master the watcher finds the sentinels name (see [`watch`](Self::watch)), when it
    /// differs from the one before; the current value counts as seen.
    pub(crate) fn named_masters(&self) -> watch::Receiver<Option<(String, u16)>> {
        self.named.subscribe()
    }

    /// Starts a task (unless one runs) that asks the sentinels every [`WATCH_INTERVAL`] where
    /// the master is, and empties the lanes and the pool of `connections` when it moved.
    ///
    /// After a failover the old master may go on accepting writes (sentinels reconfigure
    /// it as a replica only once they see it again, up to 10 s later), so a cache cannot
    /// wait for its `READONLY` answers; it stops using it within one interval of the switch.
    /// The task ends with the cache, or with its runtime (the next operation starts another).
    pub(crate) fn watch(self: &Arc<Self>, master: &Connections, replicas: Option<&Connections>) {
        // A load first: this runs on every operation, and the flag is nearly always set.
        if self.watching.load(Ordering::Acquire) || self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let watcher = Watcher {
            sentinels: Arc::clone(self),
            connections: master.downgrade(),
            replicas: replicas.map(Connections::downgrade),
        };
        tokio::spawn(watcher.run());
    }

    /// A subscription to `+switch-master` on the sentinel that answered last, if it answers.
    async fn subscribe(&self) -> Option<redis::aio::PubSub> {
        let count = self.sentinels.len();
        let index = self.preferred.load(Ordering::Relaxed) % count.max(1);
        let info = self.sentinels.get(index)?.clone();
        tokio::time::timeout(self.ask_timeout, async {
            let mut pubsub = Client::open(info).ok()?.get_async_pubsub().await.ok()?;
            pubsub.subscribe("+switch-master").await.ok()?;
            Some(pubsub)
        })
        .await
        .ok()
        .flatten()
    }

    /// The new master a `+switch-master` announcement names, if it is about ours:
    /// `<name> <old host> <old port> <new host> <new port>`.
    fn switched_to(&self, message: &redis::Msg) -> Option<(String, u16)> {
        let payload: String = message.get_payload().ok()?;
        let mut fields = payload.split(' ');
        if fields.next()? != self.master_name {
            return None;
        }
        let host = fields.nth(2)?.to_owned();
        let port = fields.next()?.parse().ok()?;
        Some((host, port))
    }

    /// Asks the sentinels where the master is, first on `kept` (see [`ask_on`](Self::ask_on)).
    async fn master_addr_on(
        &self,
        kept: &mut Option<MultiplexedConnection>,
    ) -> Result<(String, u16), RedisError> {
        self.ask_on(kept, "GET-MASTER-ADDR-BY-NAME", |reply| {
            match Option::<(String, u16)>::from_redis_value(reply)? {
                Some(addr) => Ok(addr),
                None => Err(RedisError::from((
                    ErrorKind::MasterNameNotFoundBySentinel,
                    "the sentinels know no master by this name",
                    format!("{:?}", self.master_name),
                ))),
            }
        })
        .await
    }

    /// Where the sentinels say a replica of the master is that is up and in sync, a different
    /// one each time when there are several, `(host, port)`, and the settings to connect to it
    /// with.
    pub(super) async fn replica(&self) -> Result<((String, u16), ConnectionInfo), RedisError> {
        let (host, port) = self
            .ask_on(&mut None, "REPLICAS", |reply| {
                let replicas = Vec::<HashMap<String, String>>::from_redis_value(reply)?;
                let healthy: Vec<(String, u16)> = replicas
                    .iter()
                    .filter(|fields| {
                        let flags = fields.get("flags").map_or("", String::as_str);
                        !flags.split(',').any(|flag| {
                            matches!(flag, "s_down" | "o_down" | "disconnected" | "master")
                        }) && fields.get("master-link-status").map(String::as_str) == Some("ok")
                    })
                    .filter_map(|fields| {
                        Some((fields.get("ip")?.clone(), fields.get("port")?.parse().ok()?))
                    })
                    .collect();
                if healthy.is_empty() {
                    return Err(RedisError::from((
                        ErrorKind::NoValidReplicasFoundBySentinel,
                        "the sentinels know no replica of the master that is up and in sync",
                    )));
                }
                let turn = self.next_replica.fetch_add(1, Ordering::Relaxed);
                Ok(healthy[turn % healthy.len()].clone())
            })
            .await?;
        let info = info_at(&self.node, host.clone(), port);
        Ok(((host, port), info))
    }

    /// `SENTINEL <question> <master name>` to the sentinels: first on `kept` (a connection to
    /// a sentinel that answered before), then to each sentinel in turn from the last one that
    /// answered, each within the bound; the first answer that `read` accepts. `kept` then
    /// holds the connection that answered.
    async fn ask_on<T>(
        &self,
        kept: &mut Option<MultiplexedConnection>,
        question: &str,
        read: impl Fn(Value) -> Result<T, RedisError>,
    ) -> Result<T, RedisError> {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg(question).arg(&self.master_name);
        if let Some(conn) = kept.as_mut() {
            let asked =
                tokio::time::timeout(self.ask_timeout, cmd.query_async::<Value>(conn)).await;
            if let Ok(Ok(reply)) = asked {
                return read(reply);
            }
            *kept = None;
        }
        let count = self.sentinels.len();
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last_err = None;
        for i in 0..count {
            let index = (first + i) % count;
            let asked = tokio::time::timeout(self.ask_timeout, async {
                let mut conn = connect(self.sentinels[index].clone(), &self.config).await?;
                let reply = cmd.query_async::<Value>(&mut conn).await?;
                Ok::<_, RedisError>((reply, conn))
            })
            .await;
            let err = match asked {
                Ok(Ok((reply, conn))) => match read(reply) {
                    Ok(answer) => {
                        self.preferred.store(index, Ordering::Relaxed);
                        *kept = Some(conn);
                        return Ok(answer);
                    }
                    Err(err) => err,
                },
                Ok(Err(err)) => err,
                Err(_elapsed) => errors::timed_out(),
            };
            last_err = Some(err);
        }
        Err(last_err.unwrap_or_else(|| {
            RedisError::from((ErrorKind::InvalidClientConfig, "no sentinel was given"))
        }))
    }
}

/// The task of [`Sentinels::watch`].
struct Watcher {
    sentinels: Arc<Sentinels>,
    connections: WeakConnections,
    /// Replica connections, renewed too: the promoted replica is the master now.
    replicas: Option<WeakConnections>,
}

impl Watcher {
    /// Listens to the sentinels' `+switch-master` announcements, and asks them too, on one
    /// kept connection: every [`WATCH_INTERVAL`] while no subscription is up, every
    /// [`POLL_WHILE_SUBSCRIBED`] while one is (an announcement can still be lost).
    async fn run(self) {
        let mut subscription = None;
        let mut kept = None;
        let mut polled = tokio::time::Instant::now();
        loop {
            if subscription.is_none() {
                subscription = self.sentinels.subscribe().await;
            }
            let announced = match subscription.as_mut() {
                Some(pubsub) => {
                    let mut messages = pubsub.on_message();
                    match tokio::time::timeout(WATCH_INTERVAL, messages.next()).await {
                        Ok(Some(message)) => Some(message),
                        Ok(None) => {
                            drop(messages);
                            subscription = None;
                            None
                        }
                        Err(_interval) => None,
                    }
                }
                None => {
                    tokio::time::sleep(WATCH_INTERVAL).await;
                    None
                }
            };
            let Some(connections) = self.connections.upgrade() else {
                return;
            };
            if connections.is_closed() {
                return;
            }
            let master = match announced {
                Some(message) => match self.sentinels.switched_to(&message) {
                    Some(master) => master,
                    None => continue,
                },
                None if subscription.is_some() && polled.elapsed() < POLL_WHILE_SUBSCRIBED => {
                    continue;
                }
                None => {
                    polled = tokio::time::Instant::now();
                    match self.sentinels.master_addr_on(&mut kept).await {
                        Ok(master) => master,
                        Err(_) => continue,
                    }
                }
            };
            self.sentinels.named.send_if_modified(|named| {
                let changed = named.as_ref() != Some(&master);
                if changed {
                    *named = Some(master.clone());
                }
                changed
            });
            let moved = {
                let mut current = lock(&self.sentinels.current);
                let moved = current.as_ref().is_some_and(|now| *now != master);
                if moved {
                    *current = Some(master);
                }
                moved
            };
            if moved {
                tracing::debug!("the sentinels name a new master; reconnecting");
                connections.reset();
                if let Some(replicas) = self.replicas.as_ref().and_then(WeakConnections::upgrade) {
                    replicas.reset();
                }
            }
        }
    }
}

impl Drop for Watcher {
    /// Lets the next operation start a watcher again (this one's runtime shut down).
    fn drop(&mut self) {
        self.sentinels.watching.store(false, Ordering::Release);
    }
}
