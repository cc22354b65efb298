// SPDX-License-Identifier: GPL-2.0

//! Module parameters that are visible (and optionally writable) in
//! `/sys/module/fr1/parameters/`.
//!
//! The `module!` macro of 7.3 registers its parameters with `perm = 0`, so
//! they never appear in sysfs and cannot change at run time. md's tunables
//! (`speed_limit_min`/`max`) are live, so fr1 registers its own
//! `struct kernel_param`s, backed by the kernel's C `param_ops_*`, exactly as
//! `module_param()` in `include/linux/moduleparam.h` does.
//!
//! C header: [`include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h)

use core::cell::UnsafeCell;
use kernel::prelude::*;

/// The storage of one parameter, shared with the kernel's `param_ops_*`.
///
/// # Invariants
///
/// The cell is only written by the kernel's parameter code, through the
/// pointer registered in the parameter's `kernel_param` (at load time or from
/// sysfs, serialised by `kernel_param_lock`); Rust only reads it, with
/// volatile loads of a naturally aligned value no wider than a word, which the
/// kernel treats as single-copy atomic (`READ_ONCE`).
#[repr(transparent)]
pub(crate) struct SysfsParam<T: Copy>(UnsafeCell<T>);

// SAFETY: By the type invariants Rust never writes the cell, and concurrent
// C writes are single, aligned word stores, so sharing it between threads is
// sound for the `Copy` value types used here (`u32`, `bool`).
unsafe impl<T: Copy> Sync for SysfsParam<T> {}

impl<T: Copy> SysfsParam<T> {
    /// Creates the storage with the parameter's default value.
    pub(crate) const fn new(value: T) -> Self {
        Self(UnsafeCell::new(value))
    }

    /// The current value.
    pub(crate) fn get(&self) -> T {
        // SAFETY: The pointer comes from a live `UnsafeCell` and is aligned;
        // by the type invariants the only concurrent writer is an aligned
        // word store, so the volatile read sees the old or the new value.
        unsafe { core::ptr::read_volatile(self.0.get()) }
    }

    /// The pointer the kernel's `param_ops_*` read and write.
    pub(crate) const fn as_arg(&self) -> *mut c_void {
        self.0.get().cast()
    }
}

/// `struct kernel_param` that may live in a `static`.
#[repr(transparent)]
pub(crate) struct KernelParam(pub(crate) kernel::bindings::kernel_param);

// SAFETY: The kernel only reads the descriptor (it is placed in the
// `__param` section and handed to the module loader); Rust never touches it.
unsafe impl Sync for KernelParam {}

/// Copies a string into a byte array, for `.modinfo` entries.
pub(crate) const fn modinfo_bytes<const N: usize>(s: &str) -> [u8; N] {
    modinfo_entry(s, "")
}

/// Concatenates `key` and `value` into a NUL-padded `.modinfo` entry.
pub(crate) const fn modinfo_entry<const N: usize>(key: &str, value: &str) -> [u8; N] {
    let (k, v) = (key.as_bytes(), value.as_bytes());
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N && i < k.len() + v.len() {
        out[i] = if i < k.len() { k[i] } else { v[i - k.len()] };
        i += 1;
    }
    out
}

/// Declares a module parameter named `$name` (in sysfs and on the command
/// line) of C type `$ctype` (`bool` or `uint`), stored in the static
/// `$static`, with sysfs permissions `$perm`: C's `module_param()` plus
/// `MODULE_PARM_DESC()`.
macro_rules! sysfs_param {
    ($(#[$meta:meta])* static $static:ident: $ty:ty = $default:expr, name: $name:literal,
     ops: $ops:ident, ctype: $ctype:literal, perm: $perm:expr, desc: $desc:literal) => {
        $(#[$meta])*
        pub(crate) static $static: $crate::sys::param::SysfsParam<$ty> =
            $crate::sys::param::SysfsParam::new($default);

        const _: () = {
            const NAME: &str = concat!($name, "\0");
            #[link_section = "__param"]
            #[used]
            static PARAM: $crate::sys::param::KernelParam =
                $crate::sys::param::KernelParam(::kernel::bindings::kernel_param {
                    name: NAME.as_ptr().cast(),
                    // `__this_module` is set up by the module loader and outlives
                    // every parameter of this module; only its address is taken.
                    mod_: (&raw const ::kernel::bindings::__this_module).cast_mut(),
                    // SAFETY: The kernel's `param_ops_*` are immutable statics.
                    ops: unsafe { core::ptr::from_ref(&::kernel::bindings::$ops) },
                    perm: $perm,
                    level: -1,
                    flags: 0,
                    __bindgen_anon_1: ::kernel::bindings::kernel_param__bindgen_ty_1 {
                        arg: $static.as_arg(),
                    },
                });

            const TYPE: &str = concat!("parmtype=", $name, ":", $ctype, "\0");
            #[link_section = ".modinfo"]
            #[used]
            static PARMTYPE: [u8; TYPE.len()] = $crate::sys::param::modinfo_bytes(TYPE);

            const DESC: &str = concat!("parm=", $name, ":", $desc, "\0");
            #[link_section = ".modinfo"]
            #[used]
            static PARM: [u8; DESC.len()] = $crate::sys::param::modinfo_bytes(DESC);
        };
    };
}
pub(crate) use sysfs_param;
