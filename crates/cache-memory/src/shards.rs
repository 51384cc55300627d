//! A fixed set of mutex-guarded shards, for the indexes that sit beside the map.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// A power-of-two number of shards of `T`, picked by an index taken modulo their number
/// (a mask: no division on every lock).
#[derive(Debug)]
pub(crate) struct Shards<T> {
    shards: Box<[Mutex<T>]>,
}

impl<T: Default> Shards<T> {
    /// `count` empty shards, rounded up to a power of two (at least one).
    pub(crate) fn new(count: usize) -> Self {
        Self {
            shards: (0..count.max(1).next_power_of_two())
                .map(|_| Mutex::default())
                .collect(),
        }
    }

    /// The number of shards.
    pub(crate) fn count(&self) -> usize {
        self.shards.len()
    }

    /// Locks shard `index % count`.
    #[inline]
    pub(crate) fn lock(&self, index: usize) -> MutexGuard<'_, T> {
        // The shards are Vecs and heaps changed by single std operations, which leave them
        // valid even when a closure they call panics; a poisoned lock is used as it is.
        self.shards[index & (self.shards.len() - 1)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Empties every shard, one after the other.
    pub(crate) fn reset(&self) {
        for shard in 0..self.shards.len() {
            *self.lock(shard) = T::default();
        }
    }

    /// The sum of `f` over the shards.
    #[cfg(test)]
    pub(crate) fn sum(&self, f: impl Fn(&T) -> usize) -> usize {
        (0..self.shards.len())
            .map(|shard| f(&self.lock(shard)))
            .sum()
    }
}
