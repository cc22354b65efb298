// SPDX-License-Identifier: GPL-2.0

//! The demand-paged dirty bitmap: one bit per block of an array, recording
//! the writes one member missed.
//!
//! It is a radix tree of 512-byte nodes with a fan-out of 64. Leaves hold
//! 4096 bits (16 MiB at 4 KiB blocks); interior nodes hold 64 entries. Small
//! nodes keep scattered writes cheap: a write alone in its 128 MiB costs one
//! leaf and its share of the path to it, well under the 4 KiB page a dense
//! bitmap (md's) spends there. An entry is 0 (the whole subtree is clean, no
//! memory), [`COARSE`] (the whole subtree is dirty, no memory) or a pointer to
//! a child node. Memory is allocated only where writes land, from the I/O path
//! without sleeping; when an allocation fails, the entry becomes [`COARSE`]:
//! precision drops (the whole range will be resynced), correctness does not.
//! This is md's "hijacked page" idea carried to every level.
//!
//! Depth grows with the array, so the root of a 1 PiB array at 4 KiB blocks
//! has 4 entries (32 bytes) and a clean bitmap costs nothing else.
//!
//! Concurrency: setting bits is lock-free (atomic OR on leaf words and CAS
//! on entries). Clearing is done only by the resync of a region that no
//! write can touch (the region interlock). Nodes are freed only when the
//! whole bitmap is dropped, when no I/O uses it.

use core::num::NonZeroU64;
use core::ops::Deref;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Entries per interior node, words per leaf.
pub(crate) const FANOUT: usize = 64;
/// Blocks per leaf (512 bytes of bits).
pub(crate) const LEAF_BLOCKS: u64 = (FANOUT * 64) as u64;
/// Entry value: the whole subtree is dirty, no memory behind it.
pub(crate) const COARSE: usize = 1;

/// A 512-byte node: interior entries or leaf bit words.
#[repr(C, align(512))]
pub(crate) struct Node {
    words: [AtomicUsize; FANOUT],
}

/// How nodes are allocated. The kernel uses non-sleeping, non-warning
/// allocations (the I/O path calls `alloc`); tests inject failures.
pub(crate) trait NodeAlloc {
    /// A zeroed node, or `None` when memory is short. Must not sleep.
    fn alloc(&self) -> Option<NonNull<Node>>;
    /// Frees a node returned by `alloc`.
    ///
    /// # Safety
    ///
    /// `node` came from `alloc` of this allocator and is no longer used.
    unsafe fn free(&self, node: NonNull<Node>);
}

/// Usage figures (md's `bitmap:` line and sysfs `bitmap/` statistics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Leaves allocated.
    pub(crate) pages: u64,
    /// Interior nodes allocated below the root.
    pub(crate) nodes: u64,
    /// Bits set in leaf pages.
    pub(crate) bits: u64,
    /// Entries that went coarse because memory was short.
    pub(crate) coarse: u64,
}

/// A dirty bitmap over `blocks` blocks.
///
/// # Invariants
///
/// `root` holds at least `root_len` entries (the first `root_len` are used); every non-zero, non-[`COARSE`] entry at
/// depth `d < levels` points to an interior node allocated by `A` and at
/// depth `levels` to a leaf, all owned by this bitmap. A subtree at depth `d`
/// covers `LEAF_BLOCKS * FANOUT^(levels - d)` blocks.
pub(crate) struct DirtyBitmap<A: NodeAlloc, R: Deref<Target = [AtomicUsize]>> {
    alloc: A,
    root: R,
    root_len: usize,
    levels: u32,
    blocks: u64,
    pages: AtomicU64,
    nodes: AtomicU64,
    bits: AtomicU64,
    coarse: AtomicU64,
}

// SAFETY: All shared state is atomic; nodes are only freed by `drop`, which
// has exclusive access, and by the `unsafe` `set_all`/`reset`, whose callers
// guarantee that nothing else uses the bitmap meanwhile.
unsafe impl<A: NodeAlloc + Sync, R: Deref<Target = [AtomicUsize]> + Sync> Sync
    for DirtyBitmap<A, R>
{
}
// SAFETY: As above.
unsafe impl<A: NodeAlloc + Send, R: Deref<Target = [AtomicUsize]> + Send> Send
    for DirtyBitmap<A, R>
{
}

