/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A domain is one mount of kdbusfs: its buses, its id counter and the
 * users it accounts buses, connections and queued messages to.
 */
#ifndef KD_DOMAIN_H
#define KD_DOMAIN_H

#include <linux/hashtable.h>
#include <linux/idr.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/uidgid.h>

#include "kd.h"

struct kd_domain {
	struct kd_node node;		/* KD_NODE_CONTROL, for the control file */
	struct kref kref;
	struct super_block *sb;
	struct user_namespace *user_ns;	/* of the mounter: uid prefixes, privilege */
	struct dentry *root;
	atomic64_t last_id;		/* bus and connection ids, never reused */

	/* @lock protects @dead, @buses and @users; it is taken last */
	struct mutex lock;
	bool dead;
	struct list_head buses;		/* struct kd_bus.domain_node */
	DECLARE_HASHTABLE(users, 5);
	struct ida user_ids;		/* quota slots; 0 is the kernel's */
};

/*
 * A user as the domain accounts it: a uid, or an anonymous user shared by
 * all connections of one custom endpoint (uid INVALID_UID).
 */
struct kd_user {
	struct kref kref;
	struct kd_domain *domain;
	struct hlist_node node;		/* in domain->users, unless anonymous */
	kuid_t uid;
	unsigned int id;		/* >= 1: index of quota tables */
	atomic_t buses;
	atomic_t conns;
};

struct kd_domain *kd_domain_new(struct super_block *sb);
void kd_domain_shutdown(struct kd_domain *d);
struct kd_domain *kd_domain_get(struct kd_domain *d);
void kd_domain_put(struct kd_domain *d);
u64 kd_domain_next_id(struct kd_domain *d);
/* 0 if @name starts with "<euid>-", the caller's euid in the domain */
int kd_domain_check_prefix(struct kd_domain *d, const char *name);

struct kd_user *kd_user_get(struct kd_domain *d, kuid_t uid);
struct kd_user *kd_user_ref(struct kd_user *u);
void kd_user_put(struct kd_user *u);

#endif /* KD_DOMAIN_H */
