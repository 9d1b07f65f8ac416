/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel notifications. They are recorded while the operation that causes
 * them holds its locks, and delivered, in order, by kd_notify_flush()
 * once those locks are dropped.
 */
#ifndef KD_NOTIFY_H
#define KD_NOTIFY_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>

#include "kd.h"

/* struct kd_notify lives in struct kd_bus */
struct kd_notify {
	spinlock_t lock;		/* guards @pending; a leaf */
	struct list_head pending;
	struct mutex flush;		/* one flusher at a time keeps order */
};

void kd_notify_init(struct kd_notify *n);
void kd_notify_destroy(struct kd_notify *n);

void kd_notify_id(struct kd_bus *bus, u64 type, u64 id, u64 flags);
void kd_notify_name(struct kd_bus *bus, u64 type, u64 old_id, u64 old_flags,
		    u64 new_id, u64 new_flags, const char *name);
void kd_notify_reply(struct kd_bus *bus, u64 type, u64 dst_id, u64 cookie);
void kd_notify_flush(struct kd_bus *bus);

#endif /* KD_NOTIFY_H */
