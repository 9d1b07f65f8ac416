// SPDX-License-Identifier: GPL-2.0
/*
 * Queues, quotas, RECV and FREE.
 *
 * A message reaches a receiver in two steps: kd_queue_reserve() checks
 * and charges the quota of the sending user and allocates the slice; the
 * sender writes the slice with no lock held; kd_queue_commit() links the
 * entry at the tail of the queue (or undoes it if the receiver died
 * meanwhile). Queue and quota tables are guarded by conn->lock.
 *
 * The quota an entry holds (one message, its fds, its slice bytes) is
 * given back when the entry leaves the queue. The slice itself stays
 * accounted in the pool until the receiver frees it, which is what makes
 * unfreed slices fill the half of the pool that other senders may use.
 */

#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/poll.h>
#include <linux/slab.h>

#include "cmd.h"
#include "conn.h"
#include "notify.h"
#include "pool.h"
#include "queue.h"
#include "reply.h"

/* created at module load (main.c); without it entries use kmalloc() */
static struct kmem_cache *kd_entry_cache;

/**
 * kd_entry_cache_init() - create the slab cache of queue entries
 *
 * Return: 0 or -ENOMEM.
 */
int kd_entry_cache_init(void)
{
	kd_entry_cache = KMEM_CACHE(kd_entry, 0);
	return kd_entry_cache ? 0 : -ENOMEM;
}

/**
 * kd_entry_cache_exit() - destroy the slab cache of queue entries
 */
void kd_entry_cache_exit(void)
{
	kmem_cache_destroy(kd_entry_cache);
	kd_entry_cache = NULL;
}

/**
 * kd_queue_init() - set up an empty queue
 * @q:	the queue of a new connection
 */
void kd_queue_init(struct kd_queue *q)
{
	INIT_LIST_HEAD(&q->fifo);
	q->len = 0;
	xa_init(&q->quota);
}

/**
 * kd_queue_destroy() - free the quota table of a queue
 * @q:	the queue, already flushed
 */
void kd_queue_destroy(struct kd_queue *q)
{
	struct kd_quota *qt;
	unsigned long id;

	WARN_ON(!list_empty(&q->fifo));
	xa_for_each(&q->quota, id, qt)
		kfree(qt);
	xa_destroy(&q->quota);
}

/*
 * The account of sending user @uid on @q. Accounts are kept until the
 * queue goes away: a user that sent once will likely send again, and
 * there are no more of them than users with connections on the domain.
 */
static struct kd_quota *kd_quota_of(struct kd_queue *q, unsigned int uid)
{
	struct kd_quota *qt = xa_load(&q->quota, uid);
	void *old;

	if (qt)
		return qt;
	qt = kzalloc(sizeof(*qt), GFP_KERNEL_ACCOUNT);
	if (!qt)
		return ERR_PTR(-ENOMEM);
	old = xa_store(&q->quota, uid, qt, GFP_KERNEL_ACCOUNT);
	if (xa_is_err(old)) {
		kfree(qt);
		return ERR_PTR(xa_err(old));
	}
	return qt;
}

/*
 * Spec 16: at most KD_QUEUED_MAX messages and KD_FDS_MAX fds per sending
 * user; incoming messages may fill half of the pool, and one user may
 * hold a third of what is left of that half plus what it holds already.
 */
static int kd_quota_check(struct kd_conn *dst, const struct kd_quota *qt,
			  size_t len, unsigned int n_fds)
{
	size_t half = kd_pool_size(dst->pool) / 2;
	size_t used = kd_pool_accounted(dst->pool);
	size_t left;

	if (qt->msgs >= KD_QUEUED_MAX)
		return -ENOBUFS;
	if (n_fds > KD_FDS_MAX || qt->fds > KD_FDS_MAX - n_fds)
		return -EMFILE;
	if (used > half || len > half - used)
		return -ENOBUFS;
	left = half - used;
	if (qt->bytes + len > (left + qt->bytes) / 3)
		return -ENOBUFS;
	return 0;
}

/* under dst->lock: give back what @e holds of its sender's quota */
static void kd_quota_release(struct kd_conn *dst, struct kd_entry *e)
{
	struct kd_quota *qt;

	lockdep_assert_held(&dst->lock);
	if (!e->charged)
		return;
	e->charged = false;
	qt = xa_load(&dst->queue.quota, e->user_id);
	if (WARN_ON_ONCE(!qt))
		return;
	qt->msgs--;
	qt->fds -= e->charged_fds;
	qt->bytes -= kd_slice_size(e->slice);
}

