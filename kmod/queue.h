/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The incoming message queue of a connection.
 */

#ifndef __KDBUS_QUEUE_H
#define __KDBUS_QUEUE_H

#include <linux/list.h>
#include <linux/rbtree.h>

struct kdbus_conn;
struct kdbus_pool_slice;
struct kdbus_reply;
struct kdbus_staging;
struct kdbus_user;
struct kdbus_gaps;

/**
 * struct kdbus_queue - a connection's message queue
 * @msg_count:		Number of messages in the queue
 * @msg_list:		List head for kdbus_queue_entry objects (FIFO)
 * @msg_prio_queue:	RB tree root for messages, sorted by priority, then
 *			by arrival
 * @seq:		Arrival counter
 */
struct kdbus_queue {
	size_t msg_count;
	struct list_head msg_list;
	struct rb_root_cached msg_prio_queue;
	u64 seq;
};

/**
 * struct kdbus_queue_entry - messages waiting to be read
 * @entry:		Entry in the connection's list
 * @prio_node:		Entry in the priority queue tree
 * @priority:		Message priority
 * @seq:		Arrival number in the queue
 * @dst_name_id:	The sequence number of the name this message is
 *			addressed to, 0 for messages sent to an ID
 * @slice:		Slice in the receiver's pool for the message
 * @conn:		Connection this entry is queued on (reference)
 * @user:		User accounted for the entry, NULL for the kernel
 * @accounted_size:	Pool memory accounted in the quota of @user
 * @accounted_fds:	Fds accounted in the quota of @user
 * @gaps:		Gaps object to fill message gaps at RECV time
 * @reply:		The reply block if a reply to this message is expected
 */
struct kdbus_queue_entry {
	struct list_head entry;
	struct rb_node prio_node;
	s64 priority;
	u64 seq;
	u64 dst_name_id;

	struct kdbus_pool_slice *slice;
	struct kdbus_conn *conn;
	struct kdbus_user *user;
	size_t accounted_size;
	size_t accounted_fds;
	struct kdbus_gaps *gaps;
	struct kdbus_reply *reply;
};

void kdbus_queue_init(struct kdbus_queue *queue);
struct kdbus_queue_entry *kdbus_queue_peek(struct kdbus_queue *queue,
					   s64 priority, bool use_priority);

struct kdbus_queue_entry *kdbus_queue_entry_new(struct kdbus_conn *src,
						struct kdbus_conn *dst,
						struct kdbus_staging *staging);
void kdbus_queue_entry_free(struct kdbus_queue_entry *entry);
int kdbus_queue_entry_install(struct kdbus_queue_entry *entry,
			      u64 *return_flags, bool install_fds);
void kdbus_queue_entry_enqueue(struct kdbus_queue_entry *entry,
			       struct kdbus_reply *reply);
int kdbus_queue_entry_move(struct kdbus_queue_entry *entry,
			   struct kdbus_conn *dst);

#endif
