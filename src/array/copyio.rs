// SPDX-License-Identifier: GPL-2.0

//! fr1's copy ioctls (include/uapi/linux/fr1.h): FR1_READ_COPY reads a
//! range of one chosen leg, FR1_REPAIR_RANGE writes a range that is good on
//! one leg over the others. Both run in the caller's context (process
//! context, may sleep) and hold no lock of the control path (`config`): a
//! stop, a member change or the stall watch never waits for them beyond
//! the slot references of their I/O, which end with it.
//!
//! Protocol (what they race with):
//!
//! - A read copy races the array's writes as any read does: a block is
//!   read old or new. What it must not return is data older than a write
//!   the array already acknowledged: a write-mostly leg may still have that
//!   write in flight behind (`array/behind.rs`). So it first waits until no
//!   behind write on its leg overlaps the range (`wait_behind_bounded`: at
//!   most `md/fr1_stall_ms`, else EBUSY; a signal ends it with EINTR). The
//!   leg may fail or leave while it reads: it is looked at again after the
//!   read, and a leg that is no longer readable gives EINVAL, not data.
//! - A repair is a resync copy in all but its source. It holds each region
//!   of the range as the sync thread holds one (`Array::interlock_raise`:
//!   no array write of the region is in flight, none starts), waits for
//!   the behind writes over it on the source and the targets (bounded as
//!   above), reads the source, and writes every other writable leg; a leg
//!   that is behind (takes no writes) and a leg that failed or left get
//!   the piece in their bitmap instead, so a catch-up or re-add copies it.
//!   A target that fails the write fails, its piece recorded.
//! - A repair and the sync thread exclude each other through
//!   `Array::copy_mutex`: a resync copy reading a target the repair is
//!   rewriting could otherwise write the older data over a third leg after
//!   the repair wrote it. The sync thread holds the mutex for its whole
//!   run; a repair only tries it (EBUSY while a resync, recovery, check or
//!   repair runs). A sync thread started during a repair waits for it (at
//!   most one call's range, 1 MiB).
//! - Read-error repair (`Array::fix_read`) freezes writes, not regions: it
//!   may rewrite a leg a repair also writes; both write data read from an
//!   in-sync leg under the region's exclusion of user writes.

use core::sync::atomic::Ordering;
use kernel::{
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

use super::{to_error, Array, Phase};
use crate::logic::abi::{Fr1CopyIo, Fr1RepairRange, MAX_MIRRORS};
use crate::logic::copyio::{self, SectorRange};
use crate::logic::interlock::REGION_SECTORS;
use crate::sys::bio::PageBuf;

impl Array {
    /// FR1_READ_COPY: `io.length` bytes at `io.offset` of the leg in
    /// `io.slot`, copied to the user buffer `io.buf`.
    pub(super) fn read_copy(&self, io: &Fr1CopyIo) -> Result {
        let (range, raid_disks) = self.copy_range(io.offset, io.length, io.flags)?;
        copyio::check_source(self.state(), io.slot, raid_disks).map_err(to_error)?;
        let bytes = usize::try_from(io.length).map_err(|_| EINVAL)?;
        let buf = PageBuf::new(bytes)?;
        // Writes the array acknowledged land on the leg first.
        self.wait_behind_bounded(range.sector, range.sectors, 1 << io.slot)?;
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
        let (range, raid_disks) = self.copy_range(r.offset, r.length, r.flags)?;
        let st = self.state();
        copyio::check_source(st, r.from, raid_disks).map_err(to_error)?;
        copyio::repair_targets(st, r.from, raid_disks).map_err(to_error)?;
        let buf = PageBuf::new((range.sectors.min(REGION_SECTORS) * 512) as usize)?;
        let _copying = self.copy_mutex.try_lock().ok_or(EBUSY)?;
        let end = range.sector + range.sectors;
        let mut sector = range.sector;
        while sector < end {
            let piece = (end - sector).min(REGION_SECTORS - sector % REGION_SECTORS);
            let bucket = self.interlock_raise(sector);
            let done = self.repair_piece(r.from, sector, piece, &buf, raid_disks);
            self.interlock_lower(bucket);
            done?;
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

    /// One region's piece of a repair (its region held): EIO if the source
    /// fails the read or every target fails the write, EINVAL if the source
    /// or every target left.
    fn repair_piece(
        &self,
        from: u32,
        sector: u64,
        sectors: u64,
        buf: &PageBuf,
        raid_disks: u32,
    ) -> Result {
        let targets = copyio::repair_targets(self.state(), from, raid_disks).map_err(to_error)?;
        // No older behind write may land over the repaired data, nor be
        // missing from the source.
        self.wait_behind_bounded(sector, sectors, targets | 1 << from)?;
        let member = self.slot_get(from, false).ok_or(EINVAL)?;
        let ok = self.bioset.sync_io(&member, false, sector, sectors, buf);
        drop(member);
        copyio::check_source(self.state(), from, raid_disks).map_err(to_error)?;
        if !ok {
            return Err(EIO);
        }
        // Targets that got the piece, in their data or in their bitmap.
        let mut reached = 0u32;
        for slot in (0..MAX_MIRRORS).filter(|s| targets & (1 << s) != 0) {
            if self.takes_writes(slot) {
                let why = "write error during repair-range";
                if self.write_copy(slot, sector, sectors, buf, why, (sector, sectors)) {
                    reached |= 1 << slot;
                    continue;
                }
                if !self.state().present(slot) || self.takes_writes(slot) {
                    // Failed by the write (recorded there), or gone.
                    continue;
                }
            }
            // Behind, or failed meanwhile: its bitmap holds the piece.
            self.record_missed_write(1 << slot, sector, sectors);
            reached |= 1 << slot;
        }
        if reached == 0 {
            return Err(EIO);
        }
        Ok(())
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
