// SPDX-License-Identifier: GPL-2.0

//! The data path: every write cloned to every live member, every read
//! served by one member, read errors retried on another member and repaired.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use kernel::{
    prelude::*,
    sync::{Arc, ArcBorrow},
    workqueue::WorkItem,
};

use super::behind::Sender;
use super::Array;
use crate::logic::abi::MAX_MIRRORS;
use crate::logic::balance::{self, Mirror};
use crate::logic::behind::{Route, Why};
use crate::logic::interlock::{bucket_of, Entry, REGION_SECTORS};
use crate::logic::slots::FailError;
use crate::sys::bio::{
    Bio, CloneOwner, Finished, Group, IoAcct, OpClass, OptionalOp, Pad, PageBuf, Status,
};
use crate::sys::member::MemberSlot;

/// What the clones of one master bio share (in the first clone's front
/// pad, see `sys::bio`'s protocol comment).
pub(crate) struct IoState {
    /// A write (else a read, served by one member).
    write: bool,
    /// Behind writes (`array/behind.rs`): the legs this copy goes to, else 0.
    behind: u32,
    /// Behind writes: when the copy was sent (monotonic ns).
    start_ns: u64,
    /// Behind writes: the copy's entry in the flights table.
    flight: u32,
    /// Behind writes: a resync copy (`Array::copy_behind`), not a user's.
    resync: bool,
    /// The interlock bucket the master write holds, or [`NO_BUCKET`].
    bucket: u32,
    /// Reads: the slots tried so far.
    tried: u32,
    /// Reads: the slot read from.
    slot: u32,
    /// Writes: an in-sync member has the data.
    uptodate: AtomicBool,
    /// Writes: slots whose member answered `BLK_STS_NOTSUPP` to an optional
    /// operation.
    notsupp: AtomicU32,
    /// Reads: the clone's status.
    status: AtomicU8,
    /// An upper bio's I/O accounting on the array's disk, ended with it
    /// ([`end_upper`]); none for behind copies.
    acct: IoAcct,
}

impl IoState {
    fn write(bucket: u32, acct: IoAcct) -> Self {
        IoState {
            write: true,
            behind: 0,
            start_ns: 0,
            flight: 0,
            resync: false,
            bucket,
            tried: 0,
            slot: 0,
            uptodate: AtomicBool::new(false),
            notsupp: AtomicU32::new(0),
            status: AtomicU8::new(Status::OK.0),
            acct,
        }
    }

    fn behind(flight: u32, legs: u32, resync: bool) -> Self {
        IoState {
            behind: legs,
            start_ns: crate::sys::time::monotonic_ns(),
            flight,
            resync,
            ..IoState::write(NO_BUCKET, IoAcct::NONE)
        }
    }

    fn read(slot: u32, acct: IoAcct) -> Self {
        IoState {
            write: false,
            behind: 0,
            start_ns: 0,
            flight: 0,
            resync: false,
            bucket: NO_BUCKET,
            tried: 1 << slot,
            slot,
            uptodate: AtomicBool::new(false),
            notsupp: AtomicU32::new(0),
            status: AtomicU8::new(Status::OK.0),
            acct,
        }
    }
}

/// Ends the upper bio of `done` with `status`: its accounting first, with
/// the bio as it was submitted (`Finished` gives it back restored).
fn end_upper(done: Finished<IoState>, status: Status) {
    done.master().end_acct(done.shared().acct);
    done.end(status);
}

/// The front pad of the array's clones.
pub(crate) type IoPad = Pad<IoState>;

/// `IoState::bucket` of bios that hold no interlock bucket (reads, flushes).
const NO_BUCKET: u32 = u32::MAX;

// SAFETY: Arrays are only created inside an `Arc` (`Array::create`);
// `bioset` is a pinned field of that type; an array is dropped only after
// `stop` drained its I/O (every master ends after its last clone); and the
// member slots whose references the data path sends are the array's own
// `slot` fields.
unsafe impl CloneOwner for Array {
    type Shared = IoState;

    const BIOSET_OFFSET: usize = core::mem::offset_of!(Array, bioset);

    fn member_slot(&self, slot: u32) -> Option<&MemberSlot> {
        self.slot.get(slot as usize).map(|s| &s.member)
    }

