// SPDX-License-Identifier: GPL-2.0

//! Bios and bio sets: the block layer's unit of I/O.
//!
//! C headers: [`include/linux/bio.h`](srctree/include/linux/bio.h),
//! [`include/linux/blk_types.h`](srctree/include/linux/blk_types.h)

use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use kernel::{
    bindings,
    error::to_result,
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::Opaque,
    uaccess::UserSliceWriter,
    workqueue::{Work, WorkItem},
};

use super::ffi;
use super::member::{Member, MemberRef, MemberSlot};

/// Completion status of a bio (`blk_status_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Status(pub(crate) u8);

impl Status {
    /// Success.
    pub(crate) const OK: Status = Status(ffi::FR1_BLK_STS_OK);
    /// I/O error.
    pub(crate) const IOERR: Status = Status(ffi::FR1_BLK_STS_IOERR);
    /// Operation not supported.
    pub(crate) const NOTSUPP: Status = Status(ffi::FR1_BLK_STS_NOTSUPP);
    /// A `REQ_NOWAIT` bio would have had to wait (the queue was full).
    pub(crate) const AGAIN: Status = Status(ffi::FR1_BLK_STS_AGAIN);

    /// True for success.
    pub(crate) fn is_ok(self) -> bool {
        self == Status::OK
    }
}

/// What a bio asks for, as fr1 routes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpClass {
    /// Served by one mirror.
    Read,
    /// Mirrored to every live member: writes, flushes, discards, write-zeroes.
    Write,
    /// Anything else (zoned operations, driver-private requests).
    Unsupported,
}

/// Operations a member may lack: a member that answers one of them with
/// `BLK_STS_NOTSUPP` has not failed (md and dm keep such a member; the
/// array stops advertising the operation instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OptionalOp {
    /// `REQ_OP_DISCARD`.
    Discard,
    /// `REQ_OP_SECURE_ERASE`.
    SecureErase,
    /// `REQ_OP_WRITE_ZEROES`.
    WriteZeroes,
}

/// The I/O accounting of one upper bio ([`Bio::start_acct`]): its start
/// (jiffies), or none if it is not accounted. Ended exactly once, by
/// [`Bio::end_acct`], or the disk's in-flight count stays up.
#[derive(Clone, Copy)]
pub(crate) struct IoAcct(Option<kernel::ffi::c_ulong>);

impl IoAcct {
    /// Not accounted (behind copies, fr1's own I/O).
    pub(crate) const NONE: IoAcct = IoAcct(None);
}

/// A bio whose completion fr1 is responsible for.
///
/// # Invariants
///
/// `self.0` points to a live bio that fr1 received through `submit_bio` or
/// allocated from a [`BioSet`], and fr1 has not yet ended or put it.
pub(crate) struct Bio(NonNull<bindings::bio>);

// SAFETY: A bio may be completed or put from any context and thread.
unsafe impl Send for Bio {}

impl Bio {
    /// Takes over a bio.
    ///
    /// # Safety
    ///
    /// `ptr` points to a live bio whose completion the caller hands to fr1.
    pub(super) unsafe fn from_raw(ptr: *mut bindings::bio) -> Option<Bio> {
        NonNull::new(ptr).map(Bio)
    }

    /// The raw pointer, still owned by `self`.
    pub(super) fn as_ptr(&self) -> *mut bindings::bio {
        self.0.as_ptr()
    }

    /// Gives up ownership without completing the bio.
    pub(super) fn into_raw(self) -> *mut bindings::bio {
        self.0.as_ptr()
    }

    fn raw(&self) -> &bindings::bio {
        // SAFETY: By the type invariants the bio is live; fr1 only reads
        // fields the block layer does not change while fr1 owns the bio.
        unsafe { self.0.as_ref() }
    }

    /// First sector.
    pub(crate) fn sector(&self) -> u64 {
        self.raw().bi_iter.bi_sector
    }

    /// Sectors per logical block of the bio's device.
    pub(crate) fn block_sectors(&self) -> u64 {
        let p = self.as_ptr();
        // SAFETY: The bio is live and fr1's; its device is open while it is.
        let lbs = unsafe {
            (*(*(*(*p).bi_bdev).bd_disk).queue)
                .limits
                .logical_block_size
        };
        u64::from(lbs / 512).max(1)
    }

    /// Length in sectors.
    pub(crate) fn sectors(&self) -> u64 {
        u64::from(self.raw().bi_iter.bi_size >> 9)
    }

    /// Segments of a bio that owns its pages (`bi_vcnt`; 0 for a clone).
    pub(crate) fn segments(&self) -> u32 {
        u32::from(self.raw().bi_vcnt)
    }

    /// Adds request flags (`REQ_*`) to a bio fr1 has not submitted yet.
    pub(crate) fn add_flags(&mut self, flags: u32) {
        // SAFETY: By the type invariants fr1 owns the bio and it is not in
        // flight, so nothing else accesses the field.
        unsafe { (*self.as_ptr()).bi_opf |= flags };
    }

    /// The operation and flags (`bi_opf`).
    pub(crate) fn opf(&self) -> u32 {
        self.raw().bi_opf
    }

    /// How fr1 routes the bio.
    pub(crate) fn op_class(&self) -> OpClass {
        match self.opf() & ffi::FR1_REQ_OP_MASK {
            bindings::req_op_REQ_OP_READ => OpClass::Read,
            bindings::req_op_REQ_OP_WRITE
            | bindings::req_op_REQ_OP_FLUSH
            | bindings::req_op_REQ_OP_DISCARD
            | bindings::req_op_REQ_OP_SECURE_ERASE
            | bindings::req_op_REQ_OP_WRITE_ZEROES => OpClass::Write,
            _ => OpClass::Unsupported,
        }
    }

    /// The optional operation this bio asks for, if it is one.
    pub(crate) fn optional_op(&self) -> Option<OptionalOp> {
        match self.opf() & ffi::FR1_REQ_OP_MASK {
            bindings::req_op_REQ_OP_DISCARD => Some(OptionalOp::Discard),
            bindings::req_op_REQ_OP_SECURE_ERASE => Some(OptionalOp::SecureErase),
            bindings::req_op_REQ_OP_WRITE_ZEROES => Some(OptionalOp::WriteZeroes),
            _ => None,
        }
    }

    /// Stops advertising this bio's optional operation on the queue it was
    /// submitted to, as dm does on `BLK_STS_NOTSUPP` (`blk_queue_disable_*`):
    /// later bios of the kind are refused before they reach fr1, and
    /// `blkdev_issue_zeroout` falls back to writing zero pages. Any context.
    pub(crate) fn disable_op_on_queue(&self) {
        let Some(op) = self.optional_op() else {
            return;
        };
        // The limits are single words the block layer reads without a lock;
        // dm's completion stores to them the same way.
        // SAFETY: By the type invariants the bio is live; its `bi_bdev`'s
        // disk and queue outlive the bio's I/O.
        unsafe {
            let q = (*(*(*self.as_ptr()).bi_bdev).bd_disk).queue;
            let lim = &mut (*q).limits;
            match op {
                OptionalOp::Discard => lim.max_discard_sectors = 0,
                OptionalOp::SecureErase => lim.max_secure_erase_sectors = 0,
                OptionalOp::WriteZeroes => {
                    lim.max_write_zeroes_sectors = 0;
                    lim.max_wzeroes_unmap_sectors = 0;
                }
            }
        }
    }

    /// A write that carries data (not a flush, discard or write-zeroes).
    pub(crate) fn is_data_write(&self) -> bool {
        self.opf() & ffi::FR1_REQ_OP_MASK == bindings::req_op_REQ_OP_WRITE && self.sectors() > 0
    }

