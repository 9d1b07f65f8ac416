/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Endpoints: the files connections are opened on.
 */

#ifndef __KDBUS_ENDPOINT_H
#define __KDBUS_ENDPOINT_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/uidgid.h>

#include "node.h"
#include "policy.h"

struct kdbus_bus;
struct kdbus_user;

/**
 * struct kdbus_ep - endpoint to access a bus
 * @node:		The kdbus node
 * @lock:		Endpoint data lock
 * @bus:		Bus behind this endpoint
 * @user:		Custom endpoints account against an anonymous user;
 *			NULL for the default endpoint
 * @policy_db:		Uploaded policy (custom endpoints)
 * @conn_list:		Connections on this endpoint
 */
struct kdbus_ep {
	struct kdbus_node node;
	struct mutex lock;

	/* static */
	struct kdbus_bus *bus;
	struct kdbus_user *user;

	/* protected by own locks */
	struct kdbus_policy_db policy_db;

	/* protected by ep->lock */
	struct list_head conn_list;
};

#define kdbus_ep_from_node(_node) \
	container_of((_node), struct kdbus_ep, node)

struct kdbus_ep *kdbus_ep_new(struct kdbus_bus *bus, const char *name,
			      unsigned int access, kuid_t uid, kgid_t gid,
			      bool policy);
struct kdbus_ep *kdbus_ep_ref(struct kdbus_ep *ep);
struct kdbus_ep *kdbus_ep_unref(struct kdbus_ep *ep);

struct kdbus_ep *kdbus_cmd_ep_make(struct kdbus_bus *bus, bool privileged,
				   void __user *argp);
int kdbus_cmd_ep_update(struct kdbus_ep *ep, void __user *argp);

#endif
