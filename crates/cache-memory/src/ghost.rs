//! The ghost of a policy shard: the hashes of keys recently evicted from probation, in a
//! FIFO of bounded length, with a set of the same hashes to look them up.
//!
//! The set is an open-addressing table of `u32` with linear probing, kept at most half full,
//! and backward-shift deletion (no tombstones), so that every operation touches a cache line
//! or two. std's `HashSet` did the same work with a general table built for wider keys: its
//! probe groups and control bytes cost several times the instructions of this one on the
//! eviction path, which touches the ghost once per key evicted from probation.

use std::collections::VecDeque;

/// The slots a table starts with once something is remembered.
const MIN_SLOTS: usize = 64;

/// The hashes of keys recently evicted, oldest first, up to a capacity.
///
/// `remember` adds a hash (once: a hash already there is not added again), first dropping
/// the oldest ones beyond the capacity; `take` removes a hash if it is there. A hash taken
/// keeps its place in the FIFO until it reaches the front, where it is dropped from the set
/// again (a no-op unless it was remembered since), as the FIFO counts places, not hashes.
#[derive(Debug, Default)]
pub(crate) struct Ghost {
    /// Hashes in the order they were remembered, oldest first.
    order: VecDeque<u32>,
    /// The set: a power-of-two number of slots, 0 for an empty one; the hash 0 is `zero`.
    slots: Box<[u32]>,
    /// The nonzero hashes in `slots`.
    len: usize,
    /// Whether the set holds the hash 0, which marks empty slots in `slots`.
    zero: bool,
}

impl Ghost {
    /// Whether `hash` is in the set; removes it if so.
    #[inline]
    pub(crate) fn take(&mut self, hash: u32) -> bool {
        if hash == 0 {
            return std::mem::take(&mut self.zero);
        }
        match self.find(hash) {
            Ok(slot) => {
                self.remove_at(slot);
                true
            }
            Err(_) => false,
        }
    }

    /// Adds `hash` at the back, first dropping the oldest hashes until fewer than
    /// `capacity` places are taken; nothing when `capacity` is 0 or the set holds `hash`
    /// already.
    #[inline]
    pub(crate) fn remember(&mut self, hash: u32, capacity: usize) {
        if capacity == 0 {
            return;
        }
        while self.order.len() >= capacity {
            if let Some(old) = self.order.pop_front() {
                self.take(old);
            }
        }
        if self.insert(hash) {
            self.order.push_back(hash);
        }
    }

    /// The number of places taken in the FIFO (hashes taken since included).
    #[cfg(test)]
    fn places(&self) -> usize {
        self.order.len()
    }

    /// Adds `hash` to the set; false if it was there.
    #[inline]
    fn insert(&mut self, hash: u32) -> bool {
        if hash == 0 {
            return !std::mem::replace(&mut self.zero, true);
        }
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow();
        }
        match self.find(hash) {
            Ok(_) => false,
            Err(slot) => {
                self.slots[slot] = hash;
                self.len += 1;
                true
            }
        }
    }

    /// The slot holding `hash` (nonzero), or the empty slot where its probe ends.
    #[inline]
    fn find(&self, hash: u32) -> Result<usize, usize> {
        if self.slots.is_empty() {
            return Err(0);
        }
        let mask = self.slots.len() - 1;
        let mut slot = self.home(hash);
        loop {
            match self.slots[slot] {
                0 => return Err(slot),
                held if held == hash => return Ok(slot),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// The first slot probed for `hash`: the top bits of a multiplicative hash, which every
    /// bit of `hash` moves.
    #[inline]
    fn home(&self, hash: u32) -> usize {
        let bits = self.slots.len().trailing_zeros();
        // At least two slots once allocated, so `bits` is 1 to 32 and the shift 0 to 31.
        (hash.wrapping_mul(0x9e37_79b9) >> (32 - bits)) as usize
    }

    /// Empties slot `slot`, moving back the hashes after it in its probe run that may
    /// move, so that no probe stops early at the hole.
    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.slots.len() - 1;
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let held = self.slots[next];
            if held == 0 {
                break;
            }
            // `held` may fill the hole if its home is not after the hole (cyclically, on
            // the way from its home to where it sits).
            let home = self.home(held);
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                self.slots[hole] = held;
                hole = next;
            }
        }
        self.slots[hole] = 0;
        self.len -= 1;
    }

    /// Doubles the table (or allocates its first one) and puts every hash back.
    fn grow(&mut self) {
        let size = (2 * self.slots.len()).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![0; size].into_boxed_slice());
        self.len = 0;
        for hash in old.iter().copied().filter(|&hash| hash != 0) {
            if let Err(slot) = self.find(hash) {
                self.slots[slot] = hash;
                self.len += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashSet, VecDeque};

    use proptest::prelude::*;

    use super::Ghost;

    /// The plainest ghost: a `VecDeque` and std's `HashSet`, doing the same steps.
    #[derive(Default)]
    struct Model {
        order: VecDeque<u32>,
        set: HashSet<u32>,
    }

    impl Model {
        fn take(&mut self, hash: u32) -> bool {
            self.set.remove(&hash)
        }

        fn remember(&mut self, hash: u32, capacity: usize) {
            if capacity == 0 {
                return;
            }
            while self.order.len() >= capacity {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
            if self.set.insert(hash) {
                self.order.push_back(hash);
            }
        }
    }

    #[test]
    fn remembers_up_to_its_capacity_oldest_out_first() {
        let mut ghost = Ghost::default();
        for hash in 0..10 {
            ghost.remember(hash, 4);
        }
        assert_eq!(ghost.places(), 4);
        assert!(!ghost.take(5));
        assert!(ghost.take(6));
        assert!(!ghost.take(6));
        assert!(ghost.take(9));
    }

    #[test]
    fn holds_the_hash_zero() {
        let mut ghost = Ghost::default();
        ghost.remember(0, 2);
        assert!(ghost.take(0));
        assert!(!ghost.take(0));
    }

    proptest! {
        /// The same answers as the model on any sequence, with hashes from a small range so
        /// that probe runs collide, wrap around the table and get holes punched in them.
        #[test]
        fn answers_as_a_deque_and_a_hash_set_do(
            ops in prop::collection::vec((any::<bool>(), 0u32..300, any::<u32>()), 1..3000),
            capacity in 0usize..200,
        ) {
            let mut ghost = Ghost::default();
            let mut model = Model::default();
            for (take, small, large) in ops {
                // Mostly small hashes (collisions), some spread over the whole range.
                let hash = if small % 7 == 0 { large } else { small };
                if take {
                    prop_assert_eq!(ghost.take(hash), model.take(hash));
                } else {
                    ghost.remember(hash, capacity);
                    model.remember(hash, capacity);
                }
                prop_assert_eq!(ghost.places(), model.order.len());
                prop_assert_eq!(ghost.len + usize::from(ghost.zero), model.set.len());
            }
            for hash in 0..300 {
                prop_assert_eq!(ghost.take(hash), model.take(hash));
            }
        }
    }
}