    /// The bio is the remainder of a split whose front is still in flight
    /// (`BIO_CHAIN`): its completion waits for the front's, and carries the
    /// front's error.
    pub(crate) fn is_chained(&self) -> bool {
        // SAFETY: By the type invariants the bio is live.
        unsafe { ffi::fr1_bio_chained(self.as_ptr()) }
    }

    /// A readahead: failing it is cheaper than retrying it.
    pub(crate) fn is_readahead(&self) -> bool {
        self.opf() & ffi::FR1_REQ_RAHEAD != 0
    }

    /// Sets the completion callback and its data (for `sys/`).
    pub(super) fn set_end_io(
        &mut self,
        end_io: unsafe extern "C" fn(*mut bindings::bio),
        private: *mut c_void,
    ) {
        // SAFETY: By the type invariants fr1 owns the bio and it is not in
        // flight, so nothing else accesses these fields.
        unsafe {
            (*self.as_ptr()).bi_end_io = Some(end_io);
            (*self.as_ptr()).bi_private = private;
        }
    }

    /// Turns the bio into a write of the same range (to rewrite a member with
    /// data read from another one).
    pub(crate) fn set_op_write(&mut self) {
        // SAFETY: As in `set_end_io`.
        unsafe { (*self.as_ptr()).bi_opf = bindings::req_op_REQ_OP_WRITE };
    }

    /// Splits the bio to the queue limits of its device, as every bio-based
    /// driver must. `None` if the block layer already ended it.
    pub(crate) fn split_to_limits(self) -> Option<Bio> {
        let p = self.into_raw();
        // SAFETY: `p` is a live bio submitted to fr1's queue. The call returns
        // the bio to handle now (the remainder is resubmitted by the block
        // layer) or NULL after ending the bio itself.
        NonNull::new(unsafe { bindings::bio_split_to_limits(p) }).map(Bio)
    }

    /// Splits off the first `sectors` sectors, which are returned; the rest
    /// is chained to them and resubmitted to the bio's device (it comes back
    /// through `submit_bio`), as `bio_submit_split` does. The split is
    /// allocated from `set` (GFP_NOIO, mempool-backed: it may sleep, it does
    /// not fail for a valid length). Process context, from `submit_bio`.
    /// `Err` (the bio given back) if `sectors` is not inside the bio.
    pub(crate) fn split_front<T>(
        self,
        sectors: u64,
        set: &BioSet<T>,
    ) -> core::result::Result<Bio, Bio> {
        if sectors == 0 || sectors >= self.sectors() {
            return Err(self);
        }
        let Ok(n) = c_int::try_from(sectors) else {
            return Err(self);
        };
        let p = self.into_raw();
        // SAFETY: `p` is a live bio fr1 owns and `n` lies strictly inside it;
        // `set` is an initialised bio set.
        let split = unsafe { bindings::bio_split(p, n, ffi::FR1_GFP_NOIO, set.inner.get()) };
        match kernel::error::from_err_ptr(split)
            .ok()
            .and_then(NonNull::new)
        {
            Some(front) => {
                // SAFETY: `front` is the new bio for the first `n` sectors
                // and `p` now holds the rest: the rest completes only after
                // the front (`bio_chain`) and goes back to the block layer.
                unsafe {
                    bindings::bio_chain(front.as_ptr(), p);
                    bindings::submit_bio_noacct(p);
                }
                Ok(Bio(front))
            }
            None => Err(Bio(NonNull::new(p).expect("bio is non-null"))),
        }
    }

    /// Starts the I/O accounting of an upper bio on the array's disk
    /// (`/sys/block/mdN/stat`, iostat; md's `md_account_bio`, without its
    /// clone): none if the queue's `iostats` is off or the bio carries no
    /// data (an empty flush) or no device (fr1's own copies). End it with
    /// [`Bio::end_acct`] just before the bio ends, with the bio's device
    /// and range as submitted, once.
    pub(crate) fn start_acct(&self) -> IoAcct {
        let p = self.as_ptr();
        // SAFETY: The bio is live and fr1's (type invariants); a device it
        // has (the array's disk or a partition of it, for an upper bio) is
        // live while the bio is in flight, with its disk and queue.
        unsafe {
            let bdev = (*p).bi_bdev;
            if bdev.is_null() {
                return IoAcct(None);
            }
            let q = (*(*bdev).bd_disk).queue;
            if (*p).bi_iter.bi_size == 0 || (*q).limits.features & ffi::FR1_BLK_FEAT_IO_STAT == 0 {
                return IoAcct(None);
            }
            IoAcct(Some(bindings::bio_start_io_acct(p)))
        }
    }

    /// Ends the accounting `acct` started on this bio (any context): its
    /// device, operation and size must be those it was started with (for a
    /// master sent itself, after the restore: [`Hook`]).
    pub(crate) fn end_acct(&self, acct: IoAcct) {
        let Some(start) = acct.0 else {
            return;
        };
        let p = self.as_ptr();
        // SAFETY: The bio is live and fr1's; its device is the disk the
        // accounting was started on.
        unsafe { bindings::bio_end_io_acct_remapped(p, start, (*p).bi_bdev) };
    }

    /// Completes the bio with `status`.
    pub(crate) fn end(self, status: Status) {
        let p = self.into_raw();
        // SAFETY: By the type invariants fr1 owns the bio's completion.
        unsafe {
            (*p).bi_status = status.0;
            bindings::bio_endio(p);
        }
    }

    /// Sends the bio to its device.
    pub(crate) fn submit(self) {
        // SAFETY: The bio is live and fully set up; ownership passes to the
        // block layer, which will call its `bi_end_io`.
        unsafe { bindings::submit_bio_noacct(self.into_raw()) };
    }

    /// Sends the clone and waits for it (process context only), then puts
    /// it. True on success.
    pub(crate) fn submit_wait(self) -> bool {
        let p = self.into_raw();
        // SAFETY: `p` is a fully set-up clone fr1 owns; `submit_bio_wait`
        // sets its own completion and returns after it ran.
        let ret = unsafe { bindings::submit_bio_wait(p) };
        // SAFETY: The clone is finished and fr1 holds its only reference.
        unsafe { bindings::bio_put(p) };
        ret == 0
    }
}

/// A bio set whose bios carry `T` in front of them (`front_pad`): the
/// per-clone context of the I/O path.
///
/// # Invariants
///
/// `inner` is initialised by `bioset_init` with a front pad of
/// `size_of::<T>()` bytes and exited exactly once, on drop. It is the first
/// field (`repr(C)`): a clone's `bi_pool` is the address of its `BioSet`.
#[pin_data(PinnedDrop)]
#[repr(C)]
pub(crate) struct BioSet<T> {
    #[pin]
    inner: Opaque<bindings::bio_set>,
    _ctx: core::marker::PhantomData<T>,
}

// SAFETY: bio sets are mempools, safe to use from any thread.
unsafe impl<T> Send for BioSet<T> {}
// SAFETY: As above; all operations on them are internally synchronised.
unsafe impl<T> Sync for BioSet<T> {}

/// The number of clones the mempool keeps in reserve (md: BIO_POOL_SIZE).
const POOL_SIZE: u32 = 2;

