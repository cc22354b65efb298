// SPDX-License-Identifier: GPL-2.0

//! The array's md/ directory in sysfs (resync state, bitmap statistics) and
//! the status file whose poll announces array events.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::ioctl::Error;
use crate::logic::mdstat::{self, SyncAction, SyncProgress};

/// `/sys/block/<name>/md` of an array path such as `/dev/md0`.
pub(crate) fn md_dir(array: &str) -> String {
    let name = array.rsplit('/').next().unwrap_or(array);
    format!("/sys/block/{name}/md")
}

/// One attribute, trimmed; `None` if absent.
pub(crate) fn read(array: &str, attr: &str) -> Option<String> {
    std::fs::read_to_string(format!("{}/{attr}", md_dir(array)))
        .ok()
        .map(|s| s.trim().to_string())
}

/// A numeric attribute; `None` if absent or not a number (`none`).
pub(crate) fn read_u64(array: &str, attr: &str) -> Option<u64> {
    read(array, attr).and_then(|v| v.parse().ok())
}

/// Parses `sync_completed` ("done / total" sectors, "delayed" or "none").
pub(crate) fn parse_completed(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('/')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

fn action_of(s: &str) -> SyncAction {
    match s {
        "check" => SyncAction::Check,
        "repair" => SyncAction::Repair,
        "resync" => SyncAction::Resync,
        _ => SyncAction::Recovery,
    }
}

/// The array's sync as md/ shows it at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyncSample {
    /// `sync_action`: idle, frozen, recover, resync, check or repair.
    pub(crate) action: String,
    /// `sync_completed` in sectors; `None` while the sync thread has not
    /// counted the dirty blocks yet ("delayed") or when idle.
    pub(crate) completed: Option<(u64, u64)>,
    /// `sync_speed` in KiB/s (md's speed window); 0 if unknown.
    pub(crate) speed_kib: u64,
}

impl SyncSample {
    /// Reads the sample; `None` if the array has no md/ directory.
    pub(crate) fn read(array: &str) -> Option<SyncSample> {
        Some(SyncSample {
            action: read(array, "sync_action")?,
            completed: read(array, "sync_completed").and_then(|s| parse_completed(&s)),
            speed_kib: read_u64(array, "sync_speed").unwrap_or(0),
        })
    }

    /// Whether a sync is announced (anything but idle or frozen).
    pub(crate) fn is_running(&self) -> bool {
        self.action != "idle" && self.action != "frozen"
    }

    /// md's progress bar, as /proc/mdstat shows it, once the sync is
    /// counted.
    pub(crate) fn md_progress(&self) -> Option<String> {
        if !self.is_running() {
            return None;
        }
        let (done, total) = self.completed?;
        let p = SyncProgress {
            action: action_of(&self.action),
            done,
            total,
            window_ms: 1000,
            window_sectors: self.speed_kib * 2,
        };
        let mut s = String::new();
        mdstat::write_progress(&mut s, &p).ok()?;
        Some(s)
    }

    /// The line `fr1ctl wait` prints when stdout is not a terminal: md's
    /// progress bar, or `ACTION=DELAYED` while the sync is not counted yet
    /// (as mdstat's `resync=DELAYED`).
    pub(crate) fn plain_line(&self) -> String {
        self.md_progress()
            .unwrap_or_else(|| format!("{}=DELAYED", self.action))
    }

    /// Bytes the sync has yet to copy (the dirty blocks left).
    pub(crate) fn left_bytes(&self) -> Option<u64> {
        self.completed
            .map(|(done, total)| total.saturating_sub(done) * 512)
    }

    /// The time left at md's current speed.
    pub(crate) fn eta(&self) -> Option<Duration> {
        let left = self.left_bytes()?;
        let rate = self.speed_kib.checked_mul(1024).filter(|&r| r > 0)?;
        Some(Duration::from_secs(left.div_ceil(rate)))
    }
}

/// md's progress bar for the array's running sync, if one runs.
pub(crate) fn progress_line(array: &str) -> Option<String> {
    SyncSample::read(array)?.md_progress()
}

