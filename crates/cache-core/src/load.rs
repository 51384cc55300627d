//! `get_or_set_with`: load a missing value once, however many tasks ask for it at once.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::{BoxError, Bytes, Cache, CacheError, Result, normalize_ttl, utf8};

/// What a load ended with, kept for the callers that waited on it: bytes, so that string
/// and byte loads of one key share a flight.
type Outcome = Result<Bytes>;

/// One load in flight: the lock its leader holds while loading, and what it ended with.
///
/// A waiter that gets the lock and finds no outcome knows the leader went away (cancelled,
/// or panicked) without finishing, and leads in its place.
type Flight = tokio::sync::Mutex<Option<Outcome>>;

/// The loads in flight of one cache, by key, so that concurrent
/// [`get_or_set_with`](CacheExt::get_or_set_with) calls for the same missing key share one.
///
/// A backend holds one, shared by its clones, and returns it from
/// [`Cache::single_flight`]; the testkit's example backend shows how. Without one, every
/// caller runs its own loader.
#[derive(Default)]
pub struct SingleFlight {
    flights: Mutex<HashMap<Box<str>, Arc<Flight>>>,
}

impl SingleFlight {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of keys being loaded right now.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Arc<Flight>>> {
        // The map is only read and written in single steps: a panic elsewhere cannot leave it
        // half-updated, so a poisoned lock is safe to use.
        self.flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Joins the load of `key`, starting one if none is in flight.
    fn join<'a>(&'a self, key: &'a str) -> Ticket<'a> {
        let mut flights = self.lock();
        let flight = match flights.get(key) {
            Some(flight) => Arc::clone(flight),
            None => {
                let flight = Arc::new(Flight::new(None));
                flights.insert(key.into(), Arc::clone(&flight));
                flight
            }
        };
        Ticket {
            flights: self,
            key,
            flight: Some(flight),
        }
    }
}

impl fmt::Debug for SingleFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlight")
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// One caller's hold on a flight. The last holder to leave removes the flight from the map,
/// so a flight nobody waits on any more never lingers, whether it finished or was abandoned.
struct Ticket<'a> {
    flights: &'a SingleFlight,
    key: &'a str,
    /// `Some` until dropped.
    flight: Option<Arc<Flight>>,
}

impl Ticket<'_> {
    fn flight(&self) -> &Flight {
        self.flight
            .as_deref()
            .expect("a ticket holds its flight until it is dropped")
    }

    /// Removes the flight from the map, so that later callers start a new one: after a
    /// value is stored (they will find it in the cache) or an error (not cached, so they load
    /// again). Returns how many other callers still wait on this flight; no more can join.
    fn finish(&self) -> usize {
        let mut flights = self.flights.lock();
        let Some(mine) = &self.flight else {
            return 0;
        };
        if flights
            .get(self.key)
            .is_some_and(|current| Arc::ptr_eq(current, mine))
        {
            flights.remove(self.key);
        }
        // Every clone of a flight is taken and dropped under the map's lock (held here).
        Arc::strong_count(mine) - 1
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock();
        // Dropped under the map's lock, as every clone of the flight is taken under it: the
        // count seen below cannot be raced by another ticket leaving at the same moment.
        let mine = self.flight.take();
        let is_current = matches!(
            (flights.get(self.key), &mine),
            (Some(current), Some(mine)) if Arc::ptr_eq(current, mine)
        );
        drop(mine);
        if is_current
            && flights
                .get(self.key)
                .is_some_and(|current| Arc::strong_count(current) == 1)
        {
            flights.remove(self.key);
        }
    }
}

