// SPDX-License-Identifier: GPL-2.0
/*
 * Policy databases (spec §12.2). A database maps names (exact, or a
 * wildcard "a.b.*" stored as "a.b" and matching names with exactly one
 * more element) to access lists; a query returns the highest access
 * (SEE < TALK < OWN) granted to a set of credentials, or -EPERM.
 *
 * The bus database is filled by activators and policy holders (entries
 * belong to that connection); a custom endpoint has its own database,
 * replaced atomically by ENDPOINT_UPDATE.
 *
 * Locking: db->entries_rwlock protects the entries; it nests inside the
 * name registry lock and is a leaf otherwise.
 */

#include <linux/cred.h>
#include <linux/hashtable.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uidgid.h>

#include "item.h"
#include "names.h"
#include "policy.h"
#include "util.h"

#define KDBUS_POLICY_HASH_SIZE	64

/**
 * struct kdbus_policy_db_entry_access - a database entry access item
 * @type:		One of KDBUS_POLICY_ACCESS_* types
 * @access:		Access to grant. One of KDBUS_POLICY_*
 * @uid:		For KDBUS_POLICY_ACCESS_USER, the global uid
 * @gid:		For KDBUS_POLICY_ACCESS_GROUP, the global gid
 * @list:		List entry item for the entry's list
 */
struct kdbus_policy_db_entry_access {
	u8 type;
	u8 access;
	union {
		kuid_t uid;
		kgid_t gid;
	};
	struct list_head list;
};

/**
 * struct kdbus_policy_db_entry - a policy database entry
 * @name:		The name to match the policy entry against
 * @hentry:		The hash entry for the database's entries_hash
 * @access_list:	List head for keeping tracks of the entry's
 *			access items.
 * @owner:		The owner of this entry. Can be a kdbus_conn or
 *			a kdbus_ep object.
 * @wildcard:		The name is a wildcard, such as ending on '.*'
 */
struct kdbus_policy_db_entry {
	char *name;
	struct hlist_node hentry;
	struct list_head access_list;
	const void *owner;
	bool wildcard:1;
};

static void kdbus_policy_entry_free(struct kdbus_policy_db_entry *e)
{
	struct kdbus_policy_db_entry_access *a, *tmp;

	list_for_each_entry_safe(a, tmp, &e->access_list, list) {
		list_del(&a->list);
		kdbus_obj_dec(KDBUS_OBJ_POLICY_ACCESS);
		kfree(a);
	}

	kdbus_obj_dec(KDBUS_OBJ_POLICY_ENTRY);
	kfree(e->name);
	kfree(e);
}

static unsigned int kdbus_strnhash(const char *str, size_t len)
{
	return full_name_hash(NULL, str, len);
}

static struct kdbus_policy_db_entry *
kdbus_policy_find_entry(struct kdbus_policy_db *db, const char *name,
			size_t len, bool wildcard)
{
	struct kdbus_policy_db_entry *e;
	unsigned int hash = kdbus_strnhash(name, len);

	hash_for_each_possible(db->entries_hash, e, hentry, hash)
		if (e->wildcard == wildcard && strlen(e->name) == len &&
		    !strncmp(e->name, name, len))
			return e;

	return NULL;
}

static struct kdbus_policy_db_entry *
kdbus_policy_lookup(struct kdbus_policy_db *db, const char *name)
{
	struct kdbus_policy_db_entry *e;
	const char *dot;

	/* find exact match */
	e = kdbus_policy_find_entry(db, name, strlen(name), false);
	if (e)
		return e;

	/* find wildcard match: the name without its last element */
	dot = strrchr(name, '.');
	if (!dot)
		return NULL;

	return kdbus_policy_find_entry(db, name, dot - name, true);
}

/**
 * kdbus_policy_db_clear - release all memory from a policy db
 * @db:		The policy database
 */
void kdbus_policy_db_clear(struct kdbus_policy_db *db)
{
	struct kdbus_policy_db_entry *e;
	struct hlist_node *tmp;
	unsigned int i;

	/* purge entries */
	down_write(&db->entries_rwlock);
	hash_for_each_safe(db->entries_hash, i, tmp, e, hentry) {
		hash_del(&e->hentry);
		kdbus_policy_entry_free(e);
	}
	up_write(&db->entries_rwlock);
}

/**
 * kdbus_policy_db_init() - initialize a new policy database
 * @db:		The location of the database
 *
 * This initializes a new policy-db. The underlying memory must have been
 * cleared to zero by the caller.
 */
void kdbus_policy_db_init(struct kdbus_policy_db *db)
{
	hash_init(db->entries_hash);
	init_rwsem(&db->entries_rwlock);
}

static bool kdbus_cred_in_group(const struct cred *cred, kgid_t gid)
{
	const struct group_info *gi = cred->group_info;
	int i;

	if (gid_eq(cred->egid, gid))
		return true;

	for (i = 0; gi && i < gi->ngroups; i++)
		if (gid_eq(gi->gid[i], gid))
			return true;

	return false;
}