impl<T> BioSet<T> {
    /// Creates a bio set whose clones are preceded by a `T`.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        // Bios follow the front pad: it must keep them aligned.
        const { assert!(core::mem::size_of::<T>() % core::mem::align_of::<bindings::bio>() == 0) };
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(|p: *mut bindings::bio_set| {
                // SAFETY: `p` is valid, zero-initialisable storage for a
                // bio_set that is pinned from now on.
                unsafe { core::ptr::write_bytes(p, 0, 1) };
                // SAFETY: As above. `T`'s size is a small compile-time constant.
                to_result(unsafe {
                    bindings::bioset_init(
                        p,
                        POOL_SIZE,
                        core::mem::size_of::<T>() as u32,
                        ffi::FR1_BIOSET_NEED_BVECS as c_int,
                    )
                })
            }),
            _ctx: core::marker::PhantomData,
        })
    }

    /// Clones `src` for `member`, sharing its data pages, to be sent with
    /// [`Bio::submit_wait`] (process context; the caller keeps the member
    /// open until then). Never fails: the allocation (GFP_NOIO) may sleep,
    /// backed by the set's mempool.
    pub(crate) fn clone_sync(&self, src: &Bio, member: &Member) -> Bio {
        self.clone_for(src, member).0
    }

    /// As [`BioSet::clone_sync`], for the `sectors` of `src` that start
    /// `offset` sectors into it (`bio_trim`): a piece of the master, with
    /// its pages (both within `src`'s range). `None` if the block layer
    /// refused the trim (its checks warn and leave the bio whole).
    pub(crate) fn clone_piece(
        &self,
        src: &Bio,
        member: &Member,
        offset: u64,
        sectors: u64,
    ) -> Option<Bio> {
        debug_assert!(offset + sectors <= src.sectors());
        let clone = self.clone_sync(src, member);
        // SAFETY: The clone is ours and not in flight; the range lies in it.
        unsafe { bindings::bio_trim(clone.as_ptr(), offset, sectors) };
        if clone.sector() == src.sector() + offset && clone.sectors() == sectors {
            return Some(clone);
        }
        // SAFETY: The clone was never submitted; fr1 holds its only reference.
        unsafe { bindings::bio_put(clone.into_raw()) };
        None
    }

    /// As [`BioSet::clone_sync`]; also returns the clone's (uninitialised)
    /// front pad.
    fn clone_for(&self, src: &Bio, member: &Member) -> (Bio, NonNull<T>) {
        // SAFETY: `src` is live, the member's bdev is open, and `inner` is an
        // initialised bio set. With GFP_NOIO (which includes
        // __GFP_DIRECT_RECLAIM) the mempool-backed allocation cannot fail.
        let clone = unsafe {
            bindings::bio_alloc_clone(
                member.bdev(),
                src.as_ptr(),
                ffi::FR1_GFP_NOIO,
                self.inner.get(),
            )
        };
        let clone =
            NonNull::new(clone).expect("GFP_NOIO bio_alloc_clone from a mempool cannot fail");
        // SAFETY: bios of this set are allocated `size_of::<T>()` bytes after
        // the start of their front pad, which holds room for a `T`.
        let ctx = unsafe {
            clone
                .as_ptr()
                .cast::<u8>()
                .sub(core::mem::size_of::<T>())
                .cast::<T>()
        };
        // SAFETY: `ctx` is derived from a non-null bio pointer minus its pad.
        (Bio(clone), unsafe { NonNull::new_unchecked(ctx) })
    }

    /// The context in front of a clone allocated by this set.
    ///
    /// # Safety
    ///
    /// `bio` was allocated by [`BioSet::clone_for`] of a `BioSet<T>`.
    unsafe fn ctx_of(bio: *mut bindings::bio) -> NonNull<T> {
        // SAFETY: By the safety requirements the front pad holds a `T`.
        unsafe {
            NonNull::new_unchecked(bio.cast::<u8>().sub(core::mem::size_of::<T>()).cast::<T>())
        }
    }
}

#[pinned_drop]
impl<T> PinnedDrop for BioSet<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariants the set was initialised and is
        // exited only here; no clone of it is in flight any more (the array
        // drains its I/O before it is dropped).
        unsafe { bindings::bioset_exit(self.inner.get()) };
    }
}

impl<T> BioSet<T> {
    /// A copy of the data of the write `src` in pages of its own (md's
    /// `alloc_behind_master_bio`): a bio to fan out in place of `src` to legs
    /// that finish behind it, so the caller may reuse its pages as soon as
    /// `src` ends. Ending the copy ([`Bio::end`], e.g. by its
    /// [`Finished`] group) frees it and its pages. Allocations fail fast
    /// and never recurse into I/O: `None` under memory pressure (the caller
    /// then does without a copy). Process context.
    pub(crate) fn copy_of(&self, src: &Bio) -> Option<Bio> {
        let bytes = (src.sectors() * 512) as usize;
        let nr = bytes.div_ceil(PAGE);
        if nr == 0 || nr > BIO_MAX_VECS {
            return None;
        }
        // SAFETY: `inner` is an initialised bio set with bvec pools; a NULL
        // bdev is allowed (the clones name the members); `nr` <=
        // BIO_MAX_VECS. Without direct reclaim the allocation may fail.
        let bio = unsafe {
            bindings::bio_alloc_bioset(
                core::ptr::null_mut(),
                nr as u16,
                src.opf(),
                ffi::FR1_GFP_NOWAIT,
                self.inner.get(),
            )
        };
        let bio = NonNull::new(bio)?;
        // SAFETY: `bio` is fresh and ours. Each page added is owned by the
        // bio from then on (`copy_end_io` frees them with `bio_free_pages`,
        // as does the failure path here); `nr` vecs were reserved.
        let complete = unsafe {
            (*bio.as_ptr()).bi_iter.bi_sector = src.sector();
            (*bio.as_ptr()).bi_end_io = Some(copy_end_io);
            let mut left = bytes;
            while left > 0 {
                let page = bindings::alloc_pages(ffi::FR1_GFP_BEHIND, 0);
                if page.is_null() {
                    break;
                }
                let n = left.min(PAGE);
                if bindings::bio_add_page(bio.as_ptr(), page, n as u32, 0) != n as c_int {
                    bindings::__free_pages(page, 0);
                    break;
                }
                left -= n;
            }
            left == 0
        };
        let copy = Bio(bio);
        if !complete {
            copy.end(Status::IOERR);
            return None;
        }
        // SAFETY: Both bios are live; `copy` has room for all of `src`'s
        // data, and `src` is a write whose pages fr1 may read until it ends.
        unsafe { bindings::bio_copy_data(copy.as_ptr(), src.as_ptr()) };
        Some(copy)
    }
}

impl<T> BioSet<T> {
    /// A copy of the first `sectors` of `buf`, as a write of them at
    /// `sector`, in pages of its own (a resync copy that goes behind): as
    /// [`BioSet::copy_of`], `None` under memory pressure. `member` only
    /// names a device for the staging bio, which is never sent. Nothing
    /// here waits for memory: the set's bios may all be behind copies in
    /// flight to a slow leg.
    pub(crate) fn copy_of_buf(
        &self,
        member: &Member,
        buf: &PageBuf,
        sector: u64,
        sectors: u64,
    ) -> Option<Bio> {
        let staging = self.page_bio_gfp(member, true, sector, sectors, buf, ffi::FR1_GFP_NOWAIT)?;
        let copy = self.copy_of(&staging);
        let p = staging.into_raw();
        // SAFETY: The staging bio was never submitted and fr1 holds its only
        // reference; its pages are `buf`'s, which `bio_put` does not free.
        unsafe { bindings::bio_put(p) };
        copy
    }
}

/// End of a behind copy: frees its pages and the bio (any context).
///
/// # Safety
///
/// Set only by [`BioSet::copy_of`] on a bio whose pages it allocated.
unsafe extern "C" fn copy_end_io(bio: *mut bindings::bio) {
    // SAFETY: By the safety requirements the pages are the bio's own and
    // nothing else refers to the bio any more.
    unsafe {
        bindings::bio_free_pages(bio);
        bindings::bio_put(bio);
    }
}

