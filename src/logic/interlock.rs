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
//!   else it decrements `pending` and sleeps until `barrier` is zero, then
//!   retries. If its withdrawal brought `pending` to zero it wakes the
//!   waiters first ([`Entry::Blocked`]): a resync may have seen the count it
//!   withdrew and gone to sleep on it, and no other write of the bucket will
//!   exit to wake it (new ones back off too).
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
//! (`COPY_LANES`, 4, in `array/resync.rs`; a check's or repair's
//! `CHECK_JOBS`, 4, in `array/check.rs`) holds one region, released as
//! soon as the copy is retired (the check's region once compared); only a
//! dirty run longer than a region (a bitmap block over 1 MiB) keeps its
//! regions, up to 64, until the whole run is clean.

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

/// What [`Interlock::try_enter_write`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// The write holds its bucket; [`Interlock::exit_write`] releases it.
    Entered,
    /// A resync copy holds the bucket: the write withdrew its count and must
    /// wait. `wake_resync`: the withdrawal brought `pending` to zero, so a
    /// resync sleeping on it must be woken before the writer sleeps.
    Blocked { wake_resync: bool },
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
    /// A write wants bucket `b`: [`Entry::Entered`] if it may go on, else it
    /// must wait for [`Interlock::write_may_retry`] (its count was withdrawn).
    pub(crate) fn try_enter_write(&self, b: usize) -> Entry {
        self.announce_write(b);
        self.admit_write(b)
    }

    /// The first half of [`Interlock::try_enter_write`]: the write counts.
    fn announce_write(&self, b: usize) {
        self.pending[b].fetch_add(1, Ordering::SeqCst);
    }

    /// The second half: a raised barrier sends the counted write back.
    fn admit_write(&self, b: usize) -> Entry {
        if self.barrier[b].load(Ordering::SeqCst) == 0 {
            return Entry::Entered;
        }
        let wake_resync = self.pending[b].fetch_sub(1, Ordering::SeqCst) == 1;
        Entry::Blocked { wake_resync }
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
        assert_eq!(il.try_enter_write(3), Entry::Entered);
        il.raise_barrier(3);
        assert!(!il.resync_may_copy(3));
        assert_eq!(
            il.try_enter_write(3),
            Entry::Blocked { wake_resync: false },
            "a new write waits behind the barrier"
        );
        assert!(il.exit_write(3), "the last write wakes the resync");
        assert!(il.resync_may_copy(3));
        assert_eq!(
            il.try_enter_write(4),
            Entry::Entered,
            "other buckets are free"
        );
        il.lower_barrier(3);
        assert!(il.write_may_retry(3));
        assert_eq!(il.try_enter_write(3), Entry::Entered);
        assert!(!il.exit_write(3));
        assert!(!il.exit_write(4));
        assert!(il.is_idle());
    }

    #[test]
    fn a_write_sent_back_wakes_the_resync_that_saw_its_count() {
        // The interleaving that hung test_resync_stress: the resync raises
        // the barrier between a write's count and its look at the barrier,
        // sees that count and sleeps; the write backs off. Nothing else of
        // the bucket is in flight, so only this write can wake the resync.
        let il = Interlock::default();
        il.announce_write(7);
        il.raise_barrier(7);
        assert!(!il.resync_may_copy(7), "the resync sleeps on the count");
        assert_eq!(
            il.admit_write(7),
            Entry::Blocked { wake_resync: true },
            "the write that withdrew the last count must wake the resync"
        );
        assert!(il.resync_may_copy(7));
        // With another write still in flight, that one's exit wakes it.
        assert_eq!(il.try_enter_write(8), Entry::Entered);
        il.announce_write(8);
        il.raise_barrier(8);
        assert_eq!(il.admit_write(8), Entry::Blocked { wake_resync: false });
        assert!(il.exit_write(8));
        il.lower_barrier(7);
        il.lower_barrier(8);
        assert!(il.is_idle());
    }

    #[test]
    fn sleeping_waits_never_lose_a_wakeup() {
        // The waits of `array/io.rs` (a lock and a condition variable shared
        // by writers and resync copies) on one bucket, so that every write
        // meets a raised barrier; one resync thread, so only the writers can
        // wake it. A waiter that times out while its
        // condition already holds missed its wakeup (a write that withdrew
        // the count a resync was sleeping on, without waking it).
        use std::sync::{Condvar, Mutex};
        use std::time::Duration;
        let il = Arc::new(Interlock::default());
        let wait = Arc::new((Mutex::new(()), Condvar::new()));
        let lost = Duration::from_secs(5);
        let mut handles = Vec::new();
        for t in 0..5u32 {
            let (il, wait) = (il.clone(), wait.clone());
            handles.push(thread::spawn(move || {
                let (lock, cv) = &*wait;
                for _ in 0..20_000 {
                    if t < 4 {
                        loop {
                            match il.try_enter_write(0) {
                                Entry::Entered => break,
                                Entry::Blocked { wake_resync } => {
                                    let mut g = lock.lock().unwrap();
                                    if wake_resync {
                                        cv.notify_all();
                                    }
                                    while !il.write_may_retry(0) {
                                        let (ng, to) = cv.wait_timeout(g, lost).unwrap();
                                        g = ng;
                                        assert!(
                                            !to.timed_out() || !il.write_may_retry(0),
                                            "a writer missed the barrier's release"
                                        );
                                    }
                                }
                            }
                        }
                        if il.exit_write(0) {
                            let _g = lock.lock().unwrap();
                            cv.notify_all();
                        }
                    } else {
                        il.raise_barrier(0);
                        let mut g = lock.lock().unwrap();
                        while !il.resync_may_copy(0) {
                            let (ng, to) = cv.wait_timeout(g, lost).unwrap();
                            g = ng;
                            assert!(
                                !to.timed_out() || !il.resync_may_copy(0),
                                "a resync copy missed its wakeup"
                            );
                        }
                        il.lower_barrier(0);
                        cv.notify_all();
                    }
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
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
                        while il.try_enter_write(b) != Entry::Entered {
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
