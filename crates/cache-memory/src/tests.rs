//! Tests of the internals: the lazy-expiry race made deterministic, and the bounds of the
//! expiry index and the eviction policy.

use std::cell::RefCell;
use std::time::Duration;

use super::*;

/// Places in the code where a test can run something of its own, to make a race happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// In `get`, after it found an expired entry and released the read lock, before it
    /// removes the entry.
    ExpiredReadBeforeRemoval,
    /// In `insert`, after the key was found missing, before the new entry is stored.
    InsertAfterMiss,
}

/// A test's code to run once at a [`Point`].
type Hook = (Point, Box<dyn FnOnce()>);

thread_local! {
    static HOOK: RefCell<Option<Hook>> = RefCell::new(None);
}

/// Runs the hook set for `point` on this thread, once.
pub(crate) fn reached(point: Point) {
    let hook = HOOK.with(|hook| {
        let mut hook = hook.borrow_mut();
        if hook.as_ref().is_some_and(|(at, _)| *at == point) {
            hook.take()
        } else {
            None
        }
    });
    if let Some((_, hook)) = hook {
        hook();
    }
}

fn set_hook(point: Point, hook: impl FnOnce() + 'static) {
    HOOK.with(|slot| *slot.borrow_mut() = Some((point, Box::new(hook))));
}

fn hook_ran() -> bool {
    HOOK.with(|slot| slot.borrow().is_none())
}

impl MemoryCache {
    /// The state of a cache built without `time_to_idle`, as these tests build it.
    fn plain(&self) -> &Arc<Inner<NoIdle>> {
        match &self.inner {
            Shared::Plain(inner) => inner,
            Shared::Idle(_) => panic!("a test of the internals built a cache with time_to_idle"),
        }
    }
}

fn run<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(fut)
}

/// A cache whose sweep never runs during a test.
fn without_sweep() -> MemoryCache {
    MemoryCache::builder()
        .sweep_interval(Duration::from_secs(3600))
        .build()
        .unwrap()
}

#[test]
fn a_set_landing_between_the_expired_read_and_its_removal_survives() {
    run(async {
        let cache = without_sweep();
        for fresh_ttl in [None, Some(Duration::from_secs(60))] {
            cache
                .set("k", "stale", Some(Duration::from_millis(1)))
                .await
                .unwrap();
            tokio::time::advance(Duration::from_millis(2)).await;
            let writer = cache.clone();
            set_hook(Point::ExpiredReadBeforeRemoval, move || {
                let expires_at = writer.plain().expires_at(fresh_ttl).unwrap();
                writer
                    .plain()
                    .insert("k", Incoming::text("fresh"), expires_at);
            });
            assert_eq!(
                cache.get("k").await.unwrap(),
                None,
                "the expired value must not be returned"
            );
            assert!(hook_ran(), "the read did not reach the removal");
            assert_eq!(
                cache.get("k").await.unwrap().as_deref(),
                Some("fresh"),
                "the read that found the expired entry removed the fresh one (ttl {fresh_ttl:?})"
            );
            assert_eq!(cache.entry_count(), 1);
        }
    });
}

#[test]
fn an_insert_that_loses_the_race_for_a_new_key_keeps_its_ttl_indexed() {
    run(async {
        let cache = MemoryCache::builder()
            .max_capacity(10)
            .sweep_interval(Duration::from_millis(10))
            .build()
            .unwrap();
        let other = cache.clone();
        set_hook(Point::InsertAfterMiss, move || {
            let expires_at = other
                .plain()
                .expires_at(Some(Duration::from_secs(3600)))
                .unwrap();
            other
                .plain()
                .insert("k", Incoming::text("first"), expires_at);
        });
        cache
            .set("k", "second", Some(Duration::from_millis(50)))
            .await
            .unwrap();
        assert!(hook_ran(), "the set did not reach its insert");
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("second"));
        assert_eq!(
            cache.entry_count(),
            1,
            "the slot reserved by the losing insert was not given back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            cache.entry_count(),
            0,
            "the sweep did not find the entry: its ttl was not indexed"
        );
    });
}

