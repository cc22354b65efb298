// SPDX-License-Identifier: GPL-2.0

//! The recovery pipeline's rules, apart from its I/O: how a member's dirty
//! runs are cut into region copies ([`Walk`]), how one copy moves through
//! its stages ([`on_landed`], a table), and the order in which finished
//! copies are retired ([`Retire`]).
//!
//! The sync thread (array/resync.rs) keeps up to `COPY_LANES` copies in
//! flight. Each copy holds its region's interlock bucket from its start to
//! its retirement, so no user write overlaps it. Copies finish in any order
//! but are retired in walk order, because a dirty run longer than a region
//! is cleared in the bitmap by the copy that completes it, which must come
//! after every other piece of the run: the buckets of the run's earlier
//! pieces stay held until then (a write that lands after the clear sets its
//! bits again). After a failed copy nothing walked later is cleared.

use super::bitmap::{DirtyBitmap, NodeAlloc};
use super::interlock::REGION_SECTORS;
use core::ops::Deref;
use core::sync::atomic::AtomicUsize;

/// A piece of the walk: sectors within one region, and what to record when
/// its copy is retired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    /// First sector.
    pub(crate) sector: u64,
    /// Length in sectors (0 for a run past the array's end).
    pub(crate) sectors: u64,
    /// Clean blocks `(start, len)` skipped right before this piece.
    pub(crate) skipped: (u64, u64),
    /// The dirty run `(start, len)` in blocks this piece completes.
    pub(crate) run_end: Option<(u64, u64)>,
}

/// Walks a bitmap's dirty runs as pieces of at most one region (and at most
/// `piece_sectors`), in order.
pub(crate) struct Walk<'a, A: NodeAlloc, R: Deref<Target = [AtomicUsize]>> {
    bm: &'a DirtyBitmap<A, R>,
    shift: u32,
    region_blocks: u64,
    array_sectors: u64,
    piece_sectors: u64,
    /// The first block not yet handed out.
    next_block: u64,
    /// The run being cut: `(start, len)` blocks and its next and end sector.
    run: Option<(u64, u64, u64, u64)>,
}

impl<'a, A: NodeAlloc, R: Deref<Target = [AtomicUsize]>> Walk<'a, A, R> {
    /// A walk over `bm` (blocks of `1 << shift` sectors) of an array of
    /// `array_sectors`, in pieces of at most `piece_sectors`.
    pub(crate) fn new(
        bm: &'a DirtyBitmap<A, R>,
        shift: u32,
        array_sectors: u64,
        piece_sectors: u64,
    ) -> Self {
        Walk {
            bm,
            shift,
            region_blocks: (REGION_SECTORS >> shift).max(1),
            array_sectors,
            piece_sectors: piece_sectors.max(1),
            next_block: 0,
            run: None,
        }
    }

    /// The first block the walk has not reached.
    pub(crate) fn next_block(&self) -> u64 {
        self.next_block
    }
}

impl<A: NodeAlloc, R: Deref<Target = [AtomicUsize]>> Iterator for Walk<'_, A, R> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        let mut skipped = (self.next_block, 0);
        let (start, len, sector, end) = match self.run {
            Some(r) => r,
            None => {
                let (start, len) =
                    self.bm
                        .next_run(self.next_block, self.region_blocks, self.region_blocks)?;
                skipped.1 = start.saturating_sub(self.next_block);
                self.next_block = start.saturating_add(len);
                let first = start.checked_shl(self.shift).unwrap_or(u64::MAX);
                let last = self.next_block.checked_shl(self.shift).unwrap_or(u64::MAX);
                (
                    start,
                    len,
                    first.min(self.array_sectors),
                    last.min(self.array_sectors),
                )
            }
        };
        let region_end = (sector / REGION_SECTORS).saturating_add(1) * REGION_SECTORS;
        let n = end
            .saturating_sub(sector)
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
pub(crate) enum Stage {
    /// Reading the piece from an in-sync member.
    Reading,
    /// Writing it to the recovering member.
    Writing,
    /// Done: the target has the piece.
    Copied,
    /// Done: the piece could not be copied (no source could read it, or the
    /// target failed); it stays dirty.
    Failed,
}

impl Stage {
    /// No I/O of the copy is in flight any more: it may be retired.
    pub(crate) fn finished(self) -> bool {
        matches!(self, Stage::Copied | Stage::Failed)
    }
}

