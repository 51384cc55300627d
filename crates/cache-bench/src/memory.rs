//! Resident memory per entry, each case in a fresh child process.
//!
//! The harness re-executes itself with a hidden argument ([`CHILD_FLAG`]) per case, so that
//! memory one case leaves with the allocator never counts against the next.

use std::process::Command;

use crate::groups::names;
use crate::stores::{
    CacheStore, MokaStore, RawDashMap, memory_cache, moka_cache, plain_memory_cache,
};
use crate::workload::{Result, Store, VALUE_LEN};

/// The hidden argument that makes the binary measure one case and print the result.
pub(crate) const CHILD_FLAG: &str = "--memory-child";
/// Entries inserted, each `key:{n}` with a 100-byte value and a 300 s TTL.
pub(crate) const ENTRIES: usize = 1_000_000;

/// The cases: the id passed to the child, and the name printed.
pub(crate) const CASES: [(&str, &str); 4] = [
    ("memory-cache", names::MEMORY_CACHE),
    (
        "memory-cache-bounded",
        "MemoryCache, max_capacity 1,000,000",
    ),
    ("moka", names::MOKA),
    ("dashmap", names::DASHMAP),
];

/// Bytes of keys and values alone, per entry: 100 bytes of value plus the mean length of
/// `key:{n}` for `n < 1,000,000` (9.89 bytes).
pub(crate) fn payload_per_entry() -> f64 {
    let keys: usize = (0..ENTRIES).map(|n| format!("key:{n}").len()).sum();
    (keys + ENTRIES * VALUE_LEN) as f64 / ENTRIES as f64
}

/// Measures case `id` in a child process; returns its resident growth in bytes per entry.
pub(crate) fn measure(id: &str) -> Result<f64> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).args([CHILD_FLAG, id]).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "memory case {id} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    stdout
        .trim()
        .parse::<f64>()
        .map(|bytes| bytes / ENTRIES as f64)
        .map_err(|_| format!("memory case {id} printed {stdout:?}").into())
}

/// The child's side: builds case `id`, inserts [`ENTRIES`] entries, prints the growth of
/// the resident set in bytes.
pub(crate) fn child_main(id: &str) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let growth = runtime.block_on(async {
        match id {
            "memory-cache" => fill(CacheStore(plain_memory_cache()), async || ()).await,
            "memory-cache-bounded" => {
                let cache = memory_cache().max_capacity(ENTRIES).build()?;
                fill(CacheStore(cache), async || ()).await
            }
            "moka" => {
                let cache = moka_cache(None);
                // Let moka apply its pending writes, so its bookkeeping is counted too.
                let settle = async || cache.run_pending_tasks().await;
                fill(MokaStore(cache.clone()), settle).await
            }
            "dashmap" => fill(RawDashMap::default(), async || ()).await,
            other => Err(format!("no memory case {other}").into()),
        }
    })?;
    println!("{growth}");
    Ok(())
}

/// Inserts the entries into `store` and returns how much the resident set grew meanwhile;
/// the store stays alive until after the second reading.
async fn fill<S: Store>(mut store: S, settle: impl AsyncFnOnce()) -> Result<i64> {
    let value = "v".repeat(VALUE_LEN);
    let before = resident_bytes()?;
    for n in 0..ENTRIES {
        store.set(&format!("key:{n}"), &value).await?;
    }
    settle().await;
    let after = resident_bytes()?;
    drop(store);
    Ok(after - before)
}

/// The resident set of this process (`VmRSS` in `/proc/self/status`), in bytes.
fn resident_bytes() -> Result<i64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or("no VmRSS in /proc/self/status (the memory cases need Linux)")?;
    Ok(kib * 1024)
}
