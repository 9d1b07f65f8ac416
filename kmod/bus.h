/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A bus: the directory <uid>-<name> of a domain, its endpoints, its
 * connections, its name registry and its policy. It lives as long as the
 * handle that made it.
 */
#ifndef KD_BUS_H
#define KD_BUS_H

#include <linux/hashtable.h>
#include <linux/kref.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/uidgid.h>

#include "kd.h"
#include "names.h"
#include "notify.h"
#include "policy.h"

struct kd_bus {
	struct kref kref;
	struct kd_domain *domain;
	struct list_head domain_node;	/* domain->buses, domain->lock */
	struct kd_user *creator;	/* counts against its bus limit */
	kuid_t uid;			/* creator's euid: the bus owner */
	kgid_t gid;
	u64 id;
	u64 flags;			/* BUS_MAKE flags: KDBUS_MAKE_ACCESS_* */
	u8 id128[16];
	char *name;
	struct kdbus_bloom_parameter bloom;
	u64 creator_attach;		/* what BUS_CREATOR_INFO may show */
	struct kd_meta *creator_meta;
	struct dentry *dir;
	struct kd_ep *default_ep;	/* referenced until kd_bus_shutdown() */
	atomic64_t seq;			/* message sequence numbers */

	/*
	 * @lock protects @dead, @eps, @monitors, @all_conns and writers of
	 * @conns; readers of @conns use RCU. Order: names.lock, then this.
	 */
	struct rw_semaphore lock;
	bool dead;
	struct list_head eps;		/* struct kd_ep.bus_node */
	struct list_head monitors;	/* struct kd_conn.monitor_node */
	DECLARE_HASHTABLE(conns, 8);	/* struct kd_conn.bus_node, by id */
	/* the same connections, for walks over all of them (broadcasts) */
	struct list_head all_conns;	/* struct kd_conn.all_node */
	unsigned int n_conns;		/* ordinary, activators, holders */

	struct kd_registry names;
	struct kd_policydb policy;	/* filled by activators and holders */
	struct kd_notify notify;

	/* @reply_lock guards every reply slot of the bus; it is a leaf */
	spinlock_t reply_lock;
};

int kd_bus_make(struct kd_domain *d, struct file *file, void __user *argp,
		struct kd_bus **out);
void kd_bus_shutdown(struct kd_bus *bus);
struct kd_bus *kd_bus_get(struct kd_bus *bus);
void kd_bus_put(struct kd_bus *bus);

int kd_bus_link_conn(struct kd_bus *bus, struct kd_conn *conn);
void kd_bus_unlink_conn(struct kd_bus *bus, struct kd_conn *conn);
struct kd_conn *kd_bus_find_conn(struct kd_bus *bus, u64 id);

int kd_cmd_bus_creator_info(struct kd_conn *conn, void __user *argp);

#endif /* KD_BUS_H */
