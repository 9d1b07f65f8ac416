// SPDX-License-Identifier: GPL-2.0
/*
 * Policy databases and the SEE/TALK/OWN checks (spec 12).
 *
 * A database is a hash of rules. A rule is what one owner (an activator,
 * a policy holder, or a custom endpoint) says about one name: either an
 * exact name or a wildcard "prefix.*", stored as its prefix. Its grants
 * are kept in kernel id form, so a lookup is a plain comparison against
 * the credentials a connection was opened with.
 */

#include <linux/cred.h>
#include <linux/err.h>
#include <linux/hashtable.h>
#include <linux/list.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/stringhash.h>
#include <linux/uidgid.h>
#include <linux/user_namespace.h>

#include "bus.h"
#include "conn.h"
#include "ep.h"
#include "item.h"
#include "names.h"
#include "policy.h"

/* "no access at all": below KDBUS_POLICY_SEE */
#define KD_ACCESS_NONE	(-1)

struct kd_grant {
	u8 type;			/* KDBUS_POLICY_ACCESS_* */
	u8 access;			/* KDBUS_POLICY_* */
	union {
		kuid_t uid;
		kgid_t gid;
	};
};

struct kd_rule {
	struct hlist_node node;		/* db->names, keyed by @hash */
	struct list_head link;		/* private lists while building/freeing */
	const void *owner;
	u32 hash;
	bool wildcard;			/* matches "@name.<one element>" */
	unsigned int len;		/* strlen(@name) */
	unsigned int n_grants;
	char *name;			/* stored behind @grants */
	struct kd_grant grants[];
};

static u32 kd_rule_hash(const char *name, unsigned int len)
{
	return full_name_hash(NULL, name, len);
}

static bool kd_rule_is(const struct kd_rule *r, u32 hash, const char *name,
		       unsigned int len, bool wildcard)
{
	return r->hash == hash && r->len == len && r->wildcard == wildcard &&
	       !memcmp(r->name, name, len);
}

static void kd_rule_free(struct kd_rule *r)
{
	kfree(r);
	kd_obj_gone(KD_OBJ_POLICY);
}

static void kd_rules_free(struct list_head *list)
{
	struct kd_rule *r, *tmp;

	list_for_each_entry_safe(r, tmp, list, link)
		kd_rule_free(r);
}

/**
 * kd_policydb_init() - set up an empty database
 * @db:		the database
 */
void kd_policydb_init(struct kd_policydb *db)
{
	init_rwsem(&db->lock);
	hash_init(db->names);
}

/* moves every rule of @owner (all of them for NULL) from @db to @out */
static void kd_policydb_take(struct kd_policydb *db, const void *owner,
			     struct list_head *out)
{
	struct hlist_node *tmp;
	struct kd_rule *r;
	unsigned int bkt;

	hash_for_each_safe(db->names, bkt, tmp, r, node) {
		if (owner && r->owner != owner)
			continue;
		hash_del(&r->node);
		list_add_tail(&r->link, out);
	}
}

/**
 * kd_policydb_destroy() - free every rule of a database nobody uses anymore
 * @db:		the database
 */
void kd_policydb_destroy(struct kd_policydb *db)
{
	LIST_HEAD(gone);

	kd_policydb_take(db, NULL, &gone);
	kd_rules_free(&gone);
}

/* POLICY_ACCESS items that follow @name_item, up to the next NAME */
static unsigned int kd_count_grants(const struct kdbus_item *name_item,
				    const void *end)
{
	const struct kdbus_item *it = kd_item_next(name_item);
	unsigned int n = 0;

	for (; (const void *)it < end; it = kd_item_next(it)) {
		if (it->type == KDBUS_ITEM_NAME)
			break;
		if (it->type == KDBUS_ITEM_POLICY_ACCESS)
			n++;
	}
	return n;
}

