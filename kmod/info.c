// SPDX-License-Identifier: GPL-2.0
/*
 * The questions a connection may ask about the bus: who is a peer
 * (CONN_INFO), who made the bus (BUS_CREATOR_INFO) and who is there at all
 * (LIST). Each answer is a run of kdbus_info records, built in kernel
 * memory while the bus is locked and then placed in a slice of the
 * caller's own pool; userspace learns where from the command struct.
 */

#include <linux/err.h>
#include <linux/hashtable.h>
#include <linux/list.h>
#include <linux/rwsem.h>
#include <linux/string.h>

#include "bus.h"
#include "cmd.h"
#include "conn.h"
#include "meta.h"
#include "names.h"
#include "policy.h"
#include "pool.h"

#define KD_LIST_ALL	(KDBUS_LIST_UNIQUE | KDBUS_LIST_NAMES | \
			 KDBUS_LIST_ACTIVATORS | KDBUS_LIST_QUEUED)

static const struct kd_cmd_rules kd_conn_info_rules = {
	.fixed = sizeof(struct kdbus_cmd_info),
	.items = KD_I(KDBUS_ITEM_NAME),
};

static const struct kd_cmd_rules kd_creator_info_rules = {
	.fixed = sizeof(struct kdbus_cmd_info),
};

static const struct kd_cmd_rules kd_list_rules = {
	.fixed = sizeof(struct kdbus_cmd_list),
	.flags = KD_LIST_ALL,
};

/* ~0 means "everything known"; any other unknown bit is an error */
static int kd_info_attach(u64 *mask)
{
	if (*mask == _KDBUS_ATTACH_ANY)
		*mask = _KDBUS_ATTACH_ALL;
	return *mask & ~_KDBUS_ATTACH_ALL ? -EINVAL : 0;
}

/* opens a record; returns where it starts, for kd_info_close() */
static size_t kd_info_open(struct kd_buf *b, u64 id, u64 flags)
{
	size_t start = b->len;
	struct kdbus_info *rec = kd_buf_append(b, sizeof(*rec));

	if (rec) {
		rec->id = id;
		rec->flags = flags;
	}
	return start;
}

/* the record's size covers its items, padding included */
static void kd_info_close(struct kd_buf *b, size_t start)
{
	struct kdbus_info *rec;

	if (b->err)
		return;
	rec = (struct kdbus_info *)(b->data + start);
	rec->size = b->len - start;
}

/*
 * Moves what @b holds into a new slice of @conn's pool (the caller has
 * entered @conn, so the pool is there) and says where it is. Nothing to
 * say gets the empty marker: the pool size as offset, length 0.
 */
static int kd_info_publish(struct kd_conn *conn, const struct kd_buf *b,
			   u64 *offset, u64 *len)
{
	struct kd_slice *slice;
	int ret;

	if (b->err)
		return b->err;

	if (!b->len) {
		*offset = kd_pool_size(conn->pool);
		*len = 0;
		return 0;
	}

	slice = kd_slice_new(conn->pool, b->len, false);
	if (IS_ERR(slice))
		return PTR_ERR(slice);

	ret = kd_slice_write(slice, 0, b->data, b->len);
	if (!ret) {
		*offset = kd_slice_offset(slice);
		*len = b->len;
		kd_slice_publish(slice);
	}
	kd_slice_drop(slice);
	return ret;
}

/*
 * CONN_INFO
 */

/* by name: its primary owner, or the activator standing in for it */
static struct kd_conn *kd_info_by_name(struct kd_conn *conn, const char *str,
				       u64 id)
{
	struct kd_name *n = kd_name_find(&conn->bus->names, str);
	struct kd_owner *o = n ? kd_name_primary(n) : NULL;

	if (!o || !kd_may_see_name(conn, str))
		return ERR_PTR(-ESRCH);
	if (id && o->conn->id != id)
		return ERR_PTR(-ESRCH);
	return kd_conn_get(o->conn);
}

/* monitors stay out of the id table; bus->lock is held */
static struct kd_conn *kd_info_monitor(struct kd_bus *bus, u64 id)
{
	struct kd_conn *m;

	list_for_each_entry(m, &bus->monitors, monitor_node) {
		if (m->id == id)
			return kd_conn_get(m);
	}
	return NULL;
}

/* by id: any kind of connection, monitors included; bus->lock is held */
static struct kd_conn *kd_info_by_id(struct kd_conn *conn, u64 id)
{
	struct kd_conn *peer = kd_bus_find_conn(conn->bus, id);

	if (!peer)
		peer = kd_info_monitor(conn->bus, id);
	return peer ? peer : ERR_PTR(-ENXIO);
}

