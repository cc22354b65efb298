// SPDX-License-Identifier: GPL-2.0

//! md's check and repair, and the initial resync of a not-clean build: every
//! region of the in-sync members compared (or copied) under the interlock.

use core::sync::atomic::Ordering;
use kernel::prelude::*;

use kernel::time::{delay::fsleep, Delta};

use super::{Array, Mode, SlotRef};
use crate::logic::abi::MAX_MIRRORS;
use crate::logic::interlock::REGION_SECTORS;
use crate::logic::mismatch::MAX_RANGES;
use crate::logic::resync::Pace;
use crate::sys::bio::PageBuf;
use crate::sys::ioring::IoRing;
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

/// Regions a check has in flight at most.
const CHECK_JOBS: usize = 4;
/// Region buffers (1 MiB each) a check holds at most: with two members,
/// four regions in flight; with more, fewer (at least one).
const CHECK_LANES: usize = 8;

/// One member's read of a region being checked.
#[derive(Clone, Copy)]
struct LegRead {
    slot: u32,
    /// `Some(ok)` once the read landed.
    landed: Option<bool>,
}

/// A region being checked: held in the interlock while its reads fly.
struct CheckJob {
    sector: u64,
    sectors: u64,
    bucket: usize,
    /// Its place in the walk (regions finish in this order).
    seq: u64,
    /// Reads submitted that have not landed.
    flying: usize,
    /// By lane within the job's group, in slot order.
    reads: [Option<LegRead>; MAX_MIRRORS as usize],
}

/// The check compares (and counts mismatches) in blocks of 4 KiB, the
/// page and the usual logical block: `mismatch_cnt` and `md/fr1_mismatches`
/// name the blocks that differ, not the whole region read at once.
const CHECK_BLOCK_SECTORS: u64 = 8;

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

    /// md's check/repair, and the initial resync of a not-clean build:
    /// every in-sync member compared with the first one that reads, region
    /// by region under the interlock, counting (and listing) mismatched
    /// sectors; repair and resync rewrite the members that differ.
    ///
    /// The resync's pipeline (`array/resync.rs`): up to [`CHECK_JOBS`]
    /// regions at once, each read from every in-sync member in parallel
    /// (one lane of the ring per member; each read submitted by its leg's
    /// submitter, so that no leg's submission holds up another's, and a
    /// driver that copies in its submission, brd, does it on another CPU
    /// than the compare). Regions are finished in the
    /// order they were started, each once all its reads landed: compared,
    /// rewritten where they must be, released. So the mismatch log is in
    /// ascending order, a resync's write error records everything from its
    /// region on, and no region is held while a later one cycles through
    /// the lanes. The thread paces itself as a recovery does
    /// (`sync_speed_min`/`max`, `sync_io_depth`).
    pub(super) fn check_all(&self, mode: Mode) {
        let name = self.name_str();
        let sectors = self.sectors.load(Ordering::Relaxed);
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS);
        // One lane per member a region is read from (their number only
        // shrinks while this thread runs); as many regions as the lanes
        // allow, or one if memory is short.
        let width = (0..raid_disks)
            .filter(|&s| self.state().readable(s))
            .count()
            .max(1);
        let depth = (CHECK_LANES / width).clamp(1, CHECK_JOBS);
        let lane_bytes = REGION_SECTORS as usize * 512;
        let (ring, depth) = match IoRing::<SlotRef<'_>>::new(width * depth, lane_bytes) {
            Ok(r) => (r, depth),
            Err(_) => match IoRing::new(width, lane_bytes) {
                Ok(r) => (r, 1),
                Err(_) => {
                    pr_err!("{}: check: out of memory for its buffers\n", name);
                    return;
                }
            },
        };
        let what = match mode {
            Mode::Check => "check",
            Mode::Repair => "repair",
            _ => "resync",
        };
        self.sync.mismatches.store(0, Ordering::Relaxed);
        self.mismatch_log.lock().reset();
        self.sync.count(sectors);
        pr_info!("{}: {} of RAID array {} started\n", name, what, name);
        let mut run = CheckRun {
            array: self,
            ring,
            jobs: [const { None }; CHECK_JOBS],
            width,
            depth,
            mode,
            what,
            started: 0,
            finished: 0,
            unsynced: false,
        };
        let mut next = 0;
        let (mut halted, mut draining) = (false, false);
        loop {
            run.finish_ready();
            halted |= kthread::should_stop();
            // Start regions while there are free jobs.
            while !halted && next < sectors {
                let Some(j) = run.free_job() else {
                    break;
                };
                let idle = run.idle();
                // Once over `sync_io_depth` on a busy array, the copies in
                // flight drain before the next one (md's wait for
                // `recovery_active`).
                draining &= !idle;
                if draining {
                    break;
                }
                match self.pace(run.inflight()) {
                    Pace::Go => {}
                    Pace::Drain if idle => {}
                    Pace::Drain => {
                        draining = true;
                        break;
                    }
                    Pace::Sleep(ms) if idle => {
                        fsleep(Delta::from_millis(ms as i64));
                        halted |= kthread::should_stop();
                        continue;
                    }
                    Pace::Sleep(_) => break,
                }
                let piece = (sectors - next).min(REGION_SECTORS - next % REGION_SECTORS);
                run.start(j, next, piece);
                next += piece;
                // What landed meanwhile is let go before the next raise.
                run.finish_ready();
            }
            if !run.wait_one() {
                // Nothing in flight: a region with no read started is
                // finished above, unless nothing is left.
                run.finish_ready();
                if run.idle() && (halted || next >= sectors) {
                    break;
                }
            }
        }
        let unsynced = run.unsynced;
        drop(run);
        let interrupted = next < sectors;
        if mode == Mode::Resync && !interrupted && !unsynced {
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
        if mode != Mode::Resync {
            self.log_mismatches(what);
        }
    }

    /// Compares `a` (read from `primary`) with `b` (from `slot`) over the
    /// `piece` (start, sectors) a [`CHECK_BLOCK_SECTORS`] block at a time;
    /// counts each differing block in `mismatch_cnt` and notes it in the
    /// mismatch log (its lock taken per block found, never across the
    /// compare). Returns the sectors found different.
    fn note_mismatches(
        &self,
        a: &PageBuf,
        b: &PageBuf,
        (sector, sectors): (u64, u64),
        slot: u32,
        primary: u32,
    ) -> u64 {
        if a.same_as(b, (sectors * 512) as usize) {
            return 0;
        }
        let mut differ = 0;
        let mut off = 0;
        while off < sectors {
            let n = CHECK_BLOCK_SECTORS.min(sectors - off);
            if !a.same_range(b, (off * 512) as usize, (n * 512) as usize) {
                self.mismatch_log
                    .lock()
                    .note(sector + off, n, slot, primary);
                self.sync.mismatches.fetch_add(n, Ordering::Relaxed);
                differ += n;
            }
            off += n;
        }
        differ
    }

    /// The mismatch log in dmesg: a line per range, then the unlisted
    /// sectors if any.
    fn log_mismatches(&self, what: &str) {
        let name = self.name_str();
        let log = self.mismatch_log.lock();
        for r in log.ranges() {
            let leg = self.slot_get_present(r.slot);
            let first = self.slot_get_present(r.primary);
            pr_info!(
                "{}: {}: slot {} ({}) differs from slot {} ({}) at sector {}, {} sectors\n",
                name,
                what,
                r.slot,
                leg.as_ref().map_or("gone", |m| m.name()),
                r.primary,
                first.as_ref().map_or("gone", |m| m.name()),
                r.sector,
                r.sectors
            );
        }
        if log.unlisted() > 0 {
            pr_info!(
                "{}: {}: {} more mismatched sectors not listed (md/fr1_mismatches holds {} ranges)\n",
                name,
                what,
                log.unlisted(),
                MAX_RANGES
            );
        }
    }
}

