// SPDX-License-Identifier: GPL-2.0

//! Pure logic of fr1: no kernel dependency, `core` only.
//!
//! Every file here is compiled twice, unchanged: into `fr1.ko` as
//! `crate::logic` (with `--cfg fr1_kernel`) and on the host as the `fr1_logic`
//! crate, where `cargo test` runs the unit tests at the bottom of each file.
//! See Documentation/fr1/design.rst, "Source layout".
//!
//! Rules for code in this directory: no `alloc`, no `kernel::` types, no
//! floating point, no 128-bit division, no panics (checked arithmetic and
//! `get()`), no locks or atomics. Callers own storage and synchronisation.

pub(crate) mod abi;
pub(crate) mod balance;
pub(crate) mod behind;
pub(crate) mod bitmap;
pub(crate) mod compare;
pub(crate) mod copyio;
pub(crate) mod errno;
pub(crate) mod fmtbuf;
pub(crate) mod interlock;
pub(crate) mod mdstat;
pub(crate) mod mismatch;
pub(crate) mod readerrors;
pub(crate) mod recovery;
pub(crate) mod resync;
pub(crate) mod slots;
pub(crate) mod syncstate;
