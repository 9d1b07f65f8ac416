/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The rules every ioctl argument follows (spec 1, 5, 6, 7): a size-prefixed
 * blob copied in once, its flags and items checked against a table of what
 * the command accepts, negotiation answered, and return_flags written back
 * whatever the outcome.
 */
#ifndef KD_CMD_H
#define KD_CMD_H

#include "kd.h"
#include "item.h"

/*
 * Item types as bits of a u64: user items 1..16 keep their number,
 * metadata items 0x1000+n become bit 20+n, POLICY_ACCESS bit 36 and the
 * kernel items 0x8000+n bit 40+n. Unknown types map to bit 0, which no
 * command accepts.
 */
unsigned int kd_item_bit(u64 type);
#define KD_I(type)	BIT_ULL(kd_item_bit_const(type))
#define kd_item_bit_const(t)						\
	((t) >= KDBUS_ITEM_NAME_ADD ? 40 + ((t) - KDBUS_ITEM_NAME_ADD) :	\
	 (t) == KDBUS_ITEM_POLICY_ACCESS ? 36 :				\
	 (t) >= _KDBUS_ITEM_ATTACH_BASE ? 20 + ((t) - _KDBUS_ITEM_ATTACH_BASE) : \
	 (t))

/* what one command accepts */
struct kd_cmd_rules {
	size_t fixed;		/* size of the command struct */
	u64 flags;		/* accepted flags, KDBUS_FLAG_NEGOTIATE implied */
	u64 items;		/* KD_I() of accepted items, NEGOTIATE implied */
	u64 multi;		/* items that may appear more than once */
	u64 needed;		/* items that must appear */
	bool is_msg;		/* a struct kdbus_msg: no return_flags */
};

/*
 * One command argument, copied in. Every command struct starts with size,
 * flags and return_flags, so @cmd views the common head of any of them.
 *
 * Declared __uninitialized: kd_args_get() sets every field and only the
 * copied-in bytes of @onstack are read, whereas the compiler's stack
 * zeroing (CONFIG_INIT_STACK_ALL_ZERO, as Debian builds its kernels) would
 * clear all of @onstack on every command.
 */
struct kd_args {
	void __user *uptr;
	const struct kd_cmd_rules *rules;	/* set by kd_args_get() */
	union {
		void *buf;
		struct kdbus_cmd *cmd;
	};
	size_t size;
	const struct kdbus_item *items;
	size_t items_len;
	u64 seen;		/* KD_I() of the items present */
	u8 onstack[KD_CMD_ONSTACK] __aligned(8);
};

/*
 * kd_args_get() returns 0 to run the command, 1 when the call only
 * negotiated (the answer is already in user memory) and a negative errno
 * otherwise. Whatever it returned, kd_args_put() must follow: it writes
 * return_flags back, frees the copy and returns @ret, or -EFAULT when the
 * write-back of a successful command failed.
 */
int kd_args_get(struct kd_args *a, const struct kd_cmd_rules *r,
		void __user *uptr);
int kd_args_put(struct kd_args *a, int ret);
int kd_args_copy_out(struct kd_args *a, size_t off, size_t len);
const struct kdbus_item *kd_args_item(const struct kd_args *a, u64 type);

#endif /* KD_CMD_H */