    fn clone_done(this: ArcBorrow<'_, Array>, group: &Group<IoState>, slot: u32, status: Status) {
        let st = group.shared();
        if !st.write {
            st.status.store(status.0, Ordering::Release);
            return;
        }
        let master = group.master();
        if status.is_ok() {
            if this.state().readable(slot) {
                st.uptodate.store(true, Ordering::Release);
            }
        } else if (status == Status::AGAIN || status == Status::NOTSUPP) && st.behind != 0 {
            // A behind write the leg's queue had no room for (`REQ_NOWAIT`;
            // NOTSUPP if the queue stopped taking `REQ_NOWAIT` since it was
            // looked at, a behind write being a plain write): not a failure. The leg goes behind (out of the in-sync set
            // before the copy's flight ends, so no read reaches it) and its
            // bitmap has the write; if it may not (the last readable copy),
            // it fails as for an error.
            if this.go_behind(slot, Why::Congested)
                || matches!(
                    this.fail_slot(slot, "behind write not queued"),
                    Ok(()) | Err(FailError::AlreadyFaulty) | Err(FailError::Empty)
                )
            {
                this.record_missed_write(1 << slot, master.sector(), master.sectors());
            } else {
                pr_err!(
                    "{}: behind write to the last in-sync member not queued: {} sectors at {} lost\n",
                    this.name_str(),
                    master.sectors(),
                    master.sector()
                );
            }
        } else if status == Status::NOTSUPP && master.optional_op().is_some() {
            // The member lacks the operation: it has not failed, and nothing
            // it holds changed, so neither its state nor the bitmap is
            // touched.
            st.notsupp.fetch_or(1 << slot, Ordering::AcqRel);
        } else {
            let why = if st.behind != 0 {
                "behind write error"
            } else {
                "write error"
            };
            match this.fail_slot(slot, why) {
                // Empty: the member is being detached (its PRESENT bit went
                // first); the slot's bitmap still records for its return.
                Ok(()) | Err(FailError::AlreadyFaulty) | Err(FailError::Empty) => {
                    this.record_missed_write(1 << slot, master.sector(), master.sectors())
                }
                // The caller was told the write succeeded, and the last
                // in-sync copy does not have it.
                Err(FailError::LastInSync) if st.behind != 0 => pr_err!(
                    "{}: behind write to the last in-sync member failed: {} sectors at {} lost\n",
                    this.name_str(),
                    master.sectors(),
                    master.sector()
                ),
                // The last copy: keep it, the error goes up (unless another
                // in-sync member wrote the data).
                Err(FailError::LastInSync) => {}
            }
        }
        if st.behind != 0 {
            // This leg's share of the behind write ends with its own clone,
            // after a failure was recorded above, not with the group: a leg
            // that stalls holds up no other (`Array::behind_leg_end`). The
            // group lives until this returns, so its flight entry does.
            this.behind_leg_end(
                st.flight,
                slot,
                master.sectors(),
                st.start_ns,
                st.resync,
                status.is_ok(),
            );
        }
    }

    fn group_done(this: ArcBorrow<'_, Array>, done: Finished<IoState>) {
        let st = done.shared();
        if !st.write {
            let status = Status(st.status.load(Ordering::Acquire));
            if status.is_ok() || done.master().is_readahead() {
                end_upper(done, status);
                this.end_master();
            } else {
                this.retry.push(done);
                // Already queued is fine: the worker takes the whole stack.
                let _ = crate::sys::work::queue().enqueue::<Arc<Array>, RETRY_WORK>(this.into());
            }
            return;
        }
        if st.behind != 0 {
            // The copy's group, after the upper bio's clones were sent (it
            // has usually ended): each leg's share ended with its clone
            // there (`clone_done`), or in `send_behind` for a leg it did not
            // reach.
            let flight = st.flight;
            let sectors = done.master().sectors();
            done.end(Status::OK);
            this.behind_group_end(flight, sectors);
            this.end_behind_master();
            return;
        }
        // Members without the operation: the array stops advertising it
        // (before the completion: the caller's fallback checks it). If an
        // in-sync member zeroed the range, the others get zero pages from the
        // worker and the bio succeeds; otherwise it ends NOTSUPP and the
        // caller falls back (write-zeroes: zero pages every member takes) or
        // gives up (discard, secure erase: nothing was promised).
        let notsupp = st.notsupp.load(Ordering::Acquire) != 0;
        let uptodate = st.uptodate.load(Ordering::Acquire);
        if notsupp {
            done.master().disable_op_on_queue();
            if uptodate && done.master().optional_op() == Some(OptionalOp::WriteZeroes) {
                // Stays in flight (interlock bucket and freeze count held)
                // until the worker wrote the zeroes. Its own work item: the
                // retry worker may be waiting (freeze) for this very write.
                this.zero_fill.push(done);
                let _ =
                    crate::sys::work::queue().enqueue::<Arc<Array>, ZERO_FILL_WORK>(this.into());
                return;
            }
        }
        let status = if notsupp {
            Status::NOTSUPP
        } else if uptodate {
            Status::OK
        } else {
            Status::IOERR
        };
        let bucket = st.bucket;
        end_upper(done, status);
        this.end_write(bucket);
        this.end_master();
    }
}

