/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Metadata of processes and connections, attached to messages and to
 * CONN_INFO / BUS_CREATOR_INFO replies.
 */

#ifndef __KDBUS_METADATA_H
#define __KDBUS_METADATA_H

#include <linux/kernel.h>
#include <linux/kdbus.h>

struct kdbus_conn;
struct kdbus_meta_proc;
struct kdbus_meta_fake;

/**
 * struct kdbus_meta_conn - metadata of a connection, collected at send time
 * @collected:		KDBUS_ATTACH_* items that were collected
 * @ts:			timestamp of the message
 * @owned_names_items:	OWNED_NAME items of the names the sender owns
 * @owned_names_size:	size of @owned_names_items
 * @conn_description:	description of the connection
 */
struct kdbus_meta_conn {
	u64 collected;
	struct kdbus_timestamp ts;
	struct kdbus_item *owned_names_items;
	size_t owned_names_size;
	char *conn_description;
};

struct kdbus_meta_proc *kdbus_meta_proc_new(void);
struct kdbus_meta_proc *kdbus_meta_proc_ref(struct kdbus_meta_proc *mp);
struct kdbus_meta_proc *kdbus_meta_proc_unref(struct kdbus_meta_proc *mp);
int kdbus_meta_proc_collect(struct kdbus_meta_proc *mp, u64 what);

struct kdbus_meta_fake *kdbus_meta_fake_new(void);
struct kdbus_meta_fake *kdbus_meta_fake_free(struct kdbus_meta_fake *mf);
int kdbus_meta_fake_collect(struct kdbus_meta_fake *mf,
			    const struct kdbus_creds *creds,
			    const struct kdbus_pids *pids,
			    const char *seclabel);
kuid_t kdbus_meta_fake_uid(const struct kdbus_meta_fake *mf);

void kdbus_meta_conn_init(struct kdbus_meta_conn *mc);
void kdbus_meta_conn_destroy(struct kdbus_meta_conn *mc);
int kdbus_meta_conn_collect(struct kdbus_meta_conn *mc,
			    struct kdbus_conn *conn,
			    u64 msg_seqnum, u64 what);

int kdbus_meta_emit(struct kdbus_meta_proc *mp,
		    struct kdbus_meta_fake *mf,
		    struct kdbus_meta_conn *mc,
		    struct kdbus_conn *conn,
		    u64 mask,
		    struct kdbus_item **out_items,
		    size_t *out_size);
u64 kdbus_meta_msg_mask(const struct kdbus_conn *snd,
			const struct kdbus_conn *rcv);

#endif
