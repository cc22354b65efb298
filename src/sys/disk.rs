// SPDX-License-Identifier: GPL-2.0

//! fr1's block devices: the major (with md's on-demand probe), bio-based
//! gendisks, their operations table and queue limits.
//!
//! As `kernel::block::mq` does for request queues: the driver implements
//! [`DiskOps`] (and [`Probe`] for its major) in safe Rust; this file holds
//! the `unsafe extern "C"` trampolines, built per implementor into a `const`
//! table, so the driver never sees a raw pointer.
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)

use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::{
    bindings,
    error::{from_err_ptr, from_result, to_result},
    prelude::*,
    static_lock_class,
    sync::Arc,
    types::ForeignOwnable,
};

use super::bio::Bio;
use super::ffi;
use super::member::Member;

/// What a major does when a node without a disk is opened (md's
/// `md_probe`: the array is created on open).
pub(crate) trait Probe {
    /// Called by the block layer (under `major_names_lock`, process
    /// context) for `minor` of the major.
    fn probe(minor: u32);
}

/// The block layer's callbacks of a bio-based disk whose data is `Self`.
pub(crate) trait DiskOps: Send + Sync + Sized + 'static {
    /// The operations table of this type's disks (one `static`, made by
    /// [`DiskVtable::new`]): it also tells this type's disks from others.
    fn vtable() -> &'static DiskVtable<Self>;
    /// A bio for the disk (any context that may submit I/O).
    fn submit_bio(&self, bio: Bio);
    /// An open of the disk (under the disk's `open_mutex`).
    fn open(&self) -> Result;
    /// The matching release.
    fn release(&self);
    /// An ioctl on an open block device of the disk.
    fn ioctl(this: &Arc<Self>, cmd: u32, arg: usize) -> Result<i32>;
}

/// A registered block major.
///
/// # Invariants
///
/// `major` is registered under `name` with `__register_blkdev` until drop.
pub(crate) struct BlkMajor {
    major: u32,
    name: &'static CStr,
}

impl BlkMajor {
    /// Registers `major` (0: a dynamic one) with `P`'s probe, called when a
    /// node of a not yet existing minor is opened (how md creates arrays on
    /// open).
    pub(crate) fn register<P: Probe>(major: u32, name: &'static CStr) -> Result<BlkMajor> {
        let probe = Some(probe::<P> as unsafe extern "C" fn(bindings::dev_t));
        // SAFETY: `name` is a static C string; `probe` stays valid until
        // `unregister_blkdev` (the module is pinned while the major exists).
        let ret = unsafe { bindings::__register_blkdev(major, name.as_char_ptr(), probe) };
        to_result(ret)?;
        let major = if major == 0 { ret as u32 } else { major };
        Ok(BlkMajor { major, name })
    }

    /// The major number.
    pub(crate) fn major(&self) -> u32 {
        self.major
    }
}

impl Drop for BlkMajor {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the major is registered. Once this
        // returns no probe runs any more (both hold major_names_lock).
        unsafe { bindings::unregister_blkdev(self.major, self.name.as_char_ptr()) };
    }
}

/// Called when a node of our major without a disk is opened.
///
/// # Safety
///
/// Called by the block layer under `major_names_lock` for a `dev_t` of our major.
unsafe extern "C" fn probe<P: Probe>(devt: bindings::dev_t) {
    P::probe(devt & 0xfffff);
}

/// An array's gendisk.
///
/// # Invariants
///
/// `disk` was allocated by `__blk_alloc_disk` with the operations of some
/// `T: DiskOps` (`T::vtable()`) and its `private_data` holds an `Arc<T>`
/// (released by `free_disk::<T>`). fr1 holds one reference to the disk until
/// drop.
pub(crate) struct Disk {
    disk: NonNull<bindings::gendisk>,
    added: bool,
}

// SAFETY: gendisk operations used here are internally synchronised.
unsafe impl Send for Disk {}
// SAFETY: As above.
unsafe impl Sync for Disk {}

impl Disk {
    /// Allocates the bio-based gendisk `name` (major:minor) serving `data`.
    pub(crate) fn new<T: DiskOps>(
        major: u32,
        minor: u32,
        name: &CStr,
        data: Arc<T>,
    ) -> Result<Disk> {
        // SAFETY: An all-zero queue_limits is the documented "use defaults".
        let mut lim: bindings::queue_limits = unsafe { core::mem::zeroed() };
        lim.features = ffi::FR1_BLK_FEAT_IO_STAT;
        // SAFETY: `lim` is valid; the lock class is static.
        let disk = from_err_ptr(unsafe {
            bindings::__blk_alloc_disk(
                &mut lim,
                bindings::NUMA_NO_NODE,
                static_lock_class!().as_ptr(),
            )
        })?;
        let disk = NonNull::new(disk).ok_or(ENOMEM)?;
        let data = data.into_foreign();
        // SAFETY: `disk` is a freshly allocated gendisk not yet visible to
        // anyone else; `name` fits (checked by the caller, at most 31 bytes).
        unsafe {
            let d = disk.as_ptr();
            (*d).major = major as i32;
            (*d).first_minor = minor as i32;
            (*d).minors = 1;
            (*d).fops = &T::vtable().fops;
            (*d).private_data = data.cast();
            let n = name.to_bytes_with_nul();
            let len = n.len().min((*d).disk_name.len());
            core::ptr::copy_nonoverlapping(n.as_ptr().cast(), (*d).disk_name.as_mut_ptr(), len);
        }
        Ok(Disk { disk, added: false })
    }

