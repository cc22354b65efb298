// SPDX-License-Identifier: GPL-2.0

//! md's check and repair, and the initial resync of a not-clean build: every
//! region of the in-sync members compared (or copied) under the interlock.

use core::sync::atomic::Ordering;
use kernel::prelude::*;

use super::{Array, Mode};
use crate::logic::abi::MAX_MIRRORS;
use crate::logic::interlock::REGION_SECTORS;
use crate::sys::bio::PageBuf;
use crate::sys::kthread;

/// What [`Array::write_copy`] did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Copied {
    /// The member took the write.
    Written,
    /// The write failed: the member failed, its bitmap recording the
    /// range (unless it holds the last readable copy: it stays, md's rule).
    Failed,
    /// The slot took no writes any more: nothing was sent.
    Gone,
}

impl Array {
    /// Writes `buf` over `sectors` at `sector` of `slot`; a member that
    /// fails the write fails, with `missed` (start, length) recorded.
    pub(super) fn write_copy(
        &self,
        slot: u32,
        sector: u64,
        sectors: u64,
        buf: &PageBuf,
        why: &str,
        missed: (u64, u64),
    ) -> Copied {
        let Some(t) = self.slot_get(slot, true) else {
            return Copied::Gone;
        };
        let written = self.bioset.sync_io(&t, true, sector, sectors, buf);
        drop(t);
        if !written {
            self.fail_and_record(slot, why, missed.0, missed.1);
            return Copied::Failed;
        }
        Copied::Written
    }

    /// md's check/repair: compares every in-sync member with the first one,
    /// region by region under the interlock, counting mismatched sectors;
    /// repair rewrites the differing members.
    pub(super) fn check_all(&self, mode: Mode) {
        let repair = mode != Mode::Check;
        let name = self.name_str();
        let sectors = self.sectors.load(Ordering::Relaxed);
        let (Ok(a), Ok(b)) = (
            PageBuf::new(REGION_SECTORS as usize * 512),
            PageBuf::new(REGION_SECTORS as usize * 512),
        ) else {
            pr_err!("{}: check: out of memory for its buffers\n", name);
            return;
        };
        let what = match mode {
            Mode::Check => "check",
            Mode::Repair => "repair",
            _ => "resync",
        };
        self.sync.mismatches.store(0, Ordering::Relaxed);
        self.sync.count(sectors);
        pr_info!("{}: {} of RAID array {} started\n", name, what, name);
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS);
        let mut sector = 0;
        let mut interrupted = false;
        while sector < sectors {
            if kthread::should_stop() {
                interrupted = true;
                break;
            }
            let piece = (sectors - sector).min(REGION_SECTORS - sector % REGION_SECTORS);
            let bucket = self.interlock_raise(sector);
            // Every leg compared holds the region's latest data: behind
            // writes still landing there are waited for (none starts while
            // the region is held).
            self.wait_behind(sector, piece, u32::MAX);
            let st = self.state();
            let mut primary: Option<u32> = None;
            for slot in 0..raid_disks {
                if !st.readable(slot) {
                    continue;
                }
                let Some(m) = self.slot_get(slot, false) else {
                    continue;
                };
                if primary.is_some() && mode == Mode::Resync {
                    // Nothing to compare: write the primary's data. On a
                    // write error nothing from here on reached the member:
                    // a re-add must copy all of that.
                    drop(m);
                    let missed = (sector, sectors - sector);
                    let why = "write error during resync";
                    self.write_copy(slot, sector, piece, &a, why, missed);
                    continue;
                }
                let buf = if primary.is_none() { &a } else { &b };
                let ok = self.bioset.sync_io(&m, false, sector, piece, buf);
                drop(m);
                if !ok {
                    pr_warn!(
                        "{}: {}: read error on slot {} at sector {}\n",
                        name,
                        what,
                        slot,
                        sector
                    );
                    continue;
                }
                if primary.is_none() {
                    primary = Some(slot);
                    continue;
                }
                // The initial resync copies without comparing.
                if mode == Mode::Resync || !a.same_as(&b, (piece * 512) as usize) {
                    if mode != Mode::Resync {
                        self.sync.mismatches.fetch_add(piece, Ordering::Relaxed);
                    }
                    if repair {
                        let missed = (sector, piece);
                        self.write_copy(
                            slot,
                            sector,
                            piece,
                            &a,
                            "write error during repair",
                            missed,
                        );
                    }
                }
            }
            self.interlock_lower(bucket);
            self.sync.advance(piece, false);
            sector += piece;
            self.throttle();
        }
        if mode == Mode::Resync && !interrupted {
            // Every member holds the first one's data now.
            self.resync_pending.store(false, Ordering::SeqCst);
        }
        pr_info!(
            "{}: {} of RAID array {} {}: {} mismatched sectors\n",
            name,
            what,
            name,
            if interrupted { "interrupted" } else { "done" },
            self.sync.mismatches.load(Ordering::Relaxed)
        );
    }
}
