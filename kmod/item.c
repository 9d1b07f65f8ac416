// SPDX-License-Identifier: GPL-2.0
/*
 * Items in both directions: the framing and payload rules for what
 * userspace hands in (spec 5.1, 5.3), the name rules (spec 10.1) and a
 * small growing buffer the kernel builds its own items in.
 */

#include <linux/kernel.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "item.h"

/* ASCII only: the kernel's ctype tables also classify Latin-1 letters */
static bool kd_ascii_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool kd_ascii_word(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       kd_ascii_digit(c) || c == '_';
}

/**
 * kd_items_check() - check the framing of a list of items
 * @first:	the first item, 8-byte aligned
 * @len:	bytes the list occupies; the last item may omit its padding
 *
 * Every item must have room for its header, declare at least that much
 * and stay inside the list. Since each step advances by the padded size,
 * a walk that never overshoots ends exactly at ALIGN8(@len).
 *
 * Return: 0 or -EINVAL.
 */
int kd_items_check(const struct kdbus_item *first, size_t len)
{
	const u8 *base = (const u8 *)first;
	size_t at = 0;

	while (at < len) {
		const struct kdbus_item *item = (const void *)(base + at);
		size_t room = len - at;

		if (room < KD_ITEM_HDR)
			return -EINVAL;
		if (item->size < KD_ITEM_HDR || item->size > room)
			return -EINVAL;
		at += KD_ALIGN8((size_t)item->size);
	}

	return at == KD_ALIGN8(len) ? 0 : -EINVAL;
}

/* a C string filling @len bytes: its only NUL is the last byte */
static int kd_str_check(const char *s, size_t len)
{
	if (!len || s[len - 1] != '\0')
		return -EINVAL;
	return strnlen(s, len) == len - 1 ? 0 : -EINVAL;
}

static int kd_check_vec(const struct kdbus_item *item, size_t len)
{
	if (len != sizeof(struct kdbus_vec))
		return -EINVAL;
	/* a zero-length vector is meaningless; it must also fit a size_t */
	if (!item->vec.size || (size_t)item->vec.size != item->vec.size)
		return -EINVAL;
	return 0;
}

static int kd_check_memfd(const struct kdbus_item *item, size_t len)
{
	if (len != sizeof(struct kdbus_memfd))
		return -EINVAL;
	if (!item->memfd.size)
		return -EINVAL;
	return item->memfd.fd < 0 ? -EBADF : 0;
}

static int kd_check_caps(const struct kdbus_item *item, size_t len)
{
	u64 words, need;

	if (len < sizeof(u32))
		return -EINVAL;
	/* four sets, each wide enough for bits 0..last_cap */
	words = DIV_ROUND_UP((u64)item->caps.last_cap + 1, 32);
	need = sizeof(u32) + 4 * words * sizeof(u32);
	return len >= need ? 0 : -EINVAL;
}

/* a notify_name_change header, then optionally a name */
static int kd_check_name_change(const struct kdbus_item *item, size_t len)
{
	size_t head = sizeof(struct kdbus_notify_name_change);

	if (len < head)
		return -EINVAL;
	if (len == head)
		return 0;
	return kd_str_check(item->name_change.name, len - head);
}

static int kd_check_owned_name(const struct kdbus_item *item, size_t len)
{
	size_t head = sizeof(struct kdbus_name);

	if (len <= head)
		return -EINVAL;
	return kd_str_check(item->name.name, len - head);
}

/* how the payload of a type is shaped */
enum kd_shape {
	KD_FIXED,		/* exactly @len bytes */
	KD_AT_LEAST,		/* @len bytes or more */
	KD_STRIDE,		/* a whole number of @len-byte entries */
	KD_STRING,		/* one NUL, at the end */
	KD_SYSNAME,		/* a string kd_sysname_check() accepts */
	KD_VEC,
	KD_MEMFD,
	KD_CAPS,
	KD_OWNED_NAME,
	KD_NAME_CHANGE,
};

struct kd_item_shape {
	u16 type;
	u8 shape;
	u8 len;
};

