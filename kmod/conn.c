// SPDX-License-Identifier: GPL-2.0
/*
 * Connections: the active count, references, and the way off the bus
 * (BYEBYE or close()); poll and mmap of a connected handle. HELLO, which
 * makes one, and UPDATE are in hello.c.
 *
 * A connection goes through three stages. Built: HELLO allocates
 * everything it needs before anyone can see it, so a failure is undone by
 * one put. Linked: it is in the bus table, the endpoint's list and, for an
 * activator, the registry. Dead: the active count carries KD_CONN_DEAD;
 * no command enters any more, and once the ones inside have left, the
 * connection is unlinked from everything. Its memory, pool included, stays
 * until the last reference goes, because senders may still be writing
 * into a slice they reserved before it died.
 */

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/mm.h>
#include <linux/path.h>
#include <linux/pid_namespace.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/wait_bit.h>

#include "bus.h"
#include "cmd.h"
#include "conn.h"
#include "domain.h"
#include "ep.h"
#include "item.h"
#include "match.h"
#include "meta.h"
#include "names.h"
#include "notify.h"
#include "policy.h"
#include "pool.h"
#include "queue.h"
#include "reply.h"

static const struct kd_cmd_rules kd_byebye_rules = {
	.fixed	= sizeof(struct kdbus_cmd),
};

/* --- the active count ------------------------------------------------- */

/**
 * kd_conn_enter() - start working on the bus with a connection
 * @conn:	the connection
 *
 * Return: true if @conn is live; kd_conn_leave() must follow.
 */
bool kd_conn_enter(struct kd_conn *conn)
{
	return atomic_inc_unless_negative(&conn->active);
}

/**
 * kd_conn_leave() - stop working with a connection kd_conn_enter() let in
 * @conn:	the connection
 *
 * The last command to leave a dead connection lets its disconnect go on.
 */
void kd_conn_leave(struct kd_conn *conn)
{
	if (atomic_dec_return(&conn->active) == KD_CONN_DEAD)
		wake_up_var(&conn->active);
}

/**
 * kd_conn_live() - is the connection still on the bus?
 * @conn:	the connection
 *
 * Return: false once a disconnect has begun.
 */
bool kd_conn_live(const struct kd_conn *conn)
{
	return atomic_read(&conn->active) >= 0;
}

/* --- memory ----------------------------------------------------------- */

/**
 * kd_conn_get() - take a reference on a connection
 * @conn:	the connection
 *
 * Return: @conn.
 */
struct kd_conn *kd_conn_get(struct kd_conn *conn)
{
	kref_get(&conn->kref);
	return conn;
}

/* also undoes a connection HELLO gave up on half-way: any field may be 0 */
static void kd_conn_release(struct kref *kref)
{
	struct kd_conn *conn = container_of(kref, struct kd_conn, kref);

	if (conn->pool)
		kd_pool_destroy(conn->pool);
	if (conn->matches)
		kd_matchdb_free(conn->matches);
	kd_queue_destroy(&conn->queue);
	if (conn->meta)
		kd_meta_put(conn->meta);
	if (conn->user) {
		atomic_dec(&conn->user->conns);
		kd_user_put(conn->user);
	}
	if (conn->pid_ns)
		put_pid_ns(conn->pid_ns);
	if (conn->cred)
		put_cred(conn->cred);
	kfree(conn->description);
	kfree(conn->policy_name);
	kd_ep_put(conn->ep);
	kd_bus_put(conn->bus);
	kd_obj_gone(KD_OBJ_CONN);

	/* the bus table is searched under RCU */
	kfree_rcu(conn, rcu);
}

/**
 * kd_conn_put() - drop a reference on a connection
 * @conn:	the connection, or NULL
 *
 * The last reference frees the pool and everything the connection holds;
 * it may sleep.
 */
void kd_conn_put(struct kd_conn *conn)
{
	if (conn)
		kref_put(&conn->kref, kd_conn_release);
}

/**
 * kd_conn_quota_user() - who pays for what a connection sends
 * @conn:	the sender
 *
 * Return: its accounting user: the real uid of its file (the faked one if
 * an owner faked its credentials), or its custom endpoint's anonymous user.
 */
struct kd_user *kd_conn_quota_user(const struct kd_conn *conn)
{
	return conn->user;
}

/* --- disconnect ------------------------------------------------------- */