/* frees what @e owns; its quota must be given back already */
static void kd_entry_release(struct kd_entry *e)
{
	unsigned int i;

	WARN_ON_ONCE(e->charged);
	kd_slice_drop(e->slice);
	if (e->fds) {
		/* one block: the FDS files, then the memfds (see queue.h) */
		for (i = 0; i < e->n_fds + e->n_memfds; i++)
			if (e->fds[i])
				fput(e->fds[i]);
		kfree(e->fds);
	}
	if (e->reply)
		kd_reply_put(e->reply);
	if (kd_entry_cache)
		kmem_cache_free(kd_entry_cache, e);
	else
		kfree(e);
	kd_obj_gone(KD_OBJ_ENTRY);
}

static void kd_queue_wake(struct kd_conn *conn)
{
	wake_up_interruptible_poll(&conn->wait, EPOLLIN | EPOLLRDNORM);
}

/**
 * kd_queue_reserve() - make room for a message on a receiver
 * @dst:	the receiver
 * @user_id:	the sending user's quota slot; 0 for the kernel
 * @size:	bytes of the slice
 * @n_fds:	descriptors the message carries (KDBUS_ITEM_FDS)
 *
 * Return: an entry with a slice of @size bytes, charged to @user_id, not
 * queued yet; or ERR_PTR(-ECONNRESET) if @dst is gone, -ENOBUFS or
 * -EMFILE for a quota, -EXFULL if the pool has no room, -ENOMEM.
 */
struct kd_entry *kd_queue_reserve(struct kd_conn *dst, unsigned int user_id,
				  size_t size, unsigned int n_fds)
{
	size_t len = size ? KD_ALIGN8(size) : 8;	/* size is bounded */
	struct kd_slice *slice;
	struct kd_quota *qt;
	struct kd_entry *e;
	int ret;

	e = kd_entry_cache ? kmem_cache_zalloc(kd_entry_cache, GFP_KERNEL) :
			     kzalloc(sizeof(*e), GFP_KERNEL);
	if (!e)
		return ERR_PTR(-ENOMEM);
	kd_obj_new(KD_OBJ_ENTRY);
	INIT_LIST_HEAD(&e->node);
	e->conn = dst;
	e->user_id = user_id;

	mutex_lock(&dst->lock);
	if (!kd_conn_live(dst)) {
		ret = -ECONNRESET;
		goto fail;
	}
	qt = kd_quota_of(&dst->queue, user_id);
	if (IS_ERR(qt)) {
		ret = PTR_ERR(qt);
		goto fail;
	}
	ret = kd_quota_check(dst, qt, len, n_fds);
	if (ret)
		goto fail;
	slice = kd_slice_new(dst->pool, len, true);
	if (IS_ERR(slice)) {
		ret = PTR_ERR(slice);
		goto fail;
	}
	e->slice = slice;
	e->charged = true;
	e->charged_fds = n_fds;
	qt->msgs++;
	qt->fds += n_fds;
	qt->bytes += kd_slice_size(slice);
	mutex_unlock(&dst->lock);
	return e;

fail:
	mutex_unlock(&dst->lock);
	kd_entry_release(e);
	return ERR_PTR(ret);
}

/**
 * kd_queue_link() - append an entry to a queue
 * @dst:	the receiver, locked
 * @e:		a reserved entry
 */
void kd_queue_link(struct kd_conn *dst, struct kd_entry *e)
{
	lockdep_assert_held(&dst->lock);
	list_add_tail(&e->node, &dst->queue.fifo);
	/* poll reads it without the lock */
	WRITE_ONCE(dst->queue.len, dst->queue.len + 1);
}

/**
 * kd_queue_unlink() - take an entry off its queue
 * @dst:	the receiver, locked
 * @e:		a queued entry
 *
 * The entry no longer counts against its sender's quota.
 */
void kd_queue_unlink(struct kd_conn *dst, struct kd_entry *e)
{
	lockdep_assert_held(&dst->lock);
	list_del_init(&e->node);
	WRITE_ONCE(dst->queue.len, dst->queue.len - 1);
	kd_quota_release(dst, e);
}

/**
 * kd_entry_free() - free an entry that is not queued
 * @dst:	its receiver, locked
 * @e:		the entry
 *
 * Gives back any quota still held, then drops the slice, the files and
 * the reply reference.
 */
