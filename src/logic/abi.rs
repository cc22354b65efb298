// SPDX-License-Identifier: GPL-2.0

//! md's ioctl ABI (`include/uapi/linux/raid/md_u.h`, `md_p.h`) and the
//! validation of every argument fr1 accepts through it.
//!
//! The structs are hand-written `#[repr(C)]` copies; the kernel build asserts
//! that their sizes equal bindgen's view of the uapi headers.

use super::errno::Errno;

/// md's block major; fr1 takes it when md_mod is absent.
pub(crate) const MD_MAJOR: u32 = 9;
/// Most mirrors an fr1 array can have (the slot state word holds 16).
pub(crate) const MAX_MIRRORS: u32 = 16;
/// Highest descriptor number (`mdu_disk_info_t.number`) fr1 accepts; md's
/// 0.90 limit is `MD_SB_DISKS` = 27.
pub(crate) const MAX_DESC_NR: i32 = 26;
/// What `mdadm --detail` probes with GET_DISK_INFO (`MD_SB_DISKS`).
pub(crate) const MD_SB_DISKS: i32 = 27;

/// The dirty bitmap's default block size (fr1's granularity).
pub(crate) const DEFAULT_BLOCK_BYTES: u32 = 4096;
/// The largest bitmap block size.
pub(crate) const MAX_BLOCK_BYTES: u32 = 64 << 20;

/// `mdu_array_info_t.state` bit: the array is clean (no initial resync).
pub(crate) const MD_SB_CLEAN: i32 = 1 << 0;

/// `mdu_disk_info_t.state` bits (md_p.h).
pub(crate) const MD_DISK_FAULTY: i32 = 1 << 0;
/// The disk holds a slot.
pub(crate) const MD_DISK_ACTIVE: i32 = 1 << 1;
/// The disk's data is in sync.
pub(crate) const MD_DISK_SYNC: i32 = 1 << 2;
/// The disk is not in the array.
pub(crate) const MD_DISK_REMOVED: i32 = 1 << 3;
/// Reads avoid the disk.
pub(crate) const MD_DISK_WRITEMOSTLY: i32 = 1 << 9;

/// `mdu_version_t`: md reports 0.90.3.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MduVersion {
    pub(crate) major: i32,
    pub(crate) minor: i32,
    pub(crate) patchlevel: i32,
}

/// The version RAID_VERSION returns (md's own).
pub(crate) const RAID_VERSION_REPLY: MduVersion = MduVersion {
    major: 0,
    minor: 90,
    patchlevel: 3,
};

/// `mdu_array_info_t` (72 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MduArrayInfo {
    pub(crate) major_version: i32,
    pub(crate) minor_version: i32,
    pub(crate) patch_version: i32,
    pub(crate) ctime: u32,
    pub(crate) level: i32,
    /// KiB per member.
    pub(crate) size: i32,
    pub(crate) nr_disks: i32,
    pub(crate) raid_disks: i32,
    pub(crate) md_minor: i32,
    pub(crate) not_persistent: i32,
    pub(crate) utime: u32,
    pub(crate) state: i32,
    pub(crate) active_disks: i32,
    pub(crate) working_disks: i32,
    pub(crate) failed_disks: i32,
    pub(crate) spare_disks: i32,
    pub(crate) layout: i32,
    pub(crate) chunk_size: i32,
}

/// `mdu_disk_info_t` (20 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MduDiskInfo {
    pub(crate) number: i32,
    pub(crate) major: i32,
    pub(crate) minor: i32,
    pub(crate) raid_disk: i32,
    pub(crate) state: i32,
}

/// `mdu_param_t` (12 bytes), RUN_ARRAY's argument; md ignores it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MduParam {
    pub(crate) personality: i32,
    pub(crate) chunk_size: i32,
    pub(crate) max_fault: i32,
}

const IOC_NONE: u32 = 0;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// An ioctl number of type `ty` (`_IOC` of asm-generic/ioctl.h).
const fn ioc_of(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    // `size` is at most 4096 here: the cast cannot truncate.
    (dir << 30) | ((size as u32) << 16) | (ty << 8) | nr
}
/// An md ioctl number (type `MD_MAJOR`).
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    ioc_of(dir, MD_MAJOR, nr, size)
}
const fn io(nr: u32) -> u32 {
    ioc(IOC_NONE, nr, 0)
}
const fn ior<T>(nr: u32) -> u32 {
    ioc(IOC_READ, nr, core::mem::size_of::<T>())
}
const fn iow<T>(nr: u32) -> u32 {
    ioc(IOC_WRITE, nr, core::mem::size_of::<T>())
}

