// SPDX-License-Identifier: GPL-2.0

//! Write-behind and ahead/behind: how a write reaches a write-mostly leg.
//!
//! md's write-behind (raid1.c `alloc_behind_master_bio`) lets a write end
//! once the fast legs have it, the write-mostly legs getting a copy of the
//! data that finishes behind; when `max_write_behind` copies are in flight
//! md makes the writer wait. fr1 never makes the writer wait for a slow leg:
//! past the backlog, or when the oldest behind write is older than a limit,
//! the leg goes *behind* (DRBD's pull-ahead): writes only mark its bitmap,
//! and once its behind writes have drained the resync thread copies what it
//! missed, after which it is back in write-behind mode.
//!
//! This file holds the decision; `array/behind.rs` holds the mechanism and
//! its protocol comment.

/// md's limit for `bitmap/backlog` (`COUNTER_MAX / 2`).
pub(crate) const BACKLOG_MAX: u32 = 16383;

/// Default of `md/fr1_behind_max_ms`: the oldest behind write may be this
/// old before its leg goes behind (DRBD's default `timeout` is 6 s; a slow
/// leg should be let go sooner than a dead one is declared dead).
pub(crate) const DEFAULT_BEHIND_MAX_MS: u32 = 2000;

use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};

/// How one write reaches one write-mostly leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// As an ordinary mirror: the write ends after this leg has it.
    Mirror,
    /// A behind write: from the copy, finishing after the write ended.
    Behind,
    /// The leg is behind: the write only marks its bitmap.
    Skip,
    /// The leg goes behind now (and the write marks its bitmap).
    GoBehind(Why),
}

/// Why a leg went behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// `backlog` behind writes were in flight.
    BacklogFull,
    /// The oldest behind write was older than `fr1_behind_max_ms`.
    TooSlow,
    /// No memory for the copy, or no room to track it.
    NoMemory,
    /// The write overlaps a behind write still in flight on the leg: it
    /// must not overtake it, and fr1 does not make the writer wait.
    Overlap,
    /// The leg's queue had no room for a behind write (`REQ_NOWAIT`).
    Congested,
}

impl Why {
    /// For the kernel log.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Why::BacklogFull => "backlog full",
            Why::TooSlow => "oldest behind write too old",
            Why::NoMemory => "no memory for behind copies",
            Why::Overlap => "a write overlapped a behind write in flight",
            Why::Congested => "its queue is full",
        }
    }
}

/// What the write path knows when it routes a write to a write-mostly leg.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Facts {
    /// `bitmap/backlog`: behind writes allowed in flight (0: write-behind off).
    pub(crate) backlog: u32,
    /// `md/fr1_behind_max_ms`.
    pub(crate) max_ms: u32,
    /// Behind writes in flight on the leg.
    pub(crate) in_flight: u32,
    /// The write overlaps a behind write in flight on the leg.
    pub(crate) overlaps: bool,
    /// Age of the leg's oldest behind write in flight, in ms (0: none).
    pub(crate) oldest_ms: u64,
    /// The leg is behind already.
    pub(crate) leg_behind: bool,
    /// A leg that is not write-mostly and in sync gets the write itself:
    /// without one, write-mostly legs are ordinary mirrors (md's rule).
    pub(crate) fast_in_sync: bool,
    /// The write carries data (not a flush, discard or write-zeroes, which
    /// md never sends behind).
    pub(crate) data: bool,
}

/// How a write reaches a write-mostly leg.
pub(crate) fn route(f: Facts) -> Route {
    if f.leg_behind {
        // Going behind needed a fast in-sync leg; if it is gone since, the
        // leg still holds only what its bitmap says: keep skipping until the
        // catch-up (a behind leg is not in sync, so it never served reads).
        return Route::Skip;
    }
    if f.overlaps {
        // Behind or mirrored, the write could overtake the older copy on
        // the leg. (The caller waits instead if the leg may not go behind.)
        return Route::GoBehind(Why::Overlap);
    }
    if f.backlog == 0 || !f.fast_in_sync || !f.data {
        return Route::Mirror;
    }
    if f.in_flight >= f.backlog.min(LEG_FLIGHTS_MAX) {
        return Route::GoBehind(Why::BacklogFull);
    }
    if f.max_ms > 0 && f.oldest_ms > u64::from(f.max_ms) {
        return Route::GoBehind(Why::TooSlow);
    }
    Route::Behind
}