void kd_entry_free(struct kd_conn *dst, struct kd_entry *e)
{
	kd_quota_release(dst, e);
	kd_entry_release(e);
}

/**
 * kd_queue_commit() - queue a written entry and wake the receiver
 * @dst:	the receiver
 * @e:		the entry from kd_queue_reserve(), its slice written
 *
 * Return: 0, or -ECONNRESET if @dst died meanwhile; the entry is then
 * undone like kd_queue_cancel() (its reply slot is not ended).
 */
int kd_queue_commit(struct kd_conn *dst, struct kd_entry *e)
{
	mutex_lock(&dst->lock);
	if (!kd_conn_live(dst)) {
		kd_quota_release(dst, e);
		mutex_unlock(&dst->lock);
		kd_entry_release(e);
		return -ECONNRESET;
	}
	kd_queue_link(dst, e);
	mutex_unlock(&dst->lock);
	kd_queue_wake(dst);
	return 0;
}

/**
 * kd_queue_cancel() - undo a reservation
 * @dst:	the receiver
 * @e:		the entry from kd_queue_reserve(), not committed
 */
void kd_queue_cancel(struct kd_conn *dst, struct kd_entry *e)
{
	mutex_lock(&dst->lock);
	kd_quota_release(dst, e);
	mutex_unlock(&dst->lock);
	kd_entry_release(e);
}

/*
 * Drops an entry that could not be delivered to @to: @to learns it lost
 * a message, a caller waiting for an answer learns there will be none.
 */
static void kd_entry_lost(struct kd_conn *to, struct kd_entry *e)
{
	atomic_inc(&to->lost);
	if (e->reply)
		kd_reply_dead(e->reply);
	kd_entry_release(e);
}

/*
 * Re-creates @e on @to under @to's quota for the original sender and
 * takes over its files and reply slot. Returns false if it does not fit
 * or @to is gone; @e is then left untouched.
 */
static bool kd_entry_move(struct kd_entry *e, struct kd_conn *to)
{
	size_t len = kd_slice_size(e->slice);
	struct kd_entry *ne;
	bool live;

	if (e->n_fds && !(to->flags & KDBUS_HELLO_ACCEPT_FD))
		return false;
	ne = kd_queue_reserve(to, e->user_id, len, e->n_fds);
	if (IS_ERR(ne))
		return false;
	if (kd_slice_copy(ne->slice, e->slice, len)) {
		kd_queue_cancel(to, ne);
		return false;
	}

	mutex_lock(&to->lock);
	live = kd_conn_live(to);
	if (live) {
		ne->size = e->size;
		ne->priority = e->priority;
		ne->seq = e->seq;
		ne->src_id = e->src_id;
		ne->cookie = e->cookie;
		ne->msg_flags = e->msg_flags;
		ne->name_id = e->name_id;
		ne->fds = e->fds;
		ne->n_fds = e->n_fds;
		ne->fds_at = e->fds_at;
		ne->memfds = e->memfds;
		ne->memfds_at = e->memfds_at;
		ne->n_memfds = e->n_memfds;
		e->fds = NULL;
		e->memfds = NULL;
		e->memfds_at = NULL;
		e->n_fds = 0;
		e->n_memfds = 0;
		/* the debt moves before anyone on @to can see the call */
		ne->reply = e->reply;
		e->reply = NULL;
		if (ne->reply)
			kd_reply_retarget(ne->reply, to);
		kd_queue_link(to, ne);
	} else {
		kd_quota_release(to, ne);
	}
	mutex_unlock(&to->lock);
	if (!live)
		kd_entry_release(ne);
	return live;
}

/**
 * kd_queue_move() - hand the messages for a name to its next owner
 * @from:	the connection that no longer owns the name
 * @to:		the one that does now (an implementer or the activator)
 * @name_id:	the kd_name the messages were sent to
 *
 * The matching entries leave @from at once and are re-queued on @to one
 * by one, in order, each under @to's quota for its original sender; an
 * entry that does not fit (or carries fds @to does not accept) is
 * dropped and counted in @to's lost counter, and a call among them is
 * answered as dead. Caller holds bus->names.lock for writing, so no new
 * message for the name can slip in between.
 */
