// SPDX-License-Identifier: GPL-2.0
/*
 * Messages (spec §8).
 *
 * SEND copies the kdbus_msg header and items into the kernel once and
 * validates them ("staging"). Small inline payloads are copied in as well;
 * larger ones stay in the sender's memory, whose pages are pinned, and are
 * copied straight into each receiver's pool. Nothing is read from user
 * memory once bus locks are held. File descriptors and memfds are pinned
 * as files ("gaps") and installed at RECV.
 *
 * The slice written for each receiver is laid out as
 *	kdbus_msg header and the user items (PAYLOAD_VEC turned into
 *	PAYLOAD_OFF, fd numbers set to -1), padded to 8
 *	metadata items for this receiver (8-aligned)
 *	inline payload: the VEC data back to back; a VEC without address
 *	  ("padding vec") contributes (size % 8) zero bytes; padded to 8
 * msg.size covers header, items and metadata; the slice size includes the
 * payload. PAYLOAD_OFF offsets count from the start of the slice, so they
 * are patched per receiver (the metadata size differs).
 */

#include <linux/capability.h>
#include <linux/cgroup.h>
#include <linux/cred.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/init.h>
#include <linux/magic.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/net.h>
#include <linux/sched.h>
#include <linux/shmem_fs.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <net/sock.h>

#include "bus.h"
#include "compat.h"
#include "connection.h"
#include "domain.h"
#include "endpoint.h"
#include "handle.h"
#include "item.h"
#include "limits.h"
#include "match.h"
#include "message.h"
#include "names.h"
#include "policy.h"
#include "pool.h"

static const char kdbus_zeros[8];

static struct kdbus_gaps *kdbus_gaps_new(size_t n_memfds, size_t n_fds)
{
	size_t size_offsets, size_memfds, size_fds, size;
	struct kdbus_gaps *gaps;

	size_offsets = n_memfds * sizeof(*gaps->memfd_offsets);
	size_memfds = n_memfds * sizeof(*gaps->memfd_files);
	size_fds = n_fds * sizeof(*gaps->fd_files);
	size = sizeof(*gaps) + size_offsets + size_memfds + size_fds;

	gaps = kzalloc(size, GFP_KERNEL_ACCOUNT);
	if (!gaps)
		return ERR_PTR(-ENOMEM);

	kref_init(&gaps->kref);
	gaps->n_memfds = 0; /* we reserve n_memfds, but don't enforce them */
	gaps->memfd_offsets = (void *)(gaps + 1);
	gaps->memfd_files = (void *)((u8 *)gaps->memfd_offsets + size_offsets);
	gaps->n_fds = 0; /* we reserve n_fds, but don't enforce them */
	gaps->fd_files = (void *)((u8 *)gaps->memfd_files + size_memfds);

	kdbus_obj_inc(KDBUS_OBJ_GAPS);
	return gaps;
}

static void kdbus_gaps_free(struct kref *kref)
{
	struct kdbus_gaps *gaps = container_of(kref, struct kdbus_gaps, kref);
	size_t i;

	for (i = 0; i < gaps->n_fds; ++i)
		if (gaps->fd_files[i])
			fput(gaps->fd_files[i]);
	for (i = 0; i < gaps->n_memfds; ++i)
		if (gaps->memfd_files[i])
			fput(gaps->memfd_files[i]);

	kdbus_obj_dec(KDBUS_OBJ_GAPS);
	kfree(gaps);
}

/**
 * kdbus_gaps_ref() - gain reference
 * @gaps:	gaps object
 *
 * Return: @gaps is returned
 */
struct kdbus_gaps *kdbus_gaps_ref(struct kdbus_gaps *gaps)
{
	if (gaps)
		kref_get(&gaps->kref);
	return gaps;
}

/**
 * kdbus_gaps_unref() - drop reference
 * @gaps:	gaps object
 *
 * Return: NULL
 */
struct kdbus_gaps *kdbus_gaps_unref(struct kdbus_gaps *gaps)
{
	if (gaps)
		kref_put(&gaps->kref, kdbus_gaps_free);
	return NULL;
}

