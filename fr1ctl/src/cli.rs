// SPDX-License-Identifier: GPL-2.0

//! fr1ctl's command line as clap sees it: verbs, options and their help.
//!
//! build.rs compiles this file too, to generate the man pages and the shell
//! completions, so it uses nothing but clap and std. What depends on the
//! ABI (ioctl names, the order of members) is resolved afterwards, in
//! `command.rs`.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

/// What every verb's help says about ARRAY.
const ARRAY_HELP: &str = "\
ARRAY is /dev/mdN (fr1 as md) or /dev/frN (next to md); it is created on \
first use, as md does.";

/// Build and manage fr1 arrays through md's ioctl ABI.
///
/// fr1ctl drives fr1 RAID1 arrays like mdadm's build mode and the raidtools
/// of old (setfaulty, hotadd, hotremove), through md's ioctls
/// (include/uapi/linux/raid/md_u.h) and the array's md/ directory in sysfs.
///
/// Exit status: 0 on success, 1 when the system refused (the errno is
/// named), 2 for a malformed command line.
#[derive(Debug, Parser)]
#[command(name = "fr1ctl", version, after_help = ARRAY_HELP)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) verb: Verb,
}

/// The verbs, with the raidtools' names as aliases.
#[derive(Debug, Subcommand)]
pub(crate) enum Verb {
    /// Build an array from its members and start it (mdadm --build)
    #[command(visible_alias = "create", after_help = ARRAY_HELP)]
    Build(BuildArgs),
    /// Mark a member faulty
    #[command(visible_alias = "setfaulty")]
    Fail(MemberArgs),
    /// Take a faulty member out of the array
    #[command(visible_alias = "hotremove")]
    Remove(MemberArgs),
    /// Add a device to a running array
    #[command(visible_alias = "hotadd")]
    Add(MemberArgs),
    /// Add a former member back
    ReAdd(MemberArgs),
    /// Stop the array and release its members
    Stop(StopArgs),
    /// Show the array, its members, resync and bitmap
    Detail(DetailArgs),
    /// Show the resync progress until the array is in sync
    ///
    /// Exits 0 once every member is in sync and the initial resync is done;
    /// otherwise 1, naming the reason: a member faulty, a recovery that
    /// stopped, sync_action frozen, a slot without a member, or the timeout.
    ///
    /// On a terminal the progress is a bar with the dirty bytes left, the
    /// rate and the time left; otherwise it is md's progress line (as in
    /// /proc/mdstat), printed whenever it changes.
    Wait(WaitArgs),
    /// Run md's check (or repair) and say where the legs differ
    ///
    /// Writes "check" (with --repair, "repair") to md/sync_action, shows the
    /// progress as `wait` does, then prints mismatch_cnt and each range that
    /// differs: which slot, from which slot (the one a repair copies from),
    /// in sectors and in bytes, as md/fr1_mismatches lists them. Exits 0 if
    /// the legs are the same (or were repaired); 1 if a check found ranges
    /// that differ, the array was busy (EBUSY) or the timeout passed (the
    /// check goes on; write "idle" to md/sync_action to stop it).
    Check(CheckArgs),
    /// Wait for the next array event (poll on the status file)
    ///
    /// Prints "event" when /proc/fr1stat (or /proc/mdstat) signals a change
    /// of any array; exits 1 if none comes within SECONDS.
    Events(EventsArgs),
    /// Read a byte range of one leg, bypassing read balancing and repair
    ///
    /// Reads with FR1_READ_COPY (include/uapi/linux/fr1.h), at most 1 MiB
    /// per call, and writes the bytes to FILE (created after the first call
    /// succeeds) or to standard output. OFFSET and LENGTH are bytes, whole
    /// logical blocks of the array; a K, M or G suffix multiplies by 1024s.
    ReadCopy(ReadCopyArgs),
    /// Write a range that is good on one leg over every other leg
    ///
    /// FR1_REPAIR_RANGE (include/uapi/linux/fr1.h), at most 1 MiB per call,
    /// each region under the array's interlock (it never races a write).
    /// EBUSY while a resync, recovery or check runs.
    RepairRange(RepairRangeArgs),
    /// Issue one md ioctl as given, for tests and debugging
    ///
    /// Prints "ok" or the errno's name (EINVAL, EBUSY, ...) on the first
    /// line; GET_ARRAY_INFO and GET_DISK_INFO then print the struct.
    Ioctl(IoctlArgs),
}

