// SPDX-License-Identifier: GPL-2.0
/*
 * kdbus.ko: loading registers kdbusfs and its usual mount point; the
 * object counters let a test (or module unload) see what is still alive.
 */

#define pr_fmt(fmt)	KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/seq_file.h>
#include <linux/sysfs.h>

#include "fs.h"
#include "pool.h"
#include "queue.h"

atomic_long_t kd_obj_live[KD_OBJ_NR];

static const char * const kd_obj_names[KD_OBJ_NR] = {
	[KD_OBJ_DOMAIN]	= "domains",
	[KD_OBJ_USER]	= "users",
	[KD_OBJ_BUS]	= "buses",
	[KD_OBJ_EP]	= "endpoints",
	[KD_OBJ_CONN]	= "connections",
	[KD_OBJ_SLICE]	= "slices",
	[KD_OBJ_ENTRY]	= "entries",
	[KD_OBJ_MSG]	= "messages",
	[KD_OBJ_REPLY]	= "replies",
	[KD_OBJ_NAME]	= "names",
	[KD_OBJ_OWNER]	= "owners",
	[KD_OBJ_MATCH]	= "matches",
	[KD_OBJ_POLICY]	= "policies",
	[KD_OBJ_META]	= "metas",
};

static struct dentry *kd_debugfs;

static int kd_objects_show(struct seq_file *m, void *unused)
{
	int i;

	for (i = 0; i < KD_OBJ_NR; i++)
		seq_printf(m, "%s %ld\n", kd_obj_names[i],
			   atomic_long_read(&kd_obj_live[i]));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kd_objects);

static void kd_report_leaks(void)
{
	long n;
	int i;

	for (i = 0; i < KD_OBJ_NR; i++) {
		n = atomic_long_read(&kd_obj_live[i]);
		if (n)
			pr_err("leaked %ld %s\n", n, kd_obj_names[i]);
	}
}

static int __init kd_init(void)
{
	int ret;

	ret = kd_slice_cache_init();
	if (ret)
		return ret;
	ret = kd_entry_cache_init();
	if (ret)
		goto err_slices;
	ret = sysfs_create_mount_point(fs_kobj, KBUILD_MODNAME);
	if (ret)
		goto err_entries;
	ret = kd_fs_register();
	if (ret)
		goto err_mount_point;

	/* debugging aid only: a failure here is not fatal */
	kd_debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("objects", 0444, kd_debugfs, NULL,
			    &kd_objects_fops);
	return 0;

err_mount_point:
	sysfs_remove_mount_point(fs_kobj, KBUILD_MODNAME);
err_entries:
	kd_entry_cache_exit();
err_slices:
	kd_slice_cache_exit();
	return ret;
}

static void __exit kd_exit(void)
{
	kd_fs_unregister();
	sysfs_remove_mount_point(fs_kobj, KBUILD_MODNAME);
	debugfs_remove(kd_debugfs);
	/* objects freed through RCU must be gone before we count */
	rcu_barrier();
	kd_report_leaks();
	kd_entry_cache_exit();
	kd_slice_cache_exit();
}

module_init(kd_init);
module_exit(kd_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kdbus: D-Bus style IPC in the kernel, over kdbusfs");
MODULE_ALIAS_FS(KBUILD_MODNAME "fs");
