//! Random operation sequences against a plain `HashMap` model, on tokio's paused clock so
//! that expiry is exact and every case replays. The model knows when each entry expires and
//! how long `keep_expired_for` keeps it, so stale reads are checked as exactly as live ones.

use std::collections::HashMap;
use std::time::Duration;

use cache_memory::{Cache, CacheError, MemoryCache};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    /// `get_stale_bytes`.
    GetStale(u8),
    Set(u8, u16, Option<u64>),
    Delete(u8),
    Clear,
    /// Moves tokio's paused clock forward by this many milliseconds.
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..8;
    // TTLs in ms; 0 must be rejected with nothing changed.
    let ttl = prop_oneof![Just(None), (0u64..120).prop_map(Some)];
    prop_oneof![
        4 => key.clone().prop_map(Op::Get),
        3 => key.clone().prop_map(Op::GetStale),
        4 => (key.clone(), any::<u16>(), ttl).prop_map(|(k, v, t)| Op::Set(k, v, t)),
        2 => key.prop_map(Op::Delete),
        1 => Just(Op::Clear),
        2 => (0u64..150).prop_map(Op::Advance),
    ]
}

/// Key -> (value, expiry in ms on the model's clock, last read or write in ms).
type Model = HashMap<String, (String, Option<u64>, u64)>;

/// The value of `key` if live at `now` in a cache whose entries idle out after `idle` ms.
fn live<'m>(model: &'m Model, key: &str, now: u64, idle: Option<u64>) -> Option<&'m str> {
    stale(model, key, now, idle, 0).map(|(value, _)| value)
}

/// The value of `key` and how many ms ago it expired (0 if live), if a cache that keeps
/// expired entries for `keep` ms still holds it at `now`.
fn stale<'m>(
    model: &'m Model,
    key: &str,
    now: u64,
    idle: Option<u64>,
    keep: u64,
) -> Option<(&'m str, u64)> {
    let (value, expires, touched) = model.get(key)?;
    let deadline = match (expires, idle) {
        (None, None) => return Some((value, 0)),
        (Some(at), None) => *at,
        (None, Some(idle)) => touched + idle,
        (Some(at), Some(idle)) => (*at).min(touched + idle),
    };
    if now < deadline {
        Some((value, 0))
    } else {
        (now - deadline < keep).then_some((value, now - deadline))
    }
}

/// How the cache under test is configured, as the model needs to know it.
#[derive(Debug, Clone, Copy, Default)]
struct Setup {
    /// The cache may have evicted what the model holds, but must never return a value the
    /// model does not hold.
    bounded: bool,
    /// `time_to_idle` in ms.
    idle: Option<u64>,
    /// `keep_expired_for` in ms.
    keep: u64,
}