/// A check's pipeline: its ring, and the regions in flight.
///
/// # Invariants
///
/// - Job `j` owns lanes `j * width .. (j + 1) * width`; its `reads[i]`
///   is the read in lane `j * width + i`, and `flying` counts those not
///   landed. A job's lanes are idle once `flying == 0`.
/// - Jobs hold their region (an interlock bucket) from `start` until
///   `finish_ready` finishes them, in `seq` order: `finished` is the seq
///   of the oldest job not finished, `started` the next seq to give.
struct CheckRun<'a> {
    array: &'a Array,
    ring: IoRing<SlotRef<'a>>,
    jobs: [Option<CheckJob>; CHECK_JOBS],
    width: usize,
    depth: usize,
    mode: Mode,
    what: &'static str,
    started: u64,
    finished: u64,
    /// A region the resync could not read from any member (nothing was
    /// written there): the initial resync is not done.
    unsynced: bool,
}

impl<'a> CheckRun<'a> {
    fn free_job(&self) -> Option<usize> {
        self.jobs.iter().take(self.depth).position(Option::is_none)
    }

    fn idle(&self) -> bool {
        self.jobs.iter().all(Option::is_none)
    }

    /// Sectors of the regions held (md's `recovery_active`).
    fn inflight(&self) -> u64 {
        self.jobs.iter().flatten().map(|job| job.sectors).sum()
    }

