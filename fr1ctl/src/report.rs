// SPDX-License-Identifier: GPL-2.0

//! What fr1ctl prints: `detail` for humans (mdadm --detail's layout), and
//! the JSON objects of `--json`.
//!
//! The JSON schema is documented in Documentation/fr1/admin.rst ("fr1ctl's
//! JSON output") and is stable: the structs below serialize their fields in
//! declaration order, so that order is part of the schema. Fields are only
//! ever added at the end of an object.

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use crate::logic::abi::{self, MduArrayInfo, MduDiskInfo};

/// What sysfs adds to the ioctls' view.
#[derive(Default)]
pub(crate) struct Extra {
    /// `sync_action`.
    pub(crate) sync: Option<String>,
    /// md's progress bar, while a sync runs.
    pub(crate) progress: Option<String>,
    /// `sync_completed` in sectors.
    pub(crate) completed: Option<(u64, u64)>,
    /// md/bitmap/.
    pub(crate) bitmap: Bitmap,
    /// `mismatch_cnt`.
    pub(crate) mismatches: Option<u64>,
}

/// The attributes of md/bitmap/ (zero where absent); `detail`'s `bitmap`
/// object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Bitmap {
    /// `chunksize`: bytes per bit.
    pub(crate) chunk_bytes: u64,
    /// `bits`: dirty blocks, summed over the members.
    pub(crate) dirty_blocks: u64,
    /// `pages`: 4 KiB pages the bitmap holds (mdstat's figure).
    pub(crate) pages: u64,
    /// `coarse`: coarse ranges.
    pub(crate) coarse: u64,
    /// `bytes`: bytes the bitmap holds.
    pub(crate) bytes: u64,
    /// `resync_copied_bytes`: bytes copied by resyncs since the start.
    pub(crate) resync_copied_bytes: u64,
    /// `backlog`: behind writes allowed in flight per write-mostly leg.
    pub(crate) backlog: u64,
    /// `behind_writes`: behind writes in flight.
    pub(crate) behind_writes: u64,
    /// `behind_bytes`: their bytes.
    pub(crate) behind_bytes: u64,
}

/// One member row.
pub(crate) struct Row {
    pub(crate) disk: MduDiskInfo,
    pub(crate) name: String,
    /// fr1's ahead/behind: writes only mark the leg's bitmap for now.
    pub(crate) behind: bool,
    /// Failed by itself: fr1 probes it and re-adds it when it answers.
    pub(crate) probing: bool,
}

fn state_words(state: i32) -> Vec<&'static str> {
    let mut w = Vec::new();
    if state & abi::MD_DISK_FAULTY != 0 {
        w.push("faulty");
    }
    if state & abi::MD_DISK_ACTIVE != 0 {
        w.push("active");
    }
    if state & abi::MD_DISK_SYNC != 0 {
        w.push("sync");
    }
    if state & abi::MD_DISK_WRITEMOSTLY != 0 {
        w.push("writemostly");
    }
    if state & (abi::MD_DISK_FAULTY | abi::MD_DISK_SYNC) == 0 {
        w.push("spare");
    }
    w
}

fn row_words(r: &Row) -> Vec<&'static str> {
    let mut w = state_words(r.disk.state);
    if r.behind {
        w.push("behind");
    }
    if r.probing {
        w.push("probing");
    }
    w
}

fn array_state(a: &MduArrayInfo) -> String {
    let mut s = String::from(if a.state & abi::MD_SB_CLEAN != 0 {
        "clean"
    } else {
        "active"
    });
    if a.active_disks < a.raid_disks {
        s.push_str(", degraded");
    }
    s
}

