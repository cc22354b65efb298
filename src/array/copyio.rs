// SPDX-License-Identifier: GPL-2.0

//! fr1's copy ioctls (include/uapi/linux/fr1.h): FR1_READ_COPY reads a
//! range of one chosen leg, FR1_REPAIR_RANGE writes a range that is good on
//! one leg over the others. Both run in the caller's context (process
//! context, may sleep) and never hold `config`.
//!
//! Protocol (what they race with):
//!
//! - A read copy races the array's writes as any read does: a block is
//!   read old or new. What it must not return is data older than a write
//!   the array already acknowledged: a write-mostly leg may still have that
//!   write in flight behind (`array/behind.rs`). So it first waits until no
//!   behind write on its leg overlaps the range (`wait_behind_bounded`, out
//!   of a budget of `md/fr1_stall_ms` per call: EBUSY once spent, EINTR on
//!   a signal). The leg may fail or leave while it reads: it is looked at
//!   again after the read, and a leg that is no longer readable gives
//!   EINVAL, not data.
//! - A repair is a resync copy in all but its source. For each region of
//!   the range it waits, holding nothing, until no behind write of any leg
//!   overlaps it (same budget); then takes the freezer mutex (without
//!   freezing writes) and holds the region as the sync thread holds one
//!   (`Array::interlock_raise`: no array write of the region is in flight,
//!   none starts). A behind write sent by a write that held the region
//!   until then sends it back to waiting, holding nothing. Then it reads
//!   the source and writes every other leg that takes writes; a
//!   write-mostly leg with room in its backlog gets the piece as a behind
//!   write from a copy of its own (`Array::copy_behind`, exactly as a
//!   resync copy, `array/behind.rs`), so neither the region nor the
//!   freezer is held while a slow leg writes; the call returns once the
//!   fast legs wrote (a read copy of the slow leg waits for the behind
//!   write). Every leg that did not get the data (behind, failing now,
//!   faulty, or gone but tracked for a re-add) gets the piece in its
//!   bitmap, so a catch-up or re-add copies it. Each wait of a repair
//!   (behind writes, the freezer, the region's writes: any may be waiting
//!   for a stalled leg until `md/fr1_stall_ms`) ends with EINTR on a
//!   signal, holding nothing it took for the piece.
//! - The freezer mutex keeps out whoever else writes a leg's blocks or
//!   resets its bitmap outside the interlock: read-error repair
//!   (`Array::fix_read`, which may rewrite a leg the repair writes, with
//!   data it read before), the catch-up, and a re-add's bitmap reset
//!   (`readd.rs`). A behind copy the repair left in flight outlives the
//!   freezer as any behind write does (`array/behind.rs`: no read, hence
//!   no read-error repair, reads its leg there until it landed; a re-add
//!   resets no bitmap under it). Order: `copy_mutex` -> `freezer` ->
//!   region, the freezers' order. A repair waits for a region's writes
//!   while holding the freezer (interruptibly); a write never waits for
//!   the freezer, only for a freeze, which a repair never takes, so that
//!   wait ends.
//! - A repair and the sync thread exclude each other through
//!   `Array::copy_mutex`: a resync copy reading a target the repair is
//!   rewriting could otherwise write the older data over a third leg after
//!   the repair wrote it. The sync thread holds the mutex for its whole
//!   run; a repair only tries it (EBUSY while a resync, recovery, check or
//!   repair runs). A sync thread started during a repair polls for it (at
//!   most one call's range, 1 MiB, plus its waits for behind writes) and
//!   gives up when it is stopped, so a stop never waits for a repair.
//! - A call counts in the array's `inflight` as a master bio does, from
//!   its start to its return (`Array::enter_caller_io`; ENODEV once the
//!   array stops): a STOP_ARRAY from another thread waits for it in its
//!   drain, and the behind copies a repair leaves in flight count
//!   themselves, so a stop drains them or lingers over them as over any
//!   behind write, and no completion outlives the array.

use core::sync::atomic::Ordering;
use kernel::{
    prelude::*,
    sync::MutexGuard,
    time::{delay::fsleep, Delta, Jiffies},
    uaccess::{UserPtr, UserSlice},
};

