// SPDX-License-Identifier: GPL-2.0

//! What the 7.3 `kernel::workqueue` lacks: waiting for a work item, and a
//! workqueue of the module's own.
//!
//! Protocol (fr1's workqueues): every work item of fr1 runs on one of the
//! two queues [`Fr1Queue`] allocates at load and destroys at unload
//! (`destroy_workqueue` drains a queue: it returns only when the last
//! item's function has returned). So a work item may drop the last
//! reference to an array, or the module reference a stopped array held
//! while I/O on a stalled leg outlived it (`array/linger.rs`), and still
//! run module code afterwards: unload cannot free that code before both
//! queues are drained. [`queue`] (with a rescuer, `WQ_MEM_RECLAIM`: read
//! repair, the catch-up, the reap and the stall watch make progress under
//! memory pressure) takes the items that never wait on a leg without end;
//! [`leg_queue`] (no rescuer) takes those that may wait on a leg for as
//! long as it does not answer: the probe (a read) and each leg's deferred
//! submission (`sys::bio::Submitter`). A rescuer runs items one at a time,
//! so on one queue an item stuck on a stalled leg could hold up all
//! others under memory pressure; on `leg_queue` it holds up only what
//! waits there too, and an item without a worker there waits for memory
//! (a deferred behind write ages meanwhile, and the stall watch, on
//! `queue`, fails its leg). Nothing on `queue` flushes an item of
//! `leg_queue` (only `stop` and unload do, from process context outside
//! either queue). Both are valid from load to unload; nothing queues on
//! them after the module's arrays are stopped (their items requeue only
//! while the array runs, and a stopped array's last I/O queued its reap
//! before it put its module reference).
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)

use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::{
    bindings,
    prelude::*,
    sync::Arc,
    workqueue::{DelayedWork, HasDelayedWork, Queue, Work, WorkItem},
};

use super::ffi;

/// fr1's queue with a rescuer while the module is loaded (see the
/// protocol).
static QUEUE: AtomicPtr<bindings::workqueue_struct> = AtomicPtr::new(core::ptr::null_mut());

/// fr1's queue for work that may wait on a leg, while the module is loaded.
static LEG_QUEUE: AtomicPtr<bindings::workqueue_struct> = AtomicPtr::new(core::ptr::null_mut());

/// One of the module's workqueues (unbound; see the protocol).
///
/// # Invariants
///
/// `wq` came from `alloc_workqueue`; it is published in `slot` while this
/// lives, and destroyed (drained) by `drop` after it is unpublished.
pub(crate) struct Fr1Queue {
    wq: NonNull<bindings::workqueue_struct>,
    slot: &'static AtomicPtr<bindings::workqueue_struct>,
}

// SAFETY: A workqueue may be used and destroyed from any thread.
unsafe impl Send for Fr1Queue {}
// SAFETY: As above.
unsafe impl Sync for Fr1Queue {}

impl Fr1Queue {
    /// Allocates the queue of [`queue`] and publishes it (module load,
    /// once).
    pub(crate) fn new() -> Result<Fr1Queue> {
        Self::alloc(c"fr1", true, &QUEUE)
    }

    /// Allocates the queue of [`leg_queue`] and publishes it (module load,
    /// once).
    pub(crate) fn new_leg() -> Result<Fr1Queue> {
        Self::alloc(c"fr1_leg", false, &LEG_QUEUE)
    }

    fn alloc(
        name: &'static CStr,
        reclaim: bool,
        slot: &'static AtomicPtr<bindings::workqueue_struct>,
    ) -> Result<Fr1Queue> {
        // SAFETY: The name is a NUL-terminated string that
        // `alloc_workqueue` copies (its format is "%s").
        let wq = unsafe { ffi::fr1_alloc_workqueue(name.as_char_ptr(), reclaim) };
        let wq = NonNull::new(wq).ok_or(ENOMEM)?;
        slot.store(wq.as_ptr(), Ordering::Release);
        Ok(Fr1Queue { wq, slot })
    }
}