/**
 * kdbus_gaps_install() - install file-descriptors
 * @gaps:		gaps object, or NULL
 * @slice:		pool slice that contains the message
 * @install_fds:	whether to install the fds of the FDS item
 * @out_incomplete:	output variable to note incomplete fds
 *
 * This function installs the file-descriptors of @gaps into the current
 * process and copies the file-descriptor numbers into the target pool slice.
 * memfds are payload and always installed; the fds of the FDS item only with
 * @install_fds (the receiver accepts fds), otherwise they read -1. A
 * file-descriptor that cannot be installed reads -1 and *@out_incomplete is
 * set.
 *
 * Return: 0 on success, negative error code on failure.
 */
int kdbus_gaps_install(struct kdbus_gaps *gaps, struct kdbus_pool_slice *slice,
		       bool install_fds, bool *out_incomplete)
{
	bool incomplete_fds = false;
	struct kvec kvec;
	size_t i, n_fds;
	int ret = 0, *fds;

	*out_incomplete = false;

	if (!gaps)
		return 0;

	n_fds = gaps->n_fds + gaps->n_memfds;
	if (n_fds < 1)
		return 0;

	fds = kmalloc_array(n_fds, sizeof(*fds), GFP_KERNEL_ACCOUNT);
	if (!fds)
		return -ENOMEM;

	/* receive_fd() runs the LSM file_receive hook and installs */
	for (i = 0; i < gaps->n_fds; ++i) {
		fds[i] = -1;
		if (!install_fds)
			continue;
		fds[i] = kdbus_receive_fd(gaps->fd_files[i], O_CLOEXEC);
		if (fds[i] < 0) {
			fds[i] = -1;
			incomplete_fds = true;
		}
	}

	for (i = 0; i < gaps->n_memfds; ++i) {
		int *fd = &fds[gaps->n_fds + i];

		*fd = kdbus_receive_fd(gaps->memfd_files[i], O_CLOEXEC);
		if (*fd < 0) {
			*fd = -1;
			incomplete_fds = true;
		}
	}

	/* then tell the receiver the numbers (uninstalled FDS stay -1) */
	if (install_fds && gaps->n_fds > 0) {
		kvec.iov_base = fds;
		kvec.iov_len = gaps->n_fds * sizeof(*fds);
		ret = kdbus_pool_slice_copy_kvec(slice, gaps->fd_offset,
						 &kvec, 1, kvec.iov_len);
		if (ret < 0)
			goto exit;
	}

	for (i = 0; i < gaps->n_memfds; ++i) {
		kvec.iov_base = &fds[gaps->n_fds + i];
		kvec.iov_len = sizeof(int);
		ret = kdbus_pool_slice_copy_kvec(slice, gaps->memfd_offsets[i],
						 &kvec, 1, kvec.iov_len);
		if (ret < 0)
			goto exit;
	}

exit:
	/* the receiver cannot learn about them: close them again */
	if (ret < 0)
		for (i = 0; i < n_fds; ++i)
			if (fds[i] >= 0)
				close_fd(fds[i]);

	kfree(fds);
	*out_incomplete = incomplete_fds;
	return ret;
}

static struct file *kdbus_get_fd(int fd)
{
	struct file *f, *ret;
	struct inode *inode;
	struct socket *sock;

	if (fd < 0)
		return ERR_PTR(-EBADF);

	/* O_PATH descriptors may be passed */
	f = fget_raw(fd);
	if (!f)
		return ERR_PTR(-EBADF);

	inode = file_inode(f);
	sock = S_ISSOCK(inode->i_mode) ? sock_from_file(f) : NULL;

	/*
	 * kdbus has no garbage collector for descriptors in flight: passing
	 * kdbus handles or unix sockets could build reference cycles that
	 * are never freed.
	 */
	if (kdbus_handle_is_kdbus(f))
		ret = ERR_PTR(-EOPNOTSUPP);
	else if (sock && sock->sk && sock->sk->sk_family == AF_UNIX)
		ret = ERR_PTR(-EOPNOTSUPP);
	else
		ret = f;

