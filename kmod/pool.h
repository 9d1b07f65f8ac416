/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The receive pool of a connection: pages only the kernel writes and the
 * receiver maps read-only, carved into slices, one per published result.
 */
#ifndef KD_POOL_H
#define KD_POOL_H

#include "kd.h"

struct vm_area_struct;

/* module init and exit (main.c): the slab cache of slices */
int kd_slice_cache_init(void);
void kd_slice_cache_exit(void);

struct kd_pool *kd_pool_new(size_t size, const char *description);
void kd_pool_destroy(struct kd_pool *pool);
size_t kd_pool_size(const struct kd_pool *pool);
int kd_pool_mmap(struct kd_pool *pool, struct vm_area_struct *vma);

/*
 * A slice has two references: the kernel's (held from allocation until
 * kd_slice_drop(), e.g. while its message is queued) and the receiver's
 * (from kd_slice_publish() until KDBUS_CMD_FREE). It returns to the free
 * space when both are gone. @accounted slices count against the half of
 * the pool that other connections' messages may fill.
 */
struct kd_slice *kd_slice_new(struct kd_pool *pool, size_t size,
			      bool accounted);
void kd_slice_publish(struct kd_slice *slice);
void kd_slice_drop(struct kd_slice *slice);
int kd_pool_free_offset(struct kd_pool *pool, u64 offset);
u64 kd_slice_offset(const struct kd_slice *slice);
size_t kd_slice_size(const struct kd_slice *slice);

/* bytes of @pool in accounted slices, for the quota rules */
size_t kd_pool_accounted(struct kd_pool *pool);

/* writes into a slice; @off is relative to the slice */
int kd_slice_write(struct kd_slice *s, size_t off, const void *src,
		   size_t len);
int kd_slice_write_user(struct kd_slice *s, size_t off,
			const void __user *src, size_t len);
int kd_slice_clear(struct kd_slice *s, size_t off, size_t len);
int kd_slice_copy(struct kd_slice *dst, const struct kd_slice *src,
		  size_t len);
int kd_slice_read(const struct kd_slice *s, size_t off, void *dst,
		  size_t len);

#endif /* KD_POOL_H */