/// mdadm --detail style text.
pub(crate) fn human(path: &str, a: &MduArrayInfo, rows: &[Row], x: &Extra) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{path}:");
    let kib = i64::from(a.size);
    let _ = writeln!(o, "        Raid Level : raid{}", a.level);
    let _ = writeln!(
        o,
        "        Array Size : {kib} ({:.2} MiB)",
        kib as f64 / 1024.0
    );
    let _ = writeln!(o, "      Raid Devices : {}", a.raid_disks);
    let _ = writeln!(o, "     Total Devices : {}", a.nr_disks);
    let _ = writeln!(o, "       Persistence : Superblock is not persistent");
    let _ = writeln!(o, "             State : {}", array_state(a));
    let _ = writeln!(o, "    Active Devices : {}", a.active_disks);
    let _ = writeln!(o, "   Working Devices : {}", a.working_disks);
    let _ = writeln!(o, "    Failed Devices : {}", a.failed_disks);
    let _ = writeln!(o, "     Spare Devices : {}", a.spare_disks);
    if let (Some(p), Some((done, total))) = (&x.progress, x.completed) {
        let pct = (done * 100).checked_div(total).unwrap_or(0);
        let _ = writeln!(o, "    Rebuild Status : {pct}% complete");
        let _ = writeln!(o, "                     {p}");
    }
    if let Some(s) = &x.sync {
        let _ = writeln!(o, "       Sync Action : {s}");
    }
    if let Some(m) = x.mismatches {
        let _ = writeln!(o, "      Mismatch Cnt : {m} sectors");
    }
    let b = &x.bitmap;
    let _ = writeln!(
        o,
        "     Intent Bitmap : in memory, {} B chunk, {} dirty blocks, {} pages ({} B), {} coarse ranges",
        b.chunk_bytes, b.dirty_blocks, b.pages, b.bytes, b.coarse
    );
    let _ = writeln!(
        o,
        "     Resync Copied : {} bytes in all",
        b.resync_copied_bytes
    );
    if b.backlog > 0 {
        let _ = writeln!(
            o,
            "      Write Behind : backlog {}, {} writes ({} bytes) in flight",
            b.backlog, b.behind_writes, b.behind_bytes
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "    Number   Major   Minor   RaidDevice State");
    for slot in 0..a.raid_disks {
        match rows.iter().find(|r| r.disk.raid_disk == slot) {
            Some(r) => {
                let _ = writeln!(
                    o,
                    "    {:>4}   {:>5}   {:>5}   {:>6}      {:<13} {}",
                    r.disk.number,
                    r.disk.major,
                    r.disk.minor,
                    slot,
                    row_words(r).join(" "),
                    r.name
                );
            }
            None => {
                let _ = writeln!(o, "       -       0       0   {slot:>6}      removed");
            }
        }
    }
    o
}

/// `detail --json`.
#[derive(Debug, Serialize)]
pub(crate) struct DetailJson<'a> {
    array: &'a str,
    level: String,
    size_kib: i32,
    raid_disks: i32,
    total_devices: i32,
    persistent: bool,
    state: String,
    active: i32,
    working: i32,
    failed: i32,
    spare: i32,
    sync_action: Option<&'a str>,
    sync_completed: Option<(u64, u64)>,
    mismatch_cnt: Option<u64>,
    bitmap: Bitmap,
    members: Vec<MemberJson<'a>>,
}

/// One entry of `detail`'s `members`.
#[derive(Debug, Serialize)]
struct MemberJson<'a> {
    number: i32,
    major: i32,
    minor: i32,
    slot: i32,
    state: Vec<&'static str>,
    device: &'a str,
    behind: bool,
    probing: bool,
}

impl<'a> DetailJson<'a> {
    pub(crate) fn new(path: &'a str, a: &MduArrayInfo, rows: &'a [Row], x: &'a Extra) -> Self {
        DetailJson {
            array: path,
            level: format!("raid{}", a.level),
            size_kib: a.size,
            raid_disks: a.raid_disks,
            total_devices: a.nr_disks,
            persistent: false,
            state: array_state(a),
            active: a.active_disks,
            working: a.working_disks,
            failed: a.failed_disks,
            spare: a.spare_disks,
            sync_action: x.sync.as_deref(),
            sync_completed: x.completed,
            mismatch_cnt: x.mismatches,
            bitmap: x.bitmap,
            members: rows
                .iter()
                .map(|r| MemberJson {
                    number: r.disk.number,
                    major: r.disk.major,
                    minor: r.disk.minor,
                    slot: r.disk.raid_disk,
                    state: state_words(r.disk.state),
                    device: &r.name,
                    behind: r.behind,
                    probing: r.probing,
                })
                .collect(),
        }
    }
}

