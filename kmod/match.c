// SPDX-License-Identifier: GPL-2.0
/*
 * Match rules (spec 11): each MATCH_ADD stores one entry of rules under a
 * cookie; a signal or notification is wanted if all rules of any entry
 * accept it.
 *
 * kd_match() runs once per receiver of every broadcast, so an entry is
 * laid out for that: one allocation holding its rules, cheapest first,
 * and the masks and names they compare; plus a bit set of the kinds of
 * message the entry can accept at all, so most entries are skipped
 * without looking at a single rule.
 */

#include <linux/bitops.h>
#include <linux/err.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "bus.h"
#include "cmd.h"
#include "conn.h"
#include "item.h"
#include "match.h"
#include "msg.h"
#include "names.h"

/*
 * Kinds of message: user messages, then one bit for each notification
 * from NAME_ADD to ID_REMOVE (their item types are consecutive).
 */
#define KD_MK_USER		BIT(0)
#define KD_MK_NOTIFY(type)	BIT(1 + (type) - KDBUS_ITEM_NAME_ADD)
#define KD_MK_ALL		(BIT(2 + KDBUS_ITEM_ID_REMOVE - \
				     KDBUS_ITEM_NAME_ADD) - 1)

struct kd_matchdb {
	struct rw_semaphore lock;	/* a leaf */
	struct list_head entries;	/* struct kd_match_entry.node */
	unsigned int n_entries;
	u32 kinds;			/* union of the entries' kinds */
};

struct kd_rule {
	u64 type;			/* the KDBUS_ITEM_* it came from */
	union {
		u64 id;			/* ID, DST_ID, ID_ADD, ID_REMOVE */
		struct {		/* NAME_ADD, NAME_REMOVE, NAME_CHANGE */
			u64 old_id;
			u64 new_id;
		};
		struct {		/* BLOOM_MASK */
			u32 n_gen;
			u32 n_words;
		};
	};
	const void *data;		/* the masks or the name, or NULL */
};

struct kd_match_entry {
	struct list_head node;		/* db->entries */
	u64 cookie;
	u32 kinds;			/* KD_MK_* it can possibly accept */
	unsigned int n_rules;
	struct kd_rule rules[];		/* then the data they point to */
};

#define KD_MATCH_ITEMS	(KD_I(KDBUS_ITEM_BLOOM_MASK) | KD_I(KDBUS_ITEM_NAME) | \
			 KD_I(KDBUS_ITEM_ID) | KD_I(KDBUS_ITEM_DST_ID) |	      \
			 KD_I(KDBUS_ITEM_NAME_ADD) |			      \
			 KD_I(KDBUS_ITEM_NAME_REMOVE) |			      \
			 KD_I(KDBUS_ITEM_NAME_CHANGE) |			      \
			 KD_I(KDBUS_ITEM_ID_ADD) | KD_I(KDBUS_ITEM_ID_REMOVE))

static const struct kd_cmd_rules kd_match_add_rules = {
	.fixed = sizeof(struct kdbus_cmd_match),
	.flags = KDBUS_MATCH_REPLACE,
	.items = KD_MATCH_ITEMS,
	.multi = KD_MATCH_ITEMS,
};

static const struct kd_cmd_rules kd_match_remove_rules = {
	.fixed = sizeof(struct kdbus_cmd_match),
};

/**
 * kd_matchdb_new() - an empty match database for a new connection
 *
 * Return: the database, or NULL without memory.
 */
struct kd_matchdb *kd_matchdb_new(void)
{
	struct kd_matchdb *db = kzalloc(sizeof(*db), GFP_KERNEL_ACCOUNT);

	if (!db)
		return NULL;
	init_rwsem(&db->lock);
	INIT_LIST_HEAD(&db->entries);
	return db;
}

static void kd_mentry_free(struct kd_match_entry *e)
{
	kvfree(e);
	kd_obj_gone(KD_OBJ_MATCH);
}

/**
 * kd_matchdb_free() - free a connection's match database and its entries
 * @db:		the database, or NULL
 */
void kd_matchdb_free(struct kd_matchdb *db)
{
	struct kd_match_entry *e, *tmp;

	if (!db)
		return;
	list_for_each_entry_safe(e, tmp, &db->entries, node)
		kd_mentry_free(e);
	kfree(db);
}

/* ------------------------------------------------------------------ */
/* matching */

static u32 kd_msg_kind(const struct kd_msg *m)
{
	if (m->src)
		return KD_MK_USER;
	if (m->notify_type >= KDBUS_ITEM_NAME_ADD &&
	    m->notify_type <= KDBUS_ITEM_ID_REMOVE)
		return KD_MK_NOTIFY(m->notify_type);
	return 0;	/* reply notifications are never broadcast */
}

