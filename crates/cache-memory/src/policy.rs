//! The eviction policy of a bounded cache: S3-FIFO queues with a ghost filter, per shard.
//!
//! Every key inserted into the map is pushed, as the same `Arc<str>`, into one shard of the
//! policy (the shard of its hash). A shard keeps three FIFO queues:
//!
//! - **probation** (S3-FIFO's "small" queue, a hundredth of the shard): where a new key starts. When a key reaches its
//!   head, it moves to `protected` if it was read since it was written, and is evicted
//!   otherwise; its hash then goes to `ghost`. A key read once is all it takes to stay: a
//!   one-time scan passes through probation without touching what is protected.
//! - **protected** (S3-FIFO's "main" queue): keys that proved useful. Each entry carries a
//!   two-bit read count; at the head, a key with a count is pushed back with the count
//!   decremented (a second chance per read, up to three), one without is evicted.
//! - **ghost**: the hashes of keys recently evicted from probation, no values. A key
//!   inserted again while its hash is there goes straight to `protected` (a key that comes
//!   back after being evicted unread is frequent at a scale longer than probation), unless
//!   `protected`'s head, the entry it would displace, has the full read count: then the key
//!   starts on probation again and the head loses one read (see `PolicyShard::admits`).
//!
//! The queues hold keys and their hashes only; the read counts live in the map's entries,
//! bumped by reads under the map's read lock (see `Entry::record_read`). The hash lets a
//! visit find its entry without hashing the key again, and the `Arc` matches it by pointer,
//! so a visit never reads the key's bytes. A slot is *live* while the map still holds that
//! very `Arc` as the key; a slot whose key was deleted, expired or replaced by a
//! new insert is *stale* and is dropped when it reaches a head, or when a compaction (once
//! stale slots outnumber live ones) drops it.
//!
//! Work per eviction is bounded by [`STEPS`]: each step moves one key between queues or
//! drops a stale slot; after that many the key at the head goes whatever its count.
//!
//! Lock order: a policy shard's mutex may be held while calling into the map (through
//! [`Entries`], or to insert the key it is about to push), never the other way round.
//! Callers drop every map guard before [`Policy::lock`], and hold one policy shard at a
//! time.

use std::collections::VecDeque;
use std::sync::{Arc, MutexGuard};

use crate::MAX_READS;
use crate::ghost::Ghost;
use crate::shards::Shards;

/// The state of the entry a slot points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The map no longer holds this key (or holds a newer insert of it).
    Stale,
    /// Its TTL had passed: removed.
    Expired,
    /// Read since it was last visited: kept, its count one less than it was.
    Used,
    /// Not read since it was last visited: removed.
    Unused,
}

/// What the policy needs to know about, and do to, the entries of the map. Each method
/// takes a key as it was pushed, with the map's hash of it.
pub(crate) trait Entries {
    /// Visits the entry `key` points at, in one map operation: takes one read off its
    /// count if it has one, and otherwise removes it (it is expired or unused). `rejected`:
    /// a removal is of a key leaving probation, never admitted.
    fn visit(&self, key: &Queued, rejected: bool) -> Slot;
    /// Takes one read off the count of the entry `key` points at, if it has one, and
    /// removes nothing (expired or not); returns the count it had, `None` if the map no
    /// longer holds the entry.
    fn age(&self, key: &Queued) -> Option<u64>;
    /// Whether `key` is live, for compaction; no side effects.
    fn is_live(&self, key: &Queued) -> bool;
    /// Removes the entry if the map still holds this very key; true if it did. `rejected`:
    /// it leaves from probation, never admitted to `protected`.
    fn remove(&self, key: &Queued, rejected: bool) -> bool;
}

/// A key in a queue: the map's own `Arc` and the map's hash of it.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) key: Arc<str>,
    pub(crate) hash: u64,
}

/// Queue steps one eviction takes at most before it evicts the key at a head regardless.
/// Each step uses up one read an entry recorded, or admits a key from probation once, so
/// the steps of all evictions together are at most the reads and inserts before them; the
/// bound caps what one insert may pay for a run of them.
pub(crate) const STEPS: usize = 1024;
/// Slots a shard may hold beyond twice its live count before it is compacted.
const COMPACT_SLACK: usize = 1024;
/// Probation's share of a shard is one in this many entries. S3-FIFO's paper takes a tenth;
/// a hundredth (quick_cache keeps 3%) measured better on every trace of the hit-ratio
/// benchmark, most on a loop a little larger than the cache, where a smaller probation
/// leaves more room to the keys the ghost admits.
const PROBATION_SHARE: usize = 100;

/// The part of a key's hash the ghost keeps: the low 32 bits, which do not pick the shard
/// (see [`shard_of`]); 4 bytes a hash keeps the ghost within a dozen bytes per entry.
fn ghost_hash(hash: u64) -> u32 {
    hash as u32
}

#[derive(Debug, Default)]
struct PolicyShard {
    probation: VecDeque<Queued>,
    protected: VecDeque<Queued>,
    /// Hashes of keys evicted from probation.
    ghost: Ghost,
    compact_above: usize,
}

impl PolicyShard {
    fn slots(&self) -> usize {
        self.probation.len() + self.protected.len()
    }