/// `build ARRAY --level=1 --raid-devices=N [options] DEV...`
#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// The array to build (/dev/mdN or /dev/frN)
    #[arg(value_name = "ARRAY")]
    pub(crate) array: String,
    /// RAID level: fr1 builds RAID1 only
    #[arg(short = 'l', long, value_name = "LEVEL", value_parser = level_parser())]
    pub(crate) level: Level,
    /// Number of mirrors: as many DEVs must be given
    #[arg(short = 'n', long = "raid-devices", value_name = "N")]
    pub(crate) raid_devices: i32,
    /// The members hold the same data: skip the initial resync
    #[arg(long)]
    pub(crate) assume_clean: bool,
    /// Bitmap block size (mdadm's --chunk): KiB, or a number with a K or M
    /// suffix; a power of two from 4 KiB to 64 MiB
    #[arg(short = 'c', long = "chunk", value_name = "SIZE", value_parser = parse_chunk)]
    pub(crate) chunk_bytes: Option<i32>,
    /// A write-mostly member (reads avoid it), in its place among the DEVs
    #[arg(short = 'W', long = "write-mostly", value_name = "DEV")]
    pub(crate) write_mostly: Vec<String>,
    /// The members, in slot order
    #[arg(value_name = "DEV", required_unless_present = "write_mostly")]
    pub(crate) devices: Vec<String>,
}

/// The RAID levels `--level` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// A mirror: `1`, `raid1` or `mirror`, as mdadm spells it.
    Raid1,
}

impl Level {
    /// md's number of the level (`mdu_array_info_t.level`).
    pub(crate) fn md_level(self) -> i32 {
        match self {
            Level::Raid1 => 1,
        }
    }
}

fn level_parser() -> impl TypedValueParser<Value = Level> {
    PossibleValuesParser::new(["1", "raid1", "mirror"]).map(|_| Level::Raid1)
}

/// mdadm's `--chunk` value in bytes: KiB, or a number with a K or M
/// suffix. The kernel validates the size itself (EINVAL).
pub(crate) fn parse_chunk(v: &str) -> Result<i32, String> {
    let (num, mult) = match v.as_bytes().last() {
        Some(b'K' | b'k') => (&v[..v.len() - 1], 1024),
        Some(b'M' | b'm') => (&v[..v.len() - 1], 1024 * 1024),
        _ => (v, 1024),
    };
    num.parse::<i32>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| "expected KiB, or a number with a K or M suffix".into())
}

/// `fail|remove|add|re-add ARRAY DEV`
#[derive(Debug, Args)]
pub(crate) struct MemberArgs {
    /// The array
    #[arg(value_name = "ARRAY")]
    pub(crate) array: String,
    /// The member device
    #[arg(value_name = "DEV")]
    pub(crate) dev: String,
}

/// `stop ARRAY`
#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    /// The array
    #[arg(value_name = "ARRAY")]
    pub(crate) array: String,
}

/// `detail ARRAY [--json]`
#[derive(Debug, Args)]
pub(crate) struct DetailArgs {
    /// The array
    #[arg(value_name = "ARRAY")]
    pub(crate) array: String,
    /// Print one JSON object (see "fr1ctl's JSON output" in
    /// Documentation/fr1/admin.rst)
    #[arg(long)]
    pub(crate) json: bool,
}

/// `wait ARRAY [SECONDS] [--json]`
#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// The array
    #[arg(value_name = "ARRAY")]
    pub(crate) array: String,
    /// Give up after this many seconds
    #[arg(value_name = "SECONDS", default_value_t = 3600)]
    pub(crate) seconds: u64,
    /// Print the outcome as one JSON object; the progress goes to stderr,
    /// when it is a terminal
    #[arg(long)]
    pub(crate) json: bool,
}