/// Operations every [`Cache`] gets for free, through a blanket implementation.
///
/// Also `cache_memory::CacheExt` and `cache_redis::CacheExt`: a crate that depends on one
/// backend imports it from there.
pub trait CacheExt: Cache {
    /// Returns the value of `key`, loading and storing it (with `ttl`) when it is missing.
    ///
    /// When many tasks of this process ask for the same missing key at once, the loader of
    /// one of them runs and every one of them gets its value: one load per key however many
    /// requests race for it (needs the backend's [`Cache::single_flight`]; both backends of
    /// this workspace have one). If the loader fails, every waiter gets
    /// [`CacheError::Load`] with the same source, and nothing is cached: the next call loads
    /// again. If the task running the loader is cancelled (its future dropped) or panics, one
    /// of the waiters runs its own loader instead, so nobody waits forever.
    ///
    /// The cache is read first (a hit costs one `get`), and once more before loading, in case
    /// another load stored the value meanwhile. Loads are shared within one process only:
    /// processes sharing a Redis may each load the same key once.
    ///
    /// A loader must not ask for its own key through `get_or_set_with`, directly or through
    /// a task it waits for: it would wait for itself forever. A loaded value the cache
    /// refuses to store (over the backend's size limit, or with a TTL too large for it) is an
    /// error for every caller, and the next call loads it again.
    ///
    /// # Errors
    /// [`CacheError::Load`] when the loader fails; [`CacheError::InvalidTtl`] for a zero TTL,
    /// before anything is loaded; otherwise the errors of [`Cache::get`] and [`Cache::set`].
    /// A waiter gets a copy of the error the leading caller got.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use cache_core::{Cache, CacheExt, Result};
    /// use cache_memory::MemoryCache;
    ///
    /// async fn user_name(cache: &impl CacheExt, id: u64) -> Result<String> {
    ///     cache
    ///         .get_or_set_with(&format!("user:{id}"), Some(Duration::from_secs(60)), || async move {
    ///             // The expensive lookup, run once per missing key.
    ///             Ok::<_, std::io::Error>(format!("user number {id}"))
    ///         })
    ///         .await
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<()> {
    /// let cache = MemoryCache::new();
    /// assert_eq!(user_name(&cache, 7).await?, "user number 7");
    /// assert_eq!(cache.get("user:7").await?.as_deref(), Some("user number 7"));
    /// # Ok(())
    /// # }
    /// ```
    fn get_or_set_with<F, Fut, E>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        loader: F,
    ) -> impl Future<Output = Result<String>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = std::result::Result<String, E>> + Send,
        E: Into<BoxError>,
    {
        load_once(self, key, ttl, loader)
    }

    /// [`get_or_set_with`](Self::get_or_set_with) for bytes: reads with
    /// [`Cache::get_bytes`], stores with [`Cache::set_bytes`], and shares the loaded
    /// [`Bytes`] with every waiter without copying it.
    ///
    /// String and byte loads of one key share a flight: a string caller waiting on a byte
    /// load whose value is not UTF-8 gets [`CacheError::InvalidValue`].
    ///
    /// # Errors
    /// Those of [`get_or_set_with`](Self::get_or_set_with), with
    /// [`Cache::get_bytes`] and [`Cache::set_bytes`] in place of `get` and `set`.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use cache_core::{Bytes, CacheExt, Result};
    /// use cache_memory::MemoryCache;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<()> {
    /// let cache = MemoryCache::new();
    /// let avatar = cache
    ///     .get_or_set_bytes_with("avatar:7", Some(Duration::from_secs(60)), || async {
    ///         Ok::<_, std::io::Error>(Bytes::from(vec![0x89, b'P', b'N', b'G']))
    ///     })
    ///     .await?;
    /// assert_eq!(&avatar[..], b"\x89PNG");
    /// # Ok(())
    /// # }
    /// ```
    fn get_or_set_bytes_with<F, Fut, E>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        loader: F,
    ) -> impl Future<Output = Result<Bytes>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = std::result::Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        load_once(self, key, ttl, loader)
    }
}

impl<C: Cache> CacheExt for C {}

/// A value `get_or_set_with` can load: read, written and shared through the forms of
/// [`Cache`] that fit it.
trait Loadable: Sized + Send + Sync {
    fn read<C: Cache + ?Sized>(
        cache: &C,
        key: &str,
    ) -> impl Future<Output = Result<Option<Self>>> + Send;
    fn write<C: Cache + ?Sized>(
        &self,
        cache: &C,
        key: &str,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The value as a waiter's outcome.
    fn to_outcome(&self) -> Bytes;
    /// A waiter's copy of the outcome.
    fn from_outcome(bytes: &Bytes) -> Result<Self>;
}

impl Loadable for String {
    fn read<C: Cache + ?Sized>(
        cache: &C,
        key: &str,
    ) -> impl Future<Output = Result<Option<Self>>> + Send {
        cache.get(key)
    }

