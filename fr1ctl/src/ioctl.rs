// SPDX-License-Identifier: GPL-2.0

//! md ioctls on an open array node, with errors that say what to do.

use std::ffi::c_void;
use std::fmt;
use std::fs::File;
use std::marker::PhantomData;

use rustix::io::Errno;
use rustix::ioctl::{
    ioctl, Getter, IntegerSetter, Ioctl, IoctlOutput, NoArg, Opcode, Setter, Updater,
};

use crate::logic::abi::{
    fr1_nr, nr, Fr1CopyIo, Fr1RepairRange, MduArrayInfo, MduDiskInfo, MduParam, MduVersion,
};

/// A failed operation: what was attempted, the errno, and a hint.
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) what: String,
    pub(crate) errno: Option<Errno>,
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

    pub(crate) fn os(what: impl Into<String>, errno: Errno, hint: &'static str) -> Self {
        Error {
            what: what.into(),
            errno: Some(errno),
            hint,
        }
    }

    /// An error of the standard library's I/O, `EIO` if it has no errno.
    pub(crate) fn io(what: impl Into<String>, e: &std::io::Error, hint: &'static str) -> Self {
        Error::os(what, Errno::from_io_error(e).unwrap_or(Errno::IO), hint)
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
pub(crate) fn errno_name(e: Errno) -> &'static str {
    match e {
        Errno::PERM => "EPERM",
        Errno::NOENT => "ENOENT",
        Errno::NXIO => "ENXIO",
        Errno::BADF => "EBADF",
        Errno::NOMEM => "ENOMEM",
        Errno::ACCESS => "EACCES",
        Errno::FAULT => "EFAULT",
        Errno::BUSY => "EBUSY",
        Errno::EXIST => "EEXIST",
        Errno::NODEV => "ENODEV",
        Errno::INVAL => "EINVAL",
        Errno::NOTTY => "ENOTTY",
        Errno::NOSPC => "ENOSPC",
        Errno::ROFS => "EROFS",
        Errno::OPNOTSUPP => "EOPNOTSUPP",
        Errno::IO => "EIO",
        Errno::TIMEDOUT => "ETIMEDOUT",
        Errno::UCLEAN => "EUCLEAN",
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
                std::io::Error::from(e),
                self.hint
            ),
            None => write!(f, "{}; {}", self.what, self.hint),
        }
    }
}

/// An md ioctl number as rustix's typed ioctls take it.
const fn op(cmd: u32) -> Opcode {
    cmd as Opcode
}

/// An ioctl as `fr1ctl ioctl` issues it: any number, any argument.
pub(crate) struct RawIoctl<'a> {
    cmd: u32,
    arg: *mut c_void,
    /// The value `arg` points to, if it points to one.
    value: PhantomData<&'a mut [u8]>,
}

impl RawIoctl<'static> {
    /// `cmd` with a plain integer argument, never dereferenced by fr1ctl:
    /// a device number, 0, or an address the kernel must refuse (EFAULT).
    pub(crate) fn int(cmd: u32, value: usize) -> Self {
        RawIoctl {
            cmd,
            arg: std::ptr::without_provenance_mut(value),
            value: PhantomData,
        }
    }
}

impl<'a> RawIoctl<'a> {
    /// `cmd` with a pointer to `value`, which the kernel may read and write.
    pub(crate) fn pointer<T: ?Sized>(cmd: u32, value: &'a mut T) -> Self {
        RawIoctl {
            cmd,
            arg: std::ptr::from_mut(value).cast(),
            value: PhantomData,
        }
    }
}

// SAFETY: The argument is an integer that is not dereferenced in user space,
// or a pointer to a value borrowed for the call. The kernel may write the
// value (IS_MUTATING); nothing is read back here. The caller sizes the value
// by the command (its struct, or a buffer as large as the number's size
// field: see `verbs::raw_ioctl`); a driver that writes more than its number
// says would be at fault, and fr1 answers unknown numbers with ENOTTY.
unsafe impl Ioctl for RawIoctl<'_> {
    type Output = ();
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        op(self.cmd)
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }

    unsafe fn output_from_ptr(_: IoctlOutput, _: *mut c_void) -> rustix::io::Result<()> {
        Ok(())
    }
}

/// An open array node.
pub(crate) struct Array {
    file: File,
}

impl Array {
    pub(crate) fn open(path: &str) -> Result<Array, Error> {
        let file = File::options().read(true).open(path).map_err(|e| {
            Error::io(
                format!("cannot open {path}"),
                &e,
                "is fr1 loaded (modprobe fr1) and are you root?",
            )
        })?;
        Ok(Array { file })
    }

    /// Issues an ioctl as given; returns the errno on failure.
    pub(crate) fn raw(&self, raw: RawIoctl<'_>) -> Result<(), Errno> {
        // SAFETY: See `impl Ioctl for RawIoctl`.
        unsafe { ioctl(&self.file, raw) }
    }

