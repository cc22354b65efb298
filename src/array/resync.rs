// SPDX-License-Identifier: GPL-2.0

//! The recovery: the sync thread copies only the blocks a member missed,
//! region by region, several copies in flight, never racing a user write.

use core::fmt::Write as _;
use core::sync::atomic::Ordering;
use kernel::{prelude::*, sync::Arc, time::delay::fsleep, time::Delta};

use super::progress::SyncJob;
use super::{Array, Mode, SlotRef};
use crate::logic::abi::MAX_MIRRORS;
use crate::logic::balance;
use crate::logic::interlock::REGION_SECTORS;
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
    pub(super) fn throttle(&self) {
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
}
