// SPDX-License-Identifier: GPL-2.0
/*
 * File handles: every open() of a kdbusfs node gives a handle of type NONE.
 * Exactly one setup ioctl may succeed on it and fixes its type forever:
 * BUS_MAKE (control) -> bus owner, ENDPOINT_MAKE (default endpoint) ->
 * endpoint owner, HELLO (endpoint) -> connection. Everything else on a
 * handle of the wrong type fails with EBADFD; unknown ioctls with ENOTTY.
 *
 * Setup ioctls are serialized by handle->lock. The type is published with
 * release semantics once the handle's object is fully set up; all other
 * operations read it with acquire semantics and need no lock. Connection
 * commands hold an active reference on the connection (not on the node)
 * while they work on the bus, so tearing down the endpoint or bus
 * disconnects connections while they are in use, and waits for those
 * commands to finish.
 *
 * Teardown waits for active references, so none is held while user memory
 * is read or written: a page fault on the caller's memory may take as long
 * as the caller wants (userfaultfd, a file on its own FUSE mount). Commands
 * copy their arguments in before they acquire the connection (or node) and
 * copy their results out after they released it.
 *
 * This file also holds the generic command parser (spec §1 and §7).
 */

#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "bus.h"
#include "connection.h"
#include "domain.h"
#include "endpoint.h"
#include "fs.h"
#include "handle.h"
#include "item.h"
#include "limits.h"
#include "match.h"
#include "names.h"
#include "node.h"
#include "pool.h"
#include "util.h"

static int kdbus_args_verify(struct kdbus_args *args)
{
	const struct kdbus_item *item;
	size_t i, pos = 0;
	int ret;

	for (;;) {
		struct kdbus_arg *arg;

		ret = kdbus_items_walk(args->items, args->items_size,
				       &item, &pos);
		if (ret < 0)
			return ret;
		if (!item)
			break;

		for (i = 0; i < args->argc; ++i)
			if (args->argv[i].type == item->type)
				break;
		if (i >= args->argc)
			return -EINVAL;

		arg = &args->argv[i];

		ret = kdbus_item_validate(item);
		if (ret < 0)
			return ret;

		if (arg->item && !arg->multiple)
			return -EINVAL;

		if (!arg->item)
			arg->item = (struct kdbus_item *)item;
	}

	return 0;
}

static int kdbus_args_negotiate(struct kdbus_args *args)
{
	struct kdbus_item __user *user;
	struct kdbus_item *negotiation;
	size_t i, j, num;

	/*
	 * If KDBUS_FLAG_NEGOTIATE is set, we overwrite the flags field with
	 * the set of supported flags.
	 */
	if (args->cmd->flags & KDBUS_FLAG_NEGOTIATE) {
		u64 flags = args->allowed_flags & ~KDBUS_FLAG_NEGOTIATE;

		if (put_user(flags, &args->user->flags))
			return -EFAULT;
	}

	/*
	 * Iterate through all items of the NEGOTIATE item and set every type
	 * this command does not support to 0. The item is always the first
	 * entry of argv.
	 */
	negotiation = args->argv[0].item;
	if (!negotiation)
		return 0;

	num = KDBUS_ITEM_PAYLOAD_SIZE(negotiation) / sizeof(u64);
	user = (struct kdbus_item __user *)
		((u8 __user *)args->user +
		 ((u8 *)negotiation - (u8 *)args->cmd));

	for (i = 0; i < num; ++i) {
		for (j = 0; j < args->argc; ++j)
			if (negotiation->data64[i] == args->argv[j].type)
				break;

		if (j < args->argc)
			continue;

		/* this item is not supported, clear it out */
		negotiation->data64[i] = 0;
		if (put_user(negotiation->data64[i], &user->data64[i]))
			return -EFAULT;
	}

	return 0;
}

