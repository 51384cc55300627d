//! Hit ratio of bounded caches on a trace replayed by one task: get, and set on a miss.

use std::time::Instant;

use cache_memory::{Bytes, Cache, MemoryCache};
use moka::policy::EvictionPolicy;

use crate::stores::memory_cache;
use crate::traces::Trace;
use crate::workload::{Result, VALUE_LEN};

/// The caches compared, in table order.
pub(crate) const CACHES: [Kind; 4] = [
    Kind::MemoryCache,
    Kind::Moka,
    Kind::MokaLru,
    Kind::QuickCache,
];

/// A bounded cache of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `MemoryCache` with `max_capacity`.
    MemoryCache,
    /// moka's `future::Cache`, TinyLFU (its default).
    Moka,
    /// moka's `future::Cache` with its LRU policy: the LRU anchor.
    MokaLru,
    /// quick_cache's `sync::Cache` (S3-FIFO-like).
    QuickCache,
}

impl Kind {
    /// The column's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::MemoryCache => "MemoryCache",
            Self::Moka => "moka (TinyLFU)",
            Self::MokaLru => "moka LRU",
            Self::QuickCache => "quick_cache",
        }
    }
}

/// One replay: hits among the counted accesses, and the rate of the whole replay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replay {
    /// Counted accesses that found their key.
    pub(crate) hits: u64,
    /// Accesses after the warm-up.
    pub(crate) counted: u64,
    /// Accesses per second over the whole replay, warm-up included.
    pub(crate) rate: f64,
}

impl Replay {
    /// Hits as a percentage of the counted accesses.
    pub(crate) fn percent(&self) -> f64 {
        100.0 * self.hits as f64 / self.counted.max(1) as f64
    }
}

/// A cache bounded to a number of entries, as the replay uses it.
trait Bounded: Sync {
    /// Whether `key` is held (a read).
    fn hit(&self, key: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Stores `key`.
    fn store(&self, key: &str, value: &Bytes) -> impl Future<Output = Result<()>> + Send;
    /// Runs deferred bookkeeping (moka's pending tasks).
    fn settle(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

impl Bounded for MemoryCache {
    async fn hit(&self, key: &str) -> Result<bool> {
        Ok(self.get_bytes(key).await?.is_some())
    }

    async fn store(&self, key: &str, value: &Bytes) -> Result<()> {
        Ok(self.set_bytes(key, value.clone(), None).await?)
    }
}

impl Bounded for moka::future::Cache<String, Bytes> {
    async fn hit(&self, key: &str) -> Result<bool> {
        Ok(self.get(key).await.is_some())
    }

    async fn store(&self, key: &str, value: &Bytes) -> Result<()> {
        self.insert(key.to_owned(), value.clone()).await;
        Ok(())
    }

    async fn settle(&self) {
        self.run_pending_tasks().await;
    }
}

impl Bounded for quick_cache::sync::Cache<String, Bytes> {
    async fn hit(&self, key: &str) -> Result<bool> {
        Ok(self.get(key).is_some())
    }

    async fn store(&self, key: &str, value: &Bytes) -> Result<()> {
        self.insert(key.to_owned(), value.clone());
        Ok(())
    }
}

/// Replays `trace` (key names in `names`) against a new cache of `kind` holding at most
/// `capacity` entries.
pub(crate) async fn replay(
    kind: Kind,
    trace: &Trace,
    names: &[String],
    capacity: usize,
) -> Result<Replay> {
    match kind {
        Kind::MemoryCache => {
            let cache = memory_cache().max_capacity(capacity).build()?;
            play(&cache, trace, names).await
        }
        Kind::Moka | Kind::MokaLru => {
            let policy = if kind == Kind::MokaLru {
                EvictionPolicy::lru()
            } else {
                EvictionPolicy::tiny_lfu()
            };
            let cache = moka::future::Cache::builder()
                .max_capacity(capacity as u64)
                .eviction_policy(policy)
                .build();
            play(&cache, trace, names).await
        }
        Kind::QuickCache => {
            let cache = quick_cache::sync::Cache::new(capacity);
            play(&cache, trace, names).await
        }
    }
}

async fn play(cache: &impl Bounded, trace: &Trace, names: &[String]) -> Result<Replay> {
    let value = Bytes::from(vec![b'v'; VALUE_LEN]);
    let warm_up = trace.warm_up();
    let started = Instant::now();
    let mut hits = 0;
    for (i, &key) in trace.accesses.iter().enumerate() {
        if i == warm_up {
            cache.settle().await;
        }
        let key = &names[key as usize];
        if cache.hit(key).await? {
            hits += u64::from(i >= warm_up);
        } else {
            cache.store(key, &value).await?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(Replay {
        hits,
        counted: (trace.accesses.len() - warm_up) as u64,
        rate: trace.accesses.len() as f64 / secs,
    })
}
