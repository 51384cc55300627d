//! The map addressed by a hash computed once per operation.
//!
//! DashMap's own methods hash the key on every call; a write to a bounded cache would hash
//! it three times (the lookup for an overwrite, the policy's shard, the insert) and an
//! eviction once more per entry it visits. These helpers take the hash instead, and reach
//! the shard DashMap itself would use (`determine_shard`) through its raw API (the `raw-api`
//! feature): `hash` is the map's own hasher over the key, exactly what DashMap computes, so
//! entries written here are found by DashMap's methods (`retain`, `shrink_to_fit`, `clear`)
//! and the other way round. Only the safe methods of the shards' tables are used.
//!
//! A caller that holds the key's `Arc` (the policy's queues, the expiry index) matches it by
//! pointer, not by comparing strings: the entry found is that very insert, and the key's
//! bytes are never read.

use std::hash::BuildHasher;
use std::sync::Arc;

use dashmap::SharedValue;

use crate::Inner;
use crate::entry::{Entry, LastAccess};

impl<A: LastAccess> Inner<A> {
    /// The hash of `key` under the map's hasher, as DashMap computes it.
    pub(crate) fn hash(&self, key: &str) -> u64 {
        self.map.hasher().hash_one(key)
    }

    /// Applies `read` to the entry of hash `hash` whose key `matches`, under its shard's read
    /// lock; `None` if there is none.
    pub(crate) fn find<T>(
        &self,
        hash: u64,
        matches: impl Fn(&Arc<str>) -> bool,
        read: impl FnOnce(&Arc<str>, &Entry<A>) -> T,
    ) -> Option<T> {
        let shard = self.map.shards()[self.map.determine_shard(hash as usize)].read();
        shard
            .get(hash, |(key, _)| matches(key))
            .map(|(key, entry)| read(key, entry.get()))
    }

    /// Applies `write` to the entry of hash `hash` whose key `matches`, and `input`, under its
    /// shard's write lock; gives `input` back if there is no such entry.
    pub(crate) fn write_with<V, T>(
        &self,
        hash: u64,
        matches: impl Fn(&Arc<str>) -> bool,
        input: V,
        write: impl FnOnce(&Arc<str>, &mut Entry<A>, V) -> T,
    ) -> Result<T, V> {
        let mut shard = self.map.shards()[self.map.determine_shard(hash as usize)].write();
        match shard.get_mut(hash, |(key, _)| matches(key)) {
            Some((key, entry)) => Ok(write(key, entry.get_mut(), input)),
            None => Err(input),
        }
    }

    /// Removes the entry of hash `hash` whose key `matches` if `remove` says so, under its
    /// shard's write lock, in one probe; returns it.
    #[inline]
    pub(crate) fn remove_if(
        &self,
        hash: u64,
        matches: impl Fn(&Arc<str>) -> bool,
        remove: impl FnOnce(&Arc<str>, &Entry<A>) -> bool,
    ) -> Option<(Arc<str>, Entry<A>)> {
        let mut shard = self.map.shards()[self.map.determine_shard(hash as usize)].write();
        // The table asks `eq` of each candidate slot; only one holds the key, so `remove`
        // runs at most once.
        let mut remove = Some(remove);
        shard
            .remove_entry(hash, |(key, entry)| {
                matches(key) && remove.take().is_some_and(|remove| remove(key, entry.get()))
            })
            .map(|(key, entry)| (key, entry.into_inner()))
    }

    /// Inserts `entry` under `key` (of hash `hash`) unless the map holds the key already,
    /// under one write lock. Otherwise applies `write` to the entry held and the new one, and
    /// returns what it returns.
    pub(crate) fn insert_or_write<T>(
        &self,
        hash: u64,
        key: Arc<str>,
        entry: Entry<A>,
        write: impl FnOnce(&Arc<str>, &mut Entry<A>, Entry<A>) -> T,
    ) -> Result<(), T> {
        let mut shard = self.map.shards()[self.map.determine_shard(hash as usize)].write();
        if let Some((stored, held)) = shard.get_mut(hash, |(stored, _)| **stored == *key) {
            return Err(write(stored, held.get_mut(), entry));
        }
        let hasher = self.map.hasher();
        shard.insert(hash, (key, SharedValue::new(entry)), |(stored, _)| {
            hasher.hash_one(&**stored)
        });
        Ok(())
    }
}
