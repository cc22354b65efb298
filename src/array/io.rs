// SPDX-License-Identifier: GPL-2.0

//! The data path: every write cloned to every live member, every read
//! served by one member, read errors retried on another member and repaired.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use kernel::{
    bindings,
    prelude::*,
    sync::{Arc, ArcBorrow},
    workqueue::{self, WorkItem},
};

use super::Array;
use crate::logic::abi::MAX_MIRRORS;
use crate::logic::balance::{self, Mirror};
use crate::logic::interlock::{bucket_of, REGION_SECTORS};
use crate::logic::slots::FailError;
use crate::sys::bio::{Bio, BioSet, OpClass, OptionalOp, PageBuf, Status};

/// The context in front of every clone (the bio set's front pad).
///
/// The first clone of a master bio is its *primary*: its context holds the
/// master's state and the primary clone is kept (not put) until the master
/// completes. Other clones point to it.
///
/// # Invariants
///
/// `array` points to a live array inside an `Arc` (arrays live until their
/// I/O is drained); `primary` points to the primary context of the same
/// master, which stays allocated until `remaining` drops to zero; `master`
/// is the upper bio, owned by the primary context until then.
#[repr(C)]
pub(crate) struct IoCtx {
    array: *const Array,
    master: *mut bindings::bio,
    primary: *mut IoCtx,
    clone: *mut bindings::bio,
    remaining: AtomicU32,
    uptodate: AtomicBool,
    /// Slots whose member answered `BLK_STS_NOTSUPP` to an optional
    /// operation (primary context).
    notsupp: AtomicU32,
    slot: u32,
    tried: u32,
    /// The interlock bucket the master write holds, or [`NO_BUCKET`].
    bucket: u32,
    next: *mut IoCtx,
}

/// `IoCtx::bucket` of bios that hold no interlock bucket (reads, flushes).
const NO_BUCKET: u32 = u32::MAX;

// Bios follow the front pad: it must keep them aligned.
const _: () = assert!(core::mem::size_of::<IoCtx>() % core::mem::align_of::<bindings::bio>() == 0);

impl IoCtx {
    /// Initialises the context in front of `clone`.
    fn init(
        ctx: NonNull<IoCtx>,
        array: &Array,
        master: *mut bindings::bio,
        primary: *mut IoCtx,
        clone: &Bio,
        slot: u32,
    ) {
        let primary = if primary.is_null() {
            ctx.as_ptr()
        } else {
            primary
        };
        // SAFETY: `ctx` is the uninitialised, exclusively owned front pad of
        // a clone fr1 just allocated.
        unsafe {
            ctx.as_ptr().write(IoCtx {
                array: core::ptr::from_ref(array),
                master,
                primary,
                clone: clone.as_ptr(),
                remaining: AtomicU32::new(1),
                uptodate: AtomicBool::new(false),
                notsupp: AtomicU32::new(0),
                slot,
                tried: 1 << slot,
                bucket: NO_BUCKET,
                next: core::ptr::null_mut(),
            })
        };
    }
}

impl Array {
    /// Entry point of every bio sent to the array.
    pub(crate) fn submit_bio(&self, bio: Bio) {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        if !self.running.load(Ordering::SeqCst) {
            bio.end(Status::IOERR);
            self.end_master();
            return;
        }
        let Some(bio) = bio.split_to_limits() else {
            self.end_master();
            return;
        };
        // The block layer splits reads, writes and write-zeroes at
        // `chunk_sectors` (one interlock region), but discards only by their
        // granularity: split those at the region boundary here, so that every
        // bio lies in one region and its interlock bucket covers it.
        let bio = match bio.optional_op() {
            Some(_) => {
                let sector = bio.sector();
                let end = (sector / REGION_SECTORS + 1) * REGION_SECTORS;
                match bio.split_front(end - sector, &self.splits) {
                    Ok(front) | Err(front) => front,
                }
            }
            None => bio,
        };
        match bio.op_class() {
            OpClass::Read => self.read(bio),
            OpClass::Write => self.write(bio),
            OpClass::Unsupported => {
                bio.end(Status::NOTSUPP);
                self.end_master();
            }
        }
    }

