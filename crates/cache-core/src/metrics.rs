//! Publishing a cache's counts through the [`metrics`](https://docs.rs/metrics) facade
//! (feature `metrics`).
//!
//! A backend already counts every operation in its [`StatsCounters`](crate::StatsCounters),
//! one uncontended atomic add each. An [`Exporter`] publishes those totals as `metrics`
//! counters ([`Counter::absolute`](metrics::Counter::absolute)) and the cache's size as
//! gauges, at most once per [`PUBLISH_INTERVAL`]: from a background task while the cache
//! lives on a tokio runtime with timers ([`Exporter::ensure_task`], or a task the backend
//! has anyway calling [`Exporter::publish_if_due`]), from an operation now and then
//! otherwise (one in 4,096 of a thread's operations on a sampling backend looks at the
//! clock), and whenever [`Exporter::publish`] is called. Operations so never touch a shared counter or a
//! recorder for their counts; what they pay is a thread-local count, and for one operation
//! in [`SAMPLE_EVERY`] (on backends that sample) two clock reads and a histogram sample.
//!
//! Counter and gauge handles are looked up through the macros at each publication, never
//! kept: a recorder installed after the cache was built gets every count from the start,
//! since each is published as its total. A thread keeps the histogram handles it records
//! into until the next publication, so a recorder installed later gets the operation times
//! from then on.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `cache_requests_total` | counter | `result` = `hit` or `miss` |
//! | `cache_sets_total`, `cache_deletes_total` | counter | |
//! | `cache_evictions_total`, `cache_rejections_total`, `cache_expirations_total` | counter | |
//! | `cache_errors_total` | counter | `kind`: [`error_kind`] of the error |
//! | `cache_timeouts_total` | counter | |
//! | `cache_entries`, `cache_weighted_size_bytes` | gauge | |
//! | `cache_operation_duration_seconds` | histogram | `op` |
//!
//! Every one also has the labels `backend` (`memory`, `redis`, `tiered`) and `cache` (the
//! name given to the builder, `"default"` unless set).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use metrics::{SharedString, Unit};

use crate::{CacheError, CacheStats};

/// How often an [`Exporter`] publishes at most, and how often its background task does.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// One operation in this many, counted per thread, is timed by
/// [`Exporter::start_sampled`].
pub const SAMPLE_EVERY: u32 = 256;

/// Operations per thread between two looks at whether a publication is due, on backends
/// that sample.
const CHECK_EVERY: u32 = 4096;

/// 2^32 divided by the golden ratio: the `n`-th operation of a thread is timed when
/// `n * GOLDEN` wraps into the lowest [`SAMPLE_EVERY`]-th of the `u32` range. Unlike `n %
/// SAMPLE_EVERY == 0`, which would time only gets of a thread that alternates a get and a
/// set, this times one in `SAMPLE_EVERY` of every period's positions alike, and still
/// exactly one in `SAMPLE_EVERY` over any long run (a Weyl sequence).
const GOLDEN: u32 = 0x9E37_79B9;

/// The kinds of [`CacheError`] counted in `cache_errors_total`, in the order of
/// [`Exporter`]'s counters.
const KINDS: [&str; 9] = [
    "invalid_ttl",
    "invalid_value",
    "too_large",
    "closed",
    "timeout",
    "unavailable",
    "backend",
    "invalid_config",
    "load",
];

/// The `kind` label of `err` in `cache_errors_total`: the variant's name in snake case
/// (`timeout`, `unavailable`, `backend`, ...).
///
/// ```
/// use std::time::Duration;
/// use cache_core::CacheError;
/// use cache_core::metrics::error_kind;
///
/// assert_eq!(error_kind(&CacheError::Timeout { after: Duration::from_secs(1) }), "timeout");
/// ```
pub fn error_kind(err: &CacheError) -> &'static str {
    KINDS[kind_index(err)]
}

fn kind_index(err: &CacheError) -> usize {
    match err {
        CacheError::InvalidTtl { .. } => 0,
        CacheError::InvalidValue { .. } => 1,
        CacheError::TooLarge { .. } => 2,
        CacheError::Closed => 3,
        CacheError::Timeout { .. } => 4,
        CacheError::Unavailable { .. } => 5,
        CacheError::Backend { .. } => 6,
        CacheError::InvalidConfig { .. } => 7,
        CacheError::Load { .. } => 8,
    }
}