/* with the connection dead and its names gone: everything else */
static void kd_conn_teardown(struct kd_conn *conn)
{
	struct kd_bus *bus = conn->bus;
	struct kd_ep *ep = conn->ep;

	/* pollers see the hang-up now, not after the commands left */
	wake_up_all(&conn->wait);
	wait_var_event(&conn->active,
		       atomic_read(&conn->active) == KD_CONN_DEAD);

	kd_bus_unlink_conn(bus, conn);
	mutex_lock(&ep->lock);
	list_del_init(&conn->ep_node);
	mutex_unlock(&ep->lock);
	kd_policydb_drop(&bus->policy, conn);

	kd_reply_conn_shutdown(conn);
	kd_queue_flush(conn);

	if (conn->kind != KD_CONN_MONITOR)
		kd_notify_id(bus, KDBUS_ITEM_ID_REMOVE, conn->id, conn->flags);
	kd_notify_flush(bus);

	/* publishes the teardown to a racing disconnect's acquire below */
	smp_store_release(&conn->gone, true);
	/* orders the store before wake_up_var()'s waitqueue check */
	smp_mb();
	wake_up_var(&conn->gone);
}

/**
 * kd_conn_disconnect() - take a connection off the bus
 * @conn:		the connection
 * @only_if_idle:	BYEBYE: refuse while messages are queued
 *
 * The queue check, the death and the release of the names happen under
 * the registry lock, and a message is committed to a queue only while
 * its receiver lives: a message for one of the names is either queued
 * before (-EBUSY for BYEBYE) or goes to the next owner or the activator.
 * Then the commands inside drain and the connection is unlinked, its
 * callers answered and its queue emptied.
 *
 * Return: 0, -EBUSY (nothing changed) or -ECONNRESET when it was dead
 * already, once that disconnect has finished.
 */
int kd_conn_disconnect(struct kd_conn *conn, bool only_if_idle)
{
	struct kd_registry *r = &conn->bus->names;
	int ret = 0;

	down_write(&r->lock);
	mutex_lock(&conn->lock);
	if (atomic_read(&conn->active) < 0)
		ret = -ECONNRESET;
	else if (only_if_idle && conn->queue.len)
		ret = -EBUSY;
	else
		atomic_add(KD_CONN_DEAD, &conn->active);
	mutex_unlock(&conn->lock);

	/* queued messages for its names move on; that takes conn->lock */
	if (!ret)
		kd_names_release_all(conn);
	up_write(&r->lock);

	if (ret == -ECONNRESET)
		/* pairs with the release above: teardown is complete */
		wait_var_event(&conn->gone, smp_load_acquire(&conn->gone));
	if (ret)
		return ret;

	kd_conn_teardown(conn);
	return 0;
}

/**
 * kd_conn_close() - the handle of a connection is released
 * @conn:	the connection; the handle's reference is dropped
 *
 * Disconnects it unless something else did; the pool goes with the last
 * reference.
 */
void kd_conn_close(struct kd_conn *conn)
{
	kd_conn_disconnect(conn, false);
	kd_conn_put(conn);
}

/**
 * kd_cmd_byebye() - KDBUS_CMD_BYEBYE: leave the bus if nothing is queued
 * @conn:	an ordinary connection; its active count is not held
 * @argp:	the struct kdbus_cmd in user memory
 *
 * Return: 0, -EBUSY with messages queued, -ECONNRESET if gone already,
 * -EOPNOTSUPP for other kinds, or an argument error.
 */
int kd_cmd_byebye(struct kd_conn *conn, void __user *argp)
{
	struct kd_args a __uninitialized;
	int ret;

	ret = kd_args_get(&a, &kd_byebye_rules, argp);
	if (!ret)
		ret = kd_conn_ordinary(conn) ?
		      kd_conn_disconnect(conn, true) : -EOPNOTSUPP;
	ret = kd_args_put(&a, ret);
	return ret > 0 ? 0 : ret;
}

/* --- the file --------------------------------------------------------- */

/**
 * kd_conn_poll() - poll() on a connected handle
 * @conn:	the connection
 * @file:	its handle
 * @wait:	the poll table
 *
 * Return: always writable while live, readable with something queued or
 * lost messages to report; EPOLLERR | EPOLLHUP once disconnected.
 */
__poll_t kd_conn_poll(struct kd_conn *conn, struct file *file,
		      struct poll_table_struct *wait)
{
	__poll_t mask = EPOLLOUT | EPOLLWRNORM;

	poll_wait(file, &conn->wait, wait);

	if (!kd_conn_live(conn))
		return EPOLLERR | EPOLLHUP;
	if (READ_ONCE(conn->queue.len) || atomic_read(&conn->lost) > 0)
		mask |= EPOLLIN | EPOLLRDNORM;
	return mask;
}

/**
 * kd_conn_mmap() - map a connection's pool
 * @conn:	the connection
 * @vma:	the mapping, read-only
 *
 * Return: what kd_pool_mmap() says.
 */
int kd_conn_mmap(struct kd_conn *conn, struct vm_area_struct *vma)
{
	return kd_pool_mmap(conn->pool, vma);
}
