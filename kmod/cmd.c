// SPDX-License-Identifier: GPL-2.0
/*
 * Taking an ioctl argument in: one copy of the size-prefixed blob, then
 * its flags and items are held against the command's rules, negotiation
 * is answered, and on the way out return_flags goes back to userspace
 * whatever happened (spec 1, 5.1, 6, 7).
 */

#include <linux/slab.h>
#include <linux/uaccess.h>

#include "cmd.h"

/* items that carry the same meaning for every command */
#define KD_I_ALWAYS	KD_I(KDBUS_ITEM_NEGOTIATE)

/**
 * kd_item_bit() - the bit that stands for an item type in a u64 set
 * @type:	KDBUS_ITEM_*
 *
 * Return: the bit number, the same as kd_item_bit_const() for every known
 * type, and 0 for anything unknown.
 */
unsigned int kd_item_bit(u64 type)
{
	if (type >= _KDBUS_ITEM_USER_BASE && type <= KDBUS_ITEM_DST_ID)
		return type;
	if (type >= KDBUS_ITEM_TIMESTAMP && type <= KDBUS_ITEM_CONN_DESCRIPTION)
		return kd_item_bit_const(type);
	if (type == KDBUS_ITEM_POLICY_ACCESS)
		return kd_item_bit_const(type);
	if (type >= KDBUS_ITEM_NAME_ADD && type <= KDBUS_ITEM_REPLY_DEAD)
		return kd_item_bit_const(type);
	return 0;
}

static u64 kd_item_mask(u64 type)
{
	unsigned int bit = kd_item_bit(type);

	return bit ? BIT_ULL(bit) : 0;
}

static void kd_args_reset(struct kd_args *a, const struct kd_cmd_rules *r,
			  void __user *uptr)
{
	a->uptr = uptr;
	a->rules = r;
	a->buf = NULL;
	a->size = 0;
	a->items = NULL;
	a->items_len = 0;
	a->seen = 0;
}

/* the blob, once; -EINVAL if its size changed under us */
static int kd_args_copy_in(struct kd_args *a, u64 size)
{
	void *buf = a->onstack;

	if (size > sizeof(a->onstack)) {
		buf = kmalloc(size, GFP_KERNEL);
		if (!buf)
			return -ENOMEM;
	}

	if (copy_from_user(buf, a->uptr, size)) {
		if (buf != a->onstack)
			kfree(buf);
		return -EFAULT;
	}

	a->buf = buf;
	a->size = size;

	/* from here on kd_args_put() reports back to userspace */
	if (!a->rules->is_msg)
		a->cmd->return_flags = 0;

	return a->cmd->size == size ? 0 : -EINVAL;
}

/* framing, then each item against what the command takes */
static int kd_args_check_items(struct kd_args *a)
{
	const struct kd_cmd_rules *r = a->rules;
	u64 takes = r->items | KD_I_ALWAYS;
	const struct kdbus_item *item;
	int ret;

	a->items = a->buf + r->fixed;
	a->items_len = a->size - r->fixed;

	ret = kd_items_check(a->items, a->items_len);
	if (ret)
		return ret;

	kd_items_foreach(item, a->items, a->items_len) {
		u64 bit = kd_item_mask(item->type);

		if (!(takes & bit))
			return -EINVAL;
		if ((a->seen & bit) && !(r->multi & bit))
			return -EINVAL;

		ret = kd_item_check(item);
		if (ret)
			return ret;

		a->seen |= bit;
	}

	return 0;
}

/*
 * A NEGOTIATE item asks which item types the command understands: every
 * entry it does not is cleared in the caller's copy, in place.
 */
