// SPDX-License-Identifier: GPL-2.0

//! Command line of fr1ctl.

use crate::dev;
use crate::ioctl::{errno_name, Array, Error};
use crate::logic::abi::{self, MduArrayInfo, MduDiskInfo};
use crate::report;

pub(crate) const USAGE: &str = "\
usage: fr1ctl COMMAND ARRAY [ARGS]
  build ARRAY --level=1 --raid-devices=N [--assume-clean] DEV...   (alias: create)
        [--write-mostly DEV]   mark the following DEV write-mostly
  fail ARRAY DEV        mark DEV faulty            (alias: setfaulty)
  remove ARRAY DEV      take a faulty DEV out      (alias: hotremove)
  add ARRAY DEV         add DEV to a running array (alias: hotadd)
  re-add ARRAY DEV      add a former member back
  stop ARRAY            stop the array and release its members
  detail ARRAY [--json] show the array and its members
  ioctl ARRAY CMD ARG   issue a raw md ioctl (numbers, for tests)
ARRAY is /dev/mdN (fr1 as md) or /dev/frN (next to md); it is created on
first use, as md does.";

/// A parsed command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Build {
        array: String,
        raid_disks: i32,
        clean: bool,
        members: Vec<(String, bool)>,
    },
    Fail(String, String),
    Remove(String, String),
    Add(String, String),
    ReAdd(String, String),
    Stop(String),
    Detail(String, bool),
    Raw(String, u32, u64),
    Help,
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: &[String]) -> Result<Command, Error> {
    let mut it = args.iter().map(String::as_str);
    let verb = it.next().ok_or_else(|| Error::usage("no command"))?;
    if matches!(verb, "help" | "-h" | "--help") {
        return Ok(Command::Help);
    }
    let array = it
        .next()
        .ok_or_else(|| Error::usage(format!("'{verb}' needs an array")))?
        .to_string();
    let rest: Vec<&str> = it.collect();
    let one = |what: &str| -> Result<String, Error> {
        match rest.as_slice() {
            [d] => Ok(d.to_string()),
            _ => Err(Error::usage(format!(
                "'{what}' takes the array and one device"
            ))),
        }
    };
    Ok(match verb {
        "build" | "create" => {
            let (mut level, mut raid_disks, mut clean, mut wm) = (None, None, false, false);
            let mut members = Vec::new();
            let mut i = 0;
            while i < rest.len() {
                let a = rest[i];
                let val = |flag: &str| -> Option<&str> {
                    a.strip_prefix(flag).and_then(|v| v.strip_prefix('='))
                };
                if let Some(v) = val("--level").or(val("-l")) {
                    level = Some(v.to_string());
                } else if let Some(v) = val("--raid-devices").or(val("-n")) {
                    raid_disks = v.parse::<i32>().ok();
                    if raid_disks.is_none() {
                        return Err(Error::usage(format!("bad --raid-devices '{v}'")));
                    }
                } else if a == "--assume-clean" {
                    clean = true;
                } else if a == "--write-mostly" || a == "-W" {
                    wm = true;
                } else if a.starts_with('-') {
                    return Err(Error::usage(format!("unknown option '{a}'")));
                } else {
                    members.push((a.to_string(), wm));
                    wm = false;
                }
                i += 1;
            }
            match level.as_deref() {
                Some("1" | "raid1" | "mirror") => {}
                Some(l) => {
                    return Err(Error::usage(format!(
                        "fr1 builds RAID1 only, not level '{l}'"
                    )))
                }
                None => return Err(Error::usage("missing --level=1")),
            }
            let raid_disks = raid_disks.ok_or_else(|| Error::usage("missing --raid-devices=N"))?;
            if usize::try_from(raid_disks).ok() != Some(members.len()) {
                return Err(Error::usage(format!(
                    "--raid-devices={raid_disks} but {} devices given",
                    members.len()
                )));
            }
            Command::Build {
                array,
                raid_disks,
                clean,
                members,
            }
        }
        "fail" | "setfaulty" => Command::Fail(array, one(verb)?),
        "remove" | "hotremove" => Command::Remove(array, one(verb)?),
        "add" | "hotadd" => Command::Add(array, one(verb)?),
        "re-add" => Command::ReAdd(array, one(verb)?),
        "stop" if rest.is_empty() => Command::Stop(array),
        "detail" => Command::Detail(array, rest == ["--json"]),
        "ioctl" => match rest.as_slice() {
            [c, a] => Command::Raw(
                array,
                parse_num(c)
                    .and_then(|c| u32::try_from(c).ok())
                    .ok_or_else(|| Error::usage("bad ioctl number"))?,
                parse_num(a).ok_or_else(|| Error::usage("bad ioctl argument"))?,
            ),
            _ => {
                return Err(Error::usage(
                    "'ioctl' takes the array, a number and an argument",
                ))
            }
        },
        _ => return Err(Error::usage(format!("unknown command '{verb}'"))),
    })
}

