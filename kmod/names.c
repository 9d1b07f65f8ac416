// SPDX-License-Identifier: GPL-2.0
/*
 * The well-known name registry of a bus (spec 10).
 *
 * Each kd_name keeps a FIFO of kd_owner records: the first one is the
 * primary owner, the rest wait in line. An activator is kept aside in
 * name->activator and stands in for the name while the FIFO is empty;
 * messages it collected in that time follow the name to the connection
 * that takes it over, and come back when that connection lets go.
 *
 * Everything here runs under registry->lock; notifications are recorded
 * under it and delivered after it is dropped.
 */

#include <linux/list.h>
#include <linux/lockdep.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/stringhash.h>

#include "bus.h"
#include "cmd.h"
#include "conn.h"
#include "item.h"
#include "names.h"
#include "notify.h"
#include "policy.h"
#include "queue.h"

/* the only request flags an owner record remembers */
#define KD_NAME_STORED	(KDBUS_NAME_ALLOW_REPLACEMENT | KDBUS_NAME_QUEUE)

static const struct kd_cmd_rules kd_acquire_rules = {
	.fixed = sizeof(struct kdbus_cmd),
	.flags = KDBUS_NAME_REPLACE_EXISTING | KD_NAME_STORED,
	.items = KD_I(KDBUS_ITEM_NAME),
	.needed = KD_I(KDBUS_ITEM_NAME),
};

static const struct kd_cmd_rules kd_release_rules = {
	.fixed = sizeof(struct kdbus_cmd),
	.items = KD_I(KDBUS_ITEM_NAME),
	.needed = KD_I(KDBUS_ITEM_NAME),
};

static u32 kd_name_hash(const char *str)
{
	return full_name_hash(NULL, str, strlen(str));
}

/**
 * kd_registry_init() - set up the empty name registry of a new bus
 * @r:		the registry inside struct kd_bus
 */
void kd_registry_init(struct kd_registry *r)
{
	init_rwsem(&r->lock);
	hash_init(r->names);
	r->last_id = 0;
}

/**
 * kd_registry_destroy() - tear down the registry of a bus being freed
 * @r:		the registry
 *
 * Every connection released its names when it disconnected, so nothing
 * can be left; anything that is points at a leak elsewhere.
 */
void kd_registry_destroy(struct kd_registry *r)
{
	WARN_ON(!hash_empty(r->names));
}

/**
 * kd_name_find() - look a name up
 * @r:		the registry, its lock held
 * @name:	the name
 *
 * Return: the entry of @name, or NULL if nobody owns, waits for or
 * activates it.
 */
struct kd_name *kd_name_find(struct kd_registry *r, const char *name)
{
	struct kd_name *n;

	lockdep_assert_held(&r->lock);

	hash_for_each_possible(r->names, n, node, kd_name_hash(name))
		if (!strcmp(n->str, name))
			return n;
	return NULL;
}

/* the first in line, not counting the activator */
static struct kd_owner *kd_name_head(const struct kd_name *n)
{
	if (list_empty(&n->owners))
		return NULL;
	return list_first_entry(&n->owners, struct kd_owner, name_node);
}

/**
 * kd_name_primary() - who a message to the name goes to
 * @n:		the name, registry lock held
 *
 * Return: the primary owner, else the activator (which then holds the
 * name), else NULL.
 */
struct kd_owner *kd_name_primary(const struct kd_name *n)
{
	struct kd_owner *o = kd_name_head(n);

	return o ? o : n->activator;
}

/**
 * kd_conn_owns() - is @conn the current owner of @name?
 * @conn:	a connection
 * @name:	a well-known name
 *
 * Caller holds conn->bus->names.lock. Waiting in the queue does not count;
 * an activator owns its name while no one else does.
 *
 * Return: true if @conn is the primary owner of @name.
 */
bool kd_conn_owns(const struct kd_conn *conn, const char *name)
{
	struct kd_name *n = kd_name_find(&conn->bus->names, name);
	struct kd_owner *o = n ? kd_name_primary(n) : NULL;

	return o && o->conn == conn;
}

static struct kd_owner *kd_name_record_of(const struct kd_name *n,
					  const struct kd_conn *conn)
{
	struct kd_owner *o;

	list_for_each_entry(o, &n->owners, name_node)
		if (o->conn == conn)
			return o;
	return NULL;
}

/* allocated, but linked only by kd_name_link() */
static struct kd_name *kd_name_alloc(const char *str)
{
	size_t len = strlen(str);
	struct kd_name *n;

