// SPDX-License-Identifier: GPL-2.0

//! The kernel module's ABI definitions, compiled from the very same files.

#![allow(dead_code)]

#[path = "../../../src/logic/abi.rs"]
pub(crate) mod abi;
#[path = "../../../src/logic/errno.rs"]
pub(crate) mod errno;
#[path = "../../../src/logic/mdstat.rs"]
pub(crate) mod mdstat;
