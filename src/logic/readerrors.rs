// SPDX-License-Identifier: GPL-2.0

//! md's policy for a leg whose reads keep failing (md.c
//! `check_decay_read_errors`, raid1.c `exceed_read_errors`): every read
//! error that fr1 repairs counts against the leg; the count halves for each
//! whole hour since the leg's previous read error (and is forgotten after
//! 32); once it exceeds the array's `md/max_read_errors` the leg is failed
//! instead of repaired.

/// md's `MD_DEFAULT_MAX_CORRECTED_READ_ERRORS`: the default of
/// `md/max_read_errors`.
pub(crate) const DEFAULT_MAX_READ_ERRORS: u32 = 20;

/// Nanoseconds in an hour, the unit of the decay.
pub(crate) const HOUR_NS: u64 = 3_600_000_000_000;

/// A leg's read error count after `elapsed_ns` without one: halved per
/// whole hour, zero after 32 hours (md's `check_decay_read_errors`).
pub(crate) fn decayed(count: u32, elapsed_ns: u64) -> u32 {
    let hours = elapsed_ns / HOUR_NS;
    if hours >= 32 {
        0
    } else {
        count >> hours
    }
}

/// What one more read error does to a leg whose decayed count is `count`:
/// the new count, and whether it exceeds `max` (md: `read_errors >
/// max_read_errors`, so `max` errors are still repaired).
pub(crate) fn record(count: u32, max: u32) -> (u32, bool) {
    let count = count.saturating_add(1);
    (count, count > max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_per_whole_hour() {
        assert_eq!(decayed(20, 0), 20);
        assert_eq!(decayed(20, HOUR_NS - 1), 20);
        assert_eq!(decayed(20, HOUR_NS), 10);
        assert_eq!(decayed(20, 3 * HOUR_NS + 5), 2);
        assert_eq!(decayed(u32::MAX, 31 * HOUR_NS), 1);
        assert_eq!(decayed(u32::MAX, 32 * HOUR_NS), 0);
        assert_eq!(decayed(7, u64::MAX), 0);
    }

    #[test]
    fn md_fails_past_the_maximum_not_at_it() {
        let mut c = 0;
        for _ in 0..DEFAULT_MAX_READ_ERRORS {
            let over;
            (c, over) = record(c, DEFAULT_MAX_READ_ERRORS);
            assert!(!over);
        }
        assert_eq!(c, 20);
        assert_eq!(record(c, DEFAULT_MAX_READ_ERRORS), (21, true));
        assert_eq!(record(0, 0), (1, true));
        assert_eq!(record(u32::MAX, u32::MAX), (u32::MAX, false));
    }
}
