// SPDX-License-Identifier: GPL-2.0

//! What user space is told about the sync: the announced mode (see
//! `logic::syncstate`), progress counters and the speed window, and the
//! sync thread that ends an announcement.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::{
    sync::Arc,
    time::{delay::fsleep, Delta},
};

use super::Array;
use crate::logic::mdstat::{SyncAction, SyncProgress, SyncStatus};
use crate::logic::resync as plan;
pub(crate) use crate::logic::syncstate::Mode;
use crate::logic::syncstate::{SyncState, Ticket};
use crate::sys::kthread::{self, ThreadBody};

/// Progress of the announced sync, read by /proc/mdstat and sysfs.
///
/// Which sync runs is `state` (see `logic::syncstate` for its protocol:
/// announced under `config` before the thread starts, ended by the thread
/// after it published its result). The counters below are written by the
/// sync thread only and read without locks; they describe the sync only
/// while `state` announces one.
#[derive(Default)]
pub(crate) struct Progress {
    state: SyncState,
    /// `sync_action` was set to "frozen": no sync starts until "idle".
    pub(crate) frozen: AtomicBool,
    /// Sectors found different by the last check/repair (md's mismatch_cnt).
    pub(crate) mismatches: AtomicU64,
    /// Sectors to copy (the dirty blocks when the copy started); 0 while
    /// the thread has not counted them yet (md's "delayed").
    total: AtomicU64,
    /// Sectors copied.
    done: AtomicU64,
    /// The speed window (md's resync marks): it starts at the older of two
    /// marks taken every [`MARK_STEP_NS`], so it spans 3 to 6 seconds.
    mark_ns: AtomicU64,
    mark_done: AtomicU64,
    next_mark_ns: AtomicU64,
    next_mark_done: AtomicU64,
    /// Bytes copied by every resync of this array (a test-visible counter).
    pub(crate) copied_bytes: AtomicU64,
    /// md's per-array `sync_speed_min`/`sync_speed_max` in KiB/s
    /// (0: the module's `speed_limit_min`/`speed_limit_max`).
    pub(crate) speed_min_local: AtomicU32,
    pub(crate) speed_max_local: AtomicU32,
    /// md 7.3's per-array `sync_io_depth` (0: the module's).
    pub(crate) io_depth_local: AtomicU32,
}

/// How often the speed window moves on.
const MARK_STEP_NS: u64 = 3_000_000_000;

fn now_ns() -> u64 {
    crate::sys::time::monotonic_ns()
}

