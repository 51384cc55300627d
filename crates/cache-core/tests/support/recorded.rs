//! Reading what a `metrics_util` debugging recorder holds, for the metrics tests of every
//! backend (each includes this file with `#[path]`).

use metrics_util::debugging::{DebugValue, Snapshotter};

/// What a recorder holds, read once (the debugging recorder's snapshot takes its counters
/// and gauges back to zero).
pub(crate) struct Recorded(pub(crate) Vec<(String, Labels, DebugValue)>);

/// A metric's labels, as (key, value).
pub(crate) type Labels = Vec<(String, String)>;

impl Recorded {
    pub(crate) fn take(snapshotter: &Snapshotter) -> Self {
        Self(
            snapshotter
                .snapshot()
                .into_vec()
                .into_iter()
                .map(|(key, _, _, value)| {
                    let (_, key) = key.into_parts();
                    let labels = key
                        .labels()
                        .map(|l| (l.key().to_owned(), l.value().to_owned()))
                        .collect();
                    (key.name().to_owned(), labels, value)
                })
                .collect(),
        )
    }

    /// The value of the metric `name` whose labels include `labels`.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        self.0
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|&(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, value)| value)
    }

    pub(crate) fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.value(name, labels) {
            Some(DebugValue::Counter(n)) => *n,
            other => panic!("{name} {labels:?}: {other:?} in {:#?}", self.0),
        }
    }

    pub(crate) fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.value(name, labels) {
            Some(DebugValue::Gauge(n)) => n.0,
            other => panic!("{name} {labels:?}: {other:?} in {:#?}", self.0),
        }
    }

    pub(crate) fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        match self.value(name, labels) {
            Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.0).collect(),
            other => panic!("{name} {labels:?}: {other:?} in {:#?}", self.0),
        }
    }
}