#[test]
fn a_write_after_a_miss_overwrites_the_entry_another_thread_wrote_meanwhile() {
    run(async {
        let cache = MemoryCache::builder()
            .max_capacity(3)
            .sweep_interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        for key in ["a", "b", "c"] {
            cache.set(key, key, None).await.unwrap();
        }
        assert_eq!(cache.get("k").await.unwrap(), None);
        // Another thread, whose misses are its own, writes the key between this thread's
        // miss and its write.
        let other = cache.clone();
        std::thread::spawn(move || {
            let inner = other.plain();
            inner.insert("k", Incoming::text("first"), NEVER);
        })
        .join()
        .unwrap();
        cache.set("k", "second", None).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("second"));
        let mut held = 1;
        for key in ["a", "b", "c"] {
            held += usize::from(cache.get(key).await.unwrap().is_some());
        }
        assert_eq!(
            cache.entry_count(),
            held,
            "the count and the entries held differ"
        );
        assert!(held <= 3, "the capacity was passed");
    });
}

#[test]
fn overwriting_ttl_entries_keeps_the_expiry_index_bounded() {
    run(async {
        let cache = without_sweep();
        for round in 0..200 {
            for i in 0..100 {
                cache
                    .set(
                        &format!("k{i}"),
                        &format!("{round}"),
                        Some(Duration::from_secs(300)),
                    )
                    .await
                    .unwrap();
            }
        }
        // Each overwrite pushes the expiry later: it keeps the entry's one item.
        assert_eq!(cache.plain().expiry.len(), 100);
        // Shorter TTLs bring expiries forward, each with a new item; compaction keeps at most
        // 2 x live + slack per shard.
        for round in 0..200u64 {
            for i in 0..100 {
                let ttl = Duration::from_secs(300 - round);
                cache.set(&format!("k{i}"), "v", Some(ttl)).await.unwrap();
            }
        }
        let items = cache.plain().expiry.len();
        let bound = cache.plain().expiry.shard_count() * (2 * 100 + 1024 + 1);
        assert!(
            items <= bound,
            "{items} expiry items for 100 entries (bound {bound})"
        );
    });
}

#[test]
fn an_entry_written_again_with_a_later_expiry_is_swept_at_the_later_time() {
    run(async {
        let cache = MemoryCache::builder()
            .sweep_interval(Duration::from_millis(100))
            .build()
            .unwrap();
        cache
            .set("later", "v1", Some(Duration::from_secs(1)))
            .await
            .unwrap();
        cache
            .set("later", "v2", Some(Duration::from_secs(5)))
            .await
            .unwrap();
        cache
            .set("forever", "v1", Some(Duration::from_secs(1)))
            .await
            .unwrap();
        cache.set("forever", "v2", None).await.unwrap();
        assert_eq!(
            cache.plain().expiry.len(),
            2,
            "the later writes pushed nothing"
        );

        // The items fall due: both entries stay, "later" indexed again at its expiry.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(cache.entry_count(), 2);
        assert_eq!(cache.plain().expiry.len(), 1);
        assert_eq!(cache.get("later").await.unwrap().as_deref(), Some("v2"));

        // "forever" lost its item; a TTL set on it now indexes it again.
        cache
            .set("forever", "v3", Some(Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!(cache.plain().expiry.len(), 2);

        // Both swept without a read, at their own times.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(
            cache.plain().map.len(),
            0,
            "the sweep left an expired entry"
        );
        assert_eq!(cache.plain().expiry.len(), 0);
        assert_eq!(cache.stats().expirations, 2);
    });
}

#[test]
fn delete_and_reinsert_churn_keeps_the_policy_queues_bounded() {
    run(async {
        let cache = MemoryCache::builder().max_capacity(1_000).build().unwrap();
        for round in 0..100 {
            for i in 0..200 {
                cache
                    .set(&format!("k{i}"), &format!("{round}"), None)
                    .await
                    .unwrap();
                cache.delete(&format!("k{i}")).await.unwrap();
            }
        }
        let slots = cache.plain().policy.len();
        let bound = cache.plain().policy.shard_count() * (1024 + 1);
        assert!(
            slots <= bound,
            "{slots} policy slots for 0 entries (bound {bound})"
        );
        assert_eq!(cache.entry_count(), 0);
    });
}

#[test]
fn sweep_empties_the_expiry_index_and_clear_empties_both() {
    run(async {
        let cache = MemoryCache::builder()
            .max_capacity(10_000)
            .sweep_interval(Duration::from_millis(10))
            .build()
            .unwrap();
        for i in 0..5_000 {
            cache
                .set(&format!("k{i}"), "v", Some(Duration::from_millis(50)))
                .await
                .unwrap();
        }
        assert_eq!(cache.plain().expiry.len(), 5_000);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(cache.entry_count(), 0, "the sweep left expired entries");
        assert_eq!(cache.plain().expiry.len(), 0, "the sweep left expiry items");
        for i in 0..5_000 {
            cache
                .set(&format!("k{i}"), "v", Some(Duration::from_secs(60)))
                .await
                .unwrap();
        }
        cache.clear().await.unwrap();
        assert_eq!(
            (
                cache.entry_count(),
                cache.plain().expiry.len(),
                cache.plain().policy.len()
            ),
            (0, 0, 0)
        );
    });
}

/// Polls a memory-backend future once; its operations finish on their first poll.
fn poll_ready<F: std::future::Future>(fut: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(fut).poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => {
            panic!("an in-memory operation did not finish on its first poll")
        }
    }
}

