//! Reads that miss L1 at the same time share L2 round trips, and a read that stops waiting
//! (the one reading alone, or a queued one) leaves the others their answer.
//!
//! Deterministic, without timing: the tests run on one thread, and L2 holds every read at a
//! gate until the test opens it. A reader that counted itself in has run until it waits
//! (at the gate, if it reads alone, or in the queue).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::testkit::WATCHDOG;
use cache_memory::MemoryCache;
use cache_tiered::{Bytes, Cache, Result, TieredCache, Ttl};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A memory L2 whose reads wait until the test opens the gate, and that records them.
#[derive(Clone)]
struct Gated {
    cache: MemoryCache,
    /// Open: reads of one key pass.
    alone_gate: watch::Sender<bool>,
    /// Open: batches pass.
    batch_gate: watch::Sender<bool>,
    calls: Arc<Mutex<Calls>>,
}

/// The reads L2 was asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Calls {
    /// Keys read alone, in order.
    alone: Vec<String>,
    /// Sizes of the batches, in order.
    batches: Vec<usize>,
}

impl Gated {
    fn new() -> Self {
        Self {
            cache: MemoryCache::new(),
            alone_gate: watch::Sender::new(false),
            batch_gate: watch::Sender::new(false),
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> Calls {
        self.calls.lock().unwrap().clone()
    }

    fn set_open(&self, open: bool) {
        self.alone_gate.send_replace(open);
        self.batch_gate.send_replace(open);
    }

    async fn pass(gate: &watch::Sender<bool>) {
        gate.subscribe().wait_for(|open| *open).await.unwrap();
    }
}

impl Cache for Gated {
    async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>> {
        Self::pass(&self.alone_gate).await;
        self.cache.get_bytes(key).await
    }

    async fn set_bytes(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.cache.set_bytes(key, value, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.cache.delete(key).await
    }

    async fn clear(&self) -> Result<()> {
        self.cache.clear().await
    }

    async fn close(&self) -> Result<()> {
        self.cache.close().await
    }

    async fn get_bytes_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Ttl)>> {
        self.calls.lock().unwrap().alone.push(key.to_owned());
        Self::pass(&self.alone_gate).await;
        self.cache.get_bytes_with_ttl(key).await
    }

    async fn get_many_bytes_with_ttl<K>(&self, keys: &[K]) -> Result<Vec<Option<(Bytes, Ttl)>>>
    where
        K: AsRef<str> + Sync,
    {
        self.calls.lock().unwrap().batches.push(keys.len());
        Self::pass(&self.batch_gate).await;
        self.cache.get_many_bytes_with_ttl(keys).await
    }
}

type Tiered = TieredCache<MemoryCache, Gated>;

/// L2 with `k0` .. `k{n-1}` (values `v0` ..), L1 empty, the gate shut; two L2 reads in
/// flight.
async fn tiers(n: usize) -> (Gated, Tiered) {
    let l2 = Gated::new();
    for i in 0..n {
        l2.cache
            .set(&format!("k{i}"), &format!("v{i}"), None)
            .await
            .unwrap();
    }
    let cache = TieredCache::builder(MemoryCache::new(), l2.clone())
        .l2_reads_in_flight(2)
        .build()
        .unwrap();
    (l2, cache)
}

/// Starts a reader of each of `keys` and returns once every one waits on L2.
async fn readers(cache: &Tiered, keys: &[String]) -> Vec<JoinHandle<Result<Option<String>>>> {
    let arrived = Arc::new(AtomicUsize::new(0));
    let readers = keys
        .iter()
        .map(|key| {
            let (cache, key, arrived) = (cache.clone(), key.clone(), Arc::clone(&arrived));
            tokio::spawn(async move {
                arrived.fetch_add(1, Ordering::SeqCst);
                cache.get(&key).await
            })
        })
        .collect();
    while arrived.load(Ordering::SeqCst) < keys.len() {
        tokio::task::yield_now().await;
    }
    readers
}

/// The readers of `keys` (with their index), split into those that read alone (at L2's gate)
/// and those queued.
fn by_place(l2: &Gated, keys: &[String], readers: Vec<Reader>) -> (Placed, Placed) {
    let alone = l2.calls().alone;
    readers
        .into_iter()
        .enumerate()
        .partition(|(i, _)| alone.contains(&keys[*i]))
}

type Reader = JoinHandle<Result<Option<String>>>;
type Placed = Vec<(usize, Reader)>;

fn keys(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("k{i}")).collect()
}

/// Checks that both reads in flight are free again: a new wave of misses has two reads
/// alone and the rest in one batch.
async fn slots_are_free(l2: &Gated, cache: &Tiered, wave: std::ops::Range<usize>) {
    l2.set_open(false);
    let before = l2.calls();
    let keys = keys(wave.clone());
    let readers = readers(cache, &keys).await;
    let during = l2.calls();
    assert_eq!(
        during.alone.len() - before.alone.len(),
        2,
        "two reads go alone: {during:?}"
    );
    l2.set_open(true);
    for (reader, i) in readers.into_iter().zip(wave) {
        assert_eq!(reader.await.unwrap().unwrap(), Some(format!("v{i}")));
    }
    let after = l2.calls();
    assert_eq!(
        after.batches[before.batches.len()..],
        [keys.len() - 2],
        "{after:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_misses_share_l2_round_trips_and_fill_l1() {
    tokio::time::timeout(WATCHDOG, async {
        let (l2, cache) = tiers(64).await;
        let keys = keys(0..64);
        let readers = readers(&cache, &keys).await;
        // Two reads in flight, alone; the other 62 queued behind them.
        assert_eq!(l2.calls().alone.len(), 2);
        assert!(l2.calls().batches.is_empty());
        l2.set_open(true);
        for (i, reader) in readers.into_iter().enumerate() {
            assert_eq!(reader.await.unwrap().unwrap(), Some(format!("v{i}")));
        }
        // 64 misses, 3 calls: two alone, one batch of the 62 that queued.
        let calls = l2.calls();
        assert_eq!((calls.alone.len(), calls.batches), (2, vec![62]));
        let stats = cache.tiered_stats();
        assert_eq!((stats.l2_hits, stats.misses), (64, 0));
        // Every value read from L2, alone or batched, is now in L1.
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(
                cache.l1().get(key).await.unwrap(),
                Some(format!("v{i}")),
                "{key}"
            );
        }
        // A read with nothing in flight goes alone, at once.
        l2.cache.set("alone", "a", None).await.unwrap();
        assert_eq!(cache.get("alone").await.unwrap().as_deref(), Some("a"));
        assert_eq!(l2.calls().alone.len(), 3);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn cancelled_reads_that_went_alone_hand_the_queue_on() {
    tokio::time::timeout(WATCHDOG, async {
        let (l2, cache) = tiers(128).await;
        let keys = keys(0..64);
        let mut readers = readers(&cache, &keys).await;
        // Cancel the two reads that went alone, while they wait on L2.
        let alone = l2.calls().alone;
        assert_eq!(alone.len(), 2);
        let mut cancelled = Vec::new();
        for key in &alone {
            let i = keys.iter().position(|k| k == key).unwrap();
            readers[i].abort();
            cancelled.push(i);
        }
        for &i in &cancelled {
            assert!(
                (&mut readers[i]).await.unwrap_err().is_cancelled(),
                "reader {i}"
            );
        }
        // The queue went on without them: one batch of the 62.
        l2.set_open(true);
        for (i, reader) in readers.into_iter().enumerate() {
            if !cancelled.contains(&i) {
                assert_eq!(reader.await.unwrap().unwrap(), Some(format!("v{i}")));
            }
        }
        assert_eq!(l2.calls().batches, [62]);
        slots_are_free(&l2, &cache, 64..128).await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn cancelled_queued_reads_leave_the_others_their_answer() {
    tokio::time::timeout(WATCHDOG, async {
        let (l2, cache) = tiers(128).await;
        let keys = keys(0..64);
        let (mut kept, queued) = by_place(&l2, &keys, readers(&cache, &keys).await);
        // Cancel every third queued read before its batch is sent.
        for (n, (i, reader)) in queued.into_iter().enumerate() {
            if n % 3 == 2 {
                reader.abort();
                assert!(reader.await.unwrap_err().is_cancelled());
            } else {
                kept.push((i, reader));
            }
        }
        l2.set_open(true);
        for (i, reader) in kept.iter_mut() {
            assert_eq!(reader.await.unwrap().unwrap(), Some(format!("v{i}")));
        }
        // The batch carried only the reads still waiting.
        assert_eq!(l2.calls().batches, [kept.len() - 2]);
        slots_are_free(&l2, &cache, 64..128).await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn reads_cancelled_inside_a_batch_leave_the_others_their_answer() {
    tokio::time::timeout(WATCHDOG, async {
        let (l2, cache) = tiers(128).await;
        let keys = keys(0..64);
        let (first, queued) = by_place(&l2, &keys, readers(&cache, &keys).await);
        // Let the two alone finish: the queued reads go out as one batch, held at the gate.
        l2.alone_gate.send_replace(true);
        for (i, reader) in first {
            assert_eq!(reader.await.unwrap().unwrap(), Some(format!("v{i}")));
        }
        assert_eq!(l2.calls().batches, [62], "the batch waits on L2");
        // Cancel half of the batch while it waits on L2.
        let (cancel, keep): (Vec<_>, Vec<_>) = queued.into_iter().partition(|(i, _)| i % 2 == 0);
        for (_, reader) in cancel {
            reader.abort();
            assert!(reader.await.unwrap_err().is_cancelled());
        }
        l2.set_open(true);
        for (i, reader) in keep {
            assert_eq!(reader.await.unwrap().unwrap(), Some(format!("v{i}")));
        }
        assert_eq!(l2.calls().batches, [62]);
        slots_are_free(&l2, &cache, 64..128).await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn by_default_every_miss_reads_l2_alone() {
    tokio::time::timeout(WATCHDOG, async {
        let l2 = Gated::new();
        for i in 0..16 {
            l2.cache
                .set(&format!("k{i}"), &format!("v{i}"), None)
                .await
                .unwrap();
        }
        let cache = TieredCache::builder(MemoryCache::new(), l2.clone())
            .build()
            .unwrap();
        let keys = keys(0..16);
        let readers = readers(&cache, &keys).await;
        // All 16 wait at L2's gate at once: none queued behind another.
        assert_eq!(l2.calls().alone.len(), 16);
        l2.set_open(true);
        for (i, reader) in readers.into_iter().enumerate() {
            assert_eq!(reader.await.unwrap().unwrap(), Some(format!("v{i}")));
        }
        assert!(l2.calls().batches.is_empty());
        assert_eq!(cache.tiered_stats().l2_batches, 0);
    })
    .await
    .unwrap();
}
