// SPDX-License-Identifier: GPL-2.0
/*
 * HELLO turns an endpoint handle into a connection; UPDATE later changes
 * what it offers and wants (attach flags) or, for a policy holder, the
 * policy it holds.
 *
 * HELLO builds the whole connection before anyone can see it, so a
 * failure is undone by one kd_conn_put(), and only then links it, all
 * under ep->lock: the policy db, the bus table (bus->lock), an activator's
 * name (registry write lock), the endpoint's list. UPDATE checks
 * everything first and changes the connection inside kd_conn_enter(), so
 * it does not race a disconnect.
 */

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/mm.h>
#include <linux/path.h>
#include <linux/pid_namespace.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/wait_bit.h>

#include "bus.h"
#include "cmd.h"
#include "conn.h"
#include "domain.h"
#include "ep.h"
#include "item.h"
#include "match.h"
#include "meta.h"
#include "names.h"
#include "notify.h"
#include "policy.h"
#include "pool.h"
#include "queue.h"
#include "reply.h"

#define KD_HELLO_SPECIAL	(KDBUS_HELLO_ACTIVATOR | \
				 KDBUS_HELLO_POLICY_HOLDER | \
				 KDBUS_HELLO_MONITOR)

static const struct kd_cmd_rules kd_hello_rules = {
	.fixed	= sizeof(struct kdbus_cmd_hello),
	.flags	= KDBUS_HELLO_ACCEPT_FD | KD_HELLO_SPECIAL,
	.items	= KD_I(KDBUS_ITEM_NAME) | KD_I(KDBUS_ITEM_POLICY_ACCESS) |
		  KD_I(KDBUS_ITEM_CREDS) | KD_I(KDBUS_ITEM_PIDS) |
		  KD_I(KDBUS_ITEM_SECLABEL) | KD_I(KDBUS_ITEM_CONN_DESCRIPTION),
	.multi	= KD_I(KDBUS_ITEM_POLICY_ACCESS),
};

static const struct kd_cmd_rules kd_update_rules = {
	.fixed	= sizeof(struct kdbus_cmd),
	.items	= KD_I(KDBUS_ITEM_ATTACH_FLAGS_SEND) |
		  KD_I(KDBUS_ITEM_ATTACH_FLAGS_RECV) |
		  KD_I(KDBUS_ITEM_NAME) | KD_I(KDBUS_ITEM_POLICY_ACCESS),
	/* more than one name is for the policy db to refuse (E2BIG) */
	.multi	= KD_I(KDBUS_ITEM_NAME) | KD_I(KDBUS_ITEM_POLICY_ACCESS),
};

/* what HELLO asked for, once checked */
struct kd_hello {
	const struct kdbus_cmd_hello *cmd;
	enum kd_conn_kind kind;
	u64 attach_send;
	u64 attach_recv;
	const char *name;
	const char *desc;
	const struct kdbus_creds *creds;
	const struct kdbus_pids *pids;
	const char *seclabel;
	bool privileged;
	bool owner;
};

/* allocators here and elsewhere say "no" with NULL or with an ERR_PTR */
static int kd_alloc_err(const void *p)
{
	return IS_ERR(p) ? PTR_ERR(p) : -ENOMEM;
}

/* ~0 asks for everything known; any other unknown bit is a mistake */
static int kd_attach_mask(u64 in, u64 *out)
{
	if (in == _KDBUS_ATTACH_ANY)
		in = _KDBUS_ATTACH_ALL;
	else if (in & ~_KDBUS_ATTACH_ALL)
		return -EINVAL;
	*out = in;
	return 0;
}

static bool kd_kind_has_name(enum kd_conn_kind kind)
{
	return kind == KD_CONN_ACTIVATOR || kind == KD_CONN_HOLDER;
}

/* --- HELLO ------------------------------------------------------------ */

static const char *kd_args_str(const struct kd_args *a, u64 type)
{
	const struct kdbus_item *item = kd_args_item(a, type);

	return item ? item->str : NULL;
}

/*
 * Everything that can be refused without allocating: the shape of the
 * request first (EINVAL), then where and by whom it was made.
 */
