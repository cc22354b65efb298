// SPDX-License-Identifier: GPL-2.0

//! A stop that a stalled leg cannot hold up: the array lingers, unseen,
//! until the behind writes still on that leg end.
//!
//! Protocol (lingering after stop):
//!
//! - `stop` (process context, under `config`, the disk still registered)
//!   drains the array's I/O ([`Array::drain_for_stop`]). It waits as long
//!   as any master bio other than a behind copy is in flight
//!   (`user_masters`: counted from `submit_bio` to the master's end; a
//!   behind copy's group is started only by a write still counted there), and as long
//!   as a leg with behind writes in flight still answers: none of them is
//!   older than `md/fr1_stall_ms`, the array's bound for a leg to answer.
//!   (Stricter than the stall watch's "landed nothing for the limit",
//!   `array/probe.rs`: a slow leg with a deep queue may drain behind while
//!   the array runs, but it does not hold a stop up for longer than the
//!   limit.)
//!   A leg whose oldest behind write is older (or that failed already)
//!   holds it up no longer: it is failed ("stalled at stop"), and if
//!   behind writes are all that is left, the array lingers. (0 turns the
//!   bound off: stop then waits for every write, as md does.)
//! - Lingering, `stop` releases the members with no bio on them, removes
//!   the holder links of those that still have bios (while the disk is
//!   registered, md's order), then publishes, in this order, a module
//!   reference (`rmmod` answers "in use" meanwhile), a reference of the
//!   array to itself (`reap_self`) and `lingering` (SeqCst); then it looks
//!   at `inflight` again. The last master completion (interrupt context,
//!   `Array::end_any_master`) decrements `inflight` (SeqCst), then reads
//!   `lingering`, and takes `reap_self` *before* it completes `drained`:
//!   `stop` returns only through `drained`, after which an array that does
//!   not linger may be freed at once. So at least one of the two sees the other; whichever
//!   takes `reap_self` out first (a spinlock of its own) reaps: `stop` at once,
//!   the completion by queueing the reap work ([`REAP_WORK`], fr1's
//!   workqueue, process context). `stop` goes on to delete the disk either
//!   way; the reap work never touches the disk or a holder link.
//! - Late completions queue no work: the catch-up, the probe and the
//!   watch are not queued once `stopped` is set (before the drain), and
//!   `stop` flushes (or cancels) what was queued before. A completion
//!   that read `stopped` just before it was set may still arm a timer
//!   after that flush; but every completion queues its work before it
//!   drops its master count (`clone_done`, with `behind_leg_end`, before
//!   `group_done`), so all of them are queued
//!   when the last one queues the reap, and the reap cancels their
//!   timers (`cancel_delayed_work`, which also takes an item off the
//!   queue if its timer fired; not waiting: a flush from fr1's own queue
//!   could hang on a probe stuck in a read) before it lets the module go.
//!   So no timer of the array is armed then (the queue's destruction at
//!   unload waits for queued and running items, not for a timer); an item
//!   already running finds the array stopped, never requeues itself (they
//!   do only while it runs) and is drained by unload. The reap takes the
//!   members out of their slots (their last clone
//!   completions released their references right after they ended their
//!   groups), releases them, drops the array's reference to itself (the
//!   array may be freed here), and puts the module reference last: module
//!   unload waits for fr1's workqueues, so the reap's own code is never
//!   freed under it (`sys::work`).
//! - Meanwhile the late completions do what any behind write's completion
//!   does (flights, counters, a failed write recorded in the bitmap); the
//!   work they may queue (catch-up, probe, watch) finds the array stopped
//!   and returns. Nothing of the array is visible any more: its minor may
//!   be taken by a new array, whose `open` of the stalled leg gets `EBUSY`
//!   until the reap released it (the old array still holds it exclusively).
//! - Module unload never lingers: an array it stops (idle, unopened) is
//!   drained in full, since nothing could hold the module afterwards.
//!
//! Order: `config` (held by `stop`) -> `reap_self`'s lock; completions
//! take only that lock.

use core::sync::atomic::Ordering;
use kernel::{prelude::*, sync::Arc, workqueue::WorkItem};

use super::Array;
use crate::logic::abi::MAX_MIRRORS;
use crate::sys::bio::CloneOwner;
use crate::sys::module::ModuleRef;

/// The work item ID of the reap.
pub(crate) const REAP_WORK: u64 = 5;

/// Longest single wait of the drain (ms) while something other than a
/// behind write is in flight: the drain then looks again at the legs.
const DRAIN_LOOK_MS: u32 = 1000;

