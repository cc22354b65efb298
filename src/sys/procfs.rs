// SPDX-License-Identifier: GPL-2.0

//! The status file (`/proc/mdstat` or `/proc/fr1stat`): a `seq_file` that
//! also supports poll like md's (POLLPRI|POLLERR once an array event
//! happened since the reader last read it; mdadm --monitor and --wait sleep
//! on that).
//!
//! C header: [`include/linux/proc_fs.h`](srctree/include/linux/proc_fs.h)

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{
    bindings,
    fs::File,
    new_poll_condvar,
    prelude::*,
    seq_file::SeqFile,
    sync::poll::{PollCondVar, PollTable},
};

use super::ffi;

/// A `core::fmt::Write` over a seq_file, so the pure mdstat formatter can
/// write straight into it.
pub(crate) struct SeqWriter<'a>(&'a SeqFile);

impl core::fmt::Write for SeqWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        kernel::seq_print!(self.0, "{}", s);
        Ok(())
    }
}

/// md's `md_event_count` and its waiters.
#[pin_data]
pub(crate) struct Events {
    count: AtomicU32,
    #[pin]
    waiters: PollCondVar,
}

impl Events {
    /// No event yet.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Events {
            count: AtomicU32::new(0),
            waiters <- new_poll_condvar!("fr1::mdstat_events"),
        })
    }

    /// An array changed (md's `md_new_event`): wakes pollers of the status
    /// file. Any context.
    pub(crate) fn signal(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.waiters.notify_all();
    }
}

/// What the status file shows and where its events come from.
pub(crate) trait StatusSource: Sync + 'static {
    /// Writes the whole file.
    fn show(w: &mut SeqWriter<'_>);
    /// The events, while the module is loaded.
    fn events() -> Option<&'static Events>;
}

/// `proc_ops` that may live in a static.
#[repr(transparent)]
struct Ops(ffi::proc_ops);
// SAFETY: Immutable table of function pointers.
unsafe impl Sync for Ops {}

/// A registered /proc file.
///
/// # Invariants
///
/// `entry` was created by `proc_create` under `name` and is removed on drop
/// (which waits for running readers).
pub(crate) struct ProcFile {
    name: &'static CStr,
    _entry: NonNull<bindings::proc_dir_entry>,
}

// SAFETY: proc entries may be removed from any thread.
unsafe impl Send for ProcFile {}
// SAFETY: No shared-reference operations.
unsafe impl Sync for ProcFile {}

impl ProcFile {
    /// Creates `/proc/<name>` (mode 0444) shown by `S`.
    pub(crate) fn new<S: StatusSource>(name: &'static CStr) -> Result<ProcFile> {
        // SAFETY: `name` is static; the ops table is a static whose
        // functions stay valid while the entry exists (module code).
        let entry = unsafe {
            ffi::proc_create(
                name.as_char_ptr(),
                0o444,
                core::ptr::null_mut(),
                &Table::<S>::OPS.0,
            )
        };
        Ok(ProcFile {
            name,
            _entry: NonNull::new(entry).ok_or(ENOMEM)?,
        })
    }
}

impl Drop for ProcFile {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the entry exists under `name`.
        unsafe { ffi::remove_proc_entry(self.name.as_char_ptr(), core::ptr::null_mut()) };
    }
}

struct Table<S>(core::marker::PhantomData<S>);

impl<S: StatusSource> Table<S> {
    const OPS: Ops = {
        // SAFETY: All-zero is a valid `proc_ops` (no callbacks, no flags).
        let mut ops: ffi::proc_ops = unsafe { core::mem::zeroed() };
        ops.proc_open = Some(open::<S>);
        ops.proc_read_iter = Some(bindings::seq_read_iter);
        ops.proc_lseek = Some(bindings::seq_lseek);
        ops.proc_release = Some(bindings::single_release);
        ops.proc_poll = Some(poll::<S>);
        Ops(ops)
    };
}

/// # Safety
///
/// Called by procfs to open the file.
unsafe extern "C" fn open<S: StatusSource>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `file` is being opened; `show::<S>` is a valid seq show.
    unsafe { bindings::single_open(file, Some(show::<S>), core::ptr::null_mut()) }
}

/// # Safety
///
/// Called by the seq_file code for a file opened by [`open`].
unsafe extern "C" fn show<S: StatusSource>(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    if let Some(ev) = S::events() {
        // md_seq_start: the reader has now seen every event so far.
        // SAFETY: `m` is the live seq_file of this read.
        unsafe { (*m).poll_event = ev.count.load(Ordering::SeqCst) as c_int };
    }
    // SAFETY: The seq_file is valid and used by this thread only for the call.
    let seq = unsafe { SeqFile::from_raw(m) };
    S::show(&mut SeqWriter(seq));
    0
}

/// # Safety
///
/// Called by the VFS to poll a file opened by [`open`].
unsafe extern "C" fn poll<S: StatusSource>(
    file: *mut bindings::file,
    wait: *mut bindings::poll_table_struct,
) -> bindings::__poll_t {
    let mut mask = ffi::FR1_EPOLLIN | ffi::FR1_EPOLLRDNORM;
    let Some(ev) = S::events() else {
        return mask;
    };
    // SAFETY: The file is live for the call; `wait` is null or a valid
    // poll table for it; `private_data` is the seq_file made by `open`.
    unsafe {
        PollTable::from_raw(wait).register_wait(File::from_raw_file(file), &ev.waiters);
        let seq = (*file).private_data.cast::<bindings::seq_file>();
        if (*seq).poll_event != ev.count.load(Ordering::SeqCst) as c_int {
            mask |= ffi::FR1_EPOLLERR | ffi::FR1_EPOLLPRI;
        }
    }
    mask
}
