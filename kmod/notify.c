// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel notifications.
 *
 * The operations that cause them (HELLO, disconnect, name changes, reply
 * slots ending) hold bus locks at that moment, while delivering one means
 * routing a message, which takes those locks again. So a notification is
 * first recorded as a small note on the bus, and kd_notify_flush(), run
 * once the locks are dropped, turns the notes into messages and routes
 * them. One flusher at a time, taking notes in the order they were
 * recorded, keeps the order receivers see them in. A notification is only
 * kernel memory, so delivery writes every copy under bus->lock (read),
 * each receiver's queue taking its conn->lock inside it.
 */

#include <linux/err.h>
#include <linux/list.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "bus.h"
#include "conn.h"
#include "match.h"
#include "msg.h"
#include "notify.h"
#include "policy.h"
#include "queue.h"
#include "route.h"

/* one recorded notification; @payload is the item's, @len bytes */
struct kd_note {
	struct list_head node;		/* kd_notify.pending */
	u64 type;			/* KDBUS_ITEM_* */
	u64 dst_id;
	u64 cookie_reply;
	size_t len;
	u8 payload[] __aligned(8);
};

/**
 * kd_notify_init() - set up the notification state of a new bus
 * @n:		the bus's kd_notify
 */
void kd_notify_init(struct kd_notify *n)
{
	spin_lock_init(&n->lock);
	INIT_LIST_HEAD(&n->pending);
	mutex_init(&n->flush);
}

static void kd_note_free_all(struct list_head *list)
{
	struct kd_note *note, *tmp;

	list_for_each_entry_safe(note, tmp, list, node) {
		list_del(&note->node);
		kfree(note);
	}
}

/**
 * kd_notify_destroy() - drop what a dead bus never delivered
 * @n:		the bus's kd_notify
 */
void kd_notify_destroy(struct kd_notify *n)
{
	LIST_HEAD(left);

	spin_lock(&n->lock);
	list_splice_init(&n->pending, &left);
	spin_unlock(&n->lock);
	kd_note_free_all(&left);
	mutex_destroy(&n->flush);
}

/*
 * A note with room for @len bytes of payload. Notes are few and short
 * lived and the triggering operation is bounded by its own limits, so
 * they are not charged to a memory cgroup. A failed allocation loses the
 * notification, as a full receiver queue would.
 */
static struct kd_note *kd_note_new(u64 type, u64 dst_id, u64 cookie_reply,
				   size_t len)
{
	struct kd_note *note;

	might_sleep();
	note = kmalloc(struct_size(note, payload, len), GFP_KERNEL);
	if (!note)
		return NULL;
	note->type = type;
	note->dst_id = dst_id;
	note->cookie_reply = cookie_reply;
	note->len = len;
	return note;
}

static void kd_note_add(struct kd_bus *bus, struct kd_note *note)
{
	spin_lock(&bus->notify.lock);
	list_add_tail(&note->node, &bus->notify.pending);
	spin_unlock(&bus->notify.lock);
}

/**
 * kd_notify_id() - record an ID_ADD or ID_REMOVE broadcast
 * @bus:	the bus
 * @type:	KDBUS_ITEM_ID_ADD or KDBUS_ITEM_ID_REMOVE
 * @id:		the connection that came or went
 * @flags:	its HELLO flags
 *
 * Context: may sleep; may be called under bus and connection locks (not
 * spinlocks). Delivered by the next kd_notify_flush().
 */
void kd_notify_id(struct kd_bus *bus, u64 type, u64 id, u64 flags)
{
	struct kdbus_notify_id_change *p;
	struct kd_note *note;

	note = kd_note_new(type, KDBUS_DST_ID_BROADCAST, 0, sizeof(*p));
	if (!note)
		return;
	p = (void *)note->payload;
	p->id = id;
	p->flags = flags;
	kd_note_add(bus, note);
}

/**
 * kd_notify_name() - record a NAME_ADD, NAME_REMOVE or NAME_CHANGE broadcast
 * @bus:	the bus
 * @type:	KDBUS_ITEM_NAME_ADD, _REMOVE or _CHANGE
 * @old_id:	the previous owner, 0 for NAME_ADD
 * @old_flags:	its name flags
 * @new_id:	the new owner, 0 for NAME_REMOVE
 * @new_flags:	its name flags
 * @name:	the well-known name
 *
 * Context: as kd_notify_id().
 */
