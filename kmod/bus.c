// SPDX-License-Identifier: GPL-2.0
/*
 * Buses (spec 4.1). BUS_MAKE on a control handle builds the whole bus
 * first - directory, default endpoint, registries - and only then lists
 * it in the domain; the handle that made it owns it and shuts it down on
 * close. The dcache decides name clashes: two makers of one name race for
 * the directory and one of them gets -EEXIST.
 */

#include <linux/cred.h>
#include <linux/rculist.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uuid.h>

#include "bus.h"
#include "cmd.h"
#include "conn.h"
#include "domain.h"
#include "ep.h"
#include "fs.h"
#include "meta.h"

static const struct kd_cmd_rules kd_bus_make_rules = {
	.fixed = sizeof(struct kdbus_cmd),
	.flags = KDBUS_MAKE_ACCESS_GROUP | KDBUS_MAKE_ACCESS_WORLD,
	.items = KD_I(KDBUS_ITEM_MAKE_NAME) |
		 KD_I(KDBUS_ITEM_BLOOM_PARAMETER) |
		 KD_I(KDBUS_ITEM_ATTACH_FLAGS_SEND),
	.needed = KD_I(KDBUS_ITEM_MAKE_NAME) |
		  KD_I(KDBUS_ITEM_BLOOM_PARAMETER),
};

/* what BUS_MAKE asked for, checked */
struct kd_bus_req {
	u64 flags;
	const char *name;
	struct kdbus_bloom_parameter bloom;
	u64 attach;
};

static int kd_bus_req_parse(struct kd_domain *d, struct kd_args *a,
			    struct kd_bus_req *req)
{
	const struct kdbus_item *item;
	u64 attach;
	int ret;

	req->flags = a->cmd->flags & ~KDBUS_FLAG_NEGOTIATE;

	item = kd_args_item(a, KDBUS_ITEM_BLOOM_PARAMETER);
	req->bloom = item->bloom_parameter;
	if (req->bloom.size < KD_BLOOM_MIN || req->bloom.size > KD_BLOOM_MAX ||
	    !IS_ALIGNED(req->bloom.size, 8) || req->bloom.n_hash < 1)
		return -EINVAL;

	req->attach = 0;
	item = kd_args_item(a, KDBUS_ITEM_ATTACH_FLAGS_SEND);
	if (item) {
		attach = item->data64[0];
		if (attach == _KDBUS_ATTACH_ANY)
			attach = _KDBUS_ATTACH_ALL;
		else if (attach & ~_KDBUS_ATTACH_ALL)
			return -EINVAL;
		req->attach = attach;
	}

	item = kd_args_item(a, KDBUS_ITEM_MAKE_NAME);
	req->name = item->str;
	ret = kd_sysname_check(req->name);
	if (ret)
		return ret;
	return kd_domain_check_prefix(d, req->name);
}

/* a cheap early answer; the directory decides races */
static int kd_bus_name_check(struct kd_domain *d, const char *name)
{
	struct kd_bus *bus;
	int ret = 0;

	mutex_lock(&d->lock);
	if (d->dead) {
		ret = -ESHUTDOWN;
	} else {
		list_for_each_entry(bus, &d->buses, domain_node)
			if (!strcmp(bus->name, name)) {
				ret = -EEXIST;
				break;
			}
	}
	mutex_unlock(&d->lock);
	return ret;
}

/* takes over the caller's reference and bus count of @creator */
static struct kd_bus *kd_bus_alloc(struct kd_domain *d,
				   const struct kd_bus_req *req,
				   struct kd_user *creator)
{
	struct kd_meta *meta;
	struct kd_bus *bus;

	bus = kzalloc(sizeof(*bus), GFP_KERNEL);
	if (!bus)
		return NULL;

	bus->name = kstrdup(req->name, GFP_KERNEL);
	meta = kd_meta_snapshot(KD_ATTACH_PROC);
	if (!bus->name || IS_ERR_OR_NULL(meta)) {
		if (!IS_ERR_OR_NULL(meta))
			kd_meta_put(meta);
		kfree(bus->name);
		kfree(bus);
		return NULL;
	}

	kref_init(&bus->kref);
	bus->domain = kd_domain_get(d);
	INIT_LIST_HEAD(&bus->domain_node);
	bus->creator = creator;
	bus->uid = current_euid();
	bus->gid = current_egid();
	bus->id = kd_domain_next_id(d);
	bus->flags = req->flags;
	generate_random_uuid(bus->id128);
	bus->bloom = req->bloom;
	bus->creator_attach = req->attach;
	bus->creator_meta = meta;
	atomic64_set(&bus->seq, 0);

