/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Messages: a sent message is "staged" once and rendered into the pool of
 * every receiver.
 */

#ifndef __KDBUS_MESSAGE_H
#define __KDBUS_MESSAGE_H

#include <linux/bvec.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/kdbus.h>

#include "metadata.h"

struct kdbus_bus;
struct kdbus_conn;
struct kdbus_pool_slice;

/**
 * struct kdbus_gaps - gaps in message to be filled later
 * @kref:		Reference counter
 * @n_memfds:		Number of memfds
 * @memfd_offsets:	Offsets of kdbus_memfd.fd fields inside the message
 * @memfd_files:	Files of the memfds
 * @n_fds:		Number of fds
 * @fd_files:		Array of sent files
 * @fd_offset:		Offset of the fd array inside the message
 *
 * The file descriptors of a message are installed into the receiving task
 * at RECV; their numbers are then written into these places of the slice.
 */
struct kdbus_gaps {
	struct kref kref;

	size_t n_memfds;
	u64 *memfd_offsets;
	struct file **memfd_files;

	size_t n_fds;
	struct file **fd_files;
	u64 fd_offset;
};

struct kdbus_gaps *kdbus_gaps_ref(struct kdbus_gaps *gaps);
struct kdbus_gaps *kdbus_gaps_unref(struct kdbus_gaps *gaps);
int kdbus_gaps_install(struct kdbus_gaps *gaps, struct kdbus_pool_slice *slice,
		       bool *out_incomplete);

/*
 * A piece of inline payload: user memory, or zeros if @uptr is NULL. The
 * user pages are pinned at SEND (@bvec) so that no copy from the sender's
 * memory happens while bus locks are held.
 */
struct kdbus_staging_part {
	const void __user *uptr;
	size_t len;
	struct bio_vec *bvec;
	unsigned int nr_bvec;
};

/* a PAYLOAD_OFF item and its offset relative to the payload start */
struct kdbus_staging_off {
	struct kdbus_item *item;
	u64 off;
};

/**
 * struct kdbus_staging - staging area to import messages
 * @msg:		User-supplied message (kernel copy, items transformed)
 * @msg_owned:		@msg was allocated by the staging (kernel messages)
 * @msg_size:		Size of @msg as given (header and items)
 * @msg_seqnum:		Sequence number of this message (per bus)
 * @notify_entry:	Entry into list of kernel-generated notifications
 * @notify:		The notification item of a kernel message
 * @bloom_filter:	Pointer to the bloom-item in @msg, or NULL
 * @dst_name:		Pointer to the dst-name-item in @msg, or NULL
 * @n_parts:		Number of inline payload parts
 * @parts:		Inline payload parts, in order
 * @payload_size:	Total inline payload size (without final padding)
 * @n_offs:		Number of PAYLOAD_OFF items with data
 * @offs:		PAYLOAD_OFF items to patch per receiver
 * @payload:		Kernel copy of a small inline payload, or NULL
 * @pages:		Pinned pages of a larger inline payload
 * @nr_pages:		Number of @pages
 * @bvecs:		The parts' views of @pages
 * @gaps:		Gaps for fds and memfds, or NULL
 * @meta_proc:		Process metadata of the sender, NULL until needed
 * @no_proc_meta:	The sender faked its metadata: it sends no process
 *			metadata at all
 * @meta_conn:		Connection metadata of the sender
 */
struct kdbus_staging {
	struct kdbus_msg *msg;
	bool msg_owned;
	size_t msg_size;
	u64 msg_seqnum;

	struct list_head notify_entry;
	struct kdbus_item *notify;

	const struct kdbus_bloom_filter *bloom_filter;
	const char *dst_name;

	size_t n_parts;
	struct kdbus_staging_part *parts;
	size_t payload_size;

	size_t n_offs;
	struct kdbus_staging_off *offs;

	u8 *payload;
	struct page **pages;
	unsigned int nr_pages;
	struct bio_vec *bvecs;

	struct kdbus_gaps *gaps;
	struct kdbus_meta_proc *meta_proc;
	bool no_proc_meta;
	struct kdbus_meta_conn meta_conn;
};

/**
 * struct kdbus_staging_render - a staged message rendered for one receiver
 * @meta:		Metadata items for the receiver
 * @meta_size:		Size of @meta
 * @hdr_size:		Size of header, items and metadata (= msg.size)
 * @size:		Size of the whole slice, payload included
 */
struct kdbus_staging_render {
	struct kdbus_item *meta;
	size_t meta_size;
	size_t hdr_size;
	size_t size;
};

struct kdbus_staging *kdbus_staging_new_kernel(struct kdbus_bus *bus,
					       u64 dst, u64 cookie_timeout,
					       size_t it_size, u64 it_type);
struct kdbus_staging *kdbus_staging_new_user(struct kdbus_bus *bus,
					     struct kdbus_conn *conn,
					     struct kdbus_cmd_send *cmd,
					     struct kdbus_msg *msg);
struct kdbus_staging *kdbus_staging_free(struct kdbus_staging *staging);

int kdbus_staging_collect(struct kdbus_staging *staging,
			  struct kdbus_conn *src, struct kdbus_conn *dst);
int kdbus_staging_render(struct kdbus_staging *staging,
			 struct kdbus_conn *src, struct kdbus_conn *dst,
			 struct kdbus_staging_render *r);
int kdbus_staging_write(struct kdbus_staging *staging,
			struct kdbus_staging_render *r,
			struct kdbus_pool_slice *slice);
void kdbus_staging_render_free(struct kdbus_staging_render *r);

#endif