static int kd_hello_check(const struct kd_args *a, struct kd_ep *ep,
			  struct file *file, struct kd_hello *req)
{
	const struct kdbus_cmd_hello *h = a->buf;
	u64 special = h->flags & KD_HELLO_SPECIAL;
	struct kd_bus *bus = ep->bus;
	const struct kdbus_item *item;
	int ret;

	memset(req, 0, sizeof(*req));
	req->cmd = h;

	if (hweight64(special) > 1)
		return -EINVAL;
	if (special == KDBUS_HELLO_ACTIVATOR)
		req->kind = KD_CONN_ACTIVATOR;
	else if (special == KDBUS_HELLO_POLICY_HOLDER)
		req->kind = KD_CONN_HOLDER;
	else if (special == KDBUS_HELLO_MONITOR)
		req->kind = KD_CONN_MONITOR;
	else
		req->kind = KD_CONN_ORDINARY;

	if (!h->pool_size || !PAGE_ALIGNED(h->pool_size))
		return -EINVAL;

	ret = kd_attach_mask(h->attach_flags_send, &req->attach_send);
	if (!ret)
		ret = kd_attach_mask(h->attach_flags_recv, &req->attach_recv);
	if (ret)
		return ret;

	/* one name for activators and holders, none for anybody else */
	req->name = kd_args_str(a, KDBUS_ITEM_NAME);
	if (kd_kind_has_name(req->kind) != !!req->name)
		return -EINVAL;
	if (req->name &&
	    !kd_name_ok(req->name, req->kind == KD_CONN_HOLDER))
		return -EINVAL;

	req->desc = kd_args_str(a, KDBUS_ITEM_CONN_DESCRIPTION);
	if (req->desc) {
		ret = kd_sysname_check(req->desc);
		if (ret)
			return ret;
	}

	item = kd_args_item(a, KDBUS_ITEM_CREDS);
	req->creds = item ? &item->creds : NULL;
	item = kd_args_item(a, KDBUS_ITEM_PIDS);
	req->pids = item ? &item->pids : NULL;
	req->seclabel = kd_args_str(a, KDBUS_ITEM_SECLABEL);

	/* the opener's credentials count, not whoever calls the ioctl */
	req->privileged = ep->is_default &&
			  file_ns_capable(file, bus->domain->user_ns,
					  CAP_IPC_OWNER);
	req->owner = ep->is_default &&
		     (uid_eq(file->f_cred->euid, bus->uid) || req->privileged);

	if (req->kind == KD_CONN_MONITOR && !ep->is_default)
		return -EOPNOTSUPP;
	if ((req->kind != KD_CONN_ORDINARY ||
	     req->creds || req->pids || req->seclabel) && !req->owner)
		return -EPERM;

	return 0;
}

/*
 * The faked uid pays if it maps (it is given in the caller's namespace,
 * as the metadata reads it), else the real uid of the file.
 */
static kuid_t kd_hello_quota_uid(const struct kd_hello *req,
				 const struct cred *cred)
{
	kuid_t uid;

	if (req->creds && req->creds->uid <= U32_MAX) {
		uid = make_kuid(current_user_ns(), (uid_t)req->creds->uid);
		if (uid_valid(uid))
			return uid;
	}
	return cred->uid;
}

static int kd_conn_charge_user(struct kd_conn *conn,
			       const struct kd_hello *req)
{
	struct kd_user *user;

	if (!conn->ep->is_default)
		user = kd_user_ref(conn->ep->anon);
	else
		user = kd_user_get(conn->bus->domain,
				   kd_hello_quota_uid(req, conn->cred));
	if (IS_ERR_OR_NULL(user))
		return kd_alloc_err(user);

	if (atomic_inc_return(&user->conns) > KD_USER_CONNS_MAX) {
		atomic_dec(&user->conns);
		kd_user_put(user);
		return -EMFILE;
	}
	conn->user = user;
	return 0;
}