static int kd_args_answer_items(struct kd_args *a)
{
	u64 takes = a->rules->items | KD_I_ALWAYS;
	const struct kdbus_item *item;

	kd_items_foreach(item, a->items, a->items_len) {
		const u64 *entry = item->data64;
		size_t n = kd_item_len(item) / sizeof(u64);
		u64 __user *dst;
		size_t i;

		if (item->type != KDBUS_ITEM_NEGOTIATE)
			continue;

		dst = a->uptr + ((const u8 *)entry - (const u8 *)a->buf);
		for (i = 0; i < n; i++) {
			if (!entry[i] || (takes & kd_item_mask(entry[i])))
				continue;
			if (put_user((u64)0, dst + i))
				return -EFAULT;
		}
	}

	return 0;
}

/**
 * kd_args_get() - copy an ioctl argument in and check it
 * @a:		where the argument goes; kd_args_put() must follow
 * @r:		what the command accepts
 * @uptr:	the argument in user memory
 *
 * Return: 0 to run the command, 1 if the call only negotiated flags (the
 * answer is already in user memory), a negative errno otherwise.
 */
int kd_args_get(struct kd_args *a, const struct kd_cmd_rules *r,
		void __user *uptr)
{
	u64 __user *usize = uptr;
	u64 size, flags;
	int ret;

	kd_args_reset(a, r, uptr);

	if (!IS_ALIGNED((unsigned long)uptr, 8))
		return -EFAULT;
	if (get_user(size, usize))
		return -EFAULT;
	if (size < r->fixed)
		return -EINVAL;
	if (size > KD_CMD_MAX)
		return -EMSGSIZE;

	ret = kd_args_copy_in(a, size);
	if (ret)
		return ret;

	flags = a->cmd->flags;
	if (flags & ~(r->flags | KDBUS_FLAG_NEGOTIATE))
		return -EINVAL;

	ret = kd_args_check_items(a);
	if (ret)
		return ret;

	/* answered even when the command then runs normally */
	ret = kd_args_answer_items(a);
	if (ret)
		return ret;

	if (flags & KDBUS_FLAG_NEGOTIATE) {
		if (put_user(r->flags & ~KDBUS_FLAG_NEGOTIATE, usize + 1))
			return -EFAULT;
		return 1;
	}

	if ((a->seen & r->needed) != r->needed)
		return -EINVAL;

	return 0;
}

/**
 * kd_args_put() - finish with an argument kd_args_get() looked at
 * @a:		the argument
 * @ret:	what the command is about to return
 *
 * Writes return_flags back once the blob was copied in, failure or not,
 * and frees the copy.
 *
 * Return: @ret, or -EFAULT when @ret reported success and the write-back
 * failed.
 */
int kd_args_put(struct kd_args *a, int ret)
{
	if (!a->buf)
		return ret;

	if (!a->rules->is_msg) {
		struct kdbus_cmd __user *ucmd = a->uptr;

		if (put_user(a->cmd->return_flags, &ucmd->return_flags) &&
		    ret >= 0)
			ret = -EFAULT;
	}

	if (a->buf != a->onstack)
		kfree(a->buf);
	a->buf = NULL;

	return ret;
}

/**
 * kd_args_copy_out() - hand part of the kernel copy back to userspace
 * @a:		the argument
 * @off:	offset of the output fields in the command struct
 * @len:	their size
 *
 * Return: 0, -EINVAL for a range outside the blob, or -EFAULT.
 */
int kd_args_copy_out(struct kd_args *a, size_t off, size_t len)
{
	if (!a->buf || off > a->size || len > a->size - off)
		return -EINVAL;
	if (copy_to_user(a->uptr + off, a->buf + off, len))
		return -EFAULT;
	return 0;
}

/**
 * kd_args_item() - the first item of a type
 * @a:		an argument kd_args_get() accepted
 * @type:	KDBUS_ITEM_*
 *
 * Return: the item, or NULL if the argument has none.
 */
const struct kdbus_item *kd_args_item(const struct kd_args *a, u64 type)
{
	const struct kdbus_item *item;

	if (!(a->seen & kd_item_mask(type)))
		return NULL;

	kd_items_foreach(item, a->items, a->items_len) {
		if (item->type != type)
			continue;
		return item;
	}

	/* not reached: @seen said it is there */
	return NULL;
}