/// `wait --json`.
#[derive(Debug, Serialize)]
pub(crate) struct WaitJson<'a> {
    pub(crate) array: &'a str,
    /// "in_sync" (exit status 0), "not_in_sync" or "timed_out" (1).
    pub(crate) result: &'static str,
    /// Why not in sync (as the error message says); `None` otherwise.
    pub(crate) reason: Option<&'a str>,
    /// `sync_action` when the wait ended.
    pub(crate) sync_action: &'a str,
    /// `sync_completed` when the wait ended, if a sync still ran.
    pub(crate) sync_completed: Option<(u64, u64)>,
    #[serde(serialize_with = "millis")]
    pub(crate) elapsed_ms: Duration,
}

/// `check --json`.
#[derive(Debug, Serialize)]
pub(crate) struct CheckJson<'a> {
    pub(crate) array: &'a str,
    /// "check" or "repair".
    pub(crate) action: &'static str,
    /// "same" (exit status 0), "repaired" (0), "differ" or "timed_out" (1).
    pub(crate) result: &'static str,
    /// md's `mismatch_cnt` when the check ended.
    pub(crate) mismatch_cnt: Option<u64>,
    /// The ranges of md/fr1_mismatches.
    pub(crate) ranges: Vec<RangeJson>,
    /// Sectors found different that `ranges` does not list.
    pub(crate) unlisted_sectors: u64,
    #[serde(serialize_with = "millis")]
    pub(crate) elapsed_ms: Duration,
}

/// A range of `check --json`, in sectors and in bytes.
#[derive(Debug, Serialize)]
pub(crate) struct RangeJson {
    pub(crate) sector: u64,
    pub(crate) sectors: u64,
    pub(crate) offset: u64,
    pub(crate) length: u64,
    /// The leg found different, and its device.
    pub(crate) slot: u32,
    pub(crate) device: Option<String>,
    /// The leg it was compared with (a repair copies from it).
    pub(crate) primary: u32,
    pub(crate) primary_device: Option<String>,
}

/// `events --json`.
#[derive(Debug, Serialize)]
pub(crate) struct EventsJson {
    pub(crate) status_file: &'static str,
    /// An event came (exit status 0); false at the timeout (1).
    pub(crate) event: bool,
    #[serde(serialize_with = "millis")]
    pub(crate) elapsed_ms: Duration,
}

/// `ioctl --json`.
#[derive(Debug, Serialize)]
pub(crate) struct IoctlJson<'a> {
    pub(crate) array: &'a str,
    pub(crate) cmd: u32,
    /// md's name of `cmd`, if it has one.
    pub(crate) name: Option<&'static str>,
    /// "ok" or the errno's name, as the text output's first line.
    pub(crate) result: &'static str,
    pub(crate) errno: Option<i32>,
    /// What GET_ARRAY_INFO returned.
    pub(crate) array_info: Option<ArrayInfoJson>,
    /// What GET_DISK_INFO returned.
    pub(crate) disk_info: Option<DiskInfoJson>,
}

/// `mdu_array_info_t`, field by field (md_u.h).
#[derive(Debug, Serialize)]
pub(crate) struct ArrayInfoJson {
    major_version: i32,
    minor_version: i32,
    patch_version: i32,
    ctime: u32,
    level: i32,
    size: i32,
    nr_disks: i32,
    raid_disks: i32,
    md_minor: i32,
    not_persistent: i32,
    utime: u32,
    state: i32,
    active_disks: i32,
    working_disks: i32,
    failed_disks: i32,
    spare_disks: i32,
    layout: i32,
    chunk_size: i32,
}

impl From<&MduArrayInfo> for ArrayInfoJson {
    fn from(a: &MduArrayInfo) -> Self {
        ArrayInfoJson {
            major_version: a.major_version,
            minor_version: a.minor_version,
            patch_version: a.patch_version,
            ctime: a.ctime,
            level: a.level,
            size: a.size,
            nr_disks: a.nr_disks,
            raid_disks: a.raid_disks,
            md_minor: a.md_minor,
            not_persistent: a.not_persistent,
            utime: a.utime,
            state: a.state,
            active_disks: a.active_disks,
            working_disks: a.working_disks,
            failed_disks: a.failed_disks,
            spare_disks: a.spare_disks,
            layout: a.layout,
            chunk_size: a.chunk_size,
        }
    }
}

