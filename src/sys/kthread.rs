// SPDX-License-Identifier: GPL-2.0

//! Kernel threads (`kthread_create_on_node`, `kthread_stop`).
//!
//! C header: [`include/linux/kthread.h`](srctree/include/linux/kthread.h)

use core::ptr::NonNull;
use kernel::{bindings, prelude::*, sync::Arc};

/// What a thread runs.
pub(crate) trait ThreadBody: Send + Sync + 'static {
    /// The thread's work; return when done or when [`should_stop`] says so.
    fn run(self: Arc<Self>);
}

/// A running (or finished) kernel thread holding an `Arc<T>`.
///
/// # Invariants
///
/// `task` is a kthread created by [`KThread::spawn`] with an extra task
/// reference, released by `kthread_stop_put` in [`KThread::stop`] (or drop).
/// `data` is the `Arc<T>` handed to the thread as a raw pointer.
pub(crate) struct KThread<T: ThreadBody> {
    task: NonNull<bindings::task_struct>,
    data: *const T,
}

// SAFETY: The handle only stops the thread; that may happen from any thread.
unsafe impl<T: ThreadBody> Send for KThread<T> {}
// SAFETY: No shared-reference operations.
unsafe impl<T: ThreadBody> Sync for KThread<T> {}

/// Whether the current kthread has been asked to stop.
pub(crate) fn should_stop() -> bool {
    // SAFETY: Only called from fr1's kthreads.
    unsafe { bindings::kthread_should_stop() }
}

/// The thread function.
///
/// # Safety
///
/// Called by the kthread machinery with the `data` given by [`KThread::spawn`].
unsafe extern "C" fn trampoline<T: ThreadBody>(data: *mut c_void) -> c_int {
    // SAFETY: `data` is the `Arc<T>` leaked by `spawn` for this thread,
    // reclaimed exactly once: here, or by `stop` if the thread never ran.
    let body = unsafe { Arc::from_raw(data.cast::<T>()) };
    body.run();
    // The thread may exit before it is stopped: `KThread` holds a task
    // reference, and `kthread_stop` then returns this value (while it
    // returns -EINTR if the function never ran).
    0
}

impl<T: ThreadBody> KThread<T> {
    /// Starts a thread named `<name><suffix>` (e.g. `md0_resync`) running
    /// `body.run()`.
    pub(crate) fn spawn(name: &CStr, suffix: &CStr, body: Arc<T>) -> Result<KThread<T>> {
        let data = Arc::into_raw(body);
        // SAFETY: `trampoline::<T>` matches the thread function type; the
        // format "%s%s" takes the two C strings given, which outlive the
        // call (the name is copied into the task).
        let task = unsafe {
            bindings::kthread_create_on_node(
                Some(trampoline::<T>),
                data.cast_mut().cast(),
                bindings::NUMA_NO_NODE,
                c"%s%s".as_char_ptr(),
                name.as_char_ptr(),
                suffix.as_char_ptr(),
            )
        };
        let task = match kernel::error::from_err_ptr(task)
            .ok()
            .and_then(NonNull::new)
        {
            Some(t) => t,
            None => {
                // SAFETY: The thread was not created; `data` is still ours.
                drop(unsafe { Arc::from_raw(data) });
                return Err(ENOMEM);
            }
        };
        // SAFETY: `task` is a live new kthread; the extra reference keeps it
        // valid for `kthread_stop_put` even after it exits.
        unsafe {
            bindings::get_task_struct(task.as_ptr());
            bindings::wake_up_process(task.as_ptr());
        }
        Ok(KThread { task, data })
    }

    /// Asks the thread to stop and waits for it.
    pub(crate) fn stop(self) {
        drop(self);
    }
}

impl<T: ThreadBody> Drop for KThread<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we hold a task reference; this
        // stops the thread (waiting for it) and drops the reference.
        let ret = unsafe { bindings::kthread_stop_put(self.task.as_ptr()) };
        if ret == -(bindings::EINTR as c_int) {
            // The thread was stopped before its function ran: the `Arc`
            // handed to it is still ours to release.
            // SAFETY: `trampoline` never ran, so it did not take `data`.
            drop(unsafe { Arc::from_raw(self.data) });
        }
    }
}
