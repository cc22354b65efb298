// SPDX-License-Identifier: GPL-2.0

//! What each verb does.

use std::time::{Duration, Instant};

use rustix::io::Errno;

use crate::command::{self, Build, Command, RawArg};
use crate::dev;
use crate::ioctl::{errno_name, Array, Error, RawIoctl};
use crate::logic::abi::{self, nr, MduArrayInfo, MduDiskInfo};
use crate::report::{self, EventsJson, IoctlJson};
use crate::sysfs::{self, StatusWatch};
use crate::{check, wait};

/// Runs a parsed command.
pub(crate) fn run(cmd: &Command) -> Result<(), Error> {
    match cmd {
        Command::Build(b) => build(b),
        Command::Fail(a, d) => member_op(a, d, Array::set_faulty, "set faulty", |e| match e {
            Errno::BUSY => "it holds the last in-sync copy of the data; add another mirror first",
            Errno::NODEV => "it is not a member of this array",
            _ => "check the array with 'fr1ctl detail'",
        }),
        Command::Remove(a, d) => member_op(a, d, Array::hot_remove, "removed", |e| match e {
            Errno::BUSY => "it is still active (fail it first) or has I/O in flight (retry)",
            Errno::NXIO => "it is not a member of this array",
            _ => "check the array with 'fr1ctl detail'",
        }),
        Command::Add(a, d) | Command::ReAdd(a, d) => {
            member_op(a, d, Array::hot_add, "added", |e| match e {
                Errno::OPNOTSUPP => {
                    "adding to a running array needs the resync engine, not in this fr1 version"
                }
                Errno::BUSY => "the device is in use",
                _ => "check the array with 'fr1ctl detail'",
            })
        }
        Command::Stop(a) => {
            let arr = Array::open(a)?;
            arr.stop().map_err(fail(
                format!("cannot stop {a}"),
                "is it mounted or open? close it first",
            ))?;
            println!("fr1ctl: stopped {a}");
            Ok(())
        }
        Command::Detail { array, json } => detail(array, *json),
        Command::Wait {
            array,
            timeout,
            json,
        } => wait::wait(array, *timeout, *json),
        Command::Check {
            array,
            timeout,
            repair,
            json,
        } => check::check(array, *timeout, *repair, *json),
        Command::Events { timeout, json } => events(*timeout, *json),
        Command::ReadCopy {
            array,
            slot,
            offset,
            length,
            output,
        } => read_copy(array, *slot, *offset, *length, output.as_deref()),
        Command::RepairRange {
            array,
            from,
            offset,
            length,
        } => repair_range(array, *from, *offset, *length),
        Command::Ioctl {
            array,
            cmd,
            arg,
            json,
        } => raw_ioctl(array, *cmd, arg, *json),
    }
}

/// The hint for an errno of FR1_READ_COPY or FR1_REPAIR_RANGE.
fn copy_hint(e: Errno) -> &'static str {
    match e {
        Errno::INVAL => {
            "the slot must be an in-sync leg, the range whole logical blocks inside the array"
        }
        Errno::BUSY => "a resync, check or write-behind is running; retry when it is done",
        Errno::IO => "the leg failed the I/O: see dmesg",
        Errno::ACCESS => "it needs CAP_SYS_ADMIN",
        Errno::NODEV => "the array is not running",
        _ => "see 'fr1ctl detail'",
    }
}

/// The ranges of at most one call (`FR1_MAX_COPY_BYTES`) that cover
/// `length` bytes at `offset`.
fn calls(offset: u64, length: u64) -> impl Iterator<Item = (u64, u64)> {
    let step = abi::FR1_MAX_COPY_BYTES;
    (0..length.div_ceil(step)).map(move |i| (offset + i * step, (length - i * step).min(step)))
}

