// SPDX-License-Identifier: GPL-2.0

//! An fr1 array: its members, its lifecycle (md's build arrays: configure,
//! add members, run, fail/remove, stop) and its status.
//!
//! Files, one concern each: `slot` (slots and slot references), `io` (the
//! data path, the write freeze, the interlock waits), `progress` (the
//! announced sync and the sync thread's body), `resync` (the recovery
//! pipeline), `readd` (hot-add, identity sample), `check` (check, repair,
//! initial resync), `status` (/proc/mdstat), `sysfs` (md/), `ioctl` (md's
//! ABI). Each mechanism's protocol comment is at its definition; the order
//! in which their locks nest is in Documentation/fr1/design.rst.
//!
//! `config` (a mutex) serialises every state change made by the control
//! path (ioctls, sysfs stores).

mod behind;
mod check;
mod copyio;
pub(crate) mod io;
pub(crate) mod ioctl;
mod linger;
mod probe;
pub(crate) mod progress;
mod readd;
mod resync;
mod slot;
mod status;
pub(crate) mod sysfs;

use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use kernel::{
    new_condvar, new_delayed_work, new_mutex, new_spinlock_irq, new_work,
    prelude::*,
    sync::{Arc, CondVar, Mutex, SetOnce, SpinLockIrq},
    workqueue::{DelayedWork, Work},
};

use crate::logic::abi::{self, DevNum, Geometry, MAX_MIRRORS};
use crate::logic::errno::Errno;
use crate::logic::interlock::Interlock;
use crate::logic::slots::FailError;
use crate::registry::Identity;
use crate::sys::bio::{BioSet, FinishedStack};
use crate::sys::disk::{Disk, DiskOps, DiskVtable};
use crate::sys::kthread::KThread;
use crate::sys::member::Member;
use crate::sys::nodes::Bitmap;
use crate::sys::sysfs::{MdDir, MemberDir};
use io::{IoPad, IoState};
use progress::Mode;
use slot::{Slot, SlotRef};

/// Longest array name (`md255`, `fr255`) plus NUL.
const NAME_LEN: usize = 8;

/// Lifecycle of an array, as md's build arrays go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Created by opening its node; nothing configured.
    Empty,
    /// SET_ARRAY_INFO done: members may be added.
    Configured,
    /// RUN_ARRAY done: I/O flows.
    Running,
    /// STOP_ARRAY done: the disk is deleted.
    Stopped,
}

/// State changed only under `Array::config`.
struct Config {
    phase: Phase,
    geometry: Option<Geometry>,
    disk: Option<Disk>,
    /// Size of the array in sectors (while running).
    sectors: u64,
    /// The resync thread, while one exists.
    resync: Option<KThread<progress::SyncJob>>,
    /// md/ in sysfs.
    md_dir: Option<MdDir>,
    /// md/dev-<name>/ of each slot's member.
    member_dirs: [Option<MemberDir>; MAX_MIRRORS as usize],
}

