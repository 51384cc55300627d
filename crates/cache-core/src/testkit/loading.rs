//! `get_or_set_with`: one load per missing key, errors shared and not cached, takeover.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Barrier, oneshot};
use tokio::time::sleep;

use super::{key, ok, watchdog};
use crate::{Bytes, Cache, CacheError, CacheExt};

/// Callers racing for one missing key.
const CALLERS: usize = 1_000;
/// How long a test loader takes after every racing caller has called: time for the last of
/// them to read the store and join the load.
const LOAD_TIME: Duration = Duration::from_millis(300);
const TTL: Option<Duration> = Some(Duration::from_secs(300));

/// Rule: a present value is returned without running the loader.
pub async fn get_or_set_with_returns_a_present_value<C: Cache>(cache: &C) {
    let k = key("load_present", "k");
    ok("set", cache.set(&k, "stored", None)).await;
    let value = ok(
        "get_or_set_with",
        cache.get_or_set_with(&k, TTL, || async {
            must_not_load("the loader must not run for a present key")
        }),
    )
    .await;
    assert_eq!(value, "stored");
}

/// How the racing callers of [`race_for_one_key`] load.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// `get_or_set_with`, strings.
    Text,
    /// `get_or_set_bytes_with`, bytes.
    Bytes,
}

/// Lines up `callers` tasks on a barrier, each calling `get_or_set_with` (or, for
/// [`Form::Bytes`], `get_or_set_bytes_with`) for `k` with a loader that counts itself, waits
/// until every caller has made its call, then takes [`LOAD_TIME`] more (time for the last
/// callers to join, however slow the scheduler) and returns `outcome(caller)`. Returns how
/// many loaders ran and each caller's result as bytes, under the
/// [`WATCHDOG`](super::WATCHDOG).
async fn race_for_one_key<C: Cache + Clone + 'static>(
    what: &str,
    cache: &C,
    k: &str,
    callers: usize,
    form: Form,
    outcome: fn(usize) -> Result<Bytes, &'static str>,
) -> (usize, Vec<crate::Result<Bytes>>) {
    let loads = Arc::new(AtomicUsize::new(0));
    let called = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(callers));
    let handles: Vec<_> = (0..callers)
        .map(|caller| {
            let (cache, k, loads, called, barrier) = (
                cache.clone(),
                k.to_owned(),
                Arc::clone(&loads),
                Arc::clone(&called),
                Arc::clone(&barrier),
            );
            let all_called = Arc::clone(&called);
            let loader = move || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                while all_called.load(Ordering::SeqCst) < callers {
                    sleep(Duration::from_millis(1)).await;
                }
                sleep(LOAD_TIME).await;
                outcome(caller)
            };
            tokio::spawn(async move {
                barrier.wait().await;
                called.fetch_add(1, Ordering::SeqCst);
                match form {
                    Form::Bytes => cache.get_or_set_bytes_with(&k, TTL, loader).await,
                    Form::Text => cache
                        .get_or_set_with(&k, TTL, || async move {
                            let bytes = loader().await?;
                            Ok::<_, &str>(String::from_utf8(bytes.to_vec()).unwrap_or_default())
                        })
                        .await
                        .map(Bytes::from),
                }
            })
        })
        .collect();
    let mut results = Vec::with_capacity(callers);
    watchdog(what, async {
        for handle in handles {
            match handle.await {
                Ok(result) => results.push(result),
                Err(err) => std::panic::resume_unwind(err.into_panic()),
            }
        }
    })
    .await;
    (loads.load(Ordering::SeqCst), results)
}

/// Rule: 1,000 tasks asking for the same missing key at once run the loader exactly once,
/// all get its value, and the value is stored.
pub async fn get_or_set_with_runs_the_loader_once<C: Cache + Clone + Debug + 'static>(cache: &C) {
    let k = key("load_once", "k");
    let (loads, results) = race_for_one_key(
        "1,000 concurrent get_or_set_with",
        cache,
        &k,
        CALLERS,
        Form::Text,
        |caller| Ok(Bytes::from(format!("loaded by {caller}"))),
    )
    .await;
    let mut values = Vec::with_capacity(CALLERS);
    for result in results {
        values.push(ok("get_or_set_with", async { result }).await);
    }
    assert_eq!(
        loads, 1,
        "{CALLERS} concurrent callers for one missing key must run the loader once"
    );
    let stored = ok("get", cache.get(&k)).await;
    assert!(stored.is_some(), "the loaded value must be stored");
    assert!(
        values
            .iter()
            .all(|v| stored.as_deref().map(str::as_bytes) == Some(&v[..])),
        "every caller must get the one loaded value"
    );
}

