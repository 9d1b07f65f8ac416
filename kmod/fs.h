/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __KDBUS_FS_H
#define __KDBUS_FS_H

/* "DBus": the canonical kdbusfs magic */
#define KDBUS_SUPER_MAGIC	0x44427573

int kdbus_fs_init(void);
void kdbus_fs_exit(void);

#endif
