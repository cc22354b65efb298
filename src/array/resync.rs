// SPDX-License-Identifier: GPL-2.0

//! The recovery: the sync thread copies only the blocks a member missed,
//! region by region, several copies in flight, never racing a user write.

use core::fmt::Write as _;
use core::sync::atomic::Ordering;
use kernel::{prelude::*, sync::Arc, time::delay::fsleep, time::Delta};

use super::behind::Sender;
use super::progress::SyncJob;
use super::{Array, Mode, SlotRef};
use crate::logic::abi::MAX_MIRRORS;
use crate::logic::interlock::REGION_SECTORS;
use crate::logic::recovery::{on_landed, Action, Piece, Retire, Stage, Walk};
use crate::logic::resync::{self as plan, Pace, RangeLog};
use crate::sys::ioring::IoRing;
use crate::sys::kthread::{self, KThread};

impl Array {
    /// (Re)starts the resync thread so it sees every recovering member
    /// (not while `sync_action` is frozen).
    pub(super) fn restart_resync(self: &Arc<Self>, cfg: &mut super::Config) -> Result {
        self.start_sync(cfg, Mode::Recover)
    }

    /// After a failed member change: a recovery if one is owed, else none.
    pub(super) fn settle_sync(self: &Arc<Self>, cfg: &mut super::Config) {
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
    pub(super) fn resync_all(&self) {
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS);
        for slot in 0..raid_disks {
            for _pass in 0..4 {
                let st = self.state();
                if !self.takes_writes(slot) || st.in_sync(slot) || kthread::should_stop() {
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
        // No write misses the leg unseen while this pass runs (see the
        // clear below).
        let misses = self.misses(slot);
        let mut walk = Walk::new(bm, shift, array_sectors, ring.lane_sectors());
        let mut jobs: [Option<Job>; COPY_LANES] = [const { None }; COPY_LANES];
        let mut retire = Retire::default();
        let mut seq = 0u64;
        // `halted`: no new copies (stop, member gone, or a failure).
        let (mut halted, mut exhausted, mut draining) = (false, false, false);
        loop {
            // Retire finished copies in walk order (logic::recovery).
            while let Some(lane) = jobs.iter().position(|j| {
                j.as_ref()
                    .is_some_and(|j| j.seq == retire.next_seq() && j.stage.finished())
            }) {
                let Some(job) = jobs[lane].take() else {
                    break;
                };
                let (record, release) =
                    retire.retire(&job.piece, job.bucket, job.stage == Stage::Copied);
                if let Some(r) = record {
                    log.clean(r.skipped.0, r.skipped.1, &mut out);
                    self.sync.advance(r.sectors, true);
                    if let Some((start, len)) = r.clear {
                        // Cleared before the region is released: a write
                        // that then misses the member sets its bits again.
                        let (xs, xn) = bm.clear(start, len);
                        // But a write may have missed the member since the
                        // pass started and set bits this erased: a copy
                        // sent behind that failed, or a write after the
                        // leg went behind into a coarse subtree cleared
                        // whole here (the extent), even if a catch-up has
                        // set the leg back to NORMAL since. Every such
                        // miss bumps the leg's miss generation first, and
                        // fences before its `set` (`record_missed_write`);
                        // this side clears, fences, then reads the
                        // generation: either it sees the bump and records
                        // the extent again, or the `set` sees the clear.
                        core::sync::atomic::fence(Ordering::SeqCst);
                        if self.misses(slot) != misses || !self.takes_writes(slot) {
                            bm.set(xs, xn);
                        }
                        log.dirty(start, len, &mut out);
                    }
                }
                for bucket in release.iter() {
                    self.interlock_lower(bucket);
                }
            }
            halted |= retire.failed() || kthread::should_stop() || !self.takes_writes(slot);
            // Start copies while lanes are free.
            while !halted && !exhausted {
                let Some(lane) = jobs.iter().position(Option::is_none) else {
                    break;
                };
                let idle = jobs.iter().all(Option::is_none);
                // Once over `sync_io_depth` on a busy array, the copies in
                // flight drain before the next one (md's wait for
                // `recovery_active`).
                draining &= !idle;
                if draining {
                    break;
                }
                let inflight: u64 = jobs.iter().flatten().map(|j| j.piece.sectors).sum();
                match self.pace(inflight) {
                    Pace::Go => {}
                    Pace::Drain if idle => {}
                    Pace::Drain => {
                        draining = true;
                        break;
                    }
                    Pace::Sleep(ms) if idle => {
                        fsleep(Delta::from_millis(ms as i64));
                        halted |= kthread::should_stop() || !self.takes_writes(slot);
                        continue;
                    }
                    Pace::Sleep(_) => break,
                }
                let Some(piece) = walk.next() else {
                    exhausted = true;
                    break;
                };
                let bucket = self.interlock_raise(piece.sector);
                // Behind writes to the target over the piece land first (no
                // new one starts while the region is held): the copy must
                // not be overtaken there by older data.
                self.wait_behind(piece.sector, piece.sectors, 1 << slot);
                let mut job = Job {
                    piece,
                    seq,
                    bucket,
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
            let Some((next, action)) = on_landed(job.stage, ok) else {
                continue;
            };
            match action {
                Action::WriteTarget => {
                    job.stage = Stage::Failed;
                    if let Some(t) = self.slot_ref(slot, true) {
                        let p = job.piece;
                        if ring.buf(lane).is_some_and(|buf| {
                            self.copy_behind(
                                slot,
                                t.as_ref(),
                                buf,
                                p.sector,
                                p.sectors,
                                Sender::SyncThread,
                            )
                        }) {
                            // On its way to a write-mostly leg from a copy
                            // of its own: retired (and its region let go)
                            // without waiting for the slow leg.
                            job.stage = Stage::Copied;
                        } else if ring
                            .submit(lane, t, &self.bioset, true, p.sector, p.sectors, None)
                            .is_ok()
                        {
                            job.stage = next;
                        }
                    }
                }
                Action::ReadOtherSource => {
                    pr_warn!(
                        "{}: resync: read error on slot {} at sector {}, trying another mirror\n",
                        name,
                        from,
                        job.piece.sector
                    );
                    self.start_read(&mut ring, lane, job);
                }
                Action::FailTarget => {
                    // The target keeps what is still dirty in its bitmap.
                    let _ = self.fail_slot(slot, "write error during resync");
                    job.stage = next;
                }
                Action::Nothing => job.stage = next,
            }
        }
        drop(ring);
        // A run cut short by a stop still holds its first regions.
        for bucket in retire.release_all().iter() {
            self.interlock_lower(bucket);
        }
        let finished = exhausted && !retire.failed();
        if finished {
            let next = walk.next_block();
            log.clean(next, bm.blocks().saturating_sub(next), &mut out);
        }
        log.finish(&mut out);
        pr_info!(
            "{}: resync terminates with {} errs on device {} component {} ({} blocks, {} bytes copied)\n",
            name,
            retire.errs(),
            self.minor,
            slot,
            log.dirty_blocks,
            log.dirty_blocks << shift << 9
        );
        // Copies sent behind land before the leg counts as in sync: "in
        // sync" promises the leg holds every block.
        let finished = finished && self.wait_resync_copies(slot);
        if finished && self.settle_in_sync(slot, || bm.is_clean()) {
            // A clean bitmap holds no memory. Freeing needs the bitmap to
            // itself: writes are drained (the freeze), no other freezer
            // (read repair) could record into it meanwhile, and no behind
            // write to the leg is in flight (one that fails records into
            // it; none starts while writes are frozen).
            let frozen = self.freeze();
            if bm.is_clean() && self.behind_idle(slot) {
                // Only this thread walks or clears it; a re-add stops this
                // thread before it touches the bitmap.
                // SAFETY: Nothing else uses the bitmap: writes are frozen,
                // freezers exclude each other, and no other walker exists.
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
            self.note_caught_up(slot, log.dirty_blocks << shift << 9);
            self.slot[slot as usize]
                .auto_readds
                .store(0, Ordering::Relaxed);
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
        let p = job.piece;
        job.stage = Stage::Failed;
        // The copy holds the region: no new write starts there, so the
        // behind writes this waits for (a source never has one in flight
        // over the piece) are the last ones.
        while let Some(src) = self.choose_read(p.sector, p.sectors, job.tried, false) {
            job.tried |= 1 << src;
            let Some(r) = self.slot_ref(src, false) else {
                continue;
            };
            if ring
                .submit(lane, r, &self.bioset, false, p.sector, p.sectors, None)
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
    /// force, over the recent speed window, with `inflight_sectors` of
    /// sync I/O in flight: past `sync_io_depth` a busy array makes the sync
    /// drain (md 7.3's `sync_io_within_limit`).
    pub(super) fn pace(&self, inflight_sectors: u64) -> Pace {
        self.sync.tick();
        let (sectors, ns) = self.sync.window();
        let (min, max) = self.sync.limits();
        let busy = (self.writes_inflight.load(Ordering::Relaxed) > 0
            || self.inflight.load(Ordering::Relaxed) > 1)
            && !plan::within_io_depth(inflight_sectors, self.sync.io_depth());
        plan::pace(sectors, ns, u64::from(min), u64::from(max), busy)
    }
}

/// Region copies in flight per resync (each up to one 1 MiB region).
const COPY_LANES: usize = 4;

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

impl Array {
    /// Whether any working member is not in sync (a recovery is needed).
    pub(crate) fn needs_recovery(&self) -> bool {
        let st = self.state();
        (0..self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS))
            .any(|i| self.takes_writes(i) && !st.in_sync(i))
    }
}
