// SPDX-License-Identifier: GPL-2.0

//! The command line, parsed by clap (see `cli.rs`) and checked against md's
//! ABI: what fr1ctl is asked to do.

use std::ffi::OsString;
use std::fmt::Display;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::{self, Cli, Level, Verb};
use crate::logic::abi::{fr1_nr, nr, Fr1CopyIo, Fr1RepairRange, MduArrayInfo, MduDiskInfo};

/// A parsed command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Build(Build),
    Fail(String, String),
    Remove(String, String),
    Add(String, String),
    ReAdd(String, String),
    Stop(String),
    Detail {
        array: String,
        json: bool,
    },
    Wait {
        array: String,
        timeout: Duration,
        json: bool,
    },
    Check {
        array: String,
        timeout: Duration,
        repair: bool,
        json: bool,
    },
    Events {
        timeout: Duration,
        json: bool,
    },
    ReadCopy {
        array: String,
        slot: u32,
        offset: u64,
        length: u64,
        output: Option<String>,
    },
    RepairRange {
        array: String,
        from: u32,
        offset: u64,
        length: u64,
    },
    Ioctl {
        array: String,
        cmd: u32,
        arg: RawArg,
        json: bool,
    },
}

/// `build`: a new array.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Build {
    pub(crate) array: String,
    pub(crate) level: Level,
    pub(crate) raid_disks: i32,
    /// `--assume-clean`.
    pub(crate) clean: bool,
    /// Bitmap block size in bytes (0: fr1's default, 4 KiB).
    pub(crate) chunk_bytes: i32,
    /// In slot order.
    pub(crate) members: Vec<Member>,
}

/// A member of a new array.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) dev: String,
    pub(crate) write_mostly: bool,
}

/// The argument of a raw ioctl.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RawArg {
    /// A plain integer (dev_t encodings, 0).
    Int(usize),
    /// A deliberately invalid user pointer.
    BadPointer,
    /// A zeroed buffer for an ioctl that writes its result.
    Buffer,
    /// `mdu_array_info_t` with these fields.
    ArrayInfo(MduArrayInfo),
    /// `mdu_disk_info_t` with these fields.
    DiskInfo(MduDiskInfo),
    /// `struct fr1_copy_io` with these fields; `buf` 0: a buffer of
    /// `length` bytes is passed.
    CopyIo(Fr1CopyIo),
    /// `struct fr1_repair_range` with these fields.
    RepairRange(Fr1RepairRange),
}

/// Parses the command line, program name first. Errors are clap's: they
/// print the usage and exit with status 2 (0 for `--help`, `--version`).
pub(crate) fn parse<I, T>(args: I) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let timeout = Duration::from_secs;
    Ok(match cli.verb {
        Verb::Build(b) => {
            let order = matches
                .subcommand_matches("build")
                .expect("clap matched the build verb");
            Command::Build(build(b, order)?)
        }
        Verb::Fail(m) => Command::Fail(m.array, m.dev),
        Verb::Remove(m) => Command::Remove(m.array, m.dev),
        Verb::Add(m) => Command::Add(m.array, m.dev),
        Verb::ReAdd(m) => Command::ReAdd(m.array, m.dev),
        Verb::Stop(s) => Command::Stop(s.array),
        Verb::Detail(d) => Command::Detail {
            array: d.array,
            json: d.json,
        },
        Verb::Wait(w) => Command::Wait {
            array: w.array,
            timeout: timeout(w.seconds),
            json: w.json,
        },
        Verb::Check(c) => Command::Check {
            array: c.array,
            timeout: timeout(c.seconds),
            repair: c.repair,
            json: c.json,
        },
        Verb::Events(e) => Command::Events {
            timeout: timeout(e.seconds),
            json: e.json,
        },
        Verb::ReadCopy(r) => Command::ReadCopy {
            array: r.array,
            slot: r.slot,
            offset: r.offset,
            length: r.length,
            output: r.output,
        },
        Verb::RepairRange(r) => Command::RepairRange {
            array: r.array,
            from: r.from,
            offset: r.offset,
            length: r.length,
        },
        Verb::Ioctl(i) => {
            let cmd = ioctl_number(&i.cmd).ok_or_else(|| {
                usage_error(
                    "ioctl",
                    ErrorKind::InvalidValue,
                    format!("unknown ioctl '{}'", i.cmd),
                )
            })?;
            let args: Vec<&str> = i.args.iter().map(String::as_str).collect();
            let arg = parse_raw_arg(cmd, &args)
                .map_err(|e| usage_error("ioctl", ErrorKind::InvalidValue, e))?;
            Command::Ioctl {
                array: i.array,
                cmd,
                arg,
                json: i.json,
            }
        }
    })
}

