// SPDX-License-Identifier: GPL-2.0
/*
 * A message between SEND and the receivers' pools (spec 8.2 - 8.4).
 *
 * The sender's kdbus_msg is checked once and turned into a "head": the
 * header and items exactly as every receiver will read them, vectors
 * rewritten into offsets relative to the payload, descriptor slots set
 * to -1. What differs per receiver - the size field, where the payload
 * starts, the metadata items - is patched in while writing the slice.
 *
 * Slice layout: head | metadata items | payload, each padded to 8.
 *
 * What each receiver keeps once SEND returns is in msgfiles.c.
 */

#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/net.h>
#include <linux/overflow.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <net/sock.h>

#include "bus.h"
#include "cmd.h"
#include "conn.h"
#include "fs.h"
#include "item.h"
#include "msg.h"
#include "pool.h"
#include "queue.h"

/* the items a kdbus_msg may carry; duplicates are checked here (EEXIST) */
#define KD_MSG_ITEMS	(KD_I(KDBUS_ITEM_PAYLOAD_VEC) |		\
			 KD_I(KDBUS_ITEM_PAYLOAD_MEMFD) |	\
			 KD_I(KDBUS_ITEM_FDS) |			\
			 KD_I(KDBUS_ITEM_BLOOM_FILTER) |	\
			 KD_I(KDBUS_ITEM_DST_NAME))

static const struct kd_cmd_rules kd_msg_rules = {
	.fixed = sizeof(struct kdbus_msg),
	.flags = KDBUS_MSG_EXPECT_REPLY | KDBUS_MSG_NO_AUTO_START |
		 KDBUS_MSG_SIGNAL,
	.items = KD_MSG_ITEMS,
	.multi = KD_MSG_ITEMS,
	.is_msg = true,
};

/* a memfd is only safe to share once nobody can change it any more */
#define KD_MEMFD_SEALS	(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | \
			 F_SEAL_SEAL)

/* heads up to this size are patched on the stack and written at once */
#define KD_HEAD_ONSTACK	256

/* what the walk over the sender's items found */
struct kd_msg_plan {
	size_t head_len;
	size_t vec_total;
	unsigned int n_vecs;
	unsigned int n_off;
	unsigned int n_memfds;
	unsigned int n_fds;
	const struct kdbus_item *fds;
	const struct kdbus_item *bloom;
	const struct kdbus_item *dst_name;
};

/* spec 8.2 checks 1-3: the header on its own */
static int kd_msg_check_header(const struct kdbus_msg *msg, u64 send_flags)
{
	bool bcast = msg->dst_id == KDBUS_DST_ID_BROADCAST;

	if (msg->payload_type == KDBUS_PAYLOAD_KERNEL)
		return -EINVAL;

	if (bcast) {
		if (!(msg->flags & KDBUS_MSG_SIGNAL))
			return -EBADMSG;
		if (msg->timeout_ns)
			return -ENOTUNIQ;
	}

	if (msg->flags & KDBUS_MSG_EXPECT_REPLY) {
		if (!msg->timeout_ns)
			return -EINVAL;
		if (msg->flags & KDBUS_MSG_SIGNAL)
			return -ENOTUNIQ;
	} else {
		if (send_flags & KDBUS_SEND_SYNC_REPLY)
			return -EINVAL;
		if (msg->cookie_reply && (msg->flags & KDBUS_MSG_SIGNAL))
			return -EINVAL;
	}

	return 0;
}

static int kd_msg_plan_vec(struct kd_msg_plan *p, const struct kdbus_item *it)
{
	u64 size = it->vec.size;

	/* padding vectors count against the limit with their full size */
	if (size > KD_VEC_MAX - p->vec_total)
		return -EMSGSIZE;
	p->vec_total += size;

	if (it->vec.address) {
		if (!access_ok(u64_to_user_ptr(it->vec.address), size))
			return -EFAULT;
		p->n_off++;
	}
	p->n_vecs++;
	return 0;
}