static bool kd_id_ok(u64 want, u64 id)
{
	return want == KDBUS_MATCH_ID_ANY || want == id;
}

/* every bit of the mask of the filter's generation is set in the filter */
static bool kd_bloom_match(const struct kd_rule *r, const struct kd_msg *m)
{
	const struct kdbus_bloom_filter *f = m->bloom;
	const u64 *mask = r->data;
	unsigned int i;
	u64 gen;

	if (!f || m->bloom_len != (size_t)r->n_words * 8)
		return false;
	gen = min_t(u64, f->generation, r->n_gen - 1);
	mask += gen * r->n_words;
	for (i = 0; i < r->n_words; i++)
		if ((f->data[i] & mask[i]) != mask[i])
			return false;
	return true;
}

static bool kd_name_change_match(const struct kd_rule *r,
				 const struct kdbus_notify_name_change *c)
{
	return kd_id_ok(r->old_id, c->old_id.id) &&
	       kd_id_ok(r->new_id, c->new_id.id) &&
	       (!r->data || !strcmp(r->data, c->name));
}

/*
 * One rule against one message. The entry's kinds were checked first, so
 * a rule only ever sees the kind of message it is about.
 */
static bool kd_rule_match(const struct kd_rule *r, const struct kd_msg *m)
{
	const struct kdbus_notify_id_change *idc;

	switch (r->type) {
	case KDBUS_ITEM_ID:
		return kd_id_ok(r->id, m->src->id);
	case KDBUS_ITEM_DST_ID:
		return r->id == m->head->dst_id;
	case KDBUS_ITEM_BLOOM_MASK:
		return kd_bloom_match(r, m);
	case KDBUS_ITEM_NAME:
		return kd_conn_owns(m->src, r->data);
	case KDBUS_ITEM_NAME_ADD:
	case KDBUS_ITEM_NAME_REMOVE:
	case KDBUS_ITEM_NAME_CHANGE:
		return m->notify_type == r->type &&
		       kd_name_change_match(r, m->notify);
	case KDBUS_ITEM_ID_ADD:
	case KDBUS_ITEM_ID_REMOVE:
		idc = m->notify;
		return m->notify_type == r->type && kd_id_ok(r->id, idc->id);
	}
	return false;
}

static bool kd_mentry_match(const struct kd_match_entry *e,
			   const struct kd_msg *m)
{
	unsigned int i;

	for (i = 0; i < e->n_rules; i++)
		if (!kd_rule_match(&e->rules[i], m))
			return false;
	return true;
}

/**
 * kd_match() - does @dst want the signal or notification @m?
 * @dst:	a receiver
 * @m:		a user signal (m->src set) or a kernel notification
 *
 * For user messages the caller holds dst->bus->names.lock, which NAME
 * rules need to look at the sender's names.
 *
 * Return: true if any entry of @dst's match rules accepts @m.
 */
bool kd_match(struct kd_conn *dst, const struct kd_msg *m)
{
	struct kd_matchdb *db = dst->matches;
	struct kd_match_entry *e;
	u32 kind = kd_msg_kind(m);
	bool ok = false;

	/* the common case, a receiver with no use for @m, takes no lock */
	if (!db || !(READ_ONCE(db->kinds) & kind))
		return false;

	down_read(&db->lock);
	list_for_each_entry(e, &db->entries, node) {
		if ((e->kinds & kind) && kd_mentry_match(e, m)) {
			ok = true;
			break;
		}
	}
	up_read(&db->lock);
	return ok;
}

/* ------------------------------------------------------------------ */
/* building an entry from MATCH_ADD items */

/* the name at the end of an item, or "" if none; NULL if malformed */
static const char *kd_tail_name(const char *s, size_t len)
{
	if (!len)
		return "";
	if (strnlen(s, len) != len - 1)
		return NULL;
	return s;
}

/*
 * Checks one rule item; adds to @extra the bytes of data the entry must
 * keep for it and returns the kinds of message it can accept, or a
 * negative errno.
 */
