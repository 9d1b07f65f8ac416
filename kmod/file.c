// SPDX-License-Identifier: GPL-2.0
/*
 * The open file of a control or endpoint node (spec 2.3). A handle starts
 * out NEW; one setup command turns it into a bus owner, an endpoint owner
 * or a connection for good. The type is published with release semantics
 * after the object it names, so commands read it without the lock.
 */

#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/slab.h>

#include "bus.h"
#include "conn.h"
#include "domain.h"
#include "ep.h"
#include "fs.h"
#include "match.h"
#include "names.h"
#include "queue.h"
#include "route.h"

enum kd_handle_type {
	KD_HANDLE_NEW,
	KD_HANDLE_BUS,		/* made a bus on control */
	KD_HANDLE_EP,		/* made a custom endpoint */
	KD_HANDLE_CONN,		/* said HELLO on an endpoint */
};

struct kd_handle {
	struct mutex lock;	/* serialises setup */
	int type;		/* enum kd_handle_type, set once */
	struct kd_node *node;	/* what was opened, referenced */
	union {
		struct kd_bus *bus;
		struct kd_ep *ep;
		struct kd_conn *conn;
	};
};

static struct kd_domain *kd_node_domain(struct kd_node *node)
{
	return container_of(node, struct kd_domain, node);
}

static struct kd_ep *kd_node_ep(struct kd_node *node)
{
	return container_of(node, struct kd_ep, node);
}

/* the object of a set-up handle, or NULL if it is another type */
static void *kd_handle_obj(struct kd_handle *h, int type)
{
	/* pairs with the release at setup: the object pointer is set */
	if (smp_load_acquire(&h->type) != type)
		return NULL;
	switch (type) {
	case KD_HANDLE_BUS:
		return h->bus;
	case KD_HANDLE_EP:
		return h->ep;
	default:
		return h->conn;
	}
}

static int kd_file_open(struct inode *inode, struct file *file)
{
	struct kd_node *node = inode->i_private;
	struct kd_handle *h;

	if (!node)
		return -ESHUTDOWN;

	h = kzalloc(sizeof(*h), GFP_KERNEL);
	if (!h)
		return -ENOMEM;
	mutex_init(&h->lock);
	h->type = KD_HANDLE_NEW;

	switch (node->kind) {
	case KD_NODE_CONTROL:
		if (READ_ONCE(kd_node_domain(node)->dead))
			goto dead;
		kd_domain_get(kd_node_domain(node));
		break;
	case KD_NODE_EP:
		if (READ_ONCE(kd_node_ep(node)->dead))
			goto dead;
		kd_ep_get(kd_node_ep(node));
		break;
	default:
		goto dead;
	}

	h->node = node;
	file->private_data = h;
	return 0;

dead:
	kfree(h);
	return -ESHUTDOWN;
}

static int kd_file_release(struct inode *inode, struct file *file)
{
	struct kd_handle *h = file->private_data;

	switch (h->type) {
	case KD_HANDLE_BUS:
		kd_bus_shutdown(h->bus);
		kd_bus_put(h->bus);
		break;
	case KD_HANDLE_EP:
		kd_ep_shutdown(h->ep);
		kd_ep_put(h->ep);
		break;
	case KD_HANDLE_CONN:
		kd_conn_close(h->conn);
		break;
	}

	if (h->node->kind == KD_NODE_CONTROL)
		kd_domain_put(kd_node_domain(h->node));
	else
		kd_ep_put(kd_node_ep(h->node));

	kfree(h);
	return 0;
}

/* the setup command proper; *obj stays NULL if it only negotiated */
static int kd_handle_make(struct kd_handle *h, struct file *file,
			  unsigned int cmd, void __user *argp, void **obj)
{
	struct kd_conn *conn = NULL;
	struct kd_bus *bus = NULL;
	struct kd_ep *ep = NULL;
	int ret;

	switch (cmd) {
	case KDBUS_CMD_BUS_MAKE:
		ret = kd_bus_make(kd_node_domain(h->node), file, argp, &bus);
		*obj = bus;
		break;
	case KDBUS_CMD_ENDPOINT_MAKE:
		ret = kd_ep_make(kd_node_ep(h->node), file, argp, &ep);
		*obj = ep;
		break;
	default:
		ret = kd_conn_hello(kd_node_ep(h->node), file, argp, &conn);
		*obj = conn;
		break;
	}
	return ret;
}