    /// A master bio has completed (or was refused).
    fn end_master(&self) {
        if self.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.drained.complete_all();
        }
    }

    fn write(&self, master: Bio) {
        self.enter_write();
        // Bios never cross a region (chunk_sectors), so one bucket covers it.
        let bucket = if master.sectors() > 0 {
            let b = bucket_of(master.sector());
            self.interlock_enter_write(b);
            b as u32
        } else {
            NO_BUCKET
        };
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS);
        let mut clones: [Option<Bio>; MAX_MIRRORS as usize] =
            [const { None }; MAX_MIRRORS as usize];
        let mut primary: *mut IoCtx = core::ptr::null_mut();
        let mut n = 0;
        let mut missed = 0u32;
        for slot in 0..raid_disks {
            let Some(member) = self.slot_get(slot, true) else {
                missed |= 1 << slot;
                continue;
            };
            let (mut clone, ctx) = self.bioset.clone_for(&master, member);
            IoCtx::init(ctx, self, master.as_ptr(), primary, &clone, slot);
            if primary.is_null() {
                primary = ctx.as_ptr();
            }
            clone.set_end_io(write_end_io, ctx.as_ptr().cast());
            clones[slot as usize] = Some(clone);
            n += 1;
        }
        if missed != 0 && master.sectors() > 0 {
            self.record_missed_write(missed, master.sector(), master.sectors());
        }
        if primary.is_null() {
            master.end(Status::IOERR);
            self.end_write(bucket);
            self.end_master();
            return;
        }
        // SAFETY: `primary` was initialised above and nothing completes
        // before the clones are submitted below.
        unsafe {
            (*primary).remaining.store(n, Ordering::Release);
            (*primary).bucket = bucket;
        }
        // The primary context owns the master from here on.
        let _ = master.into_raw();
        for clone in clones.into_iter().flatten() {
            clone.submit();
        }
    }

    /// A write finished: releases its interlock bucket and the freeze count.
    fn end_write(&self, bucket: u32) {
        if bucket != NO_BUCKET {
            self.interlock_exit_write(bucket as usize);
        }
        self.exit_write();
    }

    pub(crate) fn mirrors(&self) -> [Mirror; MAX_MIRRORS as usize] {
        let st = self.state();
        let mut m = [Mirror::default(); MAX_MIRRORS as usize];
        for (i, (mirror, slot)) in m.iter_mut().zip(self.slot.iter()).enumerate() {
            let i = i as u32;
            *mirror = Mirror {
                readable: st.readable(i),
                write_mostly: st.write_mostly(i),
                pending: slot.inflight.load(Ordering::Relaxed),
                next_seq_sector: slot.next_seq.load(Ordering::Relaxed),
            };
        }
        m
    }

    fn read(&self, master: Bio) {
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS) as usize;
        let (sector, sectors) = (master.sector(), master.sectors());
        let first_only = self.resync_pending.load(Ordering::Relaxed);
        let mut exclude = 0u32;
        loop {
            let mirrors = self.mirrors();
            let Some(slot) = balance::choose(&mirrors[..raid_disks], sector, exclude, first_only)
            else {
                master.end(Status::IOERR);
                self.end_master();
                return;
            };
            let slot = slot as u32;
            let Some(member) = self.slot_get(slot, false) else {
                exclude |= 1 << slot;
                continue;
            };
            let (mut clone, ctx) = self.bioset.clone_for(&master, member);
            IoCtx::init(
                ctx,
                self,
                master.as_ptr(),
                core::ptr::null_mut(),
                &clone,
                slot,
            );
            self.slot[slot as usize]
                .next_seq
                .store(sector + sectors, Ordering::Relaxed);
            clone.set_end_io(read_end_io, ctx.as_ptr().cast());
            let _ = master.into_raw();
            clone.submit();
            return;
        }
    }

    // ---- read error repair (process context) ----

    /// Pushes `ctx` on the lock-free stack `list` (any context).
    fn push_ctx(list: &AtomicPtr<IoCtx>, ctx: *mut IoCtx) {
        let mut head = list.load(Ordering::Acquire);
        loop {
            // SAFETY: `ctx` is a live context owned by the caller's bio.
            unsafe { (*ctx).next = head };
            match list.compare_exchange(head, ctx, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
    }

    /// This array as an `Arc` (for work items).
    fn arc(&self) -> Arc<Array> {
        // SAFETY: Arrays are always allocated inside an `Arc` (see
        // `Array::create`), and this one is alive while it has I/O.
        unsafe { ArcBorrow::from_raw(core::ptr::from_ref(self)) }.into()
    }

    /// Queues a failed read for the worker (any context).
    fn queue_retry(&self, ctx: *mut IoCtx) {
        Self::push_ctx(&self.retry, ctx);
        // Already queued is fine: the worker takes the whole stack.
        let _ = workqueue::system().enqueue::<Arc<Array>, RETRY_WORK>(self.arc());
    }

    /// Queues a write-zeroes that some members did and others do not
    /// support for the zero-fill worker (any context). The write stays in
    /// flight (its interlock bucket and freeze count held) until then.
    fn queue_zero_fill(&self, ctx: *mut IoCtx) {
        Self::push_ctx(&self.zero_fill, ctx);
        // Its own work item: the retry worker may be waiting (freeze) for
        // this very write to finish.
        let _ = workqueue::system().enqueue::<Arc<Array>, ZERO_FILL_WORK>(self.arc());
    }

    /// Takes the whole stack `list` and hands each context to `f`.
    fn drain_ctxs(&self, list: &AtomicPtr<IoCtx>, f: impl Fn(&Self, *mut IoCtx)) {
        let mut ctx = list.swap(core::ptr::null_mut(), Ordering::AcqRel);
        while !ctx.is_null() {
            // SAFETY: Contexts on the stack are live and owned by it (failed
            // reads, or write-zeroes primaries) until handed to `f`.
            let next = unsafe { (*ctx).next };
            f(self, ctx);
            ctx = next;
        }
    }

    /// Writes zero pages over the range of a write-zeroes bio on the members
    /// that answered it with NOTSUPP (the others zeroed it), then completes
    /// the bio. A member that cannot take the zeroes fails (a real write
    /// error) with the range recorded as missed.
    fn zero_fill_one(&self, ctx: *mut IoCtx) {
        // SAFETY: By the `IoCtx` invariants; this worker owns the primary
        // context, its master and its clone since the last completion.
        let (master, pclone, bucket, slots) = unsafe {
            (
                (*ctx).master,
                (*ctx).clone,
                (*ctx).bucket,
                (*ctx).notsupp.load(Ordering::Acquire),
            )
        };
        // SAFETY: As above.
        let master = unsafe { Bio::from_raw(master) }.expect("zero-fill context holds its master");
        let (sector, sectors) = (master.sector(), master.sectors());
        let zeroes = PageBuf::zeroed(REGION_BYTES).ok();
        let mut status = Status::OK;
        for slot in (0..MAX_MIRRORS).filter(|s| slots & (1 << s) != 0) {
            let Some(m) = self.slot_ref(slot, true) else {
                continue;
            };
            let mut done = 0;
            let ok = loop {
                let Some(z) = zeroes.as_ref() else {
                    break false;
                };
                if done >= sectors {
                    break true;
                }
                let n = (sectors - done).min(z.sectors());
                if !self.bioset.sync_io(m.as_ref(), true, sector + done, n, z) {
                    break false;
                }
                done += n;
            };
            drop(m);
            if !ok {
                match self.fail_slot(slot, "zeroing a range it cannot write-zero failed") {
                    Ok(()) | Err(FailError::AlreadyFaulty) => {
                        self.record_missed_write(1 << slot, sector, sectors)
                    }
                    // The last in-sync copy did not get the zeroes.
                    Err(FailError::LastInSync) | Err(FailError::Empty) => status = Status::IOERR,
                }
            }
        }
        master.end(status);
        // SAFETY: The primary clone was kept for its context; it is done.
        if let Some(c) = unsafe { Bio::from_raw(pclone) } {
            c.put();
        }
        self.end_write(bucket);
        self.end_master();
    }

    /// Serves a failed read from another mirror and rewrites the good data
    /// over the failed range (md's `fix_read_error`, with the same freeze of
    /// writes so a newer write can never be overwritten by older data).
    fn fix_read(&self, ctx: *mut IoCtx) {
        // SAFETY: By the `IoCtx` invariants; the worker owns this context.
        let (master, failed_slot, mut tried, clone) =
            unsafe { ((*ctx).master, (*ctx).slot, (*ctx).tried, (*ctx).clone) };
        // SAFETY: The master is owned by this context until it is ended below.
        let master = unsafe { Bio::from_raw(master) }.expect("read context holds its master");
        let (sector, sectors) = (master.sector(), master.sectors());
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS) as usize;
        let failed_name = self.slot_name(failed_slot);
        pr_warn!(
            "{}: read error on {} at sector {} ({} sectors), redirecting to another mirror\n",
            self.name_str(),
            failed_name.as_str(),
            sector,
            sectors
        );
        // Writes are frozen *before* the good copy is read (md's
        // handle_read_error -> freeze_array -> fix_read_error): a write that
        // landed between the read and the rewrite would otherwise be
        // overwritten on the failed member by the older data.
        let frozen = self.freeze();
        let status = loop {
            let Some(slot) = balance::choose(&self.mirrors()[..raid_disks], sector, tried, false)
            else {
                pr_err!(
                    "{}: unrecoverable read error at sector {} ({} sectors)\n",
                    self.name_str(),
                    sector,
                    sectors
                );
                break Status::IOERR;
            };
            let slot = slot as u32;
            tried |= 1 << slot;
            let Some(member) = self.slot_get(slot, false) else {
                continue;
            };
            let (retry, rctx) = self.bioset.clone_for(&master, member);
            IoCtx::init(
                rctx,
                self,
                master.as_ptr(),
                core::ptr::null_mut(),
                &retry,
                slot,
            );
            let ok = retry.submit_wait();
            self.slot_put(slot);
            if ok {
                self.rewrite(&frozen, failed_slot, &master, sector, sectors);
                break Status::OK;
            }
        };
        drop(frozen);
        master.end(status);
        // SAFETY: The failed clone was kept for its context; it is done.
        if let Some(c) = unsafe { Bio::from_raw(clone) } {
            c.put();
        }
        self.end_master();
    }

    /// Writes the data just read into `master` over `slot`'s failed range,
    /// with writes frozen since before the read.
    fn rewrite(&self, _frozen: &Frozen<'_>, slot: u32, master: &Bio, sector: u64, sectors: u64) {
        if let Some(member) = self.slot_get(slot, true) {
            let (mut w, wctx) = self.bioset.clone_for(master, member);
            IoCtx::init(wctx, self, master.as_ptr(), core::ptr::null_mut(), &w, slot);
            w.set_op_write();
            let ok = w.submit_wait();
            self.slot_put(slot);
            let name = self.slot_name(slot);
            if ok {
                self.slot[slot as usize]
                    .corrected
                    .fetch_add(1, Ordering::Relaxed);
                pr_info!(
                    "{}: read error corrected ({} sectors at {} on {})\n",
                    self.name_str(),
                    sectors,
                    sector,
                    name.as_str()
                );
            } else {
                match self.fail_slot(slot, "rewrite after read error failed") {
                    Ok(()) | Err(FailError::AlreadyFaulty) => {
                        self.record_missed_write(1 << slot, sector, sectors)
                    }
                    Err(_) => {}
                }
            }
        }
    }

    // ---- the write freeze (md's freeze_array) ----
    //
    // Read-error repair, member changes and freeing a member's bitmap need
    // a moment in which no user write is in flight: a repair must not
    // overwrite a newer write with older data, a member must not join while
    // a write that missed it has yet to record that in its bitmap, and a
    // bitmap's nodes may only be freed while nothing records into it.
    //
    // Protocol (counters sequentially consistent):
    //
    // - A write (submit_bio, process context) increments `writes_inflight`,
    //   then reads `frozen`: zero, it goes on; else it withdraws its count
    //   (waking the freezer) and sleeps on `freeze_cv` until `frozen` is
    //   zero, then retries. The count is dropped by the write's last clone
    //   completion (interrupt context), after the bitmap was updated for
    //   every member it missed.
    // - A freezer (process context only: the retry worker, the resync thread,
    //   the control path under `config`) takes `freezer`, sets `frozen`, and
    //   sleeps until `writes_inflight` is zero. While its [`Frozen`] guard
    //   lives no write is in flight and none starts; dropping it clears
    //   `frozen` and wakes the writers.
    // - Freezers exclude each other (`freezer`): a guard holder is the only
    //   one that may record into or free a bitmap outside the data path.
    //
    // Order: `config` -> `freezer` -> `freeze_lock`; a freezer never waits
    // for `config` or the region interlock while frozen, and nothing that a
    // write in flight waits for (its clones, the interlock held by a resync
    // copy) needs the freeze, so the drain always ends. Reads are not
    // affected.

    fn enter_write(&self) {
        loop {
            self.writes_inflight.fetch_add(1, Ordering::SeqCst);
            if self.frozen.load(Ordering::SeqCst) == 0 {
                return;
            }
            self.exit_write();
            let mut g = self.freeze_lock.lock();
            while self.frozen.load(Ordering::SeqCst) != 0 {
                self.freeze_cv.wait(&mut g);
            }
        }
    }

    fn exit_write(&self) {
        if self.writes_inflight.fetch_sub(1, Ordering::SeqCst) == 1
            && self.frozen.load(Ordering::SeqCst) != 0
        {
            let _g = self.freeze_lock.lock();
            self.freeze_cv.notify_all();
        }
    }

    /// Blocks new writes and waits for those in flight (process context;
    /// see the protocol above). Writes resume when the guard is dropped.
    pub(crate) fn freeze(&self) -> Frozen<'_> {
        let serial = self.freezer.lock();
        self.frozen.store(1, Ordering::SeqCst);
        let mut g = self.freeze_lock.lock();
        while self.writes_inflight.load(Ordering::SeqCst) != 0 {
            self.freeze_cv.wait(&mut g);
        }
        drop(g);
        Frozen {
            array: self,
            _serial: serial,
        }
    }

    // ---- the region interlock (see logic::interlock) ----

    fn interlock_enter_write(&self, b: usize) {
        while !self.interlock.try_enter_write(b) {
            let mut g = self.interlock_lock.lock();
            while !self.interlock.write_may_retry(b) {
                self.interlock_cv.wait(&mut g);
            }
        }
    }

    fn interlock_exit_write(&self, b: usize) {
        if self.interlock.exit_write(b) {
            let _g = self.interlock_lock.lock();
            self.interlock_cv.notify_all();
        }
    }

    /// The resync holds the region of `sector` once this returns.
    pub(crate) fn interlock_raise(&self, sector: u64) -> usize {
        let b = bucket_of(sector);
        self.interlock.raise_barrier(b);
        let mut g = self.interlock_lock.lock();
        while !self.interlock.resync_may_copy(b) {
            self.interlock_cv.wait(&mut g);
        }
        b
    }

    /// Releases a region taken by [`Array::interlock_raise`].
    pub(crate) fn interlock_lower(&self, b: usize) {
        let _g = self.interlock_lock.lock();
        self.interlock.lower_barrier(b);
        self.interlock_cv.notify_all();
    }
}