impl Array {
    /// Waits for the I/O of a stopping array (the "alive" count is already
    /// dropped): true if it is to linger, with behind writes in flight on
    /// legs that stalled (see the protocol); false once all I/O ended.
    pub(super) fn drain_for_stop(&self) -> bool {
        let limit = self.stall_ms.load(Ordering::Relaxed);
        if limit == 0 {
            self.drained.wait();
            return false;
        }
        let mut wait_ms = 1u32;
        loop {
            // Only through `drained`: the last completion's wake-up is its
            // last access to the array.
            if self.drained.wait_ms(wait_ms.max(1)) {
                return false;
            }
            // No master but behind copies is left (a user write in flight
            // may still start some: it counts in `user_masters` until it
            // ended), and every leg that still has some is stalled or
            // failed: linger.
            let only_behind = self.user_masters.load(Ordering::SeqCst) == 0;
            let mut next_ms = DRAIN_LOOK_MS;
            let mut answering = false;
            for slot in 0..MAX_MIRRORS {
                let Some(age_ms) = self.behind_age_ms(slot) else {
                    continue;
                };
                if self.state().faulty(slot) {
                    continue;
                }
                if age_ms < u64::from(limit) {
                    answering = true;
                    next_ms = next_ms.min((u64::from(limit) - age_ms) as u32);
                    continue;
                }
                let mut why = crate::logic::fmtbuf::FixedStr::<64>::default();
                let _ = core::fmt::Write::write_fmt(
                    &mut why,
                    format_args!("stalled at stop: a write in flight for {age_ms} ms"),
                );
                let _ = self.fail_slot_requested(slot, why.as_str());
            }
            if only_behind && !answering && self.behind.writes.load(Ordering::SeqCst) > 0 {
                return true;
            }
            wait_ms = next_ms.max(1);
        }
    }

    /// `stop` lingers (see the protocol): the members without bios go, the
    /// others are unlinked from the disk and left to the reap.
    pub(super) fn linger(&self) {
        for slot in 0..MAX_MIRRORS {
            let s = &self.slot[slot as usize];
            match s.member.take() {
                Ok(m) => drop(m),
                Err(e) if e == EBUSY => s.member.unlink_member(),
                Err(_) => {}
            }
        }
        *self.reap_module.lock() = Some(ModuleRef::get());
        *self.reap_self.lock() = Some(CloneOwner::arc(self));
        self.lingering.store(true, Ordering::SeqCst);
        pr_warn!(
            "{}: behind writes still in flight on a stalled leg ({} writes, {} bytes): the leg stays open until they end\n",
            self.log_prefix(),
            self.behind.writes.load(Ordering::Relaxed),
            self.behind.bytes.load(Ordering::Relaxed)
        );
        if self.inflight.load(Ordering::SeqCst) == 0 {
            let me = self.reap_self.lock().take();
            if me.is_some() {
                // The last completion may still be on its way to
                // `drained`: it ends there.
                self.drained.wait();
                self.reap_members();
                let module = self.reap_module.lock().take();
                drop(me);
                drop(module);
            }
        }
    }

    /// The last master completion (any context): the array's reference to
    /// itself if it lingers and the reap is the completion's to queue.
    pub(super) fn lingered_out(&self) -> Option<Arc<Array>> {
        if !self.lingering.load(Ordering::SeqCst) {
            return None;
        }
        self.reap_self.lock().take()
    }

    /// Cancels the array's delayed work items whose timers late
    /// completions may have armed after `stop`'s flush (see the protocol;
    /// any context, waits for nothing).
    fn cancel_timers(self: &Arc<Self>) {
        use crate::sys::work::cancel_delayed_arc;
        let _ = cancel_delayed_arc::<Array, { super::behind::CATCH_UP_WORK }>(self);
        let _ = cancel_delayed_arc::<Array, { super::probe::PROBE_WORK }>(self);
        let _ = cancel_delayed_arc::<Array, { super::probe::WATCH_WORK }>(self);
    }

    /// Releases the members left in the slots (process context).
    fn reap_members(&self) {
        for slot in 0..MAX_MIRRORS {
            if let Ok(m) = self.take_member(slot) {
                pr_info!(
                    "{}: the last behind write on {} ended: released\n",
                    self.log_prefix(),
                    m.name()
                );
                drop(m);
            }
        }
    }
}

impl WorkItem<REAP_WORK> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        this.reap_members();
        this.cancel_timers();
        let module = this.reap_module.lock().take();
        // The array may be freed here; the module reference goes last.
        drop(this);
        drop(module);
    }
}