/* who it is, fixed for its lifetime */
static int kd_conn_identify(struct kd_conn *conn, struct file *file,
			    const struct kd_hello *req)
{
	struct kd_meta *meta;
	int ret;

	conn->id = kd_domain_next_id(conn->bus->domain);
	conn->cred = get_cred(file->f_cred);
	conn->pid_ns = get_pid_ns(task_active_pid_ns(current));
	kd_root_of_current(&conn->root);

	ret = kd_conn_charge_user(conn, req);
	if (ret)
		return ret;

	if (req->creds || req->pids || req->seclabel)
		meta = kd_meta_faked(req->creds, req->pids, req->seclabel);
	else
		meta = kd_meta_snapshot(KD_ATTACH_PROC);
	if (IS_ERR_OR_NULL(meta))
		return kd_alloc_err(meta);
	conn->meta = meta;

	if (req->desc) {
		conn->description = kstrdup(req->desc, GFP_KERNEL_ACCOUNT);
		if (!conn->description)
			return -ENOMEM;
	}
	if (req->name) {
		conn->policy_name = kstrdup(req->name, GFP_KERNEL_ACCOUNT);
		if (!conn->policy_name)
			return -ENOMEM;
	}
	return 0;
}

/* a connection nobody can see yet, with all it needs; or an ERR_PTR */
static struct kd_conn *kd_conn_new(struct kd_ep *ep, struct file *file,
				   const struct kd_hello *req)
{
	struct kd_conn *conn;
	void *p;
	int ret;

	conn = kzalloc(sizeof(*conn), GFP_KERNEL_ACCOUNT);
	if (!conn)
		return ERR_PTR(-ENOMEM);
	kd_obj_new(KD_OBJ_CONN);

	kref_init(&conn->kref);
	atomic_set(&conn->active, 0);
	conn->ep = kd_ep_get(ep);
	conn->bus = kd_bus_get(ep->bus);
	conn->kind = req->kind;
	conn->flags = req->cmd->flags & ~KDBUS_FLAG_NEGOTIATE;
	conn->privileged = req->privileged;
	conn->owner = req->owner;
	conn->faked = req->creds || req->pids || req->seclabel;
	atomic64_set(&conn->attach_send, req->attach_send);
	atomic64_set(&conn->attach_recv, req->attach_recv);
	INIT_HLIST_NODE(&conn->bus_node);
	INIT_LIST_HEAD(&conn->all_node);
	INIT_LIST_HEAD(&conn->monitor_node);
	INIT_LIST_HEAD(&conn->ep_node);
	INIT_LIST_HEAD(&conn->names);
	mutex_init(&conn->lock);
	init_waitqueue_head(&conn->wait);
	atomic_set(&conn->lost, 0);
	kd_queue_init(&conn->queue);
	kd_reply_conn_init(conn);

	ret = kd_conn_identify(conn, file, req);
	if (ret)
		goto fail;

	p = kd_pool_new(req->cmd->pool_size, conn->description);
	if (IS_ERR_OR_NULL(p)) {
		ret = kd_alloc_err(p);
		goto fail;
	}
	conn->pool = p;

	p = kd_matchdb_new();
	if (IS_ERR_OR_NULL(p)) {
		ret = kd_alloc_err(p);
		goto fail;
	}
	conn->matches = p;

	return conn;

fail:
	kd_conn_put(conn);
	return ERR_PTR(ret);
}

/*
 * The caller's first slice: the bloom parameters of the bus, which it
 * needs to build filters and masks. It owns the slice until FREE.
 */
static int kd_hello_slice(struct kd_conn *conn, struct kdbus_cmd_hello *h)
{
	struct {
		u64 size;
		u64 type;
		struct kdbus_bloom_parameter bloom;
	} item = {
		.size	= KD_ITEM_HDR + sizeof(struct kdbus_bloom_parameter),
		.type	= KDBUS_ITEM_BLOOM_PARAMETER,
		.bloom	= conn->bus->bloom,
	};
	struct kd_slice *slice;
	int ret;

	BUILD_BUG_ON(sizeof(item) != KD_ALIGN8(KD_ITEM_HDR +
			sizeof(struct kdbus_bloom_parameter)));

	slice = kd_slice_new(conn->pool, sizeof(item), false);
	if (IS_ERR_OR_NULL(slice))
		return IS_ERR(slice) ? PTR_ERR(slice) : -EXFULL;

	ret = kd_slice_write(slice, 0, &item, sizeof(item));
	if (!ret) {
		kd_slice_publish(slice);
		h->offset = kd_slice_offset(slice);
		h->items_size = sizeof(item);
	}
	kd_slice_drop(slice);
	return ret;
}