/// The work item ID of read-error repair.
pub(crate) const RETRY_WORK: u64 = 0;
/// The work item ID of write-zeroes fill-ins.
pub(crate) const ZERO_FILL_WORK: u64 = 1;
/// Zero-fill buffer: one interlock region.
const REGION_BYTES: usize = crate::logic::interlock::REGION_SECTORS as usize * 512;

impl WorkItem<RETRY_WORK> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        this.drain_ctxs(&this.retry, Array::fix_read);
    }
}

impl WorkItem<ZERO_FILL_WORK> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        this.drain_ctxs(&this.zero_fill, Array::zero_fill_one);
    }
}

/// The context of a clone of ours.
///
/// # Safety
///
/// `bio` is a clone allocated by `Array::bioset` with an initialised context.
unsafe fn ctx_of<'a>(bio: *mut bindings::bio) -> &'a IoCtx {
    // SAFETY: By the safety requirements.
    unsafe { BioSet::<IoCtx>::ctx_of(bio).as_ref() }
}

/// Completion of a write clone.
///
/// # Safety
///
/// Called by the block layer for a clone set up by `Array::write`.
unsafe extern "C" fn write_end_io(bio: *mut bindings::bio) {
    // SAFETY: This callback is only set on write clones of fr1's bio set.
    let ctx = unsafe { ctx_of(bio) };
    // SAFETY: By the `IoCtx` invariants.
    let (array, primary) = unsafe { (&*ctx.array, &*ctx.primary) };
    // SAFETY: The completed clone is ours.
    let clone = unsafe { Bio::from_raw(bio) }.expect("bio is non-null");
    let slot = ctx.slot;
    let op = clone.optional_op();
    if clone.status().is_ok() {
        if array.state().readable(slot) {
            primary.uptodate.store(true, Ordering::Release);
        }
    } else if clone.status() == Status::NOTSUPP && op.is_some() {
        // The member lacks the operation: it has not failed, and nothing it
        // holds changed, so neither its state nor the bitmap is touched.
        primary.notsupp.fetch_or(1 << slot, Ordering::AcqRel);
    } else {
        // SAFETY: The master is live until the primary completes it.
        let master = unsafe { &*primary.master };
        let (sector, sectors) = (
            master.bi_iter.bi_sector,
            u64::from(master.bi_iter.bi_size >> 9),
        );
        match array.fail_slot(slot, "write error") {
            Ok(()) | Err(FailError::AlreadyFaulty) => {
                array.record_missed_write(1 << slot, sector, sectors)
            }
            // The last copy: keep it, the error goes up (unless another
            // in-sync member wrote the data).
            Err(FailError::LastInSync) | Err(FailError::Empty) => {}
        }
    }
    array.slot_put(slot);
    let is_primary = core::ptr::eq(ctx, primary);
    if is_primary {
        // Kept until the master completes: it holds the master's context.
        let _ = clone.into_raw();
    } else {
        clone.put();
    }
    if primary.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
        // Members without the operation: the array stops advertising it
        // (before the completion: the caller's fallback checks it). If an
        // in-sync member zeroed the range, the others get zero pages from
        // the worker and the bio succeeds; otherwise it ends NOTSUPP and the
        // caller falls back (write-zeroes: zero pages every member takes)
        // or gives up (discard, secure erase: nothing was promised).
        let notsupp = primary.notsupp.load(Ordering::Acquire) != 0;
        let uptodate = primary.uptodate.load(Ordering::Acquire);
        if notsupp {
            // SAFETY: The master is live until it is completed below or by
            // the zero-fill worker.
            if let Some(m) = unsafe { Bio::from_raw(primary.master) } {
                m.disable_op_on_queue();
                let _ = m.into_raw();
            }
            if uptodate && op == Some(OptionalOp::WriteZeroes) {
                array.queue_zero_fill(core::ptr::from_ref(primary).cast_mut());
                return;
            }
        }
        let status = if notsupp {
            Status::NOTSUPP
        } else if primary.uptodate.load(Ordering::Acquire) {
            Status::OK
        } else {
            Status::IOERR
        };
        let (master, pclone, bucket) = (primary.master, primary.clone, primary.bucket);
        // SAFETY: The last completion owns the master and the primary clone.
        unsafe {
            Bio::from_raw(master).expect("master").end(status);
            Bio::from_raw(pclone).expect("primary clone").put();
        }
        array.end_write(bucket);
        array.end_master();
    }
}

