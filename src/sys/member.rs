// SPDX-License-Identifier: GPL-2.0

//! A member device of an array: opened exclusively with the array as holder
//! and linked in sysfs (`holders/`, `slaves/`).
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)

use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use kernel::{bindings, error::from_err_ptr, prelude::*};

use super::ffi;
use crate::logic::abi::DevNum;

/// Longest member name kept (`%pg`, e.g. `nvme0n1p12`).
const NAME_LEN: usize = 32;

/// An open member device.
///
/// # Invariants
///
/// `file` is a block device file opened by `bdev_file_open_by_dev` for
/// reading and writing with an exclusive holder, and `bdev` is its block
/// device; both stay valid until `drop` releases the file. If `holder_disk`
/// is non-null, the device is linked as a slave of that disk, which is
/// registered until the link is removed (an array drops its members, or
/// unlinks those that outlive it, before it deletes its disk).
pub(crate) struct Member {
    file: NonNull<bindings::file>,
    bdev: NonNull<bindings::block_device>,
    holder_disk: AtomicPtr<bindings::gendisk>,
    dev: DevNum,
    sectors: u64,
    name: [u8; NAME_LEN],
}

// SAFETY: An open block device file may be used and released from any thread.
unsafe impl Send for Member {}
// SAFETY: fr1 only submits bios to the device and reads immutable fields.
unsafe impl Sync for Member {}

impl Member {
    /// Opens `dev` exclusively for `holder` (its address is the holder
    /// token: the array, which outlives its members). Errors as the block
    /// layer reports them: ENXIO/ENODEV for no such device, EBUSY when
    /// someone else holds it. [`Member::link`] then makes it a slave of the
    /// array's disk.
    pub(crate) fn open<H: Sync>(dev: DevNum, holder: &H) -> Result<Member> {
        let mode = ffi::FR1_BLK_OPEN_READ | ffi::FR1_BLK_OPEN_WRITE;
        let token = core::ptr::from_ref(holder).cast_mut().cast::<c_void>();
        // SAFETY: `token` is a unique, stable address while the holder lives;
        // the block layer only compares it. A NULL `hops` is allowed.
        let file = from_err_ptr(unsafe {
            bindings::bdev_file_open_by_dev(dev.to_kdev(), mode, token, core::ptr::null())
        })?;
        let file = NonNull::new(file).ok_or(ENXIO)?;
        // SAFETY: `file` is an open block device file.
        let bdev = unsafe { bindings::file_bdev(file.as_ptr()) };
        let Some(bdev) = NonNull::new(bdev) else {
            // SAFETY: `file` was opened above and is released once.
            unsafe { bindings::bdev_fput(file.as_ptr()) };
            return Err(ENXIO);
        };
        let mut m = Member {
            file,
            bdev,
            holder_disk: AtomicPtr::new(core::ptr::null_mut()),
            dev,
            // SAFETY: `bdev` is open.
            sectors: unsafe { ffi::fr1_bdev_nr_sectors(bdev.as_ptr()) },
            name: [0; NAME_LEN],
        };
        // SAFETY: `name` has NAME_LEN bytes; "%pg" takes a block device,
        // which is open. scnprintf always NUL-terminates.
        unsafe {
            bindings::scnprintf(
                m.name.as_mut_ptr().cast(),
                NAME_LEN,
                c"%pg".as_char_ptr(),
                bdev.as_ptr(),
            )
        };
        Ok(m)
    }

    /// Links the device under the array's `disk` (`slaves/`, `holders/`).
    /// The disk must outlive the member.
    pub(crate) fn link(&mut self, disk: &super::disk::Disk) -> Result {
        if !self.holder_disk.get_mut().is_null() {
            return Err(EBUSY);
        }
        let d = NonNull::new(disk.as_ptr()).ok_or(ENODEV)?;
        // SAFETY: `bdev` is open and `d` is the array's live gendisk.
        kernel::error::to_result(unsafe {
            bindings::bd_link_disk_holder(self.bdev.as_ptr(), d.as_ptr())
        })?;
        *self.holder_disk.get_mut() = d.as_ptr();
        Ok(())
    }

