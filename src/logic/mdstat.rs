// SPDX-License-Identifier: GPL-2.0

//! The text of `/proc/mdstat`, byte for byte as md prints it.
//!
//! Parsers of mdstat (mdadm, monitoring agents, Python and Rust libraries)
//! depend on column positions and exact words, so every function here is a
//! transcription of md's C code: `md_seq_show()`, `status_resync()` and
//! `status_unused()` in `drivers/md/md.c`, and `raid1_status()` in
//! `drivers/md/raid1.c` (Linux 7.3). Output goes to any [`fmt::Write`], which
//! is a `seq_file` in the kernel and a fixed buffer in the tests.

use core::fmt::{self, Write};

/// Number of cells in the progress bar after the `>` head and the `.` tail.
const BAR_CELLS: u32 = 20;

/// What a running sync does; md names it differently in mdstat and sysfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncAction {
    /// Bring every mirror in line with the first in-sync one (dirty regions).
    Resync,
    /// Rebuild a returning or new member from the in-sync ones.
    Recovery,
    /// Compare in-sync members, count mismatches, change nothing.
    Check,
    /// Compare and overwrite mismatches.
    Repair,
}

impl SyncAction {
    /// The word in the mdstat progress line. md prints repair as "resync".
    pub(crate) fn mdstat_word(self) -> &'static str {
        match self {
            SyncAction::Resync | SyncAction::Repair => "resync",
            SyncAction::Recovery => "recovery",
            SyncAction::Check => "check",
        }
    }
}

/// A running sync, in 512-byte sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SyncProgress {
    /// What the sync does.
    pub(crate) action: SyncAction,
    /// Sectors done (clamped to `total` when printed).
    pub(crate) done: u64,
    /// Sectors the sync covers.
    pub(crate) total: u64,
    /// Milliseconds since the start of the speed window (md's marks).
    pub(crate) window_ms: u64,
    /// Sectors completed within the speed window.
    pub(crate) window_sectors: u64,
}

/// The sync line of an array, as `status_resync()` chooses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncStatus {
    /// No sync needed or running: no line.
    Idle,
    /// A sync is needed but cannot run (e.g. read-only): `resync=PENDING`.
    Pending,
    /// A sync waits for another array on the same devices: `resync=DELAYED`.
    Delayed,
    /// A sync is running: the progress bar.
    Running(SyncProgress),
}

/// The run state printed after the array name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunState {
    /// Configured but not running (members added, RUN_ARRAY not yet sent).
    Inactive,
    /// Running.
    Active,
    /// Running without a usable copy of some data (md's MD_BROKEN).
    Broken,
}

/// One member in the array line, e.g. `vdb[1](F)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MemberStatus<'a> {
    /// Block device name, as `%pg` prints it.
    pub(crate) name: &'a str,
    /// The member's descriptor number (`desc_nr`), in brackets.
    pub(crate) desc_nr: u32,
    /// Reads avoid this member (`(W)`).
    pub(crate) write_mostly: bool,
    /// Failed (`(F)`; no other flag follows).
    pub(crate) faulty: bool,
    /// Holds no slot (`(S)`).
    pub(crate) spare: bool,
    /// Behind (write-behind's ahead/behind mode): KiB written since it went
    /// behind, shown at the end of the `bitmap:` line.
    pub(crate) behind_kib: Option<u64>,
}

/// md's `bitmap:` line (`md_bitmap_status`): pages in use of the pages a
/// fully populated bitmap would have, and the chunk (block) size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BitmapLine {
    /// 4 KiB pages held.
    pub(crate) used_pages: u64,
    /// Pages a fully dirty bitmap would hold.
    pub(crate) total_pages: u64,
    /// Bytes per bit.
    pub(crate) chunk_bytes: u64,
}

/// Everything mdstat prints about one array.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ArrayStatus<'a> {
    /// Device name, e.g. `md0` or `fr0`.
    pub(crate) name: &'a str,
    /// Inactive, active or broken.
    pub(crate) state: RunState,
    /// Opened read-only (`(read-only)` after the state).
    pub(crate) read_only: bool,
    /// Members in the order md keeps them: newest first.
    pub(crate) members: &'a [MemberStatus<'a>],
    /// The `N blocks` figure in KiB: the array size when active, the sum of the
    /// members' sizes when inactive.
    pub(crate) blocks_kib: u64,
    /// One entry per slot (`raid_disks` of them): true when an in-sync member
    /// holds it (`U`), false otherwise (`_`).
    pub(crate) slots_in_sync: &'a [bool],
    /// The sync line.
    pub(crate) sync: SyncStatus,
    /// The bitmap line, when the array has a bitmap.
    pub(crate) bitmap: Option<BitmapLine>,
}