/// A usage error found after clap's parse, with `verb`'s usage.
fn usage_error(verb: &str, kind: ErrorKind, msg: impl Display) -> clap::Error {
    let mut cli = Cli::command();
    cli.build();
    match cli.find_subcommand_mut(verb) {
        Some(sub) => sub.error(kind, msg),
        None => cli.error(kind, msg),
    }
}

/// Checks `build`'s arguments; `matches` tell where each DEV stood, for
/// the write-mostly ones take their place among the others.
fn build(b: cli::BuildArgs, matches: &ArgMatches) -> Result<Build, clap::Error> {
    let at = |id: &str| matches.indices_of(id).into_iter().flatten();
    let plain = at("devices").zip(b.devices).map(|(i, dev)| (i, dev, false));
    let wm = at("write_mostly")
        .zip(b.write_mostly)
        .map(|(i, dev)| (i, dev, true));
    let mut members: Vec<_> = plain.chain(wm).collect();
    members.sort_by_key(|&(i, ..)| i);
    let members: Vec<Member> = members
        .into_iter()
        .map(|(_, dev, write_mostly)| Member { dev, write_mostly })
        .collect();
    if usize::try_from(b.raid_devices).ok() != Some(members.len()) {
        return Err(usage_error(
            "build",
            ErrorKind::WrongNumberOfValues,
            format!(
                "--raid-devices={} but {} devices given",
                b.raid_devices,
                members.len()
            ),
        ));
    }
    Ok(Build {
        array: b.array,
        level: b.level,
        raid_disks: b.raid_devices,
        clean: b.assume_clean,
        chunk_bytes: b.chunk_bytes.unwrap_or(0),
        members,
    })
}

/// md's ioctls by name (md_u.h), and fr1's (fr1.h), as `fr1ctl ioctl`
/// takes them.
const IOCTLS: [(&str, u32); 17] = [
    ("RAID_VERSION", nr::RAID_VERSION),
    ("GET_ARRAY_INFO", nr::GET_ARRAY_INFO),
    ("GET_DISK_INFO", nr::GET_DISK_INFO),
    ("RAID_AUTORUN", nr::RAID_AUTORUN),
    ("GET_BITMAP_FILE", nr::GET_BITMAP_FILE),
    ("ADD_NEW_DISK", nr::ADD_NEW_DISK),
    ("HOT_REMOVE_DISK", nr::HOT_REMOVE_DISK),
    ("SET_ARRAY_INFO", nr::SET_ARRAY_INFO),
    ("HOT_ADD_DISK", nr::HOT_ADD_DISK),
    ("SET_DISK_FAULTY", nr::SET_DISK_FAULTY),
    ("SET_BITMAP_FILE", nr::SET_BITMAP_FILE),
    ("RUN_ARRAY", nr::RUN_ARRAY),
    ("STOP_ARRAY", nr::STOP_ARRAY),
    ("STOP_ARRAY_RO", nr::STOP_ARRAY_RO),
    ("RESTART_ARRAY_RW", nr::RESTART_ARRAY_RW),
    ("FR1_READ_COPY", fr1_nr::READ_COPY),
    ("FR1_REPAIR_RANGE", fr1_nr::REPAIR_RANGE),
];

/// A number (decimal or 0x hex).
fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// An ioctl by md's name or by number.
fn ioctl_number(name: &str) -> Option<u32> {
    match IOCTLS.iter().find(|(n, _)| *n == name) {
        Some(&(_, cmd)) => Some(cmd),
        None => parse_num(name).and_then(|v| u32::try_from(v).ok()),
    }
}