static int kd_rule_check(const struct kdbus_item *it, u64 bloom_size,
			 size_t *extra)
{
	size_t len = kd_item_len(it);
	const char *s;

	switch (it->type) {
	case KDBUS_ITEM_BLOOM_MASK:
		if (!len || !bloom_size || len % bloom_size)
			return -EDOM;
		*extra += KD_ALIGN8(len);
		return KD_MK_USER;
	case KDBUS_ITEM_NAME:
		s = kd_tail_name(it->str, len);
		if (!s || !kd_name_ok(s, false))
			return -EINVAL;
		*extra += KD_ALIGN8(len);
		return KD_MK_USER;
	case KDBUS_ITEM_ID:
	case KDBUS_ITEM_DST_ID:
		if (len != sizeof(u64))
			return -EINVAL;
		return KD_MK_USER;
	case KDBUS_ITEM_NAME_ADD:
	case KDBUS_ITEM_NAME_REMOVE:
	case KDBUS_ITEM_NAME_CHANGE:
		if (len < sizeof(struct kdbus_notify_name_change))
			return -EINVAL;
		len -= sizeof(struct kdbus_notify_name_change);
		s = kd_tail_name(it->name_change.name, len);
		if (!s || (*s && !kd_name_ok(s, false)))
			return -EINVAL;
		if (*s)
			*extra += KD_ALIGN8(len);
		return KD_MK_NOTIFY(it->type);
	case KDBUS_ITEM_ID_ADD:
	case KDBUS_ITEM_ID_REMOVE:
		if (len != sizeof(struct kdbus_notify_id_change))
			return -EINVAL;
		return KD_MK_NOTIFY(it->type);
	}
	return -EINVAL;
}

/* lower runs first: plain compares, then names, then whole bloom masks */
static int kd_rule_cost(u64 type)
{
	switch (type) {
	case KDBUS_ITEM_BLOOM_MASK:
		return 2;
	case KDBUS_ITEM_NAME:
		return 3;	/* a registry lookup */
	case KDBUS_ITEM_NAME_ADD:
	case KDBUS_ITEM_NAME_REMOVE:
	case KDBUS_ITEM_NAME_CHANGE:
		return 1;
	}
	return 0;
}

#define KD_RULE_COSTS	4

/* copies @len bytes to the entry's tail and points @r at them */
static void kd_rule_keep(struct kd_rule *r, void **tail, const void *src,
			 size_t len)
{
	memcpy(*tail, src, len);
	r->data = *tail;
	*tail += KD_ALIGN8(len);
}

static void kd_rule_fill(struct kd_rule *r, const struct kdbus_item *it,
			 u64 bloom_size, void **tail)
{
	size_t len = kd_item_len(it);

	r->type = it->type;
	r->data = NULL;
	switch (it->type) {
	case KDBUS_ITEM_BLOOM_MASK:
		r->n_words = bloom_size / 8;
		r->n_gen = len / bloom_size;
		kd_rule_keep(r, tail, it->data64, len);
		break;
	case KDBUS_ITEM_NAME:
		kd_rule_keep(r, tail, it->str, len);
		break;
	case KDBUS_ITEM_NAME_ADD:
	case KDBUS_ITEM_NAME_REMOVE:
	case KDBUS_ITEM_NAME_CHANGE:
		r->old_id = it->name_change.old_id.id;
		r->new_id = it->name_change.new_id.id;
		len -= sizeof(struct kdbus_notify_name_change);
		if (len > 1)
			kd_rule_keep(r, tail, it->name_change.name, len);
		break;
	case KDBUS_ITEM_ID_ADD:
	case KDBUS_ITEM_ID_REMOVE:
		r->id = it->id_change.id;
		break;
	default:		/* ID, DST_ID */
		r->id = it->data64[0];
		break;
	}
}

static struct kd_match_entry *kd_mentry_build(const struct kd_args *a,
					     u64 bloom_size)
{
	const struct kdbus_cmd_match *cmd = a->buf;
	const struct kdbus_item *it;
	struct kd_match_entry *e;
	unsigned int n = 0, cost;
	u32 kinds = KD_MK_ALL;
	size_t extra = 0;
	void *tail;
	int k;

	kd_items_foreach(it, a->items, a->items_len) {
		if (it->type == KDBUS_ITEM_NEGOTIATE)
			continue;
		k = kd_rule_check(it, bloom_size, &extra);
		if (k < 0)
			return ERR_PTR(k);
		kinds &= k;
		n++;
	}

	e = kvmalloc(struct_size(e, rules, n) + extra, GFP_KERNEL_ACCOUNT);
	if (!e)
		return ERR_PTR(-ENOMEM);
	kd_obj_new(KD_OBJ_MATCH);
	e->cookie = cmd->cookie;
	e->kinds = kinds;
	e->n_rules = 0;
	tail = &e->rules[n];

	for (cost = 0; cost < KD_RULE_COSTS; cost++)
		kd_items_foreach(it, a->items, a->items_len)
			if (it->type != KDBUS_ITEM_NEGOTIATE &&
			    kd_rule_cost(it->type) == cost)
				kd_rule_fill(&e->rules[e->n_rules++], it,
					     bloom_size, &tail);
	return e;
}