void kd_queue_move(struct kd_conn *from, struct kd_conn *to, u64 name_id)
{
	struct kd_entry *e, *tmp;
	LIST_HEAD(moving);
	bool any = false;

	mutex_lock(&from->lock);
	list_for_each_entry_safe(e, tmp, &from->queue.fifo, node) {
		if (e->name_id != name_id)
			continue;
		kd_queue_unlink(from, e);
		list_add_tail(&e->node, &moving);
	}
	mutex_unlock(&from->lock);

	list_for_each_entry_safe(e, tmp, &moving, node) {
		list_del(&e->node);
		if (kd_entry_move(e, to))
			kd_entry_release(e);
		else
			kd_entry_lost(to, e);
		any = true;
	}
	if (any)
		kd_queue_wake(to);
}

/**
 * kd_queue_flush() - empty the queue of a disconnecting connection
 * @conn:	the connection, already marked dead
 *
 * Callers whose calls were still queued are told the calls died.
 */
void kd_queue_flush(struct kd_conn *conn)
{
	struct kd_entry *e, *tmp;
	LIST_HEAD(gone);

	mutex_lock(&conn->lock);
	list_for_each_entry_safe(e, tmp, &conn->queue.fifo, node) {
		kd_queue_unlink(conn, e);
		list_add_tail(&e->node, &gone);
	}
	mutex_unlock(&conn->lock);

	list_for_each_entry_safe(e, tmp, &gone, node) {
		list_del(&e->node);
		if (e->reply)
			kd_reply_dead(e->reply);
		kd_entry_release(e);
	}
}

/* RECV */

static const struct kd_cmd_rules kd_recv_rules = {
	.fixed = sizeof(struct kdbus_cmd_recv),
	.flags = KDBUS_RECV_PEEK | KDBUS_RECV_DROP | KDBUS_RECV_USE_PRIORITY,
};

static const struct kd_cmd_rules kd_free_rules = {
	.fixed = sizeof(struct kdbus_cmd_free),
};

static bool kd_conn_receives(const struct kd_conn *conn)
{
	return conn->kind != KD_CONN_HOLDER;
}

/*
 * The entry RECV works on: the oldest, or with USE_PRIORITY the oldest of
 * the lowest priority value, if that value is not above @max.
 */
static struct kd_entry *kd_queue_pick(struct kd_queue *q, u64 flags,
				      s64 max)
{
	struct kd_entry *e, *best = NULL;

	if (!(flags & KDBUS_RECV_USE_PRIORITY))
		return list_first_entry_or_null(&q->fifo, struct kd_entry,
						node);
	list_for_each_entry(e, &q->fifo, node)
		if (!best || e->priority < best->priority)
			best = e;
	if (best && best->priority > max)
		return NULL;
	return best;
}

/* a new fd of the receiving task for @file, or -1 (and the flag) */
static int kd_fd_receive(struct file *file, u64 *msg_flags)
{
	int fd = file ? kd_receive_fd(file, O_CLOEXEC) : -EBADF;

	if (fd < 0) {
		*msg_flags |= KDBUS_RECV_RETURN_INCOMPLETE_FDS;
		return -1;
	}
	return fd;
}

static void kd_fd_store(struct kd_slice *s, size_t at, int fd,
			u64 *msg_flags)
{
	if (kd_slice_write(s, at, &fd, sizeof(fd)))
		*msg_flags |= KDBUS_RECV_RETURN_INCOMPLETE_FDS;
}

/*
 * Turns the files of a received entry into fds of the current task and
 * patches their numbers into the slice. FDS need ACCEPT_FD (a monitor
 * without it reads -1); memfds are payload and always installed. Runs
 * with no lock and no active count: only the unlinked entry is touched.
 */
static void kd_entry_install(struct kd_conn *conn, struct kd_entry *e,
			     u64 *msg_flags)
{
	bool accept = conn->flags & KDBUS_HELLO_ACCEPT_FD;
	unsigned int i;
	int fd;

	for (i = 0; i < e->n_fds; i++) {
		fd = accept ? kd_fd_receive(e->fds[i], msg_flags) : -1;
		kd_fd_store(e->slice, e->fds_at + i * sizeof(int), fd,
			    msg_flags);
	}
	for (i = 0; i < e->n_memfds; i++) {
		fd = kd_fd_receive(e->memfds[i], msg_flags);
		kd_fd_store(e->slice, e->memfds_at[i], fd, msg_flags);
	}
}

/*
 * Takes the entry RECV asked for off the queue (or, for PEEK, publishes
 * it in place). Returns the unlinked entry the caller must finish, NULL
 * after a PEEK, or an ERR_PTR.
 */
static struct kd_entry *kd_recv_take(struct kd_conn *conn,
				     struct kdbus_cmd_recv *cmd)
{
	struct kd_entry *e;

