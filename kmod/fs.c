// SPDX-License-Identifier: GPL-2.0
/*
 * kdbusfs: every mount is a separate domain; the directory tree mirrors the
 * kdbus node tree (domain -> control, buses -> endpoints).
 *
 * Inodes are created on lookup and hold a reference on their node. A node
 * that is deactivated disappears: lookups and readdir skip it, cached
 * dentries fail revalidation, and dentries are never kept once unused.
 * Open files keep working on their handle until closed; every operation
 * on them checks the node or connection state itself.
 */

#include <linux/dcache.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/namei.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "compat.h"
#include "domain.h"
#include "fs.h"
#include "handle.h"
#include "node.h"

static struct file_system_type kdbus_fs_type;
static struct inode *kdbus_fs_inode_get(struct super_block *sb,
					struct kdbus_node *node);

/*
 * Directory Management
 */

static inline unsigned char kdbus_dt_type(struct kdbus_node *node)
{
	switch (node->type) {
	case KDBUS_NODE_DOMAIN:
	case KDBUS_NODE_BUS:
		return DT_DIR;
	case KDBUS_NODE_CONTROL:
	case KDBUS_NODE_ENDPOINT:
		return DT_REG;
	}

	return DT_UNKNOWN;
}

static int kdbus_fs_dir_open(struct inode *inode, struct file *file)
{
	struct kdbus_node *node = kdbus_node_from_inode(inode);

	/* a directory of a node that is gone cannot be opened any more */
	if (!kdbus_node_acquire(node))
		return -ESHUTDOWN;
	kdbus_node_release(node);

	file->private_data = NULL;
	return 0;
}

static int kdbus_fs_dir_release(struct inode *inode, struct file *file)
{
	kdbus_node_unref(file->private_data);
	return 0;
}

static int kdbus_fs_dir_iterate(struct file *file, struct dir_context *ctx)
{
	struct kdbus_node *parent = kdbus_node_from_inode(file_inode(file));
	struct kdbus_node *old, *next = file->private_data;

	/*
	 * ctx->pos holds the name hash of the next child to emit, and
	 * file->private_data a reference to that child, so that children
	 * with the same hash are neither skipped nor repeated. After a seek
	 * (position and cursor disagree) the closest child is searched.
	 */
	if (!dir_emit_dots(file, ctx))
		return 0;

	old = next;
	if (next && ctx->pos == next->hash) {
		if (kdbus_node_is_active(next))
			kdbus_node_ref(next);
		else
			next = kdbus_node_next_child(parent, next);
	} else {
		next = kdbus_node_find_closest(parent, ctx->pos);
	}
	kdbus_node_unref(old);

	while (next) {
		/* remember @next, it is emitted again if the buffer is full */
		file->private_data = next;
		ctx->pos = next->hash;

		if (!dir_emit(ctx, next->name, strlen(next->name), next->id,
			      kdbus_dt_type(next)))
			return 0;

		old = next;
		next = kdbus_node_next_child(parent, next);
		kdbus_node_unref(old);
	}

	file->private_data = NULL;
	ctx->pos = INT_MAX;

	return 0;
}

static loff_t kdbus_fs_dir_llseek(struct file *file, loff_t offset,
				  int whence)
{
	struct inode *inode = file_inode(file);
	loff_t ret;

	/* protect f_off against fop_iterate */
	inode_lock(inode);
	ret = generic_file_llseek(file, offset, whence);
	inode_unlock(inode);

	return ret;
}

static const struct file_operations kdbus_fs_dir_fops = {
	.open		= kdbus_fs_dir_open,
	.release	= kdbus_fs_dir_release,
	.read		= generic_read_dir,
	.iterate_shared	= kdbus_fs_dir_iterate,
	.llseek		= kdbus_fs_dir_llseek,
};

static struct dentry *kdbus_fs_dir_lookup(struct inode *dir,
					  struct dentry *dentry,
					  unsigned int flags)
{
	struct kdbus_node *parent = kdbus_node_from_inode(dir);
	struct kdbus_node *node;
	struct inode *inode = NULL;

	if (dentry->d_name.len > NAME_MAX)
		return ERR_PTR(-ENAMETOOLONG);

	node = kdbus_node_find_child(parent, dentry->d_name.name);
	if (node) {
		inode = kdbus_fs_inode_get(dir->i_sb, node);
		kdbus_node_unref(node);
		if (IS_ERR(inode))
			return ERR_CAST(inode);
	}

	return d_splice_alias(inode, dentry);
}

static const struct inode_operations kdbus_fs_dir_iops = {
	.permission	= generic_permission,
	.lookup		= kdbus_fs_dir_lookup,
};

/*
 * Inode Management
 */

static const struct inode_operations kdbus_fs_inode_iops = {
	.permission	= generic_permission,
};

static struct inode *kdbus_fs_inode_get(struct super_block *sb,
					struct kdbus_node *node)
{
	struct inode *inode;

	inode = iget_locked(sb, node->id);
	if (!inode)
		return ERR_PTR(-ENOMEM);
	if (!(inode->i_state & I_NEW))
		return inode;