/// An fr1 array.
#[pin_data]
pub(crate) struct Array {
    minor: u32,
    name: [u8; NAME_LEN],
    identity: Identity,
    #[pin]
    config: Mutex<Config>,
    /// `Slots` bits: which slots hold members, in sync, faulty.
    slots: AtomicU64,
    slot: [Slot; MAX_MIRRORS as usize],
    raid_disks: AtomicU32,
    running: AtomicBool,
    /// STOP_ARRAY (or unload) began: opens fail.
    stopped: AtomicBool,
    /// Not `--assume-clean` and not yet synced: reads use the first mirror.
    resync_pending: AtomicBool,
    /// Master bios in flight, plus one while the array is alive.
    inflight: AtomicUsize,
    /// Of those, the upper bios (not behind copies; `array/linger.rs`).
    user_masters: AtomicUsize,
    #[pin]
    drained: crate::sys::completion::Completion,
    /// `stop` left behind writes on a stalled leg: the last master
    /// completion queues the reap (`array/linger.rs`).
    lingering: AtomicBool,
    /// The array's reference to itself while it lingers.
    #[pin]
    reap_self: SpinLockIrq<Option<Arc<Array>>>,
    /// The module reference of a lingering array.
    #[pin]
    reap_module: Mutex<Option<crate::sys::module::ModuleRef>>,
    #[pin]
    reap_work: Work<Array, { linger::REAP_WORK }>,
    openers: AtomicU32,
    /// Reads that failed and wait for the worker. (Before the bio sets:
    /// fields drop in order, and a bio set goes last.)
    retry: FinishedStack<IoState>,
    /// Write-zeroes bios waiting for zero pages on some members.
    zero_fill: FinishedStack<IoState>,
    #[pin]
    pub(crate) bioset: BioSet<IoPad>,
    /// Splits of upper bios at region boundaries (its own pool, as md's
    /// `bio_split` set: a split must never wait for a clone's reserve).
    #[pin]
    splits: BioSet<()>,
    /// Behind copies of writes (`array/behind.rs`; md's own bio set).
    #[pin]
    behind_set: BioSet<()>,
    /// Write-behind and ahead/behind.
    behind: behind::Behind,
    /// Each slot's deferred-submission worker (`behind::submitters`).
    submitters: KVec<Arc<crate::sys::bio::Submitter>>,
    #[pin]
    catch_up_work: DelayedWork<Array, { behind::CATCH_UP_WORK }>,
    /// `md/fr1_probe_ms`: failed legs are probed this often (0: never;
    /// `array/probe.rs`).
    probe_ms: AtomicU32,
    #[pin]
    probe_work: DelayedWork<Array, { probe::PROBE_WORK }>,
    /// `md/fr1_stall_ms`: a leg with behind writes in flight that lands
    /// none for this long fails (0: never; `array/probe.rs`).
    stall_ms: AtomicU32,
    /// `md/max_read_errors` (md's name and default): a member whose decayed
    /// read error count exceeds it is failed, not repaired
    /// (`logic::readerrors`).
    max_read_errors: AtomicU32,
    #[pin]
    watch_work: DelayedWork<Array, { probe::WATCH_WORK }>,
    #[pin]
    retry_work: Work<Array, { io::RETRY_WORK }>,
    #[pin]
    zero_fill_work: Work<Array, { io::ZERO_FILL_WORK }>,
    /// Writes wait while this is non-zero (md's freeze_array; see
    /// `Array::freeze` for the protocol).
    frozen: AtomicU32,
    /// The sync thread (its whole run) and FR1_REPAIR_RANGE (`try_lock`)
    /// exclude each other: see the protocol in `array/copyio.rs`.
    #[pin]
    copy_mutex: Mutex<()>,
    /// Serialises freezers: one [`io::Frozen`] guard at a time.
    #[pin]
    freezer: Mutex<()>,
    writes_inflight: AtomicUsize,
    #[pin]
    freeze_lock: SpinLockIrq<()>,
    #[pin]
    freeze_cv: CondVar,
    /// Writes that did not reach every member (the dirty-bitmap hook).
    missed_writes: AtomicU64,
    /// One dirty bitmap per slot, created by RUN_ARRAY.
    bitmaps: SetOnce<KVec<Bitmap>>,
    /// Log2 of the bitmap block size in sectors.
    block_shift: AtomicU32,
    /// Resync copies and user writes never overlap (see `logic::interlock`).
    interlock: Interlock,
    #[pin]
    interlock_lock: SpinLockIrq<()>,
    #[pin]
    interlock_cv: CondVar,
    /// Progress of the running resync.
    pub(crate) sync: progress::Progress,
    /// Where the last check/repair found the members different
    /// (`md/fr1_mismatches`): written by the sync thread, read by sysfs.
    #[pin]
    mismatch_log: Mutex<crate::logic::mismatch::MismatchLog>,
    /// Size in sectors while running (for sysfs, without `config`).
    sectors: AtomicU64,
    /// `chunk_size` as configured (for sysfs).
    chunk_size: AtomicI32,
}

kernel::impl_has_delayed_work! {
    impl HasDelayedWork<Self, { behind::CATCH_UP_WORK }> for Array { self.catch_up_work }
    impl HasDelayedWork<Self, { probe::PROBE_WORK }> for Array { self.probe_work }
    impl HasDelayedWork<Self, { probe::WATCH_WORK }> for Array { self.watch_work }
}