/* the record of @peer as @conn may see it; names.lock is held */
static void kd_info_describe(struct kd_buf *b, struct kd_conn *conn,
			     struct kd_conn *peer, u64 mask)
{
	size_t start = kd_info_open(b, peer->id, peer->flags);

	/* CONN_INFO shows only what the peer offers, nothing implicit */
	mask &= atomic64_read(&peer->attach_send);

	if (peer->meta)
		kd_meta_emit(b, peer->meta, mask & KD_ATTACH_PROC, conn);
	if (mask & KDBUS_ATTACH_NAMES)
		kd_meta_emit_names(b, peer, conn);
	if ((mask & KDBUS_ATTACH_CONN_DESCRIPTION) && peer->description)
		kd_buf_item_str(b, KDBUS_ITEM_CONN_DESCRIPTION,
				peer->description);

	kd_info_close(b, start);
}

/*
 * Finds the peer and describes it, with the registry and the connection
 * table held still so that the peer can neither leave nor change its
 * names meanwhile.
 */
static int kd_info_peer(struct kd_conn *conn, u64 id, const char *name,
			u64 mask, struct kd_buf *b)
{
	struct kd_bus *bus = conn->bus;
	struct kd_conn *peer;
	int ret = 0;

	down_read(&bus->names.lock);
	down_read(&bus->lock);

	peer = name ? kd_info_by_name(conn, name, id) : kd_info_by_id(conn, id);
	if (IS_ERR(peer))
		ret = PTR_ERR(peer);
	else if (!name && !kd_may_see_conn(conn, peer))
		ret = -ENXIO;
	else
		kd_info_describe(b, conn, peer, mask);

	up_read(&bus->lock);
	up_read(&bus->names.lock);

	/* the last reference may free a whole connection: not under locks */
	if (!IS_ERR(peer))
		kd_conn_put(peer);
	return ret;
}

/**
 * kd_cmd_conn_info() - KDBUS_CMD_CONN_INFO: describe a peer (spec 4.7)
 * @conn:	the asking connection
 * @argp:	struct kdbus_cmd_info in user memory
 *
 * Return: 0 or a negative errno.
 */
int kd_cmd_conn_info(struct kd_conn *conn, void __user *argp)
{
	const struct kdbus_item *name;
	struct kdbus_cmd_info *cmd;
	struct kd_args a __uninitialized;
	struct kd_buf b;
	u64 mask;
	int ret;

	ret = kd_args_get(&a, &kd_conn_info_rules, argp);
	if (ret)
		return kd_args_put(&a, ret > 0 ? 0 : ret);

	cmd = a.buf;
	mask = cmd->attach_flags;
	name = kd_args_item(&a, KDBUS_ITEM_NAME);

	ret = kd_info_attach(&mask);
	if (!ret && !name && !cmd->id)
		ret = -EINVAL;
	if (ret)
		return kd_args_put(&a, ret);

	if (!kd_conn_enter(conn))
		return kd_args_put(&a, -ECONNRESET);

	kd_buf_init(&b);
	ret = kd_info_peer(conn, cmd->id, name ? name->str : NULL, mask, &b);
	if (!ret)
		ret = kd_info_publish(conn, &b, &cmd->offset, &cmd->info_size);
	kd_conn_leave(conn);
	kd_buf_release(&b);

	if (!ret)
		ret = kd_args_copy_out(&a, offsetof(struct kdbus_cmd_info, offset),
				       2 * sizeof(u64));
	return kd_args_put(&a, ret);
}

/*
 * BUS_CREATOR_INFO
 */

/**
 * kd_cmd_bus_creator_info() - KDBUS_CMD_BUS_CREATOR_INFO (spec 4.8)
 * @conn:	the asking connection
 * @argp:	struct kdbus_cmd_info in user memory
 *
 * The bus id and flags, its name, and what the creator allowed of the
 * metadata recorded at BUS_MAKE.
 *
 * Return: 0 or a negative errno.
 */