static int kd_msg_plan_bloom(struct kd_msg_plan *p, const struct kdbus_item *it,
			     const struct kd_bus *bus)
{
	size_t len = kd_item_len(it) - sizeof(struct kdbus_bloom_filter);

	if (p->bloom)
		return -EEXIST;
	if (len % sizeof(u64))
		return -EFAULT;
	if (len != bus->bloom.size)
		return -EDOM;
	p->bloom = it;
	return 0;
}

/* spec 8.2 check 4: one item */
static int kd_msg_plan_item(struct kd_msg_plan *p, const struct kdbus_item *it,
			    const struct kdbus_msg *msg,
			    const struct kd_bus *bus)
{
	switch (it->type) {
	case KDBUS_ITEM_PAYLOAD_VEC:
		return kd_msg_plan_vec(p, it);
	case KDBUS_ITEM_PAYLOAD_MEMFD:
		if (++p->n_memfds > KD_MEMFDS_MAX)
			return -E2BIG;
		return 0;
	case KDBUS_ITEM_FDS:
		if (p->fds)
			return -EEXIST;
		p->fds = it;
		p->n_fds = kd_item_len(it) / sizeof(int);
		return p->n_fds > KD_FDS_MAX ? -EMFILE : 0;
	case KDBUS_ITEM_BLOOM_FILTER:
		return kd_msg_plan_bloom(p, it, bus);
	case KDBUS_ITEM_DST_NAME:
		if (p->dst_name)
			return -EEXIST;
		if (!kd_name_ok(it->str, false))
			return -EINVAL;
		if (msg->dst_id == KDBUS_DST_ID_BROADCAST)
			return -EBADMSG;
		p->dst_name = it;
		return 0;
	default:
		return -EINVAL;
	}
}

/* spec 8.2 checks 1-6; fills @p with what building the head needs */
static int kd_msg_plan(struct kd_msg_plan *p, const struct kd_args *a,
		       u64 send_flags, const struct kd_conn *src)
{
	const struct kdbus_msg *msg = a->buf;
	const struct kdbus_item *it;
	int ret;

	ret = kd_msg_check_header(msg, send_flags);
	if (ret)
		return ret;

	p->head_len = sizeof(*msg);
	kd_items_foreach(it, a->items, a->items_len) {
		/* answered by kd_args_get(); nothing a receiver sees */
		if (it->type == KDBUS_ITEM_NEGOTIATE)
			continue;
		ret = kd_msg_plan_item(p, it, msg, src->bus);
		if (ret)
			return ret;
		p->head_len += KD_ALIGN8((size_t)it->size);
	}

	if (!p->bloom != !(msg->flags & KDBUS_MSG_SIGNAL))
		return -EBADMSG;
	if (msg->dst_id == KDBUS_DST_ID_NAME && !p->dst_name)
		return -EDESTADDRREQ;
	if (msg->dst_id == KDBUS_DST_ID_BROADCAST && p->n_fds)
		return -ENOTUNIQ;
	if (msg->src_id && msg->src_id != src->id)
		return -EINVAL;

	return 0;
}

/*
 * One block for the message and every array it needs, in @room if given
 * and large enough, else allocated:
 * kd_msg | head | off_at[] | vecs[] | fds[] | memfds[] | memfds_at[].
 */
