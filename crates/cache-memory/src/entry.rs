//! One cached value, the word that holds its expiry and read count, and the time of its
//! last access where `time_to_idle` needs it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Bytes, MAX_READS, NEVER, ONE_READ, READS_SHIFT};

/// A value on its way into the map: its bytes, and whether they are known to be UTF-8.
#[derive(Debug)]
pub(crate) struct Incoming {
    bytes: Bytes,
    /// True only when made by [`Incoming::text`]: the bytes are a copy of a `&str`.
    text: bool,
}

impl Incoming {
    /// A copy of a string, as a plain buffer: UTF-8 by construction, so that `get` can read
    /// it back without checking it again (see [`Entry::text`]).
    pub(crate) fn text(value: &str) -> Self {
        Self {
            bytes: Bytes::copy_from_slice(value.as_bytes()),
            text: true,
        }
    }

    /// Bytes of unknown content: `get` checks that they are UTF-8.
    pub(crate) fn bytes(bytes: Bytes) -> Self {
        Self { bytes, text: false }
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// The bit of [`Entry::indexed`] that says the value is known to be UTF-8: free, since the
/// times it holds are at most [`NEVER`] (62 bits).
const TEXT: u64 = 1 << 63;

/// One cached value; `A` keeps the time of its last access, or nothing (see [`LastAccess`]).
#[derive(Debug)]
pub(crate) struct Entry<A> {
    /// Written by `set_bytes`: in `Bytes`' shared form (see [`shared`](crate::shared)), so a read clones it
    /// without allocating. Written by `set`: a plain buffer, given its reference count by
    /// the first `get_bytes` (strings are read back by copying, which needs none). Private
    /// to this module, with [`TEXT`], so that the two change together.
    value: Bytes,
    /// Nanoseconds after the cache's epoch at which the entry expires, or [`NEVER`], in the
    /// low 62 bits; in the top two, its read count for the eviction policy (0 to
    /// [`MAX_READS`], kept up only when a capacity is set). One word for both keeps the map's
    /// slot at 64 bytes. Written under the shard's write lock, except the count, which reads
    /// bump under the read lock and eviction takes down.
    pub(crate) expires: AtomicU64,
    /// In the low 62 bits, when the entry's current expiry index item is due (no later than
    /// its expiry, idle expiry included), or [`NEVER`] when it has none; in the top bit,
    /// [`TEXT`]. One word for both, as for `expires`.
    indexed: u64,
    /// The time of the last read or write: a word with `time_to_idle`, nothing without.
    pub(crate) touched: A,
}

impl<A: LastAccess> Entry<A> {
    pub(crate) fn new(value: Incoming, expires_at: u64, touched: u64, due: u64) -> Self {
        debug_assert!(due <= NEVER);
        Self {
            value: value.bytes,
            expires: AtomicU64::new(expires_at),
            // `due` is at most `NEVER`; masked anyway, so that no time can reach `TEXT`.
            indexed: (due & NEVER) | if value.text { TEXT } else { 0 },
            touched: A::new(touched),
        }
    }

    /// The stored bytes.
    pub(crate) fn value(&self) -> &Bytes {
        &self.value
    }

    /// Replaces the value, and with it what is known of its bytes.
    pub(crate) fn set_value(&mut self, value: Incoming) {
        self.value = value.bytes;
        self.indexed = (self.indexed & !TEXT) | if value.text { TEXT } else { 0 };
    }

    /// The value, as it came in: for an entry built to be merged into another.
    pub(crate) fn into_incoming(self) -> Incoming {
        Incoming {
            text: self.indexed & TEXT != 0,
            bytes: self.value,
        }
    }

    /// The value as a string when it is known to be UTF-8 (written by `set`), without
    /// checking it again; `None` for bytes of unknown content.
    ///
    /// The check it saves showed as 12% of the samples of the in-process benchmark's
    /// `MemoryCache` cases (64 tasks, 100-byte values; part of that is the first touch of
    /// the value, which the copy then pays). Three A/B runs of `cache-bench --only
    /// in-process` each, against the raw `DashMap`: 0.82x to 0.88x checked, 0.86x to 0.90x
    /// with this (0.82x to 0.91x and 0.88x to 0.90x with a capacity).
    #[allow(unsafe_code)]
    #[inline]
    pub(crate) fn text(&self) -> Option<&str> {
        if self.indexed & TEXT == 0 {
            return None;
        }
        debug_assert!(std::str::from_utf8(&self.value).is_ok());
        // SAFETY: `TEXT` is set only by `new` and `set_value`, from an `Incoming` whose
        // `text` is true, which only `Incoming::text` makes, with `bytes` a copy of a `&str`;
        // `new` and `set_value` store those very bytes as `value` in the same step, and
        // `into_incoming` hands both on together. Nothing else writes `value` or the `TEXT`
        // bit (both private to this module; `set_indexed_at` keeps the bit), and a `Bytes`
        // never changes the bytes it holds. So when the bit is set, `value` is UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(&self.value) })
    }

    /// When the entry's expiry index item is due ([`NEVER`]: it has none).
    pub(crate) fn indexed_at(&self) -> u64 {
        self.indexed & !TEXT
    }

    /// Records when the entry's expiry index item is due (at most [`NEVER`]).
    pub(crate) fn set_indexed_at(&mut self, at: u64) {
        debug_assert!(at <= NEVER);
        self.indexed = (self.indexed & TEXT) | (at & NEVER);
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
