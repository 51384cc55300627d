//! The task that holds a backplane's subscription: it connects, subscribes, hands every
//! message to every subscription, tells them when messages may have been lost, and
//! reconnects.
//!
//! The connection is redis-rs's [`PubSub`](redis::aio::PubSub), whose stream ends when the
//! socket closes; reconnecting is done here. redis-rs's `ConnectionManager` (feature
//! `connection-manager`, RESP3 only) can resubscribe by itself, but to one fixed address,
//! not to the master the sentinels name nor to another node of a cluster, and it reports
//! the disconnection rather than the moment the subscription is active again, which is when
//! subscriptions must hear [`Event::Lost`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::{Client, ConnectionInfo, ErrorKind, RedisError, Value};
use tokio::sync::watch;

use super::{Event, Message, Shared};
use crate::cluster::slots::join_host_port;
use crate::errors;
use crate::manager::Sentinels;
use crate::{Direct, Topology};

/// The pause before the first attempt to reconnect; it doubles after each failed attempt.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// A subscription that has received nothing for this long is checked with a `PING`.
const QUIET_CHECK: Duration = Duration::from_secs(5);

/// The task of one backplane (and its clones).
pub(super) struct Receiver {
    shared: Weak<Shared>,
    channel: String,
    /// The bound on opening a subscription, and on a `PING`.
    bound: Duration,
    /// Ends when the backplane's last clone is dropped.
    stop: watch::Receiver<()>,
    /// Turns `true` when the cache is closed.
    closing: watch::Receiver<bool>,
}

/// Where a subscription can go.
enum Source {
    /// Servers at fixed addresses (`host:port`, with their settings), tried in turn: the one
    /// server, or the nodes of a cluster.
    Nodes(Vec<(String, ConnectionInfo)>),
    /// The master that the sentinels name.
    Master(Arc<Sentinels>),
}

/// An active subscription.
struct Active {
    sink: PubSubSink,
    stream: PubSubStream,
    /// Where it is connected: `host:port`, or a unix socket's path.
    addr: String,
    /// Behind sentinels: the master it is connected to.
    master: Option<OnMaster>,
}

/// The master a subscription is connected to, and the watcher's news of the one the
/// sentinels name.
struct OnMaster {
    addr: (String, u16),
    named: watch::Receiver<Option<(String, u16)>>,
}

/// Why a subscription ended.
enum Ended {
    /// The backplane or the cache is gone: the task ends.
    Stopped,
    /// The connection broke, stopped answering, or no longer reaches the master.
    Lost,
}

impl Receiver {
    pub(super) fn new(shared: &Arc<Shared>) -> Self {
        Self {
            shared: Arc::downgrade(shared),
            channel: shared.channel.clone(),
            bound: shared.cache.timeout().saturating_mul(2),
            stop: shared.stop.subscribe(),
            closing: shared.cache.closing(),
        }
    }

    /// Subscribes, receives, and subscribes again after each loss, until stopped.
    pub(super) async fn run(self) {
        let stopped = self.stopped();
        tokio::pin!(stopped);
        let mut pause = FIRST_PAUSE;
        let mut avoid = None;
        loop {
            let connected = tokio::select! {
                biased;
                () = stopped.as_mut() => return,
                connected = self.connect(avoid.as_deref()) => connected,
            };
            match connected {
                Ok(mut active) => {
                    pause = FIRST_PAUSE;
                    let Some(shared) = self.shared.upgrade() else {
                        return;
                    };
                    // Whatever was published before this point may have been missed.
                    shared.activated();
                    drop(shared);
                    tracing::debug!(channel = %self.channel, "the backplane subscribed");
                    let ended = self.receive(&mut active, stopped.as_mut()).await;
                    if let Some(shared) = self.shared.upgrade() {
                        shared.deactivated();
                    }
                    match ended {
                        Ended::Stopped => return,
                        Ended::Lost => {
                            tracing::debug!(
                                channel = %self.channel,
                                "the backplane's subscription was lost; reconnecting"
                            );
                            // A node whose connection just broke is tried last.
                            avoid = Some(active.addr);
                        }
                    }
                }
                Err(err) => {
                    let err = errors::from_redis(err, self.bound);
                    tracing::debug!(
                        channel = %self.channel,
                        error = %err,
                        "the backplane could not subscribe; trying again"
                    );
                }
            }
            tokio::select! {
                biased;
                () = stopped.as_mut() => return,
                () = tokio::time::sleep(pause) => {}
            }
            pause = pause.saturating_mul(2).min(MAX_PAUSE);
        }
    }

