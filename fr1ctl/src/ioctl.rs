// SPDX-License-Identifier: GPL-2.0

//! md ioctls on an open array node, with errors that say what to do.

use std::fmt;
use std::fs::File;
use std::os::fd::AsRawFd;

use crate::logic::abi::{nr, MduArrayInfo, MduDiskInfo, MduParam, MduVersion};

/// A failed operation: what was attempted, the errno, and a hint.
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) what: String,
    pub(crate) errno: Option<i32>,
    pub(crate) hint: &'static str,
}

impl Error {
    pub(crate) fn usage(msg: impl Into<String>) -> Self {
        Error {
            what: msg.into(),
            errno: None,
            hint: "see 'fr1ctl help'",
        }
    }

    pub(crate) fn os(what: impl Into<String>, errno: i32, hint: &'static str) -> Self {
        Error {
            what: what.into(),
            errno: Some(errno),
            hint,
        }
    }

    /// Exit status: 2 for usage errors, 1 otherwise.
    pub(crate) fn exit_code(&self) -> u8 {
        if self.errno.is_none() {
            2
        } else {
            1
        }
    }
}

/// The symbolic name of an errno.
pub(crate) fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EIO => "EIO",
        _ => "E?",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errno {
            Some(e) => write!(
                f,
                "{}: {} ({}); {}",
                self.what,
                errno_name(e),
                std::io::Error::from_raw_os_error(e),
                self.hint
            ),
            None => write!(f, "{}; {}", self.what, self.hint),
        }
    }
}

/// An open array node.
pub(crate) struct Array {
    file: File,
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

impl Array {
    pub(crate) fn open(path: &str) -> Result<Array, Error> {
        let file = File::options().read(true).open(path).map_err(|e| {
            Error::os(
                format!("cannot open {path}"),
                e.raw_os_error().unwrap_or(libc::EIO),
                "is fr1 loaded (modprobe fr1) and are you root?",
            )
        })?;
        Ok(Array { file })
    }

    /// Issues `cmd` with a raw argument; returns the errno on failure.
    pub(crate) fn raw(&self, cmd: u32, arg: libc::c_ulong) -> Result<(), i32> {
        // SAFETY: An ioctl on our own open file descriptor. For commands that
        // take a pointer, callers pass a pointer to a live value of the right
        // size (or deliberately a bad one, which the kernel must reject).
        let ret = unsafe { libc::ioctl(self.file.as_raw_fd(), cmd as libc::c_ulong, arg) };
        if ret < 0 {
            Err(last_errno())
        } else {
            Ok(())
        }
    }

    fn with_ptr<T>(&self, cmd: u32, val: &mut T) -> Result<(), i32> {
        self.raw(cmd, val as *mut T as libc::c_ulong)
    }

    pub(crate) fn version(&self) -> Result<MduVersion, i32> {
        let mut v = MduVersion::default();
        self.with_ptr(nr::RAID_VERSION, &mut v)?;
        Ok(v)
    }

    pub(crate) fn array_info(&self) -> Result<MduArrayInfo, i32> {
        let mut v = MduArrayInfo::default();
        self.with_ptr(nr::GET_ARRAY_INFO, &mut v)?;
        Ok(v)
    }

    pub(crate) fn disk_info(&self, number: i32) -> Result<MduDiskInfo, i32> {
        let mut v = MduDiskInfo {
            number,
            ..Default::default()
        };
        self.with_ptr(nr::GET_DISK_INFO, &mut v)?;
        Ok(v)
    }

    pub(crate) fn set_array_info(&self, info: &MduArrayInfo) -> Result<(), i32> {
        let mut v = *info;
        self.with_ptr(nr::SET_ARRAY_INFO, &mut v)
    }

    pub(crate) fn add_new_disk(&self, info: &MduDiskInfo) -> Result<(), i32> {
        let mut v = *info;
        self.with_ptr(nr::ADD_NEW_DISK, &mut v)
    }

    pub(crate) fn run(&self) -> Result<(), i32> {
        let mut p = MduParam::default();
        self.with_ptr(nr::RUN_ARRAY, &mut p)
    }

    pub(crate) fn stop(&self) -> Result<(), i32> {
        self.raw(nr::STOP_ARRAY, 0)
    }
}