kernel::impl_has_work! {
    impl HasWork<Self, { io::RETRY_WORK }> for Array { self.retry_work }
    impl HasWork<Self, { io::ZERO_FILL_WORK }> for Array { self.zero_fill_work }
    impl HasWork<Self, { linger::REAP_WORK }> for Array { self.reap_work }
}

impl Array {
    /// Creates the empty array `minor` with its (empty) gendisk.
    pub(crate) fn create(identity: Identity, major: u32, minor: u32) -> Result<Arc<Array>> {
        let mut name = [0u8; NAME_LEN];
        let prefix = if identity == Identity::Md { "md" } else { "fr" };
        let mut w = crate::logic::fmtbuf::FmtBuf::new(&mut name[..NAME_LEN - 1]);
        write!(w, "{prefix}{minor}").map_err(|_| EINVAL)?;
        let submitters = behind::submitters()?;
        let array = Arc::pin_init(
            try_pin_init!(Array {
                minor,
                name,
                identity,
                config <- new_mutex!(Config {
                    phase: Phase::Empty,
                    geometry: None,
                    disk: None,
                    sectors: 0,
                    resync: None,
                    md_dir: None,
                    member_dirs: [const { None }; MAX_MIRRORS as usize],
                }),
                slots: AtomicU64::new(0),
                slot: [const { Slot::new() }; MAX_MIRRORS as usize],
                raid_disks: AtomicU32::new(0),
                running: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
                resync_pending: AtomicBool::new(false),
                inflight: AtomicUsize::new(1),
                user_masters: AtomicUsize::new(0),
                drained <- crate::sys::completion::Completion::new(),
                lingering: AtomicBool::new(false),
                reap_self <- new_spinlock_irq!(None),
                reap_module <- new_mutex!(None),
                reap_work <- new_work!("fr1::reap_work"),
                openers: AtomicU32::new(0),
                bioset <- BioSet::new(),
                splits <- BioSet::new(),
                behind_set <- BioSet::new(),
                behind: behind::Behind::default(),
                submitters,
                catch_up_work <- new_delayed_work!("fr1::catch_up_work"),
                probe_ms: AtomicU32::new(probe::DEFAULT_PROBE_MS),
                probe_work <- new_delayed_work!("fr1::probe_work"),
                stall_ms: AtomicU32::new(probe::DEFAULT_STALL_MS),
                max_read_errors: AtomicU32::new(crate::logic::readerrors::DEFAULT_MAX_READ_ERRORS),
                watch_work <- new_delayed_work!("fr1::watch_work"),
                retry: FinishedStack::new(),
                retry_work <- new_work!("fr1::retry_work"),
                zero_fill: FinishedStack::new(),
                zero_fill_work <- new_work!("fr1::zero_fill_work"),
                frozen: AtomicU32::new(0),
                copy_mutex <- new_mutex!((), "fr1::copy_mutex"),
                freezer <- new_mutex!(()),
                writes_inflight: AtomicUsize::new(0),
                freeze_lock <- new_spinlock_irq!(()),
                freeze_cv <- new_condvar!(),
                missed_writes: AtomicU64::new(0),
                bitmaps: SetOnce::new(),
                block_shift: AtomicU32::new(3),
                interlock: Interlock::default(),
                interlock_lock <- new_spinlock_irq!(()),
                interlock_cv <- new_condvar!(),
                sync: progress::Progress::default(),
                mismatch_log <- new_mutex!(crate::logic::mismatch::MismatchLog::new()),
                sectors: AtomicU64::new(0),
                chunk_size: AtomicI32::new(0),
            }? Error),
            GFP_KERNEL,
        )?;
        let cname = CStr::from_bytes_with_nul(&array.name[..=array.name_str().len()])
            .map_err(|_| EINVAL)?;
        let mut disk = Disk::new(major, minor, cname, array.clone())?;
        disk.add()?;
        let md_dir = MdDir::new(&disk, &sysfs::GROUPS)?;
        let mut cfg = array.config.lock();
        cfg.disk = Some(disk);
        cfg.md_dir = Some(md_dir);
        drop(cfg);
        Ok(array)
    }

    /// The array's minor.
    pub(crate) fn minor(&self) -> u32 {
        self.minor
    }

    /// The array's name, e.g. `md0`.
    pub(crate) fn name_str(&self) -> &str {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        core::str::from_utf8(&self.name[..len]).unwrap_or("fr?")
    }