/// Completion of a read clone.
///
/// # Safety
///
/// Called by the block layer for a clone set up by `Array::read`.
unsafe extern "C" fn read_end_io(bio: *mut bindings::bio) {
    // SAFETY: This callback is only set on read clones of fr1's bio set.
    let ctx = unsafe { ctx_of(bio) };
    // SAFETY: By the `IoCtx` invariants.
    let array = unsafe { &*ctx.array };
    // SAFETY: The completed clone is ours.
    let clone = unsafe { Bio::from_raw(bio) }.expect("bio is non-null");
    array.slot_put(ctx.slot);
    // SAFETY: The master is owned by this (primary) context.
    let master = unsafe { Bio::from_raw(ctx.master) }.expect("master");
    if clone.status().is_ok() {
        master.end(Status::OK);
        clone.put();
        array.end_master();
    } else if master.is_readahead() {
        master.end(clone.status());
        clone.put();
        array.end_master();
    } else {
        let _ = master.into_raw();
        let _ = clone.into_raw();
        array.queue_retry(core::ptr::from_ref(ctx).cast_mut());
    }
}

/// Writes are frozen while this lives (see the protocol at
/// [`Array::freeze`]).
pub(crate) struct Frozen<'a> {
    array: &'a Array,
    _serial: kernel::sync::MutexGuard<'a, ()>,
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _g = self.array.freeze_lock.lock();
        self.array.frozen.store(0, Ordering::SeqCst);
        self.array.freeze_cv.notify_all();
    }
}
