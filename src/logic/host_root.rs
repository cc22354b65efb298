// SPDX-License-Identifier: GPL-2.0

//! Host build of fr1's pure logic, for `cargo test` (see `mod.rs`).
//!
//! The kernel compiles `src/logic/` as a module of the fr1 crate; here it is a
//! module of this `no_std` library, so `crate::logic::...` paths are the same
//! in both builds.

#![no_std]

#[cfg(test)]
extern crate std;

#[path = "mod.rs"]
#[allow(dead_code)]
pub(crate) mod logic;