/// Interior levels and root entries needed for `blocks` blocks.
pub(crate) fn shape(blocks: u64) -> (u32, usize) {
    let mut levels = 0;
    let mut cover = NonZeroU64::new(LEAF_BLOCKS).unwrap_or(NonZeroU64::MIN);
    while blocks.div_ceil(cover.get()) > FANOUT as u64 {
        levels += 1;
        cover = cover.saturating_mul(NonZeroU64::new(FANOUT as u64).unwrap_or(NonZeroU64::MIN));
    }
    (levels, blocks.div_ceil(cover.get()).max(1) as usize)
}

impl<A: NodeAlloc, R: Deref<Target = [AtomicUsize]>> DirtyBitmap<A, R> {
    /// A clean bitmap over `blocks` blocks using `root` (at least
    /// [`shape`]`(blocks).1` zeroed entries) as its root.
    pub(crate) fn new(alloc: A, root: R, blocks: u64) -> Option<Self> {
        let (levels, len) = shape(blocks);
        (root.len() >= len).then_some(DirtyBitmap {
            alloc,
            root,
            root_len: len,
            levels,
            blocks,
            pages: AtomicU64::new(0),
            nodes: AtomicU64::new(0),
            bits: AtomicU64::new(0),
            coarse: AtomicU64::new(0),
        })
    }

    fn top(&self) -> &[AtomicUsize] {
        &self.root[..self.root_len]
    }

    /// Number of blocks covered.
    pub(crate) fn blocks(&self) -> u64 {
        self.blocks
    }

    /// log2 of the blocks covered by one entry at depth `d` (0: root
    /// entries): `LEAF_BLOCKS` and `FANOUT` are powers of two, so the walk
    /// shifts and masks instead of dividing (a division per level was most
    /// of the cost of a `set` on the write path). At most 60 for any `u64`
    /// block count ([`shape`] stops at 64 root entries); clamped below 64.
    fn cover_shift(&self, d: u32) -> u32 {
        const LEAF_SHIFT: u32 = LEAF_BLOCKS.trailing_zeros();
        const FANOUT_SHIFT: u32 = FANOUT.trailing_zeros();
        LEAF_SHIFT
            .saturating_add(FANOUT_SHIFT.saturating_mul(self.levels.saturating_sub(d)))
            .min(63)
    }

    /// Blocks covered by one entry at depth `d` (0: root entries). Never
    /// zero.
    fn cover(&self, d: u32) -> NonZeroU64 {
        NonZeroU64::new(1u64 << self.cover_shift(d)).unwrap_or(NonZeroU64::MAX)
    }

    /// The entry index of block `b` in its node at depth `d`, and the end of
    /// that entry's subtree.
    fn locate(&self, d: u32, b: u64) -> (usize, u64) {
        let shift = self.cover_shift(d);
        let i = b >> shift;
        let idx = if d == 0 { i } else { i & (FANOUT as u64 - 1) };
        (
            idx as usize,
            i.saturating_add(1).saturating_mul(1u64 << shift),
        )
    }