	inode->i_private = kdbus_node_ref(node);
	inode->i_mapping->a_ops = &empty_aops;
	inode->i_mode = node->mode & S_IALLUGO;
	kdbus_inode_init_times(inode);
	inode->i_uid = node->uid;
	inode->i_gid = node->gid;

	switch (node->type) {
	case KDBUS_NODE_DOMAIN:
	case KDBUS_NODE_BUS:
		inode->i_mode |= S_IFDIR;
		inode->i_op = &kdbus_fs_dir_iops;
		inode->i_fop = &kdbus_fs_dir_fops;
		set_nlink(inode, 2);
		break;
	case KDBUS_NODE_CONTROL:
	case KDBUS_NODE_ENDPOINT:
		inode->i_mode |= S_IFREG;
		inode->i_op = &kdbus_fs_inode_iops;
		inode->i_fop = &kdbus_handle_ops;
		break;
	}

	unlock_new_inode(inode);

	return inode;
}

/*
 * Superblock Management
 */

static int kdbus_fs_dentry_revalidate(struct dentry *dentry,
				      unsigned int flags)
{
	struct kdbus_node *node;

	if (flags & LOOKUP_RCU)
		return -ECHILD;

	/* force lookup on negatives */
	if (d_really_is_negative(dentry))
		return 0;

	node = kdbus_node_from_inode(d_inode(dentry));

	/* see whether the node has been removed */
	return kdbus_node_is_active(node) ? 1 : 0;
}

static const struct dentry_operations kdbus_fs_dentry_ops = {
	.d_revalidate	= kdbus_fs_dentry_revalidate,
	.d_delete	= always_delete_dentry,
};

static void kdbus_fs_super_evict_inode(struct inode *inode)
{
	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	kdbus_node_unref(inode->i_private);
}

static const struct super_operations kdbus_fs_super_sops = {
	.statfs		= simple_statfs,
	.drop_inode	= generic_delete_inode,
	.evict_inode	= kdbus_fs_super_evict_inode,
};

static int kdbus_fs_fill_super(struct super_block *sb, struct fs_context *fc)
{
	struct kdbus_domain *domain;
	struct inode *inode;
	int ret;

	sb->s_blocksize = PAGE_SIZE;
	sb->s_blocksize_bits = PAGE_SHIFT;
	sb->s_magic = KDBUS_SUPER_MAGIC;
	sb->s_maxbytes = MAX_LFS_FILESIZE;
	sb->s_op = &kdbus_fs_super_sops;
	sb->s_d_op = &kdbus_fs_dentry_ops;
	sb->s_time_gran = 1;

	domain = kdbus_domain_new(fc->user_ns);
	if (IS_ERR(domain))
		return PTR_ERR(domain);

	/* from here on kill_sb() tears the domain down on failure */
	sb->s_fs_info = domain;

	inode = kdbus_fs_inode_get(sb, &domain->node);
	if (IS_ERR(inode))
		return PTR_ERR(inode);

	sb->s_root = d_make_root(inode);
	if (!sb->s_root)
		return -ENOMEM;

	ret = kdbus_domain_populate(domain);
	if (ret < 0)
		return ret;

	return 0;
}

static int kdbus_fs_get_tree(struct fs_context *fc)
{
	/* nodev: a new superblock, hence a new domain, for every mount */
	return get_tree_nodev(fc, kdbus_fs_fill_super);
}

static const struct fs_context_operations kdbus_fs_context_ops = {
	.get_tree	= kdbus_fs_get_tree,
};

static int kdbus_fs_init_fs_context(struct fs_context *fc)
{
	fc->ops = &kdbus_fs_context_ops;
	return 0;
}

static void kdbus_fs_kill_sb(struct super_block *sb)
{
	struct kdbus_domain *domain = sb->s_fs_info;

	if (domain)
		kdbus_node_deactivate(&domain->node);

	kill_anon_super(sb);
	kdbus_domain_unref(domain);
}

static struct file_system_type kdbus_fs_type = {
	.name			= KBUILD_MODNAME "fs",
	.owner			= THIS_MODULE,
	.init_fs_context	= kdbus_fs_init_fs_context,
	.kill_sb		= kdbus_fs_kill_sb,
	.fs_flags		= FS_USERNS_MOUNT,
};

/**
 * kdbus_fs_init() - register kdbusfs
 *
 * Return: 0 on success, negative error otherwise.
 */
int __init kdbus_fs_init(void)
{
	return register_filesystem(&kdbus_fs_type);
}

/**
 * kdbus_fs_exit() - unregister kdbusfs
 */
void kdbus_fs_exit(void)
{
	unregister_filesystem(&kdbus_fs_type);
}

/**
 * kdbus_node_from_inode() - get the node of a kdbusfs inode
 * @inode:	inode of kdbusfs
 *
 * Return: the node behind @inode
 */
struct kdbus_node *kdbus_node_from_inode(struct inode *inode)
{
	return inode->i_private;
}
