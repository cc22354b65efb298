// SPDX-License-Identifier: GPL-2.0

//! The region interlock: a resync copy and a user write never overlap.
//!
//! The array is cut into regions of [`REGION_SECTORS`] (1 MiB); the queue's
//! `chunk_sectors` makes the block layer split bios at region boundaries, so
//! every bio lies in exactly one region. Regions hash into [`BUCKETS`]
//! buckets, each with two counters (md's barrier buckets, at 64x finer
//! regions):
//!
//! - `pending[b]`: user writes in flight in regions of bucket `b`;
//! - `barrier[b]`: resync copies holding regions of bucket `b`.
//!
//! Protocol (all counter operations sequentially consistent):
//!
//! - A write increments `pending`, then reads `barrier`: if zero it goes on,
//!   else it decrements `pending` (waking a waiting resync) and sleeps until
//!   `barrier` is zero, then retries.
//! - A resync copy increments `barrier` (new writes now wait), then sleeps
//!   until `pending` is zero, copies, decrements `barrier` and wakes writers.
//!
//! Invariant: while a resync copy holds bucket `b` (after it saw
//! `pending[b] == 0`), no write is in flight in any region of bucket `b`:
//! a write that incremented `pending` before the resync's increment of
//! `barrier` was seen by the resync's wait; one that incremented after sees
//! `barrier != 0` and backs off. A hash collision only makes an unrelated
//! write wait, never lets an overlapping one through.
//!
//! Writes have priority in md by making the resync wait while writers wait;
//! fr1 bounds what a resync holds instead: each of its copies in flight
//! (`COPY_LANES`, 4, in `array/resync.rs`) holds one region, released as
//! soon as the copy is retired; only a dirty run longer than a region (a
//! bitmap block over 1 MiB) keeps its regions, up to 64, until the whole
//! run is clean.

use core::sync::atomic::{AtomicU32, Ordering};

/// Region size in 512-byte sectors (1 MiB).
pub(crate) const REGION_SECTORS: u64 = 2048;
/// Number of buckets.
pub(crate) const BUCKETS: usize = 1024;

/// The bucket of the region holding `sector`.
pub(crate) fn bucket_of(sector: u64) -> usize {
    let region = sector / REGION_SECTORS;
    // Fibonacci hashing spreads neighbouring regions over the buckets.
    (region.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize % BUCKETS
}

/// The interlock counters of one array.
pub(crate) struct Interlock {
    pending: [AtomicU32; BUCKETS],
    barrier: [AtomicU32; BUCKETS],
}

impl Default for Interlock {
    fn default() -> Self {
        Interlock {
            pending: [const { AtomicU32::new(0) }; BUCKETS],
            barrier: [const { AtomicU32::new(0) }; BUCKETS],
        }
    }
}

impl Interlock {
    /// A write wants bucket `b`: true if it may go on; false if it must wait
    /// for [`Interlock::write_may_retry`] (its count was withdrawn).
    pub(crate) fn try_enter_write(&self, b: usize) -> bool {
        self.pending[b].fetch_add(1, Ordering::SeqCst);
        if self.barrier[b].load(Ordering::SeqCst) == 0 {
            return true;
        }
        self.pending[b].fetch_sub(1, Ordering::SeqCst);
        false
    }

    /// A write that backed off may retry now.
    pub(crate) fn write_may_retry(&self, b: usize) -> bool {
        self.barrier[b].load(Ordering::SeqCst) == 0
    }

    /// A write in bucket `b` finished. True when a resync may be waiting for
    /// it (wake the waiters).
    pub(crate) fn exit_write(&self, b: usize) -> bool {
        self.pending[b].fetch_sub(1, Ordering::SeqCst) == 1
            && self.barrier[b].load(Ordering::SeqCst) != 0
    }

    /// A resync copy claims bucket `b`; then it waits for
    /// [`Interlock::resync_may_copy`].
    pub(crate) fn raise_barrier(&self, b: usize) {
        self.barrier[b].fetch_add(1, Ordering::SeqCst);
    }

    /// No write is in flight in bucket `b` any more.
    pub(crate) fn resync_may_copy(&self, b: usize) -> bool {
        self.pending[b].load(Ordering::SeqCst) == 0
    }

    /// The copy is done; writers of bucket `b` may go on (wake them).
    pub(crate) fn lower_barrier(&self, b: usize) {
        self.barrier[b].fetch_sub(1, Ordering::SeqCst);
    }

    /// Nothing in flight and nothing held (tests, teardown checks).
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        self.pending
            .iter()
            .chain(self.barrier.iter())
            .all(|c| c.load(Ordering::SeqCst) == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;
    use std::vec::Vec;

    #[test]
    fn regions_and_buckets() {
        assert_eq!(bucket_of(0), bucket_of(REGION_SECTORS - 1));
        let distinct: std::collections::BTreeSet<usize> =
            (0..4096).map(|r| bucket_of(r * REGION_SECTORS)).collect();
        assert!(
            distinct.len() > 900,
            "hash spreads regions: {}",
            distinct.len()
        );
        assert!((0..100_000u64).all(|r| bucket_of(r * REGION_SECTORS) < BUCKETS));
    }

    #[test]
    fn sequential_protocol() {
        let il = Interlock::default();
        assert!(il.try_enter_write(3));
        il.raise_barrier(3);
        assert!(!il.resync_may_copy(3));
        assert!(
            !il.try_enter_write(3),
            "a new write waits behind the barrier"
        );
        assert!(il.exit_write(3), "the last write wakes the resync");
        assert!(il.resync_may_copy(3));
        assert!(il.try_enter_write(4), "other buckets are free");
        il.lower_barrier(3);
        assert!(il.write_may_retry(3) && il.try_enter_write(3));
        assert!(!il.exit_write(3));
        assert!(!il.exit_write(4));
        assert!(il.is_idle());
    }

    #[test]
    fn writes_and_copies_never_overlap() {
        // Four writers and two resync threads hammer 3 buckets; a shadow
        // "owner" per bucket catches any overlap.
        let il = Arc::new(Interlock::default());
        let owner: Arc<[AtomicU32; 3]> = Arc::new([const { AtomicU32::new(0) }; 3]);
        let mut handles = Vec::new();
        for t in 0..6u64 {
            let (il, owner) = (il.clone(), owner.clone());
            handles.push(thread::spawn(move || {
                let mut x = t + 1;
                for _ in 0..20_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let b = (x % 3) as usize;
                    if t < 4 {
                        while !il.try_enter_write(b) {
                            while !il.write_may_retry(b) {
                                std::hint::spin_loop();
                            }
                        }
                        // Writers may share a bucket, never with a copy.
                        assert_eq!(owner[b].load(Ordering::SeqCst) & 1, 0, "write under a copy");
                        owner[b].fetch_add(2, Ordering::SeqCst);
                        owner[b].fetch_sub(2, Ordering::SeqCst);
                        il.exit_write(b);
                    } else {
                        il.raise_barrier(b);
                        while !il.resync_may_copy(b) {
                            std::hint::spin_loop();
                        }
                        let prev = owner[b].fetch_or(1, Ordering::SeqCst);
                        assert_eq!(prev & !1, 0, "copy under a write");
                        // Two copies of one bucket are allowed (distinct
                        // regions); the flag is shared, so only clear it
                        // when it was ours.
                        if prev & 1 == 0 {
                            owner[b].fetch_and(!1, Ordering::SeqCst);
                        }
                        il.lower_barrier(b);
                    }
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        assert!(il.is_idle());
    }
}
