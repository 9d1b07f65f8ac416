/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The registry of well-known names of a bus.
 */

#ifndef __KDBUS_NAMES_H
#define __KDBUS_NAMES_H

#include <linux/hashtable.h>
#include <linux/rwsem.h>

struct kdbus_conn;

/**
 * struct kdbus_name_registry - names registered for a bus
 * @entries_hash:	Map of entries
 * @rwlock:		Registry data lock
 * @name_seq_last:	Last used sequence number to assign to a name entry
 */
struct kdbus_name_registry {
	DECLARE_HASHTABLE(entries_hash, 8);
	struct rw_semaphore rwlock;
	u64 name_seq_last;
};

/**
 * struct kdbus_name_owner - owner of a well-known name
 * @flags:		KDBUS_NAME_* flags of this owner (only the stored
 *			ones: ALLOW_REPLACEMENT, QUEUE, ACTIVATOR)
 * @conn:		connection owning the name
 * @name:		name that is owned
 * @conn_entry:		link into @conn
 * @name_entry:		link into @name (the queue; empty for activators)
 */
struct kdbus_name_owner {
	u64 flags;
	struct kdbus_conn *conn;
	struct kdbus_name_entry *name;
	struct list_head conn_entry;
	struct list_head name_entry;
};

/**
 * struct kdbus_name_entry - well-know name entry
 * @name_id:		sequence number of name entry to be able to uniquely
 *			identify a name over its registration lifetime
 * @activator:		activator of this name, or NULL
 * @queue:		list of queued owners; the first is the primary owner
 * @hentry:		entry in registry map
 * @name:		well-known name
 */
struct kdbus_name_entry {
	u64 name_id;
	struct kdbus_name_owner *activator;
	struct list_head queue;
	struct hlist_node hentry;
	char name[];
};

bool kdbus_name_is_valid(const char *p, bool allow_wildcard);

struct kdbus_name_registry *kdbus_name_registry_new(void);
void kdbus_name_registry_free(struct kdbus_name_registry *reg);

struct kdbus_name_entry *
kdbus_name_lookup_unlocked(struct kdbus_name_registry *reg, const char *name);

int kdbus_name_acquire(struct kdbus_name_registry *reg,
		       struct kdbus_conn *conn, const char *name,
		       u64 flags, u64 *return_flags);
void kdbus_name_release_all_unlocked(struct kdbus_name_registry *reg,
				     struct kdbus_conn *conn);

int kdbus_cmd_name_acquire(struct kdbus_conn *conn, void __user *argp);
int kdbus_cmd_name_release(struct kdbus_conn *conn, void __user *argp);
int kdbus_cmd_list(struct kdbus_conn *conn, void __user *argp);

u64 kdbus_name_owner_flags(const struct kdbus_name_owner *owner);
bool kdbus_name_owner_is_primary(const struct kdbus_name_owner *owner);

/**
 * kdbus_name_get_owner() - get current owner of a name
 * @name:	name to get current owner of
 *
 * This returns a pointer to the current owner of a name (or its activator if
 * there is no owner). The caller must make sure @name is valid and does not
 * vanish.
 *
 * Return: Pointer to current owner or NULL if there is none.
 */
static inline struct kdbus_name_owner *
kdbus_name_get_owner(struct kdbus_name_entry *name)
{
	return list_first_entry_or_null(&name->queue, struct kdbus_name_owner,
					name_entry) ? : name->activator;
}

#endif