/// A cache whose counts an [`Exporter`] publishes: what a backend implements on the state
/// its clones share.
pub trait Publish: Send + Sync + 'static {
    /// The cache's exporter.
    fn exporter(&self) -> &Exporter;

    /// The counts to publish, as [`Cache::stats`](crate::Cache::stats) returns them.
    fn stats(&self) -> CacheStats;

    /// The entries held and their weight in bytes, where the backend knows them.
    fn sizes(&self) -> (Option<u64>, Option<u64>) {
        (None, None)
    }

    /// Publishes the metrics of the backend's own, after the shared ones.
    fn publish_more(&self) {}

    /// Whether the cache is open: the background task ends after the first publication
    /// that finds it closed.
    fn is_open(&self) -> bool;
}

/// Publishes one cache's counts, gauges and operation times through `metrics`, labelled
/// with its backend and name; see the [module](self) documentation.
///
/// ```
/// use cache_core::metrics::Exporter;
///
/// let exporter = Exporter::new("memory", "traces");
/// assert_eq!(exporter.name(), "traces");
/// ```
pub struct Exporter {
    /// Tells this exporter's histogram handles apart in [`HANDLES`].
    id: u64,
    /// Publications so far: a thread looks its histogram handles up again after each.
    generation: AtomicU64,
    backend: &'static str,
    name: SharedString,
    born: Instant,
    /// When the last publication was, in milliseconds after `born`.
    last: AtomicU64,
    /// Whether a background task publishes.
    task: AtomicBool,
    /// Errors by kind, in the order of [`KINDS`].
    errors: [AtomicU64; KINDS.len()],
}

thread_local! {
    /// This thread's operations, for sampling and for the occasional look at the clock.
    static OPS: Cell<u32> = const { Cell::new(0) };
    /// The histogram handles this thread recorded into lately, so that a sample is not a
    /// look-up in the recorder's registry (a key built and hashed, a lock) each time.
    static HANDLES: RefCell<Vec<CachedHistogram>> = const { RefCell::new(Vec::new()) };
}

/// A histogram handle of one exporter and operation, as looked up at a generation.
struct CachedHistogram {
    exporter: u64,
    op: &'static str,
    generation: u64,
    histogram: metrics::Histogram,
}

/// The handles a thread keeps at most; past that (many caches) it starts again.
const MAX_HANDLES: usize = 64;

/// When an operation started, if it is timed; from [`Exporter::start`] or
/// [`Exporter::start_sampled`], handed back to [`Exporter::finish`].
#[derive(Debug, Clone, Copy)]
#[must_use = "hand it to Exporter::finish"]
pub struct Timing {
    started: Option<Instant>,
    /// Whether `finish` looks at whether a publication is due.
    check: bool,
}

impl Timing {
    /// An operation not timed.
    pub const NONE: Self = Self {
        started: None,
        check: false,
    };
}