/* a rule for the NAME item @item, with room for its grants */
static struct kd_rule *kd_rule_new(const struct kdbus_item *item,
				   const void *end, bool wildcards)
{
	size_t max = kd_item_len(item);
	const char *str = item->str;
	unsigned int n, len;
	struct kd_rule *r;
	bool wild;

	if (!max || strnlen(str, max) >= max || !kd_name_ok(str, wildcards))
		return ERR_PTR(-EINVAL);

	len = strlen(str);
	wild = wildcards && len > 2 && !strcmp(str + len - 2, ".*");
	if (wild)
		len -= 2;

	n = kd_count_grants(item, end);
	r = kzalloc(struct_size(r, grants, n) + len + 1, GFP_KERNEL_ACCOUNT);
	if (!r)
		return ERR_PTR(-ENOMEM);
	kd_obj_new(KD_OBJ_POLICY);

	INIT_LIST_HEAD(&r->link);
	r->name = (char *)&r->grants[n];
	memcpy(r->name, str, len);
	r->len = len;
	r->wildcard = wild;
	r->hash = kd_rule_hash(r->name, len);
	return r;
}

/* checks one record in all its bits and maps its id from @ns */
static int kd_grant_parse(struct kd_grant *g,
			  const struct kdbus_policy_access *pa,
			  struct user_namespace *ns)
{
	bool ok;

	/* SEE is 0, so anything above OWN is no access level */
	if (pa->access > KDBUS_POLICY_OWN)
		return -EINVAL;
	if (pa->type != KDBUS_POLICY_ACCESS_WORLD && pa->id > U32_MAX)
		return -EINVAL;

	switch (pa->type) {
	case KDBUS_POLICY_ACCESS_USER:
		g->uid = make_kuid(ns, pa->id);
		ok = uid_valid(g->uid);
		break;
	case KDBUS_POLICY_ACCESS_GROUP:
		g->gid = make_kgid(ns, pa->id);
		ok = gid_valid(g->gid);
		break;
	case KDBUS_POLICY_ACCESS_WORLD:
		ok = true;
		break;
	default:
		ok = false;
		break;
	}
	if (!ok)
		return -EINVAL;
	g->type = pa->type;
	g->access = pa->access;
	return 0;
}

/* is the same name already in @list? */
static bool kd_rules_have(struct list_head *list, const struct kd_rule *r)
{
	struct kd_rule *o;

	list_for_each_entry(o, list, link)
		if (kd_rule_is(o, r->hash, r->name, r->len, r->wildcard))
			return true;
	return false;
}

/* turns the items into rules on @out; nothing is shared with a db yet */
static int kd_rules_build(struct list_head *out, const void *owner,
			  const struct kdbus_item *items, size_t len,
			  unsigned int max_names, bool wildcards,
			  struct user_namespace *ns)
{
	const void *end = (const void *)items + len;
	const struct kdbus_item *item;
	struct kd_rule *cur = NULL;
	unsigned int names = 0;
	int ret;

	kd_items_foreach(item, items, len) {
		if (item->type == KDBUS_ITEM_NAME) {
			if (max_names && ++names > max_names)
				return -E2BIG;
			cur = kd_rule_new(item, end, wildcards);
			if (IS_ERR(cur))
				return PTR_ERR(cur);
			cur->owner = owner;
			if (kd_rules_have(out, cur)) {
				kd_rule_free(cur);
				return -EEXIST;
			}
			list_add_tail(&cur->link, out);
		} else if (item->type == KDBUS_ITEM_POLICY_ACCESS) {
			/* a record belongs to the name before it */
			if (!cur ||
			    kd_item_len(item) < sizeof(item->policy_access))
				return -EINVAL;
			ret = kd_grant_parse(&cur->grants[cur->n_grants],
					     &item->policy_access, ns);
			if (ret)
				return ret;
			cur->n_grants++;
		}
	}
	return 0;
}

/* does another owner have one of the names of @fresh in @db? */
static bool kd_policydb_clash(struct kd_policydb *db, const void *owner,
			      struct list_head *fresh)
{
	struct kd_rule *r, *o;

	list_for_each_entry(r, fresh, link) {
		hash_for_each_possible(db->names, o, node, r->hash) {
			if (o->owner != owner &&
			    kd_rule_is(o, r->hash, r->name, r->len, r->wildcard))
				return true;
		}
	}
	return false;
}