/* no activator for the name yet (activators only come in by this ep) */
static int kd_activator_free(struct kd_conn *conn)
{
	struct kd_registry *r = &conn->bus->names;
	struct kd_name *n;
	bool taken;

	down_read(&r->lock);
	n = kd_name_find(r, conn->policy_name);
	taken = n && n->activator;
	up_read(&r->lock);

	return taken ? -EEXIST : 0;
}

/*
 * Makes @conn visible. ep->lock is held throughout, so an endpoint
 * shutdown either comes first (ESHUTDOWN) or finds @conn on ep->conns;
 * it also serialises activators, which need the default endpoint, so the
 * check for a second activator holds until the name is registered. On
 * failure nothing is left linked; a caller owns @conn either way.
 */
static int kd_conn_link(struct kd_conn *conn, const struct kd_args *a)
{
	bool named = kd_kind_has_name(conn->kind);
	struct kd_bus *bus = conn->bus;
	struct kd_ep *ep = conn->ep;
	int ret;

	mutex_lock(&ep->lock);
	if (ep->dead) {
		ret = -ESHUTDOWN;
		goto unlock;
	}

	if (conn->kind == KD_CONN_ACTIVATOR) {
		ret = kd_activator_free(conn);
		if (ret)
			goto unlock;
	}

	if (named) {
		ret = kd_policydb_set(&bus->policy, conn, a->items,
				      a->items_len, 1,
				      conn->kind == KD_CONN_HOLDER,
				      conn->cred->user_ns);
		if (ret)
			goto unlock;
	}

	ret = kd_bus_link_conn(bus, conn);
	if (ret)
		goto drop_policy;

	/* ID_ADD goes out before the activator's NAME_ADD */
	if (conn->kind != KD_CONN_MONITOR)
		kd_notify_id(bus, KDBUS_ITEM_ID_ADD, conn->id, conn->flags);

	if (conn->kind == KD_CONN_ACTIVATOR) {
		ret = kd_names_add_activator(conn, conn->policy_name);
		if (ret) {
			/* seen on the bus already: leave it as anyone would */
			mutex_unlock(&ep->lock);
			kd_conn_disconnect(conn, false);
			return ret;
		}
	}

	list_add_tail(&conn->ep_node, &ep->conns);
	mutex_unlock(&ep->lock);
	kd_notify_flush(bus);
	return 0;

drop_policy:
	if (named)
		kd_policydb_drop(&bus->policy, conn);
unlock:
	mutex_unlock(&ep->lock);
	return ret;
}

static int kd_hello_run(struct kd_args *a, struct kd_ep *ep,
			struct file *file, struct kd_conn **out)
{
	struct kdbus_cmd_hello *h = a->buf;
	struct kd_hello req;
	struct kd_conn *conn;
	int ret;

	ret = kd_hello_check(a, ep, file, &req);
	if (ret)
		return ret;

	conn = kd_conn_new(ep, file, &req);
	if (IS_ERR(conn))
		return PTR_ERR(conn);

	/* the answer goes out before the bus sees the connection */
	ret = kd_hello_slice(conn, h);
	if (!ret) {
		h->id = conn->id;
		h->bus_flags = conn->bus->flags;
		memcpy(h->id128, conn->bus->id128, sizeof(h->id128));
		ret = kd_args_copy_out(a, 0, sizeof(*h));
	}
	if (!ret)
		ret = kd_conn_link(conn, a);
	if (ret) {
		kd_conn_put(conn);
		return ret;
	}

	*out = conn;
	return 0;
}

