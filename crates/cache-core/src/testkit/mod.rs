//! The conformance suite: one public async function per rule of the [`Cache`] contract.
//!
//! Each function takes a cache to exercise, panics with a message naming the broken rule, and
//! writes only keys under its own `testkit:<function>:` prefix, so the suite can share a store
//! with other tests. [`clear_removes_every_entry`] and [`run_all`] clear the whole cache and
//! [`close_is_final_for_every_clone`] closes it: give them a cache of their own.
//!
//! Functions that wait for a TTL use the tokio clock (`tokio::time::sleep`) with generous
//! margins, so they hold for real stores on a loaded machine and run instantly on a backend
//! whose clock follows tokio's paused time. Concurrency functions spawn tasks on the current
//! tokio runtime (use a multi-threaded one) and fail, rather than hang, after a watchdog
//! timeout of [`WATCHDOG`].
//!
//! # Example: running the suite on a backend of your own
//!
//! The backend below, a `HashMap` behind one lock, passes the suite. It is complete: copy it
//! into a crate with `cache-core` (feature `testkit`) and `tokio` (features `macros`,
//! `rt-multi-thread` and `time`) as dependencies, and it runs.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::{Arc, Mutex, MutexGuard};
//! use std::time::Duration;
//!
//! use cache_core::{
//!     Bytes, Cache, CacheError, CacheStats, Result, SingleFlight, Stat, StatsCounters,
//!     normalize_ttl,
//! };
//! use tokio::time::Instant;
//!
//! type Map = HashMap<String, (Bytes, Option<Instant>)>;
//!
//! #[derive(Debug, Clone, Default)]
//! struct LockedMap {
//!     map: Arc<Mutex<Map>>,
//!     closed: Arc<AtomicBool>,
//!     // Shared by clones: the counts behind `stats()`, and the loads in flight behind
//!     // `get_or_set_with`.
//!     stats: Arc<StatsCounters>,
//!     flights: Arc<SingleFlight>,
//! }
//!
//! impl LockedMap {
//!     fn open(&self) -> Result<MutexGuard<'_, Map>> {
//!         if self.closed.load(Ordering::Acquire) {
//!             return Err(CacheError::Closed);
//!         }
//!         Ok(self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
//!     }
//! }
//!
//! impl Cache for LockedMap {
//!     async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>> {
//!         let mut map = self.open()?;
//!         let value = match map.get(key) {
//!             Some((value, None)) => Some(value.clone()),
//!             Some((value, Some(at))) if Instant::now() < *at => Some(value.clone()),
//!             Some(_) => {
//!                 map.remove(key);
//!                 self.stats.add(Stat::Expiration, 1);
//!                 None
//!             }
//!             None => None,
//!         };
//!         self.stats.add(if value.is_some() { Stat::Hit } else { Stat::Miss }, 1);
//!         Ok(value)
//!     }
//!
//!     async fn set_bytes(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
//!         let expires_at = match normalize_ttl(ttl)? {
//!             None => None,
//!             Some(ttl) => Some(Instant::now().checked_add(ttl).ok_or(CacheError::InvalidTtl {
//!                 ttl,
//!                 reason: "too large for this clock",
//!             })?),
//!         };
//!         self.open()?.insert(key.to_owned(), (value, expires_at));
//!         self.stats.add(Stat::Set, 1);
//!         Ok(())
//!     }
//!
//!     async fn delete(&self, key: &str) -> Result<()> {
//!         self.open()?.remove(key);
//!         self.stats.add(Stat::Delete, 1);
//!         Ok(())
//!     }
//!
//!     async fn clear(&self) -> Result<()> {
//!         self.open()?.clear();
//!         Ok(())
//!     }
//!
//!     async fn close(&self) -> Result<()> {
//!         self.closed.store(true, Ordering::Release);
//!         self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
//!         Ok(())
//!     }
//!
//!     // The string forms and the batches keep their default bodies: on top of the bytes,
//!     // one call per key.
//!
//!     fn stats(&self) -> CacheStats {
//!         self.stats.snapshot()
//!     }
//!
//!     fn single_flight(&self) -> Option<&SingleFlight> {
//!         Some(&self.flights)
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() {
//!     cache_core::testkit::run_all(LockedMap::default()).await;
//! }
//! ```

mod basic;
mod batch;
mod bytes;
mod concurrency;
mod keys;
mod lifecycle;
mod loading;
mod stale;
mod stats;
mod ttl;
#[cfg(feature = "serde")]
mod typed;

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

pub use basic::{
    clear_removes_every_entry, delete_missing_key_is_ok, delete_removes_only_that_key,
    missing_key_is_none, set_overwrites_value, set_then_get_returns_value,
};
pub use batch::{
    delete_many_removes_only_the_given_keys, empty_batches_are_fine,
    get_many_bytes_with_ttl_answers_as_get_bytes_with_ttl,
    get_many_keeps_key_order_and_reports_missing_keys, large_batches_round_trip,
    set_many_stores_every_entry_with_one_ttl, set_many_with_invalid_ttl_changes_nothing,
};
pub use bytes::{
    byte_batches_round_trip_in_key_order, byte_values_round_trip,
    get_many_of_bytes_that_are_not_utf8_names_the_position, set_bytes_follows_the_ttl_rules,
    string_and_byte_forms_share_entries,
};
pub use concurrency::{
    concurrent_writers_on_disjoint_keys_lose_nothing,
    concurrent_writers_on_shared_keys_keep_a_written_value,
};
pub use keys::{awkward_keys_round_trip, awkward_values_round_trip, glob_characters_are_literal};
pub use lifecycle::{close_is_final_for_every_clone, dropped_operations_never_corrupt};
pub use loading::{
    get_or_set_bytes_with_runs_the_loader_once, get_or_set_with_checks_the_ttl_before_loading,
    get_or_set_with_returns_a_present_value, get_or_set_with_runs_the_loader_once,
    get_or_set_with_shares_a_loader_error_and_does_not_cache_it,
    get_or_set_with_survives_a_cancelled_loader,
};
pub use stale::get_stale_bytes_returns_a_live_value_with_zero_age;
pub use stats::stats_count_a_scripted_sequence;
pub use ttl::{
    expired_entry_is_never_returned, overflowing_ttl_is_rejected_and_changes_nothing,
    plain_set_drops_an_earlier_ttl, sub_millisecond_ttl_rounds_up_and_expires,
    ttl_set_on_existing_key_applies, zero_ttl_is_rejected_and_changes_nothing,
};
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use typed::{typed_value_that_does_not_decode_is_invalid_value, typed_values_round_trip};

use crate::Cache;

/// How long a concurrency check may run before it is failed as a deadlock.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs every check of the suite on `cache`, then closes it.
///
/// Clears the cache on the way: give it a cache (or namespace) of its own. It holds up to
/// about 5,000 keys at once, so a bounded backend needs room for them. With the `serde`
/// feature the `TypedCache` checks run too.
pub async fn run_all<C: Cache + Clone + Debug + 'static>(cache: C) {
    missing_key_is_none(&cache).await;
    set_then_get_returns_value(&cache).await;
    set_overwrites_value(&cache).await;
    delete_missing_key_is_ok(&cache).await;
    delete_removes_only_that_key(&cache).await;
    awkward_keys_round_trip(&cache).await;
    awkward_values_round_trip(&cache).await;
    glob_characters_are_literal(&cache).await;
    zero_ttl_is_rejected_and_changes_nothing(&cache).await;
    overflowing_ttl_is_rejected_and_changes_nothing(&cache).await;
    // The checks that wait for a TTL to pass run side by side: each has keys of its own, and
    // one at a time they would spend about 5 s asleep. Boxed, so that a backend with large
    // futures does not put them all on the caller's stack at once.
    tokio::join!(
        Box::pin(expired_entry_is_never_returned(&cache)),
        Box::pin(sub_millisecond_ttl_rounds_up_and_expires(&cache)),
        Box::pin(plain_set_drops_an_earlier_ttl(&cache)),
        Box::pin(ttl_set_on_existing_key_applies(&cache)),
        Box::pin(set_bytes_follows_the_ttl_rules(&cache)),
        Box::pin(set_many_stores_every_entry_with_one_ttl(&cache)),
    );
    get_stale_bytes_returns_a_live_value_with_zero_age(&cache).await;
    byte_values_round_trip(&cache).await;
    string_and_byte_forms_share_entries(&cache).await;
    byte_batches_round_trip_in_key_order(&cache).await;
    get_many_of_bytes_that_are_not_utf8_names_the_position(&cache).await;
    concurrent_writers_on_disjoint_keys_lose_nothing(&cache).await;
    concurrent_writers_on_shared_keys_keep_a_written_value(&cache).await;
    dropped_operations_never_corrupt(&cache).await;
    stats_count_a_scripted_sequence(&cache).await;
    get_many_keeps_key_order_and_reports_missing_keys(&cache).await;
    set_many_with_invalid_ttl_changes_nothing(&cache).await;
    delete_many_removes_only_the_given_keys(&cache).await;
    empty_batches_are_fine(&cache).await;
    get_many_bytes_with_ttl_answers_as_get_bytes_with_ttl(&cache).await;
    large_batches_round_trip(&cache).await;
    // The loader checks wait for slow loaders: side by side too.
    tokio::join!(
        Box::pin(get_or_set_with_returns_a_present_value(&cache)),
        Box::pin(get_or_set_with_checks_the_ttl_before_loading(&cache)),
        Box::pin(get_or_set_with_runs_the_loader_once(&cache)),
        Box::pin(get_or_set_with_shares_a_loader_error_and_does_not_cache_it(
            &cache
        )),
        Box::pin(get_or_set_with_survives_a_cancelled_loader(&cache)),
        Box::pin(get_or_set_bytes_with_runs_the_loader_once(&cache)),
    );
    #[cfg(feature = "serde")]
    {
        typed_values_round_trip(&cache).await;
        typed_value_that_does_not_decode_is_invalid_value(&cache).await;
    }
    clear_removes_every_entry(&cache).await;
    close_is_final_for_every_clone(cache).await;
}

