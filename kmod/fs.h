/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kdbusfs: one superblock per mount, a domain; the directory tree lives in
 * the dcache, pinned, as in ramfs, and every object that shows up in it
 * creates and removes its own entries.
 */
#ifndef KD_FS_H
#define KD_FS_H

#include "kd.h"

int kd_fs_register(void);
void kd_fs_unregister(void);

/*
 * @node is the object the inode points to (a reference is taken for the
 * inode's lifetime); NULL for plain directories. The returned dentry
 * carries a reference for the caller besides the one that pins it in the
 * tree; kd_fs_remove() takes it out of the tree (with everything below
 * it) and drops the caller's reference. Errors are ERR_PTR: -EEXIST,
 * -ESHUTDOWN (parent removed), -ENOMEM.
 */
struct dentry *kd_fs_add(struct dentry *parent, const char *name,
			 umode_t mode, kuid_t uid, kgid_t gid,
			 struct kd_node *node);
void kd_fs_remove(struct dentry *dentry);

/* the file operations of control and endpoint files (file.c) */
extern const struct file_operations kd_file_ops;

#endif /* KD_FS_H */
