//! Invalidations waiting to be published. A write queues its keys and returns; one task at a
//! time publishes what is queued, all of it in one message (up to [`MAX_KEYS`] keys or
//! [`MAX_BYTES`] bytes of them), so that under load many writes share one message instead of
//! paying a round trip each.

use std::mem;
use std::sync::{Mutex, MutexGuard, PoisonError};

use cache_core::backplane::Invalidation;
use tokio::sync::Notify;

/// The most keys one message carries.
pub(crate) const MAX_KEYS: usize = 1_000;
/// The most key bytes one message carries (a single longer key goes alone).
pub(crate) const MAX_BYTES: usize = 64 * 1024;

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pending: Mutex<Pending>,
    /// Woken when the publishing task stops, having sent everything.
    idle: Notify,
}

#[derive(Debug, Default)]
struct Pending {
    /// A clear not sent yet: it goes before the keys (which were all queued after it).
    clear: bool,
    keys: Vec<String>,
    /// Whether a task publishes.
    running: bool,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // Plain data, valid whatever a panicking holder did.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `invalidation`; true if the caller must start the task that publishes (none
    /// runs).
    pub(crate) fn push(&self, invalidation: Invalidation) -> bool {
        let mut pending = self.lock();
        match invalidation {
            Invalidation::Clear => {
                // Everything queued before is cleared too.
                pending.keys.clear();
                pending.clear = true;
            }
            Invalidation::Keys(keys) => pending.keys.extend(keys),
        }
        !mem::replace(&mut pending.running, true)
    }

    /// The next message to publish, or `None` when all is sent: the task that got `None`
    /// stops, and the next `push` starts another.
    pub(crate) fn next(&self) -> Option<Invalidation> {
        let mut pending = self.lock();
        if mem::take(&mut pending.clear) {
            return Some(Invalidation::Clear);
        }
        if pending.keys.is_empty() {
            pending.running = false;
            self.idle.notify_waiters();
            return None;
        }
        let mut bytes = 0;
        let count = pending
            .keys
            .iter()
            .take(MAX_KEYS)
            .take_while(|key| {
                bytes += key.len();
                bytes <= MAX_BYTES
            })
            .count()
            .max(1);
        let rest = pending.keys.split_off(count);
        Some(Invalidation::Keys(mem::replace(&mut pending.keys, rest)))
    }

    /// Puts back a message that could not be sent, to go first with the next one.
    pub(crate) fn requeue(&self, invalidation: Invalidation) {
        let mut pending = self.lock();
        match invalidation {
            Invalidation::Clear => pending.clear = true,
            // A clear queued since covers these keys.
            Invalidation::Keys(_) if pending.clear => {}
            Invalidation::Keys(mut keys) => {
                keys.append(&mut pending.keys);
                pending.keys = keys;
            }
        }
    }

    /// The publishing task went away before it was done: the next `push` starts another.
    pub(crate) fn abandon(&self) {
        self.lock().running = false;
        self.idle.notify_waiters();
    }

    /// Waits until the publishing task, if one runs, has sent everything.
    pub(crate) async fn flushed(&self) {
        loop {
            let idle = self.idle.notified();
            if !self.lock().running {
                return;
            }
            idle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Invalidation {
        Invalidation::Keys((0..n).map(|i| format!("k{i}")).collect())
    }

    #[test]
    fn queued_keys_go_in_messages_of_at_most_max_keys_and_a_clear_goes_first() {
        let outbox = Outbox::default();
        assert!(outbox.push(keys(3)), "the first push starts the task");
        assert!(!outbox.push(keys(MAX_KEYS)), "one task at a time");
        assert!(!outbox.push(Invalidation::Clear));
        assert!(!outbox.push(keys(2)));
        assert_eq!(outbox.next(), Some(Invalidation::Clear));
        assert_eq!(outbox.next(), Some(keys(2)));
        assert_eq!(outbox.next(), None);
        assert!(
            outbox.push(keys(MAX_KEYS + 1)),
            "a stopped task is started again"
        );
        assert!(matches!(outbox.next(), Some(Invalidation::Keys(k)) if k.len() == MAX_KEYS));
        assert!(matches!(outbox.next(), Some(Invalidation::Keys(k)) if k.len() == 1));
        assert_eq!(outbox.next(), None);
    }

    #[test]
    fn a_message_put_back_goes_first_unless_a_clear_came_since() {
        let outbox = Outbox::default();
        outbox.push(keys(2));
        let sent = outbox.next().unwrap();
        outbox.push(Invalidation::Keys(vec!["later".into()]));
        outbox.requeue(sent);
        assert_eq!(
            outbox.next(),
            Some(Invalidation::Keys(vec![
                "k0".into(),
                "k1".into(),
                "later".into()
            ]))
        );
        let sent = outbox.next();
        assert_eq!(sent, None);
        outbox.push(keys(1));
        let sent = outbox.next().unwrap();
        outbox.push(Invalidation::Clear);
        outbox.requeue(sent);
        assert_eq!(outbox.next(), Some(Invalidation::Clear));
        assert_eq!(outbox.next(), None);
    }

    #[test]
    fn a_key_longer_than_max_bytes_goes_alone() {
        let outbox = Outbox::default();
        let long = "x".repeat(MAX_BYTES + 1);
        outbox.push(Invalidation::Keys(vec![long.clone(), "short".into()]));
        assert_eq!(outbox.next(), Some(Invalidation::Keys(vec![long])));
        assert_eq!(
            outbox.next(),
            Some(Invalidation::Keys(vec!["short".into()]))
        );
    }
}