/// `check ARRAY [SECONDS] [--repair] [--json]`
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The array
    #[arg(value_name = "ARRAY")]
    pub(crate) array: String,
    /// Give up waiting after this many seconds
    #[arg(value_name = "SECONDS", default_value_t = 3600)]
    pub(crate) seconds: u64,
    /// Rewrite every differing leg from the first in-sync one (md's repair)
    #[arg(long)]
    pub(crate) repair: bool,
    /// Print the outcome as one JSON object; the progress goes to stderr,
    /// when it is a terminal
    #[arg(long)]
    pub(crate) json: bool,
}

/// `events [SECONDS] [--json]`
#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Give up after this many seconds
    #[arg(value_name = "SECONDS", default_value_t = 3600)]
    pub(crate) seconds: u64,
    /// Print the outcome as one JSON object
    #[arg(long)]
    pub(crate) json: bool,
}

/// `read-copy ARRAY --slot N --offset B --length B [--output FILE]`
#[derive(Debug, Args)]
pub(crate) struct ReadCopyArgs {
    /// The array
    #[arg(value_name = "ARRAY")]
    pub(crate) array: String,
    /// The leg to read (its slot, as md/dev-*/slot says)
    #[arg(long, value_name = "N")]
    pub(crate) slot: u32,
    /// Where the range starts, in bytes
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub(crate) offset: u64,
    /// How many bytes to read
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub(crate) length: u64,
    /// Write the bytes here instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<String>,
}

/// `repair-range ARRAY --from N --offset B --length B`
#[derive(Debug, Args)]
pub(crate) struct RepairRangeArgs {
    /// The array
    #[arg(value_name = "ARRAY")]
    pub(crate) array: String,
    /// The leg whose copy of the range is good (its slot)
    #[arg(long, value_name = "N")]
    pub(crate) from: u32,
    /// Where the range starts, in bytes
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub(crate) offset: u64,
    /// How many bytes to repair
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub(crate) length: u64,
}

/// A byte count: a number (decimal or 0x hex), optionally with a K, M or G
/// suffix (powers of 1024).
pub(crate) fn parse_bytes(v: &str) -> Result<u64, String> {
    let (num, shift) = match v.as_bytes().last() {
        Some(b'K' | b'k') => (&v[..v.len() - 1], 10),
        Some(b'M' | b'm') => (&v[..v.len() - 1], 20),
        Some(b'G' | b'g') => (&v[..v.len() - 1], 30),
        _ => (v, 0),
    };
    let n = match num.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => num.parse::<u64>().ok(),
    };
    n.and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| "expected bytes, optionally with a K, M or G suffix".into())
}

/// `ioctl ARRAY CMD [ARG | FIELD=VALUE...] [--json]`
#[derive(Debug, Args)]
pub(crate) struct IoctlArgs {
    /// The array
    #[arg(value_name = "ARRAY")]
    pub(crate) array: String,
    /// The ioctl: a number (0x932) or md's name (RAID_VERSION,
    /// GET_ARRAY_INFO, GET_DISK_INFO, RAID_AUTORUN, GET_BITMAP_FILE,
    /// ADD_NEW_DISK, HOT_REMOVE_DISK, SET_ARRAY_INFO, HOT_ADD_DISK,
    /// SET_DISK_FAULTY, SET_BITMAP_FILE, RUN_ARRAY, STOP_ARRAY, STOP_ARRAY_RO,
    /// RESTART_ARRAY_RW), or fr1's (FR1_READ_COPY, FR1_REPAIR_RANGE)
    #[arg(value_name = "CMD")]
    pub(crate) cmd: String,
    /// The argument: an integer (a dev_t encoding, 0), "null", "bad" (an
    /// invalid user pointer), or FIELD=VALUE pairs of the struct that
    /// SET_ARRAY_INFO/GET_ARRAY_INFO (level, size, nr_disks, raid_disks,
    /// md_minor, not_persistent, state, layout, chunk_size) or
    /// ADD_NEW_DISK/GET_DISK_INFO (number, major, minor, raid_disk, state),
    /// FR1_READ_COPY (slot, flags, offset, length, buf: an address; without
    /// it, a buffer of `length` bytes) or FR1_REPAIR_RANGE (from, flags,
    /// offset, length) take; other ioctls that return data get a zeroed
    /// buffer
    #[arg(value_name = "ARG")]
    pub(crate) args: Vec<String>,
    /// Print the outcome as one JSON object
    #[arg(long)]
    pub(crate) json: bool,
}