impl Progress {
    /// Announces a sync in `mode` (control path, under `config`, before the
    /// thread starts): not counted yet.
    pub(crate) fn begin(&self, mode: Mode) -> Ticket {
        self.total.store(0, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        let ticket = self.state.begin(mode);
        crate::registry::new_event();
        ticket
    }

    /// The sync thread counted `total` sectors to go through (per member
    /// for a recovery): the progress bar starts over.
    pub(super) fn count(&self, total: u64) {
        let now = now_ns();
        self.total.store(total.max(1), Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        for (ns, done) in [
            (&self.mark_ns, &self.mark_done),
            (&self.next_mark_ns, &self.next_mark_done),
        ] {
            ns.store(now, Ordering::Relaxed);
            done.store(0, Ordering::Relaxed);
        }
        crate::registry::new_event();
    }

    /// The sync thread of `ticket` finished by itself and published its
    /// result: idle (unless a newer sync was announced).
    fn end(&self, ticket: Ticket) {
        if self.state.end(ticket) {
            crate::registry::new_event();
        }
    }

    /// No sync any more (control path, under `config`, thread stopped).
    pub(crate) fn clear(&self) {
        if self.state.clear() {
            crate::registry::new_event();
        }
    }

    /// Counts `sectors` more as synced.
    pub(super) fn advance(&self, sectors: u64, copied: bool) {
        self.done.fetch_add(sectors, Ordering::Relaxed);
        if copied {
            self.copied_bytes
                .fetch_add(sectors * 512, Ordering::Relaxed);
        }
    }

    /// Moves the speed window on (the sync thread only).
    pub(super) fn tick(&self) {
        let now = now_ns();
        let next = self.next_mark_ns.load(Ordering::Relaxed);
        if now.saturating_sub(next) >= MARK_STEP_NS {
            self.mark_ns.store(next, Ordering::Relaxed);
            self.mark_done.store(
                self.next_mark_done.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            self.next_mark_ns.store(now, Ordering::Relaxed);
            self.next_mark_done
                .store(self.done.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Sectors synced within the speed window, and its length.
    pub(super) fn window(&self) -> (u64, u64) {
        let done = self.done.load(Ordering::Relaxed);
        (
            done.saturating_sub(self.mark_done.load(Ordering::Relaxed)),
            now_ns().saturating_sub(self.mark_ns.load(Ordering::Relaxed)),
        )
    }

    /// The limits in force, KiB/s: md's `speed_min()`/`speed_max()`.
    pub(crate) fn limits(&self) -> (u32, u32) {
        let local = |v: &AtomicU32, system: u32| match v.load(Ordering::Relaxed) {
            0 => system,
            n => n,
        };
        (
            local(&self.speed_min_local, crate::SPEED_LIMIT_MIN.get()),
            local(&self.speed_max_local, crate::SPEED_LIMIT_MAX.get()),
        )
    }

    /// The `sync_io_depth` in force: md's `sync_io_depth()`.
    pub(crate) fn io_depth(&self) -> u32 {
        match self.io_depth_local.load(Ordering::Relaxed) {
            0 => crate::SYNC_IO_DEPTH.get().max(1),
            n => n,
        }
    }

    /// The announced sync, if any.
    pub(crate) fn mode(&self) -> Option<Mode> {
        self.state.mode()
    }

    /// `(done, total)` sectors of the announced sync; total 0: not counted
    /// yet (md's "delayed").
    pub(crate) fn position(&self) -> Option<(u64, u64)> {
        self.mode().map(|_| {
            let total = self.total.load(Ordering::Relaxed);
            (self.done.load(Ordering::Relaxed).min(total), total)
        })
    }

    /// KiB/s over the speed window.
    pub(crate) fn speed(&self) -> u64 {
        let (sectors, ns) = self.window();
        plan::kib_per_s(sectors, (ns / 1000).max(1000))
    }

    /// The mdstat view of the announced sync (`None`: idle): md's
    /// `resync=DELAYED` until the thread counted its work, then the bar.
    pub(crate) fn status(&self) -> Option<SyncStatus> {
        let mode = self.mode()?;
        let (done, total) = self.position()?;
        if total == 0 {
            return Some(SyncStatus::Delayed);
        }
        let (window_sectors, ns) = self.window();
        Some(SyncStatus::Running(SyncProgress {
            action: match mode {
                Mode::Check => SyncAction::Check,
                Mode::Repair => SyncAction::Repair,
                Mode::Resync => SyncAction::Resync,
                Mode::Recover => SyncAction::Recovery,
            },
            done,
            total,
            window_ms: ns / 1_000_000,
            window_sectors,
        }))
    }
}

/// The sync thread: one announced sync (its `ticket`) of one array.
pub(crate) struct SyncJob {
    pub(super) array: Arc<Array>,
    pub(super) mode: Mode,
    pub(super) ticket: Ticket,
}

impl ThreadBody for SyncJob {
    fn run(self: Arc<Self>) {
        let a = &*self.array;
        // No repair-range runs while this thread copies (`array/copyio.rs`).
        // One that runs now ends within a call's range; meanwhile a stop
        // (which joins this thread holding `config`) is not kept waiting.
        let _copying = loop {
            if let Some(g) = a.copy_mutex.try_lock() {
                break g;
            }
            if kthread::should_stop() {
                return;
            }
            fsleep(Delta::from_millis(5));
        };
        match self.mode {
            Mode::Recover => a.resync_all(),
            mode => a.check_all(mode),
        }
        // A recovery may have replaced the initial resync of a not-clean
        // array (a member added meanwhile): it is still owed, run it now.
        if self.mode == Mode::Recover
            && a.resync_pending.load(Ordering::SeqCst)
            && !kthread::should_stop()
            && !a.needs_recovery()
        {
            a.check_all(Mode::Resync);
        }
        // Finished by itself, its result published (members in sync,
        // `resync_pending` cleared): only now may the state say idle. A
        // thread being stopped leaves the state to whoever stops it.
        if !kthread::should_stop() {
            a.sync.end(self.ticket);
        }
    }
}