	init_rwsem(&bus->lock);
	INIT_LIST_HEAD(&bus->eps);
	INIT_LIST_HEAD(&bus->monitors);
	hash_init(bus->conns);
	INIT_LIST_HEAD(&bus->all_conns);
	kd_registry_init(&bus->names);
	kd_policydb_init(&bus->policy);
	kd_notify_init(&bus->notify);
	spin_lock_init(&bus->reply_lock);
	kd_obj_new(KD_OBJ_BUS);
	return bus;
}

/* directory and default endpoint, then the domain may list it */
static int kd_bus_publish(struct kd_bus *bus)
{
	struct kd_domain *d = bus->domain;
	struct dentry *dir;
	struct kd_ep *ep;
	int ret = 0;

	dir = kd_fs_add(d->root, bus->name,
			S_IFDIR | kd_access_mode(bus->flags, 05),
			bus->uid, bus->gid, NULL);
	if (IS_ERR(dir))
		return PTR_ERR(dir);
	bus->dir = dir;

	ep = kd_ep_new(bus, "bus", kd_access_mode(bus->flags, 06),
		       bus->uid, bus->gid, true);
	if (IS_ERR(ep))
		return PTR_ERR(ep);
	bus->default_ep = ep;

	mutex_lock(&d->lock);
	if (d->dead)
		ret = -ESHUTDOWN;
	else
		list_add_tail(&bus->domain_node, &d->buses);
	mutex_unlock(&d->lock);
	return ret;
}

static struct kd_bus *kd_bus_create(struct kd_domain *d, struct kd_args *a)
{
	struct kd_bus_req req;
	struct kd_user *creator;
	struct kd_bus *bus;
	int ret;

	ret = kd_bus_req_parse(d, a, &req);
	if (ret)
		return ERR_PTR(ret);

	/* the limit counts buses per real uid */
	creator = kd_user_get(d, current_uid());
	if (!creator)
		return ERR_PTR(-ENOMEM);
	if (atomic_inc_return(&creator->buses) > KD_USER_BUSES_MAX) {
		ret = -EMFILE;
		goto err_user;
	}

	ret = kd_bus_name_check(d, req.name);
	if (ret)
		goto err_user;

	bus = kd_bus_alloc(d, &req, creator);
	if (!bus) {
		ret = -ENOMEM;
		goto err_user;
	}

	/* from here on shutdown undoes everything, the bus count included */
	ret = kd_bus_publish(bus);
	if (ret) {
		kd_bus_shutdown(bus);
		kd_bus_put(bus);
		return ERR_PTR(ret);
	}
	return bus;

err_user:
	atomic_dec(&creator->buses);
	kd_user_put(creator);
	return ERR_PTR(ret);
}

/**
 * kd_bus_make() - KDBUS_CMD_BUS_MAKE on a fresh control handle
 * @d:		the domain of the control file
 * @file:	the control file
 * @argp:	the struct kdbus_cmd in user memory
 * @out:	the new bus, with a reference for the handle; NULL if the
 *		call only negotiated
 *
 * Return: 0 or a negative errno; on error nothing is left behind.
 */
int kd_bus_make(struct kd_domain *d, struct file *file, void __user *argp,
		struct kd_bus **out)
{
	struct kd_bus *bus = NULL;
	struct kd_args a __uninitialized;
	int ret;

	*out = NULL;

	ret = kd_args_get(&a, &kd_bus_make_rules, argp);
	if (!ret) {
		bus = kd_bus_create(d, &a);
		if (IS_ERR(bus)) {
			ret = PTR_ERR(bus);
			bus = NULL;
		}
	} else if (ret > 0) {
		ret = 0;
	}

	ret = kd_args_put(&a, ret);
	if (ret < 0 && bus) {
		/* userspace cannot learn of it: take it back */
		kd_bus_shutdown(bus);
		kd_bus_put(bus);
		bus = NULL;
	}

	*out = bus;
	return ret;
}

/* every endpoint, custom ones racing their own owners included */
static void kd_bus_shutdown_eps(struct kd_bus *bus)
{
	struct kd_ep *ep, *pos;

	for (;;) {
		ep = NULL;
		down_read(&bus->lock);
		list_for_each_entry(pos, &bus->eps, bus_node)
			if (!READ_ONCE(pos->dead)) {
				ep = kd_ep_get(pos);
				break;
			}
		up_read(&bus->lock);

		if (!ep)
			break;
		kd_ep_shutdown(ep);
		kd_ep_put(ep);
	}
}

