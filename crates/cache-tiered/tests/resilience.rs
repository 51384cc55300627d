//! Fail-safe, the circuit breaker and eager refresh on the paused clock, over an L2 that a
//! test can take down; the same behaviour against a killed and a paused Redis is in
//! `over_redis.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use cache_memory::MemoryCache;
use cache_tiered::{Bytes, Cache, CacheError, Result, TieredCache};

/// A `MemoryCache` as L2 that answers `Unavailable` while `down` is set, answers `delay_ms`
/// after doing the work (a slow server, or one that hangs), and counts the calls that
/// reached it: the switches a test needs to take L2 down at an exact point. A call takes
/// both settings as they are when it starts.
#[derive(Debug, Clone, Default)]
struct Switchable {
    cache: MemoryCache,
    down: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
    calls: Arc<AtomicUsize>,
}

impl Switchable {
    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis().try_into().unwrap(), Ordering::SeqCst);
    }

    async fn call<T>(&self, op: impl Future<Output = Result<T>>) -> Result<T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        let result = if self.down.load(Ordering::SeqCst) {
            Err(CacheError::Unavailable {
                reason: "taken down by the test".into(),
                source: None,
            })
        } else {
            op.await
        };
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        result
    }
}

impl Cache for Switchable {
    async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>> {
        self.call(self.cache.get_bytes(key)).await
    }

