// SPDX-License-Identifier: GPL-2.0

//! Mirror slots and the references the data path takes on them.
//!
//! The state of every slot is one word (`Array::slots`,
//! `logic::slots::Slots`), read with one atomic load; a slot's member and
//! its reference count live together in a [`MemberSlot`], whose protocol
//! comment says what may race with what. A bio, a resync copy or an
//! inspector takes a reference with [`Array::slot_get`] (any context, never
//! sleeps): the count first, *then* the state check, *then* the member. A
//! remover (control path, under `config`) clears PRESENT, *then* takes the
//! member, which fails with EBUSY while references are held (the state is
//! restored, as md answers). Completions (interrupt context) fail members by
//! compare-and-swap on the word, which keeps "never fail the last in-sync
//! member" without a lock.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::prelude::*;

use super::Array;
use crate::logic::abi::{DevNum, MAX_MIRRORS};
use crate::logic::slots::Slots;
use crate::sys::member::{Member, MemberRef, MemberSlot};

/// One mirror slot.
///
/// # Invariants
///
/// `member` holds a member whenever the slot's PRESENT bit is set in the
/// array's state word (it is installed before PRESENT is set and taken only
/// after PRESENT was cleared).
pub(super) struct Slot {
    /// The member and the references on it (md's `nr_pending`).
    pub(super) member: MemberSlot,
    /// Sector after the last read sent here, for sequential detection.
    pub(super) next_seq: AtomicU64,
    /// The member's descriptor number (`mdu_disk_info_t.number`).
    pub(super) desc_nr: AtomicU32,
    /// Read errors corrected by rewriting (md's `dev-*/errors`).
    pub(super) corrected: AtomicU32,
    /// Read errors counted against the member, decayed
    /// (`logic::readerrors`; md's `rdev->read_errors`).
    pub(super) read_errors: AtomicU32,
    /// When the member's last read error was counted (monotonic ns).
    pub(super) last_read_error_ns: AtomicU64,
    /// The device that last held the slot (kernel `dev_t`, 0: none): a
    /// re-add of it may resync incrementally.
    pub(super) saved_dev: AtomicU32,
    /// The slot's bitmap records missed writes (it held a member since the
    /// array started).
    pub(super) tracking: AtomicBool,
    /// Write-behind and ahead/behind (`array/behind.rs`).
    pub(super) behind: super::behind::SlotBehind,
    /// The member failed by itself: it is probed for an automatic re-add
    /// (`array/probe.rs`).
    pub(super) probing: AtomicBool,
    /// Automatic re-adds since the slot was last in sync (the probe's
    /// back-off).
    pub(super) auto_readds: AtomicU32,
    /// Probes of the failed member in the slot that failed in a row.
    pub(super) probe_fails: AtomicU32,
    /// The member that last held the slot was write-mostly (an automatic
    /// re-add keeps it so).
    pub(super) saved_write_mostly: AtomicBool,
}

impl Slot {
    pub(super) const fn new() -> Self {
        Slot {
            member: MemberSlot::new(),
            next_seq: AtomicU64::new(0),
            desc_nr: AtomicU32::new(0),
            corrected: AtomicU32::new(0),
            read_errors: AtomicU32::new(0),
            last_read_error_ns: AtomicU64::new(0),
            saved_dev: AtomicU32::new(0),
            tracking: AtomicBool::new(false),
            behind: super::behind::SlotBehind::new(),
            probing: AtomicBool::new(false),
            auto_readds: AtomicU32::new(0),
            probe_fails: AtomicU32::new(0),
            saved_write_mostly: AtomicBool::new(false),
        }
    }
}

impl Slot {
    /// A member is being installed (under `config`, the slot empty): what
    /// md keeps per member device starts afresh.
    pub(super) fn new_member(&self) {
        self.behind.reset();
        self.probing.store(false, Ordering::Relaxed);
        self.corrected.store(0, Ordering::Relaxed);
        self.read_errors.store(0, Ordering::Relaxed);
    }
}

impl Array {
    pub(super) fn state(&self) -> Slots {
        Slots::from_bits(self.slots.load(Ordering::SeqCst))
    }