/// `fr1ctl read-copy`: the range, one call per MiB, to FILE or stdout.
/// FILE is created only once the first call succeeded (a refused read
/// leaves no empty file behind).
fn read_copy(
    array: &str,
    slot: u32,
    offset: u64,
    length: u64,
    output: Option<&str>,
) -> Result<(), Error> {
    use std::io::Write;
    let arr = Array::open(array)?;
    let mut buf = vec![0u8; length.min(abi::FR1_MAX_COPY_BYTES) as usize];
    let mut out: Option<Box<dyn Write>> = None;
    let write_err = |e: std::io::Error| Error::io("cannot write the copy", &e, "check the output");
    for (at, len) in calls(offset, length.max(1)) {
        let chunk = &mut buf[..len as usize];
        arr.read_copy(slot, at, chunk).map_err(|e| {
            Error::os(
                format!("read-copy of slot {slot} at byte {at} ({len} bytes) of {array} failed"),
                e,
                copy_hint(e),
            )
        })?;
        let w = match &mut out {
            Some(w) => w,
            None => out.insert(match output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).map_err(|e| {
                        Error::io(format!("cannot create {path}"), &e, "check the path")
                    })?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            }),
        };
        w.write_all(chunk).map_err(write_err)?;
    }
    if let Some(mut w) = out {
        w.flush().map_err(write_err)?;
    }
    Ok(())
}

/// `fr1ctl repair-range`: one call per MiB.
fn repair_range(array: &str, from: u32, offset: u64, length: u64) -> Result<(), Error> {
    let arr = Array::open(array)?;
    for (at, len) in calls(offset, length.max(1)) {
        arr.repair_range(from, at, len).map_err(|e| {
            Error::os(
                format!(
                    "repair-range from slot {from} at byte {at} ({len} bytes) of {array} failed"
                ),
                e,
                copy_hint(e),
            )
        })?;
    }
    println!("fr1ctl: repaired {length} bytes at byte {offset} of {array} from slot {from}");
    Ok(())
}

fn fail(what: String, hint: &'static str) -> impl FnOnce(Errno) -> Error {
    move |e| Error::os(what, e, hint)
}

/// fail, remove, add, re-add: one ioctl naming a member by device number.
fn member_op(
    array: &str,
    devpath: &str,
    op: fn(&Array, u32) -> Result<(), Errno>,
    verb: &str,
    hints: fn(Errno) -> &'static str,
) -> Result<(), Error> {
    let a = Array::open(array)?;
    let d = dev::block_dev(devpath)?;
    op(&a, dev::encode(d))
        .map_err(|e| Error::os(format!("{verb} {devpath} on {array} failed"), e, hints(e)))?;
    println!("fr1ctl: {verb} {devpath} on {array}");
    Ok(())
}

