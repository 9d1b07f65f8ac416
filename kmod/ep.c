// SPDX-License-Identifier: GPL-2.0
/*
 * Endpoints (spec 4.2). Every bus has its default endpoint "bus"; a bus
 * owner may add custom ones, which live as long as the handle that made
 * them and show the bus to their connections through their own policy.
 * An endpoint is first linked into its bus and only then shown in the
 * directory, so a bus being shut down always finds it.
 */

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "bus.h"
#include "cmd.h"
#include "conn.h"
#include "domain.h"
#include "ep.h"
#include "fs.h"

static const struct kd_cmd_rules kd_ep_make_rules = {
	.fixed = sizeof(struct kdbus_cmd),
	.flags = KDBUS_MAKE_ACCESS_GROUP | KDBUS_MAKE_ACCESS_WORLD,
	.items = KD_I(KDBUS_ITEM_MAKE_NAME),
	.needed = KD_I(KDBUS_ITEM_MAKE_NAME),
};

static const struct kd_cmd_rules kd_ep_update_rules = {
	.fixed = sizeof(struct kdbus_cmd),
	.items = KD_I(KDBUS_ITEM_NAME) | KD_I(KDBUS_ITEM_POLICY_ACCESS),
	.multi = KD_I(KDBUS_ITEM_NAME) | KD_I(KDBUS_ITEM_POLICY_ACCESS),
};

static struct kd_ep *kd_ep_alloc(struct kd_bus *bus, const char *name,
				 umode_t mode, kuid_t uid, kgid_t gid,
				 bool is_default)
{
	struct kd_ep *ep;

	ep = kzalloc(sizeof(*ep), GFP_KERNEL);
	if (!ep)
		return NULL;

	ep->name = kstrdup(name, GFP_KERNEL);
	if (!ep->name)
		goto err;
	/* the connections of a custom endpoint share one quota account */
	if (!is_default) {
		ep->anon = kd_user_get(bus->domain, INVALID_UID);
		if (!ep->anon)
			goto err;
	}

	ep->node.kind = KD_NODE_EP;
	kref_init(&ep->kref);
	ep->bus = kd_bus_get(bus);
	INIT_LIST_HEAD(&ep->bus_node);
	ep->is_default = is_default;
	ep->uid = uid;
	ep->gid = gid;
	ep->mode = mode;
	kd_policydb_init(&ep->policy);
	mutex_init(&ep->lock);
	INIT_LIST_HEAD(&ep->conns);
	kd_obj_new(KD_OBJ_EP);
	return ep;

err:
	kfree(ep->name);
	kfree(ep);
	return NULL;
}

/* names are unique per bus; nothing is added to a dying bus */
static int kd_ep_link(struct kd_ep *ep)
{
	struct kd_bus *bus = ep->bus;
	struct kd_ep *pos;
	int ret = 0;

	down_write(&bus->lock);
	if (bus->dead) {
		ret = -ESHUTDOWN;
		goto out;
	}
	list_for_each_entry(pos, &bus->eps, bus_node)
		if (!strcmp(pos->name, ep->name)) {
			ret = -EEXIST;
			goto out;
		}
	list_add_tail(&ep->bus_node, &bus->eps);
out:
	up_write(&bus->lock);
	return ret;
}

/*
 * Under ep->lock: a shutdown either ran before (dead) or waits for us,
 * and the bus directory is only removed after every endpoint is dead.
 */
static int kd_ep_show(struct kd_ep *ep)
{
	struct dentry *dentry;
	int ret = 0;

	mutex_lock(&ep->lock);
	if (ep->dead) {
		ret = -ESHUTDOWN;
	} else {
		dentry = kd_fs_add(ep->bus->dir, ep->name, S_IFREG | ep->mode,
				   ep->uid, ep->gid, &ep->node);
		if (IS_ERR(dentry))
			ret = PTR_ERR(dentry);
		else
			ep->dentry = dentry;
	}
	mutex_unlock(&ep->lock);
	return ret;
}

/**
 * kd_ep_new() - make an endpoint of a bus and its file
 * @bus:	the bus, its directory made
 * @name:	file name in the bus directory
 * @mode:	permission bits of the file
 * @uid:	owner of the file
 * @gid:	group of the file
 * @is_default:	the bus's own "bus" endpoint
 *
 * Return: the endpoint with a reference for the caller, or an ERR_PTR:
 * -EEXIST, -ESHUTDOWN (bus going away), -ENOMEM.
 */
struct kd_ep *kd_ep_new(struct kd_bus *bus, const char *name, umode_t mode,
			kuid_t uid, kgid_t gid, bool is_default)
{
	struct kd_ep *ep;
	int ret;

	ep = kd_ep_alloc(bus, name, mode & 0777, uid, gid, is_default);
	if (!ep)
		return ERR_PTR(-ENOMEM);

	ret = kd_ep_link(ep);
	if (!ret)
		ret = kd_ep_show(ep);
	if (ret) {
		kd_ep_shutdown(ep);
		kd_ep_put(ep);
		return ERR_PTR(ret);
	}
	return ep;
}

/* the caller of ENDPOINT_MAKE must own the bus (spec 12.1) */
static bool kd_ep_may_make(struct kd_ep *ep, struct file *file)
{
	struct kd_bus *bus = ep->bus;

	if (!ep->is_default)
		return false;
	return uid_eq(current_euid(), bus->uid) ||
	       file_ns_capable(file, bus->domain->user_ns, CAP_IPC_OWNER);
}