/// Runs `ops` on `cache` and the model.
async fn check(cache: MemoryCache, ops: Vec<Op>, setup: Setup) -> Result<(), TestCaseError> {
    let Setup {
        bounded,
        idle,
        keep,
    } = setup;
    prop_assert_eq!(cache.stale_retention(), Duration::from_millis(keep));
    let mut model = Model::new();
    let mut now = 0u64;
    for op in ops {
        match op {
            Op::Get(k) => {
                let key = format!("k{k}");
                let got = cache.get(&key).await.unwrap();
                let expected = live(&model, &key, now, idle).map(str::to_owned);
                let expected = expected.as_deref();
                if got.is_some()
                    && let Some(entry) = model.get_mut(&key)
                {
                    entry.2 = now;
                }
                if bounded {
                    prop_assert!(
                        got.is_none() || got.as_deref() == expected,
                        "{key}: got {got:?}, model {expected:?}"
                    );
                } else {
                    prop_assert_eq!(got.as_deref(), expected, "{}", key);
                }
            }
            Op::GetStale(k) => {
                let key = format!("k{k}");
                let got = cache
                    .get_stale_bytes(&key)
                    .await
                    .unwrap()
                    .map(|(value, ago)| {
                        (String::from_utf8(value.to_vec()).unwrap(), ago.as_millis())
                    });
                let expected = stale(&model, &key, now, idle, keep)
                    .map(|(value, ago)| (value.to_owned(), u128::from(ago)));
                // Only a live entry's read renews its idle time.
                if got.is_some()
                    && live(&model, &key, now, idle).is_some()
                    && let Some(entry) = model.get_mut(&key)
                {
                    entry.2 = now;
                }
                if bounded {
                    prop_assert!(
                        got.is_none() || got == expected,
                        "{key}: stale read {got:?}, model {expected:?}"
                    );
                } else {
                    prop_assert_eq!(got, expected, "stale read of {}", key);
                }
            }
            Op::Set(k, v, ttl) => {
                let key = format!("k{k}");
                let result = cache
                    .set(&key, &v.to_string(), ttl.map(Duration::from_millis))
                    .await;
                if ttl == Some(0) {
                    prop_assert!(
                        matches!(result, Err(CacheError::InvalidTtl { .. })),
                        "{result:?}"
                    );
                } else {
                    prop_assert!(result.is_ok(), "{result:?}");
                    // A set always stores, bounded or not: the next get of the key hits.
                    let got = cache.get(&key).await.unwrap();
                    prop_assert_eq!(got, Some(v.to_string()), "{} right after its set", key);
                    model.insert(key, (v.to_string(), ttl.map(|t| now + t), now));
                }
            }
            Op::Delete(k) => {
                let key = format!("k{k}");
                cache.delete(&key).await.unwrap();
                model.remove(&key);
            }
            Op::Clear => {
                cache.clear().await.unwrap();
                model.clear();
            }
            Op::Advance(ms) => {
                tokio::time::advance(Duration::from_millis(ms)).await;
                now += ms;
            }
        }
        let held_in_model = model
            .keys()
            .filter(|k| stale(&model, k, now, idle, keep).is_some())
            .count();
        if let (Some(max), Some(held)) = (cache.max_bytes(), cache.weighted_size()) {
            prop_assert!(held <= max, "{} bytes held under a bound of {}", held, max);
        }
        if let Some(capacity) = cache.max_capacity() {
            prop_assert!(cache.entry_count() <= capacity);
        } else if cache.max_bytes().is_some() {
            // Evicted entries may be missing; the bound is checked above.
        } else {
            // Expired entries may wait for a read or the sweep; live and kept ones never go
            // missing.
            prop_assert!(cache.entry_count() >= held_in_model);
        }
    }
    Ok(())
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn unbounded_cache_behaves_like_a_hash_map(ops in prop::collection::vec(op(), 1..200)) {
        paused_runtime().block_on(async {
            let cache = MemoryCache::builder().sweep_interval(Duration::from_millis(40)).build().unwrap();
            check(cache, ops, Setup::default()).await
        })?;
    }

    #[test]
    fn bounded_cache_never_returns_what_the_model_lacks(ops in prop::collection::vec(op(), 1..200)) {
        paused_runtime().block_on(async {
            let cache = MemoryCache::builder().max_capacity(3).sweep_interval(Duration::from_millis(40)).build().unwrap();
            check(cache, ops, Setup { bounded: true, ..Setup::default() }).await
        })?;
    }

    #[test]
    fn byte_bounded_cache_never_passes_its_bound(ops in prop::collection::vec(op(), 1..200)) {
        paused_runtime().block_on(async {
            // Room for three or four entries of this test's sizes.
            let max = 3 * (MemoryCache::ENTRY_OVERHEAD + 8);
            let cache = MemoryCache::builder().max_bytes(max).sweep_interval(Duration::from_millis(40)).build().unwrap();
            check(cache, ops, Setup { bounded: true, ..Setup::default() }).await
        })?;
    }

    #[test]
    fn idle_entries_are_never_returned(ops in prop::collection::vec(op(), 1..200)) {
        paused_runtime().block_on(async {
            let cache = MemoryCache::builder().time_to_idle(Duration::from_millis(60)).max_capacity(5).sweep_interval(Duration::from_millis(40)).build().unwrap();
            check(cache, ops, Setup { bounded: true, idle: Some(60), keep: 0 }).await
        })?;
    }

    #[test]
    fn kept_expired_entries_are_read_stale_until_their_retention_ends(ops in prop::collection::vec(op(), 1..200)) {
        paused_runtime().block_on(async {
            let cache = MemoryCache::builder().keep_expired_for(Duration::from_millis(50)).sweep_interval(Duration::from_millis(40)).build().unwrap();
            check(cache, ops, Setup { keep: 50, ..Setup::default() }).await
        })?;
    }

    #[test]
    fn bounded_idle_cache_keeps_only_what_the_model_keeps(ops in prop::collection::vec(op(), 1..200)) {
        paused_runtime().block_on(async {
            let cache = MemoryCache::builder().time_to_idle(Duration::from_millis(60)).keep_expired_for(Duration::from_millis(50)).max_capacity(5).sweep_interval(Duration::from_millis(40)).build().unwrap();
            check(cache, ops, Setup { bounded: true, idle: Some(60), keep: 50 }).await
        })?;
    }
}