    /// Completes when the backplane's last clone is dropped or the cache is closed.
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.clone();
        let mut closing = self.closing.clone();
        async move {
            tokio::select! {
                // Nothing is ever sent: this ends when the sender is dropped.
                _ = stop.changed() => {}
                _ = closing.wait_for(|closed| *closed) => {}
            }
        }
    }

    /// Where to subscribe now, from the cache's topology; `None` once the backplane is gone.
    async fn source(&self) -> Option<Source> {
        let shared = self.shared.upgrade()?;
        match &shared.cache.inner.topology {
            Topology::Direct(Direct {
                master,
                replicas,
                sentinels: Some(sentinels),
            }) => {
                // The watcher tells when the master moves, also to a process that only listens.
                sentinels.watch(master, replicas.as_ref());
                Some(Source::Master(Arc::clone(sentinels)))
            }
            Topology::Direct(direct) => {
                let info = direct.master.manager().fixed_info()?.clone();
                Some(Source::Nodes(vec![(info.addr().to_string(), info)]))
            }
            // Waits for the slot map at most the cache's timeout, the backplane kept meanwhile.
            Topology::Cluster(cluster) => Some(Source::Nodes(cluster.every_node().await)),
        }
    }

    /// Connects and subscribes: to the first of the nodes that answers (`avoid` last), or to
    /// the master the sentinels name.
    async fn connect(&self, avoid: Option<&str>) -> Result<Active, RedisError> {
        let source = self
            .source()
            .await
            .ok_or_else(|| RedisError::from((ErrorKind::Io, "the backplane was dropped")))?;
        match source {
            Source::Nodes(mut nodes) => {
                if let Some(avoid) = avoid
                    && let Some(index) = nodes.iter().position(|(addr, _)| addr == avoid)
                {
                    let node = nodes.remove(index);
                    nodes.push(node);
                }
                let mut last_err = None;
                for (addr, info) in nodes {
                    match self.open(info).await {
                        Ok((sink, stream)) => {
                            return Ok(Active {
                                sink,
                                stream,
                                addr,
                                master: None,
                            });
                        }
                        Err(err) => last_err = Some(err),
                    }
                }
                Err(last_err.unwrap_or_else(|| {
                    RedisError::from((ErrorKind::Io, "no redis node is known to subscribe to"))
                }))
            }
            Source::Master(sentinels) => {
                // Before asking, so that a move announced meanwhile is not missed.
                let named = sentinels.named_masters();
                let ((host, port), info) = sentinels.master().await?;
                let (sink, stream) = self.open(info).await?;
                Ok(Active {
                    sink,
                    stream,
                    addr: join_host_port(&host, port),
                    master: Some(OnMaster {
                        addr: (host, port),
                        named,
                    }),
                })
            }
        }
    }

    /// A pub/sub connection to the server of `info`, subscribed to the channel, within the
    /// bound.
    async fn open(&self, info: ConnectionInfo) -> Result<(PubSubSink, PubSubStream), RedisError> {
        let subscribed = async {
            let mut pubsub = Client::open(info)?.get_async_pubsub().await?;
            pubsub.subscribe(&self.channel).await?;
            Ok(pubsub.split())
        };
        tokio::time::timeout(self.bound, subscribed)
            .await
            .unwrap_or_else(|_elapsed| Err(errors::timed_out()))
    }

    /// Hands each message of `active` to every subscription, until the subscription is lost
    /// or `stopped` completes.
    async fn receive<F: Future<Output = ()>>(
        &self,
        active: &mut Active,
        mut stopped: Pin<&mut F>,
    ) -> Ended {
        loop {
            let heard = tokio::select! {
                biased;
                () = stopped.as_mut() => return Ended::Stopped,
                () = moved_away(active.master.as_mut()) => {
                    tracing::debug!("the sentinels name a new master; the backplane follows");
                    return Ended::Lost;
                }
                heard = tokio::time::timeout(QUIET_CHECK, active.stream.next()) => heard,
            };
            match heard {
                Ok(Some(message)) => {
                    let Some(shared) = self.shared.upgrade() else {
                        return Ended::Stopped;
                    };
                    // Anything else on the channel (another version, another program) is
                    // not ours to read.
                    if let Some(message) = Message::decode(message.get_payload_bytes()) {
                        shared.deliver(&Event::Message(message));
                    }
                }
                Ok(None) => return Ended::Lost,
                Err(_quiet) => {
                    let ping = tokio::time::timeout(self.bound, active.sink.ping::<Value>());
                    if !matches!(ping.await, Ok(Ok(_))) {
                        return Ended::Lost;
                    }
                }
            }
        }
    }
}

/// Completes when the watcher finds the sentinels name a master other than `master`; never
/// without sentinels.
async fn moved_away(master: Option<&mut OnMaster>) {
    let Some(OnMaster { addr, named }) = master else {
        return std::future::pending().await;
    };
    loop {
        if named.changed().await.is_err() {
            return std::future::pending().await;
        }
        if named
            .borrow_and_update()
            .as_ref()
            .is_some_and(|new| new != addr)
        {
            return;
        }
    }
}

impl Drop for Receiver {
    /// Lets the next `subscribe` start a task again (this one's runtime may have shut down);
    /// on a closed cache, ends every subscription.
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            let mut subscribers = shared.lock();
            subscribers.receiving = false;
            subscribers.active = false;
            if shared.cache.is_closed() {
                subscribers.senders.clear();
            }
        }
    }
}