    /// md's `openers` accounting: fops open. Runs under the disk's
    /// `open_mutex`, so it must not take `config` (which is held while
    /// members are opened and the disk is deleted).
    pub(crate) fn open(&self) -> Result {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(ENODEV);
        }
        self.openers.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// fops release.
    pub(crate) fn release(&self) {
        self.openers.fetch_sub(1, Ordering::SeqCst);
    }

    fn log_prefix(&self) -> &str {
        self.name_str()
    }

    // ---- control path (ioctls) ----

    fn set_array_info(&self, info: &abi::MduArrayInfo) -> core::result::Result<(), Errno> {
        let mut cfg = self.config.lock();
        if cfg.phase != Phase::Empty {
            return Err(Errno::Busy);
        }
        let mut g = abi::validate_set_array_info(info, self.minor)?;
        // md stamps the creation time itself.
        g.ctime = crate::sys::time::real_seconds() as u32;
        self.raid_disks.store(g.raid_disks, Ordering::SeqCst);
        self.block_shift.store(g.block_shift, Ordering::SeqCst);
        self.chunk_size.store(g.chunk_size, Ordering::SeqCst);
        cfg.geometry = Some(g);
        cfg.phase = Phase::Configured;
        Ok(())
    }

    fn add_new_disk(&self, info: &abi::MduDiskInfo) -> Result {
        let raid_disks = match self.config.lock().geometry {
            Some(g) => g.raid_disks,
            None => return Err(ENODEV),
        };
        let nd = abi::validate_add_new_disk(info, raid_disks).map_err(to_error)?;
        // Opening a device may run a block probe (major_names_lock), so it
        // happens before `config` is taken; the member is closed again if
        // a check below fails.
        let mut member = Member::open(nd.dev, self)?;
        if self.would_loop(&member) {
            return Err(EBUSY);
        }
        let mut cfg = self.config.lock();
        let g = match cfg.phase {
            Phase::Configured => cfg.geometry.ok_or(ENODEV)?,
            Phase::Running => return Err(EOPNOTSUPP),
            Phase::Empty | Phase::Stopped => return Err(ENODEV),
        };
        let st = self.state();
        if st.present(nd.slot)
            || self.slot_of_dev(nd.dev).is_some()
            || (0..MAX_MIRRORS).any(|i| {
                st.present(i) && self.slot[i as usize].desc_nr.load(Ordering::Relaxed) == nd.desc_nr
            })
        {
            return Err(EBUSY);
        }
        if g.member_sectors > 0 && member.sectors() < g.member_sectors {
            return Err(ENOSPC);
        }
        member.link(cfg.disk.as_ref().ok_or(ENODEV)?)?;
        let member = KBox::new(member, GFP_KERNEL)?;
        let s = &self.slot[nd.slot as usize];
        s.desc_nr.store(nd.desc_nr, Ordering::Relaxed);
        s.next_seq.store(0, Ordering::Relaxed);
        s.new_member();
        // Empty (PRESENT clear, checked above under `config`).
        s.member.install(member).map_err(|_| EBUSY)?;
        if let Err(e) = self.update_state(|st| st.attach(nd.slot, nd.in_sync, nd.write_mostly)) {
            // Cannot happen under `config` (checked above); undo anyway.
            drop(self.take_member(nd.slot));
            return Err(to_error(e));
        }
        self.add_member_dir(&mut cfg, nd.slot);
        let m = self.slot_get_present(nd.slot).ok_or(ENODEV)?;
        pr_info!(
            "{}: added {} as slot {} ({}){}\n",
            self.log_prefix(),
            m.name(),
            nd.slot,
            if nd.in_sync {
                "in sync"
            } else {
                "needs recovery"
            },
            if nd.write_mostly {
                ", write-mostly"
            } else {
                ""
            }
        );
        Ok(())
    }

