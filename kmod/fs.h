/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __KDBUS_FS_H
#define __KDBUS_FS_H

#include <linux/fs.h>

/* "DBus": the canonical kdbusfs magic */
#define KDBUS_SUPER_MAGIC	0x44427573

struct kdbus_node;

int kdbus_fs_init(void);
void kdbus_fs_exit(void);

struct kdbus_node *kdbus_node_from_inode(struct inode *inode);

#endif
