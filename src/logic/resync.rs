// SPDX-License-Identifier: GPL-2.0

//! Resync bookkeeping: the bounded dmesg range log of the fr1 README, the
//! blocks sampled to check a re-added member's identity, and the throttle.

use core::fmt;

/// Range lines logged per resync before the rest is only counted.
pub(crate) const MAX_RANGE_LINES: u32 = 20;

/// What kind of range a log line reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Dirty,
    Clean,
}

/// Coalesces the resync walk into ranges, as the fr1 README prints them:
/// `resynced dirty blocks 0-9` / `resync skipped clean blocks 10-1023`, at
/// most [`MAX_RANGE_LINES`] lines, then a summary.
#[derive(Debug, Default)]
pub(crate) struct RangeLog {
    open: Option<(Kind, u64, u64)>,
    lines: u32,
    suppressed: u64,
    /// Dirty blocks copied.
    pub(crate) dirty_blocks: u64,
    /// Clean blocks skipped.
    pub(crate) clean_blocks: u64,
}

impl RangeLog {
    /// Blocks `[start, start + len)` were copied. Emits finished lines to `out`.
    pub(crate) fn dirty(&mut self, start: u64, len: u64, out: &mut impl FnMut(fmt::Arguments<'_>)) {
        self.dirty_blocks += len;
        self.add(Kind::Dirty, start, len, out);
    }

    /// Blocks `[start, start + len)` were clean and skipped.
    pub(crate) fn clean(&mut self, start: u64, len: u64, out: &mut impl FnMut(fmt::Arguments<'_>)) {
        if len == 0 {
            return;
        }
        self.clean_blocks += len;
        self.add(Kind::Clean, start, len, out);
    }

    fn add(&mut self, kind: Kind, start: u64, len: u64, out: &mut impl FnMut(fmt::Arguments<'_>)) {
        match self.open {
            Some((k, s, e)) if k == kind && e == start => self.open = Some((k, s, start + len)),
            _ => {
                self.flush(out);
                self.open = Some((kind, start, start + len));
            }
        }
    }

    fn flush(&mut self, out: &mut impl FnMut(fmt::Arguments<'_>)) {
        let Some((kind, s, e)) = self.open.take() else {
            return;
        };
        if self.lines >= MAX_RANGE_LINES {
            self.suppressed += 1;
            return;
        }
        self.lines += 1;
        match kind {
            Kind::Dirty => out(format_args!("resynced dirty blocks {}-{}", s, e - 1)),
            Kind::Clean => out(format_args!("resync skipped clean blocks {}-{}", s, e - 1)),
        }
    }

    /// Ends the walk: the last range and, if lines were dropped, a summary.
    pub(crate) fn finish(&mut self, out: &mut impl FnMut(fmt::Arguments<'_>)) {
        self.flush(out);
        if self.suppressed > 0 {
            out(format_args!(
                "resync: {} more ranges not logged ({} dirty blocks copied, {} clean skipped in all)",
                self.suppressed, self.dirty_blocks, self.clean_blocks
            ));
        }
    }
}

/// Up to `N` blocks spread evenly over `[0, blocks)` that satisfy `clean`:
/// the sample compared against an in-sync member before a re-added device is
/// trusted (fr1 has no superblock: identity is the user's claim).
pub(crate) fn sample_blocks<const N: usize>(
    blocks: u64,
    clean: impl Fn(u64) -> bool,
) -> ([u64; N], usize) {
    let mut out = [0u64; N];
    let mut n = 0;
    if blocks == 0 || N == 0 {
        return (out, 0);
    }
    let step = (blocks / N as u64).max(1);
    // A few probes per stride find a clean block next to a dirty one.
    let mut i = 0u64;
    while n < N && i < N as u64 {
        let base = i * step;
        for probe in [0, step / 2, step / 4, (3 * step) / 4] {
            let b = base + probe;
            if b < blocks && clean(b) {
                out[n] = b;
                n += 1;
                break;
            }
        }
        i += 1;
    }
    (out, n)
}

/// What the sync thread does before its next copy: md's throttle in
/// `md_do_sync`, measured over a recent window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pace {
    /// Start the next copy.
    Go,
    /// User I/O is active: let the copies in flight finish before the next
    /// one (md waits for `recovery_active` to drain).
    Drain,
    /// Above the maximum speed: pause this many milliseconds.
    Sleep(u64),
}

/// The longest single pause, so that stop requests are seen quickly.
pub(crate) const MAX_PAUSE_MS: u64 = 100;

/// `sectors` were copied over the last `window_ns`; the limits are KiB/s.
/// Below `min_kib` the copy always goes on; above `max_kib` it pauses just
/// long enough to fall back to `max_kib`; in between it yields to user I/O
/// when the array is busy.
pub(crate) fn pace(sectors: u64, window_ns: u64, min_kib: u64, max_kib: u64, busy: bool) -> Pace {
    // KiB/s = sectors / 2 per second = sectors * 500_000 / microseconds
    // (64-bit only: the kernel has no 128-bit division).
    let window_us = (window_ns / 1000).max(1000);
    let kib = kib_per_s(sectors, window_us);
    if kib <= min_kib {
        Pace::Go
    } else if kib > max_kib {
        // How long the window should have lasted at `max_kib`.
        let due_us = sectors.saturating_mul(500_000) / max_kib.max(1);
        let ms = due_us.saturating_sub(window_us) / 1000;
        Pace::Sleep(ms.clamp(1, MAX_PAUSE_MS))
    } else if busy {
        Pace::Drain
    } else {
        Pace::Go
    }
}

/// md's default `sync_io_depth` (md.c `sysctl_sync_io_depth`).
pub(crate) const DEFAULT_SYNC_IO_DEPTH: u32 = 32;

/// md 7.3's `sync_io_within_limit` for RAID1: sync I/O in flight stays
/// within the limit while it is under `depth` requests of 64 KiB (md's
/// `RESYNC_PAGES`), whatever size fr1's own copies are. Past it, and with
/// user I/O active, the sync drains ([`Pace::Drain`]) before it goes on.
pub(crate) fn within_io_depth(inflight_sectors: u64, depth: u32) -> bool {
    inflight_sectors < u64::from(depth).saturating_mul(128)
}

/// The speed of `sectors` over `us` microseconds, in KiB/s.
pub(crate) fn kib_per_s(sectors: u64, us: u64) -> u64 {
    sectors.saturating_mul(500_000) / us.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    use core::fmt::Write;

    /// A `fmt::Write` that forwards to a closure taking `&str` pieces.
    struct FnWriter<F: FnMut(&str)>(F);

    impl<F: FnMut(&str)> Write for FnWriter<F> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            (self.0)(s);
            Ok(())
        }
    }
    use std::string::{String, ToString};
    use std::vec::Vec;

    fn collect(f: impl FnOnce(&mut dyn FnMut(fmt::Arguments<'_>))) -> Vec<String> {
        let mut v = Vec::new();
        f(&mut |a| v.push(a.to_string()));
        v
    }

    #[test]
    fn readme_scenario_lines() {
        let lines = collect(|out| {
            let mut out = |a: fmt::Arguments<'_>| out(a);
            let mut log = RangeLog::default();
            log.dirty(0, 4, &mut out);
            log.dirty(4, 6, &mut out);
            log.clean(10, 1014, &mut out);
            log.finish(&mut out);
            assert_eq!((log.dirty_blocks, log.clean_blocks), (10, 1014));
        });
        assert_eq!(
            lines,
            [
                "resynced dirty blocks 0-9",
                "resync skipped clean blocks 10-1023"
            ]
        );
    }

    #[test]
    fn bounded_with_summary() {
        let lines = collect(|out| {
            let mut out = |a: fmt::Arguments<'_>| out(a);
            let mut log = RangeLog::default();
            for i in 0..1000u64 {
                log.dirty(i * 10, 1, &mut out);
                log.clean(i * 10 + 1, 9, &mut out);
            }
            log.finish(&mut out);
        });
        assert_eq!(lines.len(), MAX_RANGE_LINES as usize + 1);
        assert!(lines
            .last()
            .unwrap()
            .contains("1980 more ranges not logged (1000 dirty blocks copied"));
    }

    #[test]
    fn samples_avoid_dirty_blocks() {
        let (s, n) = sample_blocks::<64>(1 << 20, |b| b % 3 != 0);
        assert_eq!(n, 64);
        assert!(s.iter().all(|b| b % 3 != 0 && *b < 1 << 20));
        let (_, n) = sample_blocks::<64>(10, |_| true);
        assert_eq!(n, 10);
        let (_, n) = sample_blocks::<64>(1 << 20, |_| false);
        assert_eq!(n, 0);
    }

    #[test]
    fn io_depth_counts_64k_requests_as_md() {
        // The default: 32 x 64 KiB = 2 MiB, two of fr1's 1 MiB regions.
        assert!(within_io_depth(0, DEFAULT_SYNC_IO_DEPTH));
        assert!(within_io_depth(2048, DEFAULT_SYNC_IO_DEPTH));
        assert!(!within_io_depth(4096, DEFAULT_SYNC_IO_DEPTH));
        // Depth 1: one 64 KiB request; a 1 MiB copy is over it at once.
        assert!(within_io_depth(127, 1));
        assert!(!within_io_depth(128, 1));
        // No overflow at the largest depth md's store takes.
        assert!(within_io_depth(u64::from(u32::MAX) * 128 - 1, u32::MAX));
        assert!(!within_io_depth(u64::MAX, u32::MAX));
    }

    #[test]
    fn pace_like_md() {
        // 2000 sectors = 1000 KiB over 1 s.
        assert_eq!(pace(2000, 1_000_000_000, 1000, 200_000, true), Pace::Go);
        assert_eq!(pace(2000, 1_000_000_000, 500, 200_000, true), Pace::Drain);
        assert_eq!(pace(2000, 1_000_000_000, 500, 200_000, false), Pace::Go);
        // 400 MB/s against a 200 MB/s ceiling: about 1 s behind, capped.
        assert_eq!(
            pace(800_000, 1_000_000_000, 1000, 200_000, false),
            Pace::Sleep(MAX_PAUSE_MS)
        );
        // Slightly over: a short pause that brings the rate back to max.
        assert_eq!(
            pace(404_000, 1_000_000_000, 1000, 200_000, false),
            Pace::Sleep(10)
        );
        // A tiny window is not a huge rate.
        assert_eq!(pace(8, 0, 1000, 200_000, false), Pace::Go);
        assert_eq!(pace(u64::MAX, 1, 0, 1, false), Pace::Sleep(MAX_PAUSE_MS));
        assert_eq!(pace(10, 1, 0, 0, false), Pace::Sleep(MAX_PAUSE_MS));
        let mut s = String::new();
        write!(FnWriter(|p: &str| s.push_str(p)), "a{}", 1).unwrap();
        assert_eq!(s, "a1");
    }
}
