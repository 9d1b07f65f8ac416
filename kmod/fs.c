// SPDX-License-Identifier: GPL-2.0
/*
 * kdbusfs. Each mount is a domain. There is no backing store: every
 * directory and file is a dentry made by the object it shows and kept in
 * the dcache by an extra reference until that object removes it, so
 * lookups and readdir are the generic dcache ones.
 */

#include <linux/dcache.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/fsnotify.h>
#include <linux/namei.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/user_namespace.h>

#include "domain.h"
#include "ep.h"
#include "fs.h"

#define KD_SUPER_MAGIC	0x44427573	/* "DBus" */

static struct kd_node *kd_node_ref(struct kd_node *node)
{
	switch (node->kind) {
	case KD_NODE_CONTROL:
		kd_domain_get(container_of(node, struct kd_domain, node));
		break;
	case KD_NODE_EP:
		kd_ep_get(container_of(node, struct kd_ep, node));
		break;
	default:
		WARN_ON_ONCE(1);
		return NULL;
	}
	return node;
}

static void kd_node_unref(struct kd_node *node)
{
	switch (node->kind) {
	case KD_NODE_CONTROL:
		kd_domain_put(container_of(node, struct kd_domain, node));
		break;
	case KD_NODE_EP:
		kd_ep_put(container_of(node, struct kd_ep, node));
		break;
	default:
		break;
	}
}

/*
 * A removed directory has no links left and cannot be opened again; one
 * that is still open reads as empty (it is not S_DEAD, which would make
 * getdents fail instead).
 */
static int kd_dir_open(struct inode *inode, struct file *file)
{
	if (!inode->i_nlink)
		return -ESHUTDOWN;
	return dcache_dir_open(inode, file);
}

static const struct file_operations kd_dir_ops = {
	.open		= kd_dir_open,
	.release	= dcache_dir_close,
	.llseek		= dcache_dir_lseek,
	.read		= generic_read_dir,
	.iterate_shared	= dcache_readdir,
	.fsync		= noop_fsync,
};

static struct inode *kd_fs_inode(struct super_block *sb, umode_t mode,
				 kuid_t uid, kgid_t gid, struct kd_node *node)
{
	struct inode *inode = new_inode(sb);

	if (!inode)
		return NULL;

	inode->i_ino = get_next_ino();
	inode->i_mode = mode;
	inode->i_uid = uid;
	inode->i_gid = gid;
	kd_inode_init_times(inode);

	if (S_ISDIR(mode)) {
		inode->i_op = &simple_dir_inode_operations;
		inode->i_fop = &kd_dir_ops;
		inc_nlink(inode);	/* "." */
	} else {
		inode->i_fop = &kd_file_ops;
	}

	/* evict drops it: the inode may outlive the node's removal */
	if (node)
		inode->i_private = kd_node_ref(node);
	return inode;
}

/**
 * kd_fs_add() - make a directory or a file in kdbusfs
 * @parent:	the directory it goes into
 * @name:	its name
 * @mode:	S_IFDIR or S_IFREG plus permission bits
 * @uid:	owner
 * @gid:	group
 * @node:	what the inode shows (referenced), NULL for directories
 *
 * Return: the new dentry, pinned in the tree and with a reference for the
 * caller, or an ERR_PTR: -EEXIST if the name is taken, -ESHUTDOWN if
 * @parent was removed, -ENOMEM.
 */
struct dentry *kd_fs_add(struct dentry *parent, const char *name,
			 umode_t mode, kuid_t uid, kgid_t gid,
			 struct kd_node *node)
{
	struct inode *dir = d_inode(parent);
	struct qstr q = QSTR_INIT(name, strlen(name));
	struct dentry *dentry;
	struct inode *inode;
	bool fresh = false;

	inode_lock(dir);
	if (!dir->i_nlink) {
		dentry = ERR_PTR(-ESHUTDOWN);
		goto out;
	}

	/* a negative dentry left by a lookup in flight is taken over */
	dentry = d_hash_and_lookup(parent, &q);
	if (IS_ERR(dentry))
		goto out;
	if (dentry && d_really_is_positive(dentry)) {
		dput(dentry);
		dentry = ERR_PTR(-EEXIST);
		goto out;
	}
	if (!dentry) {
		dentry = d_alloc_name(parent, name);
		if (!dentry) {
			dentry = ERR_PTR(-ENOMEM);
			goto out;
		}
		fresh = true;
	}

	inode = kd_fs_inode(dir->i_sb, mode, uid, gid, node);
	if (!inode) {
		dput(dentry);
		dentry = ERR_PTR(-ENOMEM);
		goto out;
	}

	if (fresh)
		d_add(dentry, inode);
	else
		d_instantiate(dentry, inode);
	/* the pin; the reference from the lookup goes to the caller */
	dget(dentry);

	if (S_ISDIR(mode)) {
		inc_nlink(dir);
		fsnotify_mkdir(dir, dentry);
	} else {
		fsnotify_create(dir, dentry);
	}
out:
	inode_unlock(dir);
	return dentry;
}

static struct dentry *kd_fs_first_child(struct dentry *parent)
{
	struct dentry *child, *found = NULL;

	spin_lock(&parent->d_lock);
	kd_for_each_child(child, parent)
		if (simple_positive(child)) {
			found = dget(child);
			break;
		}
	spin_unlock(&parent->d_lock);
	return found;
}

