//! The channel over which instances of a tiered cache tell each other which keys changed, so
//! that each drops its in-process copies.
//!
//! A [`Backplane`] carries [`Message`]s (keys, or "everything", and the sender's instance id;
//! never values) to every [`Subscription`]. Delivery is at most once: a backplane that may
//! have lost messages (its connection dropped, or a subscriber fell behind) delivers
//! [`Event::Lost`], after which a subscriber must forget everything it keeps.
//!
//! `cache_tiered::InProcessBackplane` connects instances in one process;
//! `cache_redis::RedisBackplane` uses Redis pub/sub.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use crate::Result;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// These keys were written or deleted.
    Keys(Vec<String>),
    /// Every key was removed.
    Clear,
}

/// One message between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The instance that made the change; it ignores its own messages.
    pub sender: u64,
    /// What changed.
    pub invalidation: Invalidation,
}

/// What a [`Subscription`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message, from another instance or from this one.
    Message(Message),
    /// Messages may have been lost: forget everything kept on their account.
    Lost,
}

/// The version tag that starts every encoded message.
const WIRE_VERSION: &[u8] = b"inv1 ";

impl Message {
    /// The message as bytes, for backplanes that carry bytes: a version tag, the sender in
    /// hexadecimal, then `C` for a clear or `K` and each key as its length, `:` and its bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        out.extend_from_slice(WIRE_VERSION);
        out.extend_from_slice(format!("{:016x} ", self.sender).as_bytes());
        match &self.invalidation {
            Invalidation::Clear => out.push(b'C'),
            Invalidation::Keys(keys) => {
                out.push(b'K');
                for key in keys {
                    out.extend_from_slice(key.len().to_string().as_bytes());
                    out.push(b':');
                    out.extend_from_slice(key.as_bytes());
                }
            }
        }
        out
    }

    /// Reads what [`encode`](Self::encode) wrote; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(WIRE_VERSION)?;
        let (sender, rest) = rest.split_at_checked(16)?;
        let sender = u64::from_str_radix(std::str::from_utf8(sender).ok()?, 16).ok()?;
        let rest = rest.strip_prefix(b" ")?;
        let (&kind, mut rest) = rest.split_first()?;
        let invalidation = match kind {
            b'C' if rest.is_empty() => Invalidation::Clear,
            b'K' => {
                let mut keys = Vec::new();
                while !rest.is_empty() {
                    let colon = rest.iter().position(|&b| b == b':')?;
                    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
                    let (key, after) = rest[colon + 1..].split_at_checked(len)?;
                    keys.push(String::from_utf8(key.to_vec()).ok()?);
                    rest = after;
                }
                Invalidation::Keys(keys)
            }
            _ => return None,
        };
        Some(Self {
            sender,
            invalidation,
        })
    }
}

/// A channel of invalidations between the instances of a tiered cache.
pub trait Backplane: Send + Sync + fmt::Debug + 'static {
    /// Sends `message` to every subscription, within the backplane's own time bound.
    ///
    /// # Errors
    /// The backplane's error when it cannot send now; the caller's write already succeeded.
    fn publish(&self, message: &Message) -> impl Future<Output = Result<()>> + Send;

    /// A new subscription to every message published from now on. Needs a tokio runtime
    /// for backplanes that receive in a task of their own.
    fn subscribe(&self) -> Subscription;
}

/// The receiving end of a subscription: a bounded queue. A message that finds it full is
/// dropped, and the subscriber gets [`Event::Lost`] instead.
#[derive(Debug)]
pub struct Subscription {
    events: mpsc::Receiver<Event>,
    lost: Arc<AtomicBool>,
}

/// The sending end of a [`Subscription`], held by the backplane.
#[derive(Debug, Clone)]
pub struct SubscriptionSender {
    events: mpsc::Sender<Event>,
    lost: Arc<AtomicBool>,
}

impl Subscription {
    /// A subscription holding up to `capacity` events, and the sender that feeds it.
    pub fn channel(capacity: usize) -> (SubscriptionSender, Subscription) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let lost = Arc::new(AtomicBool::new(false));
        (
            SubscriptionSender {
                events: tx,
                lost: Arc::clone(&lost),
            },
            Subscription { events: rx, lost },
        )
    }

    /// The next event; `None` once the backplane is gone.
    pub async fn next(&mut self) -> Option<Event> {
        if self.lost.swap(false, Ordering::AcqRel) {
            // Everything queued before the loss is covered by it.
            while self.events.try_recv().is_ok() {}
            return Some(Event::Lost);
        }
        let event = self.events.recv().await;
        if self.lost.swap(false, Ordering::AcqRel) {
            while self.events.try_recv().is_ok() {}
            return Some(Event::Lost);
        }
        event
    }
}

impl SubscriptionSender {
    /// Queues `event`; when the queue is full, marks the subscription as having lost
    /// messages. `false` once the subscription is dropped.
    pub fn send(&self, event: Event) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lost.store(true, Ordering::Release);
                // Wakes a subscriber waiting on an empty queue is not needed: it is full.
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Tells the subscriber that messages may have been lost.
    pub fn lost(&self) -> bool {
        self.lost.store(true, Ordering::Release);
        // Wakes a subscriber waiting on an empty queue.
        match self.events.try_send(Event::Lost) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Whether the subscription was dropped.
    pub fn is_closed(&self) -> bool {
        self.events.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_encoding() {
        for invalidation in [
            Invalidation::Clear,
            Invalidation::Keys(vec![]),
            Invalidation::Keys(vec!["a".into(), String::new(), "k:1:é\0\n".into()]),
        ] {
            let message = Message {
                sender: 0xdead_beef_0123_4567,
                invalidation,
            };
            assert_eq!(Message::decode(&message.encode()), Some(message));
        }
        assert_eq!(Message::decode(b""), None);
        assert_eq!(Message::decode(b"inv1 0000000000000001 K5:ab"), None);
        assert_eq!(Message::decode(b"inv1 0000000000000001 X"), None);
        assert_eq!(Message::decode(b"inv1 0000000000000001 Cextra"), None);
    }

    #[tokio::test]
    async fn a_full_queue_turns_into_lost() {
        let (tx, mut rx) = Subscription::channel(1);
        let message = Message {
            sender: 1,
            invalidation: Invalidation::Clear,
        };
        assert!(tx.send(Event::Message(message.clone())));
        assert!(tx.send(Event::Message(message)));
        assert_eq!(rx.next().await, Some(Event::Lost));
        drop(tx);
        assert_eq!(rx.next().await, None);
    }
}
