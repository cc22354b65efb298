// SPDX-License-Identifier: GPL-2.0

//! Re-adding members and the resync thread: only the blocks a member missed
//! are copied to it, region by region, never racing a user write.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::{prelude::*, sync::Arc, time::delay::fsleep, time::Delta};

use super::{Array, Phase, SlotRef};
use crate::logic::abi::{DevNum, MAX_MIRRORS};
use crate::logic::balance;
use crate::logic::interlock::REGION_SECTORS;
use crate::logic::mdstat::{SyncAction, SyncProgress, SyncStatus};
use crate::logic::resync::{self as plan, Pace, RangeLog};
pub(crate) use crate::logic::syncstate::Mode;
use crate::logic::syncstate::{SyncState, Ticket};
use crate::sys::bio::PageBuf;
use crate::sys::ioring::IoRing;
use crate::sys::kthread::{self, KThread, ThreadBody};
use crate::sys::member::Member;

/// Blocks compared before a re-added device is trusted.
const SAMPLES: usize = 64;

/// Progress of the announced sync, read by /proc/mdstat and sysfs.
///
/// Which sync runs is `state` (see `logic::syncstate` for its protocol:
/// announced under `config` before the thread starts, ended by the thread
/// after it published its result). The counters below are written by the
/// sync thread only and read without locks; they describe the sync only
/// while `state` announces one.
#[derive(Default)]
pub(crate) struct Progress {
    state: SyncState,
    /// `sync_action` was set to "frozen": no sync starts until "idle".
    pub(crate) frozen: AtomicBool,
    /// Sectors found different by the last check/repair (md's mismatch_cnt).
    pub(crate) mismatches: AtomicU64,
    /// Sectors to copy (the dirty blocks when the copy started); 0 while
    /// the thread has not counted them yet (md's "delayed").
    total: AtomicU64,
    /// Sectors copied.
    done: AtomicU64,
    /// The speed window (md's resync marks): it starts at the older of two
    /// marks taken every [`MARK_STEP_NS`], so it spans 3 to 6 seconds.
    mark_ns: AtomicU64,
    mark_done: AtomicU64,
    next_mark_ns: AtomicU64,
    next_mark_done: AtomicU64,
    /// Bytes copied by every resync of this array (a test-visible counter).
    pub(crate) copied_bytes: AtomicU64,
    /// md's per-array `sync_speed_min`/`sync_speed_max` in KiB/s
    /// (0: the module's `speed_limit_min`/`speed_limit_max`).
    pub(crate) speed_min_local: AtomicU32,
    pub(crate) speed_max_local: AtomicU32,
}

/// How often the speed window moves on.
const MARK_STEP_NS: u64 = 3_000_000_000;

fn now_ns() -> u64 {
    crate::sys::time::monotonic_ns()
}

