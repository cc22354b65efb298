// SPDX-License-Identifier: GPL-2.0

//! What the 7.3 `kernel::workqueue` lacks: waiting for a work item.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)

use kernel::{bindings, workqueue::Work};

/// Waits until `work` is neither queued nor running (`flush_work`; process
/// context; the caller must hold nothing the work item takes). A work item
/// queued again afterwards runs as usual.
pub(crate) fn flush<T: ?Sized, const ID: u64>(work: &Work<T, ID>) {
    // SAFETY: `work` is an initialised work item (a `Work` is only reachable
    // after its `PinInit` ran) and stays pinned while borrowed.
    unsafe { bindings::flush_work(Work::raw_get(work)) };
}