/// What the sync thread does when a copy's bio landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Write the buffer to the target (if that cannot start: `Failed`).
    WriteTarget,
    /// Read from another in-sync member not tried yet (none left: `Failed`).
    ReadOtherSource,
    /// Fail the target member (its bitmap keeps the piece dirty).
    FailTarget,
    /// Nothing more to do for this copy.
    Nothing,
}

/// The stage transitions of a copy: `(stage, bio succeeded) -> (next, action)`.
/// `Copied` and `Failed` have no bio in flight and so no entry. `next` is
/// the stage once the action is under way: an action that cannot start
/// leaves the copy `Failed` instead (the write to the target cannot be
/// submitted; no other source is left to read), as `Action` says.
pub(crate) const TRANSITIONS: [(Stage, bool, Stage, Action); 4] = [
    (Stage::Reading, true, Stage::Writing, Action::WriteTarget),
    (
        Stage::Reading,
        false,
        Stage::Reading,
        Action::ReadOtherSource,
    ),
    (Stage::Writing, true, Stage::Copied, Action::Nothing),
    (Stage::Writing, false, Stage::Failed, Action::FailTarget),
];

/// The entry of [`TRANSITIONS`] for a bio of a copy in `stage` that landed
/// with `ok`; `None` if the copy had no bio in flight.
pub(crate) fn on_landed(stage: Stage, ok: bool) -> Option<(Stage, Action)> {
    TRANSITIONS
        .iter()
        .find(|t| t.0 == stage && t.1 == ok)
        .map(|t| (t.2, t.3))
}

/// Interlock buckets held for the unfinished run: a run of blocks up to
/// 64 MiB spans up to 64 regions.
pub(crate) const HELD_MAX: usize = 64;

/// Buckets to release, from [`Retire::retire`] or [`Retire::release_all`].
#[derive(Debug)]
pub(crate) struct Release {
    buckets: [usize; HELD_MAX + 1],
    n: usize,
}

impl Release {
    const fn none() -> Self {
        Release {
            buckets: [0; HELD_MAX + 1],
            n: 0,
        }
    }

    fn add(&mut self, b: usize) {
        // Room for every held bucket and the retiring one.
        debug_assert!(self.n < self.buckets.len());
        if let Some(slot) = self.buckets.get_mut(self.n) {
            *slot = b;
            self.n += 1;
        }
    }

    /// The buckets, in the order they were taken.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.buckets.iter().take(self.n).copied()
    }
}

/// What retiring a copy records (when nothing failed before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// Clean blocks skipped before the piece, for the range log.
    pub(crate) skipped: (u64, u64),
    /// Sectors the progress advances by.
    pub(crate) sectors: u64,
    /// The dirty run to clear in the bitmap (and log), before the buckets
    /// are released.
    pub(crate) clear: Option<(u64, u64)>,
}

/// Retires finished copies in walk order (see the module comment).
#[derive(Debug)]
pub(crate) struct Retire {
    seq: u64,
    failed: bool,
    errs: u64,
    held: [usize; HELD_MAX],
    n_held: usize,
}

impl Default for Retire {
    fn default() -> Self {
        Retire {
            seq: 0,
            failed: false,
            errs: 0,
            held: [0; HELD_MAX],
            n_held: 0,
        }
    }
}

