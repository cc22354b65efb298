// SPDX-License-Identifier: GPL-2.0

//! A member device of an array: opened exclusively with the array as holder
//! and linked in sysfs (`holders/`, `slaves/`).
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)

use core::ptr::NonNull;
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
/// is set, the device is linked as a slave of that disk, which outlives the
/// member (an array drops its members before its disk).
pub(crate) struct Member {
    file: NonNull<bindings::file>,
    bdev: NonNull<bindings::block_device>,
    holder_disk: Option<NonNull<bindings::gendisk>>,
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
            holder_disk: None,
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
        if self.holder_disk.is_some() {
            return Err(EBUSY);
        }
        let d = NonNull::new(disk.as_ptr()).ok_or(ENODEV)?;
        // SAFETY: `bdev` is open and `d` is the array's live gendisk.
        kernel::error::to_result(unsafe {
            bindings::bd_link_disk_holder(self.bdev.as_ptr(), d.as_ptr())
        })?;
        self.holder_disk = Some(d);
        Ok(())
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

    /// Kernel name, e.g. `vdb`.
    pub(crate) fn name(&self) -> &str {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(d) = self.holder_disk {
            // SAFETY: By the type invariants the link was made to `d`, which
            // outlives its members.
            unsafe { bindings::bd_unlink_disk_holder(self.bdev.as_ptr(), d.as_ptr()) };
        }
        // SAFETY: By the type invariants `file` is open; it is released once.
        unsafe { bindings::bdev_fput(self.file.as_ptr()) };
    }
}