    fn write<C: Cache + ?Sized>(
        &self,
        cache: &C,
        key: &str,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send {
        cache.set(key, self, ttl)
    }

    fn to_outcome(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }

    fn from_outcome(bytes: &Bytes) -> Result<Self> {
        utf8(bytes.clone())
    }
}

impl Loadable for Bytes {
    fn read<C: Cache + ?Sized>(
        cache: &C,
        key: &str,
    ) -> impl Future<Output = Result<Option<Self>>> + Send {
        cache.get_bytes(key)
    }

    fn write<C: Cache + ?Sized>(
        &self,
        cache: &C,
        key: &str,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send {
        cache.set_bytes(key, self.clone(), ttl)
    }

    fn to_outcome(&self) -> Bytes {
        self.clone()
    }

    fn from_outcome(bytes: &Bytes) -> Result<Self> {
        Ok(bytes.clone())
    }
}

/// The body of both `get_or_set_with` forms.
async fn load_once<C, V, F, Fut, E>(
    cache: &C,
    key: &str,
    ttl: Option<Duration>,
    loader: F,
) -> Result<V>
where
    C: Cache + ?Sized,
    V: Loadable,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = std::result::Result<V, E>> + Send,
    E: Into<BoxError>,
{
    if let Some(value) = V::read(cache, key).await? {
        return Ok(value);
    }
    normalize_ttl(ttl)?;
    let Some(flights) = cache.single_flight() else {
        return load_and_store(cache, key, ttl, loader).await;
    };
    let ticket = flights.join(key);
    let mut outcome = ticket.flight().lock().await;
    if let Some(done) = outcome.as_mut() {
        return match done {
            Ok(value) => V::from_outcome(value),
            Err(err) => Err(err.share()),
        };
    }
    // Leading: the first caller, or a waiter whose leader went away. The value may have
    // been stored since this caller's first read.
    let mut result = match V::read(cache, key).await {
        Ok(Some(value)) => Ok(value),
        Ok(None) => load_and_store(cache, key, ttl, loader).await,
        Err(err) => Err(err),
    };
    let waiters = ticket.finish();
    if waiters > 0 {
        // A lone caller keeps its error untouched; waiters need copies.
        *outcome = Some(match &mut result {
            Ok(value) => Ok(value.to_outcome()),
            Err(err) => Err(err.share()),
        });
    }
    result
}

/// Runs `loader` and stores its value under `key`.
async fn load_and_store<C, V, F, Fut, E>(
    cache: &C,
    key: &str,
    ttl: Option<Duration>,
    loader: F,
) -> Result<V>
where
    C: Cache + ?Sized,
    V: Loadable,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = std::result::Result<V, E>> + Send,
    E: Into<BoxError>,
{
    let value = loader().await.map_err(|err| CacheError::Load {
        source: Arc::from(err.into()),
    })?;
    value.write(cache, key, ttl).await?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Bytes;

    #[test]
    fn the_last_ticket_out_removes_an_abandoned_flight() {
        let flights = SingleFlight::new();
        let first = flights.join("k");
        let second = flights.join("k");
        assert_eq!(flights.in_flight(), 1);
        drop(first);
        assert_eq!(flights.in_flight(), 1, "a waiter still holds it");
        drop(second);
        assert_eq!(flights.in_flight(), 0);
    }

    /// A cache whose `get` reads at once but answers 50 ms later, as a network store does.
    #[derive(Debug, Clone, Default)]
    struct SlowMap {
        map: Arc<Mutex<HashMap<String, Bytes>>>,
        flights: Arc<SingleFlight>,
    }

    impl Cache for SlowMap {
        async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>> {
            let value = self.map.lock().unwrap().get(key).cloned();
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(value)
        }
        async fn set_bytes(&self, key: &str, value: Bytes, _: Option<Duration>) -> Result<()> {
            self.map.lock().unwrap().insert(key.into(), value);
            Ok(())
        }
        async fn delete(&self, key: &str) -> Result<()> {
            self.map.lock().unwrap().remove(key);
            Ok(())
        }
        async fn clear(&self) -> Result<()> {
            self.map.lock().unwrap().clear();
            Ok(())
        }
        async fn close(&self) -> Result<()> {
            Ok(())
        }
        fn single_flight(&self) -> Option<&SingleFlight> {
            Some(&self.flights)
        }
    }

    /// Callers whose first read missed but who join after the leader finished find the value
    /// on their second read, instead of loading again.
    #[tokio::test(start_paused = true)]
    async fn a_caller_joining_after_the_load_finished_does_not_load_again() {
        let cache = SlowMap::default();
        let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // The leader reads (0-50 ms), reads again (50-100), loads (100-200) and stores; a
        // caller every 5 ms, some of them reading before the store and joining after it.
        let callers: Vec<_> = (0..60)
            .map(|i| {
                let (cache, loads) = (cache.clone(), Arc::clone(&loads));
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(i * 5)).await;
                    cache
                        .get_or_set_with("k", None, || async move {
                            loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Ok::<_, CacheError>("v".to_owned())
                        })
                        .await
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap().unwrap(), "v");
        }
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(cache.flights.in_flight(), 0);
    }

