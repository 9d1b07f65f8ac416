/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The incoming queue of a connection and its quotas: entries are messages
 * already written into the receiver's pool, waiting for RECV.
 */
#ifndef KD_QUEUE_H
#define KD_QUEUE_H

#include <linux/list.h>
#include <linux/xarray.h>

#include "kd.h"

/* struct kd_queue lives in struct kd_conn; conn->lock protects it */
struct kd_queue {
	struct list_head fifo;		/* struct kd_entry.node, oldest first */
	unsigned int len;
	struct xarray quota;		/* sender user id -> struct kd_quota */
};

/* what one sending user has queued on one receiver */
struct kd_quota {
	unsigned int msgs;
	unsigned int fds;
	size_t bytes;
};

struct kd_entry {
	struct list_head node;		/* queue->fifo */
	struct kd_conn *conn;		/* receiver; no reference */
	struct kd_slice *slice;		/* header, items, metadata, payload */
	size_t size;			/* msg_size reported by RECV */
	s64 priority;
	u64 seq;			/* bus sequence number of the message */
	u64 src_id;
	u64 cookie;
	u64 msg_flags;
	u64 name_id;			/* sent to a name: that kd_name's id */
	unsigned int user_id;		/* quota slot charged; 0 = kernel */
	/* a call its receiver must answer; the entry holds a reference */
	struct kd_reply *reply;

	/*
	 * Descriptors travel as files and become fds at RECV. The entry
	 * owns one reference on each file. kd_msg_entry_files() (msgfiles.c)
	 * allocates @fds, @memfds and @memfds_at as ONE block starting at
	 * @fds (files of FDS first, then the memfds, then the size_t
	 * offsets), so kd_entry_free() fputs the n_fds + n_memfds files and
	 * does a single kfree(@fds).
	 * In the slice every fd slot reads -1 until RECV patches it.
	 */
	struct file **fds;
	unsigned int n_fds;
	size_t fds_at;			/* offset of the int[] in the slice */
	struct file **memfds;
	size_t *memfds_at;		/* offsets of kdbus_memfd.fd */
	unsigned int n_memfds;

	/* queue.c: the share of its sender's quota the entry holds */
	bool charged;
	unsigned int charged_fds;
};

/* module init and exit (main.c): the slab cache of entries */
int kd_entry_cache_init(void);
void kd_entry_cache_exit(void);

void kd_queue_init(struct kd_queue *q);
void kd_queue_destroy(struct kd_queue *q);

/*
 * Delivery in two steps, so that no lock is held while the message is
 * written: reserve (quota checked and charged, slice allocated), write
 * into entry->slice, then commit (queued and the receiver woken) or
 * cancel. @user_id 0 is the kernel.
 */
struct kd_entry *kd_queue_reserve(struct kd_conn *dst, unsigned int user_id,
				  size_t size, unsigned int n_fds);
int kd_queue_commit(struct kd_conn *dst, struct kd_entry *e);
void kd_queue_cancel(struct kd_conn *dst, struct kd_entry *e);
/*
 * (route.c relies on:) kd_queue_reserve() returns an ERR_PTR on failure.
 * A failed kd_queue_commit() (receiver dead: -ECONNRESET) has undone the
 * entry like kd_queue_cancel(). Neither ends e->reply's slot: they only
 * drop the entry's reference; the sender ends the slot itself.
 */

/* under dst->lock: */
void kd_queue_link(struct kd_conn *dst, struct kd_entry *e);
void kd_queue_unlink(struct kd_conn *dst, struct kd_entry *e);
void kd_entry_free(struct kd_conn *dst, struct kd_entry *e);

/*
 * Moves the entries sent to name @name_id from @from to @to, in order,
 * each under @to's quota; what does not fit is dropped and counted in
 * @to's lost counter. Caller holds bus->names.lock for writing.
 */
void kd_queue_move(struct kd_conn *from, struct kd_conn *to, u64 name_id);

/* takes everything off the queue of a disconnecting connection */
void kd_queue_flush(struct kd_conn *conn);

int kd_cmd_recv(struct kd_conn *conn, void __user *argp);
int kd_cmd_free(struct kd_conn *conn, void __user *argp);

#endif /* KD_QUEUE_H */