impl Retire {
    /// The walk position (`seq`) of the copy to retire next.
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq
    }

    /// A copy failed: nothing retired from now on is recorded.
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// Copies that failed.
    pub(crate) fn errs(&self) -> u64 {
        self.errs
    }

    /// Retires the copy of `piece` (walk position [`Retire::next_seq`]),
    /// which holds `bucket` and ended `copied` or not: what to record, and
    /// which buckets to release after recording it.
    pub(crate) fn retire(
        &mut self,
        piece: &Piece,
        bucket: usize,
        copied: bool,
    ) -> (Option<Record>, Release) {
        self.seq += 1;
        let mut record = None;
        if !copied {
            self.failed = true;
            self.errs += 1;
        } else if !self.failed {
            record = Some(Record {
                skipped: piece.skipped,
                sectors: piece.sectors,
                clear: piece.run_end,
            });
        }
        let mut release = Release::none();
        // The run goes on after this piece: keep its region until the run is
        // cleared (unless nothing will be cleared, or there is no room).
        if piece.run_end.is_none() && !self.failed {
            if let Some(slot) = self.held.get_mut(self.n_held) {
                *slot = bucket;
                self.n_held += 1;
                return (record, release);
            }
        }
        release.add(bucket);
        for &b in self.held.iter().take(self.n_held) {
            release.add(b);
        }
        self.n_held = 0;
        (record, release)
    }

    /// The walk ended (or stopped) with buckets of a run still held.
    pub(crate) fn release_all(&mut self) -> Release {
        let mut release = Release::none();
        for &b in self.held.iter().take(self.n_held) {
            release.add(b);
        }
        self.n_held = 0;
        release
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::bitmap::Node;
    use core::ptr::NonNull;
    use std::boxed::Box;
    use std::vec::Vec;

    #[derive(Default)]
    struct Heap;

    impl NodeAlloc for Heap {
        fn alloc(&self) -> Option<NonNull<Node>> {
            // SAFETY: A zeroed `Node` is valid (an array of atomics).
            let b: Box<Node> = unsafe { Box::new_zeroed().assume_init() };
            NonNull::new(Box::into_raw(b))
        }

        unsafe fn free(&self, node: NonNull<Node>) {
            // SAFETY: By the trait's contract `node` came from `alloc`.
            drop(unsafe { Box::from_raw(node.as_ptr()) });
        }
    }

    fn bitmap(blocks: u64) -> DirtyBitmap<Heap, Vec<AtomicUsize>> {
        let (_, len) = crate::logic::bitmap::shape(blocks);
        let root = (0..len).map(|_| AtomicUsize::new(0)).collect();
        DirtyBitmap::new(Heap, root, blocks).unwrap()
    }

    /// Pieces cover exactly the dirty blocks, never cross a region, end each
    /// run once, and account every clean block before them as skipped.
    #[test]
    fn walk_covers_dirty_runs_region_by_region() {
        let shift = 3; // 4 KiB blocks
        let blocks = 4096; // 16 MiB
        let bm = bitmap(blocks);
        bm.set(5, 1);
        bm.set(200, 700); // crosses regions 0..3 (256 blocks per region)
        bm.set(4000, 96);
        let pieces: Vec<Piece> = Walk::new(&bm, shift, blocks << shift, 1 << 20).collect();
        let mut covered = Vec::new();
        let mut skipped = 0;
        let mut runs = Vec::new();
        for p in &pieces {
            assert_eq!(
                p.sector / REGION_SECTORS,
                (p.sector + p.sectors - 1) / REGION_SECTORS
            );
            covered.push((p.sector, p.sectors));
            skipped += p.skipped.1;
            if let Some(r) = p.run_end {
                runs.push(r);
            }
        }
        // Runs end at region boundaries (256 blocks of 4 KiB per region).
        assert_eq!(
            runs,
            [
                (5, 1),
                (200, 56),
                (256, 256),
                (512, 256),
                (768, 132),
                (4000, 96)
            ]
        );
        let dirty_sectors: u64 = covered.iter().map(|c| c.1).sum();
        assert_eq!(dirty_sectors, (1 + 700 + 96) << shift);
        assert_eq!(skipped, 5 + (200 - 6) + (4000 - 900));
        // Pieces are in order and do not overlap.
        assert!(covered.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
        assert!(pieces.iter().all(|p| p.run_end.is_some()));
        // Blocks larger than a region (2 MiB): one dirty block is two pieces,
        // and only the second one clears it.
        let bm = bitmap(64);
        bm.set(3, 1);
        let p: Vec<Piece> = Walk::new(&bm, 12, 64 << 12, 1 << 20).collect();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].sector, p[0].sectors, p[0].run_end),
            (3 << 12, 2048, None)
        );
        assert_eq!(p[1].run_end, Some((3, 1)));
        assert_eq!(p[0].skipped, (0, 3));
        assert_eq!(p[1].skipped.1, 0);
    }

    /// A run past the array's end (the bitmap rounds up) yields an empty
    /// piece that still clears it, and a small lane cuts pieces shorter.
    #[test]
    fn walk_clamps_to_the_array_and_the_lane() {
        let bm = bitmap(100);
        bm.set(90, 10);
        let p: Vec<Piece> = Walk::new(&bm, 3, 95 << 3, 1 << 20).collect();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].sector, p[0].sectors), (720, 40));
        assert_eq!(p[0].run_end, Some((90, 10)));
        let p: Vec<Piece> = Walk::new(&bm, 3, 100 << 3, 16).collect();
        assert_eq!(p.len(), 5);
        assert!(p.iter().all(|p| p.sectors == 16));
        let bm = bitmap(100);
        bm.set(99, 1);
        let p: Vec<Piece> = Walk::new(&bm, 3, 98 << 3, 16).collect();
        assert_eq!(p[0].sectors, 0);
        assert_eq!(p[0].run_end, Some((99, 1)));
    }

    #[test]
    fn transitions_are_a_total_table_for_stages_in_flight() {
        for stage in [Stage::Reading, Stage::Writing] {
            for ok in [true, false] {
                let (next, _) = on_landed(stage, ok).unwrap();
                // A landing never jumps back from writing to reading.
                assert!(!(stage == Stage::Writing && next == Stage::Reading));
            }
        }
        assert_eq!(on_landed(Stage::Copied, true), None);
        assert_eq!(on_landed(Stage::Failed, false), None);
        assert_eq!(
            on_landed(Stage::Reading, true),
            Some((Stage::Writing, Action::WriteTarget))
        );
        assert_eq!(
            on_landed(Stage::Writing, false),
            Some((Stage::Failed, Action::FailTarget))
        );
    }

    fn piece(sector: u64, run_end: Option<(u64, u64)>) -> Piece {
        Piece {
            sector,
            sectors: 8,
            skipped: (0, 0),
            run_end,
        }
    }

    /// A run over three regions releases its first two buckets only with
    /// the piece that clears it, after recording that clear.
    #[test]
    fn run_buckets_are_held_until_the_run_is_cleared() {
        let mut r = Retire::default();
        let (rec, rel) = r.retire(&piece(0, None), 0, true);
        assert_eq!(rec.unwrap().clear, None);
        assert_eq!(rel.iter().count(), 0);
        let (_, rel) = r.retire(&piece(2048, None), 1, true);
        assert_eq!(rel.iter().count(), 0);
        let (rec, rel) = r.retire(&piece(4096, Some((0, 520))), 2, true);
        assert_eq!(rec.unwrap().clear, Some((0, 520)));
        assert_eq!(rel.iter().collect::<Vec<_>>(), [2, 0, 1]);
        assert_eq!(r.next_seq(), 3);
        assert_eq!(r.release_all().iter().count(), 0);
    }

    /// After a failure nothing is recorded any more, and no bucket is held.
    #[test]
    fn a_failure_stops_recording_and_holding() {
        let mut r = Retire::default();
        let (_, rel) = r.retire(&piece(0, None), 7, true);
        assert_eq!(rel.iter().count(), 0);
        let (rec, rel) = r.retire(&piece(2048, None), 8, false);
        assert_eq!(rec, None);
        assert_eq!(rel.iter().collect::<Vec<_>>(), [8, 7]);
        let (rec, rel) = r.retire(&piece(4096, Some((0, 520))), 9, true);
        assert_eq!(rec, None);
        assert_eq!(rel.iter().collect::<Vec<_>>(), [9]);
        assert!(r.failed());
        assert_eq!(r.errs(), 1);
    }

    /// More unfinished pieces than room (unreachable: the walk cuts runs of
    /// at most one region of blocks, or one block of at most 64 MiB): the
    /// table stays total and releases everything rather than lose a bucket.
    #[test]
    fn held_overflow_releases_and_a_stop_releases_the_rest() {
        let mut r = Retire::default();
        for b in 0..HELD_MAX {
            let (_, rel) = r.retire(&piece(b as u64 * 2048, None), b, true);
            assert_eq!(rel.iter().count(), 0);
        }
        let (_, rel) = r.retire(&piece(1 << 30, None), 999, true);
        let v: Vec<usize> = rel.iter().collect();
        assert_eq!(v.len(), HELD_MAX + 1);
        assert_eq!(v[0], 999);
        let (_, rel) = r.retire(&piece(1 << 31, None), 5, true);
        assert_eq!(rel.iter().count(), 0);
        assert_eq!(r.release_all().iter().collect::<Vec<_>>(), [5]);
    }
}
