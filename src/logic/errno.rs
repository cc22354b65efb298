// SPDX-License-Identifier: GPL-2.0

//! The errors fr1's logic reports; the kernel side maps them to errnos.

/// An error as the caller of an md ioctl sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Errno {
    /// EINVAL: malformed or unsupported argument.
    Inval,
    /// EBUSY: in use, or the change would lose the last copy.
    Busy,
    /// ENODEV: the array is not set up, or no such member.
    NoDev,
    /// ENXIO: no such device.
    NxIo,
    /// ENOSPC: the member is smaller than the array.
    NoSpc,
    /// ENOTTY: not an fr1 ioctl.
    NoTty,
    /// EACCES: needs CAP_SYS_ADMIN.
    Access,
    /// EOPNOTSUPP: valid but not supported (yet).
    OpNotSupp,
    /// EEXIST: already there.
    Exist,
}