    /// The raw gendisk (for `sys/`).
    pub(super) fn as_ptr(&self) -> *mut bindings::gendisk {
        self.disk.as_ptr()
    }

    /// Makes the disk visible (`/dev/<name>`, sysfs).
    pub(crate) fn add(&mut self) -> Result {
        // SAFETY: By the type invariants the disk is allocated and not added.
        to_result(unsafe {
            bindings::device_add_disk(core::ptr::null_mut(), self.as_ptr(), core::ptr::null_mut())
        })?;
        self.added = true;
        Ok(())
    }

    /// Sets the size in sectors.
    pub(crate) fn set_capacity(&self, sectors: u64) {
        // SAFETY: The disk is live; set_capacity locks internally.
        unsafe { bindings::set_capacity(self.as_ptr(), sectors) };
    }

    /// The logical block size in bytes (the largest of the members').
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: The disk and its queue are live; the limit is a plain
        // `u32` that changes only in `stack_limits`, under a frozen queue.
        unsafe { (*(*self.as_ptr()).queue).limits.logical_block_size }
    }

    /// Stacks the limits of `members` onto the disk's queue, under a frozen
    /// queue: no bio is being split while the limits change, and every bio
    /// split afterwards fits every member (seed 003's "bio too big").
    pub(crate) fn stack_limits<M: core::ops::Deref<Target = Member>>(
        &self,
        members: impl Iterator<Item = M>,
    ) -> Result {
        // SAFETY: The disk and its queue are live.
        let q = unsafe { (*self.as_ptr()).queue };
        // SAFETY: `q` is live; this takes `q->limits_lock` until commit or cancel.
        let mut lim = unsafe { ffi::fr1_queue_limits_start_update(q) };
        // SAFETY: `lim` is a valid limits struct.
        unsafe { bindings::blk_set_stacking_limits(&mut lim) };
        lim.features |= ffi::FR1_BLK_FEAT_IO_STAT;
        // Bios never cross an interlock region (see logic::interlock).
        lim.chunk_sectors = crate::logic::interlock::REGION_SECTORS as u32;
        for m in members {
            // SAFETY: `m` is open; the prefix string is static.
            unsafe { bindings::queue_limits_stack_bdev(&mut lim, m.bdev(), 0, self.name_ptr()) };
        }
        // SAFETY: The update was started above and is committed once.
        to_result(unsafe { bindings::queue_limits_commit_update_frozen(q, &mut lim) })
    }

    fn name_ptr(&self) -> *const c_char {
        // SAFETY: The disk is live; disk_name is NUL-terminated.
        unsafe { (*self.as_ptr()).disk_name.as_ptr() }
    }

    /// Removes the disk from the system (`del_gendisk`): no new I/O can
    /// start; openers keep the disk allocated until they close it.
    pub(crate) fn del(&mut self) {
        if self.added {
            self.added = false;
            // SAFETY: The disk was added and is deleted once.
            unsafe { bindings::del_gendisk(self.as_ptr()) };
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        self.del();
        // SAFETY: By the type invariants fr1 holds one reference; when the
        // last one goes the block layer calls `free_disk`, which drops the
        // `Arc<Array>` in `private_data`.
        unsafe { bindings::put_disk(self.as_ptr()) };
    }
}

/// The `T` behind a gendisk of `T`'s.
///
/// # Safety
///
/// `disk` is a live gendisk allocated by [`Disk::new::<T>`] whose
/// `free_disk` has not run.
unsafe fn data_of<'a, T: DiskOps>(
    disk: *mut bindings::gendisk,
) -> <Arc<T> as ForeignOwnable>::Borrowed<'a> {
    // SAFETY: By the safety requirements `private_data` holds an `Arc<T>`
    // from `into_foreign` that is released only by `free_disk::<T>`.
    unsafe { <Arc<T> as ForeignOwnable>::borrow((*disk).private_data.cast()) }
}

/// The disk of a block device.
///
/// # Safety
///
/// `bdev` is a live, open block device.
unsafe fn disk_of(bdev: *mut bindings::block_device) -> *mut bindings::gendisk {
    // SAFETY: By the safety requirements.
    unsafe { ffi::fr1_bdev_disk(bdev) }
}