/* ------------------------------------------------------------------ */
/* the commands */

static void kd_matchdb_update_kinds(struct kd_matchdb *db)
{
	struct kd_match_entry *e;
	u32 kinds = 0;

	list_for_each_entry(e, &db->entries, node)
		kinds |= e->kinds;
	WRITE_ONCE(db->kinds, kinds);
}

/* unlinks the entries of @cookie onto @gone; returns how many */
static unsigned int kd_matchdb_take(struct kd_matchdb *db, u64 cookie,
				    struct list_head *gone)
{
	struct kd_match_entry *e, *tmp;
	unsigned int n = 0;

	list_for_each_entry_safe(e, tmp, &db->entries, node) {
		if (e->cookie != cookie)
			continue;
		list_move(&e->node, gone);
		n++;
	}
	db->n_entries -= n;
	return n;
}

static void kd_mentries_free(struct list_head *list)
{
	struct kd_match_entry *e, *tmp;

	list_for_each_entry_safe(e, tmp, list, node)
		kd_mentry_free(e);
}

static int kd_matchdb_insert(struct kd_matchdb *db, struct kd_match_entry *e,
			     bool replace)
{
	LIST_HEAD(gone);
	int ret = 0;

	down_write(&db->lock);
	if (replace)
		kd_matchdb_take(db, e->cookie, &gone);
	if (db->n_entries >= KD_MATCHES_MAX) {
		/* nothing was taken, or there would be room */
		ret = -EMFILE;
	} else {
		list_add_tail(&e->node, &db->entries);
		db->n_entries++;
	}
	kd_matchdb_update_kinds(db);
	up_write(&db->lock);

	kd_mentries_free(&gone);
	return ret;
}

/**
 * kd_cmd_match_add() - KDBUS_CMD_MATCH_ADD
 * @conn:	the calling connection
 * @argp:	the struct kdbus_cmd_match in user memory
 *
 * Return: 0 or a negative errno: -EOPNOTSUPP for connections other than
 * ordinary ones, -EDOM for a bloom mask that is no multiple of the bus's
 * bloom size, -EINVAL for other bad rules, -EMFILE at the entry limit.
 */
int kd_cmd_match_add(struct kd_conn *conn, void __user *argp)
{
	struct kd_match_entry *e;
	struct kd_args a __uninitialized;
	int ret;

	ret = kd_args_get(&a, &kd_match_add_rules, argp);
	if (ret)
		return kd_args_put(&a, ret < 0 ? ret : 0);
	if (!kd_conn_ordinary(conn))
		return kd_args_put(&a, -EOPNOTSUPP);

	e = kd_mentry_build(&a, conn->bus->bloom.size);
	if (IS_ERR(e))
		return kd_args_put(&a, PTR_ERR(e));

	if (!kd_conn_enter(conn)) {
		ret = -ECONNRESET;
	} else {
		ret = kd_matchdb_insert(conn->matches, e,
					a.cmd->flags & KDBUS_MATCH_REPLACE);
		kd_conn_leave(conn);
	}
	if (ret)
		kd_mentry_free(e);
	return kd_args_put(&a, ret);
}

/**
 * kd_cmd_match_remove() - KDBUS_CMD_MATCH_REMOVE
 * @conn:	the calling connection
 * @argp:	the struct kdbus_cmd_match in user memory
 *
 * Removes every entry added with the cookie.
 *
 * Return: 0, -EBADSLT if there was none, or another negative errno.
 */
int kd_cmd_match_remove(struct kd_conn *conn, void __user *argp)
{
	const struct kdbus_cmd_match *cmd;
	struct kd_matchdb *db = conn->matches;
	struct kd_args a __uninitialized;
	LIST_HEAD(gone);
	int ret;

	ret = kd_args_get(&a, &kd_match_remove_rules, argp);
	if (ret)
		return kd_args_put(&a, ret < 0 ? ret : 0);
	if (!kd_conn_ordinary(conn))
		return kd_args_put(&a, -EOPNOTSUPP);
	if (!kd_conn_enter(conn))
		return kd_args_put(&a, -ECONNRESET);

	cmd = a.buf;
	down_write(&db->lock);
	if (!kd_matchdb_take(db, cmd->cookie, &gone))
		ret = -EBADSLT;
	kd_matchdb_update_kinds(db);
	up_write(&db->lock);
	kd_conn_leave(conn);

	kd_mentries_free(&gone);
	return kd_args_put(&a, ret);
}
