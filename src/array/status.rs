// SPDX-License-Identifier: GPL-2.0

//! The array's entry in /proc/mdstat (md's format, `logic::mdstat`).

use core::sync::atomic::Ordering;

use super::{Array, Phase};
use crate::logic::abi::MAX_MIRRORS;
use crate::logic::mdstat::{self, ArrayStatus, MemberStatus, RunState, SyncStatus};

impl Array {
    /// The array's entry in /proc/mdstat.
    pub(crate) fn write_status(&self, w: &mut impl core::fmt::Write) {
        let cfg = self.config.lock();
        let Some(g) = cfg.geometry else {
            return;
        };
        // The sync first: it ends only after the member is in sync, so a
        // slot state read after it is never older than it.
        let sync = self.sync.status();
        let st = self.state();
        let mut members: [Option<MemberStatus<'_>>; MAX_MIRRORS as usize] =
            [None; MAX_MIRRORS as usize];
        let mut n = 0;
        let mut sum = 0u64;
        // Counted references, held while the names are rendered.
        let held: [_; MAX_MIRRORS as usize] =
            core::array::from_fn(|i| self.slot_get_present(i as u32));
        // md lists the newest member first; fr1 lists slots from the last.
        for i in (0..MAX_MIRRORS).rev() {
            if let Some(m) = &held[i as usize] {
                members[n] = Some(MemberStatus {
                    name: m.name(),
                    desc_nr: self.slot[i as usize].desc_nr.load(Ordering::Relaxed),
                    write_mostly: st.write_mostly(i),
                    faulty: st.faulty(i),
                    spare: false,
                    behind_kib: self.behind_kib(i),
                });
                if !st.faulty(i) {
                    sum += m.sectors();
                }
                n += 1;
            }
        }
        let mut list: [MemberStatus<'_>; MAX_MIRRORS as usize] = [MemberStatus {
            name: "",
            desc_nr: 0,
            write_mostly: false,
            faulty: false,
            spare: false,
            behind_kib: None,
        }; MAX_MIRRORS as usize];
        for (dst, src) in list.iter_mut().zip(members.iter().flatten()) {
            *dst = *src;
        }
        let mut in_sync = [false; MAX_MIRRORS as usize];
        for (i, u) in in_sync.iter_mut().enumerate().take(g.raid_disks as usize) {
            *u = st.readable(i as u32);
        }
        let running = cfg.phase == Phase::Running;
        let status = ArrayStatus {
            name: self.name_str(),
            state: if running {
                RunState::Active
            } else {
                RunState::Inactive
            },
            read_only: false,
            members: &list[..n],
            blocks_kib: if running { cfg.sectors / 2 } else { sum / 2 },
            slots_in_sync: &in_sync[..g.raid_disks as usize],
            sync: match sync {
                Some(s) if running => s,
                _ if running && self.resync_pending.load(Ordering::Relaxed) => SyncStatus::Pending,
                _ => SyncStatus::Idle,
            },
            bitmap: running.then(|| self.bitmap_line()).flatten(),
        };
        let _ = mdstat::write_array(w, &status);
    }

    /// mdstat's `bitmap:` line: nodes held over all members' bitmaps, and
    /// the leaf pages one fully populated bitmap would need.
    fn bitmap_line(&self) -> Option<mdstat::BitmapLine> {
        let maps = self.bitmaps.as_ref()?;
        // md's figures are 4 KiB pages: fr1's nodes are counted in them.
        let used = maps.iter().map(|b| b.bytes_held()).sum::<u64>();
        let blocks = maps.first().map_or(0, |b| b.blocks());
        Some(mdstat::BitmapLine {
            used_pages: used.div_ceil(4096),
            total_pages: blocks.div_ceil(4096 * 8),
            chunk_bytes: 512 << self.block_shift.load(Ordering::Relaxed),
        })
    }
}
