// SPDX-License-Identifier: GPL-2.0

//! Re-adding members and the resync thread: only the blocks a member missed
//! are copied to it, region by region, never racing a user write.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use kernel::{bindings, prelude::*, sync::Arc, time::delay::fsleep, time::Delta};

use super::{Array, Phase};
use crate::logic::abi::{DevNum, MAX_MIRRORS};
use crate::logic::balance;
use crate::logic::interlock::REGION_SECTORS;
use crate::logic::mdstat::{SyncAction, SyncProgress};
use crate::logic::resync::{self as plan, RangeLog};
use crate::logic::slots::FailError;
use crate::sys::bio::PageBuf;
use crate::sys::kthread::{self, KThread, ThreadBody};
use crate::sys::member::Member;

/// Blocks compared before a re-added device is trusted.
const SAMPLES: usize = 64;

/// What the sync thread does (md's `sync_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Mode {
    /// Copy the dirty blocks of recovering members.
    Recover = 1,
    /// Compare the in-sync members, count mismatches.
    Check = 2,
    /// Compare and overwrite mismatches with the first in-sync member.
    Repair = 3,
    /// The initial sync of a not-clean array: copy the first in-sync member
    /// over the others.
    Resync = 4,
}

/// Progress of the running resync, read by /proc/mdstat and sysfs.
#[derive(Default)]
pub(crate) struct Progress {
    active: AtomicBool,
    /// The running `Mode` (0: none).
    mode: AtomicU8,
    /// `sync_action` was set to "frozen": no sync starts until "idle".
    pub(crate) frozen: AtomicBool,
    /// Sectors found different by the last check/repair (md's mismatch_cnt).
    pub(crate) mismatches: AtomicU64,
    /// Sectors to copy (the dirty blocks when the resync started).
    total: AtomicU64,
    /// Sectors copied.
    done: AtomicU64,
    start_ns: AtomicU64,
    /// Bytes copied by every resync of this array (a test-visible counter).
    pub(crate) copied_bytes: AtomicU64,
}

fn now_ns() -> u64 {
    // SAFETY: `ktime_get` has no preconditions.
    unsafe { bindings::ktime_get() as u64 }
}

impl Progress {
    fn start(&self, mode: Mode, total: u64) {
        self.mode.store(mode as u8, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        self.start_ns.store(now_ns(), Ordering::Relaxed);
        self.active.store(true, Ordering::Release);
        crate::registry::new_event();
    }

    pub(crate) fn stop(&self) {
        if self.active.swap(false, Ordering::AcqRel) {
            crate::registry::new_event();
        }
        self.mode.store(0, Ordering::Relaxed);
    }

    /// The running mode, if any.
    pub(crate) fn mode(&self) -> Option<Mode> {
        match self.mode.load(Ordering::Relaxed) {
            1 => Some(Mode::Recover),
            2 => Some(Mode::Check),
            3 => Some(Mode::Repair),
            4 => Some(Mode::Resync),
            _ => None,
        }
    }

    /// `(done, total)` sectors of the running sync.
    pub(crate) fn position(&self) -> Option<(u64, u64)> {
        self.active.load(Ordering::Acquire).then(|| {
            (
                self.done.load(Ordering::Relaxed),
                self.total.load(Ordering::Relaxed),
            )
        })
    }

    /// KiB/s since the sync started.
    pub(crate) fn speed(&self) -> u64 {
        (self.done.load(Ordering::Relaxed) / 2)
            .checked_div(self.secs())
            .unwrap_or(0)
    }

    fn secs(&self) -> u64 {
        (now_ns().saturating_sub(self.start_ns.load(Ordering::Relaxed)) / 1_000_000_000).max(1)
    }

    /// The mdstat view, while a resync runs.
    pub(crate) fn snapshot(&self) -> Option<SyncProgress> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let done = self.done.load(Ordering::Relaxed);
        Some(SyncProgress {
            action: match self.mode() {
                Some(Mode::Check) => SyncAction::Check,
                Some(Mode::Repair) => SyncAction::Repair,
                Some(Mode::Resync) => SyncAction::Resync,
                _ => SyncAction::Recovery,
            },
            done,
            total: self.total.load(Ordering::Relaxed).max(done).max(1),
            window_secs: self.secs(),
            window_sectors: done,
        })
    }
}

