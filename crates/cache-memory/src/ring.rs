//! The clock ring: an index of the map's keys, walked by eviction when a capacity is set.
//!
//! DashMap offers no safe way to resume an iteration or to pick an entry at random, so a
//! bounded cache keeps its own index: every key inserted into the map is pushed, as the same
//! `Arc<str>`, into one shard of this ring. A slot is *live* while the map still holds that
//! very `Arc` as the key; a slot whose key was deleted, expired or replaced by a new insert
//! is *stale* and is dropped when a walk meets it. Walks start at a per-shard hand and touch a
//! bounded number of slots.
//!
//! Lock order: a ring shard's mutex may be held while calling into the map (through
//! [`Entries`]), never the other way round. Callers drop every map guard before calling
//! [`Ring::push`].

use std::sync::Arc;

use crate::shards::Shards;

/// The state of the entry a slot points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The map no longer holds this key (or holds a newer insert of it).
    Stale,
    /// Live, but its TTL has passed.
    Expired,
    /// Live, and read since the hand last passed it.
    Accessed,
    /// Live, and not read since the hand last passed it.
    Idle,
}

/// What the ring needs to know about, and do to, the entries of the map.
pub(crate) trait Entries {
    /// The state of the entry `key` points at; no side effects.
    fn state(&self, key: &Arc<str>) -> Slot;
    /// Clears the entry's accessed mark: it is evicted next time unless read meanwhile.
    fn second_chance(&self, key: &Arc<str>);
    /// Removes the entry if the map still holds this very key; true if it did.
    fn remove(&self, key: &Arc<str>) -> bool;
}

/// Slots a shard may hold beyond twice its live count before it is compacted.
const COMPACT_SLACK: usize = 1024;

#[derive(Debug)]
struct RingShard {
    keys: Vec<Arc<str>>,
    hand: usize,
    compact_above: usize,
}

impl Default for RingShard {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            hand: 0,
            compact_above: COMPACT_SLACK,
        }
    }
}

/// The sharded clock ring.
#[derive(Debug)]
pub(crate) struct Ring {
    shards: Shards<RingShard>,
}

impl Ring {
    /// A ring of `shards` shards (at least one).
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            shards: Shards::new(shards),
        }
    }

    /// The number of shards.
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.count()
    }

    /// Indexes a key just inserted into the map. Compacts the shard when stale slots
    /// outnumber live ones by [`COMPACT_SLACK`], which keeps the ring within about twice the
    /// map's size at amortised O(1) per push.
    pub(crate) fn push(&self, shard: usize, key: Arc<str>, entries: &impl Entries) {
        let mut guard = self.shards.lock(shard);
        let shard = &mut *guard;
        shard.keys.push(key);
        if shard.keys.len() > shard.compact_above {
            shard.keys.retain(|key| entries.state(key) != Slot::Stale);
            shard.hand = 0;
            shard.compact_above = 2 * shard.keys.len() + COMPACT_SLACK;
        }
    }

    /// Drops every slot. Call it before clearing the map, so that a key inserted meanwhile
    /// keeps its slot or loses its entry too.
    pub(crate) fn clear(&self) {
        self.shards.reset();
    }

    /// The number of slots, live and stale.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.sum(|shard| shard.keys.len())
    }

    /// Removes one entry of `shard` to make room: the first one the clock hand finds expired
    /// or not read since the hand last passed (second chance, an approximation of
    /// least-recently-used); after two turns without one, the entry at the hand. Returns false
    /// only if the shard holds no live entry.
    pub(crate) fn evict(&self, shard: usize, entries: &impl Entries) -> bool {
        let mut guard = self.shards.lock(shard);
        let shard = &mut *guard;

        // The clock: pass over entries read since the last turn, clearing their mark.
        let mut scanned = 0;
        let limit = 2 * shard.keys.len() + 1;
        while scanned < limit && !shard.keys.is_empty() {
            if shard.hand >= shard.keys.len() {
                shard.hand = 0;
            }
            let key = &shard.keys[shard.hand];
            match entries.state(key) {
                Slot::Accessed => {
                    entries.second_chance(key);
                    shard.hand += 1;
                }
                Slot::Stale => {
                    shard.keys.swap_remove(shard.hand);
                    shard.hand += 1;
                }
                Slot::Expired | Slot::Idle => {
                    let removed = entries.remove(key);
                    shard.keys.swap_remove(shard.hand);
                    // `swap_remove` moved the newest slot here; as in the classic clock, a
                    // newcomer takes the freed place just behind the hand and gets a full turn.
                    shard.hand += 1;
                    if removed {
                        return true;
                    }
                }
            }
            scanned += 1;
        }

        // Readers marked entries again faster than the hand cleared them: take the entry at
        // the hand whatever its mark, so that an insert waiting for room always progresses.
        while !shard.keys.is_empty() {
            if shard.hand >= shard.keys.len() {
                shard.hand = 0;
            }
            let removed = entries.remove(&shard.keys[shard.hand]);
            shard.keys.swap_remove(shard.hand);
            shard.hand += 1;
            if removed {
                return true;
            }
        }
        false
    }
}