#[test]
fn alternating_ttls_with_equal_expiry_times_keep_the_expiry_index_bounded() {
    run(async {
        // On a paused clock, every other set computes the same `expires_at` again.
        let cache = without_sweep();
        for i in 0..200_000u32 {
            let ttl = Duration::from_secs(if i % 2 == 0 { 60 } else { 120 });
            cache.set("k", "v", Some(ttl)).await.unwrap();
        }
        let items = cache.plain().expiry.len();
        assert!(items <= 2 + 1024 + 1, "{items} expiry items for one entry");
    });
}

#[test]
fn a_set_racing_close_leaves_nothing_in_the_closed_cache() {
    run(async {
        let cache = MemoryCache::builder().max_capacity(10).build().unwrap();
        let other = cache.clone();
        // close() runs after the set checked that the cache is open, before its insert.
        set_hook(Point::InsertAfterMiss, move || {
            poll_ready(other.close()).unwrap()
        });
        cache
            .set("k", "v", Some(Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(hook_ran(), "the set did not reach its insert");
        assert_eq!(cache.entry_count(), 0, "an entry outlived close()");
        assert_eq!(cache.plain().map.len(), 0, "an entry outlived close()");
        assert!(matches!(cache.get("k").await, Err(CacheError::Closed)));
    });
}

/// Runs the sweep's work on every expiry shard now, without waiting for its timer.
fn sweep_now(cache: &MemoryCache) {
    for shard in 0..cache.plain().expiry.shard_count() {
        cache.plain().sweep_chunk(shard, usize::MAX);
    }
}

#[test]
fn a_stale_item_of_a_live_entry_is_dropped_not_indexed_again() {
    run(async {
        let cache = without_sweep();
        let secs = |s| Some(Duration::from_secs(s));
        cache.set("k", "v", secs(10)).await.unwrap(); // item at 10 s
        cache.set("k", "v", secs(5)).await.unwrap(); // item at 5 s; the one at 10 s is stale
        cache.set("k", "v", secs(20)).await.unwrap(); // nothing pushed
        assert_eq!(cache.plain().expiry.len(), 2);
        tokio::time::advance(Duration::from_secs(6)).await;
        sweep_now(&cache); // the 5 s item pops: indexed again at 20 s
        assert_eq!(cache.plain().expiry.len(), 2);
        tokio::time::advance(Duration::from_secs(5)).await;
        sweep_now(&cache); // the stale 10 s item pops: dropped
        assert_eq!(
            cache.plain().expiry.len(),
            1,
            "a stale item was indexed again"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        sweep_now(&cache);
        assert_eq!(
            (cache.plain().map.len(), cache.plain().expiry.len()),
            (0, 0)
        );
    });
}

#[test]
fn the_sweep_keeps_an_entry_rewritten_to_expire_just_after_its_item() {
    run(async {
        let cache = without_sweep();
        cache
            .set("k", "v1", Some(Duration::from_secs(1)))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_millis(500)).await;
        // Expires 1 µs after the item of the first write: nothing pushed.
        cache
            .set("k", "v2", Some(Duration::from_micros(500_001)))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_millis(500)).await;
        sweep_now(&cache);
        assert_eq!(cache.plain().map.len(), 1, "the sweep removed a live entry");
        tokio::time::advance(Duration::from_micros(1)).await;
        sweep_now(&cache);
        assert_eq!(
            cache.plain().map.len(),
            0,
            "the expired entry was not swept"
        );
    });
}

#[test]
fn only_caches_with_time_to_idle_give_entries_an_access_time() {
    // The map's slot is the key and the entry; `ENTRY_OVERHEAD` and the README count these.
    assert_eq!(size_of::<(Arc<str>, Entry<NoIdle>)>(), 64);
    assert_eq!(size_of::<(Arc<str>, Entry<Touched>)>(), 72);
    assert!(matches!(MemoryCache::new().inner, Shared::Plain(_)));
    let idle = MemoryCache::builder()
        .time_to_idle(Duration::from_secs(1))
        .build()
        .unwrap();
    assert!(matches!(idle.inner, Shared::Idle(_)));
}

#[test]
fn entries_found_by_a_precomputed_hash_are_dashmaps_own() {
    run(async {
        let cache = without_sweep();
        for i in 0..10_000 {
            cache.set(&format!("k{i}"), "v", None).await.unwrap();
        }
        let inner = cache.plain();
        assert_eq!(inner.hash("k1"), inner.map.hash_usize(&"k1") as u64);
        assert!(
            inner.map.get("k1").is_some(),
            "DashMap's get misses an entry"
        );
        // `delete` goes through DashMap's own `remove`; shrinking rehashes every entry with
        // DashMap's hasher. Reads by the precomputed hash still find the rest.
        for i in 0..9_990 {
            cache.delete(&format!("k{i}")).await.unwrap();
        }
        inner.map.shrink_to_fit();
        for i in 0..10_000 {
            let expected = (i >= 9_990).then_some("v");
            let found = cache.get(&format!("k{i}")).await.unwrap();
            assert_eq!(found.as_deref(), expected, "k{i}");
        }
        assert_eq!(cache.entry_count(), 10);
    });
}

#[test]
fn get_checks_bytes_of_unknown_content_whatever_the_entry_held_before() {
    run(async {
        for capacity in [None, Some(8)] {
            let mut builder = MemoryCache::builder().sweep_interval(Duration::from_secs(3600));
            if let Some(capacity) = capacity {
                builder = builder.max_capacity(capacity);
            }
            let cache = builder.build().unwrap();
            let invalid = Bytes::from_static(&[0xff, 0xfe, b'x']);
            // A string, then bytes that are not UTF-8 over it: `get` must check them.
            cache.set("k", "text", None).await.unwrap();
            cache.set_bytes("k", invalid.clone(), None).await.unwrap();
            assert!(matches!(
                cache.get("k").await,
                Err(CacheError::InvalidValue { .. })
            ));
            // And the other way round: a string over such bytes reads back as written.
            cache.set("k", "text again", None).await.unwrap();
            assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("text again"));
            // The batch writes, with a TTL (the expiry index shares the flag's word).
            cache
                .set_many(&[("m", "one")], Some(Duration::from_secs(60)))
                .await
                .unwrap();
            cache
                .set_many_bytes(&[("m", invalid.clone())], Some(Duration::from_secs(30)))
                .await
                .unwrap();
            assert!(matches!(
                cache.get_many(&["m"]).await,
                Err(CacheError::InvalidValue { .. })
            ));
            cache
                .set_many(&[("m", "two")], Some(Duration::from_secs(10)))
                .await
                .unwrap();
            assert_eq!(cache.get("m").await.unwrap().as_deref(), Some("two"));
            // Valid UTF-8 written as bytes is read as a string too, after the check.
            cache
                .set_bytes("b", Bytes::from_static("é".as_bytes()), None)
                .await
                .unwrap();
            assert_eq!(cache.get("b").await.unwrap().as_deref(), Some("é"));
        }
    });
}