    /// Whether a key back from the ghost goes to `protected`, judged against the entry it
    /// would displace there, `protected`'s head, which loses one read either way: no if the
    /// head has the full count ([`MAX_READS`]), yes otherwise (or if it is gone). A head
    /// refused for goes round again, so the next key back from the ghost meets another.
    /// Without this, keys back from the ghost displace entries read as often as they are:
    /// on a loop a little longer than the cache, the protected keys churn in the loop's
    /// order instead of a fixed part of the loop staying. One map lookup per call.
    fn admits(&mut self, entries: &impl Entries) -> bool {
        let Some(head) = self.protected.pop_front() else {
            return true;
        };
        match entries.age(&head) {
            None => true,
            Some(MAX_READS) => {
                self.protected.push_back(head);
                false
            }
            Some(_) => {
                self.protected.push_front(head);
                true
            }
        }
    }

    fn remember(&mut self, hash: u64, ghost_capacity: usize) {
        self.ghost.remember(ghost_hash(hash), ghost_capacity);
    }
}

/// The sharded S3-FIFO policy.
#[derive(Debug)]
pub(crate) struct Policy {
    shards: Shards<PolicyShard>,
    /// Hashes each shard's ghost remembers: its share of the capacity.
    ghost_capacity: usize,
}

impl Policy {
    /// A policy of `shards` shards (at least one) for a cache of `capacity` entries.
    pub(crate) fn new(shards: usize, capacity: usize) -> Self {
        let shards = Shards::new(shards);
        let ghost_capacity = capacity.div_ceil(shards.count());
        Self {
            shards,
            ghost_capacity,
        }
    }

    /// The number of shards.
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.count()
    }

    /// Locks the shard of a key of hash `hash`, for an insert of that key: to make room in
    /// it, then to index the key, under one lock.
    #[inline]
    pub(crate) fn lock(&self, hash: u64) -> ShardGuard<'_> {
        ShardGuard {
            shard: self.shards.lock(shard_of(hash)),
            ghost_capacity: self.ghost_capacity,
        }
    }

    /// Drops every slot and ghost. Call it before clearing the map, so that a key inserted
    /// meanwhile keeps its slot or loses its entry too.
    pub(crate) fn clear(&self) {
        self.shards.reset();
    }

    /// The number of slots, live and stale.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.sum(PolicyShard::slots)
    }

    /// Removes one entry of shard `shard` to make room (see the module docs). Returns false
    /// only if the shard holds no live entry.
    pub(crate) fn evict(&self, shard: usize, entries: &impl Entries) -> bool {
        self.shards.lock(shard).evict(self.ghost_capacity, entries)
    }
}

/// One policy shard, locked (see [`Policy::lock`]). Lock no other shard while holding it: two
/// inserts could each hold the shard the other waits for.
#[derive(Debug)]
pub(crate) struct ShardGuard<'a> {
    shard: MutexGuard<'a, PolicyShard>,
    ghost_capacity: usize,
}

impl ShardGuard<'_> {
    /// Removes one entry of this shard to make room (see the module docs). Returns false
    /// only if the shard holds no live entry.
    pub(crate) fn evict(&mut self, entries: &impl Entries) -> bool {
        self.shard.evict(self.ghost_capacity, entries)
    }

    /// Indexes a key just inserted into the map with hash `hash`: into `protected` if its
    /// hash is in the ghost (and [`PolicyShard::admits`] it), otherwise into probation.
    /// Compacts the shard when stale slots outnumber live ones by [`COMPACT_SLACK`], at
    /// amortised O(1) per push.
    pub(crate) fn push(mut self, hash: u64, key: Arc<str>, entries: &impl Entries) {
        let shard = &mut *self.shard;
        let key = Queued { key, hash };
        if shard.ghost.take(ghost_hash(hash)) && shard.admits(entries) {
            shard.protected.push_back(key);
        } else {
            shard.probation.push_back(key);
        }
        if shard.slots() > shard.compact_above.max(COMPACT_SLACK) {
            shard.probation.retain(|key| entries.is_live(key));
            shard.protected.retain(|key| entries.is_live(key));
            shard.compact_above = 2 * shard.slots() + COMPACT_SLACK;
        }
    }
}

impl PolicyShard {
    fn evict(&mut self, ghost_capacity: usize, entries: &impl Entries) -> bool {
        let shard = self;
        for _ in 0..STEPS {
            let from_probation = shard.protected.is_empty()
                || shard.probation.len() * PROBATION_SHARE >= shard.slots();
            let (queue, rejected) = if from_probation {
                (&mut shard.probation, true)
            } else {
                (&mut shard.protected, false)
            };
            let Some(key) = queue.pop_front() else {
                return false;
            };
            match entries.visit(&key, rejected) {
                Slot::Stale => {}
                // From probation: admitted. From `protected`: one more turn.
                Slot::Used => shard.protected.push_back(key),
                Slot::Expired => return true,
                Slot::Unused => {
                    if rejected {
                        shard.remember(key.hash, ghost_capacity);
                    }
                    return true;
                }
            }
        }
        // Reads renewed counts faster than the steps used them up: take the oldest key
        // whatever its count, so that an insert waiting for room always progresses.
        while let Some(key) = shard
            .probation
            .pop_front()
            .or_else(|| shard.protected.pop_front())
        {
            if entries.remove(&key, false) {
                return true;
            }
        }
        false
    }
}

/// The policy shard of a key's hash.
pub(crate) fn shard_of(hash: u64) -> usize {
    // Bits the ghost does not keep (see `ghost_hash`), so that the hashes of a shard still
    // spread over its table.
    (hash >> 32) as usize
}