static struct kd_msg *kd_msg_alloc(struct kd_msg_room *room, size_t head_len,
				   unsigned int n_off, unsigned int n_vecs,
				   unsigned int n_fds, unsigned int n_memfds)
{
	size_t at = KD_ALIGN8(sizeof(struct kd_msg));
	size_t head_at, off_at, vecs_at, fds_at, mfds_at, mat_at;
	struct kd_msg *m;
	u8 *base;

	head_at = at;
	at += KD_ALIGN8(head_len);
	off_at = at;
	at += n_off * sizeof(size_t);
	vecs_at = at;
	at += n_vecs * sizeof(struct kd_vec);
	fds_at = at;
	at += n_fds * sizeof(struct file *);
	mfds_at = at;
	at += n_memfds * sizeof(struct file *);
	mat_at = at;
	at += n_memfds * sizeof(size_t);

	if (room && at <= sizeof(room->bytes))
		base = room->bytes;
	else
		base = kvmalloc(at, GFP_KERNEL);
	if (!base)
		return NULL;

	m = (struct kd_msg *)base;
	memset(m, 0, sizeof(*m));
	m->in_room = room && base == room->bytes;
	m->head = (struct kdbus_msg *)(base + head_at);
	m->head_len = head_len;
	m->off_at = (size_t *)(base + off_at);
	m->vecs = (struct kd_vec *)(base + vecs_at);
	m->fds = (struct file **)(base + fds_at);
	m->memfds = (struct file **)(base + mfds_at);
	m->memfds_at = (size_t *)(base + mat_at);
	kd_obj_new(KD_OBJ_MSG);
	return m;
}

/* copies @it into the head at @w, zero-padded to 8 */
static struct kdbus_item *kd_msg_put_item(u8 *w, const struct kdbus_item *it)
{
	size_t len = it->size;

	memcpy(w, it, len);
	memset(w + len, 0, KD_ALIGN8(len) - len);
	return (struct kdbus_item *)w;
}

static void kd_msg_put_vec(struct kd_msg *m, u8 *w,
			   const struct kdbus_item *it)
{
	struct kdbus_item *o = (struct kdbus_item *)w;
	struct kd_vec *v = &m->vecs[m->n_vecs++];
	size_t at = w - (u8 *)m->head;

	o->size = it->size;
	o->type = KDBUS_ITEM_PAYLOAD_OFF;
	o->vec.size = it->vec.size;

	v->at = m->payload_len;
	if (it->vec.address) {
		v->uaddr = u64_to_user_ptr(it->vec.address);
		v->len = it->vec.size;
		o->vec.offset = v->at;
		m->off_at[m->n_off++] = at + offsetof(struct kdbus_item,
						      vec.offset);
	} else {
		/* a padding vector stands for (size % 8) zero bytes */
		v->uaddr = NULL;
		v->len = it->vec.size % 8;
		o->vec.offset = ~0ULL;
	}
	m->payload_len += v->len;
}

/* the head every receiver gets; descriptor slots read -1 until RECV */
static void kd_msg_build_head(struct kd_msg *m, const struct kd_args *a,
			      const struct kd_conn *src)
{
	const struct kdbus_item *it;
	unsigned int n_memfds = 0;
	struct kdbus_item *o;
	u8 *w;

	memcpy(m->head, a->buf, sizeof(*m->head));
	m->head->size = m->head_len;
	m->head->src_id = src->id;
	w = (u8 *)(m->head + 1);

	kd_items_foreach(it, a->items, a->items_len) {
		size_t at = w - (u8 *)m->head;

		switch (it->type) {
		case KDBUS_ITEM_PAYLOAD_VEC:
			kd_msg_put_vec(m, w, it);
			break;
		case KDBUS_ITEM_PAYLOAD_MEMFD:
			o = kd_msg_put_item(w, it);
			o->memfd.fd = -1;
			o->memfd.__pad = 0;
			m->memfds_at[n_memfds++] =
				at + offsetof(struct kdbus_item, memfd.fd);
			break;
		case KDBUS_ITEM_FDS:
			o = kd_msg_put_item(w, it);
			memset(o->fds, 0xff, kd_item_len(it));
			m->fds_at = at + KD_ITEM_HDR;
			break;
		case KDBUS_ITEM_BLOOM_FILTER:
			o = kd_msg_put_item(w, it);
			m->bloom = &o->bloom_filter;
			m->bloom_len = kd_item_len(it) -
				       sizeof(struct kdbus_bloom_filter);
			break;
		case KDBUS_ITEM_DST_NAME:
			o = kd_msg_put_item(w, it);
			m->dst_name = o->str;
			break;
		default:
			continue;
		}
		w += KD_ALIGN8((size_t)it->size);
	}
}

