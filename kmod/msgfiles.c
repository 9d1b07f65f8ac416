// SPDX-License-Identifier: GPL-2.0
/*
 * What each receiver keeps of a message once SEND has returned and the
 * kd_msg is freed: the header fields of its queue entry and its own
 * references on the message's files, or, for a synchronous reply that is
 * never queued, the files waiting in the reply slot for the caller.
 *
 * No bus or connection lock is taken here (dropping a slice takes only
 * its pool's leaf lock): an entry is filled before it is committed to a
 * queue, and the files of a synchronous reply belong to one slot.
 */

#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "compat.h"
#include "msg.h"
#include "pool.h"
#include "queue.h"

/*
 * A synchronous reply is never queued, so no RECV installs its files:
 * they wait in the reply slot for the caller's woken SEND, together with
 * a kernel reference on the slice their numbers go into.
 */
struct kd_sync_files {
	struct kd_slice *slice;
	unsigned int n_fds;		/* files[0..n_fds): the FDS item */
	unsigned int n_memfds;		/* then one per memfd item */
	size_t fds_at;
	size_t *memfds_at;
	struct file *files[];
};

/**
 * kd_msg_fill_entry() - describe a message in a receiver's queue entry
 * @m:		the message
 * @e:		an entry from kd_queue_reserve()
 * @len:	the size of its slice's message (RECV's msg_size)
 * @name_id:	the kd_name it was sent to, or 0
 */
void kd_msg_fill_entry(const struct kd_msg *m, struct kd_entry *e,
		       size_t len, u64 name_id)
{
	const struct kdbus_msg *h = m->head;

	e->size = len;
	e->priority = h->priority;
	e->seq = m->seq;
	e->src_id = h->src_id;
	e->cookie = h->cookie;
	e->msg_flags = h->flags;
	e->name_id = name_id;
}

/**
 * kd_msg_entry_files() - give an entry its own references on the files
 * @m:		the message
 * @e:		its receiver's entry
 * @n_fds:	FDS files it gets (0 for a monitor that takes none)
 *
 * Every memfd goes along; all arrays are one block, as queue.h wants.
 *
 * Return: 0 or -ENOMEM.
 */
int kd_msg_entry_files(const struct kd_msg *m, struct kd_entry *e,
		       unsigned int n_fds)
{
	unsigned int n_mem = m->n_memfds, i;
	struct file **files;
	size_t *at;

	if (!n_fds && !n_mem)
		return 0;

	files = kmalloc((n_fds + n_mem) * sizeof(*files) +
			n_mem * sizeof(*at), GFP_KERNEL_ACCOUNT);
	if (!files)
		return -ENOMEM;
	at = (size_t *)(files + n_fds + n_mem);

	for (i = 0; i < n_fds; i++)
		files[i] = get_file(m->fds[i]);
	for (i = 0; i < n_mem; i++)
		files[n_fds + i] = get_file(m->memfds[i]);
	memcpy(at, m->memfds_at, n_mem * sizeof(*at));

	e->fds = files;
	e->n_fds = n_fds;
	e->fds_at = m->fds_at;
	e->memfds = files + n_fds;
	e->memfds_at = at;
	e->n_memfds = n_mem;
	return 0;
}

/**
 * kd_sync_files_new() - the files a synchronous reply hands its caller
 * @m:		the reply
 * @n_fds:	FDS files the caller gets
 *
 * Return: references on them, or NULL without memory.
 */
struct kd_sync_files *kd_sync_files_new(const struct kd_msg *m,
					unsigned int n_fds)
{
	unsigned int n_mem = m->n_memfds, i;
	struct kd_sync_files *f;

	f = kmalloc(struct_size(f, files, n_fds + n_mem) +
		    n_mem * sizeof(size_t), GFP_KERNEL_ACCOUNT);
	if (!f)
		return NULL;
	f->slice = NULL;
	f->n_fds = n_fds;
	f->n_memfds = n_mem;
	f->fds_at = m->fds_at;
	f->memfds_at = (size_t *)&f->files[n_fds + n_mem];
	for (i = 0; i < n_fds; i++)
		f->files[i] = get_file(m->fds[i]);
	for (i = 0; i < n_mem; i++)
		f->files[n_fds + i] = get_file(m->memfds[i]);
	memcpy(f->memfds_at, m->memfds_at, n_mem * sizeof(size_t));
	return f;
}

/**
 * kd_sync_files_hold() - keep the reply's slice until the fds are in it
 * @f:		the files
 * @slice:	the reply's slice; its kernel reference passes to @f
 */
void kd_sync_files_hold(struct kd_sync_files *f, struct kd_slice *slice)
{
	f->slice = slice;
}

/**
 * kd_sync_files_install() - install a synchronous reply's files
 * @f:		the files, with the slice held
 * @ret_flags:	KDBUS_RECV_RETURN_INCOMPLETE_FDS is added here if any
 *		could not be installed
 *
 * Runs in the caller's task, as RECV would, with no lock held: new fds
 * (O_CLOEXEC) whose numbers are patched into the slice.
 */
void kd_sync_files_install(struct kd_sync_files *f, u64 *ret_flags)
{
	unsigned int i;
	size_t at;
	int fd;

	for (i = 0; i < f->n_fds + f->n_memfds; i++) {
		fd = kd_receive_fd(f->files[i], O_CLOEXEC);
		if (fd < 0) {
			*ret_flags |= KDBUS_RECV_RETURN_INCOMPLETE_FDS;
			fd = -1;
		}
		at = i < f->n_fds ? f->fds_at + i * sizeof(int) :
				    f->memfds_at[i - f->n_fds];
		if (kd_slice_write(f->slice, at, &fd, sizeof(fd)))
			*ret_flags |= KDBUS_RECV_RETURN_INCOMPLETE_FDS;
	}
}

/**
 * kd_sync_files_free() - drop the files of a synchronous reply
 * @f:		what kd_sync_files_new() made, or NULL
 */
void kd_sync_files_free(struct kd_sync_files *f)
{
	unsigned int i;

	if (!f)
		return;
	for (i = 0; i < f->n_fds + f->n_memfds; i++)
		fput(f->files[i]);
	if (f->slice)
		kd_slice_drop(f->slice);
	kfree(f);
}
