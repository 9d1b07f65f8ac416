// SPDX-License-Identifier: GPL-2.0
/*
 * SEND: finding the receivers of a message and handing each its copy
 * (spec 8.2, 9, 14). Kernel notifications are delivered by notify.c.
 *
 * A send runs in phases so that user memory is never touched under a
 * lock or with the sender's active count held:
 *
 *   route    (entered, registry read lock)  who gets it, policy, slots
 *   prepare  (entered)                      metadata, quota and slices
 *   write    (nothing held)                 head, metadata, payload
 *   commit   (entered)                      queued, receivers woken
 *
 * Monitors get their copy first. A message to a well-known name is
 * committed under the registry read lock after checking that the name
 * still belongs to the receiver it was written for; if it changed hands
 * meanwhile, the send starts over, so an activator hand-over or a BYEBYE
 * never sees a message in flight. A broadcast picks every receiver at
 * once and then takes the same phases; with more than one receiver its
 * payload is first copied into the kernel, once.
 */

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/poll.h>
#include <linux/rwsem.h>
#include <linux/slab.h>

#include "bus.h"
#include "cmd.h"
#include "conn.h"
#include "domain.h"
#include "item.h"
#include "match.h"
#include "meta.h"
#include "msg.h"
#include "names.h"
#include "policy.h"
#include "pool.h"
#include "queue.h"
#include "reply.h"
#include "route.h"

static const struct kd_cmd_rules kd_send_rules = {
	.fixed = sizeof(struct kdbus_cmd_send),
	.flags = KDBUS_SEND_SYNC_REPLY,
	.items = KD_I(KDBUS_ITEM_CANCEL_FD),
};

/* one receiver of a message being sent */
struct kd_dest {
	struct kd_conn *conn;		/* a reference */
	struct kd_entry *e;		/* reserved, not committed yet */
	struct kd_slice *slice;		/* sync reply: in the caller's pool */
	struct kd_sync_files *files;	/* ... and the files it carries */
	size_t len;			/* bytes of @slice */
	struct kd_buf meta;		/* this receiver's metadata items */
	u64 mask;			/* KDBUS_ATTACH_* it gets */
	bool monitor;
	bool sync_reply;
};

#define KD_DESTS_ONSTACK	4

/* the state of one SEND */
struct kd_send {
	struct kd_conn *src;
	struct kd_bus *bus;
	struct kd_msg *m;
	unsigned int user_id;		/* quota slot of the sender */
	u64 name_id;			/* sent to a name: its kd_name id */
	bool sync;

	struct kd_reply *taken;		/* the slot a reply answers */
	bool taken_done;		/* ... and it was ended */
	struct kd_reply *call;		/* the slot a call opened */

	struct kd_dest *d;		/* monitors first, the addressee last */
	unsigned int n;
	unsigned int cap;
	int main;			/* index of the addressee, or -1 */
	struct kd_dest few[KD_DESTS_ONSTACK];
};

/* a start-over of a send to a name that changed hands */
#define KD_RETRY	1

/**
 * kd_route_lost() - count a message a receiver did not get
 * @conn:	the receiver
 *
 * Its next RECV reports the loss; a poller is woken to make that RECV.
 */
void kd_route_lost(struct kd_conn *conn)
{
	atomic_inc(&conn->lost);
	wake_up_interruptible_poll(&conn->wait, EPOLLIN | EPOLLRDNORM);
}

static void kd_send_init(struct kd_send *s, struct kd_conn *src,
			 struct kd_msg *m, bool sync)
{
	/* field by field: @s is not zeroed (see kd_send_msg()) */
	s->src = src;
	s->bus = src->bus;
	s->m = m;
	s->user_id = kd_conn_quota_user(src)->id;
	s->name_id = 0;
	s->sync = sync;
	s->taken = NULL;
	s->taken_done = false;
	s->call = NULL;
	s->d = s->few;
	s->n = 0;
	s->cap = KD_DESTS_ONSTACK;
	s->main = -1;
}