	if (IS_ERR(ret))
		fput(f);
	return ret;
}

static struct file *kdbus_get_memfd(const struct kdbus_memfd *memfd)
{
	const int m = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
	struct file *f, *ret;
	struct inode *inode;
	unsigned int seals;

	f = fget(memfd->fd);
	if (!f)
		return ERR_PTR(-EBADF);

	inode = file_inode(f);

	/* only shmem memfds; hugetlbfs keeps its seals elsewhere */
	if (!IS_ENABLED(CONFIG_SHMEM) || !S_ISREG(inode->i_mode) ||
	    inode->i_sb->s_magic != TMPFS_MAGIC) {
		ret = ERR_PTR(-EMEDIUMTYPE);
		goto exit;
	}

	seals = READ_ONCE(SHMEM_I(inode)->seals);
	if ((seals & m) != m) {
		ret = ERR_PTR(-ETXTBSY);
		goto exit;
	}

	if (memfd->start + memfd->size > (u64)i_size_read(inode)) {
		ret = ERR_PTR(-EFAULT);
		goto exit;
	}

	return f;

exit:
	fput(f);
	return ret;
}

static int kdbus_msg_examine(struct kdbus_msg *msg, struct kdbus_bus *bus,
			     struct kdbus_cmd_send *cmd, size_t *out_n_memfds,
			     size_t *out_n_fds, size_t *out_n_parts,
			     size_t *out_n_offs)
{
	struct kdbus_item *item, *fds = NULL, *bloom = NULL, *dstname = NULL;
	u64 n_parts, n_memfds, n_fds, n_offs, vec_size;

	/*
	 * Step 1:
	 * Validate the message and command parameters.
	 */

	/* KDBUS_PAYLOAD_KERNEL is reserved to kernel messages */
	if (msg->payload_type == KDBUS_PAYLOAD_KERNEL)
		return -EINVAL;

	if (msg->dst_id == KDBUS_DST_ID_BROADCAST) {
		/* broadcasts must be marked as signals */
		if (!(msg->flags & KDBUS_MSG_SIGNAL))
			return -EBADMSG;
		/* broadcasts cannot have timeouts */
		if (msg->timeout_ns > 0)
			return -ENOTUNIQ;
	}

	if (msg->flags & KDBUS_MSG_EXPECT_REPLY) {
		/* if you expect a reply, you must specify a timeout */
		if (msg->timeout_ns == 0)
			return -EINVAL;
		/* signals cannot have replies */
		if (msg->flags & KDBUS_MSG_SIGNAL)
			return -ENOTUNIQ;
	} else {
		/* must expect reply if sent as synchronous call */
		if (cmd->flags & KDBUS_SEND_SYNC_REPLY)
			return -EINVAL;
		/* cannot mark replies as signal */
		if (msg->cookie_reply && (msg->flags & KDBUS_MSG_SIGNAL))
			return -EINVAL;
	}

	/*
	 * Step 2:
	 * Validate all passed items. While at it, select some statistics that
	 * are required to allocate state objects later on.
	 *
	 * Generic item validation has already been done via
	 * kdbus_item_validate(). Furthermore, the number of items is naturally
	 * limited by the maximum message size. Hence, only non-generic item
	 * checks are performed here (mainly integer overflow tests).
	 */

	n_parts = 0;
	n_memfds = 0;
	n_fds = 0;
	n_offs = 0;
	vec_size = 0;

	KDBUS_ITEMS_FOREACH(item, msg->items, KDBUS_ITEMS_SIZE(msg, items)) {
		switch (item->type) {
		case KDBUS_ITEM_NEGOTIATE:
			break;

		case KDBUS_ITEM_PAYLOAD_VEC: {
			void __user *ptr = KDBUS_PTR(item->vec.address);
			u64 size = item->vec.size;

			if (vec_size + size < vec_size)
				return -EMSGSIZE;
			if (vec_size + size > KDBUS_MSG_MAX_PAYLOAD_VEC_SIZE)
				return -EMSGSIZE;
			if (ptr && unlikely(!access_ok(ptr, size)))
				return -EFAULT;

			vec_size += size;
			if (ptr) {
				++n_parts;
				++n_offs;
			} else if (size % 8) {
				/* padding */
				++n_parts;
			}
			break;
		}

		case KDBUS_ITEM_PAYLOAD_MEMFD: {
			u64 start = item->memfd.start;
			u64 size = item->memfd.size;

			if (start + size < start)
				return -EMSGSIZE;
			if (n_memfds >= KDBUS_MSG_MAX_MEMFD_ITEMS)
				return -E2BIG;

			++n_memfds;
			break;
		}

		case KDBUS_ITEM_FDS: {
			if (fds)
				return -EEXIST;

			fds = item;
			n_fds = KDBUS_ITEM_PAYLOAD_SIZE(item) / sizeof(int);
			if (n_fds > KDBUS_CONN_MAX_FDS_PER_USER)
				return -EMFILE;

			break;
		}

		case KDBUS_ITEM_BLOOM_FILTER: {
			u64 bloom_size;

			if (bloom)
				return -EEXIST;

			bloom = item;
			bloom_size = KDBUS_ITEM_PAYLOAD_SIZE(item) -
				     offsetof(struct kdbus_bloom_filter, data);
			if (!KDBUS_IS_ALIGNED8(bloom_size))
				return -EFAULT;
			if (bloom_size != bus->bloom.size)
				return -EDOM;

			break;
		}

		case KDBUS_ITEM_DST_NAME: {
			if (dstname)
				return -EEXIST;

			dstname = item;
			if (!kdbus_name_is_valid(item->str, false))
				return -EINVAL;
			if (msg->dst_id == KDBUS_DST_ID_BROADCAST)
				return -EBADMSG;

			break;
		}

		default:
			return -EINVAL;
		}
	}

	/*
	 * Step 3:
	 * Validate that required items were actually passed, and that no item
	 * contradicts the message flags.
	 */

	/* bloom filters must be attached _iff_ it's a signal */
	if (!(msg->flags & KDBUS_MSG_SIGNAL) != !bloom)
		return -EBADMSG;
	/* destination name is required if no ID is given */
	if (msg->dst_id == KDBUS_DST_ID_NAME && !dstname)
		return -EDESTADDRREQ;
	/* cannot send file-descriptors attached to broadcasts */
	if (msg->dst_id == KDBUS_DST_ID_BROADCAST && fds)
		return -ENOTUNIQ;

	*out_n_memfds = n_memfds;
	*out_n_fds = n_fds;
	*out_n_parts = n_parts;
	*out_n_offs = n_offs;

	return 0;
}

