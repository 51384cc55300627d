//! Coherence of three tiered caches over one L2 in one process, with the in-process backplane.

mod coherence;

use std::time::Duration;

use cache_memory::MemoryCache;
use cache_tiered::{InProcessBackplane, TieredCache};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_never_return_a_value_older_than_an_acknowledged_write() {
    let l2 = MemoryCache::new();
    let backplane = InProcessBackplane::new();
    let instances: Vec<_> = (0..3)
        .map(|_| {
            TieredCache::builder(
                MemoryCache::builder().max_capacity(10_000).build().unwrap(),
                l2.clone(),
            )
            .backplane(backplane.clone())
            .build()
            .unwrap()
        })
        .collect();
    // Generous on a busy machine: a message is applied by a task that must be scheduled.
    let bound = Duration::from_secs(1);
    let report = coherence::run(instances.clone(), 64, 200, Duration::from_secs(3), bound).await;
    eprintln!(
        "{} reads, {} writes, {} stale; probe delays p50 {:?} p99 {:?} max {:?} ({} probes)",
        report.reads,
        report.writes,
        report.stale,
        coherence::quantile(&report.delays, 0.5),
        coherence::quantile(&report.delays, 0.99),
        report.delays.last(),
        report.delays.len()
    );
    assert!(report.reads > 1_000 && report.writes > 100, "{report:?}");
    assert_eq!(report.stale, 0, "{:?}", report.examples);
    let stats = instances[0].tiered_stats();
    assert!(
        stats.l1_hits > 0 && stats.invalidations_received > 0,
        "{stats:?}"
    );
}
