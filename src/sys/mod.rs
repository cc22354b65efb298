// SPDX-License-Identifier: GPL-2.0

//! fr1's thin, safe wrappers over kernel C APIs that the `kernel` crate of
//! 7.3 does not cover. Every raw FFI call of the module lives below this
//! directory; the RAID logic above it is safe Rust.

pub(crate) mod bio;
pub(crate) mod completion;
pub(crate) mod disk;
pub(crate) mod ffi;
pub(crate) mod ioring;
pub(crate) mod kthread;
pub(crate) mod member;
pub(crate) mod module;
pub(crate) mod nodes;
pub(crate) mod param;
pub(crate) mod procfs;
pub(crate) mod sysfs;
pub(crate) mod time;
pub(crate) mod uapi;
pub(crate) mod work;