/// Writes the first line: `Personalities : [raid1] `.
pub(crate) fn write_personalities(w: &mut impl Write, names: &[&str]) -> fmt::Result {
    w.write_str("Personalities : ")?;
    for name in names {
        write!(w, "[{name}] ")?;
    }
    w.write_str("\n")
}

/// Writes the last line. fr1 never holds unused (pending) devices.
pub(crate) fn write_unused(w: &mut impl Write) -> fmt::Result {
    w.write_str("unused devices: <none>\n")
}

/// md's completion in per mille, with md's scaling (`status_resync()`): the
/// divisor is `total + 1` in units of 1024 sectors, so a running sync never
/// shows 100.0%.
pub(crate) fn per_milli(done: u64, total: u64) -> u32 {
    let done = done.min(total);
    let mut scale = 10;
    while total / 2 > (1u64 << (scale + 32)) {
        scale += 1;
    }
    // `checked_div` keeps a panic path (and objtool's warning) out of the
    // kernel build; the divisor is never zero.
    let res = (done >> scale)
        .saturating_mul(1000)
        .checked_div((total >> scale).saturating_add(1))
        .unwrap_or(0);
    u32::try_from(res).unwrap_or(999).min(999)
}

/// Writes md's progress line without the leading indentation, e.g.
/// `[====>................]  recovery = 23.4% (245760/1048512) finish=0.1min speed=2048K/sec`.
pub(crate) fn write_progress(w: &mut impl Write, p: &SyncProgress) -> fmt::Result {
    let done = p.done.min(p.total);
    let pm = per_milli(done, p.total);
    let filled = pm / 50;
    w.write_char('[')?;
    for _ in 0..filled {
        w.write_char('=')?;
    }
    w.write_char('>')?;
    for _ in 0..BAR_CELLS.saturating_sub(filled) {
        w.write_char('.')?;
    }
    w.write_str("] ")?;
    write!(
        w,
        " {} ={:3}.{}% ({}/{})",
        p.action.mdstat_word(),
        pm / 10,
        pm % 10,
        done / 2,
        p.total / 2
    )?;
    // md's estimate: remaining sectors over the window's rate, with the rate
    // scaled by 32 to keep precision near the end.
    // md counts whole seconds (at least one), which overstates the speed
    // early in a window; fr1 uses milliseconds.
    let ms = p.window_ms.max(1);
    let remaining = p.total - done;
    let finish = (remaining
        .checked_div(p.window_sectors / 32 + 1)
        .unwrap_or(0)
        .saturating_mul(ms)
        >> 5)
        / 1000;
    write!(
        w,
        " finish={}.{}min speed={}K/sec",
        finish / 60,
        (finish % 60) / 6,
        (p.window_sectors / 2)
            .saturating_mul(1000)
            .checked_div(ms)
            .unwrap_or(0)
    )
}

/// Writes the block of one array, from its name to its closing newline.
pub(crate) fn write_array(w: &mut impl Write, a: &ArrayStatus<'_>) -> fmt::Result {
    write!(w, "{} : ", a.name)?;
    match a.state {
        RunState::Inactive => w.write_str("inactive")?,
        RunState::Active | RunState::Broken => {
            w.write_str(if a.state == RunState::Broken {
                "broken"
            } else {
                "active"
            })?;
            if a.read_only {
                w.write_str(" (read-only)")?;
            }
            w.write_str(" raid1")?;
        }
    }
    for m in a.members {
        write!(w, " {}[{}]", m.name, m.desc_nr)?;
        if m.write_mostly {
            w.write_str("(W)")?;
        }
        if m.faulty {
            w.write_str("(F)")?;
            continue;
        }
        if m.spare {
            w.write_str("(S)")?;
        }
    }
    if !a.members.is_empty() {
        write!(w, "\n      {} blocks", a.blocks_kib)?;
    }
    w.write_str(" super non-persistent")?;
    if a.state == RunState::Inactive {
        w.write_str("\n       ")?;
    } else {
        let raid_disks = a.slots_in_sync.len();
        let in_sync = a.slots_in_sync.iter().filter(|&&u| u).count();
        write!(w, " [{raid_disks}/{in_sync}] [")?;
        for &u in a.slots_in_sync {
            w.write_char(if u { 'U' } else { '_' })?;
        }
        w.write_str("]\n      ")?;
        if write_sync(w, &a.sync)? {
            w.write_str("\n      ")?;
        }
    }
    if let Some(b) = a.bitmap {
        write!(
            w,
            "bitmap: {}/{} pages [{}KB], ",
            b.used_pages,
            b.total_pages,
            b.used_pages * 4
        )?;
        if b.chunk_bytes >= 1024 {
            write!(w, "{}KB chunk", b.chunk_bytes / 1024)?;
        } else {
            write!(w, "{}B chunk", b.chunk_bytes)?;
        }
        // fr1's: legs behind (parsers skip words after the chunk size that
        // are not `file:`).
        for m in a.members {
            if let Some(kib) = m.behind_kib {
                write!(w, ", behind: {} {}KB", m.name, kib)?;
            }
        }
        w.write_str("\n")?;
    }
    w.write_str("\n")
}

