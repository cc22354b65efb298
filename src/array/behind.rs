// SPDX-License-Identifier: GPL-2.0

//! Write-behind for write-mostly legs, and the ahead/behind mode that lets a
//! slow leg fall back to the bitmap instead of slowing the array (the policy
//! is `logic::behind`).
//!
//! Protocol (behind writes):
//!
//! - The write path (process context, inside the write freeze and holding
//!   its interlock bucket) decides per write-mostly leg with
//!   `logic::behind::route`. For the legs that go behind it copies the data
//!   (`BioSet::copy_of`) and publishes the copy's range and legs in
//!   `flights` (`logic::behind::Flights`) *before* any clone of the upper
//!   bio is sent, then fans the copy out to them as a group of its own.
//!   That group holds a master count (`inflight`: `stop` drains it) and this
//!   module's counters, but neither the freeze count nor the interlock
//!   bucket: the upper bio ends, and drops those, when its own group does
//!   (the fast legs have it); the copy's group ends later, in its
//!   completion (interrupt context). Each leg's share of it (its count
//!   and age, `SlotBehind`, and its leg in the flight) ends with that
//!   leg's own clone (`Array::behind_leg_end`, in `clone_done`; at once
//!   for a leg the copy did not reach), the entry and the array's counts
//!   with the last clone (`Array::behind_group_end`): one copy serves
//!   every write-mostly leg, and a leg that stalls holds up no other.
//! - The writer sends a behind write itself only if it cannot block: with
//!   `REQ_NOWAIT` (a full queue ends it at once with AGAIN: the leg goes
//!   behind). A leg that does not take `REQ_NOWAIT`, or whose driver
//!   blocks in submission (`BLK_MQ_F_BLOCKING`: NBD sends on its socket
//!   in `queue_rq`, which blk-mq calls in the submitter's context even for
//!   a `REQ_NOWAIT` request when the queue has no I/O scheduler), gets it
//!   through the leg's submit work instead (`sys::bio::Submitter`, a work item on
//!   fr1's leg queue, process context, one per slot): the writer pushes the
//!   clone and queues the work, which may sleep in the submission for as
//!   long as the leg does (another leg's submit work runs meanwhile).
//!   Its queued writes are in flight for everyone else (counted, in
//!   `flights`, and watched by the stall watch from their start: a leg
//!   whose submit work sleeps lands nothing).
//! - So nothing that waits for writes (a freezer, a resync barrier) waits
//!   for a slow leg. What behind writes would race instead goes through
//!   `flights`: a write that overlaps one on its leg sends the leg behind
//!   (or, for the last readable copy, waits for it: md's rule); a read, a
//!   resync source and a check never read a leg where an overlapping behind
//!   write is in flight (they pick another leg, or sleep until it landed:
//!   md's `wait_behind_writes`; `readers` tells completions to wake them on
//!   the interlock's condition variable); a resync copy waits for the
//!   target's behind writes over its piece before it reads (so no older
//!   data lands after it); a bitmap is reset only while its leg has no
//!   behind write in flight (one that fails records into it).
//! - A behind write that fails fails its leg and marks its range in the
//!   leg's bitmap, as a mirrored write does; the caller, who saw success,
//!   loses nothing a resync cannot restore.
//! - A resync copy to a write-mostly leg (the sync thread, process context,
//!   holding the copy's region; or a FR1_REPAIR_RANGE piece, its caller
//!   holding the region and the freezer, `array/copyio.rs`, which excludes
//!   the sync thread) goes as a behind write too while the leg
//!   uses at most half its backlog (`Array::copy_behind`): a copy of the
//!   resync buffer, published in `flights` before it is sent; then the copy
//!   is retired at once (its bits cleared, its region released) while the
//!   slow leg writes. So a catch-up holds a region only while it reads the
//!   fast leg, and writers never wait for the slow one. A later write over
//!   the copy sees its flight as any behind write's: the leg goes behind
//!   (the resync stops; the next catch-up copies what is dirty). A copy
//!   that fails fails the leg and records its range. Either may set bits
//!   just before the retire clears them (or, in a coarse subtree, the
//!   whole subtree): the retire clears, fences, and records the cleared
//!   extent again if the leg misses writes now (`array/resync.rs`). The
//!   copies are counted per leg (`SlotBehind::copies`, counted down in
//!   their completion, which wakes `readers`): the sync thread waits for
//!   them before it declares the leg in sync, so "in sync" (`fr1ctl wait`)
//!   means the leg holds every block.
//!
//! Protocol (stalled legs, ahead/behind):
//!
//! - A write-mostly leg goes behind (`Array::go_behind`, from the write
//!   path): its mode goes NORMAL -> GOING (which excludes the sync thread
//!   declaring it in sync), a compare-and-swap on the slot word takes it out
//!   of the in-sync set (refused while it holds the last readable copy),
//!   *then* the mode is BEHIND. So no read can reach the leg once a write
//!   skips it. A write that sees BEHIND sends nothing to the leg and marks
//!   its bitmap before the write finishes.
//! - When the last behind write of a behind leg ends (completion, any
//!   context), or at once if none was in flight, the catch-up work item is
//!   queued (a delayed work: at once the first time, later after a back-off
//!   while the leg keeps falling behind before it caught up,
//!   `logic::behind::catch_up_delay_ms`; the leg stays behind meanwhile,
//!   and `stop` flushes the work after its drain). It (process context)
//!   takes `config`, freezes writes (so no
//!   write that skipped the leg is still on its way to the bitmap), sets
//!   the mode back to NORMAL, unfreezes, and restarts the resync thread,
//!   which copies the leg's dirty blocks region by region under the
//!   interlock and declares it in sync (NORMAL -> SETTLING -> NORMAL around
//!   a last look at the bitmap). If the leg goes behind again meanwhile, the
//!   resync stops (`Array::takes_writes`) and what it did not copy stays
//!   dirty for the next catch-up.
//!
//! Order: the catch-up takes `config` -> `freezer`, as every freezer;
//! completions take only `interlock_lock` (to wake readers). A writer
//! waits for a slow leg only when that leg holds the last readable copy.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use kernel::{
    prelude::*,
    sync::{Arc, CondVarTimeoutResult},
    time::{msecs_to_jiffies, Jiffies},
    workqueue::WorkItem,
};