/// md's name of an ioctl number, if it has one.
pub(crate) fn ioctl_name(cmd: u32) -> Option<&'static str> {
    IOCTLS.iter().find(|&&(_, c)| c == cmd).map(|&(n, _)| n)
}

fn set_field(fields: &mut [(&str, &mut i32)], kv: &str) -> Result<(), String> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| format!("expected FIELD=VALUE, got '{kv}'"))?;
    let v: i32 = v.parse().map_err(|_| format!("bad value in '{kv}'"))?;
    let slot = fields
        .iter_mut()
        .find(|(name, _)| *name == k)
        .ok_or_else(|| format!("unknown field '{k}'"))?;
    *slot.1 = v;
    Ok(())
}

/// [`set_field`] for the `u32`/`u64` fields of fr1's structs.
fn set_field64(fields: &mut [(&str, &mut u64)], kv: &str) -> Result<(), String> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| format!("expected FIELD=VALUE, got '{kv}'"))?;
    let v = parse_num(v).ok_or_else(|| format!("bad value in '{kv}'"))?;
    let slot = fields
        .iter_mut()
        .find(|(name, _)| *name == k)
        .ok_or_else(|| format!("unknown field '{k}'"))?;
    *slot.1 = v;
    Ok(())
}

/// The `u32` fields of fr1's structs, from a parsed `u64`.
fn narrow(v: u64, name: &str) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("{name} is a 32-bit field"))
}