/**
 * kd_conn_hello() - KDBUS_CMD_HELLO: connect through an endpoint
 * @ep:		the endpoint the handle was opened on
 * @file:	the handle; its credentials decide who the connection is
 * @argp:	the struct kdbus_cmd_hello in user memory
 * @out:	the new connection, owned by the handle from now on
 *
 * Return: 0 with *@out set, 0 with *@out NULL if the call only negotiated,
 * or a negative errno with nothing left behind.
 */
int kd_conn_hello(struct kd_ep *ep, struct file *file, void __user *argp,
		  struct kd_conn **out)
{
	struct kd_conn *conn = NULL;
	struct kd_args a __uninitialized;
	int ret;

	*out = NULL;

	ret = kd_args_get(&a, &kd_hello_rules, argp);
	if (!ret)
		ret = kd_hello_run(&a, ep, file, &conn);
	ret = kd_args_put(&a, ret);

	if (ret < 0 && conn) {
		/* return_flags could not be written: it never happened */
		kd_conn_disconnect(conn, false);
		kd_conn_put(conn);
	}
	if (ret)
		return ret < 0 ? ret : 0;

	*out = conn;
	return 0;
}

/* --- UPDATE ----------------------------------------------------------- */

static int kd_update_mask(const struct kd_args *a, u64 type, u64 *out)
{
	const struct kdbus_item *item = kd_args_item(a, type);

	if (!item)
		return 0;
	if (kd_item_len(item) != sizeof(u64))
		return -EINVAL;
	return kd_attach_mask(item->data64[0], out);
}

static int kd_update_run(struct kd_conn *conn, const struct kd_args *a)
{
	bool set_send = a->seen & KD_I(KDBUS_ITEM_ATTACH_FLAGS_SEND);
	bool set_recv = a->seen & KD_I(KDBUS_ITEM_ATTACH_FLAGS_RECV);
	bool set_policy = a->seen & (KD_I(KDBUS_ITEM_NAME) |
				     KD_I(KDBUS_ITEM_POLICY_ACCESS));
	u64 send = 0, recv = 0;
	int ret;

	/* what each kind may change (spec 4) */
	if (set_send && kd_kind_has_name(conn->kind))
		return -EOPNOTSUPP;
	if (set_recv && conn->kind == KD_CONN_HOLDER)
		return -EOPNOTSUPP;
	if (set_policy && conn->kind != KD_CONN_HOLDER)
		return -EOPNOTSUPP;

	ret = kd_update_mask(a, KDBUS_ITEM_ATTACH_FLAGS_SEND, &send);
	if (!ret)
		ret = kd_update_mask(a, KDBUS_ITEM_ATTACH_FLAGS_RECV, &recv);
	if (ret)
		return ret;

	if (!kd_conn_enter(conn))
		return -ECONNRESET;

	/* the only step that can still fail; a holder sets no masks */
	if (set_policy)
		ret = kd_policydb_set(&conn->bus->policy, conn, a->items,
				      a->items_len, 1, true,
				      conn->cred->user_ns);
	if (!ret && set_send)
		atomic64_set(&conn->attach_send, send);
	if (!ret && set_recv)
		atomic64_set(&conn->attach_recv, recv);

	kd_conn_leave(conn);
	return ret;
}

/**
 * kd_cmd_update() - KDBUS_CMD_UPDATE: new attach flags or holder policy
 * @conn:	the connection
 * @argp:	the struct kdbus_cmd in user memory
 *
 * Everything is checked before anything changes.
 *
 * Return: 0, -EOPNOTSUPP for an item this kind of connection may not
 * change, -EINVAL, -E2BIG, -EEXIST (policy) or -ECONNRESET.
 */
int kd_cmd_update(struct kd_conn *conn, void __user *argp)
{
	struct kd_args a __uninitialized;
	int ret;

	ret = kd_args_get(&a, &kd_update_rules, argp);
	if (!ret)
		ret = kd_update_run(conn, &a);
	ret = kd_args_put(&a, ret);
	return ret > 0 ? 0 : ret;
}