	n = kmalloc(struct_size(n, str, len + 1), GFP_KERNEL_ACCOUNT);
	if (!n)
		return NULL;
	INIT_LIST_HEAD(&n->owners);
	n->activator = NULL;
	memcpy(n->str, str, len + 1);
	kd_obj_new(KD_OBJ_NAME);
	return n;
}

/* a fresh id every time a name comes into being: queued messages keep it */
static void kd_name_link(struct kd_registry *r, struct kd_name *n)
{
	n->id = ++r->last_id;
	hash_add(r->names, &n->node, kd_name_hash(n->str));
}

static void kd_name_free(struct kd_name *n)
{
	kfree(n);
	kd_obj_gone(KD_OBJ_NAME);
}

/* the last owner and the activator are gone: so is the name */
static void kd_name_put_if_unused(struct kd_name *n)
{
	if (!list_empty(&n->owners) || n->activator)
		return;
	hash_del(&n->node);
	kd_name_free(n);
}

static struct kd_owner *kd_owner_alloc(void)
{
	struct kd_owner *o = kmalloc(sizeof(*o), GFP_KERNEL_ACCOUNT);

	if (o)
		kd_obj_new(KD_OBJ_OWNER);
	return o;
}

static void kd_owner_dealloc(struct kd_owner *o)
{
	kfree(o);
	kd_obj_gone(KD_OBJ_OWNER);
}

/* @o becomes a record of @conn on @n; the caller puts it on n's lists */
static void kd_owner_bind(struct kd_owner *o, struct kd_conn *conn,
			  struct kd_name *n, u64 flags)
{
	o->conn = conn;
	o->name = n;
	o->flags = flags;
	INIT_LIST_HEAD(&o->name_node);	/* an activator stays off the FIFO */
	list_add_tail(&o->conn_node, &conn->names);
	conn->n_names++;
}

/* unlinks @o from its connection (and its name's FIFO, if on it) */
static void kd_owner_free(struct kd_owner *o)
{
	list_del(&o->name_node);
	list_del(&o->conn_node);
	o->conn->n_names--;
	kd_owner_dealloc(o);
}

static void kd_notify_owner_change(struct kd_name *n, struct kd_owner *from,
				   struct kd_owner *to)
{
	struct kd_bus *bus = (from ? from : to)->conn->bus;

	if (from && to)
		kd_notify_name(bus, KDBUS_ITEM_NAME_CHANGE,
			       from->conn->id, from->flags,
			       to->conn->id, to->flags, n->str);
	else if (to)
		kd_notify_name(bus, KDBUS_ITEM_NAME_ADD, 0, 0,
			       to->conn->id, to->flags, n->str);
	else
		kd_notify_name(bus, KDBUS_ITEM_NAME_REMOVE,
			       from->conn->id, from->flags, 0, 0, n->str);
}

/*
 * @o lets go of its name. A primary hands the name to the next in line,
 * or back to the activator together with the messages it has not
 * received yet; a waiting record just leaves; a departing activator
 * takes the name with it only if it was holding it.
 */
static void kd_owner_release(struct kd_owner *o)
{
	struct kd_name *n = o->name;
	struct kd_owner *act = n->activator;
	struct kd_owner *next;

	if (o == act) {
		n->activator = NULL;
		if (list_empty(&n->owners))
			kd_notify_owner_change(n, o, NULL);
	} else if (o == kd_name_head(n)) {
		next = list_is_last(&o->name_node, &n->owners) ? NULL :
			list_next_entry(o, name_node);
		if (next) {
			kd_notify_owner_change(n, o, next);
		} else if (act) {
			kd_queue_move(o->conn, act->conn, n->id);
			kd_notify_owner_change(n, o, act);
		} else {
			kd_notify_owner_change(n, o, NULL);
		}
	}
	kd_owner_free(o);
	kd_name_put_if_unused(n);
}

/**
 * kd_names_release_all() - a disconnecting connection lets go of everything
 * @conn:	the connection; no command runs on it any more
 *
 * Every name it owns is handed on as by NAME_RELEASE, every place in a
 * queue is given up, and an activator's name leaves with it. The caller
 * holds conn->bus->names.lock for writing and flushes the notifications
 * after dropping it.
 */
void kd_names_release_all(struct kd_conn *conn)
{
	struct kd_owner *o, *tmp;

	lockdep_assert_held_write(&conn->bus->names.lock);

	list_for_each_entry_safe(o, tmp, &conn->names, conn_node)
		kd_owner_release(o);
}

