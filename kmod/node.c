// SPDX-License-Identifier: GPL-2.0
/*
 * kdbus nodes: lifetime and revocation of everything visible in kdbusfs.
 *
 * Every domain, control file, bus and endpoint embeds a struct kdbus_node.
 * A node has two counters:
 *
 *  - @refcnt keeps the memory alive (kdbus_node_ref/unref). A child holds a
 *    reference on its parent; an activated node is held by the tree until
 *    it is released; every inode holds a reference on its node.
 *
 *  - @active counts active references (kdbus_node_acquire/release), taken
 *    for the duration of an operation on the node (open, setup ioctls).
 *
 * @active encodes the state machine:
 *
 *	NEW (never activated)		KDBUS_NODE_NEW
 *	active, n active refs		n >= 0
 *	deactivated, n active refs	KDBUS_NODE_BIAS + n (< 0)
 *	releasing			KDBUS_NODE_RELEASING
 *	released			KDBUS_NODE_RELEASED
 *
 * kdbus_node_deactivate() makes acquisition fail at once, deactivates all
 * children (depth first), waits until the last active reference of the
 * node is gone (drain), calls @release_cb exactly once, unlinks the node
 * from its parent (its name becomes free) and drops the tree's reference.
 * Concurrent callers of kdbus_node_deactivate() wait until the node is
 * released. This is what lets close(), BYEBYE and bus removal race with
 * any ioctl: an operation either holds an active reference, and teardown
 * waits for it, or it cannot start.
 *
 * Locking: kdbus_node_lock (global rwsem) protects every parent's children
 * tree and the node's presence in it. It is a leaf lock: nothing is called
 * with it held.
 */

#include <linux/atomic.h>
#include <linux/idr.h>
#include <linux/kernel.h>
#include <linux/rbtree.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/wait.h>

#include "node.h"
#include "util.h"

#define KDBUS_NODE_BIAS		(INT_MIN + 16)
#define KDBUS_NODE_RELEASING	(INT_MIN + 2)
#define KDBUS_NODE_NEW		(INT_MIN + 1)
#define KDBUS_NODE_RELEASED	(INT_MIN)

static DECLARE_RWSEM(kdbus_node_lock);
static DEFINE_IDA(kdbus_node_ida);

static unsigned int kdbus_node_name_hash(const char *name)
{
	unsigned int hash;

	/* reserve hash numbers 0, 1 and >=INT_MAX for magic directories */
	hash = kdbus_strhash(name) & INT_MAX;
	if (hash < 2)
		hash += 2;
	if (hash >= INT_MAX)
		hash = INT_MAX - 1;

	return hash;
}

static int kdbus_node_name_compare(unsigned int hash, const char *name,
				   const struct kdbus_node *node)
{
	if (hash != node->hash)
		return hash < node->hash ? -1 : 1;

	return strcmp(name, node->name);
}

/**
 * kdbus_node_init() - initialize a kdbus_node
 * @node:	Pointer to the node to initialize
 * @type:	The type the node will have (KDBUS_NODE_*)
 *
 * The caller is responsible of allocating @node and initializing it to zero.
 * Once this call returns, you must use the node_ref() and node_unref()
 * functions to manage this node.
 */
void kdbus_node_init(struct kdbus_node *node, unsigned int type)
{
	atomic_set(&node->refcnt, 1);
	atomic_set(&node->active, KDBUS_NODE_NEW);
	init_waitqueue_head(&node->waitq);
	node->type = type;
	node->uid = GLOBAL_ROOT_UID;
	node->gid = GLOBAL_ROOT_GID;
	RB_CLEAR_NODE(&node->rb);
	node->children = RB_ROOT;
	kdbus_obj_inc(KDBUS_OBJ_NODE);
}

