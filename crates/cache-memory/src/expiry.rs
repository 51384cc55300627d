//! The expiry index: which entries expire when, for the sweep and for eviction.
//!
//! An entry with a TTL has one *current* item `(at, key)` in one shard's min-heap, sharing the
//! map's `Arc<str>` key, with `at` no later than the entry's expiry: the entry records `at` as
//! its `indexed_at`. A write pushes a new item only when it brings the expiry before
//! `indexed_at` (a new key, or a shorter TTL); the usual overwrite, which pushes the expiry
//! later, pushes nothing. When a current item pops, its entry is removed if it has expired,
//! and otherwise indexed again at its expiry time. Items whose entry is gone, replaced, or
//! indexed at another time are *stale* and dropped when popped.
//!
//! Popping in expiry order makes the sweep's work proportional to what has expired, not to
//! the cache's size, and lets a full cache evict expired entries before any live one. Stale
//! items are bounded: a shard is compacted once it holds more than twice its current items
//! plus [`COMPACT_SLACK`], at amortised O(1) per push.
//!
//! Lock order: a heap shard's mutex may be held while calling into the map (through
//! [`Expiring`]), never the other way round.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::shards::Shards;

/// What the index needs from the map.
pub(crate) trait Expiring {
    /// Whether the map holds this very `key`, indexed at `at`.
    fn is_current(&self, key: &Arc<str>, at: u64) -> bool;
    /// Handles a popped item of `key` indexed at `at`, at time `now`: the entry is removed
    /// if its deadline is at or before `now`. Eviction passes the time itself, so that
    /// expired entries go first, kept ones included; the sweep passes the time less
    /// `keep_expired_for`, so that it reclaims only the entries past their retention.
    fn popped(&self, key: &Arc<str>, at: u64, now: u64) -> Popped;
}

/// What became of the entry of a popped item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Popped {
    /// The item was stale, or its entry no longer expires: nothing to do.
    Dropped,
    /// The entry had expired and was removed.
    Removed,
    /// The entry expires later than the item said: it is now indexed at this time, and the
    /// item must be pushed again.
    Reindexed(u64),
}

/// Items a shard may hold beyond twice its current ones before it is compacted.
const COMPACT_SLACK: usize = 1024;

/// `(at, key)`, smallest `at` on top.
type Item = Reverse<(u64, Arc<str>)>;

#[derive(Debug)]
struct ExpiryShard {
    heap: BinaryHeap<Item>,
    compact_above: usize,
}

impl Default for ExpiryShard {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            compact_above: COMPACT_SLACK,
        }
    }
}

/// The sharded expiry index.
#[derive(Debug)]
pub(crate) struct ExpiryIndex {
    shards: Shards<ExpiryShard>,
    /// No item of any shard is due before this time: a lower bound, so that eviction looks
    /// through the shards only when something may have expired.
    earliest: AtomicU64,
}

impl ExpiryIndex {
    /// An index of `shards` shards (at least one).
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            shards: Shards::new(shards),
            earliest: AtomicU64::new(u64::MAX),
        }
    }

    /// The number of shards.
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.count()
    }

    /// Records that `key` is indexed at `at`.
    pub(crate) fn push(&self, shard: usize, at: u64, key: Arc<str>, map: &impl Expiring) {
        let mut guard = self.shards.lock(shard);
        let shard = &mut *guard;
        shard.heap.push(Reverse((at, key)));
        // After the push, under the lock: see `evict_expired`.
        self.earliest.fetch_min(at, Ordering::AcqRel);
        if shard.heap.len() > shard.compact_above {
            shard
                .heap
                .retain(|Reverse((at, key))| map.is_current(key, *at));
            shard.compact_above = 2 * shard.heap.len() + COMPACT_SLACK;
            if shard.heap.capacity() > 4 * shard.heap.len() + COMPACT_SLACK {
                shard.heap.shrink_to(2 * shard.heap.len());
            }
        }
    }

    /// Pops up to `budget` items of `shard` that are due at or before `now`, removing their
    /// entries if expired and indexing again those that expire later. Stops early once
    /// `stop_after` entries were removed. Returns (items popped, entries removed).
    pub(crate) fn pop_expired(
        &self,
        shard: usize,
        now: u64,
        budget: usize,
        stop_after: usize,
        map: &impl Expiring,
    ) -> (usize, usize) {
        pop_due(&mut self.shards.lock(shard), now, budget, stop_after, map)
    }

    /// Whether an item may be due at `now`: false when the index holds none due by then.
    #[inline]
    pub(crate) fn may_be_due(&self, now: u64) -> bool {
        self.earliest.load(Ordering::Acquire) <= now
    }

    /// Removes one expired entry, from any shard, to make room; true if it did. Costs one
    /// atomic load when nothing is due; otherwise it locks each shard in turn, popping up to
    /// `budget` items per shard until one entry is removed, and peeking at the others.
    pub(crate) fn evict_expired(&self, now: u64, budget: usize, map: &impl Expiring) -> bool {
        if !self.may_be_due(now) {
            return false;
        }
        // Reset, then lower again to the earliest head seen. A push that lands meanwhile
        // either lowers the bound after this store, or is in its heap before the scan below
        // looks at it: the bound stays a lower bound.
        self.earliest.store(u64::MAX, Ordering::Release);
        let mut earliest = u64::MAX;
        let mut removed = false;
        for index in 0..self.shards.count() {
            let mut shard = self.shards.lock(index);
            if !removed {
                removed = pop_due(&mut shard, now, budget, 1, map).1 > 0;
            }
            if let Some(Reverse((at, _))) = shard.heap.peek() {
                earliest = earliest.min(*at);
            }
        }
        self.earliest.fetch_min(earliest, Ordering::AcqRel);
        removed
    }

    /// Drops every item. Call it before clearing the map, so that a key inserted meanwhile
    /// keeps its item or loses its entry too.
    pub(crate) fn clear(&self) {
        self.shards.reset();
    }

    /// The number of items, current and stale.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.sum(|shard| shard.heap.len())
    }
}

/// Pops up to `budget` items of a locked shard that are due at or before `now`, removing
/// their entries if expired and indexing again those that expire later. Stops early once
/// `stop_after` entries were removed. Returns (items popped, entries removed).
fn pop_due(
    shard: &mut ExpiryShard,
    now: u64,
    budget: usize,
    stop_after: usize,
    map: &impl Expiring,
) -> (usize, usize) {
    let (mut popped, mut removed) = (0, 0);
    while popped < budget && removed < stop_after {
        match shard.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => {}
            _ => break,
        }
        let Some(Reverse((at, key))) = shard.heap.pop() else {
            break;
        };
        popped += 1;
        match map.popped(&key, at, now) {
            Popped::Dropped => {}
            Popped::Removed => removed += 1,
            // Later than `now`, so not popped again in this loop; the same shard, as the
            // shard follows the key.
            Popped::Reindexed(later) => shard.heap.push(Reverse((later, key))),
        }
    }
    (popped, removed)
}