use super::Array;
use crate::logic::abi::MAX_MIRRORS;
use crate::logic::behind::{self, Facts, Flights, Route, Why};
use crate::sys::bio::{CloneOwner, PageBuf, Status, Submitter};
use crate::sys::member::Member;
use crate::sys::time::monotonic_ns;

/// The array's write-behind state (see the protocol above).
pub(crate) struct Behind {
    /// `bitmap/backlog`: behind writes allowed in flight, 0: off.
    pub(super) backlog: AtomicU32,
    /// `md/fr1_behind_max_ms`: the oldest behind write may be this old.
    pub(super) max_ms: AtomicU32,
    /// Behind writes in flight (md's `behind_writes`).
    pub(super) writes: AtomicU32,
    /// Their bytes.
    pub(super) bytes: AtomicU64,
    /// `bitmap/max_backlog_used`: the most behind writes ever in flight.
    pub(super) max_used: AtomicU32,
    /// The behind writes in flight: ranges and legs.
    flights: Flights,
    /// Readers waiting for overlapping behind writes to land.
    readers: AtomicU32,
}

impl Default for Behind {
    fn default() -> Self {
        Behind {
            backlog: AtomicU32::new(0),
            max_ms: AtomicU32::new(behind::DEFAULT_BEHIND_MAX_MS),
            writes: AtomicU32::new(0),
            bytes: AtomicU64::new(0),
            max_used: AtomicU32::new(0),
            flights: Flights::default(),
            readers: AtomicU32::new(0),
        }
    }
}

