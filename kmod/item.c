// SPDX-License-Identifier: GPL-2.0
/*
 * Item framing and validation (spec §5).
 */

#include <linux/capability.h>
#include <linux/ctype.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/string.h>

#include "item.h"
#include "limits.h"
#include "util.h"

/**
 * kdbus_sysname_is_valid() - check a bus, endpoint or description name
 * @name:	NUL-terminated name
 *
 * Allowed are [A-Za-z0-9_], plus '-' and '.' anywhere but at the first and
 * the last position.
 *
 * Return: true if @name is valid.
 */
bool kdbus_sysname_is_valid(const char *name)
{
	size_t i, len = strlen(name);

	if (len == 0)
		return false;

	for (i = 0; i < len; i++) {
		if (isalnum(name[i]) || name[i] == '_')
			continue;
		if ((name[i] == '-' || name[i] == '.') && i > 0 && i < len - 1)
			continue;
		return false;
	}

	return true;
}

static int kdbus_item_validate_name(const struct kdbus_item *item)
{
	const char *name = item->str;

	if (item->size < KDBUS_ITEM_HEADER_SIZE + 2)
		return -EINVAL;

	if (item->size > KDBUS_ITEM_HEADER_SIZE + KDBUS_SYSNAME_MAX_LEN + 1)
		return -ENAMETOOLONG;

	if (!kdbus_str_valid(name, KDBUS_ITEM_PAYLOAD_SIZE(item)))
		return -EINVAL;

	return kdbus_sysname_is_valid(name) ? 0 : -EINVAL;
}

/**
 * kdbus_item_validate() - validate a single item
 * @item:	item to validate; its header must lie within the stream
 *
 * Return: 0 if item is valid, negative error code if not.
 */
int kdbus_item_validate(const struct kdbus_item *item)
{
	size_t payload_size = KDBUS_ITEM_PAYLOAD_SIZE(item);
	size_t l;

	BUILD_BUG_ON(KDBUS_ITEM_HEADER_SIZE != 16);

	if (item->size < KDBUS_ITEM_HEADER_SIZE)
		return -EINVAL;

	switch (item->type) {
	case KDBUS_ITEM_NEGOTIATE:
		if (payload_size % sizeof(u64) != 0)
			return -EINVAL;
		break;

	case KDBUS_ITEM_PAYLOAD_VEC:
	case KDBUS_ITEM_PAYLOAD_OFF:
		if (payload_size != sizeof(struct kdbus_vec))
			return -EINVAL;
		if (item->vec.size == 0 || item->vec.size > SIZE_MAX)
			return -EINVAL;
		break;

	case KDBUS_ITEM_PAYLOAD_MEMFD:
		if (payload_size != sizeof(struct kdbus_memfd))
			return -EINVAL;
		if (item->memfd.size == 0 || item->memfd.size > SIZE_MAX)
			return -EINVAL;
		if (item->memfd.fd < 0)
			return -EBADF;
		break;

	case KDBUS_ITEM_FDS:
		if (payload_size % sizeof(int) != 0)
			return -EINVAL;
		break;

	case KDBUS_ITEM_CANCEL_FD:
		if (payload_size != sizeof(int))
			return -EINVAL;
		break;

	case KDBUS_ITEM_BLOOM_PARAMETER:
		if (payload_size != sizeof(struct kdbus_bloom_parameter))
			return -EINVAL;
		break;

	case KDBUS_ITEM_BLOOM_FILTER:
		/* followed by the bloom-mask, depends on the bloom-size */
		if (payload_size < sizeof(struct kdbus_bloom_filter))
			return -EINVAL;
		break;

	case KDBUS_ITEM_BLOOM_MASK:
		/* size depends on bloom-size of bus */
		break;

	case KDBUS_ITEM_CONN_DESCRIPTION:
	case KDBUS_ITEM_MAKE_NAME:
		return kdbus_item_validate_name(item);

	case KDBUS_ITEM_ATTACH_FLAGS_SEND:
	case KDBUS_ITEM_ATTACH_FLAGS_RECV:
	case KDBUS_ITEM_ID:
	case KDBUS_ITEM_DST_ID:
		if (payload_size != sizeof(u64))
			return -EINVAL;
		break;

	case KDBUS_ITEM_TIMESTAMP:
		if (payload_size != sizeof(struct kdbus_timestamp))
			return -EINVAL;
		break;

	case KDBUS_ITEM_CREDS:
		if (payload_size != sizeof(struct kdbus_creds))
			return -EINVAL;
		break;

	case KDBUS_ITEM_PIDS:
		if (payload_size != sizeof(struct kdbus_pids))
			return -EINVAL;
		break;

	case KDBUS_ITEM_AUXGROUPS:
		if (payload_size % sizeof(u32) != 0)
			return -EINVAL;
		break;

	case KDBUS_ITEM_NAME:
	case KDBUS_ITEM_DST_NAME:
	case KDBUS_ITEM_PID_COMM:
	case KDBUS_ITEM_TID_COMM:
	case KDBUS_ITEM_EXE:
	case KDBUS_ITEM_CMDLINE:
	case KDBUS_ITEM_CGROUP:
	case KDBUS_ITEM_SECLABEL:
		if (!kdbus_str_valid(item->str, payload_size))
			return -EINVAL;
		break;

	case KDBUS_ITEM_CAPS:
		if (payload_size < sizeof(u32))
			return -EINVAL;
		if (item->caps.last_cap > 1024 ||
		    payload_size < sizeof(u32) +
		    4 * (item->caps.last_cap / 32 + 1) * sizeof(u32))
			return -EINVAL;
		break;

	case KDBUS_ITEM_AUDIT:
		if (payload_size != sizeof(struct kdbus_audit))
			return -EINVAL;
		break;

	case KDBUS_ITEM_POLICY_ACCESS:
		if (payload_size != sizeof(struct kdbus_policy_access))
			return -EINVAL;
		break;

	case KDBUS_ITEM_NAME_ADD:
	case KDBUS_ITEM_NAME_REMOVE:
	case KDBUS_ITEM_NAME_CHANGE:
		if (payload_size < sizeof(struct kdbus_notify_name_change))
			return -EINVAL;
		l = payload_size - offsetof(struct kdbus_notify_name_change,
					    name);
		if (l > 0 && !kdbus_str_valid(item->name_change.name, l))
			return -EINVAL;
		break;

	case KDBUS_ITEM_ID_ADD:
	case KDBUS_ITEM_ID_REMOVE:
		if (payload_size != sizeof(struct kdbus_notify_id_change))
			return -EINVAL;
		break;

	case KDBUS_ITEM_REPLY_TIMEOUT:
	case KDBUS_ITEM_REPLY_DEAD:
		if (payload_size != 0)
			return -EINVAL;
		break;

	default:
		break;
	}

	return 0;
}