/**
 * kdbus_node_link() - link a node into the nodes system
 * @node:	Pointer to the node to initialize
 * @parent:	Pointer to a parent node, may be %NULL
 * @name:	The name of the node (or NULL if root node)
 *
 * This links a node into the hierarchy. This must not be called multiple
 * times. If @parent is NULL, the node becomes a new root node. A child
 * can only be linked to an active parent.
 *
 * Return: 0 on success, -EEXIST if a sibling has the same name,
 *	   -ESHUTDOWN if the parent is not active, other negative errors.
 */
int kdbus_node_link(struct kdbus_node *node, struct kdbus_node *parent,
		    const char *name)
{
	struct rb_node **n, *prev;
	int ret;

	if (WARN_ON(node->type != KDBUS_NODE_DOMAIN && !parent))
		return -EINVAL;

	if (WARN_ON(parent && !name))
		return -EINVAL;

	if (name) {
		node->name = kstrdup(name, GFP_KERNEL);
		if (!node->name)
			return -ENOMEM;

		node->hash = kdbus_node_name_hash(name);
	}

	ret = ida_alloc_range(&kdbus_node_ida, 1, INT_MAX, GFP_KERNEL);
	if (ret < 0)
		return ret;

	node->id = ret;
	ret = 0;

	if (!parent)
		return 0;

	down_write(&kdbus_node_lock);

	if (!kdbus_node_is_active(parent)) {
		ret = -ESHUTDOWN;
		goto exit_unlock;
	}

	n = &parent->children.rb_node;
	prev = NULL;
	while (*n) {
		struct kdbus_node *pos;
		int result;

		pos = kdbus_node_from_rb(*n);
		prev = *n;
		result = kdbus_node_name_compare(node->hash, node->name, pos);
		if (result == 0) {
			ret = -EEXIST;
			goto exit_unlock;
		}

		if (result < 0)
			n = &pos->rb.rb_left;
		else
			n = &pos->rb.rb_right;
	}

	/* add new node and rebalance the tree */
	rb_link_node(&node->rb, prev, n);
	rb_insert_color(&node->rb, &parent->children);
	node->parent = kdbus_node_ref(parent);

exit_unlock:
	up_write(&kdbus_node_lock);
	return ret;
}

/**
 * kdbus_node_ref() - Acquire object reference
 * @node:	node to acquire reference to (or NULL)
 *
 * Return: @node is returned
 */
struct kdbus_node *kdbus_node_ref(struct kdbus_node *node)
{
	if (node)
		atomic_inc(&node->refcnt);
	return node;
}

/**
 * kdbus_node_unref() - Drop object reference
 * @node:	node to drop reference to (or NULL)
 *
 * The last reference frees the node through its @free_cb and drops the
 * reference on its parent.
 *
 * Return: This always returns NULL
 */
struct kdbus_node *kdbus_node_unref(struct kdbus_node *node)
{
	struct kdbus_node *parent;

	if (!node || !atomic_dec_and_test(&node->refcnt))
		return NULL;

	/* a linked, never released node holds a reference of the tree */
	WARN_ON(!RB_EMPTY_NODE(&node->rb));

	parent = node->parent;
	if (node->id > 0)
		ida_free(&kdbus_node_ida, node->id);
	kfree(node->name);
	kdbus_obj_dec(KDBUS_OBJ_NODE);

	if (node->free_cb)
		node->free_cb(node);
	else
		kfree(node);

	kdbus_node_unref(parent);
	return NULL;
}

/**
 * kdbus_node_is_active() - test whether a node is active
 * @node:	node to query
 *
 * Return: true if the node is active (activated and not deactivated)
 */
bool kdbus_node_is_active(struct kdbus_node *node)
{
	return atomic_read(&node->active) >= 0;
}

/**
 * kdbus_node_is_deactivated() - test whether a node was deactivated
 * @node:	node to query
 *
 * Return: true if deactivation was started (the node may still drain)
 */
bool kdbus_node_is_deactivated(struct kdbus_node *node)
{
	int v = atomic_read(&node->active);

	return v < 0 && v != KDBUS_NODE_NEW;
}