/// What the sync thread knows when it decides how a copy reaches a
/// write-mostly leg.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CopyFacts {
    /// `bitmap/backlog` (0: write-behind off).
    pub(crate) backlog: u32,
    /// Behind writes in flight on the leg (its copies included).
    pub(crate) in_flight: u32,
    /// Bytes of resync copies in flight on the leg.
    pub(crate) copy_bytes: u64,
    /// Age of the oldest behind write in flight on the leg, ms.
    pub(crate) oldest_ms: u64,
    /// `md/fr1_behind_max_ms`.
    pub(crate) max_ms: u32,
    /// Times the leg went behind since it last caught up.
    pub(crate) episodes: u32,
}

/// Resync copies in flight to one leg, at most (bytes of pages held).
pub(crate) const COPY_BEHIND_MAX_BYTES: u64 = 8 << 20;

/// A leg that went behind this often since it last caught up gets its
/// copies the ordinary way (holding their regions), which always ends.
pub(crate) const COPY_BEHIND_MAX_EPISODES: u32 = 4;

/// Whether a resync copy to a write-mostly leg goes as a behind write
/// itself (the copy leaves its region at once, `array/resync.rs`): only
/// while the leg has write-behind on and stays well within every limit
/// that would send it behind again: at most half its backlog in flight, its
/// oldest behind write under half `fr1_behind_max_ms`, at most
/// [`COPY_BEHIND_MAX_BYTES`] of copies in flight; and not once it keeps
/// falling behind during its catch-ups (a write over a copy in flight sends
/// it behind, so a hot spot could restart the catch-up forever). Otherwise
/// the copy writes the leg holding its region, as every resync copy does,
/// and writes over it wait.
pub(crate) fn resync_copy_behind(f: CopyFacts) -> bool {
    f.backlog > 0
        && f.in_flight < f.backlog.div_ceil(2)
        && f.oldest_ms.saturating_mul(2) < u64::from(f.max_ms)
        && f.copy_bytes < COPY_BEHIND_MAX_BYTES
        && f.episodes < COPY_BEHIND_MAX_EPISODES
}

/// How long a leg that drained its behind writes stays behind before its
/// catch-up starts, in ms, after it went behind `episodes` times since it
/// last caught up (1: the first time). The first catch-up starts at once;
/// a leg that keeps falling behind before it caught up (a load the leg
/// cannot carry) waits 25 ms, then 50, 100, ... up to
/// [`CATCH_UP_DELAY_MAX_MS`]: each catch-up that the load cuts short costs
/// the array a freeze and a restart of the sync thread, while writes to a
/// behind leg cost only a bit in its bitmap.
pub(crate) fn catch_up_delay_ms(episodes: u32) -> u32 {
    match episodes {
        0 | 1 => 0,
        n => (25u32 << (n - 2).min(16)).min(CATCH_UP_DELAY_MAX_MS),
    }
}

/// The longest a drained behind leg waits for its catch-up.
pub(crate) const CATCH_UP_DELAY_MAX_MS: u32 = 1000;

/// Behind writes fr1 tracks at once: a larger `backlog` acts as this one.
pub(crate) const FLIGHTS: usize = 1024;

/// Behind writes one leg may have in flight whatever the `backlog`: half
/// the table, so that a leg that stalls with its writes in flight (they
/// keep their entries until its clones end) leaves room for the others.
pub(crate) const LEG_FLIGHTS_MAX: u32 = FLIGHTS as u32 / 2;

/// Counters of the flights summary: entries live per 1 MiB region (modulo
/// this many), so that a scan of a range with none skips the table.
const SUMMARY: usize = 4096;
/// Log2 of the summary's region in sectors (1 MiB, the interlock's region).
const SUMMARY_SHIFT: u32 = 11;

/// The summary counters a range `[start, end)` touches (each once).
fn summary_slots(start: u64, end: u64) -> impl Iterator<Item = usize> {
    let first = start >> SUMMARY_SHIFT;
    let last = end.max(start + 1).saturating_sub(1) >> SUMMARY_SHIFT;
    let (first, n) = match last - first {
        span if span >= SUMMARY as u64 => (0, SUMMARY as u64),
        span => (first, span + 1),
    };
    (0..n).map(move |i| ((first + i) % SUMMARY as u64) as usize)
}
const WORDS: usize = FLIGHTS / 64;

