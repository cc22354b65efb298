// SPDX-License-Identifier: GPL-2.0

//! Command line of fr1ctl.

use crate::dev;
use crate::ioctl::{errno_name, Array, Error};
use crate::logic::abi::{self, MduArrayInfo, MduDiskInfo};
use crate::report;

pub(crate) const USAGE: &str = "\
usage: fr1ctl COMMAND ARRAY [ARGS]
  build ARRAY --level=1 --raid-devices=N [--assume-clean] [--chunk=KiB] DEV...
                        (alias: create); --chunk is the bitmap block size,
                        4 KiB to 64 MiB, a power of two (mdadm's --chunk)
        [--write-mostly DEV]   mark the following DEV write-mostly
  fail ARRAY DEV        mark DEV faulty            (alias: setfaulty)
  remove ARRAY DEV      take a faulty DEV out      (alias: hotremove)
  add ARRAY DEV         add DEV to a running array (alias: hotadd)
  re-add ARRAY DEV      add a former member back
  stop ARRAY            stop the array and release its members
  detail ARRAY [--json] show the array, its members, resync and bitmap
  wait ARRAY [SECONDS]  show the resync progress bar until the array is in sync
  events [SECONDS]      wait for the next array event (poll on the status file)
  ioctl ARRAY CMD [ARG | FIELD=VALUE...]
                        issue one md ioctl as given, for tests and debugging:
                        CMD is a number or a name (SET_ARRAY_INFO, ADD_NEW_DISK,
                        GET_ARRAY_INFO, GET_DISK_INFO, ...); struct commands take
                        fields (level=1 raid_disks=2 ...); ARG=bad passes an
                        invalid user pointer; prints ok or the errno name
ARRAY is /dev/mdN (fr1 as md) or /dev/frN (next to md); it is created on
first use, as md does.";

/// A parsed command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Build {
        array: String,
        raid_disks: i32,
        clean: bool,
        /// Bitmap block size in bytes (0: fr1's default, 4 KiB).
        chunk_bytes: i32,
        members: Vec<(String, bool)>,
    },
    Fail(String, String),
    Remove(String, String),
    Add(String, String),
    ReAdd(String, String),
    Stop(String),
    Detail(String, bool),
    Wait(String, u64),
    Events(u64),
    Raw(String, u32, RawArg),
    Help,
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The argument of a raw ioctl.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RawArg {
    /// A plain integer (dev_t encodings, 0).
    Int(u64),
    /// A deliberately invalid user pointer.
    BadPointer,
    /// A zeroed buffer for an ioctl that writes its result.
    Buffer,
    /// `mdu_array_info_t` with these fields.
    ArrayInfo(MduArrayInfo),
    /// `mdu_disk_info_t` with these fields.
    DiskInfo(MduDiskInfo),
}

fn ioctl_number(name: &str) -> Option<u32> {
    use abi::nr::*;
    Some(match name {
        "RAID_VERSION" => RAID_VERSION,
        "GET_ARRAY_INFO" => GET_ARRAY_INFO,
        "GET_DISK_INFO" => GET_DISK_INFO,
        "RAID_AUTORUN" => RAID_AUTORUN,
        "GET_BITMAP_FILE" => GET_BITMAP_FILE,
        "ADD_NEW_DISK" => ADD_NEW_DISK,
        "HOT_REMOVE_DISK" => HOT_REMOVE_DISK,
        "SET_ARRAY_INFO" => SET_ARRAY_INFO,
        "HOT_ADD_DISK" => HOT_ADD_DISK,
        "SET_DISK_FAULTY" => SET_DISK_FAULTY,
        "SET_BITMAP_FILE" => SET_BITMAP_FILE,
        "RUN_ARRAY" => RUN_ARRAY,
        "STOP_ARRAY" => STOP_ARRAY,
        "STOP_ARRAY_RO" => STOP_ARRAY_RO,
        "RESTART_ARRAY_RW" => RESTART_ARRAY_RW,
        n => return parse_num(n).and_then(|v| u32::try_from(v).ok()),
    })
}

fn set_field(fields: &mut [(&str, &mut i32)], kv: &str) -> Result<(), Error> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| Error::usage(format!("expected FIELD=VALUE, got '{kv}'")))?;
    let v: i32 = v
        .parse()
        .map_err(|_| Error::usage(format!("bad value in '{kv}'")))?;
    let slot = fields
        .iter_mut()
        .find(|(name, _)| *name == k)
        .ok_or_else(|| Error::usage(format!("unknown field '{k}'")))?;
    *slot.1 = v;
    Ok(())
}

