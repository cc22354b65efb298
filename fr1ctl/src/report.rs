// SPDX-License-Identifier: GPL-2.0

//! `fr1ctl detail`: the array as GET_ARRAY_INFO and GET_DISK_INFO report it,
//! for humans (mdadm --detail's layout) and as JSON.

use std::fmt::Write;

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
    /// bitmap/: chunksize, bits, pages, coarse, bytes, resync_copied_bytes,
    /// backlog, behind_writes, behind_bytes.
    pub(crate) bitmap: Vec<u64>,
    /// `mismatch_cnt`.
    pub(crate) mismatches: Option<u64>,
}

impl Extra {
    fn bm(&self, i: usize) -> u64 {
        self.bitmap.get(i).copied().unwrap_or(0)
    }
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
    if !x.bitmap.is_empty() {
        let _ = writeln!(
            o,
            "     Intent Bitmap : in memory, {} B chunk, {} dirty blocks, {} pages ({} B), {} coarse ranges",
            x.bm(0),
            x.bm(1),
            x.bm(2),
            x.bm(4),
            x.bm(3)
        );
        let _ = writeln!(o, "     Resync Copied : {} bytes in all", x.bm(5));
        if x.bm(6) > 0 {
            let _ = writeln!(
                o,
                "      Write Behind : backlog {}, {} writes ({} bytes) in flight",
                x.bm(6),
                x.bm(7),
                x.bm(8)
            );
        }
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

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The same as JSON (one object).
pub(crate) fn json(path: &str, a: &MduArrayInfo, rows: &[Row], x: &Extra) -> String {
    let members: Vec<String> = rows
        .iter()
        .map(|r| {
            let states: Vec<String> = state_words(r.disk.state).iter().map(|w| json_str(w)).collect();
            format!(
                "{{\"number\":{},\"major\":{},\"minor\":{},\"slot\":{},\"state\":[{}],\"device\":{}}}",
                r.disk.number,
                r.disk.major,
                r.disk.minor,
                r.disk.raid_disk,
                states.join(","),
                json_str(&r.name)
            )
        })
        .collect();
    format!(
        "{{\"array\":{},\"level\":\"raid{}\",\"size_kib\":{},\"raid_disks\":{},\"total_devices\":{},\
         \"persistent\":false,\"state\":{},\"active\":{},\"working\":{},\"failed\":{},\"spare\":{},\
         \"sync_action\":{},\"sync_completed\":{},\"mismatch_cnt\":{},\
         \"bitmap\":{{\"chunk_bytes\":{},\"dirty_blocks\":{},\"pages\":{},\"coarse\":{},\"bytes\":{},\"resync_copied_bytes\":{}}},\
         \"members\":[{}]}}",
        json_str(path),
        a.level,
        a.size,
        a.raid_disks,
        a.nr_disks,
        json_str(&array_state(a)),
        a.active_disks,
        a.working_disks,
        a.failed_disks,
        a.spare_disks,
        x.sync.as_deref().map_or("null".to_string(), json_str),
        x.completed.map_or("null".to_string(), |(d, t)| format!("[{d},{t}]")),
        x.mismatches.map_or("null".to_string(), |m| m.to_string()),
        x.bm(0),
        x.bm(1),
        x.bm(2),
        x.bm(3),
        x.bm(4),
        x.bm(5),
        members.join(",")
    )
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
                probing: false,
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

    #[test]
    fn json_detail() {
        let (a, rows) = sample();
        let j = json("/dev/md0", &a, &rows, &Extra::default());
        assert!(
            j.starts_with("{\"array\":\"/dev/md0\",\"level\":\"raid1\",\"size_kib\":65536"),
            "{j}"
        );
        assert!(
            j.contains("\"state\":[\"active\",\"sync\"],\"device\":\"/dev/vda\""),
            "{j}"
        );
        assert!(j.contains("\"state\":[\"faulty\"]"), "{j}");
        assert_eq!(json_str("a\"b\n"), "\"a\\\"b\\u000a\"");
    }
}
