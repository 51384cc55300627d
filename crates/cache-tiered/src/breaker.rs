//! The circuit breaker in front of L2: after `threshold` consecutive failures it skips L2
//! for `break_duration`, then lets one call through to probe it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::CacheError;

/// A breaker's settings and state, shared by the clones of a cache.
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    break_duration: Duration,
    /// Consecutive failures while closed.
    failures: AtomicU32,
    /// Whether it is open: read without the lock, so a closed breaker costs one load.
    open: AtomicBool,
    state: Mutex<Opened>,
    openings: AtomicU64,
}

/// What an open breaker keeps.
#[derive(Debug)]
struct Opened {
    /// When the next probe may go.
    until: Instant,
    /// Whether a probe is out: the others keep skipping L2 until it comes back.
    probing: bool,
}

/// Leave to call L2, given by [`Breaker::pass`]; the outcome goes back through
/// [`Pass::finish`]. A probe dropped before it finished (its caller cancelled) lets the
/// next caller probe.
#[derive(Debug)]
pub(crate) struct Pass<'a> {
    breaker: Option<&'a Breaker>,
    probe: bool,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, break_duration: Duration) -> Self {
        Self {
            threshold,
            break_duration,
            failures: AtomicU32::new(0),
            open: AtomicBool::new(false),
            state: Mutex::new(Opened {
                until: Instant::now(),
                probing: false,
            }),
            openings: AtomicU64::new(0),
        }
    }

    /// How many times it opened.
    pub(crate) fn openings(&self) -> u64 {
        self.openings.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Opened> {
        // The state is two plain fields, valid whatever a panicking holder did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leave to call L2, or the error to give instead while the breaker is open.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] while open, except for the one caller that probes.
    pub(crate) fn pass(&self) -> Result<Pass<'_>, CacheError> {
        let closed = Pass {
            breaker: Some(self),
            probe: false,
        };
        if !self.open.load(Ordering::Acquire) {
            return Ok(closed);
        }
        let mut state = self.lock();
        if !self.open.load(Ordering::Acquire) {
            return Ok(closed);
        }
        if state.probing || Instant::now() < state.until {
            return Err(CacheError::Unavailable {
                reason: format!(
                    "L2 is skipped for {:?} after {} consecutive failures (circuit breaker open)",
                    self.break_duration, self.threshold
                ),
                source: None,
            });
        }
        state.probing = true;
        Ok(Pass {
            breaker: Some(self),
            probe: true,
        })
    }

    /// Opens the breaker (again, after a failed probe).
    fn trip(&self, probe: bool) {
        let mut state = self.lock();
        // Calls that went out before the breaker opened and fail after it do not open it
        // again.
        if self.open.load(Ordering::Acquire) && !probe {
            return;
        }
        state.until = Instant::now() + self.break_duration;
        state.probing = false;
        self.open.store(true, Ordering::Release);
        self.failures.store(0, Ordering::Relaxed);
        self.openings.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            break_duration = ?self.break_duration,
            "L2 failed {} times in a row: the circuit breaker skips it for a while",
            self.threshold
        );
    }

    fn close(&self) {
        let mut state = self.lock();
        state.probing = false;
        self.failures.store(0, Ordering::Relaxed);
        self.open.store(false, Ordering::Release);
        tracing::info!("L2 answered the probe: the circuit breaker is closed");
    }
}

impl Pass<'_> {
    /// Leave from a cache without a breaker.
    pub(crate) fn free() -> Pass<'static> {
        Pass {
            breaker: None,
            probe: false,
        }
    }

    /// Records how the call went: `failed` when L2 timed out or could not be reached.
    pub(crate) fn finish(mut self, failed: bool) {
        let Some(breaker) = self.breaker.take() else {
            return;
        };
        match (self.probe, failed) {
            (false, false) => {
                // A load first: while all is well, nothing is written.
                if breaker.failures.load(Ordering::Relaxed) != 0 {
                    breaker.failures.store(0, Ordering::Relaxed);
                }
            }
            (false, true) => {
                if breaker.failures.fetch_add(1, Ordering::Relaxed) + 1 >= breaker.threshold {
                    breaker.trip(false);
                }
            }
            (true, false) => breaker.close(),
            (true, true) => breaker.trip(true),
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if let Some(breaker) = self.breaker
            && self.probe
        {
            // Cancelled before it finished: the next caller probes.
            breaker.lock().probing = false;
        }
    }
}
