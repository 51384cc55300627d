//! A load of versioned writes and reads for the fault tests: each task owns its keys, writes
//! increasing versions to them and checks that a read never returns a version older than one
//! it already saw acknowledged or read, nor one it never wrote.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_redis::{Cache, CacheError, RedisCache};
use tokio::task::JoinHandle;

/// What the load saw.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Calls made.
    pub(crate) calls: u64,
    /// Calls that failed, by error kind (`Timeout`, `Unavailable`, ...).
    pub(crate) errors: BTreeMap<&'static str, u64>,
    /// The full keys (namespace included) of the calls that failed.
    pub(crate) failed_keys: Vec<String>,
    /// Reads that returned a version never written (or no version at all, after one was read
    /// or acknowledged, when it went back in time too far for a lost write to explain).
    pub(crate) wrong: u64,
    /// Reads older than a version already acknowledged or read: writes lost by the server
    /// (a Sentinel failover loses the writes the old master took after the promotion).
    pub(crate) stale: u64,
    /// Examples of wrong reads.
    pub(crate) wrong_examples: Vec<String>,
    /// The longest call.
    pub(crate) longest: Duration,
}

impl Report {
    /// Calls that failed.
    pub(crate) fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Failed calls of any kind other than `Timeout` and `Unavailable`.
    pub(crate) fn unexpected_errors(&self) -> u64 {
        self.errors
            .iter()
            .filter(|(kind, _)| !matches!(**kind, "Timeout" | "Unavailable"))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Tasks running the load until [`Load::stop`].
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    /// Calls completed so far, by every task.
    pub(crate) progress: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<Report>>,
}

impl Load {
    /// Starts `tasks` tasks, each on `keys` keys of its own, named `load-<task>-<key>`.
    pub(crate) fn start(cache: &RedisCache, tasks: usize, keys: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicU64::new(0));
        let tasks = (0..tasks)
            .map(|task| {
                let cache = cache.clone();
                let stop = Arc::clone(&stop);
                let progress = Arc::clone(&progress);
                tokio::spawn(run(cache, task, keys, stop, progress))
            })
            .collect();
        Self {
            stop,
            progress,
            tasks,
        }
    }

    /// Waits until the tasks completed `calls` more calls (or `within` passed).
    pub(crate) async fn wait_for_calls(&self, calls: u64, within: Duration) -> bool {
        let target = self.progress.load(Ordering::Relaxed) + calls;
        let start = Instant::now();
        while self.progress.load(Ordering::Relaxed) < target {
            if start.elapsed() > within {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Stops the tasks and merges what they saw.
    pub(crate) async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Report::default();
        for task in self.tasks {
            let report = task.await.expect("a load task panicked");
            total.calls += report.calls;
            for (kind, n) in report.errors {
                *total.errors.entry(kind).or_default() += n;
            }
            total.failed_keys.extend(report.failed_keys);
            total.wrong += report.wrong;
            total.stale += report.stale;
            total.wrong_examples.extend(report.wrong_examples);
            total.longest = total.longest.max(report.longest);
        }
        total.wrong_examples.truncate(10);
        total
    }
}

fn kind(err: &CacheError) -> &'static str {
    match err {
        CacheError::Timeout { .. } => "Timeout",
        CacheError::Unavailable { .. } => "Unavailable",
        CacheError::Backend { .. } => "Backend",
        CacheError::Closed => "Closed",
        _ => "Other",
    }
}

async fn run(
    cache: RedisCache,
    task: usize,
    keys: usize,
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicU64>,
) -> Report {
    let mut report = Report::default();
    // Per key: the highest version sent, acknowledged, and read.
    let mut sent = vec![0u64; keys];
    let mut acked = vec![0u64; keys];
    let mut read = vec![0u64; keys];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (task as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let names: Vec<String> = (0..keys).map(|k| format!("load-{task}-{k}")).collect();
    while !stop.load(Ordering::Relaxed) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let k = (rng % keys as u64) as usize;
        let write = (rng >> 32).is_multiple_of(2);
        let started = Instant::now();
        let outcome = if write {
            let version = sent[k] + 1;
            sent[k] = version;
            let result = cache.set(&names[k], &version.to_string(), None).await;
            if result.is_ok() {
                acked[k] = version;
            }
            result.map(|_| ())
        } else {
            match cache.get(&names[k]).await {
                Ok(value) => {
                    let version = value.as_deref().map_or(Some(0), |v| v.parse::<u64>().ok());
                    let floor = acked[k].max(read[k]);
                    match version {
                        Some(v) if v >= floor && v <= sent[k] => read[k] = v,
                        Some(v) if v <= sent[k] => {
                            report.stale += 1;
                            report.wrong_examples.push(format!(
                                "{}: read {v} (stale), acknowledged {}, read before {}",
                                names[k], acked[k], read[k]
                            ));
                            read[k] = v;
                            acked[k] = v;
                        }
                        _ => {
                            report.wrong += 1;
                            report.wrong_examples.push(format!(
                                "{}: read {value:?}, acknowledged {}, read before {}, sent {}",
                                names[k], acked[k], read[k], sent[k]
                            ));
                        }
                    }
                    Ok(())
                }
                Err(err) => Err(err),
            }
        };
        report.longest = report.longest.max(started.elapsed());
        report.calls += 1;
        progress.fetch_add(1, Ordering::Relaxed);
        if let Err(err) = outcome {
            *report.errors.entry(kind(&err)).or_default() += 1;
            report
                .failed_keys
                .push(format!("{}{}", cache.namespace(), names[k]));
            if matches!(err, CacheError::Closed) {
                break;
            }
        }
    }
    report
}
