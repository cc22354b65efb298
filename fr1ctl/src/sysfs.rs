// SPDX-License-Identifier: GPL-2.0

//! The array's md/ directory in sysfs (resync state, bitmap statistics).

use std::io::Write;
use std::time::{Duration, Instant};

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

/// Parses `sync_completed` ("done / total" sectors, or "none").
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

/// md's progress bar for the array's running sync, if one runs.
pub(crate) fn progress_line(array: &str) -> Option<String> {
    let action = read(array, "sync_action")?;
    if action == "idle" || action == "frozen" {
        return None;
    }
    let (done, total) = parse_completed(&read(array, "sync_completed")?)?;
    let speed: u64 = read(array, "sync_speed")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let p = SyncProgress {
        action: action_of(&action),
        done,
        total,
        window_ms: 1000,
        window_sectors: speed * 2,
    };
    let mut s = String::new();
    mdstat::write_progress(&mut s, &p).ok()?;
    Some(s)
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
    let degraded: u64 = read(array, "degraded")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
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

/// `fr1ctl wait`: shows the progress bar while a sync is announced, then
/// succeeds only if every member is in sync. A member that failed, a
/// recovery that stopped, a frozen sync or a degraded array with nothing to
/// recover is an error naming the reason (exit status 1).
pub(crate) fn wait(array: &str, timeout: Duration) -> Result<(), Error> {
    if read(array, "sync_action").is_none() {
        return Err(Error::os(
            format!("{array} has no md/ directory"),
            libc::ENODEV,
            "is it an fr1 array?",
        ));
    }
    let start = Instant::now();
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(1) } == 1;
    let mut last = String::new();
    // Without a status file (not expected) fall back to polling sysfs.
    let mut watch = StatusWatch::open().ok();
    loop {
        // Re-arm before looking, so an event in between is not missed.
        if let Some(w) = watch.as_mut() {
            w.arm();
        }
        let Some(action) = read(array, "sync_action") else {
            return Err(Error::os(
                format!("{array} went away while waiting"),
                libc::ENODEV,
                "was it stopped?",
            ));
        };
        if action == "idle" || action == "frozen" {
            if tty && !last.is_empty() {
                println!();
            }
            return match not_in_sync(array) {
                None => {
                    println!("fr1ctl: {array}: in sync");
                    Ok(())
                }
                Some(why) => Err(Error::os(
                    format!("{array} is not in sync: {why}"),
                    libc::EIO,
                    "fr1ctl detail shows each member; add, re-add or replace the member",
                )),
            };
        }
        let line = progress_line(array).unwrap_or_else(|| format!("{action}=DELAYED"));
        if tty {
            print!("\r{line}");
            let _ = std::io::stdout().flush();
        } else if line != last {
            println!("{line}");
        }
        last = line;
        if start.elapsed() > timeout {
            return Err(Error::os(
                format!("{array}: still syncing after {timeout:?}"),
                libc::ETIMEDOUT,
                "check dmesg",
            ));
        }
        // Woken by the array's events (md's mdstat poll); the timeout only
        // refreshes the progress bar.
        let tick = Duration::from_millis(if tty { 200 } else { 1000 });
        match watch.as_mut() {
            Some(w) => w.wait(tick),
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The status file, polled for array events (POLLPRI, as md's mdstat).
struct StatusWatch {
    file: std::fs::File,
}

impl StatusWatch {
    fn open() -> std::io::Result<StatusWatch> {
        let path = ["/proc/fr1stat", "/proc/mdstat"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .ok_or(std::io::ErrorKind::NotFound)?;
        Ok(StatusWatch {
            file: std::fs::File::open(path)?,
        })
    }

    /// Reads the file: the reader has now seen every event so far.
    fn arm(&mut self) {
        use std::io::{Read, Seek};
        let mut text = String::new();
        let _ = self.file.seek(std::io::SeekFrom::Start(0));
        let _ = self.file.read_to_string(&mut text);
    }

    /// Sleeps until the next event or `timeout`.
    fn wait(&mut self, timeout: Duration) {
        use std::os::fd::AsRawFd;
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: One valid pollfd for an open file.
        unsafe { libc::poll(&mut pfd, 1, ms) };
    }
}

/// Waits for the next array event: md's status file turns POLLPRI when an
/// array changes (what `mdadm --monitor` sleeps on).
pub(crate) fn next_event(secs: u64) -> Result<(), Error> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let path = ["/proc/mdstat", "/proc/fr1stat"]
        .into_iter()
        .rev()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or_else(|| Error::os("no status file", libc::ENOENT, "load fr1 first"))?;
    let mut f = std::fs::File::open(path).map_err(|e| {
        Error::os(
            format!("cannot open {path}"),
            e.raw_os_error().unwrap_or(libc::EIO),
            "load fr1 first",
        )
    })?;
    let mut text = String::new();
    let _ = f.read_to_string(&mut text);
    let mut pfd = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    let ms = i32::try_from(secs.saturating_mul(1000)).unwrap_or(i32::MAX);
    // SAFETY: One valid pollfd for an open file.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n > 0 && pfd.revents & (libc::POLLPRI | libc::POLLERR) != 0 {
        println!("event");
        Ok(())
    } else {
        Err(Error::os(
            format!("no event on {path} within {secs}s"),
            libc::ETIMEDOUT,
            "nothing changed",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_and_paths() {
        assert_eq!(parse_completed("2048 / 131072"), Some((2048, 131072)));
        assert_eq!(parse_completed("none"), None);
        assert_eq!(md_dir("/dev/md0"), "/sys/block/md0/md");
        assert_eq!(md_dir("fr3"), "/sys/block/fr3/md");
    }
}
