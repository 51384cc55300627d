//! [`RedisBackplane`]: the invalidations between the instances of a tiered cache, carried by
//! Redis pub/sub; and cache-core's backplane contract ([`Backplane`], [`Message`], [`Event`],
//! [`Subscription`]), re-exported so that one crate is enough.

mod receiver;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use cache_core::Result;
pub use cache_core::backplane::{
    Backplane, Event, Invalidation, Message, Subscription, SubscriptionSender,
};
use tokio::sync::watch;

use self::receiver::Receiver;
use crate::cluster::Route;
use crate::{RedisCache, sync};

/// The start of every channel name; the cache's namespace follows.
pub const CHANNEL_PREFIX: &str = "cache-invalidate:";

/// How many events a subscription holds before it reports [`Event::Lost`] instead.
const QUEUE: usize = 4096;

/// A [`Backplane`] over Redis pub/sub, for the instances of a tiered cache that share one
/// [`RedisCache`] namespace: each publishes the keys it changed, and every instance hears
/// them.
///
/// One channel per namespace, named [`CHANNEL_PREFIX`] and the namespace:
/// `cache-invalidate:traces:` for the namespace `traces:`, `cache-invalidate:` without one.
/// Channels are server-wide, not per database: caches with one namespace on two databases
/// of a server hear each other's invalidations (needless ones, never too few).
///
/// - [`publish`](Backplane::publish) is one `PUBLISH` through the cache's own connections,
///   bounded by its timeout. In a cluster it goes to the node serving the channel name's
///   slot, and Redis Cluster forwards it to every node.
/// - [`subscribe`](Backplane::subscribe) shares one connection of its own between every
///   subscription of a backplane and its clones, held by a task that the first `subscribe`
///   starts. It goes to the server; in a cluster, to the first node that answers (the seeds
///   first, then the other nodes of the slot map); behind sentinels, to the master they
///   name, and to the new one after a failover. Opening it (connecting and subscribing) is
///   bounded by twice the cache's timeout; a connection that has been quiet for 5 s is
///   checked with a `PING` under the same bound.
///
/// Delivery is at most once. **Each time the subscription becomes active, the first time
/// included, every subscription gets [`Event::Lost`]**, and so does a new subscription
/// while it is active: messages published before that, or while the connection was down,
/// are not delivered. A subscription's first event is always [`Event::Lost`]. A broken connection is reopened after
/// a pause of 50 ms, doubled after each failed attempt up to 2 s. A subscription that falls
/// 4,096 events behind gets [`Event::Lost`] too.
///
/// When the last clone of the backplane is dropped, or the cache is
/// [closed](cache_core::Cache::close), the task ends, its connection closes, and every
/// subscription ends ([`Subscription::next`] returns `None`). A payload that is not a
/// [`Message`] is ignored.
///
/// `Debug` shows the channel and the cache, never a password.
///
/// ```no_run
/// use cache_redis::backplane::{Backplane, Event, Invalidation, Message};
/// use cache_redis::{RedisBackplane, RedisCache};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_redis::Result<()> {
/// let cache = RedisCache::builder()
///     .url("redis://127.0.0.1:6379")
///     .namespace("traces:")
///     .build()?;
/// let backplane = RedisBackplane::for_cache(&cache);
/// assert_eq!(backplane.channel(), "cache-invalidate:traces:");
///
/// let mut subscription = backplane.subscribe();
/// // Active from the first `Lost` on.
/// assert_eq!(subscription.next().await, Some(Event::Lost));
/// let message = Message {
///     sender: 1,
///     invalidation: Invalidation::Keys(vec!["abc".into()]),
/// };
/// backplane.publish(&message).await?;
/// assert_eq!(subscription.next().await, Some(Event::Message(message)));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisBackplane {
    shared: Arc<Shared>,
}

struct Shared {
    cache: RedisCache,
    channel: String,
    /// The slot that `PUBLISH` is routed by (0 off a cluster).
    slot: u16,
    subscribers: Mutex<Subscribers>,
    /// Dropped with the last clone of the backplane, which ends the receiving task.
    stop: watch::Sender<()>,
}