/**
 * kdbus_policy_query_unlocked() - Query the policy database
 * @db:		Policy database
 * @cred:	Credentials to test against
 * @name:	Name to query
 * @hash:	Hash value of @name (unused, kept for the callers' symmetry)
 *
 * Same as kdbus_policy_query() but requires the caller to lock the policy
 * database against concurrent writes.
 *
 * Return: The highest KDBUS_POLICY_* access type found, or -EPERM if none.
 */
int kdbus_policy_query_unlocked(struct kdbus_policy_db *db,
				const struct cred *cred, const char *name,
				unsigned int hash)
{
	struct kdbus_policy_db_entry_access *a;
	struct kdbus_policy_db_entry *e;
	int highest = -EPERM;

	e = kdbus_policy_lookup(db, name);
	if (!e)
		return -EPERM;

	list_for_each_entry(a, &e->access_list, list) {
		if ((int)a->access <= highest)
			continue;

		switch (a->type) {
		case KDBUS_POLICY_ACCESS_USER:
			if (uid_eq(cred->euid, a->uid))
				highest = a->access;
			break;
		case KDBUS_POLICY_ACCESS_GROUP:
			if (kdbus_cred_in_group(cred, a->gid))
				highest = a->access;
			break;
		case KDBUS_POLICY_ACCESS_WORLD:
			highest = a->access;
			break;
		}

		/* OWN is the highest possible policy */
		if (highest >= KDBUS_POLICY_OWN)
			break;
	}

	return highest;
}

/**
 * kdbus_policy_query() - Query the policy database
 * @db:		Policy database
 * @cred:	Credentials to test against
 * @name:	Name to query
 * @hash:	Hash value of @name
 *
 * Query the policy database @db for the access rights of @cred to the name
 * @name. The access rights of @cred are returned, or -EPERM if no access is
 * granted.
 *
 * Return: The highest KDBUS_POLICY_* access type found, or -EPERM if none.
 */
int kdbus_policy_query(struct kdbus_policy_db *db, const struct cred *cred,
		       const char *name, unsigned int hash)
{
	int ret;

	down_read(&db->entries_rwlock);
	ret = kdbus_policy_query_unlocked(db, cred, name, hash);
	up_read(&db->entries_rwlock);

	return ret;
}

static void __kdbus_policy_remove_owner(struct kdbus_policy_db *db,
					const void *owner)
{
	struct kdbus_policy_db_entry *e;
	struct hlist_node *tmp;
	int i;

	hash_for_each_safe(db->entries_hash, i, tmp, e, hentry)
		if (e->owner == owner) {
			hash_del(&e->hentry);
			kdbus_policy_entry_free(e);
		}
}

/**
 * kdbus_policy_remove_owner() - remove all entries related to a connection
 * @db:		The policy database
 * @owner:	The connection which items to remove
 */
void kdbus_policy_remove_owner(struct kdbus_policy_db *db,
			       const void *owner)
{
	down_write(&db->entries_rwlock);
	__kdbus_policy_remove_owner(db, owner);
	up_write(&db->entries_rwlock);
}

static int kdbus_policy_add_access(struct kdbus_policy_db_entry *e,
				   const struct kdbus_policy_access *uaccess)
{
	struct kdbus_policy_db_entry_access *a;
	struct user_namespace *ns = current_user_ns();

	/* check the full values: the entry keeps only their low byte */
	if (uaccess->access > KDBUS_POLICY_OWN ||
	    uaccess->type == _KDBUS_POLICY_ACCESS_NULL ||
	    uaccess->type > KDBUS_POLICY_ACCESS_WORLD)
		return -EINVAL;

	a = kzalloc(sizeof(*a), GFP_KERNEL_ACCOUNT);
	if (!a)
		return -ENOMEM;

	a->type = uaccess->type;
	a->access = uaccess->access;

	/* ids are given in the uploader's user namespace */
	switch (a->type) {
	case KDBUS_POLICY_ACCESS_USER:
		a->uid = make_kuid(ns, uaccess->id);
		if (uaccess->id > U32_MAX || !uid_valid(a->uid))
			goto exit_inval;
		break;
	case KDBUS_POLICY_ACCESS_GROUP:
		a->gid = make_kgid(ns, uaccess->id);
		if (uaccess->id > U32_MAX || !gid_valid(a->gid))
			goto exit_inval;
		break;
	case KDBUS_POLICY_ACCESS_WORLD:
		break;
	default:
		goto exit_inval;
	}

	list_add_tail(&a->list, &e->access_list);
	kdbus_obj_inc(KDBUS_OBJ_POLICY_ACCESS);
	return 0;

exit_inval:
	kfree(a);
	return -EINVAL;
}

