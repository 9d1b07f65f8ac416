/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Domains (one per kdbusfs mount) and their per-user accounting.
 */

#ifndef __KDBUS_DOMAIN_H
#define __KDBUS_DOMAIN_H

#include <linux/hashtable.h>
#include <linux/idr.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/user_namespace.h>

#include "node.h"

/* the user index reserved for kernel-generated messages in quota tables */
#define KDBUS_USER_KERNEL_ID	0

/**
 * struct kdbus_domain - domain for buses
 * @node:		Underlying API node
 * @lock:		Domain data lock (users)
 * @last_id:		Last used object id (buses and connections share it)
 * @user_idr:		Set of all users indexed by user-id
 * @user_hash:		Set of all users indexed by UID
 * @user_namespace:	User namespace, pinned at creation time
 * @control:		The control node of the domain
 */
struct kdbus_domain {
	struct kdbus_node node;
	struct mutex lock;
	atomic64_t last_id;
	struct idr user_idr;
	DECLARE_HASHTABLE(user_hash, 6);
	struct user_namespace *user_namespace;
	struct kdbus_node *control;
};

/**
 * struct kdbus_user - resource accounting for users
 * @kref:		Reference counter
 * @domain:		Domain of the user
 * @hentry:		Entry in domain user map
 * @id:			Index of this user in quota tables (> 0)
 * @uid:		UID of the user, INVALID_UID for anonymous users
 * @buses:		Number of buses the user has created
 * @connections:	Number of connections the user has created
 */
struct kdbus_user {
	struct kref kref;
	struct kdbus_domain *domain;
	struct hlist_node hentry;
	unsigned int id;
	kuid_t uid;
	atomic_t buses;
	atomic_t connections;
};

#define kdbus_domain_from_node(_node) \
	container_of((_node), struct kdbus_domain, node)

struct kdbus_domain *kdbus_domain_new(struct user_namespace *user_ns);
int kdbus_domain_populate(struct kdbus_domain *domain);
struct kdbus_domain *kdbus_domain_ref(struct kdbus_domain *domain);
struct kdbus_domain *kdbus_domain_unref(struct kdbus_domain *domain);

struct kdbus_user *kdbus_user_lookup(struct kdbus_domain *domain, kuid_t uid);
struct kdbus_user *kdbus_user_ref(struct kdbus_user *u);
struct kdbus_user *kdbus_user_unref(struct kdbus_user *u);

#endif