    async fn set_bytes(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.call(self.cache.set_bytes(key, value, ttl)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.call(self.cache.delete(key)).await
    }

    async fn clear(&self) -> Result<()> {
        self.call(self.cache.clear()).await
    }

    async fn close(&self) -> Result<()> {
        self.cache.close().await
    }

    async fn get_bytes_with_ttl(&self, key: &str) -> Result<Option<(Bytes, cache_tiered::Ttl)>> {
        self.call(self.cache.get_bytes_with_ttl(key)).await
    }
}

fn l1(keep_expired: Duration) -> MemoryCache {
    MemoryCache::builder()
        .max_capacity(1_000)
        .keep_expired_for(keep_expired)
        .build()
        .unwrap()
}

const MAX_STALE: Duration = Duration::from_secs(60);
const BREAK: Duration = Duration::from_secs(5);

fn resilient(l2: &Switchable) -> TieredCache<MemoryCache, Switchable> {
    TieredCache::builder(l1(MAX_STALE), l2.clone())
        .l1_ttl(Duration::from_secs(1))
        .fail_safe(MAX_STALE)
        .circuit_breaker(3, BREAK)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn with_l2_down_a_value_l1_kept_is_served_past_its_ttl_and_other_keys_get_the_error() {
    let l2 = Switchable::default();
    let cache = resilient(&l2);
    cache.set("kept", "v1", None).await.unwrap();
    l2.cache.set("only-in-l2", "x", None).await.unwrap();
    // Past l1_ttl: L1's copy has expired and is kept for the fail-safe.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(cache.l1().get("kept").await.unwrap(), None);
    l2.set_down(true);
    assert_eq!(cache.get("kept").await.unwrap().as_deref(), Some("v1"));
    assert!(matches!(
        cache.get("only-in-l2").await,
        Err(CacheError::Unavailable { .. })
    ));
    assert_eq!(cache.tiered_stats().stale_served, 1);
    // Writes are never faked: they fail, and leave no copy in L1.
    assert!(cache.set("kept", "v2", None).await.is_err());
    assert_eq!(cache.l1().get_stale_bytes("kept").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_value_past_max_stale_is_not_served() {
    let l2 = Switchable::default();
    let cache = TieredCache::builder(l1(MAX_STALE), l2.clone())
        .l1_ttl(Duration::from_secs(1))
        .fail_safe(Duration::from_secs(10))
        .build()
        .unwrap();
    cache.set("k", "v", None).await.unwrap();
    l2.set_down(true);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    // Expired 1 s after the write: 11 s later it is 10 s stale, no longer served.
    tokio::time::advance(Duration::from_secs(6)).await;
    assert!(cache.get("k").await.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_deleted_key_is_never_served_stale() {
    let l2 = Switchable::default();
    let cache = resilient(&l2);
    cache.set("k", "v", None).await.unwrap();
    cache.delete("k").await.unwrap();
    l2.set_down(true);
    assert!(cache.get("k").await.is_err());
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_consecutive_failures_probes_once_and_closes() {
    let l2 = Switchable::default();
    let cache = resilient(&l2);
    l2.cache.set("k", "v", None).await.unwrap();
    l2.set_down(true);
    for _ in 0..3 {
        assert!(cache.get("k").await.is_err());
    }
    assert_eq!(cache.tiered_stats().breaker_openings, 1);
    // Open: L2 is not asked.
    let calls = l2.calls();
    for _ in 0..10 {
        let err = cache.get("k").await.unwrap_err();
        assert!(err.to_string().contains("circuit breaker"), "{err}");
        assert!(cache.set("k", "w", None).await.is_err());
    }
    assert_eq!(l2.calls(), calls);
    // After the break, one probe; it fails, and the breaker opens again.
    tokio::time::advance(BREAK).await;
    assert!(cache.get("k").await.is_err());
    assert_eq!(l2.calls(), calls + 1);
    assert!(cache.get("k").await.is_err());
    assert_eq!(l2.calls(), calls + 1, "only one probe per break");
    assert_eq!(cache.tiered_stats().breaker_openings, 2);
    // L2 is back: the next probe closes the breaker.
    l2.set_down(false);
    tokio::time::advance(BREAK).await;
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    cache.set("k", "w", None).await.unwrap();
    assert_eq!(l2.cache.get("k").await.unwrap().as_deref(), Some("w"));
    assert_eq!(cache.tiered_stats().breaker_openings, 2);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_lets_the_next_call_probe() {
    let l2 = Switchable::default();
    let cache = resilient(&l2);
    l2.set_down(true);
    for _ in 0..3 {
        assert!(cache.get("k").await.is_err());
    }
    tokio::time::advance(BREAK).await;
    // The probe hangs, and its caller gives up on it.
    l2.set_down(false);
    l2.set_delay(Duration::from_secs(3_600));
    let probe = tokio::time::timeout(Duration::from_secs(1), cache.get("k")).await;
    assert!(probe.is_err(), "the probe was meant to hang: {probe:?}");
    l2.set_delay(Duration::ZERO);
    assert_eq!(cache.get("k").await.unwrap(), None);
    assert_eq!(cache.tiered_stats().breaker_openings, 1);
}

#[tokio::test(start_paused = true)]
async fn l2_timeout_serves_the_kept_value_when_l2_hangs_and_waits_when_there_is_none() {
    let l2 = Switchable::default();
    let cache = TieredCache::builder(l1(MAX_STALE), l2.clone())
        .l1_ttl(Duration::from_secs(1))
        .fail_safe(MAX_STALE)
        .l2_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    cache.set("kept", "v", None).await.unwrap();
    l2.cache.set("only-in-l2", "x", None).await.unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    l2.set_delay(Duration::from_secs(1));
    let start = tokio::time::Instant::now();
    assert_eq!(cache.get("kept").await.unwrap().as_deref(), Some("v"));
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_eq!(cache.tiered_stats().l2_soft_timeouts, 1);
    // Nothing to fall back on: the read waits for L2.
    let start = tokio::time::Instant::now();
    assert_eq!(cache.get("only-in-l2").await.unwrap().as_deref(), Some("x"));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

/// A loader that counts its calls and returns `value` after `delay`, or fails.
fn loader(
    calls: &Arc<AtomicUsize>,
    value: &'static str,
    fail: bool,
) -> impl FnOnce() -> std::pin::Pin<
    Box<dyn Future<Output = std::result::Result<String, std::io::Error>> + Send>,
> + Send
+ 'static {
    let calls = Arc::clone(calls);
    move || {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            if fail {
                Err(std::io::Error::other("the source is down"))
            } else {
                Ok(value.to_owned())
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn eager_refresh_reloads_once_however_many_readers_arrive_and_a_failed_refresh_keeps_the_value()
 {
    let l2 = Switchable::default();
    let cache = TieredCache::builder(MemoryCache::new(), l2.clone())
        .l1_ttl(Duration::from_secs(1))
        .eager_refresh(0.5)
        .build()
        .unwrap();
    let ttl = Some(Duration::from_secs(10));
    let calls = Arc::new(AtomicUsize::new(0));
    let first = cache
        .get_or_refresh_with("k", ttl, loader(&calls, "v1", false))
        .await
        .unwrap();
    assert_eq!((first.as_str(), calls.load(Ordering::SeqCst)), ("v1", 1));
    // Before half the TTL: no refresh.
    tokio::time::advance(Duration::from_secs(4)).await;
    let value = cache
        .get_or_refresh_with("k", ttl, loader(&calls, "v2", false))
        .await
        .unwrap();
    assert_eq!((value.as_str(), calls.load(Ordering::SeqCst)), ("v1", 1));
    // Past half: a refresh that fails keeps the value.
    tokio::time::advance(Duration::from_secs(2)).await;
    let value = cache
        .get_or_refresh_with("k", ttl, loader(&calls, "v2", true))
        .await
        .unwrap();
    assert_eq!(value, "v1");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.tiered_stats().refresh_errors, 1);
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v1"));
    // L1 keeps the value it had until its copy expires, and the refresh is tried again
    // after that. 50 readers at once, all reading L2 at the same time (it answers after
    // 10 ms): every one gets the current value, one loader runs.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    tokio::time::advance(Duration::from_secs(1)).await;
    l2.set_delay(Duration::from_millis(10));
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            let load = loader(&calls, "v3", false);
            tokio::spawn(async move { cache.get_or_refresh_with("k", ttl, load).await })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap().unwrap(), "v1");
    }
    assert!(
        l2.calls() >= 50,
        "the readers overlapped in L2: {}",
        l2.calls()
    );
    l2.set_delay(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v3"));
    assert_eq!(l2.cache.get("k").await.unwrap().as_deref(), Some("v3"));
    let stats = cache.tiered_stats();
    assert_eq!((stats.refreshes, stats.refresh_errors), (2, 1));
    // The refreshed value has a whole TTL again: no refresh before half of it.
    tokio::time::advance(Duration::from_secs(4)).await;
    let value = cache
        .get_or_refresh_with("k", ttl, loader(&calls, "v4", false))
        .await
        .unwrap();
    assert_eq!((value.as_str(), calls.load(Ordering::SeqCst)), ("v3", 3));
}

#[test]
fn settings_that_cannot_work_are_refused_by_build() {
    let reason = |built: Result<TieredCache<MemoryCache, MemoryCache>>| match built {
        Err(CacheError::InvalidConfig { reason, .. }) => reason,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let builder = || TieredCache::builder(MemoryCache::new(), MemoryCache::new());
    let no_retention = reason(builder().fail_safe(Duration::from_secs(30)).build());
    assert!(
        no_retention.contains("keep_expired_for"),
        "the error says what to change: {no_retention}"
    );
    let short = TieredCache::builder(l1(Duration::from_secs(10)), MemoryCache::new())
        .fail_safe(Duration::from_secs(30))
        .build();
    assert!(reason(short).contains("10s"));
    assert!(reason(builder().l2_timeout(Duration::from_millis(50)).build()).contains("fail_safe"));
    assert!(reason(builder().eager_refresh(1.0).build()).contains("eager_refresh"));
    assert!(reason(builder().eager_refresh(0.0).build()).contains("eager_refresh"));
    assert!(reason(builder().circuit_breaker(0, BREAK).build()).contains("circuit_breaker"));
    assert!(
        reason(builder().circuit_breaker(3, Duration::ZERO).build()).contains("circuit_breaker")
    );
    let enough = TieredCache::builder(l1(Duration::from_secs(30)), MemoryCache::new())
        .fail_safe(Duration::from_secs(30))
        .l2_timeout(Duration::from_millis(50))
        .circuit_breaker(5, BREAK)
        .eager_refresh(0.8)
        .build();
    assert!(enough.is_ok());
}

/// An in-process backplane whose `publish` fails while `failing` is set.
#[derive(Debug, Clone, Default)]
struct Flaky {
    plane: cache_tiered::InProcessBackplane,
    failing: Arc<AtomicBool>,
}

impl cache_core::backplane::Backplane for Flaky {
    async fn publish(&self, message: &cache_core::backplane::Message) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(CacheError::Unavailable {
                reason: "the backplane is reconnecting".into(),
                source: None,
            });
        }
        self.plane.publish(message).await
    }

    fn subscribe(&self) -> cache_core::backplane::Subscription {
        self.plane.subscribe()
    }
}

#[tokio::test(start_paused = true)]
async fn an_invalidation_that_could_not_be_sent_is_sent_again() {
    let l2 = MemoryCache::new();
    let plane = Flaky::default();
    let instance = || {
        TieredCache::builder(MemoryCache::new(), l2.clone())
            .backplane(plane.clone())
            .build()
            .unwrap()
    };
    let (a, b) = (instance(), instance());
    // Both listen (a first operation starts the listener).
    a.get("k").await.unwrap();
    b.get("k").await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    a.set("k", "v1", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some("v1"));
    plane.failing.store(true, Ordering::SeqCst);
    a.set("k", "v2", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        a.tiered_stats().publish_errors >= 2,
        "{:?}",
        a.tiered_stats()
    );
    assert_eq!(
        b.get("k").await.unwrap().as_deref(),
        Some("v1"),
        "b was not told yet"
    );
    plane.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some("v2"));
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_finds_the_key_written_since_it_began_keeps_the_newer_value() {
    let l2 = MemoryCache::new();
    let cache = TieredCache::builder(MemoryCache::new(), l2)
        .l1_ttl(Duration::from_secs(1))
        .eager_refresh(0.5)
        .build()
        .unwrap();
    let ttl = Some(Duration::from_secs(10));
    let calls = Arc::new(AtomicUsize::new(0));
    cache
        .get_or_refresh_with("k", ttl, loader(&calls, "v1", false))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(6)).await;
    // The refresh's loader takes 100 ms; a write lands meanwhile.
    let value = cache
        .get_or_refresh_with("k", ttl, loader(&calls, "from the loader", false))
        .await
        .unwrap();
    assert_eq!(value, "v1");
    cache.set("k", "written", ttl).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("written"));
}

#[tokio::test(start_paused = true)]
async fn of_two_overlapping_writes_l1_never_keeps_the_one_l2_does_not_hold() {
    let l2 = Switchable::default();
    let cache = TieredCache::builder(MemoryCache::new(), l2.clone())
        .build()
        .unwrap();
    // The first write lands in L2 first, but its answer comes back last.
    l2.set_delay(Duration::from_millis(100));
    let first = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.set("k", "first", None).await })
    };
    tokio::task::yield_now().await;
    l2.set_delay(Duration::ZERO);
    cache.set("k", "second", None).await.unwrap();
    first.await.unwrap().unwrap();
    assert_eq!(l2.cache.get("k").await.unwrap().as_deref(), Some("second"));
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("second"));
}

#[tokio::test(start_paused = true)]
async fn failures_of_calls_that_began_before_the_breaker_opened_do_not_open_it_again() {
    let l2 = Switchable::default();
    // Every read its own L2 call, so that the fast ones do not queue behind the slow ones.
    let cache = TieredCache::builder(l1(MAX_STALE), l2.clone())
        .l1_ttl(Duration::from_secs(1))
        .fail_safe(MAX_STALE)
        .circuit_breaker(3, BREAK)
        .l2_reads_in_flight(usize::MAX)
        .build()
        .unwrap();
    // Three calls that will fail, slowly.
    l2.set_down(true);
    l2.set_delay(Duration::from_secs(30));
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("k").await })
        })
        .collect();
    tokio::task::yield_now().await;
    assert_eq!(l2.calls(), 3);
    // Three that fail at once open the breaker; after the break, a probe closes it.
    l2.set_delay(Duration::ZERO);
    for _ in 0..3 {
        assert!(cache.get("k").await.is_err());
    }
    assert_eq!(cache.tiered_stats().breaker_openings, 1);
    l2.set_down(false);
    tokio::time::advance(BREAK).await;
    assert_eq!(cache.get("k").await.unwrap(), None);
    // Now the slow ones fail: they count for nothing, so the next failure is the first
    // of three, and the breaker stays closed.
    for call in slow {
        assert!(call.await.unwrap().is_err());
    }
    l2.set_down(true);
    assert!(cache.get("k").await.is_err());
    assert_eq!(cache.tiered_stats().breaker_openings, 1);
    l2.set_down(false);
    cache.set("k", "v", None).await.unwrap();
}
