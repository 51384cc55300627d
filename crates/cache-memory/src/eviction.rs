//! Making room: the count and byte bounds, and what the eviction policy asks of the map.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::entry::{Entry, LastAccess};
use crate::policy::{self, Entries, Queued, ShardGuard, Slot};
use crate::{CacheError, EVICT_POP_BUDGET, Inner, MemoryCache, NEVER, Result, Stat};

impl<A: LastAccess> Inner<A> {
    /// Refuses an entry that `max_bytes` could never hold.
    pub(crate) fn check_weight(&self, key_len: usize, value_len: usize) -> Result<()> {
        match self.max_bytes {
            Some(limit) if weight(key_len, value_len) > limit => Err(CacheError::TooLarge {
                what: "entry",
                size: weight(key_len, value_len),
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// Accounts for an entry just removed from the map.
    pub(crate) fn forget(&self, key: &str, entry: &Entry<A>) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.forget_bytes(key, entry);
    }

    /// Gives back the weight of an entry just removed from the map, under `max_bytes`.
    fn forget_bytes(&self, key: &str, entry: &Entry<A>) {
        if self.max_bytes.is_some() {
            self.bytes
                .fetch_sub(weight(key.len(), entry.value().len()), Ordering::AcqRel);
        }
    }

    /// Whether a capacity or a byte bound is set, and with it the eviction policy.
    pub(crate) fn bounded(&self) -> bool {
        self.max_capacity.is_some() || self.max_bytes.is_some()
    }

    /// Counts `weight` bytes of an entry about to be written (its policy hash `hash`), first
    /// evicting entries until they fit under `max_bytes` (at least `weight`, as checked by
    /// [`check_weight`](Self::check_weight)).
    pub(crate) fn reserve_bytes(&self, hash: u64, weight: usize) {
        if let Some(limit) = self.max_bytes {
            self.reserve_under(&self.bytes, weight, limit, hash, false, &mut None);
        }
    }

    /// Counts an entry about to be inserted (its policy hash `hash`), first evicting one if
    /// the cache is full, from `own`, the key's policy shard, if it holds a live entry (it is
    /// released otherwise, before other shards are locked). An entry the policy evicts for
    /// it hands its slot over: the count stays as it is, without the decrement and
    /// increment of giving it back and taking it again.
    pub(crate) fn reserve_slot(&self, hash: u64, own: &mut Option<ShardGuard<'_>>) {
        match self.max_capacity {
            Some(capacity) => {
                // A full cache with nothing due to expire, the usual state of a bounded one:
                // the key's own shard evicts and hands the slot over, as `evict_one` would
                // have it do first, without the loop around it. Otherwise (room left, an
                // entry may have expired, or the shard holds no live entry) the general path.
                if self.count.load(Ordering::Acquire) >= capacity
                    && !self.expiry.may_be_due(u64::MAX - 1)
                    && let Some(own) = own
                    && own.evict(&Evictor {
                        inner: self,
                        hand_over: true,
                    })
                {
                    return;
                }
                self.reserve_under(&self.count, 1, capacity, hash, true, own);
            }
            None => {
                self.count.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// Adds `amount` to `counter` once the sum fits under `limit`, evicting entries (to make
    /// room for a key of policy hash `hash`) until it does. `hand_over`: `counter` is the
    /// entry count and `amount` one, so a slot the policy frees is taken as it is. `own`:
    /// the key's policy shard if the caller holds it (see [`evict_one`](Self::evict_one)).
    fn reserve_under(
        &self,
        counter: &AtomicUsize,
        amount: usize,
        limit: usize,
        hash: u64,
        hand_over: bool,
        own: &mut Option<ShardGuard<'_>>,
    ) {
        let mut current = counter.load(Ordering::Acquire);
        loop {
            if current.saturating_add(amount) <= limit {
                match counter.compare_exchange_weak(
                    current,
                    current + amount,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return,
                    Err(actual) => current = actual,
                }
                continue;
            }
            match self.evict_one(hash, hand_over, own) {
                Evicted::HandedOver => return,
                Evicted::Freed => {}
                Evicted::Nothing => {
                    // No shard holds a live entry: what is counted belongs to inserts between
                    // `map.entry` and `policy.push` on other threads, a few instructions
                    // away. Only a bound below what the threads inserting at once hold gets
                    // here.
                    std::thread::yield_now();
                }
            }
            current = counter.load(Ordering::Acquire);
        }
    }

    /// Removes one entry to make room for a key of policy hash `hash`: an expired one if the
    /// expiry index knows one, else the policy's choice in the key's own shard, else in
    /// another. With `hand_over`, an entry the policy removes keeps its slot in the count
    /// for the caller. The key's own shard is `own` if the caller holds it; it is released
    /// before another shard is locked, as [`ShardGuard`] requires.
    fn evict_one(&self, hash: u64, hand_over: bool, own: &mut Option<ShardGuard<'_>>) -> Evicted {
        // The clock is read only when the index may hold something due.
        if self.expiry.may_be_due(u64::MAX - 1)
            && self
                .expiry
                .evict_expired(self.now(), EVICT_POP_BUDGET, self)
        {
            return Evicted::Freed;
        }
        let evictor = Evictor {
            inner: self,
            hand_over,
        };
        let evicted = match own {
            Some(own) => own.evict(&evictor),
            None => self.policy.evict(policy::shard_of(hash), &evictor),
        } || {
            *own = None;
            let start = self.evict_next.fetch_add(1, Ordering::Relaxed);
            let shards = self.policy.shard_count();
            (0..shards).any(|i| self.policy.evict(start.wrapping_add(i), &evictor))
        };
        match (evicted, hand_over) {
            (false, _) => Evicted::Nothing,
            (true, true) => Evicted::HandedOver,
            (true, false) => Evicted::Freed,
        }
    }

    /// Accounts for an entry the policy removed.
    fn forget_evicted(&self, key: &str, entry: &Entry<A>, hand_over: bool) {
        if hand_over {
            self.forget_bytes(key, entry);
        } else {
            self.forget(key, entry);
        }
    }
}

/// What [`Inner::evict_one`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evicted {
    /// Removed an entry and took it off the count.
    Freed,
    /// Removed an entry and left its slot in the count, for the caller.
    HandedOver,
    /// Found nothing to remove.
    Nothing,
}

/// The map as the policy sees it while evicting: `hand_over` says whether an entry removed
/// leaves its slot in the count for the insert that asked for room.
pub(crate) struct Evictor<'a, A> {
    pub(crate) inner: &'a Inner<A>,
    pub(crate) hand_over: bool,
}

impl<A: LastAccess> Entries for Evictor<'_, A> {
    #[inline]
    fn visit(&self, queued: &Queued, rejected: bool) -> Slot {
        let inner = self.inner;
        let mut slot = Slot::Stale;
        let this_key = |stored: &Arc<str>| Arc::ptr_eq(stored, &queued.key);
        let removed = inner.remove_if(queued.hash, this_key, |_, entry| {
            let deadline = inner.deadline(entry);
            slot = if deadline != NEVER && deadline <= inner.now() {
                Slot::Expired
            } else if entry.take_read() {
                Slot::Used
            } else {
                Slot::Unused
            };
            slot != Slot::Used
        });
        if let Some((stored, entry)) = removed {
            inner.forget_evicted(&stored, &entry, self.hand_over);
            if slot == Slot::Expired {
                inner.stats.add(Stat::Expiration, 1);
            } else {
                inner.stats.add(Stat::Eviction, 1);
                if rejected {
                    inner.stats.add(Stat::Rejection, 1);
                }
            }
        }
        slot
    }

    fn age(&self, queued: &Queued) -> Option<u64> {
        self.inner.find(
            queued.hash,
            |stored| Arc::ptr_eq(stored, &queued.key),
            |_, entry| entry.take_read_count(),
        )
    }

    fn is_live(&self, queued: &Queued) -> bool {
        self.inner
            .find(
                queued.hash,
                |stored| Arc::ptr_eq(stored, &queued.key),
                |_, _| (),
            )
            .is_some()
    }

    fn remove(&self, queued: &Queued, rejected: bool) -> bool {
        let inner = self.inner;
        let this_key = |stored: &Arc<str>| Arc::ptr_eq(stored, &queued.key);
        let Some((stored, entry)) = inner.remove_if(queued.hash, this_key, |_, _| true) else {
            return false;
        };
        inner.forget_evicted(&stored, &entry, self.hand_over);
        let deadline = inner.deadline(&entry);
        if deadline != NEVER && deadline <= inner.now() {
            inner.stats.add(Stat::Expiration, 1);
        } else {
            inner.stats.add(Stat::Eviction, 1);
            if rejected {
                inner.stats.add(Stat::Rejection, 1);
            }
        }
        true
    }
}

/// The weight of an entry under `max_bytes`.
pub(crate) fn weight(key_len: usize, value_len: usize) -> usize {
    key_len
        .saturating_add(value_len)
        .saturating_add(MemoryCache::ENTRY_OVERHEAD)
}
