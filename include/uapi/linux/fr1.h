/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * fr1's own ioctls, beside md's (include/uapi/linux/raid/md_u.h), on an
 * array's block device node (/dev/mdN). Both need CAP_SYS_ADMIN.
 *
 * FR1_READ_COPY reads a byte range of the array from one chosen leg (slot),
 * bypassing read balancing and read-error repair: an application or upper
 * layer that keeps its own checksums reads each copy and decides which one
 * is good (the READ_OTHER_COPY of the 2011-2019 md/dm/btrfs discussions).
 * A read error of that leg is returned as it is (EIO), not repaired.
 *
 * FR1_REPAIR_RANGE says a range is good on the leg `from`: fr1 reads it
 * there and writes it over every other working leg, region by region under
 * the same interlock as a resync copy, so it never races a write of the
 * array. A leg that fails the write is marked faulty (its bitmap records the
 * range, so a re-add copies it); a leg that is behind (ahead/behind mode)
 * gets the range in its bitmap instead.
 *
 * Ranges: `offset` and `length` in bytes, whole logical blocks of the array
 * (`blockdev --getss`), inside the array, 1 byte to FR1_MAX_COPY_BYTES per
 * call; `flags` must be 0.
 *
 * Errors (both):
 *   EACCES  the caller lacks CAP_SYS_ADMIN
 *   ENODEV  the array is not running
 *   EINVAL  flags not 0; empty, unaligned, too long, or past the end;
 *           the slot is not one of the array's, or that leg is absent,
 *           faulty or not in sync; the leg left while the call ran
 *   EFAULT  the struct, or (READ_COPY) `buf`, is not writable/readable
 *           user memory for the whole range
 *   EIO     the leg failed the read; (REPAIR_RANGE) the source failed the
 *           read, or no other leg took the write and one failed it (that
 *           leg is now faulty, its bitmap holding the range)
 *   EBUSY   write-behinds to the legs involved were still landing after
 *           md/fr1_stall_ms in all (30 s if that is 0); (REPAIR_RANGE) a
 *           resync, recovery, catch-up, check or other repair is running
 *   EINTR   a signal arrived while waiting (the call may be repeated)
 *   ENOMEM  no memory for the kernel buffer
 */
#ifndef _UAPI_LINUX_FR1_H
#define _UAPI_LINUX_FR1_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define FR1_IOCTL_TYPE		0xF1
#define FR1_MAX_COPY_BYTES	(1U << 20)

struct fr1_copy_io {
	__u32 slot;		/* the leg, as md/dev-* /slot names it */
	__u32 flags;		/* 0 */
	__u64 offset;		/* bytes into the array */
	__u64 length;		/* bytes */
	__u64 buf;		/* user address of `length` bytes */
};

struct fr1_repair_range {
	__u32 from;		/* the leg holding the good copy */
	__u32 flags;		/* 0 */
	__u64 offset;		/* bytes into the array */
	__u64 length;		/* bytes */
};

#define FR1_READ_COPY		_IOW(FR1_IOCTL_TYPE, 0x01, struct fr1_copy_io)
#define FR1_REPAIR_RANGE	_IOW(FR1_IOCTL_TYPE, 0x02, struct fr1_repair_range)

#endif /* _UAPI_LINUX_FR1_H */