/// Whether `disk` is one of `T`'s disks, and its `T`.
///
/// # Safety
///
/// `disk` is null or the live disk of an open block device.
pub(super) unsafe fn owner_of<T: DiskOps>(disk: *mut bindings::gendisk) -> Option<Arc<T>> {
    // SAFETY: By the safety requirements; only its `fops` pointer is
    // compared with `T`'s one table.
    if disk.is_null() || unsafe { (*disk).fops } != &raw const T::vtable().fops {
        return None;
    }
    // SAFETY: The disk is `T`'s and live (its block device is open).
    let a = unsafe { data_of::<T>(disk) };
    Some(a.into())
}

impl Member {
    /// The `T` whose disk this member is, if it is one of `T`'s disks (an
    /// array stacked on another).
    pub(crate) fn disk_owner<T: DiskOps>(&self) -> Option<Arc<T>> {
        // SAFETY: The member's block device is open, so its disk is live.
        unsafe { owner_of::<T>(disk_of(self.bdev())) }
    }
}

/// # Safety
///
/// Called by the block layer with a live bio of one of `T`'s disks.
unsafe extern "C" fn submit_bio<T: DiskOps>(bio: *mut bindings::bio) {
    // SAFETY: The block layer hands over a live bio of one of our disks.
    let Some(bio) = (unsafe { Bio::from_raw(bio) }) else {
        return;
    };
    // SAFETY: The bio's device is an open partition of our live disk.
    let disk = unsafe { disk_of((*bio.as_ptr()).bi_bdev) };
    // SAFETY: `disk` is `T`'s and live while it has I/O.
    let data = unsafe { data_of::<T>(disk) };
    data.submit_bio(bio);
}

/// # Safety
///
/// Called by the block layer on a live disk of `T`'s.
unsafe extern "C" fn open<T: DiskOps>(
    disk: *mut bindings::gendisk,
    _mode: bindings::blk_mode_t,
) -> c_int {
    // SAFETY: The block layer opens only live disks.
    let data = unsafe { data_of::<T>(disk) };
    from_result(|| data.open().map(|()| 0))
}

/// # Safety
///
/// Called by the block layer on a live disk of `T`'s.
unsafe extern "C" fn release<T: DiskOps>(disk: *mut bindings::gendisk) {
    // SAFETY: The disk is live until its last close returns.
    let data = unsafe { data_of::<T>(disk) };
    data.release();
}

/// # Safety
///
/// Called by the block layer with an open block device of `T`'s.
unsafe extern "C" fn ioctl<T: DiskOps>(
    bdev: *mut bindings::block_device,
    _mode: bindings::blk_mode_t,
    cmd: c_uint,
    arg: c_ulong,
) -> c_int {
    // SAFETY: The block device is open by the caller.
    let disk = unsafe { disk_of(bdev) };
    // SAFETY: `T`'s disk, live while open.
    let data: Arc<T> = unsafe { data_of::<T>(disk) }.into();
    from_result(|| T::ioctl(&data, cmd, arg))
}

/// # Safety
///
/// Called by the block layer once, when the last reference to a disk of
/// `T`'s goes.
unsafe extern "C" fn free_disk<T: DiskOps>(disk: *mut bindings::gendisk) {
    // SAFETY: Called once, when the last reference to the disk goes; the
    // `Arc<T>` stored by `Disk::new` is released here.
    drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign((*disk).private_data.cast()) });
}

/// The `block_device_operations` of `T`'s disks: the trampolines above.
pub(crate) struct DiskVtable<T: DiskOps> {
    fops: bindings::block_device_operations,
    _data: PhantomData<T>,
}

// SAFETY: The table is immutable; its pointers are to static functions and
// the module.
unsafe impl<T: DiskOps> Sync for DiskVtable<T> {}

impl<T: DiskOps> DiskVtable<T> {
    /// The table; keep it in a `static` returned by [`DiskOps::vtable`].
    pub(crate) const fn new() -> Self {
        DiskVtable {
            fops: bindings::block_device_operations {
                submit_bio: Some(submit_bio::<T>),
                poll_bio: None,
                open: Some(open::<T>),
                release: Some(release::<T>),
                ioctl: Some(ioctl::<T>),
                compat_ioctl: Some(ioctl::<T>),
                check_events: None,
                unlock_native_capacity: None,
                getgeo: None,
                set_read_only: None,
                swap_slot_free_notify: None,
                report_zones: None,
                devnode: None,
                alternative_gpt_sector: None,
                get_unique_id: None,
                owner: (&raw const bindings::__this_module).cast_mut(),
                pr_ops: core::ptr::null(),
                free_disk: Some(free_disk::<T>),
            },
            _data: PhantomData,
        }
    }
}
