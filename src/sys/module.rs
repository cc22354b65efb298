// SPDX-License-Identifier: GPL-2.0

//! A counted reference to fr1's own module: `rmmod` answers "in use"
//! (`EBUSY`) while one lives.
//!
//! C header: [`include/linux/module.h`](srctree/include/linux/module.h)

use kernel::{bindings, ModuleMetadata};

/// A module reference (`__module_get` or `try_module_get`, then
/// `module_put`).
///
/// # Invariants
///
/// One reference to fr1's module was taken for this value and is put by
/// `drop`. It is dropped only from fr1's workqueues or from a context the
/// module's unload waits for (`sys::work`'s protocol): module code that
/// runs after the put is never freed under it.
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// Takes a reference (any context). The caller runs module code, so the
    /// module is loaded; during its unload the count no longer matters.
    pub(crate) fn get() -> ModuleRef {
        // SAFETY: `THIS_MODULE` is this module, loaded while its code runs
        // (null when built in, which `__module_get` accepts).
        unsafe {
            bindings::__module_get(<crate::Fr1Module as ModuleMetadata>::THIS_MODULE.as_ptr())
        };
        ModuleRef(())
    }

    /// Takes a reference unless the module is being unloaded (any
    /// context; `try_module_get`): `None` once `delete_module` found it
    /// unused, so work that would hold the module up (a read of a leg that
    /// may never answer) is skipped instead, and an `rmmod` that comes
    /// later answers "in use".
    pub(crate) fn try_get() -> Option<ModuleRef> {
        // SAFETY: As in `get`.
        unsafe {
            bindings::try_module_get(<crate::Fr1Module as ModuleMetadata>::THIS_MODULE.as_ptr())
        }
        .then_some(ModuleRef(()))
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariants a reference was taken for `self`.
        unsafe { bindings::module_put(<crate::Fr1Module as ModuleMetadata>::THIS_MODULE.as_ptr()) };
    }
}
