// SPDX-License-Identifier: GPL-2.0
/*
 * kdbus - a message bus in the kernel, with the historic kdbus ABI.
 *
 * Object graph (arrows point to what an object holds a reference on):
 *
 *   kdbusfs mount = domain  <-  bus  <-  endpoint  <-  connection
 *        |                      |            |            |
 *     control                name registry  policy db    pool, queue,
 *                            policy db                   match db, replies
 *
 * Every domain, control node, bus and endpoint is a node of the kdbusfs
 * tree (node.c); closing the handle that created a bus or an endpoint
 * deactivates it, which disconnects every connection below it.
 *
 * debugfs/kdbus/objects lists the number of live objects of every class;
 * on module exit any object still alive is reported as leaked.
 */

#define pr_fmt(fmt)	KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/init.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/sysfs.h>

#include "fs.h"
#include "node.h"
#include "util.h"

static struct dentry *kdbus_debugfs_dir;

static int kdbus_objects_show(struct seq_file *m, void *v)
{
	int i;

	for (i = 0; i < _KDBUS_OBJ_MAX; i++)
		seq_printf(m, "%s %ld\n", kdbus_obj_names[i],
			   atomic_long_read(&kdbus_obj_count[i]));

	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kdbus_objects);

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

	/* statistics only: failing to create them is not an error */
	kdbus_debugfs_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("objects", 0444, kdbus_debugfs_dir, NULL,
			    &kdbus_objects_fops);

	return 0;
}

static void __exit kdbus_exit(void)
{
	debugfs_remove_recursive(kdbus_debugfs_dir);
	kdbus_fs_exit();
	sysfs_remove_mount_point(fs_kobj, KBUILD_MODNAME);
	kdbus_node_exit();
	kdbus_obj_report_leaks();
}

module_init(kdbus_init);
module_exit(kdbus_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("D-Bus, powerful, easy to use interprocess communication");
MODULE_ALIAS_FS(KBUILD_MODNAME "fs");