/// The md ioctls, by number (md_u.h).
pub(crate) mod nr {
    use super::*;
    pub(crate) const RAID_VERSION: u32 = ior::<MduVersion>(0x10);
    pub(crate) const GET_ARRAY_INFO: u32 = ior::<MduArrayInfo>(0x11);
    pub(crate) const GET_DISK_INFO: u32 = ior::<MduDiskInfo>(0x12);
    #[cfg_attr(fr1_kernel, allow(dead_code))] // retired in md: ENOTTY (host tests)
    pub(crate) const RAID_AUTORUN: u32 = io(0x14);
    pub(crate) const GET_BITMAP_FILE: u32 = ioc(IOC_READ, 0x15, 4096);
    #[cfg_attr(fr1_kernel, allow(dead_code))] // retired in md: ENOTTY (host tests)
    pub(crate) const CLEAR_ARRAY: u32 = io(0x20);
    pub(crate) const ADD_NEW_DISK: u32 = iow::<MduDiskInfo>(0x21);
    pub(crate) const HOT_REMOVE_DISK: u32 = io(0x22);
    pub(crate) const SET_ARRAY_INFO: u32 = iow::<MduArrayInfo>(0x23);
    #[cfg_attr(fr1_kernel, allow(dead_code))] // retired in md: ENOTTY (host tests)
    pub(crate) const SET_DISK_INFO: u32 = io(0x24);
    #[cfg_attr(fr1_kernel, allow(dead_code))] // retired in md: ENOTTY (host tests)
    pub(crate) const WRITE_RAID_INFO: u32 = io(0x25);
    #[cfg_attr(fr1_kernel, allow(dead_code))] // retired in md: ENOTTY (host tests)
    pub(crate) const UNPROTECT_ARRAY: u32 = io(0x26);
    #[cfg_attr(fr1_kernel, allow(dead_code))] // retired in md: ENOTTY (host tests)
    pub(crate) const PROTECT_ARRAY: u32 = io(0x27);
    pub(crate) const HOT_ADD_DISK: u32 = io(0x28);
    pub(crate) const SET_DISK_FAULTY: u32 = io(0x29);
    #[cfg_attr(fr1_kernel, allow(dead_code))] // retired in md: ENOTTY (host tests)
    pub(crate) const HOT_GENERATE_ERROR: u32 = io(0x2a);
    pub(crate) const SET_BITMAP_FILE: u32 = ioc(IOC_WRITE, 0x2b, 4);
    pub(crate) const RUN_ARRAY: u32 = iow::<MduParam>(0x30);
    pub(crate) const STOP_ARRAY: u32 = io(0x32);
    pub(crate) const STOP_ARRAY_RO: u32 = io(0x33);
    pub(crate) const RESTART_ARRAY_RW: u32 = io(0x34);
    #[cfg_attr(fr1_kernel, allow(dead_code))] // retired in md: ENOTTY (host tests)
    pub(crate) const CLUSTERED_DISK_NACK: u32 = io(0x35);
}

/// fr1's own ioctl type (`FR1_IOCTL_TYPE` of include/uapi/linux/fr1.h).
pub(crate) const FR1_IOCTL_TYPE: u32 = 0xF1;
/// The most bytes one FR1_READ_COPY or FR1_REPAIR_RANGE call takes
/// (`FR1_MAX_COPY_BYTES`); longer ranges take several calls.
pub(crate) const FR1_MAX_COPY_BYTES: u64 = 1 << 20;

/// `struct fr1_copy_io` (32 bytes), FR1_READ_COPY's argument: read
/// `length` bytes at byte `offset` of the array from the leg in `slot`
/// into the user buffer at `buf`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fr1CopyIo {
    pub(crate) slot: u32,
    /// No flag is defined: must be 0.
    pub(crate) flags: u32,
    pub(crate) offset: u64,
    pub(crate) length: u64,
    pub(crate) buf: u64,
}

/// `struct fr1_repair_range` (24 bytes), FR1_REPAIR_RANGE's argument: the
/// range (bytes) is good on the leg in `from`; write it over the others.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fr1RepairRange {
    pub(crate) from: u32,
    /// No flag is defined: must be 0.
    pub(crate) flags: u32,
    pub(crate) offset: u64,
    pub(crate) length: u64,
}