/**
 * kd_policydb_set() - replace the rules of one owner
 * @db:		the database
 * @owner:	whose rules: an activator or holder connection, an endpoint
 * @items:	NAME items, each followed by its POLICY_ACCESS items
 * @len:	bytes of @items (already checked by kd_items_check())
 * @max_names:	the most NAME items allowed, 0 for no limit
 * @wildcards:	whether "prefix.*" names are accepted
 * @ns:		the user namespace the ids in the records are from
 *
 * Everything is built and checked first; the old rules of @owner are
 * swapped for the new ones under the lock, so readers see one or the other.
 *
 * Return: 0, -EINVAL, -E2BIG, -EEXIST or -ENOMEM; @db is unchanged on error.
 */
int kd_policydb_set(struct kd_policydb *db, const void *owner,
		    const struct kdbus_item *items, size_t len,
		    unsigned int max_names, bool wildcards,
		    struct user_namespace *ns)
{
	LIST_HEAD(fresh);
	LIST_HEAD(gone);
	struct kd_rule *r;
	int ret;

	ret = kd_rules_build(&fresh, owner, items, len, max_names, wildcards,
			     ns);
	if (ret)
		goto out;

	down_write(&db->lock);
	if (kd_policydb_clash(db, owner, &fresh)) {
		up_write(&db->lock);
		ret = -EEXIST;
		goto out;
	}
	kd_policydb_take(db, owner, &gone);
	list_for_each_entry(r, &fresh, link)
		hash_add(db->names, &r->node, r->hash);
	up_write(&db->lock);

	/* the rules now live in the hash; @fresh only threads them */
	INIT_LIST_HEAD(&fresh);
out:
	kd_rules_free(&fresh);
	kd_rules_free(&gone);
	return ret;
}

/**
 * kd_policydb_drop() - remove every rule of one owner
 * @db:		the database
 * @owner:	the owner given to kd_policydb_set()
 */
void kd_policydb_drop(struct kd_policydb *db, const void *owner)
{
	LIST_HEAD(gone);

	down_write(&db->lock);
	kd_policydb_take(db, owner, &gone);
	up_write(&db->lock);
	kd_rules_free(&gone);
}

static bool kd_cred_has_group(const struct cred *cred, kgid_t gid)
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

/* the highest access @r grants @cred */
static int kd_rule_level(const struct kd_rule *r, const struct cred *cred)
{
	int best = KD_ACCESS_NONE;
	unsigned int i;

	for (i = 0; i < r->n_grants && best < KDBUS_POLICY_OWN; i++) {
		const struct kd_grant *g = &r->grants[i];
		bool hit;

		if (g->access <= best)
			continue;
		if (g->type == KDBUS_POLICY_ACCESS_USER)
			hit = uid_eq(cred->euid, g->uid);
		else if (g->type == KDBUS_POLICY_ACCESS_GROUP)
			hit = kd_cred_has_group(cred, g->gid);
		else
			hit = true;
		if (hit)
			best = g->access;
	}
	return best;
}

static const struct kd_rule *kd_rule_find(struct kd_policydb *db,
					  const char *name, unsigned int len,
					  bool wildcard)
{
	u32 hash = kd_rule_hash(name, len);
	struct kd_rule *r;

	hash_for_each_possible(db->names, r, node, hash)
		if (kd_rule_is(r, hash, name, len, wildcard))
			return r;
	return NULL;
}

/*
 * The access @db gives @cred on @name: the exact rule if it grants
 * anything, else the wildcard of the name without its last element.
 * Caller holds db->lock.
 */
static int kd_policydb_level(struct kd_policydb *db, const struct cred *cred,
			     const char *name)
{
	const struct kd_rule *r;
	const char *dot;
	int level = KD_ACCESS_NONE;

	r = kd_rule_find(db, name, strlen(name), false);
	if (r)
		level = kd_rule_level(r, cred);
	if (level != KD_ACCESS_NONE)
		return level;

	dot = strrchr(name, '.');
	if (!dot)
		return KD_ACCESS_NONE;
	r = kd_rule_find(db, name, dot - name, true);
	return r ? kd_rule_level(r, cred) : KD_ACCESS_NONE;
}