    /// Holds the region of `sectors` at `sector` and reads it from every
    /// in-sync member into job `j`'s lanes.
    fn start(&mut self, j: usize, sector: u64, sectors: u64) {
        let a = self.array;
        // Every member compared holds the region's latest data: behind
        // writes landing there are waited for, most of them before the
        // region is held (no other region is held longer for them), the
        // rest after (none starts while it is held).
        let legs = u32::from(a.state().readable_mask());
        a.wait_behind(sector, sectors, legs);
        let bucket = a.interlock_raise(sector);
        a.wait_behind(sector, sectors, legs);
        let mut job = CheckJob {
            sector,
            sectors,
            bucket,
            seq: self.started,
            flying: 0,
            reads: [const { None }; MAX_MIRRORS as usize],
        };
        self.started += 1;
        let st = a.state();
        let readable = (0..a.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS))
            .filter(|&s| st.readable(s))
            .take(self.width);
        for (i, slot) in readable.enumerate() {
            let Some(r) = a.slot_ref(slot, false) else {
                continue;
            };
            if self
                .ring
                .submit(
                    j * self.width + i,
                    r,
                    &a.bioset,
                    false,
                    sector,
                    sectors,
                    a.submitters.get(slot as usize),
                )
                .is_ok()
            {
                job.flying += 1;
                if let Some(read) = job.reads.get_mut(i) {
                    *read = Some(LegRead { slot, landed: None });
                }
            }
        }
        if let Some(slot) = self.jobs.get_mut(j) {
            *slot = Some(job);
        }
    }

    /// Sleeps until one read landed and records it; false if none is in
    /// flight.
    fn wait_one(&mut self) -> bool {
        let Some((lane, ok, hold)) = self.ring.wait_any() else {
            return false;
        };
        drop(hold);
        // Never 0 (`check_all`); said again so that no division-by-zero
        // panic path is emitted (objtool warns of a call it cannot see end).
        let width = self.width.max(1);
        if let Some(job) = self.jobs.get_mut(lane / width).and_then(Option::as_mut) {
            if let Some(r) = job.reads.get_mut(lane % width).and_then(Option::as_mut) {
                r.landed = Some(ok);
            }
            job.flying -= 1;
        }
        true
    }

    /// Finishes, in start order, every job whose reads all landed.
    fn finish_ready(&mut self) {
        loop {
            let oldest = self.jobs.iter().position(|job| {
                job.as_ref()
                    .is_some_and(|job| job.seq == self.finished && job.flying == 0)
            });
            let Some(j) = oldest else {
                return;
            };
            let Some(job) = self.jobs.get_mut(j).and_then(Option::take) else {
                return;
            };
            if !self.finish(j, &job) {
                self.unsynced = true;
            }
            self.array.interlock_lower(job.bucket);
            self.array.sync.advance(job.sectors, false);
            self.finished += 1;
        }
    }

    /// All reads of `job` (job `j`) landed: compares each member with the
    /// first one that read the region, counts and lists what differs
    /// (check, repair) and rewrites it (repair, resync; a member that did
    /// not read is rewritten too). False if no member read it.
    fn finish(&self, j: usize, job: &CheckJob) -> bool {
        let a = self.array;
        let (sector, sectors) = (job.sector, job.sectors);
        let lane = |i: usize| j * self.width + i;
        let mut primary: Option<(u32, &PageBuf)> = None;
        for (i, read) in job.reads.iter().enumerate() {
            let Some(LegRead { slot, landed }) = *read else {
                continue;
            };
            if landed == Some(true) {
                if let Some(buf) = self.ring.buf(lane(i)) {
                    primary = Some((slot, buf));
                    break;
                }
            }
        }
        let Some((p, src)) = primary else {
            pr_err!(
                "{}: {}: no in-sync member could read sector {} ({} sectors)\n",
                a.name_str(),
                self.what,
                sector,
                sectors
            );
            return false;
        };
        for (i, read) in job.reads.iter().enumerate() {
            let Some(LegRead { slot, landed }) = *read else {
                continue;
            };
            if slot == p {
                continue;
            }
            let ok = landed == Some(true);
            if !ok {
                pr_warn!(
                    "{}: {}: read error on slot {} at sector {}\n",
                    a.name_str(),
                    self.what,
                    slot,
                    sector
                );
            }
            let differs = match (ok, self.ring.buf(lane(i))) {
                (true, Some(buf)) => match self.mode {
                    Mode::Resync => !src.same_as(buf, (sectors * 512) as usize),
                    _ => a.note_mismatches(src, buf, (sector, sectors), slot, p) > 0,
                },
                // A member that did not read is written over (md's
                // repair rewrites a read error too).
                _ => true,
            };
            if !differs || self.mode == Mode::Check {
                continue;
            }
            // On a resync's write error nothing from this region on
            // reached the member (regions finish in order): a re-add must
            // copy all of that.
            let (why, missed) = match self.mode {
                Mode::Resync => (
                    "write error during resync",
                    (sector, a.sectors.load(Ordering::Relaxed) - sector),
                ),
                _ => ("write error during repair", (sector, sectors)),
            };
            a.write_copy(slot, sector, sectors, src, why, missed);
        }
        true
    }
}