/// A deferred-submission worker per slot: behind writes to legs whose
/// submission may block (no `REQ_NOWAIT`: NBD sends on its socket in the
/// submitter's context, a full tag set sleeps) are sent by their leg's
/// worker, never the writer (see the protocol). Apart from [`Behind`],
/// which is built in place (its flights table is too large for a stack).
pub(super) fn submitters() -> Result<KVec<Arc<Submitter>>> {
    let mut submitters = KVec::with_capacity(MAX_MIRRORS as usize, GFP_KERNEL)?;
    for _ in 0..MAX_MIRRORS {
        submitters.push(Submitter::new()?, GFP_KERNEL)?;
    }
    Ok(submitters)
}

/// `SlotBehind::mode`: writes reach the leg (or it goes in sync).
const NORMAL: u8 = 0;
/// Going behind: leaving the in-sync set (writes still reach it).
const GOING: u8 = 1;
/// Behind: writes only mark its bitmap.
const BEHIND: u8 = 2;
/// The sync thread is declaring it in sync (it may not go behind now).
const SETTLING: u8 = 3;

/// A slot's ahead/behind state.
pub(crate) struct SlotBehind {
    /// [`NORMAL`], [`GOING`], [`BEHIND`] or [`SETTLING`]: going behind and
    /// going in sync exclude each other, so a leg writes skip is never
    /// declared in sync (see the protocol above).
    mode: AtomicU8,
    /// It went behind since it was last in sync (for the catch-up's log).
    pub(super) caught_up_pending: AtomicBool,
    /// Behind writes in flight on the leg.
    pub(super) inflight: AtomicU32,
    /// Start (monotonic ns) of the oldest behind write in flight, about:
    /// the start of the last one that ended (a leg's writes end nearly in
    /// order), or of the first one after the leg was idle.
    pub(super) oldest_ns: AtomicU64,
    /// When (monotonic ns) a behind write last landed on the leg (ended
    /// OK): with `oldest_ns`, how long a busy leg has landed nothing (the
    /// stall watch's measure: a slow leg with a deep queue lands writes
    /// and is not stalled, though its oldest write may be old).
    landed_ns: AtomicU64,
    /// Bytes of writes that skipped the leg since it went behind.
    pub(super) skipped_bytes: AtomicU64,
    /// Times it went behind since it last caught up (the catch-up's
    /// back-off, `logic::behind::catch_up_delay_ms`).
    episodes: AtomicU32,
    /// Resync copies sent behind to the leg and not landed yet (counted
    /// in `inflight` too): the sync thread waits for them before it
    /// declares the leg in sync.
    copies: AtomicU32,
    /// Their sectors.
    copy_sectors: AtomicU64,
    /// Bumped (SeqCst) before the leg starts missing writes: before it
    /// goes behind and before it fails. The sync thread samples it when a
    /// pass starts; a clear made after it changed is undone (see the
    /// protocol of resync copies).
    misses: AtomicU64,
}