impl Exporter {
    /// An exporter for a cache of `backend` (`"memory"`, `"redis"`, ...) named `name`.
    pub fn new(backend: &'static str, name: impl Into<String>) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let name: Arc<str> = Arc::from(name.into());
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            backend,
            name: SharedString::from(name),
            born: Instant::now(),
            last: AtomicU64::new(0),
            task: AtomicBool::new(false),
            errors: Default::default(),
        }
    }

    /// The `cache` label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `backend` label.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Times the operation about to run. Costs a clock read (and another in `finish`): for
    /// operations that wait on the network.
    pub fn start(&self) -> Timing {
        Timing {
            started: Some(Instant::now()),
            check: true,
        }
    }

    /// Times the operation about to run if it is one in [`SAMPLE_EVERY`] of this thread's;
    /// otherwise costs a thread-local increment and a multiplication: for operations of a
    /// few nanoseconds.
    #[inline]
    pub fn start_sampled(&self) -> Timing {
        let n = OPS.with(|ops| {
            let n = ops.get().wrapping_add(1);
            ops.set(n);
            n
        });
        let sampled = n.wrapping_mul(GOLDEN) < u32::MAX / SAMPLE_EVERY;
        Timing {
            started: if sampled { Some(Instant::now()) } else { None },
            check: n.is_multiple_of(CHECK_EVERY),
        }
    }

    /// Records the time of the operation `op` (the `op` label) that `timing` started, and
    /// now and then publishes `source`'s counts (when a publication is due).
    #[inline]
    pub fn finish<P: Publish>(&self, source: &Arc<P>, op: &'static str, timing: Timing) {
        if timing.started.is_some() || timing.check {
            self.finished(source, op, timing);
        }
    }

    #[inline(never)]
    fn finished<P: Publish>(&self, source: &Arc<P>, op: &'static str, timing: Timing) {
        let now = Instant::now();
        if let Some(started) = timing.started {
            self.record(op, now.saturating_duration_since(started).as_secs_f64());
        }
        if timing.check && self.claim(now) {
            publish_now(&**source);
        }
    }

    /// Records `seconds` in `op`'s histogram, through this thread's handle when it has a
    /// current one (looked up since the last publication), else through the macro.
    fn record(&self, op: &'static str, seconds: f64) {
        let generation = self.generation.load(Ordering::Relaxed);
        HANDLES.with(|handles| {
            let mut handles = handles.borrow_mut();
            let cached = handles
                .iter_mut()
                .find(|h| h.exporter == self.id && h.op == op);
            match cached {
                Some(h) if h.generation == generation => h.histogram.record(seconds),
                Some(h) => {
                    h.histogram = self.histogram(op);
                    h.generation = generation;
                    h.histogram.record(seconds);
                }
                None => {
                    if handles.len() >= MAX_HANDLES {
                        handles.clear();
                    }
                    let histogram = self.histogram(op);
                    histogram.record(seconds);
                    handles.push(CachedHistogram {
                        exporter: self.id,
                        op,
                        generation,
                        histogram,
                    });
                }
            }
        });
    }

    fn histogram(&self, op: &'static str) -> metrics::Histogram {
        metrics::histogram!(
            "cache_operation_duration_seconds",
            "backend" => self.backend,
            "cache" => self.name.clone(),
            "op" => op,
        )
    }

    /// Counts `err` in `cache_errors_total` under its [`error_kind`], at the next
    /// publication. One atomic add: for errors, not for every operation.
    pub fn count_error(&self, err: &CacheError) {
        self.errors[kind_index(err)].fetch_add(1, Ordering::Relaxed);
    }

    /// Publishes `source`'s counts and gauges now, whenever the last publication was.
    pub fn publish<P: Publish + ?Sized>(&self, source: &P) {
        self.last
            .store(self.millis(Instant::now()), Ordering::Relaxed);
        publish_now(source);
    }

    /// Publishes `source`'s counts and gauges if the last publication was
    /// [`PUBLISH_INTERVAL`] ago or more: for a backend's own periodic task (the memory
    /// backend's sweep).
    pub fn publish_if_due<P: Publish + ?Sized>(&self, source: &P) {
        if self.claim(Instant::now()) {
            publish_now(source);
        }
    }

    /// Marks the start of a publication: threads look their histogram handles up again,
    /// so that a recorder installed since gets the samples from now on.
    fn next_generation(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts the task that publishes `source` every [`PUBLISH_INTERVAL`], unless one runs
    /// or the caller is not on a tokio runtime with timers. The task holds a weak
    /// reference: it ends when the last clone of the cache is dropped, after publishing a
    /// closed cache once, or with its runtime (a later call on another runtime starts a new
    /// one).
    pub fn ensure_task<P: Publish>(&self, source: &Arc<P>) {
        if self.task.load(Ordering::Relaxed) {
            return;
        }
        // tokio panics on a timer without the time driver: no task there.
        if !crate::runtime::tokio_drivers().is_some_and(|drivers| drivers.time) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.task.swap(true, Ordering::AcqRel) {
            return;
        }
        let task = Task(Arc::downgrade(source));
        handle.spawn(task.run());
    }

    /// Takes the turn to publish if the last publication was [`PUBLISH_INTERVAL`] ago.
    fn claim(&self, now: Instant) -> bool {
        let now = self.millis(now);
        let last = self.last.load(Ordering::Relaxed);
        now.saturating_sub(last) >= PUBLISH_INTERVAL.as_millis() as u64
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.born).as_millis()).unwrap_or(u64::MAX)
    }
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter")
            .field("backend", &self.backend)
            .field("name", &&*self.name)
            .field("task", &self.task.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The background publisher of one cache.
struct Task<P: Publish>(Weak<P>);

impl<P: Publish> Task<P> {
    async fn run(self) {
        let mut ticks = tokio::time::interval(PUBLISH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is at once
        loop {
            ticks.tick().await;
            let Some(source) = self.0.upgrade() else {
                return;
            };
            source.exporter().publish(&*source);
            if !source.is_open() {
                return;
            }
        }
    }
}

impl<P: Publish> Drop for Task<P> {
    /// Lets a later operation start a new task: this one ended, or its runtime shut down.
    fn drop(&mut self) {
        if let Some(source) = self.0.upgrade() {
            source.exporter().task.store(false, Ordering::Release);
        }
    }
}

/// Publishes every metric of `source`.
fn publish_now<P: Publish + ?Sized>(source: &P) {
    let exporter = source.exporter();
    exporter.next_generation();
    describe();
    let (backend, name) = (exporter.backend, &exporter.name);
    let stats = source.stats();
    for (result, n) in [("hit", stats.hits), ("miss", stats.misses)] {
        metrics::counter!("cache_requests_total", "backend" => backend, "cache" => name.clone(), "result" => result)
            .absolute(n);
    }
    for (metric, n) in [
        ("cache_sets_total", stats.sets),
        ("cache_deletes_total", stats.deletes),
        ("cache_evictions_total", stats.evictions),
        ("cache_rejections_total", stats.rejections),
        ("cache_expirations_total", stats.expirations),
        ("cache_timeouts_total", stats.timeouts),
    ] {
        metrics::counter!(metric, "backend" => backend, "cache" => name.clone()).absolute(n);
    }
    for (kind, n) in KINDS.iter().zip(&exporter.errors) {
        let n = n.load(Ordering::Relaxed);
        // Only the kinds that happened: ten series of zeros would say nothing.
        if n > 0 {
            metrics::counter!("cache_errors_total", "backend" => backend, "cache" => name.clone(), "kind" => *kind)
                .absolute(n);
        }
    }
    let (entries, bytes) = source.sizes();
    if let Some(entries) = entries {
        metrics::gauge!("cache_entries", "backend" => backend, "cache" => name.clone())
            .set(entries as f64);
    }
    if let Some(bytes) = bytes {
        metrics::gauge!("cache_weighted_size_bytes", "backend" => backend, "cache" => name.clone())
            .set(bytes as f64);
    }
    source.publish_more();
}

/// Describes the metrics to the recorder; at each publication, so that a recorder installed
/// later gets the descriptions too (a recorder keeps the first description of a name).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "cache_requests_total",
        "Reads of a key, by result: hit (a live value) or miss"
    );
    describe_counter!("cache_sets_total", "Values stored");
    describe_counter!(
        "cache_deletes_total",
        "Keys deleted, whether or not they existed"
    );
    describe_counter!(
        "cache_evictions_total",
        "Entries removed to make room under a capacity bound"
    );
    describe_counter!(
        "cache_rejections_total",
        "Evictions of new keys the policy never admitted (also in cache_evictions_total)"
    );
    describe_counter!(
        "cache_expirations_total",
        "Entries removed because their TTL had passed"
    );
    describe_counter!(
        "cache_errors_total",
        "Operations that failed, by kind of error (timeouts included)"
    );
    describe_counter!(
        "cache_timeouts_total",
        "Operations that ran out of time (also in cache_errors_total)"
    );
    describe_gauge!(
        "cache_entries",
        Unit::Count,
        "Entries held, expired ones not reclaimed yet included"
    );
    describe_gauge!(
        "cache_weighted_size_bytes",
        Unit::Bytes,
        "Weight of the entries held: key and value bytes plus a fixed overhead each"
    );
    describe_histogram!(
        "cache_operation_duration_seconds",
        Unit::Seconds,
        "Time of an operation, by operation (sampled on in-process backends)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_kind_of_its_own() {
        let errors = [
            CacheError::InvalidTtl {
                ttl: Duration::ZERO,
                reason: "zero",
            },
            CacheError::Closed,
            CacheError::Timeout {
                after: Duration::from_secs(1),
            },
        ];
        let kinds: Vec<_> = errors.iter().map(error_kind).collect();
        assert_eq!(kinds, ["invalid_ttl", "closed", "timeout"]);
    }

    #[test]
    fn one_operation_in_sample_every_is_timed_whatever_the_pattern() {
        let exporter = Exporter::new("test", "default");
        let timings: Vec<bool> = (0..SAMPLE_EVERY * 1000)
            .map(|_| exporter.start_sampled().started.is_some())
            .collect();
        let timed = timings.iter().filter(|&&t| t).count();
        assert!((990..=1010).contains(&timed), "{timed}");
        // A thread alternating two operations gets both timed alike.
        let odd = timings.iter().skip(1).step_by(2).filter(|&&t| t).count();
        assert!((480..=520).contains(&odd), "{odd}");
    }

    #[test]
    fn a_publication_is_claimed_once_per_interval() {
        let exporter = Exporter::new("test", "default");
        let now = Instant::now();
        assert!(!exporter.claim(now), "published at birth");
        let later = now + PUBLISH_INTERVAL;
        assert!(exporter.claim(later));
        assert!(!exporter.claim(later));
        assert!(exporter.claim(later + PUBLISH_INTERVAL));
    }
}