    /// Usage now.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            pages: self.pages.load(Ordering::Relaxed),
            nodes: self.nodes.load(Ordering::Relaxed),
            bits: self.bits.load(Ordering::Relaxed),
            coarse: self.coarse.load(Ordering::Relaxed),
        }
    }

    /// Whether nothing is dirty.
    pub(crate) fn is_clean(&self) -> bool {
        self.next_dirty(0).is_none()
    }

    /// The entries of the node behind `entry` (non-zero, non-coarse).
    fn child<'a>(entry: usize) -> &'a [AtomicUsize; FANOUT] {
        // SAFETY: By the type invariants such an entry points to a live node
        // owned by the bitmap, freed only on drop (which needs `&mut self`).
        unsafe { &(*(entry as *const Node)).words }
    }

    /// Gets or creates the child at `slot`; `Err(())` if the subtree is (or
    /// just became) coarse.
    fn descend<'a>(
        &'a self,
        slot: &AtomicUsize,
        leaf: bool,
    ) -> Result<&'a [AtomicUsize; FANOUT], ()> {
        let mut e = slot.load(Ordering::Acquire);
        if e == 0 {
            let new = match self.alloc.alloc() {
                Some(n) => n.as_ptr() as usize,
                None => COARSE,
            };
            match slot.compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    e = new;
                    if new == COARSE {
                        self.coarse.fetch_add(1, Ordering::Relaxed);
                    } else if leaf {
                        self.pages.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.nodes.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(winner) => {
                    if new != COARSE {
                        // SAFETY: Allocated just above and never published.
                        unsafe { self.alloc.free(NonNull::new_unchecked(new as *mut Node)) };
                    }
                    e = winner;
                }
            }
        }
        if e == COARSE {
            Err(())
        } else {
            Ok(Self::child(e))
        }
    }

    /// Marks blocks `[start, start + count)` dirty (clamped to the bitmap).
    /// Never fails: without memory, a whole subtree becomes dirty.
    pub(crate) fn set(&self, start: u64, count: u64) {
        let end = start.saturating_add(count).min(self.blocks);
        let mut b = start;
        while b < end {
            b = self.set_in(self.top(), 0, b, end);
        }
    }

    /// Sets bits from `b` within the subtree of `nodes` at depth `d`;
    /// returns where it stopped (the end of the subtree or `end`).
    fn set_in(&self, nodes: &[AtomicUsize], d: u32, b: u64, end: u64) -> u64 {
        let (idx, sub_end) = self.locate(d, b);
        let sub_end = sub_end.min(end);
        let Some(slot) = nodes.get(idx) else {
            return end;
        };
        match self.descend(slot, d == self.levels) {
            Err(()) => sub_end,
            Ok(child) if d == self.levels => {
                self.set_leaf(child, b, sub_end);
                sub_end
            }
            Ok(child) => {
                let mut x = b;
                while x < sub_end {
                    x = self.set_in(child, d + 1, x, sub_end);
                }
                sub_end
            }
        }
    }

    fn set_leaf(&self, words: &[AtomicUsize; FANOUT], b: u64, end: u64) {
        for (w, mask) in word_masks(b, end) {
            // A degraded array sets the same bits over and over: a word
            // already holding them is only read, so steady writes to dirty
            // blocks share the leaf's cache line instead of bouncing it, and
            // never touch the shared count. A caller that fenced before this
            // `set` (`Array::record_missed_write`) sees a concurrent clear
            // in this load as it would in the `fetch_or`.
            if words[w].load(Ordering::Relaxed) as u64 & mask == mask {
                continue;
            }
            let old = words[w].fetch_or(mask as usize, Ordering::AcqRel) as u64;
            let new = (!old & mask).count_ones();
            if new != 0 {
                self.bits.fetch_add(u64::from(new), Ordering::Relaxed);
            }
        }
    }

    /// Whether block `b` is dirty.
    pub(crate) fn is_dirty(&self, b: u64) -> bool {
        b < self.blocks && self.next_dirty(b) == Some(b)
    }

    /// The first dirty block at or after `from`.
    pub(crate) fn next_dirty(&self, from: u64) -> Option<u64> {
        let mut b = from;
        while b < self.blocks {
            match self.probe(self.top(), 0, b) {
                Probe::Dirty => return Some(b),
                Probe::CleanUntil(next) => b = next,
            }
        }
        None
    }

    /// The first clean block at or after `from` (`blocks` if none).
    pub(crate) fn next_clean(&self, from: u64) -> u64 {
        let mut b = from;
        while b < self.blocks {
            match self.probe_clean(self.top(), 0, b) {
                None => return b,
                Some(next) => b = next,
            }
        }
        self.blocks
    }

    /// Dirty at `b`, or clean up to some later block.
    fn probe(&self, nodes: &[AtomicUsize], d: u32, b: u64) -> Probe {
        let (idx, sub_end) = self.locate(d, b);
        let e = nodes.get(idx).map_or(0, |s| s.load(Ordering::Acquire));
        match e {
            0 => Probe::CleanUntil(sub_end),
            COARSE => Probe::Dirty,
            _ if d == self.levels => {
                let words = Self::child(e);
                let bit = b % LEAF_BLOCKS;
                let (mut w, off) = ((bit / 64) as usize, bit % 64);
                let first = (words[w].load(Ordering::Acquire) as u64) >> off;
                if first != 0 {
                    let at = b + u64::from(first.trailing_zeros());
                    return if at == b {
                        Probe::Dirty
                    } else {
                        Probe::CleanUntil(at)
                    };
                }
                let leaf_base = b - bit;
                w += 1;
                while w < FANOUT {
                    let v = words[w].load(Ordering::Acquire) as u64;
                    if v != 0 {
                        return Probe::CleanUntil(
                            leaf_base + w as u64 * 64 + u64::from(v.trailing_zeros()),
                        );
                    }
                    w += 1;
                }
                Probe::CleanUntil(sub_end)
            }
            _ => self.probe(Self::child(e), d + 1, b),
        }
    }

    /// `None` if `b` is clean, else the next block where a clean one may be.
    fn probe_clean(&self, nodes: &[AtomicUsize], d: u32, b: u64) -> Option<u64> {
        let (idx, sub_end) = self.locate(d, b);
        let e = nodes.get(idx).map_or(0, |s| s.load(Ordering::Acquire));
        match e {
            0 => None,
            COARSE => Some(sub_end),
            _ if d == self.levels => {
                let words = Self::child(e);
                let bit = b % LEAF_BLOCKS;
                let (mut w, off) = ((bit / 64) as usize, bit % 64);
                let first = !(words[w].load(Ordering::Acquire) as u64) >> off;
                if first != 0 {
                    let at = b + u64::from(first.trailing_zeros());
                    return if at == b { None } else { Some(at) };
                }
                let leaf_base = b - bit;
                w += 1;
                while w < FANOUT {
                    let v = !(words[w].load(Ordering::Acquire) as u64);
                    if v != 0 {
                        return Some(leaf_base + w as u64 * 64 + u64::from(v.trailing_zeros()));
                    }
                    w += 1;
                }
                Some(sub_end)
            }
            _ => self.probe_clean(Self::child(e), d + 1, b),
        }
    }

    /// The dirty run starting at the first dirty block at or after `from`,
    /// at most `max` blocks long and not crossing a multiple of `align`
    /// blocks (the interlock region): `(start, len)`.
    pub(crate) fn next_run(&self, from: u64, max: u64, align: u64) -> Option<(u64, u64)> {
        let start = self.next_dirty(from)?;
        let align = NonZeroU64::new(align).unwrap_or(NonZeroU64::MIN);
        let limit = (start / align + 1)
            .saturating_mul(align.get())
            .min(start.saturating_add(max))
            .min(self.blocks);
        let end = self.next_clean(start).min(limit);
        Some((start, end - start))
    }

    /// Marks blocks `[start, start + count)` clean after they were copied to
    /// the member. A coarse subtree is cleared once the range covers it
    /// entirely (the resync copies coarse ranges whole, in order).
    ///
    /// Returns the blocks `(start, len)` it may have cleared: the range,
    /// widened to the coarse subtrees it cleared whole (a bit set there
    /// since the copy, which the coarse entry absorbed, is gone too: a
    /// caller that finds a write missed the member meanwhile sets this
    /// extent again).
    ///
    /// The caller guarantees no concurrent `set` in the range (the region
    /// interlock holds it), or sets the returned extent again when one may
    /// have run.
    pub(crate) fn clear(&self, start: u64, count: u64) -> (u64, u64) {
        let end = start.saturating_add(count).min(self.blocks);
        let mut extent = (start, end);
        self.clear_in(self.top(), 0, start, end, &mut extent);
        (extent.0, extent.1.saturating_sub(extent.0))
    }

    fn clear_in(
        &self,
        nodes: &[AtomicUsize],
        d: u32,
        start: u64,
        end: u64,
        extent: &mut (u64, u64),
    ) {
        let mut b = start;
        while b < end {
            let (idx, sub_end) = self.locate(d, b);
            let Some(slot) = nodes.get(idx) else {
                return;
            };
            let e = slot.load(Ordering::Acquire);
            let stop = sub_end.min(end);
            if e == COARSE {
                // Cleared when the copy reached the end of the subtree (or of
                // the bitmap, for the last one).
                if stop == sub_end.min(self.blocks)
                    && slot
                        .compare_exchange(COARSE, 0, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    self.coarse.fetch_sub(1, Ordering::Relaxed);
                    let sub_start = sub_end.saturating_sub(self.cover(d).get());
                    extent.0 = extent.0.min(sub_start);
                    extent.1 = extent.1.max(stop);
                }
            } else if e != 0 && d == self.levels {
                let words = Self::child(e);
                for (w, mask) in word_masks(b, stop) {
                    let old = words[w].fetch_and(!mask as usize, Ordering::AcqRel) as u64;
                    self.bits
                        .fetch_sub(u64::from((old & mask).count_ones()), Ordering::Relaxed);
                }
            } else if e != 0 {
                self.clear_in(Self::child(e), d + 1, b, stop, extent);
            }
            b = stop;
        }
    }

    /// Marks everything dirty (a full resync) without allocating; frees
    /// every node.
    ///
    /// # Safety
    ///
    /// Nothing else uses the bitmap until this returns: no `set`, `clear`
    /// or walk (`next_run`, `is_dirty`, ...) runs concurrently, so no other
    /// thread can hold a reference into a node being freed.
    pub(crate) unsafe fn set_all(&self) {
        self.replace_all(COARSE);
        self.coarse.store(self.root_len as u64, Ordering::Relaxed);
    }

    /// Marks everything clean and frees all memory but the root (the member
    /// is in sync: a clean bitmap costs nothing).
    ///
    /// # Safety
    ///
    /// As for [`DirtyBitmap::set_all`]: nothing else uses the bitmap until
    /// this returns.
    pub(crate) unsafe fn reset(&self) {
        self.replace_all(0);
        self.coarse.store(0, Ordering::Relaxed);
    }

    /// Only from `set_all`/`reset` (exclusive by their callers' contract).
    fn replace_all(&self, value: usize) {
        for slot in self.top() {
            let old = slot.swap(value, Ordering::AcqRel);
            if old != 0 && old != COARSE {
                self.free_subtree(old, 0);
            }
        }
        self.pages.store(0, Ordering::Relaxed);
        self.nodes.store(0, Ordering::Relaxed);
        self.bits.store(0, Ordering::Relaxed);
    }

    /// Whether the whole bitmap went coarse at the root (full resync).
    pub(crate) fn all_coarse(&self) -> bool {
        self.top()
            .iter()
            .all(|s| s.load(Ordering::Acquire) == COARSE)
    }

    fn free_subtree(&self, e: usize, d: u32) {
        if d < self.levels {
            for c in Self::child(e) {
                let ce = c.load(Ordering::Acquire);
                if ce != 0 && ce != COARSE {
                    self.free_subtree(ce, d + 1);
                }
            }
        }
        // SAFETY: `e` is a node of this bitmap that nothing references any
        // more (its parent entry was replaced or the bitmap is dropped).
        unsafe { self.alloc.free(NonNull::new_unchecked(e as *mut Node)) };
    }

    /// Bytes of memory held (root excluded).
    pub(crate) fn bytes_held(&self) -> u64 {
        let s = self.stats();
        (s.pages + s.nodes) * core::mem::size_of::<Node>() as u64
    }

    /// Bytes of the root, held while the array exists.
    pub(crate) fn root_bytes(&self) -> u64 {
        (self.root_len * core::mem::size_of::<AtomicUsize>()) as u64
    }
}