/// Rule: a loader error reaches every caller waiting on that load as `CacheError::Load`
/// with the loader's error as its source, and is not cached: the next call loads again.
pub async fn get_or_set_with_shares_a_loader_error_and_does_not_cache_it<
    C: Cache + Clone + Debug + 'static,
>(
    cache: &C,
) {
    const WAITERS: usize = 50;
    let k = key("load_error", "k");
    let (loads, results) = race_for_one_key(
        "get_or_set_with with a failing loader",
        cache,
        &k,
        WAITERS,
        Form::Text,
        |_| Err("the database is down"),
    )
    .await;
    for result in results {
        match result {
            Err(CacheError::Load { source }) => {
                assert_eq!(source.to_string(), "the database is down");
            }
            other => panic!("a failing loader must give every waiter Load, got {other:?}"),
        }
    }
    assert_eq!(
        loads, 1,
        "waiters must share the failed load, not run their own"
    );
    assert_eq!(
        ok("get", cache.get(&k)).await,
        None,
        "a failed load stores nothing"
    );
    let value = ok(
        "get_or_set_with after a failed load",
        cache.get_or_set_with(&k, TTL, || async {
            Ok::<_, CacheError>("recovered".into())
        }),
    )
    .await;
    assert_eq!(value, "recovered", "a loader error must not be cached");
}

/// Rule: when the task running the loader is cancelled, a waiting caller runs its own
/// loader instead of waiting forever.
pub async fn get_or_set_with_survives_a_cancelled_loader<C: Cache + Clone + Debug + 'static>(
    cache: &C,
) {
    let k = key("load_cancelled", "k");
    let (started_tx, started_rx) = oneshot::channel();
    let leader = {
        let (cache, k) = (cache.clone(), k.clone());
        tokio::spawn(async move {
            cache
                .get_or_set_with(&k, TTL, || async move {
                    let _ = started_tx.send(());
                    std::future::pending::<Result<String, CacheError>>().await
                })
                .await
        })
    };
    watchdog("the leader's loader to start", started_rx)
        .await
        .expect("the leader's loader starts");
    let waiter = {
        let (cache, k) = (cache.clone(), k.clone());
        tokio::spawn(async move {
            cache
                .get_or_set_with(&k, TTL, || async {
                    Ok::<_, CacheError>("from the waiter".into())
                })
                .await
        })
    };
    // Let the waiter line up behind the leader's load before the leader goes away.
    sleep(Duration::from_millis(200)).await;
    leader.abort();
    let value = watchdog("a waiter to take over a cancelled load", waiter)
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
    assert_eq!(
        ok("get_or_set_with", async { value }).await,
        "from the waiter"
    );
    assert_eq!(
        ok("get", cache.get(&k)).await.as_deref(),
        Some("from the waiter"),
        "the waiter that took over must store its value"
    );
    assert!(leader.await.is_err_and(|err| err.is_cancelled()));
}

/// Rule: a zero TTL is `InvalidTtl` before the loader runs.
pub async fn get_or_set_with_checks_the_ttl_before_loading<C: Cache>(cache: &C) {
    let k = key("load_zero_ttl", "k");
    let result = cache
        .get_or_set_with(&k, Some(Duration::ZERO), || async {
            must_not_load("the loader must not run when the ttl is invalid")
        })
        .await;
    assert!(
        matches!(result, Err(CacheError::InvalidTtl { .. })),
        "get_or_set_with with a zero ttl must be InvalidTtl, got {result:?}"
    );
}

/// A loader body for calls that must not load.
fn must_not_load(why: &str) -> Result<String, CacheError> {
    panic!("{why}")
}

/// Rule: `get_or_set_bytes_with` shares one load of bytes (not UTF-8 ones included) among
/// concurrent callers of a missing key and stores it, as `get_or_set_with` does for strings.
pub async fn get_or_set_bytes_with_runs_the_loader_once<C: Cache + Clone + Debug + 'static>(
    cache: &C,
) {
    const BYTE_CALLERS: usize = 50;
    const LOADED: &[u8] = &[0xff, 0x00, 0xfe];
    let k = key("load_bytes_once", "k");
    let (loads, results) = race_for_one_key(
        "concurrent get_or_set_bytes_with",
        cache,
        &k,
        BYTE_CALLERS,
        Form::Bytes,
        |_| Ok(Bytes::from_static(LOADED)),
    )
    .await;
    for result in results {
        let value = ok("get_or_set_bytes_with", async { result }).await;
        assert_eq!(&value[..], LOADED, "every caller must get the loaded bytes");
    }
    assert_eq!(
        loads, 1,
        "{BYTE_CALLERS} concurrent callers for one missing key must run the loader once"
    );
    assert_eq!(
        ok("get_bytes", cache.get_bytes(&k)).await.as_deref(),
        Some(LOADED),
        "the loaded bytes must be stored"
    );
}
