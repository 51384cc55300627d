//! One cached value, the word that holds its expiry and read count, and the time of its
//! last access where `time_to_idle` needs it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Bytes, MAX_READS, NEVER, ONE_READ, READS_SHIFT};

/// One cached value; `A` keeps the time of its last access, or nothing (see [`LastAccess`]).
#[derive(Debug)]
pub(crate) struct Entry<A> {
    /// Written by `set_bytes`: in `Bytes`' shared form (see [`shared`](crate::shared)), so a read clones it
    /// without allocating. Written by `set`: a plain buffer, given its reference count by
    /// the first `get_bytes` (strings are read back by copying, which needs none).
    pub(crate) value: Bytes,
    /// Nanoseconds after the cache's epoch at which the entry expires, or [`NEVER`], in the
    /// low 62 bits; in the top two, its read count for the eviction policy (0 to
    /// [`MAX_READS`], kept up only when a capacity is set). One word for both keeps the map's
    /// slot at 64 bytes. Written under the shard's write lock, except the count, which reads
    /// bump under the read lock and eviction takes down.
    pub(crate) expires: AtomicU64,
    /// When the entry's current expiry index item is due (no later than its expiry, idle
    /// expiry included), or [`NEVER`] when it has none.
    pub(crate) indexed_at: u64,
    /// The time of the last read or write: a word with `time_to_idle`, nothing without.
    pub(crate) touched: A,
}

impl<A: LastAccess> Entry<A> {
    pub(crate) fn new(value: Bytes, expires_at: u64, touched: u64, due: u64) -> Self {
        Self {
            value,
            expires: AtomicU64::new(expires_at),
            indexed_at: due,
            touched: A::new(touched),
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

    /// Takes one read off the count, if it has one; returns the count it had.
    pub(crate) fn take_read_count(&self) -> u64 {
        match self
            .expires
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
                (word >> READS_SHIFT > 0).then(|| word - ONE_READ)
            }) {
            Ok(word) | Err(word) => word >> READS_SHIFT,
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

/// Where an entry keeps the time of its last read or write, in nanoseconds after the cache's
/// epoch: what `time_to_idle` needs. The layout is chosen when the cache is built: a cache
/// with `time_to_idle` uses [`Touched`], one without uses [`NoIdle`], which takes no space,
/// so that only the caches that expire idle entries pay a word per entry for it.
pub(crate) trait LastAccess: fmt::Debug + Send + Sync + 'static {
    /// Kept at `at`.
    fn new(at: u64) -> Self;
    /// The time of the last read or write (0 when nothing is kept).
    fn get(&self) -> u64;
    /// Records a read at `now`, under the shard's read lock.
    fn raise(&self, now: u64);
    /// Records a write at `at`, under the shard's write lock.
    fn set(&mut self, at: u64);
}

/// The layout of a cache without `time_to_idle`: no time kept.
#[derive(Debug)]
pub(crate) struct NoIdle;

impl LastAccess for NoIdle {
    fn new(_: u64) -> Self {
        Self
    }

    fn get(&self) -> u64 {
        0
    }

    fn raise(&self, _: u64) {}

    fn set(&mut self, _: u64) {}
}

/// The layout of a cache with `time_to_idle`: one word, raised by reads.
#[derive(Debug)]
pub(crate) struct Touched(AtomicU64);

impl LastAccess for Touched {
    fn new(at: u64) -> Self {
        Self(AtomicU64::new(at))
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn raise(&self, now: u64) {
        self.0.fetch_max(now, Ordering::Relaxed);
    }

    fn set(&mut self, at: u64) {
        *self.0.get_mut() = at;
    }
}