impl Array {
    /// Entry point of every bio sent to the array.
    pub(crate) fn submit_bio(&self, bio: Bio) {
        self.user_masters.fetch_add(1, Ordering::SeqCst);
        self.inflight.fetch_add(1, Ordering::SeqCst);
        if !self.running.load(Ordering::SeqCst) {
            bio.end(Status::IOERR);
            self.end_master();
            return;
        }
        let Some(bio) = bio.split_to_limits() else {
            self.end_master();
            return;
        };
        // The block layer splits reads, writes and write-zeroes at
        // `chunk_sectors` (one interlock region), but discards only by their
        // granularity: split those at the region boundary here, so that every
        // bio lies in one region and its interlock bucket covers it.
        let bio = match bio.optional_op() {
            Some(_) => {
                let sector = bio.sector();
                let end = (sector / REGION_SECTORS + 1) * REGION_SECTORS;
                match bio.split_front(end - sector, &self.splits) {
                    Ok(front) | Err(front) => front,
                }
            }
            None => bio,
        };
        match bio.op_class() {
            OpClass::Read => self.read(bio),
            OpClass::Write => self.write(bio),
            OpClass::Unsupported => {
                bio.end(Status::NOTSUPP);
                self.end_master();
            }
        }
    }

    /// Counts I/O that an ioctl's caller starts itself (FR1_READ_COPY,
    /// FR1_REPAIR_RANGE) as a master, in `inflight` and `user_masters`,
    /// until the guard drops: `stop` drains it as it drains a bio, and a
    /// repair's behind copies, which count themselves, may outlive the call
    /// only into that drain (or a linger), never past the array. ENODEV
    /// once the array stops (counted before `running` is read, as
    /// `submit_bio` does).
    pub(super) fn enter_caller_io(&self) -> Result<CallerIo<'_>> {
        self.user_masters.fetch_add(1, Ordering::SeqCst);
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let io = CallerIo(self);
        if !self.running.load(Ordering::SeqCst) {
            return Err(ENODEV);
        }
        Ok(io)
    }

    /// A master bio has completed (or was refused).
    fn end_master(&self) {
        self.user_masters.fetch_sub(1, Ordering::SeqCst);
        self.end_any_master();
    }

    /// A behind copy's group has ended.
    fn end_behind_master(&self) {
        self.end_any_master();
    }

    /// The last access to the array of a master's completion: once
    /// `inflight` is zero a stopping array may be freed (`stop` returns
    /// through `drained`), so a lingering one is held by its own reference
    /// across the wake-up (`array/linger.rs`).
    fn end_any_master(&self) {
        if self.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            let me = self.lingered_out();
            self.drained.complete_all();
            if let Some(me) = me {
                // Queued once only: `reap_self` is taken once.
                let _ = crate::sys::work::queue()
                    .enqueue::<Arc<Array>, { super::linger::REAP_WORK }>(me);
            }
        }
    }

    fn write(&self, master: Bio) {
        // Accounted from here: a wait for a freeze is the caller's latency.
        let acct = master.start_acct();
        self.enter_write();
        let (sector, sectors) = (master.sector(), master.sectors());
        // Bios never cross a region (chunk_sectors), so one bucket covers it.
        let bucket = if sectors > 0 {
            let b = bucket_of(sector);
            self.interlock_enter_write(b);
            b as u32
        } else {
            NO_BUCKET
        };
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS);
        let (mut behind, mut skipped) = self.route_write(&master, raid_disks);
        // The copy is made and published before any clone of the upper bio
        // is sent: once the upper bio ends its pages are the caller's again,
        // and a later write of the same blocks must see it in flight.
        let mut copy = None;
        if behind != 0 {
            if let Some(c) = self.behind_set.copy_of(&master) {
                match self.behind_start(sector, sectors, behind) {
                    Some(flight) => copy = Some((c, flight)),
                    None => c.end(Status::OK),
                }
            }
        }
        if behind != 0 && copy.is_none() {
            // No memory (or room) for it: the legs go behind, or, holding
            // the last readable copy, get the write as mirrors.
            for slot in (0..MAX_MIRRORS).filter(|s| behind & (1 << s) != 0) {
                if self.go_behind(slot, Why::NoMemory) {
                    skipped |= 1 << slot;
                }
            }
            behind = 0;
        }
        let mut missed = skipped;
        if let Some((copy, flight)) = copy {
            missed |= self.send_behind(copy, flight, behind, Sender::Write);
        }
        let mut out = self.fan_out(master, IoState::write(bucket, acct));
        let legs = (0..raid_disks).filter(|s| (behind | skipped) & (1 << s) == 0);
        let st = self.state();
        let writable = legs
            .clone()
            .filter(|&s| st.writable(s))
            .fold(0u32, |m, s| m | 1 << s);
        if writable.count_ones() == 1 {
            // One leg takes the write (a degraded array, or a fast leg
            // whose write-mostly partners get a copy behind): the master
            // itself goes to it, not a clone (`sys::bio::Hook`). The other
            // legs were not writable: they miss it, as a send finding them
            // unwritable would have them (one that became writable since
            // is resynced, not written).
            let only = writable.trailing_zeros();
            missed |= legs.fold(0u32, |m, s| m | 1 << s) & !writable;
            if !out.send_only(only, || self.state().writable(only)) {
                missed |= writable;
            }
        } else {
            for slot in legs {
                if !out.send(slot, || self.state().writable(slot)) {
                    missed |= 1 << slot;
                }
            }
        }
        // Before the write can finish (the fan-out's own count): a freezer
        // that saw the write drained also sees what it missed. Clones sent
        // from `submit_bio` wait on the block layer's list until it returns,
        // so this is also before the data reaches any member (which
        // `readd::sample_matches` relies on).
        if missed != 0 && sectors > 0 {
            self.record_missed_write(missed, sector, sectors);
        }
        if skipped != 0 {
            self.behind_skipped(skipped, sectors * 512);
        }
        if let Err((master, _)) = out.finish() {
            master.end_acct(acct);
            master.end(Status::IOERR);
            self.end_write(bucket);
            self.end_master();
        }
    }

    /// Which working legs get this write behind, and which skip it (behind
    /// legs, whose bitmap records it): `logic::behind::route`.
    fn route_write(&self, master: &Bio, raid_disks: u32) -> (u32, u32) {
        let st = self.state();
        let (mut behind, mut skipped) = (0u32, 0u32);
        let legs = (0..raid_disks).filter(|&s| st.writable(s));
        let fast_in_sync = legs
            .clone()
            .any(|s| !st.write_mostly(s) && st.readable(s) && self.takes_writes(s));
        let (sector, sectors) = (master.sector(), master.sectors());
        let overlap = self.behind_overlap(sector, sectors);
        for slot in legs {
            if !st.write_mostly(slot) && overlap & (1 << slot) == 0 {
                if !self.takes_writes(slot) {
                    skipped |= 1 << slot;
                }
                continue;
            }
            match self.route_behind(slot, master.is_data_write(), fast_in_sync, overlap) {
                Route::Mirror => {}
                Route::Behind => behind |= 1 << slot,
                Route::Skip => skipped |= 1 << slot,
                Route::GoBehind(why) => {
                    if self.go_behind(slot, why) {
                        skipped |= 1 << slot;
                    } else if why == Why::Overlap {
                        // The last readable copy: the write must not
                        // overtake the older one there, so it waits (md's
                        // rule), then reaches the leg as a mirror.
                        self.wait_behind(sector, sectors, 1 << slot);
                    }
                }
            }
        }
        (behind, skipped)
    }

    /// Sends `copy` (its entry in the flights table: `flight`) to the legs
    /// `legs` as behind writes (see `array/behind.rs`), for `sender`.
    /// Returns the legs it did not reach: their bitmap must record the
    /// write.
    pub(super) fn send_behind(&self, copy: Bio, flight: u32, legs: u32, sender: Sender) -> u32 {
        // A master count of its own: `stop` drains it.
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let sectors = copy.sectors();
        let resync = sender != Sender::Write;
        let state = IoState::behind(flight, legs, resync);
        let start_ns = state.start_ns;
        let mut out = self.fan_out(copy, state);
        match sender {
            // A slow leg's full queue never makes the writer wait
            // (`clone_done`: the leg goes behind instead), nor does a leg
            // whose submission blocks (its submit work sends to it).
            Sender::Write => {
                out.nowait();
                out.defer_blocking(&self.submitters);
            }
            // Copies wait for the leg's queue (a copy that ended AGAIN
            // would end the catch-up that was to bring the leg back)...
            Sender::SyncThread => {}
            // ... and so does a repair's, in the leg's submit work: its
            // caller holds the region and the freezer.
            Sender::Caller => out.defer_blocking(&self.submitters),
        }
        let mut missed = 0;
        for slot in (0..MAX_MIRRORS).filter(|s| legs & (1 << s) != 0) {
            if !out.send(slot, || self.state().writable(slot)) {
                missed |= 1 << slot;
            }
        }
        // The shares of the legs not reached end now, while the fan-out's
        // own count keeps the group, and so the flight entry, alive.
        for slot in (0..MAX_MIRRORS).filter(|s| missed & (1 << s) != 0) {
            self.behind_leg_end(flight, slot, sectors, start_ns, resync, false);
        }
        if let Err((copy, _)) = out.finish() {
            copy.end(Status::OK);
            self.behind_group_end(flight, sectors);
            self.end_behind_master();
        }
        missed
    }

    /// A write finished: releases its interlock bucket and the freeze count.
    fn end_write(&self, bucket: u32) {
        if bucket != NO_BUCKET {
            self.interlock_exit_write(bucket as usize);
        }
        self.exit_write();
    }

    pub(crate) fn mirrors(&self) -> [Mirror; MAX_MIRRORS as usize] {
        let st = self.state();
        let mut m = [Mirror::default(); MAX_MIRRORS as usize];
        for (i, (mirror, slot)) in m.iter_mut().zip(self.slot.iter()).enumerate() {
            let i = i as u32;
            *mirror = Mirror {
                readable: st.readable(i),
                write_mostly: st.write_mostly(i),
                pending: slot.member.refs(),
                next_seq_sector: slot.next_seq.load(Ordering::Relaxed),
            };
        }
        m
    }

    fn read(&self, mut master: Bio) {
        let acct = master.start_acct();
        let (sector, sectors) = (master.sector(), master.sectors());
        let first_only = self.resync_pending.load(Ordering::Relaxed);
        let mut exclude = 0u32;
        loop {
            let Some(slot) = self.choose_read(sector, sectors, exclude, first_only) else {
                master.end_acct(acct);
                master.end(Status::IOERR);
                self.end_master();
                return;
            };
            // The master itself goes to the leg (`sys::bio::Hook`).
            let mut out = self.fan_out(master, IoState::read(slot, acct));
            if out.send_only(slot, || self.state().readable(slot)) {
                self.slot[slot as usize]
                    .next_seq
                    .store(sector + sectors, Ordering::Relaxed);
            }
            match out.finish() {
                Ok(()) => return,
                // Gone since it was chosen: another one.
                Err((m, _)) => {
                    master = m;
                    exclude |= 1 << slot;
                }
            }
        }
    }

    /// The leg to read `sectors` at `sector` from, not in `exclude`: never
    /// one where an overlapping behind write is in flight (`array/behind.rs`).
    /// If only such legs could serve (or, reading the first leg only, the
    /// first is one), sleeps until their behind writes landed (process
    /// context).
    pub(super) fn choose_read(
        &self,
        sector: u64,
        sectors: u64,
        exclude: u32,
        first_only: bool,
    ) -> Option<u32> {
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS) as usize;
        loop {
            let mirrors = self.mirrors();
            let mirrors = &mirrors[..raid_disks];
            let avoid = self.behind_overlap(sector, sectors);
            let any = balance::choose(mirrors, sector, exclude, first_only)? as u32;
            if avoid & (1 << any) == 0 {
                return Some(any);
            }
            if !first_only {
                if let Some(s) = balance::choose(mirrors, sector, exclude | avoid, false) {
                    return Some(s as u32);
                }
            }
            self.wait_behind(sector, sectors, avoid);
        }
    }

    // ---- read error repair and write-zeroes fill-in (process context) ----

    /// Writes zero pages over the range of a write-zeroes bio on the members
    /// that answered it with NOTSUPP (the others zeroed it), then completes
    /// the bio. A member that cannot take the zeroes fails (a real write
    /// error) with the range recorded as missed.
    fn zero_fill_one(&self, done: Finished<IoState>) {
        let (sector, sectors) = (done.master().sector(), done.master().sectors());
        let (bucket, slots) = (
            done.shared().bucket,
            done.shared().notsupp.load(Ordering::Acquire),
        );
        let mut status = Status::OK;
        for slot in (0..MAX_MIRRORS).filter(|s| slots & (1 << s) != 0) {
            let Some(m) = self.slot_get(slot, true) else {
                // It failed or left since: its bitmap gets the range.
                self.record_missed_write(1 << slot, sector, sectors);
                continue;
            };
            let ok = self.bioset.write_zero_pages(&m, sector, sectors);
            drop(m);
            if !ok {
                match self.fail_slot(slot, "zeroing a range it cannot write-zero failed") {
                    Ok(()) | Err(FailError::AlreadyFaulty) => {
                        self.record_missed_write(1 << slot, sector, sectors)
                    }
                    // The last in-sync copy did not get the zeroes.
                    Err(FailError::LastInSync) | Err(FailError::Empty) => status = Status::IOERR,
                }
            }
        }
        end_upper(done, status);
        self.end_write(bucket);
        self.end_master();
    }

    /// Serves a failed read from another mirror and rewrites the good data
    /// over the failed range (md's `fix_read_error`, with the same freeze of
    /// writes so a newer write can never be overwritten by older data). If
    /// no other leg reads the whole range, block by block
    /// ([`Array::fix_by_block`]): legs that each fail some other block of
    /// it still give a good copy of every block.
    fn fix_read(&self, done: Finished<IoState>) {
        let master = done.master();
        let (failed_slot, mut tried) = (done.shared().slot, done.shared().tried);
        let (sector, sectors) = (master.sector(), master.sectors());
        let failed_name = self.slot_name(failed_slot);
        pr_warn!(
            "{}: read error on {} at sector {} ({} sectors), redirecting to another mirror\n",
            self.name_str(),
            failed_name.as_str(),
            sector,
            sectors
        );
        // Writes are frozen *before* the good copy is read (md's
        // handle_read_error -> freeze_array -> fix_read_error): a write that
        // landed between the read and the rewrite would otherwise be
        // overwritten on the failed member by the older data.
        // The block-by-block pass's scratch block, allocated before writes
        // are frozen: reclaim may write to this very array, and a write
        // would wait for the freeze this worker holds.
        let scratch = PageBuf::new((master.block_sectors().max(8) * 512) as usize).ok();
        let frozen = self.freeze();
        // A member past `md/max_read_errors` is failed (md's
        // exceed_read_errors): the read is served around it and the rewrite
        // below finds it no longer writable.
        self.count_read_error(failed_slot);
        let status = loop {
            let Some(slot) = self.choose_read(sector, sectors, tried, false) else {
                break self.fix_by_block(&frozen, master, scratch.as_ref());
            };
            tried |= 1 << slot;
            let Some(member) = self.slot_get(slot, false) else {
                continue;
            };
            let ok = self.bioset.clone_sync(master, &member).submit_wait();
            drop(member);
            if ok {
                self.rewrite(&frozen, failed_slot, master, 0, sectors);
                break Status::OK;
            }
        };
        drop(frozen);
        end_upper(done, status);
        self.end_master();
    }

    /// Serves the read of `master` block by block (4 KiB, or the logical
    /// block if larger; the retry worker, writes frozen), after no leg read
    /// it whole, so each may be bad somewhere in it: each block is read
    /// from every readable leg, into `master` from the first that reads
    /// it, into a scratch page from the others (to find out whether they
    /// fail it without spoiling the good data), and written back over the
    /// legs that failed it (only those). Without a scratch block (no memory
    /// for it, `fix_read`) the other legs are not looked at: a bad block
    /// there is found by a later read. IOERR if some block has no readable
    /// copy (the other blocks are still repaired).
    fn fix_by_block(&self, frozen: &Frozen<'_>, master: &Bio, scratch: Option<&PageBuf>) -> Status {
        let (sector, sectors) = (master.sector(), master.sectors());
        let step = master.block_sectors().max(8);

        let mut status = Status::OK;
        let mut off = 0;
        while off < sectors {
            let at = sector + off;
            let n = (step - at % step).min(sectors - off);
            // Legs tried for this block, those that failed it, the first
            // that read it.
            let (mut tried, mut bad, mut good) = (0u32, 0u32, None);
            while let Some(slot) = self.choose_read(at, n, tried, false) {
                tried |= 1 << slot;
                let Some(member) = self.slot_get(slot, false) else {
                    continue;
                };
                let ok = match (good, scratch) {
                    (None, _) => self
                        .bioset
                        .clone_piece(master, &member, off, n)
                        .is_some_and(Bio::submit_wait),
                    (Some(_), Some(buf)) => self.bioset.sync_io(&member, false, at, n, buf),
                    // Not looked at.
                    (Some(_), None) => true,
                };
                drop(member);
                if !ok {
                    bad |= 1 << slot;
                } else if good.is_none() {
                    good = Some(slot);
                }
            }
            if good.is_some() {
                for slot in (0..MAX_MIRRORS).filter(|s| bad & (1 << s) != 0) {
                    self.rewrite(frozen, slot, master, off, n);
                }
            } else {
                pr_err!(
                    "{}: unrecoverable read error at sector {} ({} sectors)\n",
                    self.name_str(),
                    at,
                    n
                );
                status = Status::IOERR;
            }
            off += n;
        }
        status
    }

    /// Counts one read error against `slot`'s member (decayed since its
    /// last one, `logic::readerrors`); past `md/max_read_errors` the member
    /// is failed and not probed (its reads answer: a probe would bring it
    /// back; the admin decides, md's rule). Only an in-sync member counts:
    /// the queued errors of one that already failed (a brownout fails every
    /// read in flight) change nothing, as md_error on a faulty rdev. The
    /// last in-sync member is kept (`fail_slot` refuses), and the read then
    /// fails as in md, no other copy being there. Process context: only the
    /// retry worker counts, under the freeze, as `Slot::new_member` resets.
    fn count_read_error(&self, slot: u32) {
        use crate::logic::readerrors;
        if !self.state().readable(slot) {
            return;
        }
        let s = &self.slot[slot as usize];
        let now = crate::sys::time::monotonic_ns();
        let last = s.last_read_error_ns.swap(now, Ordering::Relaxed);
        let count = readerrors::decayed(
            s.read_errors.load(Ordering::Relaxed),
            now.saturating_sub(last),
        );
        let max = self.max_read_errors.load(Ordering::Relaxed);
        let (count, over) = readerrors::record(count, max);
        s.read_errors.store(count, Ordering::Relaxed);
        if over {
            let name = self.slot_name(slot);
            pr_notice!(
                "{}: {}: Raid device exceeded read_error threshold [cur {}:max {}]\n",
                self.name_str(),
                name.as_str(),
                count,
                max
            );
            let _ = self.fail_slot_as(slot, "exceeded read_error threshold", false);
        }
    }

    /// Writes the data just read into `master`, the `sectors` from `off`
    /// sectors into it, over `slot`'s failed range, with writes frozen
    /// since before the read.
    fn rewrite(&self, _frozen: &Frozen<'_>, slot: u32, master: &Bio, off: u64, sectors: u64) {
        let sector = master.sector() + off;
        let Some(member) = self.slot_get(slot, true) else {
            return;
        };
        let ok = self
            .bioset
            .clone_piece(master, &member, off, sectors)
            .is_some_and(|mut w| {
                w.set_op_write();
                w.submit_wait()
            });
        drop(member);
        let name = self.slot_name(slot);
        if ok {
            self.slot[slot as usize]
                .corrected
                .fetch_add(1, Ordering::Relaxed);
            pr_info!(
                "{}: read error corrected ({} sectors at {} on {})\n",
                self.name_str(),
                sectors,
                sector,
                name.as_str()
            );
        } else {
            match self.fail_slot(slot, "rewrite after read error failed") {
                Ok(()) | Err(FailError::AlreadyFaulty) => {
                    self.record_missed_write(1 << slot, sector, sectors)
                }
                Err(_) => {}
            }
        }
    }

    // ---- the write freeze (md's freeze_array) ----
    //
    // Read-error repair, member changes and freeing a member's bitmap need
    // a moment in which no user write is in flight: a repair must not
    // overwrite a newer write with older data, a member must not join while
    // a write that missed it has yet to record that in its bitmap, and a
    // bitmap's nodes may only be freed while nothing records into it.
    //
    // Protocol (counters sequentially consistent):
    //
    // - A write (submit_bio, process context) increments `writes_inflight`,
    //   then reads `frozen`: zero, it goes on; else it withdraws its count
    //   (waking the freezer) and sleeps on `freeze_cv` until `frozen` is
    //   zero, then retries. The count is dropped by the write's last clone
    //   completion (interrupt context; or by the sender itself, in
    //   `FanOut::finish`, if the clones were faster), after the bitmap was updated for
    //   every member it missed. A write-zeroes that some members lack stays
    //   counted until the zero-fill worker wrote their zeroes (the worker
    //   never freezes, so this drain ends too).
    // - A freezer (process context only: the retry worker, the resync thread,
    //   the control path under `config`) takes `freezer`, sets `frozen`, and
    //   sleeps until `writes_inflight` is zero. While its [`Frozen`] guard
    //   lives no write is in flight and none starts; dropping it clears
    //   `frozen` and wakes the writers.
    // - Freezers exclude each other (`freezer`): a guard holder is the only
    //   one that may record into or free a bitmap outside the data path.
    //
    // Order: `config` -> `freezer` -> `freeze_lock`; a freezer never waits
    // for `config` or the region interlock while frozen, and nothing that a
    // write in flight waits for (its clones, the interlock held by a resync
    // copy) needs the freeze, so the drain always ends. Reads are not
    // affected. While frozen, a freezer allocates nothing that may enter
    // reclaim (GFP_KERNEL): reclaim may write to this very array, and that
    // write would wait for the freeze (`fix_read` allocates its scratch
    // block first, `readd` its sample buffers; bios come from mempools with
    // GFP_NOIO, bitmap nodes with GFP_NOWAIT).

    fn enter_write(&self) {
        loop {
            self.writes_inflight.fetch_add(1, Ordering::SeqCst);
            if self.frozen.load(Ordering::SeqCst) == 0 {
                return;
            }
            self.exit_write();
            let mut g = self.freeze_lock.lock();
            while self.frozen.load(Ordering::SeqCst) != 0 {
                self.freeze_cv.wait(&mut g);
            }
        }
    }

    fn exit_write(&self) {
        if self.writes_inflight.fetch_sub(1, Ordering::SeqCst) == 1
            && self.frozen.load(Ordering::SeqCst) != 0
        {
            let _g = self.freeze_lock.lock();
            self.freeze_cv.notify_all();
        }
    }

    /// Blocks new writes and waits for those in flight (process context;
    /// see the protocol above). Writes resume when the guard is dropped.
    pub(crate) fn freeze(&self) -> Frozen<'_> {
        let serial = self.freezer.lock();
        self.frozen.store(1, Ordering::SeqCst);
        let mut g = self.freeze_lock.lock();
        while self.writes_inflight.load(Ordering::SeqCst) != 0 {
            self.freeze_cv.wait(&mut g);
        }
        drop(g);
        Frozen {
            array: self,
            _serial: serial,
        }
    }

    // ---- the region interlock (see logic::interlock) ----

    fn interlock_enter_write(&self, b: usize) {
        while let Entry::Blocked { wake_resync } = self.interlock.try_enter_write(b) {
            let mut g = self.interlock_lock.lock();
            if wake_resync {
                // A resync may sleep on the count this write withdrew.
                self.interlock_cv.notify_all();
            }
            while !self.interlock.write_may_retry(b) {
                self.interlock_cv.wait(&mut g);
            }
        }
    }

    fn interlock_exit_write(&self, b: usize) {
        if self.interlock.exit_write(b) {
            let _g = self.interlock_lock.lock();
            self.interlock_cv.notify_all();
        }
    }

    /// The resync holds the region of `sector` once this returns.
    pub(crate) fn interlock_raise(&self, sector: u64) -> usize {
        let b = bucket_of(sector);
        self.interlock.raise_barrier(b);
        let mut g = self.interlock_lock.lock();
        while !self.interlock.resync_may_copy(b) {
            self.interlock_cv.wait(&mut g);
        }
        b
    }

    /// [`Array::interlock_raise`] for an ioctl's caller: EINTR, holding
    /// nothing, if a signal comes before the region's writes drained (a
    /// write in flight to a stalled leg may take until `md/fr1_stall_ms`
    /// fails it). A raise withdrawn is a lower: writers that saw it wait
    /// on the condition variable the lower wakes.
    pub(crate) fn interlock_raise_interruptible(&self, sector: u64) -> Result<usize> {
        let b = bucket_of(sector);
        self.interlock.raise_barrier(b);
        let mut g = self.interlock_lock.lock();
        while !self.interlock.resync_may_copy(b) {
            if self.interlock_cv.wait_interruptible(&mut g) && !self.interlock.resync_may_copy(b) {
                drop(g);
                self.interlock_lower(b);
                return Err(EINTR);
            }
        }
        Ok(b)
    }

    /// Releases a region taken by [`Array::interlock_raise`].
    pub(crate) fn interlock_lower(&self, b: usize) {
        let _g = self.interlock_lock.lock();
        self.interlock.lower_barrier(b);
        self.interlock_cv.notify_all();
    }
}

/// An ioctl caller's count as a master ([`Array::enter_caller_io`]).
pub(super) struct CallerIo<'a>(&'a Array);

impl Drop for CallerIo<'_> {
    fn drop(&mut self) {
        self.0.end_master();
    }
}

/// The work item ID of read-error repair.
pub(crate) const RETRY_WORK: u64 = 0;
/// The work item ID of write-zeroes fill-ins.
pub(crate) const ZERO_FILL_WORK: u64 = 1;

impl WorkItem<RETRY_WORK> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        for done in this.retry.take_all() {
            this.fix_read(done);
        }
    }
}

impl WorkItem<ZERO_FILL_WORK> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        for done in this.zero_fill.take_all() {
            this.zero_fill_one(done);
        }
    }
}

/// Writes are frozen while this lives (see the protocol at
/// [`Array::freeze`]).
pub(crate) struct Frozen<'a> {
    array: &'a Array,
    _serial: kernel::sync::MutexGuard<'a, ()>,
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _g = self.array.freeze_lock.lock();
        self.array.frozen.store(0, Ordering::SeqCst);
        self.array.freeze_cv.notify_all();
    }
}