impl SlotBehind {
    pub(super) const fn new() -> Self {
        SlotBehind {
            mode: AtomicU8::new(NORMAL),
            caught_up_pending: AtomicBool::new(false),
            inflight: AtomicU32::new(0),
            oldest_ns: AtomicU64::new(0),
            landed_ns: AtomicU64::new(0),
            skipped_bytes: AtomicU64::new(0),
            episodes: AtomicU32::new(0),
            copies: AtomicU32::new(0),
            copy_sectors: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Writes skip the leg.
    fn is_behind(&self) -> bool {
        self.mode.load(Ordering::SeqCst) == BEHIND
    }

    /// A member joins the slot: nothing of a previous one carries over.
    pub(super) fn reset(&self) {
        self.mode.store(NORMAL, Ordering::SeqCst);
        self.caught_up_pending.store(false, Ordering::Relaxed);
        self.skipped_bytes.store(0, Ordering::Relaxed);
        self.episodes.store(0, Ordering::Relaxed);
    }
}

/// The bound of an ioctl's wait for behind writes when `md/fr1_stall_ms`
/// is 0 (the stall watch is off): 30 s.
const UNWATCHED_WAIT_MS: u32 = 30_000;

/// The work item ID of the catch-up.
pub(crate) const CATCH_UP_WORK: u64 = 2;

/// Who sends a behind write ([`Array::send_behind`]), and so how its
/// clones are submitted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Sender {
    /// A user write (`submit_bio`): it never waits for a leg's queue
    /// (`REQ_NOWAIT`: a full one sends the leg behind) nor in a driver that
    /// blocks in submission (the leg's submit work sends it).
    Write,
    /// A resync copy (the sync thread): it may wait for the queue.
    SyncThread,
    /// A FR1_REPAIR_RANGE piece (`array/copyio.rs`): its clones wait for
    /// the queue in the leg's submit work, not in the caller, who holds
    /// the region and the freezer.
    Caller,
}

impl Array {
    /// Writes go to the member in `slot`: it works and is not behind.
    pub(super) fn takes_writes(&self, slot: u32) -> bool {
        self.state().writable(slot)
            && !self
                .slot
                .get(slot as usize)
                .is_some_and(|s| s.behind.is_behind())
    }

    /// How a write of `sectors` at `sector` (`data`: it carries data)
    /// reaches the write-mostly leg in `slot`, given whether a fast in-sync
    /// leg gets it and which legs have overlapping behind writes in flight.
    pub(super) fn route_behind(
        &self,
        slot: u32,
        data: bool,
        fast_in_sync: bool,
        overlap: u32,
    ) -> Route {
        let Some(s) = self.slot.get(slot as usize) else {
            return Route::Mirror;
        };
        let b = &s.behind;
        let in_flight = b.inflight.load(Ordering::SeqCst);
        let oldest_ms = match in_flight {
            0 => 0,
            _ => monotonic_ns().saturating_sub(b.oldest_ns.load(Ordering::Acquire)) / 1_000_000,
        };
        behind::route(Facts {
            backlog: self.behind.backlog.load(Ordering::Relaxed),
            max_ms: self.behind.max_ms.load(Ordering::Relaxed),
            in_flight,
            overlaps: overlap & (1 << slot) != 0,
            oldest_ms,
            leg_behind: b.is_behind(),
            fast_in_sync,
            data,
        })
    }