/**
 * kd_bus_shutdown() - take a bus down, once
 * @bus:	the bus
 *
 * Its name is free again when this returns; every endpoint is shut down,
 * which disconnects every connection, and the directory goes away. The
 * memory stays until the last connection lets go of it.
 */
void kd_bus_shutdown(struct kd_bus *bus)
{
	struct kd_domain *d = bus->domain;
	struct kd_ep *ep;
	bool was_dead;

	down_write(&bus->lock);
	was_dead = bus->dead;
	bus->dead = true;
	up_write(&bus->lock);
	if (was_dead)
		return;

	mutex_lock(&d->lock);
	list_del_init(&bus->domain_node);
	mutex_unlock(&d->lock);

	kd_bus_shutdown_eps(bus);

	kd_fs_remove(bus->dir);
	bus->dir = NULL;
	atomic_dec(&bus->creator->buses);

	/* the default endpoint holds the bus: break the cycle */
	down_write(&bus->lock);
	ep = bus->default_ep;
	bus->default_ep = NULL;
	up_write(&bus->lock);
	if (ep)
		kd_ep_put(ep);
}

/**
 * kd_bus_get() - take a reference
 * @bus:	the bus
 *
 * Return: @bus
 */
struct kd_bus *kd_bus_get(struct kd_bus *bus)
{
	kref_get(&bus->kref);
	return bus;
}

static void kd_bus_release(struct kref *kref)
{
	struct kd_bus *bus = container_of(kref, struct kd_bus, kref);

	WARN_ON(!bus->dead);
	WARN_ON(!list_empty(&bus->eps));
	WARN_ON(!list_empty(&bus->monitors));
	WARN_ON(!hash_empty(bus->conns));

	kd_notify_destroy(&bus->notify);
	kd_policydb_destroy(&bus->policy);
	kd_registry_destroy(&bus->names);
	kd_meta_put(bus->creator_meta);
	kd_user_put(bus->creator);
	kd_domain_put(bus->domain);
	kfree(bus->name);
	kfree(bus);
	kd_obj_gone(KD_OBJ_BUS);
}

/**
 * kd_bus_put() - drop a reference
 * @bus:	the bus, or NULL
 */
void kd_bus_put(struct kd_bus *bus)
{
	if (bus)
		kref_put(&bus->kref, kd_bus_release);
}

/**
 * kd_bus_link_conn() - make a new connection reachable on its bus
 * @bus:	the bus
 * @conn:	the connection, its id and kind set
 *
 * Monitors go on their own list; everything else into the id table that
 * senders look up under RCU.
 *
 * Return: 0, or -ESHUTDOWN if the bus is going away.
 */
int kd_bus_link_conn(struct kd_bus *bus, struct kd_conn *conn)
{
	int ret = 0;

	down_write(&bus->lock);
	if (bus->dead) {
		ret = -ESHUTDOWN;
	} else if (conn->kind == KD_CONN_MONITOR) {
		list_add_tail(&conn->monitor_node, &bus->monitors);
	} else {
		hash_add_rcu(bus->conns, &conn->bus_node, conn->id);
		list_add_tail(&conn->all_node, &bus->all_conns);
		bus->n_conns++;
	}
	up_write(&bus->lock);
	return ret;
}

/**
 * kd_bus_unlink_conn() - undo kd_bus_link_conn()
 * @bus:	the bus
 * @conn:	a connection kd_bus_link_conn() accepted
 *
 * Lookups under RCU may still find @conn until a grace period passed;
 * they fail to take a reference once its kref dropped to zero.
 */
void kd_bus_unlink_conn(struct kd_bus *bus, struct kd_conn *conn)
{
	down_write(&bus->lock);
	if (conn->kind == KD_CONN_MONITOR) {
		list_del_init(&conn->monitor_node);
	} else if (!hlist_unhashed(&conn->bus_node)) {
		hash_del_rcu(&conn->bus_node);
		list_del_init(&conn->all_node);
		bus->n_conns--;
	}
	up_write(&bus->lock);
}

/**
 * kd_bus_find_conn() - a connection of the bus by id
 * @bus:	the bus
 * @id:		the connection id
 *
 * Monitors are not found.
 *
 * Return: the connection with a reference, or NULL.
 */
struct kd_conn *kd_bus_find_conn(struct kd_bus *bus, u64 id)
{
	struct kd_conn *conn, *found = NULL;

	rcu_read_lock();
	hash_for_each_possible_rcu(bus->conns, conn, bus_node, id)
		if (conn->id == id && kref_get_unless_zero(&conn->kref)) {
			found = conn;
			break;
		}
	rcu_read_unlock();
	return found;
}