/**
 * __kdbus_args_parse() - parse payload of kdbus command
 * @args:		object to parse data into
 * @is_cmd:		whether this is a command or msg payload
 * @argp:		user-space location of command payload to parse
 * @type_size:		overall size of command payload to parse
 * @items_offset:	offset of items array in command payload
 * @out:		output variable to store pointer to copied payload
 *
 * This parses the ioctl payload at user-space location @argp into @args. @args
 * must be pre-initialized by the caller to reflect the supported flags and
 * items of this command. This parser will then copy the command payload into
 * kernel-space, verify correctness and consistency and cache pointers to parsed
 * items and other data in @args.
 *
 * If this function succeeded, you must call kdbus_args_clear() to release
 * allocated resources before destroying @args.
 *
 * This can also be used to import kdbus_msg objects. In that case, @is_cmd
 * must be set to 'false' and the 'return_flags' field will not be touched (as
 * it doesn't exist on kdbus_msg).
 *
 * Return: On failure a negative error code is returned. Otherwise, 1 is
 * returned if negotiation was requested, 0 if not.
 */
int __kdbus_args_parse(struct kdbus_args *args, bool is_cmd,
		       void __user *argp, size_t type_size,
		       size_t items_offset, void **out)
{
	struct kdbus_cmd *cmd;
	u64 user_size;
	int ret, i;

	ret = kdbus_copy_from_user(&user_size, argp, sizeof(user_size));
	if (ret < 0)
		return ret;

	if (user_size < type_size)
		return -EINVAL;
	if (user_size > KDBUS_CMD_MAX_SIZE)
		return -EMSGSIZE;

	if (user_size <= sizeof(args->cmd_buf)) {
		if (copy_from_user(args->cmd_buf, argp, user_size))
			return -EFAULT;
		cmd = (struct kdbus_cmd *)args->cmd_buf;
	} else {
		cmd = memdup_user(argp, user_size);
		if (IS_ERR(cmd))
			return PTR_ERR(cmd);
	}

	args->cmd = cmd;
	args->user = argp;
	args->is_cmd = is_cmd;
	if (is_cmd)
		cmd->return_flags = 0;

	/* the size must not have changed between the two reads */
	if (cmd->size != user_size)
		return -EINVAL;

	args->items = (void *)((u8 *)cmd + items_offset);
	args->items_size = cmd->size - items_offset;

	if (cmd->flags & ~args->allowed_flags)
		return -EINVAL;

	ret = kdbus_args_verify(args);
	if (ret < 0)
		return ret;

	ret = kdbus_args_negotiate(args);
	if (ret < 0)
		return ret;

	/* mandatory items must be given (but not on negotiation) */
	if (!(cmd->flags & KDBUS_FLAG_NEGOTIATE)) {
		for (i = 0; i < args->argc; ++i)
			if (args->argv[i].mandatory && !args->argv[i].item)
				return -EINVAL;
	}

	*out = cmd;
	return !!(cmd->flags & KDBUS_FLAG_NEGOTIATE);
}

/**
 * kdbus_args_clear() - release allocated command resources
 * @args:	object to release resources of
 * @ret:	return value of this command
 *
 * This frees all allocated resources on @args and copies the command result
 * flags into user-space. @ret is usually returned unchanged by this function,
 * so it can be used in the final 'return' statement of the command handler.
 *
 * Return: -EFAULT if return values cannot be copied into user-space, otherwise
 *         @ret is returned unchanged.
 */
int kdbus_args_clear(struct kdbus_args *args, int ret)
{
	if (!args)
		return ret;

	if (!IS_ERR_OR_NULL(args->cmd)) {
		if (args->is_cmd && put_user(args->cmd->return_flags,
					     &args->user->return_flags))
			ret = -EFAULT;
		if (args->cmd != (struct kdbus_cmd *)args->cmd_buf)
			kfree(args->cmd);
		args->cmd = NULL;
	}

	return ret;
}

/**
 * enum kdbus_handle_type - type an handle can be of
 * @KDBUS_HANDLE_NONE:		no type set, yet
 * @KDBUS_HANDLE_BUS_OWNER:	bus owner
 * @KDBUS_HANDLE_EP_OWNER:	endpoint owner
 * @KDBUS_HANDLE_CONNECTED:	endpoint connection after HELLO
 */
enum kdbus_handle_type {
	KDBUS_HANDLE_NONE,
	KDBUS_HANDLE_BUS_OWNER,
	KDBUS_HANDLE_EP_OWNER,
	KDBUS_HANDLE_CONNECTED,
};

