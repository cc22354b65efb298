// SPDX-License-Identifier: GPL-2.0

//! Read balancing: which mirror serves a read (md's `read_balance()`, the
//! parts that apply to fr1).

/// What the balancer knows of one slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Mirror {
    /// In sync and not faulty.
    pub(crate) readable: bool,
    /// Reads avoid it unless nothing else can serve them.
    pub(crate) write_mostly: bool,
    /// Requests in flight on it.
    pub(crate) pending: u32,
    /// The sector just after the last read sent to it.
    pub(crate) next_seq_sector: u64,
}

/// Chooses the mirror for a read at `sector`, skipping slots in `exclude`
/// (already tried). `first_only`: while an initial sync is pending every read
/// goes to the first readable mirror, so readers see one consistent copy.
///
/// Order: a mirror continuing a sequential stream at `sector` (keeps streams
/// on one device); otherwise the fewest pending requests (lowest slot on
/// ties); write-mostly mirrors only as the last resort.
pub(crate) fn choose(
    mirrors: &[Mirror],
    sector: u64,
    exclude: u32,
    first_only: bool,
) -> Option<usize> {
    let usable = |i: usize, m: &Mirror| m.readable && exclude & (1 << i) == 0;
    if first_only {
        return mirrors.iter().enumerate().position(|(i, m)| usable(i, m));
    }
    let mut best: Option<(usize, u32)> = None;
    let mut fallback = None;
    for (i, m) in mirrors.iter().enumerate() {
        if !usable(i, m) {
            continue;
        }
        if m.write_mostly {
            fallback.get_or_insert(i);
            continue;
        }
        if m.next_seq_sector == sector && sector != 0 {
            return Some(i);
        }
        if best.is_none_or(|(_, p)| m.pending < p) {
            best = Some((i, m.pending));
        }
    }
    best.map(|(i, _)| i).or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pending: u32, next: u64) -> Mirror {
        Mirror {
            readable: true,
            write_mostly: false,
            pending,
            next_seq_sector: next,
        }
    }

    #[test]
    fn fewest_pending_wins() {
        assert_eq!(choose(&[m(3, 0), m(1, 0), m(2, 0)], 100, 0, false), Some(1));
        assert_eq!(choose(&[m(1, 0), m(1, 0)], 100, 0, false), Some(0));
    }

    #[test]
    fn sequential_stream_stays() {
        assert_eq!(choose(&[m(0, 8), m(9, 100)], 100, 0, false), Some(1));
    }

    #[test]
    fn never_unreadable_or_excluded() {
        let mut bad = m(0, 100);
        bad.readable = false;
        assert_eq!(choose(&[bad, m(5, 0)], 100, 0, false), Some(1));
        assert_eq!(choose(&[m(0, 0), m(5, 0)], 100, 0b01, false), Some(1));
        assert_eq!(choose(&[m(0, 0), m(5, 0)], 100, 0b11, false), None);
        assert_eq!(choose(&[bad], 100, 0, false), None);
    }

    #[test]
    fn write_mostly_is_last_resort() {
        let mut wm = m(0, 0);
        wm.write_mostly = true;
        assert_eq!(choose(&[wm, m(7, 0)], 5, 0, false), Some(1));
        assert_eq!(choose(&[wm, m(7, 0)], 5, 0b10, false), Some(0));
    }

    #[test]
    fn first_only_during_initial_sync() {
        let mut bad = m(0, 0);
        bad.readable = false;
        assert_eq!(choose(&[bad, m(9, 0), m(0, 0)], 5, 0, true), Some(1));
        assert_eq!(choose(&[bad, m(9, 0), m(0, 0)], 5, 0b10, true), Some(2));
    }
}
