/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fr1's C glue: one-line shims over kernel macros and static inlines that
 * Rust cannot call, and the constants bindgen cannot see (macros with casts),
 * in the style of rust/helpers and rust/bindings/bindings_helper.h.
 * bindgen reads this header (scripts: Kbuild, rule fr1_bindgen).
 */
#ifndef FR1_GLUE_H
#define FR1_GLUE_H

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/blk-mq.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/poll.h>
#include <linux/proc_fs.h>
#include <linux/raid/md_p.h>
#include <linux/raid/md_u.h>
#include <linux/seq_file.h>
#include <linux/workqueue.h>

#include "../../include/uapi/linux/fr1.h"

#ifdef __BINDGEN__
const blk_status_t FR1_BLK_STS_OK = BLK_STS_OK;
const blk_status_t FR1_BLK_STS_IOERR = BLK_STS_IOERR;
const blk_status_t FR1_BLK_STS_NOTSUPP = BLK_STS_NOTSUPP;
const blk_status_t FR1_BLK_STS_AGAIN = BLK_STS_AGAIN;
const blk_mode_t FR1_BLK_OPEN_READ = BLK_OPEN_READ;
const blk_mode_t FR1_BLK_OPEN_WRITE = BLK_OPEN_WRITE;
const blk_opf_t FR1_REQ_OP_MASK = REQ_OP_MASK;
const blk_opf_t FR1_REQ_PREFLUSH = REQ_PREFLUSH;
const blk_opf_t FR1_REQ_FUA = REQ_FUA;
const blk_opf_t FR1_REQ_RAHEAD = REQ_RAHEAD;
const blk_opf_t FR1_REQ_NOWAIT = REQ_NOWAIT;
const gfp_t FR1_GFP_NOIO = GFP_NOIO;
const gfp_t FR1_GFP_KERNEL = GFP_KERNEL;
/* Behind copies: no I/O recursion, no retries, no warnings (md's GFP_NOIO, but failing fast). */
const gfp_t FR1_GFP_BEHIND = GFP_NOIO | __GFP_NORETRY | __GFP_NOWARN;
const gfp_t FR1_GFP_NOWAIT = GFP_NOWAIT | __GFP_NOWARN;
const blk_features_t FR1_BLK_FEAT_WRITE_CACHE = BLK_FEAT_WRITE_CACHE;
const blk_features_t FR1_BLK_FEAT_FUA = BLK_FEAT_FUA;
const blk_features_t FR1_BLK_FEAT_IO_STAT = BLK_FEAT_IO_STAT;
const unsigned int FR1_BIOSET_NEED_BVECS = BIOSET_NEED_BVECS;
const int FR1_CAP_SYS_ADMIN = CAP_SYS_ADMIN;
const __poll_t FR1_EPOLLIN = EPOLLIN;
const __poll_t FR1_EPOLLRDNORM = EPOLLRDNORM;
const __poll_t FR1_EPOLLERR = EPOLLERR;
const __poll_t FR1_EPOLLPRI = EPOLLPRI;
/* fr1's own ioctl numbers, as include/uapi/linux/fr1.h computes them. */
const unsigned int FR1_READ_COPY_NR = FR1_READ_COPY;
const unsigned int FR1_REPAIR_RANGE_NR = FR1_REPAIR_RANGE;
const unsigned int FR1_MAX_COPY_BYTES_NR = FR1_MAX_COPY_BYTES;
#endif

struct queue_limits fr1_queue_limits_start_update(struct request_queue *q);
void fr1_queue_limits_cancel_update(struct request_queue *q);
sector_t fr1_bdev_nr_sectors(struct block_device *bdev);
dev_t fr1_bdev_dev(struct block_device *bdev);
struct page *fr1_zero_page(void);
struct gendisk *fr1_bdev_disk(struct block_device *bdev);
bool fr1_bdev_nowait(struct block_device *bdev);
unsigned int fr1_bdev_max_sectors(struct block_device *bdev);
unsigned int fr1_bdev_max_segments(struct block_device *bdev);
unsigned int fr1_bdev_chunk_sectors(struct block_device *bdev);
struct workqueue_struct *fr1_alloc_workqueue(const char *name, bool reclaim);
bool fr1_bdev_blocking(struct block_device *bdev);
void fr1_bio_set_dev(struct bio *bio, struct block_device *bdev);
bool fr1_bio_chained(struct bio *bio);

#endif /* FR1_GLUE_H */