    pub(crate) fn version(&self) -> Result<MduVersion, Errno> {
        // SAFETY: RAID_VERSION writes an mdu_version_t.
        unsafe {
            ioctl(
                &self.file,
                Getter::<{ op(nr::RAID_VERSION) }, MduVersion>::new(),
            )
        }
    }

    pub(crate) fn array_info(&self) -> Result<MduArrayInfo, Errno> {
        // SAFETY: GET_ARRAY_INFO writes an mdu_array_info_t.
        unsafe {
            ioctl(
                &self.file,
                Getter::<{ op(nr::GET_ARRAY_INFO) }, MduArrayInfo>::new(),
            )
        }
    }

    pub(crate) fn disk_info(&self, number: i32) -> Result<MduDiskInfo, Errno> {
        let mut v = MduDiskInfo {
            number,
            ..Default::default()
        };
        // SAFETY: GET_DISK_INFO reads `number` of an mdu_disk_info_t and
        // writes the rest.
        unsafe {
            ioctl(
                &self.file,
                Updater::<{ op(nr::GET_DISK_INFO) }, MduDiskInfo>::new(&mut v),
            )?;
        }
        Ok(v)
    }

    pub(crate) fn set_array_info(&self, info: &MduArrayInfo) -> Result<(), Errno> {
        // SAFETY: SET_ARRAY_INFO reads an mdu_array_info_t.
        unsafe {
            ioctl(
                &self.file,
                Setter::<{ op(nr::SET_ARRAY_INFO) }, _>::new(*info),
            )
        }
    }

    pub(crate) fn add_new_disk(&self, info: &MduDiskInfo) -> Result<(), Errno> {
        // SAFETY: ADD_NEW_DISK reads an mdu_disk_info_t.
        unsafe {
            ioctl(
                &self.file,
                Setter::<{ op(nr::ADD_NEW_DISK) }, _>::new(*info),
            )
        }
    }

    pub(crate) fn run(&self) -> Result<(), Errno> {
        // SAFETY: RUN_ARRAY reads an mdu_param_t (and ignores it).
        unsafe {
            ioctl(
                &self.file,
                Setter::<{ op(nr::RUN_ARRAY) }, _>::new(MduParam::default()),
            )
        }
    }

    pub(crate) fn stop(&self) -> Result<(), Errno> {
        // SAFETY: STOP_ARRAY takes no argument.
        unsafe { ioctl(&self.file, NoArg::<{ op(nr::STOP_ARRAY) }>::new()) }
    }

    /// SET_DISK_FAULTY of the member `dev` (`new_encode_dev`).
    pub(crate) fn set_faulty(&self, dev: u32) -> Result<(), Errno> {
        self.member_op::<{ op(nr::SET_DISK_FAULTY) }>(dev)
    }

    /// HOT_REMOVE_DISK of the member `dev`.
    pub(crate) fn hot_remove(&self, dev: u32) -> Result<(), Errno> {
        self.member_op::<{ op(nr::HOT_REMOVE_DISK) }>(dev)
    }

    /// HOT_ADD_DISK of the device `dev`.
    pub(crate) fn hot_add(&self, dev: u32) -> Result<(), Errno> {
        self.member_op::<{ op(nr::HOT_ADD_DISK) }>(dev)
    }

    /// FR1_READ_COPY of `buf.len()` bytes at byte `offset` of the leg in
    /// `slot`, into `buf`.
    pub(crate) fn read_copy(&self, slot: u32, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let io = Fr1CopyIo {
            slot,
            flags: 0,
            offset,
            length: buf.len() as u64,
            buf: buf.as_mut_ptr() as u64,
        };
        // SAFETY: FR1_READ_COPY reads a struct fr1_copy_io and writes at
        // most `length` bytes at `buf`: the slice, borrowed mutably for the
        // call.
        unsafe { ioctl(&self.file, Setter::<{ op(fr1_nr::READ_COPY) }, _>::new(io)) }
    }

    /// FR1_REPAIR_RANGE of `length` bytes at byte `offset`, good on `from`.
    pub(crate) fn repair_range(&self, from: u32, offset: u64, length: u64) -> Result<(), Errno> {
        let r = Fr1RepairRange {
            from,
            flags: 0,
            offset,
            length,
        };
        // SAFETY: FR1_REPAIR_RANGE reads a struct fr1_repair_range.
        unsafe {
            ioctl(
                &self.file,
                Setter::<{ op(fr1_nr::REPAIR_RANGE) }, _>::new(r),
            )
        }
    }

    fn member_op<const OPCODE: Opcode>(&self, dev: u32) -> Result<(), Errno> {
        // SAFETY: The member ioctls take a device number by value.
        unsafe { ioctl(&self.file, IntegerSetter::<OPCODE>::new_usize(dev as usize)) }
    }
}
