// SPDX-License-Identifier: GPL-2.0

//! `/sys/block/<array>/md/`: md's attribute names and formats (md.c
//! `md_default_attrs`, `md_redundancy_attrs`; md-bitmap's `bitmap/`), so
//! scripts written for md read fr1 unchanged. Writes fr1 does not support
//! return EINVAL; nothing silently succeeds.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{prelude::*, sync::Arc};

use super::Mode;
use super::{Array, Phase};
use crate::logic::abi::MAX_MIRRORS;
use crate::sys::sysfs::{attr_table, attribute_group, AttrGroup, GroupOps, ShowBuf};

const RO: u16 = 0o444;
const RW: u16 = 0o644;

attr_table!(
    /// md/ attributes.
    pub(crate) MdAttr, MD_ATTRS {
    ArrayState = c"array_state", RO;
    Level = c"level", RO;
    RaidDisks = c"raid_disks", RO;
    ComponentSize = c"component_size", RO;
    MetadataVersion = c"metadata_version", RO;
    ChunkSize = c"chunk_size", RO;
    Layout = c"layout", RO;
    Degraded = c"degraded", RO;
    SyncAction = c"sync_action", RW;
    SyncCompleted = c"sync_completed", RO;
    ResyncStart = c"resync_start", RO;
    SyncSpeed = c"sync_speed", RO;
    SyncSpeedMin = c"sync_speed_min", RW;
    SyncSpeedMax = c"sync_speed_max", RW;
    SyncIoDepth = c"sync_io_depth", RW;
    MismatchCnt = c"mismatch_cnt", RO;
    ConsistencyPolicy = c"consistency_policy", RO;
    ArraySize = c"array_size", RO;
    NewDev = c"new_dev", 0o200;
    BehindMaxMs = c"fr1_behind_max_ms", RW;
    ProbeMs = c"fr1_probe_ms", RW;
    StallMs = c"fr1_stall_ms", RW;
    MaxReadErrors = c"max_read_errors", RW;
    ReadableCopies = c"fr1_readable_copies", RO;
    Mismatches = c"fr1_mismatches", RO;
});

attr_table!(
    /// md/bitmap/ attributes: md's `chunksize` and `location`, and fr1's
    /// statistics of its in-memory bitmaps (summed over the members).
    pub(crate) BitmapAttr, BITMAP_ATTRS {
    Chunksize = c"chunksize", RO;
    Location = c"location", RO;
    Pages = c"pages", RO;
    Leaves = c"leaves", RO;
    Nodes = c"nodes", RO;
    RootBytes = c"root_bytes", RO;
    Bits = c"bits", RO;
    Coarse = c"coarse", RO;
    Bytes = c"bytes", RO;
    ResyncCopiedBytes = c"resync_copied_bytes", RO;
    Backlog = c"backlog", RW;
    MaxBacklogUsed = c"max_backlog_used", RW;
    BehindWrites = c"behind_writes", RO;
    BehindBytes = c"behind_bytes", RO;
});

pub(crate) static MD_OPS: GroupOps<Array> = GroupOps {
    show: md_show,
    store: md_store,
};

pub(crate) static BITMAP_OPS: GroupOps<Array> = GroupOps {
    show: bitmap_show,
    store: bitmap_store,
};

attr_table!(
    /// md/dev-<name>/ attributes (md's `rdev_default_attrs`, the ones fr1 has).
    pub(crate) DevAttr, DEV_ATTRS {
    State = c"state", RW;
    Slot = c"slot", RO;
    Errors = c"errors", RO;
});

pub(crate) static DEV_OPS: GroupOps<Array> = GroupOps {
    show: dev_show,
    store: dev_store,
};

attribute_group!(md_group, None, super::MD_ATTRS, super::MD_OPS, super::Array);
attribute_group!(
    dev_group,
    None,
    super::DEV_ATTRS,
    super::DEV_OPS,
    super::Array
);

/// The group of every md/dev-<name>/.
pub(crate) fn dev_group() -> &'static AttrGroup {
    &dev_group::GROUP
}

/// The slot whose member directory is `dir` (`dev-<name>`).
fn slot_of_dir(a: &Array, dir: &str) -> Option<u32> {
    let name = dir.strip_prefix("dev-")?;
    (0..MAX_MIRRORS).find(|&i| a.slot_get_present(i).is_some_and(|m| m.name() == name))
}