/**
 * struct kdbus_handle - handle to the kdbus system
 * @lock:		serializes setup ioctls
 * @type:		type of this handle (KDBUS_HANDLE_*)
 * @bus_owner:		bus this handle owns
 * @ep_owner:		endpoint this handle owns
 * @conn:		connection this handle owns
 * @privileged:		opener is an owner of the bus (spec §12.1)
 */
struct kdbus_handle {
	struct mutex lock;

	int type;
	union {
		struct kdbus_bus *bus_owner;
		struct kdbus_ep *ep_owner;
		struct kdbus_conn *conn;
	};

	bool privileged:1;
};

static int kdbus_handle_open(struct inode *inode, struct file *file)
{
	struct kdbus_handle *handle;
	struct kdbus_node *node;
	int ret;

	node = kdbus_node_from_inode(inode);
	if (!kdbus_node_acquire(node))
		return -ESHUTDOWN;

	handle = kzalloc(sizeof(*handle), GFP_KERNEL);
	if (!handle) {
		ret = -ENOMEM;
		goto exit;
	}

	mutex_init(&handle->lock);
	handle->type = KDBUS_HANDLE_NONE;

	if (node->type == KDBUS_NODE_ENDPOINT) {
		struct kdbus_ep *ep = kdbus_ep_from_node(node);
		struct kdbus_bus *bus = ep->bus;

		/*
		 * An owner connects through the default endpoint and either
		 * has CAP_IPC_OWNER in the user namespace of the domain or
		 * the euid of the bus creator; both on the opener's
		 * credentials.
		 */
		if (!ep->user &&
		    (file_ns_capable(file, bus->domain->user_namespace,
				     CAP_IPC_OWNER) ||
		     uid_eq(file->f_cred->euid, bus->node.uid)))
			handle->privileged = true;
	}

	file->private_data = handle;
	kdbus_obj_inc(KDBUS_OBJ_HANDLE);
	ret = 0;

exit:
	kdbus_node_release(node);
	return ret;
}

static int kdbus_handle_release(struct inode *inode, struct file *file)
{
	struct kdbus_handle *handle = file->private_data;

	switch (handle->type) {
	case KDBUS_HANDLE_BUS_OWNER:
		kdbus_node_deactivate(&handle->bus_owner->node);
		kdbus_bus_unref(handle->bus_owner);
		break;
	case KDBUS_HANDLE_EP_OWNER:
		kdbus_node_deactivate(&handle->ep_owner->node);
		kdbus_ep_unref(handle->ep_owner);
		break;
	case KDBUS_HANDLE_CONNECTED:
		kdbus_conn_disconnect(handle->conn, false);
		kdbus_conn_unref(handle->conn);
		break;
	case KDBUS_HANDLE_NONE:
		/* nothing to clean up */
		break;
	}

	kfree(handle);
	kdbus_obj_dec(KDBUS_OBJ_HANDLE);

	return 0;
}