/// The behind writes in flight: their sector ranges and legs, so that a
/// later write to the same blocks never overtakes one on its leg (md's
/// `wait_for_serialization`; fr1 sends the leg behind instead of waiting)
/// and a read of them never goes to that leg.
///
/// Protocol (any context, lock-free): a behind write *claims* an entry
/// (compare-and-swap on `reserved`), stores its range and legs, counts
/// itself in the `summary` of each region it touches, *then* publishes it
/// (`live`, SeqCst) before the upper write completes; it
/// clears each leg from it as its clone there completes (`leg_done`), and
/// *releases* it (clears `live`, then `reserved`) when its last clone
/// completed (`live` cleared first, then its summary counts). A scan
/// (`legs_overlapping`) first reads the summary of its range (SeqCst): all
/// zero, no entry published before it overlaps (their counts came first);
/// else it reads `live`, then the ranges. So a write or read issued after
/// an upper write completed sees
/// that write's behind entry until its copy has landed. Writes issued
/// concurrently with one another are not ordered (as in md, their order on
/// any leg is the block layer's).
pub(crate) struct Flights {
    reserved: [AtomicU64; WORDS],
    live: [AtomicU64; WORDS],
    start: [AtomicU64; FLIGHTS],
    end: [AtomicU64; FLIGHTS],
    legs: [AtomicU32; FLIGHTS],
    /// Live entries per region (see the protocol).
    summary: [AtomicU16; SUMMARY],
}

impl Default for Flights {
    fn default() -> Self {
        Flights {
            reserved: [const { AtomicU64::new(0) }; WORDS],
            live: [const { AtomicU64::new(0) }; WORDS],
            start: [const { AtomicU64::new(0) }; FLIGHTS],
            end: [const { AtomicU64::new(0) }; FLIGHTS],
            legs: [const { AtomicU32::new(0) }; FLIGHTS],
            summary: [const { AtomicU16::new(0) }; SUMMARY],
        }
    }
}

impl Flights {
    /// Claims and publishes an entry for sectors `[start, end)` on `legs`;
    /// `None` if all [`FLIGHTS`] are taken.
    pub(crate) fn claim(&self, start: u64, end: u64, legs: u32) -> Option<usize> {
        for (w, word) in self.reserved.iter().enumerate() {
            let mut v = word.load(Ordering::Relaxed);
            while v != u64::MAX {
                let bit = (!v).trailing_zeros() as usize;
                match word.compare_exchange_weak(
                    v,
                    v | 1 << bit,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let i = w * 64 + bit;
                        self.start.get(i)?.store(start, Ordering::Relaxed);
                        self.end.get(i)?.store(end, Ordering::Relaxed);
                        self.legs.get(i)?.store(legs, Ordering::Relaxed);
                        for r in summary_slots(start, end) {
                            self.summary[r].fetch_add(1, Ordering::SeqCst);
                        }
                        self.live.get(w)?.fetch_or(1 << bit, Ordering::SeqCst);
                        return Some(i);
                    }
                    Err(cur) => v = cur,
                }
            }
        }
        None
    }

    /// The write of entry `i` landed on the legs `legs` (or never goes
    /// there): scans no longer see it there.
    pub(crate) fn leg_done(&self, i: usize, legs: u32) {
        if let Some(l) = self.legs.get(i) {
            l.fetch_and(!legs, Ordering::SeqCst);
        }
    }

    /// Releases entry `i` (its writes landed).
    pub(crate) fn release(&self, i: usize) {
        let (w, bit) = (i / 64, i % 64);
        if let (Some(live), Some(res), Some(s), Some(e)) = (
            self.live.get(w),
            self.reserved.get(w),
            self.start.get(i),
            self.end.get(i),
        ) {
            live.fetch_and(!(1 << bit), Ordering::SeqCst);
            for r in summary_slots(s.load(Ordering::Relaxed), e.load(Ordering::Relaxed)) {
                self.summary[r].fetch_sub(1, Ordering::SeqCst);
            }
            res.fetch_and(!(1 << bit), Ordering::Release);
        }
    }

    /// The legs of the behind writes in flight that overlap `[start, end)`.
    pub(crate) fn legs_overlapping(&self, start: u64, end: u64) -> u32 {
        // A range over every region (a whole-device discard) scans the
        // table at once.
        let huge = end.saturating_sub(start) >> SUMMARY_SHIFT >= SUMMARY as u64;
        if !huge && summary_slots(start, end).all(|r| self.summary[r].load(Ordering::SeqCst) == 0) {
            return 0;
        }
        let mut legs = 0;
        for (w, word) in self.live.iter().enumerate() {
            let mut v = word.load(Ordering::SeqCst);
            while v != 0 {
                let i = w * 64 + v.trailing_zeros() as usize;
                v &= v - 1;
                let (Some(s), Some(e), Some(l)) =
                    (self.start.get(i), self.end.get(i), self.legs.get(i))
                else {
                    continue;
                };
                if s.load(Ordering::Relaxed) < end && start < e.load(Ordering::Relaxed) {
                    legs |= l.load(Ordering::SeqCst);
                }
            }
        }
        legs
    }

    /// Entries live.
    #[cfg(test)]
    pub(crate) fn live(&self) -> u32 {
        self.live
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones())
            .sum()
    }
}