    /// Creates md/dev-<name>/ and md/rdN for the member in `slot` (a
    /// failure only costs the directory).
    fn add_member_dir(&self, cfg: &mut Config, slot: u32) {
        let (Some(md), Some(m)) = (cfg.md_dir.as_ref(), self.slot_get_present(slot)) else {
            return;
        };
        if cfg.member_dirs[slot as usize].is_some() {
            return;
        }
        match MemberDir::new(md, &m, slot, sysfs::dev_group()) {
            Ok(d) => cfg.member_dirs[slot as usize] = Some(d),
            Err(e) => pr_warn!(
                "{}: no sysfs directory for {}: {:?}\n",
                self.name_str(),
                m.name(),
                e
            ),
        }
    }

    /// Would adding `member` stack this array on itself (directly, or
    /// through further fr1 arrays)?
    fn would_loop(&self, member: &Member) -> bool {
        let Some(first) = member.disk_owner::<Array>() else {
            return false;
        };
        // Other arrays' members are read through their slots (not their
        // `config`, which would nest two locks of one class).
        let mut stack = KVec::new();
        if stack.push(first, GFP_KERNEL).is_err() {
            return true;
        }
        let mut visited = 0;
        while let Some(a) = stack.pop() {
            if core::ptr::eq(&*a, self) {
                return true;
            }
            visited += 1;
            if visited > 64 {
                return true;
            }
            for i in 0..MAX_MIRRORS {
                let Some(m) = a.slot_get_present(i) else {
                    continue;
                };
                let inner = m.disk_owner::<Array>();
                drop(m);
                if let Some(inner) = inner {
                    if stack.push(inner, GFP_KERNEL).is_err() {
                        return true;
                    }
                }
            }
        }
        false
    }

    fn run(self: &Arc<Self>) -> Result {
        let mut cfg = self.config.lock();
        match cfg.phase {
            Phase::Configured => {}
            Phase::Running => return Err(EBUSY),
            Phase::Empty | Phase::Stopped => return Err(EINVAL),
        }
        let g = cfg.geometry.ok_or(EINVAL)?;
        let st = self.state();
        if st.active() == 0 {
            return Err(EINVAL);
        }
        let mut sectors = g.member_sectors;
        if sectors == 0 {
            sectors = (0..g.raid_disks)
                .filter_map(|i| self.slot_get_present(i))
                .map(|m| m.sectors())
                .min()
                .unwrap_or(0);
        }
        if sectors == 0 {
            return Err(EINVAL);
        }
        let blocks = sectors.div_ceil(1 << g.block_shift);
        let mut maps = KVec::with_capacity(g.raid_disks as usize, GFP_KERNEL)?;
        for slot in 0..g.raid_disks {
            let bm = crate::sys::nodes::new_bitmap(blocks)?;
            if st.present(slot) && !st.in_sync(slot) {
                // Added without MD_DISK_SYNC: nothing of it is known good.
                // SAFETY: The bitmap was just made and is not shared yet.
                unsafe { bm.set_all() };
            }
            maps.push(bm, GFP_KERNEL)?;
            self.slot[slot as usize]
                .tracking
                .store(st.present(slot), Ordering::SeqCst);
        }
        if !self.bitmaps.populate(maps) {
            return Err(EBUSY);
        }
        self.restack_limits(&cfg)?;
        if let Some(d) = cfg.disk.as_ref() {
            d.set_capacity(sectors);
        }
        cfg.sectors = sectors;
        self.sectors.store(sectors, Ordering::SeqCst);
        self.resync_pending
            .store(!g.clean && st.active() > 1, Ordering::SeqCst);
        self.running.store(true, Ordering::SeqCst);
        cfg.phase = Phase::Running;
        crate::registry::new_event();
        // A recovery first (the sync thread then runs a pending initial
        // resync too, see `SyncJob`).
        if self.needs_recovery() {
            self.start_sync(&mut cfg, Mode::Recover)?;
        } else if self.resync_pending.load(Ordering::SeqCst) {
            self.start_sync(&mut cfg, Mode::Resync)?;
        }
        pr_info!(
            "{}: running with {} of {} mirrors, {} KiB{}\n",
            self.log_prefix(),
            st.active(),
            g.raid_disks,
            sectors / 2,
            if self.resync_pending.load(Ordering::Relaxed) {
                " (not clean: resyncing from the first mirror, which serves all reads meanwhile)"
            } else {
                ""
            }
        );
        Ok(())
    }

