// SPDX-License-Identifier: GPL-2.0

//! Automatic incremental re-add: a leg that failed by itself (an I/O error,
//! a stall) and that fr1 still holds open is probed until it answers, then
//! re-added through the same path as `mdadm --re-add` (identity sample,
//! dirty blocks only). A network leg's brownout so ends without an operator.
//!
//! Protocol (probes):
//!
//! - `Array::fail_slot` (any context, completions included) marks the slot
//!   `probing` and queues the probe work, a delayed work on fr1's leg queue,
//!   `md/fr1_probe_ms` later (0: never; md's manual behaviour). A leg failed
//!   by request (`mdadm --fail`, `dev-*/state` faulty) is not probed: the
//!   admin wants it out. Installing a member in the slot (any add or
//!   re-add) clears `probing`; so does a removal by request.
//! - The probe (process context) looks at every probing slot without
//!   `config`. It opens the slot's device itself (the failed member still
//!   in the slot, or the device fr1 let go of there) and reads a few of its
//!   blocks (first, middle, last) synchronously, through that handle: a
//!   read that hangs pins no slot reference, so a removal or `stop` is not
//!   held up by it. If they answer, `Array::readd_probed` re-adds the
//!   device: under `config` it checks that the slot still probes (no
//!   removal, failure by request or other add came first) and still holds
//!   that failed device (or had it when fr1 let go), replaces the failed
//!   member (write-mostly as it was) and resyncs incrementally, or fully if
//!   the identity sample says a different disk answers there.
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
//!   engine's own timeout (nbd-client `-t`, NVMe's I/O timeout; with NBD's
//!   default of 0, until the server answers or the client is
//!   disconnected): the probe runs on fr1's leg queue, holds a module
//!   reference while it runs (`rmmod` answers "in use"; unload waits for
//!   the queue, `sys::work`; a run that starts after an unload found the
//!   module unused takes none and returns at once, `try_module_get`, so
//!   unload never waits for a read) and the array (an `Arc`), so `stop`
//!   only cancels a queued probe and never waits for a running one. The probe
//!   returns at once when the array is not running, and requeues itself
//!   only under `config` while it is: `stop` sets the phase under `config`
//!   before it cancels the probe, so nothing is queued after it.
//!   A leg that fails again soon after each automatic re-add is probed
//!   less and less often (the interval doubles per re-add, up to 64 times,
//!   until it reaches in sync).
//!
//! Protocol (stalled legs):
//!
//! - A leg whose behind writes stop landing cannot slow the array (it goes
//!   behind, `array/behind.rs`), but it must not stay half-alive forever
//!   either: the stall watch, a delayed work on fr1's queue, queued when a
//!   leg's first behind write starts on an idle leg (`behind_start`, any
//!   context), looks every quarter of `md/fr1_stall_ms` (at most every
//!   second) at how long each leg with behind writes in flight has landed
//!   none (`Array::stalled_ms`: since its last behind write ended, or since
//!   the oldest in flight started if that is later). Longer than the limit
//!   fails the leg (`fail_slot`: `(F)`, the reason in dmesg, a probe
//!   queued); the watch requeues itself while a working leg has behind
//!   writes in flight. 0 turns it off. A leg that is slow but lands writes
//!   is not stalled, however deep its queue: it goes behind on age
//!   (`md/fr1_behind_max_ms`, `array/behind.rs`) and drains.
//! - The writes still in flight on a failed leg stay in `flights` until
//!   they end (a read, a resync copy and a re-add wait for or avoid them,
//!   as for any behind write); one that fails later records its range.
//!
//! Order: probe -> `config` (in `hot_add`), never the other way round;
//! nothing waits for the probe but unload's flush, and nothing for the
//! watch but `stop`'s flush, which hold no lock.

use core::sync::atomic::Ordering;
use kernel::{prelude::*, sync::Arc, time::msecs_to_jiffies, workqueue::WorkItem};

use super::{slot::NameBuf, Array, Phase};
use crate::logic::abi::{DevNum, MAX_MIRRORS};
use crate::sys::bio::{CloneOwner, PageBuf};
use crate::sys::member::Member;

/// The work item ID of the probe.
pub(crate) const PROBE_WORK: u64 = 3;

