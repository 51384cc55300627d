//! A coherence check for several instances of a tiered cache over one L2: tasks write
//! versioned values (writes to one key are serialised, so L2 holds them in version order),
//! delete, and read through every instance; a read that starts more than `bound` after a
//! write or delete returned must not see anything older.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_core::Cache;
use tokio::sync::Mutex;

/// What one key went through: each acknowledged operation, with its version and when it
/// returned. Versions grow with every write or delete of the key.
#[derive(Default)]
struct History {
    /// (version, value written or `None` for a delete, when it returned)
    acked: Vec<(u64, bool, Instant)>,
    /// Operations that failed (they may still have been applied): (version, a write).
    failed: Vec<(u64, bool)>,
    next: u64,
}

/// What the check saw.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) reads: u64,
    pub(crate) writes: u64,
    /// Reads older than an operation acknowledged more than `bound` before they started.
    pub(crate) stale: u64,
    pub(crate) examples: Vec<String>,
    /// How long after a write returned each other instance first returned it (probes).
    pub(crate) delays: Vec<Duration>,
}

/// Runs `tasks` tasks for `duration` over `keys` shared keys on `instances`.
pub(crate) async fn run<C: Cache + Clone + 'static>(
    instances: Vec<C>,
    tasks: usize,
    keys: usize,
    duration: Duration,
    bound: Duration,
) -> Report {
    let histories: Arc<Vec<Mutex<History>>> =
        Arc::new((0..keys).map(|_| Mutex::new(History::default())).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let instances = Arc::new(instances);
    let mut handles = Vec::new();
    for task in 0..tasks {
        let histories = Arc::clone(&histories);
        let stop = Arc::clone(&stop);
        let instances = Arc::clone(&instances);
        handles.push(tokio::spawn(async move {
            let mut report = Report::default();
            let mut rng = 0x2545_f491_4f6c_dd1du64 ^ ((task as u64 + 1) << 17);
            while !stop.load(Ordering::Relaxed) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let k = (rng % keys as u64) as usize;
                let instance = &instances[((rng >> 20) % instances.len() as u64) as usize];
                let key = format!("coherence:{k}");
                match (rng >> 40) % 10 {
                    0 | 1 => {
                        // A write: serialised per key, so L2 holds versions in order.
                        let mut history = histories[k].lock().await;
                        history.next += 1;
                        let version = history.next;
                        let deleted = (rng >> 50).is_multiple_of(4);
                        let done = if deleted {
                            instance.delete(&key).await
                        } else {
                            instance.set(&key, &version.to_string(), None).await
                        };
                        if done.is_ok() {
                            history.acked.push((version, !deleted, Instant::now()));
                            report.writes += 1;
                        } else {
                            history.failed.push((version, !deleted));
                        }
                    }
                    _ => {
                        let started = Instant::now();
                        let Ok(value) = instance.get(&key).await else {
                            continue;
                        };
                        report.reads += 1;
                        let read: Option<u64> = value.as_deref().map(|v| v.parse().unwrap());
                        let history = histories[k].lock().await;
                        // The latest operation acknowledged `bound` before the read began.
                        let required = history
                            .acked
                            .iter()
                            .rev()
                            .find(|(_, _, at)| *at + bound <= started);
                        let Some(&(version, written, _)) = required else {
                            continue;
                        };
                        let ok = match read {
                            Some(seen) => seen >= version,
                            // Nothing: right if the required operation was a delete, or a
                            // delete came after it.
                            None => {
                                !written
                                    || history.acked.iter().any(|&(v, w, _)| v > version && !w)
                                    || history.failed.iter().any(|&(v, w)| v > version && !w)
                            }
                        };
                        if !ok {
                            report.stale += 1;
                            if report.examples.len() < 5 {
                                report.examples.push(format!(
                                    "{key}: read {read:?}, but version {version} ({}) was \
                                     acknowledged more than {bound:?} before",
                                    if written { "a write" } else { "a delete" }
                                ));
                            }
                        }
                    }
                }
            }
            report
        }));
    }
    // Probes: a write through one instance, then how long until each other one sees it.
    let probe = {
        let instances = Arc::clone(&instances);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut delays = Vec::new();
            let counter = AtomicU64::new(0);
            let mut seen: HashMap<usize, u64> = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let writer = (n as usize) % instances.len();
                // Every reader holds the old value in L1 first.
                for reader in &*instances {
                    let _ = reader.get("probe").await;
                }
                let value = n.to_string();
                if instances[writer].set("probe", &value, None).await.is_err() {
                    continue;
                }
                let written = Instant::now();
                for (i, reader) in instances.iter().enumerate() {
                    if i == writer {
                        continue;
                    }
                    loop {
                        if reader.get("probe").await.ok().flatten().as_deref() == Some(&*value) {
                            delays.push(written.elapsed());
                            *seen.entry(i).or_default() += 1;
                            break;
                        }
                        if written.elapsed() > Duration::from_secs(5) {
                            panic!("instance {i} never saw probe {n}");
                        }
                        tokio::task::yield_now().await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            delays
        })
    };
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Report::default();
    for handle in handles {
        let report = handle.await.unwrap();
        total.reads += report.reads;
        total.writes += report.writes;
        total.stale += report.stale;
        total.examples.extend(report.examples);
    }
    total.delays = probe.await.unwrap();
    total.delays.sort();
    total
}

/// The delay at `q` (0..=1) of sorted `delays`.
pub(crate) fn quantile(delays: &[Duration], q: f64) -> Duration {
    if delays.is_empty() {
        return Duration::ZERO;
    }
    let index = ((delays.len() - 1) as f64 * q).round() as usize;
    delays[index]
}
