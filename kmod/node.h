/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kdbus nodes: the objects that appear in kdbusfs.
 */

#ifndef __KDBUS_NODE_H
#define __KDBUS_NODE_H

#include <linux/atomic.h>
#include <linux/kernel.h>
#include <linux/rbtree.h>
#include <linux/uidgid.h>
#include <linux/wait.h>

struct kdbus_node;

enum kdbus_node_type {
	KDBUS_NODE_DOMAIN,
	KDBUS_NODE_CONTROL,
	KDBUS_NODE_BUS,
	KDBUS_NODE_ENDPOINT,
};

typedef void (*kdbus_node_free_t) (struct kdbus_node *node);
typedef void (*kdbus_node_release_t) (struct kdbus_node *node);

/**
 * struct kdbus_node - a node in the kdbusfs tree
 * @refcnt:	object reference count (keeps the memory)
 * @active:	active reference count and state (see node.c)
 * @waitq:	woken when active references drop or the node is released
 * @type:	enum kdbus_node_type
 * @free_cb:	frees the object embedding the node (last reference gone)
 * @release_cb:	tears the object down once it is deactivated and drained
 * @mode:	file mode (without file type bits)
 * @uid:	owner of the inode
 * @gid:	group of the inode
 * @name:	name in the parent directory (NULL for a domain)
 * @hash:	hash of @name, also the directory position
 * @id:	module-wide unique id, used as inode number
 * @parent:	parent node (reference held) or NULL
 * @rb:	link in the parent's children tree
 * @children:	children sorted by (hash, name), under kdbus_node_lock
 */
struct kdbus_node {
	atomic_t refcnt;
	atomic_t active;
	wait_queue_head_t waitq;

	unsigned int type;
	kdbus_node_free_t free_cb;
	kdbus_node_release_t release_cb;
	umode_t mode;
	kuid_t uid;
	kgid_t gid;

	char *name;
	unsigned int hash;
	unsigned int id;
	struct kdbus_node *parent;
	struct rb_node rb;
	struct rb_root children;
};

#define kdbus_node_from_rb(_node) rb_entry((_node), struct kdbus_node, rb)

void kdbus_node_init(struct kdbus_node *node, unsigned int type);
int kdbus_node_link(struct kdbus_node *node, struct kdbus_node *parent,
		    const char *name);

struct kdbus_node *kdbus_node_ref(struct kdbus_node *node);
struct kdbus_node *kdbus_node_unref(struct kdbus_node *node);

bool kdbus_node_is_active(struct kdbus_node *node);
bool kdbus_node_is_deactivated(struct kdbus_node *node);
bool kdbus_node_activate(struct kdbus_node *node);
void kdbus_node_deactivate(struct kdbus_node *node);

bool kdbus_node_acquire(struct kdbus_node *node);
void kdbus_node_release(struct kdbus_node *node);

struct kdbus_node *kdbus_node_find_child(struct kdbus_node *node,
					 const char *name);
struct kdbus_node *kdbus_node_find_closest(struct kdbus_node *node,
					   unsigned int hash);
struct kdbus_node *kdbus_node_next_child(struct kdbus_node *node,
					 struct kdbus_node *prev);

void kdbus_node_exit(void);

#endif