/// Pages for resync copies and identity samples.
pub(crate) struct PageBuf {
    pages: KVec<kernel::page::Page>,
}

/// Bytes per page.
const PAGE: usize = 4096;
/// The most pages one bio carries (the block layer's `BIO_MAX_VECS`).
const BIO_MAX_VECS: usize = 256;

impl PageBuf {
    /// `bytes` (rounded up to pages) of buffer; may sleep.
    pub(crate) fn new(bytes: usize) -> Result<PageBuf> {
        let n = bytes.div_ceil(PAGE);
        let mut pages = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            pages.push(kernel::page::Page::alloc_page(GFP_KERNEL)?, GFP_KERNEL)?;
        }
        Ok(PageBuf { pages })
    }

    /// Capacity in sectors.
    pub(crate) fn sectors(&self) -> u64 {
        (self.pages.len() * PAGE / 512) as u64
    }

    /// Whether the first `bytes` bytes equal those of `other`.
    pub(crate) fn same_as(&self, other: &PageBuf, bytes: usize) -> bool {
        self.same_range(other, 0, bytes)
    }

    /// Whether the `bytes` bytes at offset `start` equal those of `other`
    /// (false if either buffer ends before `start + bytes`). Compares the
    /// mapped pages in place (a check compares every byte of the array:
    /// no copy through a bounce buffer). Neither buffer may be the target
    /// of I/O in flight (the `&` borrows of their owners say so).
    pub(crate) fn same_range(&self, other: &PageBuf, start: usize, bytes: usize) -> bool {
        let Some(end) = start.checked_add(bytes) else {
            return false;
        };
        let mut off = start;
        while off < end {
            let (p, o) = (off / PAGE, off % PAGE);
            let n = (end - off).min(PAGE - o);
            let (Some(pa), Some(pb)) = (self.pages.get(p), other.pages.get(p)) else {
                return false;
            };
            let same = with_mapped(pa, |a| {
                with_mapped(pb, |b| {
                    // SAFETY: Both pointers are the start of a mapped page
                    // and `o + n <= PAGE`; no I/O writes the pages while
                    // the buffers are borrowed (see above), and nothing
                    // else writes them.
                    let (x, y) = unsafe {
                        (
                            core::slice::from_raw_parts(a.add(o), n),
                            core::slice::from_raw_parts(b.add(o), n),
                        )
                    };
                    crate::logic::compare::same_bytes(x, y)
                })
            });
            if !same {
                return false;
            }
            off += n;
        }
        true
    }
}

/// Runs `f` with `page` mapped (`kmap_local_page`): as the page API's own
/// `with_page_mapped`, which is private to it. Nested calls unmap in the
/// reverse order, as `kunmap_local` requires.
fn with_mapped<T>(page: &kernel::page::Page, f: impl FnOnce(*const u8) -> T) -> T {
    // SAFETY: `page` is a valid page (the `Page` type's invariant).
    let addr = unsafe { bindings::kmap_local_page(page.as_ptr()) };
    let res = f(addr.cast::<u8>().cast_const());
    // SAFETY: `addr` was mapped just above, and every mapping made since
    // (by `f`, through this function only) was unmapped before it returned.
    unsafe { bindings::kunmap_local(addr) };
    res
}

impl PageBuf {
    /// Copies the first `bytes` bytes to user memory through `w`, a page at
    /// a time through a bounce page (process context, may fault and sleep).
    /// EFAULT if the user range is not writable.
    pub(crate) fn copy_to_user(&self, w: &mut UserSliceWriter, bytes: usize) -> Result {
        let mut bounce = KVec::from_elem(0u8, PAGE.min(bytes), GFP_KERNEL)?;
        let mut off = 0;
        while off < bytes {
            let n = PAGE.min(bytes - off);
            let page = self.pages.get(off / PAGE).ok_or(EINVAL)?;
            // SAFETY: `bounce` has room for `n` <= PAGE bytes, read from
            // offset 0 of the page: within it.
            unsafe { page.read_raw(bounce.as_mut_ptr(), 0, n)? };
            w.write_slice(&bounce[..n])?;
            off += n;
        }
        Ok(())
    }
}

impl<T> BioSet<T> {
    /// Writes zeroes over `sectors` at `sector` of `member` from the
    /// kernel's shared zero page, synchronously (process context): no
    /// allocation but the bios' (GFP_NOIO, mempool), so it is safe while
    /// writes are counted in flight. True on success.
    pub(crate) fn write_zero_pages(&self, member: &Member, sector: u64, sectors: u64) -> bool {
        let mut at = 0;
        while at < sectors {
            let n = (sectors - at).min((BIO_MAX_VECS * PAGE / 512) as u64);
            let bytes = (n * 512) as usize;
            let nr = bytes.div_ceil(PAGE);
            // SAFETY: The member is open; the set has bvec pools; GFP_NOIO
            // from a mempool cannot fail; `nr` <= BIO_MAX_VECS.
            let bio = unsafe {
                bindings::bio_alloc_bioset(
                    member.bdev(),
                    nr as u16,
                    bindings::req_op_REQ_OP_WRITE,
                    ffi::FR1_GFP_NOIO,
                    self.inner.get(),
                )
            };
            let Some(bio) = NonNull::new(bio) else {
                return false;
            };
            // SAFETY: `bio` is fresh and ours; the zero page is never freed
            // and only read; `nr` vecs were reserved.
            unsafe {
                (*bio.as_ptr()).bi_iter.bi_sector = sector + at;
                let zero = ffi::fr1_zero_page();
                let mut left = bytes;
                while left > 0 {
                    let len = left.min(PAGE);
                    if bindings::bio_add_page(bio.as_ptr(), zero, len as u32, 0) != len as c_int {
                        bindings::bio_put(bio.as_ptr());
                        return false;
                    }
                    left -= len;
                }
            }
            if !Bio(bio).submit_wait() {
                return false;
            }
            at += n;
        }
        true
    }

    /// Reads or writes `sectors` at `sector` of `member` through `buf`,
    /// synchronously (process context). True on success.
    pub(crate) fn sync_io(
        &self,
        member: &Member,
        write: bool,
        sector: u64,
        sectors: u64,
        buf: &PageBuf,
    ) -> bool {
        self.page_bio(member, write, sector, sectors, buf)
            .is_some_and(Bio::submit_wait)
    }

    /// A bio for `sectors` at `sector` of `member`, over the first pages of
    /// `buf`. The caller keeps `buf` and the member open until the bio
    /// finished. `None` if the range does not fit `buf`.
    pub(crate) fn page_bio(
        &self,
        member: &Member,
        write: bool,
        sector: u64,
        sectors: u64,
        buf: &PageBuf,
    ) -> Option<Bio> {
        self.page_bio_gfp(member, write, sector, sectors, buf, ffi::FR1_GFP_NOIO)
    }