fn build(b: &Build) -> Result<(), Error> {
    let path = dev::ensure_node(&b.array)?;
    let (_, minor) = dev::parse_array_name(&path).ok_or_else(|| Error::usage("bad array name"))?;
    let devs = b
        .members
        .iter()
        .map(|m| dev::block_dev(&m.dev))
        .collect::<Result<Vec<_>, _>>()?;
    let a = Array::open(&path)?;
    let info = MduArrayInfo {
        level: b.level.md_level(),
        raid_disks: b.raid_disks,
        nr_disks: b.raid_disks,
        md_minor: minor as i32,
        not_persistent: 1,
        state: if b.clean { abi::MD_SB_CLEAN } else { 0 },
        active_disks: b.raid_disks,
        working_disks: b.raid_disks,
        chunk_size: b.chunk_bytes,
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
    for (i, (d, m)) in devs.iter().zip(&b.members).enumerate() {
        let mut state = abi::MD_DISK_ACTIVE | abi::MD_DISK_SYNC;
        if m.write_mostly {
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
                    format!("cannot add {} to {path}", m.dev),
                    e,
                    match e {
                        Errno::BUSY => "it is in use (mounted, held by another array, listed twice, or the array itself)",
                        Errno::NOSPC => "it is smaller than the array",
                        Errno::NXIO | Errno::NODEV => "no such device",
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
            let words = sysfs::read(array, &state).unwrap_or_default();
            let has = |word: &str| words.split(',').any(|w| w == word);
            rows.push(report::Row {
                disk: d,
                name,
                behind: has("behind"),
                probing: has("probing"),
            });
        }
    }
    let bitmap = |attr: &str| sysfs::read_u64(array, &format!("bitmap/{attr}")).unwrap_or(0);
    let extra = report::Extra {
        sync: sysfs::read(array, "sync_action"),
        progress: sysfs::progress_line(array),
        completed: sysfs::read(array, "sync_completed").and_then(|s| sysfs::parse_completed(&s)),
        bitmap: report::Bitmap {
            chunk_bytes: bitmap("chunksize"),
            dirty_blocks: bitmap("bits"),
            pages: bitmap("pages"),
            coarse: bitmap("coarse"),
            bytes: bitmap("bytes"),
            resync_copied_bytes: bitmap("resync_copied_bytes"),
            backlog: bitmap("backlog"),
            behind_writes: bitmap("behind_writes"),
            behind_bytes: bitmap("behind_bytes"),
        },
        mismatches: sysfs::read_u64(array, "mismatch_cnt"),
    };
    if as_json {
        let j = report::DetailJson::new(array, &info, &rows, &extra);
        println!("{}", report::to_json(&j));
    } else {
        print!("{}", report::human(array, &info, &rows, &extra));
    }
    Ok(())
}

/// Waits for the next array event: md's status file turns POLLPRI when an
/// array changes (what `mdadm --monitor` sleeps on).
fn events(timeout: Duration, json: bool) -> Result<(), Error> {
    let start = Instant::now();
    let mut watch = StatusWatch::open()?;
    watch.arm();
    let event = watch.wait(timeout);
    if json {
        let j = EventsJson {
            status_file: watch.path,
            event,
            elapsed_ms: start.elapsed(),
        };
        println!("{}", report::to_json(&j));
    } else if event {
        println!("event");
    }
    if event {
        Ok(())
    } else {
        Err(Error::os(
            format!("no event on {} within {}s", watch.path, timeout.as_secs()),
            Errno::TIMEDOUT,
            "nothing changed",
        ))
    }
}

/// `fr1ctl ioctl`: one ioctl as given; prints "ok" or the errno's name.
fn raw_ioctl(array: &str, cmd: u32, arg: &RawArg, json: bool) -> Result<(), Error> {
    let arr = Array::open(array)?;
    let (mut ai, mut di) = (MduArrayInfo::default(), MduDiskInfo::default());
    // Set by their argument's arm only, and borrowed by the ioctl.
    let (mut cio, mut rr): (abi::Fr1CopyIo, abi::Fr1RepairRange);
    // FR1_READ_COPY without `buf`: a buffer of its length (a length the
    // kernel must refuse gets at most 2 MiB).
    let mut copy_buf = match arg {
        RawArg::CopyIo(v) if v.buf == 0 => vec![0u8; v.length.min(2 << 20) as usize],
        _ => Vec::new(),
    };
    // At least what the command's size field claims (_IOC_SIZE).
    let mut buf = vec![0u8; ((cmd >> 16) & 0x3fff).max(4096) as usize];
    let raw = match arg {
        RawArg::Int(v) => RawIoctl::int(cmd, *v),
        // The first page is never mapped.
        RawArg::BadPointer => RawIoctl::int(cmd, 16),
        RawArg::Buffer => RawIoctl::pointer(cmd, buf.as_mut_slice()),
        RawArg::ArrayInfo(v) => {
            ai = *v;
            RawIoctl::pointer(cmd, &mut ai)
        }
        RawArg::DiskInfo(v) => {
            di = *v;
            RawIoctl::pointer(cmd, &mut di)
        }
        RawArg::CopyIo(v) => {
            cio = *v;
            if cio.buf == 0 {
                cio.buf = copy_buf.as_mut_ptr() as u64;
            }
            RawIoctl::pointer(cmd, &mut cio)
        }
        RawArg::RepairRange(v) => {
            rr = *v;
            RawIoctl::pointer(cmd, &mut rr)
        }
    };
    let result = arr.raw(raw);
    if json {
        let ok = result.is_ok();
        let j = IoctlJson {
            array,
            cmd,
            name: command::ioctl_name(cmd),
            result: result.map_or_else(errno_name, |()| "ok"),
            errno: result.err().map(Errno::raw_os_error),
            array_info: (ok && cmd == nr::GET_ARRAY_INFO).then(|| (&ai).into()),
            disk_info: (ok && cmd == nr::GET_DISK_INFO).then(|| (&di).into()),
        };
        println!("{}", report::to_json(&j));
    } else {
        match result {
            Ok(()) if cmd == nr::GET_ARRAY_INFO => println!("ok\n{ai:?}"),
            Ok(()) if cmd == nr::GET_DISK_INFO => println!("ok\n{di:?}"),
            Ok(()) => println!("ok"),
            Err(e) => println!("{}", errno_name(e)),
        }
    }
    result.map_err(|e| Error::os(format!("ioctl {cmd:#x}"), e, "raw ioctl"))
}
