// SPDX-License-Identifier: GPL-2.0

//! The state of an array's slots in one 64-bit word.
//!
//! The I/O path reads the whole member set with one atomic load and state
//! changes are single compare-and-swaps, so failing a member from a bio
//! completion (atomic context) and the "never fail the last in-sync member"
//! rule need no lock. This module holds the pure transitions; the kernel side
//! runs them in a CAS loop (`array::state`).
//!
//! Layout: four 16-bit planes, one bit per slot.

use super::abi::MAX_MIRRORS;
use super::errno::Errno;

const PLANE: u32 = 16;
const PRESENT: u32 = 0;
const IN_SYNC: u32 = 1;
const FAULTY: u32 = 2;
const WRITE_MOSTLY: u32 = 3;

/// The state of all slots of an array.
///
/// # Invariants
///
/// A slot's IN_SYNC, FAULTY and WRITE_MOSTLY bits are only set when its
/// PRESENT bit is; slots at or above [`MAX_MIRRORS`] are empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Slots(u64);

/// Why a member could not be failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailError {
    /// No member in that slot.
    Empty,
    /// Already faulty.
    AlreadyFaulty,
    /// It holds the last in-sync copy: failing it would lose data.
    LastInSync,
}

impl Slots {
    /// The raw word, for an atomic.
    pub(crate) const fn bits(self) -> u64 {
        self.0
    }

    /// From the raw word of an atomic that only ever held [`Slots::bits`].
    pub(crate) const fn from_bits(bits: u64) -> Slots {
        Slots(bits)
    }

    fn plane(self, p: u32) -> u16 {
        (self.0 >> (p * PLANE)) as u16
    }

    fn test(self, p: u32, slot: u32) -> bool {
        slot < MAX_MIRRORS && self.0 & (1 << (p * PLANE + slot)) != 0
    }

    fn with(self, p: u32, slot: u32, on: bool) -> Slots {
        let bit = 1u64 << (p * PLANE + slot);
        Slots(if on { self.0 | bit } else { self.0 & !bit })
    }

    /// A member occupies the slot.
    pub(crate) fn present(self, slot: u32) -> bool {
        self.test(PRESENT, slot)
    }

    /// The member failed.
    pub(crate) fn faulty(self, slot: u32) -> bool {
        self.test(FAULTY, slot)
    }

    /// The member's data is in sync (it may still have failed since).
    pub(crate) fn in_sync(self, slot: u32) -> bool {
        self.test(IN_SYNC, slot)
    }

    /// Reads avoid the member.
    pub(crate) fn write_mostly(self, slot: u32) -> bool {
        self.test(WRITE_MOSTLY, slot)
    }

    /// Reads may be served by the member: present, in sync, not faulty.
    pub(crate) fn readable(self, slot: u32) -> bool {
        slot < MAX_MIRRORS && self.readable_mask() & (1 << slot) != 0
    }

    /// Writes must go to the member: present and not faulty.
    pub(crate) fn writable(self, slot: u32) -> bool {
        self.present(slot) && !self.faulty(slot)
    }

    /// Bit mask of the readable slots.
    pub(crate) fn readable_mask(self) -> u16 {
        self.plane(PRESENT) & self.plane(IN_SYNC) & !self.plane(FAULTY)
    }

    /// Bit mask of the write-mostly slots.
    pub(crate) fn write_mostly_mask(self) -> u16 {
        self.plane(PRESENT) & self.plane(WRITE_MOSTLY)
    }

    /// Bit mask of the writable slots.
    pub(crate) fn writable_mask(self) -> u16 {
        self.plane(PRESENT) & !self.plane(FAULTY)
    }

    /// In-sync, non-faulty members (md's `active_disks`).
    pub(crate) fn active(self) -> u32 {
        self.readable_mask().count_ones()
    }

    /// Non-faulty members (md's `working_disks`).
    pub(crate) fn working(self) -> u32 {
        self.writable_mask().count_ones()
    }

    /// Faulty members still attached (md's `failed_disks`).
    pub(crate) fn failed(self) -> u32 {
        (self.plane(PRESENT) & self.plane(FAULTY)).count_ones()
    }

    /// Working members that are not in sync (md's `spare_disks`).
    pub(crate) fn spares(self) -> u32 {
        self.working() - self.active()
    }

    /// Slots without an in-sync working member (md's `degraded`).
    pub(crate) fn degraded(self, raid_disks: u32) -> u32 {
        raid_disks.saturating_sub(self.active())
    }

    /// Attaches a member to an empty slot.
    pub(crate) fn attach(
        self,
        slot: u32,
        in_sync: bool,
        write_mostly: bool,
    ) -> Result<Slots, Errno> {
        if slot >= MAX_MIRRORS {
            return Err(Errno::Inval);
        }
        if self.present(slot) {
            return Err(Errno::Busy);
        }
        Ok(self
            .with(PRESENT, slot, true)
            .with(IN_SYNC, slot, in_sync)
            .with(FAULTY, slot, false)
            .with(WRITE_MOSTLY, slot, write_mostly))
    }

    /// Marks a member faulty, unless it holds the last readable copy.
    pub(crate) fn fail(self, slot: u32) -> Result<Slots, FailError> {
        if !self.present(slot) {
            return Err(FailError::Empty);
        }
        if self.faulty(slot) {
            return Err(FailError::AlreadyFaulty);
        }
        if self.readable_mask() == 1 << slot {
            return Err(FailError::LastInSync);
        }
        Ok(self.with(FAULTY, slot, true).with(IN_SYNC, slot, false))
    }

