//! 64 tasks doing random operations for a few seconds, watched for deadlocks.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use cache_memory::{Cache, MemoryCache};

const TASKS: usize = 64;
const KEYS: u64 = 512;
const RUN_FOR: Duration = Duration::from_secs(3);
/// Far beyond `RUN_FOR`: reaching it means tasks stopped making progress.
const WATCHDOG: Duration = Duration::from_secs(60);

/// xorshift64*: a fixed-seed generator, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Fails the whole process if `f` does not return within [`WATCHDOG`]. A thread of its own,
/// because a deadlock inside the cache blocks the runtime's workers and with them any
/// tokio timer.
fn with_watchdog(name: &'static str, f: impl FnOnce()) {
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(WATCHDOG) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("{name}: no progress for {WATCHDOG:?}: deadlock");
            std::process::exit(101);
        }
    });
    f();
    drop(done);
    watchdog.join().unwrap();
}

fn stress(cache: MemoryCache) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (task as u64 + 1));
                    let mut ops = 0u64;
                    while start.elapsed() < RUN_FOR {
                        let key = format!("k{}", rng.next() % KEYS);
                        match rng.next() % 1000 {
                            0 => cache.clear().await.unwrap(),
                            1..=399 => {
                                if let Some(value) = cache.get(&key).await.unwrap() {
                                    assert!(
                                        value.starts_with(&format!("{key}|")),
                                        "{key} read {value:?}"
                                    );
                                }
                            }
                            400..=799 => {
                                let ttl = match rng.next() % 4 {
                                    0 => None,
                                    1 => Some(Duration::from_millis(1)),
                                    2 => Some(Duration::from_millis(20)),
                                    _ => Some(Duration::from_secs(10)),
                                };
                                cache
                                    .set(&key, &format!("{key}|{task}|{ops}"), ttl)
                                    .await
                                    .unwrap();
                            }
                            _ => cache.delete(&key).await.unwrap(),
                        }
                        ops += 1;
                        if ops.is_multiple_of(64) {
                            tokio::task::yield_now().await;
                        }
                    }
                    ops
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        assert!(total > 0);
        if let (Some(max), Some(held)) = (cache.max_bytes(), cache.weighted_size()) {
            assert!(held <= max, "{held} bytes held under a bound of {max}");
        }
        if let Some(capacity) = cache.max_capacity() {
            assert!(
                cache.entry_count() <= capacity,
                "{} entries in a cache of {capacity}",
                cache.entry_count()
            );
        }
        // Let the short TTLs pass, then read everything: the count must match what is held.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut held = 0;
        for k in 0..KEYS {
            if cache.get(&format!("k{k}")).await.unwrap().is_some() {
                held += 1;
            }
        }
        assert_eq!(
            held,
            cache.entry_count(),
            "the entry count drifted from the entries held"
        );
    });
}

#[test]
fn sixty_four_tasks_of_random_operations_on_an_unbounded_cache() {
    with_watchdog("unbounded stress", || {
        stress(
            MemoryCache::builder()
                .sweep_interval(Duration::from_millis(5))
                .build()
                .unwrap(),
        );
    });
}

#[test]
fn sixty_four_tasks_of_random_operations_on_a_bounded_cache() {
    with_watchdog("bounded stress", || {
        stress(
            MemoryCache::builder()
                .max_capacity(64)
                .sweep_interval(Duration::from_millis(5))
                .build()
                .unwrap(),
        );
    });
}

#[test]
fn sixty_four_tasks_of_random_operations_on_a_cache_bounded_in_entries_and_bytes() {
    with_watchdog("count and byte bounded stress", || {
        stress(
            MemoryCache::builder()
                .max_capacity(64)
                .max_bytes(48 * (MemoryCache::ENTRY_OVERHEAD + 16))
                .sweep_interval(Duration::from_millis(5))
                .build()
                .unwrap(),
        );
    });
}
