/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A message on its way: the sender's kdbus_msg checked and turned, once,
 * into what every receiver's slice will hold, plus the files it carries.
 * Freed when SEND returns; receivers keep only their slice and files.
 */
#ifndef KD_MSG_H
#define KD_MSG_H

#include "kd.h"
#include "meta.h"

struct kd_args;

struct kd_vec {
	const void __user *uaddr;	/* NULL: a padding vec */
	size_t len;			/* bytes it adds to the payload */
	size_t at;			/* offset in the payload */
};

struct kd_msg {
	struct kd_bus *bus;
	struct kd_conn *src;		/* NULL for kernel notifications */
	const struct kdbus_msg *umsg;	/* the sender's copy, items included */

	/*
	 * @head is the kdbus_msg and its items as receivers get them
	 * (PAYLOAD_VEC rewritten to PAYLOAD_OFF), padded to 8; head->size
	 * is patched per receiver. @off_at lists the byte offsets in @head
	 * of every PAYLOAD_OFF offset field that is relative to the payload
	 * and needs the receiver's payload start added.
	 */
	struct kdbus_msg *head;
	size_t head_len;
	size_t *off_at;
	unsigned int n_off;

	struct kd_vec *vecs;
	unsigned int n_vecs;
	size_t payload_len;		/* zero runs of padding vecs included */
	void *payload;			/* kernel copy, or NULL: copy from user */

	struct file **fds;
	unsigned int n_fds;
	size_t fds_at;			/* offset of the FDS int[] in @head */
	struct file **memfds;
	size_t *memfds_at;		/* offsets of kdbus_memfd.fd in @head */
	unsigned int n_memfds;

	const struct kdbus_bloom_filter *bloom;
	size_t bloom_len;		/* bytes of bloom->data */
	const char *dst_name;
	struct file *cancel;		/* SEND's CANCEL_FD, sync calls only */

	/* kernel notifications: the one item they carry */
	u64 notify_type;
	const void *notify;		/* its payload, inside @head */

	u64 seq;
	struct kd_msg_meta meta;
	bool in_room;			/* built in the sender's kd_msg_room */
};

/*
 * Room on the sender's stack for the message of a SEND: a message of a
 * call or a reply with a small header fits, so the common SEND allocates
 * nothing for it. The message lives only as long as the command.
 */
#define KD_MSG_ROOM	640
struct kd_msg_room {
	u8 bytes[KD_MSG_ROOM] __aligned(8);
};

/*
 * Returns 0 with *out set (in @room if it fits, else allocated), 1 if the
 * message only negotiated (*out NULL; the answer is in user memory), or a
 * negative errno.
 */
int kd_msg_from_user(struct kd_conn *src, struct kd_args *send,
		     struct kd_msg_room *room, struct kd_msg **out);
struct kd_msg *kd_msg_kernel(struct kd_bus *bus, u64 dst_id, u64 cookie_reply,
			     u64 type, const void *payload, size_t len);
void kd_msg_free(struct kd_msg *m);

/* the size of the slice @m needs with @meta_len bytes of metadata items */
size_t kd_msg_slice_len(const struct kd_msg *m, size_t meta_len);
/* writes @m with its metadata into @slice; user memory may be read */
int kd_msg_write(const struct kd_msg *m, struct kd_slice *slice,
		 const struct kd_buf *meta);
/* copy the payload from user memory into m->payload (broadcasts) */
int kd_msg_take_payload(struct kd_msg *m);

/* a receiver's queue entry: header fields, and its own file references */
struct kd_entry;
void kd_msg_fill_entry(const struct kd_msg *m, struct kd_entry *e,
		       size_t len, u64 name_id);
int kd_msg_entry_files(const struct kd_msg *m, struct kd_entry *e,
		       unsigned int n_fds);

/*
 * The files of a synchronous reply, kept in its slot (struct
 * kd_reply.files) with a reference on the slice until the woken caller
 * installs them; kd_sync_files_free() drops all of it.
 */
struct kd_sync_files;
struct kd_sync_files *kd_sync_files_new(const struct kd_msg *m,
					unsigned int n_fds);
void kd_sync_files_hold(struct kd_sync_files *f, struct kd_slice *slice);
void kd_sync_files_install(struct kd_sync_files *f, u64 *ret_flags);
void kd_sync_files_free(struct kd_sync_files *f);

#endif /* KD_MSG_H */