	e = kd_queue_pick(&conn->queue, cmd->flags, cmd->priority);
	if (!e)
		return ERR_PTR(-EAGAIN);
	if (cmd->flags & KDBUS_RECV_PEEK) {
		/* fd slots read -1 until a real RECV installs them */
		kd_slice_publish(e->slice);
		cmd->msg.offset = kd_slice_offset(e->slice);
		cmd->msg.msg_size = e->size;
		return NULL;
	}
	kd_queue_unlink(conn, e);
	if (!(cmd->flags & KDBUS_RECV_DROP))
		kd_slice_publish(e->slice);
	return e;
}

/**
 * kd_cmd_recv() - KDBUS_CMD_RECV
 * @conn:	the receiving connection
 * @argp:	the user's struct kdbus_cmd_recv
 *
 * Return: 0, -EAGAIN if nothing (eligible) is queued, or another errno.
 */
int kd_cmd_recv(struct kd_conn *conn, void __user *argp)
{
	struct kdbus_cmd_recv *cmd;
	struct kd_entry *e;
	bool dead_call = false;
	struct kd_args a __uninitialized;
	u64 msg_flags = 0;
	int lost, ret;

	ret = kd_args_get(&a, &kd_recv_rules, argp);
	if (ret)
		return kd_args_put(&a, ret < 0 ? ret : 0);
	cmd = a.buf;
	if ((cmd->flags & KDBUS_RECV_DROP) &&
	    (cmd->flags & KDBUS_RECV_USE_PRIORITY))
		return kd_args_put(&a, -EINVAL);
	if (!kd_conn_receives(conn))
		return kd_args_put(&a, -EOPNOTSUPP);
	if (!kd_conn_enter(conn))
		return kd_args_put(&a, -ECONNRESET);

	mutex_lock(&conn->lock);
	lost = atomic_xchg(&conn->lost, 0);
	e = kd_recv_take(conn, cmd);
	mutex_unlock(&conn->lock);
	kd_conn_leave(conn);

	if (IS_ERR(e)) {
		ret = PTR_ERR(e);
	} else if (e && (cmd->flags & KDBUS_RECV_DROP)) {
		cmd->msg.offset = kd_pool_size(conn->pool);
		cmd->msg.msg_size = 0;
		if (e->reply) {
			kd_reply_dead(e->reply);
			dead_call = true;
		}
		kd_entry_release(e);
	} else if (e) {
		kd_entry_install(conn, e, &msg_flags);
		cmd->msg.offset = kd_slice_offset(e->slice);
		cmd->msg.msg_size = e->size;
		/* a received call stays owed (conn->owed); drop our ref */
		kd_entry_release(e);
	}
	if (dead_call)
		kd_notify_flush(conn->bus);

	cmd->dropped_msgs = lost;
	if (lost)
		cmd->return_flags |= KDBUS_RECV_RETURN_DROPPED_MSGS;
	if (!ret) {
		cmd->msg.return_flags = msg_flags;
		ret = kd_args_copy_out(&a,
				       offsetof(struct kdbus_cmd_recv, dropped_msgs),
				       sizeof(cmd->dropped_msgs) +
				       sizeof(cmd->msg));
	} else if (ret == -EAGAIN) {
		if (kd_args_copy_out(&a, offsetof(struct kdbus_cmd_recv,
						  dropped_msgs),
				     sizeof(cmd->dropped_msgs)))
			ret = -EFAULT;
	}
	return kd_args_put(&a, ret);
}

/**
 * kd_cmd_free() - KDBUS_CMD_FREE
 * @conn:	the connection
 * @argp:	the user's struct kdbus_cmd_free
 *
 * Return: 0, -ENXIO if no published slice starts at the offset, or
 * another errno.
 */
int kd_cmd_free(struct kd_conn *conn, void __user *argp)
{
	struct kdbus_cmd_free *cmd;
	struct kd_args a __uninitialized;
	int ret;

	ret = kd_args_get(&a, &kd_free_rules, argp);
	if (ret)
		return kd_args_put(&a, ret < 0 ? ret : 0);
	cmd = a.buf;
	if (!kd_conn_receives(conn))
		return kd_args_put(&a, -EOPNOTSUPP);
	if (!kd_conn_enter(conn))
		return kd_args_put(&a, -ECONNRESET);
	ret = kd_pool_free_offset(conn->pool, cmd->offset);
	kd_conn_leave(conn);
	return kd_args_put(&a, ret);
}
