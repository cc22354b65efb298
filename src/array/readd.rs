// SPDX-License-Identifier: GPL-2.0

//! Hot-adding and re-adding members: a device that left a slot is resynced
//! incrementally from the slot's bitmap if a sample of its clean blocks
//! matches an in-sync member; anything else is copied whole.

use core::sync::atomic::Ordering;
use kernel::{prelude::*, sync::Arc};

use super::{Array, Mode, Phase};
use crate::logic::abi::{DevNum, MAX_MIRRORS};
use crate::logic::balance;
use crate::logic::resync as plan;
use crate::sys::bio::PageBuf;
use crate::sys::member::Member;

/// Blocks compared before a re-added device is trusted.
const SAMPLES: usize = 64;

impl Array {
    /// HOT_ADD_DISK, and ADD_NEW_DISK on a running array: (re)attaches `dev`
    /// as a recovering member and starts the resync. A device that left a
    /// slot is resynced incrementally from that slot's bitmap if a sample of
    /// its clean blocks matches an in-sync member; anything else is copied
    /// whole.
    /// The device comes back write-mostly if it left its slot so (a failed
    /// member replaced, or a re-add into the slot it left).
    pub(crate) fn hot_add(self: &Arc<Self>, dev: DevNum) -> Result {
        self.add_running(dev, None, None)
    }

    /// [`Array::hot_add`], write-mostly if `write_mostly` (md's
    /// ADD_NEW_DISK with `MD_DISK_WRITEMOSTLY`).
    pub(crate) fn hot_add_as(self: &Arc<Self>, dev: DevNum, write_mostly: bool) -> Result {
        self.add_running(dev, write_mostly.then_some(true), None)
    }

    /// The probe's automatic re-add of `dev` into `slot` (`array/probe.rs`):
    /// only while the slot is still probing (no removal, failure by request
    /// or other add came first) and `dev` is still its failed member or the
    /// device fr1 let go of there; otherwise `ENODEV`.
    pub(super) fn readd_probed(self: &Arc<Self>, slot: u32, dev: DevNum) -> Result {
        self.add_running(dev, None, Some(slot))
    }