impl Drop for Fr1Queue {
    fn drop(&mut self) {
        self.slot.store(core::ptr::null_mut(), Ordering::Release);
        // SAFETY: By the type invariants `wq` is a live workqueue; it is
        // destroyed once, after it was unpublished.
        unsafe { bindings::destroy_workqueue(self.wq.as_ptr()) };
    }
}

/// The queue published in `slot`, or the system's long queue for a caller
/// that breaks the protocol.
fn published(slot: &AtomicPtr<bindings::workqueue_struct>) -> &'static Queue {
    let wq = slot.load(Ordering::Acquire);
    if wq.is_null() {
        // Not reachable by the protocol; the system queue is still a
        // valid answer for a caller that breaks it.
        pr_warn!("fr1: work queued outside the module's lifetime\n");
        return kernel::workqueue::system_long();
    }
    // SAFETY: A non-null published pointer is the live workqueue of a
    // `Fr1Queue`, which stays until the module unloads; by the protocol no
    // caller holds the reference past that.
    unsafe { Queue::from_raw(wq) }
}

/// fr1's queue with a rescuer (see the protocol). Only called while the
/// module is loaded and its arrays may queue work (from load to the stop
/// of the last array at unload).
pub(crate) fn queue() -> &'static Queue {
    published(&QUEUE)
}

/// fr1's queue for work that may wait on a leg without end (see the
/// protocol); called as [`queue`].
pub(crate) fn leg_queue() -> &'static Queue {
    published(&LEG_QUEUE)
}

/// Cancels `this`'s delayed work item `ID` if its timer or run is pending,
/// without waiting for a run in progress (`cancel_delayed_work`; any
/// context), and drops the reference to `this` the pending run held. True
/// if it was pending.
pub(crate) fn cancel_delayed_arc<T, const ID: u64>(this: &Arc<T>) -> bool
where
    T: HasDelayedWork<T, ID> + WorkItem<ID, Pointer = Arc<T>> + Send + Sync,
{
    let ptr = Arc::as_ptr(this).cast_mut();
    // SAFETY: `ptr` points to the live `T` of `this`.
    let work = unsafe { T::raw_get_work(ptr) };
    // SAFETY: By `HasDelayedWork` the field is the `work` of an
    // initialised, pinned `struct delayed_work`, its first member.
    let cancelled = unsafe { bindings::cancel_delayed_work(work.cast::<bindings::delayed_work>()) };
    if cancelled {
        // SAFETY: Queueing an `Arc<T>` work item leaks one reference
        // (`Arc::into_raw`), which its run takes back; the run was
        // cancelled, so that reference is ours to drop, once.
        drop(unsafe { Arc::from_raw(ptr) });
    }
    cancelled
}

/// Waits until `work` is neither queued nor running (`flush_work`; process
/// context; the caller must hold nothing the work item takes). A work item
/// queued again afterwards runs as usual.
pub(crate) fn flush<T: ?Sized, const ID: u64>(work: &Work<T, ID>) {
    // SAFETY: `work` is an initialised work item (a `Work` is only reachable
    // after its `PinInit` ran) and stays pinned while borrowed.
    unsafe { bindings::flush_work(Work::raw_get(work)) };
}

/// As [`flush`] for a delayed work item: a pending timer is cancelled and
/// the item runs at once (`flush_delayed_work`), then it is waited for.
pub(crate) fn flush_delayed<T: ?Sized, const ID: u64>(work: &DelayedWork<T, ID>) {
    // SAFETY: `DelayedWork` is a transparent wrapper of an initialised,
    // pinned `struct delayed_work`, valid while borrowed.
    unsafe {
        bindings::flush_delayed_work(
            core::ptr::from_ref(work)
                .cast_mut()
                .cast::<bindings::delayed_work>(),
        )
    };
}