/// md's check of a `bitmap/backlog` value.
pub(crate) fn parse_backlog(v: u64) -> Option<u32> {
    u32::try_from(v).ok().filter(|&v| v <= BACKLOG_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn facts() -> Facts {
        Facts {
            backlog: 256,
            max_ms: 2000,
            in_flight: 0,
            oldest_ms: 0,
            overlaps: false,
            leg_behind: false,
            fast_in_sync: true,
            data: true,
        }
    }

    #[test]
    fn write_behind_only_with_a_backlog_a_fast_leg_and_data() {
        assert_eq!(route(facts()), Route::Behind);
        for f in [
            Facts {
                backlog: 0,
                ..facts()
            },
            Facts {
                fast_in_sync: false,
                ..facts()
            },
            Facts {
                data: false,
                ..facts()
            },
        ] {
            assert_eq!(route(f), Route::Mirror);
        }
    }

    #[test]
    fn one_leg_never_takes_more_than_half_the_flights_table() {
        let big = Facts {
            backlog: BACKLOG_MAX,
            ..facts()
        };
        let at = |in_flight| route(Facts { in_flight, ..big });
        assert_eq!(at(LEG_FLIGHTS_MAX - 1), Route::Behind);
        assert_eq!(at(LEG_FLIGHTS_MAX), Route::GoBehind(Why::BacklogFull));
        // Two legs at the cap still leave the table room (a third leg's
        // claim can fail: it then goes behind, `Why::NoMemory`).
        assert!(2 * LEG_FLIGHTS_MAX as usize <= FLIGHTS);
    }

    #[test]
    fn never_waits_goes_behind_instead() {
        let full = Facts {
            in_flight: 256,
            ..facts()
        };
        assert_eq!(route(full), Route::GoBehind(Why::BacklogFull));
        let slow = Facts {
            oldest_ms: 2001,
            ..facts()
        };
        assert_eq!(route(slow), Route::GoBehind(Why::TooSlow));
        let no_limit = Facts {
            max_ms: 0,
            oldest_ms: u64::MAX,
            ..facts()
        };
        assert_eq!(route(no_limit), Route::Behind);
        let behind = Facts {
            leg_behind: true,
            backlog: 0,
            fast_in_sync: false,
            ..facts()
        };
        assert_eq!(route(behind), Route::Skip);
    }

    #[test]
    fn an_overlapping_write_never_overtakes_a_behind_write() {
        for f in [
            facts(),
            Facts {
                backlog: 0,
                ..facts()
            },
            Facts {
                data: false,
                ..facts()
            },
        ] {
            let f = Facts {
                overlaps: true,
                ..f
            };
            assert_eq!(route(f), Route::GoBehind(Why::Overlap));
        }
    }

    #[test]
    fn catch_ups_back_off_while_the_leg_keeps_falling_behind() {
        assert_eq!(catch_up_delay_ms(1), 0);
        assert_eq!(catch_up_delay_ms(2), 25);
        assert_eq!(catch_up_delay_ms(3), 50);
        assert_eq!(catch_up_delay_ms(7), 800);
        assert_eq!(catch_up_delay_ms(8), CATCH_UP_DELAY_MAX_MS);
        assert_eq!(catch_up_delay_ms(u32::MAX), CATCH_UP_DELAY_MAX_MS);
    }

    #[test]
    fn resync_copies_go_behind_well_within_the_limits() {
        let f = |backlog, in_flight| CopyFacts {
            backlog,
            in_flight,
            max_ms: DEFAULT_BEHIND_MAX_MS,
            ..CopyFacts::default()
        };
        let go = |backlog, in_flight| resync_copy_behind(f(backlog, in_flight));
        // Half the backlog.
        assert!(!go(0, 0));
        assert!(go(256, 127));
        assert!(!go(256, 128));
        assert!(go(1, 0));
        assert!(!go(1, 1));
        assert!(go(4, 1));
        assert!(!go(4, 2));
        assert!(go(BACKLOG_MAX, 8191));
        // Half the age limit.
        let aged = |oldest_ms| CopyFacts {
            oldest_ms,
            ..f(256, 0)
        };
        assert!(resync_copy_behind(aged(999)));
        assert!(!resync_copy_behind(aged(1000)));
        assert!(!resync_copy_behind(CopyFacts {
            max_ms: 0,
            ..f(256, 0)
        }));
        // Bytes of copies in flight.
        let bytes = |copy_bytes| CopyFacts {
            copy_bytes,
            ..f(256, 0)
        };
        assert!(resync_copy_behind(bytes(COPY_BEHIND_MAX_BYTES - 1)));
        assert!(!resync_copy_behind(bytes(COPY_BEHIND_MAX_BYTES)));
        // A leg that keeps falling behind gets ordinary copies.
        let episodes = |episodes| CopyFacts {
            episodes,
            ..f(256, 0)
        };
        assert!(resync_copy_behind(episodes(COPY_BEHIND_MAX_EPISODES - 1)));
        assert!(!resync_copy_behind(episodes(COPY_BEHIND_MAX_EPISODES)));
    }

    #[test]
    fn flights_find_overlaps_and_free_their_entries() {
        let f = Flights::default();
        let a = f.claim(0, 8, 0b10).unwrap();
        let b = f.claim(100, 108, 0b100).unwrap();
        assert_eq!(f.legs_overlapping(4, 5), 0b10);
        assert_eq!(f.legs_overlapping(8, 100), 0);
        assert_eq!(f.legs_overlapping(0, 200), 0b110);
        f.release(a);
        assert_eq!(f.legs_overlapping(0, 200), 0b100);
        f.release(b);
        assert_eq!(f.live(), 0);
        let all: Vec<usize> = (0..FLIGHTS)
            .map(|i| f.claim(i as u64, i as u64 + 1, 1).unwrap())
            .collect();
        assert_eq!(f.claim(0, 1, 1), None);
        for i in all {
            f.release(i);
        }
        assert_eq!(f.live(), 0);
    }

    #[test]
    fn the_summary_counts_each_touched_region_once() {
        let at = |start, end| summary_slots(start, end).collect::<Vec<_>>();
        assert_eq!(at(0, 8), [0]);
        assert_eq!(at(2047, 2049), [0, 1]);
        // An empty range is the block at its start.
        assert_eq!(at(4096, 4096), [2]);
        // Wrapped regions share counters; a huge range touches them all.
        assert_eq!(at(SUMMARY as u64 * 2048, SUMMARY as u64 * 2048 + 1), [0]);
        assert_eq!(at(0, u64::MAX).len(), SUMMARY);
        let f = Flights::default();
        let a = f.claim(2040, 2056, 1).unwrap();
        assert_eq!(f.legs_overlapping(2050, 2051), 1);
        assert_eq!(f.legs_overlapping(4096, 4104), 0);
        f.release(a);
        assert!(f.summary.iter().all(|c| c.load(Ordering::Relaxed) == 0));
        assert_eq!(f.legs_overlapping(2050, 2051), 0);
    }

    #[test]
    fn a_leg_done_with_a_flight_is_no_longer_seen_there() {
        let f = Flights::default();
        let a = f.claim(0, 8, 0b110).unwrap();
        f.leg_done(a, 0b100);
        assert_eq!(f.legs_overlapping(0, 8), 0b010);
        f.leg_done(a, 0b010);
        assert_eq!(f.legs_overlapping(0, 8), 0);
        // Live until released, for the next claim.
        assert_eq!(f.live(), 1);
        f.release(a);
        let b = f.claim(0, 8, 0b1).unwrap();
        assert_eq!(f.legs_overlapping(0, 8), 0b1);
        f.release(b);
    }

    /// Threads claim, scan and release concurrently. The model checks the
    /// protocol's promise: an entry published before a scan started (a
    /// completed upper write) is always seen by it.
    #[test]
    fn a_published_flight_is_seen_by_every_later_scan() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let f = Arc::new(Flights::default());
        let stop = Arc::new(AtomicBool::new(false));
        let noise: Vec<_> = (0..3u64)
            .map(|t| {
                let (f, stop) = (f.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(i) = f.claim(1000 + t * 10 + n % 8, 1001 + t * 10 + n % 8, 1) {
                            f.release(i);
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        for k in 0..20_000u64 {
            let i = f.claim(k % 512, k % 512 + 8, 0b10).expect("room");
            assert_eq!(f.legs_overlapping(k % 512 + 7, k % 512 + 9) & 0b10, 0b10);
            f.release(i);
        }
        stop.store(true, Ordering::Relaxed);
        for t in noise {
            t.join().unwrap();
        }
        assert_eq!(f.live(), 0);
    }

    #[test]
    fn backlog_range_is_mds() {
        assert_eq!(parse_backlog(0), Some(0));
        assert_eq!(parse_backlog(16383), Some(16383));
        assert_eq!(parse_backlog(16384), None);
        assert_eq!(parse_backlog(u64::MAX), None);
    }
}