/**
 * kd_names_add_activator() - register @activator as the stand-in for @name
 * @activator:	a connection made by HELLO with KDBUS_HELLO_ACTIVATOR
 * @name:	its one name
 *
 * The activator holds the name (NAME_ADD) if nobody owns it, else it waits
 * until the owners are gone. Takes the registry lock itself; the caller
 * flushes the notifications.
 *
 * Return: 0, -EINVAL for a bad name, -EEXIST if the name has an activator
 * already, -ECONNRESET if @activator was disconnected meanwhile, -ENOMEM.
 */
int kd_names_add_activator(struct kd_conn *activator, const char *name)
{
	struct kd_registry *r = &activator->bus->names;
	struct kd_name *n, *fresh;
	struct kd_owner *o;
	int ret = 0;

	if (!kd_name_ok(name, false))
		return -EINVAL;

	/* both allocated up front: nothing can fail once the lock is held */
	fresh = kd_name_alloc(name);
	o = kd_owner_alloc();
	if (!fresh || !o) {
		ret = -ENOMEM;
		goto out;
	}

	down_write(&r->lock);
	n = kd_name_find(r, name);
	if (!kd_conn_live(activator)) {
		ret = -ECONNRESET;
	} else if (n && n->activator) {
		ret = -EEXIST;
	} else {
		if (!n) {
			n = fresh;
			fresh = NULL;
			kd_name_link(r, n);
		}
		kd_owner_bind(o, activator, n, KDBUS_NAME_ACTIVATOR);
		n->activator = o;
		if (list_empty(&n->owners))
			kd_notify_owner_change(n, NULL, o);
		o = NULL;
	}
	up_write(&r->lock);

out:
	if (fresh)
		kd_name_free(fresh);
	if (o)
		kd_owner_dealloc(o);
	return ret;
}

/* the outcomes of spec 10.2, decided before anything changes */
enum kd_acquire_how {
	KD_ACQ_TAKE,		/* nobody (or only the activator) holds it */
	KD_ACQ_UPDATE,		/* the caller is the primary already */
	KD_ACQ_REPLACE,		/* the caller pushes the primary aside */
	KD_ACQ_QUEUE,		/* the caller waits in line */
	KD_ACQ_LEAVE,		/* a waiting caller without QUEUE gives up */
};

static int kd_acquire_decide(struct kd_owner *prim, struct kd_owner *mine,
			     u64 req)
{
	if (!prim)
		return KD_ACQ_TAKE;
	if (prim == mine)
		return KD_ACQ_UPDATE;
	if ((prim->flags & KDBUS_NAME_ALLOW_REPLACEMENT) &&
	    (req & KDBUS_NAME_REPLACE_EXISTING))
		return KD_ACQ_REPLACE;
	if (req & KDBUS_NAME_QUEUE)
		return KD_ACQ_QUEUE;
	if (mine)
		return KD_ACQ_LEAVE;
	return -EEXIST;
}

/*
 * The body of NAME_ACQUIRE, under the registry write lock. Every way to
 * fail comes before the first change.
 */
static int kd_acquire_locked(struct kd_conn *conn, const char *str, u64 req,
			     u64 *rflags)
{
	struct kd_registry *r = &conn->bus->names;
	u64 stored = req & KD_NAME_STORED;
	struct kd_owner *prim, *mine, *act;
	struct kd_name *n;
	int how;

	/*
	 * Disconnect marks the connection dead and releases its names under
	 * this lock; a command that entered before must not add any after.
	 */
	if (!kd_conn_live(conn))
		return -ECONNRESET;

	n = kd_name_find(r, str);
	prim = n ? kd_name_head(n) : NULL;
	mine = n ? kd_name_record_of(n, conn) : NULL;

	if (!mine && conn->n_names >= KD_NAMES_MAX)
		return -E2BIG;
	how = kd_acquire_decide(prim, mine, req);
	if (how < 0)
		return how;

	if (!mine) {
		mine = kd_owner_alloc();
		if (!mine)
			return -ENOMEM;
		if (!n) {
			n = kd_name_alloc(str);
			if (!n) {
				kd_owner_dealloc(mine);
				return -ENOMEM;
			}
			kd_name_link(r, n);
		}
		kd_owner_bind(mine, conn, n, stored);
		*rflags = KDBUS_NAME_ACQUIRED;
	} else if (how == KD_ACQ_REPLACE) {
		/* a waiting caller jumping ahead also acquires the name now */
		list_del(&mine->name_node);
		*rflags = KDBUS_NAME_ACQUIRED;
	}

	switch (how) {
	case KD_ACQ_TAKE:
		act = n->activator;
		list_add(&mine->name_node, &n->owners);
		if (act)
			kd_queue_move(act->conn, conn, n->id);
		kd_notify_owner_change(n, act, mine);
		break;
	case KD_ACQ_REPLACE:
		mine->flags = stored;
		list_add(&mine->name_node, &n->owners);
		kd_notify_owner_change(n, prim, mine);
		/* the old primary is now second in line, if it wants a place */
		if (!(prim->flags & KDBUS_NAME_QUEUE))
			kd_owner_free(prim);
		break;
	case KD_ACQ_QUEUE:
		if (*rflags & KDBUS_NAME_ACQUIRED)
			list_add_tail(&mine->name_node, &n->owners);
		mine->flags = stored;
		*rflags |= stored | KDBUS_NAME_IN_QUEUE;
		return 0;
	case KD_ACQ_UPDATE:
		mine->flags = stored;
		break;
	case KD_ACQ_LEAVE:
		kd_owner_free(mine);
		return 0;
	}
	*rflags |= stored | KDBUS_NAME_PRIMARY;
	return 0;
}