/// Why an array with no sync announced is not in sync, if it is not: the
/// verdict of `fr1ctl wait` once `sync_action` says idle (or frozen).
///
/// The kernel announces a sync before the member that needs it becomes
/// visible and keeps announcing it until the member is in sync (see
/// src/logic/syncstate.rs), so "idle" with a member not in sync means that
/// no sync will bring it there by itself.
pub(crate) fn not_in_sync(array: &str) -> Option<String> {
    let action = read(array, "sync_action").unwrap_or_default();
    let degraded = read_u64(array, "degraded").unwrap_or(0);
    if read(array, "resync_start").is_some_and(|s| s != "none") {
        return Some(if action == "frozen" {
            "the initial resync waits: sync_action is frozen (write idle to resume)".into()
        } else {
            "the initial resync stopped before it finished (see dmesg)".into()
        });
    }
    if degraded == 0 {
        return None;
    }
    let mut faulty = Vec::new();
    let mut recovering = Vec::new();
    if let Ok(dir) = std::fs::read_dir(md_dir(array)) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(dev) = name.strip_prefix("dev-") else {
                continue;
            };
            let state = read(array, &format!("{name}/state")).unwrap_or_default();
            if state.split(',').any(|w| w == "faulty") {
                faulty.push(dev.to_string());
            } else if state.split(',').any(|w| w == "spare") {
                recovering.push(dev.to_string());
            }
        }
    }
    faulty.sort();
    recovering.sort();
    let mut why = Vec::new();
    if !recovering.is_empty() {
        why.push(if action == "frozen" {
            format!(
                "the recovery of {} waits: sync_action is frozen (write idle to resume)",
                recovering.join(", ")
            )
        } else {
            format!(
                "the recovery of {} stopped before it finished (see dmesg)",
                recovering.join(", ")
            )
        });
    }
    if !faulty.is_empty() {
        why.push(format!("{} faulty", faulty.join(", ")));
    }
    if why.is_empty() {
        why.push("a slot has no member".into());
    }
    Some(format!("degraded {degraded}: {}", why.join("; ")))
}

/// A range that the last check found different (a line of
/// `md/fr1_mismatches`: "SECTOR SECTORS SLOT PRIMARY").
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MismatchRange {
    pub(crate) sector: u64,
    pub(crate) sectors: u64,
    /// The leg found different.
    pub(crate) slot: u32,
    /// The leg it was compared with (a repair copies from it).
    pub(crate) primary: u32,
}

/// `md/fr1_mismatches`: the ranges, and the sectors of those not listed
/// (its "unlisted N" line). `None` if a line is malformed.
pub(crate) fn parse_mismatches(text: &str) -> Option<(Vec<MismatchRange>, u64)> {
    let mut ranges = Vec::new();
    let mut unlisted = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(n) = line.strip_prefix("unlisted ") {
            unlisted = n.trim().parse().ok()?;
            continue;
        }
        let mut f = line.split_whitespace();
        let mut next = || f.next();
        ranges.push(MismatchRange {
            sector: next()?.parse().ok()?,
            sectors: next()?.parse().ok()?,
            slot: next()?.parse().ok()?,
            primary: next()?.parse().ok()?,
        });
        if next().is_some() {
            return None;
        }
    }
    Some((ranges, unlisted))
}

/// The device name in each slot, from md/dev-*/slot.
pub(crate) fn slot_names(array: &str) -> Vec<(u32, String)> {
    let mut names = Vec::new();
    if let Ok(dir) = std::fs::read_dir(md_dir(array)) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(dev) = name.strip_prefix("dev-") else {
                continue;
            };
            if let Some(slot) = read(array, &format!("{name}/slot")).and_then(|s| s.parse().ok()) {
                names.push((slot, dev.to_string()));
            }
        }
    }
    names.sort();
    names
}

/// The status file, polled for array events (POLLPRI, as md's mdstat):
/// fr1's own, or /proc/mdstat when fr1 has md's identity.
pub(crate) struct StatusWatch {
    pub(crate) path: &'static str,
    file: File,
}