fn parse_raw_arg(cmd: u32, rest: &[&str]) -> Result<RawArg, Error> {
    match rest {
        ["bad"] => return Ok(RawArg::BadPointer),
        ["null"] => return Ok(RawArg::Int(0)),
        // _IOR: the kernel writes a result.
        [] if cmd >> 30 == 2 && cmd != abi::nr::GET_ARRAY_INFO => return Ok(RawArg::Buffer),
        _ => {}
    }
    if cmd == abi::nr::SET_ARRAY_INFO || cmd == abi::nr::GET_ARRAY_INFO {
        let mut a = MduArrayInfo::default();
        for kv in rest {
            set_field(
                &mut [
                    ("level", &mut a.level),
                    ("size", &mut a.size),
                    ("nr_disks", &mut a.nr_disks),
                    ("raid_disks", &mut a.raid_disks),
                    ("md_minor", &mut a.md_minor),
                    ("not_persistent", &mut a.not_persistent),
                    ("state", &mut a.state),
                    ("layout", &mut a.layout),
                    ("chunk_size", &mut a.chunk_size),
                ],
                kv,
            )?;
        }
        return Ok(RawArg::ArrayInfo(a));
    }
    if cmd == abi::nr::ADD_NEW_DISK || cmd == abi::nr::GET_DISK_INFO {
        let mut d = MduDiskInfo::default();
        for kv in rest {
            set_field(
                &mut [
                    ("number", &mut d.number),
                    ("major", &mut d.major),
                    ("minor", &mut d.minor),
                    ("raid_disk", &mut d.raid_disk),
                    ("state", &mut d.state),
                ],
                kv,
            )?;
        }
        return Ok(RawArg::DiskInfo(d));
    }
    match rest {
        [] => Ok(RawArg::Int(0)),
        [a] => parse_num(a)
            .map(RawArg::Int)
            .ok_or_else(|| Error::usage("bad ioctl argument")),
        _ => Err(Error::usage("this ioctl takes one argument")),
    }
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: &[String]) -> Result<Command, Error> {
    let mut it = args.iter().map(String::as_str);
    let verb = it.next().ok_or_else(|| Error::usage("no command"))?;
    if matches!(verb, "help" | "-h" | "--help") {
        return Ok(Command::Help);
    }
    if verb == "events" {
        let secs = match it.next() {
            Some(s) => s.parse().map_err(|_| Error::usage("bad timeout"))?,
            None => 3600,
        };
        return Ok(Command::Events(secs));
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
            let mut chunk_bytes = 0;
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
                } else if let Some(v) = val("--chunk").or(val("-c")) {
                    chunk_bytes = parse_chunk(v).ok_or_else(|| {
                        Error::usage(format!("bad --chunk '{v}' (KiB, or with K/M)"))
                    })?;
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
                chunk_bytes,
                members,
            }
        }
        "fail" | "setfaulty" => Command::Fail(array, one(verb)?),
        "remove" | "hotremove" => Command::Remove(array, one(verb)?),
        "add" | "hotadd" => Command::Add(array, one(verb)?),
        "re-add" => Command::ReAdd(array, one(verb)?),
        "stop" if rest.is_empty() => Command::Stop(array),
        "detail" => Command::Detail(array, rest == ["--json"]),
        "wait" => match rest.as_slice() {
            [] => Command::Wait(array, 3600),
            [s] => Command::Wait(array, s.parse().map_err(|_| Error::usage("bad timeout"))?),
            _ => {
                return Err(Error::usage(
                    "'wait' takes the array and an optional timeout",
                ))
            }
        },
        "ioctl" => {
            let (c, args) = rest
                .split_first()
                .ok_or_else(|| Error::usage("'ioctl' needs a command"))?;
            let cmd =
                ioctl_number(c).ok_or_else(|| Error::usage(format!("unknown ioctl '{c}'")))?;
            Command::Raw(array, cmd, parse_raw_arg(cmd, args)?)
        }
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
            chunk_bytes,
            members,
        } => build(array, *raid_disks, *clean, *chunk_bytes, members)?,
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
        Command::Wait(a, secs) => crate::sysfs::wait(a, std::time::Duration::from_secs(*secs))?,
        Command::Events(secs) => crate::sysfs::next_event(*secs)?,
        Command::Raw(a, c, arg) => {
            let arr = Array::open(a)?;
            let (mut ai, mut di) = (MduArrayInfo::default(), MduDiskInfo::default());
            let mut buf = vec![0u8; 4096];
            let raw = match arg {
                RawArg::Int(v) => *v as libc::c_ulong,
                // The first page is never mapped.
                RawArg::BadPointer => 16,
                RawArg::Buffer => buf.as_mut_ptr() as libc::c_ulong,
                RawArg::ArrayInfo(v) => {
                    ai = *v;
                    &mut ai as *mut MduArrayInfo as libc::c_ulong
                }
                RawArg::DiskInfo(v) => {
                    di = *v;
                    &mut di as *mut MduDiskInfo as libc::c_ulong
                }
            };
            match arr.raw(*c, raw) {
                Ok(()) => {
                    println!("ok");
                    if *c == abi::nr::GET_ARRAY_INFO {
                        println!("{ai:?}");
                    } else if *c == abi::nr::GET_DISK_INFO {
                        println!("{di:?}");
                    }
                }
                Err(e) => {
                    println!("{}", errno_name(e));
                    return Err(Error::os(format!("ioctl {c:#x}"), e, "raw ioctl"));
                }
            }
        }
    }
    Ok(())
}