/**
 * kdbus_node_activate() - activate a node
 * @node:	node to activate
 *
 * This marks a node as active: it appears in the file system and active
 * references can be acquired. The tree takes a reference on the node that
 * is dropped when the node is released.
 *
 * Return: true if the node was activated, false if it was deactivated
 *	   before (for example by a concurrent teardown of its parent).
 */
bool kdbus_node_activate(struct kdbus_node *node)
{
	bool res = false;

	/* the parent lock orders us against kdbus_node_deactivate(parent) */
	down_write(&kdbus_node_lock);
	if (atomic_read(&node->active) == KDBUS_NODE_NEW &&
	    (!node->parent || kdbus_node_is_active(node->parent))) {
		kdbus_node_ref(node);
		atomic_set(&node->active, 0);
		res = true;
	}
	up_write(&kdbus_node_lock);

	return res;
}

/* unlink @node from its parent; called once the node reached RELEASED */
static void kdbus_node_unlink(struct kdbus_node *node)
{
	down_write(&kdbus_node_lock);
	if (!RB_EMPTY_NODE(&node->rb)) {
		rb_erase(&node->rb, &node->parent->children);
		RB_CLEAR_NODE(&node->rb);
	}
	up_write(&kdbus_node_lock);
}

/* first child that is not yet released, with a reference */
static struct kdbus_node *kdbus_node_first_child(struct kdbus_node *node)
{
	struct kdbus_node *child = NULL;
	struct rb_node *rb;

	down_read(&kdbus_node_lock);
	rb = rb_first(&node->children);
	if (rb)
		child = kdbus_node_ref(kdbus_node_from_rb(rb));
	up_read(&kdbus_node_lock);

	return child;
}

/**
 * kdbus_node_deactivate() - deactivate a node and release it
 * @node:	The node to deactivate.
 *
 * Marks @node deactivated (no new active references), deactivates all its
 * children, waits for all active references of @node to be dropped, calls
 * @release_cb once, and unlinks the node. If another task deactivates the
 * node concurrently, this waits until that task released it.
 *
 * The caller must hold a reference to @node.
 */
void kdbus_node_deactivate(struct kdbus_node *node)
{
	struct kdbus_node *child;
	bool was_active;
	int v;

	down_write(&kdbus_node_lock);
	v = atomic_read(&node->active);
	if (v == KDBUS_NODE_NEW) {
		/* never activated: nothing to drain, nothing to release */
		atomic_set(&node->active, KDBUS_NODE_RELEASED);
		was_active = false;
	} else if (v >= 0) {
		atomic_add(KDBUS_NODE_BIAS, &node->active);
		was_active = true;
	} else {
		up_write(&kdbus_node_lock);
		wait_event(node->waitq,
			   atomic_read(&node->active) == KDBUS_NODE_RELEASED);
		return;
	}
	up_write(&kdbus_node_lock);

	/*
	 * Children cannot be linked or activated any more (the parent is not
	 * active), so this loop terminates: every deactivated child unlinks
	 * itself.
	 */
	while ((child = kdbus_node_first_child(node))) {
		kdbus_node_deactivate(child);
		kdbus_node_unref(child);
	}

	if (was_active) {
		wait_event(node->waitq,
			   atomic_read(&node->active) == KDBUS_NODE_BIAS);

		atomic_set(&node->active, KDBUS_NODE_RELEASING);
		if (node->release_cb)
			node->release_cb(node);
	}

	if (node->parent)
		kdbus_node_unlink(node);

	atomic_set(&node->active, KDBUS_NODE_RELEASED);
	wake_up_all(&node->waitq);

	/* drop the reference of the tree */
	if (was_active)
		kdbus_node_unref(node);
}

/**
 * kdbus_node_acquire() - Acquire an active ref on a node
 * @node:	The node
 *
 * This acquires an active-reference to @node. This will only succeed if the
 * node is active. You must release this active reference via
 * kdbus_node_release() again.
 *
 * Return: %true if @node was non-NULL and active
 */
bool kdbus_node_acquire(struct kdbus_node *node)
{
	return node && atomic_inc_unless_negative(&node->active);
}