static const struct kd_item_shape kd_item_shapes[] = {
	/* what userspace hands in */
	{ KDBUS_ITEM_NEGOTIATE,		KD_STRIDE,	sizeof(u64) },
	{ KDBUS_ITEM_PAYLOAD_VEC,	KD_VEC,	0 },
	{ KDBUS_ITEM_PAYLOAD_OFF,	KD_VEC,	0 },
	{ KDBUS_ITEM_PAYLOAD_MEMFD,	KD_MEMFD,	0 },
	{ KDBUS_ITEM_FDS,		KD_STRIDE,	sizeof(int) },
	{ KDBUS_ITEM_CANCEL_FD,		KD_FIXED,	sizeof(int) },
	{ KDBUS_ITEM_BLOOM_PARAMETER,	KD_FIXED,
	  sizeof(struct kdbus_bloom_parameter) },
	{ KDBUS_ITEM_BLOOM_FILTER,	KD_AT_LEAST,
	  sizeof(struct kdbus_bloom_filter) },
	{ KDBUS_ITEM_BLOOM_MASK,	KD_AT_LEAST,	0 },
	{ KDBUS_ITEM_DST_NAME,		KD_STRING,	0 },
	{ KDBUS_ITEM_MAKE_NAME,		KD_SYSNAME,	0 },
	{ KDBUS_ITEM_ATTACH_FLAGS_SEND,	KD_FIXED,	sizeof(u64) },
	{ KDBUS_ITEM_ATTACH_FLAGS_RECV,	KD_FIXED,	sizeof(u64) },
	{ KDBUS_ITEM_ID,		KD_FIXED,	sizeof(u64) },
	{ KDBUS_ITEM_NAME,		KD_STRING,	0 },
	{ KDBUS_ITEM_DST_ID,		KD_FIXED,	sizeof(u64) },
	{ KDBUS_ITEM_POLICY_ACCESS,	KD_FIXED,
	  sizeof(struct kdbus_policy_access) },

	/* metadata; CREDS, PIDS, SECLABEL and the description come in too */
	{ KDBUS_ITEM_TIMESTAMP,		KD_FIXED,
	  sizeof(struct kdbus_timestamp) },
	{ KDBUS_ITEM_CREDS,		KD_FIXED,	sizeof(struct kdbus_creds) },
	{ KDBUS_ITEM_PIDS,		KD_FIXED,	sizeof(struct kdbus_pids) },
	{ KDBUS_ITEM_AUXGROUPS,		KD_STRIDE,	sizeof(u32) },
	{ KDBUS_ITEM_OWNED_NAME,	KD_OWNED_NAME,	0 },
	{ KDBUS_ITEM_TID_COMM,		KD_STRING,	0 },
	{ KDBUS_ITEM_PID_COMM,		KD_STRING,	0 },
	{ KDBUS_ITEM_EXE,		KD_STRING,	0 },
	{ KDBUS_ITEM_CMDLINE,		KD_STRING,	0 },
	{ KDBUS_ITEM_CGROUP,		KD_STRING,	0 },
	{ KDBUS_ITEM_CAPS,		KD_CAPS,	0 },
	{ KDBUS_ITEM_SECLABEL,		KD_STRING,	0 },
	{ KDBUS_ITEM_AUDIT,		KD_FIXED,	sizeof(struct kdbus_audit) },
	{ KDBUS_ITEM_CONN_DESCRIPTION,	KD_SYSNAME,	0 },

	/* notifications, and match rules on them */
	{ KDBUS_ITEM_NAME_ADD,		KD_NAME_CHANGE,	0 },
	{ KDBUS_ITEM_NAME_REMOVE,	KD_NAME_CHANGE,	0 },
	{ KDBUS_ITEM_NAME_CHANGE,	KD_NAME_CHANGE,	0 },
	{ KDBUS_ITEM_ID_ADD,		KD_FIXED,
	  sizeof(struct kdbus_notify_id_change) },
	{ KDBUS_ITEM_ID_REMOVE,		KD_FIXED,
	  sizeof(struct kdbus_notify_id_change) },
	{ KDBUS_ITEM_REPLY_TIMEOUT,	KD_FIXED,	0 },
	{ KDBUS_ITEM_REPLY_DEAD,	KD_FIXED,	0 },
};

static const struct kd_item_shape *kd_item_shape_of(u64 type)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(kd_item_shapes); i++)
		if (kd_item_shapes[i].type == type)
			return &kd_item_shapes[i];
	return NULL;
}

/**
 * kd_item_check() - check the payload of one item against its type
 * @item:	an item kd_items_check() accepted
 *
 * Only what the type itself implies is checked here (spec 5.3); what an
 * item means to a command is up to that command.
 *
 * Return: 0, -EINVAL, -ENAMETOOLONG (MAKE_NAME, CONN_DESCRIPTION) or
 * -EBADF (PAYLOAD_MEMFD with a negative fd).
 */
int kd_item_check(const struct kdbus_item *item)
{
	const struct kd_item_shape *sh = kd_item_shape_of(item->type);
	size_t len = kd_item_len(item);
	int ret;

	if (!sh)
		return -EINVAL;

	switch (sh->shape) {
	case KD_FIXED:
		return len == sh->len ? 0 : -EINVAL;
	case KD_AT_LEAST:
		return len >= sh->len ? 0 : -EINVAL;
	case KD_STRIDE:
		return len % sh->len ? -EINVAL : 0;
	case KD_STRING:
		return kd_str_check(item->str, len);
	case KD_SYSNAME:
		ret = kd_str_check(item->str, len);
		return ret ? ret : kd_sysname_check(item->str);
	case KD_VEC:
		return kd_check_vec(item, len);
	case KD_MEMFD:
		return kd_check_memfd(item, len);
	case KD_CAPS:
		return kd_check_caps(item, len);
	case KD_OWNED_NAME:
		return kd_check_owned_name(item, len);
	case KD_NAME_CHANGE:
		return kd_check_name_change(item, len);
	}

	return -EINVAL;
}

