/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel-version differences, kept in one place. The module is written for
 * Linux 6.1; every helper here maps one interface that changed in a later
 * release to the running kernel's version of it.
 */

#ifndef __KDBUS_COMPAT_H
#define __KDBUS_COMPAT_H

#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/rcupdate.h>
#include <linux/security.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/version.h>

/* 6.2: iov_iter directions got their own names */
#ifndef ITER_SOURCE
#define ITER_SOURCE	WRITE
#define ITER_DEST	READ
#endif

/* 6.3: vma->vm_flags became read-only outside of helpers */
static inline void kdbus_vma_clear_flags(struct vm_area_struct *vma,
					 unsigned long flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_clear(vma, flags);
#else
	vma->vm_flags &= ~flags;
#endif
}

/* 6.3: kernel_cap_t became a single u64; the CAPS item uses u32 words */
static inline u32 kdbus_cap_word(const kernel_cap_t *cap, unsigned int i)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	return (u32)(cap->val >> (32 * i));
#else
	return cap->cap[i];
#endif
}

/* 6.6 and 6.7: inode timestamps are set through accessors */
static inline void kdbus_inode_init_times(struct inode *inode)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	simple_inode_init_ts(inode);
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
	inode->i_atime = inode->i_mtime = inode_set_ctime_current(inode);
#else
	inode->i_atime = inode->i_mtime = inode->i_ctime = current_time(inode);
#endif
}

/*
 * The executable of an mm: get_mm_exe_file() is not exported, so the file
 * is grabbed under RCU. 6.7 changed get_file_rcu() to take the pointer.
 */
static inline struct file *kdbus_get_mm_exe_file(struct mm_struct *mm)
{
	struct file *exe_file;

	rcu_read_lock();
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	exe_file = get_file_rcu(&mm->exe_file);
#else
	exe_file = rcu_dereference(mm->exe_file);
	if (exe_file && !get_file_rcu(exe_file))
		exe_file = NULL;
#endif
	rcu_read_unlock();

	return exe_file;
}

/*
 * The LSM label of the current task as a new string, or NULL without an
 * LSM that provides one. The secid/secctx interface is unchanged from 6.1
 * up to 6.12; 6.13 and 6.14 replace it by lsm_prop and lsm_context.
 */
static inline char *kdbus_current_seclabel(void)
{
	char *ctx = NULL, *label;
	u32 sid, len;

	security_current_getsecid_subj(&sid);
	if (!sid || security_secid_to_secctx(sid, &ctx, &len) < 0 || !ctx)
		return NULL;

	label = kstrndup(ctx, len, GFP_KERNEL);
	security_release_secctx(ctx, len);
	return label;
}

/* 6.8: receive_fd() gained the user pointer argument of receive_fd_user() */
static inline int kdbus_receive_fd(struct file *file, unsigned int o_flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	return receive_fd(file, NULL, o_flags);
#else
	return receive_fd(file, o_flags);
#endif
}

#endif