    /// [`Array::hot_add`]: `write_mostly` (else as the slot had it) and, for
    /// the probe, the slot it must go back to.
    fn add_running(
        self: &Arc<Self>,
        dev: DevNum,
        write_mostly: Option<bool>,
        probed: Option<u32>,
    ) -> Result {
        if self.config.lock().phase != Phase::Running {
            return Err(ENODEV);
        }
        // Open first: opening may probe block majors (see `add_new_disk`).
        let member = Member::open(dev, &**self)?;
        if self.would_loop(&member) {
            return Err(EBUSY);
        }
        let mut cfg = self.config.lock();
        if cfg.phase != Phase::Running {
            return Err(ENODEV);
        }
        if member.sectors() < cfg.sectors {
            return Err(ENOSPC);
        }
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS);
        let st = self.state();
        let kdev = dev.to_kdev();
        if let Some(p) = probed {
            let s = self.slot.get(p as usize).ok_or(ENODEV)?;
            let still = match self.slot_of_dev(dev) {
                Some(at) => at == p && st.faulty(p),
                None => !st.present(p) && s.saved_dev.load(Ordering::SeqCst) == kdev,
            };
            if !s.probing.load(Ordering::Relaxed) || !still {
                return Err(ENODEV);
            }
        }
        // As the slot had it: the failed member's flag, or the one saved
        // when the device left.
        let inherit = |slot: u32| {
            write_mostly.unwrap_or_else(|| {
                if st.present(slot) {
                    st.write_mostly(slot)
                } else {
                    self.slot[slot as usize].saved_dev.load(Ordering::SeqCst) == kdev
                        && self.slot[slot as usize]
                            .saved_write_mostly
                            .load(Ordering::Relaxed)
                }
            })
        };
        // The device may still sit in its slot as a failed member (the fr1
        // README: set faulty, then hot-add): replace that member.
        let slot = match self.slot_of_dev(dev) {
            Some(s) if st.faulty(s) => {
                let wm = inherit(s);
                drop(self.detach_slot(&mut cfg, s, true)?);
                let res = self.attach_recovering(&mut cfg, s, member, dev, wm);
                if res.is_err() && !self.state().present(s) {
                    cfg.member_dirs[s as usize] = None;
                }
                return res;
            }
            Some(_) => return Err(EBUSY),
            None if probed.is_some() => probed.unwrap_or(0),
            None => {
                let free = |i: &u32| !st.present(*i);
                (0..raid_disks)
                    .filter(free)
                    .find(|&i| self.slot[i as usize].saved_dev.load(Ordering::SeqCst) == kdev)
                    .or_else(|| (0..raid_disks).find(free))
                    .ok_or(EBUSY)?
            }
        };
        let wm = inherit(slot);
        let res = self.attach_recovering(&mut cfg, slot, member, dev, wm);
        if res.is_err() && !self.state().present(slot) {
            // A failed member was taken out for this device, which did not
            // make it in: its directory goes too.
            cfg.member_dirs[slot as usize] = None;
        }
        res
    }

    /// The second half of [`Array::hot_add`]: `member` joins `slot` as a
    /// recovering member and the resync starts.
    fn attach_recovering(
        self: &Arc<Self>,
        cfg: &mut super::Config,
        slot: u32,
        member: Member,
        dev: DevNum,
        write_mostly: bool,
    ) -> Result {
        // The recovery is announced before the member joins: from the moment
        // it is visible as recovering, nothing reports the array idle (see
        // `logic::syncstate`). This voids a running sync's ticket, so every
        // path from here restarts or stops the sync thread.
        self.sync.begin(Mode::Recover);
        // The old sync thread goes before the slot's bitmap is sampled or
        // reset: it may be walking or freeing this very bitmap (a copy to
        // this slot cut short by the member's failure, or its end-of-resync
        // reset). `restart_resync` starts a new one.
        if let Some(t) = cfg.resync.take() {
            t.stop();
        }
        match self.attach_stopped(cfg, slot, member, dev, write_mostly) {
            Ok(()) => self.restart_resync(cfg),
            Err(e) => {
                self.settle_sync(cfg);
                Err(e)
            }
        }
    }

    /// [`Array::attach_recovering`] with the sync thread stopped.
    fn attach_stopped(
        self: &Arc<Self>,
        cfg: &mut super::Config,
        slot: u32,
        mut member: Member,
        dev: DevNum,
        write_mostly: bool,
    ) -> Result {
        let st = self.state();
        let maps = self.bitmaps.as_ref().ok_or(ENODEV)?;
        let bm = maps.get(slot as usize).ok_or(EINVAL)?;
        let s = &self.slot[slot as usize];
        let same = s.saved_dev.load(Ordering::SeqCst) == dev.to_kdev()
            && s.tracking.load(Ordering::SeqCst);
        let full_reason = if !same {
            Some("a new device for this slot")
        } else if bm.all_coarse() {
            Some("the bitmap holds no detail (coarse everywhere)")
        } else {
            match self.sample_matches(bm, &member) {
                Ok(true) => None,
                Ok(false) => {
                    Some("sampled clean blocks differ from the in-sync copy: not the same data")
                }
                Err(_) => Some("the sample could not be read"),
            }
        };
        member.link(cfg.disk.as_ref().ok_or(ENODEV)?)?;
        // Limits first: once the member is published every bio must fit it.
        {
            let disk = cfg.disk.as_ref().ok_or(ENODEV)?;
            let others = (0..MAX_MIRRORS).filter(|&i| st.writable(i) && i != slot);
            let existing: [_; MAX_MIRRORS as usize] = core::array::from_fn(|i| {
                let i = i as u32;
                others
                    .clone()
                    .any(|o| o == i)
                    .then(|| self.slot_get_present(i))
                    .flatten()
            });
            let existing = existing.iter().flatten().map(|m| &**m);
            disk.stack_limits(Iterator::chain(existing, core::iter::once(&member)))?;
        }
        let member = KBox::new(member, GFP_KERNEL)?;
        // No write may be in flight while the slot changes: a write that
        // missed the slot must have recorded it before the member joins.
        let frozen = self.freeze();
        if full_reason.is_some() {
            // Writes are frozen (nothing records into it), freezers exclude
            // each other (no read repair does), `attach_recovering` stopped
            // the sync thread (no walk, clear or reset), and `sample_matches`
            // ran earlier in this thread.
            // SAFETY: So nothing else uses the bitmap until this returns.
            unsafe { bm.set_all() };
        }
        s.desc_nr.store(slot, Ordering::Relaxed);
        s.new_member();
        // Empty: `slot` was chosen free under `config`.
        let installed = s.member.install(member);
        let installed_ok = installed.is_ok();
        let attached = match installed {
            Ok(()) => self.update_state(|st| st.attach(slot, false, write_mostly)),
            Err(_) => Err(crate::logic::errno::Errno::Busy),
        };
        s.tracking.store(true, Ordering::SeqCst);
        s.saved_dev.store(dev.to_kdev(), Ordering::SeqCst);
        if let Err(e) = attached {
            // Still frozen: no write has looked at the slot since.
            if installed_ok {
                drop(self.take_member(slot));
            }
            drop(frozen);
            return Err(super::to_error(e));
        }
        drop(frozen);
        crate::registry::new_event();
        self.add_member_dir(cfg, slot);
        pr_info!(
            "{}: hotadd component {}:{}[{}] to device {}\n",
            self.name_str(),
            dev.major,
            dev.minor,
            slot,
            self.minor
        );
        match full_reason {
            Some(why) => pr_info!(
                "{}: full resync of slot {}: {}\n",
                self.name_str(),
                slot,
                why
            ),
            None => pr_info!(
                "{}: slot {} is the same device: incremental resync of {} dirty blocks\n",
                self.name_str(),
                slot,
                bm.stats().bits
            ),
        }
        Ok(())
    }

    /// Compares up to 64 clean blocks of `candidate` with an in-sync member.
    fn sample_matches(&self, bm: &crate::sys::nodes::Bitmap, candidate: &Member) -> Result<bool> {
        let shift = self.block_shift.load(Ordering::Relaxed);
        let (blocks, n) = plan::sample_blocks::<SAMPLES>(bm.blocks(), |b| !bm.is_dirty(b));
        let bytes = 4096usize.min(512 << shift);
        let (a, b) = (PageBuf::new(bytes)?, PageBuf::new(bytes)?);
        let sectors = (bytes / 512) as u64;
        let raid_disks = self.raid_disks.load(Ordering::Relaxed).min(MAX_MIRRORS) as usize;
        for &blk in blocks.iter().take(n) {
            let sector = blk << shift;
            let Some(src) = balance::choose(&self.mirrors()[..raid_disks], sector, 0, false) else {
                return Err(EIO);
            };
            let src = src as u32;
            let Some(m) = self.slot_get(src, false) else {
                return Err(EIO);
            };
            let ok = self.bioset.sync_io(&m, false, sector, sectors, &a);
            drop(m);
            if !ok || !self.bioset.sync_io(candidate, false, sector, sectors, &b) {
                return Err(EIO);
            }
            // A write during the sample may have changed the block on the
            // in-sync member; it then also marked the block dirty (before
            // its data reached any member), which explains the difference.
            if !a.same_as(&b, bytes) && !bm.is_dirty(blk) {
                pr_info!(
                    "{}: identity check: block {} differs on {}\n",
                    self.name_str(),
                    blk,
                    candidate.name()
                );
                return Ok(false);
            }
        }
        Ok(true)
    }
}
