/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every part of the module shares: the uapi, the limits, the
 * kernel-version shims, forward declarations of the objects and the live
 * object counters that catch leaks.
 */
#ifndef KD_H
#define KD_H

#include <linux/atomic.h>
#include <linux/types.h>
#include <linux/kdbus.h>

#include "compat.h"
#include "limits.h"

struct kd_domain;
struct kd_user;
struct kd_bus;
struct kd_ep;
struct kd_conn;
struct kd_pool;
struct kd_slice;
struct kd_entry;
struct kd_msg;
struct kd_reply;
struct kd_meta;
struct kd_buf;

/*
 * Object classes counted while alive. debugfs kdbus/objects prints one
 * "<name> <count>" line per class; module exit logs "kdbus: leaked N
 * <name>" for any class that is not back at zero.
 */
enum kd_obj {
	KD_OBJ_DOMAIN,
	KD_OBJ_USER,
	KD_OBJ_BUS,
	KD_OBJ_EP,
	KD_OBJ_CONN,
	KD_OBJ_SLICE,
	KD_OBJ_ENTRY,
	KD_OBJ_MSG,
	KD_OBJ_REPLY,
	KD_OBJ_NAME,
	KD_OBJ_OWNER,
	KD_OBJ_MATCH,
	KD_OBJ_POLICY,
	KD_OBJ_META,
	KD_OBJ_NR,
};

extern atomic_long_t kd_obj_live[KD_OBJ_NR];

static inline void kd_obj_new(enum kd_obj o)
{
	atomic_long_inc(&kd_obj_live[o]);
}

static inline void kd_obj_gone(enum kd_obj o)
{
	atomic_long_dec(&kd_obj_live[o]);
}

/* the first 8 bytes of a kdbusfs inode's i_private say what it is */
enum kd_node_kind {
	KD_NODE_CONTROL = 1,	/* i_private is a struct kd_domain */
	KD_NODE_EP,		/* i_private is a struct kd_ep */
	KD_NODE_DIR,		/* domain root or bus directory: not openable */
};

struct kd_node {
	enum kd_node_kind kind;
};

/*
 * A process's root directory, named by its file system and inode rather
 * than held: a connection or snapshot that pinned it would keep the real
 * root from being unmounted at shutdown.
 */
struct kd_root {
	dev_t dev;
	unsigned long ino;
};

void kd_root_of_current(struct kd_root *root);

static inline bool kd_root_equal(const struct kd_root *a,
				 const struct kd_root *b)
{
	return a->dev == b->dev && a->ino == b->ino;
}

/* ALIGN8 of an item or struct size, as the ABI lays them out */
#define KD_ALIGN8(x)	ALIGN((x), 8)

#endif /* KD_H */
