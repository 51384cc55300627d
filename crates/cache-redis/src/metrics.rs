//! The cache's name and, with the `metrics` feature, its [`Exporter`]; without the feature
//! every call here is an empty inline function.
//!
//! Every operation is timed: a round trip costs far more than two clock reads.

use std::sync::Arc;

#[cfg(feature = "metrics")]
use cache_core::metrics::{Exporter, Publish, Timing};

use crate::{CacheError, Inner};
#[cfg(feature = "metrics")]
use crate::{CacheStats, Ordering};

/// What a `RedisCache` knows of itself for metrics: its name, and its exporter.
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
    pub(crate) fn new(name: String) -> Self {
        Self {
            exporter: Exporter::new("redis", name.as_str()),
            name: name.into(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Starts timing an operation.
    pub(crate) fn start(&self) -> Started {
        self.exporter.start()
    }

    /// Ends the operation `op`: records its time, counts its error by kind, publishes the
    /// counts if a second passed since the last publication, and starts the background
    /// publisher if none runs.
    pub(crate) fn finish(
        &self,
        inner: &Arc<Inner>,
        op: &'static str,
        started: Started,
        error: Option<&CacheError>,
    ) {
        if let Some(err) = error {
            self.exporter.count_error(err);
        }
        self.exporter.ensure_task(inner);
        self.exporter.finish(inner, op, started);
    }

    /// Publishes the counts now.
    pub(crate) fn publish(&self, inner: &Inner) {
        self.exporter.publish(inner);
    }
}

#[cfg(not(feature = "metrics"))]
impl Metrics {
    pub(crate) fn new(name: String) -> Self {
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
    pub(crate) fn finish(
        &self,
        _: &Arc<Inner>,
        _: &'static str,
        _: Started,
        _: Option<&CacheError>,
    ) {
    }
}

#[cfg(feature = "metrics")]
impl Publish for Inner {
    fn exporter(&self) -> &Exporter {
        &self.metrics.exporter
    }

    fn stats(&self) -> CacheStats {
        self.stats.snapshot()
    }

    fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }
}