    /// Stacks the limits of the working members onto the queue.
    fn restack_limits(&self, cfg: &Config) -> Result {
        let st = self.state();
        let disk = cfg.disk.as_ref().ok_or(ENODEV)?;
        disk.stack_limits(
            (0..MAX_MIRRORS)
                .filter(|&i| st.writable(i))
                .filter_map(|i| self.slot_get_present(i)),
        )
    }

    /// Marks a member faulty. From a completion (`from_io`) the error is
    /// recorded and logged; the last in-sync member is never failed.
    fn fail_slot(&self, slot: u32, reason: &str) -> core::result::Result<(), FailError> {
        self.fail_slot_as(slot, reason, true)
    }

    /// [`Array::fail_slot`] by the admin's request: the leg is not probed
    /// for an automatic re-add (`array/probe.rs`).
    fn fail_slot_requested(&self, slot: u32, reason: &str) -> core::result::Result<(), FailError> {
        self.fail_slot_as(slot, reason, false)
    }

    fn fail_slot_as(
        &self,
        slot: u32,
        reason: &str,
        probe: bool,
    ) -> core::result::Result<(), FailError> {
        // Before the leg misses its first write (see `array/resync.rs`).
        self.note_misses(slot);
        let st = self.update_state(|s| s.fail(slot)).inspect_err(|e| {
            // Failed by request when it had failed by itself: the admin
            // wants it out, no automatic re-add.
            if !probe && *e == FailError::AlreadyFaulty {
                if let Some(s) = self.slot.get(slot as usize) {
                    s.probing.store(false, Ordering::Relaxed);
                }
            }
        })?;
        if let Some(s) = self.slot.get(slot as usize) {
            s.probing.store(probe, Ordering::Relaxed);
        }
        if probe {
            if let Some(s) = self.slot.get(slot as usize) {
                s.probe_fails.store(0, Ordering::Relaxed);
            }
            self.queue_probe();
        }
        self.remember_member(slot);
        crate::registry::new_event();
        // Through a counted slot reference: a concurrent HOT_REMOVE may take
        // the member out right after the state change above.
        let name = self.slot_name(slot);
        let raid_disks = self.raid_disks.load(Ordering::Relaxed);
        pr_err!(
            "{}: {} faulty ({}), operation continuing on {} of {} mirrors\n",
            self.log_prefix(),
            name.as_str(),
            reason,
            st.active(),
            raid_disks
        );
        Ok(())
    }

    /// The member in `slot` left the in-sync set: its bitmap records what
    /// it misses from now on, for a later re-add of the same device.
    fn remember_member(&self, slot: u32) {
        let Some(s) = self.slot.get(slot as usize) else {
            return;
        };
        if let Some(m) = self.slot_get_present(slot) {
            s.saved_dev.store(m.dev().to_kdev(), Ordering::SeqCst);
            s.saved_write_mostly
                .store(self.state().write_mostly(slot), Ordering::Relaxed);
        }
        s.tracking.store(true, Ordering::SeqCst);
    }

    fn set_disk_faulty(&self, dev: DevNum) -> Result {
        let cfg = self.config.lock();
        if cfg.phase != Phase::Running && cfg.phase != Phase::Configured {
            return Err(ENODEV);
        }
        let slot = self.slot_of_dev(dev).ok_or(ENODEV)?;
        match self.fail_slot_requested(slot, "set faulty by request") {
            Ok(()) | Err(FailError::AlreadyFaulty) => Ok(()),
            Err(FailError::LastInSync) => Err(EBUSY),
            Err(FailError::Empty) => Err(ENODEV),
        }
    }