/// The work item ID of the stall watch.
pub(crate) const WATCH_WORK: u64 = 4;

/// Default of `md/fr1_stall_ms`: a leg with behind writes in flight that
/// lands none for this long fails (the block layer's default I/O timeout, also NBD's).
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
        // A stopped array queues nothing (`array/linger.rs`).
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
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
        let _ = crate::sys::work::leg_queue().enqueue_delayed::<Arc<Array>, PROBE_WORK>(
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
            // The failed member still in the slot, or the device fr1 let go
            // of there. (A working member in a probing slot is being
            // installed: the install clears `probing`.)
            let present = st.present(slot);
            let dev = if present {
                if !st.faulty(slot) {
                    continue;
                }
                let Some(m) = self.slot_get_present(slot) else {
                    again = true;
                    continue;
                };
                m.dev()
            } else {
                match s.saved_dev.load(Ordering::SeqCst) {
                    0 => continue,
                    kdev => DevNum::from_kdev(kdev),
                }
            };
            // Through a handle of its own, not the slot's reference: a read
            // that hangs must not pin the slot (a removal, `stop`).
            let Some(name) = self.probe_dev(dev) else {
                if present && s.probe_fails.fetch_add(1, Ordering::Relaxed) + 1 >= LET_GO_PROBES {
                    self.let_go(slot, dev);
                }
                again = true;
                continue;
            };
            pr_info!(
                "{}: {} answers again: re-adding it\n",
                self.log_prefix(),
                name.as_str()
            );
            match self.readd_probed(slot, dev) {
                Ok(()) => {
                    s.auto_readds.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    pr_warn!(
                        "{}: automatic re-add of {} failed ({:?})\n",
                        self.log_prefix(),
                        name.as_str(),
                        e
                    );
                    again |= s.probing.load(Ordering::Relaxed);
                }
            }
        }
        // Under `config`: `stop` changes the phase under it before it
        // cancels the probe, so no probe is queued after that.
        let cfg = self.config.lock();
        if again && cfg.phase == Phase::Running {
            self.queue_probe();
        }
    }

    /// Opens `dev` and reads its probe blocks: its name if they answered
    /// (the whole device is there again).
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
            // Bios still on it: next time. A sync thread that saw the
            // member gone meanwhile may have ended (as in `hot_remove`).
            if self.needs_recovery() && self.sync.mode().is_none() {
                let _ = self.start_sync(&mut cfg, super::Mode::Recover);
            }
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
        // A stopped array queues nothing (`array/linger.rs`).
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        let ms = self.stall_ms.load(Ordering::Relaxed);
        if ms == 0 {
            return;
        }
        let _ = crate::sys::work::queue().enqueue_delayed::<Arc<Array>, WATCH_WORK>(
            CloneOwner::arc(self),
            msecs_to_jiffies((ms / 4).clamp(1, 1000)),
        );
    }

    /// Fails the working legs that have landed no behind write in flight
    /// for longer than `md/fr1_stall_ms` (see the protocol).
    fn watch(self: &Arc<Self>) {
        // Under `config` throughout (it never blocks): `stop` changes the
        // phase under it before it flushes the watch and the probe, so
        // neither is queued after those flushes.
        let cfg = self.config.lock();
        if cfg.phase != Phase::Running {
            return;
        }
        let limit = self.stall_ms.load(Ordering::Relaxed);
        if limit == 0 {
            return;
        }
        let mut again = false;
        for slot in 0..MAX_MIRRORS {
            let Some(age_ms) = self.stalled_ms(slot) else {
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
                format_args!("stalled: no write landed for {age_ms} ms"),
            );
            // The last in-sync copy is kept: looked at again next time.
            again |= self.fail_slot(slot, why.as_str()).is_err();
        }
        if again {
            self.queue_watch();
        }
        drop(cfg);
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
        // A read of a leg that does not answer may hold the probe past the
        // array's stop: meanwhile the module is in use (unload would wait
        // for fr1's workqueues, `sys::work`). Taken only while no unload has
        // begun: one that found the module unused before this run started
        // stops the array next, and must not wait for a stuck read.
        let Some(module) = crate::sys::module::ModuleRef::try_get() else {
            return;
        };
        this.probe();
        drop(this);
        drop(module);
    }
}
