/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The well-known name registry of a bus: who owns each name, who waits
 * for it, and which activator stands in while nobody does.
 */
#ifndef KD_NAMES_H
#define KD_NAMES_H

#include <linux/hashtable.h>
#include <linux/rwsem.h>

#include "kd.h"

/* struct kd_registry lives in struct kd_bus */
struct kd_registry {
	struct rw_semaphore lock;	/* the outermost bus lock */
	DECLARE_HASHTABLE(names, 7);
	u64 last_id;
};

struct kd_name {
	struct hlist_node node;		/* registry->names */
	u64 id;				/* unique in the bus, never reused */
	struct list_head owners;	/* struct kd_owner.name_node; head = primary */
	struct kd_owner *activator;
	char str[];
};

struct kd_owner {
	struct list_head name_node;
	struct list_head conn_node;	/* conn->names */
	struct kd_name *name;
	struct kd_conn *conn;
	u64 flags;			/* KDBUS_NAME_ALLOW_REPLACEMENT, _QUEUE */
					/* an activator's record: _ACTIVATOR */
};

void kd_registry_init(struct kd_registry *r);
void kd_registry_destroy(struct kd_registry *r);

/* lookups: caller holds registry->lock */
struct kd_name *kd_name_find(struct kd_registry *r, const char *name);
struct kd_owner *kd_name_primary(const struct kd_name *n);	/* activator too */
bool kd_conn_owns(const struct kd_conn *conn, const char *name);

/* takes the lock; the caller (HELLO) flushes the NAME_ADD it may record */
int kd_names_add_activator(struct kd_conn *activator, const char *name);
/* disconnect: every name of @conn released; caller holds the lock */
void kd_names_release_all(struct kd_conn *conn);

int kd_cmd_name_acquire(struct kd_conn *conn, void __user *argp);
int kd_cmd_name_release(struct kd_conn *conn, void __user *argp);

#endif /* KD_NAMES_H */