/* the seals of a shmem file; the same field on every supported kernel */
static unsigned int kd_memfd_seals(struct file *f)
{
	return READ_ONCE(SHMEM_I(file_inode(f))->seals);
}

/* spec 8.2 check 7: a sealed memfd and a range inside it */
static int kd_msg_take_memfd(struct kd_msg *m, unsigned int i,
			     const struct kdbus_memfd *mfd)
{
	struct file *f;
	u64 end;

	f = fget(mfd->fd);
	if (!f)
		return -EBADF;
	/* counted at once, so kd_msg_free() drops it on any error */
	m->memfds[i] = f;

	if (!shmem_file(f))
		return -EMEDIUMTYPE;
	if ((kd_memfd_seals(f) & KD_MEMFD_SEALS) != KD_MEMFD_SEALS)
		return -ETXTBSY;
	if (check_add_overflow(mfd->start, mfd->size, &end))
		return -EMSGSIZE;
	if (end > (u64)i_size_read(file_inode(f)))
		return -EFAULT;
	return 0;
}

/* kdbus handles and AF_UNIX sockets could form reference cycles */
static bool kd_msg_fd_refused(struct file *f)
{
	struct socket *sock;

	if (f->f_op == &kd_file_ops)
		return true;
	sock = sock_from_file(f);
	return sock && sock->sk && sock->sk->sk_family == AF_UNIX;
}

/* spec 8.2 checks 7 and 8: references on every file the message carries */
static int kd_msg_take_files(struct kd_msg *m, const struct kd_args *a,
			     const struct kd_msg_plan *p)
{
	const struct kdbus_item *it;
	unsigned int i = 0;
	int ret;

	kd_items_foreach(it, a->items, a->items_len) {
		if (it->type != KDBUS_ITEM_PAYLOAD_MEMFD)
			continue;
		ret = kd_msg_take_memfd(m, i++, &it->memfd);
		if (ret)
			return ret;
	}

	for (i = 0; i < p->n_fds; i++) {
		struct file *f = fget_raw(p->fds->fds[i]);

		if (!f)
			return -EBADF;
		m->fds[m->n_fds++] = f;
		if (kd_msg_fd_refused(f))
			return -EOPNOTSUPP;
	}

	return 0;
}

/**
 * kd_msg_from_user() - check a message and build what receivers get
 * @src:	the sending connection
 * @send:	the SEND command, copied in
 * @room:	where to build the message if it fits
 * @out:	the new message
 *
 * Reads the kdbus_msg at cmd_send.msg_address, runs the checks of spec
 * 8.2 in their order and takes references on the files it carries. The
 * caller must not hold a lock or @src's active count: user memory is read.
 *
 * Return: 0 with *@out set, 1 if the message only negotiated, or a
 * negative errno.
 */
int kd_msg_from_user(struct kd_conn *src, struct kd_args *send,
		     struct kd_msg_room *room, struct kd_msg **out)
{
	const struct kdbus_cmd_send *cmd = send->buf;
	struct kd_msg_plan p = {};
	struct kd_msg *m;
	struct kd_args a __uninitialized;
	int ret;

	*out = NULL;
	ret = kd_args_get(&a, &kd_msg_rules, u64_to_user_ptr(cmd->msg_address));
	if (ret)
		return kd_args_put(&a, ret);

	ret = kd_msg_plan(&p, &a, cmd->flags, src);
	if (ret)
		return kd_args_put(&a, ret);

	m = kd_msg_alloc(room, p.head_len, p.n_off, p.n_vecs, p.n_fds,
			 p.n_memfds);
	if (!m)
		return kd_args_put(&a, -ENOMEM);

	m->bus = src->bus;
	m->src = src;
	m->umsg = m->head;
	m->seq = atomic64_inc_return(&src->bus->seq);
	kd_msg_meta_init(&m->meta, m->seq);
	kd_msg_build_head(m, &a, src);

	/* memfd slots are filled in item order, fds appended one by one */
	m->n_memfds = p.n_memfds;
	memset(m->memfds, 0, p.n_memfds * sizeof(*m->memfds));
	ret = kd_msg_take_files(m, &a, &p);
	kd_args_put(&a, 0);
	if (ret) {
		kd_msg_free(m);
		return ret;
	}

