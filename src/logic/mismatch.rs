// SPDX-License-Identifier: GPL-2.0

//! Where a check found the members different: md's `mismatch_cnt` says how
//! many sectors, this log says which ones, so an administrator (or
//! `fr1ctl check`) can look at, or `FR1_REPAIR_RANGE`, exactly those.
//!
//! The check compares each in-sync member (`slot`) with the first readable
//! one (`primary`), a block at a time, in ascending sector order per region.
//! Every differing block is [`MismatchLog::note`]d; contiguous blocks of the
//! same pair merge into one range. The log has room for [`MAX_RANGES`]
//! ranges (no allocation while a check runs); the sectors of any range past
//! those are counted in [`MismatchLog::unlisted`], so `mismatch_cnt` always
//! equals the listed plus the unlisted sectors.
//!
//! The caller owns synchronisation: in fr1 the sync thread writes the log
//! under a mutex that sysfs takes to read it; a check resets it as it
//! resets `mismatch_cnt`.

/// How many ranges the log lists at most.
pub(crate) const MAX_RANGES: usize = 64;

/// A run of sectors in which `slot` differs from `primary`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// First sector of the range (array sectors: the same on every member).
    pub(crate) sector: u64,
    /// Its length in sectors.
    pub(crate) sectors: u64,
    /// The member found different.
    pub(crate) slot: u32,
    /// The member it was compared with (the one a repair copies from).
    pub(crate) primary: u32,
}

impl Mismatch {
    fn end(&self) -> u64 {
        self.sector.saturating_add(self.sectors)
    }
}

/// The ranges the last check found (see the module comment).
///
/// # Invariants
///
/// `len <= MAX_RANGES`; `ranges[..len]` are the listed ranges in the order
/// found, each with `sectors > 0`.
pub(crate) struct MismatchLog {
    ranges: [Mismatch; MAX_RANGES],
    len: usize,
    unlisted: u64,
}

impl Default for MismatchLog {
    fn default() -> Self {
        Self::new()
    }
}

impl MismatchLog {
    /// An empty log.
    pub(crate) const fn new() -> Self {
        Self {
            ranges: [Mismatch {
                sector: 0,
                sectors: 0,
                slot: 0,
                primary: 0,
            }; MAX_RANGES],
            len: 0,
            unlisted: 0,
        }
    }

    /// Forgets every range (a check starts).
    pub(crate) fn reset(&mut self) {
        self.len = 0;
        self.unlisted = 0;
    }

    /// `slot` differs from `primary` over `sectors` sectors at `sector`.
    ///
    /// Extends the latest range of the same pair when the new one starts
    /// where that one ends (the check compares the members of one region
    /// in turn, so a pair's latest range need not be the log's last one).
    /// Otherwise appends a range, or, when the log is full, counts the
    /// sectors as unlisted.
    pub(crate) fn note(&mut self, sector: u64, sectors: u64, slot: u32, primary: u32) {
        if sectors == 0 {
            return;
        }
        let listed = self.ranges.get_mut(..self.len).unwrap_or(&mut []);
        if let Some(last) = listed
            .iter_mut()
            .rev()
            .find(|r| r.slot == slot && r.primary == primary)
        {
            if last.end() == sector {
                last.sectors = last.sectors.saturating_add(sectors);
                return;
            }
        }
        match self.ranges.get_mut(self.len) {
            Some(r) => {
                *r = Mismatch {
                    sector,
                    sectors,
                    slot,
                    primary,
                };
                self.len += 1;
            }
            None => self.unlisted = self.unlisted.saturating_add(sectors),
        }
    }

    /// The listed ranges, in the order found.
    pub(crate) fn ranges(&self) -> &[Mismatch] {
        self.ranges.get(..self.len).unwrap_or(&[])
    }

    /// Sectors found different that no listed range holds.
    pub(crate) fn unlisted(&self) -> u64 {
        self.unlisted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_blocks_of_one_pair_merge() {
        let mut log = MismatchLog::new();
        log.note(1984, 8, 1, 0);
        log.note(1992, 8, 1, 0);
        log.note(2000, 112, 1, 0);
        assert_eq!(
            log.ranges(),
            &[Mismatch {
                sector: 1984,
                sectors: 128,
                slot: 1,
                primary: 0
            }]
        );
        assert_eq!(log.unlisted(), 0);
    }

    #[test]
    fn pairs_interleaved_by_region_each_keep_their_range() {
        // Region 0 then region 1, slots 1 and 2 compared in turn in each.
        let mut log = MismatchLog::new();
        log.note(2040, 8, 1, 0);
        log.note(2040, 8, 2, 0);
        log.note(2048, 8, 1, 0);
        log.note(2048, 8, 2, 0);
        let r = log.ranges();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].sector, r[0].sectors, r[0].slot), (2040, 16, 1));
        assert_eq!((r[1].sector, r[1].sectors, r[1].slot), (2040, 16, 2));
    }

    #[test]
    fn a_gap_or_another_primary_starts_a_range() {
        let mut log = MismatchLog::new();
        log.note(0, 8, 1, 0);
        log.note(16, 8, 1, 0);
        log.note(24, 8, 1, 2);
        log.note(0, 0, 1, 0);
        let r = log.ranges();
        assert_eq!(r.len(), 3);
        assert_eq!((r[1].sector, r[1].sectors), (16, 8));
        assert_eq!((r[2].sector, r[2].primary), (24, 2));
    }

    #[test]
    fn a_full_log_counts_the_rest_and_still_merges() {
        let mut log = MismatchLog::new();
        for i in 0..MAX_RANGES as u64 {
            log.note(i * 16, 8, 1, 0);
        }
        assert_eq!(log.ranges().len(), MAX_RANGES);
        // Contiguous with the last listed range: still listed.
        log.note((MAX_RANGES as u64 - 1) * 16 + 8, 8, 1, 0);
        assert_eq!(log.unlisted(), 0);
        log.note(1 << 20, 8, 1, 0);
        log.note((1 << 20) + 8, 24, 1, 0);
        assert_eq!(log.unlisted(), 32);
        let listed: u64 = log.ranges().iter().map(|r| r.sectors).sum();
        assert_eq!(listed + log.unlisted(), MAX_RANGES as u64 * 8 + 8 + 32);
        log.reset();
        assert!(log.ranges().is_empty());
        assert_eq!(log.unlisted(), 0);
    }
}