/* inline payloads up to this size are copied into the kernel at SEND */
#define KDBUS_STAGING_BOUNCE_MAX	1024

/*
 * Pin the sender's pages of every data part. Faults (and whatever they
 * wait for: swap, a FUSE server, userfaultfd) happen here, before any bus
 * lock is taken; the copies into the receivers' pools later read the
 * pinned pages.
 */
static int kdbus_staging_pin(struct kdbus_staging *staging)
{
	unsigned int i, total = 0, pos = 0;
	int n;

	for (i = 0; i < staging->n_parts; i++) {
		const struct kdbus_staging_part *part = &staging->parts[i];
		unsigned long start = (unsigned long)part->uptr;

		if (part->uptr)
			total += DIV_ROUND_UP(offset_in_page(start) + part->len,
					      PAGE_SIZE);
	}

	staging->pages = kvmalloc_array(total, sizeof(*staging->pages),
					GFP_KERNEL);
	staging->bvecs = kvmalloc_array(total, sizeof(*staging->bvecs),
					GFP_KERNEL);
	if (!staging->pages || !staging->bvecs)
		return -ENOMEM;

	for (i = 0; i < staging->n_parts; i++) {
		struct kdbus_staging_part *part = &staging->parts[i];
		unsigned long start = (unsigned long)part->uptr;
		size_t left = part->len, off = offset_in_page(start);
		unsigned int j, npages;

		if (!part->uptr)
			continue;

		npages = DIV_ROUND_UP(off + part->len, PAGE_SIZE);
		n = pin_user_pages_fast(start & PAGE_MASK, npages, 0,
					staging->pages + staging->nr_pages);
		if (n > 0)
			staging->nr_pages += n;
		if (n != npages)
			return n < 0 ? n : -EFAULT;

		part->bvec = staging->bvecs + pos;
		part->nr_bvec = npages;
		for (j = 0; j < npages; j++) {
			size_t len = min_t(size_t, PAGE_SIZE - off, left);

			staging->bvecs[pos].bv_page =
					staging->pages[pos];
			staging->bvecs[pos].bv_offset = off;
			staging->bvecs[pos].bv_len = len;
			left -= len;
			off = 0;
			pos++;
		}
	}

	return 0;
}

