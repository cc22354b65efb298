// SPDX-License-Identifier: GPL-2.0

//! Clock readings as plain numbers, for counters kept in atomics (the
//! `kernel::time::Instant` of 7.3 does not expose its nanoseconds).
//!
//! C header: [`include/linux/timekeeping.h`](srctree/include/linux/timekeeping.h)

use kernel::bindings;

/// Nanoseconds of the monotonic clock (`ktime_get`). Any context.
pub(crate) fn monotonic_ns() -> u64 {
    // SAFETY: `ktime_get` has no preconditions.
    let ns = unsafe { bindings::ktime_get() };
    ns.max(0) as u64
}

/// Seconds since the epoch (`ktime_get_real`), as md stamps `ctime`.
pub(crate) fn real_seconds() -> u64 {
    // SAFETY: `ktime_get_real` has no preconditions.
    let ns = unsafe { bindings::ktime_get_real() };
    ns.max(0) as u64 / 1_000_000_000
}
