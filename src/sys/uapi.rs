// SPDX-License-Identifier: GPL-2.0

//! md's uapi structs crossing the user boundary, and the caller's
//! privileges.

use kernel::{
    bindings,
    transmute::{AsBytes, FromBytes},
};

use super::ffi;
use crate::logic::abi::{
    fr1_nr, Fr1CopyIo, Fr1RepairRange, MduArrayInfo, MduDiskInfo, MduParam, MduVersion,
};
use crate::logic::copyio::MAX_COPY_BYTES;

// The hand-written copies in `logic::abi` match bindgen's view of md_u.h.
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<MduVersion>() == size_of::<ffi::mdu_version_t>());
    assert!(size_of::<MduArrayInfo>() == size_of::<ffi::mdu_array_info_t>());
    assert!(size_of::<MduDiskInfo>() == size_of::<ffi::mdu_disk_info_t>());
    assert!(size_of::<MduParam>() == size_of::<ffi::mdu_param_t>());
    assert!(size_of::<ffi::mdu_bitmap_file_t>() == 4096);
    // And fr1's own, of include/uapi/linux/fr1.h.
    assert!(size_of::<Fr1CopyIo>() == size_of::<ffi::fr1_copy_io>());
    assert!(size_of::<Fr1RepairRange>() == size_of::<ffi::fr1_repair_range>());
    assert!(fr1_nr::READ_COPY == ffi::FR1_READ_COPY_NR);
    assert!(fr1_nr::REPAIR_RANGE == ffi::FR1_REPAIR_RANGE_NR);
    assert!(MAX_COPY_BYTES == ffi::FR1_MAX_COPY_BYTES_NR as u64);
};

// SAFETY: Plain `#[repr(C)]` structs of `i32`/`u32` fields without padding:
// every bit pattern is valid and every byte is initialised.
unsafe impl FromBytes for MduVersion {}
// SAFETY: As above.
unsafe impl AsBytes for MduVersion {}
// SAFETY: As above.
unsafe impl FromBytes for MduArrayInfo {}
// SAFETY: As above.
unsafe impl AsBytes for MduArrayInfo {}
// SAFETY: As above.
unsafe impl FromBytes for MduDiskInfo {}
// SAFETY: As above.
unsafe impl AsBytes for MduDiskInfo {}
// SAFETY: As above.
unsafe impl FromBytes for MduParam {}
// SAFETY: `#[repr(C)]` of two `u32` then `u64`s: no padding, any bits valid.
unsafe impl FromBytes for Fr1CopyIo {}
// SAFETY: As above.
unsafe impl FromBytes for Fr1RepairRange {}

/// Whether the calling task may administer arrays (md: CAP_SYS_ADMIN).
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable` only inspects the current task's credentials.
    unsafe { bindings::capable(ffi::FR1_CAP_SYS_ADMIN) }
}
