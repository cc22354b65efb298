// SPDX-License-Identifier: GPL-2.0

//! md's ioctls on an fr1 array (include/uapi/linux/raid/md_u.h), and fr1's
//! own (include/uapi/linux/fr1.h, `array/copyio.rs`); see the table in
//! Documentation/fr1/admin.rst.

use core::sync::atomic::Ordering;
use kernel::{
    prelude::*,
    sync::Arc,
    uaccess::{UserPtr, UserSlice},
};

use super::{to_error, Array, Phase};
use crate::logic::abi::{self, Cmd, DevNum, MduArrayInfo, MduDiskInfo, MAX_MIRRORS};
use crate::sys::uapi::capable_sys_admin;

/// Runs md ioctl `cmd` with argument `arg` on `array`.
pub(crate) fn dispatch(array: &Arc<Array>, cmd: u32, arg: usize) -> Result<i32> {
    let cmd = Cmd::decode(cmd).map_err(to_error)?;
    if cmd.needs_admin() && !capable_sys_admin() {
        return Err(EACCES);
    }
    let user = |len| UserSlice::new(UserPtr::from_addr(arg), len);
    match cmd {
        Cmd::RaidVersion => user(size_of::<abi::MduVersion>())
            .writer()
            .write(&abi::RAID_VERSION_REPLY)?,
        Cmd::GetArrayInfo => {
            let info = array.array_info()?;
            user(size_of::<MduArrayInfo>()).writer().write(&info)?;
        }
        Cmd::GetDiskInfo => {
            let (mut r, mut w) = user(size_of::<MduDiskInfo>()).reader_writer();
            let mut info: MduDiskInfo = r.read()?;
            array.disk_info(&mut info)?;
            w.write(&info)?;
        }
        Cmd::GetBitmapFile => {
            // fr1's bitmap lives in memory: no file, as md reports "none".
            array.configured()?;
            user(4096).writer().write_slice(&[0u8; 4096])?;
        }
        Cmd::SetArrayInfo => {
            if arg == 0 {
                return Err(EINVAL);
            }
            let info: MduArrayInfo = user(size_of::<MduArrayInfo>()).reader().read()?;
            array.set_array_info(&info).map_err(to_error)?;
        }
        Cmd::AddNewDisk => {
            let info: MduDiskInfo = user(size_of::<MduDiskInfo>()).reader().read()?;
            if array.is_running() {
                // md's "add to a running array": fr1 copies what is missing
                // (never trusts MD_DISK_SYNC, unlike md on build arrays).
                array.hot_add_as(
                    DevNum::from_parts(info.major, info.minor).map_err(to_error)?,
                    info.state & abi::MD_DISK_WRITEMOSTLY != 0,
                )?;
            } else {
                array.add_new_disk(&info)?;
            }
        }
        // md ignores RUN_ARRAY's argument; so does fr1.
        Cmd::RunArray => array.run()?,
        Cmd::StopArray => array.stop()?,
        // fr1 arrays are never read-only.
        Cmd::StopArrayRo | Cmd::RestartArrayRw => return Err(EINVAL),
        Cmd::SetDiskFaulty => {
            array.set_disk_faulty(DevNum::from_user_arg(arg).map_err(to_error)?)?
        }
        Cmd::HotRemoveDisk => array.hot_remove(DevNum::from_user_arg(arg).map_err(to_error)?)?,
        Cmd::HotAddDisk => array.hot_add(DevNum::from_user_arg(arg).map_err(to_error)?)?,
        // The write-intent bitmap is fr1's own, in memory.
        Cmd::SetBitmapFile => return Err(EINVAL),
        Cmd::ReadCopy => {
            let io: abi::Fr1CopyIo = user(size_of::<abi::Fr1CopyIo>()).reader().read()?;
            array.read_copy(&io)?;
        }
        Cmd::RepairRange => {
            let r: abi::Fr1RepairRange = user(size_of::<abi::Fr1RepairRange>()).reader().read()?;
            array.repair_range(&r)?;
        }
    }
    Ok(0)
}

impl Array {
    fn is_running(&self) -> bool {
        self.config.lock().phase == Phase::Running
    }

    /// ENODEV until SET_ARRAY_INFO, as md.
    fn configured(&self) -> Result {
        match self.config.lock().phase {
            Phase::Configured | Phase::Running => Ok(()),
            Phase::Empty | Phase::Stopped => Err(ENODEV),
        }
    }

    fn array_info(&self) -> Result<MduArrayInfo> {
        let cfg = self.config.lock();
        let g = match cfg.phase {
            Phase::Configured | Phase::Running => cfg.geometry.ok_or(ENODEV)?,
            Phase::Empty | Phase::Stopped => return Err(ENODEV),
        };
        let st = self.state();
        let dev_sectors = if cfg.sectors > 0 {
            cfg.sectors
        } else {
            g.member_sectors
        };
        let size = i32::try_from(dev_sectors / 2).unwrap_or(-1);
        let count = |n: u32| n as i32;
        let nr_disks = (0..MAX_MIRRORS).filter(|&i| st.present(i)).count() as i32;
        Ok(MduArrayInfo {
            major_version: 0,
            minor_version: 90,
            patch_version: 3,
            ctime: g.ctime,
            level: 1,
            size,
            nr_disks,
            raid_disks: count(g.raid_disks),
            md_minor: self.minor as i32,
            not_persistent: 1,
            utime: 0,
            state: if self.resync_pending.load(Ordering::Relaxed) {
                0
            } else {
                abi::MD_SB_CLEAN
            },
            active_disks: count(st.active()),
            working_disks: count(st.working()),
            failed_disks: count(st.failed()),
            spare_disks: count(st.spares()),
            layout: g.layout,
            chunk_size: g.chunk_size,
        })
    }

    fn disk_info(&self, info: &mut MduDiskInfo) -> Result {
        self.configured()?;
        // One view of the slots: no member change runs meanwhile.
        let _cfg = self.config.lock();
        let st = self.state();
        let slot = (0..MAX_MIRRORS).find(|&i| {
            st.present(i)
                && i32::try_from(self.slot[i as usize].desc_nr.load(Ordering::Relaxed))
                    == Ok(info.number)
        });
        match slot.and_then(|s| self.slot_get_present(s).map(|m| (s, m))) {
            Some((s, m)) => {
                let dev = m.dev();
                info.major = dev.major as i32;
                info.minor = dev.minor as i32;
                info.raid_disk = s as i32;
                info.state = if st.faulty(s) {
                    abi::MD_DISK_FAULTY
                } else if st.in_sync(s) {
                    abi::MD_DISK_ACTIVE | abi::MD_DISK_SYNC
                } else {
                    0
                };
                if st.write_mostly(s) {
                    info.state |= abi::MD_DISK_WRITEMOSTLY;
                }
            }
            None => {
                info.major = 0;
                info.minor = 0;
                info.raid_disk = -1;
                info.state = abi::MD_DISK_REMOVED;
            }
        }
        Ok(())
    }
}
