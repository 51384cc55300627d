//! The background sweep that reclaims expired entries nobody reads.
//!
//! One tokio task per cache, started by the first constructor or `set` that runs inside a
//! tokio runtime with timers enabled. Every `interval` it pops up to [`TICK_BUDGET`] items whose time has come
//! from the expiry index, in chunks of [`CHUNK`] per lock, yielding to the runtime between
//! chunks, and removes their entries. The task holds only a weak reference to the cache: it ends when the
//! cache is closed, when its last clone is dropped, or when its runtime shuts down (a later
//! `set` in another runtime starts a new one). While no task runs (outside tokio, or on a
//! runtime without timers), each write reclaims up to [`RECLAIM_PER_WRITE`] expired entries
//! of its own shard instead, so memory stays bounded without any background work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::Inner;
use crate::entry::LastAccess;

/// Expired entries removed per tick at most: a few milliseconds of work, so 1,000,000
/// entries expiring at once are reclaimed in 16 ticks.
pub(crate) const TICK_BUDGET: usize = 64 * 1024;
/// Items popped under one lock of an expiry shard before yielding.
pub(crate) const CHUNK: usize = 1024;
/// Expiry index items a write pops from its key's shard while no sweep task runs: more than
/// the one entry a write adds, so expired entries cannot pile up.
pub(crate) const RECLAIM_PER_WRITE: usize = 4;

/// Shared between a cache and its sweep task.
#[derive(Debug)]
pub(crate) struct SweepControl {
    interval: Duration,
    running: AtomicBool,
    stop: Notify,
}

impl SweepControl {
    pub(crate) fn new(interval: Duration) -> Arc<Self> {
        Arc::new(Self {
            interval,
            running: AtomicBool::new(false),
            stop: Notify::new(),
        })
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether a sweep task is running now.
    #[inline]
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Asks the task to end; it does so at once, or at its next wait if it is sweeping.
    pub(crate) fn stop(&self) {
        self.stop.notify_one();
    }

    /// Starts the sweep task for `inner` if none runs and the caller is inside a tokio
    /// runtime with timers. Cheap when the task already runs, and after the first call on a
    /// thread of a runtime without timers (see `cache_core::runtime`).
    #[inline]
    pub(crate) fn ensure_running<A: LastAccess>(self: &Arc<Self>, inner: &Arc<Inner<A>>) {
        if !self.is_running() {
            self.start(inner);
        }
    }

    /// [`ensure_running`](Self::ensure_running) once no task was seen running.
    #[cold]
    #[inline(never)]
    fn start<A: LastAccess>(self: &Arc<Self>, inner: &Arc<Inner<A>>) {
        if inner.is_closed() {
            return;
        }
        // Without tokio's timers the task could not wait between runs (tokio would panic):
        // writes then reclaim expired entries instead (`Inner::insert`).
        if !cache_core::runtime::tokio_drivers().is_some_and(|drivers| drivers.time) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // The guard is created here, not in the task, so that it also resets `running`
            // when the runtime drops the task before its first poll.
            handle.spawn(sweep_loop(Arc::downgrade(inner), Running(Arc::clone(self))));
        }
    }
}

/// Marks the task as not running however it ends, including when its runtime drops it.
struct Running(Arc<SweepControl>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

async fn sweep_loop<A: LastAccess>(cache: Weak<Inner<A>>, running: Running) {
    let control = &running.0;
    loop {
        tokio::select! {
            () = control.stop.notified() => return,
            () = tokio::time::sleep(control.interval) => {}
        }
        let Some(inner) = cache.upgrade() else { return };
        if inner.is_closed() {
            return;
        }
        let shards = inner.expiry_shards();
        let per_shard = (TICK_BUDGET / shards).max(1);
        for shard in 0..shards {
            let mut popped = 0;
            while popped < per_shard {
                let done = inner.sweep_chunk(shard, CHUNK.min(per_shard - popped));
                popped += done;
                if done < CHUNK {
                    break; // nothing more has expired in this shard
                }
                tokio::task::yield_now().await;
            }
        }
        inner.shrink_if_sparse();
        inner.metrics.publish_if_due(&inner);
    }
}
