//! One cached value and the word that holds its expiry and read count.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Bytes, MAX_READS, NEVER, ONE_READ, READS_SHIFT};

/// One cached value.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Written by `set_bytes`: in `Bytes`' shared form (see [`shared`](crate::shared)), so a read clones it
    /// without allocating. Written by `set`: a plain buffer, given its reference count by
    /// the first `get_bytes` (strings are read back by copying, which needs none).
    pub(crate) value: Bytes,
    /// Nanoseconds after the cache's epoch at which the entry expires, or [`NEVER`], in the
    /// low 62 bits; in the top two, its read count for the eviction policy (0 to
    /// [`MAX_READS`], kept up only when a capacity is set). One word for both keeps the map's
    /// slot at 72 bytes. Written under the shard's write lock, except the count, which reads
    /// bump under the read lock and eviction takes down.
    pub(crate) expires: AtomicU64,
    /// When the entry's current expiry index item is due (no later than its expiry, idle
    /// expiry included), or [`NEVER`] when it has none.
    pub(crate) indexed_at: u64,
    /// Nanoseconds after the cache's epoch of the last read or write, kept only with
    /// `time_to_idle` (0 otherwise). Reads raise it under the read lock.
    pub(crate) touched: AtomicU64,
}

impl Entry {
    pub(crate) fn new(value: Bytes, expires_at: u64, touched: u64, due: u64) -> Self {
        Self {
            value,
            expires: AtomicU64::new(expires_at),
            indexed_at: due,
            touched: AtomicU64::new(touched),
        }
    }

    pub(crate) fn expires_at(&self) -> u64 {
        self.expires.load(Ordering::Relaxed) & NEVER
    }

    /// Sets the expiry, keeping the read count.
    pub(crate) fn set_expires_at(&mut self, at: u64) {
        let word = self.expires.get_mut();
        *word = (*word & !NEVER) | at;
    }

    /// Counts a read, up to [`MAX_READS`].
    pub(crate) fn record_read(&self) {
        // A load first: the entries read most find the count full and write nothing.
        let word = self.expires.load(Ordering::Relaxed);
        if word >> READS_SHIFT < MAX_READS {
            // A lost race loses one read, never the expiry: the exchange fails and is not
            // retried.
            let _ = self.expires.compare_exchange(
                word,
                word + ONE_READ,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Takes one read off the count; true if there was one.
    pub(crate) fn take_read(&self) -> bool {
        self.expires
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
                (word >> READS_SHIFT > 0).then(|| word - ONE_READ)
            })
            .is_ok()
    }
}