    fn hot_remove(self: &Arc<Self>, dev: DevNum) -> Result {
        let mut cfg = self.config.lock();
        if cfg.phase == Phase::Empty || cfg.phase == Phase::Stopped {
            return Err(ENODEV);
        }
        let Some(slot) = self.slot_of_dev(dev) else {
            // A member fr1 let go of by itself (`array/probe.rs`): removed
            // already; the removal ends the probing.
            let kdev = dev.to_kdev();
            let st = self.state();
            return match self.slot.iter().enumerate().find(|(i, s)| {
                !st.present(*i as u32)
                    && s.probing.load(Ordering::Relaxed)
                    && s.saved_dev.load(Ordering::SeqCst) == kdev
            }) {
                Some((_, s)) => {
                    s.probing.store(false, Ordering::Relaxed);
                    Ok(())
                }
                None => Err(ENXIO),
            };
        };
        self.remember_member(slot);
        // Removed by request: no automatic re-add.
        self.slot[slot as usize]
            .probing
            .store(false, Ordering::Relaxed);
        let member = match self.detach_slot(&mut cfg, slot, false) {
            Ok(m) => m,
            Err(e) => {
                // The member was put back (EBUSY). A sync thread that saw
                // it gone meanwhile may have ended: announce and restart a
                // recovery still owed, so it is never left waiting idle.
                if cfg.phase == Phase::Running
                    && self.needs_recovery()
                    && self.sync.mode().is_none()
                {
                    let _ = self.start_sync(&mut cfg, Mode::Recover);
                }
                return Err(e);
            }
        };
        pr_info!(
            "{}: removed {} from slot {}\n",
            self.log_prefix(),
            member.name(),
            slot
        );
        crate::registry::new_event();
        drop(member);
        if cfg.phase == Phase::Running {
            self.restack_limits(&cfg)?;
        }
        Ok(())
    }

    /// Takes a non-readable member out of its slot (md's EBUSY rules).
    /// `keep_dir`: the same device comes back into the slot at once (its
    /// md/dev-<name>/ stays: it may be the very directory being written).
    fn detach_slot(&self, cfg: &mut Config, slot: u32, keep_dir: bool) -> Result<KBox<Member>> {
        let before = self.state();
        self.update_state(|s| s.detach(slot)).map_err(to_error)?;
        let s = &self.slot[slot as usize];
        let taken = s.member.take();
        if matches!(taken, Err(e) if e == EBUSY) {
            // Bios still on it: put it back; md answers EBUSY and mdadm retries.
            let _ = self.update_state(|st| {
                st.attach(slot, false, before.write_mostly(slot))
                    .and_then(|st| {
                        if before.faulty(slot) {
                            st.fail(slot).map_err(|_| Errno::Busy)
                        } else {
                            Ok(st)
                        }
                    })
            });
            return Err(EBUSY);
        }
        let member = taken?;
        // Its sysfs directory links to the device: it goes first.
        if !keep_dir {
            cfg.member_dirs[slot as usize] = None;
        }
        Ok(member)
    }

    fn stop(&self) -> Result {
        let mut cfg = self.config.lock();
        if cfg.phase == Phase::Stopped {
            return Err(ENODEV);
        }
        // The caller holds one open; anyone else (a mount, another process)
        // makes it busy, as in md.
        if self.openers.load(Ordering::SeqCst) > 1 {
            return Err(EBUSY);
        }
        self.teardown(&mut cfg, true);
        drop(cfg);
        self.flush_work(false);
        crate::registry::remove(self);
        pr_info!(
            "{}: stopped ({} writes missed a member)\n",
            self.log_prefix(),
            self.missed_writes.load(Ordering::Relaxed)
        );
        Ok(())
    }

    /// Module unload: arrays are idle (an open array pins the module).
    pub(crate) fn stop_for_unload(&self) {
        let mut cfg = self.config.lock();
        if cfg.phase != Phase::Stopped {
            self.teardown(&mut cfg, false);
        }
        drop(cfg);
        self.flush_work(true);
    }

    /// After the drain: no work item of the array is queued or running any
    /// more (they see the array stopped and return). Without `config`
    /// held: the catch-up takes it. A probe may be stuck in a read of a
    /// leg that does not answer: `stop` cancels a queued one and leaves a
    /// running one to end by itself (it holds the array and a module
    /// reference, `array/probe.rs`); only unload (`unload`, when no probe
    /// runs: it would hold the module) flushes it too.
    fn flush_work(&self, unload: bool) {
        crate::sys::work::flush(&self.retry_work);
        crate::sys::work::flush(&self.zero_fill_work);
        crate::sys::work::flush_delayed(&self.catch_up_work);
        // The watch may queue the probe (a leg it fails): first.
        crate::sys::work::flush_delayed(&self.watch_work);
        // A leg's submit work may sleep in a submission to a stalled leg as
        // long as the probe: it is never waited for here (it holds only its
        // submitter; its clones count in the drain, or in a lingering
        // array's I/O; at unload the leg queue's destruction waits for it).
        if unload {
            crate::sys::work::flush_delayed(&self.probe_work);
        } else {
            let _ = crate::sys::work::cancel_delayed_arc::<Array, { probe::PROBE_WORK }>(
                &crate::sys::bio::CloneOwner::arc(self),
            );
        }
    }