/**
 * kdbus_node_release() - Release an active ref on a node
 * @node:	The node
 *
 * This releases an active reference that was previously acquired via
 * kdbus_node_acquire(). See kdbus_node_acquire() for details.
 */
void kdbus_node_release(struct kdbus_node *node)
{
	if (node && atomic_dec_return(&node->active) == KDBUS_NODE_BIAS)
		wake_up_all(&node->waitq);
}

/**
 * kdbus_node_find_child() - Find child by name
 * @node:	parent node to search through
 * @name:	name of child node
 *
 * Return: a reference to the active child named @name, or NULL.
 */
struct kdbus_node *kdbus_node_find_child(struct kdbus_node *node,
					 const char *name)
{
	struct kdbus_node *child = NULL;
	struct rb_node *rb;
	unsigned int hash;
	int ret;

	hash = kdbus_node_name_hash(name);

	down_read(&kdbus_node_lock);
	rb = node->children.rb_node;
	while (rb) {
		struct kdbus_node *pos = kdbus_node_from_rb(rb);

		ret = kdbus_node_name_compare(hash, name, pos);
		if (ret < 0) {
			rb = rb->rb_left;
		} else if (ret > 0) {
			rb = rb->rb_right;
		} else {
			if (kdbus_node_is_active(pos))
				child = kdbus_node_ref(pos);
			break;
		}
	}
	up_read(&kdbus_node_lock);

	return child;
}

/* first active node at or after @rb, in tree order; with a reference */
static struct kdbus_node *kdbus_node_next_active(struct rb_node *rb)
{
	for (; rb; rb = rb_next(rb)) {
		struct kdbus_node *pos = kdbus_node_from_rb(rb);

		if (kdbus_node_is_active(pos))
			return kdbus_node_ref(pos);
	}

	return NULL;
}

/**
 * kdbus_node_find_closest() - find the first child at a directory position
 * @node:	parent node
 * @hash:	directory position (name hash)
 *
 * Return: a reference to the first active child with hash >= @hash, or NULL.
 */
struct kdbus_node *kdbus_node_find_closest(struct kdbus_node *node,
					   unsigned int hash)
{
	struct kdbus_node *child;
	struct rb_node *rb, *found = NULL;

	down_read(&kdbus_node_lock);
	rb = node->children.rb_node;
	while (rb) {
		struct kdbus_node *pos = kdbus_node_from_rb(rb);

		if (hash <= pos->hash) {
			found = rb;
			rb = rb->rb_left;
		} else {
			rb = rb->rb_right;
		}
	}
	child = kdbus_node_next_active(found);
	up_read(&kdbus_node_lock);

	return child;
}

/**
 * kdbus_node_next_child() - find the next child in directory order
 * @node:	parent node
 * @prev:	previously returned child (reference held by the caller)
 *
 * Works also if @prev was unlinked meanwhile.
 *
 * Return: a reference to the next active child after @prev, or NULL.
 */
struct kdbus_node *kdbus_node_next_child(struct kdbus_node *node,
					 struct kdbus_node *prev)
{
	struct kdbus_node *child;
	struct rb_node *rb, *found = NULL;

	down_read(&kdbus_node_lock);
	if (!RB_EMPTY_NODE(&prev->rb)) {
		found = rb_next(&prev->rb);
	} else {
		/* @prev is gone: find the first child sorting after it */
		rb = node->children.rb_node;
		while (rb) {
			struct kdbus_node *pos = kdbus_node_from_rb(rb);

			if (kdbus_node_name_compare(prev->hash, prev->name,
						    pos) < 0) {
				found = rb;
				rb = rb->rb_left;
			} else {
				rb = rb->rb_right;
			}
		}
	}
	child = kdbus_node_next_active(found);
	up_read(&kdbus_node_lock);

	return child;
}

/**
 * kdbus_node_exit() - release module-global node state
 */
void kdbus_node_exit(void)
{
	ida_destroy(&kdbus_node_ida);
}