fn dev_show(idx: usize, a: &Array, dir: &str, w: &mut ShowBuf) -> fmt::Result {
    let Some(slot) = slot_of_dir(a, dir) else {
        return Err(fmt::Error);
    };
    let st = a.state();
    match DevAttr::at(idx) {
        Some(DevAttr::State) => {
            // md's state_show: a comma list.
            let mut sep = "";
            let mut word = |w: &mut ShowBuf, s: &str| {
                let r = write!(w, "{sep}{s}");
                sep = ",";
                r
            };
            if st.faulty(slot) {
                word(w, "faulty")?;
                // fr1's: failed by itself, probed for an automatic re-add.
                if a.slot[slot as usize].probing.load(Ordering::Relaxed) {
                    word(w, "probing")?;
                }
            }
            if st.in_sync(slot) {
                word(w, "in_sync")?;
            }
            if st.write_mostly(slot) {
                word(w, "write_mostly")?;
            }
            // fr1's: writes only mark its bitmap until it catches up.
            if !a.takes_writes(slot) && !st.faulty(slot) {
                word(w, "behind")?;
            }
            if !st.faulty(slot) && !st.in_sync(slot) {
                word(w, "spare")?;
            }
            writeln!(w)
        }
        Some(DevAttr::Slot) => {
            if st.faulty(slot) {
                writeln!(w, "none")
            } else {
                writeln!(w, "{slot}")
            }
        }
        Some(DevAttr::Errors) => writeln!(
            w,
            "{}",
            a.slot[slot as usize].corrected.load(Ordering::Relaxed)
        ),
        _ => Err(fmt::Error),
    }
}

fn dev_store(idx: usize, a: &Arc<Array>, dir: &str, text: &str) -> Result {
    if DevAttr::at(idx) != Some(DevAttr::State) {
        return Err(EINVAL);
    }
    let slot = slot_of_dir(a, dir).ok_or(ENODEV)?;
    a.set_member_state(slot, text)
}
attribute_group!(
    bitmap_group,
    Some(c"bitmap"),
    super::BITMAP_ATTRS,
    super::BITMAP_OPS,
    super::Array
);

/// The groups of md/.
pub(crate) static GROUPS: [&AttrGroup; 2] = [&md_group::GROUP, &bitmap_group::GROUP];