/// fr1's own ioctls, by number (include/uapi/linux/fr1.h).
pub(crate) mod fr1_nr {
    use super::*;
    /// `_IOW(FR1_IOCTL_TYPE, 0x01, struct fr1_copy_io)`.
    pub(crate) const READ_COPY: u32 = ioc_of(
        IOC_WRITE,
        FR1_IOCTL_TYPE,
        0x01,
        core::mem::size_of::<Fr1CopyIo>(),
    );
    /// `_IOW(FR1_IOCTL_TYPE, 0x02, struct fr1_repair_range)`.
    pub(crate) const REPAIR_RANGE: u32 = ioc_of(
        IOC_WRITE,
        FR1_IOCTL_TYPE,
        0x02,
        core::mem::size_of::<Fr1RepairRange>(),
    );
}

/// An md ioctl fr1 understands, or one of fr1's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmd {
    RaidVersion,
    GetArrayInfo,
    GetDiskInfo,
    GetBitmapFile,
    SetArrayInfo,
    AddNewDisk,
    RunArray,
    StopArray,
    StopArrayRo,
    RestartArrayRw,
    SetDiskFaulty,
    HotRemoveDisk,
    HotAddDisk,
    SetBitmapFile,
    /// FR1_READ_COPY.
    ReadCopy,
    /// FR1_REPAIR_RANGE.
    RepairRange,
}

impl Cmd {
    /// Decodes an ioctl number. Anything else, md's retired ioctls included,
    /// is not an fr1 ioctl: ENOTTY, as md answers them.
    pub(crate) fn decode(cmd: u32) -> Result<Cmd, Errno> {
        Ok(match cmd {
            nr::RAID_VERSION => Cmd::RaidVersion,
            nr::GET_ARRAY_INFO => Cmd::GetArrayInfo,
            nr::GET_DISK_INFO => Cmd::GetDiskInfo,
            nr::GET_BITMAP_FILE => Cmd::GetBitmapFile,
            nr::SET_ARRAY_INFO => Cmd::SetArrayInfo,
            nr::ADD_NEW_DISK => Cmd::AddNewDisk,
            nr::RUN_ARRAY => Cmd::RunArray,
            nr::STOP_ARRAY => Cmd::StopArray,
            nr::STOP_ARRAY_RO => Cmd::StopArrayRo,
            nr::RESTART_ARRAY_RW => Cmd::RestartArrayRw,
            nr::SET_DISK_FAULTY => Cmd::SetDiskFaulty,
            nr::HOT_REMOVE_DISK => Cmd::HotRemoveDisk,
            nr::HOT_ADD_DISK => Cmd::HotAddDisk,
            nr::SET_BITMAP_FILE => Cmd::SetBitmapFile,
            fr1_nr::READ_COPY => Cmd::ReadCopy,
            fr1_nr::REPAIR_RANGE => Cmd::RepairRange,
            _ => return Err(Errno::NoTty),
        })
    }

    /// md lets anyone query; every change needs CAP_SYS_ADMIN (EACCES), and
    /// so does a read of one chosen leg (it goes around the array's reads).
    pub(crate) fn needs_admin(self) -> bool {
        !matches!(
            self,
            Cmd::RaidVersion | Cmd::GetArrayInfo | Cmd::GetDiskInfo
        )
    }
}

/// A device number as md's ioctls carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DevNum {
    pub(crate) major: u32,
    pub(crate) minor: u32,
}

impl DevNum {
    /// From the `major`/`minor` fields of `mdu_disk_info_t`: the kernel's
    /// `dev_t` has 12 bits of major and 20 of minor (`MKDEV`). Major 0 is
    /// never a block device.
    pub(crate) fn from_parts(major: i32, minor: i32) -> Result<DevNum, Errno> {
        let major = u32::try_from(major).map_err(|_| Errno::Inval)?;
        let minor = u32::try_from(minor).map_err(|_| Errno::Inval)?;
        if major == 0 || major >= 1 << 12 || minor >= 1 << 20 {
            return Err(Errno::Inval);
        }
        Ok(DevNum { major, minor })
    }