/// Why a copy stopped.
enum CopyError {
    /// No in-sync member could read the range.
    Source,
    /// The target failed (it is marked faulty).
    Target,
}

impl Array {
    /// HOT_ADD_DISK, and ADD_NEW_DISK on a running array: (re)attaches `dev`
    /// as a recovering member and starts the resync. A device that left a
    /// slot is resynced incrementally from that slot's bitmap if a sample of
    /// its clean blocks matches an in-sync member; anything else is copied
    /// whole.
    pub(crate) fn hot_add(self: &Arc<Self>, dev: DevNum) -> Result {
        if self.config.lock().phase != Phase::Running {
            return Err(ENODEV);
        }
        // Open first: opening may probe block majors (see `add_new_disk`).
        let gendisk = self.gendisk.load(Ordering::Acquire);
        let holder = core::ptr::from_ref(&**self).cast_mut().cast();
        let member = Member::open(dev, holder, gendisk)?;
        if self.would_loop(member.bd_disk()) {
            return Err(EBUSY);
        }
        let mut cfg = self.config.lock();
        if cfg.phase != Phase::Running {
            return Err(ENODEV);
        }
        if member.sectors() < cfg.sectors {
            return Err(ENOSPC);
        }
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS);
        let st = self.state();
        // The device may still sit in its slot as a failed member (the fr1
        // README: set faulty, then hot-add): replace that member.
        let slot = match self.slot_of_dev(&cfg, dev) {
            Some(s) if st.faulty(s) => {
                drop(self.detach_slot(&mut cfg, s, true)?);
                s
            }
            Some(_) => return Err(EBUSY),
            None => {
                let kdev = dev.to_kdev();
                let free = |i: &u32| !st.present(*i);
                (0..raid_disks)
                    .filter(free)
                    .find(|&i| self.slot[i as usize].saved_dev.load(Ordering::SeqCst) == kdev)
                    .or_else(|| (0..raid_disks).find(free))
                    .ok_or(EBUSY)?
            }
        };
        let res = self.attach_recovering(&mut cfg, slot, member, dev);
        if res.is_err() && !self.state().present(slot) {
            // A failed member was taken out for this device, which did not
            // make it in: its directory goes too.
            cfg.member_dirs[slot as usize] = None;
        }
        res
    }

    /// The second half of [`Array::hot_add`]: `member` joins `slot` as a
    /// recovering member and the resync starts.
    fn attach_recovering(
        self: &Arc<Self>,
        cfg: &mut super::Config,
        slot: u32,
        mut member: Member,
        dev: DevNum,
    ) -> Result {
        let st = self.state();
        let maps = self.bitmaps.as_ref().ok_or(ENODEV)?;
        let bm = maps.get(slot as usize).ok_or(EINVAL)?;
        let s = &self.slot[slot as usize];
        let same = s.saved_dev.load(Ordering::SeqCst) == dev.to_kdev()
            && s.tracking.load(Ordering::SeqCst);
        let full_reason = if !same {
            Some("a new device for this slot")
        } else if bm.all_coarse() {
            Some("the bitmap holds no detail (coarse everywhere)")
        } else {
            match self.sample_matches(bm, &member) {
                Ok(true) => None,
                Ok(false) => {
                    Some("sampled clean blocks differ from the in-sync copy: not the same data")
                }
                Err(_) => Some("the sample could not be read"),
            }
        };
        member.link()?;
        // Limits first: once the member is published every bio must fit it.
        {
            let disk = cfg.disk.as_ref().ok_or(ENODEV)?;
            let others = (0..MAX_MIRRORS).filter(|&i| st.writable(i) && i != slot);
            let existing = others.filter_map(|i| self.member_locked(cfg, i));
            disk.stack_limits(Iterator::chain(existing, core::iter::once(&member)))?;
        }
        let member = KBox::new(member, GFP_KERNEL)?;
        // No write may be in flight while the slot changes: a write that
        // missed the slot must have recorded it before the member joins.
        self.freeze();
        if full_reason.is_some() {
            bm.set_all();
        }
        s.desc_nr.store(slot, Ordering::Relaxed);
        s.member.store(KBox::into_raw(member), Ordering::Release);
        let attached = self.update_state(|st| st.attach(slot, false, false));
        s.tracking.store(true, Ordering::SeqCst);
        s.saved_dev.store(dev.to_kdev(), Ordering::SeqCst);
        self.unfreeze();
        if let Err(e) = attached {
            let p = s.member.swap(core::ptr::null_mut(), Ordering::AcqRel);
            // SAFETY: Stored just above and never published.
            drop(unsafe { KBox::from_raw(p) });
            return Err(super::to_error(e));
        }
        crate::registry::new_event();
        self.add_member_dir(cfg, slot);
        pr_info!(
            "{}: hotadd component {}:{}[{}] to device {}\n",
            self.name_str(),
            dev.major,
            dev.minor,
            slot,
            self.minor
        );
        match full_reason {
            Some(why) => pr_info!(
                "{}: full resync of slot {}: {}\n",
                self.name_str(),
                slot,
                why
            ),
            None => pr_info!(
                "{}: slot {} is the same device: incremental resync of {} dirty blocks\n",
                self.name_str(),
                slot,
                bm.stats().bits
            ),
        }
        self.restart_resync(cfg)
    }

    /// Compares up to 64 clean blocks of `candidate` with an in-sync member.
    fn sample_matches(&self, bm: &crate::sys::nodes::Bitmap, candidate: &Member) -> Result<bool> {
        let shift = self.block_shift.load(Ordering::Relaxed);
        let (blocks, n) = plan::sample_blocks::<SAMPLES>(bm.blocks(), |b| !bm.is_dirty(b));
        let bytes = 4096usize.min(512 << shift);
        let (a, b) = (PageBuf::new(bytes)?, PageBuf::new(bytes)?);
        let sectors = (bytes / 512) as u64;
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS) as usize;
        for &blk in blocks.iter().take(n) {
            let sector = blk << shift;
            let Some(src) = balance::choose(&self.mirrors()[..raid_disks], sector, 0, false) else {
                return Err(EIO);
            };
            let src = src as u32;
            let Some(m) = self.slot_get(src, false) else {
                return Err(EIO);
            };
            let ok = self.bioset.sync_io(m, false, sector, sectors, &a);
            self.slot_put(src);
            if !ok || !self.bioset.sync_io(candidate, false, sector, sectors, &b) {
                return Err(EIO);
            }
            // A write during the sample may have changed the block on the
            // in-sync member; it then also marked the block dirty (before
            // its data reached any member), which explains the difference.
            if !a.same_as(&b, bytes) && !bm.is_dirty(blk) {
                pr_info!(
                    "{}: identity check: block {} differs on {}\n",
                    self.name_str(),
                    blk,
                    candidate.name()
                );
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// (Re)starts the resync thread so it sees every recovering member
    /// (not while `sync_action` is frozen).
    fn restart_resync(self: &Arc<Self>, cfg: &mut super::Config) -> Result {
        self.start_sync(cfg, Mode::Recover)
    }

    /// Stops the sync thread, if any (what it did not copy stays dirty).
    pub(super) fn stop_sync(&self, cfg: &mut super::Config) {
        if let Some(t) = cfg.resync.take() {
            t.stop();
        }
        self.sync.stop();
    }

    /// Starts the sync thread in `mode`, replacing a running one.
    pub(super) fn start_sync(self: &Arc<Self>, cfg: &mut super::Config, mode: Mode) -> Result {
        self.stop_sync(cfg);
        if self.sync.frozen.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.requested.store(mode as u8, Ordering::SeqCst);
        let mut name = [0u8; 16];
        let mut w = crate::logic::fmtbuf::FmtBuf::new(&mut name[..15]);
        write!(w, "{}", self.name_str()).map_err(|_| EINVAL)?;
        let len = self.name_str().len();
        let cname = CStr::from_bytes_with_nul(&name[..=len]).map_err(|_| EINVAL)?;
        cfg.resync = Some(KThread::spawn(cname, c"_resync", self.clone())?);
        Ok(())
    }

    /// The thread body: resync every recovering member, one after another.
    fn resync_all(&self) {
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS);
        for slot in 0..raid_disks {
            let st = self.state();
            if st.writable(slot) && !st.in_sync(slot) && !kthread::should_stop() {
                self.resync_slot(slot);
            }
        }
    }

    fn resync_slot(&self, slot: u32) {
        let Some(bm) = self.bitmaps.as_ref().and_then(|m| m.get(slot as usize)) else {
            return;
        };
        let name = self.name_str();
        let shift = self.block_shift.load(Ordering::Relaxed);
        let array_sectors = bm.blocks() << shift;
        let region_blocks = (REGION_SECTORS >> shift).max(1);
        let buf = match PageBuf::new((REGION_SECTORS as usize) * 512) {
            Ok(b) => b,
            Err(_) => {
                pr_err!(
                    "{}: resync of slot {}: out of memory for its buffer\n",
                    name,
                    slot
                );
                return;
            }
        };
        // What there is to copy, for the progress bar.
        let mut total = 0u64;
        let mut b = 0;
        while let Some((s, n)) = bm.next_run(b, u64::MAX, u64::MAX) {
            total += n;
            b = s + n;
        }
        self.sync
            .start(Mode::Recover, (total << shift).min(array_sectors));
        pr_info!(
            "{}: resync starts on device {} component {} for {} blocks\n",
            name,
            self.minor,
            slot,
            bm.blocks()
        );
        let mut out = |a: core::fmt::Arguments<'_>| pr_info!("{}: {}\n", name, a);
        let mut log = RangeLog::default();
        let (mut errs, mut b, mut finished) = (0u64, 0u64, false);
        loop {
            if kthread::should_stop() || !self.state().writable(slot) {
                break;
            }
            let Some((start, len)) = bm.next_run(b, region_blocks, region_blocks) else {
                finished = true;
                break;
            };
            log.clean(b, start - b, &mut out);
            let (first, end) = (start << shift, ((start + len) << shift).min(array_sectors));
            let mut sector = first;
            let mut ok = true;
            while sector < end {
                let region_end = (sector / REGION_SECTORS + 1) * REGION_SECTORS;
                let piece = (end - sector).min(buf.sectors()).min(region_end - sector);
                match self.copy_piece(slot, sector, piece, &buf) {
                    Ok(()) => {
                        self.sync.done.fetch_add(piece, Ordering::Relaxed);
                        self.sync
                            .copied_bytes
                            .fetch_add(piece * 512, Ordering::Relaxed);
                    }
                    Err(CopyError::Source) => {
                        errs += 1;
                        ok = false;
                        break;
                    }
                    Err(CopyError::Target) => {
                        errs += 1;
                        ok = false;
                        break;
                    }
                }
                sector += piece;
            }
            if ok {
                bm.clear(start, len);
                log.dirty(start, len, &mut out);
            }
            if !self.state().writable(slot) {
                break;
            }
            self.throttle();
            b = start + len;
        }
        if finished {
            log.clean(b, bm.blocks() - b, &mut out);
        }
        log.finish(&mut out);
        self.sync.stop();
        pr_info!(
            "{}: resync terminates with {} errs on device {} component {} ({} blocks, {} bytes copied)\n",
            name,
            errs,
            self.minor,
            slot,
            log.dirty_blocks,
            log.dirty_blocks << shift << 9
        );
        if finished
            && errs == 0
            && bm.is_clean()
            && self.update_state(|st| st.set_in_sync(slot)).is_ok()
        {
            // A clean bitmap holds no memory. Freeing needs the bitmap to
            // itself: writes are drained (the freeze) and no other freezer
            // (read repair) could record into it meanwhile.
            self.freeze();
            if self.frozen.load(Ordering::SeqCst) == 1 && bm.is_clean() {
                bm.reset();
            }
            self.unfreeze();
            let st = self.state();
            pr_info!(
                "{}: slot {} in sync, {} of {} mirrors active\n",
                name,
                slot,
                st.active(),
                self.raid_disks.load(Ordering::Relaxed)
            );
        } else if !finished {
            pr_info!(
                "{}: resync of slot {} interrupted; what is left stays dirty\n",
                name,
                slot
            );
        }
    }

    /// Copies `sectors` at `sector` (within one region) from an in-sync
    /// member to `target`, holding the region against user writes.
    fn copy_piece(
        &self,
        target: u32,
        sector: u64,
        sectors: u64,
        buf: &PageBuf,
    ) -> core::result::Result<(), CopyError> {
        let bucket = self.interlock_raise(sector);
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS) as usize;
        let mut tried = 1u32 << target;
        let res = loop {
            let Some(src) = balance::choose(&self.mirrors()[..raid_disks], sector, tried, false)
            else {
                pr_err!(
                    "{}: resync: no in-sync member could read sector {} ({} sectors)\n",
                    self.name_str(),
                    sector,
                    sectors
                );
                break Err(CopyError::Source);
            };
            let src = src as u32;
            tried |= 1 << src;
            let Some(m) = self.slot_get(src, false) else {
                continue;
            };
            let read = self.bioset.sync_io(m, false, sector, sectors, buf);
            self.slot_put(src);
            if !read {
                pr_warn!(
                    "{}: resync: read error on slot {} at sector {}, trying another mirror\n",
                    self.name_str(),
                    src,
                    sector
                );
                continue;
            }
            let Some(t) = self.slot_get(target, true) else {
                break Err(CopyError::Target);
            };
            let written = self.bioset.sync_io(t, true, sector, sectors, buf);
            self.slot_put(target);
            if written {
                break Ok(());
            }
            match self.fail_slot(target, "write error during resync") {
                Ok(()) | Err(FailError::AlreadyFaulty) => {}
                Err(_) => {}
            }
            break Err(CopyError::Target);
        };
        self.interlock_lower(bucket);
        res
    }

    /// md's throttle between `speed_limit_min` and `speed_limit_max`.
    fn throttle(&self) {
        let kib = (self.sync.done.load(Ordering::Relaxed) / 2)
            .checked_div(self.sync.secs())
            .unwrap_or(0);
        let busy = self.writes_inflight.load(Ordering::Relaxed) > 0
            || self.inflight.load(Ordering::Relaxed) > 1;
        let ms = plan::throttle_ms(
            kib,
            u64::from(crate::SPEED_LIMIT_MIN.get()),
            u64::from(crate::SPEED_LIMIT_MAX.get()),
            busy,
        );
        if ms > 0 {
            fsleep(Delta::from_millis(ms as i64));
        }
    }
}