    /// The write-mostly leg in `slot` goes behind (see the protocol). False
    /// if it may not (it holds the last readable copy): it stays a mirror.
    pub(super) fn go_behind(&self, slot: u32, why: Why) -> bool {
        let Some(s) = self.slot.get(slot as usize) else {
            return false;
        };
        // GOING and SETTLING last a few instructions (no I/O, no sleep):
        // wait them out rather than send this write to a slow leg.
        let mut spins = 0u32;
        loop {
            match s
                .behind
                .mode
                .compare_exchange(NORMAL, GOING, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                // Another write took it behind already.
                Err(BEHIND) => return true,
                Err(_) if spins < 1_000_000 => {
                    spins += 1;
                    core::hint::spin_loop();
                }
                Err(_) => return false,
            }
        }
        s.behind.misses.fetch_add(1, Ordering::SeqCst);
        // Out of the in-sync set *before* any write skips it.
        if self.update_state(|st| st.fall_behind(slot)).is_err() {
            s.behind.mode.store(NORMAL, Ordering::SeqCst);
            return false;
        }
        // Its bitmap records what it misses from now on.
        self.remember_member(slot);
        s.behind.caught_up_pending.store(true, Ordering::Relaxed);
        let _ = s
            .behind
            .episodes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1));
        s.behind.mode.store(BEHIND, Ordering::SeqCst);
        crate::registry::new_event();
        let name = self.slot_name(slot);
        pr_warn!(
            "{}: {} goes behind ({}: {} behind writes, {} bytes in flight): writes only mark its bitmap until it catches up\n",
            self.log_prefix(),
            name.as_str(),
            why.as_str(),
            self.behind.writes.load(Ordering::Relaxed),
            self.behind.bytes.load(Ordering::Relaxed)
        );
        if s.behind.inflight.load(Ordering::SeqCst) == 0 {
            self.queue_catch_up(slot);
        }
        true
    }

    /// For mdstat: KiB written since the leg in `slot` went behind, if it is.
    pub(super) fn behind_kib(&self, slot: u32) -> Option<u64> {
        let b = &self.slot.get(slot as usize)?.behind;
        b.is_behind()
            .then(|| b.skipped_bytes.load(Ordering::Relaxed) / 1024)
    }

    /// A behind write of `sectors` at `sector` (`bytes`) starts on the legs
    /// `legs`: its entry in `flights` is published, or `None` if there is
    /// no room (the caller then does without the copy).
    pub(super) fn behind_start(&self, sector: u64, sectors: u64, legs: u32) -> Option<u32> {
        let flight = self.behind.flights.claim(sector, sector + sectors, legs)?;
        let n = self.behind.writes.fetch_add(1, Ordering::AcqRel) + 1;
        self.behind.max_used.fetch_max(n, Ordering::Relaxed);
        self.behind
            .bytes
            .fetch_add(sectors * 512, Ordering::Relaxed);
        let now = monotonic_ns();
        let mut first = false;
        for slot in (0..MAX_MIRRORS).filter(|s| legs & (1 << s) != 0) {
            let b = &self.slot[slot as usize].behind;
            // The start first: a router that sees the count sees a start
            // no older than this write's.
            if b.inflight.load(Ordering::SeqCst) == 0 {
                b.oldest_ns.store(now, Ordering::SeqCst);
                first = true;
            }
            b.inflight.fetch_add(1, Ordering::SeqCst);
        }
        if first {
            // An idle leg got busy: the stall watch looks after it.
            self.queue_watch();
        }
        Some(flight as u32)
    }

    /// The behind write of `flight` is done on the leg in `slot` (any
    /// context): its clone there completed (after a failure was recorded
    /// in the leg's bitmap) or was never sent. Each leg's share ends by
    /// itself, so a leg that stalls holds up nothing of another's: not its
    /// count, its age, its catch-up, nor reads of the blocks there.
    pub(super) fn behind_leg_end(
        &self,
        flight: u32,
        slot: u32,
        sectors: u64,
        start_ns: u64,
        resync: bool,
        landed: bool,
    ) {
        let Some(s) = self.slot.get(slot as usize) else {
            return;
        };
        let b = &s.behind;
        self.behind.flights.leg_done(flight as usize, 1 << slot);
        b.oldest_ns.fetch_max(start_ns, Ordering::AcqRel);
        if landed {
            b.landed_ns.fetch_max(monotonic_ns(), Ordering::AcqRel);
        }
        if resync {
            b.copy_sectors.fetch_sub(sectors, Ordering::Relaxed);
            // SeqCst against `wait_resync_copies`' count of readers.
            b.copies.fetch_sub(1, Ordering::SeqCst);
        }
        // SeqCst against `go_behind`'s store of BEHIND and load of the
        // count: one of the two queues the catch-up.
        if b.inflight.fetch_sub(1, Ordering::SeqCst) == 1 && b.is_behind() {
            self.queue_catch_up(slot);
        }
        self.wake_behind_readers();
    }

    /// The last clone of the behind write of `flight` (`sectors`) ended
    /// (any context), after every leg's share did: its entry and counts go.
    /// (Nobody waits for these: the waiters look at the legs' shares, and
    /// `behind_leg_end` woke them.)
    pub(super) fn behind_group_end(&self, flight: u32, sectors: u64) {
        self.behind.flights.release(flight as usize);
        self.behind
            .bytes
            .fetch_sub(sectors * 512, Ordering::Relaxed);
        self.behind.writes.fetch_sub(1, Ordering::AcqRel);
    }

    /// Wakes those waiting for behind writes to land (`readers`).
    fn wake_behind_readers(&self) {
        if self.behind.readers.load(Ordering::SeqCst) != 0 {
            let _g = self.interlock_lock.lock();
            self.interlock_cv.notify_all();
        }
    }

    /// A resync copy of `sectors` at `sector`, read into `buf`, goes to the
    /// write-mostly leg in `slot` (`member`) as a behind write (see the
    /// protocol): true if it is on its way, so the copy may be retired and
    /// its region let go at once; false if the leg is not write-mostly,
    /// its backlog has no room (`logic::behind::resync_copy_behind`) or
    /// memory is short: the caller writes the leg itself.
    pub(super) fn copy_behind(
        &self,
        slot: u32,
        member: &Member,
        buf: &PageBuf,
        sector: u64,
        sectors: u64,
        sender: Sender,
    ) -> bool {
        let Some(s) = self.slot.get(slot as usize) else {
            return false;
        };
        let b = &s.behind;
        let oldest_ms = self.behind_age_ms(slot).unwrap_or(0);
        if !self.state().write_mostly(slot)
            || !self.takes_writes(slot)
            || !behind::resync_copy_behind(behind::CopyFacts {
                backlog: self.behind.backlog.load(Ordering::Relaxed),
                in_flight: b.inflight.load(Ordering::SeqCst),
                copy_bytes: b.copy_sectors.load(Ordering::Relaxed) * 512,
                oldest_ms,
                max_ms: self.behind.max_ms.load(Ordering::Relaxed),
                episodes: b.episodes.load(Ordering::Relaxed),
            })
        {
            return false;
        }
        let Some(copy) = self.behind_set.copy_of_buf(member, buf, sector, sectors) else {
            return false;
        };
        let Some(flight) = self.behind_start(sector, sectors, 1 << slot) else {
            copy.end(Status::OK);
            return false;
        };
        // Counted before it is sent: its end (which may come first) counts
        // it down.
        b.copy_sectors.fetch_add(sectors, Ordering::Relaxed);
        b.copies.fetch_add(1, Ordering::SeqCst);
        self.send_behind(copy, flight, 1 << slot, sender) == 0
    }

    /// Sleeps until the resync copies sent behind to the leg in `slot` have
    /// landed (the sync thread, process context, before it declares the
    /// leg in sync); false if the thread is told to stop first (a stalled
    /// leg must not hold up whoever stops it). A copy that failed failed
    /// the leg first.
    pub(super) fn wait_resync_copies(&self, slot: u32) -> bool {
        let Some(s) = self.slot.get(slot as usize) else {
            return true;
        };
        self.behind.readers.fetch_add(1, Ordering::SeqCst);
        let mut g = self.interlock_lock.lock();
        // `kthread_stop` wakes the thread out of the wait.
        while s.behind.copies.load(Ordering::SeqCst) != 0 && !crate::sys::kthread::should_stop() {
            self.interlock_cv.wait(&mut g);
        }
        drop(g);
        self.behind.readers.fetch_sub(1, Ordering::SeqCst);
        s.behind.copies.load(Ordering::SeqCst) == 0
    }

    /// The leg in `slot`'s miss generation (`SlotBehind::misses`).
    pub(super) fn misses(&self, slot: u32) -> u64 {
        self.slot
            .get(slot as usize)
            .map_or(0, |s| s.behind.misses.load(Ordering::SeqCst))
    }

    /// The leg in `slot` is about to miss writes (it fails).
    pub(super) fn note_misses(&self, slot: u32) {
        if let Some(s) = self.slot.get(slot as usize) {
            s.behind.misses.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// How old the oldest behind write in flight on the leg in `slot` is,
    /// in ms, about (`SlotBehind::oldest_ns`); `None` if none is.
    pub(super) fn behind_age_ms(&self, slot: u32) -> Option<u64> {
        let b = &self.slot.get(slot as usize)?.behind;
        if b.inflight.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let oldest = b.oldest_ns.load(Ordering::SeqCst);
        Some(monotonic_ns().saturating_sub(oldest) / 1_000_000)
    }

    /// For how long (ms) the leg in `slot`, with behind writes in flight,
    /// has landed none: since the later of its last behind write's end and
    /// the start of the oldest in flight (`None` if none is). The stall
    /// watch and `stop` fail a leg on it (`md/fr1_stall_ms`).
    pub(super) fn stalled_ms(&self, slot: u32) -> Option<u64> {
        let b = &self.slot.get(slot as usize)?.behind;
        if b.inflight.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let since = b
            .oldest_ns
            .load(Ordering::SeqCst)
            .max(b.landed_ns.load(Ordering::SeqCst));
        Some(monotonic_ns().saturating_sub(since) / 1_000_000)
    }

    /// The legs with behind writes in flight that overlap `sectors` at
    /// `sector`: reads and copies avoid them, writes must not overtake them.
    pub(super) fn behind_overlap(&self, sector: u64, sectors: u64) -> u32 {
        self.behind
            .flights
            .legs_overlapping(sector, sector + sectors.max(1))
    }

    /// Sleeps until no behind write on `legs` overlaps `sectors` at
    /// `sector` (process context).
    pub(super) fn wait_behind(&self, sector: u64, sectors: u64, legs: u32) {
        self.behind.readers.fetch_add(1, Ordering::SeqCst);
        let mut g = self.interlock_lock.lock();
        while self.behind_overlap(sector, sectors) & legs != 0 {
            self.interlock_cv.wait(&mut g);
        }
        drop(g);
        self.behind.readers.fetch_sub(1, Ordering::SeqCst);
    }

    /// The time an ioctl's caller may wait for behind writes, in jiffies:
    /// `md/fr1_stall_ms` (a leg landing nothing that long fails anyway), or
    /// [`UNWATCHED_WAIT_MS`] if the watch is off. One budget serves every
    /// wait of one call ([`Array::wait_behind_bounded`]).
    pub(super) fn behind_wait_budget(&self) -> Jiffies {
        msecs_to_jiffies(match self.stall_ms.load(Ordering::Relaxed) {
            0 => UNWATCHED_WAIT_MS,
            ms => ms,
        })
    }

    /// [`Array::wait_behind`] for an ioctl's caller, out of `budget`
    /// (what is left is written back): EBUSY once it is spent, EINTR on a
    /// signal, unless the writes landed by then.
    pub(super) fn wait_behind_bounded(
        &self,
        sector: u64,
        sectors: u64,
        legs: u32,
        budget: &mut Jiffies,
    ) -> Result {
        if self.behind_overlap(sector, sectors) & legs == 0 {
            return Ok(());
        }
        self.behind.readers.fetch_add(1, Ordering::SeqCst);
        let mut g = self.interlock_lock.lock();
        let waited = loop {
            if self.behind_overlap(sector, sectors) & legs == 0 {
                break Ok(());
            }
            let ended = match self
                .interlock_cv
                .wait_interruptible_timeout(&mut g, *budget)
            {
                CondVarTimeoutResult::Woken { jiffies } => {
                    *budget = jiffies;
                    continue;
                }
                CondVarTimeoutResult::Timeout => {
                    *budget = 0;
                    EBUSY
                }
                CondVarTimeoutResult::Signal { jiffies } => {
                    *budget = jiffies;
                    EINTR
                }
            };
            // They may have landed just now.
            if self.behind_overlap(sector, sectors) & legs == 0 {
                break Ok(());
            }
            break Err(ended);
        };
        drop(g);
        self.behind.readers.fetch_sub(1, Ordering::SeqCst);
        waited
    }

    /// No behind write is in flight on the leg in `slot`.
    pub(super) fn behind_idle(&self, slot: u32) -> bool {
        self.slot
            .get(slot as usize)
            .is_none_or(|s| s.behind.inflight.load(Ordering::SeqCst) == 0)
    }

    /// A write of `bytes` skipped the legs `slots` (counted for those that
    /// are behind).
    pub(super) fn behind_skipped(&self, slots: u32, bytes: u64) {
        for slot in (0..MAX_MIRRORS).filter(|s| slots & (1 << s) != 0) {
            let b = &self.slot[slot as usize].behind;
            if b.is_behind() {
                b.skipped_bytes.fetch_add(bytes, Ordering::Relaxed);
            }
        }
    }

    /// Queues the catch-up of the behind leg in `slot`, which has drained
    /// (any context), after its back-off.
    fn queue_catch_up(&self, slot: u32) {
        // A stopped array queues nothing (`array/linger.rs`).
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        let episodes = self.slot[slot as usize]
            .behind
            .episodes
            .load(Ordering::Relaxed);
        let delay = msecs_to_jiffies(behind::catch_up_delay_ms(episodes));
        // Already queued: that run sees this leg too.
        let _ = crate::sys::work::queue()
            .enqueue_delayed::<Arc<Array>, CATCH_UP_WORK>(CloneOwner::arc(self), delay);
    }

    /// Behind legs whose behind writes drained resync what they missed.
    fn catch_up(self: &Arc<Self>) {
        let mut cfg = self.config.lock();
        if cfg.phase != super::Phase::Running {
            return;
        }
        let mut any = false;
        for slot in 0..MAX_MIRRORS {
            let b = &self.slot[slot as usize].behind;
            if !b.is_behind() || b.inflight.load(Ordering::SeqCst) != 0 {
                continue;
            }
            // No write that skipped the leg is still on its way to the
            // bitmap once writes are frozen.
            let frozen = self.freeze();
            let back = b
                .mode
                .compare_exchange(BEHIND, NORMAL, Ordering::SeqCst, Ordering::SeqCst);
            drop(frozen);
            if back.is_err() {
                continue;
            }
            any = true;
            let name = self.slot_name(slot);
            pr_info!(
                "{}: {} drained its behind writes: resyncing what it missed ({} bytes written while behind)\n",
                self.log_prefix(),
                name.as_str(),
                b.skipped_bytes.swap(0, Ordering::Relaxed)
            );
        }
        if any {
            if let Err(e) = self.restart_resync(&mut cfg) {
                pr_err!(
                    "{}: catch-up resync could not start ({:?})\n",
                    self.log_prefix(),
                    e
                );
            }
        }
    }

    /// Declares `slot` in sync after the sync thread copied all it missed,
    /// unless it is going behind meanwhile. True if it is in sync now.
    /// `clean` is the last look at the leg's bitmap, taken while it cannot
    /// go behind (a write that skipped it would have marked a bit before).
    pub(super) fn settle_in_sync(&self, slot: u32, clean: impl Fn() -> bool) -> bool {
        let Some(s) = self.slot.get(slot as usize) else {
            return false;
        };
        if s.behind
            .mode
            .compare_exchange(NORMAL, SETTLING, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        let ok = clean() && self.update_state(|st| st.set_in_sync(slot)).is_ok();
        s.behind.mode.store(NORMAL, Ordering::SeqCst);
        ok
    }

    /// The sync thread brought `slot` back in sync: if it had gone behind,
    /// say that it caught up.
    pub(super) fn note_caught_up(&self, slot: u32, copied_bytes: u64) {
        let b = &self.slot[slot as usize].behind;
        b.episodes.store(0, Ordering::Relaxed);
        if b.caught_up_pending.swap(false, Ordering::Relaxed) {
            let name = self.slot_name(slot);
            pr_info!(
                "{}: {} caught up ({} bytes copied): back to write-behind\n",
                self.log_prefix(),
                name.as_str(),
                copied_bytes
            );
        }
    }
}

impl WorkItem<CATCH_UP_WORK> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        this.catch_up();
    }
}
