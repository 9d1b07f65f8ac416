/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reply slots of method calls.
 */

#ifndef __KDBUS_REPLY_H
#define __KDBUS_REPLY_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/workqueue.h>

struct kdbus_conn;
struct kdbus_msg;
struct kdbus_name_entry;
struct kdbus_queue_entry;

/**
 * struct kdbus_reply - an entry of kdbus_conn's list of replies
 * @kref:		Ref-count of this object
 * @entry:		The entry of the connection's reply_list
 * @reply_src:		The connection the reply will be sent from
 * @reply_dst:		The connection the reply will be sent to
 * @queue_entry:	The queue entry delivered to a synchronous caller
 * @err:		The error code for the synchronous reply
 * @cookie:		The cookie of the requesting message
 * @name_id:		ID of the well-known name the original msg was sent to
 * @deadline_ns:	The deadline of the reply (CLOCK_MONOTONIC), in ns
 * @interrupted:	The sync reply was left in an interrupted state
 * @sync:		The reply block is waiting for synchronous I/O
 * @waiting:		The condition to synchronously wait for
 * @counted:		Counted in reply_dst->request_count
 */
struct kdbus_reply {
	struct kref kref;
	struct list_head entry;
	struct kdbus_conn *reply_src;
	struct kdbus_conn *reply_dst;
	struct kdbus_queue_entry *queue_entry;
	int err;
	u64 cookie;
	u64 name_id;
	u64 deadline_ns;
	bool interrupted;
	bool sync;
	bool waiting;
	bool counted;
};

struct kdbus_reply *kdbus_reply_new(struct kdbus_conn *reply_src,
				    struct kdbus_conn *reply_dst,
				    const struct kdbus_msg *msg,
				    struct kdbus_name_entry *name_entry,
				    bool sync);

struct kdbus_reply *kdbus_reply_ref(struct kdbus_reply *r);
struct kdbus_reply *kdbus_reply_unref(struct kdbus_reply *r);

void kdbus_reply_link(struct kdbus_reply *r);
void kdbus_reply_unlink(struct kdbus_reply *r);

struct kdbus_reply *kdbus_reply_find(struct kdbus_conn *replying,
				     struct kdbus_conn *reply_dst,
				     u64 cookie);

void kdbus_reply_retarget(struct kdbus_reply *r, struct kdbus_conn *from,
			  struct kdbus_conn *to);
void kdbus_sync_reply_wakeup(struct kdbus_reply *reply, int err);
void kdbus_reply_list_scan_work(struct work_struct *work);

#endif