static long kdbus_handle_ioctl_setup(struct file *file, unsigned int cmd,
				     void __user *argp)
{
	struct kdbus_handle *handle = file->private_data;
	struct kdbus_node *node = kdbus_node_from_inode(file_inode(file));
	long ret;

	/*
	 * No active reference is held here (see the top of this file): the
	 * new object is linked below a parent that must still be active, and
	 * HELLO acquires the endpoint when it connects.
	 */
	if (!kdbus_node_is_active(node))
		return -ESHUTDOWN;

	mutex_lock(&handle->lock);

	if (handle->type != KDBUS_HANDLE_NONE) {
		ret = -EBADFD;
		goto exit;
	}

	switch (cmd) {
	case KDBUS_CMD_BUS_MAKE: {
		struct kdbus_bus *bus;

		if (node->type != KDBUS_NODE_CONTROL) {
			ret = -EBADFD;
			break;
		}

		bus = kdbus_cmd_bus_make(kdbus_domain_from_node(node->parent),
					 argp);
		if (IS_ERR_OR_NULL(bus)) {
			ret = PTR_ERR_OR_ZERO(bus);
			break;
		}

		handle->bus_owner = bus;
		ret = KDBUS_HANDLE_BUS_OWNER;
		break;
	}

	case KDBUS_CMD_ENDPOINT_MAKE: {
		struct kdbus_ep *ep;

		if (node->type != KDBUS_NODE_ENDPOINT) {
			ret = -EBADFD;
			break;
		}

		ep = kdbus_cmd_ep_make(kdbus_ep_from_node(node)->bus,
				       handle->privileged, argp);
		if (IS_ERR_OR_NULL(ep)) {
			ret = PTR_ERR_OR_ZERO(ep);
			break;
		}

		handle->ep_owner = ep;
		ret = KDBUS_HANDLE_EP_OWNER;
		break;
	}

	case KDBUS_CMD_HELLO: {
		struct kdbus_conn *conn;

		if (node->type != KDBUS_NODE_ENDPOINT) {
			ret = -EBADFD;
			break;
		}

		conn = kdbus_cmd_hello(kdbus_ep_from_node(node),
				       file, handle->privileged, argp);
		if (IS_ERR_OR_NULL(conn)) {
			ret = PTR_ERR_OR_ZERO(conn);
			break;
		}

		handle->conn = conn;
		ret = KDBUS_HANDLE_CONNECTED;
		break;
	}

	default:
		ret = -EBADFD;
		break;
	}

	if (ret > 0) {
		/*
		 * Publish the handle only when its object is fully set up:
		 * pairs with smp_load_acquire() of every other operation.
		 */
		smp_store_release(&handle->type, (int)ret);
		ret = 0;
	}

exit:
	mutex_unlock(&handle->lock);
	return ret;
}

static long kdbus_handle_ioctl_ep_owner(struct file *file, unsigned int cmd,
					void __user *argp)
{
	struct kdbus_handle *handle = file->private_data;
	struct kdbus_ep *ep;
	long ret;

	/* pairs with smp_store_release() in kdbus_handle_ioctl_setup() */
	if (smp_load_acquire(&handle->type) != KDBUS_HANDLE_EP_OWNER)
		return -EBADFD;

	ep = handle->ep_owner;
	if (!kdbus_node_is_active(&ep->node))
		return -ESHUTDOWN;

	switch (cmd) {
	case KDBUS_CMD_ENDPOINT_UPDATE:
		ret = kdbus_cmd_ep_update(ep, argp);
		break;
	default:
		ret = -EBADFD;
		break;
	}

	return ret;
}

static long kdbus_handle_ioctl_connected(struct file *file,
					 unsigned int cmd, void __user *argp)
{
	struct kdbus_handle *handle = file->private_data;
	struct kdbus_conn *conn;
	long ret;

	/* pairs with smp_store_release() in kdbus_handle_ioctl_setup() */
	if (smp_load_acquire(&handle->type) != KDBUS_HANDLE_CONNECTED)
		return -EBADFD;

	conn = handle->conn;

	/*
	 * BYEBYE is special; we must not acquire a connection when
	 * calling into kdbus_conn_disconnect() as we'd deadlock,
	 * because it waits for all users to finish.
	 */
	if (cmd == KDBUS_CMD_BYEBYE)
		return kdbus_cmd_byebye_unlocked(conn, argp);

	/*
	 * Each command acquires the connection itself once it has copied in
	 * its arguments (see the top of this file); a connection that is
	 * gone already fails before anything else.
	 */
	if (!kdbus_conn_active(conn))
		return -ECONNRESET;

	switch (cmd) {
	case KDBUS_CMD_UPDATE:
		ret = kdbus_cmd_update(conn, argp);
		break;
	case KDBUS_CMD_FREE:
		ret = kdbus_cmd_free(conn, argp);
		break;
	case KDBUS_CMD_CONN_INFO:
		ret = kdbus_cmd_conn_info(conn, argp);
		break;
	case KDBUS_CMD_BUS_CREATOR_INFO:
		ret = kdbus_cmd_bus_creator_info(conn, argp);
		break;
	case KDBUS_CMD_LIST:
		ret = kdbus_cmd_list(conn, argp);
		break;
	case KDBUS_CMD_SEND:
		ret = kdbus_cmd_send(conn, file, argp);
		break;
	case KDBUS_CMD_RECV:
		ret = kdbus_cmd_recv(conn, argp);
		break;
	case KDBUS_CMD_NAME_ACQUIRE:
		ret = kdbus_cmd_name_acquire(conn, argp);
		break;
	case KDBUS_CMD_NAME_RELEASE:
		ret = kdbus_cmd_name_release(conn, argp);
		break;
	case KDBUS_CMD_MATCH_ADD:
		ret = kdbus_cmd_match_add(conn, argp);
		break;
	case KDBUS_CMD_MATCH_REMOVE:
		ret = kdbus_cmd_match_remove(conn, argp);
		break;
	default:
		ret = -EBADFD;
		break;
	}

	return ret;
}

