//! The expiry index: which entries expire when, for the sweep and for eviction.
//!
//! Each `set` with a TTL pushes `(expires_at, write, key)` into one shard's min-heap, sharing
//! the map's `Arc<str>` key; `write` numbers the writes of one entry. A heap item is *current*
//! while the map holds that very `Arc` at that very write; an overwrite, delete or lazy
//! removal leaves it behind as *stale*, to be dropped when popped. Popping in expiry order
//! makes the sweep's work proportional to what has expired, not to the cache's size, and lets
//! a full cache evict expired entries before any live one. Stale items are bounded: a shard is compacted once it holds more than twice its
//! current items plus [`COMPACT_SLACK`], at amortised O(1) per push.
//!
//! Lock order: a heap shard's mutex may be held while calling into the map (through
//! [`Expiring`]), never the other way round.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::shards::Shards;

/// What the index needs from the map.
pub(crate) trait Expiring {
    /// Whether the map holds this very `key` at this `write` with this `expires_at`.
    fn is_current(&self, key: &Arc<str>, expires_at: u64, write: u32) -> bool;
    /// Removes the entry if [`is_current`](Self::is_current); true if it did.
    fn remove_if_current(&self, key: &Arc<str>, expires_at: u64, write: u32) -> bool;
}

/// Items a shard may hold beyond twice its current ones before it is compacted.
const COMPACT_SLACK: usize = 1024;

/// `(expires_at, write, key)`, smallest `expires_at` on top.
type Item = Reverse<(u64, u32, Arc<str>)>;

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
}

impl ExpiryIndex {
    /// An index of `shards` shards (at least one).
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            shards: Shards::new(shards),
        }
    }

    /// The number of shards.
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.count()
    }

    /// Records that write `write` of `key` expires at `expires_at`.
    pub(crate) fn push(
        &self,
        shard: usize,
        expires_at: u64,
        write: u32,
        key: Arc<str>,
        map: &impl Expiring,
    ) {
        let mut guard = self.shards.lock(shard);
        let shard = &mut *guard;
        shard.heap.push(Reverse((expires_at, write, key)));
        if shard.heap.len() > shard.compact_above {
            shard
                .heap
                .retain(|Reverse((at, write, key))| map.is_current(key, *at, *write));
            shard.compact_above = 2 * shard.heap.len() + COMPACT_SLACK;
            if shard.heap.capacity() > 4 * shard.heap.len() + COMPACT_SLACK {
                shard.heap.shrink_to(2 * shard.heap.len());
            }
        }
    }

    /// Pops up to `budget` items of `shard` that expire at or before `now`, removing their
    /// entries if still current. Stops early once `stop_after` entries were removed. Returns
    /// (items popped, entries removed).
    pub(crate) fn pop_expired(
        &self,
        shard: usize,
        now: u64,
        budget: usize,
        stop_after: usize,
        map: &impl Expiring,
    ) -> (usize, usize) {
        let mut shard = self.shards.lock(shard);
        let (mut popped, mut removed) = (0, 0);
        while popped < budget && removed < stop_after {
            match shard.heap.peek() {
                Some(Reverse((at, _, _))) if *at <= now => {}
                _ => break,
            }
            let Some(Reverse((at, write, key))) = shard.heap.pop() else {
                break;
            };
            popped += 1;
            if map.remove_if_current(&key, at, write) {
                removed += 1;
            }
        }
        (popped, removed)
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