fn md_show(idx: usize, a: &Array, _dir: &str, w: &mut ShowBuf) -> fmt::Result {
    let st = a.state();
    let raid_disks = a.raid_disks.load(Ordering::Relaxed);
    let running = a.running.load(Ordering::Relaxed);
    match MdAttr::at(idx) {
        Some(MdAttr::ArrayState) => {
            let s = if a.stopped.load(Ordering::Relaxed) {
                "clear"
            } else if !running {
                if raid_disks == 0 {
                    "clear"
                } else {
                    "inactive"
                }
            } else if a.writes_inflight.load(Ordering::Relaxed) > 0 {
                "active"
            } else {
                "clean"
            };
            writeln!(w, "{s}")
        }
        Some(MdAttr::Level) => writeln!(w, "{}", if raid_disks > 0 { "raid1" } else { "" }),
        Some(MdAttr::RaidDisks) => writeln!(w, "{raid_disks}"),
        Some(MdAttr::ComponentSize) => writeln!(w, "{}", a.sectors.load(Ordering::Relaxed) / 2),
        Some(MdAttr::MetadataVersion) => writeln!(w, "none"),
        Some(MdAttr::ChunkSize) => writeln!(w, "{}", a.chunk_size.load(Ordering::Relaxed)),
        Some(MdAttr::Layout) => writeln!(w, "0"),
        Some(MdAttr::Degraded) => {
            writeln!(w, "{}", if running { st.degraded(raid_disks) } else { 0 })
        }
        Some(MdAttr::SyncAction) => {
            let s = match a.sync.mode() {
                Some(m) => m.word(),
                None if a.sync.frozen.load(Ordering::Relaxed) => "frozen",
                None => "idle",
            };
            writeln!(w, "{s}")
        }
        // md: "delayed" while the sync thread has not started its pass.
        Some(MdAttr::SyncCompleted) => match a.sync.position() {
            Some((_, 0)) => writeln!(w, "delayed"),
            Some((done, total)) => writeln!(w, "{done} / {total}"),
            None => writeln!(w, "none"),
        },
        // md's recovery_cp: where the initial resync stands ("none": clean).
        Some(MdAttr::ResyncStart) => match (a.resync_pending.load(Ordering::SeqCst), a.sync.mode())
        {
            (false, _) => writeln!(w, "none"),
            (true, Some(Mode::Resync)) => writeln!(w, "{}", a.sync.position().map_or(0, |p| p.0)),
            (true, _) => writeln!(w, "0"),
        },
        Some(MdAttr::SyncSpeed) => match a.sync.position() {
            Some(_) => writeln!(w, "{}", a.sync.speed()),
            None => writeln!(w, "none"),
        },
        Some(MdAttr::SyncSpeedMin) => speed_limit(w, a.sync.limits().0, &a.sync.speed_min_local),
        Some(MdAttr::SyncSpeedMax) => speed_limit(w, a.sync.limits().1, &a.sync.speed_max_local),
        Some(MdAttr::SyncIoDepth) => speed_limit(w, a.sync.io_depth(), &a.sync.io_depth_local),
        Some(MdAttr::MismatchCnt) => writeln!(w, "{}", a.sync.mismatches.load(Ordering::Relaxed)),
        Some(MdAttr::ConsistencyPolicy) => writeln!(w, "bitmap"),
        // md prints "default" unless user space set an explicit size.
        Some(MdAttr::ArraySize) => writeln!(w, "default"),
        Some(MdAttr::BehindMaxMs) => writeln!(w, "{}", a.behind.max_ms.load(Ordering::Relaxed)),
        Some(MdAttr::ProbeMs) => writeln!(w, "{}", a.probe_ms.load(Ordering::Relaxed)),
        Some(MdAttr::StallMs) => writeln!(w, "{}", a.stall_ms.load(Ordering::Relaxed)),
        Some(MdAttr::MaxReadErrors) => writeln!(w, "{}", a.max_read_errors.load(Ordering::Relaxed)),
        // The legs a read (or FR1_READ_COPY) may be served by.
        Some(MdAttr::ReadableCopies) => writeln!(w, "{}", a.state().readable_mask().count_ones()),
        // "SECTOR SECTORS SLOT PRIMARY" per range found by the last check
        // (as md's bad_blocks lists "sector length"), then "unlisted N".
        Some(MdAttr::Mismatches) => {
            let log = a.mismatch_log.lock();
            for r in log.ranges() {
                writeln!(w, "{} {} {} {}", r.sector, r.sectors, r.slot, r.primary)?;
            }
            match log.unlisted() {
                0 => Ok(()),
                n => writeln!(w, "unlisted {}", n),
            }
        }
        _ => Err(fmt::Error),
    }
}

