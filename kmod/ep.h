/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Endpoints: the files of a bus that connections are made through. The
 * default endpoint "bus" belongs to the bus; custom ones belong to the
 * handle that made them and see the bus through their own policy.
 */
#ifndef KD_EP_H
#define KD_EP_H

#include <linux/kref.h>
#include <linux/mutex.h>

#include "kd.h"
#include "policy.h"

struct kd_ep {
	struct kd_node node;		/* KD_NODE_EP */
	struct kref kref;
	struct kd_bus *bus;		/* a reference */
	struct list_head bus_node;	/* bus->eps, bus->lock */
	char *name;
	bool is_default;
	kuid_t uid;
	kgid_t gid;
	umode_t mode;
	struct dentry *dentry;
	struct kd_user *anon;		/* custom: the quota user of its conns */
	struct kd_policydb policy;	/* custom: what its conns may see/talk/own */

	/* @lock protects @dead and @conns; taken before bus->lock */
	struct mutex lock;
	bool dead;
	struct list_head conns;		/* struct kd_conn.ep_node */
};

/*
 * Permission bits of a bus directory (@bits 05) or endpoint file (@bits
 * 06) made with KDBUS_MAKE_ACCESS_* @flags: the owner always, the group
 * for GROUP or WORLD, everyone for WORLD.
 */
static inline umode_t kd_access_mode(u64 flags, umode_t bits)
{
	umode_t mode = bits << 6;

	if (flags & (KDBUS_MAKE_ACCESS_GROUP | KDBUS_MAKE_ACCESS_WORLD))
		mode |= bits << 3;
	if (flags & KDBUS_MAKE_ACCESS_WORLD)
		mode |= bits;
	return mode;
}

struct kd_ep *kd_ep_new(struct kd_bus *bus, const char *name, umode_t mode,
			kuid_t uid, kgid_t gid, bool is_default);
int kd_ep_make(struct kd_ep *ep, struct file *file, void __user *argp,
	       struct kd_ep **out);
int kd_ep_update(struct kd_ep *ep, struct file *file, void __user *argp);
void kd_ep_shutdown(struct kd_ep *ep);
struct kd_ep *kd_ep_get(struct kd_ep *ep);
void kd_ep_put(struct kd_ep *ep);

#endif /* KD_EP_H */
