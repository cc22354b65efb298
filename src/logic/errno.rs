// SPDX-License-Identifier: GPL-2.0

//! The errors fr1's logic reports; the kernel side maps them to errnos.

/// An error as the caller of an md ioctl sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Errno {
    /// EINVAL: malformed or unsupported argument.
    Inval,
    /// EBUSY: in use, or the change would lose the last copy.
    Busy,
    /// ENXIO: no such device.
    NxIo,
    /// ENOTTY: not an fr1 ioctl.
    NoTty,
}
