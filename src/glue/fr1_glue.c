// SPDX-License-Identifier: GPL-2.0
/*
 * One-line shims over static inline functions (see fr1_glue.h).
 */
#include "fr1_glue.h"

struct queue_limits fr1_queue_limits_start_update(struct request_queue *q)
{
	return queue_limits_start_update(q);
}

void fr1_queue_limits_cancel_update(struct request_queue *q)
{
	queue_limits_cancel_update(q);
}

sector_t fr1_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

dev_t fr1_bdev_dev(struct block_device *bdev)
{
	return bdev->bd_dev;
}

struct gendisk *fr1_bdev_disk(struct block_device *bdev)
{
	return bdev->bd_disk;
}

struct page *fr1_zero_page(void)
{
	return ZERO_PAGE(0);
}

bool fr1_bdev_nowait(struct block_device *bdev)
{
	return bdev_nowait(bdev);
}

unsigned int fr1_bdev_max_sectors(struct block_device *bdev)
{
	return queue_max_sectors(bdev_get_queue(bdev));
}

unsigned int fr1_bdev_max_segments(struct block_device *bdev)
{
	return bdev_max_segments(bdev);
}

unsigned int fr1_bdev_chunk_sectors(struct block_device *bdev)
{
	return bdev_get_queue(bdev)->limits.chunk_sectors;
}

struct workqueue_struct *fr1_alloc_workqueue(const char *name, bool reclaim)
{
	return alloc_workqueue("%s", WQ_UNBOUND | (reclaim ? WQ_MEM_RECLAIM : 0), 0, name);
}

bool fr1_bdev_blocking(struct block_device *bdev)
{
	return queue_is_mq(bdev_get_queue(bdev)) && (bdev_get_queue(bdev)->tag_set->flags & BLK_MQ_F_BLOCKING);
}

void fr1_bio_set_dev(struct bio *bio, struct block_device *bdev)
{
	bio_set_dev(bio, bdev);
}

bool fr1_bio_chained(struct bio *bio)
{
	return bio_flagged(bio, BIO_CHAIN);
}
