//! A tiered cache on a tokio runtime without timers: no panic, and the other instances'
//! invalidations are still applied.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cache_memory::MemoryCache;
use cache_tiered::{Cache, InProcessBackplane, TieredCache};

#[test]
fn a_runtime_without_timers_never_panics_and_still_applies_invalidations() {
    let panics = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&panics);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let l2 = MemoryCache::new();
        let backplane = InProcessBackplane::new();
        let a = TieredCache::builder(MemoryCache::new(), l2.clone())
            .backplane(backplane.clone())
            .build()
            .unwrap();
        let b = TieredCache::builder(MemoryCache::new(), l2)
            .backplane(backplane)
            .build()
            .unwrap();
        b.get("k").await.unwrap();
        a.set("k", "old", None).await.unwrap();
        assert_eq!(b.get("k").await.unwrap().as_deref(), Some("old"));
        a.set("k", "new", None).await.unwrap();
        // b's listener runs when this task yields; no timer is needed for it.
        let mut seen = None;
        for _ in 0..1_000 {
            tokio::task::yield_now().await;
            seen = b.get("k").await.unwrap();
            if seen.as_deref() == Some("new") {
                break;
            }
        }
        assert_eq!(seen.as_deref(), Some("new"));
        assert!(b.tiered_stats().invalidations_received > 0);
    });
    drop(runtime);
    let _ = std::panic::take_hook();
    assert_eq!(panics.load(Ordering::SeqCst), 0);
}