fn parse_raw_arg(cmd: u32, rest: &[&str]) -> Result<RawArg, String> {
    match rest {
        ["bad"] => return Ok(RawArg::BadPointer),
        ["null"] => return Ok(RawArg::Int(0)),
        // _IOR: the kernel writes a result.
        [] if cmd >> 30 == 2 && cmd != nr::GET_ARRAY_INFO => return Ok(RawArg::Buffer),
        _ => {}
    }
    if cmd == nr::SET_ARRAY_INFO || cmd == nr::GET_ARRAY_INFO {
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
    if cmd == nr::ADD_NEW_DISK || cmd == nr::GET_DISK_INFO {
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
    if cmd == fr1_nr::READ_COPY {
        let (mut slot, mut flags, mut offset, mut length, mut buf) = (0, 0, 0, 0, 0);
        for kv in rest {
            set_field64(
                &mut [
                    ("slot", &mut slot),
                    ("flags", &mut flags),
                    ("offset", &mut offset),
                    ("length", &mut length),
                    ("buf", &mut buf),
                ],
                kv,
            )?;
        }
        return Ok(RawArg::CopyIo(Fr1CopyIo {
            slot: narrow(slot, "slot")?,
            flags: narrow(flags, "flags")?,
            offset,
            length,
            buf,
        }));
    }
    if cmd == fr1_nr::REPAIR_RANGE {
        let (mut from, mut flags, mut offset, mut length) = (0, 0, 0, 0);
        for kv in rest {
            set_field64(
                &mut [
                    ("from", &mut from),
                    ("flags", &mut flags),
                    ("offset", &mut offset),
                    ("length", &mut length),
                ],
                kv,
            )?;
        }
        return Ok(RawArg::RepairRange(Fr1RepairRange {
            from: narrow(from, "from")?,
            flags: narrow(flags, "flags")?,
            offset,
            length,
        }));
    }
    match rest {
        [] => Ok(RawArg::Int(0)),
        [a] => parse_num(a)
            .and_then(|v| usize::try_from(v).ok())
            .map(RawArg::Int)
            .ok_or_else(|| "bad ioctl argument".into()),
        _ => Err("this ioctl takes one argument".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command, clap::Error> {
        parse(std::iter::once("fr1ctl").chain(line.split_whitespace()))
    }

    fn cmd(line: &str) -> Command {
        parse_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn member(dev: &str, write_mostly: bool) -> Member {
        Member {
            dev: dev.into(),
            write_mostly,
        }
    }

    /// `build`'s command for these members (DEV, write-mostly).
    fn built(array: &str, raid_disks: i32, clean: bool, members: &[(&str, bool)]) -> Command {
        Command::Build(Build {
            array: array.into(),
            level: Level::Raid1,
            raid_disks,
            clean,
            chunk_bytes: 0,
            members: members.iter().map(|&(d, wm)| member(d, wm)).collect(),
        })
    }

    fn s(v: &str) -> String {
        v.into()
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[track_caller]
    fn parses_to(line: &str, want: Command) {
        assert_eq!(cmd(line), want, "{line}");
    }

    // Every form in which tests/vm/*.sh, scripts/*.sh, README.md and
    // Documentation/fr1/admin.rst call fr1ctl, shell variables replaced by
    // typical values: build (bench_lib.sh, test_*.sh, profile_writes.sh,
    // the docs), the member verbs, detail, wait, events (test_mdadm.sh) and
    // ioctl (test_ioctl_errors.sh, test_member_states.sh, lib.sh's ioctl_is).

    #[test]
    fn build_as_the_tests_and_docs_call_it() {
        let (no, wm) = (false, true);
        parses_to(
            "build /dev/fr0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 /dev/ram1",
            built("/dev/fr0", 2, true, &[("/dev/ram0", no), ("/dev/ram1", no)]),
        );
        parses_to(
            "build /dev/fr0 --level=1 --raid-devices=2 /dev/ram0 /dev/ram1",
            built(
                "/dev/fr0",
                2,
                false,
                &[("/dev/ram0", no), ("/dev/ram1", no)],
            ),
        );
        parses_to(
            "build /dev/fr0 --level=1 --raid-devices=3 --assume-clean /dev/ram0 /dev/ram1 /dev/ram2",
            built(
                "/dev/fr0",
                3,
                true,
                &[("/dev/ram0", no), ("/dev/ram1", no), ("/dev/ram2", no)],
            ),
        );
        parses_to(
            "build /dev/fr0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 \
             --write-mostly /dev/mapper/slowa",
            built(
                "/dev/fr0",
                2,
                true,
                &[("/dev/ram0", no), ("/dev/mapper/slowa", wm)],
            ),
        );
        parses_to(
            "build /dev/md0 --level=1 --raid-devices=3 --assume-clean /dev/ram0 \
             --write-mostly /dev/nbd0 --write-mostly /dev/nbd1",
            built(
                "/dev/md0",
                3,
                true,
                &[("/dev/ram0", no), ("/dev/nbd0", wm), ("/dev/nbd1", wm)],
            ),
        );
        parses_to(
            "build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda --write-mostly /dev/vdb",
            built("/dev/md0", 2, true, &[("/dev/vda", no), ("/dev/vdb", wm)]),
        );
        parses_to(
            "build /dev/md0 --level=1 --raid-devices=2 /dev/sdb --write-mostly /dev/nbd0",
            built("/dev/md0", 2, false, &[("/dev/sdb", no), ("/dev/nbd0", wm)]),
        );
        parses_to(
            "build /dev/md1 --level=1 --raid-devices=1 --assume-clean /dev/vdc",
            built("/dev/md1", 1, true, &[("/dev/vdc", no)]),
        );
        parses_to(
            "build /dev/md1 --level=1 --raid-devices=1 --assume-clean /dev/mapper/leg0",
            built("/dev/md1", 1, true, &[("/dev/mapper/leg0", no)]),
        );
        let Command::Build(b) = built("/dev/md0", 2, true, &[("/dev/vda", no), ("/dev/vdc", no)])
        else {
            unreachable!()
        };
        parses_to(
            "build /dev/md0 --level=1 --raid-devices=2 --assume-clean --chunk=4096 /dev/vda /dev/vdc",
            Command::Build(Build {
                chunk_bytes: 4 << 20,
                ..b
            }),
        );
    }

    #[test]
    fn member_verbs_detail_wait_events_as_the_tests_call_them() {
        parses_to(
            "fail /dev/fr0 /dev/ram1",
            Command::Fail(s("/dev/fr0"), s("/dev/ram1")),
        );
        parses_to(
            "fail /dev/md0 /dev/mapper/leg",
            Command::Fail(s("/dev/md0"), s("/dev/mapper/leg")),
        );
        parses_to(
            "remove /dev/md0 /dev/vdb",
            Command::Remove(s("/dev/md0"), s("/dev/vdb")),
        );
        parses_to(
            "add /dev/fr0 /dev/ram2",
            Command::Add(s("/dev/fr0"), s("/dev/ram2")),
        );
        parses_to(
            "re-add /dev/md0 /dev/vdb",
            Command::ReAdd(s("/dev/md0"), s("/dev/vdb")),
        );
        parses_to("stop /dev/md0", Command::Stop(s("/dev/md0")));
        let detail = |json| Command::Detail {
            array: s("/dev/md0"),
            json,
        };
        parses_to("detail /dev/md0", detail(false));
        parses_to("detail /dev/md0 --json", detail(true));
        let wait = |array: &str, secs| Command::Wait {
            array: s(array),
            timeout: Duration::from_secs(secs),
            json: false,
        };
        parses_to("wait /dev/md0", wait("/dev/md0", 3600));
        parses_to("wait /dev/fr0 600", wait("/dev/fr0", 600));
        parses_to("wait /dev/md0 1", wait("/dev/md0", 1));
        let events = |secs| Command::Events {
            timeout: Duration::from_secs(secs),
            json: false,
        };
        parses_to("events 30", events(30));
        parses_to("events 1", events(1));
        parses_to("events", events(3600));
    }

    #[test]
    fn ioctl_as_the_tests_call_it() {
        let raw = |array: &str, cmd, arg| Command::Ioctl {
            array: s(array),
            cmd,
            arg,
            json: false,
        };
        // test_ioctl_errors.sh's $A, then the fields each case sets.
        let a = "SET_ARRAY_INFO level=1 raid_disks=2 nr_disks=2 not_persistent=1 state=1";
        let info = |f: fn(&mut MduArrayInfo)| {
            let mut a = MduArrayInfo {
                level: 1,
                raid_disks: 2,
                nr_disks: 2,
                not_persistent: 1,
                state: 1,
                ..Default::default()
            };
            f(&mut a);
            raw("/dev/md0", nr::SET_ARRAY_INFO, RawArg::ArrayInfo(a))
        };
        let disk = |number, major, minor, raid_disk, state| {
            let d = MduDiskInfo {
                number,
                major,
                minor,
                raid_disk,
                state,
            };
            raw("/dev/md0", nr::ADD_NEW_DISK, RawArg::DiskInfo(d))
        };
        let md0 = |cmd, arg| raw("/dev/md0", cmd, arg);
        parses_to(
            "ioctl /dev/md0 RAID_VERSION",
            md0(nr::RAID_VERSION, RawArg::Buffer),
        );
        parses_to("ioctl /dev/md0 0x1234 0", md0(0x1234, RawArg::Int(0)));
        parses_to(
            "ioctl /dev/md0 RAID_AUTORUN",
            md0(nr::RAID_AUTORUN, RawArg::Int(0)),
        );
        parses_to(
            "ioctl /dev/md0 GET_ARRAY_INFO",
            md0(
                nr::GET_ARRAY_INFO,
                RawArg::ArrayInfo(MduArrayInfo::default()),
            ),
        );
        parses_to(
            "ioctl /dev/md0 GET_ARRAY_INFO bad",
            md0(nr::GET_ARRAY_INFO, RawArg::BadPointer),
        );
        parses_to(
            "ioctl /dev/md0 SET_ARRAY_INFO bad",
            md0(nr::SET_ARRAY_INFO, RawArg::BadPointer),
        );
        parses_to(
            "ioctl /dev/md0 SET_ARRAY_INFO null",
            md0(nr::SET_ARRAY_INFO, RawArg::Int(0)),
        );
        let set = |fields: &str| format!("ioctl /dev/md0 {a} {fields}");
        parses_to(&set("md_minor=0 level=5"), info(|i| i.level = 5));
        parses_to(
            &set("md_minor=0 not_persistent=0"),
            info(|i| i.not_persistent = 0),
        );
        parses_to(&set("md_minor=0 raid_disks=0"), info(|i| i.raid_disks = 0));
        parses_to(
            &set("md_minor=0 raid_disks=17"),
            info(|i| i.raid_disks = 17),
        );
        parses_to(&set("md_minor=7"), info(|i| i.md_minor = 7));
        parses_to(&set("md_minor=0 size=-5"), info(|i| i.size = -5));
        parses_to(&set("md_minor=0 size=16384"), info(|i| i.size = 16384));
        parses_to(&set("md_minor=0"), info(|_| {}));
        let mut two = MduArrayInfo {
            level: 1,
            raid_disks: 1,
            nr_disks: 1,
            not_persistent: 1,
            state: 1,
            md_minor: 2,
            ..Default::default()
        };
        parses_to(
            "ioctl /dev/md2 SET_ARRAY_INFO level=1 raid_disks=1 nr_disks=1 not_persistent=1 \
             state=1 md_minor=2",
            raw("/dev/md2", nr::SET_ARRAY_INFO, RawArg::ArrayInfo(two)),
        );
        two.md_minor = 4;
        parses_to(
            "ioctl /dev/md4 SET_ARRAY_INFO level=1 raid_disks=1 nr_disks=1 not_persistent=1 \
             state=1 md_minor=4",
            raw("/dev/md4", nr::SET_ARRAY_INFO, RawArg::ArrayInfo(two)),
        );
        parses_to(
            "ioctl /dev/md0 ADD_NEW_DISK bad",
            md0(nr::ADD_NEW_DISK, RawArg::BadPointer),
        );
        parses_to(
            "ioctl /dev/md0 ADD_NEW_DISK number=0 major=253 minor=999 raid_disk=0 state=6",
            disk(0, 253, 999, 0, 6),
        );
        parses_to(
            "ioctl /dev/md0 ADD_NEW_DISK number=1 major=9 minor=2 raid_disk=1 state=6",
            disk(1, 9, 2, 1, 6),
        );
        parses_to(
            "ioctl /dev/md3 RUN_ARRAY",
            raw("/dev/md3", nr::RUN_ARRAY, RawArg::Int(0)),
        );
        parses_to(
            "ioctl /dev/md0 RUN_ARRAY",
            md0(nr::RUN_ARRAY, RawArg::Int(0)),
        );
        for (n, line) in [
            (64768, "ioctl /dev/md0 SET_DISK_FAULTY 64768"),
            (0, "ioctl /dev/md0 SET_DISK_FAULTY 0"),
            (1, "ioctl /dev/md0 SET_DISK_FAULTY 1"),
        ] {
            parses_to(line, md0(nr::SET_DISK_FAULTY, RawArg::Int(n)));
        }
        parses_to(
            "ioctl /dev/md0 HOT_REMOVE_DISK 64784",
            md0(nr::HOT_REMOVE_DISK, RawArg::Int(64784)),
        );
        parses_to(
            "ioctl /dev/md4 HOT_ADD_DISK 64784",
            raw("/dev/md4", nr::HOT_ADD_DISK, RawArg::Int(64784)),
        );
        parses_to(
            "ioctl /dev/md0 STOP_ARRAY",
            md0(nr::STOP_ARRAY, RawArg::Int(0)),
        );
        parses_to(
            "ioctl /dev/md0 STOP_ARRAY_RO",
            md0(nr::STOP_ARRAY_RO, RawArg::Int(0)),
        );
    }

    #[test]
    fn build_options_and_aliases() {
        // mdadm's short options, with '=' or a separate value.
        for line in [
            "create md0 -l=raid1 -n=2 /dev/vda -W /dev/vdb",
            "build md0 -l mirror -n 2 /dev/vda --write-mostly=/dev/vdb",
            "build md0 --level 1 /dev/vda --raid-devices 2 -W/dev/vdb",
        ] {
            assert_eq!(
                cmd(line),
                built("md0", 2, false, &[("/dev/vda", false), ("/dev/vdb", true)]),
                "{line}"
            );
        }
        // A write-mostly member keeps its place: slot 0 here.
        assert_eq!(
            cmd("build md0 --level=1 -n=2 -W /dev/vdb /dev/vda"),
            built("md0", 2, false, &[("/dev/vdb", true), ("/dev/vda", false)])
        );
        assert_eq!(
            cmd("build md0 --level=1 -n=2 -W /dev/vda -W /dev/vdb"),
            built("md0", 2, false, &[("/dev/vda", true), ("/dev/vdb", true)])
        );
        for (v, bytes) in [
            ("4096", 4 << 20),
            ("64K", 65536),
            ("2M", 2 << 20),
            ("4k", 4096),
        ] {
            let c = cmd(&format!("build md0 --level=1 -n=1 --chunk={v} /dev/vda"));
            assert!(
                matches!(c, Command::Build(Build { chunk_bytes, .. }) if chunk_bytes == bytes),
                "{v}"
            );
        }
    }

    #[test]
    fn aliases() {
        assert_eq!(
            cmd("setfaulty md0 /dev/vda"),
            Command::Fail(s("md0"), s("/dev/vda"))
        );
        assert_eq!(
            cmd("hotremove md0 /dev/vda"),
            Command::Remove(s("md0"), s("/dev/vda"))
        );
        assert_eq!(
            cmd("hotadd md0 /dev/vda"),
            Command::Add(s("md0"), s("/dev/vda"))
        );
    }

    #[test]
    fn json_flags() {
        assert!(matches!(
            cmd("wait /dev/md0 600 --json"),
            Command::Wait { json: true, .. }
        ));
        assert!(matches!(
            cmd("wait --json /dev/md0"),
            Command::Wait { json: true, .. }
        ));
        assert_eq!(
            cmd("check /dev/md0 60 --repair --json"),
            Command::Check {
                array: s("/dev/md0"),
                timeout: Duration::from_secs(60),
                repair: true,
                json: true,
            }
        );
        assert!(matches!(
            cmd("check md0"),
            Command::Check {
                repair: false,
                json: false,
                ..
            }
        ));
        assert!(matches!(
            cmd("events --json 5"),
            Command::Events { json: true, .. }
        ));
        assert!(matches!(
            cmd("ioctl /dev/md0 GET_ARRAY_INFO --json"),
            Command::Ioctl { json: true, .. }
        ));
    }

    #[test]
    fn usage_errors() {
        for line in [
            "",
            "frobnicate md0",
            "build md0 --level=1 --chunk=x -n=1 /dev/vda",
            "build md0 --level=1 --chunk=99999999M -n=1 /dev/vda",
            "create md0 --level=5 --raid-devices=1 /dev/vda",
            "build md0 --level=1 --raid-devices=3 /dev/vda",
            "build md0 --raid-devices=1 /dev/vda",
            "build md0 --level=1 /dev/vda",
            "build md0 --level=1 --raid-devices=x /dev/vda",
            "build md0 --level=1 --raid-devices=1 --bogus /dev/vda",
            "build md0 --level=1 --raid-devices=1 /dev/vda --write-mostly",
            "fail md0",
            "fail md0 /dev/vda /dev/vdb",
            "stop md0 extra",
            "stop",
            "wait md0 soon",
            "events never",
            "detail",
            "ioctl md0",
            "ioctl md0 NOPE",
            "ioctl md0 ADD_NEW_DISK colour=3",
            "ioctl md0 ADD_NEW_DISK number",
            "ioctl md0 SET_ARRAY_INFO level=x",
            "ioctl md0 STOP_ARRAY 1 2",
            "ioctl md0 STOP_ARRAY x",
        ] {
            match parse_str(line) {
                Ok(c) => panic!("'{line}' parsed as {c:?}"),
                Err(e) => assert_eq!(e.exit_code(), 2, "'{line}': {e}"),
            }
        }
    }

    #[test]
    fn help_and_version_exit_zero() {
        for line in [
            "--help",
            "-h",
            "help",
            "help build",
            "build --help",
            "--version",
            "-V",
        ] {
            let e = parse_str(line).expect_err(line);
            assert_eq!(e.exit_code(), 0, "{line}: {e}");
        }
    }

    #[test]
    fn typos_get_suggestions() {
        let e = parse_str("detial md0").unwrap_err().to_string();
        assert!(e.contains("'detail'"), "{e}");
        let e = parse_str("build md0 --level=1 -n=1 --asume-clean /dev/vda")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--assume-clean"), "{e}");
    }

    #[test]
    fn post_parse_errors_say_what_is_wrong() {
        let e = parse_str("build md0 --level=1 --raid-devices=3 /dev/vda").unwrap_err();
        assert!(
            e.to_string()
                .contains("--raid-devices=3 but 1 devices given"),
            "{e}"
        );
        assert!(e.to_string().contains("fr1ctl build"), "{e}");
        let e = parse_str("ioctl md0 NOPE").unwrap_err();
        assert!(e.to_string().contains("unknown ioctl 'NOPE'"), "{e}");
        let e = parse_str("ioctl md0 ADD_NEW_DISK colour=3").unwrap_err();
        assert!(e.to_string().contains("unknown field 'colour'"), "{e}");
    }

    #[test]
    fn copy_verbs_and_their_raw_ioctls() {
        parses_to(
            "read-copy /dev/md0 --slot 1 --offset 992K --length 64K --output /tmp/c1",
            Command::ReadCopy {
                array: s("/dev/md0"),
                slot: 1,
                offset: 992 << 10,
                length: 64 << 10,
                output: Some(s("/tmp/c1")),
            },
        );
        parses_to(
            "read-copy /dev/md0 --slot 0 --offset 0 --length 3M",
            Command::ReadCopy {
                array: s("/dev/md0"),
                slot: 0,
                offset: 0,
                length: 3 << 20,
                output: None,
            },
        );
        parses_to(
            "repair-range /dev/md0 --from 0 --offset 0x1000 --length 1G",
            Command::RepairRange {
                array: s("/dev/md0"),
                from: 0,
                offset: 4096,
                length: 1 << 30,
            },
        );
        let raw = |line: &str| match cmd(line) {
            Command::Ioctl { arg, .. } => arg,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            raw("ioctl md0 FR1_READ_COPY slot=4294967295 offset=0xfffffffffffffe00 length=1024 buf=16"),
            RawArg::CopyIo(Fr1CopyIo {
                slot: u32::MAX,
                flags: 0,
                offset: 0xffff_ffff_ffff_fe00,
                length: 1024,
                buf: 16,
            })
        );
        assert_eq!(
            raw("ioctl md0 FR1_REPAIR_RANGE from=1 flags=1 length=4096"),
            RawArg::RepairRange(Fr1RepairRange {
                from: 1,
                flags: 1,
                offset: 0,
                length: 4096,
            })
        );
        assert_eq!(raw("ioctl md0 FR1_READ_COPY bad"), RawArg::BadPointer);
        assert!(parse_str("ioctl md0 FR1_READ_COPY slot=4294967296").is_err());
        assert!(parse_str("ioctl md0 FR1_REPAIR_RANGE colour=3").is_err());
        assert!(parse_str("read-copy /dev/md0 --slot 0 --offset 1Q --length 1").is_err());
        assert!(parse_str("read-copy /dev/md0 --offset 0 --length 1").is_err());
        assert_eq!(crate::cli::parse_bytes("16G"), Ok(16 << 30));
        assert!(crate::cli::parse_bytes("99999999999G").is_err());
    }

    #[test]
    fn ioctl_names_both_ways() {
        assert_eq!(ioctl_number("STOP_ARRAY"), Some(0x932));
        assert_eq!(ioctl_number("0x932"), Some(0x932));
        assert_eq!(ioctl_number("2354"), Some(0x932));
        assert_eq!(ioctl_number("0x100000000"), None);
        assert_eq!(ioctl_name(0x932), Some("STOP_ARRAY"));
        assert_eq!(ioctl_name(0x1234), None);
        for (name, cmd) in IOCTLS {
            assert_eq!(ioctl_name(cmd), Some(name));
        }
    }
}