/// `mdu_disk_info_t`, field by field (md_u.h).
#[derive(Debug, Serialize)]
pub(crate) struct DiskInfoJson {
    number: i32,
    major: i32,
    minor: i32,
    raid_disk: i32,
    state: i32,
}

impl From<&MduDiskInfo> for DiskInfoJson {
    fn from(d: &MduDiskInfo) -> Self {
        DiskInfoJson {
            number: d.number,
            major: d.major,
            minor: d.minor,
            raid_disk: d.raid_disk,
            state: d.state,
        }
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One JSON object, compact, on one line.
pub(crate) fn to_json(v: &impl Serialize) -> String {
    // Strings, numbers, arrays and structs of them: nothing can fail.
    serde_json::to_string(v).expect("fr1ctl's JSON objects always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (MduArrayInfo, Vec<Row>) {
        let a = MduArrayInfo {
            level: 1,
            size: 65536,
            raid_disks: 2,
            nr_disks: 2,
            not_persistent: 1,
            state: abi::MD_SB_CLEAN,
            active_disks: 1,
            working_disks: 1,
            failed_disks: 1,
            ..Default::default()
        };
        let rows = vec![
            Row {
                disk: MduDiskInfo {
                    number: 0,
                    major: 253,
                    minor: 0,
                    raid_disk: 0,
                    state: 6,
                },
                name: "/dev/vda".into(),
                behind: false,
                probing: false,
            },
            Row {
                disk: MduDiskInfo {
                    number: 1,
                    major: 253,
                    minor: 16,
                    raid_disk: 1,
                    state: 1,
                },
                name: "/dev/vdb".into(),
                behind: false,
                probing: true,
            },
        ];
        (a, rows)
    }

    #[test]
    fn human_detail() {
        let (a, rows) = sample();
        let t = human("/dev/md0", &a, &rows, &Extra::default());
        assert!(t.contains("State : clean, degraded"), "{t}");
        assert!(t.contains("Persistence : Superblock is not persistent"));
        assert!(t.contains("active sync   /dev/vda"), "{t}");
        assert!(t.contains("faulty"), "{t}");
        let t = human("/dev/md0", &a, &rows[..1], &Extra::default());
        assert!(t.contains("removed"), "{t}");
    }

    /// The schema's keys, their order and their types: a fixed detail
    /// serializes to exactly this.
    #[test]
    fn json_detail() {
        let (a, rows) = sample();
        let x = Extra {
            sync: Some("idle".into()),
            progress: None,
            completed: None,
            bitmap: Bitmap {
                chunk_bytes: 4096,
                dirty_blocks: 3,
                pages: 1,
                coarse: 0,
                bytes: 512,
                resync_copied_bytes: 8192,
                backlog: 256,
                behind_writes: 0,
                behind_bytes: 0,
            },
            mismatches: Some(0),
        };
        assert_eq!(
            to_json(&DetailJson::new("/dev/md0", &a, &rows, &x)),
            concat!(
                r#"{"array":"/dev/md0","level":"raid1","size_kib":65536,"raid_disks":2,"#,
                r#""total_devices":2,"persistent":false,"state":"clean, degraded","#,
                r#""active":1,"working":1,"failed":1,"spare":0,"sync_action":"idle","#,
                r#""sync_completed":null,"mismatch_cnt":0,"bitmap":{"chunk_bytes":4096,"#,
                r#""dirty_blocks":3,"pages":1,"coarse":0,"bytes":512,"resync_copied_bytes":8192,"#,
                r#""backlog":256,"behind_writes":0,"behind_bytes":0},"members":["#,
                r#"{"number":0,"major":253,"minor":0,"slot":0,"state":["active","sync"],"#,
                r#""device":"/dev/vda","behind":false,"probing":false},"#,
                r#"{"number":1,"major":253,"minor":16,"slot":1,"state":["faulty"],"#,
                r#""device":"/dev/vdb","behind":false,"probing":true}]}"#
            )
        );
        // What tests/vm/test_array_lifecycle.sh greps for a healthy array.
        let healthy = MduArrayInfo {
            active_disks: 2,
            working_disks: 2,
            failed_disks: 0,
            ..a
        };
        let x = Extra {
            completed: Some((2048, 131072)),
            ..Extra::default()
        };
        let j = to_json(&DetailJson::new("/dev/md0", &healthy, &rows, &x));
        assert!(
            j.contains(r#""state":"clean","active":2,"working":2,"failed":0"#),
            "{j}"
        );
        assert!(
            j.contains(r#""sync_action":null,"sync_completed":[2048,131072],"mismatch_cnt":null"#),
            "{j}"
        );
        let odd = [Row {
            name: "a\"b\n".into(),
            ..rows.into_iter().next().unwrap()
        }];
        let j = to_json(&DetailJson::new("/dev/md0", &a, &odd, &x));
        assert!(j.contains(r#""device":"a\"b\n""#), "{j}");
    }

    #[test]
    fn json_check() {
        let c = CheckJson {
            array: "/dev/md0",
            action: "check",
            result: "differ",
            mismatch_cnt: Some(128),
            ranges: vec![RangeJson {
                sector: 1984,
                sectors: 128,
                offset: 1015808,
                length: 65536,
                slot: 1,
                device: Some("ram1".into()),
                primary: 0,
                primary_device: None,
            }],
            unlisted_sectors: 0,
            elapsed_ms: Duration::from_millis(20),
        };
        assert_eq!(
            to_json(&c),
            concat!(
                r#"{"array":"/dev/md0","action":"check","result":"differ","mismatch_cnt":128,"#,
                r#""ranges":[{"sector":1984,"sectors":128,"offset":1015808,"length":65536,"#,
                r#""slot":1,"device":"ram1","primary":0,"primary_device":null}],"#,
                r#""unlisted_sectors":0,"elapsed_ms":20}"#
            )
        );
    }

    #[test]
    fn json_wait_events_ioctl() {
        let w = WaitJson {
            array: "/dev/md0",
            result: "not_in_sync",
            reason: Some("degraded 1: dm-0 faulty"),
            sync_action: "idle",
            sync_completed: None,
            elapsed_ms: Duration::from_millis(1500),
        };
        assert_eq!(
            to_json(&w),
            concat!(
                r#"{"array":"/dev/md0","result":"not_in_sync","#,
                r#""reason":"degraded 1: dm-0 faulty","sync_action":"idle","#,
                r#""sync_completed":null,"elapsed_ms":1500}"#
            )
        );
        let w = WaitJson {
            result: "timed_out",
            reason: None,
            sync_action: "recover",
            sync_completed: Some((10, 20)),
            ..w
        };
        assert!(to_json(&w).contains(
            r#""result":"timed_out","reason":null,"sync_action":"recover","sync_completed":[10,20]"#
        ));
        let e = EventsJson {
            status_file: "/proc/mdstat",
            event: true,
            elapsed_ms: Duration::from_millis(7),
        };
        assert_eq!(
            to_json(&e),
            r#"{"status_file":"/proc/mdstat","event":true,"elapsed_ms":7}"#
        );
        let i = IoctlJson {
            array: "/dev/md0",
            cmd: abi::nr::GET_DISK_INFO,
            name: Some("GET_DISK_INFO"),
            result: "ok",
            errno: None,
            array_info: None,
            disk_info: Some(DiskInfoJson::from(&MduDiskInfo {
                number: 1,
                major: 253,
                minor: 16,
                raid_disk: 1,
                state: 6,
            })),
        };
        assert_eq!(
            to_json(&i),
            concat!(
                r#"{"array":"/dev/md0","cmd":2148796690,"name":"GET_DISK_INFO","result":"ok","#,
                r#""errno":null,"array_info":null,"#,
                r#""disk_info":{"number":1,"major":253,"minor":16,"raid_disk":1,"state":6}}"#
            )
        );
        let a = to_json(&ArrayInfoJson::from(&MduArrayInfo::default()));
        assert_eq!(
            a,
            concat!(
                r#"{"major_version":0,"minor_version":0,"patch_version":0,"ctime":0,"level":0,"#,
                r#""size":0,"nr_disks":0,"raid_disks":0,"md_minor":0,"not_persistent":0,"utime":0,"#,
                r#""state":0,"active_disks":0,"working_disks":0,"failed_disks":0,"spare_disks":0,"#,
                r#""layout":0,"chunk_size":0}"#
            )
        );
    }
}