static void kdbus_policy_list_free(struct hlist_head *list)
{
	struct kdbus_policy_db_entry *e;
	struct hlist_node *tmp;

	hlist_for_each_entry_safe(e, tmp, list, hentry) {
		hlist_del(&e->hentry);
		kdbus_policy_entry_free(e);
	}
}

static int kdbus_policy_parse(struct hlist_head *entries,
			      const struct kdbus_item *items,
			      size_t items_size, size_t max_policies,
			      bool allow_wildcards, const void *owner)
{
	struct kdbus_policy_db_entry *e = NULL, *last = NULL;
	const struct kdbus_item *item;
	size_t count = 0, len;
	int ret;

	KDBUS_ITEMS_FOREACH(item, items, items_size) {
		switch (item->type) {
		case KDBUS_ITEM_NAME:
			if (max_policies && ++count > max_policies)
				return -E2BIG;

			if (!kdbus_name_is_valid(item->str, allow_wildcards))
				return -EINVAL;

			e = kzalloc(sizeof(*e), GFP_KERNEL_ACCOUNT);
			if (!e)
				return -ENOMEM;

			INIT_LIST_HEAD(&e->access_list);
			e->owner = owner;
			kdbus_obj_inc(KDBUS_OBJ_POLICY_ENTRY);

			len = strlen(item->str);
			if (len >= 2 && !strcmp(item->str + len - 2, ".*")) {
				e->wildcard = true;
				len -= 2;
			}

			e->name = kstrndup(item->str, len, GFP_KERNEL_ACCOUNT);
			if (!e->name) {
				kdbus_policy_entry_free(e);
				return -ENOMEM;
			}

			/* keep the upload order */
			if (last)
				hlist_add_behind(&e->hentry, &last->hentry);
			else
				hlist_add_head(&e->hentry, entries);
			last = e;
			break;

		case KDBUS_ITEM_POLICY_ACCESS:
			if (!last)
				return -EINVAL;

			ret = kdbus_policy_add_access(last,
						      &item->policy_access);
			if (ret < 0)
				return ret;
			break;

		default:
			break;
		}
	}

	return 0;
}

/**
 * kdbus_policy_set() - set a connection's policy rules
 * @db:				The policy database
 * @items:			A list of kdbus_item elements that contain both
 *				names and access rules to set.
 * @items_size:			The total size of the items.
 * @max_policies:		The maximum number of policy entries to allow.
 *				Pass 0 for no limit.
 * @allow_wildcards:		Boolean value whether wildcard entries (such
 *				ending on '.*') should be allowed.
 * @owner:			The owner of the new policy items.
 *
 * This function sets a new set of policies for a given owner. The names and
 * access rules are gathered by walking the list of items passed in as
 * argument. An item of type KDBUS_ITEM_NAME is expected before any number of
 * KDBUS_ITEM_POLICY_ACCESS items. If there are more repetitions of this
 * pattern than denoted in @max_policies, -E2BIG is returned. Other item
 * types are ignored. Everything is validated before the database is
 * changed; the owner's previous entries are replaced atomically.
 *
 * Return: 0 on success, negative errno on failure.
 */
int kdbus_policy_set(struct kdbus_policy_db *db,
		     const struct kdbus_item *items,
		     size_t items_size,
		     size_t max_policies,
		     bool allow_wildcards,
		     const void *owner)
{
	HLIST_HEAD(entries);
	HLIST_HEAD(restore);
	struct kdbus_policy_db_entry *e;
	struct hlist_node *tmp;
	int i, ret;

	/* first step: parse and validate everything into a private list */
	ret = kdbus_policy_parse(&entries, items, items_size, max_policies,
				 allow_wildcards, owner);
	if (ret < 0)
		goto exit;

	down_write(&db->entries_rwlock);

	/* remember previous entries to restore in case of failure */
	hash_for_each_safe(db->entries_hash, i, tmp, e, hentry)
		if (e->owner == owner) {
			hash_del(&e->hentry);
			hlist_add_head(&e->hentry, &restore);
		}

	hlist_for_each_entry_safe(e, tmp, &entries, hentry) {
		hlist_del(&e->hentry);

		/* prevent duplicate entries, also across owners */
		if (kdbus_policy_find_entry(db, e->name, strlen(e->name),
					    e->wildcard)) {
			kdbus_policy_entry_free(e);
			ret = -EEXIST;
			break;
		}

		hash_add(db->entries_hash, &e->hentry,
			 kdbus_strnhash(e->name, strlen(e->name)));
	}

	if (ret < 0) {
		/* drop what this upload added, restore the previous set */
		__kdbus_policy_remove_owner(db, owner);
		hlist_for_each_entry_safe(e, tmp, &restore, hentry) {
			hlist_del(&e->hentry);
			hash_add(db->entries_hash, &e->hentry,
				 kdbus_strnhash(e->name, strlen(e->name)));
		}
	}

	up_write(&db->entries_rwlock);

exit:
	kdbus_policy_list_free(&entries);
	kdbus_policy_list_free(&restore);
	return ret;
}