static bool kd_policydb_grants(struct kd_policydb *db,
			       const struct cred *cred, const char *name,
			       int want)
{
	bool ok;

	down_read(&db->lock);
	ok = kd_policydb_level(db, cred, name) >= want;
	up_read(&db->lock);
	return ok;
}

/* @o is what @o->conn currently holds the name by (activators included) */
static bool kd_owner_current(struct kd_owner *o)
{
	return kd_name_primary(o->name) == o;
}

/*
 * Does @db give @cred @want on at least one name @peer currently holds?
 * Caller holds bus->names.lock.
 */
static bool kd_policydb_grants_any(struct kd_policydb *db,
				   const struct cred *cred,
				   const struct kd_conn *peer, int want)
{
	struct kd_owner *o;
	bool ok = false;

	if (list_empty(&peer->names))
		return false;

	down_read(&db->lock);
	list_for_each_entry(o, &peer->names, conn_node) {
		if (kd_owner_current(o) &&
		    kd_policydb_level(db, cred, o->name->str) >= want) {
			ok = true;
			break;
		}
	}
	up_read(&db->lock);
	return ok;
}

static bool kd_conn_monitor(const struct kd_conn *conn)
{
	return conn->kind == KD_CONN_MONITOR;
}

/**
 * kd_may_own() - may a connection acquire a name? (OWN)
 * @conn:	the connection
 * @name:	a valid well-known name
 *
 * A custom endpoint's database must allow it first; then bus owners may,
 * everyone else needs the bus database.
 *
 * Return: true if allowed.
 */
bool kd_may_own(const struct kd_conn *conn, const char *name)
{
	if (kd_conn_monitor(conn))
		return true;
	if (!conn->ep->is_default &&
	    !kd_policydb_grants(&conn->ep->policy, conn->cred, name,
				KDBUS_POLICY_OWN))
		return false;
	if (conn->owner)
		return true;
	return kd_policydb_grants(&conn->bus->policy, conn->cred, name,
				  KDBUS_POLICY_OWN);
}

/**
 * kd_may_talk() - may @from send to @to? (TALK)
 * @from:	the talking connection (for broadcasts: the receiver)
 * @to:		the one talked to (for broadcasts: the sender)
 *
 * Through a custom endpoint, one of @to's names must be allowed first.
 * Then bus owners pass, and so does talking to a connection of the same
 * user (@from's euid is @to's uid, deviation 13); everyone else needs the
 * bus database to allow one of @to's names. Caller holds bus->names.lock.
 *
 * Return: true if allowed.
 */
bool kd_may_talk(const struct kd_conn *from, const struct kd_conn *to)
{
	if (kd_conn_monitor(from))
		return true;
	if (!from->ep->is_default &&
	    !kd_policydb_grants_any(&from->ep->policy, from->cred, to,
				    KDBUS_POLICY_TALK))
		return false;
	if (from->owner)
		return true;
	if (uid_eq(from->cred->euid, to->cred->uid))
		return true;
	return kd_policydb_grants_any(&from->bus->policy, from->cred, to,
				      KDBUS_POLICY_TALK);
}

/**
 * kd_may_see_name() - may a connection know that @name exists? (SEE)
 * @conn:	the connection
 * @name:	a well-known name
 *
 * Only connections of custom endpoints are restricted.
 *
 * Return: true if visible.
 */
bool kd_may_see_name(const struct kd_conn *conn, const char *name)
{
	if (conn->ep->is_default || kd_conn_monitor(conn))
		return true;
	return kd_policydb_grants(&conn->ep->policy, conn->cred, name,
				  KDBUS_POLICY_SEE);
}

/**
 * kd_may_see_conn() - may a connection know that @peer exists?
 * @conn:	the connection
 * @peer:	another (or the same) connection
 *
 * Through a custom endpoint only peers with a visible name can be seen.
 * Caller holds bus->names.lock.
 *
 * Return: true if visible.
 */
bool kd_may_see_conn(const struct kd_conn *conn,
		     const struct kd_conn *peer)
{
	if (conn->ep->is_default || kd_conn_monitor(conn))
		return true;
	return kd_policydb_grants_any(&conn->ep->policy, conn->cred, peer,
				      KDBUS_POLICY_SEE);
}
