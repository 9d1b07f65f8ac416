/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Policy: who may SEE, TALK to and OWN which names (spec 12). A bus has
 * one database filled by activators and policy holders; each custom
 * endpoint has its own.
 */
#ifndef KD_POLICY_H
#define KD_POLICY_H

#include <linux/hashtable.h>
#include <linux/rwsem.h>

#include "kd.h"

struct kd_policydb {
	struct rw_semaphore lock;	/* a leaf below bus->names.lock */
	DECLARE_HASHTABLE(names, 6);
};

void kd_policydb_init(struct kd_policydb *db);
void kd_policydb_destroy(struct kd_policydb *db);

/*
 * Replaces every entry @owner put into @db by the NAME + POLICY_ACCESS
 * items in @items, atomically; @max_names 0 means no limit. Ids are
 * mapped from @ns. Items of other types in @items are skipped. Errors:
 * -EINVAL (access item before a name, bad name, type, access or id),
 * -E2BIG (more than @max_names names), -EEXIST (a name twice, or a name
 * another owner has in @db), -ENOMEM; on error @db is unchanged.
 * Takes db->lock and allocates: no spinlock may be held.
 */
int kd_policydb_set(struct kd_policydb *db, const void *owner,
		    const struct kdbus_item *items, size_t len,
		    unsigned int max_names, bool wildcards,
		    struct user_namespace *ns);
void kd_policydb_drop(struct kd_policydb *db, const void *owner);

bool kd_may_own(const struct kd_conn *conn, const char *name);
/* caller holds bus->names.lock: TALK looks at @to's names */
bool kd_may_talk(const struct kd_conn *from, const struct kd_conn *to);
bool kd_may_see_name(const struct kd_conn *conn, const char *name);
/* caller holds bus->names.lock (read is enough): looks at @peer's names */
bool kd_may_see_conn(const struct kd_conn *conn,
		     const struct kd_conn *peer);

#endif /* KD_POLICY_H */
