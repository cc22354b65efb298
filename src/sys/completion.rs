// SPDX-License-Identifier: GPL-2.0

//! A completion with a bounded wait, which 7.3's `kernel::sync::Completion`
//! lacks.
//!
//! C header: [`include/linux/completion.h`](srctree/include/linux/completion.h)

use kernel::{bindings, prelude::*, time::msecs_to_jiffies, types::Opaque};

/// A `struct completion` that is only ever completed for all waiters.
#[pin_data]
pub(crate) struct Completion {
    #[pin]
    inner: Opaque<bindings::completion>,
}

// SAFETY: A completion may be completed and waited for from any thread.
unsafe impl Send for Completion {}
// SAFETY: As above.
unsafe impl Sync for Completion {}

impl Completion {
    /// An initialiser of a completion not yet done.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            inner <- Opaque::ffi_init(|slot: *mut bindings::completion| {
                // SAFETY: `slot` points to an uninitialised `struct completion`.
                unsafe { bindings::init_completion(slot) };
            }),
        })
    }

    /// Done for every waiter, now and later (any context).
    pub(crate) fn complete_all(&self) {
        // SAFETY: `inner` is an initialised completion.
        unsafe { bindings::complete_all(self.inner.get()) };
    }

    /// Sleeps until done or `ms` passed (process context): true if done.
    pub(crate) fn wait_ms(&self, ms: u32) -> bool {
        // SAFETY: `inner` is an initialised completion.
        unsafe {
            bindings::wait_for_completion_timeout(self.inner.get(), msecs_to_jiffies(ms)) != 0
        }
    }

    /// Sleeps until done (process context).
    pub(crate) fn wait(&self) {
        // SAFETY: `inner` is an initialised completion.
        unsafe { bindings::wait_for_completion(self.inner.get()) };
    }
}
