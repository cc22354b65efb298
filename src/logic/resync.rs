// SPDX-License-Identifier: GPL-2.0

//! Resync bookkeeping: the bounded dmesg range log of the fr1 README, the
//! blocks sampled to check a re-added member's identity, and the throttle.

use core::fmt::{self, Write};

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

/// md's throttle (`md_do_sync`): how long to pause, in milliseconds, after
/// copying at `kib_per_s` over the current window, given the limits and
/// whether user I/O is active. Below `min` never; above `max` always; in
/// between only when the array is busy.
pub(crate) fn throttle_ms(kib_per_s: u64, min: u64, max: u64, array_busy: bool) -> u64 {
    if kib_per_s <= min {
        0
    } else if kib_per_s > max || array_busy {
        // md sleeps 500 ms above max; fr1 sleeps in shorter steps so that
        // stop requests are seen quickly.
        100
    } else {
        0
    }
}

/// A `fmt::Write` that forwards to a closure taking `&str` pieces.
pub(crate) struct FnWriter<F: FnMut(&str)>(pub(crate) F);

impl<F: FnMut(&str)> Write for FnWriter<F> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        (self.0)(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn throttle_like_md() {
        assert_eq!(throttle_ms(500, 1000, 200_000, true), 0);
        assert_eq!(throttle_ms(300_000, 1000, 200_000, false), 100);
        assert_eq!(throttle_ms(50_000, 1000, 200_000, true), 100);
        assert_eq!(throttle_ms(50_000, 1000, 200_000, false), 0);
        let mut s = String::new();
        write!(FnWriter(|p: &str| s.push_str(p)), "a{}", 1).unwrap();
        assert_eq!(s, "a1");
    }
}