use super::behind::Sender;
use super::check::Copied;
use super::{to_error, Array, Phase};
use crate::logic::abi::{Fr1CopyIo, Fr1RepairRange, MAX_MIRRORS};
use crate::logic::copyio::{self, SectorRange};
use crate::logic::interlock::REGION_SECTORS;
use crate::sys::bio::PageBuf;

impl Array {
    /// FR1_READ_COPY: `io.length` bytes at `io.offset` of the leg in
    /// `io.slot`, copied to the user buffer `io.buf`.
    pub(super) fn read_copy(&self, io: &Fr1CopyIo) -> Result {
        let _io = self.enter_caller_io()?;
        let (range, raid_disks) = self.copy_range(io.offset, io.length, io.flags)?;
        copyio::check_source(self.state(), io.slot, raid_disks).map_err(to_error)?;
        let bytes = usize::try_from(io.length).map_err(|_| EINVAL)?;
        let buf = PageBuf::new(bytes)?;
        // Writes the array acknowledged land on the leg first.
        let mut budget = self.behind_wait_budget();
        self.wait_behind_bounded(range.sector, range.sectors, 1 << io.slot, &mut budget)?;
        let member = self.slot_get(io.slot, false).ok_or(EINVAL)?;
        let ok = self
            .bioset
            .sync_io(&member, false, range.sector, range.sectors, &buf);
        drop(member);
        // Failed or left meanwhile: what it read is no copy of the array.
        copyio::check_source(self.state(), io.slot, raid_disks).map_err(to_error)?;
        if !ok {
            return Err(EIO);
        }
        let addr = usize::try_from(io.buf).map_err(|_| EFAULT)?;
        buf.copy_to_user(
            &mut UserSlice::new(UserPtr::from_addr(addr), bytes).writer(),
            bytes,
        )
    }

    /// FR1_REPAIR_RANGE: the range is good on the leg in `r.from`; write
    /// it over every other leg, region by region under the interlock.
    pub(super) fn repair_range(&self, r: &Fr1RepairRange) -> Result {
        let _io = self.enter_caller_io()?;
        let (range, raid_disks) = self.copy_range(r.offset, r.length, r.flags)?;
        let st = self.state();
        copyio::check_source(st, r.from, raid_disks).map_err(to_error)?;
        copyio::repair_targets(st, r.from, raid_disks).map_err(to_error)?;
        let buf = PageBuf::new((range.sectors.min(REGION_SECTORS) * 512) as usize)?;
        let _copying = self.copy_mutex.try_lock().ok_or(EBUSY)?;
        let mut budget = self.behind_wait_budget();
        let end = range.sector + range.sectors;
        let mut sector = range.sector;
        while sector < end {
            let piece = (end - sector).min(REGION_SECTORS - sector % REGION_SECTORS);
            self.repair_piece(r.from, sector, piece, &buf, raid_disks, &mut budget)?;
            sector += piece;
        }
        pr_info!(
            "{}: repair-range from {}: {} sectors at sector {} written over the other legs\n",
            self.name_str(),
            self.slot_name(r.from).as_str(),
            range.sectors,
            range.sector
        );
        Ok(())
    }

    /// One region's piece of a repair: waits (out of `budget`) until no
    /// behind write of the array's legs overlaps it, then holds the freezer
    /// (no read-error repair, catch-up or re-add meanwhile) and the region
    /// (no write), and copies it ([`Array::repair_held`]). Each of those
    /// waits ends with EINTR on a signal; each retry costs the budget a
    /// jiffy, so a region that keeps getting behind writes ends in EBUSY.
    fn repair_piece(
        &self,
        from: u32,
        sector: u64,
        sectors: u64,
        buf: &PageBuf,
        raid_disks: u32,
        budget: &mut Jiffies,
    ) -> Result {
        let legs = (1u32 << raid_disks.min(MAX_MIRRORS)) - 1;
        loop {
            // Waited for before anything is held: writers of the region and
            // freezers do not wait for a slow leg.
            self.wait_behind_bounded(sector, sectors, legs, budget)?;
            let serial = self.freezer_interruptible()?;
            let bucket = match self.interlock_raise_interruptible(sector) {
                Ok(b) => b,
                Err(e) => {
                    drop(serial);
                    return Err(e);
                }
            };
            // A write that held the region until the raise may have sent a
            // behind write since the wait: wait for it, holding nothing.
            if self.behind_overlap(sector, sectors) & legs == 0 {
                let done = self.repair_held(from, sector, sectors, buf, raid_disks);
                self.interlock_lower(bucket);
                drop(serial);
                return done;
            }
            self.interlock_lower(bucket);
            drop(serial);
            if *budget == 0 {
                return Err(EBUSY);
            }
            *budget -= 1;
        }
    }