static int kd_send_grow(struct kd_send *s, unsigned int cap)
{
	struct kd_dest *d;

	if (cap <= s->cap)
		return 0;
	d = kmalloc_array(cap, sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	memcpy(d, s->d, s->n * sizeof(*d));
	if (s->d != s->few)
		kfree(s->d);
	s->d = d;
	s->cap = cap;
	return 0;
}

/* adds @conn as a receiver, with a reference of its own */
static int kd_send_add(struct kd_send *s, struct kd_conn *conn, bool monitor)
{
	struct kd_dest *d;
	int ret;

	if (s->n == s->cap) {
		ret = kd_send_grow(s, s->cap * 2);
		if (ret)
			return ret;
	}
	d = &s->d[s->n++];
	d->conn = kd_conn_get(conn);
	d->e = NULL;
	d->slice = NULL;
	d->files = NULL;
	d->len = 0;
	kd_buf_init(&d->meta);
	d->mask = 0;
	d->monitor = monitor;
	d->sync_reply = false;
	return 0;
}

/* undoes whatever was not committed and forgets every receiver */
static void kd_send_drop_dests(struct kd_send *s)
{
	unsigned int i;

	for (i = 0; i < s->n; i++) {
		struct kd_dest *d = &s->d[i];

		if (d->e)
			kd_queue_cancel(d->conn, d->e);
		if (d->slice)
			kd_slice_drop(d->slice);
		kd_sync_files_free(d->files);
		kd_buf_release(&d->meta);
		kd_conn_put(d->conn);
	}
	s->n = 0;
	s->main = -1;
}

/* a reply that was not delivered leaves its slot owed (deviation 10) */
static void kd_send_drop_taken(struct kd_send *s)
{
	if (!s->taken)
		return;
	if (!s->taken_done)
		kd_reply_restore(s->taken);
	kd_reply_put(s->taken);
	s->taken = NULL;
	s->taken_done = false;
}

static void kd_send_fini(struct kd_send *s)
{
	kd_send_drop_dests(s);
	kd_send_drop_taken(s);
	kd_reply_put(s->call);
	if (s->d != s->few)
		kfree(s->d);
}

/* FDS files only go to those who accept them; monitors read -1 then */
static unsigned int kd_dest_n_fds(const struct kd_dest *d,
				  const struct kd_msg *m)
{
	if (!(d->conn->flags & KDBUS_HELLO_ACCEPT_FD))
		return 0;
	return m->n_fds;
}

/* sender entered: metadata, quota and a slice for one receiver */
static int kd_dest_reserve(struct kd_send *s, struct kd_dest *d)
{
	const struct kd_msg *m = s->m;
	unsigned int n_fds = kd_dest_n_fds(d, m);
	struct kd_slice *slice;
	struct kd_entry *e;
	size_t len;
	int ret;

	if (d->mask) {
		d->meta.len = 0;
		kd_msg_meta_emit(&d->meta, &m->meta, m->src, d->mask, d->conn);
		if (d->meta.err)
			return -ENOMEM;
	}
	len = kd_msg_slice_len(m, d->meta.len);

	if (d->sync_reply) {
		/* written straight into the waiting caller's pool */
		if (n_fds || m->n_memfds) {
			d->files = kd_sync_files_new(m, n_fds);
			if (!d->files)
				return -ENOMEM;
		}
		slice = kd_slice_new(d->conn->pool, len, false);
		if (IS_ERR(slice))
			return PTR_ERR(slice);
		d->slice = slice;
		d->len = len;
		return 0;
	}

	e = kd_queue_reserve(d->conn, s->user_id, len, n_fds);
	if (IS_ERR(e))
		return PTR_ERR(e);
	kd_msg_fill_entry(m, e, len, d->monitor ? 0 : s->name_id);
	ret = kd_msg_entry_files(m, e, n_fds);
	if (ret) {
		kd_queue_cancel(d->conn, e);
		return ret;
	}
	d->e = e;
	return 0;
}

static int kd_dest_write(struct kd_send *s, struct kd_dest *d)
{
	struct kd_slice *slice = d->e ? d->e->slice : d->slice;

	return kd_msg_write(s->m, slice, d->mask ? &d->meta : NULL);
}

/* no lock held: metadata every receiver may want, gathered once */
static int kd_send_collect(struct kd_send *s)
{
	struct kd_msg *m = s->m;
	u64 want = 0;
	unsigned int i;

	for (i = 0; i < s->n; i++) {
		s->d[i].mask = kd_msg_meta_mask(s->src, s->d[i].conn);
		want |= s->d[i].mask;
	}
	if (!(want & ~m->meta.collected))
		return 0;
	return kd_msg_meta_collect(&m->meta, s->src, want);
}

/* --- unicast ------------------------------------------------------- */

/* registry read-locked: the owner a message to a name goes to */
static int kd_send_find_name(struct kd_send *s, struct kd_conn **dst)
{
	const struct kdbus_msg *h = s->m->head;
	struct kd_owner *o;
	struct kd_name *n;

	n = kd_name_find(&s->bus->names, s->m->dst_name);
	o = n ? kd_name_primary(n) : NULL;
	if (!o)
		return -ESRCH;
	if (h->dst_id != KDBUS_DST_ID_NAME && h->dst_id != o->conn->id)
		return -EREMCHG;
	if (o == n->activator && (h->flags & KDBUS_MSG_NO_AUTO_START))
		return -EADDRNOTAVAIL;

	s->name_id = n->id;
	*dst = kd_conn_get(o->conn);
	return 0;
}

static int kd_send_find_id(struct kd_send *s, struct kd_conn **dst)
{
	struct kd_conn *c = kd_bus_find_conn(s->bus, s->m->head->dst_id);

	/* activators, holders and monitors are not addressable by id */
	if (!c || !kd_conn_ordinary(c)) {
		kd_conn_put(c);
		return -ENXIO;
	}
	*dst = c;
	return 0;
}

/* monitors see every message, ahead of its addressee */
static int kd_send_add_monitors(struct kd_send *s)
{
	struct kd_conn *c;
	int ret = 0;

	if (list_empty(&s->bus->monitors))
		return 0;

	down_read(&s->bus->lock);
	list_for_each_entry(c, &s->bus->monitors, monitor_node) {
		ret = kd_send_add(s, c, true);
		if (ret)
			break;
	}
	up_read(&s->bus->lock);
	return ret;
}

/*
 * Registry read-locked: may @dst get the message? Returns 0 with
 * *@deliver false for a unicast signal it does not want.
 */
static int kd_send_check_dst(struct kd_send *s, struct kd_conn *dst,
			     bool *deliver)
{
	const struct kdbus_msg *h = s->m->head;

	if (!(h->flags & KDBUS_MSG_EXPECT_REPLY) && h->cookie_reply) {
		/* a reply: only the slot matters, not policy or matches */
		s->taken = kd_reply_take(s->src, dst, h->cookie_reply);
		return s->taken ? 0 : -EBADSLT;
	}
	if (h->flags & KDBUS_MSG_SIGNAL) {
		*deliver = kd_match(dst, s->m) && kd_may_talk(dst, s->src);
		return 0;
	}
	return kd_may_talk(s->src, dst) ? 0 : -EPERM;
}

/* a receiver that refuses fds; unicast signals are just not delivered */
static int kd_send_check_fds(struct kd_send *s, struct kd_conn *dst,
			     bool *deliver)
{
	if (!s->m->n_fds || (dst->flags & KDBUS_HELLO_ACCEPT_FD))
		return 0;
	if (s->m->head->flags & KDBUS_MSG_SIGNAL) {
		*deliver = false;
		return 0;
	}
	if (s->taken && s->taken->sync) {
		/* the caller learns why its answer never comes */
		kd_reply_finish(s->taken, -EREMOTEIO, 0, 0);
		s->taken_done = true;
	}
	return -ECOMM;
}

/* phase 1, entered: the addressee, its checks, and the monitors */
static int kd_send_route(struct kd_send *s)
{
	struct kd_registry *r = &s->bus->names;
	struct kd_conn *dst = NULL;
	bool deliver = true;
	int ret;

	if (!kd_conn_enter(s->src))
		return -ECONNRESET;

	down_read(&r->lock);
	if (s->m->dst_name)
		ret = kd_send_find_name(s, &dst);
	else
		ret = kd_send_find_id(s, &dst);
	if (!ret)
		ret = kd_send_check_dst(s, dst, &deliver);
	up_read(&r->lock);

	if (!ret)
		ret = kd_send_check_fds(s, dst, &deliver);
	if (!ret)
		ret = kd_send_add_monitors(s);
	if (!ret && deliver) {
		ret = kd_send_add(s, dst, false);
		if (!ret) {
			s->main = s->n - 1;
			s->d[s->main].sync_reply = s->taken && s->taken->sync;
		}
	}

	kd_conn_leave(s->src);
	kd_conn_put(dst);
	return ret;
}

/* phase 2: metadata, then quota and slices with the sender entered */
static int kd_send_prepare(struct kd_send *s)
{
	unsigned int i;
	int ret;

	ret = kd_send_collect(s);
	if (ret)
		return ret;

	if (!kd_conn_enter(s->src))
		return -ECONNRESET;
	for (i = 0; i < s->n; i++) {
		struct kd_dest *d = &s->d[i];

		ret = kd_dest_reserve(s, d);
		if (!ret)
			continue;
		if (i == s->main) {
			/* its owner left after routing: the name moved on */
			if (ret == -ECONNRESET && s->m->dst_name) {
				ret = KD_RETRY;
				break;
			}
			/* unicast signals fail silently, all else loudly */
			if (!(s->m->head->flags & KDBUS_MSG_SIGNAL))
				break;
			s->main = -1;
		} else if (ret != -ECONNRESET) {
			kd_route_lost(d->conn);
		}
		ret = 0;
	}
	kd_conn_leave(s->src);
	return ret;
}

/* phase 3, nothing held: the copies, from the sender's memory */
static int kd_send_write(struct kd_send *s)
{
	unsigned int i;
	int ret;

	for (i = 0; i < s->n; i++) {
		struct kd_dest *d = &s->d[i];

		if (!d->e && !d->slice)
			continue;
		ret = kd_dest_write(s, d);
		if (!ret)
			continue;
		/* a fault is the sender's: nobody gets the message */
		if (ret == -EFAULT || i == s->main)
			return ret;
		kd_queue_cancel(d->conn, d->e);
		d->e = NULL;
		kd_route_lost(d->conn);
	}
	return 0;
}

/* registry read-locked: does the name still lead where we wrote? */
static bool kd_send_owner_unchanged(struct kd_send *s, struct kd_conn *dst)
{
	struct kd_name *n = kd_name_find(&s->bus->names, s->m->dst_name);
	struct kd_owner *o = n ? kd_name_primary(n) : NULL;

	return o && o->conn == dst && n->id == s->name_id;
}

/* hands a sync reply's slice to the caller waiting for it */
static int kd_send_sync_reply(struct kd_send *s, struct kd_dest *d)
{
	struct kd_sync_files *f = d->files;
	u64 off;

	kd_slice_publish(d->slice);
	off = kd_slice_offset(d->slice);
	/* with files, the kernel reference goes with them to the caller */
	if (f)
		kd_sync_files_hold(f, d->slice);
	else
		kd_slice_drop(d->slice);
	d->slice = NULL;
	d->files = NULL;

	s->taken->files = f;
	s->taken_done = true;
	if (kd_reply_finish(s->taken, 0, off, d->len)) {
		/* the caller stopped waiting: nobody will free it */
		s->taken->files = NULL;
		kd_sync_files_free(f);
		kd_pool_free_offset(d->conn->pool, off);
		return -ECONNRESET;
	}
	return 0;
}

/* queues the addressee's copy; a call gets its reply slot on the way */
static int kd_send_commit_main(struct kd_send *s, struct kd_dest *d)
{
	struct kd_entry *e = d->e;
	int ret;

	if (d->slice)
		return kd_send_sync_reply(s, d);

	if (s->call)
		e->reply = kd_reply_get(s->call);
	d->e = NULL;
	ret = kd_queue_commit(d->conn, e);
	if (ret) {
		/* never delivered: ends without a notification */
		if (s->call)
			kd_reply_finish(s->call, ret, 0, 0);
		return ret;
	}
	if (s->taken) {
		kd_reply_finish(s->taken, 0, 0, 0);
		s->taken_done = true;
	}
	return 0;
}

/* phase 4, entered: the reply slot of a call, then everybody queued */
static int kd_send_commit(struct kd_send *s)
{
	const struct kdbus_msg *h = s->m->head;
	struct kd_dest *main = s->main >= 0 ? &s->d[s->main] : NULL;
	bool named = main && s->m->dst_name;
	struct kd_reply *r;
	unsigned int i;
	int ret = 0;

	if (!kd_conn_enter(s->src))
		return -ECONNRESET;
	if (named) {
		down_read(&s->bus->names.lock);
		if (!kd_send_owner_unchanged(s, main->conn)) {
			ret = KD_RETRY;
			goto out;
		}
	}

	if (main && (h->flags & KDBUS_MSG_EXPECT_REPLY)) {
		r = kd_reply_new(s->src, main->conn, h->cookie, h->timeout_ns,
				 s->sync);
		if (IS_ERR(r)) {
			ret = PTR_ERR(r);
			goto out;
		}
		s->call = r;
	}

	for (i = 0; i < s->n; i++) {
		struct kd_dest *d = &s->d[i];

		if (i == s->main || !d->e)
			continue;
		kd_queue_commit(d->conn, d->e);
		d->e = NULL;
	}
	if (main)
		ret = kd_send_commit_main(s, main);

out:
	if (named)
		up_read(&s->bus->names.lock);
	kd_conn_leave(s->src);
	return ret;
}

/* phases 2-4, once the receivers are known */
static int kd_send_deliver(struct kd_send *s)
{
	int ret;

	ret = kd_send_prepare(s);
	if (!ret)
		ret = kd_send_write(s);
	if (!ret)
		ret = kd_send_commit(s);
	return ret;
}

static int kd_send_unicast(struct kd_send *s)
{
	int ret;

	do {
		ret = kd_send_route(s);
		if (!ret)
			ret = kd_send_deliver(s);
		kd_send_drop_dests(s);
		/* a reply that failed, or starts over, is owed again */
		kd_send_drop_taken(s);
		/* the owner's disconnect may still be under way on this CPU */
		if (ret == KD_RETRY)
			cond_resched();
	} while (ret == KD_RETRY);

	return ret;
}

/* --- broadcast ----------------------------------------------------- */

/* registry and bus read-locked: every connection that wants @m */
static int kd_send_pick(struct kd_send *s)
{
	struct kd_bus *bus = s->bus;
	struct kd_conn *c;
	unsigned int n = bus->n_conns;
	int ret;

	list_for_each_entry(c, &bus->monitors, monitor_node)
		n++;
	ret = kd_send_grow(s, n);
	if (ret)
		return ret;

	list_for_each_entry(c, &bus->monitors, monitor_node) {
		ret = kd_send_add(s, c, true);
		if (ret)
			return ret;
	}
	list_for_each_entry(c, &bus->all_conns, all_node) {
		if (!kd_conn_ordinary(c) || !kd_match(c, s->m) ||
		    !kd_may_talk(c, s->src))
			continue;
		ret = kd_send_add(s, c, false);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Phase 1 is the pick; then as for a unicast. With more than one receiver
 * the payload is copied in once, and each receiver's copy made from there.
 */
static int kd_send_broadcast(struct kd_send *s)
{
	int ret;

	if (!kd_conn_enter(s->src))
		return -ECONNRESET;
	down_read(&s->bus->names.lock);
	down_read(&s->bus->lock);
	ret = kd_send_pick(s);
	up_read(&s->bus->lock);
	up_read(&s->bus->names.lock);
	kd_conn_leave(s->src);

	if (!ret && s->n > 1)
		ret = kd_msg_take_payload(s->m);
	if (!ret)
		ret = kd_send_deliver(s);
	return ret;
}

/* --- KDBUS_CMD_SEND ------------------------------------------------ */

/* a sync call may be cancelled by a file becoming readable */
static int kd_send_cancel_fd(struct kd_args *a, struct kd_msg *m)
{
	const struct kdbus_item *it = kd_args_item(a, KDBUS_ITEM_CANCEL_FD);
	struct file *f;

	if (!it)
		return 0;
	f = fget(it->fds[0]);
	if (!f)
		return -EBADF;
	if (!file_can_poll(f)) {
		fput(f);
		return -EINVAL;
	}
	m->cancel = f;
	return 0;
}

static int kd_send_msg(struct kd_conn *src, struct kd_msg *m,
		       struct kd_args *a)
{
	struct kdbus_cmd_send *cmd = a->buf;
	const struct kdbus_msg *h = m->head;
	bool sync = cmd->flags & KDBUS_SEND_SYNC_REPLY;
	/* not zeroed: kd_send_init() sets it, kd_send_add() each s.d[] used */
	struct kd_send s __uninitialized;
	int ret = 0;

	kd_send_init(&s, src, m, sync);

	if (h->dst_id == KDBUS_DST_ID_BROADCAST) {
		ret = kd_send_broadcast(&s);
		goto out;
	}

	if (sync) {
		ret = kd_send_cancel_fd(a, m);
		if (ret)
			goto out;
		/* restarted after a signal: wait on, do not send again */
		s.call = kd_reply_resume(src, h->cookie);
		if (!s.call && kd_reply_deadline_passed(h->timeout_ns)) {
			ret = -ETIMEDOUT;
			goto out;
		}
	}

	if (!s.call)
		ret = kd_send_unicast(&s);

	if (!ret && sync) {
		ret = kd_reply_wait(s.call, m->cancel);
		if (!ret) {
			cmd->reply.offset = s.call->offset;
			cmd->reply.msg_size = s.call->size;
			/* the slot ended: nobody else looks at its files */
			if (s.call->files) {
				kd_sync_files_install(s.call->files,
						      &cmd->reply.return_flags);
				kd_sync_files_free(s.call->files);
				s.call->files = NULL;
			}
		}
	}

out:
	kd_send_fini(&s);
	return ret;
}

/**
 * kd_cmd_send() - KDBUS_CMD_SEND
 * @conn:	the sending connection; its active count is not held
 * @argp:	the struct kdbus_cmd_send in user memory
 *
 * Negotiation covers the command and, if msg_address is set, the
 * message; a message may only negotiate along with its command.
 *
 * Return: 0 or a negative errno (spec 8.2, 9).
 */
int kd_cmd_send(struct kd_conn *conn, void __user *argp)
{
	struct kd_msg_room room __uninitialized;
	struct kdbus_cmd_send *cmd;
	struct kd_msg *m = NULL;
	struct kd_args a __uninitialized;
	bool negotiate;
	int ret;

	ret = kd_args_get(&a, &kd_send_rules, argp);
	if (ret < 0)
		return kd_args_put(&a, ret);
	cmd = a.buf;
	negotiate = ret == 1;

	if (negotiate && !cmd->msg_address)
		return kd_args_put(&a, 0);
	if (!negotiate && !kd_conn_ordinary(conn))
		return kd_args_put(&a, -EOPNOTSUPP);

	ret = kd_msg_from_user(conn, &a, &room, &m);
	if (ret == 1)
		ret = negotiate ? 0 : -EINVAL;
	if (ret || negotiate)
		goto out;

	cmd->reply.offset = kd_pool_size(conn->pool);
	cmd->reply.msg_size = 0;
	cmd->reply.return_flags = 0;

	ret = kd_send_msg(conn, m, &a);
	if (!ret)
		ret = kd_args_copy_out(&a, offsetof(struct kdbus_cmd_send,
						    reply),
				       sizeof(cmd->reply));
out:
	if (m)
		kd_msg_free(m);
	return kd_args_put(&a, ret);
}
