/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Metadata: what the kernel vouches for about a peer. Process snapshots
 * are taken at BUS_MAKE and HELLO (or faked by a privileged HELLO), and
 * once per message at SEND, collecting only what some receiver wants.
 * Items are emitted per viewer, translated into its namespaces.
 */
#ifndef KD_META_H
#define KD_META_H

#include <linux/kref.h>

#include "kd.h"
#include "item.h"

/* the metadata every receiver gets if it asks (deviation 1) */
#define KD_ATTACH_IMPLICIT	(KDBUS_ATTACH_TIMESTAMP | KDBUS_ATTACH_CREDS | \
				 KDBUS_ATTACH_PIDS | KDBUS_ATTACH_AUXGROUPS | \
				 KDBUS_ATTACH_NAMES | KDBUS_ATTACH_CONN_DESCRIPTION)

/* attach flags that describe the process, not the connection */
#define KD_ATTACH_PROC		(_KDBUS_ATTACH_ALL & ~(KDBUS_ATTACH_TIMESTAMP | \
				 KDBUS_ATTACH_NAMES | KDBUS_ATTACH_CONN_DESCRIPTION))

/* an immutable snapshot of a process, shared by reference */
struct kd_meta;

/*
 * kd_meta_snapshot() describes `current`, collecting only the process items
 * (KD_ATTACH_PROC) in @mask; other bits are ignored. It may sleep and, for
 * CMDLINE, reads the task's own memory: call it with no lock held and, if
 * @mask has CMDLINE, outside kd_conn_enter(). kd_meta_faked() holds just
 * the items given (any may be NULL; creds are mapped from the caller's
 * user namespace). Both return NULL when out of memory (-ENOMEM).
 * kd_meta_put() accepts NULL and may sleep.
 */
struct kd_meta *kd_meta_snapshot(u64 mask);
struct kd_meta *kd_meta_faked(const struct kdbus_creds *creds,
			      const struct kdbus_pids *pids,
			      const char *seclabel);
struct kd_meta *kd_meta_get(struct kd_meta *m);
void kd_meta_put(struct kd_meta *m);
/* the KDBUS_ATTACH_* items @m actually holds */
u64 kd_meta_has(const struct kd_meta *m);

/* process items of @m in @mask, as @viewer (a connection) sees them */
void kd_meta_emit(struct kd_buf *out, const struct kd_meta *m, u64 mask,
		  const struct kd_conn *viewer);
/*
 * OWNED_NAME items of @conn (primary names only), limited to those
 * @viewer may SEE; caller holds bus->names.lock
 */
void kd_meta_emit_names(struct kd_buf *out, const struct kd_conn *conn,
			const struct kd_conn *viewer);

/* what a message says about its sender: collected lazily at SEND */
struct kd_msg_meta {
	u64 collected;			/* KDBUS_ATTACH_* gathered so far */
	struct kd_meta *proc;		/* the sending task */
	struct kd_buf names;		/* its OWNED_NAME items, with flags */
	struct kdbus_timestamp ts;
};

/*
 * In msgmeta.c. init sets the sequence number; nothing is collected yet.
 * collect stamps the time if @mask has TIMESTAMP and gathers the other
 * items of @mask not collected yet, and may be called again with more
 * bits; it takes src->bus->names.lock for reading itself (NAMES) and may
 * read the sender's memory (CMDLINE): call it before taking any bus lock
 * and outside kd_conn_enter(), e.g. with the union of what the receivers
 * may want. Returns 0 or -ENOMEM. mask is what @dst gets from @src
 * (deviation 1); @src NULL (kernel notification) gives TIMESTAMP only.
 * emit writes @dst's items of @mask (a kd_msg_meta_mask() result), limited
 * to what was collected; @src may be NULL. emit takes no registry lock.
 */
void kd_msg_meta_init(struct kd_msg_meta *mm, u64 seq);
void kd_msg_meta_release(struct kd_msg_meta *mm);
int kd_msg_meta_collect(struct kd_msg_meta *mm, struct kd_conn *src,
			u64 mask);
u64 kd_msg_meta_mask(const struct kd_conn *src, const struct kd_conn *dst);
void kd_msg_meta_emit(struct kd_buf *out, const struct kd_msg_meta *mm,
		      const struct kd_conn *src, u64 mask,
		      const struct kd_conn *dst);

#endif /* KD_META_H */