	*out = m;
	return 0;
}

/**
 * kd_msg_kernel() - build a notification from the kernel
 * @bus:	the bus it is sent on
 * @dst_id:	KDBUS_DST_ID_BROADCAST, or the connection it is for
 * @cookie_reply: the call it answers (REPLY_TIMEOUT, REPLY_DEAD), or 0
 * @type:	its one item, KDBUS_ITEM_NAME_ADD ... KDBUS_ITEM_REPLY_DEAD
 * @payload:	that item's payload
 * @len:	its size
 *
 * The message carries the item and, always, a TIMESTAMP item; it has no
 * payload and no files, so it can be written under any lock.
 *
 * Return: the message, or NULL without memory.
 */
struct kd_msg *kd_msg_kernel(struct kd_bus *bus, u64 dst_id, u64 cookie_reply,
			     u64 type, const void *payload, size_t len)
{
	size_t item_len = KD_ITEM_HDR + len;
	size_t ts_len = KD_ITEM_HDR + sizeof(struct kdbus_timestamp);
	size_t head_len = sizeof(struct kdbus_msg) + KD_ALIGN8(item_len) +
			  KD_ALIGN8(ts_len);
	struct kdbus_item *it;
	struct kdbus_msg *h;
	struct kd_msg *m;

	m = kd_msg_alloc(NULL, head_len, 0, 0, 0, 0);
	if (!m)
		return NULL;

	m->bus = bus;
	m->seq = atomic64_inc_return(&bus->seq);
	m->notify_type = type;

	h = m->head;
	memset(h, 0, head_len);
	h->size = head_len;
	h->flags = dst_id == KDBUS_DST_ID_BROADCAST ? KDBUS_MSG_SIGNAL : 0;
	h->dst_id = dst_id;
	h->src_id = KDBUS_SRC_ID_KERNEL;
	h->payload_type = KDBUS_PAYLOAD_KERNEL;
	h->cookie_reply = cookie_reply;
	m->umsg = h;

	it = h->items;
	it->size = item_len;
	it->type = type;
	if (len)
		memcpy(it->data, payload, len);
	m->notify = it->data;

	it = (struct kdbus_item *)((u8 *)it + KD_ALIGN8(item_len));
	it->size = ts_len;
	it->type = KDBUS_ITEM_TIMESTAMP;
	it->timestamp.seqnum = m->seq;
	it->timestamp.monotonic_ns = ktime_get_ns();
	it->timestamp.realtime_ns = ktime_get_real_ns();

	return m;
}

/**
 * kd_msg_free() - drop a message once every receiver has its copy
 * @m:		the message
 */
void kd_msg_free(struct kd_msg *m)
{
	unsigned int i;

	for (i = 0; i < m->n_fds; i++)
		fput(m->fds[i]);
	for (i = 0; i < m->n_memfds; i++)
		if (m->memfds[i])
			fput(m->memfds[i]);
	if (m->cancel)
		fput(m->cancel);
	kvfree(m->payload);
	if (m->src)
		kd_msg_meta_release(&m->meta);
	kd_obj_gone(KD_OBJ_MSG);
	if (!m->in_room)
		kvfree(m);
}

/**
 * kd_msg_slice_len() - bytes a receiver's slice needs
 * @m:		the message
 * @meta_len:	bytes of metadata items that receiver gets
 *
 * Return: head, metadata and payload, each padded to 8.
 */
size_t kd_msg_slice_len(const struct kd_msg *m, size_t meta_len)
{
	return KD_ALIGN8(m->head_len) + KD_ALIGN8(meta_len) +
	       KD_ALIGN8(m->payload_len);
}

