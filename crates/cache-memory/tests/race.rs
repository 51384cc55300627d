//! Lazy expiry on read must not race a concurrent `set` of the same key.

use std::hint::spin_loop;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_memory::{Cache, MemoryCache};

const KEYS: usize = 5_000;
const BATCHES: usize = 4;

/// Two threads meeting at every step, so that their next operations start within
/// nanoseconds of each other (a tokio barrier or a condvar wakes too late to race); a thread
/// that waits long yields its core.
struct SpinBarrier {
    arrived: [AtomicUsize; 2],
}

impl SpinBarrier {
    fn wait(&self, me: usize, step: usize) {
        self.arrived[me].store(step, Ordering::Release);
        let mut spins = 0_u32;
        while self.arrived[1 - me].load(Ordering::Acquire) < step {
            spins += 1;
            if spins < 1_000 {
                spin_loop();
            } else {
                // The other thread is not running (a loaded machine, or one core for both):
                // give it the core instead of spinning out the time slice.
                std::thread::yield_now();
            }
        }
    }
}

fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(fut)
}

/// A reader finds each key's entry expired and removes it at the very moment a writer
/// stores a fresh value without TTL. A removal that does not re-check the entry under the
/// shard's write lock loses some of those fresh values.
#[test]
fn a_read_that_finds_an_expired_entry_never_removes_a_fresh_value() {
    // A sweep task that never runs in the test's time, kept alive on a runtime of its own:
    // only the reads may remove the expired entries (while no sweep task exists, writes
    // would reclaim them too).
    let keeper = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let cache = keeper.block_on(async {
        MemoryCache::builder()
            .sweep_interval(Duration::from_secs(24 * 3600))
            .build()
            .unwrap()
    });
    let key = |batch: usize, i: usize| format!("race:{batch}:{i}");
    for batch in 0..BATCHES {
        block_on(async {
            for i in 0..KEYS {
                cache
                    .set(&key(batch, i), "stale", Some(Duration::from_millis(1)))
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        });
        let barrier = Arc::new(SpinBarrier {
            arrived: [AtomicUsize::new(0), AtomicUsize::new(0)],
        });
        let reader = {
            let (cache, barrier) = (cache.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                block_on(async {
                    for i in 0..KEYS {
                        barrier.wait(0, i + 1);
                        let got = cache.get(&key(batch, i)).await.unwrap();
                        assert_ne!(
                            got.as_deref(),
                            Some("stale"),
                            "an expired value was returned"
                        );
                    }
                });
            })
        };
        block_on(async {
            for i in 0..KEYS {
                barrier.wait(1, i + 1);
                cache.set(&key(batch, i), "fresh", None).await.unwrap();
            }
        });
        reader.join().unwrap();
        let lost = block_on(async {
            let mut lost = 0;
            for i in 0..KEYS {
                if cache.get(&key(batch, i)).await.unwrap().as_deref() != Some("fresh") {
                    lost += 1;
                }
            }
            lost
        });
        assert_eq!(
            lost, 0,
            "batch {batch}: {lost} fresh values were removed by reads that found the expired ones"
        );
        assert_eq!(
            cache.entry_count(),
            (batch + 1) * KEYS,
            "the entry count drifted"
        );
    }
}
