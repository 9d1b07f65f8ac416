// SPDX-License-Identifier: GPL-2.0
/*
 * kdbusfs: every mount is a separate domain.
 */

#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/slab.h>
#include <linux/user_namespace.h>

#include "fs.h"

/**
 * struct kdbus_domain - one kdbusfs mount
 * @user_ns:	user namespace the domain was mounted in; uid prefixes
 *		and privileges are evaluated against it
 */
struct kdbus_domain {
	struct user_namespace *user_ns;
};

static struct kdbus_domain *kdbus_domain_new(struct user_namespace *user_ns)
{
	struct kdbus_domain *domain;

	domain = kzalloc(sizeof(*domain), GFP_KERNEL);
	if (!domain)
		return NULL;

	domain->user_ns = get_user_ns(user_ns);
	return domain;
}

static void kdbus_domain_free(struct kdbus_domain *domain)
{
	if (!domain)
		return;

	put_user_ns(domain->user_ns);
	kfree(domain);
}

static long kdbus_control_ioctl(struct file *file, unsigned int cmd,
				unsigned long arg)
{
	/* BUS_MAKE arrives with the bus core. */
	return -ENOTTY;
}

static const struct file_operations kdbus_control_fops = {
	.owner		= THIS_MODULE,
	.open		= nonseekable_open,
	.unlocked_ioctl	= kdbus_control_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static int kdbus_fill_super(struct super_block *sb, struct fs_context *fc)
{
	static const struct tree_descr files[] = {
		[2] = { "control", &kdbus_control_fops, 0666 },
		{ "" },
	};
	int ret;

	ret = simple_fill_super(sb, KDBUS_SUPER_MAGIC, files);
	if (ret)
		return ret;

	d_inode(sb->s_root)->i_mode = S_IFDIR | 0555;
	return 0;
}

static int kdbus_get_tree(struct fs_context *fc)
{
	/* nodev: a new superblock, hence a new domain, for every mount */
	return get_tree_nodev(fc, kdbus_fill_super);
}

static void kdbus_fs_context_free(struct fs_context *fc)
{
	kdbus_domain_free(fc->s_fs_info);
}

static const struct fs_context_operations kdbus_fs_context_ops = {
	.free		= kdbus_fs_context_free,
	.get_tree	= kdbus_get_tree,
};

static int kdbus_init_fs_context(struct fs_context *fc)
{
	fc->s_fs_info = kdbus_domain_new(fc->user_ns);
	if (!fc->s_fs_info)
		return -ENOMEM;

	fc->ops = &kdbus_fs_context_ops;
	return 0;
}

static void kdbus_kill_sb(struct super_block *sb)
{
	struct kdbus_domain *domain = sb->s_fs_info;

	kill_litter_super(sb);
	kdbus_domain_free(domain);
}

static struct file_system_type kdbus_fs_type = {
	.name			= KBUILD_MODNAME "fs",
	.owner			= THIS_MODULE,
	.init_fs_context	= kdbus_init_fs_context,
	.kill_sb		= kdbus_kill_sb,
	.fs_flags		= FS_USERNS_MOUNT,
};

int __init kdbus_fs_init(void)
{
	return register_filesystem(&kdbus_fs_type);
}

void kdbus_fs_exit(void)
{
	unregister_filesystem(&kdbus_fs_type);
}
