//! Many tasks at once: nothing lost, nothing mixed.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;

use tokio::sync::Barrier;

use super::{key, ok, watchdog};
use crate::Cache;

const TASKS: usize = 64;
const KEYS_PER_TASK: usize = 32;
const SHARED_KEYS: usize = 16;

/// Spawns `TASKS` tasks lined up on a barrier, each running `work(task)`, and waits for all.
async fn spawn_lined_up<C, F, Fut>(what: &str, cache: &C, work: F)
where
    C: Cache + Clone + 'static,
    F: Fn(C, usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(TASKS));
    let handles: Vec<_> = (0..TASKS)
        .map(|task| {
            let barrier = Arc::clone(&barrier);
            let job = work(cache.clone(), task);
            tokio::spawn(async move {
                barrier.wait().await;
                job.await;
            })
        })
        .collect();
    watchdog(what, async {
        for handle in handles {
            if let Err(err) = handle.await {
                std::panic::resume_unwind(err.into_panic());
            }
        }
    })
    .await;
}

/// Rule: 64 tasks writing 32 keys each, all at once, lose nothing: every key reads back the
/// value its task wrote.
pub async fn concurrent_writers_on_disjoint_keys_lose_nothing<
    C: Cache + Clone + Debug + 'static,
>(
    cache: &C,
) {
    spawn_lined_up(
        "concurrent writers on disjoint keys",
        cache,
        |cache, task| async move {
            for i in 0..KEYS_PER_TASK {
                let k = key("disjoint", format!("{task}:{i}"));
                ok(
                    "concurrent set",
                    cache.set(&k, &format!("{task}/{i}"), None),
                )
                .await;
            }
        },
    )
    .await;
    for task in 0..TASKS {
        for i in 0..KEYS_PER_TASK {
            let got = ok("get", cache.get(&key("disjoint", format!("{task}:{i}")))).await;
            assert_eq!(
                got,
                Some(format!("{task}/{i}")),
                "a concurrent write was lost or mixed up"
            );
        }
    }
}

/// Rule: 64 tasks overwriting the same 16 keys at once leave each key holding one value that
/// some task wrote for that key: never missing, never a mix, never another key's value.
pub async fn concurrent_writers_on_shared_keys_keep_a_written_value<
    C: Cache + Clone + Debug + 'static,
>(
    cache: &C,
) {
    spawn_lined_up(
        "concurrent writers on shared keys",
        cache,
        |cache, task| async move {
            for round in 0..4 {
                for i in 0..SHARED_KEYS {
                    let k = key("shared", i);
                    let value = format!("key {i} by task {task} round {round}");
                    ok("concurrent set", cache.set(&k, &value, None)).await;
                    let got = ok("concurrent get", cache.get(&k)).await;
                    let got = got.unwrap_or_else(|| {
                        panic!("{k:?} read as missing while only being written")
                    });
                    assert!(
                        got.starts_with(&format!("key {i} by")),
                        "{k:?} read another key's value: {got:?}"
                    );
                }
            }
        },
    )
    .await;
    let written: HashSet<String> = (0..TASKS)
        .flat_map(|task| (0..4).map(move |round| (task, round)))
        .map(|(task, round)| format!("by task {task} round {round}"))
        .collect();
    for i in 0..SHARED_KEYS {
        let got = ok("get", cache.get(&key("shared", i))).await;
        let got = got.unwrap_or_else(|| panic!("shared key {i} was lost"));
        let suffix = got
            .strip_prefix(&format!("key {i} "))
            .unwrap_or_else(|| panic!("shared key {i} holds {got:?}"));
        assert!(
            written.contains(suffix),
            "shared key {i} holds a value nobody wrote: {got:?}"
        );
    }
}