    /// Removes the link made by [`Member::link`] (process context), before
    /// the disk is deleted, from a member that stays open longer: bios
    /// are still in flight on it. Later calls, and `drop`, do nothing more.
    pub(crate) fn unlink(&self) {
        let d = self
            .holder_disk
            .swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !d.is_null() {
            // SAFETY: By the type invariants the link was made to `d`, still
            // registered; the swap hands it to one caller only.
            unsafe { bindings::bd_unlink_disk_holder(self.bdev.as_ptr(), d) };
        }
    }

    /// The block device, for bios (for `sys/`).
    pub(super) fn bdev(&self) -> *mut bindings::block_device {
        self.bdev.as_ptr()
    }

    /// Device number.
    pub(crate) fn dev(&self) -> DevNum {
        self.dev
    }

    /// Size in sectors when it was opened.
    pub(crate) fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Whether a bio of `sectors` in `segments` may go to the device with
    /// `REQ_NOWAIT`: its queue supports it and will not split the bio (a
    /// split `REQ_NOWAIT` bio ends with `BLK_STS_AGAIN`, blk-merge.c).
    /// `sector`: where the bio starts (a bio crossing the queue's
    /// `chunk_sectors` boundary is split too).
    pub(crate) fn takes_nowait(&self, sector: u64, sectors: u64, segments: u32) -> bool {
        let bdev = self.bdev();
        // SAFETY: The device is open while `self` lives.
        let (nowait, max_sectors, max_segments, chunk) = unsafe {
            (
                ffi::fr1_bdev_nowait(bdev),
                ffi::fr1_bdev_max_sectors(bdev),
                ffi::fr1_bdev_max_segments(bdev),
                ffi::fr1_bdev_chunk_sectors(bdev),
            )
        };
        let within_chunk = chunk == 0 || sector % u64::from(chunk) + sectors <= u64::from(chunk);
        nowait && sectors <= u64::from(max_sectors) && segments <= max_segments && within_chunk
    }

    /// Whether submitting a bio to the device may sleep in its driver
    /// (`BLK_MQ_F_BLOCKING`: NBD sends on its socket in the submitter's
    /// context, `REQ_NOWAIT` or not).
    pub(crate) fn submit_may_block(&self) -> bool {
        // SAFETY: The device is open while `self` lives.
        unsafe { ffi::fr1_bdev_blocking(self.bdev()) }
    }

    /// Kernel name, e.g. `vdb`.
    pub(crate) fn name(&self) -> &str {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.unlink();
        // SAFETY: By the type invariants `file` is open; it is released once.
        unsafe { bindings::bdev_fput(self.file.as_ptr()) };
    }
}

/// A place for one member that the data path takes counted references on:
/// the pointer and the reference count travel together.
///
/// Protocol (slot references): a bio, a resync copy or an inspector takes a
/// reference with [`MemberSlot::get`] (any context, never sleeps): it
/// increments `refs`, *then* asks the caller whether the slot may be used
/// (the caller's state word), *then* loads `member`. [`MemberSlot::take`]
/// (process context; the owner's control path, which serialises it with
/// [`MemberSlot::install`]) swaps `member` to null, *then* reads `refs`: at
/// zero the member is the caller's; otherwise it puts the member back and
/// answers `EBUSY` (md's rule for removing a member with I/O on it). All of
/// it is sequentially consistent, so a taker either sees the null or its
/// increment is seen by `take`: a member is never freed under a reference.
/// A reference taken for a clone ([`super::bio::FanOut::send`]) is released
/// by the clone's completion (interrupt context) after the owner's handler
/// ran, never earlier: the device stays open while a bio is in flight on it.
///
/// # Invariants
///
/// `member` is null or comes from `KBox::into_raw` and is owned by the slot;
/// it is freed only by the caller of a successful `take` (which saw `refs`
/// at zero after unpublishing it, so no reference can reach it) or leaked
/// by `drop` if a member is still there.
pub(crate) struct MemberSlot {
    member: AtomicPtr<Member>,
    refs: AtomicU32,
}

impl MemberSlot {
    /// An empty slot.
    pub(crate) const fn new() -> Self {
        MemberSlot {
            member: AtomicPtr::new(core::ptr::null_mut()),
            refs: AtomicU32::new(0),
        }
    }