impl Progress {
    /// Announces a sync in `mode` (control path, under `config`, before the
    /// thread starts): not counted yet.
    pub(crate) fn begin(&self, mode: Mode) -> Ticket {
        self.total.store(0, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        let ticket = self.state.begin(mode);
        crate::registry::new_event();
        ticket
    }

    /// The sync thread counted `total` sectors to go through (per member
    /// for a recovery): the progress bar starts over.
    fn count(&self, total: u64) {
        let now = now_ns();
        self.total.store(total.max(1), Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        for (ns, done) in [
            (&self.mark_ns, &self.mark_done),
            (&self.next_mark_ns, &self.next_mark_done),
        ] {
            ns.store(now, Ordering::Relaxed);
            done.store(0, Ordering::Relaxed);
        }
        crate::registry::new_event();
    }

    /// The sync thread of `ticket` finished by itself and published its
    /// result: idle (unless a newer sync was announced).
    fn end(&self, ticket: Ticket) {
        if self.state.end(ticket) {
            crate::registry::new_event();
        }
    }

    /// No sync any more (control path, under `config`, thread stopped).
    pub(crate) fn clear(&self) {
        if self.state.clear() {
            crate::registry::new_event();
        }
    }

    /// Counts `sectors` more as synced.
    fn advance(&self, sectors: u64, copied: bool) {
        self.done.fetch_add(sectors, Ordering::Relaxed);
        if copied {
            self.copied_bytes
                .fetch_add(sectors * 512, Ordering::Relaxed);
        }
    }

    /// Moves the speed window on (the sync thread only).
    fn tick(&self) {
        let now = now_ns();
        let next = self.next_mark_ns.load(Ordering::Relaxed);
        if now.saturating_sub(next) >= MARK_STEP_NS {
            self.mark_ns.store(next, Ordering::Relaxed);
            self.mark_done.store(
                self.next_mark_done.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            self.next_mark_ns.store(now, Ordering::Relaxed);
            self.next_mark_done
                .store(self.done.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Sectors synced within the speed window, and its length.
    fn window(&self) -> (u64, u64) {
        let done = self.done.load(Ordering::Relaxed);
        (
            done.saturating_sub(self.mark_done.load(Ordering::Relaxed)),
            now_ns().saturating_sub(self.mark_ns.load(Ordering::Relaxed)),
        )
    }

    /// The limits in force, KiB/s: md's `speed_min()`/`speed_max()`.
    pub(crate) fn limits(&self) -> (u32, u32) {
        let local = |v: &AtomicU32, system: u32| match v.load(Ordering::Relaxed) {
            0 => system,
            n => n,
        };
        (
            local(&self.speed_min_local, crate::SPEED_LIMIT_MIN.get()),
            local(&self.speed_max_local, crate::SPEED_LIMIT_MAX.get()),
        )
    }

    /// The announced sync, if any.
    pub(crate) fn mode(&self) -> Option<Mode> {
        self.state.mode()
    }

    /// `(done, total)` sectors of the announced sync; total 0: not counted
    /// yet (md's "delayed").
    pub(crate) fn position(&self) -> Option<(u64, u64)> {
        self.mode().map(|_| {
            let total = self.total.load(Ordering::Relaxed);
            (self.done.load(Ordering::Relaxed).min(total), total)
        })
    }

    /// KiB/s over the speed window.
    pub(crate) fn speed(&self) -> u64 {
        let (sectors, ns) = self.window();
        plan::kib_per_s(sectors, (ns / 1000).max(1000))
    }

    /// The mdstat view of the announced sync (`None`: idle): md's
    /// `resync=DELAYED` until the thread counted its work, then the bar.
    pub(crate) fn status(&self) -> Option<SyncStatus> {
        let mode = self.mode()?;
        let (done, total) = self.position()?;
        if total == 0 {
            return Some(SyncStatus::Delayed);
        }
        let (window_sectors, ns) = self.window();
        Some(SyncStatus::Running(SyncProgress {
            action: match mode {
                Mode::Check => SyncAction::Check,
                Mode::Repair => SyncAction::Repair,
                Mode::Resync => SyncAction::Resync,
                Mode::Recover => SyncAction::Recovery,
            },
            done,
            total,
            window_ms: ns / 1_000_000,
            window_sectors,
        }))
    }
}

/// The sync thread: one announced sync (its `ticket`) of one array.
pub(crate) struct SyncJob {
    array: Arc<Array>,
    mode: Mode,
    ticket: Ticket,
}

impl ThreadBody for SyncJob {
    fn run(self: Arc<Self>) {
        let a = &*self.array;
        match self.mode {
            Mode::Recover => a.resync_all(),
            mode => a.check_all(mode),
        }
        // A recovery may have replaced the initial resync of a not-clean
        // array (a member added meanwhile): it is still owed, run it now.
        if self.mode == Mode::Recover
            && a.resync_pending.load(Ordering::SeqCst)
            && !kthread::should_stop()
            && !a.needs_recovery()
        {
            a.check_all(Mode::Resync);
        }
        // Finished by itself, its result published (members in sync,
        // `resync_pending` cleared): only now may the state say idle. A
        // thread being stopped leaves the state to whoever stops it.
        if !kthread::should_stop() {
            a.sync.end(self.ticket);
        }
    }
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
        let member = Member::open(dev, &**self)?;
        if self.would_loop(&member) {
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
        member: Member,
        dev: DevNum,
    ) -> Result {
        // The recovery is announced before the member joins: from the moment
        // it is visible as recovering, nothing reports the array idle (see
        // `logic::syncstate`). This voids a running sync's ticket, so every
        // path from here restarts or stops the sync thread.
        self.sync.begin(Mode::Recover);
        // The old sync thread goes before the slot's bitmap is sampled or
        // reset: it may be walking or freeing this very bitmap (a copy to
        // this slot cut short by the member's failure, or its end-of-resync
        // reset). `restart_resync` starts a new one.
        if let Some(t) = cfg.resync.take() {
            t.stop();
        }
        match self.attach_stopped(cfg, slot, member, dev) {
            Ok(()) => self.restart_resync(cfg),
            Err(e) => {
                self.settle_sync(cfg);
                Err(e)
            }
        }
    }

    /// [`Array::attach_recovering`] with the sync thread stopped.
    fn attach_stopped(
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
        member.link(cfg.disk.as_ref().ok_or(ENODEV)?)?;
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
        let frozen = self.freeze();
        if full_reason.is_some() {
            // SAFETY: Nothing else uses the bitmap now: the data path is
            // frozen (no write records into it), freezers exclude each other
            // (no read repair records into it), the sync thread was stopped
            // by `attach_recovering` (no walk, clear or reset), and the
            // slot's other user (`sample_matches`) ran earlier in this
            // thread.
            unsafe { bm.set_all() };
        }
        s.desc_nr.store(slot, Ordering::Relaxed);
        s.member.store(KBox::into_raw(member), Ordering::Release);
        let attached = self.update_state(|st| st.attach(slot, false, false));
        s.tracking.store(true, Ordering::SeqCst);
        s.saved_dev.store(dev.to_kdev(), Ordering::SeqCst);
        drop(frozen);
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
        Ok(())
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

    /// After a failed member change: a recovery if one is owed, else none.
    fn settle_sync(self: &Arc<Self>, cfg: &mut super::Config) {
        if self.needs_recovery() {
            let _ = self.start_sync(cfg, Mode::Recover);
        } else {
            self.stop_sync(cfg);
        }
    }

    /// Stops the sync thread, if any (what it did not copy stays dirty),
    /// and announces none.
    pub(super) fn stop_sync(&self, cfg: &mut super::Config) {
        if let Some(t) = cfg.resync.take() {
            t.stop();
        }
        self.sync.clear();
    }

    /// Starts the sync thread in `mode`, replacing a running one. The new
    /// sync is announced before the old thread is stopped, so the state
    /// never passes through idle in between (`logic::syncstate`).
    pub(super) fn start_sync(self: &Arc<Self>, cfg: &mut super::Config, mode: Mode) -> Result {
        if self.sync.frozen.load(Ordering::SeqCst) {
            self.stop_sync(cfg);
            return Ok(());
        }
        let ticket = self.sync.begin(mode);
        if let Some(t) = cfg.resync.take() {
            t.stop();
        }
        let mut name = [0u8; 16];
        let mut w = crate::logic::fmtbuf::FmtBuf::new(&mut name[..15]);
        let spawned = write!(w, "{}", self.name_str())
            .map_err(|_| EINVAL)
            .and_then(|()| {
                let len = self.name_str().len();
                CStr::from_bytes_with_nul(&name[..=len]).map_err(|_| EINVAL)
            })
            .and_then(|cname| {
                let job = Arc::new(
                    SyncJob {
                        array: self.clone(),
                        mode,
                        ticket,
                    },
                    GFP_KERNEL,
                )?;
                KThread::spawn(cname, c"_resync", job)
            });
        match spawned {
            Ok(t) => {
                cfg.resync = Some(t);
                Ok(())
            }
            Err(e) => {
                pr_err!(
                    "{}: cannot start the {} thread: {:?}\n",
                    self.name_str(),
                    mode.word(),
                    e
                );
                self.sync.clear();
                Err(e)
            }
        }
    }

    /// The thread body: resync every recovering member, one after another.
    /// A pass that finished but left the bitmap dirty (a write missed the
    /// member meanwhile) is repeated, a bounded number of times.
    fn resync_all(&self) {
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS);
        for slot in 0..raid_disks {
            for _pass in 0..4 {
                let st = self.state();
                if !st.writable(slot) || st.in_sync(slot) || kthread::should_stop() {
                    break;
                }
                if !self.resync_slot(slot) {
                    break;
                }
            }
        }
    }

    /// One pass over `slot`'s dirty blocks. False when the pass did not
    /// finish (stop, failure, member gone): another pass would not help.
    fn resync_slot(&self, slot: u32) -> bool {
        let Some(bm) = self.bitmaps.as_ref().and_then(|m| m.get(slot as usize)) else {
            return false;
        };
        let name = self.name_str();
        let shift = self.block_shift.load(Ordering::Relaxed);
        let array_sectors = (bm.blocks() << shift).min(self.sectors.load(Ordering::Relaxed));
        let mut ring = match IoRing::<SlotRef<'_>>::new(COPY_LANES, REGION_SECTORS as usize * 512) {
            Ok(r) => r,
            Err(_) => {
                pr_err!(
                    "{}: resync of slot {}: out of memory for its buffers\n",
                    name,
                    slot
                );
                return false;
            }
        };
        // What there is to copy, for the progress bar.
        let mut total = 0u64;
        let mut b = 0;
        while let Some((s, n)) = bm.next_run(b, u64::MAX, u64::MAX) {
            total += n;
            b = s + n;
        }
        self.sync.count((total << shift).min(array_sectors));
        pr_info!(
            "{}: resync starts on device {} component {} for {} blocks\n",
            name,
            self.minor,
            slot,
            bm.blocks()
        );
        let mut out = |a: core::fmt::Arguments<'_>| pr_info!("{}: {}\n", name, a);
        let mut log = RangeLog::default();
        let mut walk = Walk {
            bm,
            shift,
            region_blocks: (REGION_SECTORS >> shift).max(1),
            array_sectors,
            piece_sectors: ring.lane_sectors(),
            next_block: 0,
            run: None,
        };
        let mut jobs: [Option<Job>; COPY_LANES] = [const { None }; COPY_LANES];
        // Buckets of the finished pieces of a run longer than a region: held
        // until the whole run is cleared in the bitmap.
        let mut held = Held::default();
        let (mut seq, mut retire_seq, mut errs) = (0u64, 0u64, 0u64);
        // `halted`: no new copies (stop, member gone, or a failure);
        // `failed`: a copy failed, nothing walked after it is cleared.
        let (mut halted, mut failed, mut exhausted) = (false, false, false);
        loop {
            // Retire finished copies in walk order: a coarse bitmap entry is
            // cleared by the copy that completes it, which must come last.
            while let Some(lane) = jobs.iter().position(|j| {
                j.as_ref()
                    .is_some_and(|j| j.seq == retire_seq && j.stage.finished())
            }) {
                let Some(job) = jobs[lane].take() else {
                    break;
                };
                retire_seq += 1;
                let p = job.piece;
                if job.stage == Stage::Failed {
                    failed = true;
                    errs += 1;
                } else if !failed {
                    log.clean(p.skipped.0, p.skipped.1, &mut out);
                    self.sync.advance(p.sectors, true);
                    if let Some((start, len)) = p.run_end {
                        // Cleared before the region is released: a write
                        // that then misses the member sets its bits again.
                        bm.clear(start, len);
                        log.dirty(start, len, &mut out);
                    }
                }
                if p.run_end.is_none() && !failed && held.push(job.bucket) {
                    continue;
                }
                self.interlock_lower(job.bucket);
                for bucket in held.drain() {
                    self.interlock_lower(bucket);
                }
            }
            halted |= failed || kthread::should_stop() || !self.state().writable(slot);
            // Start copies while lanes are free.
            while !halted && !exhausted {
                let Some(lane) = jobs.iter().position(Option::is_none) else {
                    break;
                };
                let idle = jobs.iter().all(Option::is_none);
                match self.pace() {
                    Pace::Go => {}
                    Pace::Drain if idle => {}
                    Pace::Drain => break,
                    Pace::Sleep(ms) if idle => {
                        fsleep(Delta::from_millis(ms as i64));
                        halted |= kthread::should_stop() || !self.state().writable(slot);
                        continue;
                    }
                    Pace::Sleep(_) => break,
                }
                let Some(piece) = walk.next() else {
                    exhausted = true;
                    break;
                };
                let mut job = Job {
                    piece,
                    seq,
                    bucket: self.interlock_raise(piece.sector),
                    tried: 1 << slot,
                    stage: Stage::Copied,
                };
                seq += 1;
                if piece.sectors > 0 {
                    self.start_read(&mut ring, lane, &mut job);
                }
                jobs[lane] = Some(job);
            }
            let Some((lane, ok, hold)) = ring.wait_any() else {
                // Nothing in flight: what is left is retired above, unless
                // the walk is over.
                if jobs.iter().all(Option::is_none) && (halted || exhausted) {
                    break;
                }
                continue;
            };
            let Some(job) = jobs[lane].as_mut() else {
                continue;
            };
            let from = hold.slot();
            drop(hold);
            match (job.stage, ok) {
                (Stage::Reading, true) => {
                    job.stage = Stage::Failed;
                    if let Some(t) = self.slot_ref(slot, true) {
                        let p = job.piece;
                        if ring
                            .submit(lane, t, &self.bioset, true, p.sector, p.sectors)
                            .is_ok()
                        {
                            job.stage = Stage::Writing;
                        }
                    }
                }
                (Stage::Reading, false) => {
                    pr_warn!(
                        "{}: resync: read error on slot {} at sector {}, trying another mirror\n",
                        name,
                        from,
                        job.piece.sector
                    );
                    self.start_read(&mut ring, lane, job);
                }
                (Stage::Writing, true) => job.stage = Stage::Copied,
                (Stage::Writing, false) => {
                    // The target keeps what is still dirty in its bitmap.
                    let _ = self.fail_slot(slot, "write error during resync");
                    job.stage = Stage::Failed;
                }
                _ => {}
            }
        }
        drop(ring);
        // A run cut short by a stop still holds its first regions.
        for bucket in held.drain() {
            self.interlock_lower(bucket);
        }
        let finished = exhausted && !failed;
        if finished {
            log.clean(walk.next_block, bm.blocks() - walk.next_block, &mut out);
        }
        log.finish(&mut out);
        pr_info!(
            "{}: resync terminates with {} errs on device {} component {} ({} blocks, {} bytes copied)\n",
            name,
            errs,
            self.minor,
            slot,
            log.dirty_blocks,
            log.dirty_blocks << shift << 9
        );
        if finished && bm.is_clean() && self.update_state(|st| st.set_in_sync(slot)).is_ok() {
            // A clean bitmap holds no memory. Freeing needs the bitmap to
            // itself: writes are drained (the freeze) and no other freezer
            // (read repair) could record into it meanwhile.
            let frozen = self.freeze();
            if bm.is_clean() {
                // SAFETY: Nothing else uses the bitmap: writes are frozen and
                // freezers exclude each other (nothing records into it), and
                // this thread is the only one that walks or clears it (a
                // re-add stops this thread before it touches the bitmap).
                unsafe { bm.reset() };
            }
            drop(frozen);
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
        finished
    }

    /// Reads `job`'s piece into `lane` from an in-sync member it has not
    /// tried yet; marks the job failed when none is left.
    fn start_read<'a>(&'a self, ring: &mut IoRing<SlotRef<'a>>, lane: usize, job: &mut Job) {
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS) as usize;
        let p = job.piece;
        job.stage = Stage::Failed;
        while let Some(src) =
            balance::choose(&self.mirrors()[..raid_disks], p.sector, job.tried, false)
        {
            job.tried |= 1 << src;
            let Some(r) = self.slot_ref(src as u32, false) else {
                continue;
            };
            if ring
                .submit(lane, r, &self.bioset, false, p.sector, p.sectors)
                .is_ok()
            {
                job.stage = Stage::Reading;
                return;
            }
        }
        pr_err!(
            "{}: resync: no in-sync member could read sector {} ({} sectors)\n",
            self.name_str(),
            p.sector,
            p.sectors
        );
    }

    /// Fails `slot` after a sync write to it failed; its bitmap records
    /// `sectors` from `sector` as missed, for a later re-add.
    pub(super) fn fail_and_record(&self, slot: u32, why: &str, sector: u64, sectors: u64) {
        use crate::logic::slots::FailError;
        if let Ok(()) | Err(FailError::AlreadyFaulty) = self.fail_slot(slot, why) {
            self.record_missed_write(1 << slot, sector, sectors);
        }
    }

    /// md's throttle between the `sync_speed_min` and `sync_speed_max` in
    /// force, over the recent speed window.
    fn pace(&self) -> Pace {
        self.sync.tick();
        let (sectors, ns) = self.sync.window();
        let (min, max) = self.sync.limits();
        let busy = self.writes_inflight.load(Ordering::Relaxed) > 0
            || self.inflight.load(Ordering::Relaxed) > 1;
        plan::pace(sectors, ns, u64::from(min), u64::from(max), busy)
    }

    /// [`Array::pace`] for the synchronous check loop.
    fn throttle(&self) {
        if let Pace::Sleep(ms) = self.pace() {
            fsleep(Delta::from_millis(ms as i64));
        }
    }
}

/// Region copies in flight per resync (each up to one 1 MiB region).
const COPY_LANES: usize = 4;

/// A piece of the resync walk: sectors within one region, and what to
/// record when its copy is retired.
#[derive(Clone, Copy)]
struct Piece {
    sector: u64,
    sectors: u64,
    /// Clean blocks skipped right before this piece (for the range log).
    skipped: (u64, u64),
    /// The dirty run `(start, len)` in blocks this piece completes.
    run_end: Option<(u64, u64)>,
}

/// Walks a bitmap's dirty runs as region-sized pieces, in order.
struct Walk<'a> {
    bm: &'a crate::sys::nodes::Bitmap,
    shift: u32,
    region_blocks: u64,
    array_sectors: u64,
    piece_sectors: u64,
    /// The first block not yet handed out.
    next_block: u64,
    /// The run being cut: `(start, len)` blocks and its next and end sector.
    run: Option<(u64, u64, u64, u64)>,
}

impl Walk<'_> {
    fn next(&mut self) -> Option<Piece> {
        let mut skipped = (self.next_block, 0);
        let (start, len, sector, end) = match self.run {
            Some(r) => r,
            None => {
                let (start, len) =
                    self.bm
                        .next_run(self.next_block, self.region_blocks, self.region_blocks)?;
                skipped.1 = start - self.next_block;
                self.next_block = start + len;
                let first = (start << self.shift).min(self.array_sectors);
                let end = ((start + len) << self.shift).min(self.array_sectors);
                (start, len, first, end)
            }
        };
        let region_end = (sector / REGION_SECTORS + 1) * REGION_SECTORS;
        let n = (end - sector)
            .min(region_end - sector)
            .min(self.piece_sectors);
        let last = sector + n >= end;
        self.run = (!last).then_some((start, len, sector + n, end));
        Some(Piece {
            sector,
            sectors: n,
            skipped,
            run_end: last.then_some((start, len)),
        })
    }
}

/// Where a region copy stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Reading,
    Writing,
    Copied,
    Failed,
}

impl Stage {
    fn finished(self) -> bool {
        matches!(self, Stage::Copied | Stage::Failed)
    }
}

/// One region copy of the resync pipeline.
struct Job {
    piece: Piece,
    /// Its place in the walk (copies are retired in this order).
    seq: u64,
    /// The interlock bucket it holds.
    bucket: usize,
    /// Slots already tried as the source (and the target).
    tried: u32,
    stage: Stage,
}

/// Interlock buckets held for the unfinished run (blocks up to 64 MiB span
/// up to 64 regions).
struct Held {
    buckets: [usize; 64],
    n: usize,
}

impl Default for Held {
    fn default() -> Self {
        Held {
            buckets: [0; 64],
            n: 0,
        }
    }
}

impl Held {
    /// Keeps `bucket`; false if full (the caller releases it instead).
    fn push(&mut self, bucket: usize) -> bool {
        match self.buckets.get_mut(self.n) {
            Some(b) => {
                *b = bucket;
                self.n += 1;
                true
            }
            None => false,
        }
    }

    fn drain(&mut self) -> impl Iterator<Item = usize> + '_ {
        let n = core::mem::take(&mut self.n);
        self.buckets[..n].iter().copied()
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
                            // Nothing from here on reached it: a re-add
                            // must copy all of that.
                            self.fail_and_record(
                                slot,
                                "write error during resync",
                                sector,
                                sectors - sector,
                            );
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
                                self.fail_and_record(
                                    slot,
                                    "write error during repair",
                                    sector,
                                    piece,
                                );
                            }
                        }
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