/* runs one setup command; a negotiation leaves the handle NEW */
static long kd_handle_setup(struct kd_handle *h, struct file *file,
			    unsigned int cmd, void __user *argp)
{
	enum kd_node_kind want = cmd == KDBUS_CMD_BUS_MAKE ?
				 KD_NODE_CONTROL : KD_NODE_EP;
	void *obj = NULL;
	int ret;

	if (h->node->kind != want)
		return -EBADFD;
	/* an unlocked early answer; rechecked under the lock */
	if (smp_load_acquire(&h->type) != KD_HANDLE_NEW)
		return -EBADFD;

	if (mutex_lock_interruptible(&h->lock))
		return -ERESTARTSYS;

	if (h->type != KD_HANDLE_NEW) {
		ret = -EBADFD;
		goto out;
	}

	ret = kd_handle_make(h, file, cmd, argp, &obj);
	if (!ret && obj) {
		switch (cmd) {
		case KDBUS_CMD_BUS_MAKE:
			h->bus = obj;
			/* the pointer before the type: see kd_handle_obj() */
			smp_store_release(&h->type, KD_HANDLE_BUS);
			break;
		case KDBUS_CMD_ENDPOINT_MAKE:
			h->ep = obj;
			/* the pointer before the type: see kd_handle_obj() */
			smp_store_release(&h->type, KD_HANDLE_EP);
			break;
		default:
			h->conn = obj;
			/* the pointer before the type: see kd_handle_obj() */
			smp_store_release(&h->type, KD_HANDLE_CONN);
			break;
		}
	}
out:
	mutex_unlock(&h->lock);
	return ret;
}

static long kd_conn_ioctl(struct kd_conn *conn, unsigned int cmd,
			  void __user *argp)
{
	switch (cmd) {
	case KDBUS_CMD_UPDATE:
		return kd_cmd_update(conn, argp);
	case KDBUS_CMD_BYEBYE:
		return kd_cmd_byebye(conn, argp);
	case KDBUS_CMD_FREE:
		return kd_cmd_free(conn, argp);
	case KDBUS_CMD_CONN_INFO:
		return kd_cmd_conn_info(conn, argp);
	case KDBUS_CMD_BUS_CREATOR_INFO:
		return kd_cmd_bus_creator_info(conn, argp);
	case KDBUS_CMD_LIST:
		return kd_cmd_list(conn, argp);
	case KDBUS_CMD_SEND:
		return kd_cmd_send(conn, argp);
	case KDBUS_CMD_RECV:
		return kd_cmd_recv(conn, argp);
	case KDBUS_CMD_NAME_ACQUIRE:
		return kd_cmd_name_acquire(conn, argp);
	case KDBUS_CMD_NAME_RELEASE:
		return kd_cmd_name_release(conn, argp);
	case KDBUS_CMD_MATCH_ADD:
		return kd_cmd_match_add(conn, argp);
	case KDBUS_CMD_MATCH_REMOVE:
		return kd_cmd_match_remove(conn, argp);
	}
	return -ENOTTY;
}

static long kd_ioctl(struct file *file, unsigned int cmd, void __user *argp)
{
	struct kd_handle *h = file->private_data;
	struct kd_conn *conn;
	struct kd_ep *ep;

	switch (cmd) {
	case KDBUS_CMD_BUS_MAKE:
	case KDBUS_CMD_ENDPOINT_MAKE:
	case KDBUS_CMD_HELLO:
		return kd_handle_setup(h, file, cmd, argp);

	case KDBUS_CMD_ENDPOINT_UPDATE:
		ep = kd_handle_obj(h, KD_HANDLE_EP);
		return ep ? kd_ep_update(ep, file, argp) : -EBADFD;

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
		conn = kd_handle_obj(h, KD_HANDLE_CONN);
		return conn ? kd_conn_ioctl(conn, cmd, argp) : -EBADFD;
	}
	return -ENOTTY;
}

static long kd_file_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	return kd_ioctl(file, cmd, (void __user *)arg);
}

#ifdef CONFIG_COMPAT
/* the ABI is the same for 32-bit callers; only the pointer is widened */
static long kd_file_compat_ioctl(struct file *file, unsigned int cmd,
				 unsigned long arg)
{
	return kd_ioctl(file, cmd, compat_ptr(arg));
}
#endif

static __poll_t kd_file_poll(struct file *file, struct poll_table_struct *wait)
{
	struct kd_conn *conn = kd_handle_obj(file->private_data,
					     KD_HANDLE_CONN);

	if (!conn)
		return EPOLLERR | EPOLLHUP;
	return kd_conn_poll(conn, file, wait);
}

static int kd_file_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct kd_conn *conn = kd_handle_obj(file->private_data,
					     KD_HANDLE_CONN);

	if (!conn)
		return -EBADFD;
	return kd_conn_mmap(conn, vma);
}

const struct file_operations kd_file_ops = {
	.owner		= THIS_MODULE,
	.open		= kd_file_open,
	.release	= kd_file_release,
	.unlocked_ioctl	= kd_file_ioctl,
#ifdef CONFIG_COMPAT
	.compat_ioctl	= kd_file_compat_ioctl,
#endif
	.poll		= kd_file_poll,
	.mmap		= kd_file_mmap,
	.llseek		= noop_llseek,
};
