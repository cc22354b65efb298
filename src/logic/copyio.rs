// SPDX-License-Identifier: GPL-2.0

//! The arguments of fr1's copy ioctls (include/uapi/linux/fr1.h):
//! FR1_READ_COPY reads a byte range of one chosen leg, FR1_REPAIR_RANGE
//! writes a range that is good on one leg over the others. Both take a
//! range that md's own I/O rules would take: whole logical blocks, inside
//! the array, no flags, at most [`MAX_COPY_BYTES`] per call.

use super::abi::MAX_MIRRORS;
use super::errno::Errno;
use super::slots::Slots;

/// The most bytes one call takes (the kernel buffer it is read through).
pub(crate) const MAX_COPY_BYTES: u64 = super::abi::FR1_MAX_COPY_BYTES;

/// A validated range, in sectors of the array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SectorRange {
    pub(crate) sector: u64,
    pub(crate) sectors: u64,
}

/// Validates `length` bytes at byte `offset` (`flags` must be 0) of an
/// array of `array_sectors` whose logical block is `block_bytes`: EINVAL
/// for an empty range, one longer than [`MAX_COPY_BYTES`], one not made of
/// whole logical blocks, or one past the end.
pub(crate) fn check_range(
    offset: u64,
    length: u64,
    flags: u32,
    block_bytes: u32,
    array_sectors: u64,
) -> Result<SectorRange, Errno> {
    let block = u64::from(block_bytes.max(512));
    if flags != 0 || length == 0 || length > MAX_COPY_BYTES {
        return Err(Errno::Inval);
    }
    if !offset.is_multiple_of(block) || !length.is_multiple_of(block) {
        return Err(Errno::Inval);
    }
    let end = offset.checked_add(length).ok_or(Errno::Inval)?;
    if end > array_sectors.saturating_mul(512) {
        return Err(Errno::Inval);
    }
    Ok(SectorRange {
        sector: offset / 512,
        sectors: length / 512,
    })
}

/// The leg a copy is read from must be one of the array's `raid_disks`
/// slots and readable (present, in sync, not faulty): EINVAL otherwise.
pub(crate) fn check_source(slots: Slots, slot: u32, raid_disks: u32) -> Result<(), Errno> {
    if slot >= raid_disks.min(MAX_MIRRORS) || !slots.readable(slot) {
        return Err(Errno::Inval);
    }
    Ok(())
}

/// The legs a repair from `from` writes: every other writable slot of the
/// array's `raid_disks` (as a mask). EINVAL if there is none: nothing
/// would be repaired.
pub(crate) fn repair_targets(slots: Slots, from: u32, raid_disks: u32) -> Result<u32, Errno> {
    let all = (1u32 << raid_disks.min(MAX_MIRRORS)) - 1;
    let targets = u32::from(slots.writable_mask()) & all & !(1u32 << from.min(31));
    if targets == 0 {
        return Err(Errno::Inval);
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: u64 = 2048 * 1024; // 1 GiB in sectors

    #[test]
    fn a_range_of_whole_blocks_inside_the_array() {
        assert_eq!(
            check_range(4096, 8192, 0, 512, SIZE),
            Ok(SectorRange {
                sector: 8,
                sectors: 16
            })
        );
        // The last block, and one past it.
        assert!(check_range(SIZE * 512 - 512, 512, 0, 512, SIZE).is_ok());
        assert_eq!(
            check_range(SIZE * 512, 512, 0, 512, SIZE),
            Err(Errno::Inval)
        );
        assert_eq!(
            check_range(SIZE * 512 - 512, 1024, 0, 512, SIZE),
            Err(Errno::Inval)
        );
        // offset + length wraps.
        assert_eq!(
            check_range(u64::MAX - 511, 1024, 0, 512, SIZE),
            Err(Errno::Inval)
        );
    }

    #[test]
    fn bad_ranges_are_einval() {
        assert_eq!(check_range(0, 0, 0, 512, SIZE), Err(Errno::Inval));
        assert_eq!(check_range(1, 512, 0, 512, SIZE), Err(Errno::Inval));
        assert_eq!(check_range(0, 513, 0, 512, SIZE), Err(Errno::Inval));
        assert_eq!(check_range(0, 512, 1, 512, SIZE), Err(Errno::Inval));
        assert!(check_range(0, MAX_COPY_BYTES, 0, 512, SIZE).is_ok());
        assert_eq!(
            check_range(0, MAX_COPY_BYTES + 512, 0, 512, SIZE),
            Err(Errno::Inval)
        );
        // A 4 KiB logical block: 512-byte alignment is not enough.
        assert_eq!(check_range(512, 4096, 0, 4096, SIZE), Err(Errno::Inval));
        assert!(check_range(4096, 4096, 0, 4096, SIZE).is_ok());
    }

    fn two_legs() -> Slots {
        let s = Slots::default();
        let s = s.attach(0, true, false).unwrap();
        s.attach(1, true, false).unwrap()
    }

    #[test]
    fn the_source_is_a_readable_slot() {
        let s = two_legs();
        assert_eq!(check_source(s, 0, 2), Ok(()));
        assert_eq!(check_source(s, 1, 2), Ok(()));
        assert_eq!(check_source(s, 2, 2), Err(Errno::Inval));
        assert_eq!(check_source(s, u32::MAX, 2), Err(Errno::Inval));
        let failed = s.fail(1).unwrap();
        assert_eq!(check_source(failed, 1, 2), Err(Errno::Inval));
        // Present but not in sync (recovering): not a copy yet.
        let recovering = Slots::default().attach(0, true, false).unwrap();
        let recovering = recovering.attach(1, false, false).unwrap();
        assert_eq!(check_source(recovering, 1, 2), Err(Errno::Inval));
    }

    #[test]
    fn a_repair_writes_every_other_writable_leg() {
        let s = two_legs();
        assert_eq!(repair_targets(s, 0, 2), Ok(0b10));
        assert_eq!(repair_targets(s, 1, 2), Ok(0b01));
        let s3 = s.attach(2, false, false).unwrap();
        assert_eq!(repair_targets(s3, 0, 3), Ok(0b110));
        // Nothing but the source: nothing to repair.
        let failed = s.fail(1).unwrap();
        assert_eq!(repair_targets(failed, 0, 2), Err(Errno::Inval));
    }
}