/**
 * kd_sysname_check() - check a bus, endpoint or connection description name
 * @name:	a NUL-terminated string
 *
 * 1..63 characters of [A-Za-z0-9_-.], where '-' and '.' may not open or
 * close the name.
 *
 * Return: 0, -ENAMETOOLONG when too long, -EINVAL otherwise.
 */
int kd_sysname_check(const char *name)
{
	size_t len = strnlen(name, KD_SYSNAME_MAX + 1);
	size_t i;

	if (!len)
		return -EINVAL;
	if (len > KD_SYSNAME_MAX)
		return -ENAMETOOLONG;

	for (i = 0; i < len; i++) {
		bool inner = i > 0 && i + 1 < len;
		bool sep = name[i] == '-' || name[i] == '.';

		if (!kd_ascii_word(name[i]) && !(inner && sep))
			return -EINVAL;
	}

	return 0;
}

/**
 * kd_name_ok() - is @name a valid well-known name?
 * @name:	a NUL-terminated string
 * @wildcard:	also accept a policy wildcard ending in ".*"
 *
 * Two or more dot-separated elements, none empty, of [A-Za-z0-9_-], none
 * starting with a digit, 255 characters at most. A wildcard's '*' counts
 * as its last element.
 *
 * Return: true if valid.
 */
bool kd_name_ok(const char *name, bool wildcard)
{
	size_t len = strnlen(name, KD_NAME_MAX + 1);
	unsigned int elements = 1;
	bool fresh = true;	/* at the start of an element */
	size_t i;

	if (!len || len > KD_NAME_MAX)
		return false;

	if (wildcard && len > 2 && name[len - 2] == '.' &&
	    name[len - 1] == '*') {
		len -= 2;
		elements++;
	}

	for (i = 0; i < len; i++) {
		char c = name[i];

		if (c == '.') {
			if (fresh)
				return false;
			elements++;
			fresh = true;
			continue;
		}
		if (!kd_ascii_word(c) && c != '-')
			return false;
		if (fresh && kd_ascii_digit(c))
			return false;
		fresh = false;
	}

	return !fresh && elements >= 2;
}

/* the first allocation of a kd_buf; it doubles from there */
#define KD_BUF_START	256

/**
 * kd_buf_init() - start an empty buffer
 * @b:		the buffer
 */
void kd_buf_init(struct kd_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = 0;
}

/**
 * kd_buf_release() - free what a buffer holds and make it empty again
 * @b:		the buffer
 */
void kd_buf_release(struct kd_buf *b)
{
	kfree(b->data);
	kd_buf_init(b);
}

static bool kd_buf_grow(struct kd_buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : KD_BUF_START;
	u8 *data;

	while (cap < need) {
		if (check_mul_overflow(cap, (size_t)2, &cap))
			return false;
	}

	/* a failure is reported through b->err; no warning splat for it */
	data = krealloc(b->data, cap, GFP_KERNEL | __GFP_NOWARN);
	if (!data)
		return false;

	b->data = data;
	b->cap = cap;
	return true;
}

/**
 * kd_buf_append() - reserve room at the end of a buffer
 * @b:		the buffer
 * @len:	bytes wanted; the buffer grows by ALIGN8(@len)
 *
 * Pointers into the buffer are only good until the next append.
 *
 * Return: the zeroed room, or NULL if this or an earlier append failed.
 */
void *kd_buf_append(struct kd_buf *b, size_t len)
{
	size_t padded, need;
	u8 *room;

	if (b->err)
		return NULL;

	if (check_add_overflow(len, (size_t)7, &padded) ||
	    check_add_overflow(b->len, padded & ~(size_t)7, &need) ||
	    (need > b->cap && !kd_buf_grow(b, need))) {
		b->err = -ENOMEM;
		return NULL;
	}

	room = b->data + b->len;
	memset(room, 0, need - b->len);
	b->len = need;
	return room;
}

/**
 * kd_buf_item() - append an item header and room for its payload
 * @b:		the buffer
 * @type:	KDBUS_ITEM_*
 * @payload:	payload bytes; the item's size field is 16 + @payload
 *
 * Return: the zeroed payload, or NULL on failure (sticky in @b->err).
 */
void *kd_buf_item(struct kd_buf *b, u64 type, size_t payload)
{
	struct kdbus_item *item;
	size_t size;

	if (check_add_overflow(payload, KD_ITEM_HDR, &size)) {
		if (!b->err)
			b->err = -ENOMEM;
		return NULL;
	}

	item = kd_buf_append(b, size);
	if (!item)
		return NULL;

	item->size = size;
	item->type = type;
	return item->data;
}

/**
 * kd_buf_item_str() - append a string item, its NUL included
 * @b:		the buffer
 * @type:	KDBUS_ITEM_*
 * @str:	the string
 */
void kd_buf_item_str(struct kd_buf *b, u64 type, const char *str)
{
	size_t len = strlen(str) + 1;
	char *dst = kd_buf_item(b, type, len);

	if (dst)
		memcpy(dst, str, len);
}