static struct kd_ep *kd_ep_create(struct kd_ep *ep, struct file *file,
				  struct kd_args *a)
{
	const struct kdbus_item *item;
	u64 flags = a->cmd->flags & ~KDBUS_FLAG_NEGOTIATE;
	int ret;

	if (READ_ONCE(ep->dead))
		return ERR_PTR(-ESHUTDOWN);
	if (!kd_ep_may_make(ep, file))
		return ERR_PTR(-EPERM);

	item = kd_args_item(a, KDBUS_ITEM_MAKE_NAME);
	ret = kd_sysname_check(item->str);
	if (!ret)
		ret = kd_domain_check_prefix(ep->bus->domain, item->str);
	if (ret)
		return ERR_PTR(ret);

	return kd_ep_new(ep->bus, item->str, kd_access_mode(flags, 06),
			 current_euid(), current_egid(), false);
}

/**
 * kd_ep_make() - KDBUS_CMD_ENDPOINT_MAKE on a fresh endpoint handle
 * @ep:		the endpoint the handle was opened on
 * @file:	that handle
 * @argp:	the struct kdbus_cmd in user memory
 * @out:	the new custom endpoint, with a reference for the handle;
 *		NULL if the call only negotiated
 *
 * Return: 0 or a negative errno; on error nothing is left behind.
 */
int kd_ep_make(struct kd_ep *ep, struct file *file, void __user *argp,
	       struct kd_ep **out)
{
	struct kd_ep *made = NULL;
	struct kd_args a __uninitialized;
	int ret;

	*out = NULL;

	ret = kd_args_get(&a, &kd_ep_make_rules, argp);
	if (!ret) {
		made = kd_ep_create(ep, file, &a);
		if (IS_ERR(made)) {
			ret = PTR_ERR(made);
			made = NULL;
		}
	} else if (ret > 0) {
		ret = 0;
	}

	ret = kd_args_put(&a, ret);
	if (ret < 0 && made) {
		kd_ep_shutdown(made);
		kd_ep_put(made);
		made = NULL;
	}

	*out = made;
	return ret;
}

/**
 * kd_ep_update() - KDBUS_CMD_ENDPOINT_UPDATE: replace the policy
 * @ep:		the custom endpoint the handle made
 * @file:	that handle; ids are read in its user namespace
 * @argp:	the struct kdbus_cmd in user memory
 *
 * Return: 0 or a negative errno; -ESHUTDOWN once the endpoint is gone.
 */
int kd_ep_update(struct kd_ep *ep, struct file *file, void __user *argp)
{
	struct kd_args a __uninitialized;
	int ret;

	ret = kd_args_get(&a, &kd_ep_update_rules, argp);
	if (!ret) {
		mutex_lock(&ep->lock);
		if (ep->dead)
			ret = -ESHUTDOWN;
		else
			ret = kd_policydb_set(&ep->policy, ep, a.items,
					      a.items_len, 0, true,
					      file->f_cred->user_ns);
		mutex_unlock(&ep->lock);
	} else if (ret > 0) {
		ret = 0;
	}

	return kd_args_put(&a, ret);
}

/* a live connection of @ep, referenced, or NULL once none is left */
static struct kd_conn *kd_ep_next_live(struct kd_ep *ep)
{
	struct kd_conn *conn;

	mutex_lock(&ep->lock);
	list_for_each_entry(conn, &ep->conns, ep_node)
		if (kd_conn_live(conn) && kref_get_unless_zero(&conn->kref)) {
			mutex_unlock(&ep->lock);
			return conn;
		}
	mutex_unlock(&ep->lock);
	return NULL;
}

/**
 * kd_ep_shutdown() - take an endpoint down, once
 * @ep:		the endpoint
 *
 * No connection is made through it any more, the existing ones are
 * disconnected and the file disappears. Connections another thread is
 * already disconnecting are left to it.
 */
void kd_ep_shutdown(struct kd_ep *ep)
{
	struct kd_bus *bus = ep->bus;
	struct dentry *dentry;
	struct kd_conn *conn;
	bool was_dead;

	mutex_lock(&ep->lock);
	was_dead = ep->dead;
	ep->dead = true;
	dentry = ep->dentry;
	ep->dentry = NULL;
	mutex_unlock(&ep->lock);
	if (was_dead)
		return;

	/* disconnecting takes ep->lock itself */
	while ((conn = kd_ep_next_live(ep))) {
		kd_conn_disconnect(conn, false);
		kd_conn_put(conn);
	}

	kd_fs_remove(dentry);

	down_write(&bus->lock);
	list_del_init(&ep->bus_node);
	up_write(&bus->lock);
}

/**
 * kd_ep_get() - take a reference
 * @ep:		the endpoint
 *
 * Return: @ep
 */
struct kd_ep *kd_ep_get(struct kd_ep *ep)
{
	kref_get(&ep->kref);
	return ep;
}

static void kd_ep_release(struct kref *kref)
{
	struct kd_ep *ep = container_of(kref, struct kd_ep, kref);

	WARN_ON(!list_empty(&ep->bus_node));
	WARN_ON(!list_empty(&ep->conns));

	kd_policydb_destroy(&ep->policy);
	kd_user_put(ep->anon);
	kd_bus_put(ep->bus);
	kfree(ep->name);
	kfree(ep);
	kd_obj_gone(KD_OBJ_EP);
}

/**
 * kd_ep_put() - drop a reference
 * @ep:		the endpoint, or NULL
 */
void kd_ep_put(struct kd_ep *ep)
{
	if (ep)
		kref_put(&ep->kref, kd_ep_release);
}