/// The words of a leaf that blocks `[b, end)` (within one leaf) touch, with
/// the mask of their bits in each.
fn word_masks(b: u64, end: u64) -> impl Iterator<Item = (usize, u64)> {
    let mut x = b;
    core::iter::from_fn(move || {
        if x >= end {
            return None;
        }
        let bit = x % LEAF_BLOCKS;
        let (w, off) = ((bit / 64) as usize, bit % 64);
        let n = (64 - off).min(end - x);
        let mask = if n == 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << off
        };
        x += n;
        Some((w, mask))
    })
}

enum Probe {
    Dirty,
    CleanUntil(u64),
}

impl<A: NodeAlloc, R: Deref<Target = [AtomicUsize]>> Drop for DirtyBitmap<A, R> {
    fn drop(&mut self) {
        for slot in self.top() {
            let e = slot.swap(0, Ordering::AcqRel);
            if e != 0 && e != COARSE {
                self.free_subtree(e, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{alloc_zeroed, dealloc, Layout};
    use std::cell::Cell;
    use std::collections::BTreeSet;
    use std::vec::Vec;

    /// A test allocator that can be told to fail.
    #[derive(Default)]
    struct TestAlloc {
        fail_after: Cell<Option<u64>>,
        live: Cell<i64>,
    }

    impl NodeAlloc for &TestAlloc {
        fn alloc(&self) -> Option<NonNull<Node>> {
            if let Some(n) = self.fail_after.get() {
                if n == 0 {
                    return None;
                }
                self.fail_after.set(Some(n - 1));
            }
            self.live.set(self.live.get() + 1);
            // SAFETY: Node has a non-zero size.
            NonNull::new(unsafe { alloc_zeroed(Layout::new::<Node>()) }.cast())
        }
        unsafe fn free(&self, node: NonNull<Node>) {
            self.live.set(self.live.get() - 1);
            // SAFETY: Allocated above with the same layout.
            unsafe { dealloc(node.as_ptr().cast(), Layout::new::<Node>()) };
        }
    }

    fn root(n: usize) -> Vec<AtomicUsize> {
        (0..n).map(|_| AtomicUsize::new(0)).collect()
    }

    #[test]
    fn shape_of_arrays() {
        assert_eq!(shape(1), (0, 1));
        assert_eq!(shape(LEAF_BLOCKS * 64), (0, 64));
        assert_eq!(shape(LEAF_BLOCKS * 64 + 1), (1, 2));
        // 1 PiB at 4 KiB blocks: 4 root entries, 32 bytes while clean.
        assert_eq!(shape(1u64 << 38), (4, 4));
        assert!(shape(u64::MAX).1 <= 64);
    }

    #[test]
    fn shifts_walk_as_divisions_would() {
        // `locate` shifts and masks: the same entries and subtree ends as
        // dividing by the cover, at every depth, for arrays of every shape.
        let a = TestAlloc::default();
        for blocks in [
            1,
            LEAF_BLOCKS * 64 + 1,
            1u64 << 38,
            (1u64 << 52) + 3,
            u64::MAX,
        ] {
            let (levels, len) = shape(blocks);
            let bm = DirtyBitmap::new(&a, root(len), blocks).unwrap();
            let mut b = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..2000 {
                b = b
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let x = b % blocks;
                for d in 0..=levels {
                    let cover = LEAF_BLOCKS.saturating_mul(64u64.saturating_pow(levels - d));
                    let i = x / cover;
                    let idx = if d == 0 { i } else { i % 64 };
                    let end = i.saturating_add(1).saturating_mul(cover);
                    assert_eq!(
                        bm.locate(d, x),
                        (idx as usize, end),
                        "blocks {blocks} d {d} b {x}"
                    );
                    assert_eq!(bm.cover(d).get(), cover);
                }
            }
        }
    }

    #[test]
    fn clean_costs_nothing_and_pages_on_demand() {
        let a = TestAlloc::default();
        let r = root(4);
        let bm = DirtyBitmap::new(&a, r, 1u64 << 38).unwrap();
        assert!(bm.is_clean());
        assert_eq!(a.live.get(), 0);
        bm.set(5, 3);
        bm.set((1u64 << 37) + 7, 1);
        let s = bm.stats();
        assert_eq!((s.pages, s.bits, s.coarse), (2, 4, 0));
        // Two paths of 4 interior nodes below the root.
        assert_eq!(s.nodes, 8);
        assert_eq!(bm.next_dirty(0), Some(5));
        assert_eq!(bm.next_dirty(8), Some((1u64 << 37) + 7));
        assert_eq!(bm.next_run(0, 100, 1 << 20), Some((5, 3)));
        bm.clear(5, 3);
        assert_eq!(bm.next_dirty(0), Some((1u64 << 37) + 7));
        assert_eq!(bm.stats().bits, 1);
        drop(bm);
        assert_eq!(a.live.get(), 0);
    }

    #[test]
    fn scattered_writes_cost_under_a_page_each() {
        // The benchmark's memory case: K random blocks over 1 PiB, each in
        // its own 128 MiB, against a dense bitmap's 4 KiB page there.
        let a = TestAlloc::default();
        let blocks = 1u64 << 38;
        let bm = DirtyBitmap::new(&a, root(shape(blocks).1), blocks).unwrap();
        assert_eq!(bm.root_bytes(), 32);
        let mut rng = Rng(7);
        for _ in 0..1000 {
            bm.set(rng.next() % blocks, 1);
        }
        let s = bm.stats();
        assert_eq!((s.pages, s.bits), (1000, 1000));
        assert!(bm.bytes_held() < 1000 * 2048, "{} bytes", bm.bytes_held());
    }

    #[test]
    fn out_of_memory_goes_coarse_never_loses_a_write() {
        let a = TestAlloc::default();
        a.fail_after.set(Some(0));
        let r = root(shape(LEAF_BLOCKS * 4).1);
        let bm = DirtyBitmap::new(&a, r, LEAF_BLOCKS * 4).unwrap();
        bm.set(LEAF_BLOCKS + 10, 2);
        assert_eq!(bm.stats().coarse, 1);
        // The whole leaf range is dirty now.
        assert_eq!(bm.next_dirty(0), Some(LEAF_BLOCKS));
        assert_eq!(bm.next_clean(LEAF_BLOCKS), 2 * LEAF_BLOCKS);
        // Clearing part of it keeps it coarse; clearing all of it cleans it.
        bm.clear(LEAF_BLOCKS, 100);
        assert!(bm.is_dirty(LEAF_BLOCKS + 10));
        bm.clear(LEAF_BLOCKS, LEAF_BLOCKS);
        assert!(bm.is_clean());
        assert_eq!(bm.stats().coarse, 0);
    }

    #[test]
    fn clearing_a_coarse_subtree_reports_the_whole_subtree() {
        let a = TestAlloc::default();
        a.fail_after.set(Some(0));
        let r = root(shape(LEAF_BLOCKS * 4).1);
        let bm = DirtyBitmap::new(&a, r, LEAF_BLOCKS * 4).unwrap();
        bm.set(LEAF_BLOCKS + 10, 2);
        // The walk copies the coarse leaf in order: the pieces before the
        // last clear nothing and report only themselves.
        assert_eq!(bm.clear(LEAF_BLOCKS, 100), (LEAF_BLOCKS, 100));
        assert!(bm.is_dirty(LEAF_BLOCKS + 10));
        // The last piece clears the whole subtree, bits set meanwhile
        // included: its extent says so.
        assert_eq!(
            bm.clear(2 * LEAF_BLOCKS - 100, 100),
            (LEAF_BLOCKS, LEAF_BLOCKS)
        );
        assert!(bm.is_clean());
        // Fine leaves clear exactly the range.
        a.fail_after.set(None);
        bm.set(10, 5);
        assert_eq!(bm.clear(10, 5), (10, 5));
        assert!(bm.is_clean());
    }

    #[test]
    fn runs_respect_alignment_and_max() {
        let a = TestAlloc::default();
        let r = root(shape(10_000).1);
        let bm = DirtyBitmap::new(&a, r, 10_000).unwrap();
        bm.set(250, 100);
        assert_eq!(bm.next_run(0, 1000, 256), Some((250, 6)));
        assert_eq!(bm.next_run(256, 1000, 256), Some((256, 94)));
        assert_eq!(bm.next_run(256, 10, 256), Some((256, 10)));
        bm.set(9_990, 100);
        assert_eq!(bm.next_run(9_000, 1000, 256), Some((9_990, 10)));
        // SAFETY: The test owns the bitmap; nothing else uses it.
        unsafe { bm.set_all() };
        assert!(bm.all_coarse());
        assert_eq!(bm.stats().coarse, 3, "one per root entry");
        assert_eq!(bm.next_run(0, 1000, 256), Some((0, 256)));
        bm.clear(0, 10_000);
        assert!(bm.is_clean());
        bm.set(5000, 10);
        assert_eq!(bm.stats().pages, 1);
        // SAFETY: As above.
        unsafe { bm.reset() };
        assert!(bm.is_clean());
        assert_eq!(a.live.get(), 0, "reset frees every node");
    }

    /// A small xorshift generator: deterministic property tests without crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn matches_a_model_with_allocation_failures() {
        for seed in 1..40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let blocks = 1 + rng.next() % (LEAF_BLOCKS * 1100);
            let a = TestAlloc::default();
            if seed % 3 == 0 {
                a.fail_after.set(Some(rng.next() % 6));
            }
            let r = root(shape(blocks).1);
            let bm = DirtyBitmap::new(&a, r, blocks).unwrap();
            let mut model = BTreeSet::new();
            for _ in 0..200 {
                let start = rng.next() % blocks;
                let len = 1 + rng.next() % 300;
                if rng.next().is_multiple_of(4) {
                    // Clear only ranges the model knows are set exactly
                    // (coarse subtrees may keep more dirty: a superset).
                    bm.clear(start, len);
                    for b in start..(start + len).min(blocks) {
                        model.remove(&b);
                    }
                } else {
                    bm.set(start, len);
                    for b in start..(start + len).min(blocks) {
                        model.insert(b);
                    }
                }
                // Every block the model holds dirty is dirty (never lost).
                for &b in model.iter().take(50) {
                    assert!(bm.is_dirty(b), "seed {seed}: block {b} lost");
                }
            }
            // Walking runs visits every dirty block of the model.
            let mut walked = 0u64;
            let mut b = 0;
            while let Some((s, n)) = bm.next_run(b, 4096, 2048) {
                assert!(n > 0);
                walked += n;
                b = s + n;
            }
            assert!(walked >= model.len() as u64, "seed {seed}");
            if a.fail_after.get().is_none() {
                assert_eq!(walked, model.len() as u64, "seed {seed}: exact without OOM");
                assert_eq!(bm.stats().bits, model.len() as u64);
            }
            drop(bm);
            assert_eq!(a.live.get(), 0, "seed {seed}: leak");
        }
    }

    /// A thread-safe allocator for the concurrency test; fails every
    /// `fail_every`-th allocation (0: never).
    #[derive(Default)]
    struct SyncAlloc {
        live: std::sync::atomic::AtomicI64,
        calls: std::sync::atomic::AtomicU64,
        fail_every: u64,
    }

    impl NodeAlloc for &SyncAlloc {
        fn alloc(&self) -> Option<NonNull<Node>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if self.fail_every != 0 && n.is_multiple_of(self.fail_every) {
                return None;
            }
            self.live.fetch_add(1, Ordering::SeqCst);
            // SAFETY: Node has a non-zero size.
            NonNull::new(unsafe { alloc_zeroed(Layout::new::<Node>()) }.cast())
        }
        unsafe fn free(&self, node: NonNull<Node>) {
            self.live.fetch_sub(1, Ordering::SeqCst);
            // SAFETY: Allocated above with the same layout.
            unsafe { dealloc(node.as_ptr().cast(), Layout::new::<Node>()) };
        }
    }

    /// The data path sets bits from many CPUs at once, without a lock: four
    /// threads set overlapping random ranges (racing to create the same
    /// nodes and to set bits of the same words). Nothing may be lost, no
    /// bit may appear that nobody set, the statistics must be exact, and a
    /// node that lost the race to be published must be freed. With failing
    /// allocations, every set block must still read dirty (coarse) and
    /// nothing may leak.
    #[test]
    fn concurrent_sets_lose_nothing_and_leak_nothing() {
        for fail_every in [0u64, 7] {
            let a = SyncAlloc {
                fail_every,
                ..SyncAlloc::default()
            };
            let blocks = 1u64 << 22;
            let bm = DirtyBitmap::new(&a, root(shape(blocks).1), blocks).unwrap();
            let ranges: Vec<Vec<(u64, u64)>> = std::thread::scope(|sc| {
                let hs: Vec<_> = (0..4u64)
                    .map(|t| {
                        let bm = &bm;
                        sc.spawn(move || {
                            let mut x = 0x9E37_79B9u64 + t;
                            let mut mine = Vec::new();
                            for _ in 0..4000 {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                // Dense near the start (shared words and
                                // leaves), sparse elsewhere (new nodes).
                                let start = if x & 1 == 0 {
                                    (x >> 8) % 8192
                                } else {
                                    (x >> 8) % blocks
                                };
                                let len = 1 + (x >> 40) % 200;
                                bm.set(start, len);
                                mine.push((start, len.min(blocks - start)));
                            }
                            mine
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut model = BTreeSet::new();
            for &(s, n) in ranges.iter().flatten() {
                model.extend(s..s + n);
            }
            for &b in model.iter() {
                assert!(bm.is_dirty(b), "fail_every {fail_every}: block {b} lost");
            }
            let mut walked = 0u64;
            let mut b = 0;
            while let Some((s, n)) = bm.next_run(b, u64::MAX, u64::MAX) {
                walked += n;
                b = s + n;
            }
            if fail_every == 0 {
                assert_eq!(walked, model.len() as u64, "a bit nobody set");
                assert_eq!(bm.stats().bits, model.len() as u64, "bits counted exactly");
                let st = bm.stats();
                assert_eq!(
                    (st.pages + st.nodes) as i64,
                    a.live.load(Ordering::SeqCst),
                    "a node that lost the publish race was not freed"
                );
            } else {
                assert!(walked >= model.len() as u64);
                assert!(bm.stats().coarse > 0, "the failing allocator was exercised");
            }
            drop(bm);
            assert_eq!(
                a.live.load(Ordering::SeqCst),
                0,
                "fail_every {fail_every}: leak"
            );
        }
    }
}
