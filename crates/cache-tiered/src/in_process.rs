//! [`InProcessBackplane`]: invalidations between tiered caches of one process.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use cache_core::Result;
use cache_core::backplane::{Backplane, Event, Message, Subscription, SubscriptionSender};

/// How many events a subscription holds before it reports [`Event::Lost`].
const QUEUE: usize = 4096;

/// A [`Backplane`] within one process: every clone publishes to the subscriptions of every
/// clone. For tests, and for several tiered caches over one shared L2 in one process.
///
/// ```
/// use cache_core::backplane::{Backplane, Event, Invalidation, Message};
/// use cache_tiered::InProcessBackplane;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_core::Result<()> {
/// let backplane = InProcessBackplane::new();
/// let mut subscription = backplane.clone().subscribe();
/// let message = Message { sender: 1, invalidation: Invalidation::Keys(vec!["k".into()]) };
/// backplane.publish(&message).await?;
/// assert_eq!(subscription.next().await, Some(Event::Message(message)));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct InProcessBackplane {
    subscribers: Arc<Mutex<Vec<SubscriptionSender>>>,
}

impl InProcessBackplane {
    /// A backplane with no subscription yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backplane for InProcessBackplane {
    /// Queues `message` on every subscription, at once; never fails.
    async fn publish(&self, message: &Message) -> Result<()> {
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subscribers.retain(|subscriber| subscriber.send(Event::Message(message.clone())));
        Ok(())
    }

    fn subscribe(&self) -> Subscription {
        let (sender, subscription) = Subscription::channel(QUEUE);
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sender);
        subscription
    }
}

impl fmt::Debug for InProcessBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("InProcessBackplane")
            .field("subscribers", &subscribers)
            .finish()
    }
}

/// No backplane: a tiered cache alone in its deployment (one process over its own L2).
/// Nothing is sent; nothing arrives.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBackplane;

impl Backplane for NoBackplane {
    async fn publish(&self, _: &Message) -> Result<()> {
        Ok(())
    }

    fn subscribe(&self) -> Subscription {
        // The sender is dropped: the subscription ends at once, and nothing waits on it.
        Subscription::channel(1).1
    }
}