static int kdbus_staging_bounce(struct kdbus_staging *staging)
{
	size_t i, off = 0;
	u8 *buf;

	buf = kmalloc(staging->payload_size, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;

	for (i = 0; i < staging->n_parts; i++) {
		const struct kdbus_staging_part *part = &staging->parts[i];

		if (!part->uptr)
			memset(buf + off, 0, part->len);
		else if (copy_from_user(buf + off, part->uptr, part->len)) {
			kfree(buf);
			return -EFAULT;
		}
		off += part->len;
	}

	staging->payload = buf;
	return 0;
}

static int kdbus_staging_import(struct kdbus_staging *staging)
{
	struct kdbus_msg *msg = staging->msg;
	struct kdbus_gaps *gaps = staging->gaps;
	struct kdbus_item *it;
	u64 payload = 0;

	KDBUS_ITEMS_FOREACH(it, msg->items, KDBUS_ITEMS_SIZE(msg, items)) {
		switch (it->type) {
		case KDBUS_ITEM_PAYLOAD_VEC: {
			const void __user *ptr = KDBUS_PTR(it->vec.address);
			struct kdbus_staging_part *part;
			u64 size = it->vec.size;

			it->type = KDBUS_ITEM_PAYLOAD_OFF;
			if (ptr) {
				part = &staging->parts[staging->n_parts++];
				part->uptr = ptr;
				part->len = size;

				staging->offs[staging->n_offs].item = it;
				staging->offs[staging->n_offs].off = payload;
				staging->n_offs++;

				it->vec.offset = payload;
				payload += size;
			} else {
				/* a padding vec aligns the next segment */
				it->vec.offset = ~0ULL;
				if (size % 8) {
					part = &staging->parts[staging->n_parts++];
					part->uptr = NULL;
					part->len = size % 8;
					payload += size % 8;
				}
			}
			break;
		}

		case KDBUS_ITEM_PAYLOAD_MEMFD: {
			struct file *f;

			f = kdbus_get_memfd(&it->memfd);
			if (IS_ERR(f))
				return PTR_ERR(f);

			gaps->memfd_files[gaps->n_memfds] = f;
			gaps->memfd_offsets[gaps->n_memfds] =
					(u8 *)&it->memfd.fd - (u8 *)msg;
			++gaps->n_memfds;

			/* the number is filled in at RECV */
			it->memfd.fd = -1;
			break;
		}

		case KDBUS_ITEM_FDS: {
			size_t i, n_fds;

			/* an empty fd array passes nothing */
			n_fds = KDBUS_ITEM_PAYLOAD_SIZE(it) / sizeof(int);
			if (n_fds == 0)
				break;

			for (i = 0; i < n_fds; ++i) {
				struct file *f;

				f = kdbus_get_fd(it->fds[i]);
				if (IS_ERR(f))
					return PTR_ERR(f);

				gaps->fd_files[gaps->n_fds++] = f;
				it->fds[i] = -1;
			}

			gaps->fd_offset = (u8 *)it->fds - (u8 *)msg;
			break;
		}

		case KDBUS_ITEM_BLOOM_FILTER:
			staging->bloom_filter = &it->bloom_filter;
			break;

		case KDBUS_ITEM_DST_NAME:
			staging->dst_name = it->str;
			break;
		}
	}

	staging->payload_size = payload;

	/*
	 * Small payloads are copied in once here: every receiver then gets
	 * the whole message in one write, usually into a single page.
	 */
	if (payload > 0 && payload <= KDBUS_STAGING_BOUNCE_MAX)
		return kdbus_staging_bounce(staging);
	if (payload > 0)
		return kdbus_staging_pin(staging);

	return 0;
}

/**
 * kdbus_staging_new_kernel() - create staging object for kernel message
 * @bus:		bus the notification is queued on
 * @dst:		destination ID
 * @cookie_timeout:	cookie_reply of the message
 * @it_size:		size of the payload of the notification item
 * @it_type:		type of the notification item
 *
 * The caller fills the payload of staging->notify.
 *
 * Return: New kernel staging object, ERR_PTR on failure.
 */
struct kdbus_staging *kdbus_staging_new_kernel(struct kdbus_bus *bus,
					       u64 dst, u64 cookie_timeout,
					       size_t it_size, u64 it_type)
{
	struct kdbus_staging *staging;
	size_t size;

	size = offsetof(struct kdbus_msg, items) +
	       KDBUS_ITEM_HEADER_SIZE + it_size;

	staging = kzalloc(sizeof(*staging), GFP_KERNEL);
	if (!staging)
		return ERR_PTR(-ENOMEM);

	staging->msg = kzalloc(KDBUS_ALIGN8(size), GFP_KERNEL);
	if (!staging->msg) {
		kfree(staging);
		return ERR_PTR(-ENOMEM);
	}

	kdbus_obj_inc(KDBUS_OBJ_STAGING);
	INIT_LIST_HEAD(&staging->notify_entry);
	kdbus_meta_conn_init(&staging->meta_conn);
	staging->msg_owned = true;
	staging->msg_size = size;
	staging->msg_seqnum = atomic64_inc_return(&bus->last_message_id);

	staging->msg->size = size;
	staging->msg->flags = (dst == KDBUS_DST_ID_BROADCAST) ?
							KDBUS_MSG_SIGNAL : 0;
	staging->msg->dst_id = dst;
	staging->msg->src_id = KDBUS_SRC_ID_KERNEL;
	staging->msg->payload_type = KDBUS_PAYLOAD_KERNEL;
	staging->msg->cookie_reply = cookie_timeout;
	staging->notify = staging->msg->items;
	staging->notify->size = KDBUS_ITEM_HEADER_SIZE + it_size;
	staging->notify->type = it_type;

	/* notifications carry a timestamp only */
	kdbus_meta_conn_collect(&staging->meta_conn, NULL,
				staging->msg_seqnum, KDBUS_ATTACH_TIMESTAMP);

	return staging;
}

/**
 * kdbus_staging_new_user() - create staging object for user message
 * @bus:		bus of the message
 * @conn:		sending connection
 * @cmd:		triggering command
 * @msg:		user-supplied message (kernel copy, owned by the caller)
 *
 * This allocates a new staging object and imports the user-supplied message
 * @msg. The staging keeps pointers into @msg; the caller must keep it
 * alive until the staging is freed.
 *
 * Return: Pointer to new staging object, ERR_PTR on failure.
 */
struct kdbus_staging *kdbus_staging_new_user(struct kdbus_bus *bus,
					     struct kdbus_conn *conn,
					     struct kdbus_cmd_send *cmd,
					     struct kdbus_msg *msg)
{
	struct kdbus_staging *staging;
	size_t n_memfds, n_fds, n_parts, n_offs;
	int ret;

	ret = kdbus_msg_examine(msg, bus, cmd, &n_memfds, &n_fds, &n_parts,
				&n_offs);
	if (ret < 0)
		return ERR_PTR(ret);

	staging = kzalloc(sizeof(*staging) +
			  n_parts * sizeof(*staging->parts) +
			  n_offs * sizeof(*staging->offs), GFP_KERNEL);
	if (!staging)
		return ERR_PTR(-ENOMEM);

	kdbus_obj_inc(KDBUS_OBJ_STAGING);
	INIT_LIST_HEAD(&staging->notify_entry);
	kdbus_meta_conn_init(&staging->meta_conn);
	staging->parts = (void *)(staging + 1);
	staging->offs = (void *)(staging->parts + n_parts);
	staging->msg = msg;
	staging->msg_size = msg->size;

	if (n_memfds || n_fds) {
		staging->gaps = kdbus_gaps_new(n_memfds, n_fds);
		if (IS_ERR(staging->gaps)) {
			ret = PTR_ERR(staging->gaps);
			staging->gaps = NULL;
			goto error;
		}
	}

	ret = kdbus_staging_import(staging);
	if (ret < 0)
		goto error;

	/* a connection with faked credentials sends no process metadata */
	staging->no_proc_meta = !!conn->meta_fake;

	/*
	 * The command line is read from the sender's memory: do it now,
	 * before any bus lock is taken, if the sender offers it at all (the
	 * other items are collected lazily, only for receivers that ask).
	 */
	if (!staging->no_proc_meta &&
	    (atomic64_read(&conn->attach_flags_send) & KDBUS_ATTACH_CMDLINE)) {
		staging->meta_proc = kdbus_meta_proc_new();
		if (IS_ERR(staging->meta_proc)) {
			ret = PTR_ERR(staging->meta_proc);
			staging->meta_proc = NULL;
			goto error;
		}

		ret = kdbus_meta_proc_collect(staging->meta_proc,
					      KDBUS_ATTACH_CMDLINE);
		if (ret < 0)
			goto error;
	}

	staging->msg_seqnum = atomic64_inc_return(&bus->last_message_id);
	return staging;

error:
	kdbus_staging_free(staging);
	return ERR_PTR(ret);
}

/**
 * kdbus_staging_free() - free staging object
 * @staging:		staging object to free, or NULL
 *
 * Return: NULL
 */
struct kdbus_staging *kdbus_staging_free(struct kdbus_staging *staging)
{
	if (!staging)
		return NULL;

	kdbus_meta_conn_destroy(&staging->meta_conn);
	kdbus_meta_proc_unref(staging->meta_proc);
	kfree(staging->payload);
	if (staging->nr_pages)
		unpin_user_pages(staging->pages, staging->nr_pages);
	kvfree(staging->pages);
	kvfree(staging->bvecs);
	kdbus_gaps_unref(staging->gaps);
	if (staging->msg_owned)
		kfree(staging->msg);
	kdbus_obj_dec(KDBUS_OBJ_STAGING);
	kfree(staging);

	return NULL;
}

/**
 * kdbus_staging_collect() - collect the metadata a receiver needs
 * @staging:		staged message
 * @src:		sending connection (NULL for kernel messages)
 * @dst:		receiving connection
 *
 * Collects (once per message) the metadata items @dst will get. Process
 * metadata comes from the current task, so this must run in the sender's
 * context; owned names are read under the name registry lock, which the
 * caller holds. No connection lock may be held.
 *
 * Return: 0 on success, negative error code on failure.
 */
int kdbus_staging_collect(struct kdbus_staging *staging,
			  struct kdbus_conn *src, struct kdbus_conn *dst)
{
	u64 mask;
	int ret;

	if (!src)
		return 0;

	mask = kdbus_meta_msg_mask(src, dst);

	/* process metadata is allocated only if a receiver wants some */
	if ((mask & KDBUS_ATTACH_PROC) && !staging->no_proc_meta) {
		if (!staging->meta_proc) {
			staging->meta_proc = kdbus_meta_proc_new();
			if (IS_ERR(staging->meta_proc)) {
				ret = PTR_ERR(staging->meta_proc);
				staging->meta_proc = NULL;
				return ret;
			}
		}

		/* the command line was taken (or not) at staging time */
		ret = kdbus_meta_proc_collect(staging->meta_proc,
					      mask & ~KDBUS_ATTACH_CMDLINE);
		if (ret < 0)
			return ret;
	}

	return kdbus_meta_conn_collect(&staging->meta_conn, src,
				       staging->msg_seqnum, mask);
}

/**
 * kdbus_staging_render() - prepare a staged message for one receiver
 * @staging:		staged message
 * @src:		sending connection (NULL for kernel messages)
 * @dst:		receiving connection
 * @r:			output: metadata and sizes for @dst
 *
 * Return: 0 on success, negative error code on failure.
 */
int kdbus_staging_render(struct kdbus_staging *staging,
			 struct kdbus_conn *src, struct kdbus_conn *dst,
			 struct kdbus_staging_render *r)
{
	int ret;

	memset(r, 0, sizeof(*r));

	ret = kdbus_meta_emit(staging->meta_proc, NULL, &staging->meta_conn,
			      dst, kdbus_meta_msg_mask(src, dst),
			      &r->meta, &r->meta_size);
	if (ret < 0)
		return ret;

	r->hdr_size = KDBUS_ALIGN8(staging->msg_size) + r->meta_size;
	r->size = r->hdr_size + KDBUS_ALIGN8(staging->payload_size);
	return 0;
}

/**
 * kdbus_staging_render_free() - release a rendering
 * @r:			rendering of kdbus_staging_render()
 */
void kdbus_staging_render_free(struct kdbus_staging_render *r)
{
	kfree(r->meta);
	r->meta = NULL;
}

/**
 * kdbus_staging_write() - write a staged message into a receiver's slice
 * @staging:		staged message
 * @r:			rendering for the receiver
 * @slice:		slice of r->size bytes in the receiver's pool
 *
 * Return: 0 on success, -EFAULT if the sender's payload is not readable,
 *	   other negative error codes.
 */
int kdbus_staging_write(struct kdbus_staging *staging,
			struct kdbus_staging_render *r,
			struct kdbus_pool_slice *slice)
{
	struct kvec kvec[6];
	u64 size = 0;
	size_t i, cnt = 0, off;
	int ret;

	/* patch the receiver-specific fields */
	staging->msg->size = r->hdr_size;
	for (i = 0; i < staging->n_offs; i++)
		staging->offs[i].item->vec.offset = r->hdr_size +
						    staging->offs[i].off;

	kdbus_kvec_set(&kvec[cnt++], staging->msg, staging->msg_size, &size);
	cnt += !!kdbus_kvec_pad(&kvec[cnt], &size);
	if (r->meta_size)
		kdbus_kvec_set(&kvec[cnt++], r->meta, r->meta_size, &size);

	/* a payload copied in at SEND goes with the header, in one write */
	if (staging->payload) {
		kdbus_kvec_set(&kvec[cnt++], staging->payload,
			       staging->payload_size, &size);
		cnt += !!kdbus_kvec_pad(&kvec[cnt], &size);
		return kdbus_pool_slice_copy_kvec(slice, 0, kvec, cnt, size);
	}

	ret = kdbus_pool_slice_copy_kvec(slice, 0, kvec, cnt, size);
	if (ret < 0)
		return ret;

	/* the inline payload: user memory and zeros, then padding */
	off = r->hdr_size;
	for (i = 0; i < staging->n_parts; i++) {
		const struct kdbus_staging_part *part = &staging->parts[i];

		if (part->uptr) {
			ret = kdbus_pool_slice_copy_bvec(slice, off, part->bvec,
							 part->nr_bvec,
							 part->len);
		} else {
			kvec[0].iov_base = (void *)kdbus_zeros;
			kvec[0].iov_len = part->len;
			ret = kdbus_pool_slice_copy_kvec(slice, off, kvec, 1,
							 part->len);
		}
		if (ret < 0)
			return ret;

		off += part->len;
	}

	if (r->size > off) {
		kvec[0].iov_base = (void *)kdbus_zeros;
		kvec[0].iov_len = r->size - off;
		ret = kdbus_pool_slice_copy_kvec(slice, off, kvec, 1,
						 r->size - off);
		if (ret < 0)
			return ret;
	}

	return 0;
}