impl StatusWatch {
    /// Opens the status file.
    pub(crate) fn open() -> Result<StatusWatch, Error> {
        let path = ["/proc/fr1stat", "/proc/mdstat"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .ok_or_else(|| Error::os("no status file", Errno::NOENT, "load fr1 first"))?;
        let file = File::open(path)
            .map_err(|e| Error::io(format!("cannot open {path}"), &e, "load fr1 first"))?;
        Ok(StatusWatch { path, file })
    }

    /// Reads the file: the reader has now seen every event so far.
    pub(crate) fn arm(&mut self) {
        let mut text = String::new();
        let _ = self.file.seek(SeekFrom::Start(0));
        let _ = self.file.read_to_string(&mut text);
    }

    /// Sleeps until the next event or `timeout`; returns whether an event
    /// came.
    pub(crate) fn wait(&mut self, timeout: Duration) -> bool {
        let mut fds = [PollFd::new(&self.file, PollFlags::PRI)];
        let timeout = Timespec::try_from(timeout).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0)
            && fds[0].revents().intersects(PollFlags::PRI | PollFlags::ERR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatches_as_the_kernel_lists_them() {
        let (r, unlisted) = parse_mismatches("1984 128 1 0\n4096 8 2 0\nunlisted 24\n").unwrap();
        assert_eq!(
            r,
            vec![
                MismatchRange {
                    sector: 1984,
                    sectors: 128,
                    slot: 1,
                    primary: 0
                },
                MismatchRange {
                    sector: 4096,
                    sectors: 8,
                    slot: 2,
                    primary: 0
                }
            ]
        );
        assert_eq!(unlisted, 24);
        assert_eq!(parse_mismatches(""), Some((vec![], 0)));
        assert_eq!(parse_mismatches("1 2 3"), None);
        assert_eq!(parse_mismatches("1 2 3 4 5"), None);
        assert_eq!(parse_mismatches("unlisted x"), None);
    }

    #[test]
    fn completed_and_paths() {
        assert_eq!(parse_completed("2048 / 131072"), Some((2048, 131072)));
        assert_eq!(parse_completed("none"), None);
        assert_eq!(parse_completed("delayed"), None);
        assert_eq!(md_dir("/dev/md0"), "/sys/block/md0/md");
        assert_eq!(md_dir("fr3"), "/sys/block/fr3/md");
    }

    fn sample(action: &str, completed: Option<(u64, u64)>, speed_kib: u64) -> SyncSample {
        SyncSample {
            action: action.into(),
            completed,
            speed_kib,
        }
    }

    /// What `fr1ctl wait` prints when stdout is not a terminal, line by
    /// line: md's progress line while the sync runs, ACTION=DELAYED before
    /// it is counted.
    #[test]
    fn plain_progress_lines() {
        assert_eq!(
            sample("recover", Some((11008, 39936)), 5504).plain_line(),
            "[=====>...............]  recovery = 25.0% (5504/19968) finish=0.0min speed=5504K/sec"
        );
        assert_eq!(
            sample("resync", Some((0, 2097152)), 0).plain_line(),
            "[>....................]  resync =  0.0% (0/1048576) finish=1092.2min speed=0K/sec"
        );
        assert_eq!(
            sample("check", Some((1048576, 2097152)), 1024).plain_line(),
            "[=========>...........]  check = 49.9% (524288/1048576) finish=8.4min speed=1024K/sec"
        );
        assert_eq!(sample("recover", None, 0).plain_line(), "recover=DELAYED");
        assert_eq!(sample("resync", None, 0).plain_line(), "resync=DELAYED");
    }

    #[test]
    fn left_and_eta() {
        let s = sample("recover", Some((2048, 6144)), 1024);
        assert_eq!(s.left_bytes(), Some(2 << 20));
        assert_eq!(s.eta(), Some(Duration::from_secs(2)));
        assert_eq!(sample("recover", Some((0, 6144)), 0).eta(), None);
        assert_eq!(sample("recover", None, 1024).left_bytes(), None);
        assert!(!sample("idle", None, 0).is_running());
        assert!(!sample("frozen", None, 0).is_running());
        assert_eq!(sample("idle", Some((1, 2)), 0).md_progress(), None);
    }
}
