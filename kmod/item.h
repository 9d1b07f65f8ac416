/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Items: checking the ones userspace hands in, and building the ones the
 * kernel hands out.
 */
#ifndef KD_ITEM_H
#define KD_ITEM_H

#include "kd.h"

#define KD_ITEM_HDR		offsetof(struct kdbus_item, data)

static inline size_t kd_item_len(const struct kdbus_item *item)
{
	return item->size - KD_ITEM_HDR;
}

static inline const struct kdbus_item *kd_item_next(const struct kdbus_item *item)
{
	return (const void *)item + KD_ALIGN8(item->size);
}

/*
 * Walks a list of items of @len bytes that kd_items_check() accepted.
 */
#define kd_items_foreach(item, first, len)				\
	for (item = (first);						\
	     (const void *)(item) < (const void *)(first) + (len);	\
	     item = kd_item_next(item))

int kd_items_check(const struct kdbus_item *first, size_t len);
int kd_item_check(const struct kdbus_item *item);

/* name rules (spec 10.1 and 5.3) */
bool kd_name_ok(const char *name, bool wildcard);
int kd_sysname_check(const char *name);

/*
 * A growing kernel buffer of items. Appends are 8-byte aligned and zeroed;
 * the first failed allocation sticks in @err and later appends are no-ops,
 * so a builder checks once at the end.
 */
struct kd_buf {
	u8 *data;
	size_t len;
	size_t cap;
	int err;
};

void kd_buf_init(struct kd_buf *b);
void kd_buf_release(struct kd_buf *b);
/* reserves ALIGN8(@len) zeroed bytes; returns them, or NULL on failure */
void *kd_buf_append(struct kd_buf *b, size_t len);
/*
 * Appends an item of @payload bytes (size = 16 + @payload, padded to 8);
 * returns its zeroed payload (item->data), or NULL on failure.
 */
void *kd_buf_item(struct kd_buf *b, u64 type, size_t payload);
void kd_buf_item_str(struct kd_buf *b, u64 type, const char *str);

#endif /* KD_ITEM_H */
