//! A job that runs as one background task at a time: a lane's refill
//! ([`connections`](crate::connections)) and a cluster's slot-map refresh
//! ([`cluster`](crate::cluster)). The rules they share, written once here:
//! - jobs are numbered, and only the current one's outcome counts: a job that was taken over
//!   or disowned ends without effect;
//! - a job that outlives its own bound by [`STALL_MARGIN_MS`] is taken over, since the bound
//!   is enforced by a timer of the runtime that spawned it, which may no longer be driven;
//! - a job dropped unfinished (its runtime shut down) ends with an error in [`Running`]'s
//!   `Drop`, so that nobody waits for it.

/// How long past its own bound a job may run before another one takes over, in ms.
const STALL_MARGIN_MS: u64 = 1_000;

/// The bookkeeping of one kind of job, kept under its owner's lock.
#[derive(Debug)]
pub(crate) struct Job<E> {
    running: bool,
    /// The number of the running job, or of the last one.
    number: u64,
    /// When the last job started (ms on the owner's clock).
    started: Option<u64>,
    /// The error of the last job that failed, with its number; cleared by a success.
    failed: Option<(u64, E)>,
}

impl<E> Default for Job<E> {
    fn default() -> Self {
        Self {
            running: false,
            number: 0,
            started: None,
            failed: None,
        }
    }
}

/// Where a job stands at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// None runs.
    Idle,
    /// Job number `.0` runs, within its bound.
    Running(u64),
    /// A job runs past its bound: the next one takes over.
    Stalled,
}

impl<E> Job<E> {
    /// Where the job stands at `now` (ms), for a job bounded by `bound` ms.
    pub(crate) fn state(&self, now: u64, bound: u64) -> State {
        if !self.running {
            State::Idle
        } else if self.started.is_some_and(|started| {
            now.saturating_sub(started) > bound.saturating_add(STALL_MARGIN_MS)
        }) {
            State::Stalled
        } else {
            State::Running(self.number)
        }
    }

    /// Starts a job at `now` (ms), replacing a running one: its number, for [`Running::new`].
    pub(crate) fn start(&mut self, now: u64) -> u64 {
        self.running = true;
        self.number += 1;
        self.started = Some(now);
        self.number
    }

    /// When the last job started (ms).
    pub(crate) fn started(&self) -> Option<u64> {
        self.started
    }

    /// The error of the last job that failed, with its number, unless one succeeded since.
    pub(crate) fn failed(&self) -> Option<(u64, &E)> {
        self.failed.as_ref().map(|(number, err)| (*number, err))
    }

    /// Whether job `number` is the one running.
    pub(crate) fn is_current(&self, number: u64) -> bool {
        self.running && self.number == number
    }

    /// Ends job `number` with `outcome`, if it is the one running; whether it was.
    pub(crate) fn end(&mut self, number: u64, outcome: Result<(), E>) -> bool {
        if !self.is_current(number) {
            return false;
        }
        self.running = false;
        self.failed = outcome.err().map(|err| (number, err));
        true
    }

    /// Forgets the running job, whose outcome will be dropped, and the last error.
    pub(crate) fn disown(&mut self) {
        if self.running {
            self.running = false;
            self.number += 1;
        }
        self.failed = None;
    }
}

/// What owns a kind of job: its bookkeeping, and the callers that wait for it.
pub(crate) trait Host {
    type Error;
    /// Runs `f` on the job's bookkeeping, under its owner's lock.
    fn with_job<R>(&self, f: impl FnOnce(&mut Job<Self::Error>) -> R) -> R;
    /// Wakes the callers waiting for the job to end.
    fn wake(&self);
    /// The error of a job whose task was dropped before it finished.
    fn dropped() -> Self::Error;
}

/// Job `number` of `host`, made before its task is spawned, so that a task dropped unpolled
/// (spawned on a runtime that is shutting down) still ends the job.
pub(crate) struct Running<H: Host> {
    pub(crate) host: H,
    pub(crate) number: u64,
    finished: bool,
}

impl<H: Host> Running<H> {
    pub(crate) fn new(host: H, number: u64) -> Self {
        Self {
            host,
            number,
            finished: false,
        }
    }

    /// The job's outcome is in hand: from here on it ends it, and `Drop` does nothing.
    pub(crate) fn finished(&mut self) {
        self.finished = true;
    }
}

impl<H: Host> Drop for Running<H> {
    fn drop(&mut self) {
        if !self.finished {
            self.host
                .with_job(|job| job.end(self.number, Err(H::dropped())));
            self.host.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Job, State};

    #[test]
    fn only_the_current_job_ends_and_a_stalled_one_is_replaced() {
        let mut job: Job<&str> = Job::default();
        assert_eq!(job.state(0, 100), State::Idle);
        let first = job.start(0);
        assert_eq!(job.state(1_100, 100), State::Running(first));
        assert_eq!(job.state(1_101, 100), State::Stalled);
        let second = job.start(1_101);
        assert!(!job.end(first, Err("late")), "a replaced job has no effect");
        assert_eq!(job.state(1_102, 100), State::Running(second));
        assert!(job.end(second, Err("refused")));
        assert_eq!(job.failed(), Some((second, &"refused")));
        assert_eq!(job.started(), Some(1_101));
        let third = job.start(2_000);
        assert_eq!(
            job.failed(),
            Some((second, &"refused")),
            "kept until one succeeds"
        );
        assert!(job.end(third, Ok(())));
        assert_eq!(job.failed(), None);
    }

    #[test]
    fn a_disowned_job_ends_without_effect() {
        let mut job: Job<&str> = Job::default();
        let number = job.start(0);
        job.disown();
        assert_eq!(job.state(0, 100), State::Idle);
        assert!(!job.is_current(number));
        assert!(!job.end(number, Err("old master")));
        assert_eq!(job.failed(), None);
    }
}
