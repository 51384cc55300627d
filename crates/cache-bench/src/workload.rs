//! The throughput workload: 64 tasks doing 90% get / 10% set on 100,000 keys, for a while;
//! or on the keys of a sequence made beforehand (the tiered group's Zipf trace).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::histogram::Histogram;
use crate::rng::Rng;

/// Any error of a case: the harness stops and prints it.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The harness's result type.
pub(crate) type Result<T> = std::result::Result<T, BoxError>;

/// Keys `key:0` .. `key:99999`, all present before a round starts.
pub(crate) const KEYS: usize = 100_000;
/// Concurrent tasks, on a runtime of [`WORKERS`] threads.
pub(crate) const TASKS: usize = 64;
/// Worker threads of the tokio runtime.
pub(crate) const WORKERS: usize = 2;
/// Bytes of every value.
pub(crate) const VALUE_LEN: usize = 100;
/// The TTL of every set.
pub(crate) const TTL: Duration = Duration::from_secs(300);
/// One operation in this many is timed for the latency percentiles (reading the clock twice
/// per operation would cost a sizeable share of an in-process operation).
pub(crate) const SAMPLE_EVERY: u64 = 8;
/// A task yields to the scheduler after this many operations, so that all 64 take turns even
/// when no operation ever waits (in-process caches).
const YIELD_EVERY: u64 = 32;

/// What the workload needs of a case: get and set with the TTL. Each task works on its own
/// clone.
pub(crate) trait Store: Clone + Send + Sync + 'static {
    /// What a read returns.
    type Value: Send;
    /// Reads `key`.
    fn get(&mut self, key: &str) -> impl Future<Output = Result<Option<Self::Value>>> + Send;
    /// Writes `key` with [`TTL`].
    fn set(&mut self, key: &str, value: &str) -> impl Future<Output = Result<()>> + Send;
}

/// The share of sets the issue asks for, in percent: 90% get / 10% set.
pub(crate) const SET_PERCENT: u64 = 10;

/// The key names and the value, made once and shared by every task, so that a round measures
/// the cache and not the formatting of keys; which keys the tasks pick; and the share of sets.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    keys: Arc<[String]>,
    value: Arc<str>,
    set_percent: u64,
    /// Key numbers in access order, when the tasks follow a sequence made beforehand instead
    /// of drawing uniform keys.
    sequence: Option<Arc<[u32]>>,
}

impl Workload {
    /// Keys `key:{n}` for `n` in `0..KEYS`, one value of `VALUE_LEN` bytes, and `set_percent`
    /// sets in every 100 operations (at most 100).
    pub(crate) fn new(set_percent: u64) -> Self {
        Self {
            keys: (0..KEYS).map(|n| format!("key:{n}")).collect(),
            value: "v".repeat(VALUE_LEN).into(),
            set_percent: set_percent.min(100),
            sequence: None,
        }
    }

    /// Keys `key:{n}` for `n` in `0..keys`, picked in the order of `sequence`, each task from
    /// its own random place in it, wrapping around at the end; one value of `VALUE_LEN`
    /// bytes, and `set_percent` sets in every 100 operations (at most 100).
    ///
    /// # Errors
    /// When `sequence` is empty or names a key number of `keys` or more.
    pub(crate) fn with_sequence(keys: usize, sequence: Vec<u32>, set_percent: u64) -> Result<Self> {
        if sequence.is_empty() || sequence.iter().any(|&n| n as usize >= keys) {
            return Err(
                format!("a key sequence must be non-empty and name keys below {keys}").into(),
            );
        }
        Ok(Self {
            keys: (0..keys).map(|n| format!("key:{n}")).collect(),
            value: "v".repeat(VALUE_LEN).into(),
            set_percent: set_percent.min(100),
            sequence: Some(sequence.into()),
        })
    }

    /// Every key, in order.
    pub(crate) fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Every key, in order, shared.
    pub(crate) fn shared_keys(&self) -> Arc<[String]> {
        Arc::clone(&self.keys)
    }

    /// The value every set writes.
    pub(crate) fn value(&self) -> &str {
        &self.value
    }

    /// Where a task seeded with `rng` starts in the sequence (0 without one).
    fn start(&self, rng: &mut Rng) -> usize {
        self.sequence
            .as_ref()
            .map_or(0, |seq| (rng.next_u64() % seq.len() as u64) as usize)
    }