#[derive(Default)]
struct Subscribers {
    senders: Vec<SubscriptionSender>,
    /// Whether a receiving task runs.
    receiving: bool,
    /// Whether its subscription is active now.
    active: bool,
}

impl RedisBackplane {
    /// The backplane of `cache`'s namespace, publishing through `cache`'s connections (the
    /// backplane keeps a clone of the cache). Does no I/O.
    pub fn for_cache(cache: &RedisCache) -> Self {
        let channel = format!("{CHANNEL_PREFIX}{}", cache.namespace());
        let slot = if cache.inner.topology.is_cluster() {
            crate::cluster::slots::slot(&[channel.as_bytes()])
        } else {
            0
        };
        Self {
            shared: Arc::new(Shared {
                cache: cache.clone(),
                channel,
                slot,
                subscribers: Mutex::new(Subscribers::default()),
                stop: watch::Sender::new(()),
            }),
        }
    }

    /// The pub/sub channel: [`CHANNEL_PREFIX`] and the cache's namespace.
    pub fn channel(&self) -> &str {
        &self.shared.channel
    }
}

impl Backplane for RedisBackplane {
    /// `PUBLISH channel <message>`, one round trip bounded by the cache's timeout, sent once.
    ///
    /// # Errors
    /// [`CacheError::TooLarge`](cache_core::CacheError::TooLarge) when the encoded message is
    /// over the cache's `max_size`, before any I/O; otherwise those of
    /// [`RedisCache::ping`].
    async fn publish(&self, message: &Message) -> Result<()> {
        let shared = &*self.shared;
        let cache = &shared.cache;
        let payload = message.encode();
        let payload = cache.inner.keys.value(&payload)?;
        let keys = match &message.invalidation {
            Invalidation::Keys(keys) => keys.len(),
            Invalidation::Clear => 0,
        };
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&shared.channel).arg(payload);
        // The number of receivers (on a cluster, this node's) does not matter.
        cache
            .query::<i64>("publish", keys, Route::Slot(shared.slot), &cmd)
            .await?;
        Ok(())
    }

    /// A new subscription, and the receiving task if none runs. A subscription made on a
    /// closed cache ends at once. Outside a tokio runtime with its time and I/O drivers no
    /// task can start: the subscription waits until a `subscribe` inside one starts it.
    fn subscribe(&self) -> Subscription {
        let shared = &self.shared;
        let (sender, subscription) = Subscription::channel(QUEUE);
        let start = {
            let mut subscribers = shared.lock();
            // Under the lock that the ending task clears the senders under.
            if shared.cache.is_closed() {
                return subscription;
            }
            if subscribers.active {
                // Nothing was heard for it before now: the same news as for the others.
                sender.lost();
            }
            subscribers.senders.push(sender);
            !std::mem::replace(&mut subscribers.receiving, true)
        };
        if start {
            match cache_core::runtime::require_tokio("cache-redis", true) {
                Ok(()) => {
                    tokio::spawn(Receiver::new(shared).run());
                }
                Err(err) => {
                    shared.lock().receiving = false;
                    tracing::debug!(error = %err, "the backplane cannot receive here");
                }
            }
        }
        subscription
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Subscribers> {
        // No code panics while holding this lock; recover the data if that ever changes.
        sync::lock(&self.subscribers)
    }

    /// Queues `event` on every subscription, forgetting the dropped ones.
    fn deliver(&self, event: &Event) {
        self.lock()
            .senders
            .retain(|subscriber| subscriber.send(event.clone()));
    }

    /// Notes that the subscription is active again, and tells every subscription that
    /// messages may have been lost.
    fn activated(&self) {
        let mut subscribers = self.lock();
        subscribers.active = true;
        subscribers.senders.retain(SubscriptionSender::lost);
    }

    /// Notes that the subscription is no longer active.
    fn deactivated(&self) {
        self.lock().active = false;
    }
}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &*self.shared;
        let (subscriptions, receiving) = {
            let subscribers = shared.lock();
            (subscribers.senders.len(), subscribers.receiving)
        };
        f.debug_struct("RedisBackplane")
            .field("channel", &shared.channel)
            .field("subscriptions", &subscriptions)
            .field("receiving", &receiving)
            .field("cache", &shared.cache)
            .finish()
    }
}
