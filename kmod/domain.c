// SPDX-License-Identifier: GPL-2.0
/*
 * Domains: one per kdbusfs mount. A domain owns the control node, the buses
 * below it (as nodes), the id counter shared by buses and connections, and
 * the per-user accounting objects.
 *
 * Locking: domain->lock protects the user tables; it is taken with no other
 * kdbus lock held, or below any of them (it is a leaf).
 */

#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/kernel.h>
#include <linux/slab.h>

#include "domain.h"
#include "node.h"
#include "util.h"

static void kdbus_domain_control_free(struct kdbus_node *node)
{
	kfree(node);
}

static struct kdbus_node *kdbus_domain_control_new(struct kdbus_domain *domain)
{
	struct kdbus_node *node;
	int ret;

	node = kzalloc(sizeof(*node), GFP_KERNEL);
	if (!node)
		return ERR_PTR(-ENOMEM);

	kdbus_node_init(node, KDBUS_NODE_CONTROL);
	node->free_cb = kdbus_domain_control_free;
	node->mode = 0666;

	ret = kdbus_node_link(node, &domain->node, "control");
	if (ret < 0)
		goto exit_free;

	if (!kdbus_node_activate(node)) {
		ret = -ESHUTDOWN;
		goto exit_free;
	}

	return node;

exit_free:
	kdbus_node_deactivate(node);
	kdbus_node_unref(node);
	return ERR_PTR(ret);
}

static void kdbus_domain_free(struct kdbus_node *node)
{
	struct kdbus_domain *domain = kdbus_domain_from_node(node);

	WARN_ON(!hash_empty(domain->user_hash));

	put_user_ns(domain->user_namespace);
	idr_destroy(&domain->user_idr);
	kdbus_obj_dec(KDBUS_OBJ_DOMAIN);
	kfree(domain);
}

/**
 * kdbus_domain_new() - create a new domain
 * @user_ns:	user namespace of the mount
 *
 * Return: a new kdbus_domain on success, ERR_PTR on failure
 */
struct kdbus_domain *kdbus_domain_new(struct user_namespace *user_ns)
{
	struct kdbus_domain *d;
	int ret;

	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return ERR_PTR(-ENOMEM);

	kdbus_obj_inc(KDBUS_OBJ_DOMAIN);
	kdbus_node_init(&d->node, KDBUS_NODE_DOMAIN);
	d->node.free_cb = kdbus_domain_free;
	d->node.mode = 0555;

	mutex_init(&d->lock);
	idr_init(&d->user_idr);
	hash_init(d->user_hash);
	d->user_namespace = get_user_ns(user_ns);

	ret = kdbus_node_link(&d->node, NULL, NULL);
	if (ret < 0) {
		kdbus_node_unref(&d->node);
		return ERR_PTR(ret);
	}

	return d;
}

/**
 * kdbus_domain_populate() - activate the domain and create its control node
 * @domain:	The domain to populate
 *
 * Return: 0 on success, negative error otherwise.
 */
int kdbus_domain_populate(struct kdbus_domain *domain)
{
	struct kdbus_node *control;

	if (!kdbus_node_activate(&domain->node))
		return -ESHUTDOWN;

	control = kdbus_domain_control_new(domain);
	if (IS_ERR(control))
		return PTR_ERR(control);

	/* the tree holds the control node; no extra reference is kept */
	domain->control = control;
	kdbus_node_unref(control);
	return 0;
}

/**
 * kdbus_domain_ref() - take a domain reference
 * @domain:	Domain
 *
 * Return: the domain itself
 */
struct kdbus_domain *kdbus_domain_ref(struct kdbus_domain *domain)
{
	if (domain)
		kdbus_node_ref(&domain->node);
	return domain;
}

/**
 * kdbus_domain_unref() - drop a domain reference
 * @domain:	Domain
 *
 * When the last reference is dropped, the domain internal structure
 * is freed.
 *
 * Return: NULL
 */
struct kdbus_domain *kdbus_domain_unref(struct kdbus_domain *domain)
{
	if (domain)
		kdbus_node_unref(&domain->node);
	return NULL;
}

/**
 * kdbus_user_lookup() - lookup a kdbus_user object
 * @domain:	domain of the user
 * @uid:	uid of the user; INVALID_UID for an anon user
 *
 * Lookup the kdbus user accounting object for the given domain. If
 * INVALID_UID is passed, a new anonymous user is created which is private
 * to the caller.
 *
 * Return: The user object is returned, ERR_PTR on failure.
 */
struct kdbus_user *kdbus_user_lookup(struct kdbus_domain *domain, kuid_t uid)
{
	struct kdbus_user *u = NULL;
	int ret;

	mutex_lock(&domain->lock);

	if (uid_valid(uid)) {
		hash_for_each_possible(domain->user_hash, u, hentry,
				       __kuid_val(uid)) {
			if (!uid_eq(u->uid, uid))
				continue;

			/* a user being freed is replaced by a new one */
			if (kref_get_unless_zero(&u->kref)) {
				mutex_unlock(&domain->lock);
				return u;
			}
		}
	}

	u = kzalloc(sizeof(*u), GFP_KERNEL);
	if (!u) {
		ret = -ENOMEM;
		goto exit;
	}

	kref_init(&u->kref);
	u->domain = kdbus_domain_ref(domain);
	u->uid = uid;
	atomic_set(&u->buses, 0);
	atomic_set(&u->connections, 0);

	/* index 0 is reserved for kernel messages */
	ret = idr_alloc(&domain->user_idr, u, KDBUS_USER_KERNEL_ID + 1, 0,
			GFP_KERNEL);
	if (ret < 0) {
		kdbus_domain_unref(u->domain);
		kfree(u);
		goto exit;
	}
	u->id = ret;

	if (uid_valid(uid))
		hash_add(domain->user_hash, &u->hentry, __kuid_val(uid));

	kdbus_obj_inc(KDBUS_OBJ_USER);
	mutex_unlock(&domain->lock);
	return u;

exit:
	mutex_unlock(&domain->lock);
	return ERR_PTR(ret);
}

static void __kdbus_user_free(struct kref *kref)
{
	struct kdbus_user *user = container_of(kref, struct kdbus_user, kref);

	WARN_ON(atomic_read(&user->buses) > 0);
	WARN_ON(atomic_read(&user->connections) > 0);

	mutex_lock(&user->domain->lock);
	idr_remove(&user->domain->user_idr, user->id);
	if (uid_valid(user->uid))
		hash_del(&user->hentry);
	mutex_unlock(&user->domain->lock);

	kdbus_domain_unref(user->domain);
	kdbus_obj_dec(KDBUS_OBJ_USER);
	kfree(user);
}

/**
 * kdbus_user_ref() - take a user reference
 * @u:		User
 *
 * Return: @u is returned
 */
struct kdbus_user *kdbus_user_ref(struct kdbus_user *u)
{
	if (u)
		kref_get(&u->kref);
	return u;
}

/**
 * kdbus_user_unref() - drop a user reference
 * @u:		User
 *
 * Return: NULL
 */
struct kdbus_user *kdbus_user_unref(struct kdbus_user *u)
{
	if (u)
		kref_put(&u->kref, __kdbus_user_free);
	return NULL;
}