    /// [`BioSet::page_bio`] allocating with `gfp` (`FR1_GFP_NOIO`: from the
    /// set's mempool, never fails; `FR1_GFP_NOWAIT`: may fail).
    fn page_bio_gfp(
        &self,
        member: &Member,
        write: bool,
        sector: u64,
        sectors: u64,
        buf: &PageBuf,
        gfp: bindings::gfp_t,
    ) -> Option<Bio> {
        if sectors == 0 || sectors > buf.sectors() {
            return None;
        }
        let bytes = (sectors * 512) as usize;
        let nr = bytes.div_ceil(PAGE);
        if nr > BIO_MAX_VECS {
            return None;
        }
        let op = if write {
            bindings::req_op_REQ_OP_WRITE
        } else {
            bindings::req_op_REQ_OP_READ
        };
        // SAFETY: The member is open; the set has bvec pools (NEED_BVECS);
        // `nr` <= BIO_MAX_VECS; a failed allocation is NULL.
        let bio = unsafe {
            bindings::bio_alloc_bioset(member.bdev(), nr as u16, op, gfp, self.inner.get())
        };
        let bio = NonNull::new(bio)?;
        // SAFETY: `bio` is fresh and ours; each page is live for the I/O
        // (the caller keeps `buf`), and `nr` vecs were reserved.
        unsafe {
            (*bio.as_ptr()).bi_iter.bi_sector = sector;
            let mut left = bytes;
            for p in buf.pages.iter().take(nr) {
                let n = left.min(PAGE);
                if bindings::bio_add_page(bio.as_ptr(), p.as_ptr(), n as u32, 0) != n as c_int {
                    bindings::bio_put(bio.as_ptr());
                    return None;
                }
                left -= n;
            }
        }
        Some(Bio(bio))
    }
}

// ---- fanning a bio out to clones (md's r1bio, without its allocation) ----
//
// Protocol (clone completions): an owner sends one upper ("master") bio as
// clones to one or more members with a [`FanOut`] (process context, from
// `submit_bio` or a worker). The first clone's front pad holds the
// [`Group`]: the master, the state the clones share, and `remaining`, which
// counts the clones in flight plus one for the sender. Each clone holds a
// counted member reference ([`MemberRef`]) for its whole flight.
//
// - A clone's completion (any context, interrupt included) calls
//   [`CloneOwner::clone_done`] with its tag and status, *then* releases its
//   member reference, puts the clone unless it is the first, and decrements
//   `remaining`; unless that made it zero, the decrement is its last access
//   to the group.
// - The sender drops its count when every clone was sent
//   ([`FanOut::finish`]); so the group cannot finish while clones are still
//   being added.
// - Whoever brings `remaining` to zero calls [`CloneOwner::group_done`]
//   with a [`Finished`] that owns the master, the shared state and the first
//   clone: no clone of the group is left in flight, nothing else can reach
//   the group, and the master ends exactly once (by [`Finished::end`], or
//   with an I/O error if a `Finished` is dropped).
//
// Finished groups may wait on a [`FinishedStack`] (lock-free, any context)
// for a worker. The owner drains its I/O before it is dropped, so a clone's
// completion never outlives the owner, its bio set or its member slots.

/// An owner of a bio set whose clones it fans out: what runs when they
/// complete.
///
/// # Safety
///
/// Implementors guarantee that every `Self` lives in an `Arc`; that
/// `BIOSET_OFFSET` is the offset in `Self` of a pinned
/// `BioSet<Pad<Self::Shared>>` field; that a `Self` is dropped only after
/// every clone of that set completed; that `member_slot` returns slots that
/// are part of `Self`, the same one for the same tag; and that it does not
/// override the provided methods.
pub(crate) unsafe trait CloneOwner: Send + Sync + Sized {
    /// What the clones of one master share (read and written through `&`).
    type Shared: Send + Sync;

    /// `core::mem::offset_of!(Self, <the bio set field>)`.
    const BIOSET_OFFSET: usize;

    /// The member slot of `tag`: clones sent with `tag` hold a reference
    /// on it from [`FanOut::send`] until their completion.
    fn member_slot(&self, tag: u32) -> Option<&MemberSlot>;

    /// A clone sent with `tag` finished with `status` (any context).
    fn clone_done(this: ArcBorrow<'_, Self>, group: &Group<Self::Shared>, tag: u32, status: Status);

    /// The last clone of a group finished (any context).
    fn group_done(this: ArcBorrow<'_, Self>, done: Finished<Self::Shared>);

    /// Starts sending `master` to members, with `shared` for its clones.
    fn fan_out(&self, master: Bio, shared: Self::Shared) -> FanOut<'_, Self> {
        FanOut {
            owner: self,
            start: Some((master, shared)),
            group: None,
            nowait: false,
            defer: None,
            sealed: false,
        }
    }

    /// This owner as an `Arc` (for work items queued from the data path).
    fn arc(&self) -> kernel::sync::Arc<Self> {
        // SAFETY: By the trait's safety requirements `self` lives in an
        // `Arc`, which the borrow keeps alive while the new count is taken.
        unsafe { ArcBorrow::from_raw(core::ptr::from_ref(self)) }.into()
    }

    /// The bio set at `BIOSET_OFFSET`.
    fn clone_set(&self) -> &BioSet<Pad<Self::Shared>> {
        // SAFETY: By the trait's safety requirements a live bio set is at
        // that offset of `self`.
        unsafe {
            &*core::ptr::from_ref(self)
                .cast::<u8>()
                .add(Self::BIOSET_OFFSET)
                .cast::<BioSet<Pad<Self::Shared>>>()
        }
    }
}

/// The front pad of a fanned-out clone.
///
/// # Invariants
///
/// For a clone whose `bi_end_io` is [`clone_end_io`]: it holds a reference
/// on the owner's member slot of `tag`, released once, by the completion;
/// `group` points to the group's storage in the first clone's pad,
/// initialised and live until the group finished.
#[repr(C)]
pub(crate) struct Pad<S> {
    group: *const Group<S>,
    tag: u32,
    storage: MaybeUninit<Group<S>>,
}

/// What the clones of one master share: the master itself, the owner's
/// shared state and the count of clones in flight.
pub(crate) struct Group<S> {
    master: Bio,
    /// The first clone, whose pad holds the group; null if the group lives
    /// in a [`Hook`] (the master was sent itself).
    primary: *mut bindings::bio,
    remaining: AtomicU32,
    next: AtomicPtr<Group<S>>,
    shared: S,
}

// SAFETY: The master is only read through `&`; `S` is `Sync`; the other
// fields are atomics or immutable.
unsafe impl<S: Sync> Sync for Group<S> {}

/// A group whose master was sent on to its one member as itself
/// ([`FanOut::send_only`]), with what the send changed in the master.
///
/// Protocol (remapped masters): a master that goes to exactly one member
/// (every read; a write with one writable leg) need not be cloned. The
/// sender saves the master's completion (`bi_end_io`, `bi_private`), device,
/// range (`bi_iter`: the member's partition offset, a split or a driver
/// advancing it change them), operation flags (`bi_opf`: the layers below
/// add their own, such as nvme multipath's `REQ_DRV` or a split's
/// `REQ_NOMERGE`, or drop a flush the member has no cache for) and bio
/// flags (`bi_flags`, as dm-bio-record does: `BIO_REMAPPED` of a partition
/// of the array, trace and accounting marks), points them at the member and at
/// [`remap_end_io`], and submits the master itself. From then until its
/// completion the master belongs to the block layer below: nothing of fr1
/// reads it (the group's owner only sees it in `clone_done` and
/// `group_done`, after the restore). The completion (any context, once:
/// the block layer calls `bi_end_io` after the last chained piece) first
/// restores the saved fields, so that the owner's bookkeeping and the
/// caller's completion see the bio they submitted; then it runs the owner
/// exactly as for a clone, and [`Finished::end`] ends the master through
/// the caller's own completion and frees the hook. A master that is itself
/// a split remainder (`BIO_CHAIN`) is cloned instead: its completion would
/// wait for, and report, its front's. One thing is not put back: the
/// master's cgroup (`bi_blkg`), which the first completion pass put, so a
/// read retried from another leg (`clone_sync` of the master) is charged
/// to the worker's cgroup, not the submitter's. The hook is allocated without
/// blocking (no I/O recursion); when that fails the master is cloned from
/// the mempool-backed bio set, so the send always makes progress.
///
/// # Invariants
///
/// `group` is the first field (`repr(C)`): a group pointer whose `primary`
/// is null is the address of its hook, allocated as a
/// `KBox<MaybeUninit<Hook<S>>>`. `owner` is the group's `CloneOwner`.
#[repr(C)]
struct Hook<S> {
    group: Group<S>,
    tag: u32,
    owner: *const c_void,
    end_io: bindings::bio_end_io_t,
    private: *mut c_void,
    bdev: *mut bindings::block_device,
    iter: bindings::bvec_iter,
    opf: u32,
    flags: u16,
}

impl<S> Group<S> {
    /// The master bio (in flight: read its range and flags only; after a
    /// [`FanOut::send_only`] of the master itself, not at all).
    pub(crate) fn master(&self) -> &Bio {
        &self.master
    }

