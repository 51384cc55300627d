//! The entries: reads with lazy expiry, writes, removals, and what the expiry index asks of
//! the map.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::entry::{Entry, Incoming, LastAccess};
use crate::eviction::{self, weight};
use crate::expiry::{Expiring, Popped};
use crate::{Bytes, CacheError, Inner, NEVER, Result, Stat, Ttl, normalize_ttl, sweeper};

thread_local! {
    /// The cache (the address of its `Inner`) and the hash of the key this thread's last
    /// read missed, or zeros: a write of that key next, the usual step after a miss, skips
    /// the look-up for an entry to overwrite (see [`Inner::insert`]).
    static MISSED: Cell<(usize, u64)> = const { Cell::new((0, 0)) };
}

impl<A: LastAccess> Inner<A> {
    /// Nanoseconds since the cache's epoch.
    pub(crate) fn now(&self) -> u64 {
        // Saturates after 292 years of uptime, where every expiry is in the past anyway.
        u64::try_from(
            Instant::now()
                .saturating_duration_since(self.epoch)
                .as_nanos(),
        )
        .unwrap_or(NEVER - 1)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(CacheError::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn entry_count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub(crate) fn expiry_shards(&self) -> usize {
        self.expiry.shard_count()
    }

    /// The `expires_at` for `ttl` set now, with checked arithmetic.
    #[inline]
    pub(crate) fn expires_at(&self, ttl: Option<Duration>) -> Result<u64> {
        // No TTL, the usual case, without a call.
        match ttl {
            None => Ok(NEVER),
            Some(ttl) => self.expires_after(ttl),
        }
    }

    /// [`expires_at`](Self::expires_at) for a TTL.
    fn expires_after(&self, ttl: Duration) -> Result<u64> {
        let Some(ttl) = normalize_ttl(Some(ttl))? else {
            return Ok(NEVER);
        };
        u64::try_from(ttl.as_nanos())
            .ok()
            .and_then(|nanos| self.now().checked_add(nanos))
            .filter(|&at| at < NEVER)
            .ok_or(CacheError::InvalidTtl {
                ttl,
                reason: "too large: the in-memory cache takes ttls of up to about 146 years",
            })
    }

    /// When `entry` expires: at its TTL, or after `time_to_idle` without a read or write,
    /// whichever comes first.
    pub(crate) fn deadline(&self, entry: &Entry<A>) -> u64 {
        let expires_at = entry.expires_at();
        match self.idle {
            None => expires_at,
            Some(idle) => expires_at.min(entry.touched.get().saturating_add(idle)),
        }
    }

    /// When an entry written at `now` with expiry `expires_at` is due to expire.
    pub(crate) fn due(&self, expires_at: u64, now: u64) -> u64 {
        self.idle
            .map_or(expires_at, |idle| expires_at.min(now.saturating_add(idle)))
    }

    /// `keep_expired_for` as the trait reports it: [`Duration::MAX`] when saturated, as an
    /// entry is then never reclaimed for its age.
    pub(crate) fn stale_retention(&self) -> Duration {
        match self.keep {
            u64::MAX => Duration::MAX,
            keep => Duration::from_nanos(keep),
        }
    }

    /// The latest deadline an entry may have passed and still be held at `now`: entries
    /// whose deadline is at or before it are past their retention, to be reclaimed.
    pub(crate) fn reclaim_horizon(&self, now: u64) -> u64 {
        // No deadline is 0 (a TTL or an idle time is at least 1 ms), so a saturated 0
        // reclaims nothing.
        now.saturating_sub(self.keep)
    }

    /// Applies `read` to the live value of `key`, under its shard's read lock; `None` when
    /// the key is missing or expired (an expired entry past its retention is removed).
    pub(crate) fn read<T>(
        &self,
        key: &str,
        read: impl FnOnce(&Bytes, Option<u64>) -> T,
    ) -> Option<T> {
        self.read_or_stale(key, |entry, left| read(entry.value(), left), |_, _| None)
    }

    /// The value of `key` and how long ago it expired, if the cache holds it: a live entry
    /// (zero) or one kept by `keep_expired_for`. Counts a hit for a live entry, a miss
    /// otherwise.
    pub(crate) fn get_stale_bytes(&self, key: &str) -> Option<(Bytes, Duration)> {
        // `None` beside the value: it is live.
        let found = self.read_or_stale(
            key,
            |entry, _| (entry.value().clone(), None),
            |value, ago| Some((value.clone(), Some(ago))),
        );
        self.count_read(&found.as_ref().filter(|(_, ago)| ago.is_none()));
        found.map(|(value, ago)| (value, Duration::from_nanos(ago.unwrap_or(0))))
    }

    /// Applies `live` to the live value of `key`, or `stale` to its value and the
    /// nanoseconds since it expired if it is expired but within its retention (which it
    /// leaves as it is: expired, idle time not renewed, no read counted), under its shard's
    /// read lock. `None` when the key is missing, when `stale` says so, or when the entry is
    /// past its retention (then removed).
    fn read_or_stale<T>(
        &self,
        key: &str,
        live: impl FnOnce(&Entry<A>, Option<u64>) -> T,
        stale: impl FnOnce(&Bytes, u64) -> Option<T>,
    ) -> Option<T> {
        let hash = self.hash(key);
        let is_key = |stored: &Arc<str>| **stored == *key;
        // `Err(now)`: the entry was past its retention at `now`.
        let Some(found) = self.find(hash, is_key, |_, entry| {
            let deadline = self.deadline(entry);
            let mut left = None;
            if deadline != NEVER {
                let now = self.now();
                if deadline <= now {
                    // `keep` is 0 without `keep_expired_for`: nothing is kept.
                    let ago = now - deadline;
                    return if ago < self.keep {
                        Ok(stale(entry.value(), ago))
                    } else {
                        Err(now)
                    };
                }
                if self.idle.is_some() {
                    entry.touched.raise(now);
                }
                left = Some(deadline - now);
            }
            if self.bounded() {
                entry.record_read();
            }
            Ok(Some(live(entry, left)))
        }) else {
            self.note_miss(hash);
            return None;
        };
        match found {
            Ok(value) => value,
            Err(now) => {
                self.remove_expired(hash, key, now);
                self.note_miss(hash);
                None
            }
        }
    }

    /// Records that this thread's read of the key of hash `hash` found no entry.
    fn note_miss(&self, hash: u64) {
        MISSED.set((std::ptr::from_ref(self).addr(), hash));
    }

    /// Whether this thread's last read missed the key of hash `hash` in this cache; forgets
    /// that read either way.
    fn missed_last(&self, hash: u64) -> bool {
        MISSED.replace((0, 0)) == (std::ptr::from_ref(self).addr(), hash)
    }

    /// Removes the entry of `key` (of hash `hash`), found past its retention at `now` by a
    /// read, unless it was written since: off the read's hot path, which keeps it small.
    #[cold]
    #[inline(never)]
    fn remove_expired(&self, hash: u64, key: &str, now: u64) {
        let is_key = |stored: &Arc<str>| **stored == *key;
        #[cfg(test)]
        crate::tests::reached(crate::tests::Point::ExpiredReadBeforeRemoval);
        // Re-checked under the shard's write lock: an entry written (or read) meanwhile has a
        // deadline of at least that time + 1 ms, which is after `now`, so a fresh value is
        // never removed here.
        let horizon = self.reclaim_horizon(now);
        if let Some((stored, entry)) =
            self.remove_if(hash, is_key, |_, entry| self.deadline(entry) <= horizon)
        {
            self.forget(&stored, &entry);
            self.stats.add(Stat::Expiration, 1);
        }
    }

    /// The value of `key` as a `String`: one allocation, for the `String` itself.
    pub(crate) fn get(&self, key: &str) -> Result<Option<String>> {
        // A value `set` wrote is UTF-8 already; only bytes of unknown content are checked.
        self.read_or_stale(
            key,
            |entry, _| match entry.text() {
                Some(text) => Ok(String::from(text)),
                None => std::str::from_utf8(entry.value()).map(String::from),
            },
            |_, _| None,
        )
        .transpose()
        .map_err(|err| CacheError::InvalidValue {
            reason: "the stored value is not valid utf-8; set_bytes wrote it".into(),
            source: Some(Box::new(err)),
        })
    }

    /// The value of `key`, shared with the store: no allocation.
    pub(crate) fn get_bytes(&self, key: &str) -> Option<Bytes> {
        self.read(key, |value, _| value.clone())
    }

    /// The value of `key` and the time it has left (an idle timeout counted from now).
    pub(crate) fn get_bytes_with_ttl(&self, key: &str) -> Option<(Bytes, Ttl)> {
        self.read(key, |value, left| {
            let ttl = left.map_or(Ttl::Never, |nanos| {
                Ttl::Remaining(Duration::from_nanos(nanos))
            });
            (value.clone(), ttl)
        })
    }

    /// Counts a read's hit or miss.
    pub(crate) fn count_read<T>(&self, value: &Option<T>) {
        self.stats.add(
            if value.is_some() {
                Stat::Hit
            } else {
                Stat::Miss
            },
            1,
        );
    }

    /// Stores an entry whose weight [`check_weight`](Self::check_weight) accepted. The key
    /// is hashed once, for the map, the policy and the expiry index.
    pub(crate) fn insert(&self, key: &str, value: Incoming, expires_at: u64) {
        let hash = self.hash(key);
        // The weight is reserved before the map is touched (evicting needs the map's locks),
        // and an overwritten value's given back after: the bound holds throughout.
        if self.max_bytes.is_some() {
            self.reserve_bytes(hash, weight(key.len(), value.len()));
        }
        let touched = if self.idle.is_some() { self.now() } else { 0 };
        let due = self.due(expires_at, touched);
        let is_key = |stored: &Arc<str>| **stored == *key;
        let mut replaced = None;
        // After a miss of this key on this thread (a read, then a write of what it missed),
        // the key is most likely still missing: it goes straight to the insert. If another
        // thread wrote it meanwhile, the insert overwrites that entry and gives back the
        // slot it reserved, but an entry evicted to make that room stays evicted.
        let written = if self.missed_last(hash) {
            Err(value)
        } else {
            self.write_with(hash, is_key, value, |stored, entry, value| {
                replaced = Some(entry.value().len());
                overwrite(stored, entry, value, expires_at, touched, due)
            })
        };
        let indexed = match written {
            Ok(indexed) => indexed,
            Err(value) => {
                #[cfg(test)]
                crate::tests::reached(crate::tests::Point::InsertAfterMiss);
                // The key's policy shard, held from the eviction that makes room to the push
                // that indexes the key: one lock for both.
                let mut own = self.bounded().then(|| self.policy.lock(hash));
                self.reserve_slot(hash, &mut own);
                // New entries start unread, on probation: one never read before it reaches
                // probation's head is evicted there.
                let entry = Entry::new(value, expires_at, touched, due);
                let stored: Arc<str> = Arc::from(key);
                // The clone the policy or the expiry index keeps, taken before the map has
                // the key: one reference count increment, none when neither needs it.
                let kept = (self.bounded() || due != NEVER).then(|| Arc::clone(&stored));
                let inserted = self.insert_or_write(hash, stored, entry, |stored, held, entry| {
                    // Another task inserted the key since the miss above: overwrite its
                    // entry, indexed under its key, and give the reserved slot back.
                    replaced = Some(held.value().len());
                    overwrite(
                        stored,
                        held,
                        entry.into_incoming(),
                        expires_at,
                        touched,
                        due,
                    )
                });
                match (inserted, kept) {
                    (Ok(()), Some(kept)) if self.bounded() => {
                        let indexed = (due != NEVER).then(|| Arc::clone(&kept));
                        let entries = eviction::Evictor {
                            inner: self,
                            hand_over: false,
                        };
                        own.unwrap_or_else(|| self.policy.lock(hash))
                            .push(hash, kept, &entries);
                        indexed
                    }
                    (Ok(()), kept) => kept,
                    (Err(indexed), _) => {
                        self.count.fetch_sub(1, Ordering::AcqRel);
                        indexed
                    }
                }
            }
        };
        if let Some(old_len) = replaced
            && self.max_bytes.is_some()
        {
            self.bytes
                .fetch_sub(weight(key.len(), old_len), Ordering::AcqRel);
        }
        // Map guards are dropped by now: the index locks are taken after, never under, them.
        // The expiry index's shard is the hash's too, taken modulo its shard count.
        if let Some(key) = indexed {
            self.expiry.push(hash as usize, due, key, self);
        }
        if !self.sweep.is_running() {
            // No sweep task (outside tokio, or no timers): the writes reclaim instead.
            self.sweep_chunk(hash as usize, sweeper::RECLAIM_PER_WRITE);
        }
    }

    pub(crate) fn delete(&self, key: &str) {
        if let Some((stored, entry)) = self.map.remove(key) {
            self.forget(&stored, &entry);
        }
    }

    pub(crate) fn clear(&self) {
        // Indexes first: a key inserted meanwhile then either keeps its index items or loses
        // its entry too.
        self.expiry.clear();
        self.policy.clear();
        // Counted down one by one, so that inserts waiting for room see it free up at once.
        self.map.retain(|key, entry| {
            self.forget(key, entry);
            false
        });
    }

    /// One step of the sweep: removes entries of expiry shard `shard` past their retention
    /// (expired `keep_expired_for` ago, or at all without it), popping at most `budget`
    /// index items. Returns the items popped.
    pub(crate) fn sweep_chunk(&self, shard: usize, budget: usize) -> usize {
        // The index holds deadlines: the entries due for reclaiming are those whose deadline
        // is at or before the horizon. Kept entries' items wait until then, unpopped.
        let horizon = self.reclaim_horizon(self.now());
        self.expiry
            .pop_expired(shard, horizon, budget, usize::MAX, self)
            .0
    }

    /// Gives memory back after the map has shrunk to a quarter of its table.
    pub(crate) fn shrink_if_sparse(&self) {
        if self.map.capacity() > 4 * self.map.len() + 4096 {
            self.map.shrink_to_fit();
        }
    }
}

/// Overwrites an entry in place, written at `touched` and due to expire at `due`. Returns
/// its stored key when the entry needs a new expiry index item: when it is now due before
/// the item it has (if any).
pub(crate) fn overwrite<A: LastAccess>(
    stored: &Arc<str>,
    entry: &mut Entry<A>,
    value: Incoming,
    expires_at: u64,
    touched: u64,
    due: u64,
) -> Option<Arc<str>> {
    entry.set_value(value);
    entry.set_expires_at(expires_at);
    entry.touched.set(touched);
    // `NEVER` is never below anything: an entry without expiry keeps its item, dropped when
    // it pops.
    (due < entry.indexed_at()).then(|| {
        entry.set_indexed_at(due);
        Arc::clone(stored)
    })
}

impl<A: LastAccess> Expiring for Inner<A> {
    fn is_current(&self, key: &Arc<str>, at: u64) -> bool {
        self.map
            .get(&**key)
            .is_some_and(|entry| Arc::ptr_eq(entry.key(), key) && entry.indexed_at() == at)
    }

    fn popped(&self, key: &Arc<str>, at: u64, now: u64) -> Popped {
        let mut popped = Popped::Dropped;
        let removed = self.map.remove_if_mut(&**key, |stored, entry| {
            if !Arc::ptr_eq(stored, key) || entry.indexed_at() != at {
                return false;
            }
            let deadline = self.deadline(entry);
            if deadline <= now {
                return true;
            }
            // Written or read since it was indexed, with a later expiry (or none).
            entry.set_indexed_at(deadline);
            if deadline != NEVER {
                popped = Popped::Reindexed(deadline);
            }
            false
        });
        if let Some((stored, entry)) = removed {
            self.forget(&stored, &entry);
            self.stats.add(Stat::Expiration, 1);
            return Popped::Removed;
        }
        popped
    }
}
