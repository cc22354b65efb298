// SPDX-License-Identifier: GPL-2.0

//! fr1's block devices: the major (with md's on-demand probe), bio-based
//! gendisks, their operations table and queue limits.
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)

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
use crate::array::Array;

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
    /// Registers `major` (0: a dynamic one) with a probe called when a node
    /// of a not yet existing minor is opened (how md creates arrays on open).
    pub(crate) fn register(major: u32, name: &'static CStr) -> Result<BlkMajor> {
        // SAFETY: `name` is a static C string; `probe` is a valid callback
        // that stays valid until `unregister_blkdev` (module code is pinned
        // while the major exists, since it is unregistered in drop).
        let ret = unsafe { bindings::__register_blkdev(major, name.as_char_ptr(), Some(probe)) };
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
unsafe extern "C" fn probe(devt: bindings::dev_t) {
    crate::registry::probe(devt & 0xfffff);
}

/// An array's gendisk.
///
/// # Invariants
///
/// `disk` was allocated by `__blk_alloc_disk` with [`FOPS`] and its
/// `private_data` holds an `Arc<Array>` (released by `free_disk`). fr1 holds
/// one reference to the disk until `put` (or drop).
pub(crate) struct Disk {
    disk: NonNull<bindings::gendisk>,
    added: bool,
}

// SAFETY: gendisk operations used here are internally synchronised.
unsafe impl Send for Disk {}
// SAFETY: As above.
unsafe impl Sync for Disk {}

impl Disk {
    /// Allocates the bio-based gendisk `name` (major:minor) of `array`.
    pub(crate) fn new(major: u32, minor: u32, name: &CStr, array: Arc<Array>) -> Result<Disk> {
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
        let data = array.into_foreign();
        // SAFETY: `disk` is a freshly allocated gendisk not yet visible to
        // anyone else; `name` fits (checked by the caller, at most 31 bytes).
        unsafe {
            let d = disk.as_ptr();
            (*d).major = major as i32;
            (*d).first_minor = minor as i32;
            (*d).minors = 1;
            (*d).fops = &FOPS.0;
            (*d).private_data = data.cast();
            let n = name.to_bytes_with_nul();
            let len = n.len().min((*d).disk_name.len());
            core::ptr::copy_nonoverlapping(n.as_ptr().cast(), (*d).disk_name.as_mut_ptr(), len);
        }
        Ok(Disk { disk, added: false })
    }

    /// The raw gendisk.
    pub(crate) fn as_ptr(&self) -> *mut bindings::gendisk {
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

    /// Stacks the limits of `members` onto the disk's queue, under a frozen
    /// queue: no bio is being split while the limits change, and every bio
    /// split afterwards fits every member (seed 003's "bio too big").
    pub(crate) fn stack_limits<'a>(&self, members: impl Iterator<Item = &'a Member>) -> Result {
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

/// The array behind a gendisk of ours.
///
/// # Safety
///
/// `disk` is a live gendisk allocated by [`Disk::new`] whose `free_disk` has
/// not run.
unsafe fn array_of<'a>(
    disk: *mut bindings::gendisk,
) -> <Arc<Array> as ForeignOwnable>::Borrowed<'a> {
    // SAFETY: By the safety requirements `private_data` holds an
    // `Arc<Array>` from `into_foreign` that is released only by `free_disk`.
    unsafe { <Arc<Array> as ForeignOwnable>::borrow((*disk).private_data.cast()) }
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

/// Whether `disk` is one of fr1's arrays, and which.
pub(crate) fn fr1_array_of(disk: *mut bindings::gendisk) -> Option<Arc<Array>> {
    // SAFETY: The caller passes the live disk of an open block device (a
    // member candidate); only its `fops` pointer is compared.
    if disk.is_null() || unsafe { (*disk).fops } != &raw const FOPS.0 {
        return None;
    }
    // SAFETY: The disk is ours and live (its block device is open).
    let a = unsafe { array_of(disk) };
    Some(a.into())
}

/// # Safety
///
/// Called by the block layer with a live bio of one of our disks.
unsafe extern "C" fn submit_bio(bio: *mut bindings::bio) {
    // SAFETY: The block layer hands fr1 a live bio of one of its disks.
    let Some(bio) = (unsafe { Bio::from_raw(bio) }) else {
        return;
    };
    // SAFETY: The bio's device is an open partition of our live disk.
    let disk = unsafe { disk_of((*bio.as_ptr()).bi_bdev) };
    // SAFETY: `disk` is ours and live while it has I/O.
    let array = unsafe { array_of(disk) };
    array.submit_bio(bio);
}

/// # Safety
///
/// Called by the block layer on a live disk of ours.
unsafe extern "C" fn open(disk: *mut bindings::gendisk, _mode: bindings::blk_mode_t) -> c_int {
    // SAFETY: The block layer opens only live disks.
    let array = unsafe { array_of(disk) };
    from_result(|| array.open().map(|()| 0))
}

/// # Safety
///
/// Called by the block layer on a live disk of ours.
unsafe extern "C" fn release(disk: *mut bindings::gendisk) {
    // SAFETY: The disk is live until its last close returns.
    let array = unsafe { array_of(disk) };
    array.release();
}

/// # Safety
///
/// Called by the block layer with an open block device of ours.
unsafe extern "C" fn ioctl(
    bdev: *mut bindings::block_device,
    _mode: bindings::blk_mode_t,
    cmd: c_uint,
    arg: c_ulong,
) -> c_int {
    // SAFETY: The block device is open by the caller.
    let disk = unsafe { disk_of(bdev) };
    // SAFETY: Our disk, live while open.
    let array = unsafe { array_of(disk) };
    let array: Arc<Array> = array.into();
    from_result(|| crate::array::ioctl::dispatch(&array, cmd, arg))
}

/// # Safety
///
/// Called by the block layer once, when the last reference to our disk goes.
unsafe extern "C" fn free_disk(disk: *mut bindings::gendisk) {
    // SAFETY: Called once, when the last reference to the disk goes; the
    // `Arc<Array>` stored by `Disk::new` is released here.
    drop(unsafe { <Arc<Array> as ForeignOwnable>::from_foreign((*disk).private_data.cast()) });
}

/// `block_device_operations` that may live in a `static`.
#[repr(transparent)]
struct Fops(bindings::block_device_operations);

// SAFETY: The table is immutable; its pointers are to static functions, the
// module and nothing else.
unsafe impl Sync for Fops {}

/// The operations of every fr1 disk.
static FOPS: Fops = Fops(bindings::block_device_operations {
    submit_bio: Some(submit_bio),
    poll_bio: None,
    open: Some(open),
    release: Some(release),
    ioctl: Some(ioctl),
    compat_ioctl: Some(ioctl),
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
    free_disk: Some(free_disk),
});