    /// Drains I/O, releases the members and deletes the disk (md's order:
    /// members are unbound, and their holder links removed, while the disk
    /// is still registered).
    /// `may_linger`: behind writes on a stalled leg may outlive the stop
    /// (`array/linger.rs`; not at unload).
    fn teardown(&self, cfg: &mut Config, may_linger: bool) {
        // The resync thread sees the request between two copies and exits;
        // what it did not copy stays dirty.
        if let Some(t) = cfg.resync.take() {
            t.stop();
        }
        self.sync.clear();
        // Removing md/ waits for running show/store handlers (they never
        // block on `config`).
        for d in cfg.member_dirs.iter_mut() {
            *d = None;
        }
        cfg.md_dir = None;
        // New bios fail from here on; the bios already in the data path
        // counted themselves in `inflight` before they checked `running`.
        self.running.store(false, Ordering::SeqCst);
        self.stopped.store(true, Ordering::SeqCst);
        cfg.phase = Phase::Stopped;
        // Drop the "alive" count; the last master completion wakes us.
        let mut linger = false;
        if self.inflight.fetch_sub(1, Ordering::SeqCst) != 1 {
            if may_linger {
                linger = self.drain_for_stop();
            } else {
                self.drained.wait();
            }
        }
        self.slots.store(0, Ordering::SeqCst);
        if linger {
            self.linger();
        } else {
            // No I/O is in flight (drained above) and no new bio reaches a
            // member; only another array's inspection (`would_loop`) may
            // still hold a reference for a moment.
            for slot in 0..MAX_MIRRORS {
                drop(self.take_member(slot));
            }
        }
        if let Some(d) = cfg.disk.as_mut() {
            d.del();
        }
        // Dropping the disk puts fr1's reference; the block layer frees it
        // (and this array) when the last opener closes.
        cfg.disk = None;
        crate::registry::new_event();
    }

    /// Records, before the upper bio completes, that the slots in
    /// `missed` (a bit mask) did not get the write of `sectors` at `sector`:
    /// their dirty bitmaps mark the blocks.
    fn record_missed_write(&self, missed: u32, sector: u64, sectors: u64) {
        self.missed_writes.fetch_add(1, Ordering::Relaxed);
        let Some(maps) = self.bitmaps.as_ref() else {
            return;
        };
        let shift = self.block_shift.load(Ordering::Relaxed);
        let first = sector >> shift;
        // Blocks are a power of two of sectors: a shift, not a division.
        let end = (sector + sectors.max(1) + (1 << shift) - 1) >> shift;
        for (slot, bm) in maps.iter().enumerate() {
            if missed & (1 << slot) != 0 && self.slot[slot].tracking.load(Ordering::SeqCst) {
                // Pairs with the sync thread's fence after a clear: if that
                // clear missed the change that made this write miss the
                // member, this `set` sees the cleared entry (a coarse one
                // included, which `set` only reads).
                core::sync::atomic::fence(Ordering::SeqCst);
                bm.set(first, end - first);
            }
        }
    }
}

impl DiskOps for Array {
    fn vtable() -> &'static DiskVtable<Self> {
        static VTABLE: DiskVtable<Array> = DiskVtable::new();
        &VTABLE
    }

    fn submit_bio(&self, bio: crate::sys::bio::Bio) {
        Array::submit_bio(self, bio)
    }

    fn open(&self) -> Result {
        Array::open(self)
    }

    fn release(&self) {
        Array::release(self)
    }

    fn ioctl(this: &Arc<Self>, cmd: u32, arg: usize) -> Result<i32> {
        ioctl::dispatch(this, cmd, arg)
    }
}

/// Maps fr1's logic errors to kernel errors.
pub(crate) fn to_error(e: Errno) -> Error {
    match e {
        Errno::Inval => EINVAL,
        Errno::Busy => EBUSY,
        Errno::NxIo => ENXIO,
        Errno::NoTty => ENOTTY,
    }
}
