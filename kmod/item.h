/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Item framing: sizes, iteration and per-type validation.
 */

#ifndef __KDBUS_ITEM_H
#define __KDBUS_ITEM_H

#include <linux/kernel.h>
#include <linux/kdbus.h>

#include "util.h"

/* generic access and iterators over a stream of items */
#define KDBUS_ITEM_HEADER_SIZE	offsetof(struct kdbus_item, data)
#define KDBUS_ITEM_SIZE(_s)	KDBUS_ALIGN8(KDBUS_ITEM_HEADER_SIZE + (_s))
#define KDBUS_ITEM_PAYLOAD_SIZE(_i) ((_i)->size - KDBUS_ITEM_HEADER_SIZE)

#define KDBUS_ITEMS_SIZE(_h, _is) ((_h)->size - offsetof(typeof(*(_h)), _is))

#define KDBUS_ITEM_NEXT(_i) \
	((typeof(_i))((u8 *)(_i) + KDBUS_ALIGN8((_i)->size)))

/*
 * Iterates over an item stream that has been validated before (see
 * kdbus_items_validate()): every item is at least a header and lies
 * entirely within the stream.
 */
#define KDBUS_ITEMS_FOREACH(_i, _is, _s)				\
	for ((_i) = (_is);						\
	     ((u8 *)(_i) < (u8 *)(_is) + (_s)) &&			\
	       ((u8 *)(_i) >= (u8 *)(_is));				\
	     (_i) = KDBUS_ITEM_NEXT(_i))

int kdbus_item_validate(const struct kdbus_item *item);
int kdbus_items_walk(const struct kdbus_item *items, size_t size,
		     const struct kdbus_item **next, size_t *pos);
bool kdbus_sysname_is_valid(const char *name);
struct kdbus_item *kdbus_item_set(struct kdbus_item *item, u64 type,
				  const void *data, size_t len);

#endif
