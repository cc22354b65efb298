// SPDX-License-Identifier: GPL-2.0

//! Device numbers and nodes: members by path, arrays by name.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use rustix::fs::{major, makedev, minor, mknodat, FileType, Mode, CWD};
use rustix::io::Errno;

use crate::ioctl::Error;
use crate::logic::abi::DevNum;

/// The device number of block device `path`.
pub(crate) fn block_dev(path: &str) -> Result<DevNum, Error> {
    let md = std::fs::metadata(path).map_err(|e| {
        Error::io(
            format!("cannot stat {path}"),
            &e,
            "name an existing block device",
        )
    })?;
    if !md.file_type().is_block_device() {
        return Err(Error::os(
            format!("{path} is not a block device"),
            Errno::NOTTY,
            "members must be block devices",
        ));
    }
    let rdev = md.rdev();
    Ok(DevNum {
        major: major(rdev),
        minor: minor(rdev),
    })
}

/// The argument HOT_ADD/HOT_REMOVE/SET_DISK_FAULTY take (`new_encode_dev`).
pub(crate) fn encode(dev: DevNum) -> u32 {
    dev.to_user_arg()
}

/// `/dev/<name>` of a device number, from sysfs; `maj:min` if unknown.
pub(crate) fn name_of(major: i32, minor: i32) -> String {
    let uevent = format!("/sys/dev/block/{major}:{minor}/uevent");
    std::fs::read_to_string(uevent)
        .ok()
        .and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("DEVNAME=").map(|n| format!("/dev/{n}")))
        })
        .unwrap_or_else(|| format!("{major}:{minor}"))
}

/// Splits an array name (`/dev/md0`, `md0`, `/dev/fr3`) into its prefix
/// and minor.
pub(crate) fn parse_array_name(name: &str) -> Option<(&'static str, u32)> {
    let base = name.rsplit('/').next()?;
    for prefix in ["md", "fr"] {
        if let Some(n) = base.strip_prefix(prefix) {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                return Some((prefix, n.parse().ok()?));
            }
        }
    }
    None
}

/// The block major registered under `name` in /proc/devices.
fn proc_devices_major(text: &str, name: &str) -> Option<u32> {
    let block = text.split("Block devices:").nth(1)?;
    block.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let major = it.next()?.parse().ok()?;
        (it.next()? == name).then_some(major)
    })
}

/// Makes sure the array node exists: like mdadm, create it (mknod) when
/// missing; opening it makes fr1 create the array.
pub(crate) fn ensure_node(path: &str) -> Result<String, Error> {
    let (prefix, minor) = parse_array_name(path)
        .ok_or_else(|| Error::usage(format!("'{path}' is not an array name (mdN or frN)")))?;
    let path = if path.contains('/') {
        path.to_string()
    } else {
        format!("/dev/{prefix}{minor}")
    };
    if std::fs::metadata(&path).is_ok() {
        return Ok(path);
    }
    let devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    let major = match prefix {
        "md" => proc_devices_major(&devices, "md"),
        _ => proc_devices_major(&devices, "fr1"),
    }
    .ok_or_else(|| {
        Error::os(
            format!("no block major for {prefix} devices"),
            Errno::NODEV,
            "load fr1 first (modprobe fr1); /dev/frN needs fr1 without md compat",
        )
    })?;
    mknodat(
        CWD,
        &path,
        FileType::BlockDevice,
        Mode::from_raw_mode(0o660),
        makedev(major, minor),
    )
    .map_err(|e| Error::os(format!("cannot create {path}"), e, "are you root?"))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_names() {
        assert_eq!(parse_array_name("/dev/md0"), Some(("md", 0)));
        assert_eq!(parse_array_name("fr12"), Some(("fr", 12)));
        assert_eq!(parse_array_name("/dev/md"), None);
        assert_eq!(parse_array_name("/dev/sda"), None);
        assert_eq!(parse_array_name("/dev/md1p2"), None);
    }

    #[test]
    fn majors_from_proc_devices() {
        let t =
            "Character devices:\n  1 mem\n  9 st\n\nBlock devices:\n  7 loop\n  9 md\n252 fr1\n";
        assert_eq!(proc_devices_major(t, "md"), Some(9));
        assert_eq!(proc_devices_major(t, "fr1"), Some(252));
        assert_eq!(proc_devices_major(t, "st"), None);
    }

    #[test]
    fn encode_matches_new_encode_dev() {
        let d = DevNum {
            major: 259,
            minor: 300_000,
        };
        assert_eq!(DevNum::from_user_arg(encode(d) as usize).unwrap(), d);
    }
}
