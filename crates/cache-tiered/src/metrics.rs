//! The cache's name and, with the `metrics` feature, its [`Exporter`]; without the feature
//! every call here is an empty inline function.
//!
//! Operations are timed one in [`SAMPLE_EVERY`](cache_core::metrics::SAMPLE_EVERY) per
//! thread, as on the memory backend: most reads are L1 hits of a few dozen nanoseconds.
//! Beside the metrics every backend has (labelled `backend="tiered"`), the counts of
//! [`TieredStats`](crate::TieredStats) are published as `cache_tiered_*` counters.

use std::sync::Arc;

#[cfg(feature = "metrics")]
use cache_core::metrics::{Exporter, Publish, Timing};

#[cfg(feature = "metrics")]
use crate::{Backplane, Cache, CacheStats, Ordering};
use crate::{CacheError, Inner};

/// What a `TieredCache` knows of itself for metrics: its name, and its exporter.
pub(crate) struct Metrics {
    name: Box<str>,
    #[cfg(feature = "metrics")]
    exporter: Exporter,
}

/// A started operation: its [`Timing`] with the feature, nothing without.
#[cfg(feature = "metrics")]
pub(crate) type Started = Timing;
/// A started operation: its `Timing` with the feature, nothing without.
#[cfg(not(feature = "metrics"))]
#[derive(Clone, Copy)]
pub(crate) struct Started;

#[cfg(feature = "metrics")]
impl Metrics {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            exporter: Exporter::new("tiered", name),
            name: name.into(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Starts an operation: times one in `SAMPLE_EVERY` of this thread's.
    #[inline]
    pub(crate) fn start(&self) -> Started {
        self.exporter.start_sampled()
    }

    /// Ends the operation `op`: records its time if it was timed, and now and then
    /// publishes the counts.
    #[inline]
    pub(crate) fn finish<L1, L2, B>(
        &self,
        inner: &Arc<Inner<L1, L2, B>>,
        op: &'static str,
        started: Started,
    ) where
        L1: Cache + 'static,
        L2: Cache + 'static,
        B: Backplane,
    {
        self.exporter.ensure_task(inner);
        self.exporter.finish(inner, op, started);
    }

    /// Counts a failed operation by the kind of its error.
    pub(crate) fn count_error(&self, err: &CacheError) {
        self.exporter.count_error(err);
    }

    /// Publishes the counts now.
    pub(crate) fn publish<L1, L2, B>(&self, inner: &Inner<L1, L2, B>)
    where
        L1: Cache + 'static,
        L2: Cache + 'static,
        B: Backplane,
    {
        self.exporter.publish(inner);
    }
}

#[cfg(not(feature = "metrics"))]
impl Metrics {
    pub(crate) fn new(name: &str) -> Self {
        Self { name: name.into() }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    pub(crate) fn start(&self) -> Started {
        Started
    }

    #[inline]
    pub(crate) fn finish<L1, L2, B>(&self, _: &Arc<Inner<L1, L2, B>>, _: &'static str, _: Started) {
    }

    #[inline]
    pub(crate) fn count_error(&self, _: &CacheError) {}
}

#[cfg(feature = "metrics")]
impl<L1, L2, B> Publish for Inner<L1, L2, B>
where
    L1: Cache + 'static,
    L2: Cache + 'static,
    B: Backplane,
{
    fn exporter(&self) -> &Exporter {
        &self.metrics.exporter
    }

    fn stats(&self) -> CacheStats {
        self.stats.snapshot()
    }

    fn publish_more(&self) {
        let t = self.tiered_stats();
        let (backend, name) = ("tiered", self.metrics.exporter.name().to_owned());
        for (tier, n) in [("l1", t.l1_hits), ("l2", t.l2_hits)] {
            metrics::counter!("cache_tiered_hits_total", "backend" => backend, "cache" => name.clone(), "tier" => tier)
                .absolute(n);
        }
        for (direction, n) in [
            ("sent", t.invalidations_sent),
            ("received", t.invalidations_received),
        ] {
            metrics::counter!("cache_tiered_invalidations_total", "backend" => backend, "cache" => name.clone(), "direction" => direction)
                .absolute(n);
        }
        for (metric, n) in [
            ("cache_tiered_publish_errors_total", t.publish_errors),
            ("cache_tiered_lost_clears_total", t.lost_clears),
            ("cache_tiered_stale_served_total", t.stale_served),
            ("cache_tiered_l2_soft_timeouts_total", t.l2_soft_timeouts),
            ("cache_tiered_breaker_openings_total", t.breaker_openings),
            ("cache_tiered_refreshes_total", t.refreshes),
            ("cache_tiered_refresh_errors_total", t.refresh_errors),
        ] {
            metrics::counter!(metric, "backend" => backend, "cache" => name.clone()).absolute(n);
        }
        describe();
    }

    fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }
}

/// Describes the tiered metrics; at each publication, as cache-core does its own.
#[cfg(feature = "metrics")]
fn describe() {
    use metrics::describe_counter;
    describe_counter!(
        "cache_tiered_hits_total",
        "Reads served by a tier: l1 (in process) or l2 (shared)"
    );
    describe_counter!(
        "cache_tiered_invalidations_total",
        "Invalidation messages sent to other instances, or received from them and applied"
    );
    describe_counter!(
        "cache_tiered_publish_errors_total",
        "Invalidation messages that could not be sent (the write succeeded)"
    );
    describe_counter!(
        "cache_tiered_lost_clears_total",
        "Times L1 was cleared because invalidation messages may have been lost"
    );
    describe_counter!(
        "cache_tiered_stale_served_total",
        "Reads answered from L1 (fail-safe) because L2 failed, timed out or was skipped"
    );
    describe_counter!(
        "cache_tiered_l2_soft_timeouts_total",
        "Reads of L2 given up after l2_timeout"
    );
    describe_counter!(
        "cache_tiered_breaker_openings_total",
        "Times the circuit breaker opened"
    );
    describe_counter!("cache_tiered_refreshes_total", "Eager refreshes started");
    describe_counter!(
        "cache_tiered_refresh_errors_total",
        "Eager refreshes whose loader or write failed"
    );
}
