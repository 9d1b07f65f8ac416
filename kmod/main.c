// SPDX-License-Identifier: GPL-2.0
/*
 * kdbus - a message bus in the kernel, with the historic kdbus ABI.
 */

#define pr_fmt(fmt)	KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/init.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/sysfs.h>

#include "fs.h"

static int __init kdbus_init(void)
{
	int ret;

	/*
	 * A real mount point (not a plain kobject directory), so that sysfs
	 * stays mountable inside user namespaces with kdbusfs mounted here.
	 */
	ret = sysfs_create_mount_point(fs_kobj, KBUILD_MODNAME);
	if (ret)
		return ret;

	ret = kdbus_fs_init();
	if (ret) {
		pr_err("cannot register filesystem: %d\n", ret);
		sysfs_remove_mount_point(fs_kobj, KBUILD_MODNAME);
		return ret;
	}

	return 0;
}

static void __exit kdbus_exit(void)
{
	kdbus_fs_exit();
	sysfs_remove_mount_point(fs_kobj, KBUILD_MODNAME);
}

module_init(kdbus_init);
module_exit(kdbus_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("D-Bus, powerful, easy to use interprocess communication");
MODULE_ALIAS_FS(KBUILD_MODNAME "fs");
