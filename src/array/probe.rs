// SPDX-License-Identifier: GPL-2.0

//! Automatic incremental re-add: a leg that failed by itself (an I/O error,
//! a stall) and that fr1 still holds open is probed until it answers, then
//! re-added through the same path as `mdadm --re-add` (identity sample,
//! dirty blocks only). A network leg's brownout so ends without an operator.
//!
//! Protocol (probes):
//!
//! - `Array::fail_slot` (any context, completions included) marks the slot
//!   `probing` and queues the probe work, a delayed work on `system_long`,
//!   `md/fr1_probe_ms` later (0: never; md's manual behaviour). A leg failed
//!   by request (`mdadm --fail`, `dev-*/state` faulty) is not probed: the
//!   admin wants it out. Installing a member in the slot (any add or
//!   re-add) clears `probing`; so does a removal by request.
//! - The probe (process context) looks at every probing slot without
//!   `config`. While the failed member is still in its slot it reads a few
//!   blocks of it (first, middle, last) through a counted slot reference,
//!   synchronously. If they answer, the device is re-added with
//!   `Array::hot_add_as` (write-mostly as it was), which takes `config`,
//!   replaces the failed member (a removal or re-add that raced the probe
//!   makes it fail harmlessly: ENODEV or EBUSY) and resyncs incrementally,
//!   or fully if the identity sample says a different disk answers there.
//! - If they do not, [`LET_GO_PROBES`] times in a row, fr1 lets the device
//!   go (under `config`, as a removal: refused with EBUSY while bios are
//!   still on it, then tried again next time), keeping the slot's saved
//!   device and its bitmap (a later `mdadm --remove` of it succeeds and
//!   ends the probing; `--re-add` works as after any removal): an engine that
//!   cannot reconnect a device someone holds open (kernel NBD with
//!   nbd-client) can then be re-attached at the same node. From then on the
//!   probe opens the saved device, reads the same blocks, and re-adds it
//!   when they answer.
//! - A leg that never answers holds the probe in its read until its
//!   engine's own timeout (nbd-client `-t`, NVMe's I/O timeout): the probe
//!   runs on `system_long` for that reason, and `stop` (which flushes it
//!   after its drain) waits for it that long at most. The probe returns at
//!   once when the array is not running, and requeues only while it is.
//!   A leg that fails again soon after each automatic re-add is probed
//!   less and less often (the interval doubles per re-add, up to 64 times,
//!   until it reaches in sync).
//!
//! Protocol (stalled legs):
//!
//! - A leg whose behind writes stop landing cannot slow the array (it goes
//!   behind, `array/behind.rs`), but it must not stay half-alive forever
//!   either: the stall watch, a delayed work on `system_long` queued when a
//!   leg's first behind write starts on an idle leg (`behind_start`, any
//!   context), looks every quarter of `md/fr1_stall_ms` (at most every
//!   second) at each leg's oldest behind write (`SlotBehind::oldest_ns`).
//!   One older than the limit fails its leg (`fail_slot`: `(F)`, the reason
//!   in dmesg, a probe queued); the watch requeues itself while a working
//!   leg has behind writes in flight. 0 turns it off.
//! - The writes still in flight on a failed leg stay in `flights` until
//!   they end (a read, a resync copy and a re-add wait for or avoid them,
//!   as for any behind write); one that fails later records its range.
//!
//! Order: probe -> `config` (in `hot_add`), never the other way round;
//! nothing else waits for the probe or the watch but `stop`'s flush, which
//! holds no lock.

use core::sync::atomic::Ordering;
use kernel::{
    prelude::*,
    sync::Arc,
    time::msecs_to_jiffies,
    workqueue::{self, WorkItem},
};

use super::{slot::NameBuf, Array, Phase};
use crate::logic::abi::{DevNum, MAX_MIRRORS};
use crate::sys::bio::{CloneOwner, PageBuf};
use crate::sys::member::Member;

/// The work item ID of the probe.
pub(crate) const PROBE_WORK: u64 = 3;

/// The work item ID of the stall watch.
pub(crate) const WATCH_WORK: u64 = 4;

/// Default of `md/fr1_stall_ms`: a leg whose oldest behind write is this
/// old fails (the block layer's default I/O timeout, also NBD's).
pub(crate) const DEFAULT_STALL_MS: u32 = 30_000;

/// Default of `md/fr1_probe_ms`: a failed leg is probed this often.
pub(crate) const DEFAULT_PROBE_MS: u32 = 5000;

/// Bytes each probe read covers.
const PROBE_BYTES: usize = 4096;

/// Probes a failed member in its slot must fail in a row before fr1 lets
/// go of it (the admin sees `(F)` that long at least).
pub(crate) const LET_GO_PROBES: u32 = 3;

