// SPDX-License-Identifier: GPL-2.0

//! fr1: a fast, intelligent RAID1 for Linux.
//!
//! A bio-based mirror driven through md's ioctl ABI. While a member is
//! missing, writes are recorded in a demand-paged in-memory dirty bitmap, and
//! a re-added member is resynced from it, region by region.
//!
//! See Documentation/fr1/ for the design and the user interface.

use kernel::prelude::*;

mod array;
mod logic;
mod registry;
mod sys;

use sys::param::sysfs_param;

/// fr1's version, logged at load and unload.
const VERSION: &str = include_str!("../VERSION").trim_ascii();

/// `modinfo fr1` shows the version (C's `MODULE_VERSION()`).
#[link_section = ".modinfo"]
#[used]
static MODINFO_VERSION: [u8; "version=".len() + VERSION.len() + 1] =
    sys::param::modinfo_entry("version=", VERSION);

module! {
    type: Fr1Module,
    name: "fr1",
    authors: ["The fr1 developers"],
    description: "fr1: fast RAID1 with a demand-paged dirty bitmap and incremental resync",
    license: "GPL",
}

sysfs_param! {
    /// Take block major 9 and /proc/mdstat when md is absent (md's identity).
    static MD_COMPAT: bool = true, name: "md_compat",
    ops: param_ops_bool, ctype: "bool", perm: 0o444,
    desc: "Act as md (major 9, /dev/mdN, /proc/mdstat) when md_mod is not loaded (default: Y)"
}

sysfs_param! {
    /// Resync speed below which fr1 never throttles (KiB/s, md's default).
    static SPEED_LIMIT_MIN: u32 = 1000, name: "speed_limit_min",
    ops: param_ops_uint, ctype: "uint", perm: 0o644,
    desc: "Resync speed (KiB/s) below which resync is never throttled (default: 1000)"
}

sysfs_param! {
    /// Resync speed above which fr1 always throttles (KiB/s, md's default).
    static SPEED_LIMIT_MAX: u32 = 200000, name: "speed_limit_max",
    ops: param_ops_uint, ctype: "uint", perm: 0o644,
    desc: "Resync speed (KiB/s) above which resync is always throttled (default: 200000)"
}

sysfs_param! {
    /// Sync I/O in flight, in md's 64 KiB requests, above which a sync
    /// drains while the array is busy (md 7.3's default).
    static SYNC_IO_DEPTH: u32 = crate::logic::resync::DEFAULT_SYNC_IO_DEPTH, name: "sync_io_depth",
    ops: param_ops_uint, ctype: "uint", perm: 0o644,
    desc: "Sync I/O in flight (64 KiB requests) above which a sync yields to a busy array (default: 32)"
}

/// The loaded module.
struct Fr1Module {
    _loaded: registry::Loaded,
}

impl kernel::Module for Fr1Module {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!(
            "version {} loaded (md_compat={})\n",
            VERSION,
            if MD_COMPAT.get() { "Y" } else { "N" }
        );
        Ok(Fr1Module {
            _loaded: registry::Loaded::new(MD_COMPAT.get())?,
        })
    }
}

impl Drop for Fr1Module {
    fn drop(&mut self) {
        pr_info!("version {} unloaded\n", VERSION);
    }
}
