// SPDX-License-Identifier: GPL-2.0

//! The status file (`/proc/mdstat` or `/proc/fr1stat`) as a `seq_file`.
//!
//! C header: [`include/linux/proc_fs.h`](srctree/include/linux/proc_fs.h)

use core::ptr::NonNull;
use kernel::{bindings, prelude::*, seq_file::SeqFile};

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

/// A registered /proc file.
///
/// # Invariants
///
/// `entry` was created by `proc_create_single_data` under `name` and is
/// removed on drop (which waits for running readers).
pub(crate) struct ProcFile {
    name: &'static CStr,
    _entry: NonNull<bindings::proc_dir_entry>,
}

// SAFETY: proc entries may be removed from any thread.
unsafe impl Send for ProcFile {}
// SAFETY: No shared-reference operations.
unsafe impl Sync for ProcFile {}

impl ProcFile {
    /// Creates `/proc/<name>` (mode 0444) whose content `show` writes.
    pub(crate) fn new(name: &'static CStr, show: fn(&mut SeqWriter<'_>)) -> Result<ProcFile> {
        // SAFETY: `name` is static; `show_trampoline` is valid for the life
        // of the entry (module code); `show` is passed as data and is a
        // plain function pointer valid as long as the module.
        let entry = unsafe {
            ffi::proc_create_single_data(
                name.as_char_ptr(),
                0o444,
                core::ptr::null_mut(),
                Some(show_trampoline),
                show as *mut c_void,
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

/// # Safety
///
/// Called by the seq_file code for an entry made by [`ProcFile::new`].
unsafe extern "C" fn show_trampoline(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: `single_open` stores the entry's data (our `show`) in
    // `m->private`; the seq_file is valid for this call.
    let (show, seq) = unsafe {
        let show: fn(&mut SeqWriter<'_>) = core::mem::transmute((*m).private);
        (show, SeqFile::from_raw(m))
    };
    show(&mut SeqWriter(seq));
    0
}