/*
 * Takes @dentry out of @dir, whose inode lock is held, and drops the pin;
 * a directory loses its children first. Open files keep their dentry
 * (now unhashed) and inode.
 */
static void kd_fs_unlink(struct inode *dir, struct dentry *dentry)
{
	struct inode *inode = d_inode(dentry);
	struct dentry *child;

	if (d_is_dir(dentry)) {
		inode_lock_nested(inode, I_MUTEX_CHILD);
		while ((child = kd_fs_first_child(dentry))) {
			kd_fs_unlink(inode, child);
			dput(child);
		}
		clear_nlink(inode);
		inode_unlock(inode);
		drop_nlink(dir);
		fsnotify_rmdir(dir, dentry);
	} else {
		clear_nlink(inode);
		fsnotify_unlink(dir, dentry);
	}
	d_delete(dentry);
	dput(dentry);		/* the pin */
}

/**
 * kd_fs_remove() - take a dentry and all below it out of the tree
 * @dentry:	what kd_fs_add() returned, or NULL
 *
 * Open files keep their inodes (and the nodes they point to) until they
 * are closed. Removing a dentry that a removal of its parent already took
 * out is harmless. The caller's reference is dropped.
 */
void kd_fs_remove(struct dentry *dentry)
{
	struct inode *dir;

	if (IS_ERR_OR_NULL(dentry))
		return;

	/* nothing is ever renamed: the parent stays */
	dir = d_inode(dentry->d_parent);
	inode_lock_nested(dir, I_MUTEX_PARENT);
	if (simple_positive(dentry))
		kd_fs_unlink(dir, dentry);
	inode_unlock(dir);
	dput(dentry);
}

static void kd_fs_evict_inode(struct inode *inode)
{
	struct kd_node *node = inode->i_private;

	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	if (node)
		kd_node_unref(node);
}

static const struct super_operations kd_fs_super_ops = {
	.statfs		= simple_statfs,
	.drop_inode	= generic_delete_inode,
	.evict_inode	= kd_fs_evict_inode,
};

static int kd_fs_fill_super(struct super_block *sb, struct fs_context *fc)
{
	struct kd_domain *d;
	struct dentry *control;
	struct inode *root;
	kuid_t uid;
	kgid_t gid;

	sb->s_blocksize = PAGE_SIZE;
	sb->s_blocksize_bits = PAGE_SHIFT;
	sb->s_magic = KD_SUPER_MAGIC;
	sb->s_op = &kd_fs_super_ops;
	sb->s_time_gran = 1;

	d = kd_domain_new(sb);
	if (!d)
		return -ENOMEM;
	sb->s_fs_info = d;	/* kill_sb cleans up from here on */

	/* root of the mounter's namespace owns the tree, if it has one */
	uid = make_kuid(d->user_ns, 0);
	gid = make_kgid(d->user_ns, 0);
	if (!uid_valid(uid))
		uid = GLOBAL_ROOT_UID;
	if (!gid_valid(gid))
		gid = GLOBAL_ROOT_GID;

	root = kd_fs_inode(sb, S_IFDIR | 0555, uid, gid, NULL);
	if (!root)
		return -ENOMEM;
	sb->s_root = d_make_root(root);
	if (!sb->s_root)
		return -ENOMEM;
	d->root = sb->s_root;

	control = kd_fs_add(sb->s_root, "control", S_IFREG | 0666, uid, gid,
			    &d->node);
	if (IS_ERR(control))
		return PTR_ERR(control);
	/* the pin keeps it until the superblock goes */
	dput(control);
	return 0;
}

static int kd_fs_get_tree(struct fs_context *fc)
{
	return get_tree_nodev(fc, kd_fs_fill_super);
}

/* kdbusfs has no options; unknown ones are ignored, as they always were */
static int kd_fs_parse_param(struct fs_context *fc, struct fs_parameter *param)
{
	if (!strcmp(param->key, "source"))
		return -ENOPARAM;
	return 0;
}

static const struct fs_context_operations kd_fs_context_ops = {
	.parse_param	= kd_fs_parse_param,
	.get_tree	= kd_fs_get_tree,
};

static int kd_fs_init_fs_context(struct fs_context *fc)
{
	fc->ops = &kd_fs_context_ops;
	return 0;
}

static void kd_fs_kill_sb(struct super_block *sb)
{
	struct kd_domain *d = sb->s_fs_info;

	/* buses remove their own directories before the tree goes */
	if (d)
		kd_domain_shutdown(d);
	kill_litter_super(sb);
	kd_domain_put(d);
}

static struct file_system_type kd_fs_type = {
	.owner			= THIS_MODULE,
	.name			= KBUILD_MODNAME "fs",
	.init_fs_context	= kd_fs_init_fs_context,
	.kill_sb		= kd_fs_kill_sb,
	.fs_flags		= FS_USERNS_MOUNT,
};

/**
 * kd_fs_register() - make kdbusfs mountable
 *
 * Return: 0 or a negative errno from register_filesystem().
 */
int kd_fs_register(void)
{
	return register_filesystem(&kd_fs_type);
}

/**
 * kd_fs_unregister() - undo kd_fs_register()
 */
void kd_fs_unregister(void)
{
	unregister_filesystem(&kd_fs_type);
}