    /// The key of a task's next operation: drawn uniformly from `draw`, or the sequence's
    /// key at `cursor`, which moves on.
    #[inline]
    fn next_key(&self, draw: u64, cursor: &mut usize) -> &str {
        let n = match &self.sequence {
            // `KEYS` is a constant: the modulo is a multiplication, not a division.
            None => (draw % KEYS as u64) as usize,
            Some(seq) => {
                let n = seq.get(*cursor).copied().unwrap_or(0);
                *cursor = if *cursor + 1 < seq.len() {
                    *cursor + 1
                } else {
                    0
                };
                n as usize
            }
        };
        &self.keys[n]
    }
}

/// What one round of one case measured.
#[derive(Debug)]
pub(crate) struct Round {
    /// Operations completed by all tasks.
    pub(crate) ops: u64,
    /// From the start of the first task to the end of the last.
    pub(crate) elapsed: Duration,
    /// Latencies of every [`SAMPLE_EVERY`]th operation.
    pub(crate) latencies: Histogram,
}

impl Round {
    /// Throughput of the round.
    pub(crate) fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

/// Writes every key once, one task.
pub(crate) async fn populate<S: Store>(store: &S, work: &Workload) -> Result<()> {
    let mut store = store.clone();
    for key in work.keys() {
        store.set(key, work.value()).await?;
    }
    Ok(())
}

/// Runs [`TASKS`] tasks on `store` for `run_for`, each with its own random stream derived
/// from `seed`: gets, and sets in the workload's share, on keys uniform over [`KEYS`] or
/// following the workload's sequence.
pub(crate) async fn round<S: Store>(
    store: &S,
    work: &Workload,
    run_for: Duration,
    seed: u64,
) -> Result<Round> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let mut store = store.clone();
            let work = work.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut rng = Rng::for_task(seed, task);
                let mut cursor = work.start(&mut rng);
                let mut latencies = Histogram::default();
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let draw = rng.next_u64();
                    let key = work.next_key(draw, &mut cursor);
                    let timed = ops.is_multiple_of(SAMPLE_EVERY).then(Instant::now);
                    if (draw >> 40) % 100 < work.set_percent {
                        store.set(key, &work.value).await?;
                    } else {
                        std::hint::black_box(store.get(key).await?);
                    }
                    if let Some(at) = timed {
                        latencies.record(at.elapsed());
                    }
                    ops += 1;
                    if ops.is_multiple_of(YIELD_EVERY) {
                        tokio::task::yield_now().await;
                    }
                }
                Ok::<_, BoxError>((ops, latencies))
            })
        })
        .collect();
    let timer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(run_for);
            stop.store(true, Ordering::Relaxed);
        })
    };
    let mut result = Round {
        ops: 0,
        elapsed: Duration::ZERO,
        latencies: Histogram::default(),
    };
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok((ops, latencies))) => {
                result.ops += ops;
                result.latencies.merge(&latencies);
            }
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(e.into()),
        }
        // Stop the others at once on a failure.
        if failure.is_some() {
            stop.store(true, Ordering::Relaxed);
        }
    }
    result.elapsed = started.elapsed();
    if timer.join().is_err() {
        return Err("the round's timer thread panicked".into());
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_is_followed_in_order_and_wraps_around() {
        let work = Workload::with_sequence(5, vec![3, 0, 4], SET_PERCENT).expect("valid");
        let mut cursor = 1;
        let keys: Vec<&str> = (0..5).map(|_| work.next_key(0, &mut cursor)).collect();
        assert_eq!(keys, ["key:0", "key:4", "key:3", "key:0", "key:4"]);
    }

    #[test]
    fn each_task_starts_inside_the_sequence() {
        let work = Workload::with_sequence(10, vec![1; 7], SET_PERCENT).expect("valid");
        assert!((0..64).all(|task| work.start(&mut Rng::for_task(42, task)) < 7));
        assert_eq!(Workload::new(SET_PERCENT).start(&mut Rng::new(1)), 0);
    }

    #[test]
    fn a_sequence_must_name_existing_keys() {
        assert!(Workload::with_sequence(5, vec![5], SET_PERCENT).is_err());
        assert!(Workload::with_sequence(5, Vec::new(), SET_PERCENT).is_err());
    }

    #[test]
    fn uniform_keys_stay_among_the_keys() {
        let work = Workload::new(SET_PERCENT);
        let mut cursor = 0;
        assert_eq!(work.next_key(KEYS as u64 + 7, &mut cursor), "key:7");
    }
}
