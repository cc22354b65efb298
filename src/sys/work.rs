// SPDX-License-Identifier: GPL-2.0

//! What the 7.3 `kernel::workqueue` lacks: waiting for a work item.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)

use kernel::{
    bindings,
    workqueue::{DelayedWork, Work},
};

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