    /// A string caller waiting on a byte load of the same key shares it, and gets
    /// `InvalidValue` when the loaded bytes are not UTF-8; a byte caller gets them as they are.
    #[tokio::test(start_paused = true)]
    async fn string_and_byte_loads_of_one_key_share_a_flight() {
        let cache = SlowMap::default();
        let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let leader = {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move {
                cache
                    .get_or_set_bytes_with("k", None, || async move {
                        loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        Ok::<_, CacheError>(Bytes::from_static(b"\xff"))
                    })
                    .await
            })
        };
        // Both join while the leader loads (its reads take 100 ms, its load 500 ms).
        tokio::time::sleep(Duration::from_millis(150)).await;
        let text = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_set_with("k", None, || async {
                        Ok::<_, CacheError>("never loaded".to_owned())
                    })
                    .await
            })
        };
        let bytes = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_set_bytes_with("k", None, || async {
                        Ok::<_, CacheError>(Bytes::from_static(b"never loaded"))
                    })
                    .await
            })
        };
        assert_eq!(&leader.await.unwrap().unwrap()[..], b"\xff");
        assert_eq!(&bytes.await.unwrap().unwrap()[..], b"\xff");
        let err = text.await.unwrap().unwrap_err();
        assert!(matches!(err, CacheError::InvalidValue { .. }), "{err:?}");
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[derive(Debug)]
    struct MyError(u32);

    impl fmt::Display for MyError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "my error {}", self.0)
        }
    }

    impl std::error::Error for MyError {}

    /// The loader's own error type can be recovered, by the caller that ran it and by every
    /// caller that waited on it.
    #[tokio::test(start_paused = true)]
    async fn the_loader_error_downcasts_for_the_leader_and_for_waiters() {
        let cache = SlowMap::default();
        let callers: Vec<_> = (0..3)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    cache
                        .get_or_set_with("k", None, || async {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Err::<String, _>(MyError(7))
                        })
                        .await
                })
            })
            .collect();
        for caller in callers {
            match caller.await.unwrap() {
                Err(CacheError::Load { source }) => {
                    assert_eq!(source.downcast_ref::<MyError>().map(|e| e.0), Some(7));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_finished_flight_is_replaced_by_a_new_one() {
        let flights = SingleFlight::new();
        let first = flights.join("k");
        let waiter = flights.join("k");
        assert_eq!(first.finish(), 1, "one waiter");
        assert_eq!(flights.in_flight(), 0);
        let later = flights.join("k");
        assert!(!Arc::ptr_eq(
            waiter.flight.as_ref().unwrap(),
            later.flight.as_ref().unwrap()
        ));
        drop(waiter);
        drop(first);
        assert_eq!(flights.in_flight(), 1, "the later flight is still current");
        drop(later);
        assert_eq!(flights.in_flight(), 0);
    }
}