    /// A counted reference to the member if there is one and `usable`
    /// (called after the count was taken) says the slot may serve now.
    pub(crate) fn get(&self, usable: impl Fn() -> bool) -> Option<MemberRef<'_>> {
        // A cheap look first: no count (and no spurious EBUSY for a remover)
        // for a slot that is not usable anyway.
        if !usable() {
            return None;
        }
        self.refs.fetch_add(1, Ordering::SeqCst);
        let p = if usable() {
            self.member.load(Ordering::SeqCst)
        } else {
            core::ptr::null_mut()
        };
        let Some(p) = NonNull::new(p) else {
            self.release();
            return None;
        };
        // SAFETY: Our count came before the load that saw `p`, so by the
        // protocol `take` cannot have returned it, and it is not freed before
        // the count is released.
        let member = unsafe { p.as_ref() };
        Some(MemberRef { slot: self, member })
    }

    /// References held (md's `nr_pending`: bios in flight on the member).
    pub(crate) fn refs(&self) -> u32 {
        self.refs.load(Ordering::Relaxed)
    }

    /// Releases a count kept by [`MemberRef::keep`] (for `sys::bio`).
    pub(super) fn release(&self) {
        self.refs.fetch_sub(1, Ordering::SeqCst);
    }

    /// Puts `member` in the empty slot; gives it back if the slot is full.
    pub(crate) fn install(&self, member: KBox<Member>) -> core::result::Result<(), KBox<Member>> {
        let p = KBox::into_raw(member);
        match self.member.compare_exchange(
            core::ptr::null_mut(),
            p,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => Ok(()),
            // SAFETY: `p` came from `KBox::into_raw` just above and was not
            // published.
            Err(_) => Err(unsafe { KBox::from_raw(p) }),
        }
    }

    /// Unlinks the member's holder link ([`Member::unlink`]) and leaves it
    /// in the slot: bios are still on it. Serialised with `take` and
    /// `install` by the owner, as they are.
    pub(crate) fn unlink_member(&self) {
        let p = self.member.load(Ordering::SeqCst);
        // SAFETY: A non-null `member` is owned by the slot and freed only by
        // a `take`, which the owner does not run concurrently with this.
        if let Some(m) = unsafe { p.as_ref() } {
            m.unlink();
        }
    }

    /// Takes the member out if no reference is held: `ENXIO` if the slot is
    /// empty, `EBUSY` if references are held (the member stays).
    pub(crate) fn take(&self) -> Result<KBox<Member>> {
        let p = self.member.swap(core::ptr::null_mut(), Ordering::SeqCst);
        if p.is_null() {
            return Err(ENXIO);
        }
        if self.refs.load(Ordering::SeqCst) != 0 {
            // Installs are serialised with takes by the owner, so the slot
            // is still empty; were it not, keeping the member (a leak) is
            // the only safe answer.
            let _ = self.member.compare_exchange(
                core::ptr::null_mut(),
                p,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            return Err(EBUSY);
        }
        // SAFETY: By the protocol no reference reaches `p` any more (the
        // count was zero after it was unpublished), and it came from
        // `KBox::into_raw`.
        Ok(unsafe { KBox::from_raw(p) })
    }
}

impl Drop for MemberSlot {
    fn drop(&mut self) {
        // The owner empties its slots before it goes (its stop): a member
        // left here may be linked to a disk being freed, so it is leaked
        // rather than released.
        if !self.member.get_mut().is_null() {
            pr_warn!("fr1: a member slot was dropped with its member; leaking it\n");
        }
    }
}

/// A counted reference to a slot's member: the device stays open (its slot
/// cannot be emptied) while this lives.
pub(crate) struct MemberRef<'a> {
    slot: &'a MemberSlot,
    member: &'a Member,
}

impl MemberRef<'_> {
    /// Gives up the guard without releasing the count: a bio in flight on
    /// the member holds it, and its completion releases it with
    /// [`MemberSlot::release`] on the same slot.
    pub(super) fn keep(self) {
        core::mem::forget(self);
    }
}

impl core::ops::Deref for MemberRef<'_> {
    type Target = Member;

    fn deref(&self) -> &Member {
        self.member
    }
}

impl AsRef<Member> for MemberRef<'_> {
    fn as_ref(&self) -> &Member {
        self.member
    }
}

impl Drop for MemberRef<'_> {
    fn drop(&mut self) {
        self.slot.release();
    }
}
