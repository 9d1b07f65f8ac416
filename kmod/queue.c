// SPDX-License-Identifier: GPL-2.0
/*
 * The message queue of a connection: a FIFO list plus a tree sorted by
 * (priority, arrival) for RECV with KDBUS_RECV_USE_PRIORITY.
 *
 * Every queue entry owns an accounted slice in the receiver's pool and
 * is counted in the receiver's quota of the sending user (connection.c).
 *
 * Locking: everything here runs under the receiving connection's lock.
 */

#include <linux/init.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uio.h>

#include "connection.h"
#include "domain.h"
#include "item.h"
#include "message.h"
#include "metadata.h"
#include "pool.h"
#include "queue.h"
#include "reply.h"

/**
 * kdbus_queue_init() - initialize data structure related to a queue
 * @queue:	The queue to initialize
 */
void kdbus_queue_init(struct kdbus_queue *queue)
{
	INIT_LIST_HEAD(&queue->msg_list);
	queue->msg_prio_queue = RB_ROOT_CACHED;
	queue->msg_count = 0;
	queue->seq = 0;
}

/**
 * kdbus_queue_peek() - Retrieves an entry from a queue
 * @queue:		The queue
 * @priority:		The minimum priority of the entry to peek
 * @use_priority:	Boolean flag whether or not to peek by priority
 *
 * Look for a entry in a queue, either by priority, or the oldest one (FIFO).
 * The entry is not freed, put off the queue's lists or anything else.
 *
 * Return: the peeked queue entry on success, NULL if no suitable msg is found
 */
struct kdbus_queue_entry *kdbus_queue_peek(struct kdbus_queue *queue,
					   s64 priority, bool use_priority)
{
	struct kdbus_queue_entry *e;

	if (list_empty(&queue->msg_list))
		return NULL;

	if (use_priority) {
		e = rb_entry(rb_first_cached(&queue->msg_prio_queue),
			     struct kdbus_queue_entry, prio_node);
		if (e->priority > priority)
			return NULL;
	} else {
		e = list_first_entry(&queue->msg_list,
				     struct kdbus_queue_entry, entry);
	}

	return e;
}

static void kdbus_queue_entry_link(struct kdbus_queue_entry *entry)
{
	struct kdbus_queue *queue = &entry->conn->queue;
	struct rb_node **n, *pn = NULL;
	bool leftmost = true;

	lockdep_assert_held(&entry->conn->lock);

	if (WARN_ON(!list_empty(&entry->entry)))
		return;

	entry->seq = ++queue->seq;

	/* lowest numeric priority first; equal priorities keep their order */
	n = &queue->msg_prio_queue.rb_root.rb_node;
	while (*n) {
		struct kdbus_queue_entry *e;

		pn = *n;
		e = rb_entry(pn, struct kdbus_queue_entry, prio_node);
		if (entry->priority < e->priority) {
			n = &pn->rb_left;
		} else {
			n = &pn->rb_right;
			leftmost = false;
		}
	}

	rb_link_node(&entry->prio_node, pn, n);
	rb_insert_color_cached(&entry->prio_node, &queue->msg_prio_queue,
			       leftmost);

	list_add_tail(&entry->entry, &queue->msg_list);
	++queue->msg_count;
}

static void kdbus_queue_entry_unlink(struct kdbus_queue_entry *entry)
{
	struct kdbus_queue *queue = &entry->conn->queue;

	lockdep_assert_held(&entry->conn->lock);

	if (list_empty(&entry->entry))
		return;

	list_del_init(&entry->entry);
	rb_erase_cached(&entry->prio_node, &queue->msg_prio_queue);
	--queue->msg_count;
}

/**
 * kdbus_queue_entry_new() - allocate a queue entry
 * @src:	source connection, or NULL
 * @dst:	destination connection
 * @staging:	staging object
 *
 * Allocates a queue entry for @dst, accounts it in the quota of the sender
 * and writes the message into a new slice of @dst's pool. The caller holds
 * dst->lock.
 *
 * Return: Pointer to a new queue entry, or ERR_PTR on failure.
 */
struct kdbus_queue_entry *kdbus_queue_entry_new(struct kdbus_conn *src,
						struct kdbus_conn *dst,
						struct kdbus_staging *staging)
{
	struct kdbus_user *user = src ? src->user : NULL;
	size_t n_fds = staging->gaps ? staging->gaps->n_fds : 0;
	struct kdbus_staging_render r;
	struct kdbus_queue_entry *entry;
	int ret;

	lockdep_assert_held(&dst->lock);

	entry = kzalloc(sizeof(*entry), GFP_KERNEL);
	if (!entry)
		return ERR_PTR(-ENOMEM);

	kdbus_obj_inc(KDBUS_OBJ_QUEUE_ENTRY);
	INIT_LIST_HEAD(&entry->entry);
	entry->priority = staging->msg->priority;
	entry->conn = kdbus_conn_ref(dst);
	entry->gaps = kdbus_gaps_ref(staging->gaps);

	ret = kdbus_staging_render(staging, src, dst, &r);
	if (ret < 0)
		goto exit_free;

	ret = kdbus_conn_quota_inc(dst, user, r.size, n_fds);
	if (ret < 0)
		goto exit_render;

	entry->user = kdbus_user_ref(user);
	entry->accounted_size = r.size;
	entry->accounted_fds = n_fds;