static long kdbus_handle_ioctl(struct file *file, unsigned int cmd,
			       unsigned long arg)
{
	void __user *argp = (void __user *)arg;
	long ret;

	switch (cmd) {
	case KDBUS_CMD_BUS_MAKE:
	case KDBUS_CMD_ENDPOINT_MAKE:
	case KDBUS_CMD_HELLO:
		ret = kdbus_handle_ioctl_setup(file, cmd, argp);
		break;

	case KDBUS_CMD_ENDPOINT_UPDATE:
		ret = kdbus_handle_ioctl_ep_owner(file, cmd, argp);
		break;

	case KDBUS_CMD_UPDATE:
	case KDBUS_CMD_BYEBYE:
	case KDBUS_CMD_FREE:
	case KDBUS_CMD_CONN_INFO:
	case KDBUS_CMD_BUS_CREATOR_INFO:
	case KDBUS_CMD_LIST:
	case KDBUS_CMD_SEND:
	case KDBUS_CMD_RECV:
	case KDBUS_CMD_NAME_ACQUIRE:
	case KDBUS_CMD_NAME_RELEASE:
	case KDBUS_CMD_MATCH_ADD:
	case KDBUS_CMD_MATCH_REMOVE:
		ret = kdbus_handle_ioctl_connected(file, cmd, argp);
		break;

	default:
		ret = -ENOTTY;
		break;
	}

	/* an ioctl never returns a positive value */
	return ret < 0 ? ret : 0;
}

static __poll_t kdbus_handle_poll(struct file *file,
				  struct poll_table_struct *wait)
{
	struct kdbus_handle *handle = file->private_data;
	__poll_t mask = EPOLLOUT | EPOLLWRNORM;
	struct kdbus_conn *conn;

	/*
	 * Only a connected endpoint can read/write data; pairs with
	 * smp_store_release() in kdbus_handle_ioctl_setup().
	 */
	if (smp_load_acquire(&handle->type) != KDBUS_HANDLE_CONNECTED)
		return EPOLLERR | EPOLLHUP;

	conn = handle->conn;

	poll_wait(file, &conn->wait, wait);

	/*
	 * Verify the connection hasn't been deactivated _after_ calling
	 * poll_wait() in order to avoid races.
	 */
	if (!kdbus_conn_active(conn))
		return EPOLLERR | EPOLLHUP;

	if (!list_empty_careful(&conn->queue.msg_list) ||
	    atomic_read(&conn->lost_count) > 0)
		mask |= EPOLLIN | EPOLLRDNORM;

	return mask;
}

static int kdbus_handle_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct kdbus_handle *handle = file->private_data;

	/* pairs with smp_store_release() in kdbus_handle_ioctl_setup() */
	if (smp_load_acquire(&handle->type) != KDBUS_HANDLE_CONNECTED)
		return -EBADFD;

	return kdbus_pool_mmap(handle->conn->pool, vma);
}

const struct file_operations kdbus_handle_ops = {
	.owner =		THIS_MODULE,
	.open =			kdbus_handle_open,
	.release =		kdbus_handle_release,
	.poll =			kdbus_handle_poll,
	.llseek =		noop_llseek,
	.unlocked_ioctl =	kdbus_handle_ioctl,
	.compat_ioctl =		compat_ptr_ioctl,
	.mmap =			kdbus_handle_mmap,
};

/**
 * kdbus_handle_is_kdbus() - test whether a file is a kdbus handle
 * @file:	file to test
 *
 * Return: true if @file was opened on a kdbusfs control or endpoint node.
 */
bool kdbus_handle_is_kdbus(const struct file *file)
{
	return file->f_op == &kdbus_handle_ops;
}