int kd_cmd_bus_creator_info(struct kd_conn *conn, void __user *argp)
{
	struct kdbus_cmd_info *cmd;
	struct kd_bus *bus = conn->bus;
	struct kd_args a __uninitialized;
	struct kd_buf b;
	size_t start;
	u64 mask;
	int ret;

	ret = kd_args_get(&a, &kd_creator_info_rules, argp);
	if (ret)
		return kd_args_put(&a, ret > 0 ? 0 : ret);

	cmd = a.buf;
	mask = cmd->attach_flags;
	ret = kd_info_attach(&mask);
	if (ret)
		return kd_args_put(&a, ret);
	mask &= bus->creator_attach;

	if (!kd_conn_enter(conn))
		return kd_args_put(&a, -ECONNRESET);

	kd_buf_init(&b);
	start = kd_info_open(&b, bus->id, bus->flags);
	kd_buf_item_str(&b, KDBUS_ITEM_MAKE_NAME, bus->name);
	if (bus->creator_meta)
		kd_meta_emit(&b, bus->creator_meta, mask & KD_ATTACH_PROC, conn);
	kd_info_close(&b, start);

	ret = kd_info_publish(conn, &b, &cmd->offset, &cmd->info_size);
	kd_conn_leave(conn);
	kd_buf_release(&b);

	if (!ret)
		ret = kd_args_copy_out(&a, offsetof(struct kdbus_cmd_info, offset),
				       2 * sizeof(u64));
	return kd_args_put(&a, ret);
}

/*
 * LIST
 */

/* the state of an owner record as userspace sees it */
static u64 kd_list_state(const struct kd_owner *o)
{
	bool first = kd_name_primary(o->name) == o;

	return o->flags | (first ? KDBUS_NAME_PRIMARY : KDBUS_NAME_IN_QUEUE);
}

/* which KDBUS_LIST_* flag asks for a record in @state */
static u64 kd_list_class(u64 state)
{
	if (state & KDBUS_NAME_ACTIVATOR)
		return KDBUS_LIST_ACTIVATORS;
	if (state & KDBUS_NAME_IN_QUEUE)
		return KDBUS_LIST_QUEUED;
	return KDBUS_LIST_NAMES;
}

static void kd_list_record(struct kd_buf *b, const struct kd_conn *c,
			   const char *name, u64 state)
{
	size_t start = kd_info_open(b, c->id, c->flags);

	if (name) {
		size_t len = strlen(name) + 1;
		struct kdbus_name *kn;

		kn = kd_buf_item(b, KDBUS_ITEM_OWNED_NAME, sizeof(*kn) + len);
		if (kn) {
			kn->flags = state;
			memcpy(kn->name, name, len);
		}
	}

	kd_info_close(b, start);
}

/* the records of one connection; a bare one if none of its names made it */
static void kd_list_conn(struct kd_buf *b, struct kd_conn *viewer,
			 struct kd_conn *c, u64 want)
{
	const struct kd_owner *o;
	bool listed = false;

	list_for_each_entry(o, &c->names, conn_node) {
		u64 state = kd_list_state(o);

		if (!(want & kd_list_class(state)))
			continue;
		if (!kd_may_see_name(viewer, o->name->str))
			continue;
		kd_list_record(b, c, o->name->str, state);
		listed = true;
	}

	if (!listed && (want & KDBUS_LIST_UNIQUE) && kd_may_see_conn(viewer, c))
		kd_list_record(b, c, NULL, 0);
}

static void kd_list_build(struct kd_conn *conn, u64 want, struct kd_buf *b)
{
	struct kd_bus *bus = conn->bus;
	struct kd_conn *c;
	unsigned int bkt;

	if (!want)
		return;

	down_read(&bus->names.lock);
	down_read(&bus->lock);
	hash_for_each(bus->conns, bkt, c, bus_node) {
		/* monitors are invisible */
		if (c->kind == KD_CONN_MONITOR)
			continue;
		kd_list_conn(b, conn, c, want);
	}
	up_read(&bus->lock);
	up_read(&bus->names.lock);
}

/**
 * kd_cmd_list() - KDBUS_CMD_LIST: connections and their names (spec 4.9)
 * @conn:	the asking connection
 * @argp:	struct kdbus_cmd_list in user memory
 *
 * Return: 0 or a negative errno.
 */
int kd_cmd_list(struct kd_conn *conn, void __user *argp)
{
	struct kdbus_cmd_list *cmd;
	struct kd_args a __uninitialized;
	struct kd_buf b;
	int ret;

	ret = kd_args_get(&a, &kd_list_rules, argp);
	if (ret)
		return kd_args_put(&a, ret > 0 ? 0 : ret);

	cmd = a.buf;
	if (!kd_conn_enter(conn))
		return kd_args_put(&a, -ECONNRESET);

	kd_buf_init(&b);
	kd_list_build(conn, cmd->flags, &b);
	ret = kd_info_publish(conn, &b, &cmd->offset, &cmd->list_size);
	kd_conn_leave(conn);
	kd_buf_release(&b);

	if (!ret)
		ret = kd_args_copy_out(&a, offsetof(struct kdbus_cmd_list, offset),
				       2 * sizeof(u64));
	return kd_args_put(&a, ret);
}