impl ThreadBody for Array {
    fn run(self: Arc<Self>) {
        match self.requested.load(Ordering::SeqCst) {
            2 => self.check_all(Mode::Check),
            3 => self.check_all(Mode::Repair),
            4 => self.check_all(Mode::Resync),
            _ => self.resync_all(),
        }
    }
}

impl Array {
    /// Whether any working member is not in sync (a recovery is needed).
    pub(crate) fn needs_recovery(&self) -> bool {
        let st = self.state();
        (0..self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS))
            .any(|i| st.writable(i) && !st.in_sync(i))
    }

    /// md's check/repair: compares every in-sync member with the first one,
    /// region by region under the interlock, counting mismatched sectors;
    /// repair rewrites the differing members.
    fn check_all(&self, mode: Mode) {
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
        self.sync.start(mode, sectors);
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
                    // Nothing to compare: write the primary's data.
                    self.slot_put(slot);
                    if let Some(t) = self.slot_get(slot, true) {
                        let written = self.bioset.sync_io(t, true, sector, piece, &a);
                        self.slot_put(slot);
                        if !written {
                            let _ = self.fail_slot(slot, "write error during resync");
                        }
                    }
                    continue;
                }
                let buf = if primary.is_none() { &a } else { &b };
                let ok = self.bioset.sync_io(m, false, sector, piece, buf);
                self.slot_put(slot);
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
                        if let Some(t) = self.slot_get(slot, true) {
                            let written = self.bioset.sync_io(t, true, sector, piece, &a);
                            self.slot_put(slot);
                            if !written {
                                let _ = self.fail_slot(slot, "write error during repair");
                            }
                        }
                    }
                }
            }
            self.interlock_lower(bucket);
            self.sync.done.fetch_add(piece, Ordering::Relaxed);
            sector += piece;
            self.throttle();
        }
        self.sync.stop();
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
