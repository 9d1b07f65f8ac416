// SPDX-License-Identifier: GPL-2.0
/*
 * Domains and their users. A domain is what one kdbusfs mount shows: it
 * hands out the ids of buses and connections and keeps one accounting
 * record per uid, so that limits count per mount and not system-wide.
 */

#include <linux/cred.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/user_namespace.h>

#include "bus.h"
#include "domain.h"

/**
 * kd_domain_new() - a fresh domain for a new superblock
 * @sb:		the superblock being set up; its s_user_ns is pinned
 *
 * The caller sets @root once the root dentry exists.
 *
 * Return: the domain with one reference, or NULL without memory.
 */
struct kd_domain *kd_domain_new(struct super_block *sb)
{
	struct kd_domain *d;

	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return NULL;

	d->node.kind = KD_NODE_CONTROL;
	kref_init(&d->kref);
	d->sb = sb;
	d->user_ns = get_user_ns(sb->s_user_ns);
	atomic64_set(&d->last_id, 0);
	mutex_init(&d->lock);
	INIT_LIST_HEAD(&d->buses);
	hash_init(d->users);
	ida_init(&d->user_ids);
	kd_obj_new(KD_OBJ_DOMAIN);
	return d;
}

/**
 * kd_domain_shutdown() - the mount goes away: no new buses, old ones die
 * @d:		the domain
 *
 * Buses are taken off the list one at a time, so a bus whose owner
 * closes it at the same moment is shut down once either way.
 */
void kd_domain_shutdown(struct kd_domain *d)
{
	LIST_HEAD(doomed);
	struct kd_bus *bus;

	mutex_lock(&d->lock);
	d->dead = true;
	list_splice_init(&d->buses, &doomed);
	while ((bus = list_first_entry_or_null(&doomed, struct kd_bus,
					       domain_node))) {
		list_del_init(&bus->domain_node);
		/* a listed bus is still held by its owner handle */
		kd_bus_get(bus);
		mutex_unlock(&d->lock);

		kd_bus_shutdown(bus);
		kd_bus_put(bus);

		mutex_lock(&d->lock);
	}
	mutex_unlock(&d->lock);
}

/**
 * kd_domain_get() - take a reference
 * @d:		the domain
 *
 * Return: @d
 */
struct kd_domain *kd_domain_get(struct kd_domain *d)
{
	kref_get(&d->kref);
	return d;
}

static void kd_domain_release(struct kref *kref)
{
	struct kd_domain *d = container_of(kref, struct kd_domain, kref);

	WARN_ON(!list_empty(&d->buses));
	WARN_ON(!hash_empty(d->users));
	ida_destroy(&d->user_ids);
	put_user_ns(d->user_ns);
	kfree(d);
	kd_obj_gone(KD_OBJ_DOMAIN);
}

/**
 * kd_domain_put() - drop a reference
 * @d:		the domain, or NULL
 */
void kd_domain_put(struct kd_domain *d)
{
	if (d)
		kref_put(&d->kref, kd_domain_release);
}

/**
 * kd_domain_next_id() - the next bus or connection id of the domain
 * @d:		the domain
 *
 * Return: an id >= 1 that the domain never handed out before.
 */
u64 kd_domain_next_id(struct kd_domain *d)
{
	return atomic64_inc_return(&d->last_id);
}

/**
 * kd_domain_check_prefix() - does a bus or endpoint name carry our uid?
 * @d:		the domain the name is made in
 * @name:	the requested name
 *
 * Names made by a user start with its effective uid, as the domain's
 * user namespace sees it, and a dash.
 *
 * Return: 0 if so, -EINVAL otherwise or if the euid has no mapping.
 */
int kd_domain_check_prefix(struct kd_domain *d, const char *name)
{
	uid_t euid = from_kuid(d->user_ns, current_euid());
	char prefix[16];
	int len;

	if (euid == (uid_t)-1)
		return -EINVAL;

	len = snprintf(prefix, sizeof(prefix), "%u-", euid);
	return strncmp(name, prefix, len) ? -EINVAL : 0;
}

static struct kd_user *kd_user_alloc(struct kd_domain *d, kuid_t uid)
{
	struct kd_user *u;
	int id;

	u = kzalloc(sizeof(*u), GFP_KERNEL_ACCOUNT);
	if (!u)
		return NULL;

	id = ida_alloc_min(&d->user_ids, 1, GFP_KERNEL);
	if (id < 0) {
		kfree(u);
		return NULL;
	}

	kref_init(&u->kref);
	u->domain = kd_domain_get(d);
	INIT_HLIST_NODE(&u->node);
	u->uid = uid;
	u->id = id;
	atomic_set(&u->buses, 0);
	atomic_set(&u->conns, 0);
	kd_obj_new(KD_OBJ_USER);
	return u;
}

static void kd_user_free(struct kd_user *u)
{
	struct kd_domain *d = u->domain;

	ida_free(&d->user_ids, u->id);
	kfree(u);
	kd_domain_put(d);
	kd_obj_gone(KD_OBJ_USER);
}

/* caller holds d->lock */
static struct kd_user *kd_user_find(struct kd_domain *d, kuid_t uid)
{
	struct kd_user *u;

	hash_for_each_possible(d->users, u, node, __kuid_val(uid))
		if (uid_eq(u->uid, uid)) {
			kref_get(&u->kref);
			return u;
		}
	return NULL;
}

/**
 * kd_user_get() - the accounting record of a uid in a domain
 * @d:		the domain
 * @uid:	the uid, or INVALID_UID for a new anonymous user
 *
 * The record of a uid is shared by everything of that uid in the domain
 * and lives as long as someone holds it; an anonymous one is never
 * shared through the domain.
 *
 * Return: a referenced user, or NULL without memory.
 */
struct kd_user *kd_user_get(struct kd_domain *d, kuid_t uid)
{
	struct kd_user *u, *fresh;

	if (!uid_valid(uid))
		return kd_user_alloc(d, uid);

	mutex_lock(&d->lock);
	u = kd_user_find(d, uid);
	mutex_unlock(&d->lock);
	if (u)
		return u;

	/* allocate unlocked; another caller may have won meanwhile */
	fresh = kd_user_alloc(d, uid);
	if (!fresh)
		return NULL;

	mutex_lock(&d->lock);
	u = kd_user_find(d, uid);
	if (!u) {
		hash_add(d->users, &fresh->node, __kuid_val(uid));
		u = fresh;
		fresh = NULL;
	}
	mutex_unlock(&d->lock);

	if (fresh)
		kd_user_free(fresh);
	return u;
}

/**
 * kd_user_ref() - take another reference on a user
 * @u:		the user
 *
 * Return: @u
 */
struct kd_user *kd_user_ref(struct kd_user *u)
{
	kref_get(&u->kref);
	return u;
}

/* called with the domain lock held, by kref_put_mutex() */
static void kd_user_release(struct kref *kref)
{
	struct kd_user *u = container_of(kref, struct kd_user, kref);

	if (!hlist_unhashed(&u->node))
		hash_del(&u->node);
	mutex_unlock(&u->domain->lock);
	kd_user_free(u);
}

/**
 * kd_user_put() - drop a reference on a user
 * @u:		the user, or NULL
 *
 * The last reference unhashes it under the domain lock, so a lookup
 * never finds a user on its way out.
 */
void kd_user_put(struct kd_user *u)
{
	if (u)
		kref_put_mutex(&u->kref, kd_user_release, &u->domain->lock);
}
