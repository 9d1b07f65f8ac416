/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel interfaces that changed between 6.1 and 6.12, each wrapped once.
 * Nothing else in the module looks at LINUX_VERSION_CODE.
 */
#ifndef KD_COMPAT_H
#define KD_COMPAT_H

#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/rcupdate.h>
#include <linux/security.h>
#include <linux/version.h>

/*
 * The three inode timestamps moved behind accessors in 6.6/6.7; a new
 * inode gets "now" for all of them.
 */
static inline void kd_inode_init_times(struct inode *inode)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	simple_inode_init_ts(inode);
#else
	inode->i_atime = current_time(inode);
	inode->i_mtime = inode->i_atime;
	inode->i_ctime = inode->i_atime;
#endif
}

/*
 * Walks the children of dentry @parent; the caller holds @parent->d_lock.
 * The child list became an hlist in 6.8.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
#define kd_for_each_child(child, parent)				\
	hlist_for_each_entry(child, &(parent)->d_children, d_sib)
#else
#define kd_for_each_child(child, parent)				\
	list_for_each_entry(child, &(parent)->d_subdirs, d_child)
#endif

/*
 * vma->vm_flags became read-only in 6.3; changes go through helpers that
 * also mark the vma for write (the mmap lock is held for write).
 */
static inline void kd_vm_flags_mod(struct vm_area_struct *vma,
				   vm_flags_t set, vm_flags_t clear)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_mod(vma, set, clear);
#else
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
#endif
}

/* receive_fd() gained a user pointer to report the number in 6.8 */
static inline int kd_receive_fd(struct file *file, unsigned int o_flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	return receive_fd(file, NULL, o_flags);
#else
	return receive_fd(file, o_flags);
#endif
}

/*
 * The exe file of @mm, with a reference, or NULL; get_mm_exe_file() is
 * not exported. Since 6.7 files are SLAB_TYPESAFE_BY_RCU and
 * get_file_rcu() takes the __rcu pointer itself and re-checks it.
 */
static inline struct file *kd_mm_exe_file(struct mm_struct *mm)
{
	struct file *file;

	rcu_read_lock();
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	file = get_file_rcu(&mm->exe_file);
#else
	file = rcu_dereference(mm->exe_file);
	if (file && !get_file_rcu(file))
		file = NULL;
#endif
	rcu_read_unlock();
	return file;
}

/* 32-bit word @i of a capability set: kernel_cap_t is one u64 since 6.3 */
static inline u32 kd_cap_word(kernel_cap_t set, unsigned int i)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	return (u32)(set.val >> (32 * i));
#else
	return set.cap[i];
#endif
}

/*
 * The LSM label of the current task as a new string; NULL without an LSM
 * label, ERR_PTR(-ENOMEM). The secid/secctx interface is the same from
 * 6.1 to 6.12 (6.13+ moved to lsm_prop and lsm_context: wrap it here).
 */
static inline char *kd_current_seclabel(gfp_t gfp)
{
	char *ctx, *label;
	u32 secid = 0, len;

	security_current_getsecid_subj(&secid);
	if (!secid || security_secid_to_secctx(secid, &ctx, &len))
		return NULL;
	label = kstrndup(ctx, len, gfp);
	security_release_secctx(ctx, len);
	return label ? label : ERR_PTR(-ENOMEM);
}

#endif /* KD_COMPAT_H */