fn md_store(idx: usize, a: &Arc<Array>, _dir: &str, text: &str) -> Result {
    match MdAttr::at(idx) {
        Some(MdAttr::SyncAction) => a.set_sync_action(text),
        // md's new_dev: "major:minor" of a device to add (to a running
        // array: a member that fr1 resyncs).
        Some(MdAttr::NewDev) => {
            let (maj, min) = text.split_once(':').ok_or(EINVAL)?;
            let maj = maj.trim().parse::<i32>().map_err(|_| EINVAL)?;
            let min = min.trim().parse::<i32>().map_err(|_| EINVAL)?;
            let dev = crate::logic::abi::DevNum::from_parts(maj, min).map_err(super::to_error)?;
            if a.config.try_lock().ok_or(EBUSY)?.phase != Phase::Running {
                return Err(EINVAL);
            }
            a.hot_add(dev)
        }
        Some(MdAttr::SyncSpeedMin) => set_speed_limit(&a.sync.speed_min_local, text),
        Some(MdAttr::SyncSpeedMax) => set_speed_limit(&a.sync.speed_max_local, text),
        // md's sync_io_depth_store: the same "system" / positive number.
        Some(MdAttr::SyncIoDepth) => set_speed_limit(&a.sync.io_depth_local, text),
        Some(MdAttr::BehindMaxMs) => {
            let v = text.parse::<u32>().map_err(|_| EINVAL)?;
            a.behind.max_ms.store(v, Ordering::Relaxed);
            Ok(())
        }
        Some(MdAttr::ProbeMs) => {
            let v = text.parse::<u32>().map_err(|_| EINVAL)?;
            a.probe_ms.store(v, Ordering::Relaxed);
            // Legs failed meanwhile are probed from now on.
            a.queue_probe();
            Ok(())
        }
        Some(MdAttr::StallMs) => {
            let v = text.parse::<u32>().map_err(|_| EINVAL)?;
            a.stall_ms.store(v, Ordering::Relaxed);
            a.queue_watch();
            Ok(())
        }
        // md's max_corrected_read_errors_store: 0..=INT_MAX.
        Some(MdAttr::MaxReadErrors) => {
            let v = text.parse::<u32>().map_err(|_| EINVAL)?;
            if v > i32::MAX as u32 {
                return Err(EINVAL);
            }
            a.max_read_errors.store(v, Ordering::Relaxed);
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

/// md/bitmap/ stores: md's `backlog` (0..16383, refused without a
/// write-mostly member) and `max_backlog_used` (any write resets it).
fn bitmap_store(idx: usize, a: &Arc<Array>, _dir: &str, text: &str) -> Result {
    match BitmapAttr::at(idx) {
        Some(BitmapAttr::Backlog) => {
            let v = text.parse::<u64>().map_err(|_| EINVAL)?;
            let v = crate::logic::behind::parse_backlog(v).ok_or(EINVAL)?;
            if a.state().write_mostly_mask() == 0 {
                return Err(EINVAL);
            }
            a.behind.backlog.store(v, Ordering::Relaxed);
            Ok(())
        }
        Some(BitmapAttr::MaxBacklogUsed) => {
            a.behind.max_used.store(0, Ordering::Relaxed);
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

/// md's `sync_speed_min`/`_max` (and `sync_io_depth`): the limit in force
/// and where it comes from.
fn speed_limit(w: &mut ShowBuf, value: u32, local: &AtomicU32) -> fmt::Result {
    let whose = match local.load(Ordering::Relaxed) {
        0 => "system",
        _ => "local",
    };
    writeln!(w, "{value} ({whose})")
}

/// md's store: "system" falls back to the module parameter, a positive
/// number of KiB/s sets this array's own limit.
fn set_speed_limit(local: &AtomicU32, text: &str) -> Result {
    let v = match text {
        "system" => 0,
        _ => match text.parse::<u32>() {
            Ok(0) | Err(_) => return Err(EINVAL),
            Ok(v) => v,
        },
    };
    local.store(v, Ordering::Relaxed);
    Ok(())
}

fn bitmap_show(idx: usize, a: &Array, _dir: &str, w: &mut ShowBuf) -> fmt::Result {
    let mut sum = crate::logic::bitmap::Stats::default();
    let (mut bytes, mut root_bytes) = (0, 0);
    if let Some(maps) = a.bitmaps.as_ref() {
        for bm in maps.iter() {
            root_bytes += bm.root_bytes();
            let s = bm.stats();
            sum.pages += s.pages;
            sum.nodes += s.nodes;
            sum.bits += s.bits;
            sum.coarse += s.coarse;
            bytes += bm.bytes_held();
        }
    }
    match BitmapAttr::at(idx) {
        Some(BitmapAttr::Chunksize) => {
            writeln!(w, "{}", 512u64 << a.block_shift.load(Ordering::Relaxed))
        }
        Some(BitmapAttr::Location) => writeln!(w, "memory"),
        // mdstat's figure: 4 KiB pages' worth of nodes.
        Some(BitmapAttr::Pages) => writeln!(w, "{}", bytes.div_ceil(4096)),
        Some(BitmapAttr::Leaves) => writeln!(w, "{}", sum.pages),
        Some(BitmapAttr::Nodes) => writeln!(w, "{}", sum.nodes),
        Some(BitmapAttr::RootBytes) => writeln!(w, "{root_bytes}"),
        Some(BitmapAttr::Bits) => writeln!(w, "{}", sum.bits),
        Some(BitmapAttr::Coarse) => writeln!(w, "{}", sum.coarse),
        Some(BitmapAttr::Bytes) => writeln!(w, "{bytes}"),
        Some(BitmapAttr::ResyncCopiedBytes) => {
            writeln!(w, "{}", a.sync.copied_bytes.load(Ordering::Relaxed))
        }
        Some(BitmapAttr::Backlog) => writeln!(w, "{}", a.behind.backlog.load(Ordering::Relaxed)),
        Some(BitmapAttr::MaxBacklogUsed) => {
            writeln!(w, "{}", a.behind.max_used.load(Ordering::Relaxed))
        }
        Some(BitmapAttr::BehindWrites) => {
            writeln!(w, "{}", a.behind.writes.load(Ordering::Relaxed))
        }
        Some(BitmapAttr::BehindBytes) => writeln!(w, "{}", a.behind.bytes.load(Ordering::Relaxed)),
        _ => Err(fmt::Error),
    }
}

impl Array {
    /// `md/dev-<name>/state` writes (md's `state_store`, the words fr1
    /// supports): faulty, remove, re-add, writemostly, -writemostly.
    fn set_member_state(self: &Arc<Self>, slot: u32, word: &str) -> Result {
        match word {
            "faulty" => match self.fail_slot_requested(slot, "set faulty through sysfs") {
                Ok(()) | Err(crate::logic::slots::FailError::AlreadyFaulty) => Ok(()),
                Err(crate::logic::slots::FailError::LastInSync) => Err(EBUSY),
                Err(crate::logic::slots::FailError::Empty) => Err(ENODEV),
            },
            "remove" => {
                // Removing deletes this very directory. `do_store` broke the
                // attribute's active protection, so the removal does not wait
                // for this handler and `hot_remove` may wait for `config`;
                // the lookup of the device only tries it.
                let cfg = self.config.try_lock().ok_or(EBUSY)?;
                let dev = self.slot_get_present(slot).ok_or(ENODEV)?.dev();
                drop(cfg);
                self.hot_remove(dev)
            }
            "re-add" => {
                let st = self.state();
                if !st.faulty(slot) {
                    return Err(EINVAL);
                }
                // The slot's device now, not after a member change.
                let dev = {
                    let _cfg = self.config.try_lock().ok_or(EBUSY)?;
                    self.slot_get_present(slot).ok_or(ENODEV)?.dev()
                };
                self.hot_add(dev)
            }
            "writemostly" | "-writemostly" => {
                let on = word == "writemostly";
                self.update_state(|st| st.with_write_mostly(slot, on))
                    .map(|_| ())
                    .map_err(super::to_error)
            }
            _ => Err(EINVAL),
        }
    }

    /// `md/sync_action` writes: check, repair (from idle only, as md),
    /// idle, frozen, recover/resync.
    fn set_sync_action(self: &Arc<Self>, action: &str) -> Result {
        // Never block here on `config`: stopping the array removes this file
        // while holding it.
        let mut cfg = self.config.try_lock().ok_or(EBUSY)?;
        if cfg.phase != Phase::Running {
            return Err(EINVAL);
        }
        match action {
            "check" | "repair" => {
                if self.sync.mode().is_some() || self.needs_recovery() {
                    return Err(EBUSY);
                }
                if self.state().active() < 2 {
                    return Err(EINVAL);
                }
                self.sync.frozen.store(false, Ordering::SeqCst);
                let mode = if action == "check" {
                    Mode::Check
                } else {
                    Mode::Repair
                };
                self.start_sync(&mut cfg, mode)
            }
            "frozen" => {
                self.sync.frozen.store(true, Ordering::SeqCst);
                self.stop_sync(&mut cfg);
                Ok(())
            }
            "idle" | "recover" | "resync" => {
                if action == "idle" && matches!(self.sync.mode(), Some(Mode::Check | Mode::Repair))
                {
                    self.stop_sync(&mut cfg);
                }
                let owed = if self.needs_recovery() {
                    Some(Mode::Recover)
                } else if self.resync_pending.load(Ordering::SeqCst) {
                    Some(Mode::Resync)
                } else {
                    None
                };
                let start = owed.filter(|_| self.sync.mode().is_none());
                if let Some(mode) = start {
                    // Announced before "frozen" goes: no reader sees "idle"
                    // in between while a sync is owed.
                    self.sync.begin(mode);
                }
                self.sync.frozen.store(false, Ordering::SeqCst);
                match start {
                    Some(mode) => self.start_sync(&mut cfg, mode),
                    None => Ok(()),
                }
            }
            _ => Err(EINVAL),
        }
    }
}

const _: () = assert!(MAX_MIRRORS <= 32);
