//! Refilling an empty lane: one background [`Job`] at a time per lane, with a back-off after
//! failures.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use deadpool::managed::{Object, PoolError};
use redis::RedisError;

use super::{Held, Shared};
use crate::job::{Host, Job, Running, State};

/// The first pause after a failed refill, in ms; it doubles with each failure in a row.
const FIRST_BACKOFF_MS: u64 = 50;
/// The longest pause between failed refills, in ms.
const MAX_BACKOFF_MS: u64 = 2_000;

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
    job: Job<RefillError>,
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
        if let (Some(waited), Some((failed, err))) = (waited, self.job.failed())
            && failed >= waited
        {
            return Next::Fail(err.clone());
        }
        match self.job.state(now, bound) {
            State::Running(number) => return Next::Wait(number),
            State::Idle if now < self.retry_at => {
                if let Some((_, err)) = self.job.failed() {
                    // Backing off: the last attempt's error, without another attempt.
                    return Next::Fail(err.clone());
                }
            }
            State::Idle | State::Stalled => {}
        }
        Next::Spawn(self.job.start(now))
    }

    /// Forgets the running refill (its outcome will be dropped) and the back-off.
    pub(super) fn disown(&mut self) {
        self.job.disown();
        self.backoff = 0;
        self.retry_at = 0;
    }

    /// Ends refill `number` at `now` (ms) with `outcome`, if it is current; whether it was.
    fn end(&mut self, number: u64, outcome: Result<(), RefillError>, now: u64) -> bool {
        let failed = outcome.is_err();
        if !self.job.end(number, outcome) {
            return false;
        }
        self.backoff = if failed {
            (self.backoff * 2).clamp(FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
        } else {
            0
        };
        self.retry_at = if failed {
            now.saturating_add(self.backoff)
        } else {
            0
        };
        true
    }
}

/// The lane a refill fills.
pub(super) struct LaneOf {
    pub(super) shared: Arc<Shared>,
    pub(super) index: usize,
}

impl Host for LaneOf {
    type Error = RefillError;

    fn with_job<R>(&self, f: impl FnOnce(&mut Job<RefillError>) -> R) -> R {
        f(&mut self.shared.lanes[self.index].lock().refills.job)
    }

    fn wake(&self) {
        self.shared.lanes[self.index].refilled.notify_waiters();
    }

    fn dropped() -> RefillError {
        RefillError::Other("the connection task was dropped; its runtime shut down")
    }
}

/// Refill `refill.number` of its lane: checks a connection out of the pool into the lane,
/// unless a newer refill took over.
pub(super) async fn run(mut refill: Running<LaneOf>) {
    let shared = Arc::clone(&refill.host.shared);
    let outcome = tokio::time::timeout(shared.refill_timeout, shared.pool.get()).await;
    refill.finished();
    let lane = &shared.lanes[refill.host.index];
    let now = shared.now_ms();
    let mut state = lane.lock();
    if !state.refills.job.is_current(refill.number) {
        // Superseded after stalling, or disowned by a reset (it may reach an old master): the
        // connection, if any, is closed rather than pooled.
        drop(state);
        if let Ok(Ok(pooled)) = outcome {
            // As `Held::detach`.
            drop(Object::take(pooled));
        }
        return;
    }
    let outcome = match outcome {
        // Checked under the lane's lock: `close` sets the flag before it empties the lanes, so
        // either it sees this connection or this sees the flag.
        Ok(Ok(_)) if shared.closed.load(Ordering::SeqCst) => Err(RefillError::Closed),
        Ok(Ok(pooled)) => {
            lane.last_reply.store(now, Ordering::Relaxed);
            state.held = Some(Held {
                pooled,
                generation: shared.next_generation.fetch_add(1, Ordering::Relaxed),
                installed: now,
            });
            Ok(())
        }
        Ok(Err(err)) => Err(RefillError::from(err)),
        Err(_elapsed) => Err(RefillError::Timeout),
    };
    state.refills.end(refill.number, outcome, now);
    drop(state);
    lane.refilled.notify_waiters();
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