    /// From the argument of HOT_ADD/HOT_REMOVE/SET_DISK_FAULTY, which md
    /// decodes with `new_decode_dev()` (the 32-bit user-space encoding).
    pub(crate) fn from_user_arg(arg: usize) -> Result<DevNum, Errno> {
        let arg = u32::try_from(arg).map_err(|_| Errno::Inval)?;
        let major = (arg & 0xfff00) >> 8;
        let minor = (arg & 0xff) | ((arg >> 12) & 0xfff00);
        DevNum::from_parts(major as i32, minor as i32)
    }

    /// The argument user space passes (`new_encode_dev()`), the inverse of
    /// [`DevNum::from_user_arg`].
    #[cfg_attr(fr1_kernel, allow(dead_code))] // fr1ctl and the host tests encode
    pub(crate) fn to_user_arg(self) -> u32 {
        (self.minor & 0xff) | (self.major << 8) | ((self.minor & !0xff) << 12)
    }

    /// The kernel's internal `dev_t` (`MKDEV`).
    pub(crate) fn to_kdev(self) -> u32 {
        (self.major << 20) | self.minor
    }

    /// From the kernel's internal `dev_t`.
    pub(crate) fn from_kdev(dev: u32) -> DevNum {
        DevNum {
            major: dev >> 20,
            minor: dev & 0xfffff,
        }
    }
}

/// What SET_ARRAY_INFO configures, once validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Mirrors (slots).
    pub(crate) raid_disks: u32,
    /// Sectors per member; 0: the smallest member's size at RUN_ARRAY.
    pub(crate) member_sectors: u64,
    /// The user asserted the members are identical (`--assume-clean`).
    pub(crate) clean: bool,
    /// `chunk_size` as given: fr1 uses it as the dirty bitmap's block size
    /// (0: [`DEFAULT_BLOCK_BYTES`]); md ignores it for RAID1.
    pub(crate) chunk_size: i32,
    /// Log2 of the bitmap block size in sectors.
    pub(crate) block_shift: u32,
    /// Stored and reported back; meaningless for RAID1.
    pub(crate) layout: i32,
    /// Reported back by GET_ARRAY_INFO.
    pub(crate) ctime: u32,
}

/// Validates SET_ARRAY_INFO for a new array of minor `minor`.
///
/// fr1 builds non-persistent RAID1 arrays only: any other level, or a
/// persistent (superblock) array, is EINVAL, as md answers a personality it
/// does not have.
pub(crate) fn validate_set_array_info(info: &MduArrayInfo, minor: u32) -> Result<Geometry, Errno> {
    if info.level != 1 || info.not_persistent != 1 {
        return Err(Errno::Inval);
    }
    let raid_disks = u32::try_from(info.raid_disks).map_err(|_| Errno::Inval)?;
    if raid_disks == 0 || raid_disks > MAX_MIRRORS {
        return Err(Errno::Inval);
    }
    if info.nr_disks < 0 || info.nr_disks > MD_SB_DISKS {
        return Err(Errno::Inval);
    }
    if u32::try_from(info.md_minor) != Ok(minor) {
        return Err(Errno::Inval);
    }
    if info.state & !MD_SB_CLEAN != 0 {
        return Err(Errno::Inval);
    }
    let size_kib = u64::try_from(info.size).map_err(|_| Errno::Inval)?;
    if info.layout < 0 {
        return Err(Errno::Inval);
    }
    let block = match u32::try_from(info.chunk_size).map_err(|_| Errno::Inval)? {
        0 => DEFAULT_BLOCK_BYTES,
        b if b.is_power_of_two() && (DEFAULT_BLOCK_BYTES..=MAX_BLOCK_BYTES).contains(&b) => b,
        _ => return Err(Errno::Inval),
    };
    Ok(Geometry {
        raid_disks,
        member_sectors: size_kib * 2,
        clean: info.state & MD_SB_CLEAN != 0,
        chunk_size: info.chunk_size,
        block_shift: (block / 512).trailing_zeros(),
        layout: info.layout,
        ctime: info.ctime,
    })
}

/// What ADD_NEW_DISK asks for, once validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NewDisk {
    /// The member device.
    pub(crate) dev: DevNum,
    /// Descriptor number (`number`).
    pub(crate) desc_nr: u32,
    /// Slot (`raid_disk`).
    pub(crate) slot: u32,
    /// The caller declares the data in sync (`MD_DISK_SYNC`).
    pub(crate) in_sync: bool,
    /// Reads avoid it.
    pub(crate) write_mostly: bool,
}