/**
 * kdbus_items_walk() - step through an untrusted item stream
 * @items:	start of the stream (kernel memory)
 * @size:	size of the stream in bytes
 * @next:	out: the item at @pos, or NULL at the end of the stream
 * @pos:	in/out: byte offset of the next item
 *
 * Checks that the item at @pos has a complete header and lies within the
 * stream. The walk must end exactly at the 8-byte aligned end of the
 * stream (trailing padding of the last item may be given or omitted).
 *
 * Return: 0 with *@next set to the item or to NULL at a correct end,
 *	   -EINVAL if the stream is malformed.
 */
int kdbus_items_walk(const struct kdbus_item *items, size_t size,
		     const struct kdbus_item **next, size_t *pos)
{
	const struct kdbus_item *item;
	size_t p = *pos;

	*next = NULL;

	if (p >= size)
		return p == KDBUS_ALIGN8(size) ? 0 : -EINVAL;

	if (size - p < KDBUS_ITEM_HEADER_SIZE)
		return -EINVAL;

	item = (const void *)((const u8 *)items + p);
	if (item->size < KDBUS_ITEM_HEADER_SIZE || item->size > size - p)
		return -EINVAL;

	*pos = p + KDBUS_ALIGN8((size_t)item->size);
	*next = item;
	return 0;
}

/**
 * kdbus_item_set() - set item content
 * @item:	The item to modify
 * @type:	The item type to set (KDBUS_ITEM_*)
 * @data:	Data to copy to item->data, may be %NULL
 * @len:	Number of bytes in @data
 *
 * This sets type, size and data fields of an item. If @data is NULL, the data
 * memory is cleared. The padding up to the next item boundary is cleared.
 *
 * Return: Pointer to the following item.
 */
struct kdbus_item *kdbus_item_set(struct kdbus_item *item, u64 type,
				  const void *data, size_t len)
{
	item->type = type;
	item->size = KDBUS_ITEM_HEADER_SIZE + len;

	if (data) {
		memcpy(item->data, data, len);
		memset(item->data + len, 0, KDBUS_ALIGN8(len) - len);
	} else {
		memset(item->data, 0, KDBUS_ALIGN8(len));
	}

	return KDBUS_ITEM_NEXT(item);
}