    /// Applies a state transition atomically; returns the new state.
    pub(super) fn update_state<E>(
        &self,
        f: impl Fn(Slots) -> core::result::Result<Slots, E>,
    ) -> core::result::Result<Slots, E> {
        let mut cur = self.slots.load(Ordering::SeqCst);
        loop {
            let next = f(Slots::from_bits(cur))?;
            match self
                .slots
                .compare_exchange(cur, next.bits(), Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Ok(next),
                Err(actual) => cur = actual,
            }
        }
    }

    /// The member in `slot`, for one bio, if the slot may take I/O of this
    /// kind now. The reference is dropped with the guard (or by the
    /// completion of the clone it is sent with).
    pub(super) fn slot_get(&self, slot: u32, for_write: bool) -> Option<MemberRef<'_>> {
        self.slot_get_if(slot, |st| {
            if for_write {
                st.writable(slot)
            } else {
                st.readable(slot)
            }
        })
    }

    /// The member in `slot` whatever its state (for the control path, and
    /// for inspection by other arrays without taking their `config`).
    pub(super) fn slot_get_present(&self, slot: u32) -> Option<MemberRef<'_>> {
        self.slot_get_if(slot, |st| st.present(slot))
    }

    pub(super) fn slot_get_if(
        &self,
        slot: u32,
        usable: impl Fn(Slots) -> bool,
    ) -> Option<MemberRef<'_>> {
        self.slot
            .get(slot as usize)?
            .member
            .get(|| usable(self.state()))
    }

    /// Takes the member out of a slot whose PRESENT bit is clear, waiting
    /// out the brief references that may still be held (a bio that looked
    /// just before, another array's inspection): `ENXIO` if empty, `EBUSY`
    /// if they do not go within about a second (process context).
    pub(super) fn take_member(&self, slot: u32) -> Result<KBox<Member>> {
        let s = self.slot.get(slot as usize).ok_or(ENXIO)?;
        for _ in 0..10_000 {
            match s.member.take() {
                Err(e) if e == EBUSY => {
                    kernel::time::delay::fsleep(kernel::time::Delta::from_micros(100))
                }
                r => return r,
            }
        }
        pr_warn!(
            "{}: slot {} still referenced; its member stays\n",
            self.name_str(),
            slot
        );
        Err(EBUSY)
    }

    /// [`Array::slot_get`] as a guard that knows its slot.
    pub(super) fn slot_ref(&self, slot: u32, for_write: bool) -> Option<SlotRef<'_>> {
        let member = self.slot_get(slot, for_write)?;
        Some(SlotRef { slot, member })
    }

    pub(super) fn slot_of_dev(&self, dev: DevNum) -> Option<u32> {
        (0..MAX_MIRRORS).find(|&i| self.slot_get_present(i).is_some_and(|m| m.dev() == dev))
    }

    /// A copy of the name of the member in `slot` (for logs that may outlive
    /// the member).
    pub(super) fn slot_name(&self, slot: u32) -> NameBuf {
        let mut n = NameBuf::default();
        if let Some(m) = self.slot_get_present(slot) {
            let _ = n.0.write_str(m.name());
        } else {
            let _ = write!(n.0, "slot {slot}");
        }
        n
    }
}

/// A short owned string (member names in logs).
#[derive(Default)]
pub(crate) struct NameBuf(crate::logic::fmtbuf::FixedStr<32>);

impl NameBuf {
    /// `name`, truncated to fit.
    pub(super) fn of(name: &str) -> Self {
        let mut n = NameBuf::default();
        let _ = n.0.write_str(name);
        n
    }

    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// A counted reference to a slot's member that knows its slot. From
/// [`Array::slot_ref`].
pub(crate) struct SlotRef<'a> {
    slot: u32,
    member: MemberRef<'a>,
}

impl SlotRef<'_> {
    /// The slot this refers to.
    pub(super) fn slot(&self) -> u32 {
        self.slot
    }
}

impl AsRef<Member> for SlotRef<'_> {
    fn as_ref(&self) -> &Member {
        &self.member
    }
}