    /// The freezer mutex, for an ioctl's caller: EINTR on a signal. Its
    /// holder may wait for a write in flight to a stalled leg (a freeze
    /// drains writes) until `md/fr1_stall_ms` fails the leg, and the
    /// kernel's mutex has no interruptible lock in Rust: it is tried every
    /// millisecond.
    fn freezer_interruptible(&self) -> Result<MutexGuard<'_, ()>> {
        loop {
            if let Some(g) = self.freezer.try_lock() {
                return Ok(g);
            }
            if kernel::current!().signal_pending() {
                return Err(EINTR);
            }
            fsleep(Delta::from_millis(1));
        }
    }

    /// Copies one piece from `from` over the other legs, its region and the
    /// freezer held and no behind write over it in flight. A write-mostly
    /// leg with room in its backlog gets the piece as a behind write, from
    /// a copy of its own (`Array::copy_behind`, as a resync copy does), so
    /// the region and the freezer are not held while a slow leg writes; a
    /// behind write that fails fails the leg and records the piece. Every
    /// leg that does not get the data (behind, failed, failing now, gone
    /// but still tracked for a re-add) gets the piece in its bitmap. EIO if
    /// the source fails the read or every target that was written failed
    /// the write, EINVAL if the source or every target left.
    fn repair_held(
        &self,
        from: u32,
        sector: u64,
        sectors: u64,
        buf: &PageBuf,
        raid_disks: u32,
    ) -> Result {
        let targets = copyio::repair_targets(self.state(), from, raid_disks).map_err(to_error)?;
        let member = self.slot_get(from, false).ok_or(EINVAL)?;
        let ok = self.bioset.sync_io(&member, false, sector, sectors, buf);
        drop(member);
        copyio::check_source(self.state(), from, raid_disks).map_err(to_error)?;
        if !ok {
            return Err(EIO);
        }
        // `kept`: legs that will get the piece from their bitmap (behind).
        let (mut written, mut failed, mut kept) = (0u32, 0u32, 0u32);
        for slot in (0..MAX_MIRRORS).filter(|s| targets & (1 << s) != 0) {
            if !self.takes_writes(slot) {
                if self.state().writable(slot) {
                    kept |= 1 << slot;
                }
                continue;
            }
            let behind = self
                .slot_get(slot, true)
                .is_some_and(|t| self.copy_behind(slot, &t, buf, sector, sectors, Sender::Caller));
            if behind {
                written |= 1 << slot;
                continue;
            }
            let why = "write error during repair-range";
            match self.write_copy(slot, sector, sectors, buf, why, (sector, sectors)) {
                Copied::Written => written |= 1 << slot,
                Copied::Failed => failed |= 1 << slot,
                Copied::Gone => {}
            }
        }
        let others = ((1u32 << raid_disks.min(MAX_MIRRORS)) - 1) & !(1 << from);
        if others & !written != 0 {
            self.record_missed_write(others & !written, sector, sectors);
        }
        match (written, failed, kept) {
            (0, 0, 0) => Err(EINVAL),
            (0, f, _) if f != 0 => Err(EIO),
            _ => Ok(()),
        }
    }

    /// The sectors of a copy ioctl's byte range on a running array, and
    /// the array's `raid_disks` (ENODEV if not running, EINVAL for a bad
    /// range: `logic::copyio::check_range`).
    fn copy_range(&self, offset: u64, length: u64, flags: u32) -> Result<(SectorRange, u32)> {
        let block = {
            let cfg = self.config.lock();
            match (cfg.phase, cfg.disk.as_ref()) {
                (Phase::Running, Some(disk)) => disk.logical_block_size(),
                _ => return Err(ENODEV),
            }
        };
        let sectors = self.sectors.load(Ordering::Relaxed);
        let range = copyio::check_range(offset, length, flags, block, sectors).map_err(to_error)?;
        Ok((range, self.raid_disks.load(Ordering::Relaxed)))
    }
}