static const char *kd_args_name(const struct kd_args *a)
{
	const struct kdbus_item *item = kd_args_item(a, KDBUS_ITEM_NAME);
	size_t len = item ? kd_item_len(item) : 0;

	/* cmd.c checked the string; this only keeps a bad one harmless */
	if (!len || item->str[len - 1] != '\0')
		return NULL;
	return item->str;
}

/**
 * kd_cmd_name_acquire() - KDBUS_CMD_NAME_ACQUIRE
 * @conn:	the calling connection
 * @argp:	the struct kdbus_cmd in user memory
 *
 * Return: 0 (return_flags tell what happened) or a negative errno.
 */
int kd_cmd_name_acquire(struct kd_conn *conn, void __user *argp)
{
	struct kd_registry *r = &conn->bus->names;
	const char *name;
	struct kd_args a __uninitialized;
	u64 rflags = 0;
	int ret;

	ret = kd_args_get(&a, &kd_acquire_rules, argp);
	if (ret)
		return kd_args_put(&a, ret < 0 ? ret : 0);

	name = kd_args_name(&a);
	if (!kd_conn_ordinary(conn))
		ret = -EOPNOTSUPP;
	else if (!name || !kd_name_ok(name, false))
		ret = -EINVAL;
	if (ret)
		return kd_args_put(&a, ret);

	if (!kd_conn_enter(conn))
		return kd_args_put(&a, -ECONNRESET);

	if (!kd_may_own(conn, name)) {
		ret = -EPERM;
	} else {
		down_write(&r->lock);
		ret = kd_acquire_locked(conn, name, a.cmd->flags, &rflags);
		up_write(&r->lock);
		kd_notify_flush(conn->bus);
	}
	kd_conn_leave(conn);

	if (!ret)
		a.cmd->return_flags = rflags;
	return kd_args_put(&a, ret);
}

/**
 * kd_cmd_name_release() - KDBUS_CMD_NAME_RELEASE
 * @conn:	the calling connection
 * @argp:	the struct kdbus_cmd in user memory
 *
 * The name is not validated: a name that cannot exist is just not found.
 *
 * Return: 0, -ESRCH if nobody has the name, -EADDRINUSE if the caller
 * neither owns nor waits for it, or another negative errno.
 */
int kd_cmd_name_release(struct kd_conn *conn, void __user *argp)
{
	struct kd_registry *r = &conn->bus->names;
	struct kd_owner *mine;
	struct kd_name *n;
	const char *name;
	struct kd_args a __uninitialized;
	int ret;

	ret = kd_args_get(&a, &kd_release_rules, argp);
	if (ret)
		return kd_args_put(&a, ret < 0 ? ret : 0);

	name = kd_args_name(&a);
	if (!kd_conn_ordinary(conn))
		return kd_args_put(&a, -EOPNOTSUPP);
	if (!name)
		return kd_args_put(&a, -EINVAL);

	if (!kd_conn_enter(conn))
		return kd_args_put(&a, -ECONNRESET);

	down_write(&r->lock);
	n = kd_name_find(r, name);
	mine = n ? kd_name_record_of(n, conn) : NULL;
	if (!kd_conn_live(conn))
		ret = -ECONNRESET;	/* its names are gone already */
	else if (!n)
		ret = -ESRCH;
	else if (!mine)
		ret = -EADDRINUSE;
	else
		kd_owner_release(mine);
	up_write(&r->lock);
	kd_notify_flush(conn->bus);
	kd_conn_leave(conn);

	return kd_args_put(&a, ret);
}
