//! Reads that miss L1 at the same time share L2 round trips.
//!
//! At most `l2_reads_in_flight` L2 reads run at once. A read that finds fewer running sends its key
//! at once, alone; a read that finds them all running queues its key. When a running read
//! ends, the queued keys (up to [`MAX_BATCH`]) go to L2 together in one
//! [`Cache::get_many_bytes_with_ttl`], and so on until the queue is empty. No timer: a
//! batch is whatever queued while L2 was busy.
//!
//! Cancellation: the batches run in a task of their own, so a caller that stops waiting
//! (dropped, or past its soft timeout) leaves the others their answer; a caller that was
//! reading alone hands the queue on when it ends, however it ends ([`Slot`]'s `Drop`). A
//! queued read whose batch is lost (its task dropped with the runtime, or L2 refused the
//! batch for one of its keys) reads alone, so it never waits for nothing.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cache_core::backplane::Backplane;
use cache_core::{Bytes, Cache, Result, Ttl};
use tokio::sync::oneshot;

use crate::{Inner, TieredCache};

/// The most keys one batch carries.
const MAX_BATCH: usize = 256;

/// L2's answer to one read.
type Reply = Result<Option<(Bytes, Ttl)>>;

/// The reads running and queued, shared by the clones of a cache.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// L2 reads running, each holding a [`Slot`].
    running: usize,
    /// Reads waiting for the next batch, in arrival order.
    queue: Vec<Waiting>,
}

/// A queued read: its key and where its answer goes.
#[derive(Debug)]
struct Waiting {
    key: Box<str>,
    reply: oneshot::Sender<Reply>,
}

impl Reads {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A counter and a queue of senders, valid whatever a panicking holder did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// The next batch: the oldest queued reads, at most [`MAX_BATCH`].
    fn next_batch(&mut self) -> Option<Vec<Waiting>> {
        match self.queue.len() {
            0 => None,
            n if n <= MAX_BATCH => Some(std::mem::take(&mut self.queue)),
            _ => Some(self.queue.drain(..MAX_BATCH).collect()),
        }
    }
}

impl<L1: Cache + 'static, L2: Cache + 'static, B: Backplane> TieredCache<L1, L2, B> {
    /// L2's entry for `key` and the time it has left: alone, or in a batch with the reads
    /// that queue while L2 is busy (always alone when coalescing is off, the default, and
    /// outside a tokio runtime).
    pub(crate) async fn read_l2(&self, key: &str) -> Reply {
        let inner = &self.inner;
        // Off: no lock and no slot on the read path, which then is what it was without this.
        if inner.settings.reads_in_flight == usize::MAX
            || tokio::runtime::Handle::try_current().is_err()
        {
            return inner.l2.get_bytes_with_ttl(key).await;
        }
        let queued = {
            let mut state = inner.reads.lock();
            if state.running < inner.settings.reads_in_flight {
                state.running += 1;
                None
            } else {
                let (reply, answer) = oneshot::channel();
                state.queue.push(Waiting {
                    key: key.into(),
                    reply,
                });
                Some(answer)
            }
        };
        let Some(answer) = queued else {
            // Ended, however it ends, the slot takes the queue on.
            let _slot = Slot::new(inner);
            return inner.l2.get_bytes_with_ttl(key).await;
        };
        match answer.await {
            Ok(reply) => reply,
            // The batch gave this read up: it reads alone.
            Err(_) => inner.l2.get_bytes_with_ttl(key).await,
        }
    }
}

/// One of the `l2_reads_in_flight` running reads. When it ends (or is dropped), the queued reads
/// go on in a task of their own that holds the slot; with none queued, the slot is free.
struct Slot<L1: Cache + 'static, L2: Cache + 'static, B: Backplane> {
    inner: Arc<Inner<L1, L2, B>>,
    /// False once given back.
    held: bool,
}

impl<L1: Cache + 'static, L2: Cache + 'static, B: Backplane> Slot<L1, L2, B> {
    fn new(inner: &Arc<Inner<L1, L2, B>>) -> Self {
        Self {
            inner: Arc::clone(inner),
            held: true,
        }
    }

    /// The next batch, or `None` and the slot given back.
    fn next_batch(&mut self) -> Option<Vec<Waiting>> {
        let mut state = self.inner.reads.lock();
        let batch = state.next_batch();
        if batch.is_none() {
            state.running -= 1;
            self.held = false;
        }
        batch
    }

    /// Answers `batch`, then each batch queued meanwhile, until the queue is empty.
    async fn drive(mut self, mut batch: Vec<Waiting>) {
        loop {
            batch.retain(|waiting| !waiting.reply.is_closed());
            if !batch.is_empty() {
                let tiers = &self.inner.tiers;
                tiers.l2_batches.fetch_add(1, Ordering::Relaxed);
                tiers
                    .l2_batched_reads
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                answer(&self.inner.l2, batch).await;
            }
            match self.next_batch() {
                Some(next) => batch = next,
                None => return,
            }
        }
    }
}

impl<L1: Cache + 'static, L2: Cache + 'static, B: Backplane> Drop for Slot<L1, L2, B> {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let Some(batch) = self.next_batch() else {
            return;
        };
        self.held = false;
        let slot = Slot::new(&self.inner);
        // Outside a runtime (dropped with it), the batch is dropped too and its reads go
        // alone; so does a task that the runtime drops unpolled, which drops `slot`: the
        // next batch then goes the same way.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(slot.drive(batch));
        }
    }
}

/// Asks L2 for the keys of `batch` in one call and sends each read its answer. An error that
/// a retry may cure is every read's answer; another one (such as a key over L2's size limit)
/// may concern one key only, so the reads then ask alone, each for its own answer.
async fn answer<L2: Cache>(l2: &L2, batch: Vec<Waiting>) {
    let keys: Vec<&str> = batch.iter().map(|waiting| &*waiting.key).collect();
    match l2.get_many_bytes_with_ttl(&keys).await {
        Ok(entries) if entries.len() == batch.len() => {
            for (waiting, entry) in batch.into_iter().zip(entries) {
                // A read that stopped waiting needs no answer.
                let _ = waiting.reply.send(Ok(entry));
            }
        }
        Err(mut err) if err.is_retryable() || batch.len() == 1 => {
            for waiting in batch {
                let _ = waiting.reply.send(Err(err.share()));
            }
        }
        // Dropping the senders sends each read alone.
        _ => {}
    }
}