/* the head with this receiver's size and payload offsets */
static int kd_msg_write_head(const struct kd_msg *m, struct kd_slice *s,
			     u64 size, u64 base)
{
	u8 buf[KD_HEAD_ONSTACK] __aligned(8) __uninitialized;
	unsigned int i;
	int ret;

	if (m->head_len <= sizeof(buf)) {
		memcpy(buf, m->head, m->head_len);
		((struct kdbus_msg *)buf)->size = size;
		for (i = 0; i < m->n_off; i++)
			*(u64 *)(buf + m->off_at[i]) += base;
		return kd_slice_write(s, 0, buf, m->head_len);
	}

	/* large heads: written as built, then the few fields overwritten */
	ret = kd_slice_write(s, 0, m->head, m->head_len);
	if (!ret)
		ret = kd_slice_write(s, 0, &size, sizeof(size));
	for (i = 0; !ret && i < m->n_off; i++) {
		u64 off = *(const u64 *)((const u8 *)m->head + m->off_at[i]);

		off += base;
		ret = kd_slice_write(s, m->off_at[i], &off, sizeof(off));
	}
	return ret;
}

static int kd_msg_write_payload(const struct kd_msg *m, struct kd_slice *s,
				size_t base)
{
	size_t tail = KD_ALIGN8(m->payload_len) - m->payload_len;
	unsigned int i;
	int ret = 0;

	if (m->payload) {
		ret = kd_slice_write(s, base, m->payload, m->payload_len);
	} else {
		for (i = 0; !ret && i < m->n_vecs; i++) {
			const struct kd_vec *v = &m->vecs[i];

			if (v->uaddr)
				ret = kd_slice_write_user(s, base + v->at,
							  v->uaddr, v->len);
			else if (v->len)
				ret = kd_slice_clear(s, base + v->at, v->len);
		}
	}

	if (!ret && tail)
		ret = kd_slice_clear(s, base + m->payload_len, tail);
	return ret;
}

/**
 * kd_msg_write() - write one receiver's copy of a message
 * @m:		the message
 * @slice:	a slice of kd_msg_slice_len(@m, @meta->len) bytes
 * @meta:	the metadata items for this receiver, or NULL
 *
 * Unless kd_msg_take_payload() ran, the payload is read from the
 * sender's memory: no lock and no active count may be held.
 *
 * Return: 0, -EFAULT if the sender's memory cannot be read, or what the
 * pool reports.
 */
int kd_msg_write(const struct kd_msg *m, struct kd_slice *slice,
		 const struct kd_buf *meta)
{
	size_t head_al = KD_ALIGN8(m->head_len);
	size_t meta_len = meta ? meta->len : 0;
	size_t meta_al = KD_ALIGN8(meta_len);
	int ret;

	ret = kd_msg_write_head(m, slice, head_al + meta_al,
				head_al + meta_al);
	if (ret)
		return ret;

	if (meta_len) {
		ret = kd_slice_write(slice, head_al, meta->data, meta_len);
		if (!ret && meta_al != meta_len)
			ret = kd_slice_clear(slice, head_al + meta_len,
					     meta_al - meta_len);
		if (ret)
			return ret;
	}

	if (!m->payload_len)
		return 0;
	return kd_msg_write_payload(m, slice, head_al + meta_al);
}

/**
 * kd_msg_take_payload() - copy the payload into the kernel, once
 * @m:		a message from userspace
 *
 * Used when several receivers get the message: each then copies from
 * the kernel buffer, and a fault shows up before anything is queued.
 * No lock may be held.
 *
 * Return: 0, -ENOMEM or -EFAULT.
 */
int kd_msg_take_payload(struct kd_msg *m)
{
	unsigned int i;
	u8 *buf;

	if (m->payload || !m->payload_len)
		return 0;

	buf = kvmalloc(m->payload_len, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;

	for (i = 0; i < m->n_vecs; i++) {
		const struct kd_vec *v = &m->vecs[i];

		if (!v->uaddr) {
			memset(buf + v->at, 0, v->len);
		} else if (copy_from_user(buf + v->at, v->uaddr, v->len)) {
			kvfree(buf);
			return -EFAULT;
		}
	}

	m->payload = buf;
	return 0;
}