/// mdadm's `--chunk` value: KiB, or a number with a K or M suffix. The
/// kernel validates the size itself (EINVAL).
fn parse_chunk(v: &str) -> Option<i32> {
    let (num, mult) = match v.as_bytes().last()? {
        b'K' | b'k' => (&v[..v.len() - 1], 1024),
        b'M' | b'm' => (&v[..v.len() - 1], 1024 * 1024),
        _ => (v, 1024),
    };
    num.parse::<i32>().ok()?.checked_mul(mult)
}

fn build(
    array: &str,
    raid_disks: i32,
    clean: bool,
    chunk_bytes: i32,
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
        chunk_size: chunk_bytes,
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
            let name = dev::name_of(d.major, d.minor);
            let state = format!("dev-{}/state", name.trim_start_matches("/dev/"));
            let words = crate::sysfs::read(array, &state).unwrap_or_default();
            let has = |word: &str| words.split(',').any(|w| w == word);
            rows.push(report::Row {
                disk: d,
                name,
                behind: has("behind"),
                probing: has("probing"),
            });
        }
    }
    let extra = report::Extra {
        sync: crate::sysfs::read(array, "sync_action"),
        progress: crate::sysfs::progress_line(array),
        completed: crate::sysfs::read(array, "sync_completed")
            .and_then(|s| crate::sysfs::parse_completed(&s)),
        bitmap: [
            "chunksize",
            "bits",
            "pages",
            "coarse",
            "bytes",
            "resync_copied_bytes",
            "backlog",
            "behind_writes",
            "behind_bytes",
        ]
        .iter()
        .map(|a| {
            crate::sysfs::read(array, &format!("bitmap/{a}"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        })
        .collect(),
        mismatches: crate::sysfs::read(array, "mismatch_cnt").and_then(|v| v.parse().ok()),
    };
    if as_json {
        println!("{}", report::json(array, &info, &rows, &extra));
    } else {
        print!("{}", report::human(array, &info, &rows, &extra));
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
                chunk_bytes: 0,
                members: vec![("/dev/vda".into(), false), ("/dev/vdb".into(), true)],
            }
        );
        let c = parse(&args("build md0 --level=1 -n 1 --chunk=4096 /dev/vda"));
        assert!(c.is_err(), "-n takes '='");
        for (v, bytes) in [("4096", 4 << 20), ("64K", 65536), ("2M", 2 << 20)] {
            let c = parse(&args(&format!(
                "build md0 --level=1 -n=1 --chunk={v} /dev/vda"
            )));
            assert!(matches!(c, Ok(Command::Build { chunk_bytes, .. }) if chunk_bytes == bytes));
        }
        assert!(parse(&args("build md0 --level=1 -n=1 --chunk=x /dev/vda")).is_err());
        assert!(parse(&args("build md0 --level=1 -n=1 --chunk=99999999M /dev/vda")).is_err());
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
            Command::Raw("md0".into(), 0x932, RawArg::Int(0))
        );
        assert_eq!(
            parse(&args("ioctl md0 STOP_ARRAY")).unwrap(),
            Command::Raw("md0".into(), abi::nr::STOP_ARRAY, RawArg::Int(0))
        );
        let Command::Raw(_, _, RawArg::ArrayInfo(a)) =
            parse(&args("ioctl md0 SET_ARRAY_INFO level=5 raid_disks=2")).unwrap()
        else {
            panic!("not an array info");
        };
        assert_eq!((a.level, a.raid_disks), (5, 2));
        assert_eq!(
            parse(&args("ioctl md0 GET_ARRAY_INFO bad")).unwrap(),
            Command::Raw("md0".into(), abi::nr::GET_ARRAY_INFO, RawArg::BadPointer)
        );
        assert!(parse(&args("ioctl md0 ADD_NEW_DISK colour=3")).is_err());
        assert!(parse(&args("ioctl md0 NOPE")).is_err());
        assert!(parse(&args("fail md0")).is_err());
        assert!(parse(&args("stop md0 extra")).is_err());
        assert!(parse(&args("frobnicate md0")).is_err());
        assert!(parse(&[]).is_err());
    }
}