fn fail(what: String, hint: &'static str) -> impl FnOnce(i32) -> Error {
    move |e| Error::os(what, e, hint)
}

fn member_op(
    array: &str,
    devpath: &str,
    cmd: u32,
    verb: &str,
    hints: fn(i32) -> &'static str,
) -> Result<(), Error> {
    let a = Array::open(array)?;
    let d = dev::block_dev(devpath)?;
    a.raw(cmd, libc::c_ulong::from(dev::encode(d)))
        .map_err(|e| Error::os(format!("{verb} {devpath} on {array} failed"), e, hints(e)))?;
    println!("fr1ctl: {verb} {devpath} on {array}");
    Ok(())
}

/// Runs a parsed command.
pub(crate) fn run(cmd: &Command) -> Result<(), Error> {
    match cmd {
        Command::Help => println!("{USAGE}"),
        Command::Build {
            array,
            raid_disks,
            clean,
            members,
        } => build(array, *raid_disks, *clean, members)?,
        Command::Fail(a, d) => {
            member_op(a, d, abi::nr::SET_DISK_FAULTY, "set faulty", |e| match e {
                libc::EBUSY => {
                    "it holds the last in-sync copy of the data; add another mirror first"
                }
                libc::ENODEV => "it is not a member of this array",
                _ => "check the array with 'fr1ctl detail'",
            })?
        }
        Command::Remove(a, d) => {
            member_op(a, d, abi::nr::HOT_REMOVE_DISK, "removed", |e| match e {
                libc::EBUSY => "it is still active (fail it first) or has I/O in flight (retry)",
                libc::ENXIO => "it is not a member of this array",
                _ => "check the array with 'fr1ctl detail'",
            })?
        }
        Command::Add(a, d) | Command::ReAdd(a, d) => {
            member_op(a, d, abi::nr::HOT_ADD_DISK, "added", |e| match e {
                libc::EOPNOTSUPP => {
                    "adding to a running array needs the resync engine, not in this fr1 version"
                }
                libc::EBUSY => "the device is in use",
                _ => "check the array with 'fr1ctl detail'",
            })?
        }
        Command::Stop(a) => {
            let arr = Array::open(a)?;
            arr.stop().map_err(fail(
                format!("cannot stop {a}"),
                "is it mounted or open? close it first",
            ))?;
            println!("fr1ctl: stopped {a}");
        }
        Command::Detail(a, as_json) => detail(a, *as_json)?,
        Command::Raw(a, c, arg) => {
            let arr = Array::open(a)?;
            match arr.raw(*c, *arg as libc::c_ulong) {
                Ok(()) => println!("ok"),
                Err(e) => {
                    println!("{}", errno_name(e));
                    return Err(Error::os(format!("ioctl {c:#x}"), e, "raw ioctl"));
                }
            }
        }
    }
    Ok(())
}