impl Array {
    /// Queues a probe of the failed legs after `md/fr1_probe_ms` (any
    /// context); nothing if probing is off or one is queued already.
    pub(super) fn queue_probe(&self) {
        let ms = self.probe_ms.load(Ordering::Relaxed);
        if ms == 0 {
            return;
        }
        // The back-off of the leg re-added most often without reaching in
        // sync.
        let readds = self
            .slot
            .iter()
            .filter(|s| s.probing.load(Ordering::Relaxed))
            .map(|s| s.auto_readds.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let ms = u64::from(ms) << readds.min(6);
        let _ = workqueue::system_long().enqueue_delayed::<Arc<Array>, PROBE_WORK>(
            CloneOwner::arc(self),
            msecs_to_jiffies(ms.min(u64::from(u32::MAX)) as u32),
        );
    }

    /// Probes the failed legs; re-adds those that answer, lets go of
    /// those that do not (see the protocol).
    fn probe(self: &Arc<Self>) {
        if self.config.lock().phase != Phase::Running {
            return;
        }
        let mut again = false;
        for slot in 0..MAX_MIRRORS {
            let s = &self.slot[slot as usize];
            if !s.probing.load(Ordering::Relaxed) {
                continue;
            }
            let st = self.state();
            let mut name = self.slot_name(slot);
            let (dev, answers) = if st.present(slot) {
                if !st.faulty(slot) {
                    s.probing.store(false, Ordering::Relaxed);
                    continue;
                }
                let Some((dev, answers)) = self.probe_member(slot) else {
                    again = true;
                    continue;
                };
                if !answers {
                    if s.probe_fails.fetch_add(1, Ordering::Relaxed) + 1 >= LET_GO_PROBES {
                        self.let_go(slot, dev);
                    }
                    again = true;
                    continue;
                }
                (dev, true)
            } else {
                let kdev = s.saved_dev.load(Ordering::SeqCst);
                if kdev == 0 {
                    s.probing.store(false, Ordering::Relaxed);
                    continue;
                }
                let dev = DevNum::from_kdev(kdev);
                match self.probe_dev(dev) {
                    Some(n) => {
                        name = n;
                        (dev, true)
                    }
                    None => (dev, false),
                }
            };
            if !answers {
                again = true;
                continue;
            }
            pr_info!(
                "{}: {} answers again: re-adding it\n",
                self.log_prefix(),
                name.as_str()
            );
            s.auto_readds.fetch_add(1, Ordering::Relaxed);
            let wm = s.saved_write_mostly.load(Ordering::Relaxed);
            if let Err(e) = self.hot_add_as(dev, wm) {
                pr_warn!(
                    "{}: automatic re-add of {} failed ({:?})\n",
                    self.log_prefix(),
                    name.as_str(),
                    e
                );
                again |= s.probing.load(Ordering::Relaxed);
            }
        }
        if again && self.config.lock().phase == Phase::Running {
            self.queue_probe();
        }
    }

    /// Reads the probe blocks of the failed member still in `slot`: its
    /// device and whether they answered, or `None` if the slot emptied or
    /// memory is short.
    fn probe_member(&self, slot: u32) -> Option<(DevNum, bool)> {
        let buf = PageBuf::new(PROBE_BYTES).ok()?;
        let m = self.slot_get_present(slot)?;
        Some((m.dev(), self.probe_reads(&m, &buf)))
    }

    /// Opens `dev` (a device fr1 let go) and reads its probe blocks: its
    /// name if they answered.
    fn probe_dev(&self, dev: DevNum) -> Option<NameBuf> {
        let buf = PageBuf::new(PROBE_BYTES).ok()?;
        let m = Member::open(dev, self).ok()?;
        (m.sectors() >= self.sectors.load(Ordering::Relaxed) && self.probe_reads(&m, &buf))
            .then(|| NameBuf::of(m.name()))
    }

    /// The first, middle and last blocks of `m` can be read.
    fn probe_reads(&self, m: &Member, buf: &PageBuf) -> bool {
        let sectors = (PROBE_BYTES / 512) as u64;
        let last = m.sectors().saturating_sub(sectors);
        [0, last / 2 / sectors * sectors, last]
            .into_iter()
            .all(|sector| self.bioset.sync_io(m, false, sector, sectors, buf))
    }

    /// Lets go of the failed member `dev` in `slot`, which does not answer,
    /// keeping the slot's bitmap for its return (see the protocol).
    fn let_go(self: &Arc<Self>, slot: u32, dev: DevNum) {
        let mut cfg = self.config.lock();
        let st = self.state();
        if cfg.phase != Phase::Running || !st.faulty(slot) || self.slot_of_dev(dev) != Some(slot) {
            return;
        }
        self.remember_member(slot);
        let Ok(member) = self.detach_slot(&mut cfg, slot, false) else {
            // Bios still on it: next time.
            return;
        };
        pr_info!(
            "{}: {} does not answer: let go of it (re-added when it answers again)\n",
            self.log_prefix(),
            member.name()
        );
        crate::registry::new_event();
        drop(member);
        let _ = self.restack_limits(&cfg);
    }
}

impl Array {
    /// Queues the stall watch (any context); nothing if it is off or
    /// queued already.
    pub(super) fn queue_watch(&self) {
        let ms = self.stall_ms.load(Ordering::Relaxed);
        if ms == 0 {
            return;
        }
        let _ = workqueue::system_long().enqueue_delayed::<Arc<Array>, WATCH_WORK>(
            CloneOwner::arc(self),
            msecs_to_jiffies((ms / 4).clamp(1, 1000)),
        );
    }

    /// Fails the working legs whose oldest behind write is older than
    /// `md/fr1_stall_ms` (see the protocol).
    fn watch(self: &Arc<Self>) {
        if self.config.lock().phase != Phase::Running {
            return;
        }
        let limit = self.stall_ms.load(Ordering::Relaxed);
        if limit == 0 {
            return;
        }
        let mut again = false;
        for slot in 0..MAX_MIRRORS {
            let Some(age_ms) = self.behind_age_ms(slot) else {
                continue;
            };
            if !self.state().writable(slot) {
                continue;
            }
            if age_ms < u64::from(limit) {
                again = true;
                continue;
            }
            let mut why = crate::logic::fmtbuf::FixedStr::<64>::default();
            let _ = core::fmt::Write::write_fmt(
                &mut why,
                format_args!("stalled: a write in flight for {age_ms} ms"),
            );
            let _ = self.fail_slot(slot, why.as_str());
        }
        if again {
            self.queue_watch();
        }
    }
}

impl WorkItem<WATCH_WORK> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        this.watch();
    }
}

impl WorkItem<PROBE_WORK> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        this.probe();
    }
}