    /// The owner's shared state.
    pub(crate) fn shared(&self) -> &S {
        &self.shared
    }
}

/// Clones whose submission may block, handed from the data path to a
/// worker that submits them.
///
/// Protocol (deferred submission): each slot (leg) whose clones may be
/// deferred has its own [`Submitter`]: a list and a work item on fr1's leg
/// queue (`sys::work`). A sender (any context that may send a clone)
/// pushes a fully set-up clone with [`Submitter::push`]: a lock-free push on the
/// list (linked through `bi_next`), then it queues the submitter's work
/// (queueing a queued or running work item again is allowed: it runs once
/// more, so a push is never left on the list). The work (process context;
/// one run at a time per submitter, runs of different submitters in
/// parallel: the queue is unbound) takes the whole list at once and
/// submits it in push order; it may sleep in a submission (a full tag set,
/// a blocking driver such as NBD sending on its socket) as long as the
/// device takes: the sender never does, and neither does another leg's
/// submitter (a stalled NBD leg holds up only its own clones). A clone on
/// the list is counted in its group like a submitted one, so its owner's
/// drain waits for it; the list is empty when the owner goes. (A check's
/// reads, `sys::ioring`, are pushed the same way: a read on the list
/// counts as in flight in its ring, whose drop waits for its completion.) A queued
/// work item holds its submitter (an `Arc`), not the owner: it may run
/// after the owner is gone, on an empty list (unload drains the queue).
///
/// # Invariants
///
/// `head` is null or the most recently pushed of a chain of bios linked by
/// `bi_next`, each a fully set-up clone owned by the list.
pub(crate) struct Deferred {
    head: AtomicPtr<bindings::bio>,
}

impl Deferred {
    /// An empty list.
    const fn new() -> Self {
        Deferred {
            head: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Hands `clone` to the worker (any context).
    fn push(&self, clone: Bio) {
        let p = clone.into_raw();
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            // SAFETY: `p` is ours (not yet published); `bi_next` of a bio
            // fr1 owns is free for its own lists.
            unsafe { (*p).bi_next = head };
            match self
                .head
                .compare_exchange_weak(head, p, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Submits every clone on the list, oldest first (the worker, process
    /// context; may sleep in the block layer).
    fn submit_all(&self) {
        let mut p = self.head.swap(core::ptr::null_mut(), Ordering::AcqRel);
        // Reverse the chain: push order.
        let mut fifo: *mut bindings::bio = core::ptr::null_mut();
        while !p.is_null() {
            // SAFETY: By the type invariants every bio of the taken chain is
            // ours; `bi_next` links them.
            let next = unsafe { (*p).bi_next };
            // SAFETY: As above.
            unsafe { (*p).bi_next = fifo };
            fifo = p;
            p = next;
        }
        while !fifo.is_null() {
            // SAFETY: As above; the link is cleared before the block layer,
            // which uses `bi_next` itself, gets the bio.
            let next = unsafe { (*fifo).bi_next };
            // SAFETY: As above.
            unsafe { (*fifo).bi_next = core::ptr::null_mut() };
            // SAFETY: `fifo` is a live bio we own.
            if let Some(bio) = unsafe { Bio::from_raw(fifo) } {
                bio.submit();
            }
            fifo = next;
        }
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        // By the protocol the owner drained its clones first; one left
        // here is leaked rather than submitted for a dead owner.
        if !self.head.get_mut().is_null() {
            pr_warn!("fr1: deferred clones dropped unsubmitted; leaking them\n");
        }
    }
}

/// The deferred-submission worker of one member (see [`Deferred`]'s
/// protocol).
#[pin_data]
pub(crate) struct Submitter {
    list: Deferred,
    #[pin]
    work: Work<Submitter>,
}

kernel::impl_has_work! {
    impl HasWork<Self> for Submitter { self.work }
}

impl WorkItem for Submitter {
    type Pointer = Arc<Submitter>;

    fn run(this: Arc<Submitter>) {
        this.list.submit_all();
    }
}

impl Submitter {
    /// A worker with an empty list.
    pub(crate) fn new() -> Result<Arc<Submitter>> {
        Arc::pin_init(
            pin_init!(Submitter {
                list: Deferred::new(),
                work <- kernel::new_work!("fr1::submitter"),
            }),
            GFP_KERNEL,
        )
    }

    /// Hands `clone` to the worker and queues it (any context).
    pub(crate) fn push(self: &Arc<Self>, clone: Bio) {
        self.list.push(clone);
        // Queued or running already: it runs once more and sees the push.
        let _ = super::work::leg_queue().enqueue(self.clone());
    }
}

/// Sends one master to members: [`FanOut::send`] per member, then
/// [`FanOut::finish`].
pub(crate) struct FanOut<'a, O: CloneOwner> {
    owner: &'a O,
    /// The master and shared state until the first clone holds them.
    start: Option<(Bio, O::Shared)>,
    group: Option<NonNull<Group<O::Shared>>>,
    /// Clones go with `REQ_NOWAIT` to members that take it
    /// ([`FanOut::nowait`]).
    nowait: bool,
    /// Clones that could block their sender go to this worker's list
    /// ([`FanOut::defer_blocking`]), by tag.
    defer: Option<&'a [Arc<Submitter>]>,
    /// The master itself was sent ([`FanOut::send_only`]): it is the block
    /// layer's until its completion, and nothing more may be sent.
    sealed: bool,
}

impl<'a, O: CloneOwner> FanOut<'a, O> {
    /// Clones from now on go with `REQ_NOWAIT` to the members whose queues
    /// take the clone whole: one whose queue is full ends it at once with
    /// [`Status::AGAIN`] (in the submitter's context) instead of making the
    /// submitter wait for a tag. For copies of the data only (behind
    /// writes): a clone that shares the caller's pages must not end early.
    pub(crate) fn nowait(&mut self) {
        self.nowait = true;
    }

    /// Clones from now on that could make the sender sleep (they would not
    /// go with `REQ_NOWAIT`, or the member's driver blocks in submission,
    /// `Member::submit_may_block`) go to the submitter of their tag in
    /// `workers` instead of being submitted (see [`Deferred`]); a tag
    /// without one is submitted as usual. For copies of the data only, as
    /// [`FanOut::nowait`].
    pub(crate) fn defer_blocking(&mut self, workers: &'a [Arc<Submitter>]) {
        self.defer = Some(workers);
    }

    /// The master bio (not after [`FanOut::send_only`] sent it itself).
    pub(crate) fn master(&self) -> &Bio {
        debug_assert!(!self.sealed, "the master is in flight");
        match (&self.start, self.group) {
            (Some((m, _)), _) => m,
            // SAFETY: The group is live: the sender's count is held.
            (None, Some(g)) => unsafe { &g.as_ref().master },
            (None, None) => unreachable!("a fan-out holds its master"),
        }
    }

    /// Sends a clone of the master to the member in the owner's slot of
    /// `tag`, if there is one and `usable` says it may take it now (checked
    /// after the slot's reference was taken, as [`MemberSlot::get`] does).
    /// Its completion reports `tag`. False if nothing was sent.
    pub(crate) fn send(&mut self, tag: u32, usable: impl Fn() -> bool) -> bool {
        if self.sealed {
            debug_assert!(false, "a send after send_only");
            return false;
        }
        let Some(member) = self.owner.member_slot(tag).and_then(|s| s.get(usable)) else {
            return false;
        };
        self.send_clone(tag, member);
        true
    }

    /// As [`FanOut::send`], for a master that goes to this member only:
    /// the first and last send of the fan-out. The master itself is sent,
    /// without a clone (see [`Hook`]'s protocol), unless it must be cloned
    /// (a split remainder, a copy sent `nowait` or deferred) or the hook
    /// cannot be allocated at once. The owner sees the same completions as
    /// for a clone.
    pub(crate) fn send_only(&mut self, tag: u32, usable: impl Fn() -> bool) -> bool {
        if self.sealed || self.group.is_some() {
            debug_assert!(false, "send_only after another send");
            return self.send(tag, usable);
        }
        let Some(member) = self.owner.member_slot(tag).and_then(|s| s.get(usable)) else {
            return false;
        };
        if !self.nowait && self.defer.is_none() && !self.master().is_chained() {
            match KBox::<Hook<O::Shared>>::new_uninit(GFP_NOWAIT | __GFP_NOWARN) {
                Ok(hook) => self.send_master(tag, member, hook),
                Err(_) => self.send_clone(tag, member),
            }
        } else {
            self.send_clone(tag, member);
        }
        true
    }

    /// Sends the master itself to `member` (see [`Hook`]'s protocol).
    fn send_master(
        &mut self,
        tag: u32,
        member: MemberRef<'_>,
        hook: KBox<MaybeUninit<Hook<O::Shared>>>,
    ) {
        let (master, shared) = self.start.take().expect("send_only is the first send");
        let p = master.as_ptr();
        // SAFETY: The master is live and not in flight: fr1 owns it until it
        // is submitted below.
        let (end_io, private, bdev, iter, opf, flags) = unsafe {
            (
                (*p).bi_end_io,
                (*p).bi_private,
                (*p).bi_bdev,
                (*p).bi_iter,
                (*p).bi_opf,
                (*p).bi_flags,
            )
        };
        let hook = KBox::write(
            hook,
            Hook {
                group: Group {
                    master,
                    primary: core::ptr::null_mut(),
                    // The master's completion and the sender's count.
                    remaining: AtomicU32::new(2),
                    next: AtomicPtr::new(core::ptr::null_mut()),
                    shared,
                },
                tag,
                owner: core::ptr::from_ref(self.owner).cast(),
                end_io,
                private,
                bdev,
                iter,
                opf,
                flags,
            },
        );
        let h = KBox::into_raw(hook);
        self.sealed = true;
        // SAFETY: `h` is the live hook just made; `group` is its first field.
        self.group = Some(unsafe { NonNull::new_unchecked(&raw mut (*h).group) });
        // The master holds the reference until its completion.
        let bdev = member.bdev();
        member.keep();
        // Ownership of the master passes to the block layer until
        // `remap_end_io`; the hook is freed by `Finished::end`, after that.
        // SAFETY: The master is ours, not in flight; the member's bdev is open
        // while the slot reference is held; the hook outlives the I/O.
        unsafe {
            ffi::fr1_bio_set_dev(p, bdev);
            (*p).bi_end_io = Some(remap_end_io::<O>);
            (*p).bi_private = h.cast();
            bindings::submit_bio_noacct(p);
        }
    }

    /// Sends a clone of the master to `member`.
    fn send_clone(&mut self, tag: u32, member: MemberRef<'_>) {
        let set = self.owner.clone_set();
        let (mut clone, pad) = set.clone_for(self.master(), &member);
        // Not for flushes: dm ends every REQ_NOWAIT flush with AGAIN.
        let flush = self.master().opf() & (ffi::FR1_REQ_PREFLUSH | ffi::FR1_REQ_FUA) != 0;
        let nowait = self.nowait
            && !flush
            && member.takes_nowait(clone.sector(), clone.sectors(), self.master().segments());
        if nowait {
            clone.add_flags(ffi::FR1_REQ_NOWAIT);
        }
        let deferred = self
            .defer
            .filter(|_| !nowait || member.submit_may_block())
            .and_then(|w| w.get(tag as usize));
        let pad = pad.as_ptr();
        let group = match (self.group, self.start.take()) {
            (Some(g), _) => {
                // SAFETY: The group is live while the sender's count is held.
                unsafe { g.as_ref() }
                    .remaining
                    .fetch_add(1, Ordering::AcqRel);
                g
            }
            (None, Some((master, shared))) => {
                // SAFETY: `pad` is the fresh, exclusively owned front pad of
                // `clone`; the group lives in it until the group finished
                // (the first clone is put only by `Finished`).
                let g = unsafe {
                    let storage = (*pad).storage.as_mut_ptr();
                    storage.write(Group {
                        master,
                        primary: clone.0.as_ptr(),
                        remaining: AtomicU32::new(2),
                        next: AtomicPtr::new(core::ptr::null_mut()),
                        shared,
                    });
                    NonNull::new_unchecked(storage)
                };
                self.group = Some(g);
                g
            }
            (None, None) => unreachable!("a fan-out holds its master"),
        };
        // SAFETY: As above: the pad is ours until the clone is submitted.
        unsafe {
            (*pad).group = group.as_ptr();
            (*pad).tag = tag;
        }
        // The clone holds the reference until its completion.
        member.keep();
        clone.set_end_io(clone_end_io::<O>, core::ptr::null_mut());
        match deferred {
            Some(worker) => worker.push(clone),
            None => clone.submit(),
        }
    }

    /// Every clone was sent: the group finishes when they complete (maybe
    /// now, in this context). Gives the master and the shared state back if
    /// no clone was sent.
    pub(crate) fn finish(mut self) -> core::result::Result<(), (Bio, O::Shared)> {
        let start = self.start.take();
        let group = self.group.take();
        let owner = self.owner;
        core::mem::forget(self);
        match (start, group) {
            (Some(s), _) => Err(s),
            (None, Some(g)) => {
                // SAFETY: The sender's count keeps the group live until this
                // decrement.
                if unsafe { g.as_ref() }
                    .remaining
                    .fetch_sub(1, Ordering::AcqRel)
                    == 1
                {
                    // SAFETY: By the `CloneOwner` requirements the owner lives
                    // in an `Arc`.
                    let this = unsafe { ArcBorrow::from_raw(core::ptr::from_ref(owner)) };
                    O::group_done(this, Finished { group: g });
                }
                Ok(())
            }
            (None, None) => Ok(()),
        }
    }
}

impl<O: CloneOwner> Drop for FanOut<'_, O> {
    fn drop(&mut self) {
        // Not finished (a panic unwinding): never leave the master hanging.
        let s = FanOut {
            owner: self.owner,
            start: self.start.take(),
            group: self.group.take(),
            nowait: false,
            defer: None,
            sealed: false,
        };
        if let Err((master, _)) = s.finish() {
            master.end(Status::IOERR);
        }
    }
}

/// A group whose clones all completed: owns the master (which it must end
/// with [`Finished::end`]: dropping it ends the master with an I/O error
/// but none of the owner's bookkeeping), the shared state and the first
/// clone.
///
/// # Invariants
///
/// `group` is the initialised group in the first clone's pad; no clone of
/// it is in flight and nothing else refers to it.
#[must_use = "a finished group must be ended"]
pub(crate) struct Finished<S> {
    group: NonNull<Group<S>>,
}

// SAFETY: A finished group is owned by one thread at a time; its contents
// (bios, `S`) may move between threads.
unsafe impl<S: Send> Send for Finished<S> {}

impl<S> Finished<S> {
    fn group(&self) -> &Group<S> {
        // SAFETY: By the type invariants.
        unsafe { self.group.as_ref() }
    }

    /// The master bio.
    pub(crate) fn master(&self) -> &Bio {
        &self.group().master
    }

    /// The owner's shared state.
    pub(crate) fn shared(&self) -> &S {
        &self.group().shared
    }

    /// Ends the master with `status` and frees the group.
    pub(crate) fn end(self, status: Status) {
        let g = self.group.as_ptr();
        core::mem::forget(self);
        // The master (restored, if it was sent itself) ends through its
        // caller's completion; then the first clone (whose pad holds the
        // group) is put, or the hook holding it (`Hook` invariants) freed.
        // SAFETY: By the type invariants we own the group: its fields are
        // moved out or dropped once, before the storage is freed.
        unsafe {
            let master = core::ptr::read(&raw const (*g).master);
            let primary = (*g).primary;
            core::ptr::drop_in_place(&raw mut (*g).shared);
            master.end(status);
            if primary.is_null() {
                drop(KBox::<MaybeUninit<Hook<S>>>::from_raw(g.cast()));
            } else {
                bindings::bio_put(primary);
            }
        }
    }
}

impl<S> Drop for Finished<S> {
    fn drop(&mut self) {
        let g = Finished { group: self.group };
        g.end(Status::IOERR);
    }
}

/// Finished groups waiting for a worker: a lock-free stack (push from any
/// context, take from process context).
pub(crate) struct FinishedStack<S> {
    head: AtomicPtr<Group<S>>,
}

// SAFETY: Groups move through the stack between threads; `S: Send`.
unsafe impl<S: Send> Send for FinishedStack<S> {}
// SAFETY: All access is through atomics.
unsafe impl<S: Send> Sync for FinishedStack<S> {}

impl<S> FinishedStack<S> {
    /// An empty stack.
    pub(crate) const fn new() -> Self {
        FinishedStack {
            head: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Pushes a finished group (any context).
    pub(crate) fn push(&self, done: Finished<S>) {
        let g = done.group;
        core::mem::forget(done);
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            // SAFETY: We own the group until the exchange publishes it.
            unsafe { g.as_ref() }.next.store(head, Ordering::Relaxed);
            match self
                .head
                .compare_exchange(head, g.as_ptr(), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Takes every group pushed so far, most recent first.
    pub(crate) fn take_all(&self) -> FinishedIter<S> {
        FinishedIter {
            next: self.head.swap(core::ptr::null_mut(), Ordering::AcqRel),
        }
    }
}

impl<S> Drop for FinishedStack<S> {
    fn drop(&mut self) {
        // Always empty: every group on it holds a master count of its owner,
        // which drains them before it is dropped. Ending one now could reach
        // an exited bio set: leak it instead.
        if !self.head.get_mut().is_null() {
            pr_warn!("fr1: finished bios left at teardown; leaking them\n");
        }
    }
}

/// The groups taken off a [`FinishedStack`].
pub(crate) struct FinishedIter<S> {
    next: *mut Group<S>,
}

impl<S> Iterator for FinishedIter<S> {
    type Item = Finished<S>;

    fn next(&mut self) -> Option<Finished<S>> {
        let g = NonNull::new(self.next)?;
        // SAFETY: Groups on the taken stack are owned by this iterator.
        self.next = unsafe { g.as_ref() }.next.load(Ordering::Relaxed);
        Some(Finished { group: g })
    }
}

impl<S> Drop for FinishedIter<S> {
    fn drop(&mut self) {
        for done in self.by_ref() {
            drop(done);
        }
    }
}

/// Completion of a fanned-out clone (any context).
///
/// # Safety
///
/// Set only by [`FanOut::send`], on clones of `O`'s bio set whose pad it
/// initialised.
unsafe extern "C" fn clone_end_io<O: CloneOwner>(bio: *mut bindings::bio) {
    // SAFETY: By the safety requirements the pad is initialised (`Pad`
    // invariants) and the group is live until `remaining` is decremented.
    let (tag, group_ptr, status, pool) = unsafe {
        let pad = BioSet::<Pad<O::Shared>>::ctx_of(bio).as_ptr();
        (
            (*pad).tag,
            (*pad).group.cast_mut(),
            Status((*bio).bi_status),
            (*bio).bi_pool,
        )
    };
    // SAFETY: As above: live until this clone's decrement of `remaining`.
    let group = unsafe { &*group_ptr };
    // SAFETY: The clone came from the owner's bio set (`bi_pool`), the first
    // field of a `BioSet` at `BIOSET_OFFSET` in an owner that lives in an
    // `Arc` and outlives its clones (`CloneOwner` requirements).
    let this = unsafe { ArcBorrow::from_raw(pool.cast::<u8>().sub(O::BIOSET_OFFSET).cast::<O>()) };
    O::clone_done(this, group, tag, status);
    // The reference `FanOut::send` took for this clone (`Pad` invariants).
    if let Some(slot) = this.member_slot(tag) {
        slot.release();
    }
    if group.primary != bio {
        // SAFETY: A clone other than the first is ours to put, now that its
        // pad was read.
        unsafe { bindings::bio_put(bio) };
    }
    if group.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
        // SAFETY: `group_ptr` is non-null (it came from `NonNull`).
        let group = unsafe { NonNull::new_unchecked(group_ptr) };
        O::group_done(this, Finished { group });
    }
}

/// Completion of a master sent itself ([`FanOut::send_only`], any context).
///
/// # Safety
///
/// Set only by [`FanOut::send_master`], with `bi_private` pointing to the
/// master's live [`Hook`] of `O::Shared`, whose owner is an `O`.
unsafe extern "C" fn remap_end_io<O: CloneOwner>(bio: *mut bindings::bio) {
    // The master, completed by the block layer, is ours again: its saved
    // fields go back before anything of fr1 reads it (`Hook`'s protocol).
    // SAFETY: By the safety requirements `bi_private` is the hook, live
    // until the group finished (the decrement below).
    let (hook, status) = unsafe {
        let hook = (*bio).bi_private.cast::<Hook<O::Shared>>();
        let status = Status((*bio).bi_status);
        (*bio).bi_end_io = (*hook).end_io;
        (*bio).bi_private = (*hook).private;
        (*bio).bi_bdev = (*hook).bdev;
        (*bio).bi_iter = (*hook).iter;
        (*bio).bi_opf = (*hook).opf;
        // The block layer is done with the bio: its chain count ran out
        // (`BIO_CHAIN` is clear again), its cgroup reference was put.
        (*bio).bi_flags = (*hook).flags;
        (hook, status)
    };
    // SAFETY: As above, the hook is live; its owner is an `O` (`Hook`
    // invariants), which lives in an `Arc` and outlives the group
    // (`CloneOwner` requirements).
    let (tag, group_ptr, this) = unsafe {
        (
            (*hook).tag,
            &raw mut (*hook).group,
            ArcBorrow::from_raw((*hook).owner.cast::<O>()),
        )
    };
    // SAFETY: As above: live until this completion's decrement.
    let group = unsafe { &*group_ptr };
    O::clone_done(this, group, tag, status);
    // The reference `send_master` kept for the master.
    if let Some(slot) = this.member_slot(tag) {
        slot.release();
    }
    if group.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
        // SAFETY: `group_ptr` is non-null (a field of the live hook).
        let group = unsafe { NonNull::new_unchecked(group_ptr) };
        O::group_done(this, Finished { group });
    }
}