fn build(
    array: &str,
    raid_disks: i32,
    clean: bool,
    members: &[(String, bool)],
) -> Result<(), Error> {
    let path = dev::ensure_node(array)?;
    let (_, minor) = dev::parse_array_name(&path).ok_or_else(|| Error::usage("bad array name"))?;
    let devs = members
        .iter()
        .map(|(m, wm)| dev::block_dev(m).map(|d| (d, *wm)))
        .collect::<Result<Vec<_>, _>>()?;
    let a = Array::open(&path)?;
    let info = MduArrayInfo {
        level: 1,
        raid_disks,
        nr_disks: raid_disks,
        md_minor: minor as i32,
        not_persistent: 1,
        state: if clean { abi::MD_SB_CLEAN } else { 0 },
        active_disks: raid_disks,
        working_disks: raid_disks,
        ..Default::default()
    };
    a.set_array_info(&info).map_err(fail(
        format!("cannot configure {path}"),
        "EBUSY: it is already configured (stop it first); EINVAL: fr1 builds non-persistent RAID1 only",
    ))?;
    let undo = |e: Error| {
        let _ = a.stop();
        e
    };
    for (i, ((d, wm), (name, _))) in devs.iter().zip(members).enumerate() {
        let mut state = abi::MD_DISK_ACTIVE | abi::MD_DISK_SYNC;
        if *wm {
            state |= abi::MD_DISK_WRITEMOSTLY;
        }
        let disk = MduDiskInfo {
            number: i as i32,
            major: d.major as i32,
            minor: d.minor as i32,
            raid_disk: i as i32,
            state,
        };
        a.add_new_disk(&disk)
            .map_err(|e| {
                Error::os(
                    format!("cannot add {name} to {path}"),
                    e,
                    match e {
                        libc::EBUSY => "it is in use (mounted, held by another array, listed twice, or the array itself)",
                        libc::ENOSPC => "it is smaller than the array",
                        libc::ENXIO | libc::ENODEV => "no such device",
                        _ => "check the device",
                    },
                )
            })
            .map_err(undo)?;
    }
    a.run()
        .map_err(fail(
            format!("cannot start {path}"),
            "no usable in-sync member",
        ))
        .map_err(undo)?;
    println!("fr1ctl: array {path} built and started.");
    Ok(())
}

fn detail(array: &str, as_json: bool) -> Result<(), Error> {
    let a = Array::open(array)?;
    a.version().map_err(fail(
        format!("{array} does not appear to be an md/fr1 device"),
        "name an array",
    ))?;
    let info = a.array_info().map_err(fail(
        format!("cannot read {array}"),
        "ENODEV: the array is not set up",
    ))?;
    let mut rows = Vec::new();
    for n in 0..abi::MD_SB_DISKS {
        let d = a
            .disk_info(n)
            .map_err(fail(format!("GET_DISK_INFO {n}"), "is the array stopping?"))?;
        if d.state & abi::MD_DISK_REMOVED == 0 {
            rows.push(report::Row {
                disk: d,
                name: dev::name_of(d.major, d.minor),
            });
        }
    }
    if as_json {
        println!("{}", report::json(array, &info, &rows));
    } else {
        print!("{}", report::human(array, &info, &rows));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parse_build() {
        let c = parse(&args(
            "build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda -W /dev/vdb",
        ))
        .unwrap();
        assert_eq!(
            c,
            Command::Build {
                array: "/dev/md0".into(),
                raid_disks: 2,
                clean: true,
                members: vec![("/dev/vda".into(), false), ("/dev/vdb".into(), true)],
            }
        );
        assert!(parse(&args("create md0 --level=5 --raid-devices=1 /dev/vda")).is_err());
        assert!(parse(&args("build md0 --level=1 --raid-devices=3 /dev/vda")).is_err());
        assert!(parse(&args("build md0 --raid-devices=1 /dev/vda")).is_err());
        assert!(parse(&args("build md0 --level=1 --raid-devices=x /dev/vda")).is_err());
    }

    #[test]
    fn parse_verbs_and_aliases() {
        assert_eq!(
            parse(&args("setfaulty md0 /dev/vda")).unwrap(),
            Command::Fail("md0".into(), "/dev/vda".into())
        );
        assert_eq!(
            parse(&args("hotremove md0 /dev/vda")).unwrap(),
            Command::Remove("md0".into(), "/dev/vda".into())
        );
        assert_eq!(
            parse(&args("hotadd md0 /dev/vda")).unwrap(),
            Command::Add("md0".into(), "/dev/vda".into())
        );
        assert_eq!(
            parse(&args("stop md0")).unwrap(),
            Command::Stop("md0".into())
        );
        assert_eq!(
            parse(&args("detail md0 --json")).unwrap(),
            Command::Detail("md0".into(), true)
        );
        assert_eq!(
            parse(&args("ioctl md0 0x932 0")).unwrap(),
            Command::Raw("md0".into(), 0x932, 0)
        );
        assert!(parse(&args("fail md0")).is_err());
        assert!(parse(&args("stop md0 extra")).is_err());
        assert!(parse(&args("frobnicate md0")).is_err());
        assert!(parse(&[]).is_err());
    }
}