void kd_notify_name(struct kd_bus *bus, u64 type, u64 old_id, u64 old_flags,
		    u64 new_id, u64 new_flags, const char *name)
{
	struct kdbus_notify_name_change *p;
	size_t name_len = strlen(name) + 1;
	struct kd_note *note;

	note = kd_note_new(type, KDBUS_DST_ID_BROADCAST, 0,
			   struct_size(p, name, name_len));
	if (!note)
		return;
	p = (void *)note->payload;
	p->old_id.id = old_id;
	p->old_id.flags = old_flags;
	p->new_id.id = new_id;
	p->new_id.flags = new_flags;
	memcpy(p->name, name, name_len);
	kd_note_add(bus, note);
}

/**
 * kd_notify_reply() - record a REPLY_TIMEOUT or REPLY_DEAD for a caller
 * @bus:	the bus
 * @type:	KDBUS_ITEM_REPLY_TIMEOUT or KDBUS_ITEM_REPLY_DEAD
 * @dst_id:	the caller
 * @cookie:	the cookie of its call, sent back as cookie_reply
 *
 * The message carries no payload and needs no match rule.
 *
 * Context: as kd_notify_id().
 */
void kd_notify_reply(struct kd_bus *bus, u64 type, u64 dst_id, u64 cookie)
{
	struct kd_note *note;

	note = kd_note_new(type, dst_id, cookie, 0);
	if (note)
		kd_note_add(bus, note);
}

/* --- delivery ------------------------------------------------------ */

static void kd_notify_deliver_one(struct kd_conn *c, const struct kd_msg *m)
{
	size_t len = kd_msg_slice_len(m, 0);
	struct kd_entry *e;

	e = kd_queue_reserve(c, 0, len, 0);
	if (IS_ERR(e)) {
		if (PTR_ERR(e) != -ECONNRESET)
			kd_route_lost(c);
		return;
	}
	kd_msg_fill_entry(m, e, len, 0);
	if (kd_msg_write(m, e->slice, NULL)) {
		kd_queue_cancel(c, e);
		kd_route_lost(c);
		return;
	}
	kd_queue_commit(c, e);
}

/* the name a NAME_* notification is about, else NULL */
static const char *kd_notify_name_of(const struct kd_msg *m)
{
	const struct kdbus_notify_name_change *nc = m->notify;

	switch (m->notify_type) {
	case KDBUS_ITEM_NAME_ADD:
	case KDBUS_ITEM_NAME_REMOVE:
	case KDBUS_ITEM_NAME_CHANGE:
		return nc->name;
	default:
		return NULL;
	}
}

/*
 * Monitors get every notification. A broadcast goes to each ordinary
 * connection with a matching rule (and, for NAME_*, allowed to see the
 * name); a unicast to its dst_id. Failed deliveries count as lost.
 * Sleeps; the caller holds no bus lock. @m stays the caller's.
 */
static void kd_notify_deliver(struct kd_bus *bus, struct kd_msg *m)
{
	bool bcast = m->head->dst_id == KDBUS_DST_ID_BROADCAST;
	const char *name = kd_notify_name_of(m);
	struct kd_conn *c;

	/* only kernel memory is written: all of it under the bus lock */
	down_read(&bus->lock);
	list_for_each_entry(c, &bus->monitors, monitor_node)
		kd_notify_deliver_one(c, m);
	if (bcast) {
		list_for_each_entry(c, &bus->all_conns, all_node) {
			if (!kd_conn_ordinary(c) || !kd_match(c, m))
				continue;
			if (name && !kd_may_see_name(c, name))
				continue;
			kd_notify_deliver_one(c, m);
		}
	}
	up_read(&bus->lock);

	if (bcast)
		return;
	c = kd_bus_find_conn(bus, m->head->dst_id);
	if (c && kd_conn_ordinary(c))
		kd_notify_deliver_one(c, m);
	kd_conn_put(c);
}

/**
 * kd_notify_flush() - deliver every recorded notification, in order
 * @bus:	the bus
 *
 * Notes recorded while this runs wait for the next flush, which is
 * whoever recorded them; flushers queue up on the flush mutex, so a note
 * is never delivered ahead of one recorded before it.
 *
 * Context: sleeps; no lock held (delivery takes the registry and
 * connection locks).
 */
void kd_notify_flush(struct kd_bus *bus)
{
	struct kd_notify *n = &bus->notify;
	struct kd_note *note, *tmp;
	struct kd_msg *m;
	LIST_HEAD(batch);

	mutex_lock(&n->flush);
	spin_lock(&n->lock);
	list_splice_init(&n->pending, &batch);
	spin_unlock(&n->lock);

	list_for_each_entry_safe(note, tmp, &batch, node) {
		list_del(&note->node);
		m = kd_msg_kernel(bus, note->dst_id, note->cookie_reply,
				  note->type, note->payload, note->len);
		if (!IS_ERR_OR_NULL(m)) {
			kd_notify_deliver(bus, m);
			kd_msg_free(m);
		}
		kfree(note);
	}
	mutex_unlock(&n->flush);
}