/// Writes the sync line if there is one; returns whether it wrote anything.
fn write_sync(w: &mut impl Write, s: &SyncStatus) -> Result<bool, fmt::Error> {
    match s {
        SyncStatus::Idle => return Ok(false),
        SyncStatus::Pending => w.write_str("\tresync=PENDING")?,
        SyncStatus::Delayed => w.write_str("\tresync=DELAYED")?,
        SyncStatus::Running(p) => write_progress(w, p)?,
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    fn progress(action: SyncAction, done: u64, total: u64) -> SyncProgress {
        SyncProgress {
            action,
            done,
            total,
            window_ms: 3000,
            window_sectors: 11008 * 3,
        }
    }

    #[test]
    fn progress_line_matches_md() {
        // md's coarse scale (units of 1024 sectors, divisor + 1) gives 25.0%
        // for 5504 of 19968 KiB, not 27.6%: parsers see what md would print.
        let mut s = String::new();
        write_progress(&mut s, &progress(SyncAction::Recovery, 11008, 39936)).unwrap();
        assert_eq!(
            s,
            "[=====>...............]  recovery = 25.0% (5504/19968) finish=0.0min speed=5504K/sec"
        );
    }

    #[test]
    fn bar_is_always_23_columns() {
        for done in [0u64, 1, 500, 999, 1000, 1023, 1024] {
            let mut s = String::new();
            write_progress(&mut s, &progress(SyncAction::Resync, done, 1024)).unwrap();
            let bar = s.split("] ").next().unwrap();
            assert_eq!(bar.len() + 1, 23, "{s}");
            assert!(s.contains("  resync ="), "{s}");
        }
    }

    #[test]
    fn per_milli_never_reaches_1000() {
        assert_eq!(per_milli(0, 1 << 20), 0);
        assert_eq!(per_milli(1 << 20, 1 << 20), 999);
        assert_eq!(per_milli(u64::MAX, u64::MAX), 999);
        assert_eq!(per_milli(1 << 19, 1 << 20), 499);
        // Huge arrays take md's wider scale without overflow.
        assert_eq!(per_milli(1 << 60, 1 << 61), 499);
    }

    #[test]
    fn action_words() {
        let mut s = String::new();
        write_progress(&mut s, &progress(SyncAction::Repair, 0, 2048)).unwrap();
        assert!(s.contains(" resync =  0.0% (0/1024)"), "{s}");
        s.clear();
        write_progress(&mut s, &progress(SyncAction::Check, 1 << 20, 1 << 21)).unwrap();
        assert!(s.contains(" check = 49.9% (524288/1048576)"), "{s}");
    }

    fn member(name: &str, desc_nr: u32) -> MemberStatus<'_> {
        MemberStatus {
            name,
            desc_nr,
            write_mostly: false,
            faulty: false,
            spare: false,
            behind_kib: None,
        }
    }

    #[test]
    fn clean_array_block() {
        let members = [member("vdb", 1), member("vda", 0)];
        let a = ArrayStatus {
            name: "md0",
            state: RunState::Active,
            read_only: false,
            members: &members,
            blocks_kib: 1048512,
            slots_in_sync: &[true, true],
            sync: SyncStatus::Idle,
            bitmap: None,
        };
        let mut s = String::new();
        write_personalities(&mut s, &["raid1"]).unwrap();
        write_array(&mut s, &a).unwrap();
        s.push('\n');
        write_unused(&mut s).unwrap();
        assert_eq!(
            s,
            "Personalities : [raid1] \n\
             md0 : active raid1 vdb[1] vda[0]\n      \
             1048512 blocks super non-persistent [2/2] [UU]\n      \n\n\
             unused devices: <none>\n"
        );
    }

    #[test]
    fn degraded_and_recovering_block() {
        let mut failed = member("vdb", 1);
        failed.faulty = true;
        let members = [failed, member("vda", 0)];
        let mut a = ArrayStatus {
            name: "md0",
            state: RunState::Active,
            read_only: false,
            members: &members,
            blocks_kib: 19968,
            slots_in_sync: &[true, false],
            sync: SyncStatus::Idle,
            bitmap: None,
        };
        let mut s = String::new();
        write_array(&mut s, &a).unwrap();
        assert_eq!(
            s,
            "md0 : active raid1 vdb[1](F) vda[0]\n      \
             19968 blocks super non-persistent [2/1] [U_]\n      \n"
        );
        a.sync = SyncStatus::Running(progress(SyncAction::Recovery, 11008, 39936));
        s.clear();
        write_array(&mut s, &a).unwrap();
        assert_eq!(
            s,
            "md0 : active raid1 vdb[1](F) vda[0]\n      \
             19968 blocks super non-persistent [2/1] [U_]\n      \
             [=====>...............]  recovery = 25.0% (5504/19968) finish=0.0min speed=5504K/sec\n      \n"
        );
    }

    #[test]
    fn bitmap_line_as_md_bitmap_status() {
        let members = [member("vdb", 1), member("vda", 0)];
        let mut a = ArrayStatus {
            name: "md0",
            state: RunState::Active,
            read_only: false,
            members: &members,
            blocks_kib: 65536,
            slots_in_sync: &[true, false],
            sync: SyncStatus::Running(progress(SyncAction::Recovery, 0, 1 << 20)),
            bitmap: Some(BitmapLine {
                used_pages: 1,
                total_pages: 1,
                chunk_bytes: 4096,
            }),
        };
        let mut s = String::new();
        write_array(&mut s, &a).unwrap();
        assert!(
            s.ends_with("speed=5504K/sec\n      bitmap: 1/1 pages [4KB], 4KB chunk\n\n"),
            "{s}"
        );
        a.sync = SyncStatus::Idle;
        a.bitmap = Some(BitmapLine {
            used_pages: 0,
            total_pages: 2,
            chunk_bytes: 512,
        });
        s.clear();
        write_array(&mut s, &a).unwrap();
        assert!(
            s.ends_with("[2/1] [U_]\n      bitmap: 0/2 pages [0KB], 512B chunk\n\n"),
            "{s}"
        );
        // A leg behind: named at the end of the bitmap line.
        let mut slow = member("dm-0", 1);
        slow.write_mostly = true;
        slow.behind_kib = Some(8192);
        let members = [slow, member("vda", 0)];
        a.members = &members;
        s.clear();
        write_array(&mut s, &a).unwrap();
        assert!(
            s.ends_with("bitmap: 0/2 pages [0KB], 512B chunk, behind: dm-0 8192KB\n\n"),
            "{s}"
        );
        assert!(s.contains(" dm-0[1](W) "), "{s}");
    }

    #[test]
    fn inactive_and_flags() {
        let mut wm = member("loop1", 1);
        wm.write_mostly = true;
        wm.spare = true;
        let members = [wm, member("loop0", 0)];
        let a = ArrayStatus {
            name: "md3",
            state: RunState::Inactive,
            read_only: false,
            members: &members,
            blocks_kib: 2048,
            slots_in_sync: &[],
            sync: SyncStatus::Pending,
            bitmap: None,
        };
        let mut s = String::new();
        write_array(&mut s, &a).unwrap();
        assert_eq!(
            s,
            "md3 : inactive loop1[1](W)(S) loop0[0]\n      2048 blocks super non-persistent\n       \n"
        );
    }

    #[test]
    fn read_only_broken_and_pending() {
        let members = [member("vda", 0)];
        let a = ArrayStatus {
            name: "fr2",
            state: RunState::Broken,
            read_only: true,
            members: &members,
            blocks_kib: 4,
            slots_in_sync: &[false],
            sync: SyncStatus::Pending,
            bitmap: None,
        };
        let mut s = String::new();
        write_array(&mut s, &a).unwrap();
        assert_eq!(
            s,
            "fr2 : broken (read-only) raid1 vda[0]\n      \
             4 blocks super non-persistent [1/0] [_]\n      \tresync=PENDING\n      \n"
        );
    }
}
