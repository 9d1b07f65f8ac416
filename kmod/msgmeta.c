// SPDX-License-Identifier: GPL-2.0
/*
 * The metadata of one message (spec 13.3): what its receivers may learn
 * about the sender, gathered at SEND only as far as some receiver wants
 * it, and written per receiver into its slice.
 *
 * Collecting takes the registry lock for reading (OWNED_NAME) and may
 * read the sender's memory (CMDLINE), so it runs before SEND takes any
 * bus lock or enters the sender; emitting takes no lock at all.
 */

#include <linux/ktime.h>
#include <linux/rwsem.h>
#include <linux/string.h>
#include <linux/timekeeping.h>

#include "bus.h"
#include "conn.h"
#include "ep.h"
#include "item.h"
#include "meta.h"
#include "names.h"
#include "policy.h"

/**
 * kd_msg_meta_init() - start the metadata of a message
 * @mm:		the message's metadata
 * @seq:	the bus sequence number of the message
 *
 * Nothing is collected yet, not even the time: kd_msg_meta_collect() reads
 * the clocks only if a receiver wants TIMESTAMP (a clock read can cost
 * more than the rest of a small SEND).
 */
void kd_msg_meta_init(struct kd_msg_meta *mm, u64 seq)
{
	mm->collected = 0;
	mm->proc = NULL;
	kd_buf_init(&mm->names);
	mm->ts.seqnum = seq;
}

/**
 * kd_msg_meta_release() - free what a message's metadata holds
 * @mm:		the message's metadata
 */
void kd_msg_meta_release(struct kd_msg_meta *mm)
{
	kd_meta_put(mm->proc);
	mm->proc = NULL;
	kd_buf_release(&mm->names);
}

/* OWNED_NAME items of @src, as they are now, for every receiver */
static int kd_msg_meta_take_names(struct kd_msg_meta *mm,
				  const struct kd_conn *src)
{
	struct kd_registry *r = &src->bus->names;

	down_read(&r->lock);
	kd_meta_emit_names(&mm->names, src, NULL);
	up_read(&r->lock);
	if (mm->names.err) {
		kd_buf_release(&mm->names);
		return -ENOMEM;
	}
	return 0;
}

/**
 * kd_msg_meta_collect() - gather what receivers of a message may want
 * @mm:		the message's metadata
 * @src:	the sending connection, or NULL for the kernel
 * @mask:	KDBUS_ATTACH_* that some receiver wants
 *
 * Only items not collected yet are gathered; a later call may add more.
 * Process items describe the sending task, except that a connection with
 * faked metadata sends none. Takes src->bus->names.lock for reading and
 * may read the sender's memory: the caller holds no bus lock and is not
 * inside kd_conn_enter().
 *
 * Return: 0 or -ENOMEM.
 */
int kd_msg_meta_collect(struct kd_msg_meta *mm, struct kd_conn *src,
			u64 mask)
{
	u64 want = mask & _KDBUS_ATTACH_ALL & ~mm->collected;
	int ret;

	if (want & KDBUS_ATTACH_TIMESTAMP) {
		mm->ts.monotonic_ns = ktime_get_ns();
		mm->ts.realtime_ns = ktime_get_real_ns();
		mm->collected |= KDBUS_ATTACH_TIMESTAMP;
	}
	if (!want || !src)
		return 0;

	if ((want & KD_ATTACH_PROC) && !src->faked) {
		u64 proc = (mm->collected | want) & KD_ATTACH_PROC;
		struct kd_meta *m = kd_meta_snapshot(proc);

		if (!m)
			return -ENOMEM;
		/* the new snapshot covers the old one's items too */
		kd_meta_put(mm->proc);
		mm->proc = m;
	}
	if (want & KDBUS_ATTACH_NAMES) {
		ret = kd_msg_meta_take_names(mm, src);
		if (ret)
			return ret;
	}
	/* CONN_DESCRIPTION is read from @src when emitted */
	mm->collected |= want;
	return 0;
}

/**
 * kd_msg_meta_mask() - which items a receiver gets on a message
 * @src:	the sender, or NULL for a kernel notification
 * @dst:	the receiver
 *
 * What the receiver asks for, of the implicit items and those the sender
 * offers (deviation 1). Kernel notifications carry a timestamp only.
 *
 * Return: KDBUS_ATTACH_* bits.
 */
u64 kd_msg_meta_mask(const struct kd_conn *src, const struct kd_conn *dst)
{
	u64 offered;

	if (!src)
		return KDBUS_ATTACH_TIMESTAMP;
	offered = KD_ATTACH_IMPLICIT | atomic64_read(&src->attach_send);
	return atomic64_read(&dst->attach_recv) & offered & _KDBUS_ATTACH_ALL;
}

/* names a receiver on a custom endpoint may not SEE are left out */
static void kd_msg_meta_emit_names(struct kd_buf *out,
				   const struct kd_msg_meta *mm,
				   const struct kd_conn *dst)
{
	const struct kdbus_item *first = (const void *)mm->names.data;
	const struct kdbus_item *item;
	void *p;

	if (!mm->names.len)
		return;
	if (dst->ep->is_default) {
		p = kd_buf_append(out, mm->names.len);
		if (p)
			memcpy(p, mm->names.data, mm->names.len);
		return;
	}
	kd_items_foreach(item, first, mm->names.len) {
		if (!kd_may_see_name(dst, item->name.name))
			continue;
		p = kd_buf_append(out, item->size);
		if (p)
			memcpy(p, item, item->size);
	}
}

/**
 * kd_msg_meta_emit() - write a receiver's metadata items of a message
 * @out:	where the items go
 * @mm:		the message's metadata
 * @src:	the sender, or NULL for a kernel notification
 * @mask:	what @dst gets (kd_msg_meta_mask()); limited to what was
 *		collected
 * @dst:	the receiver
 *
 * Process items first, then OWNED_NAME, CONN_DESCRIPTION and TIMESTAMP,
 * in the order of spec 13.3.
 */
void kd_msg_meta_emit(struct kd_buf *out, const struct kd_msg_meta *mm,
		      const struct kd_conn *src, u64 mask,
		      const struct kd_conn *dst)
{
	struct kdbus_timestamp *ts;

	mask &= mm->collected;
	if (!mask)
		return;

	if (mask & KD_ATTACH_PROC)
		kd_meta_emit(out, mm->proc, mask, dst);
	if (mask & KDBUS_ATTACH_NAMES)
		kd_msg_meta_emit_names(out, mm, dst);
	if ((mask & KDBUS_ATTACH_CONN_DESCRIPTION) && src && src->description)
		kd_buf_item_str(out, KDBUS_ITEM_CONN_DESCRIPTION,
				src->description);
	if (mask & KDBUS_ATTACH_TIMESTAMP) {
		ts = kd_buf_item(out, KDBUS_ITEM_TIMESTAMP, sizeof(*ts));
		if (ts)
			*ts = mm->ts;
	}
}