    /// Detaches a member. md refuses to remove a working in-sync member
    /// (EBUSY): fail it first.
    pub(crate) fn detach(self, slot: u32) -> Result<Slots, Errno> {
        if !self.present(slot) {
            return Err(Errno::NxIo);
        }
        if self.readable(slot) {
            return Err(Errno::Busy);
        }
        Ok(self
            .with(PRESENT, slot, false)
            .with(IN_SYNC, slot, false)
            .with(FAULTY, slot, false)
            .with(WRITE_MOSTLY, slot, false))
    }

    /// Sets or clears a present member's write-mostly flag.
    pub(crate) fn with_write_mostly(self, slot: u32, on: bool) -> Result<Slots, Errno> {
        if !self.present(slot) {
            return Err(Errno::NxIo);
        }
        Ok(self.with(WRITE_MOSTLY, slot, on))
    }

    /// A write-mostly member falls behind (write-behind's ahead/behind
    /// mode): it leaves the in-sync set while another member stays
    /// readable. `Busy` if it holds the last readable copy (it then stays an
    /// ordinary mirror: md's rule that the writer waits).
    pub(crate) fn fall_behind(self, slot: u32) -> Result<Slots, Errno> {
        if !self.writable(slot) || !self.write_mostly(slot) {
            return Err(Errno::Inval);
        }
        if self.readable_mask() & !(1 << slot) == 0 {
            return Err(Errno::Busy);
        }
        Ok(self.with(IN_SYNC, slot, false))
    }

    /// Declares a present, working member in sync (after a completed copy).
    pub(crate) fn set_in_sync(self, slot: u32) -> Result<Slots, Errno> {
        if !self.writable(slot) {
            return Err(Errno::Inval);
        }
        Ok(self.with(IN_SYNC, slot, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_in_sync() -> Slots {
        Slots::default()
            .attach(0, true, false)
            .unwrap()
            .attach(1, true, false)
            .unwrap()
    }

    #[test]
    fn attach_and_counts() {
        let s = two_in_sync();
        assert_eq!(
            (s.active(), s.working(), s.failed(), s.spares()),
            (2, 2, 0, 0)
        );
        assert_eq!(s.attach(1, true, false), Err(Errno::Busy));
        assert_eq!(s.attach(16, true, false), Err(Errno::Inval));
        let s = s.attach(2, false, true).unwrap();
        assert!(s.writable(2) && !s.readable(2) && s.write_mostly(2));
        assert!(!s.with_write_mostly(2, false).unwrap().write_mostly(2));
        assert_eq!(s.with_write_mostly(7, true), Err(Errno::NxIo));
        assert_eq!((s.spares(), s.degraded(3)), (1, 1));
    }

    #[test]
    fn only_a_write_mostly_member_with_another_copy_falls_behind() {
        let s = two_in_sync();
        assert_eq!(s.fall_behind(1), Err(Errno::Inval));
        let s = s.with_write_mostly(1, true).unwrap();
        let b = s.fall_behind(1).unwrap();
        assert!(b.writable(1) && !b.readable(1) && b.readable(0));
        // A member that is not write-mostly never falls behind.
        assert_eq!(b.fall_behind(0), Err(Errno::Inval));
        let lone = s.fail(0).unwrap();
        assert_eq!(lone.fall_behind(1), Err(Errno::Busy));
    }

    #[test]
    fn never_fail_the_last_copy() {
        let s = two_in_sync().fail(0).unwrap();
        assert!(s.faulty(0) && !s.readable(0) && !s.writable(0));
        assert_eq!(s.fail(0), Err(FailError::AlreadyFaulty));
        assert_eq!(s.fail(1), Err(FailError::LastInSync));
        assert_eq!(s.fail(5), Err(FailError::Empty));
        assert_eq!((s.active(), s.failed(), s.degraded(2)), (1, 1, 1));
        // A recovering member does not count as a copy.
        let s = s.detach(0).unwrap().attach(0, false, false).unwrap();
        assert_eq!(s.fail(1), Err(FailError::LastInSync));
        assert!(s.fail(0).is_ok());
    }

    #[test]
    fn detach_rules() {
        let s = two_in_sync();
        assert_eq!(s.detach(0), Err(Errno::Busy));
        assert_eq!(s.detach(3), Err(Errno::NxIo));
        let s = s.fail(0).unwrap().detach(0).unwrap();
        assert!(!s.present(0) && !s.faulty(0));
        assert_eq!(s.working(), 1);
        assert_eq!(Slots::from_bits(s.bits()), s);
    }

    #[test]
    fn exhaustive_invariants() {
        // Every sequence of 4 operations on 3 slots keeps the invariants and
        // never leaves an array that had a readable copy without one.
        fn check(s: Slots, depth: u32) {
            for slot in 0..3 {
                assert!(s.present(slot) || !(s.in_sync(slot) || s.faulty(slot)));
            }
            if depth == 0 {
                return;
            }
            for slot in 0..3 {
                let next = [
                    s.attach(slot, true, false).ok(),
                    s.attach(slot, false, false).ok(),
                    s.fail(slot).ok(),
                    s.detach(slot).ok(),
                    s.set_in_sync(slot).ok(),
                ];
                for n in next.into_iter().flatten() {
                    if s.active() > 0 {
                        assert!(n.active() > 0, "{s:?} -> {n:?}");
                    }
                    check(n, depth - 1);
                }
            }
        }
        check(Slots::default(), 5);
    }
}
