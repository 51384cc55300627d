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
    /// Moved by every opening and closing: a call's outcome counts only in the state it
    /// started in (a call that began before the breaker opened and fails after a probe
    /// closed it says nothing of L2 now).
    generation: AtomicU64,
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
    generation: u64,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, break_duration: Duration) -> Self {
        Self {
            threshold,
            break_duration,
            failures: AtomicU32::new(0),
            open: AtomicBool::new(false),
            generation: AtomicU64::new(0),
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
        let pass = |probe| Pass {
            breaker: Some(self),
            probe,
            generation: self.generation.load(Ordering::Acquire),
        };
        if !self.open.load(Ordering::Acquire) {
            return Ok(pass(false));
        }
        let mut state = self.lock();
        if !self.open.load(Ordering::Acquire) {
            return Ok(pass(false));
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
        Ok(pass(true))
    }

    /// Opens the breaker (again, after a failed probe), unless a call of `generation`
    /// finds it moved on.
    fn trip(&self, generation: u64, probe: bool) {
        let mut state = self.lock();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        let now = Instant::now();
        // A break too long for the clock is as good as forever.
        state.until = now
            .checked_add(self.break_duration)
            .unwrap_or(now + Duration::from_secs(365 * 24 * 3600));
        state.probing = false;
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.open.store(true, Ordering::Release);
        self.failures.store(0, Ordering::Relaxed);
        self.openings.fetch_add(1, Ordering::Relaxed);
        if probe {
            tracing::warn!(break_duration = ?self.break_duration, "the probe of L2 failed: the circuit breaker stays open");
        } else {
            tracing::warn!(
                break_duration = ?self.break_duration,
                "L2 failed {} times in a row: the circuit breaker skips it for a while",
                self.threshold
            );
        }
    }

    fn close(&self, generation: u64) {
        let mut state = self.lock();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        state.probing = false;
        self.generation.fetch_add(1, Ordering::AcqRel);
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
            generation: 0,
        }
    }

    /// Records how the call went: `failed` when L2 timed out or could not be reached.
    pub(crate) fn finish(mut self, failed: bool) {
        let Some(breaker) = self.breaker.take() else {
            return;
        };
        let generation = self.generation;
        if !self.probe && breaker.generation.load(Ordering::Acquire) != generation {
            // Began before the breaker last opened or closed.
            return;
        }
        match (self.probe, failed) {
            (false, false) => {
                // A load first: while all is well, nothing is written.
                if breaker.failures.load(Ordering::Relaxed) != 0 {
                    breaker.failures.store(0, Ordering::Relaxed);
                }
            }
            (false, true) => {
                if breaker.failures.fetch_add(1, Ordering::Relaxed) + 1 >= breaker.threshold {
                    breaker.trip(generation, false);
                }
            }
            (true, false) => breaker.close(generation),
            (true, true) => breaker.trip(generation, true),
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