	entry->slice = kdbus_pool_slice_alloc(dst->pool, r.size, true);
	if (IS_ERR(entry->slice)) {
		ret = PTR_ERR(entry->slice);
		entry->slice = NULL;
		goto exit_render;
	}

	ret = kdbus_staging_write(staging, &r, entry->slice);
	if (ret < 0)
		goto exit_render;

	kdbus_staging_render_free(&r);
	return entry;

exit_render:
	kdbus_staging_render_free(&r);
exit_free:
	kdbus_queue_entry_free(entry);
	return ERR_PTR(ret);
}

/**
 * kdbus_queue_entry_free() - free resources of an entry
 * @entry:	The entry to free
 *
 * Removes resources allocated by a queue entry, along with the entry itself.
 * Note that the entry's slice is not freed at this point if userspace still
 * holds a reference to it. The caller holds entry->conn->lock.
 */
void kdbus_queue_entry_free(struct kdbus_queue_entry *entry)
{
	if (!entry)
		return;

	lockdep_assert_held(&entry->conn->lock);

	kdbus_queue_entry_unlink(entry);
	if (entry->accounted_size)
		kdbus_conn_quota_dec(entry->conn, entry->user,
				     entry->accounted_size,
				     entry->accounted_fds);

	kdbus_reply_unref(entry->reply);
	kdbus_pool_slice_release(entry->slice);
	kdbus_user_unref(entry->user);
	kdbus_gaps_unref(entry->gaps);
	kdbus_conn_unref(entry->conn);
	kdbus_obj_dec(KDBUS_OBJ_QUEUE_ENTRY);
	kfree(entry);
}

/**
 * kdbus_queue_entry_install() - install message components into the
 *				 receiver's process
 * @entry:		The queue entry to install
 * @return_flags:	Pointer to store the return flags for userspace
 * @install_fds:	Whether to install the fds of the FDS item
 *
 * Called for a real RECV only (PEEK installs nothing). memfds are payload
 * and always installed; without @install_fds (receivers that do not
 * accept fds: monitors) the FDS numbers read -1.
 *
 * Return: 0 on success, negative error code on failure.
 */
int kdbus_queue_entry_install(struct kdbus_queue_entry *entry,
			      u64 *return_flags, bool install_fds)
{
	bool incomplete_fds = false;
	int ret;

	lockdep_assert_held(&entry->conn->lock);

	ret = kdbus_gaps_install(entry->gaps, entry->slice, install_fds,
				 &incomplete_fds);
	if (ret < 0)
		return ret;

	if (incomplete_fds)
		*return_flags |= KDBUS_RECV_RETURN_INCOMPLETE_FDS;
	return 0;
}

/**
 * kdbus_queue_entry_enqueue() - enqueue an entry
 * @entry:		entry to enqueue
 * @reply:		reply to link to this entry (or NULL if none)
 *
 * This enqueues an unqueued entry into the message queue of the linked
 * connection. It also binds a reply object to the entry so we can remember
 * it when the message is moved.
 */
void kdbus_queue_entry_enqueue(struct kdbus_queue_entry *entry,
			       struct kdbus_reply *reply)
{
	lockdep_assert_held(&entry->conn->lock);

	if (WARN_ON(entry->reply) || WARN_ON(!list_empty(&entry->entry)))
		return;

	entry->reply = kdbus_reply_ref(reply);
	kdbus_queue_entry_link(entry);
}

/**
 * kdbus_queue_entry_move() - move queue entry
 * @e:		queue entry to move
 * @dst:	destination connection to queue the entry on
 *
 * This moves a queue entry onto a different connection. It allocates a new
 * slice on the target connection and copies the message over. If the copy
 * succeeded, we move the entry from @src to @dst. Both connections are
 * locked by the caller.
 *
 * On failure, the entry is left untouched.
 *
 * Return: 0 on success, negative error code on failure.
 */
int kdbus_queue_entry_move(struct kdbus_queue_entry *e,
			   struct kdbus_conn *dst)
{
	struct kdbus_pool_slice *slice = NULL;
	struct kdbus_conn *src = e->conn;
	size_t size, fds;
	int ret;

	lockdep_assert_held(&src->lock);
	lockdep_assert_held(&dst->lock);

	if (WARN_ON(list_empty(&e->entry)))
		return -EINVAL;
	if (src == dst)
		return 0;

	size = kdbus_pool_slice_size(e->slice);
	fds = e->gaps ? e->gaps->n_fds : 0;

	ret = kdbus_conn_quota_inc(dst, e->user, size, fds);
	if (ret < 0)
		return ret;

	slice = kdbus_pool_slice_alloc(dst->pool, size, true);
	if (IS_ERR(slice)) {
		ret = PTR_ERR(slice);
		slice = NULL;
		goto error;
	}

	ret = kdbus_pool_slice_copy(slice, e->slice);
	if (ret < 0)
		goto error;

	kdbus_queue_entry_unlink(e);
	kdbus_conn_quota_dec(src, e->user, e->accounted_size,
			     e->accounted_fds);
	kdbus_pool_slice_release(e->slice);
	kdbus_conn_unref(e->conn);

	e->slice = slice;
	e->conn = kdbus_conn_ref(dst);
	e->accounted_size = size;
	e->accounted_fds = fds;
	kdbus_queue_entry_link(e);

	return 0;

error:
	kdbus_pool_slice_release(slice);
	kdbus_conn_quota_dec(dst, e->user, size, fds);
	return ret;
}