/// Validates ADD_NEW_DISK against an array of `raid_disks` slots.
pub(crate) fn validate_add_new_disk(info: &MduDiskInfo, raid_disks: u32) -> Result<NewDisk, Errno> {
    let dev = DevNum::from_parts(info.major, info.minor)?;
    if !(0..=MAX_DESC_NR).contains(&info.number) {
        return Err(Errno::Inval);
    }
    let slot = u32::try_from(info.raid_disk).map_err(|_| Errno::Inval)?;
    if slot >= raid_disks {
        return Err(Errno::Inval);
    }
    let known = MD_DISK_ACTIVE | MD_DISK_SYNC | MD_DISK_WRITEMOSTLY;
    if info.state & !known != 0 {
        return Err(Errno::Inval);
    }
    Ok(NewDisk {
        dev,
        desc_nr: info.number as u32,
        slot,
        in_sync: info.state & MD_DISK_SYNC != 0,
        write_mostly: info.state & MD_DISK_WRITEMOSTLY != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_md() {
        assert_eq!(nr::RAID_VERSION, 0x800C_0910);
        assert_eq!(nr::GET_ARRAY_INFO, 0x8048_0911);
        assert_eq!(nr::GET_DISK_INFO, 0x8014_0912);
        assert_eq!(nr::GET_BITMAP_FILE, 0x9000_0915);
        assert_eq!(nr::ADD_NEW_DISK, 0x4014_0921);
        assert_eq!(nr::SET_ARRAY_INFO, 0x4048_0923);
        assert_eq!(nr::SET_BITMAP_FILE, 0x4004_092B);
        assert_eq!(nr::RUN_ARRAY, 0x400C_0930);
        assert_eq!(nr::HOT_ADD_DISK, 0x928);
        assert_eq!(nr::SET_DISK_FAULTY, 0x929);
        assert_eq!(nr::STOP_ARRAY, 0x932);
        assert_eq!(core::mem::size_of::<MduArrayInfo>(), 72);
        assert_eq!(core::mem::size_of::<MduDiskInfo>(), 20);
    }

    #[test]
    fn fr1_ioctl_numbers_match_header() {
        // gcc's _IOW(0xF1, 1, struct fr1_copy_io) and _IOW(0xF1, 2, struct
        // fr1_repair_range) of include/uapi/linux/fr1.h; tests/host checks
        // the header itself.
        assert_eq!(fr1_nr::READ_COPY, 0x4020_F101);
        assert_eq!(fr1_nr::REPAIR_RANGE, 0x4018_F102);
        assert_eq!(core::mem::size_of::<Fr1CopyIo>(), 32);
        assert_eq!(core::mem::size_of::<Fr1RepairRange>(), 24);
        assert_eq!(Cmd::decode(0x4020_F101), Ok(Cmd::ReadCopy));
        assert_eq!(Cmd::decode(0x4018_F102), Ok(Cmd::RepairRange));
        // Another size or direction is another ioctl.
        assert_eq!(Cmd::decode(0x8020_F101), Err(Errno::NoTty));
        assert_eq!(Cmd::decode(0x4018_F101), Err(Errno::NoTty));
        assert!(Cmd::ReadCopy.needs_admin());
        assert!(Cmd::RepairRange.needs_admin());
    }

    #[test]
    fn decode_and_privilege() {
        assert_eq!(Cmd::decode(0x932), Ok(Cmd::StopArray));
        assert_eq!(Cmd::decode(nr::RAID_AUTORUN), Err(Errno::NoTty));
        assert_eq!(Cmd::decode(nr::CLEAR_ARRAY), Err(Errno::NoTty));
        assert_eq!(Cmd::decode(nr::HOT_GENERATE_ERROR), Err(Errno::NoTty));
        assert_eq!(Cmd::decode(0x1234), Err(Errno::NoTty));
        assert!(!Cmd::GetDiskInfo.needs_admin());
        assert!(Cmd::StopArray.needs_admin());
        assert!(Cmd::SetDiskFaulty.needs_admin());
    }

    fn build_info() -> MduArrayInfo {
        MduArrayInfo {
            level: 1,
            raid_disks: 2,
            nr_disks: 2,
            md_minor: 0,
            not_persistent: 1,
            state: MD_SB_CLEAN,
            ..Default::default()
        }
    }

    #[test]
    fn set_array_info_validation() {
        let g = validate_set_array_info(&build_info(), 0).unwrap();
        assert_eq!(g.raid_disks, 2);
        assert!(g.clean);
        assert_eq!(g.member_sectors, 0);
        let bad = |f: fn(&mut MduArrayInfo)| {
            let mut i = build_info();
            f(&mut i);
            validate_set_array_info(&i, 0)
        };
        assert_eq!(bad(|i| i.level = 5), Err(Errno::Inval));
        assert_eq!(bad(|i| i.not_persistent = 0), Err(Errno::Inval));
        assert_eq!(bad(|i| i.raid_disks = 0), Err(Errno::Inval));
        assert_eq!(bad(|i| i.raid_disks = 17), Err(Errno::Inval));
        assert_eq!(bad(|i| i.raid_disks = -1), Err(Errno::Inval));
        assert_eq!(bad(|i| i.size = -1), Err(Errno::Inval));
        assert_eq!(bad(|i| i.md_minor = 3), Err(Errno::Inval));
        assert_eq!(bad(|i| i.state = 1 << 8), Err(Errno::Inval));
        assert_eq!(bad(|i| i.nr_disks = -2), Err(Errno::Inval));
        assert_eq!(bad(|i| i.size = 1024).unwrap().member_sectors, 2048);
        assert_eq!(g.block_shift, 3, "4 KiB blocks by default");
        assert_eq!(bad(|i| i.chunk_size = 65536).unwrap().block_shift, 7);
        assert_eq!(bad(|i| i.chunk_size = 64 << 20).unwrap().block_shift, 17);
        assert_eq!(bad(|i| i.chunk_size = 2048), Err(Errno::Inval));
        assert_eq!(bad(|i| i.chunk_size = 12288), Err(Errno::Inval));
        assert_eq!(bad(|i| i.chunk_size = 128 << 20), Err(Errno::Inval));
        assert!(!bad(|i| i.state = 0).unwrap().clean);
    }

    #[test]
    fn add_new_disk_validation() {
        let ok = MduDiskInfo {
            number: 1,
            major: 254,
            minor: 16,
            raid_disk: 1,
            state: MD_DISK_ACTIVE | MD_DISK_SYNC,
        };
        let d = validate_add_new_disk(&ok, 2).unwrap();
        assert_eq!(
            d.dev,
            DevNum {
                major: 254,
                minor: 16
            }
        );
        assert!(d.in_sync && !d.write_mostly);
        let bad = |f: fn(&mut MduDiskInfo)| {
            let mut i = ok;
            f(&mut i);
            validate_add_new_disk(&i, 2)
        };
        assert_eq!(bad(|i| i.raid_disk = 2), Err(Errno::Inval));
        assert_eq!(bad(|i| i.raid_disk = -1), Err(Errno::Inval));
        assert_eq!(bad(|i| i.number = 27), Err(Errno::Inval));
        assert_eq!(bad(|i| i.major = 0), Err(Errno::Inval));
        assert_eq!(bad(|i| i.minor = 1 << 20), Err(Errno::Inval));
        assert_eq!(bad(|i| i.major = -1), Err(Errno::Inval));
        assert_eq!(bad(|i| i.state = MD_DISK_FAULTY), Err(Errno::Inval));
        assert!(
            bad(|i| i.state |= MD_DISK_WRITEMOSTLY)
                .unwrap()
                .write_mostly
        );
    }

    #[test]
    fn dev_numbers() {
        // new_encode_dev(MKDEV(254, 16)) as user space passes it.
        let arg = 16 | (254 << 8);
        assert_eq!(
            DevNum::from_user_arg(arg).unwrap(),
            DevNum {
                major: 254,
                minor: 16
            }
        );
        let big = DevNum {
            major: 259,
            minor: 300_000,
        };
        assert_eq!(
            DevNum::from_user_arg(big.to_user_arg() as usize).unwrap(),
            big
        );
        assert_eq!(big.to_user_arg(), 224 | (259 << 8) | (1171 << 20));
        assert_eq!(DevNum::from_kdev(big.to_kdev()), big);
        assert_eq!(DevNum::from_user_arg(0), Err(Errno::Inval));
        assert_eq!(DevNum::from_user_arg(usize::MAX), Err(Errno::Inval));
    }
}