/// The key `name` under the prefix of check `check`.
fn key(check: &str, name: impl std::fmt::Display) -> String {
    format!("testkit:{check}:{name}")
}

/// Awaits `fut`, panicking with `what` if it fails.
async fn ok<T>(what: &str, fut: impl Future<Output = crate::Result<T>>) -> T {
    match fut.await {
        Ok(value) => value,
        Err(err) => panic!("{what} failed: {err} ({err:?})"),
    }
}

/// Runs `attempt(n)` for n = 0, 1, ... until one finishes within `ttl` of its start, and
/// returns that `n` and what the attempt returned. An attempt writes an entry with `ttl` and
/// reads it back: on a loaded machine the read can come after the TTL has passed, which says
/// nothing about the backend, so such an attempt is started over (with keys of its own)
/// rather than judged.
async fn in_time<T, Fut: Future<Output = T>>(
    what: &str,
    ttl: Duration,
    mut attempt: impl FnMut(usize) -> Fut,
) -> (usize, T) {
    const ATTEMPTS: usize = 10;
    for n in 0..ATTEMPTS {
        let started = tokio::time::Instant::now();
        let seen = attempt(n).await;
        if started.elapsed() < ttl {
            return (n, seen);
        }
    }
    panic!("{what}: {ATTEMPTS} attempts in a row took longer than the ttl of {ttl:?}")
}

/// Awaits `fut` under the [`WATCHDOG`], panicking if it does not finish in time.
async fn watchdog<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WATCHDOG, fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {WATCHDOG:?}: deadlock or lost wake-up"),
    }
}
