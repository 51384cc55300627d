//! Refilling an empty lane: one background task at a time per lane, with a back-off after
//! failures, taken over when it stalls.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use deadpool::managed::{Object, PoolError};
use redis::RedisError;

use super::{Held, Shared};

/// The first pause after a failed refill, in ms; it doubles with each failure in a row.
const FIRST_BACKOFF_MS: u64 = 50;
/// The longest pause between failed refills, in ms.
const MAX_BACKOFF_MS: u64 = 2_000;
/// How long past its own bound a refill may run before another one takes over, in ms: the
/// bound is enforced by a timer of the runtime that spawned it, which may no longer be driven.
const STALL_MARGIN_MS: u64 = 1_000;

/// Why a lane could not be refilled; cloned to every operation that waited for the refill.
#[derive(Debug, Clone)]
pub(crate) enum RefillError {
    /// Connecting or the pool's health check failed.
    Redis(RedisError),
    /// The refill did not finish within its bound.
    Timeout,
    /// The cache was closed.
    Closed,
    /// Anything else, such as the runtime shutting down under the refill.
    Other(&'static str),
}

/// A lane's refill bookkeeping, kept under the lane's lock.
#[derive(Debug, Default)]
pub(super) struct Refills {
    /// Whether refill number `number` runs now.
    running: bool,
    /// The number of the refill running, or of the last one.
    number: u64,
    /// When the running refill started (ms).
    started: u64,
    /// The error of the last refill that failed, with its number; cleared by a success.
    failed: Option<(u64, RefillError)>,
    /// No new refill before this time (ms) after a failure, unless one stalled.
    retry_at: u64,
    /// The current pause after a failure (ms); 0 after a success.
    backoff: u64,
}

/// What an operation on an empty lane does next.
pub(super) enum Next {
    /// Fail with this error now.
    Fail(RefillError),
    /// Spawn refill `number`, then wait for it.
    Spawn(u64),
    /// Wait for refill `number`, already running.
    Wait(u64),
}

impl Refills {
    /// Decides for an operation at `now` (ms) that found the lane empty and that already waited
    /// for refill `waited`, if any. `bound` is a refill's own time bound (ms).
    pub(super) fn next(&mut self, now: u64, waited: Option<u64>, bound: u64) -> Next {
        if let (Some(waited), Some((failed, err))) = (waited, &self.failed)
            && *failed >= waited
        {
            return Next::Fail(err.clone());
        }
        let stalled = self.running
            && now.saturating_sub(self.started) > bound.saturating_add(STALL_MARGIN_MS);
        if self.running && !stalled {
            return Next::Wait(self.number);
        }
        if !stalled
            && now < self.retry_at
            && let Some((_, err)) = &self.failed
        {
            // Backing off: the last attempt's error, without another connection attempt.
            return Next::Fail(err.clone());
        }
        self.running = true;
        self.number += 1;
        self.started = now;
        Next::Spawn(self.number)
    }

    /// Forgets the running refill (its outcome will be dropped) and the back-off.
    pub(super) fn disown(&mut self) {
        if self.running {
            self.running = false;
            self.number += 1;
        }
        self.failed = None;
        self.backoff = 0;
        self.retry_at = 0;
    }

    fn is_current(&self, number: u64) -> bool {
        self.running && self.number == number
    }

    fn succeeded(&mut self) {
        self.running = false;
        self.failed = None;
        self.backoff = 0;
        self.retry_at = 0;
    }

    fn failed(&mut self, number: u64, err: RefillError, now: u64) {
        self.running = false;
        self.backoff = (self.backoff * 2).clamp(FIRST_BACKOFF_MS, MAX_BACKOFF_MS);
        self.retry_at = now.saturating_add(self.backoff);
        self.failed = Some((number, err));
    }
}

/// Refill `number` of lane `index`; made before the task is spawned, so that a task dropped
/// unpolled (spawned on a runtime that is shutting down) still ends the refill.
pub(super) struct RefillTask {
    shared: Arc<Shared>,
    index: usize,
    number: u64,
    done: bool,
}

impl RefillTask {
    pub(super) fn new(shared: Arc<Shared>, index: usize, number: u64) -> Self {
        Self {
            shared,
            index,
            number,
            done: false,
        }
    }

    /// Checks a connection out of the pool into the lane, unless a newer refill took over.
    pub(super) async fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        let outcome = tokio::time::timeout(shared.refill_timeout, shared.pool.get()).await;
        self.done = true;
        let lane = &shared.lanes[self.index];
        let now = shared.now_ms();
        let mut state = lane.lock();
        if !state.refills.is_current(self.number) {
            // Superseded after stalling, or disowned by a reset (it may reach an old master):
            // the connection, if any, is closed rather than pooled.
            drop(state);
            if let Ok(Ok(pooled)) = outcome {
                drop(Object::take(pooled));
            }
            return;
        }
        match outcome {
            Ok(Ok(pooled)) => {
                // Checked under the lane's lock: `close` sets the flag before it empties the
                // lanes, so either it sees this connection or this sees the flag.
                if shared.closed.load(Ordering::SeqCst) {
                    state.refills.failed(self.number, RefillError::Closed, now);
                } else {
                    lane.last_reply.store(now, Ordering::Relaxed);
                    state.held = Some(Held {
                        pooled,
                        generation: shared.next_generation.fetch_add(1, Ordering::Relaxed),
                        installed: now,
                    });
                    state.refills.succeeded();
                }
            }
            Ok(Err(err)) => state
                .refills
                .failed(self.number, RefillError::from(err), now),
            Err(_elapsed) => state.refills.failed(self.number, RefillError::Timeout, now),
        }
        drop(state);
        lane.refilled.notify_waiters();
    }
}

impl Drop for RefillTask {
    /// Ends a refill dropped before it finished (its runtime shut down), so the lane does not
    /// wait for it; the operations that waited get an error and the next one starts anew.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let lane = &self.shared.lanes[self.index];
        {
            let mut state = lane.lock();
            if state.refills.is_current(self.number) {
                state.refills.running = false;
                state.refills.failed = Some((
                    self.number,
                    RefillError::Other("the connection task was dropped; its runtime shut down"),
                ));
            }
        }
        lane.refilled.notify_waiters();
    }
}

impl From<PoolError<RedisError>> for RefillError {
    fn from(err: PoolError<RedisError>) -> Self {
        match err {
            PoolError::Backend(err) => Self::Redis(err),
            PoolError::Timeout(_) => Self::Timeout,
            PoolError::Closed => Self::Closed,
            PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
                Self::Other("the connection pool failed")
            }
        }
    }
}

/// A refill's own time bound in whole milliseconds.
pub(super) fn bound_ms(bound: Duration) -> u64 {
    u64::try_from(bound.as_millis()).unwrap_or(u64::MAX)
}
