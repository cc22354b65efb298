// SPDX-License-Identifier: GPL-2.0

//! Mirror slots and the references the data path takes on them.
//!
//! Protocol (slot references): the state of every slot is one word
//! (`Array::slots`, `logic::slots::Slots`), read with one atomic load. A bio,
//! a resync copy or an inspector takes a reference with [`Array::slot_get`]
//! (any context, never sleeps): it increments the slot's `inflight`, *then*
//! re-checks the state, and only then reads `member`. A remover (control
//! path, under `config`) clears PRESENT, *then* requires `inflight` to be
//! zero (otherwise it restores the state and answers EBUSY, as md). All of
//! it is sequentially consistent, so either the taker sees the slot gone or
//! the remover sees the reference: a member is never freed under a bio.
//! Completions (interrupt context) fail members by compare-and-swap on the
//! word, which keeps "never fail the last in-sync member" without a lock.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use super::{Array, Config};
use crate::logic::abi::{DevNum, MAX_MIRRORS};
use crate::logic::slots::Slots;
use crate::sys::member::Member;

/// One mirror slot.
///
/// # Invariants
///
/// `member` is null or comes from `KBox::into_raw` and is owned by the slot.
/// It is non-null whenever the slot's PRESENT bit is set in the array's
/// state word; it is taken out only by `Array::detach_slot`, after PRESENT
/// was cleared and `inflight` seen at zero.
pub(super) struct Slot {
    pub(super) member: AtomicPtr<Member>,
    /// Bios in flight on the member (md's `nr_pending`).
    pub(super) inflight: AtomicU32,
    /// Sector after the last read sent here, for sequential detection.
    pub(super) next_seq: AtomicU64,
    /// The member's descriptor number (`mdu_disk_info_t.number`).
    pub(super) desc_nr: AtomicU32,
    /// Read errors corrected by rewriting (md's `dev-*/errors`).
    pub(super) corrected: AtomicU32,
    /// The device that last held the slot (kernel `dev_t`, 0: none): a
    /// re-add of it may resync incrementally.
    pub(super) saved_dev: AtomicU32,
    /// The slot's bitmap records missed writes (it held a member since the
    /// array started).
    pub(super) tracking: AtomicBool,
}

impl Slot {
    pub(super) const fn new() -> Self {
        Slot {
            member: AtomicPtr::new(core::ptr::null_mut()),
            inflight: AtomicU32::new(0),
            next_seq: AtomicU64::new(0),
            desc_nr: AtomicU32::new(0),
            corrected: AtomicU32::new(0),
            saved_dev: AtomicU32::new(0),
            tracking: AtomicBool::new(false),
        }
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
    /// kind now. Pair every `Some` with [`Array::slot_put`].
    pub(super) fn slot_get(&self, slot: u32, for_write: bool) -> Option<&Member> {
        self.slot_get_if(slot, |st| {
            if for_write {
                st.writable(slot)
            } else {
                st.readable(slot)
            }
        })
    }

    /// The member in `slot` whatever its state (for inspection by other
    /// arrays without taking their `config`). Pair with [`Array::slot_put`].
    pub(super) fn slot_get_present(&self, slot: u32) -> Option<&Member> {
        self.slot_get_if(slot, |st| st.present(slot))
    }

    pub(super) fn slot_get_if(&self, slot: u32, usable: impl Fn(Slots) -> bool) -> Option<&Member> {
        let s = self.slot.get(slot as usize)?;
        s.inflight.fetch_add(1, Ordering::SeqCst);
        let ok = usable(self.state());
        let p = s.member.load(Ordering::Acquire);
        if !ok || p.is_null() {
            self.slot_put(slot);
            return None;
        }
        // SAFETY: By the `Slot` invariants the member stays allocated while
        // PRESENT is set or `inflight` is non-zero, and our increment came
        // before the state check that saw PRESENT.
        Some(unsafe { &*p })
    }

    /// [`Array::slot_get`] as a guard that puts the slot when dropped.
    pub(super) fn slot_ref(&self, slot: u32, for_write: bool) -> Option<SlotRef<'_>> {
        let member = self.slot_get(slot, for_write)?;
        Some(SlotRef {
            array: self,
            slot,
            member,
        })
    }

    pub(super) fn slot_put(&self, slot: u32) {
        if let Some(s) = self.slot.get(slot as usize) {
            s.inflight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The member in `slot` for the control path (under `config`).
    pub(super) fn member_locked<'a>(&'a self, _cfg: &'a Config, slot: u32) -> Option<&'a Member> {
        let p = self.slot.get(slot as usize)?.member.load(Ordering::Acquire);
        // SAFETY: Members are only detached under `config`, which the caller
        // holds for the lifetime of the returned reference.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    pub(super) fn slot_of_dev(&self, cfg: &Config, dev: DevNum) -> Option<u32> {
        (0..MAX_MIRRORS).find(|&i| self.member_locked(cfg, i).is_some_and(|m| m.dev() == dev))
    }

    /// A copy of the name of the member in `slot` (for logs that may outlive
    /// the member).
    pub(super) fn slot_name(&self, slot: u32) -> NameBuf {
        let mut n = NameBuf::default();
        if let Some(m) = self.slot_get_present(slot) {
            let _ = n.0.write_str(m.name());
            self.slot_put(slot);
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
    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// A counted reference to a slot's member: the member stays open (and its
/// slot cannot be emptied) while this lives. From [`Array::slot_ref`].
pub(crate) struct SlotRef<'a> {
    array: &'a Array,
    slot: u32,
    member: &'a Member,
}

impl SlotRef<'_> {
    /// The slot this refers to.
    pub(super) fn slot(&self) -> u32 {
        self.slot
    }
}

impl AsRef<Member> for SlotRef<'_> {
    fn as_ref(&self) -> &Member {
        self.member
    }
}

impl Drop for SlotRef<'_> {
    fn drop(&mut self) {
        self.array.slot_put(self.slot);
    }
}
