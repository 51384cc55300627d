//! The cache's name and, with the `metrics` feature, its [`Exporter`]; without the feature
//! every call here is an empty inline function.
//!
//! The counts are published by the sweep task (every `sweep_interval`, at most once a second)
//! besides the ways every backend has; the cache runs no task of its own for them.
//!
//! Operations are timed one in [`SAMPLE_EVERY`](cache_core::metrics::SAMPLE_EVERY) per
//! thread: timing every one would cost two clock reads and a histogram sample on an
//! operation of a few dozen nanoseconds.

use std::sync::Arc;

#[cfg(feature = "metrics")]
use cache_core::metrics::{Exporter, Publish, Timing};

#[cfg(feature = "metrics")]
use crate::CacheStats;
use crate::Inner;
use crate::entry::LastAccess;

/// What a `MemoryCache` knows of itself for metrics: its name, and its exporter.
pub(crate) struct Metrics {
    name: Box<str>,
    /// `None` when built with `metrics(false)`.
    #[cfg(feature = "metrics")]
    exporter: Option<Exporter>,
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
    pub(crate) fn new(name: String, enabled: bool) -> Self {
        Self {
            exporter: enabled.then(|| Exporter::new("memory", name.as_str())),
            name: name.into(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Starts an operation: times one in `SAMPLE_EVERY` of this thread's.
    #[inline]
    pub(crate) fn start(&self) -> Started {
        match &self.exporter {
            Some(exporter) => exporter.start_sampled(),
            None => Timing::NONE,
        }
    }

    /// Ends the operation `op`: records its time if it was timed, and now and then
    /// publishes the counts.
    #[inline]
    pub(crate) fn finish<A: LastAccess>(
        &self,
        inner: &Arc<Inner<A>>,
        op: &'static str,
        started: Started,
    ) {
        if let Some(exporter) = &self.exporter {
            exporter.finish(inner, op, started);
        }
    }

    /// Publishes the counts and gauges if a second passed since the last publication: from
    /// the sweep task, the cache's one background task.
    pub(crate) fn publish_if_due<A: LastAccess>(&self, inner: &Inner<A>) {
        if let Some(exporter) = &self.exporter {
            exporter.publish_if_due(inner);
        }
    }

    /// Publishes the counts and gauges now.
    pub(crate) fn publish<A: LastAccess>(&self, inner: &Inner<A>) {
        if let Some(exporter) = &self.exporter {
            exporter.publish(inner);
        }
    }
}

#[cfg(not(feature = "metrics"))]
impl Metrics {
    pub(crate) fn new(name: String, _: bool) -> Self {
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
    pub(crate) fn finish<A: LastAccess>(&self, _: &Arc<Inner<A>>, _: &'static str, _: Started) {}

    pub(crate) fn publish_if_due<A: LastAccess>(&self, _: &Inner<A>) {}
}

#[cfg(feature = "metrics")]
impl<A: LastAccess> Publish for Inner<A> {
    fn exporter(&self) -> &Exporter {
        // Only an exporter publishes, and it is in `metrics` (invariant).
        self.metrics
            .exporter
            .as_ref()
            .expect("only a cache with an exporter is published")
    }

    fn stats(&self) -> CacheStats {
        self.stats.snapshot()
    }

    fn sizes(&self) -> (Option<u64>, Option<u64>) {
        let bytes = self
            .max_bytes
            .map(|_| self.bytes.load(std::sync::atomic::Ordering::Acquire) as u64);
        (Some(self.entry_count() as u64), bytes)
    }

    fn is_open(&self) -> bool {
        !self.is_closed()
    }
}
